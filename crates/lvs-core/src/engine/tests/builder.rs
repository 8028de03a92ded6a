//! A fluent test packet builder (Katran's `PacketBuilder::newPacket().Eth(..).IPv4(..).UDP(..)`):
//! one description, two independent emitters. [`Pkt::wire`] builds the frame with this crate's
//! `wire` representations (what tests feed the engine); [`Pkt::pnet`] builds it with `pnet_packet`
//! and pnet's full checksum computations (what tests expect back), so an expected frame never
//! comes from the code path under test. SCTP, which pnet lacks, gets a bitwise CRC32c here.

use crate::wire::{
    ChecksumCapabilities, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet,
    Icmpv6Packet, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, SctpPacket, SctpRepr, TcpFlags,
    TcpPacket, TcpRepr, UdpPacket, UdpRepr, VlanTag,
};
use pnet_packet::ethernet::{EtherType as PEtherType, MutableEthernetPacket};
use pnet_packet::icmp::{self as picmp, IcmpCode, IcmpPacket, IcmpType, MutableIcmpPacket};
use pnet_packet::icmpv6::{
    self as picmpv6, Icmpv6Code, Icmpv6Packet as PIcmpv6Packet, Icmpv6Type, MutableIcmpv6Packet,
};
use pnet_packet::ip::IpNextHeaderProtocol;
use pnet_packet::ipv4::{self as pv4, Ipv4Packet as PIpv4Packet, MutableIpv4Packet};
use pnet_packet::ipv6::{MutableFragmentPacket, MutableIpv6Packet};
use pnet_packet::tcp::{self as ptcp, MutableTcpPacket, TcpPacket as PTcpPacket};
use pnet_packet::udp::{self as pudp, MutableUdpPacket, UdpPacket as PUdpPacket};
use pnet_packet::vlan::{ClassOfService, MutableVlanPacket};
use pnet_packet::MutablePacket as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Layer 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L3 {
    V4 { src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, tos: u8, ident: u16, df: bool, mf: bool, frag_off: u16 },
    V6 { src: Ipv6Addr, dst: Ipv6Addr, hop: u8, tc: u8, flow: u32, frag: Option<(u16, bool, u32)> },
}

/// Layer 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        payload: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Sctp {
        sport: u16,
        dport: u16,
        vtag: u32,
        chunks: Vec<u8>,
    },
    /// ICMP or ICMPv6 (by the layer 3 family): type, code, the 4 bytes after the checksum, data.
    Icmp {
        ty: u8,
        code: u8,
        rest: u32,
        data: Vec<u8>,
    },
    /// Any other protocol: the bytes as they are (an encapsulated packet, garbage).
    Raw {
        proto: u8,
        data: Vec<u8>,
    },
}

/// A frame description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkt {
    pub eth_src: EthernetAddress,
    pub eth_dst: EthernetAddress,
    pub vlan: Option<u16>,
    pub l3: L3,
    pub l4: L4,
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("IPv4 address")
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("IPv6 address")
}

impl Pkt {
    /// IPv4 `src` → `dst`, TTL 64, DF, no payload yet.
    pub fn v4(src: &str, dst: &str) -> Pkt {
        Pkt {
            eth_src: EthernetAddress([0; 6]),
            eth_dst: EthernetAddress([0; 6]),
            vlan: None,
            l3: L3::V4 {
                src: v4(src),
                dst: v4(dst),
                ttl: 64,
                tos: 0,
                ident: 0x1234,
                df: true,
                mf: false,
                frag_off: 0,
            },
            l4: L4::Raw { proto: 253, data: Vec::new() },
        }
    }
    /// IPv6 `src` → `dst`, hop limit 64.
    pub fn v6(src: &str, dst: &str) -> Pkt {
        Pkt {
            eth_src: EthernetAddress([0; 6]),
            eth_dst: EthernetAddress([0; 6]),
            vlan: None,
            l3: L3::V6 { src: v6(src), dst: v6(dst), hop: 64, tc: 0, flow: 0, frag: None },
            l4: L4::Raw { proto: 253, data: Vec::new() },
        }
    }
    /// Either family, from addresses.
    pub fn ip(src: IpAddr, dst: IpAddr) -> Pkt {
        match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Pkt::v4(&src.to_string(), &dst.to_string()),
            _ => Pkt::v6(&src.to_string(), &dst.to_string()),
        }
    }
    pub fn eth(mut self, src: EthernetAddress, dst: EthernetAddress) -> Pkt {
        self.eth_src = src;
        self.eth_dst = dst;
        self
    }
    pub fn vlan(mut self, vid: u16) -> Pkt {
        self.vlan = Some(vid);
        self
    }
    pub fn ttl(mut self, t: u8) -> Pkt {
        match &mut self.l3 {
            L3::V4 { ttl, .. } => *ttl = t,
            L3::V6 { hop, .. } => *hop = t,
        }
        self
    }
    pub fn tos(mut self, t: u8) -> Pkt {
        match &mut self.l3 {
            L3::V4 { tos, .. } => *tos = t,
            L3::V6 { tc, .. } => *tc = t,
        }
        self
    }
    pub fn ident(mut self, i: u16) -> Pkt {
        if let L3::V4 { ident, .. } = &mut self.l3 {
            *ident = i;
        }
        self
    }
    pub fn df(mut self, on: bool) -> Pkt {
        if let L3::V4 { df, .. } = &mut self.l3 {
            *df = on;
        }
        self
    }
    /// Makes it a fragment: offset in bytes, more fragments.
    pub fn frag(mut self, off: u16, more: bool) -> Pkt {
        match &mut self.l3 {
            L3::V4 { mf, frag_off, df, .. } => {
                *mf = more;
                *frag_off = off;
                *df = false;
            }
            L3::V6 { frag, .. } => *frag = Some((off, more, 0x0bad_cafe)),
        }
        self
    }
    pub fn src(mut self, a: IpAddr) -> Pkt {
        match (&mut self.l3, a) {
            (L3::V4 { src, .. }, IpAddr::V4(a)) => *src = a,
            (L3::V6 { src, .. }, IpAddr::V6(a)) => *src = a,
            _ => panic!("family"),
        }
        self
    }
    pub fn dst(mut self, a: IpAddr) -> Pkt {
        match (&mut self.l3, a) {
            (L3::V4 { dst, .. }, IpAddr::V4(a)) => *dst = a,
            (L3::V6 { dst, .. }, IpAddr::V6(a)) => *dst = a,
            _ => panic!("family"),
        }
        self
    }
    pub fn tcp(mut self, sport: u16, dport: u16) -> Pkt {
        self.l4 = L4::Tcp {
            sport,
            dport,
            seq: 0x0102_0304,
            ack: 0,
            flags: 0x02,
            window: 0xfaf0,
            payload: Vec::new(),
        };
        self
    }
    pub fn flags(mut self, f: u8) -> Pkt {
        if let L4::Tcp { flags, .. } = &mut self.l4 {
            *flags = f;
        }
        self
    }
    pub fn udp(mut self, sport: u16, dport: u16) -> Pkt {
        self.l4 = L4::Udp { sport, dport, payload: Vec::new() };
        self
    }
    pub fn sctp(mut self, sport: u16, dport: u16, vtag: u32) -> Pkt {
        self.l4 = L4::Sctp { sport, dport, vtag, chunks: Vec::new() };
        self
    }
    /// Appends an SCTP chunk (header and value, padded to 4 bytes).
    pub fn chunk(mut self, ty: u8, flags: u8, value: &[u8]) -> Pkt {
        if let L4::Sctp { chunks, .. } = &mut self.l4 {
            chunks.extend_from_slice(&[ty, flags]);
            chunks.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
            chunks.extend_from_slice(value);
            while chunks.len() % 4 != 0 {
                chunks.push(0);
            }
        }
        self
    }
    pub fn icmp(mut self, ty: u8, code: u8, rest: u32) -> Pkt {
        self.l4 = L4::Icmp { ty, code, rest, data: Vec::new() };
        self
    }
    pub fn raw(mut self, proto: u8, data: &[u8]) -> Pkt {
        self.l4 = L4::Raw { proto, data: data.to_vec() };
        self
    }
    pub fn sport(mut self, p: u16) -> Pkt {
        match &mut self.l4 {
            L4::Tcp { sport, .. } | L4::Udp { sport, .. } | L4::Sctp { sport, .. } => *sport = p,
            _ => panic!("no ports"),
        }
        self
    }
    pub fn dport(mut self, p: u16) -> Pkt {
        match &mut self.l4 {
            L4::Tcp { dport, .. } | L4::Udp { dport, .. } | L4::Sctp { dport, .. } => *dport = p,
            _ => panic!("no ports"),
        }
        self
    }
    /// Sets the payload (TCP/UDP payload, ICMP data, raw bytes).
    pub fn payload(mut self, bytes: &[u8]) -> Pkt {
        match &mut self.l4 {
            L4::Tcp { payload, .. } | L4::Udp { payload, .. } => *payload = bytes.to_vec(),
            L4::Icmp { data, .. } | L4::Raw { data, .. } => *data = bytes.to_vec(),
            L4::Sctp { .. } => panic!("use chunk()"),
        }
        self
    }

    fn is_v6(&self) -> bool {
        matches!(self.l3, L3::V6 { .. })
    }
    fn addrs(&self) -> (IpAddr, IpAddr) {
        match self.l3 {
            L3::V4 { src, dst, .. } => (src.into(), dst.into()),
            L3::V6 { src, dst, .. } => (src.into(), dst.into()),
        }
    }
    fn proto(&self) -> u8 {
        match &self.l4 {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Sctp { .. } => 132,
            L4::Icmp { .. } => {
                if self.is_v6() {
                    58
                } else {
                    1
                }
            }
            L4::Raw { proto, .. } => *proto,
        }
    }
    fn l4_len(&self) -> usize {
        match &self.l4 {
            L4::Tcp { payload, .. } => 20 + payload.len(),
            L4::Udp { payload, .. } => 8 + payload.len(),
            L4::Sctp { chunks, .. } => 12 + chunks.len(),
            L4::Icmp { data, .. } => 8 + data.len(),
            L4::Raw { data, .. } => data.len(),
        }
    }
    fn frag_hdr(&self) -> Option<(u16, bool, u32)> {
        match self.l3 {
            L3::V6 { frag, .. } => frag,
            L3::V4 { .. } => None,
        }
    }
    fn eth_len(&self) -> usize {
        if self.vlan.is_some() {
            18
        } else {
            14
        }
    }
    fn ethertype(&self) -> u16 {
        if self.is_v6() {
            0x86dd
        } else {
            0x0800
        }
    }

    // ---------------------------------------------------------------- wire emitter

    /// The frame, built with the `wire` representations.
    pub fn wire(&self) -> Vec<u8> {
        let l3 = self.wire_l3();
        let hl = self.eth_len();
        let mut f = vec![0u8; hl + l3.len()];
        EthernetRepr {
            src_addr: self.eth_src,
            dst_addr: self.eth_dst,
            ethertype: EtherType::from(self.ethertype()),
            vlan: self.vlan.map(|vid| VlanTag { pcp: 0, dei: false, vid }),
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
        f[hl..].copy_from_slice(&l3);
        f
    }

    /// The IP packet, built with the `wire` representations.
    pub fn wire_l3(&self) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let (src, dst) = self.addrs();
        let frag = self.frag_hdr();
        let ext = if frag.is_some() { 8 } else { 0 };
        let l4 = self.wire_l4(&src, &dst);
        let mut out;
        match self.l3 {
            L3::V4 { src, dst, ttl, tos, ident, df, mf, frag_off } => {
                out = vec![0u8; 20 + l4.len()];
                Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: IpProtocol::from(self.proto()),
                    payload_len: l4.len(),
                    ttl,
                    tos,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: frag_off,
                }
                .emit(&mut Ipv4Packet::new_unchecked(&mut out[..20]), &caps);
                out[20..].copy_from_slice(&l4);
            }
            L3::V6 { src, dst, hop, tc, flow, .. } => {
                out = vec![0u8; 40 + ext + l4.len()];
                let nh = if frag.is_some() { IpProtocol::Ipv6Frag } else { IpProtocol::from(self.proto()) };
                Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: nh,
                    payload_len: ext + l4.len(),
                    hop_limit: hop,
                    traffic_class: tc,
                    flow_label: flow,
                }
                .emit(&mut Ipv6Packet::new_unchecked(&mut out[..40]));
                if let Some((off, more, id)) = frag {
                    out[40] = self.proto();
                    out[41] = 0;
                    out[42..44].copy_from_slice(&(off | more as u16).to_be_bytes());
                    out[44..48].copy_from_slice(&id.to_be_bytes());
                }
                out[40 + ext..].copy_from_slice(&l4);
            }
        }
        out
    }

    fn wire_l4(&self, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let mut b = vec![0u8; self.l4_len()];
        match &self.l4 {
            L4::Tcp { sport, dport, seq, ack, flags, window, payload } => TcpRepr {
                src_port: *sport,
                dst_port: *dport,
                seq_number: *seq,
                ack_number: *ack,
                flags: TcpFlags(*flags as u16),
                window_len: *window,
                urgent_at: 0,
                options: &[],
                payload,
            }
            .emit(&mut TcpPacket::new_unchecked(&mut b[..]), src, dst, &caps),
            L4::Udp { sport, dport, payload } => UdpRepr { src_port: *sport, dst_port: *dport, payload }
                .emit(&mut UdpPacket::new_unchecked(&mut b[..]), src, dst, &caps),
            L4::Sctp { sport, dport, vtag, chunks } => {
                SctpRepr { src_port: *sport, dst_port: *dport, verification_tag: *vtag, chunks }
                    .emit(&mut SctpPacket::new_unchecked(&mut b[..]), &caps)
            }
            L4::Icmp { ty, code, rest, data } => {
                if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
                    let mut p = Icmpv6Packet::new_unchecked(&mut b[..]);
                    p.set_msg_type((*ty).into());
                    p.set_msg_code(*code);
                    p.set_rest_of_header(*rest);
                    p.data_mut().copy_from_slice(data);
                    p.fill_checksum(s, d);
                } else {
                    let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
                    p.set_msg_type((*ty).into());
                    p.set_msg_code(*code);
                    p.set_rest_of_header(*rest);
                    p.data_mut().copy_from_slice(data);
                    p.fill_checksum();
                }
            }
            L4::Raw { data, .. } => b.copy_from_slice(data),
        }
        b
    }

    // ---------------------------------------------------------------- pnet emitter

    /// The frame, built with `pnet_packet` (full checksum computations).
    pub fn pnet(&self) -> Vec<u8> {
        let l3 = self.pnet_l3();
        let hl = self.eth_len();
        let mut f = vec![0u8; hl + l3.len()];
        let mut e = MutableEthernetPacket::new(&mut f).expect("eth");
        e.set_source(self.eth_src.0.into());
        e.set_destination(self.eth_dst.0.into());
        if let Some(vid) = self.vlan {
            e.set_ethertype(PEtherType(0x8100));
            let mut v = MutableVlanPacket::new(e.payload_mut()).expect("vlan");
            v.set_priority_code_point(ClassOfService::new(0));
            v.set_drop_eligible_indicator(0);
            v.set_vlan_identifier(vid);
            v.set_ethertype(PEtherType(self.ethertype()));
        } else {
            e.set_ethertype(PEtherType(self.ethertype()));
        }
        f[hl..].copy_from_slice(&l3);
        f
    }

    /// The IP packet, built with `pnet_packet`.
    pub fn pnet_l3(&self) -> Vec<u8> {
        let (src, dst) = self.addrs();
        let l4 = self.pnet_l4(&src, &dst);
        match self.l3 {
            L3::V4 { src, dst, ttl, tos, ident, df, mf, frag_off } => {
                let mut b = vec![0u8; 20 + l4.len()];
                let mut p = MutableIpv4Packet::new(&mut b).expect("ipv4");
                p.set_version(4);
                p.set_header_length(5);
                p.set_dscp(tos >> 2);
                p.set_ecn(tos & 3);
                p.set_total_length((20 + l4.len()) as u16);
                p.set_identification(ident);
                p.set_flags(((df as u8) << 1) | mf as u8);
                p.set_fragment_offset(frag_off / 8);
                p.set_ttl(ttl);
                p.set_next_level_protocol(IpNextHeaderProtocol(self.proto()));
                p.set_source(src);
                p.set_destination(dst);
                p.set_payload(&l4);
                let c = pv4::checksum(&PIpv4Packet::new(p.packet_ref()).expect("ipv4"));
                p.set_checksum(c);
                b
            }
            L3::V6 { src, dst, hop, tc, flow, frag } => {
                let ext = if frag.is_some() { 8 } else { 0 };
                let mut b = vec![0u8; 40 + ext + l4.len()];
                let mut p = MutableIpv6Packet::new(&mut b).expect("ipv6");
                p.set_version(6);
                p.set_traffic_class(tc);
                p.set_flow_label(flow);
                p.set_payload_length((ext + l4.len()) as u16);
                p.set_next_header(IpNextHeaderProtocol(if frag.is_some() { 44 } else { self.proto() }));
                p.set_hop_limit(hop);
                p.set_source(src);
                p.set_destination(dst);
                if let Some((off, more, id)) = frag {
                    let mut fh = MutableFragmentPacket::new(&mut p.payload_mut()[..8]).expect("frag");
                    fh.set_next_header(IpNextHeaderProtocol(self.proto()));
                    fh.set_fragment_offset_with_flags(off | more as u16);
                    fh.set_id(id);
                }
                b[40 + ext..].copy_from_slice(&l4);
                b
            }
        }
    }

    fn pnet_l4(&self, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
        let mut b = vec![0u8; self.l4_len()];
        match &self.l4 {
            L4::Tcp { sport, dport, seq, ack, flags, window, payload } => {
                let mut p = MutableTcpPacket::new(&mut b).expect("tcp");
                p.set_source(*sport);
                p.set_destination(*dport);
                p.set_sequence(*seq);
                p.set_acknowledgement(*ack);
                p.set_data_offset(5);
                p.set_flags(*flags);
                p.set_window(*window);
                p.set_payload(payload);
                let c = match (src, dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        ptcp::ipv4_checksum(&PTcpPacket::new(p.packet_ref()).expect("t"), s, d)
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        ptcp::ipv6_checksum(&PTcpPacket::new(p.packet_ref()).expect("t"), s, d)
                    }
                    _ => panic!("family"),
                };
                p.set_checksum(c);
            }
            L4::Udp { sport, dport, payload } => {
                let mut p = MutableUdpPacket::new(&mut b).expect("udp");
                p.set_source(*sport);
                p.set_destination(*dport);
                p.set_length((8 + payload.len()) as u16);
                p.set_payload(payload);
                let c = match (src, dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        pudp::ipv4_checksum(&PUdpPacket::new(p.packet_ref()).expect("u"), s, d)
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        pudp::ipv6_checksum(&PUdpPacket::new(p.packet_ref()).expect("u"), s, d)
                    }
                    _ => panic!("family"),
                };
                p.set_checksum(if c == 0 { 0xffff } else { c });
            }
            L4::Sctp { sport, dport, vtag, chunks } => {
                b[0..2].copy_from_slice(&sport.to_be_bytes());
                b[2..4].copy_from_slice(&dport.to_be_bytes());
                b[4..8].copy_from_slice(&vtag.to_be_bytes());
                b[12..].copy_from_slice(chunks);
                let c = crc32c_bitwise(&b);
                b[8..12].copy_from_slice(&c.to_le_bytes());
            }
            L4::Icmp { ty, code, rest, data } => {
                if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
                    let mut p = MutableIcmpv6Packet::new(&mut b).expect("icmpv6");
                    p.set_icmpv6_type(Icmpv6Type(*ty));
                    p.set_icmpv6_code(Icmpv6Code(*code));
                    p.payload_mut()[..4].copy_from_slice(&rest.to_be_bytes());
                    p.payload_mut()[4..].copy_from_slice(data);
                    let c = picmpv6::checksum(&PIcmpv6Packet::new(p.packet_ref()).expect("i"), s, d);
                    p.set_checksum(c);
                } else {
                    let mut p = MutableIcmpPacket::new(&mut b).expect("icmp");
                    p.set_icmp_type(IcmpType(*ty));
                    p.set_icmp_code(IcmpCode(*code));
                    p.payload_mut()[..4].copy_from_slice(&rest.to_be_bytes());
                    p.payload_mut()[4..].copy_from_slice(data);
                    let c = picmp::checksum(&IcmpPacket::new(p.packet_ref()).expect("i"));
                    p.set_checksum(c);
                }
            }
            L4::Raw { data, .. } => b.copy_from_slice(data),
        }
        b
    }
}

/// CRC32c (Castagnoli), bit by bit, with the checksum field taken as zero: independent of the
/// table-driven implementation in `wire::sctp`.
pub fn crc32c_bitwise(packet: &[u8]) -> u32 {
    let mut zeroed = packet.to_vec();
    zeroed[8..12].fill(0);
    crc32c_plain(&zeroed)
}

/// CRC32c of `data`, bit by bit.
pub fn crc32c_plain(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// pnet's immutable view needs a packet type; this trait gets the bytes of a mutable one.
trait PacketRef {
    fn packet_ref(&self) -> &[u8];
}

impl<T: pnet_packet::Packet> PacketRef for T {
    fn packet_ref(&self) -> &[u8] {
        self.packet()
    }
}

#[test]
fn both_emitters_agree() {
    // The two emitters are independent; for every kind of packet they must produce the same bytes.
    let a = EthernetAddress([2, 0, 0, 0, 0, 1]);
    let b = EthernetAddress([2, 0, 0, 0, 0, 2]);
    let cases = [
        Pkt::v4("10.0.0.1", "10.0.0.2").eth(a, b).tcp(1, 2).flags(0x12).payload(b"hello"),
        Pkt::v4("10.0.0.1", "10.0.0.2").eth(a, b).udp(53, 5353).payload(b"dns?").tos(0xb8).df(false),
        Pkt::v6("2001:db8::1", "2001:db8::2").eth(a, b).tcp(1000, 443).payload(&[7; 33]),
        Pkt::v6("2001:db8::1", "2001:db8::2").eth(a, b).udp(1, 2).payload(b"x").tos(0x20),
        Pkt::v4("10.0.0.1", "10.0.0.2").eth(a, b).sctp(5, 6, 0xdead_beef).chunk(1, 0, &[1; 16]),
        Pkt::v4("10.0.0.1", "10.0.0.2").eth(a, b).icmp(8, 0, 0x0001_0002).payload(b"ping"),
        Pkt::v6("2001:db8::1", "2001:db8::2").eth(a, b).icmp(128, 0, 0x0001_0002).payload(b"ping"),
        Pkt::v4("10.0.0.1", "10.0.0.2").eth(a, b).vlan(7).udp(1, 2).frag(64, true),
        Pkt::v6("2001:db8::1", "2001:db8::2").eth(a, b).udp(1, 2).frag(0, true),
    ];
    for p in cases {
        assert_eq!(p.wire(), p.pnet(), "{p:?}");
    }
    assert_eq!(crc32c_plain(b"123456789"), 0xe306_9283, "the RFC 3720 check value");
}
