//! Overflow connection (`ip_vs_ovf.c`): the highest-weight server whose active connections do not
//! exceed its weight; ties go to the earlier list entry. Only active connections count.

use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `ovf`. Stateless.
#[derive(Debug, Default)]
pub struct Overflow;

impl Scheduler for Overflow {
    fn name(&self) -> &'static str {
        "ovf"
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
        let mut best = None;
        let mut hw: i32 = 0;
        for (id, d) in dests.iter() {
            let w = d.weight;
            // The kernel compares the `int` counter with the weight.
            if d.overloaded || (d.activeconns as i32) > w || w == 0 {
                continue;
            }
            if best.is_none() || w > hw {
                best = Some(id);
                hw = w;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn pick(fx: &mut Fixture, s: &mut Overflow) -> String {
        fx.pick_addr(s, &flow("1.1.1.1", 1000, "10.0.0.100"))
    }

    #[test]
    fn fills_the_heaviest_then_overflows() {
        let mut fx = Fixture::default();
        let mut s = Overflow;
        let a = fx.add(&mut s, "10.0.0.1", 3);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.add(&mut s, "10.0.0.3", 1);
        // .1 stays eligible while activeconns <= weight (3), including at exactly 3.
        for n in 0..=3 {
            fx.dest(a).activeconns = n;
            assert_eq!(pick(&mut fx, &mut s), "10.0.0.1", "activeconns {n}");
        }
        // 4 > 3: overflow to the next highest weight.
        fx.dest(a).activeconns = 4;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // Inactive connections do not count.
        fx.dest(b).totalconns = 1000;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.dest(b).activeconns = 3;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
    }

    #[test]
    fn ties_go_to_the_newest() {
        let mut fx = Fixture::default();
        let mut s = Overflow;
        fx.add(&mut s, "10.0.0.1", 2);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.dest(b).activeconns = 3;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn skips_quiesced_and_overloaded() {
        let mut fx = Fixture::default();
        let mut s = Overflow;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 0);
        let c = fx.add(&mut s, "10.0.0.3", 5);
        fx.dest(c).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        // .1 over its weight, .2 quiesced (0 active <= 0 but weight 0), .3 overloaded.
        fx.dest(a).activeconns = 2;
        assert_eq!(pick(&mut fx, &mut s), "-");
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = Overflow;
        assert_eq!(pick(&mut fx, &mut s), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.dest(b).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "-");
    }
}
