//! The neighbour table (ARP and ND cache) and the bounded per-address queues of packets waiting for
//! an answer, with expiry driven by the caller's clock.
//!
//! States follow Linux's neighbour layer in a reduced form: an answered entry is *reachable* for
//! `reachable_ms`; then *stale* for `stale_ms`, still used while unicast probes (at most one per
//! `retrans_ms`) ask for a fresh answer; then removed. An address being resolved is *incomplete*:
//! packets to it are parked (at most `queue_len`), the broadcast solicitation is repeated every
//! `retrans_ms` up to `max_probes` times, and then the entry fails and its packets are dropped.

use super::config::NeighConfig;
use crate::wire::EthernetAddress;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// FxHash (rustc's hasher): a multiply-rotate over the words of the key. Keys here are addresses
/// the director talks to, not attacker-chosen in bulk (entries are only created for answers to our
/// own solicitations and for senders addressing a VIP), and the table is bounded.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        if !rest.is_empty() {
            tail[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(tail));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// A neighbour: the interface index and the address.
pub(crate) type Key = (u32, IpAddr);

#[derive(Debug)]
enum State {
    Reachable { mac: EthernetAddress, confirmed: u64, probed: u64 },
    Incomplete { queue: Vec<Vec<u8>>, last_probe: u64, probes: u8 },
}

/// The answer for a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Known; `true` when a unicast refresh probe is due.
    Known(EthernetAddress, bool),
    /// Not known (or expired).
    Unknown,
}

/// What parking a packet did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Park {
    /// Queued; `true` when this started the resolution (send the first solicitation).
    Queued(bool),
    /// The queue for this address is full, or too many addresses are being resolved.
    Full,
}

/// What an answer did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Learn {
    /// Not learned (no entry and not asked to create one).
    Ignored,
    /// Created or refreshed.
    Learned,
    /// Resolved an incomplete entry: these frames (destination MAC still to fill in) can go.
    Release(Vec<Vec<u8>>),
    /// No room for a new entry.
    TableFull,
}

/// Largest number of spare frame buffers kept for parking.
const POOL_MAX: usize = 1024;

#[derive(Debug)]
pub(crate) struct Neighbours {
    map: HashMap<Key, State, FxBuild>,
    pool: Vec<Vec<u8>>,
    incomplete: usize,
    cfg: NeighConfig,
}

impl Neighbours {
    pub fn new(cfg: NeighConfig) -> Neighbours {
        Neighbours { map: HashMap::default(), pool: Vec::new(), incomplete: 0, cfg }
    }

    pub fn set_config(&mut self, cfg: NeighConfig) {
        self.cfg = cfg;
    }

    /// The MAC of `key`, if usable at `now`.
    #[inline]
    pub fn lookup(&mut self, key: Key, now: u64) -> Lookup {
        match self.map.get_mut(&key) {
            Some(State::Reachable { mac, confirmed, probed }) => {
                let age = now.saturating_sub(*confirmed);
                if age < self.cfg.reachable_ms {
                    Lookup::Known(*mac, false)
                } else if age < self.cfg.reachable_ms.saturating_add(self.cfg.stale_ms) {
                    let probe = now >= probed.saturating_add(self.cfg.retrans_ms);
                    if probe {
                        *probed = now;
                    }
                    Lookup::Known(*mac, probe)
                } else {
                    Lookup::Unknown
                }
            }
            _ => Lookup::Unknown,
        }
    }

    /// The MAC of `key` without side effects (tests, introspection).
    pub fn peek(&self, key: Key) -> Option<EthernetAddress> {
        match self.map.get(&key) {
            Some(State::Reachable { mac, .. }) => Some(*mac),
            _ => None,
        }
    }

    fn take_buf(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        b
    }

    /// Returns a buffer to the pool.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_MAX {
            self.pool.push(buf);
        }
    }

    /// Parks a frame of `len` bytes written by `write` until `key` answers.
    pub fn park(&mut self, key: Key, now: u64, len: usize, write: impl FnOnce(&mut [u8])) -> Park {
        let queue_len = self.cfg.queue_len;
        match self.map.get(&key) {
            Some(State::Incomplete { queue, .. }) => {
                if queue.len() >= queue_len {
                    return Park::Full;
                }
                let mut buf = self.take_buf(len);
                write(&mut buf);
                if let Some(State::Incomplete { queue, .. }) = self.map.get_mut(&key) {
                    queue.push(buf);
                }
                Park::Queued(false)
            }
            existing => {
                if queue_len == 0
                    || self.incomplete >= self.cfg.max_incomplete
                    || (existing.is_none() && self.map.len() >= self.cfg.max_entries)
                {
                    return Park::Full;
                }
                let mut buf = self.take_buf(len);
                write(&mut buf);
                self.map.insert(key, State::Incomplete { queue: vec![buf], last_probe: now, probes: 1 });
                self.incomplete += 1;
                Park::Queued(true)
            }
        }
    }

    /// Records that `key` is at `mac`. A missing entry is created only when `create`.
    pub fn learn(&mut self, key: Key, mac: EthernetAddress, now: u64, create: bool) -> Learn {
        let fresh = State::Reachable { mac, confirmed: now, probed: now };
        let full = self.map.len() >= self.cfg.max_entries;
        match self.map.get_mut(&key) {
            Some(s @ State::Reachable { .. }) => {
                *s = fresh;
                Learn::Learned
            }
            Some(s) => {
                let old = std::mem::replace(s, fresh);
                self.incomplete = self.incomplete.saturating_sub(1);
                match old {
                    State::Incomplete { queue, .. } => Learn::Release(queue),
                    State::Reachable { .. } => Learn::Learned,
                }
            }
            None if !create => Learn::Ignored,
            None if full => Learn::TableFull,
            None => {
                self.map.insert(key, fresh);
                Learn::Learned
            }
        }
    }

    /// Expires entries at `now`: stale entries past their time are removed; incomplete entries due
    /// for another solicitation are appended to `solicit`; those out of probes are removed with
    /// their packets. Returns the number of packets dropped.
    pub fn advance(&mut self, now: u64, solicit: &mut Vec<Key>) -> u64 {
        let cfg = self.cfg;
        let mut dropped = 0u64;
        let mut failed = 0usize;
        let pool = &mut self.pool;
        self.map.retain(|key, st| match st {
            State::Reachable { confirmed, .. } => {
                now.saturating_sub(*confirmed) < cfg.reachable_ms.saturating_add(cfg.stale_ms)
            }
            State::Incomplete { queue, last_probe, probes } => {
                if now < last_probe.saturating_add(cfg.retrans_ms) {
                    return true;
                }
                if *probes < cfg.max_probes {
                    *probes += 1;
                    *last_probe = now;
                    solicit.push(*key);
                    return true;
                }
                dropped += queue.len() as u64;
                for b in queue.drain(..) {
                    if pool.len() < POOL_MAX {
                        pool.push(b);
                    }
                }
                failed += 1;
                false
            }
        });
        self.incomplete = self.incomplete.saturating_sub(failed);
        dropped
    }

    /// Number of entries (all states).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Reachable or stale entries: `(ifindex, address, mac)`.
    pub fn entries(&self) -> impl Iterator<Item = (u32, IpAddr, EthernetAddress)> + '_ {
        self.map.iter().filter_map(|(k, s)| match s {
            State::Reachable { mac, .. } => Some((k.0, k.1, *mac)),
            State::Incomplete { .. } => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    fn key(last: u8) -> Key {
        (1, IpAddr::from([10, 0, 0, last]))
    }

    fn cfg() -> NeighConfig {
        NeighConfig {
            reachable_ms: 100,
            stale_ms: 100,
            retrans_ms: 10,
            max_probes: 3,
            queue_len: 2,
            max_incomplete: 2,
            max_entries: 3,
        }
    }

    #[test]
    fn reachable_then_stale_with_probes_then_gone() {
        let mut n = Neighbours::new(cfg());
        assert_eq!(n.learn(key(1), MAC, 0, false), Learn::Ignored);
        assert_eq!(n.learn(key(1), MAC, 0, true), Learn::Learned);
        assert_eq!(n.lookup(key(1), 50), Lookup::Known(MAC, false));
        assert_eq!(n.lookup(key(1), 120), Lookup::Known(MAC, true));
        assert_eq!(n.lookup(key(1), 125), Lookup::Known(MAC, false), "one probe per retrans");
        assert_eq!(n.lookup(key(1), 131), Lookup::Known(MAC, true));
        assert_eq!(n.lookup(key(1), 200), Lookup::Unknown);
        let mut s = Vec::new();
        assert_eq!(n.advance(199, &mut s), 0);
        assert_eq!(n.len(), 1);
        n.advance(200, &mut s);
        assert_eq!(n.len(), 0);
    }

    #[test]
    fn parking_is_bounded_and_released_in_order() {
        let mut n = Neighbours::new(cfg());
        assert_eq!(n.park(key(1), 0, 3, |b| b.copy_from_slice(&[1, 1, 1])), Park::Queued(true));
        assert_eq!(n.park(key(1), 0, 2, |b| b.copy_from_slice(&[2, 2])), Park::Queued(false));
        assert_eq!(n.park(key(1), 0, 1, |_| panic!("not written when full")), Park::Full);
        assert_eq!(n.park(key(2), 0, 1, |b| b[0] = 5), Park::Queued(true));
        assert_eq!(n.park(key(3), 0, 1, |_| panic!()), Park::Full, "max_incomplete");
        assert_eq!(n.lookup(key(1), 1), Lookup::Unknown);
        match n.learn(key(1), MAC, 5, false) {
            Learn::Release(q) => assert_eq!(q, vec![vec![1, 1, 1], vec![2, 2]]),
            other => panic!("{other:?}"),
        }
        assert_eq!(n.lookup(key(1), 6), Lookup::Known(MAC, false));
        assert_eq!(n.park(key(3), 0, 1, |b| b[0] = 6), Park::Queued(true), "room again");
        assert_eq!(n.learn(key(4), MAC, 5, true), Learn::TableFull);
    }

    #[test]
    fn unanswered_addresses_are_retried_then_fail() {
        let mut n = Neighbours::new(cfg());
        n.park(key(1), 0, 1, |b| b[0] = 1);
        n.park(key(1), 0, 1, |b| b[0] = 2);
        let mut s = Vec::new();
        assert_eq!(n.advance(5, &mut s), 0);
        assert!(s.is_empty());
        for t in [10, 20] {
            assert_eq!(n.advance(t, &mut s), 0);
        }
        assert_eq!(s, vec![key(1), key(1)]);
        assert_eq!(n.advance(30, &mut s), 2, "third probe unanswered: both packets dropped");
        assert_eq!(n.len(), 0);
        assert_eq!(n.pool.len(), 2, "buffers went back to the pool");
        assert_eq!(n.park(key(1), 40, 1, |b| b[0] = 1), Park::Queued(true));
    }

    #[test]
    fn fx_hasher_spreads_addresses() {
        use std::hash::BuildHasher;
        let b = FxBuild::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000u32 {
            seen.insert(b.hash_one((1u32, IpAddr::from(i.to_be_bytes()))) >> 57);
        }
        assert!(seen.len() > 100, "top bits vary: {}", seen.len());
    }
}
