//! Least connection (`ip_vs_lc.c`): the usable server with the smallest connection overhead; the
//! weight only matters as "0 = quiesced".

use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `lc`. Stateless.
#[derive(Debug, Default)]
pub struct LeastConnection;

impl Scheduler for LeastConnection {
    fn name(&self) -> &'static str {
        "lc"
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
        // `least.is_none() || doh < loh` written without the extra branch: unusable servers get a
        // key no real overhead reaches, and the first usable one always beats the initial key.
        let mut least: Option<DestId> = None;
        let mut loh = u64::MAX;
        for (id, d) in dests.iter() {
            let doh = if d.overloaded || d.weight == 0 {
                u64::MAX
            } else {
                // The kernel's `int` overhead stored in an `unsigned int` (the same value for any
                // realistic count; the low 32 bits of ours otherwise, as the kernel's wraps).
                u64::from(d.overhead() as u32)
            };
            // Strict `<`: on a tie the earlier (more recently added) server stays.
            if doh < loh {
                least = Some(id);
                loh = doh;
            }
        }
        least
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn pick(fx: &mut Fixture, s: &mut LeastConnection) -> String {
        fx.pick_addr(s, &flow("1.1.1.1", 1000, "10.0.0.100"))
    }

    #[test]
    fn ties_go_to_the_newest_server() {
        let mut fx = Fixture::default();
        let mut s = LeastConnection;
        for a in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            fx.add(&mut s, a, 1);
        }
        // All idle: the head of the list (the last added) wins.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
    }

    #[test]
    fn overhead_is_257_per_active_plus_inactive() {
        let mut fx = Fixture::default();
        let mut s = LeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 100);
        // .1: 1 active, 0 inactive -> (1<<8) + 1 = 257.
        fx.dest(a).activeconns = 1;
        fx.dest(a).totalconns = 1;
        // .2: 0 active, 256 inactive -> 256 < 257: .2 (the weight is irrelevant).
        fx.dest(b).totalconns = 256;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // 257 inactive -> 257 == 257: tie, the head (.2) keeps it.
        fx.dest(b).totalconns = 257;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        // 258 inactive -> .1.
        fx.dest(b).totalconns = 258;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn later_entry_needs_strictly_less() {
        let mut fx = Fixture::default();
        let mut s = LeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        // List 3 2 1 with overheads 5, 3, 3: .2 is the first with 3; .1 only ties it.
        fx.dest(c).totalconns = 5;
        fx.dest(b).totalconns = 3;
        fx.dest(a).totalconns = 3;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
        fx.dest(a).totalconns = 2;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
    }

    #[test]
    fn skips_quiesced_and_overloaded() {
        let mut fx = Fixture::default();
        let mut s = LeastConnection;
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 0);
        let c = fx.add(&mut s, "10.0.0.3", 1);
        fx.dest(a).totalconns = 10;
        fx.dest(c).totalconns = 20;
        // .2 is idle but has weight 0.
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.1");
        fx.dest(a).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.3");
        fx.edit(&mut s, b, |d| d.weight = 1);
        assert_eq!(pick(&mut fx, &mut s), "10.0.0.2");
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = LeastConnection;
        assert_eq!(pick(&mut fx, &mut s), "-");
        let a = fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 3);
        fx.dest(b).overloaded = true;
        assert_eq!(pick(&mut fx, &mut s), "-");
        let _ = a;
    }
}
