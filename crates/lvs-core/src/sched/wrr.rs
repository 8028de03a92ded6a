//! Weighted round robin (`ip_vs_wrr.c`): passes over the list with a falling "current weight" `cw`,
//! each pass picking, in list order, the servers whose weight is at least `cw`.
//!
//! The state (`cl`, `cw`, `mw`, `di`) evolves exactly as the kernel's `ip_vs_wrr_mark`, including
//! the quirk of `dest_changed` keeping `cw` when `0 < cw <= mw` (so a service built one `-a` at a
//! time starts with `cw = 1` rather than at the top of the cycle).

use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `wrr`.
#[derive(Debug)]
pub struct WeightedRoundRobin {
    /// `cl`: list position of the last pick; `None` is the list head.
    cl: Option<usize>,
    /// `cw`: the current required weight.
    cw: i32,
    /// `mw`: the maximum weight reduced by `di - 1` (0 when no server has a positive weight).
    mw: i32,
    /// `di`: the decreasing interval, the gcd of the positive weights (1 if none).
    di: i32,
}

impl Default for WeightedRoundRobin {
    /// The state `init_service` leaves for a service without servers (`ipvsadm -A`).
    fn default() -> Self {
        WeightedRoundRobin { cl: None, cw: 0, mw: 0, di: 1 }
    }
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `ip_vs_wrr_gcd_weight`: the gcd of all positive weights, or 1 when there are none.
fn gcd_weight(dests: &DestList<'_>) -> i32 {
    let mut g = 0;
    for (_, d) in dests.iter() {
        if d.weight > 0 {
            g = if g > 0 { gcd(d.weight, g) } else { d.weight };
        }
    }
    if g > 0 {
        g
    } else {
        1
    }
}

/// `ip_vs_wrr_max_weight`: the largest weight, at least 0.
fn max_weight(dests: &DestList<'_>) -> i32 {
    dests.iter().map(|(_, d)| d.weight).fold(0, i32::max)
}

impl WeightedRoundRobin {
    /// Recomputes `cl`, `di` and `mw` from the list (common to init and `dest_changed`).
    fn recompute(&mut self, dests: &DestList<'_>) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
    }
}

impl Scheduler for WeightedRoundRobin {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn dests_changed(&mut self, dests: DestList<'_>, change: DestChange) -> Result<()> {
        self.recompute(&dests);
        match change {
            DestChange::Init => self.cw = self.mw,
            // `ip_vs_wrr_dest_changed`, shared by add_dest, del_dest and upd_dest.
            DestChange::Add(_) | DestChange::Del { .. } | DestChange::Update(_) => {
                if self.cw > self.mw || self.cw == 0 {
                    self.cw = self.mw;
                } else if self.di > 1 {
                    self.cw = (self.cw / self.di) * self.di + 1;
                }
            }
        }
        Ok(())
    }

    fn schedule(
        &mut self,
        dests: DestList<'_>,
        _flow: &PacketMeta,
        _ctx: &mut SchedCtx<'_>,
    ) -> Option<DestId> {
        // No server with a positive weight: the pointer stays where it is.
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut pos = last.map_or(0, |p| p + 1);
        loop {
            // Continue the current pass from `pos` to the end of the list.
            while pos < n {
                let d = dests.at(pos);
                if !d.overloaded && d.weight >= self.cw {
                    self.cl = Some(pos);
                    return Some(dests.id(pos));
                }
                if stop == Some(pos) {
                    // Every server was checked at weight >= 1: all are overloaded.
                    self.cl = Some(pos);
                    return None;
                }
                pos += 1;
            }
            // Back at the head: next pass, with a lower required weight.
            pos = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // The last pass (cw = 1) already covered every server.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first pass at weight >= 1 only covered the servers after `last`; this one
                // covers those up to and including it, then gives up.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    fn seq(fx: &mut Fixture, s: &mut WeightedRoundRobin, n: usize) -> Vec<String> {
        let f = flow("1.1.1.1", 1000, "10.0.0.100");
        (0..n).map(|_| fx.pick_addr(s, &f)).collect()
    }

    /// Short names: "10.0.0.x" -> "x".
    fn short(v: Vec<String>) -> String {
        v.iter().map(|a| a.rsplit('.').next().unwrap().to_string()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn gcd_and_max_weight() {
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(7, 3), 1);
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        fx.add(&mut s, "10.0.0.1", 0);
        // Only a weight-0 server: di = 1, mw = 0.
        assert_eq!((s.di, s.mw, s.cw), (1, 0, 0));
        fx.add(&mut s, "10.0.0.2", 6);
        // di = 6, mw = 6 - 5 = 1, cw was 0 -> mw.
        assert_eq!((s.di, s.mw, s.cw), (6, 1, 1));
        fx.add(&mut s, "10.0.0.3", 9);
        // di = gcd(9, 6) = 3, mw = 9 - 2 = 7; cw = 1 <= 7 and di > 1: (1/3)*3 + 1 = 1.
        assert_eq!((s.di, s.mw, s.cw), (3, 7, 1));
    }

    #[test]
    fn weights_4_3_2_added_one_at_a_time() {
        // ipvsadm -A; -a .1 -w 4; -a .2 -w 3; -a .3 -w 2.  List order: 3(2) 2(3) 1(4).
        // Add .1: di = 4, mw = 4 - 3 = 1, cw was 0 -> cw = 1.
        // Add .2: di = gcd(3,4) = 1, mw = 4, cw = 1 <= mw and di == 1 -> cw stays 1 (the quirk).
        // Add .3: di = 1, mw = 4, cw stays 1.
        // So the first pass runs at cw = 1 and picks every server once in list order: 3 2 1.
        // Then cw wraps to mw = 4: 1; cw = 3: 2 1; cw = 2: 3 2 1; cw = 1: 3 2 1; and again.
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        for (a, w) in [("10.0.0.1", 4), ("10.0.0.2", 3), ("10.0.0.3", 2)] {
            fx.add(&mut s, a, w);
        }
        assert_eq!((s.di, s.mw, s.cw), (1, 4, 1));
        assert_eq!(short(seq(&mut fx, &mut s, 3)), "3 2 1");
        assert_eq!(short(seq(&mut fx, &mut s, 9)), "1 2 1 3 2 1 3 2 1");
        assert_eq!(short(seq(&mut fx, &mut s, 9)), "1 2 1 3 2 1 3 2 1");
    }

    #[test]
    fn weights_4_3_2_bound_at_once_start_at_the_top() {
        // Binding the scheduler to an existing list (init_service, e.g. `-E` to wrr) sets cw = mw,
        // so the steady-state cycle starts immediately.
        let mut fx = Fixture::default();
        let mut rr = super::super::rr::RoundRobin::default();
        for (a, w) in [("10.0.0.1", 4), ("10.0.0.2", 3), ("10.0.0.3", 2)] {
            fx.add(&mut rr, a, w);
        }
        let mut s = WeightedRoundRobin::default();
        s.dests_changed(fx.list(), DestChange::Init).unwrap();
        assert_eq!((s.di, s.mw, s.cw), (1, 4, 4));
        assert_eq!(short(seq(&mut fx, &mut s, 18)), "1 2 1 3 2 1 3 2 1 1 2 1 3 2 1 3 2 1");
    }

    #[test]
    fn edits_change_the_gcd() {
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        // Add .1 w2: di = 2, mw = 1, cw = 1.  Add .2 w4: di = 2, mw = 3, cw = (1/2)*2 + 1 = 1.
        let a = fx.add(&mut s, "10.0.0.1", 2);
        fx.add(&mut s, "10.0.0.2", 4);
        assert_eq!((s.di, s.mw, s.cw), (2, 3, 1));
        // List 2(4) 1(2).  cw = 1: 2 1; cw = 1-2 <= 0 -> 3: 2; cw = 1: 2 1; cw -> 3: ...
        assert_eq!(short(seq(&mut fx, &mut s, 5)), "2 1 2 2 1");
        // Now cl = .1, cw = 1.  Edit .1 to weight 3: di = 1, mw = 4, cw = 1 kept; cl = head.
        fx.edit(&mut s, a, |d| d.weight = 3);
        assert_eq!((s.di, s.mw, s.cw), (1, 4, 1));
        // cw = 1: 2 1; cw -> 4: 2; cw = 3: 2 1; cw = 2: 2 (cl = .2, cw = 2).
        assert_eq!(short(seq(&mut fx, &mut s, 6)), "2 1 2 2 1 2");
        assert_eq!(s.cw, 2);
        // Edit .1 back to 2: di = 2, mw = 3, cw = 2 <= mw and di > 1 -> (2/2)*2 + 1 = 3.
        fx.edit(&mut s, a, |d| d.weight = 2);
        assert_eq!((s.di, s.mw, s.cw), (2, 3, 3));
        // cw = 3: 2; cw = 1: 2 1; cw -> 3: 2; cw = 1: 2 1.
        // (Had cw stayed 2, this would have been 2 1 2 2 1 ...)
        assert_eq!(short(seq(&mut fx, &mut s, 6)), "2 2 1 2 2 1");
    }

    #[test]
    fn lowering_mw_below_cw_caps_cw() {
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        let a = fx.add(&mut s, "10.0.0.1", 5);
        let b = fx.add(&mut s, "10.0.0.2", 5);
        // di = 5, mw = 1, cw = 1: equal weights alternate 2 1.
        assert_eq!(short(seq(&mut fx, &mut s, 4)), "2 1 2 1");
        fx.edit(&mut s, b, |d| d.weight = 1);
        // di = 1, mw = 5, cw = 1 kept.  cw = 1: 2 1; cw -> 5: 1; 4: 1; 3: 1; 2: 1; 1: 2 1.
        assert_eq!(short(seq(&mut fx, &mut s, 8)), "2 1 1 1 1 1 2 1");
        // Lower .1 to 2 (cw = 1 kept), run until cw = 2, then lower it to 1: cw > mw is capped.
        fx.edit(&mut s, a, |d| d.weight = 2);
        assert_eq!((s.di, s.mw, s.cw), (1, 2, 1));
        // cw = 1: 2 1 -> wrap to cw = 2: 1; cw = 1: 2 1.  The pick at cw = 2 leaves cw = 2.
        assert_eq!(short(seq(&mut fx, &mut s, 3)), "2 1 1");
        assert_eq!(s.cw, 2);
        fx.edit(&mut s, a, |d| d.weight = 1);
        // mw = 1 < cw = 2 -> cw = 1.
        assert_eq!((s.di, s.mw, s.cw), (1, 1, 1));
        assert_eq!(short(seq(&mut fx, &mut s, 4)), "2 1 2 1");
    }

    #[test]
    fn delete_resets_pointer_to_head() {
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        fx.add(&mut s, "10.0.0.3", 1);
        // List 3 2 1, all weight 1 (mw = 1, cw = 1).
        assert_eq!(short(seq(&mut fx, &mut s, 2)), "3 2");
        // Deleting .2 puts cl back at the head (unlike rr, which would continue with .1).
        fx.del(&mut s, b);
        assert_eq!(short(seq(&mut fx, &mut s, 3)), "3 1 3");
    }

    #[test]
    fn skips_overloaded_and_weight_zero() {
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 0);
        fx.add(&mut s, "10.0.0.3", 1);
        // List 3(1) 2(0) 1(1).
        assert_eq!(short(seq(&mut fx, &mut s, 4)), "3 1 3 1");
        fx.dest(a).overloaded = true;
        assert_eq!(short(seq(&mut fx, &mut s, 3)), "3 3 3");
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        assert_eq!(seq(&mut fx, &mut s, 1), ["-"]);
        let a = fx.add(&mut s, "10.0.0.1", 0);
        // mw == 0: "no destination available".
        assert_eq!(seq(&mut fx, &mut s, 2), ["-", "-"]);
        // Edit .1 to 3: di = 3, mw = 3 - 2 = 1, cw was 0 -> 1.
        fx.edit(&mut s, a, |d| d.weight = 3);
        assert_eq!((s.di, s.mw, s.cw), (3, 1, 1));
        // Add .2 w1: list 2(1) 1(3); di = 1, mw = 3, cw = 1 kept.
        let b = fx.add(&mut s, "10.0.0.2", 1);
        assert_eq!((s.di, s.mw, s.cw), (1, 3, 1));
        assert_eq!(seq(&mut fx, &mut s, 1), ["10.0.0.2"]);
        // Everything overloaded: from a pointer mid-list (passes at cw = 3, 2, then the last pass
        // at cw = 1 with stop = .2) ...
        fx.dest(a).overloaded = true;
        fx.dest(b).overloaded = true;
        assert_eq!(seq(&mut fx, &mut s, 2), ["-", "-"]);
        // ... and from the head after a change.
        fx.edit(&mut s, b, |d| d.weight = 2);
        assert_eq!(seq(&mut fx, &mut s, 1), ["-"]);
        // Recovery: the service works again once a server is usable.
        fx.dest(b).overloaded = false;
        assert_eq!(seq(&mut fx, &mut s, 2), ["10.0.0.2", "10.0.0.2"]);
    }

    #[test]
    fn all_overloaded_stops_after_one_full_round() {
        let mut fx = Fixture::default();
        let mut s = WeightedRoundRobin::default();
        let a = fx.add(&mut s, "10.0.0.1", 1);
        let b = fx.add(&mut s, "10.0.0.2", 1);
        // List 2 1; pick 2 (cl = .2), then overload .2: next is .1 (after cl).
        assert_eq!(short(seq(&mut fx, &mut s, 1)), "2");
        fx.dest(b).overloaded = true;
        assert_eq!(short(seq(&mut fx, &mut s, 2)), "1 1");
        // Both overloaded with cl = .1: end of list, cw 0 -> 1 (restarted), last pass with
        // stop = .1: .2 is skipped, .1 is the stop -> None, and cl stays on .1.
        fx.dest(a).overloaded = true;
        assert_eq!(seq(&mut fx, &mut s, 1), ["-"]);
        assert_eq!(s.cl, Some(1));
        fx.dest(b).overloaded = false;
        assert_eq!(short(seq(&mut fx, &mut s, 2)), "2 2");
    }
}
