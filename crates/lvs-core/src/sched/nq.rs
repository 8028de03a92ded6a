//! Never queue (`ip_vs_nq.c`): the first idle usable server in list order, otherwise sed's choice
//! (`(activeconns + 1) / weight`, smallest wins, ties to the earlier entry).

use super::sed::expected_delay;
use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `nq`. Stateless.
#[derive(Debug, Default)]
pub struct NeverQueue;

impl Scheduler for NeverQueue {
    fn name(&self) -> &'static str {
        "nq"
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
        let mut least: Option<DestId> = None;
        let (mut loh, mut lw) = (0i64, 0i64);
        for (id, d) in dests.iter() {
            if d.overloaded || d.weight == 0 {
                continue;
            }
            // An idle server is taken at once.
            if d.activeconns == 0 {
                return Some(id);
            }
            let doh = i64::from(expected_delay(d));
            let dw = i64::from(d.weight);
            if least.is_none() || loh * dw > doh * lw {
                least = Some(id);
                loh = doh;
                lw = dw;
            }
        }
        least
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn pick(fx: &mut Fixture, s: &mut NeverQueue) -> String {
        fx.pick_addr(s, &flow("1.1.1.1", 1000, "10.0.0.100"))
    }

    #[test]
    fn first_idle_server_wins() {
        let mut fx = Fixture::default();
        let mut s = NeverQueue;
        let a = fx.add(&mut s, "10.0.0.1", 100);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        // All idle: the head (.3), although sed would pick .1 (1/100).
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
        // .3 busy: .2 is the first idle one, even with weight 1 against .1's 100.
        fx.dest(c).activeconns = 1;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // Inactive connections do not make a server busy.
        fx.dest(b).totalconns = 500;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.dest(b).activeconns = 1;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        let _ = a;
    }

    #[test]
    fn idle_server_later_in_list_beats_a_better_ratio() {
        let mut fx = Fixture::default();
        let mut s = NeverQueue;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 50);
        // .2: 1 active, weight 50 -> 2/50 = 0.04; .1 idle, weight 1 -> 1/1.  Idle wins.
        fx.dest(b).activeconns = 1;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        fx.dest(a).activeconns = 1;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
    }

    #[test]
    fn all_busy_is_sed_with_ties_to_the_newest() {
        let mut fx = Fixture::default();
        let mut s = NeverQueue;
        let a = fx.add(&mut s, "10.0.0.1", 2);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // .2: (1+1)/1 = 2; .1: (3+1)/2 = 2: 2*2 > 4*1 is false -> the head (.2) keeps it.
        fx.dest(b).activeconns = 1;
        fx.dest(a).activeconns = 3;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // .1 at 2 active: (2+1)/2 = 1.5 -> 2*2 > 3*1 -> .1.
        fx.dest(a).activeconns = 2;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn skips_quiesced_and_overloaded_even_if_idle() {
        let mut fx = Fixture::default();
        let mut s = NeverQueue;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 0);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        fx.dest(a).activeconns = 7;
        fx.dest(c).overloaded = true;
        // .3 overloaded and .2 quiesced are idle but skipped; .1 is the only candidate.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        fx.edit(&mut s, b, |d| d.weight = 1);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = NeverQueue;
        assert_eq!(pick(&mut fx, &mut s), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.dest(b).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "-");
    }
}
