//! Weighted least connection (`ip_vs_wlc.c`, ipvsadm's default): the usable server with the
//! smallest `overhead / weight`, compared as signed 64-bit cross products.

use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::{Dest, DestId};
use crate::error::Result;

/// `wlc`. Stateless.
#[derive(Debug, Default)]
pub struct WeightedLeastConnection;

/// The kernel's `int` connection overhead (the low 32 bits of ours, as the kernel's wraps).
#[inline]
fn overhead(d: &Dest) -> i32 {
    d.overhead() as i32
}

/// The shared loop of wlc and sed: the first usable server, then any later non-overloaded one whose
/// `loh * weight > doh * least.weight` (so ties keep the earlier entry, and a later weight-0 server
/// can never win).
#[inline]
pub(super) fn least_weighted(dests: &DestList<'_>, cost: impl Fn(&Dest) -> i32) -> Option<DestId> {
    let mut it = dests.iter();
    let (mut least_id, least) = loop {
        let (id, d) = it.next()?;
        if !d.overloaded && d.weight > 0 {
            break (id, d);
        }
    };
    let mut loh = i64::from(cost(least));
    let mut lw = i64::from(least.weight);
    for (id, d) in it {
        if d.overloaded {
            continue;
        }
        let doh = i64::from(cost(d));
        let dw = i64::from(d.weight);
        if loh * dw > doh * lw {
            least_id = id;
            loh = doh;
            lw = dw;
        }
    }
    Some(least_id)
}

impl Scheduler for WeightedLeastConnection {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn dests_changed(&mut self, _dests: DestList<'_>, _change: DestChange) -> Result<()> {
        Ok(())
    }

    fn schedule(
        &mut self,
        dests: DestList<'_>,
        _flow: &PacketMeta,
        _ctx: &mut SchedCtx<'_>,
    ) -> Option<DestId> {
        least_weighted(&dests, overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn pick(fx: &mut Fixture, s: &mut WeightedLeastConnection) -> String {
        fx.pick_addr(s, &flow("1.1.1.1", 1000, "10.0.0.100"))
    }

    #[test]
    fn idle_servers_tie_to_the_newest() {
        let mut fx = Fixture::default();
        let mut s = WeightedLeastConnection;
        for (a, w) in [("10.0.0.1", 5), ("10.0.0.2", 1), ("10.0.0.3", 2)] {
            fx.add(&mut s, a, w);
        }
        // All overheads 0: every cross product is 0, nothing beats the head (.3), whatever the weights.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
    }

    #[test]
    fn overhead_per_weight() {
        let mut fx = Fixture::default();
        let mut s = WeightedLeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 3);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // List 2(w1) 1(w3).
        // .2: 1 active, 1 inactive -> overhead (1<<8) + 2 = 258.
        fx.dest(b).activeconns = 1;
        fx.dest(b).totalconns = 2;
        // .1: 3 active, 3 inactive -> 3*256 + 6 = 774 = 3 * 258: 258*3 > 774*1 is false: tie, .2 stays.
        fx.dest(a).activeconns = 3;
        fx.dest(a).totalconns = 6;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // One inactive connection less on .1: 773 -> 774 > 773: .1 wins.
        fx.dest(a).totalconns = 5;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        // lc would pick .2 here (258 < 773); wlc weighs .1's three times higher capacity.
    }

    #[test]
    fn each_later_server_is_compared_with_the_current_least() {
        let mut fx = Fixture::default();
        let mut s = WeightedLeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 2);
        let b = fx.add(&mut s, "10.0.0.2", 4);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        // List 3(w1, oh 100) 2(w4, oh 300) 1(w2, oh 120).
        fx.dest(c).totalconns = 100;
        fx.dest(b).totalconns = 300;
        fx.dest(a).totalconns = 120;
        // 100*4 = 400 > 300*1 -> .2 (loh 300, w4); 300*2 = 600 > 120*4 = 480 -> .1.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        // .1 at 150: 600 > 600 is false -> .2 stays.
        fx.dest(a).totalconns = 150;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
    }

    #[test]
    fn cross_products_are_64_bit() {
        let mut fx = Fixture::default();
        let mut s = WeightedLeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 65535);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // List 2(w1) 1(w65535).  .2: 40000 active -> overhead 40000*257 = 10_280_000;
        // .1: 1000 inactive -> 1000.  10_280_000 * 65535 = 673_699_800_000 > 1000 * 1: .1.
        // (In 32-bit arithmetic the left side would wrap to -610_065_472 and .2 would stay.)
        fx.dest(b).activeconns = 40_000;
        fx.dest(b).totalconns = 40_000;
        fx.dest(a).totalconns = 1000;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        // Same weights, huge counts: .2 at 10_280_000, .1 at 40001*257 = 10_280_257: .2 stays.
        fx.edit(&mut s, b, |d| d.weight = 65535);
        fx.dest(a).activeconns = 40_001;
        fx.dest(a).totalconns = 40_001;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
    }

    #[test]
    fn skips_quiesced_and_overloaded() {
        let mut fx = Fixture::default();
        let mut s = WeightedLeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let c = fx.add(&mut s, "10.0.0.3", 0);
        fx.dest(a).totalconns = 5;
        fx.dest(b).totalconns = 7;
        // .3 (weight 0, idle) is never the first candidate, and 7*0 > 0*1 is false later on.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        fx.dest(a).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.edit(&mut s, c, |d| d.weight = 1);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = WeightedLeastConnection;
        assert_eq!(pick(&mut fx, &mut s), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.dest(b).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "-");
    }
}
