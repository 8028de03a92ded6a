//! Destination hashing (`ip_vs_dh.c`): a 256-bucket table filled with the servers in list order,
//! indexed by a hash of the packet's destination address. Weights only decide availability.

use super::hash::{addr_fold, hash_32};
use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `IP_VS_DH_TAB_BITS`.
const TAB_BITS: u32 = 8;
/// `IP_VS_DH_TAB_SIZE`.
const TAB_SIZE: usize = 1 << TAB_BITS;

/// `dh`.
#[derive(Debug)]
pub struct DestHash {
    buckets: [Option<DestId>; TAB_SIZE],
}

impl Default for DestHash {
    fn default() -> Self {
        DestHash { buckets: [None; TAB_SIZE] }
    }
}

impl DestHash {
    /// `ip_vs_dh_reassign`: bucket `i` gets the `i mod n`-th server of the list.
    fn reassign(&mut self, dests: DestList<'_>) {
        let n = dests.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if n == 0 { None } else { Some(dests.id(i % n)) };
        }
    }
}

impl Scheduler for DestHash {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn dests_changed(&mut self, dests: DestList<'_>, change: DestChange) -> Result<()> {
        // The kernel has no upd_dest hook for dh: edits never move buckets.
        match change {
            DestChange::Init | DestChange::Add(_) | DestChange::Del { .. } => self.reassign(dests),
            DestChange::Update(_) => {}
        }
        Ok(())
    }

    fn schedule(
        &mut self,
        dests: DestList<'_>,
        flow: &PacketMeta,
        _ctx: &mut SchedCtx<'_>,
    ) -> Option<DestId> {
        let id = self.buckets[hash_32(addr_fold(&flow.daddr), TAB_BITS) as usize]?;
        let d = dests.get(id)?;
        // No fallback: a dead, quiesced or overloaded server means "no destination".
        (d.available && d.weight > 0 && !d.overloaded).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn to(dst: &str) -> PacketMeta {
        flow("1.1.1.1", 1000, dst)
    }

    #[test]
    fn buckets_cycle_through_the_list_ignoring_weights() {
        let mut fx = Fixture::default();
        let mut s = DestHash::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 5);
        // List order is c, b, a (newest first): bucket i -> list[i % 3].
        assert_eq!(&s.buckets[..7], &[Some(c), Some(b), Some(a), Some(c), Some(b), Some(a), Some(c)]);
        assert_eq!(s.buckets[255], Some(c), "255 % 3 == 0");
        // Deleting b re-deals every bucket over the list (c, a).
        fx.del(&mut s, b);
        assert_eq!(&s.buckets[..4], &[Some(c), Some(a), Some(c), Some(a)]);
    }

    #[test]
    fn picks_by_destination_address() {
        let mut fx = Fixture::default();
        let mut s = DestHash::default();
        fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 2);
        fx.add(&mut s, "10.0.0.3", 1);
        // hash_32(0x0a000001, 8) = 0x27 = 39 -> 39 % 3 = 0 -> c (list head).
        assert_eq!(fx.pick_addr(&mut s, &to("10.0.0.1")), "10.0.0.3");
        // hash_32(0xc0a80101, 8) = 0x88 = 136 -> 136 % 3 = 1 -> b.
        assert_eq!(fx.pick_addr(&mut s, &to("192.168.1.1")), "10.0.0.2");
        // The source does not matter.
        let f = flow("9.9.9.9", 5, "192.168.1.1");
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.2");
        // Same destination, same server, every time.
        for _ in 0..5 {
            assert_eq!(fx.pick_addr(&mut s, &to("192.168.1.1")), "10.0.0.2");
        }
    }

    #[test]
    fn no_fallback_when_the_bucket_is_unusable() {
        let mut fx = Fixture::default();
        let mut s = DestHash::default();
        fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // List b, a: 192.168.1.1 -> bucket 136 -> 136 % 2 = 0 -> b.
        assert_eq!(fx.pick_addr(&mut s, &to("192.168.1.1")), "10.0.0.2");
        fx.edit(&mut s, b, |d| d.weight = 0);
        assert_eq!(fx.pick_addr(&mut s, &to("192.168.1.1")), "-");
        fx.edit(&mut s, b, |d| d.weight = 1);
        fx.dest(b).overloaded = true;
        assert_eq!(fx.pick_addr(&mut s, &to("192.168.1.1")), "-");
        fx.dest(b).overloaded = false;
        // Bucket 39 -> 39 % 2 = 1 -> a.
        assert_eq!(fx.pick_addr(&mut s, &to("10.0.0.1")), "10.0.0.1");
    }

    #[test]
    fn ipv6_destinations_fold_before_hashing() {
        let mut fx = Fixture::default();
        let mut s = DestHash::default();
        fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 1);
        fx.add(&mut s, "10.0.0.3", 1);
        // 2001:db8::1 folds to 0x20010db8 ^ 1 = 0x20010db9; hash_32(.., 8) = 63; 63 % 3 = 0 -> head.
        let f = PacketMeta { daddr: "2001:db8::1".parse().unwrap(), ..to("1.1.1.1") };
        assert_eq!(hash_32(0x2001_0db9, 8), 63);
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.3");
        // 2001:db8::2 folds to 0x20010dba; hash_32(.., 8) = 160; 160 % 3 = 1 -> middle.
        let f = PacketMeta { daddr: "2001:db8::2".parse().unwrap(), ..to("1.1.1.1") };
        assert_eq!(fx.pick_addr(&mut s, &f), "10.0.0.2");
    }

    #[test]
    fn empty_service_has_no_destination() {
        let mut fx = Fixture::default();
        let mut s = DestHash::default();
        assert_eq!(fx.pick_addr(&mut s, &to("10.0.0.1")), "-");
        let a = fx.add(&mut s, "10.0.0.1", 1);
        fx.del(&mut s, a);
        assert!(s.buckets.iter().all(Option::is_none));
        assert_eq!(fx.pick_addr(&mut s, &to("10.0.0.1")), "-");
    }
}
