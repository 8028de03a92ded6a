//! ICMP: errors the director sends (time exceeded, fragmentation needed / packet too big, port
//! unreachable), errors about connections relayed in both directions, echo.

use super::*;
use crate::conn::tcp::flags;
use crate::conn::RejectReason;
use std::time::Duration;

fn tun_engine(vip: &str, rs: &str) -> Engine {
    engine(ipvs_with(Protocol::Tcp, vip, 80, &[(rs, None, FwdMethod::Tunnel)]))
}

#[test]
fn oversize_df_packet_in_a_tunnel_gets_fragmentation_needed() {
    let mut e = tun_engine(VIP4, TUN4);
    // 1500 bytes, the most the client's link carries; 1520 with the outer header.
    let input = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).flags(flags::SYN).payload(&[0x5a; 1460]);
    let l3 = input.pnet_l3();
    assert_eq!(l3.len(), 1500);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::TooBig));
    let want = Pkt::v4(VIP4, CLIENT4)
        .eth(D0, R0)
        .tos(0xc0)
        .ident(1)
        .df(false)
        .icmp(3, 4, 1480)
        .payload(&l3[..548])
        .pnet();
    assert_frame(single(&out, 1), &want, "fragmentation needed, MTU 1500 - 20");
    assert_eq!((e.counters().icmp_too_big_sent, e.counters().drop_too_big), (1, 1));
    // 1480 bytes fit.
    let fits = input.clone().payload(&[0x5a; 1440]);
    let (o, _) = run(&mut e, 1, &fits.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
}

#[test]
fn oversize_ipv6_packet_in_a_tunnel_gets_packet_too_big() {
    let mut e = tun_engine(VIP6, TUN6);
    let input = Pkt::v6(CLIENT6, VIP6).eth(R0, D0).tcp(40000, 80).flags(flags::SYN).payload(&[0x6b; 1440]);
    let l3 = input.pnet_l3();
    assert_eq!(l3.len(), 1500);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::TooBig));
    let want = Pkt::v6(VIP6, CLIENT6).eth(D0, R0).icmp(2, 0, 1460).payload(&l3[..1232]).pnet();
    assert_frame(single(&out, 1), &want, "packet too big, MTU 1500 - 40");
}

#[test]
fn oversize_packet_without_df_is_tunnelled_in_fragments() {
    let mut e = tun_engine(VIP4, TUN4);
    let input =
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).df(false).tcp(40000, 80).flags(flags::SYN).payload(&[0x3c; 1460]);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
    let inner = input.clone().ttl(63).pnet_l3();
    assert_eq!(out.len(), 2);
    // 1520 bytes of outer packet: 1480 of payload in the first fragment, 40 in the second.
    let first = Pkt::v4(D1_4, TUN4).eth(D1, R1).ttl(63).ident(1).raw(4, &inner[..1480]).frag(0, true).pnet();
    let second =
        Pkt::v4(D1_4, TUN4).eth(D1, R1).ttl(63).ident(1).raw(4, &inner[1480..]).frag(1480, false).pnet();
    assert_frame(&out[0].data, &first, "first fragment");
    assert_frame(&out[1].data, &second, "second fragment");
    assert_eq!((e.counters().tx_fragments, e.counters().fwd_tunnel), (2, 1));
}

#[test]
fn nat_without_df_over_a_small_mtu_route_is_fragmented() {
    let mut cfg = config();
    let mut r = Route::new("192.168.1.11/32".parse().expect("p"), None, 2);
    r.mtu = Some(576);
    cfg.routes.push(r);
    let mut e = engine_with(cfg, ipvs_with(Protocol::Udp, VIP4, 53, &[(RS1_4, Some(5353), FwdMethod::Masq)]));
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let input = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).df(false).udp(40000, 53).payload(&payload);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
    let full = input.clone().ttl(63).dst(ip(RS1_4)).dport(5353).pnet_l3();
    let body = &full[20..];
    assert_eq!(out.len(), 2, "1008 bytes in 552-byte pieces");
    for (i, f) in out.iter().enumerate() {
        let (off, end) = if i == 0 { (0, 552) } else { (552, body.len()) };
        let want = Pkt::v4(CLIENT4, RS1_4)
            .eth(D1, RS1)
            .ttl(63)
            .ident(0x1234)
            .raw(17, &body[off..end])
            .frag(off as u16, i == 0)
            .pnet();
        assert_frame(&f.data, &want, "NAT fragment");
    }
    // With DF the client is told the route MTU instead.
    let (o, out) = run(&mut e, 1, &input.clone().df(true).sport(40001).wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::TooBig));
    let icmp = single(&out, 1);
    assert_eq!(&icmp[14 + 20..14 + 20 + 2], &[3, 4]);
    assert_eq!(&icmp[14 + 26..14 + 28], &576u16.to_be_bytes());
}

#[test]
fn ttl_one_gets_time_exceeded() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, Some(8080), FwdMethod::Masq)]));
    let input =
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).ttl(1).tos(0x10).tcp(40000, 80).flags(flags::SYN).payload(b"x");
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::TtlExceeded));
    let want = Pkt::v4(VIP4, CLIENT4)
        .eth(D0, R0)
        .tos(0xd0)
        .ident(1)
        .df(false)
        .icmp(11, 0, 0)
        .payload(&input.pnet_l3())
        .pnet();
    assert_frame(single(&out, 1), &want, "time exceeded");
    assert_eq!(e.counters().icmp_time_exceeded_sent, 1);

    let mut e = engine(ipvs_with(Protocol::Udp, VIP6, 53, &[(RS1_6, None, FwdMethod::Route)]));
    let input = Pkt::v6(CLIENT6, VIP6).eth(R0, D0).ttl(1).udp(40000, 53).payload(b"q");
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::TtlExceeded));
    let want = Pkt::v6(VIP6, CLIENT6).eth(D0, R0).icmp(3, 0, 0).payload(&input.pnet_l3()).pnet();
    assert_frame(single(&out, 1), &want, "hop limit exceeded");
}

#[test]
fn no_server_is_port_unreachable() {
    for v6 in [false, true] {
        let (client, vip) = if v6 { (CLIENT6, VIP6) } else { (CLIENT4, VIP4) };
        let mut e = engine(ipvs_with(Protocol::Tcp, vip, 80, &[]));
        let input = Pkt::ip(ip(client), ip(vip)).eth(R0, D0).tcp(40000, 80).flags(flags::SYN);
        let (o, out) = run(&mut e, 1, &input.wire(), T0);
        assert_eq!(o, Outcome::Dropped(DropCause::Rejected(RejectReason::NoDestination)));
        let want = if v6 {
            Pkt::v6(vip, client).eth(D0, R0).icmp(1, 4, 0).payload(&input.pnet_l3()).pnet()
        } else {
            Pkt::v4(vip, client)
                .eth(D0, R0)
                .tos(0xc0)
                .ident(1)
                .df(false)
                .icmp(3, 3, 0)
                .payload(&input.pnet_l3())
                .pnet()
        };
        assert_frame(single(&out, 1), &want, "port unreachable");
        assert_eq!((e.counters().icmp_port_unreachable_sent, e.counters().drop_rejected), (1, 1));
    }
}

#[test]
fn echo_to_a_vip_is_answered() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[]));
    let req = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tos(0x08).icmp(8, 0, 0x4242_0007).payload(b"abcdefgh");
    let (o, out) = run(&mut e, 1, &req.wire(), T0);
    assert_eq!(o, Outcome::Answered);
    let want = Pkt::v4(VIP4, CLIENT4)
        .eth(D0, R0)
        .tos(0x08)
        .ident(1)
        .df(false)
        .icmp(0, 0, 0x4242_0007)
        .payload(b"abcdefgh")
        .pnet();
    assert_frame(single(&out, 1), &want, "echo reply");

    let mut e = engine(ipvs_with(Protocol::Tcp, VIP6, 80, &[]));
    let req = Pkt::v6(CLIENT6, VIP6).eth(R0, D0).icmp(128, 0, 0x0001_0002).payload(b"ping6");
    let (o, out) = run(&mut e, 1, &req.wire(), T0);
    assert_eq!(o, Outcome::Answered);
    let want = Pkt::v6(VIP6, CLIENT6).eth(D0, R0).icmp(129, 0, 0x0001_0002).payload(b"ping6").pnet();
    assert_frame(single(&out, 1), &want, "echo reply v6");
    assert_eq!(e.counters().answered_echo, 1);

    // With a bad checksum: dropped, no answer.
    let mut bad = req.wire();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    let (o, out) = run(&mut e, 1, &bad, T0);
    assert_eq!((o, out.len()), (Outcome::Dropped(DropCause::BadChecksum), 0));
}

#[test]
fn icmp_errors_from_outside_reach_the_nat_server_translated() {
    for v6 in [false, true] {
        let (client, vip, rs) = if v6 { (CLIENT6, VIP6, RS1_6) } else { (CLIENT4, VIP4, RS1_4) };
        let mut e = engine(ipvs_with(Protocol::Tcp, vip, 80, &[(rs, Some(8080), FwdMethod::Masq)]));
        let syn = Pkt::ip(ip(client), ip(vip)).eth(R0, D0).tcp(40000, 80).flags(flags::SYN);
        run(&mut e, 1, &syn.wire(), T0);
        // A router on the way to the client reports the real server's (VIP-sourced) SYN-ACK.
        let quoted = Pkt::ip(ip(vip), ip(client))
            .ttl(50)
            .tcp(80, 40000)
            .flags(flags::SYN | flags::ACK)
            .payload(b"data");
        let cut = if v6 { 48 } else { 28 };
        let router = if v6 { "2001:db8:ff::1" } else { "203.0.113.1" };
        let (ty, code, rest) = if v6 { (2, 0, 1400) } else { (3, 4, 1400) };
        let err =
            Pkt::ip(ip(router), ip(vip)).eth(R0, D0).icmp(ty, code, rest).payload(&quoted.wire_l3()[..cut]);
        let (o, out) = run(&mut e, 1, &err.wire(), T0 + Duration::from_millis(5));
        assert_eq!(o, Outcome::Forwarded, "v6 {v6}");
        let new_quote = quoted.clone().src(ip(rs)).sport(8080).pnet_l3();
        let want = err.clone().eth(D1, RS1).ttl(63).dst(ip(rs)).payload(&new_quote[..cut]).pnet();
        assert_frame(single(&out, 2), &want, "ICMP error to the NAT server");
        assert_eq!(e.counters().fwd_icmp_in, 1);
        // About a flow without a connection: left to the host.
        let stray = Pkt::ip(ip(vip), ip(client)).tcp(80, 40999);
        let err = err.clone().payload(&stray.wire_l3()[..cut]);
        let (o, _) = run(&mut e, 1, &err.wire(), T0);
        assert_eq!(o, Outcome::ToHost);
        assert_eq!(e.counters().to_host_icmp_no_conn, 1);
    }
}

#[test]
fn icmp_errors_from_outside_follow_dr_connections_unchanged() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, None, FwdMethod::Route)]));
    run(&mut e, 1, &Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).wire(), T0);
    let quoted = Pkt::v4(VIP4, CLIENT4).tcp(80, 40000).flags(flags::ACK);
    let err = Pkt::v4("203.0.113.1", VIP4).eth(R0, D0).icmp(3, 4, 1400).payload(&quoted.wire_l3()[..28]);
    let (o, out) = run(&mut e, 1, &err.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
    assert_frame(single(&out, 2), &err.clone().eth(D1, RS1).ttl(63).pnet(), "relayed to the DR server");
    // With TTL 1 it is dropped, and no error is sent about an error.
    let (o, out) = run(&mut e, 1, &err.clone().ttl(1).wire(), T0);
    assert_eq!((o, out.len()), (Outcome::Dropped(DropCause::TtlExceeded), 0));
}

#[test]
fn icmp_errors_from_a_nat_server_are_translated_to_the_vip() {
    let mut e = engine(ipvs_with(Protocol::Udp, VIP4, 53, &[(RS1_4, Some(5353), FwdMethod::Masq)]));
    let query = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).udp(40000, 53).payload(b"query");
    assert_eq!(run(&mut e, 1, &query.wire(), T0).0, Outcome::Forwarded);
    // The server answers port unreachable about the query as it received it.
    let as_received = query.clone().ttl(63).dst(ip(RS1_4)).dport(5353).wire_l3();
    let err = Pkt::v4(RS1_4, CLIENT4).eth(RS1, D1).icmp(3, 3, 0).payload(&as_received);
    // The error neither refreshes nor counts on the connection (a plain lookup, as conn_out_get).
    let later = T0 + std::time::Duration::from_secs(5);
    let before = e.ipvs().connections(later);
    let (o, out) = run(&mut e, 2, &err.wire(), later);
    assert_eq!(o, Outcome::Forwarded);
    assert_eq!(e.ipvs().connections(later), before, "connection untouched by the ICMP error");
    // Quoted destination back to VIP:53; the quoted UDP checksum is left as it was
    // (`ip_vs_nat_icmp` only rewrites the addresses and the port).
    let mut quote = query.clone().ttl(63).pnet_l3();
    quote[26..28].copy_from_slice(&as_received[26..28]);
    let want = err.clone().eth(D0, R0).ttl(63).src(ip(VIP4)).payload(&quote).pnet();
    assert_frame(single(&out, 1), &want, "ICMP error from the NAT server");
    assert_eq!(e.counters().fwd_icmp_out, 1);
    // Only the quoted packet matters (a router between director and server may report it too),
    // so an error about a packet of no NAT connection is transit: dropped.
    let unknown = query.clone().ttl(63).dst(ip(RS1_4)).dport(5353).sport(40001).wire_l3();
    let other = Pkt::v4("192.168.1.50", CLIENT4).eth(RS1, D1).icmp(3, 3, 0).payload(&unknown);
    assert_eq!(run(&mut e, 2, &other.wire(), T0).0, Outcome::Dropped(DropCause::Transit));
}

#[test]
fn tunnelled_icmp_errors_and_local_servers() {
    // An error about a tunnel connection is tunnelled to its server too.
    let mut e = tun_engine(VIP4, TUN4);
    run(&mut e, 1, &Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).wire(), T0);
    let quoted = Pkt::v4(VIP4, CLIENT4).tcp(80, 40000);
    let err = Pkt::v4("203.0.113.1", VIP4).eth(R0, D0).icmp(11, 0, 0).payload(&quoted.wire_l3()[..28]);
    let (o, out) = run(&mut e, 1, &err.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
    let inner = err.clone().ttl(63).pnet_l3();
    // Identification 2: the client's packet was the first tunnelled.
    let want = Pkt::v4(D1_4, TUN4).eth(D1, R1).ttl(63).ident(2).df(true).raw(4, &inner).pnet();
    assert_frame(single(&out, 2), &want, "tunnelled ICMP error");

    // A real server that is the director itself: the host stack gets the packet.
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(D1_4, None, FwdMethod::Route)]));
    let (o, out) = run(&mut e, 1, &Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).wire(), T0);
    assert_eq!(o, Outcome::ToHost);
    assert!(out.len() == 1 && out[0].to_host);
    assert_eq!(e.counters().to_host_local_dest, 1);
}
