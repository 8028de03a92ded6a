//! ARP and neighbour discovery: answers for VIPs, announcements, resolution of unknown next hops
//! with parking, overflow, retries and expiry.

use super::*;
use crate::conn::tcp::flags;
use crate::wire::arp::Operation;
use crate::wire::ArpPacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperation, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::MutablePacket as _;
use std::net::Ipv4Addr;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("v4")
}

/// An ARP frame built with the wire builders.
fn arp_wire(
    eth_dst: EthernetAddress,
    op: Operation,
    sha: EthernetAddress,
    spa: &str,
    tha: EthernetAddress,
    tpa: &str,
) -> Vec<u8> {
    let repr = crate::wire::ArpRepr {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: v4(spa),
        target_hardware_addr: tha,
        target_protocol_addr: v4(tpa),
    };
    let mut f = vec![0u8; 14 + 28];
    crate::wire::EthernetRepr { src_addr: sha, dst_addr: eth_dst, ethertype: EtherType::Arp, vlan: None }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    repr.emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    f
}

/// The same with pnet.
fn arp_pnet(
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    op: u16,
    sha: EthernetAddress,
    spa: &str,
    tha: EthernetAddress,
    tpa: &str,
) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    let mut e = MutableEthernetPacket::new(&mut f).expect("eth");
    e.set_source(eth_src.0.into());
    e.set_destination(eth_dst.0.into());
    e.set_ethertype(EtherTypes::Arp);
    let mut a = MutableArpPacket::new(e.payload_mut()).expect("arp");
    a.set_hardware_type(ArpHardwareTypes::Ethernet);
    a.set_protocol_type(EtherTypes::Ipv4);
    a.set_hw_addr_len(6);
    a.set_proto_addr_len(4);
    a.set_operation(ArpOperation(op));
    a.set_sender_hw_addr(sha.0.into());
    a.set_sender_proto_addr(v4(spa));
    a.set_target_hw_addr(tha.0.into());
    a.set_target_proto_addr(v4(tpa));
    f
}

fn nat_engine_without(unknown: &[&str]) -> Engine {
    let mut cfg = config();
    cfg.neigh.queue_len = 2;
    let ipvs = ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, Some(8080), FwdMethod::Masq)]);
    let mut e = Engine::new(cfg, ipvs).expect("engine");
    let mut sink = Vec::new();
    for (ifindex, addr, m) in
        [(1, "10.0.0.254", R0), (1, "2001:db8::fe", R0), (2, RS1_4, RS1), (2, RS1_6, RS1)]
    {
        if !unknown.contains(&addr) {
            e.add_neighbour(ifindex, ip(addr), m, T0, &mut sink);
        }
    }
    e
}

fn syn(sport: u16) -> Pkt {
    Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(sport, 80).flags(flags::SYN)
}

#[test]
fn arp_request_for_a_vip_is_answered() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[]));
    let req = arp_wire(
        EthernetAddress::BROADCAST,
        Operation::Request,
        R0,
        "10.0.0.254",
        EthernetAddress([0; 6]),
        VIP4,
    );
    let (o, out) = run(&mut e, 1, &req, T0);
    assert_eq!(o, Outcome::Answered);
    let want = arp_pnet(D0, R0, 2, D0, VIP4, R0, "10.0.0.254");
    assert_frame(single(&out, 1), &want, "ARP reply");
    assert_eq!(e.counters().answered_arp, 1);
    // Not for a VIP: left to the host, nothing sent.
    let other = arp_wire(
        EthernetAddress::BROADCAST,
        Operation::Request,
        R0,
        "10.0.0.254",
        EthernetAddress([0; 6]),
        "10.0.0.1",
    );
    let (o, out) = run(&mut e, 1, &other, T0);
    assert_eq!(o, Outcome::ToHost);
    assert!(out.iter().all(|f| f.to_host));
    // A request for the VIP refreshes (and here changes) the asker's MAC.
    let moved = mac(0xee, 0);
    let req = arp_wire(
        EthernetAddress::BROADCAST,
        Operation::Request,
        moved,
        "10.0.0.254",
        EthernetAddress([0; 6]),
        VIP4,
    );
    run(&mut e, 1, &req, T0);
    assert_eq!(e.neighbour(1, ip("10.0.0.254")), Some(moved));
}

#[test]
fn gratuitous_arp_matches_keepalived() {
    // keepalived 2.2.7's GARP for VIP 10.200.0.100 from 5a:89:80:ea:fa:da, as captured
    // (shared/reference/keepalived.md §3.8).
    let captured: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5a, 0x89, 0x80, 0xea, 0xfa, 0xda, 0x08, 0x06, 0x00, 0x01, 0x08,
        0x00, 0x06, 0x04, 0x00, 0x01, 0x5a, 0x89, 0x80, 0xea, 0xfa, 0xda, 0x0a, 0xc8, 0x00, 0x64, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0x0a, 0xc8, 0x00, 0x64,
    ];
    let m = EthernetAddress([0x5a, 0x89, 0x80, 0xea, 0xfa, 0xda]);
    let cfg = EngineConfig {
        interfaces: vec![
            Interface::new(3, "veth0", m, 1500).with_addr(ip("10.200.0.1"), 24),
            Interface::new(4, "other", mac(9, 9), 1500).with_addr(ip("10.9.0.1"), 24),
        ],
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg, ipvs_with(Protocol::Tcp, "10.200.0.100", 80, &[])).expect("engine");
    let mut out = Vec::new();
    assert_eq!(e.announce(&mut out), 1, "only on the interface whose subnet holds the VIP");
    assert_frame(single(&out, 3), &captured, "GARP");
    assert_eq!(e.counters().neigh_announce_sent, 1);
}

#[test]
fn unsolicited_na_announces_an_ipv6_vip() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP6, 80, &[]));
    let mut out = Vec::new();
    assert_eq!(e.announce(&mut out), 1);
    let mut data = ip(VIP6).to_string().parse::<std::net::Ipv6Addr>().expect("v6").octets().to_vec();
    data.extend_from_slice(&[2, 1]);
    data.extend_from_slice(&D0.0);
    let want = Pkt::v6(VIP6, "ff02::1")
        .eth(D0, EthernetAddress([0x33, 0x33, 0, 0, 0, 1]))
        .ttl(255)
        .icmp(136, 0, 0x2000_0000)
        .payload(&data)
        .pnet();
    assert_frame(single(&out, 1), &want, "unsolicited NA");
}

fn nd_body(target: &str, opt_type: u8, m: EthernetAddress) -> Vec<u8> {
    let mut d = ip(target).to_string().parse::<std::net::Ipv6Addr>().expect("v6").octets().to_vec();
    d.extend_from_slice(&[opt_type, 1]);
    d.extend_from_slice(&m.0);
    d
}

#[test]
fn neighbour_solicitation_for_a_vip_gets_an_advertisement() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP6, 80, &[]));
    let ns = Pkt::v6("2001:db8::fe", "ff02::1:ff00:100")
        .eth(R0, EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x01, 0x00]))
        .ttl(255)
        .icmp(135, 0, 0)
        .payload(&nd_body(VIP6, 1, R0));
    let (o, out) = run(&mut e, 1, &ns.wire(), T0);
    assert_eq!(o, Outcome::Answered);
    let want = Pkt::v6(VIP6, "2001:db8::fe")
        .eth(D0, R0)
        .ttl(255)
        .icmp(136, 0, 0x6000_0000)
        .payload(&nd_body(VIP6, 2, D0))
        .pnet();
    assert_frame(single(&out, 1), &want, "solicited NA");
    assert_eq!(e.counters().answered_ns, 1);
    // Hop limit other than 255 is not neighbour discovery: ignored, to the host.
    let (o, out) = run(&mut e, 1, &ns.clone().ttl(64).wire(), T0);
    assert_eq!(o, Outcome::ToHost);
    assert!(out.iter().all(|f| f.to_host));
    // Duplicate address detection (source ::) is answered to all nodes without the S flag.
    let dad = Pkt::v6("::", "ff02::1:ff00:100")
        .eth(mac(0x42, 0), EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x01, 0x00]))
        .ttl(255)
        .icmp(135, 0, 0)
        .payload(&ip(VIP6).to_string().parse::<std::net::Ipv6Addr>().expect("v6").octets());
    let (o, out) = run(&mut e, 1, &dad.wire(), T0);
    assert_eq!(o, Outcome::Answered);
    let want = Pkt::v6(VIP6, "ff02::1")
        .eth(D0, EthernetAddress([0x33, 0x33, 0, 0, 0, 1]))
        .ttl(255)
        .icmp(136, 0, 0x2000_0000)
        .payload(&nd_body(VIP6, 2, D0))
        .pnet();
    assert_frame(single(&out, 1), &want, "DAD answer");
}

#[test]
fn unknown_next_hop_is_resolved_and_the_packet_released() {
    let mut e = nat_engine_without(&[RS1_4]);
    let input = syn(40000);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Queued);
    let who_has = arp_pnet(D1, EthernetAddress::BROADCAST, 1, D1, D1_4, EthernetAddress([0; 6]), RS1_4);
    assert_frame(single(&out, 2), &who_has, "ARP request");
    assert_eq!((e.counters().queued, e.counters().neigh_solicit_sent), (1, 1));
    // The answer releases the packet, addressed to the answering MAC.
    let answer = arp_wire(D1, Operation::Reply, RS1, RS1_4, D1, D1_4);
    let (o, out) = run(&mut e, 2, &answer, T0 + std::time::Duration::from_millis(3));
    assert_eq!(o, Outcome::ToHost);
    let want = input.clone().eth(D1, RS1).ttl(63).dst(ip(RS1_4)).dport(8080).pnet();
    assert_frame(single(&out, 2), &want, "released frame");
    assert_eq!(e.counters().released, 1);
    assert_eq!(e.neighbour(2, ip(RS1_4)), Some(RS1));
    // Now known: straight through.
    let (o, _) = run(&mut e, 1, &syn(40001).wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
}

#[test]
fn pending_queue_overflow_is_counted() {
    let mut e = nat_engine_without(&[RS1_4]);
    let outcomes: Vec<Outcome> = (0..3).map(|i| run(&mut e, 1, &syn(40000 + i).wire(), T0).0).collect();
    assert_eq!(outcomes, [Outcome::Queued, Outcome::Queued, Outcome::Dropped(DropCause::NeighQueueFull)]);
    let k = e.counters();
    assert_eq!((k.queued, k.drop_neigh_queue_full, k.neigh_solicit_sent), (2, 1, 1), "one request only");
    let answer = arp_wire(D1, Operation::Reply, RS1, RS1_4, D1, D1_4);
    let (_, out) = run(&mut e, 2, &answer, T0);
    let sent: Vec<&TxFrame> = out.iter().filter(|f| !f.to_host).collect();
    assert_eq!(sent.len(), 2);
    // In arrival order.
    assert_eq!(&sent[0].data[14 + 20..14 + 22], &40000u16.to_be_bytes());
    assert_eq!(&sent[1].data[14 + 20..14 + 22], &40001u16.to_be_bytes());
}

#[test]
fn unanswered_resolution_retries_then_drops() {
    let mut e = nat_engine_without(&[RS1_4]);
    run(&mut e, 1, &syn(40000).wire(), T0);
    run(&mut e, 1, &syn(40001).wire(), T0);
    let mut requests = 1;
    for step in 1..=4u64 {
        let mut out = Vec::new();
        e.advance(T0 + std::time::Duration::from_millis(1000 * step), &mut out);
        requests += out.len();
        for f in &out {
            assert_eq!(&f.data[12..14], &[0x08, 0x06], "ARP");
            assert_eq!(&f.data[..6], &[0xff; 6], "broadcast");
        }
    }
    assert_eq!(requests, 3, "max_probes solicitations in all");
    assert_eq!(e.counters().drop_neigh_failed, 2);
    assert_eq!(e.neighbour(2, ip(RS1_4)), None);
}

#[test]
fn stale_neighbours_are_probed_while_used_and_expire_when_silent() {
    let mut e = nat_engine_without(&[]);
    let later = T0 + std::time::Duration::from_secs(31);
    let (o, out) = run(&mut e, 1, &syn(40000).wire(), later);
    assert_eq!(o, Outcome::Forwarded);
    // A unicast ARP probe to the known MAC, then the packet.
    assert_eq!(out.len(), 2);
    let probe = arp_pnet(D1, RS1, 1, D1, D1_4, EthernetAddress([0; 6]), RS1_4);
    assert_frame(&out[0].data, &probe, "refresh probe");
    // Past reachable + stale with no answer: gone, the next packet is parked again.
    let mut sink = Vec::new();
    e.advance(T0 + std::time::Duration::from_secs(91), &mut sink);
    assert_eq!(e.neighbour(2, ip(RS1_4)), None);
    let (o, _) = run(&mut e, 1, &syn(40001).wire(), T0 + std::time::Duration::from_secs(91));
    assert_eq!(o, Outcome::Queued);
}

#[test]
fn ipv6_next_hops_are_solicited_and_released() {
    let mut cfg = config();
    cfg.neigh.queue_len = 2;
    let ipvs = ipvs_with(Protocol::Udp, VIP6, 53, &[(RS1_6, None, FwdMethod::Route)]);
    let mut e = Engine::new(cfg, ipvs).expect("engine");
    let input = Pkt::v6(CLIENT6, VIP6).eth(R0, D0).udp(5353, 53).payload(b"query");
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Queued);
    let ns = Pkt::v6(D1_6, "ff02::1:ff00:11")
        .eth(D1, EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x00, 0x11]))
        .ttl(255)
        .icmp(135, 0, 0)
        .payload(&nd_body(RS1_6, 1, D1))
        .pnet();
    assert_frame(single(&out, 2), &ns, "neighbour solicitation");
    let na =
        Pkt::v6(RS1_6, D1_6).eth(RS1, D1).ttl(255).icmp(136, 0, 0x6000_0000).payload(&nd_body(RS1_6, 2, RS1));
    let (o, out) = run(&mut e, 2, &na.wire(), T0);
    assert_eq!(o, Outcome::ToHost);
    let want = input.clone().eth(D1, RS1).ttl(63).pnet();
    assert_frame(single(&out, 2), &want, "released DR frame");
    // The client-side router was unknown too: the next hop of replies is resolved the same way.
    assert_eq!(e.neighbour(2, ip(RS1_6)), Some(RS1));
}

#[test]
fn frames_for_other_macs_and_our_own_are_ignored() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, None, FwdMethod::Route)]));
    let (o, _) = run(&mut e, 1, &syn(1).eth(R0, mac(0x77, 0)).wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::NotForUs));
    let (o, _) = run(&mut e, 1, &syn(1).eth(D0, D0).wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::NotForUs));
    let (o, _) = run(&mut e, 9, &syn(1).wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::UnknownInterface));
    assert_eq!(e.counters().drop_not_for_us, 2);
    assert_eq!(e.counters().drop_unknown_interface, 1);
}
