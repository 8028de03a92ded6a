//! Round robin (`ip_vs_rr.c`): the next usable server after the last one picked, in list order.

use super::{usable, DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `rr`. The kernel keeps a pointer into the list (`sched_data`), starting at the list head; we keep
/// the position of the last pick and move it as servers are added at the head or deleted.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// Position of the last pick; `None` is the list head (nothing picked yet).
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn dests_changed(&mut self, _dests: DestList<'_>, change: DestChange) -> Result<()> {
        match change {
            DestChange::Init => self.last = None,
            // A new server goes to the head: everything after it moves down one place.
            DestChange::Add(_) => self.last = self.last.map(|p| p + 1),
            // If the pointer was on the deleted server it moves back to the previous entry
            // (or the head), so the next pick is the server that followed it.
            DestChange::Del { pos, .. } => {
                self.last = match self.last {
                    Some(p) if p == pos => pos.checked_sub(1),
                    Some(p) if p > pos => Some(p - 1),
                    other => other,
                }
            }
            DestChange::Update(_) => {}
        }
        Ok(())
    }

    fn schedule(
        &mut self,
        dests: DestList<'_>,
        _flow: &PacketMeta,
        _ctx: &mut SchedCtx<'_>,
    ) -> Option<DestId> {
        let n = dests.len();
        if n == 0 {
            return None;
        }
        // Start after the last pick; from the head, visit each entry once; otherwise wrap round
        // and stop after revisiting the last pick itself.
        let start = self.last.map_or(0, |p| p + 1);
        // `(start + k) % n` for k in 0..n, without a division per step.
        let mut pos = if start < n { start } else { start % n };
        for _ in 0..n {
            if usable(dests.at(pos)) {
                self.last = Some(pos);
                return Some(dests.id(pos));
            }
            pos += 1;
            if pos == n {
                pos = 0;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn seq(fx: &mut Fixture, s: &mut RoundRobin, n: usize) -> Vec<String> {
        let f = flow("1.1.1.1", 1000, "10.0.0.100");
        (0..n).map(|_| fx.pick_addr(s, &f)).collect()
    }

    #[test]
    fn cycles_newest_first() {
        let mut fx = Fixture::default();
        let mut s = RoundRobin::default();
        for a in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            fx.add(&mut s, a, 1);
        }
        // List order is 3, 2, 1: the first pick is the last server added.
        assert_eq!(seq(&mut fx, &mut s, 4), ["10.0.0.3", "10.0.0.2", "10.0.0.1", "10.0.0.3"]);
    }

    #[test]
    fn skips_quiesced_and_overloaded() {
        let mut fx = Fixture::default();
        let mut s = RoundRobin::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 0);
        fx.add(&mut s, "10.0.0.3", 1);
        let _ = b;
        fx.dest(a).overloaded = true;
        assert_eq!(seq(&mut fx, &mut s, 3), ["10.0.0.3", "10.0.0.3", "10.0.0.3"]);
        fx.dest(a).overloaded = false;
        assert_eq!(seq(&mut fx, &mut s, 2), ["10.0.0.1", "10.0.0.3"]);
    }

    #[test]
    fn weight_edits_only_quiesce() {
        let mut fx = Fixture::default();
        let mut s = RoundRobin::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 1);
        fx.edit(&mut s, a, |d| d.weight = 100);
        assert_eq!(seq(&mut fx, &mut s, 4), ["10.0.0.2", "10.0.0.1", "10.0.0.2", "10.0.0.1"]);
        fx.edit(&mut s, a, |d| d.weight = 0);
        assert_eq!(seq(&mut fx, &mut s, 2), ["10.0.0.2", "10.0.0.2"]);
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = RoundRobin::default();
        assert_eq!(seq(&mut fx, &mut s, 1), ["-"]);
        fx.add(&mut s, "10.0.0.1", 0);
        assert_eq!(seq(&mut fx, &mut s, 1), ["-"]);
    }

    #[test]
    fn add_and_delete_move_the_pointer_like_the_kernel() {
        let mut fx = Fixture::default();
        let mut s = RoundRobin::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        let _c = fx.add(&mut s, "10.0.0.3", 1);
        // list: 3 2 1
        assert_eq!(seq(&mut fx, &mut s, 2), ["10.0.0.3", "10.0.0.2"]);
        // Deleting the last pick (2): the pointer moves back to 3, so 1 comes next.
        fx.del(&mut s, b);
        assert_eq!(seq(&mut fx, &mut s, 1), ["10.0.0.1"]);
        // A new server goes to the head; the pointer stays on 1, so the next is the head (4).
        fx.add(&mut s, "10.0.0.4", 1);
        assert_eq!(seq(&mut fx, &mut s, 3), ["10.0.0.4", "10.0.0.3", "10.0.0.1"]);
        // Deleting the head while the pointer is on 1 (the tail).
        let _ = a;
        let head = fx.order[0];
        fx.del(&mut s, head);
        assert_eq!(seq(&mut fx, &mut s, 2), ["10.0.0.3", "10.0.0.1"]);
    }
}
