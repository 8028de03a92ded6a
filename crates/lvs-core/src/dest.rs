//! Real servers at run time: configuration plus the counters schedulers read, kept in an arena
//! so connections and scheduler tables can name them by [`DestId`] (a stale id never resolves).

use crate::model::{DestConfig, FwdMethod, ServiceKey, TunnelConfig};
use crate::stats::Stats;
use crate::time::Instant;
use std::net::IpAddr;

/// Names a real server in a [`DestArena`]; ids of freed servers never resolve again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestId {
    index: u32,
    generation: u32,
}

impl DestId {
    /// The arena slot (stable while the server exists), for tables indexed by server.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// A real server of a service (`struct ip_vs_dest`).
///
/// `repr(C)` with the fields the schedulers and the packet path read first: together with the
/// arena slot's generation they fill the slot's first (64-byte aligned) cache line, so a scheduler
/// scanning the list touches one line per server; the statistics and the rest follow.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Dest {
    /// Current weight; 0 quiesces.
    pub weight: i32,
    /// Connections in an active state (TCP ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK; SCTP ESTABLISHED).
    pub activeconns: u32,
    /// All non-template connections (the kernel's `totalconns`).
    pub totalconns: u32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = three quarters of the upper one).
    pub l_threshold: u32,
    /// Persistence templates pointing here.
    pub persistconns: u32,
    /// Connections and templates referring to it (a deleted server lives on while > 0).
    pub(crate) refs: u32,
    /// Port (0 for "the packet's port" on fwmark services).
    pub port: u16,
    /// `IP_VS_DEST_F_OVERLOAD`: no new connections while set.
    pub overloaded: bool,
    /// `IP_VS_DEST_F_AVAILABLE`: on its service's list (cleared when deleted).
    pub available: bool,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Address.
    pub addr: IpAddr,
    /// Tunnel parameters.
    pub tunnel: TunnelConfig,
    /// The latest non-zero weight set by an edit (or the weight it was added with); mh uses it.
    pub last_weight: i32,
    /// The service it belongs (or, in the trash, belonged) to.
    pub service: ServiceKey,
    /// When it went to the trash, or last lost its final reference there.
    pub(crate) idle_since: Option<Instant>,
    /// Traffic statistics.
    pub stats: Stats,
}

impl Dest {
    /// A server for `service` from its configuration (port already resolved).
    pub fn new(service: ServiceKey, cfg: &DestConfig, port: u16) -> Dest {
        Dest {
            service,
            addr: cfg.addr,
            port,
            fwd: cfg.fwd,
            tunnel: cfg.tunnel,
            weight: cfg.weight,
            last_weight: cfg.weight,
            u_threshold: cfg.u_threshold,
            l_threshold: cfg.l_threshold,
            overloaded: false,
            available: true,
            activeconns: 0,
            totalconns: 0,
            persistconns: 0,
            stats: Stats::default(),
            refs: 0,
            idle_since: None,
        }
    }

    /// InActConn as Linux 6.12 reports it: `max(totalconns - activeconns, 0)`.
    #[inline]
    pub fn inactconns(&self) -> u32 {
        self.totalconns.saturating_sub(self.activeconns)
    }

    /// `ip_vs_dest_conn_overhead` of Linux 6.12: `(activeconns << 8) + totalconns`.
    /// (Linux 6.1 and older use `inactconns` in place of `totalconns`.)
    #[inline]
    pub fn overhead(&self) -> i64 {
        ((self.activeconns as i64) << 8) + self.totalconns as i64
    }

    /// The connection count below which OVERLOAD clears: `-y`, or `u - u/4` when unset.
    pub fn l_threshold_val(&self) -> u32 {
        if self.l_threshold != 0 {
            self.l_threshold
        } else {
            self.u_threshold - (self.u_threshold >> 2)
        }
    }

    /// A connection was bound to this server: counts it and sets OVERLOAD at the upper threshold.
    pub fn bind_conn(&mut self) {
        self.totalconns += 1;
        if self.u_threshold != 0 && self.totalconns == self.u_threshold {
            self.overloaded = true;
        }
    }

    /// A connection was unbound: clears OVERLOAD when the count falls below the lower threshold.
    pub fn unbind_conn(&mut self) {
        let before = self.totalconns;
        self.totalconns = before.saturating_sub(1);
        if self.u_threshold != 0 && before == self.l_threshold_val() {
            self.overloaded = false;
        }
    }

    /// Re-evaluates OVERLOAD after the thresholds were changed (`__ip_vs_dest_update_overload`).
    pub fn thresholds_changed(&mut self) {
        if self.u_threshold == 0 {
            self.overloaded = false;
        } else if self.totalconns >= self.u_threshold {
            self.overloaded = true;
        } else if self.totalconns < self.l_threshold_val() {
            self.overloaded = false;
        }
    }
}

/// Storage for every real server, including deleted ones still referenced by connections.
#[derive(Debug, Default, Clone)]
pub struct DestArena {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// One arena slot, cache-line aligned so the generation and the server's hot fields share a line.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Slot {
    generation: u32,
    /// False once freed (`dest` then keeps the last server's contents, unreachable, until the
    /// slot is reused). A flag rather than `Option<Dest>`, whose tag would sit outside the hot line.
    live: bool,
    dest: Dest,
}

impl DestArena {
    /// Stores a server and returns its id.
    pub fn insert(&mut self, dest: Dest) -> DestId {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.live = true;
            slot.dest = dest;
            DestId { index, generation: slot.generation }
        } else {
            self.slots.push(Slot { generation: 0, live: true, dest });
            DestId { index: (self.slots.len() - 1) as u32, generation: 0 }
        }
    }

    /// Frees a server; its id stops resolving.
    pub fn remove(&mut self, id: DestId) -> Option<Dest> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation || !slot.live {
            return None;
        }
        slot.live = false;
        self.free.push(id.index);
        Some(slot.dest.clone())
    }

    /// The server, if the id is current.
    #[inline]
    pub fn get(&self, id: DestId) -> Option<&Dest> {
        let slot = self.slots.get(id.index())?;
        (slot.generation == id.generation && slot.live).then_some(&slot.dest)
    }

    /// A server named by a service list, whose ids are current by construction (a listed server
    /// is never freed): only the slot's liveness is checked in release builds, which keeps the
    /// schedulers' list scans short.
    #[inline]
    pub(crate) fn listed(&self, id: DestId) -> &Dest {
        let slot = &self.slots[id.index()];
        debug_assert_eq!(slot.generation, id.generation, "service list names a stale id");
        debug_assert!(slot.live, "service list names a live server");
        &slot.dest
    }

    /// The server, mutably, if the id is current.
    #[inline]
    pub fn get_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        let slot = self.slots.get_mut(id.index())?;
        (slot.generation == id.generation && slot.live).then_some(&mut slot.dest)
    }

    /// Number of stored servers.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every stored server with its id.
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &Dest)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.live.then_some((DestId { index: i as u32, generation: s.generation }, &s.dest))
        })
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn hot_fields_share_the_slots_first_line() {
        assert_eq!(std::mem::align_of::<Slot>(), 64);
        let hot_end = std::mem::offset_of!(Dest, tunnel) + std::mem::size_of::<TunnelConfig>();
        assert!(std::mem::offset_of!(Slot, dest) + hot_end <= 64, "{hot_end}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn dest(u: u32, l: u32) -> Dest {
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
        let mut cfg = DestConfig::new("10.0.0.2".parse().unwrap());
        cfg.u_threshold = u;
        cfg.l_threshold = l;
        Dest::new(key, &cfg, 80)
    }

    #[test]
    fn overload_sets_at_upper_and_clears_below_three_quarters() {
        let mut d = dest(8, 0);
        assert_eq!(d.l_threshold_val(), 6);
        for _ in 0..7 {
            d.bind_conn();
        }
        assert!(!d.overloaded);
        d.bind_conn();
        assert!(d.overloaded, "set when totalconns reaches 8");
        d.unbind_conn(); // 8 -> 7
        d.unbind_conn(); // 7 -> 6
        assert!(d.overloaded, "still set at 6");
        d.unbind_conn(); // leaves 6: below l_threshold_val
        assert!(!d.overloaded);
    }

    #[test]
    fn explicit_lower_threshold_and_edits() {
        let mut d = dest(4, 2);
        for _ in 0..4 {
            d.bind_conn();
        }
        assert!(d.overloaded);
        d.unbind_conn();
        d.unbind_conn();
        assert!(d.overloaded, "count 2 is not below l=2 yet");
        d.unbind_conn();
        assert!(!d.overloaded);
        // Raising the upper threshold above the count leaves the flag alone unless below l.
        d.u_threshold = 1;
        d.thresholds_changed();
        assert!(d.overloaded, "1 conn >= u=1");
        d.u_threshold = 0;
        d.thresholds_changed();
        assert!(!d.overloaded);
    }

    #[test]
    fn overhead_is_linux_6_12() {
        let mut d = dest(0, 0);
        d.totalconns = 5;
        d.activeconns = 2;
        assert_eq!(d.overhead(), 2 * 256 + 5);
        assert_eq!(d.inactconns(), 3);
    }

    #[test]
    fn stale_ids_do_not_resolve() {
        let mut a = DestArena::default();
        let id = a.insert(dest(0, 0));
        assert!(a.remove(id).is_some());
        let id2 = a.insert(dest(0, 0));
        assert_eq!(id.index(), id2.index());
        assert!(a.get(id).is_none());
        assert!(a.get(id2).is_some());
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn threshold_edit_between_lower_and_upper_leaves_overload_unchanged() {
        // §3.4 (6.12) recompute on a threshold change: u == 0 → clear; total >= u → set;
        // total < l_val → clear; otherwise (l_val <= total < u) unchanged, in both directions.
        let mut d = dest(4, 0);
        for _ in 0..4 {
            d.bind_conn();
        }
        assert!(d.overloaded);
        d.unbind_conn(); // 4 -> 3: the old count 4 is not l_val 3, the flag stays
        assert!(d.overloaded);
        // Raise -x to 8 with -y 2: 2 <= 3 < 8 → still set (6.1 would have cleared it: new u > old u).
        d.u_threshold = 8;
        d.l_threshold = 2;
        d.thresholds_changed();
        assert!(d.overloaded);
        // Same band, flag clear: 10/4 with 5 connections; -x 6 keeps it clear (4 <= 5 < 6).
        let mut d = dest(10, 4);
        for _ in 0..5 {
            d.bind_conn();
        }
        assert!(!d.overloaded);
        d.u_threshold = 6;
        d.thresholds_changed();
        assert!(!d.overloaded);
        // Reaching the new -x sets it; total >= u on a later edit sets it too.
        d.bind_conn();
        assert!(d.overloaded);
        d.u_threshold = 0;
        d.thresholds_changed();
        assert!(!d.overloaded, "u == 0 clears");
        d.u_threshold = 6;
        d.thresholds_changed();
        assert!(d.overloaded, "total 6 >= u 6 sets");
        d.l_threshold = 0;
        d.u_threshold = 100;
        d.thresholds_changed();
        assert!(!d.overloaded, "total 6 < l_val 75 clears");
    }
}
