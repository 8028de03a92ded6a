//! GUE and GRE tunnel real servers (`--tun-type gue|gre`): golden frames built with pnet
//! (UDP checksums by pnet, GRE checksums by pnet's Internet checksum), for both outer families
//! and each checksum option, and the MTU the client is told.

use super::*;
use crate::conn::tcp::flags;
use crate::model::{TunnelConfig, TunnelCsum, TunnelType};
use crate::wire::gue;

/// The GUE tunnel port of the tests (`--tun-port 6080`).
const TUN_PORT: u16 = 6080;

fn tun_ipvs(vip: &str, rs: &str, tunnel: TunnelConfig) -> Ipvs {
    let mut ipvs = Ipvs::new();
    let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip(vip), port: 80 };
    let mut cfg = ServiceConfig::new(key);
    cfg.scheduler = "rr".into();
    ipvs.add_service(cfg).expect("service");
    let mut d = DestConfig::new(ip(rs));
    d.fwd = FwdMethod::Tunnel;
    d.tunnel = tunnel;
    ipvs.add_dest(&key, &d).expect("dest");
    ipvs
}

fn gue_cfg(csum: TunnelCsum) -> TunnelConfig {
    TunnelConfig { kind: TunnelType::Gue, port: TUN_PORT, csum }
}

fn gre_cfg(csum: TunnelCsum) -> TunnelConfig {
    TunnelConfig { kind: TunnelType::Gre, port: 0, csum }
}

fn syn(v6: bool, payload: &[u8]) -> Pkt {
    let (client, vip) = if v6 { (CLIENT6, VIP6) } else { (CLIENT4, VIP4) };
    Pkt::ip(ip(client), ip(vip)).eth(R0, D0).tos(0x28).tcp(40000, 80).flags(flags::SYN).payload(payload)
}

/// The outer packet the director must send for `input` to `rs` with `tunnel`, independently
/// built: pnet emits IP and UDP (full UDP checksum, zeroed afterwards for `--tun-nocsum`), the
/// GRE checksum comes from pnet's checksum routine.
fn expected(input: &Pkt, rs: &str, tunnel: TunnelConfig) -> Vec<u8> {
    let inner = input.clone().ttl(63).pnet_l3();
    let inner_v6 = inner[0] >> 4 == 6;
    let rs_ip = ip(rs);
    let outer = if rs_ip.is_ipv4() { Pkt::v4(D1_4, rs).ident(1).df(true) } else { Pkt::v6(D1_6, rs) };
    let outer = outer.eth(D1, R1).ttl(63).tos(0x28);
    let ip_hl = if rs_ip.is_ipv4() { 20 } else { 40 };
    match tunnel.kind {
        TunnelType::Gue => {
            let mut body = vec![0x00, if inner_v6 { 41 } else { 4 }, 0x00, 0x00];
            body.extend_from_slice(&inner);
            let sport = gue::flow_source_port(&input.pnet_l3());
            let mut frame = outer.udp(sport, TUN_PORT).payload(&body).pnet();
            if tunnel.csum == TunnelCsum::None {
                let at = 14 + ip_hl + 6;
                frame[at..at + 2].copy_from_slice(&[0, 0]);
            }
            frame
        }
        TunnelType::Gre => {
            let csum = tunnel.csum == TunnelCsum::Csum;
            let mut body = vec![if csum { 0x80 } else { 0 }, 0x00, if inner_v6 { 0x86 } else { 0x08 }];
            body.push(if inner_v6 { 0xdd } else { 0x00 });
            if csum {
                body.extend_from_slice(&[0, 0, 0, 0]);
            }
            body.extend_from_slice(&inner);
            if csum {
                let c = pnet_packet::util::checksum(&body, 2);
                body[4..6].copy_from_slice(&c.to_be_bytes());
            }
            outer.raw(47, &body).pnet()
        }
        TunnelType::Ipip => unreachable!(),
    }
}

#[test]
fn golden_gue_and_gre_both_families_every_checksum_option() {
    let mut cases = Vec::new();
    for (rs, v6) in [(TUN4, false), (TUN6, true), (TUN6, false), (TUN4, true)] {
        for csum in [TunnelCsum::None, TunnelCsum::Csum, TunnelCsum::RemCsum] {
            cases.push((rs, v6, gue_cfg(csum)));
        }
        for csum in [TunnelCsum::None, TunnelCsum::Csum] {
            cases.push((rs, v6, gre_cfg(csum)));
        }
    }
    for (rs, v6, tunnel) in cases {
        let name = format!("{tunnel:?} to {rs}, inner IPv{}", if v6 { 6 } else { 4 });
        let vip = if v6 { VIP6 } else { VIP4 };
        let mut e = engine(tun_ipvs(vip, rs, tunnel));
        let input = syn(v6, b"hello");
        let (o, out) = run(&mut e, 1, &input.wire(), T0);
        assert_eq!(o, Outcome::Forwarded, "{name}");
        let want = expected(&input, rs, tunnel);
        assert_frame(single(&out, 2), &want, &name);
        let k = e.counters();
        assert_eq!((k.fwd_tunnel, k.tx_frames, k.tx_bytes), (1, 1, want.len() as u64), "{name}");
        // What the real server gets back out is the client's packet, one TTL less.
        let d = crate::wire::tunnel::decapsulate(&single(&out, 2)[14..]).expect("decapsulates");
        assert_eq!(d.inner, &input.clone().ttl(63).pnet_l3()[..], "{name}");
    }
}

#[test]
fn gue_source_port_follows_the_flow() {
    let mut e = engine(tun_ipvs(VIP4, TUN4, gue_cfg(TunnelCsum::Csum)));
    let sport_of = |out: &[TxFrame]| {
        let f = single(out, 2);
        u16::from_be_bytes([f[34], f[35]])
    };
    let first = syn(false, b"a");
    let (_, out) = run(&mut e, 1, &first.wire(), T0);
    let p1 = sport_of(&out);
    // The same connection, later packets: same port.
    let (_, out) = run(&mut e, 1, &first.clone().flags(flags::ACK).payload(b"more data").wire(), T0);
    assert_eq!(sport_of(&out), p1);
    // Other client ports: ports in the ephemeral range, not all the same.
    let mut ports = std::collections::BTreeSet::new();
    for cport in 40001..40017 {
        let (_, out) = run(&mut e, 1, &first.clone().sport(cport).wire(), T0);
        let p = sport_of(&out);
        assert!((32768..61000).contains(&p), "{p}");
        ports.insert(p);
    }
    assert!(ports.len() > 8, "{ports:?}");
}

#[test]
fn tunnel_mtu_counts_the_whole_overhead() {
    // (tunnel, outer header bytes): MTU 1500 minus each.
    for (tunnel, overhead) in [
        (gue_cfg(TunnelCsum::None), 32u32),
        (gue_cfg(TunnelCsum::RemCsum), 32),
        (gre_cfg(TunnelCsum::None), 24),
        (gre_cfg(TunnelCsum::Csum), 28),
    ] {
        let mut e = engine(tun_ipvs(VIP4, TUN4, tunnel));
        let tmtu = 1500 - overhead;
        // One byte over the tunnel MTU, DF set: fragmentation needed with the tunnel MTU.
        let big = syn(false, &vec![0x5a; (tmtu - 40 + 1) as usize]);
        let (o, out) = run(&mut e, 1, &big.wire(), T0);
        assert_eq!(o, Outcome::Dropped(DropCause::TooBig), "{tunnel:?}");
        let icmp = single(&out, 1);
        assert_eq!(&icmp[34..36], &[3, 4], "{tunnel:?}");
        assert_eq!(&icmp[40..42], &(tmtu as u16).to_be_bytes(), "{tunnel:?}");
        // Exactly the tunnel MTU fits.
        let fits = syn(false, &vec![0x5a; (tmtu - 40) as usize]).sport(40001);
        let (o, out) = run(&mut e, 1, &fits.wire(), T0);
        assert_eq!(o, Outcome::Forwarded, "{tunnel:?}");
        assert_eq!(single(&out, 2).len(), 14 + 1500);
    }
    // IPv6 outer: 1500 - 40 - 12 for GUE; the client is told 1448.
    let mut e = engine(tun_ipvs(VIP6, TUN6, gue_cfg(TunnelCsum::None)));
    let big = syn(true, &[0x6b; 1449 - 60]);
    let (o, out) = run(&mut e, 1, &big.wire(), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::TooBig));
    let icmp = single(&out, 1);
    assert_eq!((icmp[54], &icmp[58..62]), (2, &1448u32.to_be_bytes()[..]));
}

#[test]
fn oversize_gre_packet_without_df_is_fragmented_with_the_checksum_over_the_whole() {
    let mut e = engine(tun_ipvs(VIP4, TUN4, gre_cfg(TunnelCsum::Csum)));
    let input = syn(false, &[0x3c; 1460]).df(false);
    let (o, out) = run(&mut e, 1, &input.wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
    assert_eq!(out.len(), 2);
    let whole = expected(&input, TUN4, gre_cfg(TunnelCsum::Csum));
    // Reassembled payload equals the unfragmented packet's GRE part.
    let mut payload = out[0].data[34..].to_vec();
    payload.extend_from_slice(&out[1].data[34..]);
    assert_eq!(payload, whole[34..].to_vec());
    assert_eq!(e.counters().tx_fragments, 2);
}

/// An ICMP error from the router on the real server's side to the director, quoting the first
/// 548 bytes of `tunnelled` (an IPv4 outer packet), as RFC 1812 routers quote.
fn router_error(ty: u8, code: u8, rest: u32, tunnelled: &[u8]) -> Pkt {
    let quote = &tunnelled[..tunnelled.len().min(548)];
    Pkt::v4("192.168.1.254", D1_4).eth(R1, D1).icmp(ty, code, rest).payload(quote)
}

#[test]
fn icmp_errors_about_tunnelled_packets_go_back_to_the_client() {
    // (tunnel, overhead in front of the client's packet)
    for (tunnel, overhead) in [
        (TunnelConfig::default(), 20usize),
        (gue_cfg(TunnelCsum::Csum), 32),
        (gre_cfg(TunnelCsum::None), 24),
        (gre_cfg(TunnelCsum::Csum), 28),
    ] {
        let mut e = engine(tun_ipvs(VIP4, TUN4, tunnel));
        let input = syn(false, &[0x11; 1000]);
        let (_, out) = run(&mut e, 1, &input.wire(), T0);
        let tunnelled = single(&out, 2)[14..].to_vec();
        // Fragmentation needed at 1400 on the way to the real server.
        let err = router_error(3, 4, 1400, &tunnelled);
        let (o, out) = run(&mut e, 2, &err.wire(), T0);
        assert_eq!(o, Outcome::Forwarded, "{tunnel:?}");
        let client_quote = &tunnelled[overhead..548];
        let want = Pkt::v4(VIP4, CLIENT4)
            .eth(D0, R0)
            .tos(0xc8)
            .ident(2)
            .df(false)
            .icmp(3, 4, 1400 - overhead as u32)
            .payload(client_quote)
            .pnet();
        assert_frame(single(&out, 1), &want, &format!("{tunnel:?}: frag needed, MTU less the tunnel"));
        // Time exceeded: same type and code, no MTU.
        let (o, out) = run(&mut e, 2, &router_error(11, 0, 0, &tunnelled).wire(), T0);
        assert_eq!(o, Outcome::Forwarded);
        let want = Pkt::v4(VIP4, CLIENT4)
            .eth(D0, R0)
            .tos(0xc8)
            .ident(3)
            .df(false)
            .icmp(11, 0, 0)
            .payload(client_quote)
            .pnet();
        assert_frame(single(&out, 1), &want, &format!("{tunnel:?}: time exceeded"));
        // No next-hop MTU in the error: the route's, less the tunnel.
        let (_, out) = run(&mut e, 2, &router_error(3, 4, 0, &tunnelled).wire(), T0);
        let f = single(&out, 1);
        assert_eq!(&f[40..42], &((1500 - overhead) as u16).to_be_bytes(), "{tunnel:?}");
        let k = e.counters();
        assert_eq!((k.fwd_icmp_tunnel, k.to_host), (3, 0), "{tunnel:?}");
    }
}

#[test]
fn icmp_errors_that_are_not_about_our_tunnels_go_to_the_host() {
    let mut e = engine(tun_ipvs(VIP4, TUN4, gue_cfg(TunnelCsum::None)));
    let (_, out) = run(&mut e, 1, &syn(false, b"x").wire(), T0);
    let tunnelled = single(&out, 2)[14..].to_vec();
    // Another UDP port than the real server's tunnel port.
    let mut other_port = tunnelled.clone();
    other_port[22..24].copy_from_slice(&6081u16.to_be_bytes());
    // Another client port: no connection.
    let mut no_conn = tunnelled.clone();
    no_conn[32 + 20..32 + 22].copy_from_slice(&40999u16.to_be_bytes());
    // Another real server address.
    let mut other_rs = tunnelled.clone();
    other_rs[19] = 6;
    for (what, quote) in [("port", other_port), ("connection", no_conn), ("server", other_rs)] {
        let (o, out) = run(&mut e, 2, &router_error(3, 1, 0, &quote).wire(), T0);
        assert_eq!(o, Outcome::ToHost, "{what}");
        assert!(out.iter().all(|f| f.to_host), "{what}");
    }
    assert_eq!((e.counters().fwd_icmp_tunnel, e.counters().to_host_own), (0, 3));
    // The same error about the real packet is relayed.
    let (o, _) = run(&mut e, 2, &router_error(3, 1, 0, &tunnelled).wire(), T0);
    assert_eq!(o, Outcome::Forwarded);
}
