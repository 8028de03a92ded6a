//! Source hashing (`ip_vs_sh.c`): a 256-bucket table tiled with the servers in list order, each
//! taking `max(weight, 1)` consecutive buckets per round, indexed by a hash of the source address
//! (and port, with `sh-port`). With `sh-fallback` an unusable server's flows probe other buckets.

use super::hash::{addr_fold, hash_32};
use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::{Dest, DestId};
use crate::error::Result;
use crate::model::svc_flags;

/// `CONFIG_IP_VS_SH_TAB_BITS` (Kconfig default).
const TAB_BITS: u32 = 8;
/// `IP_VS_SH_TAB_SIZE`.
const TAB_SIZE: usize = 1 << TAB_BITS;
/// `IP_VS_SH_TAB_MASK`.
const TAB_MASK: u32 = TAB_SIZE as u32 - 1;

/// `IP_VS_SVC_F_SCHED_SH_FALLBACK`.
const SH_FALLBACK: u32 = svc_flags::SCHED1;
/// `IP_VS_SVC_F_SCHED_SH_PORT`.
const SH_PORT: u32 = svc_flags::SCHED2;

/// `sh`.
#[derive(Debug)]
pub struct SourceHash {
    buckets: [Option<DestId>; TAB_SIZE],
}

impl Default for SourceHash {
    fn default() -> Self {
        SourceHash { buckets: [None; TAB_SIZE] }
    }
}

/// The port the hashing schedulers mix in: the source port of TCP, UDP and SCTP packets, else 0.
#[inline]
pub(super) fn flow_port(flow: &PacketMeta) -> u16 {
    match flow.protocol {
        6 | 17 | 132 => flow.sport,
        _ => 0,
    }
}

/// `is_unavailable` of sh (and mh): quiesced or OVERLOADed. AVAILABLE is not looked at.
#[inline]
pub(super) fn unavailable(d: &Dest) -> bool {
    d.weight <= 0 || d.overloaded
}

/// `ip_vs_sh_hashkey`: `(offset + hash_32(port + addr, 8)) & 255`, all in `u32` arithmetic.
#[inline]
fn hashkey(fold: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold), TAB_BITS)) & TAB_MASK) as usize
}

impl SourceHash {
    /// `ip_vs_sh_reassign`: walk the list, giving each server `max(weight, 1)` buckets in a row.
    fn reassign(&mut self, dests: DestList<'_>) {
        let n = dests.len();
        if n == 0 {
            self.buckets = [None; TAB_SIZE];
            return;
        }
        let (mut pos, mut count) = (0usize, 0i32);
        for b in self.buckets.iter_mut() {
            *b = Some(dests.id(pos));
            count += 1;
            if count >= dests.at(pos).weight {
                pos = (pos + 1) % n;
                count = 0;
            }
        }
    }

    /// The server in a bucket if it can take the connection; `Err(())` when the bucket is empty.
    #[inline]
    fn usable(&self, dests: &DestList<'_>, bucket: usize) -> std::result::Result<Option<DestId>, ()> {
        let id = self.buckets[bucket].ok_or(())?;
        Ok(dests.get(id).filter(|d| !unavailable(d)).map(|_| id))
    }
}

impl Scheduler for SourceHash {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn dests_changed(&mut self, dests: DestList<'_>, _change: DestChange) -> Result<()> {
        // Rebuilt on init, add, delete and edit alike.
        self.reassign(dests);
        Ok(())
    }

    fn schedule(&mut self, dests: DestList<'_>, flow: &PacketMeta, ctx: &mut SchedCtx<'_>) -> Option<DestId> {
        let port = if ctx.svc_flags & SH_PORT != 0 { flow_port(flow) } else { 0 };
        let fold = addr_fold(&flow.saddr);
        let ihash = hashkey(fold, port, 0);
        let first = self.usable(&dests, ihash).ok()?;
        if first.is_some() || ctx.svc_flags & SH_FALLBACK == 0 {
            return first;
        }
        // The kernel's fallback passes `(offset + ihash) % size` as the *offset* of a new hashkey,
        // so probing starts at bucket 2*ihash (mod 256), not at ihash + 1.
        for offset in 0..TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % TAB_SIZE as u32;
            match self.usable(&dests, hashkey(fold, port, roffset)) {
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
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn from(src: &str, sport: u16) -> PacketMeta {
        flow(src, sport, "10.0.0.100")
    }

    #[test]
    fn buckets_are_tiled_by_weight_in_list_order() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        // List b(2), a(1): b b a b b a ...
        assert_eq!(&s.buckets[..6], &[Some(b), Some(b), Some(a), Some(b), Some(b), Some(a)]);
        assert_eq!(s.buckets[255], Some(b), "255 % 3 == 0");
        assert_eq!(s.buckets.iter().filter(|&&x| x == Some(a)).count(), 85);
        assert_eq!(s.buckets.iter().filter(|&&x| x == Some(b)).count(), 171);
        // A third server with weight 0 still takes one bucket per round: c b b a c b b a ...
        let c = fx.add(&mut s, "10.0.0.3", 0);
        assert_eq!(&s.buckets[..5], &[Some(c), Some(b), Some(b), Some(a), Some(c)]);
        // Editing a weight rebuilds the table: a at weight 3 -> c b b a a a c ...
        fx.edit(&mut s, a, |d| d.weight = 3);
        assert_eq!(&s.buckets[3..7], &[Some(a), Some(a), Some(a), Some(c)]);
        // So does deleting.
        fx.del(&mut s, b);
        assert_eq!(&s.buckets[..5], &[Some(c), Some(a), Some(a), Some(a), Some(c)]);
    }

    /// Three servers of weight 1 (list c, b, a): bucket i holds list[i % 3].
    fn three(fx: &mut Fixture, s: &mut SourceHash) -> [DestId; 3] {
        let a = fx.add(s, "10.0.0.1", 1);
        let b = fx.add(s, "10.0.0.2", 1);
        let c = fx.add(s, "10.0.0.3", 1);
        [a, b, c]
    }

    #[test]
    fn picks_by_source_address_only_by_default() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        three(&mut fx, &mut s);
        // hash_32(0x01020304, 8) = 52; 52 % 3 = 1 -> b, whatever the port.
        for port in [1000, 1001, 1002, 1003] {
            assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", port)), "10.0.0.2");
        }
    }

    #[test]
    fn sh_port_mixes_in_the_source_port() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        three(&mut fx, &mut s);
        fx.svc_flags = SH_PORT;
        // hash_32(0x01020304 + port, 8): 1000 -> 43 (b), 1001 -> 141 (c), 1002 -> 239 (a).
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1000)), "10.0.0.2");
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1001)), "10.0.0.3");
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1002)), "10.0.0.1");
        // Protocols without ports hash port 0.
        let icmp = PacketMeta { protocol: 1, ..from("1.2.3.4", 1001) };
        assert_eq!(fx.pick_addr(&mut s, &icmp), "10.0.0.2");
    }

    #[test]
    fn without_fallback_an_unusable_server_means_no_destination() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        let [_a, b, _c] = three(&mut fx, &mut s);
        fx.dest(b).overloaded = true;
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "-");
        fx.dest(b).overloaded = false;
        fx.edit(&mut s, b, |d| d.weight = 0);
        // Weight 0 keeps its bucket (one per round), but is skipped.
        assert_eq!(s.buckets[52], Some(b));
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "-");
    }

    #[test]
    fn sh_fallback_probes_from_twice_the_hash() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        let [a, b, c] = three(&mut fx, &mut s);
        fx.svc_flags = SH_FALLBACK;
        // 172.16.0.4: ihash = 159, 159 % 3 = 0 -> c.
        let f = from("172.16.0.4", 1);
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.3");
        fx.dest(c).overloaded = true;
        // Probing starts at bucket (2 * 159) % 256 = 62 -> a (62 % 3 = 2); a naive ihash + 1 would
        // have given bucket 160 -> b.
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.1");
        // With a quiesced too: 62 (a), 63 (c), 64 -> b.
        fx.edit(&mut s, a, |d| d.weight = 0);
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.2");
        // Nothing usable: the probe loop ends after one lap.
        fx.dest(b).overloaded = true;
        assert_eq!(fx.pick_addr(&mut s, &f), "-");
        // A usable first choice is taken directly.
        assert_eq!(s.buckets[52], Some(b));
        fx.dest(b).overloaded = false;
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "10.0.0.2");
    }

    #[test]
    fn fallback_with_port_uses_the_port_in_every_probe() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        let [_a, b, _c] = three(&mut fx, &mut s);
        fx.svc_flags = SH_FALLBACK | SH_PORT;
        // 1.2.3.4:1000 -> ihash 43 -> b; quiesce b: first probe is bucket 86 -> 86 % 3 = 2 -> a.
        fx.dest(b).overloaded = true;
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1000)), "10.0.0.1");
    }

    #[test]
    fn empty_service_has_no_destination() {
        let mut fx = Fixture::default();
        let mut s = SourceHash::default();
        fx.svc_flags = SH_FALLBACK;
        assert_eq!(fx.pick_addr(&mut s, &from("1.2.3.4", 1)), "-");
    }
}
