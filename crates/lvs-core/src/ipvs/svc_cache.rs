//! A small direct-mapped cache in front of the service index for the packet path: the result of
//! `find_service` (a service, or none) by the packet fields it depends on (firewall mark,
//! protocol, destination address and port). Emptied whenever the set of services changes, so a
//! hit is always what the full lookup would return. A hit costs a few instructions where the
//! `HashMap` lookup of up to four keys cost about a hundred.

use crate::conn::PacketMeta;
use std::net::IpAddr;

const BITS: u32 = 6;
const LINES: usize = 1 << BITS;
/// `val` of an empty line; `NO_SERVICE` caches a miss; services are stored as index + 2.
const EMPTY: u32 = 0;
const NO_SERVICE: u32 = 1;

#[derive(Debug, Clone, Copy, Default)]
struct Line {
    addr: u128,
    meta: u64,
    val: u32,
}

/// The cache.
#[derive(Clone)]
pub(crate) struct SvcCache {
    lines: Box<[Line; LINES]>,
}

impl std::fmt::Debug for SvcCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.lines.iter().filter(|l| l.val != EMPTY).count();
        f.debug_struct("SvcCache").field("used", &used).finish()
    }
}

impl Default for SvcCache {
    fn default() -> Self {
        SvcCache { lines: Box::new([Line::default(); LINES]) }
    }
}

/// A packet's lookup key: the address widened to 128 bits, and port, protocol, family and mark
/// packed into 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    addr: u128,
    meta: u64,
}

impl Key {
    #[inline]
    pub(crate) fn of(pkt: &PacketMeta) -> Key {
        let (addr, v6) = match pkt.daddr {
            IpAddr::V4(a) => (u32::from(a) as u128, 0),
            IpAddr::V6(a) => (u128::from(a), 1u64 << 24),
        };
        let meta = pkt.dport as u64 | (pkt.protocol as u64) << 16 | v6 | (pkt.fwmark as u64) << 32;
        Key { addr, meta }
    }

    #[inline]
    fn line(&self) -> usize {
        let x = (self.addr as u64) ^ ((self.addr >> 64) as u64).rotate_left(17) ^ self.meta.rotate_left(41);
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - BITS)) as usize
    }
}

impl SvcCache {
    /// `Some(result)` on a hit (`result` is the service index or `None` for no service).
    #[inline]
    pub(crate) fn get(&self, k: &Key) -> Option<Option<usize>> {
        let l = &self.lines[k.line()];
        if l.val == EMPTY || l.addr != k.addr || l.meta != k.meta {
            return None;
        }
        Some((l.val != NO_SERVICE).then(|| (l.val - 2) as usize))
    }

    /// Remembers a lookup's result.
    #[inline]
    pub(crate) fn put(&mut self, k: &Key, svc: Option<usize>) {
        let val = match svc {
            Some(i) if i < (u32::MAX - 2) as usize => i as u32 + 2,
            Some(_) => return,
            None => NO_SERVICE,
        };
        self.lines[k.line()] = Line { addr: k.addr, meta: k.meta, val };
    }

    /// Forgets everything (the services changed).
    pub(crate) fn clear(&mut self) {
        self.lines.fill(Line::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(daddr: &str, proto: u8, dport: u16, fwmark: u32) -> PacketMeta {
        PacketMeta {
            protocol: proto,
            saddr: "1.1.1.1".parse().unwrap(),
            sport: 1000,
            daddr: daddr.parse().unwrap(),
            dport,
            tcp_flags: 0,
            sctp_chunk: 0,
            sctp_abort_follows: false,
            len: 0,
            fwmark,
        }
    }

    #[test]
    fn keys_tell_every_field_apart() {
        let base = Key::of(&pkt("10.0.0.1", 6, 80, 0));
        for other in [
            pkt("10.0.0.2", 6, 80, 0),
            pkt("10.0.0.1", 17, 80, 0),
            pkt("10.0.0.1", 6, 81, 0),
            pkt("10.0.0.1", 6, 80, 1),
            pkt("::a00:1", 6, 80, 0),
        ] {
            assert_ne!(Key::of(&other), base, "{other:?}");
        }
        let mut c = SvcCache::default();
        assert_eq!(c.get(&base), None);
        c.put(&base, Some(3));
        assert_eq!(c.get(&base), Some(Some(3)));
        let v6 = Key::of(&pkt("::a00:1", 6, 80, 0));
        c.put(&v6, None);
        assert_eq!(c.get(&v6), Some(None));
        c.clear();
        assert_eq!((c.get(&base), c.get(&v6)), (None, None));
    }
}
