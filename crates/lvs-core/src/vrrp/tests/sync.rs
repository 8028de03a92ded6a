//! Sync groups: members move to MASTER, BACKUP and FAULT together.

use super::*;
use crate::vrrp::{State, SyncGroup};

fn member(name: &str, vrid: u8, prio: u8, vip: &str) -> InstanceConfig {
    let mut cfg = InstanceConfig::new(name, vrid, vec![ip(vip)], ip("10.200.0.1"));
    cfg.priority = prio;
    cfg
}

fn group() -> (SyncGroup, InstanceConfig, InstanceConfig) {
    let a = member("VI_1", 61, 150, "10.200.0.161");
    let b = member("VI_2", 62, 100, "10.200.0.162");
    let members = vec![Instance::new(a.clone()).expect("a"), Instance::new(b.clone()).expect("b")];
    (SyncGroup::new("G1", members).expect("group"), a, b)
}

fn states(g: &SyncGroup) -> Vec<State> {
    g.members().iter().map(Instance::state).collect()
}

fn group_logs(actions: &[(usize, Action)]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Log(l) if l.starts_with("VRRP_Group") => Some(l.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn members_go_master_when_all_want_it() {
    let (mut g, _, _) = group();
    g.start(at(0));
    assert_eq!(states(&g), [State::Backup, State::Backup]);
    // VI_1 (150) times out at 3414 ms but waits for VI_2 (100, 3609 ms).
    assert_eq!(g.next_deadline(), Some(at(3414)));
    let actions = g.poll(at(3414));
    assert_eq!(states(&g), [State::Backup, State::Backup]);
    assert!(actions.iter().all(|(_, a)| !matches!(a, Action::Send { .. })));
    let actions = g.poll(at(3609));
    assert_eq!(states(&g), [State::Master, State::Master]);
    assert_eq!(group_logs(&actions), ["VRRP_Group(G1) Syncing instances to MASTER state"]);
    // Each member advertises, claims its VIPs and announces them.
    for i in 0..2 {
        let mine: Vec<&Action> = actions.iter().filter(|(j, _)| *j == i).map(|(_, a)| a).collect();
        assert!(mine.iter().any(|a| matches!(a, Action::Send { .. })), "member {i}");
        assert!(mine.contains(&&Action::ClaimVips), "member {i}");
        assert!(mine.contains(&&Action::Garp { rounds: 5 }), "member {i}");
    }
}

#[test]
fn an_advert_cancels_a_members_wish() {
    let (mut g, a, _) = group();
    g.start(at(0));
    g.poll(at(3414)); // VI_1 wants MASTER
    let m = advert_from(&a, "10.200.0.2", 200);
    g.receive(at(3500), 0, &m.received());
    g.poll(at(3609)); // VI_2 wants MASTER, VI_1 no longer does
    assert_eq!(states(&g), [State::Backup, State::Backup]);
}

#[test]
fn one_member_yielding_takes_the_group_to_backup() {
    let (mut g, _, b) = group();
    g.start(at(0));
    g.poll(at(3609));
    assert_eq!(states(&g), [State::Master, State::Master]);
    let actions = g.receive(at(4000), 1, &advert_from(&b, "10.200.0.2", 200).received());
    assert_eq!(states(&g), [State::Backup, State::Backup]);
    assert_eq!(group_logs(&actions), ["VRRP_Group(G1) Syncing instances to BACKUP state"]);
    assert!(actions.contains(&(0, Action::ReleaseVips)));
    assert!(actions.contains(&(1, Action::ReleaseVips)));
}

#[test]
fn priority_zero_moves_the_group_when_the_last_member_times_out() {
    let (mut g, a, b) = group();
    g.start(at(0));
    g.receive(at(1000), 0, &advert_from(&a, "10.200.0.2", 200).received());
    g.receive(at(1000), 1, &advert_from(&b, "10.200.0.2", 200).received());
    // VI_2 hears priority 0 and times out after its skew (156/256 s), but VI_1 still hears a
    // master: nobody moves.
    g.receive(at(2000), 1, &advert_from(&b, "10.200.0.2", 0).received());
    g.poll(at(2609));
    assert_eq!(states(&g), [State::Backup, State::Backup]);
    // VI_1 hears priority 0 too: when its skew (106/256 s) ends, the group goes MASTER.
    g.receive(at(2700), 0, &advert_from(&a, "10.200.0.2", 0).received());
    assert_eq!(g.next_deadline(), Some(at(3114)));
    g.poll(at(3114));
    assert_eq!(states(&g), [State::Master, State::Master]);
}

#[test]
fn one_fault_faults_the_group_until_every_fault_clears() {
    let (mut g, _, _) = group();
    g.start(at(0));
    g.poll(at(3609));
    let actions = g.set_fault(at(4000), 1, true);
    assert_eq!(states(&g), [State::Fault, State::Fault]);
    assert_eq!(group_logs(&actions), ["VRRP_Group(G1) Syncing instances to FAULT state"]);
    // Both masters resigned with priority 0.
    let zeros =
        actions.iter().filter(|(_, a)| matches!(a, Action::Send { message, .. } if message[2] == 0)).count();
    assert_eq!(zeros, 2);
    g.set_fault(at(5000), 0, true);
    g.set_fault(at(6000), 1, false);
    assert_eq!(states(&g), [State::Fault, State::Fault], "VI_1 still has a fault");
    g.set_fault(at(7000), 0, false);
    assert_eq!(states(&g), [State::Backup, State::Backup]);
    g.poll(at(7000 + 3609));
    assert_eq!(states(&g), [State::Master, State::Master]);
    // A fault before start starts everyone in FAULT.
    let (mut g, _, _) = group();
    g.set_fault(at(0), 0, true);
    g.start(at(0));
    assert_eq!(states(&g), [State::Fault, State::Fault]);
}

#[test]
fn group_construction_and_bounds() {
    assert_eq!(
        SyncGroup::new("G0", vec![]).expect_err("empty").message(),
        "Sync group G0 has no virtual router(s)"
    );
    let a = member("VI_1", 61, 150, "10.200.0.161");
    let twice = vec![Instance::new(a.clone()).expect("a"), Instance::new(a.clone()).expect("a")];
    assert_eq!(
        SyncGroup::new("G2", twice).expect_err("dup").message(),
        "Sync group G2: instance VI_1 is listed twice"
    );
    let mut running = Instance::new(a).expect("a");
    running.start(at(0));
    assert!(SyncGroup::new("G3", vec![running]).is_err());
    let (mut g, a, _) = group();
    assert_eq!(g.name(), "G1");
    assert_eq!(g.index_of("VI_2"), Some(1));
    assert!(g.receive(at(0), 7, &advert_from(&a, "10.200.0.2", 1).received()).is_empty());
    g.start(at(0));
    g.poll(at(3609));
    let actions = g.shutdown(at(5000));
    assert_eq!(states(&g), [State::Stop, State::Stop]);
    assert_eq!(actions.iter().filter(|(_, a)| matches!(a, Action::Send { .. })).count(), 2);
}
