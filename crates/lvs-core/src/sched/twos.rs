//! Weighted random "power of two choices" (`ip_vs_twos.c`): draw two servers at random in
//! proportion to their weights, keep the one with the smaller `overhead / weight`.
//!
//! The kernel's arithmetic is plain `int` throughout (the final cross products included, unlike
//! wlc's 64-bit ones); it is mirrored with wrapping 32-bit operations so the choices match even
//! where the products exceed 2^31 (e.g. weight 65535 against 128 active connections).

use super::{DestChange, DestList, SchedCtx, Scheduler};
use crate::conn::PacketMeta;
use crate::dest::DestId;
use crate::error::Result;

/// `twos`. Stateless (randomness comes from [`SchedCtx::rng`]).
#[derive(Debug, Default)]
pub struct TwosChoice;

/// The final test: does the second draw replace the first? (`weight2 * overhead1 >
/// weight1 * overhead2` in wrapping `int` arithmetic.)
#[inline]
fn second_is_better(w1: i32, o1: i32, w2: i32, o2: i32) -> bool {
    w2.wrapping_mul(o1) > w1.wrapping_mul(o2)
}

impl Scheduler for TwosChoice {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn dests_changed(&mut self, _dests: DestList<'_>, _change: DestChange) -> Result<()> {
        Ok(())
    }

    fn schedule(
        &mut self,
        dests: DestList<'_>,
        _flow: &PacketMeta,
        ctx: &mut SchedCtx<'_>,
    ) -> Option<DestId> {
        // Sum of the usable weights; `choice1` ends up as the last usable server (only returned if
        // the draw below never reaches zero, which cannot happen without wrapping).
        let mut total: i32 = 0;
        let mut choice1: Option<DestId> = None;
        for (id, d) in dests.iter() {
            if !d.overloaded && d.weight > 0 {
                total = total.wrapping_add(d.weight);
                choice1 = Some(id);
            }
        }
        choice1?;

        // Uniform in [0, total]: the first usable server gets (w + 1) / (W + 1).
        total = total.wrapping_add(1);
        let mut r1 = ctx.rng.below(total as u32) as i32;
        let mut r2 = ctx.rng.below(total as u32) as i32;

        let (mut w1, mut o1) = (-1i32, 0i32);
        let (mut w2, mut o2) = (-1i32, 0i32);
        let mut choice2: Option<DestId> = None;
        for (id, d) in dests.iter() {
            if d.overloaded || d.weight <= 0 {
                continue;
            }
            r1 = r1.wrapping_sub(d.weight);
            r2 = r2.wrapping_sub(d.weight);
            if r1 <= 0 && w1 == -1 {
                choice1 = Some(id);
                w1 = d.weight;
                o1 = d.overhead() as i32;
            }
            if r2 <= 0 && w2 == -1 {
                choice2 = Some(id);
                w2 = d.weight;
                o2 = d.overhead() as i32;
            }
            if w1 != -1 && w2 != -1 {
                break;
            }
        }

        if choice2.is_some() && second_is_better(w1, o1, w2, o2) {
            choice1 = choice2;
        }
        choice1
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow, Fixture};
    use super::*;

    /// Counts picks per server address over `n` calls.
    fn histogram(fx: &mut Fixture, s: &mut TwosChoice, n: usize) -> std::collections::HashMap<String, usize> {
        let f = flow("1.1.1.1", 1000, "10.0.0.100");
        let mut h = std::collections::HashMap::new();
        for _ in 0..n {
            *h.entry(fx.pick_addr(s, &f)).or_insert(0) += 1;
        }
        h
    }

    fn share(h: &std::collections::HashMap<String, usize>, addr: &str, n: usize) -> f64 {
        *h.get(addr).unwrap_or(&0) as f64 / n as f64
    }

    fn assert_share(h: &std::collections::HashMap<String, usize>, addr: &str, n: usize, expect: f64) {
        let got = share(h, addr, n);
        assert!((got - expect).abs() < 0.015, "{addr}: got {got:.4}, expected {expect:.4} ({h:?})");
    }

    const N: usize = 60_000;

    #[test]
    fn idle_servers_follow_the_first_draw() {
        let mut fx = Fixture::default();
        let mut s = TwosChoice;
        for (a, w) in [("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)] {
            fx.add(&mut s, a, w);
        }
        // List 3(w3) 2(w2) 1(w1), W = 6, draws uniform in 0..=6.  r - 3 <= 0 for r in 0..=3 -> .3
        // (4/7); r - 5 <= 0 for r in 4..=5 -> .2 (2/7); r = 6 -> .1 (1/7).  All overheads are 0,
        // so 0 > 0 never lets the second draw win: the distribution is the first draw's.
        let h = histogram(&mut fx, &mut s, N);
        assert_share(&h, "10.0.0.3", N, 4.0 / 7.0);
        assert_share(&h, "10.0.0.2", N, 2.0 / 7.0);
        assert_share(&h, "10.0.0.1", N, 1.0 / 7.0);
        assert_eq!(h.values().sum::<usize>(), N);
    }

    #[test]
    fn a_loaded_server_needs_both_draws() {
        let mut fx = Fixture::default();
        let mut s = TwosChoice;
        fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 2);
        let c = fx.add(&mut s, "10.0.0.3", 3);
        // .3 carries 3 active connections (overhead 771); the others are idle.
        // If the first draw is .3 and the second another server: w2*771 > 3*0 -> the other one.
        // If the first draw is idle: w2*0 > w1*o2 is false -> it stays.
        // P(.3) = (4/7)^2 = 16/49; P(.2) = 2/7 + 4/7*2/7 = 22/49; P(.1) = 1/7 + 4/7*1/7 = 11/49.
        fx.dest(c).activeconns = 3;
        fx.dest(c).totalconns = 3;
        let h = histogram(&mut fx, &mut s, N);
        assert_share(&h, "10.0.0.3", N, 16.0 / 49.0);
        assert_share(&h, "10.0.0.2", N, 22.0 / 49.0);
        assert_share(&h, "10.0.0.1", N, 11.0 / 49.0);
    }

    #[test]
    fn never_picks_quiesced_or_overloaded() {
        let mut fx = Fixture::default();
        let mut s = TwosChoice;
        fx.add(&mut s, "10.0.0.1", 1);
        fx.add(&mut s, "10.0.0.2", 0);
        let c = fx.add(&mut s, "10.0.0.3", 50);
        fx.add(&mut s, "10.0.0.4", 1);
        fx.dest(c).overloaded = true;
        // Usable: 4(w1) and 1(w1), W = 2, draws in 0..=2: .4 for r in 0..=1 (2/3), .1 for r = 2.
        let h = histogram(&mut fx, &mut s, N);
        assert!(!h.contains_key("10.0.0.2") && !h.contains_key("10.0.0.3"), "{h:?}");
        assert_share(&h, "10.0.0.4", N, 2.0 / 3.0);
        assert_share(&h, "10.0.0.1", N, 1.0 / 3.0);
    }

    #[test]
    fn single_server_always_wins() {
        let mut fx = Fixture::default();
        let mut s = TwosChoice;
        let a = fx.add(&mut s, "10.0.0.1", 7);
        fx.dest(a).activeconns = 100;
        let h = histogram(&mut fx, &mut s, 100);
        assert_eq!(h.get("10.0.0.1"), Some(&100));
    }

    #[test]
    fn draws_come_from_the_context_rng() {
        // Same seed, same picks; another seed, (almost surely) other picks.
        let run = |seed: u64| {
            let mut fx = Fixture { rng: crate::rng::Rng::new(seed), ..Fixture::default() };
            let mut s = TwosChoice;
            for i in 1..=5 {
                fx.add(&mut s, &format!("10.0.0.{i}"), i);
            }
            let f = flow("1.1.1.1", 1000, "10.0.0.100");
            (0..64).map(|_| fx.pick_addr(&mut s, &f)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn final_comparison_is_32_bit_like_the_kernel() {
        // 65535 * (128 active -> 128*257 = 32896) = 2_155_839_360 wraps to -2_139_127_936,
        // so a much less loaded second draw does not win; in 64 bits it would.
        assert!(!second_is_better(1, 128 * 257, 65535, 1));
        assert!(second_is_better(1, 127 * 257, 65535, 1));
        assert!(!second_is_better(2, 10, 1, 5), "ties keep the first draw");
        assert!(second_is_better(2, 11, 1, 5));
    }

    #[test]
    fn none_when_nothing_usable() {
        let mut fx = Fixture::default();
        let mut s = TwosChoice;
        let f = flow("1.1.1.1", 1000, "10.0.0.100");
        assert_eq!(fx.pick_addr(&mut s, &f), "-");
        fx.add(&mut s, "10.0.0.1", 0);
        let b = fx.add(&mut s, "10.0.0.2", 2);
        fx.dest(b).overloaded = true;
        assert_eq!(fx.pick_addr(&mut s, &f), "-");
    }
}
