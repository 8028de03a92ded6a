//! Malformed input never panics: thousands of random, truncated and mutated buffers (bounded,
//! seeded) go through every `new_checked`, every accessor of what passes, every `Repr::parse`, the
//! extension-header walker, the NAT helper and the tunnel helpers. Whatever parses must also
//! re-emit and re-parse to the same representation.

use super::*;
use crate::rng::Rng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const V4A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const V4B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);
const V6A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const V6B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fn pairs() -> [(IpAddr, IpAddr); 2] {
    [(IpAddr::V4(V4A), IpAddr::V4(V4B)), (IpAddr::V6(V6A), IpAddr::V6(V6B))]
}

/// Valid packets of every kind, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let caps = ChecksumCapabilities::default();
    let (a4, b4) = (IpAddr::V4(V4A), IpAddr::V4(V4B));
    let mut out = Vec::new();

    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EtherType::Ipv4,
        vlan: Some(VlanTag { pcp: 3, dei: false, vid: 42 }),
    };
    let mut b = vec![0; eth.buffer_len() + 4];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut b));
    out.push(b);

    let arp = ArpRepr::request(EthernetAddress([2, 0, 0, 0, 0, 1]), V4A, V4B);
    let mut b = vec![0; arp.buffer_len()];
    arp.emit(&mut ArpPacket::new_unchecked(&mut b));
    out.push(b);

    let tcp = TcpRepr {
        src_port: 1234,
        dst_port: 80,
        seq_number: 1,
        ack_number: 2,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window_len: 100,
        urgent_at: 0,
        options: &[2, 4, 5, 0xb4],
        payload: b"hello",
    };
    let mut seg = vec![0; tcp.buffer_len()];
    tcp.emit(&mut TcpPacket::new_unchecked(&mut seg), &a4, &b4, &caps);
    let ip = Ipv4Repr {
        src_addr: V4A,
        dst_addr: V4B,
        protocol: IpProtocol::Tcp,
        payload_len: seg.len(),
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut b = vec![0; 20 + seg.len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut b), &caps);
    b[20..].copy_from_slice(&seg);
    out.push(seg);
    out.push(b.clone());

    let udp = UdpRepr { src_port: 53, dst_port: 5353, payload: b"abc" };
    let mut d = vec![0; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut d), &a4, &b4, &caps);
    out.push(d.clone());

    // IPv6 with hop-by-hop + fragment + UDP.
    let mut payload = vec![44, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 9];
    payload.extend_from_slice(&d);
    let ip6 = Ipv6Repr {
        src_addr: V6A,
        dst_addr: V6B,
        next_header: IpProtocol::HopByHop,
        payload_len: payload.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut b6 = vec![0; 40 + payload.len()];
    ip6.emit(&mut Ipv6Packet::new_unchecked(&mut b6));
    b6[40..].copy_from_slice(&payload);
    out.push(b6.clone());

    let sctp = SctpRepr { src_port: 1, dst_port: 2, verification_tag: 3, chunks: &[1, 0, 0, 8, 0, 0, 0, 0] };
    let mut s = vec![0; sctp.buffer_len()];
    sctp.emit(&mut SctpPacket::new_unchecked(&mut s), &caps);
    out.push(s);

    let quote = b[..28].to_vec();
    let icmp = Icmpv4Repr::DstUnreachable {
        reason: icmpv4::DstUnreachable::FragRequired,
        next_hop_mtu: 1400,
        original: &quote,
    };
    let mut i4 = vec![0; icmp.buffer_len()];
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut i4), &caps);
    out.push(i4);

    let quote6 = b6[..56].to_vec();
    for r in [
        Icmpv6Repr::PktTooBig { mtu: 1280, original: &quote6 },
        Icmpv6Repr::NeighborSolicit { target_addr: V6B, lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1])) },
        Icmpv6Repr::neighbor_advert_for(V6B, EthernetAddress([2, 0, 0, 0, 0, 2])),
    ] {
        let mut i6 = vec![0; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut i6), &V6A, &V6B, &caps);
        out.push(i6);
    }
    out
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    match rng.below(4) {
        0 => {
            // Flip a few bytes.
            for _ in 0..1 + rng.below(4) {
                if !b.is_empty() {
                    let i = rng.below(b.len() as u32) as usize;
                    b[i] = rng.next_u64() as u8;
                }
            }
        }
        1 => {
            // Truncate.
            let n = rng.below(b.len() as u32 + 1) as usize;
            b.truncate(n);
        }
        2 => {
            // Extend with junk.
            for _ in 0..rng.below(64) {
                b.push(rng.next_u64() as u8);
            }
        }
        _ => {
            // Flip and truncate.
            if !b.is_empty() {
                let i = rng.below(b.len() as u32) as usize;
                b[i] = rng.next_u64() as u8;
            }
            let n = rng.below(b.len() as u32 + 1) as usize;
            b.truncate(n);
        }
    }
    b
}

fn random(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(160) as usize;
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn exercise(b: &[u8]) {
    let ignored = ChecksumCapabilities::ignored();
    let caps = ChecksumCapabilities::default();
    let _ = l4_ports(b);

    if let Ok(f) = EthernetFrame::new_checked(b) {
        let _ =
            (f.dst_addr(), f.src_addr(), f.ethertype(), f.vlan_tag(), f.payload_ethertype(), f.header_len());
        let _ = f.payload();
        if let Ok(r) = EthernetRepr::parse(&f) {
            let mut out = vec![0; r.buffer_len()];
            r.emit(&mut EthernetFrame::new_unchecked(&mut out));
            assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).unwrap()), Ok(r));
        }
    }

    if let Ok(p) = ArpPacket::new_checked(b) {
        let _ = (p.hardware_type(), p.protocol_type(), p.operation());
        let _ = (p.source_hardware_addr(), p.source_protocol_addr());
        let _ = (p.target_hardware_addr(), p.target_protocol_addr());
        if let Ok(r) = ArpRepr::parse(&p) {
            let mut out = vec![0; r.buffer_len()];
            r.emit(&mut ArpPacket::new_unchecked(&mut out));
            assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()), Ok(r));
        }
    }

    for p in [Ipv4Packet::new_checked(b), Ipv4Packet::new_checked_truncated(b)].into_iter().flatten() {
        let _ = (p.version(), p.header_len(), p.options_len(), p.dscp(), p.ecn(), p.tos(), p.total_len());
        let _ = (p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl());
        let _ = (p.protocol(), p.checksum(), p.src_addr(), p.dst_addr(), p.verify_checksum());
        let _ = (p.options(), p.payload());
        let _ = l4_ports(p.payload());
        let mut m = b.to_vec();
        let mut q = Ipv4Packet::new_unchecked(&mut m[..]);
        let old = q.rewrite_dst_addr(V4B);
        let _ = q.decrement_ttl();
        q.fill_checksum();
        let proto = q.protocol();
        let _ = checksum::rewrite_l4(
            proto,
            q.payload_mut(),
            Endpoint::Destination,
            &old.into(),
            &V4B.into(),
            8080,
        );
        let _ = q.options_mut();
    }
    if let Ok(p) = Ipv4Packet::new_checked(b) {
        if let Ok(r) = Ipv4Repr::parse(&p, &ignored) {
            let mut out = vec![0; r.buffer_len() + r.payload_len];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut out), &caps);
            assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).unwrap(), &caps), Ok(r));
        }
        let _ = ipip::decapsulate(b);
    }

    for p in [Ipv6Packet::new_checked(b), Ipv6Packet::new_checked_truncated(b)].into_iter().flatten() {
        let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len(), p.total_len());
        let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr(), p.payload());
        if let Ok(ul) = p.upper_layer() {
            assert!(ul.offset <= p.payload().len());
            let _ = (ul.is_fragment(), ul.has_header(), l4_ports(&p.payload()[ul.offset..]));
        }
        let mut m = b.to_vec();
        let mut q = Ipv6Packet::new_unchecked(&mut m[..]);
        let _ = q.decrement_hop_limit();
        let _ = q.payload_mut();
    }
    if let Ok(p) = Ipv6Packet::new_checked(b) {
        if let Ok(r) = Ipv6Repr::parse(&p) {
            let mut out = vec![0; r.buffer_len() + r.payload_len];
            r.emit(&mut Ipv6Packet::new_unchecked(&mut out));
            assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&out[..]).unwrap()), Ok(r));
        }
    }
    for first in [0u8, 43, 44, 51, 60, 59, 50, 6] {
        if let Ok(ul) = ipv6::walk_ext_headers(IpProtocol::from(first), b) {
            assert!(ul.offset <= b.len());
        }
    }

    for (src, dst) in pairs() {
        if let Ok(p) = TcpPacket::new_checked(b) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len(), p.flags());
            let _ = (p.fin(), p.syn(), p.rst(), p.psh(), p.ack(), p.urg(), p.ece(), p.cwr(), p.ns());
            let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload(), p.segment_len());
            let _ = p.verify_checksum(&src, &dst);
            if let Ok(r) = TcpRepr::parse(&p, &src, &dst, &ignored) {
                let mut out = vec![0; r.buffer_len()];
                r.emit(&mut TcpPacket::new_unchecked(&mut out), &src, &dst, &caps);
                let back = TcpRepr::parse(&TcpPacket::new_checked(&out[..]).unwrap(), &src, &dst, &caps);
                assert_eq!(back, Ok(r));
            }
        }
        if let Ok(p) = UdpPacket::new_checked(b) {
            let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload());
            let _ = p.verify_checksum(&src, &dst);
            if let Ok(r) = UdpRepr::parse(&p, &src, &dst, &ignored) {
                let mut out = vec![0; r.buffer_len()];
                r.emit(&mut UdpPacket::new_unchecked(&mut out), &src, &dst, &caps);
                let back = UdpRepr::parse(&UdpPacket::new_checked(&out[..]).unwrap(), &src, &dst, &caps);
                assert_eq!(back, Ok(r));
            }
        }
        for proto in [IpProtocol::Tcp, IpProtocol::Udp, IpProtocol::Sctp, IpProtocol::Icmp] {
            let mut m = b.to_vec();
            let _ = checksum::rewrite_l4(proto, &mut m, Endpoint::Source, &src, &dst, 1);
        }
        let encap = Encap { src_addr: src, dst_addr: dst, hop_limit: 64, ident: 0 };
        let mut hdr = [0u8; 40];
        let _ = encap.emit_header(&mut hdr, b);
        let mut room = b.to_vec();
        room.extend_from_slice(&[0; 40]);
        let _ = encap.encapsulate(&mut room, b.len());
        for encapsulation in [
            super::Encapsulation::Gue { src_port: 1, dst_port: 6080, checksum: true },
            super::Encapsulation::Gre { checksum: true },
        ] {
            let t = super::Tunnel { outer: encap, encapsulation };
            let mut room = vec![0u8; t.header_len()];
            room.extend_from_slice(b);
            if t.check(b).is_ok() {
                assert_eq!(t.emit(&mut room), Ok(()));
            } else {
                assert_eq!(t.emit(&mut room), Err(Error));
            }
        }
    }

    let _ = super::tunnel::decapsulate(b);
    let _ = super::gue::flow_source_port(b);
    if let Ok(p) = super::gue::Packet::new_checked(b) {
        let _ = (p.version(), p.control(), p.hlen(), p.proto_ctype(), p.flags(), p.private_flags());
        let _ = (p.payload(), super::gue::Repr::parse(&p));
    }
    if let Ok(p) = super::gre::Packet::new_checked(b) {
        let _ = (p.version(), p.has_checksum(), p.protocol(), p.checksum(), p.key(), p.payload());
        if let Ok(r) = super::gre::Repr::parse(&p) {
            let mut out = vec![0; r.buffer_len() + p.payload().len()];
            out[r.buffer_len()..].copy_from_slice(p.payload());
            r.emit(&mut super::gre::Packet::new_unchecked(&mut out[..]));
            assert_eq!(super::gre::Repr::parse(&super::gre::Packet::new_checked(&out[..]).unwrap()), Ok(r));
        }
    }

    if let Ok(p) = SctpPacket::new_checked(b) {
        let _ = (p.src_port(), p.dst_port(), p.verification_tag(), p.checksum(), p.chunks());
        let _ = (p.first_chunk_type(), p.first_chunk_flags(), p.first_chunk_len(), p.verify_checksum());
        if let Ok(r) = SctpRepr::parse(&p, &ignored) {
            let mut out = vec![0; r.buffer_len()];
            r.emit(&mut SctpPacket::new_unchecked(&mut out), &caps);
            assert_eq!(SctpRepr::parse(&SctpPacket::new_checked(&out[..]).unwrap(), &caps), Ok(r));
        }
    }

    if let Ok(p) = Icmpv4Packet::new_checked(b) {
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no(), p.next_hop_mtu());
        let _ = (p.pointer(), p.rest_of_header(), p.data(), p.is_error(), p.verify_checksum());
        if let Ok(inner) = p.original_datagram() {
            let _ = (inner.protocol(), inner.src_addr(), l4_ports(inner.payload()));
        }
        if let Ok(r) = Icmpv4Repr::parse(&p, &ignored) {
            let mut out = vec![0; r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut out), &caps);
            assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).unwrap(), &caps), Ok(r));
        }
    }

    if let Ok(p) = Icmpv6Packet::new_checked(b) {
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no());
        let _ = (p.pkt_too_big_mtu(), p.param_problem_ptr(), p.nd_flags(), p.data(), p.is_error());
        let _ = (p.target_addr(), p.source_ll_addr(), p.target_ll_addr(), p.verify_checksum(&V6A, &V6B));
        for o in p.ndp_options().flatten() {
            let _ = o.link_layer_addr();
        }
        if let Ok(inner) = p.original_datagram() {
            let _ = inner.upper_layer();
        }
        if let Ok(r) = Icmpv6Repr::parse(&p, &V6A, &V6B, &ignored) {
            let mut out = vec![0; r.buffer_len()];
            r.emit(&mut Icmpv6Packet::new_unchecked(&mut out), &V6A, &V6B, &caps);
            let back = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&out[..]).unwrap(), &V6A, &V6B, &caps);
            assert_eq!(back, Ok(r));
        }
    }
}

#[test]
fn every_length_of_every_seed_is_safe() {
    for seed in seeds() {
        for len in 0..=seed.len() {
            exercise(&seed[..len]);
        }
    }
}

#[test]
fn random_and_mutated_buffers_never_panic() {
    let seeds = seeds();
    let mut rng = Rng::new(0x5eed);
    for i in 0..20_000 {
        let b = if i % 4 == 0 {
            random(&mut rng)
        } else {
            let s = &seeds[rng.below(seeds.len() as u32) as usize];
            mutate(&mut rng, s)
        };
        exercise(&b);
    }
}

#[test]
fn the_seeds_parse() {
    let caps = ChecksumCapabilities::default();
    let s = seeds();
    assert!(EthernetFrame::new_checked(&s[0][..]).is_ok());
    assert!(ArpRepr::parse(&ArpPacket::new_checked(&s[1][..]).unwrap()).is_ok());
    let a4 = IpAddr::V4(V4A);
    let b4 = IpAddr::V4(V4B);
    assert!(TcpRepr::parse(&TcpPacket::new_checked(&s[2][..]).unwrap(), &a4, &b4, &caps).is_ok());
    assert!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&s[3][..]).unwrap(), &caps).is_ok());
    assert!(UdpRepr::parse(&UdpPacket::new_checked(&s[4][..]).unwrap(), &a4, &b4, &caps).is_ok());
    let p6 = Ipv6Packet::new_checked(&s[5][..]).unwrap();
    let ul = p6.upper_layer().unwrap();
    assert_eq!((ul.protocol, ul.offset), (IpProtocol::Udp, 16));
    assert!(SctpRepr::parse(&SctpPacket::new_checked(&s[6][..]).unwrap(), &caps).is_ok());
    assert!(Icmpv4Packet::new_checked(&s[7][..]).unwrap().original_datagram().is_ok());
    for b in &s[8..] {
        assert!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap(), &V6A, &V6B, &caps).is_ok());
    }
}
