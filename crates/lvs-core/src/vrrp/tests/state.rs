//! The state machine with synthetic time: startup, takeover, the receive rules of BACKUP and
//! MASTER, preemption, interval learning, faults, priorities, shutdown, unicast, GARP scheduling,
//! configuration checks, and random bytes.

use super::*;
use crate::rng::Rng;
use crate::vrrp::{DropReason, State};
use crate::wire::vrrp::Packet;

fn rx(vi: &mut Instance, now: u64, m: &IpMessage) -> Vec<Action> {
    vi.receive(at(now), &m.received())
}

/// A MASTER at `t` ms (started at 0, no competitor).
fn master(cfg: InstanceConfig) -> (Instance, u64) {
    let (mut vi, _) = started(cfg, 0);
    let t = vi.next_deadline().expect("down timer").millis();
    vi.poll(at(t));
    assert_eq!(vi.state(), State::Master);
    (vi, t)
}

#[test]
fn owner_with_state_master_starts_master_at_once_in_keepalived_order() {
    let mut cfg = ka_v2();
    cfg.priority = 255;
    let (vi, actions) = started(cfg, 1000);
    assert_eq!(vi.state(), State::Master);
    assert_eq!(actions.len(), 6);
    assert!(
        matches!(&actions[0], Action::Send { dst, message } if *dst == ip("224.0.0.18") && message[2] == 255)
    );
    assert_eq!(actions[1], Action::Transition { from: State::Init, to: State::Master });
    assert_eq!(actions[2], Action::Log("(VI_1) Entering MASTER STATE".into()));
    assert_eq!(actions[3], Action::ClaimVips);
    assert_eq!(actions[4], Action::Log("(VI_1) setting VIPs.".into()));
    assert_eq!(actions[5], Action::Garp { rounds: 5 });
    // Next: an advert after advert_int, and the second GARP burst after garp_master_delay.
    assert_eq!(vi.next_deadline(), Some(at(2000)));
    assert_eq!(vi.master(), Some(ip("10.200.0.1")));
}

#[test]
fn startup_waits_the_full_master_down_interval() {
    // v2 priority 150: 3 s + 106/256 s.
    let (mut vi, actions) = started(ka_v2(), 0);
    assert_eq!(
        actions,
        [
            Action::ReleaseVips,
            Action::Log("(VI_1) removing VIPs.".into()),
            Action::Transition { from: State::Init, to: State::Backup },
            Action::Log("(VI_1) Entering BACKUP STATE (init)".into()),
        ]
    );
    assert_eq!(vi.next_deadline(), Some(at(3414)));
    assert!(vi.poll(at(3413)).is_empty());
    assert_eq!(vi.state(), State::Backup);
    let actions = vi.poll(at(3414));
    assert_eq!(vi.state(), State::Master);
    // Becoming master: timeout log, advert, state, VIPs, GARP burst - in this order.
    let kinds: Vec<&str> = actions
        .iter()
        .map(|a| match a {
            Action::Send { .. } => "send",
            Action::Transition { .. } => "transition",
            Action::ClaimVips => "claim",
            Action::ReleaseVips => "release",
            Action::Garp { .. } => "garp",
            Action::Log(_) => "log",
        })
        .collect();
    assert_eq!(kinds, ["log", "send", "transition", "log", "claim", "log", "garp"]);
    assert_eq!(logs(&actions)[0], "(VI_1) Receive advertisement timeout");
    // The second burst 5 s later, adverts every second meanwhile.
    let mut garps = Vec::new();
    let mut adverts = 0;
    for t in 3415..=8414 {
        for a in vi.poll(at(t)) {
            match a {
                Action::Garp { rounds } => garps.push((t, rounds)),
                Action::Send { .. } => adverts += 1,
                _ => {}
            }
        }
    }
    assert_eq!(garps, [(8414, 5)]);
    assert_eq!(adverts, 5);
    // garp_master_delay 0: no second burst.
    let mut cfg = ka_v2();
    cfg.garp_master_delay_ms = 0;
    let (mut vi, _) = master(cfg);
    let later: Vec<Action> = (3415..20_000).step_by(100).flat_map(|t| vi.poll(at(t))).collect();
    assert!(!later.iter().any(|a| matches!(a, Action::Garp { .. })));
}

#[test]
fn v3_master_down_interval_scales_with_the_learnt_interval() {
    let cfg = ka_v3();
    let (mut vi, _) = started(cfg.clone(), 0);
    // 3 × 0.5 s + 136/256 × 0.5 s.
    assert_eq!(vi.next_deadline(), Some(at(1765)));
    let mut peer = cfg.clone();
    peer.advert_int_cs = 100;
    let m = advert_from(&peer, "10.200.0.2", 200);
    let actions = rx(&mut vi, 1000, &m);
    assert_eq!(logs(&actions), ["(VI_3) advertisement interval updated from 500ms to 1000ms by master"]);
    assert_eq!(vi.master_adver_int_cs(), 100);
    // 3 × 1 s + 136/256 s.
    assert_eq!(vi.next_deadline(), Some(at(1000 + 3531)));
    let actions = vi.poll(at(4531));
    assert_eq!(vi.state(), State::Master);
    assert!(
        logs(&actions).contains(&"(VI_3) changing advert interval from 1000ms to locally configured 500ms")
    );
    assert_eq!(vi.master_adver_int_cs(), 50);
    // The adverts go out with the local interval (50 cs) and every 500 ms.
    let sent = sends(&actions);
    assert_eq!(u16::from_be_bytes([sent[0].1[4], sent[0].1[5]]), 50);
    assert_eq!(vi.next_deadline(), Some(at(5031)));
}

#[test]
fn backup_takes_over_after_the_last_higher_advert() {
    let (mut vi, _) = started(ka_v2(), 0);
    let m = advert_from(&ka_v2(), "10.200.0.2", 200);
    for t in [1000, 2000, 3000, 4000, 5000] {
        assert!(rx(&mut vi, t, &m).is_empty(), "a higher master is accepted silently");
        assert_eq!(vi.next_deadline(), Some(at(t + 3414)));
        assert_eq!(vi.master(), Some(ip("10.200.0.2")));
    }
    assert!(vi.poll(at(8413)).is_empty());
    vi.poll(at(8414));
    assert_eq!(vi.state(), State::Master);
    assert_eq!(vi.counters().adverts_received, 5);
}

#[test]
fn backup_takes_over_a_skew_time_after_priority_zero() {
    let (mut vi, _) = started(ka_v2(), 0);
    rx(&mut vi, 1000, &advert_from(&ka_v2(), "10.200.0.2", 200));
    let actions = rx(&mut vi, 1500, &advert_from(&ka_v2(), "10.200.0.2", 0));
    assert_eq!(logs(&actions), ["(VI_1) Backup received priority 0 advertisement"]);
    // (256 - 150) / 256 s.
    assert_eq!(vi.next_deadline(), Some(at(1914)));
    vi.poll(at(1914));
    assert_eq!(vi.state(), State::Master);
    assert_eq!(vi.counters().priority_zero_received, 1);
}

#[test]
fn backup_discards_a_lower_priority_master_and_preempts() {
    let (mut vi, _) = started(ka_v2(), 0);
    let m = advert_from(&ka_v2(), "10.200.0.2", 100);
    let actions = rx(&mut vi, 1000, &m);
    assert_eq!(logs(&actions), ["(VI_1) received lower priority (100) advert from 10.200.0.2 - discarding"]);
    // The timer is not refreshed: takeover at the startup deadline.
    assert_eq!(vi.next_deadline(), Some(at(3414)));
    vi.poll(at(3414));
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn nopreempt_keeps_listening_to_a_lower_master() {
    let mut cfg = ka_v2();
    cfg.initial_master = false;
    cfg.nopreempt = true;
    let (mut vi, _) = started(cfg, 0);
    let m = advert_from(&ka_v2(), "10.200.0.2", 100);
    for t in (1000..=20_000).step_by(1000) {
        assert!(rx(&mut vi, t, &m).is_empty());
        vi.poll(at(t));
        assert_eq!(vi.state(), State::Backup);
    }
    // It takes over 3.414 s after the lower master stops.
    assert_eq!(vi.next_deadline(), Some(at(23_414)));
    vi.poll(at(23_414));
    assert_eq!(vi.state(), State::Master);
    // nopreempt with `state MASTER` is reset with keepalived's warning.
    let mut cfg = ka_v2();
    cfg.nopreempt = true;
    let (vi, actions) = started(cfg, 0);
    assert!(!vi.config().nopreempt);
    assert_eq!(
        logs(&actions)[0],
        "(VI_1) nopreempt is incompatible with initial state MASTER or priority 255 - resetting"
    );
}

#[test]
fn preempt_delay_tolerates_a_lower_master_for_a_while() {
    let mut cfg = ka_v2();
    cfg.initial_master = false;
    cfg.preempt_delay_ms = 5000;
    let (mut vi, _) = started(cfg, 0);
    let m = advert_from(&ka_v2(), "10.200.0.2", 100);
    let actions = rx(&mut vi, 1000, &m);
    assert_eq!(logs(&actions), ["(VI_1) start preempt delay (5.000000)"]);
    for t in (2000..=5000).step_by(1000) {
        assert!(rx(&mut vi, t, &m).is_empty(), "accepted during the delay");
        assert_eq!(vi.next_deadline(), Some(at(t + 3414)));
    }
    // From the end of the delay the lower adverts are discarded; takeover one master-down interval
    // after the last accepted one, at about delay + interval.
    let actions = rx(&mut vi, 6000, &m);
    assert_eq!(logs(&actions), ["(VI_1) received lower priority (100) advert from 10.200.0.2 - discarding"]);
    vi.poll(at(8413));
    assert_eq!(vi.state(), State::Backup);
    vi.poll(at(8414));
    assert_eq!(vi.state(), State::Master);
    // A higher advert during the delay stops it.
    let mut cfg = ka_v2();
    cfg.initial_master = false;
    cfg.preempt_delay_ms = 5000;
    let (mut vi, _) = started(cfg, 0);
    rx(&mut vi, 1000, &m);
    let actions = rx(&mut vi, 2000, &advert_from(&ka_v2(), "10.200.0.2", 200));
    assert_eq!(logs(&actions), ["(VI_1) stop preempt delay"]);
}

#[test]
fn master_answers_a_lower_priority_advert_with_an_advert_and_garp_bursts() {
    let (mut vi, t) = master(ka_v2());
    let now = t + 6000; // after the takeover's own second burst
    vi.poll(at(now));
    let actions = rx(&mut vi, now, &advert_from(&ka_v2(), "10.200.0.2", 100));
    assert_eq!(
        logs(&actions),
        ["(VI_1) Received advert from 10.200.0.2 with lower priority 100, ours 150, forcing new election"]
    );
    assert_eq!(sent_priorities(&actions), [150]);
    assert_eq!(actions.last(), Some(&Action::Garp { rounds: 5 }));
    assert_eq!(vi.state(), State::Master);
    // The advert timer restarts from the answer; a second burst 5 s later.
    assert_eq!(vi.next_deadline(), Some(at(now + 1000)));
    let later: Vec<(u64, Action)> =
        (now + 1..=now + 5000).flat_map(|t| vi.poll(at(t)).into_iter().map(move |a| (t, a))).collect();
    let garps: Vec<(u64, u32)> = later
        .iter()
        .filter_map(|(t, a)| if let Action::Garp { rounds } = a { Some((*t - now, *rounds)) } else { None })
        .collect();
    assert_eq!(garps, [(5000, 5)]);
    // lower_prio_no_advert: no answer, no timer restart, still the GARP burst.
    let mut cfg = ka_v2();
    cfg.lower_prio_no_advert = true;
    let (mut vi, t) = master(cfg);
    let actions = rx(&mut vi, t + 300, &advert_from(&ka_v2(), "10.200.0.2", 100));
    assert!(sends(&actions).is_empty());
    assert_eq!(logs(&actions), ["(VI_1) Received advert from 10.200.0.2 with lower priority 100, ours 150"]);
    assert!(actions.contains(&Action::Garp { rounds: 5 }));
    assert_eq!(vi.next_deadline(), Some(at(t + 1000)));
}

#[test]
fn master_yields_to_higher_priority_at_once() {
    let (mut vi, t) = master(ka_v2());
    let actions = rx(&mut vi, t + 500, &advert_from(&ka_v2(), "10.200.0.2", 200));
    assert_eq!(
        actions,
        [
            Action::Log(
                "(VI_1) Master received advert from 10.200.0.2 with higher priority 200, ours 150".into()
            ),
            Action::Transition { from: State::Master, to: State::Backup },
            Action::Log("(VI_1) Entering BACKUP STATE".into()),
            Action::ReleaseVips,
            Action::Log("(VI_1) removing VIPs.".into()),
        ]
    );
    assert_eq!(vi.next_deadline(), Some(at(t + 500 + 3414)));
    assert_eq!(vi.master(), Some(ip("10.200.0.2")));
    // higher_prio_send_advert: one advert first.
    let mut cfg = ka_v2();
    cfg.higher_prio_send_advert = true;
    let (mut vi, t) = master(cfg);
    let actions = rx(&mut vi, t + 500, &advert_from(&ka_v2(), "10.200.0.2", 200));
    assert!(matches!(actions[0], Action::Send { .. }));
    assert_eq!(vi.state(), State::Backup);
}

#[test]
fn equal_priority_ties_break_on_the_source_address() {
    let cfg = ka_eq("10.200.0.2");
    // A higher address wins.
    let (mut vi, t) = master(cfg.clone());
    let actions = rx(&mut vi, t + 10, &advert_from(&cfg, "10.200.0.3", 100));
    assert_eq!(
        logs(&actions)[0],
        "(VI_EQ) Master received advert from 10.200.0.3 with same priority 100 but higher IP address than ours"
    );
    assert_eq!(vi.state(), State::Backup);
    // A lower address loses: we answer and stay.
    let (mut vi, t) = master(cfg.clone());
    let actions = rx(&mut vi, t + 10, &advert_from(&cfg, "10.200.0.1", 100));
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(vi.state(), State::Master);
    // Our own address: a warning, nothing else.
    let (mut vi, t) = master(cfg.clone());
    let actions = rx(&mut vi, t + 10, &advert_from(&cfg, "10.200.0.2", 100));
    assert_eq!(
        logs(&actions),
        ["(VI_EQ) WARNING - equal priority advert received from remote host with our IP address."]
    );
    assert_eq!(vi.state(), State::Master);
    // Addresses compare as unsigned numbers: 10.200.0.10 > 10.200.0.9.
    let cfg9 = ka_eq("10.200.0.9");
    let (mut vi, t) = master(cfg9.clone());
    rx(&mut vi, t + 10, &advert_from(&cfg9, "10.200.0.10", 100));
    assert_eq!(vi.state(), State::Backup);
}

#[test]
fn two_owners_is_a_configuration_error() {
    let mut cfg = ka_v2();
    cfg.priority = 255;
    let (mut vi, _) = started(cfg.clone(), 0);
    let actions = rx(&mut vi, 100, &advert_from(&cfg, "10.200.0.2", 255));
    assert!(logs(&actions).contains(
        &"(VI_1) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority"
    ));
    assert_eq!(vi.effective_priority(), 254);
    assert_eq!(vi.state(), State::Backup);
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let (mut vi, t) = master(ka_v2());
    let actions = rx(&mut vi, t + 300, &advert_from(&ka_v2(), "10.200.0.2", 0));
    assert_eq!(sent_priorities(&actions), [150]);
    assert_eq!(logs(&actions), ["(VI_1) Master received priority 0 message"]);
    assert_eq!(vi.state(), State::Master);
    assert_eq!(vi.next_deadline(), Some(at(t + 1300)));
}

#[test]
fn master_advert_timer_restarts_on_any_message_for_its_vrid() {
    // As the v2 capture shows (frames 155-168): each invalid advert moves the next advert to 1 s
    // after it; other VRIDs do not.
    let (mut vi, t) = master(ka_v2());
    let mut bad = advert_from(&ka_v2(), "10.200.0.2", 200);
    bad.ttl = 64;
    rx(&mut vi, t + 700, &bad);
    assert_eq!(vi.next_deadline(), Some(at(t + 1700)));
    let mut other = ka_v2();
    other.vrid = 52;
    rx(&mut vi, t + 900, &advert_from(&other, "10.200.0.2", 200));
    assert_eq!(vi.next_deadline(), Some(at(t + 1700)));
    assert_eq!(vi.counters().dropped(DropReason::OtherVrid), 1);
}

#[test]
fn v2_interval_mismatch_is_dropped() {
    let (mut vi, _) = started(ka_v2(), 0);
    let mut peer = ka_v2();
    peer.advert_int_cs = 200;
    let actions = rx(&mut vi, 1000, &advert_from(&peer, "10.200.0.2", 200));
    assert_eq!(logs(&actions), ["(VI_1) advertisement interval mismatch mine=1 sec rcv'd=2 sec"]);
    assert_eq!(vi.next_deadline(), Some(at(3414)), "the timer is not refreshed");
    assert_eq!(vi.counters().dropped(DropReason::Interval), 1);
}

#[test]
fn receive_checks_run_in_keepalived_order() {
    let (mut vi, _) = started(ka_v2(), 0);
    let good = advert_from(&ka_v2(), "10.200.0.2", 200);
    let check = |vi: &mut Instance, m: &IpMessage, reason: DropReason, log: Option<&str>| {
        let before = vi.counters().dropped(reason);
        let actions = vi.receive(at(10), &m.received());
        assert_eq!(logs(&actions), log.into_iter().collect::<Vec<_>>(), "{reason:?}");
        assert_eq!(vi.counters().dropped(reason), before + 1, "{reason:?}");
    };
    // TTL 64 and a wrong password: the TTL is checked first.
    let mut m = good.clone();
    m.ttl = 64;
    m.payload[16] ^= 0xff;
    check(&mut vi, &m, DropReason::Ttl, Some("(VI_1) invalid TTL/HL. Received 64 and expect 255"));
    // A length that does not match the count comes before everything else.
    let mut m = good.clone();
    m.payload[3] = 3;
    m.ttl = 1;
    check(&mut vi, &m, DropReason::Length, Some("(VI_1) vrrp packet too short, length 24 and expect 28"));
    let mut m = good.clone();
    m.payload[4] = 7;
    check(&mut vi, &m, DropReason::AuthType, Some("(VI_1) Invalid auth type: 7"));
    let mut m = good.clone();
    m.payload[0] = 0x22;
    check(&mut vi, &m, DropReason::Type, Some("(VI_1) Invalid packet type. 2 and expect 1"));
    let mut m = good.clone();
    m.payload[8] ^= 1;
    check(&mut vi, &m, DropReason::Checksum, Some("(VI_1) Invalid VRRPv2 checksum"));
    let mut m = good.clone();
    m.ip_payload_len += 4;
    m.payload.extend([0; 4]);
    check(&mut vi, &m, DropReason::Length, Some("(VI_1) vrrp packet too long, length 28 and expect 24"));
    let mut m = good.clone();
    m.ip_payload_len -= 1;
    let actions = vi.receive(at(10), &m.received());
    assert_eq!(logs(&actions), ["(VI_1) vrrp packet too short, length 23 and expect 24"]);
    let mut m = good.clone();
    m.dst = ip("10.200.0.1");
    check(
        &mut vi,
        &m,
        DropReason::Cast,
        Some("(VI_1) Expected multicast packet but received unicast packet"),
    );
    let mut m = good.clone();
    m.protocol = 51;
    check(&mut vi, &m, DropReason::AuthHeader, Some("(VI_1) Received AH header but auth type not AH"));
    let mut m = good.clone();
    m.protocol = 17;
    check(&mut vi, &m, DropReason::NotVrrp, None);
    check(
        &mut vi,
        &IpMessage { payload: vec![0x21, 51, 1], ip_payload_len: 3, ..good.clone() },
        DropReason::Truncated,
        None,
    );
    let mut m = good.clone();
    m.src = ip("fe80::1");
    m.dst = ip("ff02::12");
    check(&mut vi, &m, DropReason::Family, None);
    // Nothing is processed after shutdown.
    vi.shutdown(at(20));
    let actions = vi.receive(at(30), &good.received());
    assert!(actions.is_empty());
    assert_eq!(vi.counters().dropped(DropReason::NotListening), 1);
    assert_eq!(vi.counters().received, 13);
}

#[test]
fn skip_check_adv_addr_trusts_the_current_master() {
    let mut cfg = ka_v2();
    cfg.skip_check_adv_addr = true;
    let (mut vi, _) = started(cfg, 0);
    let m = advert_from(&ka_v2(), "10.200.0.2", 200);
    rx(&mut vi, 1000, &m);
    // The same master with a different VIP list is accepted; another sender is checked.
    let mut other_vips = ka_v2();
    other_vips.vips = vec![ip("10.200.0.100"), ip("10.200.0.102")];
    assert!(rx(&mut vi, 2000, &advert_from(&other_vips, "10.200.0.2", 200)).is_empty());
    assert_eq!(vi.next_deadline(), Some(at(5414)));
    let actions = rx(&mut vi, 2500, &advert_from(&other_vips, "10.200.0.3", 200));
    assert_eq!(
        logs(&actions),
        ["(VI_1) ip address associated with VRID 51 not present in MASTER advert : 10.200.0.101"]
    );
}

#[test]
fn fault_in_and_out() {
    let (mut vi, t) = master(ka_v2());
    let actions = vi.set_fault(at(t + 100), true);
    assert_eq!(actions[0], Action::Transition { from: State::Master, to: State::Fault });
    assert_eq!(actions[1], Action::Log("(VI_1) Entering FAULT STATE".into()));
    assert_eq!(sent_priorities(&actions), [0]);
    assert!(actions.contains(&Action::ReleaseVips));
    // No adverts, nothing received.
    assert!(vi.poll(at(t + 10_000)).is_empty());
    assert!(rx(&mut vi, t + 10_000, &advert_from(&ka_v2(), "10.200.0.2", 200)).is_empty());
    assert_eq!(vi.counters().dropped(DropReason::NotListening), 1);
    // Fault cleared: BACKUP with a full master-down interval.
    let actions = vi.set_fault(at(t + 20_000), false);
    assert_eq!(
        actions,
        [
            Action::Transition { from: State::Fault, to: State::Backup },
            Action::Log("(VI_1) Entering BACKUP STATE".into())
        ]
    );
    assert_eq!(vi.next_deadline(), Some(at(t + 23_414)));
    // A BACKUP goes to FAULT silently; a fault set before start starts in FAULT.
    vi.set_fault(at(t + 21_000), true);
    assert_eq!(vi.state(), State::Fault);
    let mut vi = Instance::new(ka_v2()).expect("config");
    vi.set_fault(at(0), true);
    let actions = vi.start(at(0));
    assert_eq!(actions[0], Action::Transition { from: State::Init, to: State::Fault });
    assert!(sends(&actions).is_empty());
}

#[test]
fn priority_delta_is_clamped_and_moves_the_down_timer() {
    let (mut vi, _) = started(ka_v2(), 0);
    let actions = vi.set_priority_delta(at(100), -50);
    assert_eq!(logs(&actions), ["(VI_1) Changing effective priority from 150 to 100"]);
    // Master-down 3414 → 3609 ms: the pending timer moves by 195 ms.
    assert_eq!(vi.next_deadline(), Some(at(3609)));
    vi.set_priority_delta(at(100), -500);
    assert_eq!(vi.effective_priority(), 1);
    vi.set_priority_delta(at(100), 500);
    assert_eq!(vi.effective_priority(), 254);
    assert!(vi.set_priority_delta(at(100), 500).is_empty());
    // An owner keeps 255.
    let mut cfg = ka_v2();
    cfg.priority = 255;
    let (mut vi, _) = started(cfg, 0);
    assert!(vi.set_priority_delta(at(100), -10).is_empty());
    assert_eq!(vi.effective_priority(), 255);
    // A MASTER advertises the new priority.
    let (mut vi, t) = master(ka_v2());
    vi.set_priority_delta(at(t + 10), 20);
    assert_eq!(sent_priorities(&vi.poll(at(t + 1000))), [170]);
}

#[test]
fn shutdown_sends_priority_zero_only_from_master() {
    let (mut vi, t) = master(ka_v2());
    let actions = vi.shutdown(at(t + 10));
    assert_eq!(sent_priorities(&actions), [0]);
    assert_eq!(sends(&actions)[0].1[6..8], [0x59, 0xf2]);
    assert_eq!(logs(&actions), ["(VI_1) sent 0 priority", "(VI_1) removing VIPs."]);
    assert_eq!(actions.last(), Some(&Action::Transition { from: State::Master, to: State::Stop }));
    assert_eq!(vi.next_deadline(), None);
    assert!(vi.shutdown(at(t + 20)).is_empty());
    assert_eq!(vi.counters().priority_zero_sent, 1);
    let (mut vi, _) = started(ka_v2(), 0);
    let actions = vi.shutdown(at(10));
    assert_eq!(actions, [Action::Transition { from: State::Backup, to: State::Stop }]);
}

#[test]
fn unicast_sends_one_advert_per_peer_with_its_pseudo_header() {
    let mut cfg = ka_v3();
    cfg.unicast_peers = vec![ip("10.200.0.2"), ip("10.200.0.3")];
    let (mut vi, t) = master(cfg.clone());
    let actions = vi.poll(at(t + 500));
    let sent = sends(&actions);
    assert_eq!(sent.iter().map(|(d, _)| *d).collect::<Vec<_>>(), [ip("10.200.0.2"), ip("10.200.0.3")]);
    for (dst, bytes) in &sent {
        let packet = Packet::new_checked(*bytes).expect("header");
        assert!(Repr::parse(&packet, ip("10.200.0.1"), *dst).is_ok(), "pseudo-header with {dst}");
        assert!(Repr::parse(&packet, ip("10.200.0.1"), ip("224.0.0.18")).is_err());
    }
    assert_ne!(sent[0].1, sent[1].1);
    assert_eq!(vi.counters().adverts_sent, 2, "one advert per interval, two copies each");
    // A unicast instance ignores multicast adverts and checks the sender when asked.
    cfg.check_unicast_src = true;
    let (mut vi, _) = started(cfg.clone(), 0);
    let actions = rx(&mut vi, 10, &advert_from(&cfg, "10.200.0.2", 200));
    assert_eq!(logs(&actions), ["(VI_3) Expected unicast packet but received multicast packet"]);
    let mut m = advert_from(&cfg, "10.200.0.9", 200);
    let repr = Repr::parse(&Packet::new_checked(m.payload.as_slice()).expect("h"), m.src, m.dst).expect("ok");
    m = message(&repr, ip("10.200.0.9"), ip("10.200.0.1"));
    let actions = rx(&mut vi, 20, &m);
    assert_eq!(logs(&actions), ["(VI_3) unicast source address 10.200.0.9 not a unicast peer"]);
    // Unicast ignores the TTL (keepalived checks it only for multicast).
    let mut m = message(&repr, ip("10.200.0.2"), ip("10.200.0.1"));
    m.ttl = 3;
    assert!(rx(&mut vi, 30, &m).is_empty());
    assert_eq!(vi.master(), Some(ip("10.200.0.2")));
}

#[test]
fn garp_refresh_while_master() {
    let mut cfg = ka_v2();
    cfg.garp_master_delay_ms = 0;
    cfg.garp_master_refresh_ms = 10_000;
    cfg.garp_master_refresh_repeat = 2;
    let (mut vi, t) = master(cfg);
    let garps: Vec<u64> = (t + 1..t + 25_000)
        .flat_map(|now| vi.poll(at(now)).into_iter().map(move |a| (now, a)))
        .filter_map(|(now, a)| matches!(a, Action::Garp { rounds: 2 }).then_some(now - t))
        .collect();
    // Checked when adverts go out: the first advert after 10 s, then 10 s after that.
    assert_eq!(garps, [11_000, 22_000]);
}

#[test]
fn config_checks_name_the_instance_and_the_problem() {
    let err = |f: &dyn Fn(&mut InstanceConfig)| {
        let mut cfg = ka_v2();
        f(&mut cfg);
        Instance::new(cfg).expect_err("invalid").message().to_string()
    };
    assert_eq!(err(&|c| c.vrid = 0), "(VI_1) the virtual router id must be set (1 to 255)");
    assert_eq!(err(&|c| c.priority = 0), "(VI_1) priority must be from 1 to 255");
    assert_eq!(
        err(&|c| c.advert_int_cs = 0),
        "(VI_1) VRRPv2 advert_int must be whole seconds from 1 to 255, not 0"
    );
    assert_eq!(
        err(&|c| {
            c.version = Version::V3;
            c.advert_int_cs = 4096
        }),
        "(VI_1) VRRPv3 advert_int must be from 0.01 to 40.95 seconds, not 40.96"
    );
    assert_eq!(
        err(&|c| c.vips.push(ip("fd00::1"))),
        "(VI_1) VIP fd00::1 is not of the address family of the source 10.200.0.1"
    );
    assert_eq!(
        err(&|c| c.auth = Auth::Ah),
        "(VI_1) IPSEC AH authentication is not supported - use PASS or none"
    );
    assert_eq!(err(&|c| c.down_timer_adverts = 0), "(VI_1) down_timer_adverts must be from 1 to 100, not 0");
    assert_eq!(err(&|c| c.src = ip("0.0.0.0")), "(VI_1) the advert source address must be set");
    assert_eq!(
        err(&|c| {
            c.src = ip("fe80::1");
            c.vips = vec![ip("fd00::1")];
            c.mcast_group = ip("ff02::12")
        }),
        "(VI_1) VRRPv2 cannot be used with IPv6 - use version 3"
    );
    assert_eq!(
        err(&|c| c.unicast_peers = vec![ip("fe80::2")]),
        "(VI_1) unicast peer fe80::2 is not of the address family of the source 10.200.0.1"
    );
    assert_eq!(
        err(&|c| c.vips = (0..256).map(|i| IpAddr::from([10, 0, (i / 256) as u8, i as u8])).collect()),
        "(VI_1) 256 VIPs configured, an advert carries at most 255"
    );
    assert_eq!(
        err(&|c| c.mcast_group = ip("10.0.0.1")),
        "(VI_1) 10.0.0.1 is not a multicast group of the source's family"
    );
    assert_eq!(err(&|c| c.name.clear()), "the VRRP instance name must not be empty");
    // v3 with IPv6 VIPs is chosen by new(); an IPv6 v3 instance needs a VIP.
    let cfg = InstanceConfig::new("VI_6", 1, vec![], ip("fe80::1"));
    assert_eq!(cfg.version, Version::V3);
    assert_eq!(
        cfg.validate().expect_err("no vip").message(),
        "(VI_6) No VIP specified; at least one is required with VRRPv3"
    );
    // Warnings: auth with v3 is ignored; preempt_delay with nopreempt is reset; no VIP with v2.
    let mut cfg = ka_v3();
    cfg.auth = Auth::pass("x");
    cfg.nopreempt = true;
    cfg.preempt_delay_ms = 1000;
    let (vi, actions) = started(cfg, 0);
    assert_eq!(vi.config().auth, Auth::None);
    assert_eq!(vi.config().preempt_delay_ms, 0);
    assert_eq!(
        logs(&actions)[..2],
        [
            "(VI_3) authentication is not supported with VRRPv3 - ignoring",
            "(VI_3) preempt_delay is incompatible with initial state MASTER or nopreempt - resetting"
        ]
    );
    let (_, actions) = started(InstanceConfig::new("VI_0", 9, vec![], ip("10.0.0.1")), 0);
    assert_eq!(logs(&actions)[0], "(VI_0) No VIP specified; at least one is sensible");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x5652_5250);
    let seeds: Vec<IpMessage> = vec![
        advert_from(&ka_v2(), "10.200.0.2", 200),
        advert_from(&ka_v3(), "10.200.0.2", 200),
        advert_from(&ka_v6(), "fe80::2", 200),
    ];
    let mut instances: Vec<Instance> = [ka_v2(), ka_v3(), ka_v6(), ka_uc()]
        .into_iter()
        .map(|c| {
            let mut vi = Instance::new(c).expect("config");
            vi.start(at(0));
            vi
        })
        .collect();
    let mut now = 0;
    for round in 0..20_000 {
        let mut m = seeds[round % seeds.len()].clone();
        match rng.below(4) {
            0 => {
                let len = rng.below(80) as usize;
                m.payload = (0..len).map(|_| rng.next_u64() as u8).collect();
            }
            1 => {
                for _ in 0..=rng.below(4) {
                    let i = rng.below(m.payload.len() as u32) as usize;
                    m.payload[i] = rng.next_u64() as u8;
                }
            }
            2 => m.payload.truncate(rng.below(m.payload.len() as u32 + 1) as usize),
            _ => m.payload[1] = [51, 52, 53, 55][rng.below(4) as usize],
        }
        if rng.below(3) == 0 {
            m.ip_payload_len = rng.below(100) as usize;
        } else {
            m.ip_payload_len = m.payload.len();
        }
        m.ttl = if rng.below(4) == 0 { rng.next_u64() as u8 } else { 255 };
        if let Ok(packet) = Packet::new_checked(m.payload.as_slice()) {
            for alen in [4, 16] {
                let _ = (packet.expected_len(alen), packet.addr(rng.below(300) as usize, alen));
            }
            let _ = (packet.auth_data(), packet.adver_int_cs(), packet.verify_checksum(&m.src, &m.dst));
            if let Ok(repr) = Repr::parse(&packet, m.src, m.dst) {
                let bytes = repr.to_bytes(m.src, m.dst);
                let again =
                    Repr::parse(&Packet::new_checked(bytes.as_slice()).expect("header"), m.src, m.dst);
                assert_eq!(again, Ok(repr), "whatever parses re-emits and re-parses");
            }
        }
        now += u64::from(rng.below(700));
        for vi in &mut instances {
            vi.receive(at(now), &m.received());
            vi.poll(at(now));
        }
    }
    let total: u64 = instances.iter().map(|vi| vi.counters().received).sum();
    assert_eq!(total, 80_000);
}
