//! The Internet checksum (RFC 1071), pseudo-header sums, RFC 1624 incremental updates, and
//! [`rewrite_l4`], which changes an address and port under a TCP, UDP or SCTP header as NAT does.
//!
//! Sums are one's-complement 16-bit values *before* the final complement: [`data`] sums octets,
//! [`combine`] adds sums, and a checksum field holds `!combine(..)` computed with the field zeroed. A
//! packet verifies when the sum over it, checksum field included, is `0xffff`.
//!
//! Incremental update (RFC 1624 eqn. 3) is `HC' = ~(~HC + ~m + m')`. The functions here return a
//! checksum identical to full recomputation whenever the covered data is not all zeros (always true
//! under a pseudo-header or an IPv4 header): a sum congruent to zero is kept as `0xffff` ("-0"), so the
//! result is `0x0000`, never `0xffff`, exactly as recomputation gives. pnet has no such helper.

use super::{sctp, tcp, udp, Error, IpProtocol, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Folds a wide one's-complement accumulator to 16 bits with end-around carries. Zero only for a zero
/// accumulator.
#[inline]
pub const fn fold(sum: u64) -> u16 {
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The one's-complement sum of `data` as big-endian 16-bit words, an odd last byte padded with zero.
#[inline]
pub fn data(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let (s, carry) = acc.overflowing_add(v);
        acc = s + carry as u64;
    }
    let mut rest = words.remainder().chunks_exact(2);
    let mut tail: u64 = 0;
    for w in &mut rest {
        tail += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    if let [b] = rest.remainder() {
        tail += (*b as u64) << 8;
    }
    let (s, carry) = acc.overflowing_add(tail);
    fold(s.wrapping_add(carry as u64))
}

/// Adds one's-complement sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| s as u64).sum())
}

#[inline]
fn sum_v4(addr: &Ipv4Addr) -> u64 {
    u32::from(*addr) as u64
}

#[inline]
fn sum_v6(addr: &Ipv6Addr) -> u64 {
    let v = u128::from(*addr);
    fold((v >> 64) as u64) as u64 + fold(v as u64) as u64
}

#[inline]
fn sum_addr(addr: &IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => sum_v4(a),
        IpAddr::V6(a) => sum_v6(a),
    }
}

/// The sum of the IPv4 pseudo-header: addresses, protocol and upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: IpProtocol, length: u32) -> u16 {
    fold(sum_v4(src) + sum_v4(dst) + u8::from(protocol) as u64 + length as u64)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, 32-bit upper-layer length and next
/// header.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: IpProtocol, length: u32) -> u16 {
    fold(sum_v6(src) + sum_v6(dst) + u8::from(protocol) as u64 + length as u64)
}

/// The pseudo-header sum for either family. With mixed families it still returns a value (the sum of
/// both addresses), which no real packet will match.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: IpProtocol, length: u32) -> u16 {
    fold(sum_addr(src) + sum_addr(dst) + u8::from(protocol) as u64 + length as u64)
}

/// The checksum to store for data (checksum field zeroed) whose sum is `sum`.
#[inline]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// The checksum of an upper-layer `segment` (its checksum field zeroed) under a pseudo-header.
#[inline]
pub fn upper_layer(src: &IpAddr, dst: &IpAddr, protocol: IpProtocol, segment: &[u8]) -> u16 {
    !combine(&[pseudo_header(src, dst, protocol, segment.len() as u32), data(segment)])
}

/// Whether an upper-layer `segment` (checksum field included) verifies under its pseudo-header.
#[inline]
pub fn verify_upper_layer(src: &IpAddr, dst: &IpAddr, protocol: IpProtocol, segment: &[u8]) -> bool {
    combine(&[pseudo_header(src, dst, protocol, segment.len() as u32), data(segment)]) == 0xffff
}

/// RFC 1624 eqn. 3 on sums: the checksum after covered data summing to `old` became data summing to
/// `new`.
#[inline]
pub fn update_sum(check: u16, old: u16, new: u16) -> u16 {
    incremental((!check) as u64 + (!old) as u64 + new as u64)
}

#[inline]
fn incremental(acc: u64) -> u16 {
    let s = fold(acc);
    // Keep a sum congruent to zero as 0xffff, as a full recomputation over non-zero data does.
    !(if s == 0 { 0xffff } else { s })
}

/// The checksum after a 16-bit field changed from `old` to `new`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    update_sum(check, old, new)
}

/// The checksum after a 32-bit field (e.g. an IPv4 address or a sequence number) changed.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    incremental((!check) as u64 + (!old) as u64 + new as u64)
}

/// The checksum after an IPv4 address changed.
#[inline]
pub fn update_v4(check: u16, old: &Ipv4Addr, new: &Ipv4Addr) -> u16 {
    update32(check, u32::from(*old), u32::from(*new))
}

/// The checksum after a 128-bit field (an IPv6 address) changed.
#[inline]
pub fn update128(check: u16, old: u128, new: u128) -> u16 {
    let not_old = !old;
    let acc = (!check) as u64
        + fold((not_old >> 64) as u64) as u64
        + fold(not_old as u64) as u64
        + fold((new >> 64) as u64) as u64
        + fold(new as u64) as u64;
    incremental(acc)
}

/// The checksum after an IPv6 address changed.
#[inline]
pub fn update_v6(check: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    update128(check, u128::from(*old), u128::from(*new))
}

/// The checksum after an address of either family changed (to one of either family).
#[inline]
pub fn update_addr(check: u16, old: &IpAddr, new: &IpAddr) -> u16 {
    match (old, new) {
        (IpAddr::V4(o), IpAddr::V4(n)) => update_v4(check, o, n),
        (IpAddr::V6(o), IpAddr::V6(n)) => update_v6(check, o, n),
        _ => update_sum(check, fold(sum_addr(old)), fold(sum_addr(new))),
    }
}

/// Which end of a flow a rewrite touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The source address and port.
    Source,
    /// The destination address and port.
    Destination,
}

/// Changes the `endpoint` port of a TCP, UDP or SCTP header at the start of `l4` to `new_port`, and
/// fixes its checksum for that and for the pseudo-header address changing from `old_addr` to
/// `new_addr` (the caller rewrites the IP header itself, e.g. with `Ipv4Packet::rewrite_src_addr`).
///
/// * TCP and UDP: RFC 1624 incremental update, as the kernel's `tcp_fast_csum_update` /
///   `udp_fast_csum_update`. A UDP checksum of 0 means "none" and is left 0 (only the port changes);
///   an updated UDP checksum that comes out 0 is stored as `0xffff`.
/// * SCTP: the addresses are not covered; the port is set and the CRC32c recomputed, so `l4` must be
///   the whole SCTP packet.
///
/// `l4` must hold at least the fixed header (20 bytes for TCP, 8 for UDP, 12 for SCTP), else
/// `Err(Error)`; other protocols are `Err(Error)` and the buffer is untouched.
pub fn rewrite_l4(
    protocol: IpProtocol,
    l4: &mut [u8],
    endpoint: Endpoint,
    old_addr: &IpAddr,
    new_addr: &IpAddr,
    new_port: u16,
) -> Result<()> {
    let at = match endpoint {
        Endpoint::Source => 0,
        Endpoint::Destination => 2,
    };
    let (check_at, min_len) = match protocol {
        IpProtocol::Tcp => (16, tcp::HEADER_LEN),
        IpProtocol::Udp => (6, udp::HEADER_LEN),
        IpProtocol::Sctp => {
            if l4.len() < sctp::HEADER_LEN {
                return Err(Error);
            }
            super::set_u16(l4, at, new_port);
            let mut packet = sctp::Packet::new_unchecked(l4);
            packet.fill_checksum();
            return Ok(());
        }
        _ => return Err(Error),
    };
    if l4.len() < min_len {
        return Err(Error);
    }
    let old_port = super::get_u16(l4, at);
    let check = super::get_u16(l4, check_at);
    super::set_u16(l4, at, new_port);
    if protocol == IpProtocol::Udp && check == 0 {
        return Ok(());
    }
    let mut new_check = update_addr(check, old_addr, new_addr);
    new_check = update16(new_check, old_port, new_port);
    if protocol == IpProtocol::Udp && new_check == 0 {
        new_check = 0xffff;
    }
    super::set_u16(l4, check_at, new_check);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 1071 §3 example.
    #[test]
    fn rfc1071_example() {
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(finish(data(&bytes)), 0x220d);
    }

    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in bytes.chunks(2) {
            let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { (c[0] as u16) << 8 };
            sum += w as u32;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn data_matches_a_word_by_word_sum_at_every_length() {
        let mut rng = crate::rng::Rng::new(11);
        let buf: Vec<u8> = (0..300).map(|_| rng.next_u64() as u8).collect();
        for len in 0..buf.len() {
            assert_eq!(data(&buf[..len]), reference(&buf[..len]), "len {len}");
        }
        assert_eq!(data(&[0xff; 64]), 0xffff);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn fold_handles_extremes() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(combine(&[0xffff, 0xffff]), 0xffff);
    }

    /// RFC 1624 §4 example: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
    #[test]
    fn rfc1624_example() {
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn incremental_equals_recomputation_for_random_changes() {
        let mut rng = crate::rng::Rng::new(99);
        for _ in 0..2000 {
            let mut buf: Vec<u8> = (0..40).map(|_| rng.next_u64() as u8).collect();
            buf[0] |= 0x40; // never all zeros
            let check = finish(data(&buf));
            let at = 2 * rng.below(4) as usize;
            // 16-bit
            let old16 = u16::from_be_bytes([buf[at], buf[at + 1]]);
            let new16 = rng.next_u64() as u16;
            let mut b = buf.clone();
            b[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            assert_eq!(update16(check, old16, new16), finish(data(&b)));
            // 32-bit
            let old32 = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let new32 = rng.next_u64() as u32;
            let mut b = buf.clone();
            b[at..at + 4].copy_from_slice(&new32.to_be_bytes());
            assert_eq!(update32(check, old32, new32), finish(data(&b)));
            // 128-bit
            let mut o = [0u8; 16];
            o.copy_from_slice(&buf[at..at + 16]);
            let new128 = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
            let mut b = buf.clone();
            b[at..at + 16].copy_from_slice(&new128.to_be_bytes());
            assert_eq!(update128(check, u128::from_be_bytes(o), new128), finish(data(&b)));
        }
    }

    #[test]
    fn incremental_handles_zero_sums() {
        // Data whose sum is 0xffff (checksum 0) after the change.
        let buf = [0x12u8, 0x34, 0x00, 0x00];
        let check = finish(data(&buf));
        let new = [0x12u8, 0x34, 0xed, 0xcb];
        assert_eq!(finish(data(&new)), 0);
        assert_eq!(update16(check, 0, 0xedcb), 0);
        // And back.
        assert_eq!(update16(0, 0xedcb, 0), check);
        // A field going to and from all-ones.
        assert_eq!(update16(check, 0, 0xffff), finish(data(&[0x12, 0x34, 0xff, 0xff])));
    }

    #[test]
    fn pseudo_headers_agree_across_helpers() {
        let s4: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let d4: Ipv4Addr = "192.168.1.200".parse().unwrap();
        let p = pseudo_header_v4(&s4, &d4, IpProtocol::Tcp, 40);
        assert_eq!(p, pseudo_header(&s4.into(), &d4.into(), IpProtocol::Tcp, 40));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s4.octets());
        bytes.extend_from_slice(&d4.octets());
        bytes.extend_from_slice(&[0, 6, 0, 40]);
        assert_eq!(p, data(&bytes));

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:1:2".parse().unwrap();
        let p = pseudo_header_v6(&s6, &d6, IpProtocol::Udp, 70000);
        assert_eq!(p, pseudo_header(&s6.into(), &d6.into(), IpProtocol::Udp, 70000));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s6.octets());
        bytes.extend_from_slice(&d6.octets());
        bytes.extend_from_slice(&70000u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(p, data(&bytes));
    }

    #[test]
    fn update_addr_covers_every_family_pair() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        let base = [0x45u8, 0, 1, 2, 3, 4];
        let sum_with = |x: &IpAddr| {
            let mut v = base.to_vec();
            match x {
                IpAddr::V4(x) => v.extend_from_slice(&x.octets()),
                IpAddr::V6(x) => v.extend_from_slice(&x.octets()),
            }
            finish(data(&v))
        };
        for (x, y) in [(a, b), (b, a), (a, a), (b, b)] {
            assert_eq!(update_addr(sum_with(&x), &x, &y), sum_with(&y));
        }
    }

    #[test]
    fn rewrite_l4_rejects_short_or_unknown() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut short = [0u8; 19];
        assert_eq!(rewrite_l4(IpProtocol::Tcp, &mut short, Endpoint::Source, &a, &a, 1), Err(Error));
        assert_eq!(rewrite_l4(IpProtocol::Udp, &mut short[..7], Endpoint::Source, &a, &a, 1), Err(Error));
        assert_eq!(rewrite_l4(IpProtocol::Sctp, &mut short[..11], Endpoint::Source, &a, &a, 1), Err(Error));
        assert_eq!(rewrite_l4(IpProtocol::Icmp, &mut short, Endpoint::Source, &a, &a, 1), Err(Error));
        assert_eq!(short, [0u8; 19]);
    }

    #[test]
    fn rewrite_l4_keeps_a_zero_udp_checksum() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut udp = [0x04, 0x00, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
        rewrite_l4(IpProtocol::Udp, &mut udp, Endpoint::Destination, &a, &b, 5353).unwrap();
        assert_eq!(udp, [0x04, 0x00, 0x14, 0xe9, 0x00, 0x08, 0x00, 0x00]);
    }
}
