//! Firewall marks, IPVS pass verdicts, transit, fragments, checksums, and garbage.

use super::*;
use crate::conn::sctp::chunk;
use crate::conn::tcp::flags;
use crate::model::Family;
use crate::rng::Rng;

#[test]
fn fwmark_rule_groups_ports_into_one_persistent_service() {
    let mut ipvs = Ipvs::new();
    let key = ServiceKey::Fwmark { mark: 10, family: Family::Inet };
    let mut svc = ServiceConfig::new(key);
    svc.scheduler = "rr".into();
    svc.persistent = Some(300);
    ipvs.add_service(svc).expect("service");
    for rs in [RS1_4, RS2_4] {
        let mut d = DestConfig::new(ip(rs));
        d.fwd = FwdMethod::Route;
        ipvs.add_dest(&key, &d).expect("dest");
    }
    let mut cfg = config();
    // iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK --set-mark 10
    cfg.mark_rules.push(
        MarkRule::new(Prefix::host(ip(VIP4)), 10)
            .protocol(Protocol::Tcp)
            .ports(&[PortRange::port(80), PortRange::port(443)]),
    );
    let mut e = engine_with(cfg, ipvs);
    assert_eq!(e.vips(), &[ip(VIP4)], "the mark rule's destination is a VIP");
    let mut server_of = |client: &str, sport: u16, dport: u16| {
        let p = Pkt::v4(client, VIP4).eth(R0, D0).tcp(sport, dport).flags(flags::SYN);
        let (o, out) = run(&mut e, 1, &p.wire(), T0);
        assert_eq!(o, Outcome::Forwarded);
        let f = single(&out, 2);
        // Direct routing: only the MACs and the TTL change.
        assert_frame(
            f,
            &p.clone().eth(D1, EthernetAddress::from_bytes(f).expect("mac")).ttl(63).pnet(),
            "DR",
        );
        EthernetAddress::from_bytes(f).expect("mac")
    };
    let a80 = server_of(CLIENT4, 40000, 80);
    let a443 = server_of(CLIENT4, 40001, 443);
    assert_eq!(a80, a443, "same client, same server on both ports");
    let b80 = server_of("198.51.100.8", 40000, 80);
    let b443 = server_of("198.51.100.8", 40002, 443);
    assert_eq!(b80, b443);
    assert_ne!(a80, b80, "rr gives the second client the other server");
    // Port 8080 is not marked and there is no service for it: left to the host.
    let p = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40003, 8080).flags(flags::SYN);
    assert_eq!(run(&mut e, 1, &p.wire(), T0).0, Outcome::ToHost);
    assert_eq!(e.counters().to_host_no_service, 1);
    // The VIP is claimed on the link.
    let mut out = Vec::new();
    assert_eq!(e.announce(&mut out), 1);
}

#[test]
fn ipvs_pass_verdicts_go_to_the_host() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, None, FwdMethod::Route)]));
    // An ACK without a connection is not scheduled.
    let ack = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).flags(flags::ACK);
    let (o, out) = run(&mut e, 1, &ack.wire(), T0);
    assert_eq!(o, Outcome::ToHost);
    assert_eq!(out[0].data, ack.wire());
    // Active FTP data and unknown protocols to the VIP likewise.
    let gre = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).raw(47, &[0; 8]);
    assert_eq!(run(&mut e, 1, &gre.wire(), T0).0, Outcome::ToHost);
    let k = e.counters();
    assert_eq!((k.to_host_not_schedulable, k.to_host_unsupported_protocol, k.to_host), (1, 1, 2));
    // Traffic to the director's own address is the host's.
    let own = Pkt::v4(CLIENT4, "10.0.0.1").eth(R0, D0).tcp(1, 22);
    assert_eq!(run(&mut e, 1, &own.wire(), T0).0, Outcome::ToHost);
    assert_eq!(e.counters().to_host_own, 1);
}

#[test]
fn transit_traffic_is_dropped_unless_passed() {
    let ipvs = || ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, Some(8080), FwdMethod::Masq)]);
    let mut e = engine(ipvs());
    let stray = Pkt::v4(RS1_4, CLIENT4).eth(RS1, D1).tcp(8080, 40000).flags(flags::ACK);
    assert_eq!(run(&mut e, 2, &stray.wire(), T0).0, Outcome::Dropped(DropCause::Transit));
    let mut cfg = config();
    cfg.pass_transit = true;
    let mut e = engine_with(cfg, ipvs());
    let (o, out) = run(&mut e, 2, &stray.wire(), T0);
    assert_eq!(o, Outcome::ToHost);
    assert!(out[0].to_host);
    assert_eq!(e.counters().to_host_transit, 1);
}

#[test]
fn fragments_are_counted_and_dropped() {
    let mut e = engine(ipvs_with(Protocol::Udp, VIP4, 53, &[(RS1_4, None, FwdMethod::Route)]));
    let first = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).udp(1, 53).payload(&[1; 16]).frag(0, true);
    let later = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).raw(17, &[2; 16]).frag(24, false);
    for p in [first, later] {
        let (o, out) = run(&mut e, 1, &p.wire(), T0);
        assert_eq!((o, out.len()), (Outcome::Dropped(DropCause::Fragment), 0));
    }
    let mut e6 = engine(ipvs_with(Protocol::Udp, VIP6, 53, &[(RS1_6, None, FwdMethod::Route)]));
    let p = Pkt::v6(CLIENT6, VIP6).eth(R0, D0).udp(1, 53).frag(0, true);
    assert_eq!(run(&mut e6, 1, &p.wire(), T0).0, Outcome::Dropped(DropCause::Fragment));
    assert_eq!(e.counters().drop_fragment + e6.counters().drop_fragment, 3);
    // An atomic fragment (offset 0, no more fragments) is a whole packet.
    let p = Pkt::v6(CLIENT6, VIP6).eth(R0, D0).udp(1, 53).frag(0, false);
    assert_eq!(run(&mut e6, 1, &p.wire(), T0).0, Outcome::Forwarded);
}

#[test]
fn checksums_are_verified() {
    let ipvs = || ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, None, FwdMethod::Route)]);
    let mut e = engine(ipvs());
    let good = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).payload(b"abc").wire();
    let mut bad_ip = good.clone();
    bad_ip[14 + 10] ^= 1;
    assert_eq!(run(&mut e, 1, &bad_ip, T0).0, Outcome::Dropped(DropCause::BadChecksum));
    let mut bad_tcp = good.clone();
    let n = bad_tcp.len();
    bad_tcp[n - 1] ^= 1;
    // Transport checksums are the real server's business unless asked for.
    assert_eq!(run(&mut e, 1, &bad_tcp, T0).0, Outcome::Forwarded);
    let mut cfg = config();
    cfg.verify_l4_checksums = true;
    let mut e = engine_with(cfg, ipvs());
    assert_eq!(run(&mut e, 1, &bad_tcp, T0).0, Outcome::Dropped(DropCause::BadChecksum));
    assert_eq!(run(&mut e, 1, &good, T0).0, Outcome::Forwarded);
}

#[test]
fn sctp_abort_bundled_after_cookie_echo_is_seen() {
    let e = engine(ipvs_with(Protocol::Sctp, VIP4, 80, &[]));
    let mk = |second: u8| {
        Pkt::v4(CLIENT4, VIP4)
            .sctp(1, 80, 7)
            .chunk(chunk::COOKIE_ECHO, 0, &[9; 5])
            .chunk(second, 0, &[])
            .wire_l3()
    };
    for (second, abort) in [(chunk::ABORT, true), (chunk::DATA, false)] {
        let bytes = mk(second);
        let ip = ip::Ip::parse_v4(&bytes).expect("ip");
        let m = e.meta(&ip).expect("meta");
        assert_eq!((m.sctp_chunk, m.sctp_abort_follows), (chunk::COOKIE_ECHO, abort));
    }
    // No chunk at all is malformed.
    let bytes = Pkt::v4(CLIENT4, VIP4).sctp(1, 80, 7).wire_l3();
    assert_eq!(e.meta(&ip::Ip::parse_v4(&bytes).expect("ip")).err(), Some(DropCause::Malformed));
}

#[test]
fn inject_and_batches() {
    let mut e = engine(ipvs_with(Protocol::Udp, VIP4, 53, &[(RS1_4, None, FwdMethod::Route)]));
    let p = Pkt::v4(CLIENT4, VIP4).eth(R0, D0).udp(1, 53).payload(b"q");
    let out = e.inject(1, &p.wire(), T0);
    assert_eq!(out.len(), 1);
    assert!(!out[0].to_host && out[0].ifindex == 2);
    // A reused batch: after warm-up the same buffers serve every packet.
    let mut batch = TxBatch::new();
    e.process(1, &p.wire(), T0, &mut batch);
    let ptr = batch.frames()[0].data.as_ptr();
    for _ in 0..10 {
        batch.clear();
        assert_eq!(e.process(1, &p.wire(), T0, &mut batch), Outcome::Forwarded);
        assert_eq!(batch.frames()[0].data.as_ptr(), ptr, "no reallocation");
    }
    // A full ring drops and counts.
    let mut full = TxBatch::with_limit(0);
    assert_eq!(e.process(1, &p.wire(), T0, &mut full), Outcome::Dropped(DropCause::TxRingFull));
    assert_eq!(e.counters().tx_ring_full, 1);
    // Service changes through ipvs_mut are seen by the next packet.
    let svc = ServiceKey::Addr { protocol: Protocol::Udp, addr: ip("10.0.0.101"), port: 53 };
    e.ipvs_mut().add_service(ServiceConfig::new(svc)).expect("service");
    assert_eq!(e.vips(), &[ip(VIP4), ip("10.0.0.101")]);
}

/// Every received frame lands in exactly one verdict counter.
fn verdicts(k: &Counters) -> u64 {
    k.iter()
        .filter(|(n, _)| {
            (n.starts_with("fwd_") || n.starts_with("answered_") || n.starts_with("drop_"))
                && *n != "drop_neigh_failed"
        })
        .map(|(_, v)| v)
        .sum::<u64>()
        + k.to_host
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut ipvs = ipvs_with(
        Protocol::Tcp,
        VIP4,
        80,
        &[(RS1_4, Some(8080), FwdMethod::Masq), (TUN4, None, FwdMethod::Tunnel)],
    );
    let key6 = ServiceKey::Addr { protocol: Protocol::Udp, addr: ip(VIP6), port: 53 };
    ipvs.add_service(ServiceConfig::new(key6)).expect("service");
    let mut d = DestConfig::new(ip(RS1_6));
    d.fwd = FwdMethod::Masq;
    ipvs.add_dest(&key6, &d).expect("dest");
    let mut e = engine(ipvs);
    let seeds = [
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(40000, 80).payload(b"seed").wire(),
        Pkt::v6(CLIENT6, VIP6).eth(R0, D0).udp(40000, 53).payload(b"seed").wire(),
        Pkt::v4("203.0.113.1", VIP4)
            .eth(R0, D0)
            .icmp(3, 4, 1400)
            .payload(&Pkt::v4(VIP4, CLIENT4).tcp(80, 40000).wire_l3()[..28])
            .wire(),
        Pkt::v4(RS1_4, CLIENT4).eth(RS1, D1).tcp(8080, 40000).flags(flags::ACK).wire(),
        Pkt::v6("2001:db8::fe", "ff02::1:ff00:100")
            .eth(R0, EthernetAddress([0x33, 0x33, 0xff, 0, 1, 0]))
            .ttl(255)
            .icmp(135, 0, 0)
            .payload(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 2, 0, 0, 0, 0, 0xfe])
            .wire(),
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).sctp(1, 80, 0).chunk(chunk::INIT, 0, &[0; 16]).wire(),
        Pkt::v4(RS1_4, CLIENT4)
            .eth(RS1, D1)
            .icmp(3, 3, 0)
            .payload(&Pkt::v4(CLIENT4, RS1_4).tcp(40000, 8080).wire_l3())
            .wire(),
        Pkt::v6("2001:db8:ff::1", VIP6)
            .eth(R0, D0)
            .icmp(2, 0, 1400)
            .payload(&Pkt::v6(VIP6, CLIENT6).udp(53, 40000).wire_l3())
            .wire(),
        Pkt::v6(CLIENT6, VIP6).eth(R0, D0).icmp(128, 0, 1).payload(b"ping").wire(),
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).df(false).udp(1, 80).payload(&[0; 1400]).wire(),
    ];
    let mut rng = Rng::new(0x5eed);
    let mut sink = TxBatch::new();
    let n = 20_000u64;
    for i in 0..n {
        let mut frame = match rng.below(4) {
            // Pure noise, any length.
            0 => (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect(),
            // A valid frame with bytes flipped.
            1 | 2 => {
                let mut f = seeds[rng.below(seeds.len() as u32) as usize].clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(f.len() as u32) as usize;
                    f[at] = rng.next_u64() as u8;
                }
                f
            }
            // A valid frame cut short.
            _ => {
                let f = &seeds[rng.below(seeds.len() as u32) as usize];
                f[..rng.below(f.len() as u32) as usize].to_vec()
            }
        };
        if rng.below(3) == 0 && frame.len() >= 12 {
            frame[..6].copy_from_slice(&D0.0); // let more of them past the MAC filter
        }
        sink.clear();
        let ifindex = 1 + rng.below(2);
        e.process(ifindex, &frame, T0 + std::time::Duration::from_millis(i), &mut sink);
        if i % 1000 == 0 {
            e.advance(T0 + std::time::Duration::from_millis(i), &mut sink);
        }
    }
    let k = e.counters().clone();
    assert_eq!(k.rx_frames, n);
    assert_eq!(verdicts(&k), n, "one verdict per frame: {k:?}");
    assert!(k.drop_malformed > 1000 && k.drop_not_for_us > 1000, "{k:?}");
    assert!(k.fwd_nat + k.fwd_tunnel > 100, "valid mutations still get through: {k:?}");
}

#[test]
fn verdict_counters_add_up_in_the_other_tests_scenarios_too() {
    // A mix of every outcome through one engine.
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, Some(8080), FwdMethod::Masq)]));
    let frames = [
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(1, 80).wire(),
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(2, 80).flags(flags::ACK).wire(),
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).icmp(8, 0, 1).wire(),
        Pkt::v4(CLIENT4, VIP4).eth(R0, D0).tcp(3, 80).ttl(1).wire(),
        Pkt::v4(CLIENT4, "8.8.8.8").eth(R0, D0).tcp(3, 80).wire(),
        vec![0; 10],
    ];
    for f in &frames {
        run(&mut e, 1, f, T0);
    }
    assert_eq!(verdicts(e.counters()), frames.len() as u64);
}
