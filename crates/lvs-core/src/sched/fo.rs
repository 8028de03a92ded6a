//! Weighted fail over (`ip_vs_fo.c`): the non-overloaded server with the highest weight; ties go
//! to the earlier list entry and weight 0 never qualifies.

use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `fo`. Stateless.
#[derive(Debug, Default)]
pub struct WeightedFailOver;

impl Scheduler for WeightedFailOver {
    fn name(&self) -> &'static str {
        "fo"
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
            if !d.overloaded && d.weight > hw {
                best = Some(id);
                hw = d.weight;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn pick(fx: &mut Fixture, s: &mut WeightedFailOver) -> String {
        fx.pick_addr(s, &flow("1.1.1.1", 1000, "10.0.0.100"))
    }

    #[test]
    fn highest_weight_ignoring_load() {
        let mut fx = Fixture::default();
        let mut s = WeightedFailOver;
        let a = fx.add(&mut s, "10.0.0.1", 5);
        fx.add(&mut s, "10.0.0.2", 3);
        fx.add(&mut s, "10.0.0.3", 1);
        fx.dest(a).activeconns = 10_000;
        fx.dest(a).totalconns = 10_000;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        // Fail over to the next highest when overloaded.
        fx.dest(a).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
    }

    #[test]
    fn ties_go_to_the_newest() {
        let mut fx = Fixture::default();
        let mut s = WeightedFailOver;
        let a = fx.add(&mut s, "10.0.0.1", 4);
        let b = fx.add(&mut s, "10.0.0.2", 4);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.edit(&mut s, a, |d| d.weight = 5);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        fx.edit(&mut s, a, |d| d.weight = 0);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        let _ = b;
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = WeightedFailOver;
        assert_eq!(pick(&mut fx, &mut s), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.dest(b).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "-");
    }
}
