//! The three encapsulations of the tunnel method (ipvsadm `-i --tun-type ipip|gue|gre`), built
//! in one place so the packet path asks for a header length, leaves room for it in front of the
//! inner packet and has everything written there, checksums included:
//!
//! | type | after the outer IP header | outer protocol | overhead (IPv4 / IPv6 outer) |
//! |---|---|---|---|
//! | IPIP | nothing | 4 / 41 | 20 / 40 |
//! | GUE  | UDP (sport from the flow hash, dport = tun port) + GUE (variant 0, hlen 0, proto 4 / 41) | 17 | 32 / 52 |
//! | GRE  | GRE (protocol 0x0800 / 0x86DD; with checksum: C bit, checksum, reserved) | 47 | 24 (28) / 44 (48) |
//!
//! UDP checksum (`ip_vs_tunnel_xmit*` → `udp_set_csum` / `udp6_set_csum`): with `--tun-csum`
//! (and `--tun-remcsum`, see [`super::gue`]) the full checksum; with `--tun-nocsum` zero, over
//! IPv6 too: Linux sends zero-checksum UDP/IPv6 for tunnels as RFC 6935/6936 allow, and a
//! receiver must accept it (a `fou` port, or a socket with `UDP_NO_CHECK6_RX`).

use super::{gre, gue, ipip, udp, Error, EtherType, IpProtocol, Result};
use super::{Encap, UdpPacket};

/// What goes between the outer IP header and the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// Nothing (IP-in-IP).
    Ipip,
    /// UDP and a GUE header.
    Gue {
        /// UDP source port (see [`gue::flow_source_port`]).
        src_port: u16,
        /// UDP destination port: the real server's tunnel port.
        dst_port: u16,
        /// Fill the UDP checksum (else 0).
        checksum: bool,
    },
    /// A GRE header.
    Gre {
        /// Carry the GRE checksum.
        checksum: bool,
    },
}

impl Encapsulation {
    /// Its length: 0, 12, or 4 (8 with checksum).
    #[inline]
    pub const fn header_len(&self) -> usize {
        match self {
            Encapsulation::Ipip => 0,
            Encapsulation::Gue { .. } => udp::HEADER_LEN + gue::HEADER_LEN,
            Encapsulation::Gre { checksum } => {
                gre::Repr { protocol: EtherType::Ipv4, checksum: *checksum }.buffer_len()
            }
        }
    }
}

/// A complete tunnel header: outer IP, then the encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// The outer IP header.
    pub outer: Encap,
    /// What follows it.
    pub encapsulation: Encapsulation,
}

impl Tunnel {
    /// Everything in front of the inner packet: the MTU overhead.
    #[inline]
    pub const fn header_len(&self) -> usize {
        self.outer.header_len() + self.encapsulation.header_len()
    }

    /// Checks that [`Tunnel::emit`] will succeed for `inner`: address families agree, `inner`
    /// starts with an IPv4 or IPv6 header, and the outer packet fits 65535 bytes (IPv4 total
    /// length, IPv6 payload length, UDP length). Returns the outer packet's length.
    pub fn check(&self, inner: &[u8]) -> Result<usize> {
        let mut scratch = [0u8; super::ipv6::HEADER_LEN];
        let payload = self.encapsulation.header_len() + inner.len();
        self.outer.emit_outer(&mut scratch, self.outer_protocol(inner)?, payload, inner)?;
        Ok(self.header_len() + inner.len())
    }

    /// The outer IP protocol for `inner`.
    fn outer_protocol(&self, inner: &[u8]) -> Result<IpProtocol> {
        let inner_protocol = ipip::inner_protocol(inner)?;
        Ok(match self.encapsulation {
            Encapsulation::Ipip => inner_protocol,
            Encapsulation::Gue { .. } => IpProtocol::Udp,
            Encapsulation::Gre { .. } => IpProtocol::Gre,
        })
    }

    /// Writes the tunnel headers into `packet[..header_len()]`, in front of the inner packet in
    /// `packet[header_len()..]` (the whole rest of the buffer), checksums included. `Err`, with
    /// `packet` unchanged, where [`Tunnel::check`] fails.
    pub fn emit(&self, packet: &mut [u8]) -> Result<()> {
        let ohl = self.outer.header_len();
        let hl = self.header_len();
        if packet.len() < hl {
            return Err(Error);
        }
        let (head, inner) = packet.split_at_mut(hl);
        let protocol = self.outer_protocol(inner)?;
        self.outer.emit_outer(head, protocol, self.encapsulation.header_len() + inner.len(), inner)?;
        let inner_protocol = ipip::inner_protocol(inner)?;
        let body = &mut packet[ohl..];
        match self.encapsulation {
            Encapsulation::Ipip => {}
            Encapsulation::Gue { src_port, dst_port, checksum } => {
                let len = body.len() as u16;
                gue::Repr { protocol: inner_protocol }
                    .emit(&mut gue::Packet::new_unchecked(&mut body[udp::HEADER_LEN..]));
                let mut u = UdpPacket::new_unchecked(body);
                u.set_src_port(src_port);
                u.set_dst_port(dst_port);
                u.set_len(len);
                if checksum {
                    u.fill_checksum(&self.outer.src_addr, &self.outer.dst_addr);
                } else {
                    u.set_checksum(0);
                }
            }
            Encapsulation::Gre { checksum } => {
                let protocol =
                    if inner_protocol == IpProtocol::IpIp { EtherType::Ipv4 } else { EtherType::Ipv6 };
                gre::Repr { protocol, checksum }.emit(&mut gre::Packet::new_unchecked(body));
            }
        }
        Ok(())
    }
}

/// A received tunnel packet taken apart (tests and the real-server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    /// How it was encapsulated (for GUE with `checksum` = the UDP checksum was not zero).
    pub encapsulation: Encapsulation,
    /// The inner packet.
    pub inner: &'a [u8],
}

/// Takes an outer IPv4/IPv6 packet apart: IPIP, GUE to any UDP port (UDP checksum verified
/// unless zero, which is accepted over IPv6 as for a tunnel), or GRE (checksum verified when
/// present), with a complete IPv4/IPv6 packet inside. `Err` for anything else, fragments
/// included.
pub fn decapsulate(packet: &[u8]) -> Result<Decapsulated<'_>> {
    let d = decapsulate_outer(packet)?;
    let complete = match d.inner.first().map(|b| b >> 4) {
        Some(4) => super::Ipv4Packet::new_checked(d.inner).is_ok(),
        Some(6) => super::Ipv6Packet::new_checked(d.inner).is_ok(),
        _ => false,
    };
    if !complete {
        return Err(Error);
    }
    Ok(d)
}

fn decapsulate_outer(packet: &[u8]) -> Result<Decapsulated<'_>> {
    let (src, dst, protocol, payload) = match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let p = super::Ipv4Packet::new_checked(packet)?;
            if p.is_fragment() || !p.verify_checksum() {
                return Err(Error);
            }
            let payload = &packet[p.header_len() as usize..p.total_len() as usize];
            (p.src_addr().into(), p.dst_addr().into(), p.protocol(), payload)
        }
        Some(6) => {
            let p = super::Ipv6Packet::new_checked(packet)?;
            (p.src_addr().into(), p.dst_addr().into(), p.next_header(), &packet[40..p.total_len()])
        }
        _ => return Err(Error),
    };
    match protocol {
        IpProtocol::IpIp | IpProtocol::Ipv6 => {
            let (_, inner) = ipip::decapsulate(packet)?;
            Ok(Decapsulated { encapsulation: Encapsulation::Ipip, inner })
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(payload)?;
            let checksum = u.checksum() != 0;
            if checksum && !u.verify_checksum(&src, &dst) {
                return Err(Error);
            }
            let g = gue::Packet::new_checked(u.payload())?;
            gue::Repr::parse(&g)?;
            let encapsulation =
                Encapsulation::Gue { src_port: u.src_port(), dst_port: u.dst_port(), checksum };
            let inner = &payload[udp::HEADER_LEN + g.header_len()..u.len() as usize];
            Ok(Decapsulated { encapsulation, inner })
        }
        IpProtocol::Gre => {
            let g = gre::Packet::new_checked(payload)?;
            let r = gre::Repr::parse(&g)?;
            let inner = &payload[g.header_len()..];
            let version = inner.first().map(|b| b >> 4);
            match (r.protocol, version) {
                (EtherType::Ipv4, Some(4)) | (EtherType::Ipv6, Some(6)) => {}
                _ => return Err(Error),
            }
            Ok(Decapsulated { encapsulation: Encapsulation::Gre { checksum: r.checksum }, inner })
        }
        _ => Err(Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum, ipv4, ipv6, Ipv4Packet, Ipv6Packet};
    use std::net::{IpAddr, Ipv4Addr};

    /// A fixed inner IPv4/UDP packet (192.0.2.7:40000 → 198.51.100.10:80, "hi").
    fn inner_v4() -> Vec<u8> {
        let mut b = vec![0u8; 30];
        ipv4::Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 7),
            dst_addr: Ipv4Addr::new(198, 51, 100, 10),
            protocol: IpProtocol::Udp,
            payload_len: 10,
            ttl: 63,
            tos: 0x28,
            ident: 7,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut b[..]), &Default::default());
        b[20..].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0x00, 0x0a, 0x00, 0x00, b'h', b'i']);
        b
    }

    fn inner_v6() -> Vec<u8> {
        let mut b = vec![0u8; 44];
        ipv6::Repr {
            src_addr: "2001:db8::7".parse().unwrap(),
            dst_addr: "2001:db8::a".parse().unwrap(),
            next_header: IpProtocol::Tcp,
            payload_len: 4,
            hop_limit: 63,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        b[40..].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        b
    }

    fn outer4() -> Encap {
        Encap {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            hop_limit: 63,
            ident: 0x0102,
        }
    }

    fn outer6() -> Encap {
        Encap {
            src_addr: "fd00::1".parse().unwrap(),
            dst_addr: "fd00::2".parse().unwrap(),
            hop_limit: 63,
            ident: 0,
        }
    }

    fn build(t: &Tunnel, inner: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; t.header_len() + inner.len()];
        b[t.header_len()..].copy_from_slice(inner);
        assert_eq!(t.check(inner), Ok(b.len()));
        t.emit(&mut b).unwrap();
        b
    }

    /// The UDP checksum recomputed from scratch: RFC 768 pseudo-header written out by hand.
    fn udp_reference(src: &[u8], dst: &[u8], segment: &[u8]) -> u16 {
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(src);
        pseudo.extend_from_slice(dst);
        if src.len() == 4 {
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        } else {
            pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
        let mut seg = segment.to_vec();
        seg[6..8].copy_from_slice(&[0, 0]);
        pseudo.extend_from_slice(&seg);
        let mut sum = 0u32;
        for pair in pseudo.chunks(2) {
            sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        match !(sum as u16) {
            0 => 0xffff,
            c => c,
        }
    }

    #[test]
    fn gue_over_ipv4_golden_bytes() {
        let inner = inner_v4();
        let gue = |checksum| Tunnel {
            outer: outer4(),
            encapsulation: Encapsulation::Gue { src_port: 0xa000, dst_port: 6080, checksum },
        };
        let b = build(&gue(false), &inner);
        assert_eq!(b.len(), 20 + 8 + 4 + 30);
        #[rustfmt::skip]
        let head: [u8; 32] = [
            0x45, 0x28, 0x00, 0x3e, 0x01, 0x02, 0x40, 0x00, 63, 17, 0x00, 0x00, 10, 0, 0, 1, 10, 0, 0, 2,
            0xa0, 0x00, 0x17, 0xc0, 0x00, 0x2a, 0x00, 0x00,
            0x00, 0x04, 0x00, 0x00,
        ];
        let mut want = head.to_vec();
        let ip_sum = !checksum::data(&want[..20]);
        want[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        want.extend_from_slice(&inner);
        assert_eq!(b, want, "nocsum: UDP checksum 0");
        let b = build(&gue(true), &inner);
        let reference = udp_reference(&[10, 0, 0, 1], &[10, 0, 0, 2], &b[20..]);
        want[26..28].copy_from_slice(&reference.to_be_bytes());
        assert_eq!(b, want, "csum: full UDP checksum");
        let d = decapsulate(&b).unwrap();
        assert_eq!(d.inner, &inner[..]);
        assert_eq!(d.encapsulation, gue(true).encapsulation);
    }

    #[test]
    fn gue_over_ipv6_with_ipv6_inside() {
        let inner = inner_v6();
        let gue = |checksum| Tunnel {
            outer: outer6(),
            encapsulation: Encapsulation::Gue { src_port: 40000, dst_port: 6080, checksum },
        };
        for checksum in [false, true] {
            let b = build(&gue(checksum), &inner);
            assert_eq!(b.len(), 40 + 12 + 44);
            assert_eq!((b[6], &b[44..46]), (17, &[0x00, 0x38][..]), "next header, UDP length");
            assert_eq!(&b[48..52], &[0x00, 41, 0x00, 0x00], "GUE: IPv6 inside");
            let c = u16::from_be_bytes([b[46], b[47]]);
            if checksum {
                assert_eq!(c, udp_reference(&b[8..24], &b[24..40], &b[40..]));
            } else {
                assert_eq!(c, 0, "zero checksum over IPv6, as the kernel's udp6_set_csum(nocheck)");
            }
            assert_eq!(decapsulate(&b).map(|d| d.inner), Ok(&inner[..]));
        }
    }

    #[test]
    fn gre_golden_bytes_both_families() {
        let inner = inner_v4();
        let b =
            build(&Tunnel { outer: outer4(), encapsulation: Encapsulation::Gre { checksum: false } }, &inner);
        assert_eq!((b.len(), b[9]), (20 + 4 + 30, 47));
        assert_eq!(&b[20..24], &[0x00, 0x00, 0x08, 0x00]);
        assert_eq!(&b[24..], &inner[..]);
        let b =
            build(&Tunnel { outer: outer4(), encapsulation: Encapsulation::Gre { checksum: true } }, &inner);
        assert_eq!(&b[20..22], &[0x80, 0x00]);
        let mut zeroed = b[20..].to_vec();
        zeroed[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(u16::from_be_bytes([b[24], b[25]]), !checksum::data(&zeroed));
        assert_eq!(&b[26..28], &[0, 0], "reserved1");
        assert_eq!(decapsulate(&b).unwrap().encapsulation, Encapsulation::Gre { checksum: true });

        let inner = inner_v6();
        let b =
            build(&Tunnel { outer: outer6(), encapsulation: Encapsulation::Gre { checksum: true } }, &inner);
        assert_eq!((b.len(), b[6]), (40 + 8 + 44, 47));
        assert_eq!(&b[40..44], &[0x80, 0x00, 0x86, 0xdd]);
        assert_eq!(checksum::data(&b[40..]), 0xffff, "GRE checksum verifies over header and payload");
        assert_eq!(decapsulate(&b).map(|d| d.inner), Ok(&inner[..]));
    }

    #[test]
    fn outer_header_follows_the_inner_packet_and_refusals() {
        let inner = inner_v4();
        let t = Tunnel { outer: outer4(), encapsulation: Encapsulation::Gre { checksum: false } };
        let b = build(&t, &inner);
        let o = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(o.verify_checksum() && o.dont_frag());
        assert_eq!((o.tos(), o.ttl(), o.total_len()), (0x28, 63, 54));
        // Mixed families, not IP inside, no room, too long.
        let mixed = Tunnel { outer: Encap { dst_addr: outer6().dst_addr, ..outer4() }, ..t };
        assert_eq!(mixed.check(&inner), Err(Error));
        assert_eq!(t.check(&[0x10; 30]), Err(Error));
        let mut short = vec![0u8; 10];
        assert_eq!(t.emit(&mut short), Err(Error));
        assert_eq!(short, vec![0u8; 10]);
        let mut big = vec![0u8; 65536];
        big[..20].copy_from_slice(&inner[..20]);
        assert_eq!(t.check(&big[..65535 - 24]), Ok(65535));
        assert_eq!(t.check(&big[..65535 - 23]), Err(Error));
        // Decapsulation refuses what is not a tunnel packet, and a corrupted GUE checksum.
        assert_eq!(decapsulate(&inner), Err(Error));
        let g = Tunnel {
            outer: outer4(),
            encapsulation: Encapsulation::Gue { src_port: 1, dst_port: 2, checksum: true },
        };
        let mut b = build(&g, &inner);
        b[60] ^= 0x01;
        assert_eq!(decapsulate(&b), Err(Error));
    }

    #[test]
    fn ipip_is_the_plain_outer_header() {
        let inner = inner_v4();
        let t = Tunnel { outer: outer4(), encapsulation: Encapsulation::Ipip };
        let b = build(&t, &inner);
        let mut hdr = [0u8; 20];
        outer4().emit_header(&mut hdr, &inner).unwrap();
        assert_eq!(&b[..20], &hdr);
        assert_eq!(decapsulate(&b), Ok(Decapsulated { encapsulation: Encapsulation::Ipip, inner: &inner }));
    }
}
