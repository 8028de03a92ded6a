//! Locality-based least-connection with replication (`ip_vs_lblcr.c`): like lblc, but each
//! destination address maps to a *set* of servers. The set grows by a wlc pick when its least
//! loaded member is overloaded, and sheds its most loaded member (one per call) once it has not
//! changed for `lblcr_expiration`.

use super::lblc::{is_overloaded, wlc_pick, Cache};
use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::{Dest, DestId};
use crate::error::Result;
use crate::time::Instant;

/// `struct ip_vs_dest_set`: members newest first, and when it last changed.
#[derive(Debug)]
struct DestSet {
    members: Vec<DestId>,
    lastmod: Instant,
}

/// `ip_vs_dest_conn_overhead` as the kernel's `int`.
#[inline]
fn overhead(d: &Dest) -> i64 {
    d.overhead() as i32 as i64
}

impl DestSet {
    fn new(id: DestId, now: Instant) -> DestSet {
        DestSet { members: vec![id], lastmod: now }
    }

    /// `ip_vs_dest_set_insert(.., check = true)`: at the head, unless already a member.
    fn insert(&mut self, id: DestId, now: Instant) {
        if !self.members.contains(&id) {
            self.members.insert(0, id);
            self.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_erase`.
    fn erase(&mut self, id: DestId, now: Instant) {
        if let Some(pos) = self.members.iter().position(|&m| m == id) {
            self.members.remove(pos);
            self.lastmod = now;
        }
    }

    /// Members still stored (a kernel set pins its servers; ours may have been freed, and those
    /// are passed over as gone).
    fn resolved<'a>(&'a self, dests: &'a DestList<'_>) -> impl Iterator<Item = (DestId, &'a Dest)> + 'a {
        self.members.iter().filter_map(move |&id| dests.get(id).map(|d| (id, d)))
    }

    /// `ip_vs_dest_set_min`: weighted least-loaded member. The first member that is not
    /// OVERLOADed, has weight > 0 and is AVAILABLE starts; later ones must be not OVERLOADed and
    /// AVAILABLE and strictly less loaded.
    fn min(&self, dests: &DestList<'_>) -> Option<DestId> {
        let mut it = self.resolved(dests);
        let (mut least_id, mut least) =
            it.by_ref().find(|(_, d)| !d.overloaded && d.weight > 0 && d.available)?;
        let mut loh = overhead(least);
        for (id, d) in it {
            if d.overloaded {
                continue;
            }
            let doh = overhead(d);
            if loh * i64::from(d.weight) > doh * i64::from(least.weight) && d.available {
                (least_id, least, loh) = (id, d, doh);
            }
        }
        Some(least_id)
    }

    /// `ip_vs_dest_set_max`: weighted most-loaded member with weight > 0 (OVERLOAD and
    /// availability are not looked at).
    fn max(&self, dests: &DestList<'_>) -> Option<DestId> {
        let mut it = self.resolved(dests);
        let (mut most_id, mut most) = it.by_ref().find(|(_, d)| d.weight > 0)?;
        let mut moh = overhead(most);
        for (id, d) in it {
            let doh = overhead(d);
            if moh * i64::from(d.weight) < doh * i64::from(most.weight) && d.weight > 0 {
                (most_id, most, moh) = (id, d, doh);
            }
        }
        Some(most_id)
    }
}

/// `lblcr`.
#[derive(Debug, Default)]
pub struct Lblcr {
    cache: Cache<DestSet>,
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn dests_changed(&mut self, _dests: DestList<'_>, change: DestChange) -> Result<()> {
        if change == DestChange::Init {
            self.cache = Cache::default();
        }
        Ok(())
    }

    fn schedule(&mut self, dests: DestList<'_>, flow: &PacketMeta, ctx: &mut SchedCtx<'_>) -> Option<DestId> {
        let now = ctx.now;
        let expiration = ctx.tunables.lblcr_expiration;
        self.cache.arm(now);
        self.cache.expiration = expiration;
        if let Some(en) = self.cache.get_mut(&flow.daddr) {
            en.lastuse = now;
            // The least loaded member is chosen before the set is trimmed, so it may be the very
            // member trimmed below (the kernel returns it all the same).
            let least = en.val.min(&dests);
            if en.val.members.len() > 1 && now > en.val.lastmod + expiration {
                if let Some(m) = en.val.max(&dests) {
                    en.val.erase(m, now);
                }
            }
            if let Some(id) = least {
                if dests.get(id).is_some_and(|d| !is_overloaded(d, &dests)) {
                    return Some(id);
                }
            }
            let id = wlc_pick(&dests)?;
            en.val.insert(id, now);
            return Some(id);
        }
        let id = wlc_pick(&dests)?;
        self.cache.insert(flow.daddr, DestSet::new(id, now), now);
        Some(id)
    }

    fn tick(&mut self, _dests: DestList<'_>, now: Instant) {
        self.cache.tick(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;
    use std::time::Duration;

    fn to(dst: &str) -> PacketMeta {
        flow("1.1.1.1", 1000, dst)
    }

    fn members(s: &mut Lblcr, dst: &str) -> Vec<DestId> {
        s.cache.get_mut(&dst.parse().unwrap()).map(|e| e.val.members.clone()).unwrap_or_default()
    }

    fn load(fx: &mut Fixture, id: DestId, active: u32, total: u32) {
        fx.dest(id).activeconns = active;
        fx.dest(id).totalconns = total;
    }

    #[test]
    fn same_destination_same_server_while_not_overloaded() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 2);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), Some(b));
        load(&mut fx, b, 2, 2);
        assert_eq!(fx.pick(&mut s, &to("192.168.0.2")), Some(a), "a miss goes wlc");
        for _ in 0..3 {
            assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), Some(b));
        }
        assert_eq!(members(&mut s, "192.168.0.1"), [b]);
    }

    #[test]
    fn set_grows_when_its_best_member_is_overloaded() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 2);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 2);
        let d = to("192.168.0.1");
        assert_eq!(fx.pick(&mut s, &d), Some(c));
        // c: 3 active > weight 2, and a is idle (0 * 2 < 2): overloaded -> wlc adds b (tie with a,
        // b is earlier in the list).
        load(&mut fx, c, 3, 3);
        fx.now = Instant::from_secs(10);
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        assert_eq!(members(&mut s, "192.168.0.1"), [b, c]);
        // Now the set's least loaded is b.
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        // b overloaded too, a still idle: a joins at the head.
        load(&mut fx, b, 4, 4);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [a, b, c]);
        // A member that is already in the set is not added twice, and lastmod stays.
        let lastmod = s.cache.get_mut(&d.daddr).unwrap().val.lastmod;
        fx.now = Instant::from_secs(20);
        load(&mut fx, a, 3, 3);
        load(&mut fx, b, 0, 0);
        load(&mut fx, c, 0, 0);
        // b and c are idle now, so set_min gives b (the earlier of the tie); nothing is added.
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        assert_eq!(members(&mut s, "192.168.0.1"), [a, b, c]);
        assert_eq!(s.cache.get_mut(&d.daddr).unwrap().val.lastmod, lastmod);
    }

    #[test]
    fn set_min_skips_overloaded_quiesced_and_deleted_members() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        let set = DestSet { members: vec![c, b, a], lastmod: Instant::ZERO };
        assert_eq!(set.min(&fx.list()), Some(c));
        fx.dest(c).overloaded = true;
        assert_eq!(set.min(&fx.list()), Some(b));
        fx.dest(b).weight = 0;
        assert_eq!(set.min(&fx.list()), Some(a));
        fx.dest(b).weight = 1;
        fx.del(&mut s, b);
        assert_eq!(set.min(&fx.list()), Some(a), "b is in the trash, not AVAILABLE");
        // set_max ignores OVERLOAD and availability, only wants weight > 0.
        load(&mut fx, b, 5, 5);
        assert_eq!(set.max(&fx.list()), Some(b));
        fx.dest(b).weight = 0;
        load(&mut fx, c, 1, 1);
        assert_eq!(set.max(&fx.list()), Some(c));
    }

    #[test]
    fn set_sheds_its_most_loaded_member_one_per_call_after_expiration() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 2);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 2);
        fx.tunables.lblcr_expiration = Duration::from_secs(3600);
        let d = to("192.168.0.1");
        // Build the set {a, b, c} at t = 0.
        fx.pick(&mut s, &d);
        load(&mut fx, c, 3, 3);
        fx.pick(&mut s, &d);
        load(&mut fx, b, 3, 3);
        fx.pick(&mut s, &d);
        assert_eq!(members(&mut s, "192.168.0.1"), [a, b, c]);
        // Loads: a 1 active, b 3, c 5 (c most loaded); none overloaded by the lblc rule now.
        load(&mut fx, a, 1, 1);
        load(&mut fx, b, 2, 3);
        load(&mut fx, c, 2, 5);
        // Exactly lastmod + expiration: not yet (the kernel wants strictly after).
        fx.now = Instant::from_secs(3600);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1").len(), 3);
        // Later: one member (the most loaded, c) goes per call, and lastmod restarts the wait.
        fx.now = Instant::from_millis(3_600_001);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [a, b]);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [a, b], "lastmod was just reset");
        fx.now = Instant::from_millis(2 * 3_600_001 + 1);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [a]);
        // A single member is never shed.
        fx.now = Instant::from_secs(5 * 3600);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [a]);
    }

    #[test]
    fn the_member_returned_may_be_the_one_just_shed() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        fx.tunables.lblcr_expiration = Duration::from_secs(60);
        let d = to("192.168.0.1");
        fx.pick(&mut s, &d);
        load(&mut fx, b, 2, 2);
        fx.pick(&mut s, &d);
        assert_eq!(members(&mut s, "192.168.0.1"), [a, b]);
        // Equal loads: set_min and set_max both settle on the head, a.
        load(&mut fx, a, 0, 0);
        load(&mut fx, b, 0, 0);
        fx.now = Instant::from_secs(61);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [b]);
    }

    #[test]
    fn entries_expire_with_lblcr_expiration_via_tick() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        fx.tunables.lblcr_expiration = Duration::from_secs(20 * 60);
        let d = to("192.168.0.1");
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        load(&mut fx, b, 0, 1);
        // Full checks every 30 runs of the 60 s timer: at 30 min the entry (idle 30 >= 20 min) goes.
        s.tick(fx.list(), Instant::from_secs(29 * 60));
        assert_eq!(s.cache.len(), 1);
        s.tick(fx.list(), Instant::from_secs(30 * 60));
        assert_eq!(s.cache.len(), 0);
        fx.now = Instant::from_secs(30 * 60);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        assert_eq!(members(&mut s, "192.168.0.1"), [a]);
    }

    #[test]
    fn nothing_usable_means_no_destination() {
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), None);
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), Some(b));
        fx.edit(&mut s, b, |d| d.weight = 0);
        fx.dest(a).overloaded = true;
        assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), None);
        assert_eq!(members(&mut s, "192.168.0.1"), [b]);
        // Init starts afresh.
        s.dests_changed(fx.list(), DestChange::Init).unwrap();
        assert_eq!(s.cache.len(), 0);
    }

    #[test]
    fn new_entries_stop_at_one_and_a_half_times_max_size() {
        // §1.15 (6.12.105+): creating an entry is refused at max_size * 3 / 2 entries; the packet
        // is still scheduled (the wlc pick is returned), only not remembered.
        use super::super::lblc::{HARD_CAP, MAX_SIZE};
        assert_eq!(HARD_CAP, 16384 * 3 / 2);
        assert_eq!(MAX_SIZE, 1024 * 16);
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let dst = |i: u32| std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string();
        for i in 0..(HARD_CAP + 10) as u32 {
            assert_eq!(fx.pick(&mut s, &to(&dst(i))), Some(a), "still scheduled");
        }
        assert_eq!(s.cache.len(), HARD_CAP);
        assert_eq!(members(&mut s, &dst(0)), [a]);
        assert!(members(&mut s, &dst(HARD_CAP as u32)).is_empty(), "refused entry");
    }

    #[test]
    fn over_size_tables_shed_idle_entries() {
        // §1.14/§1.15: a timer run (every 60 s) over max_size removes entries idle for
        // ENTRY_TIMEOUT (6 min), goal = min((entries - max_size) * 4 / 3, max_size / 2), scanning
        // whole buckets; recently used entries stay.
        use super::super::lblc::MAX_SIZE;
        let mut fx = Fixture::default();
        let mut s = Lblcr::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let n = MAX_SIZE + 100;
        let dst = |i: usize| std::net::Ipv4Addr::from(0x0b00_0000 + i as u32).to_string();
        for i in 0..n {
            fx.pick(&mut s, &to(&dst(i)));
        }
        assert_eq!(s.cache.len(), n);
        s.tick(fx.list(), Instant::from_secs(60));
        s.tick(fx.list(), Instant::from_secs(300));
        assert_eq!(s.cache.len(), n, "nothing idle for 6 minutes yet");
        // Touch every 50th destination at 359 s; the rest have been idle since 0.
        fx.now = Instant::from_secs(359);
        for i in (0..n).step_by(50) {
            assert_eq!(fx.pick(&mut s, &to(&dst(i))), Some(a));
        }
        s.tick(fx.list(), Instant::from_secs(360));
        let gone = n - s.cache.len();
        let goal = 100 * 4 / 3;
        assert!(gone >= goal, "{gone} removed, goal {goal}");
        assert!(gone < goal + 100, "{gone} removed: whole buckets, not the table");
        assert!(s.cache.len() <= MAX_SIZE);
        for i in (0..n).step_by(50) {
            assert_eq!(members(&mut s, &dst(i)), [a], "recently used entry {i} kept");
        }
    }
}
