//! `vrrp_sync_group`: instances that change state together (keepalived's `vrrp_sync.c`).
//!
//! * A member whose master-down timer expires only *wants* MASTER; the group goes MASTER when every
//!   member wants it (or one already is), so one missing advert stream does not split the group.
//! * One member becoming MASTER takes the others along; one leaving MASTER for BACKUP takes the
//!   other masters back to BACKUP.
//! * One member in FAULT puts every member in FAULT; they return to BACKUP together when no member
//!   has a fault left.

use super::{Action, Instance, Received, State};
use crate::error::Error;
use crate::time::Instant;

/// A sync group over several [`Instance`]s. Every method returns `(member index, action)` pairs in
/// order.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    name: String,
    members: Vec<Instance>,
    faulted: bool,
}

impl SyncGroup {
    /// A group over instances not started yet. Fails when there are none or a name repeats.
    ///
    /// ```
    /// use lvs_core::time::Instant;
    /// use lvs_core::vrrp::{Instance, InstanceConfig, State, SyncGroup};
    /// let member = |name: &str, vrid: u8, vip: &str| {
    ///     Instance::new(InstanceConfig::new(name, vrid, vec![vip.parse().unwrap()], "10.0.0.1".parse().unwrap())).unwrap()
    /// };
    /// let mut group = SyncGroup::new("G1", vec![member("VI_1", 1, "10.0.0.100"), member("VI_2", 2, "10.0.0.101")]).unwrap();
    /// group.start(Instant::ZERO);
    /// group.set_fault(Instant::from_secs(1), 0, true);
    /// assert_eq!(group.members()[1].state(), State::Fault);
    /// ```
    pub fn new(name: impl Into<String>, members: Vec<Instance>) -> Result<SyncGroup, Error> {
        let name = name.into();
        if members.is_empty() {
            return Err(Error::invalid(format!("Sync group {name} has no virtual router(s)")));
        }
        for (i, m) in members.iter().enumerate() {
            if m.state() != State::Init {
                return Err(Error::invalid(format!(
                    "Sync group {name}: instance {} is already running",
                    m.config().name
                )));
            }
            if members[..i].iter().any(|o| o.config().name == m.config().name) {
                return Err(Error::invalid(format!(
                    "Sync group {name}: instance {} is listed twice",
                    m.config().name
                )));
            }
        }
        let mut members = members;
        for m in &mut members {
            m.set_sync_gated(true);
        }
        Ok(SyncGroup { name, members, faulted: false })
    }

    /// The group name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The members, in the order given.
    pub fn members(&self) -> &[Instance] {
        &self.members
    }
    /// The index of the member called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.config().name == name)
    }

    /// Starts every member.
    pub fn start(&mut self, now: Instant) -> Vec<(usize, Action)> {
        self.each(now, |m, now| m.start(now))
    }

    /// Hands a received message to member `index` (nothing happens for an unknown index).
    pub fn receive(&mut self, now: Instant, index: usize, rx: &Received<'_>) -> Vec<(usize, Action)> {
        self.one(now, index, |m, now| m.receive(now, rx))
    }

    /// Runs every member's timers.
    pub fn poll(&mut self, now: Instant) -> Vec<(usize, Action)> {
        self.each(now, |m, now| m.poll(now))
    }

    /// The earliest deadline of any member.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members.iter().filter_map(Instance::next_deadline).min()
    }

    /// Sets member `index`'s tracking delta (keepalived applies weights to sync-group members only
    /// with `sync_group_tracking_weight`; the caller decides).
    pub fn set_priority_delta(&mut self, now: Instant, index: usize, delta: i32) -> Vec<(usize, Action)> {
        self.one(now, index, |m, now| m.set_priority_delta(now, delta))
    }

    /// Sets or clears member `index`'s own fault; the group follows.
    pub fn set_fault(&mut self, now: Instant, index: usize, fault: bool) -> Vec<(usize, Action)> {
        self.one(now, index, |m, now| m.set_fault(now, fault))
    }

    /// Stops every member (masters send priority 0 first).
    pub fn shutdown(&mut self, now: Instant) -> Vec<(usize, Action)> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            out.extend(m.shutdown(now).into_iter().map(|a| (i, a)));
        }
        out
    }

    fn one(
        &mut self,
        now: Instant,
        index: usize,
        f: impl FnOnce(&mut Instance, Instant) -> Vec<Action>,
    ) -> Vec<(usize, Action)> {
        let Some(m) = self.members.get_mut(index) else {
            return Vec::new();
        };
        let mut out: Vec<(usize, Action)> = f(m, now).into_iter().map(|a| (index, a)).collect();
        self.settle(now, &mut out);
        out
    }

    fn each(
        &mut self,
        now: Instant,
        mut f: impl FnMut(&mut Instance, Instant) -> Vec<Action>,
    ) -> Vec<(usize, Action)> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let mut step: Vec<(usize, Action)> =
                f(&mut self.members[i], now).into_iter().map(|a| (i, a)).collect();
            self.settle(now, &mut step);
            out.append(&mut step);
        }
        out
    }

    /// Brings the members into agreement after the actions in `out` (appending what that takes).
    /// One pass is enough: forced moves only go to the state the group is moving to.
    fn settle(&mut self, now: Instant, out: &mut Vec<(usize, Action)>) {
        self.settle_faults(now, out);
        let to_backup = out.iter().find_map(|(i, a)| match a {
            Action::Transition { from: State::Master, to: State::Backup } => Some(*i),
            _ => None,
        });
        let to_master = out.iter().find_map(|(i, a)| match a {
            Action::Transition { to: State::Master, .. } => Some(*i),
            _ => None,
        });
        if let Some(i) = to_backup {
            self.sync_to(now, i, State::Backup, out);
        } else if let Some(i) = to_master {
            self.sync_to(now, i, State::Master, out);
        } else if !self.faulted && self.members.iter().all(|m| m.state() == State::Backup && m.wants_master())
        {
            self.group_log("Syncing instances to MASTER state", 0, out);
            for (i, m) in self.members.iter_mut().enumerate() {
                out.extend(m.force_master(now).into_iter().map(|a| (i, a)));
            }
        }
    }

    /// Moves every member that is not yet in `to` (from the state that leads there) and logs once.
    fn sync_to(&mut self, now: Instant, origin: usize, to: State, out: &mut Vec<(usize, Action)>) {
        if self.faulted {
            return;
        }
        let lagging = self.members.iter().enumerate().any(|(i, m)| {
            i != origin
                && match to {
                    State::Master => m.state() == State::Backup,
                    _ => m.state() == State::Master,
                }
        });
        if !lagging {
            return;
        }
        self.group_log(&format!("Syncing instances to {} state", to.name()), origin, out);
        for (i, m) in self.members.iter_mut().enumerate() {
            if i == origin {
                continue;
            }
            let actions = match to {
                State::Master => m.force_master(now),
                _ => m.force_backup(now),
            };
            out.extend(actions.into_iter().map(|a| (i, a)));
        }
    }

    fn settle_faults(&mut self, now: Instant, out: &mut Vec<(usize, Action)>) {
        let origin = self.members.iter().position(Instance::own_fault);
        match origin {
            Some(origin) if !self.faulted => {
                self.faulted = true;
                self.group_log("Syncing instances to FAULT state", origin, out);
                for (i, m) in self.members.iter_mut().enumerate() {
                    out.extend(m.set_group_fault(now, true).into_iter().map(|a| (i, a)));
                }
            }
            None if self.faulted => {
                self.faulted = false;
                for (i, m) in self.members.iter_mut().enumerate() {
                    out.extend(m.set_group_fault(now, false).into_iter().map(|a| (i, a)));
                }
            }
            _ => {}
        }
    }

    fn group_log(&self, text: &str, index: usize, out: &mut Vec<(usize, Action)>) {
        out.push((index, Action::Log(format!("VRRP_Group({}) {text}", self.name))));
    }
}
