//! IP-in-IP encapsulation for the tunnelling forwarding method (ipvsadm `-i`): an outer IPv4 header
//! (RFC 2003) or IPv6 header (RFC 2473) in front of an existing IP packet. The outer protocol / next
//! header follows the inner packet's version: 4 (IPIP) for IPv4 inside, 41 (IPv6) for IPv6 inside.
//!
//! As the kernel's `ip_vs_tunnel_xmit`, the outer header copies the inner DSCP/ECN and, for an IPv4
//! inner packet, its DF bit; IPv6 inner packets get DF (they must not be fragmented on the way).

use super::{ipv4, ipv6, ChecksumCapabilities, Error, IpProtocol, Result};
use std::net::IpAddr;

/// The outer header of a tunnelled packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encap {
    /// Outer source (the director).
    pub src_addr: IpAddr,
    /// Outer destination (the real server).
    pub dst_addr: IpAddr,
    /// Outer TTL / hop limit.
    pub hop_limit: u8,
    /// Outer IPv4 identification (unused for IPv6).
    pub ident: u16,
}

/// The protocol an outer header announces for `inner`, from its version nibble.
#[inline]
pub fn inner_protocol(inner: &[u8]) -> Result<IpProtocol> {
    match inner.first().map(|b| b >> 4) {
        Some(4) => Ok(IpProtocol::IpIp),
        Some(6) => Ok(IpProtocol::Ipv6),
        _ => Err(Error),
    }
}

/// The inner packet's DSCP/ECN byte and whether it forbids fragmentation.
#[inline]
fn inner_tos_df(inner: &[u8]) -> Result<(u8, bool)> {
    match inner_protocol(inner)? {
        IpProtocol::IpIp => {
            let p = ipv4::Packet::new_checked_truncated(inner)?;
            Ok((p.tos(), p.dont_frag()))
        }
        _ => {
            let p = ipv6::Packet::new_checked_truncated(inner)?;
            Ok((p.traffic_class(), true))
        }
    }
}

impl Encap {
    /// 20 for an IPv4 outer header, 40 for IPv6.
    #[inline]
    pub const fn header_len(&self) -> usize {
        match self.dst_addr {
            IpAddr::V4(_) => ipv4::HEADER_LEN,
            IpAddr::V6(_) => ipv6::HEADER_LEN,
        }
    }

    /// Writes the outer header for `inner` into `header[..header_len()]`. `Err` when the addresses
    /// are of different families, `header` is too short, `inner` is not an IPv4/IPv6 header, or the
    /// result would exceed 65535 bytes.
    pub fn emit_header(&self, header: &mut [u8], inner: &[u8]) -> Result<usize> {
        self.emit_outer(header, inner_protocol(inner)?, inner.len(), inner)
    }

    /// Writes an outer header announcing `protocol` for `payload_len` bytes of payload (GUE and
    /// GRE put their own header between it and `inner`); DSCP/ECN and DF come from `inner` as for
    /// IPIP. `Err` as for [`Encap::emit_header`].
    pub fn emit_outer(
        &self,
        header: &mut [u8],
        protocol: IpProtocol,
        payload_len: usize,
        inner: &[u8],
    ) -> Result<usize> {
        let hl = self.header_len();
        if header.len() < hl {
            return Err(Error);
        }
        let (tos, df) = inner_tos_df(inner)?;
        match (self.src_addr, self.dst_addr) {
            (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
                if payload_len > u16::MAX as usize - hl {
                    return Err(Error);
                }
                let repr = ipv4::Repr {
                    src_addr,
                    dst_addr,
                    protocol,
                    payload_len,
                    ttl: self.hop_limit,
                    tos,
                    ident: self.ident,
                    dont_frag: df,
                    more_frags: false,
                    frag_offset: 0,
                };
                repr.emit(
                    &mut ipv4::Packet::new_unchecked(&mut header[..hl]),
                    &ChecksumCapabilities::default(),
                );
            }
            (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
                if payload_len > u16::MAX as usize {
                    return Err(Error);
                }
                let repr = ipv6::Repr {
                    src_addr,
                    dst_addr,
                    next_header: protocol,
                    payload_len,
                    hop_limit: self.hop_limit,
                    traffic_class: tos,
                    flow_label: 0,
                };
                repr.emit(&mut ipv6::Packet::new_unchecked(&mut header[..hl]));
            }
            _ => return Err(Error),
        }
        Ok(hl)
    }

    /// Encapsulates in place: `buf[..inner_len]` holds the inner packet; it is moved up by
    /// `header_len()` and the outer header written in front. Returns the new length. `Err` (with
    /// `buf` untouched) when `buf` has no room or [`Encap::emit_header`] would fail.
    pub fn encapsulate(&self, buf: &mut [u8], inner_len: usize) -> Result<usize> {
        let hl = self.header_len();
        let total = inner_len.checked_add(hl).ok_or(Error)?;
        if total > buf.len() {
            return Err(Error);
        }
        // Validate before moving anything.
        let mut scratch = [0u8; ipv6::HEADER_LEN];
        self.emit_header(&mut scratch, &buf[..inner_len])?;
        buf.copy_within(..inner_len, hl);
        buf[..hl].copy_from_slice(&scratch[..hl]);
        Ok(total)
    }
}

/// The inner packet of an IPIP / IPv6-in-IP packet and the outer protocol, or `Err` when `packet` is
/// not one (the real-server side of the tunnel, and tests).
pub fn decapsulate(packet: &[u8]) -> Result<(IpProtocol, &[u8])> {
    let (protocol, payload) = match inner_protocol(packet)? {
        IpProtocol::IpIp => {
            let p = ipv4::Packet::new_checked(packet)?;
            if p.is_fragment() {
                return Err(Error);
            }
            (p.protocol(), &packet[p.header_len() as usize..p.total_len() as usize])
        }
        _ => {
            let p = ipv6::Packet::new_checked(packet)?;
            (p.next_header(), &packet[ipv6::HEADER_LEN..p.total_len()])
        }
    };
    match protocol {
        IpProtocol::IpIp | IpProtocol::Ipv6 => Ok((protocol, payload)),
        _ => Err(Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ipv4Packet, Ipv6Packet};
    use std::net::Ipv4Addr;

    fn inner_v4() -> Vec<u8> {
        let repr = ipv4::Repr {
            src_addr: Ipv4Addr::new(198, 51, 100, 7),
            dst_addr: Ipv4Addr::new(203, 0, 113, 10),
            protocol: IpProtocol::Udp,
            payload_len: 4,
            ttl: 60,
            tos: 0xb9,
            ident: 42,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut b = vec![0; 24];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut b), &Default::default());
        b[20..].copy_from_slice(&[1, 2, 3, 4]);
        b
    }

    fn inner_v6() -> Vec<u8> {
        let repr = ipv6::Repr {
            src_addr: "2001:db8::7".parse().unwrap(),
            dst_addr: "2001:db8::a".parse().unwrap(),
            next_header: IpProtocol::Tcp,
            payload_len: 2,
            hop_limit: 60,
            traffic_class: 0x28,
            flow_label: 5,
        };
        let mut b = vec![0; 42];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut b));
        b
    }

    fn v4_encap() -> Encap {
        Encap {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            hop_limit: 64,
            ident: 0x1234,
        }
    }

    fn v6_encap() -> Encap {
        Encap {
            src_addr: IpAddr::V6("fd00::1".parse().unwrap()),
            dst_addr: IpAddr::V6("fd00::2".parse().unwrap()),
            hop_limit: 64,
            ident: 0,
        }
    }

    #[test]
    fn ipv4_in_ipv4_in_place() {
        let inner = inner_v4();
        let mut buf = vec![0xa5; 100];
        buf[..inner.len()].copy_from_slice(&inner);
        let len = v4_encap().encapsulate(&mut buf, inner.len()).unwrap();
        assert_eq!(len, 44);
        let outer = Ipv4Packet::new_checked(&buf[..len]).unwrap();
        let repr = ipv4::Repr::parse(&outer, &Default::default()).unwrap();
        assert_eq!(repr.protocol, IpProtocol::IpIp);
        assert_eq!(repr.payload_len, 24);
        assert_eq!(repr.tos, 0xb9, "DSCP/ECN copied");
        assert!(repr.dont_frag, "DF copied");
        assert_eq!(repr.ttl, 64);
        assert_eq!(repr.ident, 0x1234);
        assert_eq!(decapsulate(&buf[..len]), Ok((IpProtocol::IpIp, &inner[..])));
    }

    #[test]
    fn df_follows_the_inner_packet() {
        let mut inner = inner_v4();
        Ipv4Packet::new_unchecked(&mut inner[..]).set_dont_frag(false);
        let mut hdr = [0u8; 20];
        v4_encap().emit_header(&mut hdr, &inner).unwrap();
        assert!(!Ipv4Packet::new_unchecked(&hdr[..]).dont_frag());
    }

    #[test]
    fn ipv6_in_ipv4_and_ipv6_in_ipv6() {
        let inner = inner_v6();
        let mut hdr = [0u8; 20];
        assert_eq!(v4_encap().emit_header(&mut hdr, &inner), Ok(20));
        let mut pkt = hdr.to_vec();
        pkt.extend_from_slice(&inner);
        let outer = Ipv4Packet::new_checked(&pkt[..]).unwrap();
        assert_eq!(outer.protocol(), IpProtocol::Ipv6);
        assert!(outer.dont_frag() && outer.verify_checksum());
        assert_eq!(outer.tos(), 0x28);
        assert_eq!(decapsulate(&pkt), Ok((IpProtocol::Ipv6, &inner[..])));

        let mut buf = vec![0; 200];
        buf[..inner.len()].copy_from_slice(&inner);
        let len = v6_encap().encapsulate(&mut buf, inner.len()).unwrap();
        assert_eq!(len, 82);
        let outer = Ipv6Packet::new_checked(&buf[..len]).unwrap();
        let repr = ipv6::Repr::parse(&outer).unwrap();
        assert_eq!(repr.next_header, IpProtocol::Ipv6);
        assert_eq!(repr.payload_len, 42);
        assert_eq!(repr.traffic_class, 0x28);
        assert_eq!(repr.hop_limit, 64);
        assert_eq!(decapsulate(&buf[..len]), Ok((IpProtocol::Ipv6, &inner[..])));
    }

    #[test]
    fn ipv4_in_ipv6() {
        let inner = inner_v4();
        let mut buf = vec![0; 100];
        buf[..inner.len()].copy_from_slice(&inner);
        let len = v6_encap().encapsulate(&mut buf, inner.len()).unwrap();
        let outer = Ipv6Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(outer.next_header(), IpProtocol::IpIp);
        assert_eq!(outer.traffic_class(), 0xb9);
        assert_eq!(decapsulate(&buf[..len]), Ok((IpProtocol::IpIp, &inner[..])));
    }

    #[test]
    fn refusals() {
        let inner = inner_v4();
        // No room.
        let mut buf = inner.clone();
        assert_eq!(v4_encap().encapsulate(&mut buf, inner.len()), Err(Error));
        assert_eq!(buf, inner);
        // Mixed families.
        let mixed = Encap { dst_addr: v6_encap().dst_addr, ..v4_encap() };
        let mut hdr = [0u8; 40];
        assert_eq!(mixed.emit_header(&mut hdr, &inner), Err(Error));
        // Not IP inside.
        assert_eq!(v4_encap().emit_header(&mut hdr, &[0x10; 30]), Err(Error));
        assert_eq!(v4_encap().emit_header(&mut hdr, &[]), Err(Error));
        assert_eq!(v4_encap().emit_header(&mut hdr, &inner[..19]), Err(Error));
        // Header buffer too short.
        assert_eq!(v4_encap().emit_header(&mut hdr[..19], &inner), Err(Error));
        // Too big for IPv4.
        let mut big = vec![0u8; 65536];
        big[..24].copy_from_slice(&inner);
        assert_eq!(v4_encap().emit_header(&mut hdr, &big[..65516]), Err(Error));
        assert_eq!(v4_encap().emit_header(&mut hdr, &big[..65515]), Ok(20));
        // inner_len past the buffer.
        let mut buf = vec![0u8; 10];
        assert_eq!(v4_encap().encapsulate(&mut buf, usize::MAX), Err(Error));
        // Not a tunnel packet.
        assert_eq!(decapsulate(&inner), Err(Error));
        assert_eq!(inner_protocol(&[0x45]), Ok(IpProtocol::IpIp));
    }
}
