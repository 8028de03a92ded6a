//! Traffic counters and the IPVS rate estimator (`ip_vs_est.c`): every 2 s the counters are
//! sampled and five rates are averaged with weight 1/4, in fixed point exactly as the kernel does,
//! so `--rate` shows the same numbers for the same traffic.

use crate::time::Instant;

/// The five counters kept per service, per real server and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets from clients.
    pub inpkts: u64,
    /// Packets to clients (seen by the director: NAT replies).
    pub outpkts: u64,
    /// Bytes from clients (IP length before rewriting).
    pub inbytes: u64,
    /// Bytes to clients.
    pub outbytes: u64,
}

impl Counters {
    fn minus(&self, zero: &Counters) -> Counters {
        Counters {
            conns: self.conns.wrapping_sub(zero.conns),
            inpkts: self.inpkts.wrapping_sub(zero.inpkts),
            outpkts: self.outpkts.wrapping_sub(zero.outpkts),
            inbytes: self.inbytes.wrapping_sub(zero.inbytes),
            outbytes: self.outbytes.wrapping_sub(zero.outbytes),
        }
    }
}

/// Rates as ipvsadm shows them: connections, packets and bytes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

/// How often the estimator samples (`2*HZ`).
pub const ESTIMATOR_PERIOD_MS: u64 = 2000;

/// Counters with their `-Z` zero point and rate estimator.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    total: Counters,
    zero: Counters,
    est: Estimator,
}

impl Stats {
    /// A new connection was scheduled.
    #[inline]
    pub fn conn(&mut self) {
        self.total.conns += 1;
    }
    /// A client packet of `bytes` bytes.
    #[inline]
    pub fn inbound(&mut self, bytes: u64) {
        self.total.inpkts += 1;
        self.total.inbytes += bytes;
    }
    /// A packet to a client of `bytes` bytes.
    #[inline]
    pub fn outbound(&mut self, bytes: u64) {
        self.total.outpkts += 1;
        self.total.outbytes += bytes;
    }
    /// The counters since the last zeroing.
    pub fn counters(&self) -> Counters {
        self.total.minus(&self.zero)
    }
    /// The estimated rates.
    pub fn rates(&self) -> Rates {
        self.est.read()
    }
    /// `-Z`: counters read as zero from now on and the rates restart from zero.
    pub fn zero(&mut self) {
        self.zero = self.total;
        self.est.reset(&self.total);
    }
    /// Runs every estimator period that has ended by `now`.
    pub fn estimate(&mut self, now: Instant) {
        self.est.advance(&self.total, now);
    }
    /// Adds another set of counters (used to fold a worker's local counts in).
    pub fn add(&mut self, c: &Counters) {
        self.total.conns += c.conns;
        self.total.inpkts += c.inpkts;
        self.total.outpkts += c.outpkts;
        self.total.inbytes += c.inbytes;
        self.total.outbytes += c.outbytes;
    }
}

/// The kernel's estimator state: last samples and scaled averages.
#[derive(Debug, Clone, Default)]
struct Estimator {
    last: Counters,
    /// Averages scaled by 2^10 (cps, pps) or 2^5 (bps).
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
    next: Option<Instant>,
}

impl Estimator {
    fn advance(&mut self, now_total: &Counters, now: Instant) {
        let next = *self.next.get_or_insert(Instant::from_millis(now.millis() + ESTIMATOR_PERIOD_MS));
        if now < next {
            return;
        }
        // Missed periods see no new traffic after the first: the kernel timer would have run
        // with unchanged counters, decaying the averages.
        let periods = 1 + (now.millis() - next.millis()) / ESTIMATOR_PERIOD_MS;
        for i in 0..periods.min(64) {
            let sample = if i == 0 { *now_total } else { self.last };
            self.tick(&sample);
        }
        if periods > 64 {
            *self = Estimator { last: *now_total, ..Estimator::default() };
        }
        self.next = Some(Instant::from_millis(next.millis() + periods * ESTIMATOR_PERIOD_MS));
    }

    fn tick(&mut self, c: &Counters) {
        fn ewma(avg: &mut i64, cur: u64, last: u64, shift: u32) {
            let rate = (cur.wrapping_sub(last) as i64) << shift;
            *avg += (rate - *avg) >> 2;
        }
        ewma(&mut self.cps, c.conns, self.last.conns, 9);
        ewma(&mut self.inpps, c.inpkts, self.last.inpkts, 9);
        ewma(&mut self.outpps, c.outpkts, self.last.outpkts, 9);
        ewma(&mut self.inbps, c.inbytes, self.last.inbytes, 4);
        ewma(&mut self.outbps, c.outbytes, self.last.outbytes, 4);
        self.last = *c;
    }

    fn read(&self) -> Rates {
        let pps = |v: i64| ((v + 0x1FF) >> 10).max(0) as u64;
        let bps = |v: i64| ((v + 0xF) >> 5).max(0) as u64;
        Rates {
            cps: pps(self.cps),
            inpps: pps(self.inpps),
            outpps: pps(self.outpps),
            inbps: bps(self.inbps),
            outbps: bps(self.outbps),
        }
    }

    fn reset(&mut self, total: &Counters) {
        *self = Estimator { last: *total, next: self.next, ..Estimator::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_kernel_fixed_point() {
        let mut s = Stats::default();
        s.estimate(Instant::ZERO);
        // 1000 packets of 100 bytes and 10 conns in the first 2 s.
        for _ in 0..1000 {
            s.inbound(100);
        }
        for _ in 0..10 {
            s.conn();
        }
        s.estimate(Instant::from_millis(2000));
        // rate = 1000 << 9 = 512000; avg = 512000 >> 2 = 128000; read (128000 + 511) >> 10 = 125.
        let r = s.rates();
        assert_eq!(r.inpps, 125);
        // bytes: 100000 << 4 = 1600000; avg = 400000; (400000 + 15) >> 5 = 12500.
        assert_eq!(r.inbps, 12500);
        // conns: 10 << 9 = 5120; avg 1280; (1280 + 511) >> 10 = 1.
        assert_eq!(r.cps, 1);
        // Steady traffic converges on the true rate (500 pps).
        for k in 2..80u64 {
            for _ in 0..1000 {
                s.inbound(100);
            }
            s.estimate(Instant::from_millis(k * 2000));
        }
        assert_eq!(s.rates().inpps, 500);
        assert_eq!(s.rates().inbps, 50000);
    }

    #[test]
    fn idle_periods_decay_and_zero_resets() {
        let mut s = Stats::default();
        s.estimate(Instant::ZERO);
        for k in 1..30u64 {
            for _ in 0..200 {
                s.inbound(60);
            }
            s.estimate(Instant::from_millis(k * 2000));
        }
        assert_eq!(s.rates().inpps, 100);
        // 20 s of silence: ten periods of decay by 3/4.
        s.estimate(Instant::from_millis(29 * 2000 + 20_000));
        assert!(s.rates().inpps < 10, "{:?}", s.rates());
        s.zero();
        assert_eq!(s.counters(), Counters::default());
        assert_eq!(s.rates(), Rates::default());
        s.outbound(40);
        assert_eq!(s.counters().outpkts, 1);
        assert_eq!(s.counters().outbytes, 40);
    }
}
