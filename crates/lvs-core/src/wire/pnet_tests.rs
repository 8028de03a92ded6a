//! Cross-checks against `pnet_packet` (dev-dependency only): packets built with pnet's `Mutable*Packet`
//! types read the same through our views, our checksums equal pnet's full recomputation, and RFC 1624
//! incremental rewrites of addresses and ports stay equal to pnet's recomputation over many rounds.

use super::*;
use crate::rng::Rng;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperation, MutableArpPacket};
use pnet_packet::ethernet::{EtherType as PEtherType, MutableEthernetPacket};
use pnet_packet::icmp::{self as picmp, IcmpCode, IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, MutableNeighborSolicitPacket, NdpOption, NdpOptionTypes, NeighborAdvertFlags,
};
use pnet_packet::icmpv6::{self as picmpv6, Icmpv6Code, Icmpv6Packet as PIcmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocol;
use pnet_packet::ipv4::{self as pv4, Ipv4Packet as PIpv4Packet, MutableIpv4Packet};
use pnet_packet::ipv6::{MutableFragmentPacket, MutableIpv6Packet};
use pnet_packet::tcp::{self as ptcp, MutableTcpPacket, TcpPacket as PTcpPacket};
use pnet_packet::udp::{self as pudp, MutableUdpPacket, UdpPacket as PUdpPacket};
use pnet_packet::vlan::{ClassOfService, MutableVlanPacket};
use pnet_packet::MutablePacket as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn mac(rng: &mut Rng) -> [u8; 6] {
    let b = rng.next_u64().to_be_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

fn mac_text(m: [u8; 6]) -> String {
    EthernetAddress(m).to_string()
}

fn v4(rng: &mut Rng) -> Ipv4Addr {
    Ipv4Addr::from(rng.next_u64() as u32)
}

fn v6(rng: &mut Rng) -> Ipv6Addr {
    Ipv6Addr::from(((rng.next_u64() as u128) << 64) | rng.next_u64() as u128)
}

fn addr(rng: &mut Rng, family6: bool) -> IpAddr {
    if family6 {
        IpAddr::V6(v6(rng))
    } else {
        IpAddr::V4(v4(rng))
    }
}

#[test]
fn internet_checksum_equals_pnet() {
    let mut rng = Rng::new(1);
    for _ in 0..2000 {
        let len = 1 + rng.below(300) as usize;
        let data = bytes(&mut rng, len);
        // A skip word past the end makes pnet sum everything.
        assert_eq!(!checksum::data(&data), pnet_packet::util::checksum(&data, len), "len {len}");
        // Skipping a word = summing with that word zeroed.
        if len >= 2 {
            let w = rng.below(len as u32 / 2) as usize;
            let mut z = data.clone();
            z[2 * w] = 0;
            z[2 * w + 1] = 0;
            assert_eq!(!checksum::data(&z), pnet_packet::util::checksum(&data, w));
        }
        let (s4, d4) = (v4(&mut rng), v4(&mut rng));
        let proto = IpProtocol::from(rng.next_u64() as u8);
        let ours = checksum::upper_layer(&s4.into(), &d4.into(), proto, &data);
        let theirs =
            pnet_packet::util::ipv4_checksum(&data, len, &[], &s4, &d4, IpNextHeaderProtocol(proto.into()));
        assert_eq!(ours, theirs);
        let (s6, d6) = (v6(&mut rng), v6(&mut rng));
        let ours = checksum::upper_layer(&s6.into(), &d6.into(), proto, &data);
        let theirs =
            pnet_packet::util::ipv6_checksum(&data, len, &[], &s6, &d6, IpNextHeaderProtocol(proto.into()));
        assert_eq!(ours, theirs);
    }
}

#[test]
fn ethernet_and_vlan_match_pnet() {
    let mut rng = Rng::new(2);
    for _ in 0..300 {
        let (dst, src) = (mac(&mut rng), mac(&mut rng));
        let et = rng.next_u64() as u16;
        let mut buf = vec![0u8; 14 + 8];
        {
            let mut p = MutableEthernetPacket::new(&mut buf).unwrap();
            p.set_destination(mac_text(dst).parse().unwrap());
            p.set_source(mac_text(src).parse().unwrap());
            p.set_ethertype(PEtherType(et));
        }
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.dst_addr().0, dst);
        assert_eq!(f.src_addr().0, src);
        assert_eq!(u16::from(f.ethertype()), et);

        let (pcp, dei, vid, inner) =
            (rng.below(8) as u8, rng.below(2) as u8, rng.below(4096) as u16, rng.next_u64() as u16);
        let mut buf = vec![0u8; 18 + 8];
        {
            let mut p = MutableEthernetPacket::new(&mut buf).unwrap();
            p.set_destination(mac_text(dst).parse().unwrap());
            p.set_source(mac_text(src).parse().unwrap());
            p.set_ethertype(PEtherType(0x8100));
            let mut v = MutableVlanPacket::new(p.payload_mut()).unwrap();
            v.set_priority_code_point(ClassOfService(pcp));
            v.set_drop_eligible_indicator(dei);
            v.set_vlan_identifier(vid);
            v.set_ethertype(PEtherType(inner));
        }
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.vlan_tag(), Some(VlanTag { pcp, dei: dei == 1, vid }));
        assert_eq!(u16::from(f.payload_ethertype()), inner);
        assert_eq!(f.payload().len(), 8);
        // Our emitter writes the same bytes.
        let repr = EthernetRepr::parse(&f).unwrap();
        let mut ours = buf.clone();
        ours[..18].fill(0xa5);
        repr.emit(&mut EthernetFrame::new_unchecked(&mut ours));
        assert_eq!(ours, buf);
    }
}

#[test]
fn arp_matches_pnet() {
    let mut rng = Rng::new(3);
    for i in 0..200 {
        let (sha, tha) = (mac(&mut rng), mac(&mut rng));
        let (spa, tpa) = (v4(&mut rng), v4(&mut rng));
        let op = 1 + (i % 2) as u16;
        let mut buf = vec![0u8; 28];
        {
            let mut p = MutableArpPacket::new(&mut buf).unwrap();
            p.set_hardware_type(ArpHardwareTypes::Ethernet);
            p.set_protocol_type(PEtherType(0x0800));
            p.set_hw_addr_len(6);
            p.set_proto_addr_len(4);
            p.set_operation(ArpOperation(op));
            p.set_sender_hw_addr(mac_text(sha).parse().unwrap());
            p.set_sender_proto_addr(spa);
            p.set_target_hw_addr(mac_text(tha).parse().unwrap());
            p.set_target_proto_addr(tpa);
        }
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(u16::from(repr.operation), op);
        assert_eq!(repr.source_hardware_addr.0, sha);
        assert_eq!(repr.source_protocol_addr, spa);
        assert_eq!(repr.target_hardware_addr.0, tha);
        assert_eq!(repr.target_protocol_addr, tpa);
        let mut ours = vec![0xa5; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut ours));
        assert_eq!(ours, buf);
    }
}

/// A random IPv4 header (with options) built by pnet, checksum by pnet, followed by `payload_len`
/// random bytes.
fn pnet_ipv4(rng: &mut Rng, protocol: u8, payload_len: usize) -> Vec<u8> {
    let hl = 20 + 4 * rng.below(11) as usize;
    let mut buf = bytes(rng, hl + payload_len);
    {
        let mut p = MutableIpv4Packet::new(&mut buf).unwrap();
        p.set_version(4);
        p.set_header_length((hl / 4) as u8);
        p.set_dscp(rng.below(64) as u8);
        p.set_ecn(rng.below(4) as u8);
        p.set_total_length((hl + payload_len) as u16);
        p.set_identification(rng.next_u64() as u16);
        p.set_flags(rng.below(4) as u8);
        p.set_fragment_offset(rng.below(8192) as u16);
        p.set_ttl(rng.next_u64() as u8);
        p.set_next_level_protocol(IpNextHeaderProtocol(protocol));
        p.set_source(v4(rng));
        p.set_destination(v4(rng));
        p.set_checksum(0);
        let c = pv4::checksum(&p.to_immutable());
        p.set_checksum(c);
    }
    buf
}

fn pnet_ipv4_checksum(buf: &[u8]) -> u16 {
    pv4::checksum(&PIpv4Packet::new(buf).unwrap())
}

#[test]
fn ipv4_header_matches_pnet_and_incremental_updates_hold() {
    let mut rng = Rng::new(4);
    for _ in 0..300 {
        let payload_len = rng.below(40) as usize;
        let protocol = rng.next_u64() as u8;
        let mut buf = pnet_ipv4(&mut rng, protocol, payload_len);
        let theirs = PIpv4Packet::new(&buf).unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), theirs.get_version());
        assert_eq!(p.header_len(), theirs.get_header_length() * 4);
        assert_eq!(p.dscp(), theirs.get_dscp());
        assert_eq!(p.ecn(), theirs.get_ecn());
        assert_eq!(p.total_len(), theirs.get_total_length());
        assert_eq!(p.ident(), theirs.get_identification());
        assert_eq!(p.dont_frag(), theirs.get_flags() & 0b010 != 0);
        assert_eq!(p.more_frags(), theirs.get_flags() & 0b001 != 0);
        assert_eq!(p.frag_offset(), theirs.get_fragment_offset() * 8);
        assert_eq!(p.ttl(), theirs.get_ttl());
        assert_eq!(u8::from(p.protocol()), theirs.get_next_level_protocol().0);
        assert_eq!(p.checksum(), theirs.get_checksum());
        assert_eq!(p.src_addr(), theirs.get_source());
        assert_eq!(p.dst_addr(), theirs.get_destination());
        assert_eq!(p.options().len(), theirs.get_header_length() as usize * 4 - 20);
        assert_eq!(p.payload().len(), payload_len);
        assert!(p.verify_checksum());

        // Our full computation equals pnet's.
        let want = p.checksum();
        let mut ours = buf.clone();
        Ipv4Packet::new_unchecked(&mut ours[..]).fill_checksum();
        assert_eq!(Ipv4Packet::new_unchecked(&ours[..]).checksum(), want);

        // Incremental rewrites and TTL decrements equal pnet's recomputation every time.
        for _ in 0..50 {
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
            match rng.below(3) {
                0 => {
                    p.rewrite_src_addr(v4(&mut rng));
                }
                1 => {
                    p.rewrite_dst_addr(v4(&mut rng));
                }
                _ => {
                    if !p.decrement_ttl() {
                        p.set_ttl(255);
                        p.fill_checksum();
                    }
                }
            }
            let now = p.checksum();
            assert_eq!(now, pnet_ipv4_checksum(&buf));
            assert!(Ipv4Packet::new_unchecked(&buf[..]).verify_checksum());
        }
    }
}

#[test]
fn ipv6_header_and_fragment_header_match_pnet() {
    let mut rng = Rng::new(5);
    for _ in 0..300 {
        let (tc, fl, hop) = (rng.next_u64() as u8, rng.below(1 << 20), rng.next_u64() as u8);
        // A first fragment (offset 0) is followed by UDP here; later ones by anything.
        let first = rng.below(2) == 0;
        let offset = if first { 0 } else { (rng.next_u64() as u16 | 8) & 0xfff8 };
        let nh = if first { 17 } else { rng.next_u64() as u8 };
        let (src, dst) = (v6(&mut rng), v6(&mut rng));
        let mut buf = vec![0u8; 40 + 8 + 4];
        {
            let mut p = MutableIpv6Packet::new(&mut buf).unwrap();
            p.set_version(6);
            p.set_traffic_class(tc);
            p.set_flow_label(fl);
            p.set_payload_length(12);
            p.set_next_header(IpNextHeaderProtocol(44));
            p.set_hop_limit(hop);
            p.set_source(src);
            p.set_destination(dst);
            let mut f = MutableFragmentPacket::new(p.payload_mut()).unwrap();
            f.set_next_header(IpNextHeaderProtocol(nh));
            // Offsets are multiples of 8 (pnet's getter would also count the reserved bit 0x4 as
            // offset; RFC 8200 puts the offset in the top 13 bits only).
            f.set_fragment_offset(offset);
            f.set_last_fragment(rng.below(2) == 0);
            f.set_id(rng.next_u64() as u32);
        }
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        let repr = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(
            repr,
            Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Ipv6Frag,
                payload_len: 12,
                hop_limit: hop,
                traffic_class: tc,
                flow_label: fl
            }
        );
        let theirs = pnet_packet::ipv6::FragmentPacket::new(&buf[40..]).unwrap();
        let ul = p.upper_layer().unwrap();
        let frag = ul.fragment.unwrap();
        assert_eq!(frag.offset, theirs.get_fragment_offset());
        assert_eq!(frag.more_frags, !theirs.is_last_fragment());
        assert_eq!(frag.ident, theirs.get_id());
        assert_eq!(ul.offset, 8);
        assert_eq!(ul.protocol, IpProtocol::from(nh));
        assert_eq!(ul.has_header(), first);
        // Our emitter writes the same fixed header.
        let mut ours = buf.clone();
        ours[..40].fill(0xa5);
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut ours[..]));
        assert_eq!(ours, buf);
    }
}

/// A TCP or UDP segment built by pnet with pnet's checksum for `src` → `dst`.
fn pnet_l4(rng: &mut Rng, tcp: bool, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
    let payload_len = rng.below(64) as usize;
    let mut buf;
    if tcp {
        let hl = 20 + 4 * rng.below(11) as usize;
        buf = bytes(rng, hl + payload_len);
        let mut p = MutableTcpPacket::new(&mut buf).unwrap();
        p.set_source(rng.next_u64() as u16);
        p.set_destination(rng.next_u64() as u16);
        p.set_sequence(rng.next_u64() as u32);
        p.set_acknowledgement(rng.next_u64() as u32);
        p.set_data_offset((hl / 4) as u8);
        p.set_reserved(rng.below(16) as u8);
        p.set_flags(rng.next_u64() as u8);
        p.set_window(rng.next_u64() as u16);
        p.set_urgent_ptr(rng.next_u64() as u16);
        p.set_checksum(0);
    } else {
        buf = bytes(rng, 8 + payload_len);
        let mut p = MutableUdpPacket::new(&mut buf).unwrap();
        p.set_source(rng.next_u64() as u16);
        p.set_destination(rng.next_u64() as u16);
        p.set_length((8 + payload_len) as u16);
        p.set_checksum(0);
    }
    let c = pnet_l4_checksum(&buf, tcp, src, dst);
    let c = if !tcp && c == 0 { 0xffff } else { c };
    let at = if tcp { 16 } else { 6 };
    buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
    buf
}

/// pnet's full recomputation (it skips the checksum field itself).
fn pnet_l4_checksum(buf: &[u8], tcp: bool, src: &IpAddr, dst: &IpAddr) -> u16 {
    match (tcp, src, dst) {
        (true, IpAddr::V4(s), IpAddr::V4(d)) => ptcp::ipv4_checksum(&PTcpPacket::new(buf).unwrap(), s, d),
        (true, IpAddr::V6(s), IpAddr::V6(d)) => ptcp::ipv6_checksum(&PTcpPacket::new(buf).unwrap(), s, d),
        (false, IpAddr::V4(s), IpAddr::V4(d)) => pudp::ipv4_checksum(&PUdpPacket::new(buf).unwrap(), s, d),
        (false, IpAddr::V6(s), IpAddr::V6(d)) => pudp::ipv6_checksum(&PUdpPacket::new(buf).unwrap(), s, d),
        _ => unreachable!(),
    }
}

/// What the checksum field must hold: pnet's value, with UDP's computed 0 sent as 0xffff.
fn expected_field(buf: &[u8], tcp: bool, src: &IpAddr, dst: &IpAddr) -> u16 {
    let c = pnet_l4_checksum(buf, tcp, src, dst);
    if !tcp && c == 0 {
        0xffff
    } else {
        c
    }
}

#[test]
fn tcp_fields_match_pnet() {
    let mut rng = Rng::new(6);
    for i in 0..400 {
        let six = i % 2 == 1;
        let (src, dst) = (addr(&mut rng, six), addr(&mut rng, six));
        let buf = pnet_l4(&mut rng, true, &src, &dst);
        let theirs = PTcpPacket::new(&buf).unwrap();
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.src_port(), theirs.get_source());
        assert_eq!(p.dst_port(), theirs.get_destination());
        assert_eq!(p.seq_number(), theirs.get_sequence());
        assert_eq!(p.ack_number(), theirs.get_acknowledgement());
        assert_eq!(p.header_len(), theirs.get_data_offset() * 4);
        assert_eq!(p.flags().0 & 0xff, theirs.get_flags() as u16);
        assert_eq!(p.ns(), theirs.get_reserved() & 1 == 1);
        assert_eq!(p.syn(), theirs.get_flags() & ptcp::TcpFlags::SYN != 0);
        assert_eq!(p.ack(), theirs.get_flags() & ptcp::TcpFlags::ACK != 0);
        assert_eq!(p.window_len(), theirs.get_window());
        assert_eq!(p.urgent_at(), theirs.get_urgent_ptr());
        assert_eq!(p.checksum(), theirs.get_checksum());
        assert_eq!(p.options().len(), theirs.get_data_offset() as usize * 4 - 20);
        assert!(p.verify_checksum(&src, &dst));
        let mut ours = buf.clone();
        TcpPacket::new_unchecked(&mut ours[..]).fill_checksum(&src, &dst);
        assert_eq!(ours, buf);
        // Repr round trip reproduces pnet's bytes (reserved bits aside, which Repr does not keep).
        let repr = TcpRepr::parse(&p, &src, &dst, &Default::default()).unwrap();
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut out), &src, &dst, &Default::default());
        let mut want = buf.clone();
        want[12] &= 0xf1;
        let check = checksum::upper_layer(&src, &dst, IpProtocol::Tcp, &{
            let mut z = want.clone();
            z[16] = 0;
            z[17] = 0;
            z
        });
        want[16..18].copy_from_slice(&check.to_be_bytes());
        assert_eq!(out, want);
    }
}

#[test]
fn udp_fields_match_pnet() {
    let mut rng = Rng::new(7);
    for i in 0..400 {
        let six = i % 2 == 1;
        let (src, dst) = (addr(&mut rng, six), addr(&mut rng, six));
        let buf = pnet_l4(&mut rng, false, &src, &dst);
        let theirs = PUdpPacket::new(&buf).unwrap();
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.src_port(), theirs.get_source());
        assert_eq!(p.dst_port(), theirs.get_destination());
        assert_eq!(p.len(), theirs.get_length());
        assert_eq!(p.checksum(), theirs.get_checksum());
        assert!(p.verify_checksum(&src, &dst));
        let repr = UdpRepr::parse(&p, &src, &dst, &Default::default()).unwrap();
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut UdpPacket::new_unchecked(&mut out), &src, &dst, &Default::default());
        assert_eq!(out, buf);
    }
}

/// Rewrites addresses and ports of TCP/UDP over IPv4 (with the IPv4 header) and IPv6 many times,
/// comparing every incremental result with pnet's full recomputation.
fn nat_rounds(seed: u64, tcp: bool, six: bool) {
    let mut rng = Rng::new(seed);
    let proto = if tcp { IpProtocol::Tcp } else { IpProtocol::Udp };
    for _ in 0..100 {
        let (mut src, mut dst) = (addr(&mut rng, six), addr(&mut rng, six));
        let mut l4 = pnet_l4(&mut rng, tcp, &src, &dst);
        // IPv4: carry a real header in front so its checksum is exercised too.
        let mut ip = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = pnet_ipv4(&mut rng, proto.into(), l4.len());
                let hl = (h[0] & 0x0f) as usize * 4;
                h[hl..].copy_from_slice(&l4);
                let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
                p.set_src_addr(s);
                p.set_dst_addr(d);
                p.fill_checksum();
                Some(h)
            }
            _ => None,
        };
        for _ in 0..100 {
            let endpoint = if rng.below(2) == 0 { Endpoint::Source } else { Endpoint::Destination };
            let new_addr = if rng.below(4) == 0 {
                // Port-only change.
                if endpoint == Endpoint::Source {
                    src
                } else {
                    dst
                }
            } else {
                addr(&mut rng, six)
            };
            let new_port = rng.next_u64() as u16;
            let old_addr = if endpoint == Endpoint::Source { src } else { dst };
            match ip.as_mut() {
                Some(h) => {
                    let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
                    let IpAddr::V4(na) = new_addr else { unreachable!() };
                    let old = match endpoint {
                        Endpoint::Source => p.rewrite_src_addr(na),
                        Endpoint::Destination => p.rewrite_dst_addr(na),
                    };
                    assert_eq!(IpAddr::V4(old), old_addr);
                    checksum::rewrite_l4(proto, p.payload_mut(), endpoint, &old_addr, &new_addr, new_port)
                        .unwrap();
                    assert_eq!(p.checksum(), pnet_ipv4_checksum(h), "IPv4 header checksum");
                    let hl = (h[0] & 0x0f) as usize * 4;
                    l4.copy_from_slice(&h[hl..]);
                }
                None => {
                    checksum::rewrite_l4(proto, &mut l4, endpoint, &old_addr, &new_addr, new_port).unwrap();
                }
            }
            match endpoint {
                Endpoint::Source => src = new_addr,
                Endpoint::Destination => dst = new_addr,
            }
            let at = if tcp { 16 } else { 6 };
            let field = u16::from_be_bytes([l4[at], l4[at + 1]]);
            assert_eq!(field, expected_field(&l4, tcp, &src, &dst), "incremental vs pnet");
            let port_at = if endpoint == Endpoint::Source { 0 } else { 2 };
            assert_eq!(u16::from_be_bytes([l4[port_at], l4[port_at + 1]]), new_port);
            if tcp {
                assert!(TcpPacket::new_checked(&l4[..]).unwrap().verify_checksum(&src, &dst));
            } else {
                assert!(UdpPacket::new_checked(&l4[..]).unwrap().verify_checksum(&src, &dst));
            }
        }
    }
}

#[test]
fn nat_rewrites_tcp_ipv4_equal_pnet() {
    nat_rounds(10, true, false);
}

#[test]
fn nat_rewrites_tcp_ipv6_equal_pnet() {
    nat_rounds(11, true, true);
}

#[test]
fn nat_rewrites_udp_ipv4_equal_pnet() {
    nat_rounds(12, false, false);
}

#[test]
fn nat_rewrites_udp_ipv6_equal_pnet() {
    nat_rounds(13, false, true);
}

#[test]
fn udp_zero_checksum_rules_under_nat() {
    let mut rng = Rng::new(14);
    for six in [false, true] {
        for _ in 0..200 {
            let (src, dst) = (addr(&mut rng, six), addr(&mut rng, six));
            let mut l4 = pnet_l4(&mut rng, false, &src, &dst);
            let new_dst = addr(&mut rng, six);
            // The destination port for which the full checksum computes to 0: with the port zeroed
            // the checksum is ~S, and S + ~S is 0xffff, so that port is pnet's checksum itself.
            let mut t = l4.clone();
            t[2..4].fill(0);
            let zero_port = pnet_l4_checksum(&t, false, &src, &new_dst);
            t[2..4].copy_from_slice(&zero_port.to_be_bytes());
            assert_eq!(pnet_l4_checksum(&t, false, &src, &new_dst), 0);
            checksum::rewrite_l4(IpProtocol::Udp, &mut l4, Endpoint::Destination, &dst, &new_dst, zero_port)
                .unwrap();
            assert_eq!(&l4[6..8], &[0xff, 0xff], "a computed 0 is sent as 0xffff");
            assert!(UdpPacket::new_checked(&l4[..]).unwrap().verify_checksum(&src, &new_dst));
            // And rewriting away from it again still equals the recomputation.
            let back = rng.next_u64() as u16;
            checksum::rewrite_l4(IpProtocol::Udp, &mut l4, Endpoint::Destination, &new_dst, &dst, back)
                .unwrap();
            assert_eq!(u16::from_be_bytes([l4[6], l4[7]]), expected_field(&l4, false, &src, &dst));
            // fill_checksum agrees.
            let mut t = l4.clone();
            t[2..4].copy_from_slice(&zero_port.to_be_bytes());
            UdpPacket::new_unchecked(&mut t[..]).fill_checksum(&src, &new_dst);
            assert_eq!(&t[6..8], &[0xff, 0xff]);
        }
    }
    // IPv4 "no checksum" stays 0 through rewrites.
    for _ in 0..50 {
        let (src, dst) = (addr(&mut rng, false), addr(&mut rng, false));
        let mut l4 = pnet_l4(&mut rng, false, &src, &dst);
        l4[6] = 0;
        l4[7] = 0;
        let new_src = addr(&mut rng, false);
        let port = rng.next_u64() as u16;
        checksum::rewrite_l4(IpProtocol::Udp, &mut l4, Endpoint::Source, &src, &new_src, port).unwrap();
        assert_eq!(&l4[6..8], &[0, 0]);
        assert_eq!(u16::from_be_bytes([l4[0], l4[1]]), port);
        assert!(UdpPacket::new_checked(&l4[..]).unwrap().verify_checksum(&new_src, &dst));
    }
}

#[test]
fn icmpv4_matches_pnet() {
    use pnet_packet::icmp::destination_unreachable::MutableDestinationUnreachablePacket;
    use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
    let mut rng = Rng::new(15);
    for _ in 0..200 {
        let n = rng.below(64) as usize;
        let data = bytes(&mut rng, n);
        let (ident, seq) = (rng.next_u64() as u16, rng.next_u64() as u16);
        let mut buf = vec![0u8; 8 + data.len()];
        {
            let mut p = MutableEchoRequestPacket::new(&mut buf).unwrap();
            p.set_icmp_type(IcmpTypes::EchoRequest);
            p.set_icmp_code(IcmpCode(0));
            p.set_identifier(ident);
            p.set_sequence_number(seq);
            p.set_payload(&data);
        }
        let c = picmp::checksum(&IcmpPacket::new(&buf).unwrap());
        buf[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&p, &Default::default()),
            Ok(Icmpv4Repr::EchoRequest { ident, seq_no: seq, data: &data })
        );
        let repr = Icmpv4Repr::EchoRequest { ident, seq_no: seq, data: &data };
        let mut ours = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut ours), &Default::default());
        assert_eq!(ours, buf);

        // Fragmentation needed, quoting an IPv4 header and 8 bytes.
        let quote = pnet_ipv4(&mut rng, 6, 8);
        let mtu = rng.next_u64() as u16;
        let mut buf = vec![0u8; 8 + quote.len()];
        {
            let mut p = MutableDestinationUnreachablePacket::new(&mut buf).unwrap();
            p.set_icmp_type(IcmpTypes::DestinationUnreachable);
            p.set_icmp_code(IcmpCode(4));
            p.set_next_hop_mtu(mtu);
            p.set_payload(&quote);
        }
        let c = picmp::checksum(&IcmpPacket::new(&buf).unwrap());
        buf[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), mtu);
        let inner = p.original_datagram().unwrap();
        assert_eq!(inner.as_ref(), &quote[..]);
        assert_eq!(inner.protocol(), IpProtocol::Tcp);
        let repr = Icmpv4Repr::DstUnreachable {
            reason: icmpv4::DstUnreachable::FragRequired,
            next_hop_mtu: mtu,
            original: &quote,
        };
        let mut ours = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut ours), &Default::default());
        assert_eq!(ours, buf);
    }
}

#[test]
fn icmpv6_matches_pnet() {
    use pnet_packet::icmpv6::echo_request::MutableEchoRequestPacket;
    let mut rng = Rng::new(16);
    for _ in 0..200 {
        let (src, dst) = (v6(&mut rng), v6(&mut rng));
        let n = rng.below(64) as usize;
        let data = bytes(&mut rng, n);
        let (ident, seq) = (rng.next_u64() as u16, rng.next_u64() as u16);
        let mut buf = vec![0u8; 8 + data.len()];
        {
            let mut p = MutableEchoRequestPacket::new(&mut buf).unwrap();
            p.set_icmpv6_type(Icmpv6Types::EchoRequest);
            p.set_icmpv6_code(Icmpv6Code(0));
            p.set_identifier(ident);
            p.set_sequence_number(seq);
            p.set_payload(&data);
        }
        let c = picmpv6::checksum(&PIcmpv6Packet::new(&buf).unwrap(), &src, &dst);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(&src, &dst));
        let repr = Icmpv6Repr::parse(&p, &src, &dst, &Default::default()).unwrap();
        assert_eq!(repr, Icmpv6Repr::EchoRequest { ident, seq_no: seq, data: &data });
        let mut ours = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut ours), &src, &dst, &Default::default());
        assert_eq!(ours, buf);

        // Neighbour solicitation with a source link-layer address option.
        let target = v6(&mut rng);
        let ll = mac(&mut rng);
        let mut buf = vec![0u8; 32];
        {
            let mut p = MutableNeighborSolicitPacket::new(&mut buf).unwrap();
            p.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
            p.set_icmpv6_code(Icmpv6Code(0));
            p.set_target_addr(target);
            p.set_options(&[NdpOption {
                option_type: NdpOptionTypes::SourceLLAddr,
                length: 1,
                data: ll.to_vec(),
            }]);
        }
        let c = picmpv6::checksum(&PIcmpv6Packet::new(&buf).unwrap(), &src, &dst);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        let repr = Icmpv6Repr::parse(&p, &src, &dst, &Default::default()).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::NeighborSolicit { target_addr: target, lladdr: Some(EthernetAddress(ll)) }
        );
        let mut ours = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut ours), &src, &dst, &Default::default());
        assert_eq!(ours, buf);

        // Our neighbour advertisement reads the same through pnet.
        let adv = Icmpv6Repr::neighbor_advert_for(target, EthernetAddress(ll));
        let mut ours = vec![0xa5; adv.buffer_len()];
        adv.emit(&mut Icmpv6Packet::new_unchecked(&mut ours), &dst, &src, &Default::default());
        let mut theirs = ours.clone();
        {
            let p = MutableNeighborAdvertPacket::new(&mut theirs).unwrap();
            assert_eq!(p.get_flags(), NeighborAdvertFlags::Solicited | NeighborAdvertFlags::Override);
            assert_eq!(p.get_target_addr(), target);
            let opts = p.get_options();
            assert_eq!(opts.len(), 1);
            assert_eq!(opts[0].option_type, NdpOptionTypes::TargetLLAddr);
            assert_eq!(opts[0].data, ll.to_vec());
        }
        let c = picmpv6::checksum(&PIcmpv6Packet::new(&theirs).unwrap(), &dst, &src);
        assert_eq!(u16::from_be_bytes([ours[2], ours[3]]), c);
    }
}
