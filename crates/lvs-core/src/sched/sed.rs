//! Shortest expected delay (`ip_vs_sed.c`): wlc's loop with `activeconns + 1` as the cost, so
//! inactive connections are ignored and the incoming connection is counted.

use super::wlc::least_weighted;
use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::{Dest, DestId};
use crate::error::Result;

/// `sed`. Stateless.
#[derive(Debug, Default)]
pub struct ShortestExpectedDelay;

/// `ip_vs_sed_dest_overhead`: `activeconns + 1` as a kernel `int`.
#[inline]
pub(super) fn expected_delay(d: &Dest) -> i32 {
    (d.activeconns as i32).wrapping_add(1)
}

impl Scheduler for ShortestExpectedDelay {
    fn name(&self) -> &'static str {
        "sed"
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
        least_weighted(&dests, expected_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn pick(fx: &mut Fixture, s: &mut ShortestExpectedDelay) -> String {
        fx.pick_addr(s, &flow("1.1.1.1", 1000, "10.0.0.100"))
    }

    #[test]
    fn idle_servers_prefer_the_heavier_one() {
        let mut fx = Fixture::default();
        let mut s = ShortestExpectedDelay;
        fx.add(&mut s, "10.0.0.1", 3);
        fx.add(&mut s, "10.0.0.2", 1);
        // All idle: costs 1/1 for .2 (head) and 1/3 for .1: 1*3 > 1*1 -> .1.
        // (wlc would take the head here: its overheads are all 0.)
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn ties_go_to_the_newest() {
        let mut fx = Fixture::default();
        let mut s = ShortestExpectedDelay;
        let a = fx.add(&mut s, "10.0.0.1", 2);
        fx.add(&mut s, "10.0.0.2", 1);
        // .2: (0+1)/1; .1: (1+1)/2: 1*2 > 2*1 is false -> the head (.2) stays.
        fx.dest(a).activeconns = 1;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.dest(a).activeconns = 0;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn ignores_inactive_connections() {
        let mut fx = Fixture::default();
        let mut s = ShortestExpectedDelay;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // .2 has 1000 inactive connections but one active less than .1.
        fx.dest(b).activeconns = 1;
        fx.dest(b).totalconns = 1001;
        fx.dest(a).activeconns = 2;
        fx.dest(a).totalconns = 2;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.dest(a).activeconns = 0;
        fx.dest(a).totalconns = 0;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn weighted_choice_among_three() {
        let mut fx = Fixture::default();
        let mut s = ShortestExpectedDelay;
        let a = fx.add(&mut s, "10.0.0.1", 4);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        // List 3(w1) 2(w2) 1(w4), active 0, 2, 5 -> costs 1/1, 3/2, 6/4.
        fx.dest(c).activeconns = 0;
        fx.dest(b).activeconns = 2;
        fx.dest(a).activeconns = 5;
        // .3 vs .2: 1*2 > 3*1 false; .3 vs .1: 1*4 > 6*1 false -> .3.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
        // .3 at 1 active: 2*2 > 3*1 -> .2 (3/2); .2 vs .1: 3*4 > 6*2 false -> .2.
        fx.dest(c).activeconns = 1;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // .1 at 4 active (5/4): 3*4 > 5*2 -> .1.
        fx.dest(a).activeconns = 4;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn skips_quiesced_and_overloaded() {
        let mut fx = Fixture::default();
        let mut s = ShortestExpectedDelay;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 0);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        fx.dest(a).activeconns = 3;
        fx.dest(c).activeconns = 4;
        // .2 (weight 0) loses every comparison: loh*0 > doh*w is false.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        fx.dest(a).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = ShortestExpectedDelay;
        assert_eq!(pick(&mut fx, &mut s), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.dest(b).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "-");
    }
}
