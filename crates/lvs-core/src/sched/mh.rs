//! Maglev hashing (`ip_vs_mh.c`): a 4093-entry lookup table filled from per-server permutations
//! (Eisenbud et al., NSDI 2016, §3.4), indexed by SipHash-1-3 of the source address (and port,
//! with `mh-port`). Weights come from `last_weight`, so quiescing a server keeps its slots.

use super::hash::{addr_fold, hsiphash_u32, HsipKey};
use super::sh::{flow_port, unavailable};
use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::{Error, Result};
use crate::model::svc_flags;

/// `IP_VS_MH_TAB_SIZE` for the default `CONFIG_IP_VS_MH_TAB_INDEX` 12 (a prime).
const TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2`.
const TAB_BITS: i32 = 6;

/// `generate_hash_secret`: fixed keys, not random.
const HASH1: HsipKey = HsipKey(2654435761, 2654435761);
const HASH2: HsipKey = HsipKey(2654446892, 2654446892);

/// `IP_VS_SVC_F_SCHED_MH_FALLBACK`.
const MH_FALLBACK: u32 = svc_flags::SCHED1;
/// `IP_VS_SVC_F_SCHED_MH_PORT`.
const MH_PORT: u32 = svc_flags::SCHED2;

/// `mh`.
#[derive(Debug, Default)]
pub struct Maglev {
    /// The lookup table; empty until the first rebuild.
    lookup: Vec<Option<DestId>>,
    /// The list changed since the table was built. The table is a function of the list alone, so
    /// building it at the next pick gives the kernel's decisions without rebuilding 4093 slots on
    /// every `-a` of a restore.
    stale: bool,
}

/// `ip_vs_mh_hashkey`: hsiphash of the 4 in-memory bytes of `offset + port + addr` (u32 sums).
#[inline]
fn hashkey(fold: u32, port: u16, key: &HsipKey, offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(fold), key)
}

/// `fls`: 1-based position of the highest set bit, 0 for 0.
fn fls(x: i32) -> i32 {
    32 - (x as u32).leading_zeros() as i32
}

/// `gcd` of `lib/math/gcd.c` for positive numbers.
fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `ip_vs_mh_dest_setup`.
#[derive(Debug, Clone, Copy)]
struct Setup {
    skip: usize,
    perm: usize,
    turns: i32,
}

impl Maglev {
    /// `ip_vs_mh_gcd_weight`, `ip_vs_mh_shift_weight`, `ip_vs_mh_permutate` and `ip_vs_mh_populate`.
    fn reassign(&mut self, dests: DestList<'_>) -> Result<()> {
        if dests.len() > TAB_SIZE {
            return Err(Error::invalid("mh: more real servers than lookup table entries"));
        }
        if self.lookup.len() != TAB_SIZE {
            self.lookup = vec![None; TAB_SIZE];
        }
        let g = dests.iter().map(|(_, d)| d.last_weight).filter(|&w| w > 0).fold(0, |g, w| {
            if g > 0 {
                gcd(w, g)
            } else {
                w
            }
        });
        if g < 1 {
            // No server with a weight: every slot empty.
            self.lookup.fill(None);
            return Ok(());
        }
        let max = dests.iter().map(|(_, d)| d.last_weight).fold(0, i32::max);
        let rshift = (fls(max / g) - TAB_BITS).max(0);

        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|(_, d)| {
                let fold = addr_fold(&d.addr);
                let offset = hashkey(fold, d.port, &HASH1, 0) as usize % TAB_SIZE;
                let skip = hashkey(fold, d.port, &HASH2, 0) as usize % (TAB_SIZE - 1) + 1;
                let lw = d.last_weight;
                let t = (lw / g) >> rshift;
                Setup { skip, perm: offset, turns: if t != 0 { t } else { i32::from(lw != 0) } }
            })
            .collect();

        // Round after round over the list, each server claiming `turns` slots in a row: its next
        // preferred slot not yet taken. Every slot gets written, so no clearing is needed.
        let mut taken = vec![false; TAB_SIZE];
        let mut n = 0;
        'fill: loop {
            for (pos, ds) in setup.iter_mut().enumerate() {
                for _ in 0..ds.turns.max(0) {
                    while taken[ds.perm] {
                        ds.perm += ds.skip;
                        if ds.perm >= TAB_SIZE {
                            ds.perm -= TAB_SIZE;
                        }
                    }
                    taken[ds.perm] = true;
                    self.lookup[ds.perm] = Some(dests.id(pos));
                    n += 1;
                    if n == TAB_SIZE {
                        break 'fill;
                    }
                }
            }
        }
        Ok(())
    }

    /// The server in a slot, if it can take the connection; `Err(())` when the slot is empty.
    #[inline]
    /// The table as the next pick will see it (built now if the list changed).
    #[cfg(test)]
    fn table(&mut self, dests: DestList<'_>) -> &[Option<DestId>] {
        if self.stale {
            self.stale = false;
            let _ = self.reassign(dests);
        }
        &self.lookup
    }

    fn usable(&self, dests: &DestList<'_>, slot: usize) -> std::result::Result<Option<DestId>, ()> {
        let id = self.lookup.get(slot).copied().flatten().ok_or(())?;
        Ok(dests.get(id).filter(|d| !unavailable(d)).map(|_| id))
    }
}

impl Scheduler for Maglev {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn dests_changed(&mut self, dests: DestList<'_>, change: DestChange) -> Result<()> {
        // Only the bind reports an error; on add/del/edit the kernel ignores it (and the table
        // stays as it was). A failing rebuild must find the table current, so near the size
        // limit, where the next add can fail, rebuild at once.
        if change == DestChange::Init || dests.len() >= TAB_SIZE {
            self.stale = false;
            let r = self.reassign(dests);
            return if change == DestChange::Init { r } else { Ok(()) };
        }
        self.stale = true;
        Ok(())
    }

    fn schedule(&mut self, dests: DestList<'_>, flow: &PacketMeta, ctx: &mut SchedCtx<'_>) -> Option<DestId> {
        if self.stale {
            self.stale = false;
            // Cannot fail: the list is below the table size here.
            let _ = self.reassign(dests);
        }
        let port = if ctx.svc_flags & MH_PORT != 0 { flow_port(flow) } else { 0 };
        let fold = addr_fold(&flow.saddr);
        let ihash = hashkey(fold, port, &HASH1, 0) as usize % TAB_SIZE;
        let first = self.usable(&dests, ihash).ok()?;
        if first.is_some() || ctx.svc_flags & MH_FALLBACK == 0 {
            return first;
        }
        // Unlike sh, the probe offset goes inside the hashed value.
        for offset in 0..TAB_SIZE {
            let roffset = ((offset + ihash) % TAB_SIZE) as u32;
            let slot = hashkey(fold, port, &HASH1, roffset) as usize % TAB_SIZE;
            match self.usable(&dests, slot) {
                Err(()) => break,
                Ok(Some(id)) => return Some(id),
                Ok(None) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, svc, Fixture};
    use super::*;
    use crate::dest::Dest;
    use crate::model::DestConfig;

    fn count(s: &mut Maglev, fx: &Fixture, id: DestId) -> usize {
        s.table(fx.list()).iter().filter(|&&x| x == Some(id)).count()
    }

    fn from(src: &str, sport: u16) -> PacketMeta {
        flow(src, sport, "10.0.0.100")
    }

    #[test]
    fn slot_shares_follow_weights() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 3);
        assert!(s.table(fx.list()).iter().all(Option::is_some), "every slot filled");
        for (id, w) in [(a, 1.0), (b, 2.0), (c, 3.0)] {
            let want = TAB_SIZE as f64 * w / 6.0;
            let got = count(&mut s, &fx, id) as f64;
            assert!((got - want).abs() / want < 0.03, "weight {w}: {got} slots, want about {want}");
        }
        // Equal weights share equally (to within the rounding of one turn).
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        let ids: Vec<_> = (1..=4).map(|i| fx.add(&mut s, &format!("10.0.1.{i}"), 5)).collect();
        for id in ids {
            let got = count(&mut s, &fx, id);
            assert!((1022..=1024).contains(&got), "{got}");
        }
    }

    #[test]
    fn big_weights_are_scaled_by_gcd_and_shift() {
        // gcd(100, 300) = 100 -> turns 1 and 3, the same table as weights 1 and 3.
        let build = |w1: i32, w2: i32| {
            let mut fx = Fixture::default();
            let mut s = Maglev::default();
            fx.add(&mut s, "10.0.0.1", w1);
            fx.add(&mut s, "10.0.0.2", w2);
            let addrs: Vec<String> = s
                .table(fx.list())
                .iter()
                .map(|x| fx.arena.get(x.unwrap()).unwrap().addr.to_string())
                .collect();
            addrs
        };
        assert_eq!(build(100, 300), build(1, 3));
        // max/gcd = 1000 has 10 bits -> rshift 4: turns (1 >> 4 = 0, so 1) and 1000 >> 4 = 62.
        assert_eq!(build(1, 1000), build(1, 62));
        assert_ne!(build(1, 1000), build(1, 63));
        assert_eq!(fls(1000), 10);
        assert_eq!(fls(0), 0);
        assert_eq!(fls(1), 1);
    }

    #[test]
    fn removing_a_server_mostly_keeps_the_others_slots() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        let ids: Vec<_> = (1..=5).map(|i| fx.add(&mut s, &format!("10.0.0.{i}"), 1)).collect();
        let before = s.table(fx.list()).to_vec();
        let gone = ids[2];
        fx.del(&mut s, gone);
        let mut moved_other = 0;
        for (old, new) in before.iter().zip(s.table(fx.list())) {
            assert_ne!(*new, Some(gone), "the removed server keeps no slot");
            if *old != Some(gone) && old != new {
                moved_other += 1;
            }
        }
        // Maglev's promise is minimal, not zero, disruption: in this example under 2% of the
        // other servers' slots move (the paper's figure 10 shows the same order of magnitude).
        let others = before.iter().filter(|&&x| x != Some(gone)).count();
        assert!(moved_other * 50 < others, "{moved_other} of {others} moved");
        // The removed server's slots are shared out among the survivors.
        for &id in ids.iter().filter(|&&id| id != gone) {
            assert!(count(&mut s, &fx, id) > 800);
        }
    }

    #[test]
    fn quiesced_server_keeps_its_slots_but_is_skipped() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let before = s.table(fx.list()).to_vec();
        // An edit to weight 0 keeps last_weight, so the table is rebuilt identically.
        fx.edit(&mut s, b, |d| d.weight = 0);
        assert_eq!(s.table(fx.list()), &before[..]);
        // Find a source whose slot is b's.
        let f = (1..=200u8)
            .map(|i| from(&format!("192.168.0.{i}"), 1))
            .find(|f| {
                let i = hashkey(addr_fold(&f.saddr), 0, &HASH1, 0) as usize % TAB_SIZE;
                s.table(fx.list())[i] == Some(b)
            })
            .expect("some source maps to b");
        assert_eq!(fx.pick_addr(&mut s, &f), "-");
        // mh-fallback finds a usable server instead.
        fx.svc_flags = MH_FALLBACK;
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.1");
        fx.svc_flags = 0;
        // A server *added* with weight 0 gets no slots at all.
        let z = fx.add(&mut s, "10.0.0.3", 0);
        assert_eq!(count(&mut s, &fx, z), 0);
        assert_eq!(s.table(fx.list()), &before[..]);
        // Nothing usable: fallback gives up after one lap.
        fx.edit(&mut s, a, |d| d.weight = 0);
        fx.svc_flags = MH_FALLBACK;
        assert_eq!(fx.pick_addr(&mut s, &f), "-");
    }

    #[test]
    fn fallback_rehashes_with_the_offset_inside() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        for i in 1..=3 {
            fx.add(&mut s, &format!("10.0.0.{i}"), 1);
        }
        fx.svc_flags = MH_FALLBACK;
        let f = from("172.16.5.9", 1);
        let fold = addr_fold(&f.saddr);
        let ihash = hashkey(fold, 0, &HASH1, 0) as usize % TAB_SIZE;
        let first = s.table(fx.list())[ihash].unwrap();
        assert_eq!(fx.pick(&mut s, &f), Some(first));
        fx.dest(first).overloaded = true;
        // The kernel's probe sequence, recomputed here: slot of hashkey(addr, port, hash1, ihash+k).
        let want = (0..TAB_SIZE)
            .map(|k| hashkey(fold, 0, &HASH1, ((k + ihash) % TAB_SIZE) as u32) as usize % TAB_SIZE)
            .map(|slot| s.table(fx.list())[slot].unwrap())
            .find(|&id| id != first)
            .unwrap();
        assert_eq!(fx.pick(&mut s, &f), Some(want));
    }

    #[test]
    fn mh_port_mixes_in_the_source_port() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        for i in 1..=4 {
            fx.add(&mut s, &format!("10.0.0.{i}"), 1);
        }
        let picks = |fx: &mut Fixture, s: &mut Maglev| -> Vec<String> {
            (0..32).map(|p| fx.pick_addr(s, &from("1.2.3.4", 1000 + p))).collect()
        };
        let plain = picks(&mut fx, &mut s);
        assert!(plain.iter().all(|a| *a == plain[0]), "without mh-port the port is ignored");
        fx.svc_flags = MH_PORT;
        let ported = picks(&mut fx, &mut s);
        assert!(ported.iter().any(|a| *a != ported[0]), "with mh-port ports spread: {ported:?}");
        // The slot is that of hsiphash(addr + port).
        let fold = addr_fold(&"1.2.3.4".parse().unwrap());
        let slot = hsiphash_u32(fold + 1005, &HASH1) as usize % TAB_SIZE;
        let want = fx.arena.get(s.table(fx.list())[slot].unwrap()).unwrap().addr.to_string();
        assert_eq!(ported[5], want);
    }

    #[test]
    fn golden_hashes_and_table() {
        // Values from a separate implementation (Python: SipHash-1-3 plus the populate loop),
        // whose SipHash reproduces the kernel self-test vectors.
        assert_eq!(hashkey(0x0a00_0001, 0, &HASH1, 0), 0x0308_0ce4);
        assert_eq!(hashkey(0x0a00_0001, 0, &HASH2, 0), 0x48f9_d0c1);
        // Server 10.0.0.1:80: offset 3167, skip 700.
        assert_eq!(hashkey(0x0a00_0001, 80, &HASH1, 0) as usize % TAB_SIZE, 3167);
        assert_eq!(hashkey(0x0a00_0001, 80, &HASH2, 0) as usize % (TAB_SIZE - 1) + 1, 700);

        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 3);
        assert_eq!((count(&mut s, &fx, a), count(&mut s, &fx, b), count(&mut s, &fx, c)), (682, 1364, 2047));
        let head: Vec<_> = s.table(fx.list())[..8].iter().map(|x| x.unwrap()).collect();
        assert_eq!(head, [c, b, b, c, c, c, b, c]);
        for (src, slot, want) in [
            ("1.2.3.4", 2197, "10.0.0.2"),
            ("198.51.100.1", 2374, "10.0.0.3"),
            ("198.51.100.3", 473, "10.0.0.2"),
            ("198.51.100.4", 3853, "10.0.0.1"),
            ("198.51.100.7", 924, "10.0.0.1"),
        ] {
            let f = from(src, 1);
            assert_eq!(hashkey(addr_fold(&f.saddr), 0, &HASH1, 0) as usize % TAB_SIZE, slot, "{src}");
            assert_eq!(fx.pick_addr(&mut s, &f), want, "{src}");
        }
    }

    #[test]
    fn more_servers_than_slots_is_einval_on_bind() {
        let mut fx = Fixture::default();
        for i in 0..=TAB_SIZE as u32 {
            let cfg = DestConfig::new(std::net::IpAddr::V4((0x0a00_0000 + i).into()));
            let id = fx.arena.insert(Dest::new(svc(), &cfg, 80));
            fx.order.insert(0, id);
        }
        let mut s = Maglev::default();
        let err = s.dests_changed(fx.list(), DestChange::Init).unwrap_err();
        assert_eq!(err.code(), crate::error::Code::Invalid);
        // One fewer fits.
        fx.order.remove(0);
        s.dests_changed(fx.list(), DestChange::Init).unwrap();
        assert!(s.table(fx.list()).iter().all(Option::is_some));
        // Growing past the size on add is not reported (the kernel ignores it) and keeps the table.
        let before = s.table(fx.list()).to_vec();
        fx.add(&mut s, "11.0.0.1", 1);
        assert_eq!(s.table(fx.list()), &before[..]);
    }

    #[test]
    fn empty_or_weightless_service_has_no_destination() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "-");
        s.dests_changed(fx.list(), DestChange::Init).unwrap();
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        assert!(s.table(fx.list()).iter().all(Option::is_none));
        fx.svc_flags = MH_FALLBACK;
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "-");
    }

    #[test]
    fn past_the_table_size_the_last_good_table_stays() {
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        s.dests_changed(fx.list(), DestChange::Init).unwrap();
        for i in 0..TAB_SIZE {
            fx.add(&mut s, &format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255), 1);
        }
        let full = s.table(fx.list()).to_vec();
        assert!(full.iter().all(Option::is_some));
        // One server too many: the kernel's rebuild fails and the table stays as it was.
        fx.add(&mut s, "11.0.0.1", 1);
        assert_eq!(s.table(fx.list()), &full[..]);
    }

    #[test]
    fn edit_to_another_weight_rebuilds_with_the_new_last_weight() {
        // §1.13: last_weight = the latest non-zero configured weight, turns come from it, and the
        // table is reassigned on upd_dest: editing b from 1 to 3 gives the table of a service
        // built with weights 1 and 3 from the start.
        let mut fx = Fixture::default();
        let mut s = Maglev::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let before = s.table(fx.list()).to_vec();
        fx.edit(&mut s, b, |d| {
            d.weight = 3;
            d.last_weight = 3;
        });
        let edited = s.table(fx.list()).to_vec();
        assert_ne!(edited, before);
        let mut fresh_fx = Fixture::default();
        let mut fresh = Maglev::default();
        fresh_fx.add(&mut fresh, "10.0.0.1", 1);
        fresh_fx.add(&mut fresh, "10.0.0.2", 3);
        let addrs = |fx: &Fixture, t: &[Option<DestId>]| -> Vec<String> {
            t.iter().map(|x| fx.arena.get(x.unwrap()).unwrap().addr.to_string()).collect()
        };
        assert_eq!(addrs(&fx, &edited), addrs(&fresh_fx, fresh.table(fresh_fx.list())));
        // Turns 1 and 3: b holds about three quarters of the slots.
        let (na, nb) = (count(&mut s, &fx, a), count(&mut s, &fx, b));
        assert_eq!(na + nb, TAB_SIZE);
        assert!((nb as f64 / TAB_SIZE as f64 - 0.75).abs() < 0.03, "{nb} of {TAB_SIZE}");
    }
}
