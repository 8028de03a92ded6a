//! Locality-based least-connection (`ip_vs_lblc.c`): a cache maps each packet destination address
//! to the server last chosen for it; a miss (or an unusable or overloaded entry) picks a server
//! the wlc way. The cache, its 60 s expiry timer and the wlc pick are shared with lblcr.

use super::hash::{addr_fold, hash_32};
use super::{DestChange, DestList, SchedCtx, SchedTunables, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::{Dest, DestId};
use crate::error::Result;
use crate::time::Instant;
use std::net::IpAddr;
use std::time::Duration;

/// `IP_VS_LBLC_TAB_BITS` / `IP_VS_LBLCR_TAB_BITS`.
const TAB_BITS: u32 = 10;
/// Buckets of the cache.
const TAB_SIZE: usize = 1 << TAB_BITS;
/// `tbl->max_size`: above this many entries the timer collects idle ones.
pub(super) const MAX_SIZE: usize = TAB_SIZE * 16;
/// Linux 6.12.105+ ("ipvs: bound LBLCR and LBLC cache growth"): no new entry at this many.
pub(super) const HARD_CAP: usize = MAX_SIZE * 3 / 2;
/// `CHECK_EXPIRE_INTERVAL`: the period of the expiry timer.
pub(super) const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT`: how idle an entry must be for the over-size collection.
const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `COUNT_FOR_FULL_EXPIRATION`: every 30th timer run (without an over-size run between) is a full
/// expiration check.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// One cache entry: a destination address and what it maps to.
#[derive(Debug)]
pub(super) struct Entry<V> {
    pub(super) addr: IpAddr,
    pub(super) lastuse: Instant,
    pub(super) val: V,
}

/// The 1024-bucket cache of lblc/lblcr (`struct ip_vs_lblc_table`) with its timer state.
#[derive(Debug)]
pub(super) struct Cache<V> {
    buckets: Vec<Vec<Entry<V>>>,
    entries: usize,
    rover: usize,
    counter: u32,
    /// When the expiry timer fires next; `None` until the first time is seen (the bind carries no
    /// clock), at which point it is armed one interval later, as `init_service` does.
    next_check: Option<Instant>,
    /// The expiration sysctl as of the latest scheduling call (the timer has no context).
    pub(super) expiration: Duration,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
            expiration: SchedTunables::default().lblc_expiration,
        }
    }
}

#[inline]
fn bucket_of(addr: &IpAddr) -> usize {
    hash_32(addr_fold(addr), TAB_BITS) as usize
}

impl<V> Cache<V> {
    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
    }

    /// The entry for `addr`.
    pub(super) fn get_mut(&mut self, addr: &IpAddr) -> Option<&mut Entry<V>> {
        self.buckets[bucket_of(addr)].iter_mut().find(|e| e.addr == *addr)
    }

    /// Adds an entry for an address that has none; refused (false) at [`HARD_CAP`] entries.
    pub(super) fn insert(&mut self, addr: IpAddr, val: V, now: Instant) -> bool {
        if self.entries >= HARD_CAP {
            return false;
        }
        self.buckets[bucket_of(&addr)].push(Entry { addr, lastuse: now, val });
        self.entries += 1;
        true
    }

    /// Arms the timer if this is the first time seen.
    #[inline]
    pub(super) fn arm(&mut self, now: Instant) {
        if self.next_check.is_none() {
            self.next_check = Some(now + CHECK_EXPIRE_INTERVAL);
        }
    }

    /// Runs every timer expiry due by `now`, each at its own time, re-arming one interval later.
    pub(super) fn tick(&mut self, now: Instant) {
        let Some(mut due) = self.next_check else {
            self.arm(now);
            return;
        };
        while due <= now {
            if self.entries == 0 {
                // Nothing to expire: only the counter moves (1..=30, reset after a full check).
                let interval = CHECK_EXPIRE_INTERVAL.as_millis() as u64;
                let runs = (now.millis() - due.millis()) / interval + 1;
                let period = u64::from(COUNT_FOR_FULL_EXPIRATION);
                self.counter = ((u64::from(self.counter) - 1 + runs % period) % period) as u32 + 1;
                due = Instant::from_millis(due.millis().saturating_add(runs.saturating_mul(interval)));
                break;
            }
            self.check_expire(due);
            let next = due + CHECK_EXPIRE_INTERVAL;
            if next == due {
                break; // the clock saturated
            }
            due = next;
        }
        self.next_check = Some(due);
    }

    /// `ip_vs_lblc_check_expire` / `ip_vs_lblcr_check_expire`.
    fn check_expire(&mut self, now: Instant) {
        if self.counter % COUNT_FOR_FULL_EXPIRATION == 0 {
            // Full check: drop everything unused for the expiration time. It walks every bucket
            // from rover + 1 round to rover, so rover ends where it started.
            let exp = self.expiration;
            for b in &mut self.buckets {
                let before = b.len();
                b.retain(|e| now < e.lastuse + exp);
                self.entries -= before - b.len();
            }
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        // Over size: drop entries idle for ENTRY_TIMEOUT, bucket by bucket from rover + 1, until
        // the goal is met (whole buckets at a time).
        let mut goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2) as i64;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & (TAB_SIZE - 1);
            let b = &mut self.buckets[j];
            let before = b.len();
            b.retain(|e| now < e.lastuse + ENTRY_TIMEOUT);
            let gone = before - b.len();
            self.entries -= gone;
            goal -= gone as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }
}

/// `ip_vs_dest_conn_overhead` as the kernel's `int` (wrapping like x86 does).
#[inline]
fn overhead(d: &Dest) -> i64 {
    d.overhead() as i32 as i64
}

/// `__ip_vs_lblc_schedule` / `__ip_vs_lblcr_schedule`: weighted least-connection over the list,
/// skipping OVERLOADed servers; the first server with weight > 0 starts, ties keep the earlier.
pub(super) fn wlc_pick(dests: &DestList<'_>) -> Option<DestId> {
    let mut it = dests.iter();
    let (mut least_id, mut least) = it.by_ref().find(|(_, d)| !d.overloaded && d.weight > 0)?;
    let mut loh = overhead(least);
    for (id, d) in it {
        if d.overloaded {
            continue;
        }
        let doh = overhead(d);
        if loh * i64::from(d.weight) > doh * i64::from(least.weight) {
            (least_id, least, loh) = (id, d, doh);
        }
    }
    Some(least_id)
}

/// `is_overloaded` of lblc/lblcr: more active connections than its weight while some server of
/// the service has fewer than half its weight.
pub(super) fn is_overloaded(d: &Dest, dests: &DestList<'_>) -> bool {
    (d.activeconns as i32) > d.weight
        && dests.iter().any(|(_, x)| (x.activeconns as i32).wrapping_mul(2) < x.weight)
}

/// `lblc`.
#[derive(Debug, Default)]
pub struct Lblc {
    cache: Cache<DestId>,
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn dests_changed(&mut self, _dests: DestList<'_>, change: DestChange) -> Result<()> {
        // Only init_service exists in the kernel: a fresh table and timer.
        if change == DestChange::Init {
            self.cache = Cache::default();
        }
        Ok(())
    }

    fn schedule(&mut self, dests: DestList<'_>, flow: &PacketMeta, ctx: &mut SchedCtx<'_>) -> Option<DestId> {
        let now = ctx.now;
        self.cache.arm(now);
        self.cache.expiration = ctx.tunables.lblc_expiration;
        if let Some(en) = self.cache.get_mut(&flow.daddr) {
            en.lastuse = now;
            // The OVERLOAD flag is not looked at here; a deleted (trashed) server is not
            // AVAILABLE, and one no longer stored at all counts as such.
            if let Some(d) = dests.get(en.val) {
                if d.available && d.weight > 0 && !is_overloaded(d, &dests) {
                    return Some(en.val);
                }
            }
        }
        let id = wlc_pick(&dests)?;
        // `ip_vs_lblc_new`: repoint the entry, or create one (lastuse = now) if below the cap.
        match self.cache.get_mut(&flow.daddr) {
            Some(en) => en.val = id,
            None => {
                self.cache.insert(flow.daddr, id, now);
            }
        }
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

    fn to(dst: &str) -> PacketMeta {
        flow("1.1.1.1", 1000, dst)
    }

    fn secs(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn same_destination_sticks_to_its_server() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // All idle: wlc takes the list head (b).
        assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), Some(b));
        fx.dest(b).activeconns = 1;
        fx.dest(b).totalconns = 1;
        // A new destination goes to the less loaded a; the known one stays on b.
        assert_eq!(fx.pick(&mut s, &to("192.168.0.2")), Some(a));
        assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), Some(b));
        fx.dest(a).activeconns = 1;
        fx.dest(a).totalconns = 5;
        for _ in 0..3 {
            assert_eq!(fx.pick(&mut s, &to("192.168.0.1")), Some(b));
            assert_eq!(fx.pick(&mut s, &to("192.168.0.2")), Some(a));
        }
        assert_eq!(s.cache.len(), 2);
    }

    #[test]
    fn re_picks_when_overloaded_by_the_lblc_rule() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        let a = fx.add(&mut s, "10.0.0.1", 4);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let d = to("192.168.0.1");
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        // b: 3 active > weight 2, but a has 2 active: 2 * 2 < 4 is false -> b stays.
        fx.dest(b).activeconns = 3;
        fx.dest(b).totalconns = 3;
        fx.dest(a).activeconns = 2;
        fx.dest(a).totalconns = 2;
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        // With a at 1 active (1 * 2 < 4) b counts as overloaded: re-pick, and the entry follows.
        fx.dest(a).activeconns = 1;
        fx.dest(a).totalconns = 1;
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        fx.dest(b).activeconns = 0;
        assert_eq!(fx.pick(&mut s, &d), Some(a), "the entry now names a");
        assert_eq!(s.cache.len(), 1);
    }

    #[test]
    fn cache_hit_ignores_the_overload_flag_but_not_weight_or_deletion() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let d = to("192.168.0.1");
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        fx.dest(b).overloaded = true;
        assert_eq!(fx.pick(&mut s, &d), Some(b), "OVERLOAD is not checked on a hit");
        // A miss does skip it.
        assert_eq!(fx.pick(&mut s, &to("192.168.0.2")), Some(a));
        fx.dest(b).overloaded = false;
        fx.edit(&mut s, b, |x| x.weight = 0);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        // Back to b by hand, then delete b: its id still resolves (trash) but is not AVAILABLE.
        fx.edit(&mut s, b, |x| x.weight = 1);
        s.cache.get_mut(&d.daddr).unwrap().val = b;
        fx.del(&mut s, b);
        assert_eq!(fx.pick(&mut s, &d), Some(a));
        // Nothing usable at all: no destination, and the entry is kept.
        fx.dest(a).overloaded = true;
        assert_eq!(fx.pick(&mut s, &to("192.168.0.3")), None);
        assert_eq!(s.cache.len(), 2);
    }

    #[test]
    fn wlc_pick_uses_cross_products_and_keeps_the_earlier_on_ties() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        let a = fx.add(&mut s, "10.0.0.1", 3);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        fx.add(&mut s, "10.0.0.3", 0);
        // Overhead b = 256 + 1 = 257 at weight 1; a = 3 * 257 = 771 at weight 3: a tie -> b (earlier).
        fx.dest(b).activeconns = 1;
        fx.dest(b).totalconns = 1;
        fx.dest(a).activeconns = 3;
        fx.dest(a).totalconns = 3;
        assert_eq!(wlc_pick(&fx.list()), Some(b));
        fx.dest(a).totalconns = 2;
        assert_eq!(wlc_pick(&fx.list()), Some(a));
        fx.dest(a).overloaded = true;
        assert_eq!(wlc_pick(&fx.list()), Some(b));
    }

    #[test]
    fn entries_expire_after_lblc_expiration_on_a_full_check() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let d = to("192.168.0.1");
        // Used at t = 0, which also arms the timer: runs at 60 s, 120 s, …; every 30th is full.
        assert_eq!(fx.pick(&mut s, &d), Some(b));
        fx.dest(b).totalconns = 1;
        s.tick(fx.list(), secs(24 * 3600 - 1));
        assert_eq!(s.cache.len(), 1, "not yet a day");
        fx.now = secs(24 * 3600 - 1);
        assert_eq!(fx.pick(&mut s, &d), Some(b), "still cached, though a is less loaded");
        // That use refreshed it: the full check at 24 h keeps it, the one at 48 h drops it.
        s.tick(fx.list(), secs(24 * 3600));
        assert_eq!(s.cache.len(), 1);
        s.tick(fx.list(), secs(48 * 3600));
        assert_eq!(s.cache.len(), 0);
        fx.now = secs(48 * 3600);
        assert_eq!(fx.pick(&mut s, &d), Some(a), "forgotten: wlc picks again");
    }

    #[test]
    fn expiration_comes_from_the_tunable() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        fx.add(&mut s, "10.0.0.1", 1);
        fx.tunables.lblc_expiration = Duration::from_secs(10 * 60);
        fx.pick(&mut s, &to("192.168.0.1"));
        fx.now = secs(25 * 60);
        fx.pick(&mut s, &to("192.168.0.2"));
        // Full check at 30 min: .1 idle 30 min (>= 10) goes, .2 idle 5 min stays.
        s.tick(fx.list(), secs(30 * 60 - 1));
        assert_eq!(s.cache.len(), 2);
        s.tick(fx.list(), secs(30 * 60));
        assert_eq!(s.cache.len(), 1);
        assert!(s.cache.get_mut(&"192.168.0.2".parse().unwrap()).is_some());
        // Only full checks expire by age while the table is small: the next is at 60 min.
        s.tick(fx.list(), secs(59 * 60));
        assert_eq!(s.cache.len(), 1);
        s.tick(fx.list(), secs(60 * 60));
        assert_eq!(s.cache.len(), 0);
    }

    #[test]
    fn over_size_tables_shed_idle_entries_from_the_rover() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        fx.add(&mut s, "10.0.0.1", 1);
        let n = MAX_SIZE + 100;
        for i in 0..n as u32 {
            let dst = std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string();
            fx.pick(&mut s, &to(&dst));
        }
        assert_eq!(s.cache.len(), n);
        // Run at 60 s: over size, but nothing idle for 6 minutes yet; rover goes round once.
        s.tick(fx.list(), secs(60));
        assert_eq!((s.cache.len(), s.cache.rover), (n, 0));
        // Run at 360 s: drop idle entries bucket by bucket from bucket 1 until 133 are gone.
        let sizes: Vec<usize> = s.cache.buckets.iter().map(Vec::len).collect();
        let goal = (100 * 4 / 3) as usize;
        let (mut gone, mut last) = (0, 0);
        for (j, &len) in sizes.iter().enumerate().skip(1) {
            gone += len;
            last = j;
            if gone >= goal {
                break;
            }
        }
        s.tick(fx.list(), secs(300));
        assert_eq!(s.cache.len(), n);
        s.tick(fx.list(), secs(360));
        assert_eq!(s.cache.len(), n - gone);
        assert_eq!(s.cache.rover, last);
        assert!(s.cache.len() <= MAX_SIZE);
    }

    #[test]
    fn new_entries_stop_at_one_and_a_half_times_max_size() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        for i in 0..(HARD_CAP + 10) as u32 {
            let dst = std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string();
            assert_eq!(fx.pick(&mut s, &to(&dst)), Some(a), "still scheduled");
        }
        assert_eq!(s.cache.len(), HARD_CAP);
    }

    #[test]
    fn tick_before_any_traffic_arms_the_timer() {
        let mut fx = Fixture::default();
        let mut s = Lblc::default();
        fx.add(&mut s, "10.0.0.1", 1);
        s.tick(fx.list(), secs(100));
        assert_eq!(s.cache.next_check, Some(secs(160)));
        // A long idle stretch only advances the counter: 3 runs (160, 220, 280 s).
        s.tick(fx.list(), secs(300));
        assert_eq!((s.cache.counter, s.cache.next_check), (4, Some(secs(340))));
        // 30 runs later the counter wrapped through a full check back to 4.
        s.tick(fx.list(), secs(300 + 30 * 60));
        assert_eq!(s.cache.counter, 4);
        // Binding again resets everything.
        s.dests_changed(fx.list(), DestChange::Init).unwrap();
        assert_eq!((s.cache.counter, s.cache.next_check), (1, None));
    }
}
