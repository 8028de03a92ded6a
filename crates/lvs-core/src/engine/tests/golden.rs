//! Table-driven golden packets (Katran's `PacketAttributes`): for each forwarding method, family
//! and protocol, a client frame goes in and the frame that comes out must equal, byte for byte, a
//! frame built independently with pnet from the description of what the method does on the wire.

use super::*;
use crate::conn::sctp::chunk;
use crate::conn::tcp::flags;

/// How a real server answers (NAT rows): the reply must come back rewritten to the VIP.
const REPLY_PAYLOAD: &[u8] = b"world";

struct Case {
    name: &'static str,
    proto: Protocol,
    /// Client and VIP family.
    v6: bool,
    fwd: FwdMethod,
    /// Real server.
    rs: &'static str,
}

const CASES: &[Case] = &[
    Case { name: "NAT TCP IPv4", proto: Protocol::Tcp, v6: false, fwd: FwdMethod::Masq, rs: RS1_4 },
    Case { name: "NAT UDP IPv4", proto: Protocol::Udp, v6: false, fwd: FwdMethod::Masq, rs: RS1_4 },
    Case { name: "NAT TCP IPv6", proto: Protocol::Tcp, v6: true, fwd: FwdMethod::Masq, rs: RS1_6 },
    Case { name: "NAT UDP IPv6", proto: Protocol::Udp, v6: true, fwd: FwdMethod::Masq, rs: RS1_6 },
    Case { name: "NAT SCTP IPv4", proto: Protocol::Sctp, v6: false, fwd: FwdMethod::Masq, rs: RS1_4 },
    Case { name: "NAT SCTP IPv6", proto: Protocol::Sctp, v6: true, fwd: FwdMethod::Masq, rs: RS1_6 },
    Case { name: "DR TCP IPv4", proto: Protocol::Tcp, v6: false, fwd: FwdMethod::Route, rs: RS1_4 },
    Case { name: "DR UDP IPv4", proto: Protocol::Udp, v6: false, fwd: FwdMethod::Route, rs: RS1_4 },
    Case { name: "DR TCP IPv6", proto: Protocol::Tcp, v6: true, fwd: FwdMethod::Route, rs: RS1_6 },
    Case { name: "DR UDP IPv6", proto: Protocol::Udp, v6: true, fwd: FwdMethod::Route, rs: RS1_6 },
    Case { name: "TUN TCP IPv4", proto: Protocol::Tcp, v6: false, fwd: FwdMethod::Tunnel, rs: TUN4 },
    Case { name: "TUN UDP IPv4", proto: Protocol::Udp, v6: false, fwd: FwdMethod::Tunnel, rs: TUN4 },
    Case { name: "TUN TCP IPv6", proto: Protocol::Tcp, v6: true, fwd: FwdMethod::Tunnel, rs: TUN6 },
    Case { name: "TUN UDP IPv6", proto: Protocol::Udp, v6: true, fwd: FwdMethod::Tunnel, rs: TUN6 },
    Case { name: "TUN TCP IPv4 in IPv6", proto: Protocol::Tcp, v6: false, fwd: FwdMethod::Tunnel, rs: TUN6 },
    Case { name: "TUN UDP IPv6 in IPv4", proto: Protocol::Udp, v6: true, fwd: FwdMethod::Tunnel, rs: TUN4 },
    Case { name: "TUN SCTP IPv4", proto: Protocol::Sctp, v6: false, fwd: FwdMethod::Tunnel, rs: TUN4 },
];

/// The client's first packet of a case.
fn client_packet(c: &Case) -> Pkt {
    let (client, vip) = if c.v6 { (CLIENT6, VIP6) } else { (CLIENT4, VIP4) };
    let p = Pkt::ip(ip(client), ip(vip)).eth(R0, D0).tos(0x28);
    match c.proto {
        Protocol::Tcp => p.tcp(40000, 80).flags(flags::SYN).payload(b"hello"),
        Protocol::Udp => p.udp(40000, 80).payload(b"hello"),
        Protocol::Sctp => p.sctp(40000, 80, 0).chunk(chunk::INIT, 0, &[0x11; 16]),
    }
}

/// What must leave the director for it, built with pnet.
fn expected(c: &Case, input: &Pkt) -> (u32, Vec<u8>) {
    let rs = ip(c.rs);
    match c.fwd {
        FwdMethod::Masq => (2, input.clone().eth(D1, RS1).ttl(63).dst(rs).dport(8080).pnet()),
        FwdMethod::Route => (2, input.clone().eth(D1, RS1).ttl(63).pnet()),
        FwdMethod::Tunnel => {
            let inner = input.clone().ttl(63).pnet_l3();
            let proto = if c.v6 { 41 } else { 4 };
            let outer = if rs.is_ipv4() {
                // Outer DF copies the inner DF (set by the builder); IPv6 inner packets get DF.
                Pkt::v4(D1_4, c.rs).ident(1).df(true)
            } else {
                Pkt::v6(D1_6, c.rs)
            };
            (2, outer.eth(D1, R1).ttl(63).tos(0x28).raw(proto, &inner).pnet())
        }
        _ => unreachable!(),
    }
}

fn ipvs_for(c: &Case) -> Ipvs {
    let vip = if c.v6 { VIP6 } else { VIP4 };
    let port = if c.fwd == FwdMethod::Masq { Some(8080) } else { None };
    ipvs_with(c.proto, vip, 80, &[(c.rs, port, c.fwd)])
}

#[test]
fn golden_forwarding() {
    for c in CASES {
        let mut e = engine(ipvs_for(c));
        let input = client_packet(c);
        let (o, out) = run(&mut e, 1, &input.wire(), T0);
        assert_eq!(o, Outcome::Forwarded, "{}", c.name);
        let (ifindex, want) = expected(c, &input);
        assert_frame(single(&out, ifindex), &want, c.name);
        let k = e.counters();
        let fwd = match c.fwd {
            FwdMethod::Masq => k.fwd_nat,
            FwdMethod::Route => k.fwd_dr,
            _ => k.fwd_tunnel,
        };
        assert_eq!((fwd, k.rx_frames, k.tx_frames), (1, 1, 1), "{}", c.name);
        assert_eq!(k.tx_bytes, want.len() as u64, "{}", c.name);
    }
}

#[test]
fn golden_nat_replies() {
    for c in CASES.iter().filter(|c| c.fwd == FwdMethod::Masq) {
        let mut e = engine(ipvs_for(c));
        let (o, _) = run(&mut e, 1, &client_packet(c).wire(), T0);
        assert_eq!(o, Outcome::Forwarded);
        let (client, vip) = if c.v6 { (CLIENT6, VIP6) } else { (CLIENT4, VIP4) };
        let reply = Pkt::ip(ip(c.rs), ip(client)).eth(RS1, D1);
        let reply = match c.proto {
            Protocol::Tcp => reply.tcp(8080, 40000).flags(flags::SYN | flags::ACK).payload(REPLY_PAYLOAD),
            Protocol::Udp => reply.udp(8080, 40000).payload(REPLY_PAYLOAD),
            Protocol::Sctp => reply.sctp(8080, 40000, 0x1111_1111).chunk(chunk::INIT_ACK, 0, &[0x22; 16]),
        };
        let (o, out) = run(&mut e, 2, &reply.wire(), T0);
        assert_eq!(o, Outcome::Forwarded, "{}", c.name);
        let want = reply.clone().eth(D0, R0).ttl(63).src(ip(vip)).sport(80).pnet();
        assert_frame(single(&out, 1), &want, c.name);
        assert_eq!(e.counters().fwd_nat_reply, 1);
        // The connection saw the reply: for TCP it is now in SYN_RECV → ESTABLISHED order.
        let conns = e.ipvs().connections(T0);
        assert_eq!(conns.len(), 1, "{}", c.name);
    }
}

#[test]
fn established_traffic_reuses_the_connection_and_rewrites_every_packet() {
    let c = &CASES[0];
    let mut e = engine(ipvs_with(
        Protocol::Tcp,
        VIP4,
        80,
        &[(RS1_4, Some(8080), FwdMethod::Masq), (RS2_4, Some(8080), FwdMethod::Masq)],
    ));
    let syn = client_packet(c);
    let (_, out) = run(&mut e, 1, &syn.wire(), T0);
    let first = single(&out, 2)[..6].to_vec();
    for i in 0..20u32 {
        let p = syn.clone().flags(flags::ACK).payload(&i.to_be_bytes());
        let (o, out) = run(&mut e, 1, &p.wire(), T0);
        assert_eq!(o, Outcome::Forwarded);
        let dst_mac = &single(&out, 2)[..6];
        assert_eq!(dst_mac, &first[..], "packet {i} went to the same server");
        let rs = if first == RS1.0 { RS1_4 } else { RS2_4 };
        let want = p
            .eth(D1, EthernetAddress::from_bytes(&first).expect("mac"))
            .ttl(63)
            .dst(ip(rs))
            .dport(8080)
            .pnet();
        assert_frame(single(&out, 2), &want, "established packet");
    }
    assert_eq!(e.ipvs().conn_stats().conns, 1);
    assert_eq!(e.counters().fwd_nat, 21);
}

#[test]
fn vlan_interfaces_tag_their_frames() {
    let mut cfg = config();
    cfg.interfaces[0].vlan = Some(100);
    cfg.interfaces[1].vlan = Some(200);
    let c = &CASES[6]; // DR TCP IPv4
    let mut e = engine_with(cfg, ipvs_for(c));
    let untagged = client_packet(c);
    let (o, _) = run(&mut e, 1, &untagged.wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::VlanMismatch));
    let input = untagged.vlan(100);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
    let want = input.clone().vlan(200).eth(D1, RS1).ttl(63).pnet();
    assert_frame(single(&out, 2), &want, "DR over VLANs");
}

#[test]
fn ethernet_padding_is_not_forwarded() {
    let c = &CASES[1]; // NAT UDP IPv4
    let mut e = engine(ipvs_for(c));
    let input = client_packet(c);
    let mut frame = input.wire();
    frame.resize(frame.len() + 9, 0); // short frames arrive padded to 60 bytes
    let (_, out) = run(&mut e, 1, &frame, T0);
    let (ifindex, want) = expected(c, &input);
    assert_frame(single(&out, ifindex), &want, "padding stripped");
}
