//! IP-in-IP decapsulation for LVS/TUN real servers.
//!
//! A director in tunnelling mode wraps the client's packet in a second IP
//! header addressed to the real server: IPv4-in-IPv4 (protocol 4, RFC 2003),
//! IPv6-in-IPv6 (next header 41, RFC 2473), and the mixed forms (IPv6-in-IPv4,
//! protocol 41, RFC 4213; IPv4-in-IPv6, next header 4). This module takes a
//! received Ethernet frame apart and returns the inner packet, with the checks
//! the kernel's tunnel drivers make: header lengths, the outer IPv4 header
//! checksum, no outer fragments (this decapsulator does not reassemble), the
//! inner version matching the outer protocol, and ECN handling as in
//! `INET_ECN_decapsulate` (RFC 6040): an outer CE mark is copied to an
//! ECN-capable inner packet, and a CE-marked packet whose inner header is not
//! ECN-capable is dropped.
//!
//! The same for the datagrams of the other two IPVS tunnel types, as the
//! sockets of `lvs-tun-decap` receive them: GUE ([`decapsulate_gue`], the
//! payload of a UDP datagram to the tunnel port) and GRE ([`decapsulate_gre`],
//! from the GRE header on; [`strip_ipv4`] first for an IPv4 raw socket, which
//! delivers the IP header too). The socket API hides the outer header of GUE
//! and IPv6 GRE packets, so no ECN handling there; the kernel has verified the
//! UDP checksum and reassembled fragments before a socket sees them.
//!
//! Pure byte handling: no I/O, no `unsafe`, no allocation, and no panic on any
//! input (every index is checked).

use lvs_core::wire::{gre, gue, EtherType, IpProtocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of an IPv4 payload (`IPPROTO_IPIP`).
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of an IPv6 payload (`IPPROTO_IPV6`).
pub const PROTO_IPV6: u8 = 41;
/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ECN_MASK: u8 = 0b11;
const ECN_CE: u8 = 0b11;
/// Extension headers walked in an outer IPv6 header before giving up.
const MAX_EXT_HEADERS: usize = 8;

/// Which tunnel a packet came through (outer family, inner family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// IPv4 inside IPv4 (protocol 4).
    V4InV4,
    /// IPv6 inside IPv4 (protocol 41).
    V6InV4,
    /// IPv4 inside IPv6 (next header 4).
    V4InV6,
    /// IPv6 inside IPv6 (next header 41).
    V6InV6,
}

impl TunnelKind {
    /// All kinds, in counter order.
    pub const ALL: [TunnelKind; 4] =
        [TunnelKind::V4InV4, TunnelKind::V6InV4, TunnelKind::V4InV6, TunnelKind::V6InV6];

    /// Short name for logs (`4in4`, `6in4`, `4in6`, `6in6`).
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::V4InV4 => "4in4",
            TunnelKind::V6InV4 => "6in4",
            TunnelKind::V4InV6 => "4in6",
            TunnelKind::V6InV6 => "6in6",
        }
    }

    /// Index into [`TunnelKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            TunnelKind::V4InV4 => 0,
            TunnelKind::V6InV4 => 1,
            TunnelKind::V4InV6 => 2,
            TunnelKind::V6InV6 => 3,
        }
    }
}

/// A decapsulated packet: a view of the inner IP packet inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    /// Tunnel type.
    pub kind: TunnelKind,
    /// Outer source (the director).
    pub outer_src: IpAddr,
    /// Outer destination (this real server).
    pub outer_dst: IpAddr,
    /// The inner packet, trimmed to the length its own header states.
    pub inner: &'a [u8],
    /// The outer header carried CE and the inner packet is ECN-capable: the
    /// inner packet must be marked CE before delivery ([`mark_ce`]).
    pub set_ce: bool,
}

/// Why a frame was not decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not a tunnel packet (another protocol).
    NotTunnel,
    /// A tunnel packet whose outer destination is not one of ours.
    NotLocal,
    /// The outer packet is a fragment (not reassembled here).
    Fragment,
    /// Outer CE mark on an inner packet that is not ECN-capable (RFC 6040: drop).
    EcnDrop,
    /// Truncated or inconsistent headers; the text says which check failed.
    Malformed(&'static str),
}

/// Decapsulates one Ethernet frame (802.1Q / 802.1ad tags allowed).
/// `is_local` decides whether an outer destination address belongs to this
/// host.
pub fn decapsulate_frame(frame: &[u8], is_local: impl Fn(IpAddr) -> bool) -> Result<Decapsulated<'_>, Skip> {
    let mut off = 12;
    let mut ethertype = be16(frame, off).ok_or(Skip::Malformed("short Ethernet header"))?;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        off += 4;
        ethertype = be16(frame, off).ok_or(Skip::Malformed("short VLAN tag"))?;
    }
    let packet = frame.get(off + 2..).ok_or(Skip::Malformed("short Ethernet header"))?;
    decapsulate_ip(ethertype, packet, is_local)
}

/// Decapsulates one IP packet whose link layer said `ethertype`.
pub fn decapsulate_ip(
    ethertype: u16,
    packet: &[u8],
    is_local: impl Fn(IpAddr) -> bool,
) -> Result<Decapsulated<'_>, Skip> {
    let outer = match ethertype {
        ETHERTYPE_IPV4 => outer_v4(packet)?,
        ETHERTYPE_IPV6 => outer_v6(packet)?,
        _ => return Err(Skip::NotIp),
    };
    if !is_local(outer.dst) {
        return Err(Skip::NotLocal);
    }
    let (inner, inner_ecn) = match outer.proto {
        PROTO_IPIP => inner_v4(outer.payload)?,
        _ => inner_v6(outer.payload)?,
    };
    let kind = match (outer.dst, outer.proto) {
        (IpAddr::V4(_), PROTO_IPIP) => TunnelKind::V4InV4,
        (IpAddr::V4(_), _) => TunnelKind::V6InV4,
        (IpAddr::V6(_), PROTO_IPIP) => TunnelKind::V4InV6,
        (IpAddr::V6(_), _) => TunnelKind::V6InV6,
    };
    let mut set_ce = false;
    if outer.ecn == ECN_CE {
        if inner_ecn == 0 {
            return Err(Skip::EcnDrop);
        }
        set_ce = inner_ecn != ECN_CE;
    }
    Ok(Decapsulated { kind, outer_src: outer.src, outer_dst: outer.dst, inner, set_ce })
}

/// The inner packet of a GUE datagram (the UDP payload): a variant 0 data
/// message with protocol 4 or 41, or variant 1. Returns the inner packet,
/// trimmed to its own length, and whether it is IPv6.
pub fn decapsulate_gue(payload: &[u8]) -> Result<(&[u8], bool), Skip> {
    let p = gue::Packet::new_checked(payload).map_err(|_| Skip::Malformed("GUE header truncated"))?;
    if p.version() == 0 && p.control() {
        return Err(Skip::NotTunnel);
    }
    let r = gue::Repr::parse(&p).map_err(|_| Skip::Malformed("GUE header: variant, flags or protocol"))?;
    inner_packet(r.protocol == IpProtocol::Ipv6, &payload[p.header_len()..])
}

/// The inner packet of a GRE packet (from the GRE header on): version 0,
/// no routing, protocol 0x0800 or 0x86DD, checksum verified when present.
pub fn decapsulate_gre(packet: &[u8]) -> Result<(&[u8], bool), Skip> {
    let p = gre::Packet::new_checked(packet).map_err(|_| Skip::Malformed("GRE header truncated"))?;
    let r = gre::Repr::parse(&p).map_err(|_| {
        if p.verify_checksum() {
            Skip::Malformed("GRE header: version or flags")
        } else {
            Skip::Malformed("GRE checksum")
        }
    })?;
    let rest = &packet[p.header_len()..];
    match r.protocol {
        EtherType::Ipv4 => inner_packet(false, rest),
        EtherType::Ipv6 => inner_packet(true, rest),
        _ => Err(Skip::NotTunnel),
    }
}

/// An IPv4 packet as a raw socket delivers it: the destination and the
/// payload (after header checks; the kernel has already reassembled fragments
/// and verified the header checksum).
pub fn strip_ipv4(packet: &[u8]) -> Result<(IpAddr, &[u8]), Skip> {
    const WHAT: [&str; 4] = [
        "outer IPv4 header truncated",
        "outer IPv4 version is not 4",
        "outer IPv4 header length",
        "outer IPv4 total length",
    ];
    let (ihl, p) = v4_header(packet, &WHAT)?;
    let dst = v4_addr(p, 16).ok_or(Skip::Malformed(WHAT[0]))?;
    Ok((dst.into(), &p[ihl..]))
}

fn inner_packet(v6: bool, p: &[u8]) -> Result<(&[u8], bool), Skip> {
    let (inner, _) = if v6 { inner_v6(p)? } else { inner_v4(p)? };
    Ok((inner, v6))
}

/// Marks an inner packet CE (the [`Decapsulated::set_ce`] case), fixing the
/// IPv4 header checksum. Returns `false` (and changes nothing) if `packet`
/// is not a well-formed IPv4 or IPv6 header.
pub fn mark_ce(packet: &mut [u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl {
                return false;
            }
            packet[1] |= ECN_CE;
            packet[10] = 0;
            packet[11] = 0;
            let sum = ipv4_checksum(&packet[..ihl]);
            packet[10..12].copy_from_slice(&sum.to_be_bytes());
            true
        }
        Some(6) if packet.len() >= 40 => {
            // Traffic class = low nibble of byte 0, high nibble of byte 1;
            // ECN is its two low bits, i.e. bits 0x30 of byte 1.
            packet[1] |= ECN_CE << 4;
            true
        }
        _ => false,
    }
}

/// The Internet checksum (RFC 1071) of `data`, as the value to store: the
/// result over a header that contains its own correct checksum is 0.
pub fn ipv4_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Outer<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ecn: u8,
    payload: &'a [u8],
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

fn v4_addr(b: &[u8], off: usize) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn v6_addr(b: &[u8], off: usize) -> Option<Ipv6Addr> {
    let a: [u8; 16] = b.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(a))
}

/// Validates an IPv4 header at the start of `p`; returns (header length,
/// packet trimmed to its total length).
fn v4_header<'a>(p: &'a [u8], what: &[&'static str; 4]) -> Result<(usize, &'a [u8]), Skip> {
    if p.first().is_some_and(|b| b >> 4 != 4) {
        return Err(Skip::Malformed(what[1]));
    }
    if p.len() < 20 {
        return Err(Skip::Malformed(what[0]));
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || ihl > p.len() {
        return Err(Skip::Malformed(what[2]));
    }
    if total < ihl || total > p.len() {
        return Err(Skip::Malformed(what[3]));
    }
    Ok((ihl, &p[..total]))
}

fn outer_v4(p: &[u8]) -> Result<Outer<'_>, Skip> {
    const WHAT: [&str; 4] = [
        "outer IPv4 header truncated",
        "outer IPv4 version is not 4",
        "outer IPv4 header length",
        "outer IPv4 total length",
    ];
    let (ihl, p) = v4_header(p, &WHAT)?;
    let proto = p[9];
    if proto != PROTO_IPIP && proto != PROTO_IPV6 {
        return Err(Skip::NotTunnel);
    }
    if ipv4_checksum(&p[..ihl]) != 0 {
        return Err(Skip::Malformed("outer IPv4 header checksum"));
    }
    let frag = u16::from_be_bytes([p[6], p[7]]);
    if frag & 0x3fff != 0 {
        // More-fragments set or a non-zero offset.
        return Err(Skip::Fragment);
    }
    let src = v4_addr(p, 12).ok_or(Skip::Malformed(WHAT[0]))?;
    let dst = v4_addr(p, 16).ok_or(Skip::Malformed(WHAT[0]))?;
    Ok(Outer { src: src.into(), dst: dst.into(), proto, ecn: p[1] & ECN_MASK, payload: &p[ihl..] })
}

fn outer_v6(p: &[u8]) -> Result<Outer<'_>, Skip> {
    if p.len() < 40 {
        return Err(Skip::Malformed("outer IPv6 header truncated"));
    }
    if p[0] >> 4 != 6 {
        return Err(Skip::Malformed("outer IPv6 version is not 6"));
    }
    let payload_len = usize::from(u16::from_be_bytes([p[4], p[5]]));
    if payload_len == 0 {
        return Err(Skip::Malformed("outer IPv6 jumbogram or empty payload"));
    }
    let p = p.get(..40 + payload_len).ok_or(Skip::Malformed("outer IPv6 payload length"))?;
    let mut next = p[6];
    let mut off = 40;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            PROTO_IPIP | PROTO_IPV6 => {
                let src = v6_addr(p, 8).ok_or(Skip::Malformed("outer IPv6 header truncated"))?;
                let dst = v6_addr(p, 24).ok_or(Skip::Malformed("outer IPv6 header truncated"))?;
                let tclass = ((p[0] & 0x0f) << 4) | (p[1] >> 4);
                return Ok(Outer {
                    src: src.into(),
                    dst: dst.into(),
                    proto: next,
                    ecn: tclass & ECN_MASK,
                    payload: &p[off..],
                });
            }
            // Hop-by-hop, routing, destination options: skip.
            0 | 43 | 60 => {
                let (nh, len) = match (p.get(off), p.get(off + 1)) {
                    (Some(&nh), Some(&len)) => (nh, (usize::from(len) + 1) * 8),
                    _ => return Err(Skip::Malformed("outer IPv6 extension header truncated")),
                };
                if off + len > p.len() {
                    return Err(Skip::Malformed("outer IPv6 extension header truncated"));
                }
                next = nh;
                off += len;
            }
            44 => return Err(Skip::Fragment),
            _ => return Err(Skip::NotTunnel),
        }
    }
    Err(Skip::Malformed("too many outer IPv6 extension headers"))
}

/// The inner IPv4 packet (trimmed) and its ECN bits.
fn inner_v4(p: &[u8]) -> Result<(&[u8], u8), Skip> {
    const WHAT: [&str; 4] = [
        "inner IPv4 header truncated",
        "inner packet is not IPv4 (protocol 4)",
        "inner IPv4 header length",
        "inner IPv4 total length",
    ];
    let (_, p) = v4_header(p, &WHAT)?;
    Ok((p, p[1] & ECN_MASK))
}

/// The inner IPv6 packet (trimmed) and its ECN bits.
fn inner_v6(p: &[u8]) -> Result<(&[u8], u8), Skip> {
    if p.first().is_some_and(|b| b >> 4 != 6) {
        return Err(Skip::Malformed("inner packet is not IPv6 (protocol 41)"));
    }
    if p.len() < 40 {
        return Err(Skip::Malformed("inner IPv6 header truncated"));
    }
    let payload_len = usize::from(u16::from_be_bytes([p[4], p[5]]));
    if payload_len == 0 {
        return Err(Skip::Malformed("inner IPv6 jumbogram or empty payload"));
    }
    let p = p.get(..40 + payload_len).ok_or(Skip::Malformed("inner IPv6 payload length"))?;
    let tclass = ((p[0] & 0x0f) << 4) | (p[1] >> 4);
    Ok((p, tclass & ECN_MASK))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTER_SRC4: [u8; 4] = [10, 91, 0, 1];
    const OUTER_DST4: [u8; 4] = [10, 91, 0, 2];
    const SRC6: [u8; 16] = [0xfd, 0, 0, 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST6: [u8; 16] = [0xfd, 0, 0, 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, tos: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut h = vec![0x45, tos, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let sum = ipv4_checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, tclass: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60 | (tclass >> 4), tclass << 4, 0, 0];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(payload);
        h
    }

    fn eth(ethertype: u16, packet: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(packet);
        f
    }

    fn inner4(tos: u8) -> Vec<u8> {
        // UDP 10.91.1.1:4000 -> 10.91.9.9:7 with 4 payload bytes (checksum 0: none).
        let udp = [0x0f, 0xa0, 0, 7, 0, 12, 0, 0, b'p', b'i', b'n', b'g'];
        ipv4([10, 91, 1, 1], [10, 91, 9, 9], 17, tos, &udp)
    }

    fn inner6(tclass: u8) -> Vec<u8> {
        let udp = [0x0f, 0xa0, 0, 7, 0, 12, 0x12, 0x34, b'p', b'i', b'n', b'g'];
        let mut vip = SRC6;
        vip[15] = 9;
        ipv6(SRC6, vip, 17, tclass, &udp)
    }

    fn local(a: IpAddr) -> bool {
        a == IpAddr::from(OUTER_DST4) || a == IpAddr::from(DST6)
    }

    #[test]
    fn four_in_four() {
        let inner = inner4(0);
        let frame = eth(ETHERTYPE_IPV4, &ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &inner));
        let d = decapsulate_frame(&frame, local).unwrap();
        assert_eq!(d.kind, TunnelKind::V4InV4);
        assert_eq!(d.inner, &inner[..]);
        assert_eq!(d.outer_src, IpAddr::from(OUTER_SRC4));
        assert_eq!(d.outer_dst, IpAddr::from(OUTER_DST4));
        assert!(!d.set_ce);
    }

    #[test]
    fn all_four_combinations() {
        let cases: [(Vec<u8>, u16, TunnelKind, Vec<u8>); 4] = [
            (ipv4(OUTER_SRC4, OUTER_DST4, 4, 0, &inner4(0)), ETHERTYPE_IPV4, TunnelKind::V4InV4, inner4(0)),
            (ipv4(OUTER_SRC4, OUTER_DST4, 41, 0, &inner6(0)), ETHERTYPE_IPV4, TunnelKind::V6InV4, inner6(0)),
            (ipv6(SRC6, DST6, 4, 0, &inner4(0)), ETHERTYPE_IPV6, TunnelKind::V4InV6, inner4(0)),
            (ipv6(SRC6, DST6, 41, 0, &inner6(0)), ETHERTYPE_IPV6, TunnelKind::V6InV6, inner6(0)),
        ];
        for (outer, et, kind, inner) in cases {
            let frame = eth(et, &outer);
            let d = decapsulate_frame(&frame, local).unwrap();
            assert_eq!(d.kind, kind);
            assert_eq!(d.inner, &inner[..], "{kind:?}");
        }
    }

    #[test]
    fn vlan_tags_and_ethernet_padding() {
        let mut inner = inner4(0);
        inner.truncate(20 + 8); // a UDP packet without payload: 28 bytes
        inner[2..4].copy_from_slice(&28u16.to_be_bytes());
        inner[10..12].copy_from_slice(&[0, 0]);
        let sum = ipv4_checksum(&inner[..20]);
        inner[10..12].copy_from_slice(&sum.to_be_bytes());
        let outer = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &inner);
        // Two tags, then padding after the 48-byte packet up to a 64-byte frame.
        let mut frame =
            vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 7, 0x08, 0x00];
        frame.extend_from_slice(&outer);
        frame.resize(64 + 8, 0xee);
        let d = decapsulate_frame(&frame, local).unwrap();
        assert_eq!(d.inner, &inner[..], "padding trimmed by the outer total length");
    }

    #[test]
    fn outer_ipv6_extension_headers() {
        // Hop-by-hop (8 bytes, PadN) then destination options (8 bytes), then IPv4.
        let mut payload = vec![60, 0, 1, 4, 0, 0, 0, 0, PROTO_IPIP, 0, 1, 4, 0, 0, 0, 0];
        payload.extend_from_slice(&inner4(0));
        let frame = eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 0, 0, &payload));
        let d = decapsulate_frame(&frame, local).unwrap();
        assert_eq!(d.kind, TunnelKind::V4InV6);
        assert_eq!(d.inner, &inner4(0)[..]);
        // A fragment header is not reassembled.
        let frag = [PROTO_IPIP, 0, 0, 1, 0, 0, 0, 1];
        let frame = eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 44, 0, &frag));
        assert_eq!(decapsulate_frame(&frame, local), Err(Skip::Fragment));
        // An extension header running past the payload.
        let frame = eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 60, 0, &[4, 3, 0, 0, 0, 0, 0, 0]));
        assert!(matches!(decapsulate_frame(&frame, local), Err(Skip::Malformed(_))));
        // A loop of extension headers is bounded.
        let mut many = Vec::new();
        for _ in 0..20 {
            many.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let frame = eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 60, 0, &many));
        assert_eq!(
            decapsulate_frame(&frame, local),
            Err(Skip::Malformed("too many outer IPv6 extension headers"))
        );
    }

    #[test]
    fn skips_what_is_not_ours() {
        let arp = eth(0x0806, &[0; 28]);
        assert_eq!(decapsulate_frame(&arp, local), Err(Skip::NotIp));
        let udp = eth(ETHERTYPE_IPV4, &ipv4(OUTER_SRC4, OUTER_DST4, 17, 0, &[0; 8]));
        assert_eq!(decapsulate_frame(&udp, local), Err(Skip::NotTunnel));
        let other = eth(ETHERTYPE_IPV4, &ipv4(OUTER_SRC4, [10, 91, 0, 3], 4, 0, &inner4(0)));
        assert_eq!(decapsulate_frame(&other, local), Err(Skip::NotLocal));
        let tcp6 = eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 6, 0, &[0; 20]));
        assert_eq!(decapsulate_frame(&tcp6, local), Err(Skip::NotTunnel));
    }

    #[test]
    fn outer_checks() {
        let good = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &inner4(0));
        let mut bad_sum = good.clone();
        bad_sum[8] = 1; // TTL changed, checksum not updated
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &bad_sum, local),
            Err(Skip::Malformed("outer IPv4 header checksum"))
        );
        let mut frag = good.clone();
        frag[6] = 0x20; // MF
        frag[10..12].copy_from_slice(&[0, 0]);
        let s = ipv4_checksum(&frag[..20]);
        frag[10..12].copy_from_slice(&s.to_be_bytes());
        assert_eq!(decapsulate_ip(ETHERTYPE_IPV4, &frag, local), Err(Skip::Fragment));
        let mut long = good.clone();
        long[2..4].copy_from_slice(&2000u16.to_be_bytes());
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &long, local),
            Err(Skip::Malformed("outer IPv4 total length"))
        );
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &v6, local),
            Err(Skip::Malformed("outer IPv4 version is not 4"))
        );
        let jumbo = ipv6(SRC6, DST6, 41, 0, &[]);
        assert!(matches!(decapsulate_ip(ETHERTYPE_IPV6, &jumbo, local), Err(Skip::Malformed(_))));
    }

    #[test]
    fn inner_checks() {
        // Protocol 4 carrying IPv6, protocol 41 carrying IPv4.
        let mixed = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &inner6(0));
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &mixed, local),
            Err(Skip::Malformed("inner packet is not IPv4 (protocol 4)"))
        );
        let mixed = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPV6, 0, &inner4(0));
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &mixed, local),
            Err(Skip::Malformed("inner packet is not IPv6 (protocol 41)"))
        );
        // Inner header claims more than the outer carries.
        let mut short = inner4(0);
        short.truncate(30);
        let p = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &short);
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &p, local),
            Err(Skip::Malformed("inner IPv4 total length"))
        );
        let p = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &[0x45, 0, 0]);
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV4, &p, local),
            Err(Skip::Malformed("inner IPv4 header truncated"))
        );
        let mut i6 = inner6(0);
        i6.truncate(45);
        let p = ipv6(SRC6, DST6, PROTO_IPV6, 0, &i6);
        assert_eq!(
            decapsulate_ip(ETHERTYPE_IPV6, &p, local),
            Err(Skip::Malformed("inner IPv6 payload length"))
        );
        // Trailing bytes after the inner packet are cut off.
        let mut padded = inner4(0);
        let want = padded.clone();
        padded.extend_from_slice(&[0xaa; 6]);
        let p = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, 0, &padded);
        assert_eq!(decapsulate_ip(ETHERTYPE_IPV4, &p, local).unwrap().inner, &want[..]);
    }

    #[test]
    fn ecn_follows_rfc6040() {
        // outer ECN x inner ECN -> result
        for (outer, inner, expect) in [
            (0u8, 0u8, Ok(false)),
            (0, 1, Ok(false)),
            (2, 0, Ok(false)),
            (1, 2, Ok(false)),
            (3, 0, Err(Skip::EcnDrop)),
            (3, 1, Ok(true)),
            (3, 2, Ok(true)),
            (3, 3, Ok(false)),
        ] {
            let p = ipv4(OUTER_SRC4, OUTER_DST4, PROTO_IPIP, outer, &inner4(inner));
            let got = decapsulate_ip(ETHERTYPE_IPV4, &p, local).map(|d| d.set_ce);
            assert_eq!(got, expect, "outer {outer} inner {inner}");
            let p = ipv6(SRC6, DST6, PROTO_IPV6, outer, &inner6(inner));
            let got = decapsulate_ip(ETHERTYPE_IPV6, &p, local).map(|d| d.set_ce);
            assert_eq!(got, expect, "v6 outer {outer} inner {inner}");
        }
    }

    #[test]
    fn mark_ce_keeps_headers_valid() {
        let mut p = inner4(2);
        assert!(mark_ce(&mut p));
        assert_eq!(p[1] & 3, 3);
        assert_eq!(ipv4_checksum(&p[..20]), 0, "checksum fixed");
        let mut p = inner6(1);
        assert!(mark_ce(&mut p));
        assert_eq!(((p[0] & 0xf) << 4 | p[1] >> 4) & 3, 3);
        assert_eq!(p[0] >> 4, 6);
        assert!(!mark_ce(&mut []));
        assert!(!mark_ce(&mut [0x45, 0, 0]));
        assert!(!mark_ce(&mut [0x60; 10]));
    }

    #[test]
    fn checksum_known_value() {
        // RFC 1071 style example header (from Wikipedia's IPv4 checksum article).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
        assert_eq!(ipv4_checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn gue_and_gre_payloads() {
        use lvs_core::wire::{Encap, Encapsulation, Tunnel};
        let outer = Encap {
            src_addr: IpAddr::from(OUTER_SRC4),
            dst_addr: IpAddr::from(OUTER_DST4),
            hop_limit: 64,
            ident: 1,
        };
        for (inner, v6) in [(inner4(0), false), (inner6(0), true)] {
            for encapsulation in [
                Encapsulation::Gue { src_port: 40000, dst_port: 6080, checksum: false },
                Encapsulation::Gre { checksum: false },
                Encapsulation::Gre { checksum: true },
            ] {
                let t = Tunnel { outer, encapsulation };
                let mut pkt = vec![0u8; t.header_len()];
                pkt.extend_from_slice(&inner);
                pkt.extend_from_slice(&[0xaa; 3]); // trailing bytes are cut off
                let n = pkt.len();
                pkt[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                t.emit(&mut pkt).unwrap();
                let (dst, l4) = strip_ipv4(&pkt).unwrap();
                assert_eq!(dst, IpAddr::from(OUTER_DST4));
                let got = match encapsulation {
                    Encapsulation::Gue { .. } => decapsulate_gue(&l4[8..]),
                    _ => decapsulate_gre(l4),
                };
                assert_eq!(got, Ok((&inner[..], v6)), "{encapsulation:?}");
            }
        }
        // GUE refusals: control message, unknown flag, protocol 17, truncation.
        let mut gue = vec![0x00, 0x04, 0, 0];
        gue.extend_from_slice(&inner4(0));
        let mut control = gue.clone();
        control[0] = 0x20;
        assert_eq!(decapsulate_gue(&control), Err(Skip::NotTunnel));
        let mut flag = gue.clone();
        flag[2] = 0x80;
        assert!(matches!(decapsulate_gue(&flag), Err(Skip::Malformed(_))));
        let mut udp = gue.clone();
        udp[1] = 17;
        assert!(matches!(decapsulate_gue(&udp), Err(Skip::Malformed(_))));
        assert_eq!(decapsulate_gue(&gue[..3]), Err(Skip::Malformed("GUE header truncated")));
        assert!(matches!(decapsulate_gue(&gue[..30]), Err(Skip::Malformed(_))));
        // GRE refusals: bad checksum, other protocol, IPv6 announced but IPv4 inside.
        let mut gre = vec![0x80, 0x00, 0x08, 0x00, 0, 0, 0, 0];
        gre.extend_from_slice(&inner4(0));
        assert_eq!(decapsulate_gre(&gre), Err(Skip::Malformed("GRE checksum")));
        let mut other = vec![0x00, 0x00, 0x88, 0x47];
        other.extend_from_slice(&inner4(0));
        assert_eq!(decapsulate_gre(&other), Err(Skip::NotTunnel));
        other[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert!(matches!(decapsulate_gre(&other), Err(Skip::Malformed(_))));
        assert!(matches!(strip_ipv4(&[0x45, 0, 0]), Err(Skip::Malformed(_))));
    }

    #[test]
    fn never_panics_on_truncation_or_noise() {
        let frames = [
            eth(ETHERTYPE_IPV4, &ipv4(OUTER_SRC4, OUTER_DST4, 4, 3, &inner4(1))),
            eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 41, 3, &inner6(2))),
            eth(ETHERTYPE_IPV6, &ipv6(SRC6, DST6, 0, 0, &[41, 0, 1, 4, 0, 0, 0, 0])),
        ];
        for f in &frames {
            for n in 0..=f.len() {
                let _ = decapsulate_frame(&f[..n], |_| true);
            }
        }
        // Deterministic noise (xorshift), with plausible first bytes.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = [0u8; 160];
        for i in 0..20_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let (et, first) = if i % 2 == 0 { ([0x08, 0x00], 0x45) } else { ([0x86, 0xdd], 0x60) };
            buf[12..14].copy_from_slice(&et);
            buf[14] = first;
            buf[14 + 9] = if i % 3 == 0 { 4 } else { 41 };
            let len = (x as usize) % buf.len();
            let _ = (decapsulate_gue(&buf[14..len.max(14)]), decapsulate_gre(&buf[14..len.max(14)]));
            let _ = strip_ipv4(&buf[14..len.max(14)]);
            if let Ok(d) = decapsulate_frame(&buf[..len], |_| true) {
                let mut copy = d.inner.to_vec();
                let _ = mark_ce(&mut copy);
            }
        }
    }
}
