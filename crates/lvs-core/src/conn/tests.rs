//! Packet-path tests: expected states, timeouts and counters come from the reference
//! (/work/shared/reference/ipvs.md §2.2, §2.3, §3.4-3.5, §4.1-4.6, §5.1) as cited per test.

use super::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use super::*;
use crate::dest::Dest;
use crate::model::{DestConfig, Family, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use crate::sched::Flow;
use crate::time::Instant;
use crate::Ipvs;
use std::net::IpAddr;

const VIP: &str = "10.0.0.100";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}
fn secs(t: u64) -> Instant {
    Instant::from_secs(t)
}

fn key(proto: Protocol, port: u16) -> ServiceKey {
    ServiceKey::Addr { protocol: proto, addr: ip(VIP), port }
}

fn service(ipvs: &mut Ipvs, k: ServiceKey, sched: &str, persistent: Option<u32>) {
    let mut c = ServiceConfig::new(k);
    c.scheduler = sched.into();
    c.persistent = persistent;
    ipvs.add_service(c).unwrap();
}

fn server(ipvs: &mut Ipvs, k: &ServiceKey, addr: &str, fwd: FwdMethod) {
    let mut c = DestConfig::new(ip(addr));
    c.fwd = fwd;
    ipvs.add_dest(k, &c).unwrap();
}

/// An rr service with two real servers, 192.168.1.1 and 192.168.1.2, forwarding by `fwd`.
fn rr_pair(ipvs: &mut Ipvs, k: ServiceKey, persistent: Option<u32>, fwd: FwdMethod) -> ServiceKey {
    service(ipvs, k, "rr", persistent);
    server(ipvs, &k, "192.168.1.1", fwd);
    server(ipvs, &k, "192.168.1.2", fwd);
    k
}

/// Real server address the verdict forwards to.
fn to(v: InVerdict) -> String {
    match v {
        InVerdict::Forward(f) => f.daddr.to_string(),
        other => panic!("not forwarded: {other:?}"),
    }
}

fn dest_of<'a>(ipvs: &'a Ipvs, addr: &str) -> &'a Dest {
    ipvs.services()
        .flat_map(|s| s.dest_ids().iter().copied())
        .filter_map(|id| ipvs.dest(id))
        .find(|d| d.addr == ip(addr))
        .expect("server listed")
}

/// (ActiveConn, InActConn, PersistConn) of a listed server.
fn counts(ipvs: &Ipvs, addr: &str) -> (u32, u32, u32) {
    let d = dest_of(ipvs, addr);
    (d.activeconns, d.inactconns(), d.persistconns)
}

/// The connection (not template) from client port `cport`.
fn conn(ipvs: &Ipvs, cport: u16, now: Instant) -> Option<ConnInfo> {
    ipvs.connections(now).into_iter().find(|c| !c.template && c.cport == cport)
}

fn templates(ipvs: &Ipvs, now: Instant) -> Vec<ConnInfo> {
    ipvs.connections(now).into_iter().filter(|c| c.template).collect()
}

fn state(ipvs: &Ipvs, cport: u16, now: Instant) -> (&'static str, u64) {
    let c = conn(ipvs, cport, now).expect("connection exists");
    (c.state, c.expires.as_millis() as u64)
}

fn tcp_pkt(client: &str, flags: u8) -> PacketMeta {
    PacketMeta::tcp(sa(client), sa(&format!("{VIP}:80")), flags).with_len(60)
}

#[test]
fn dr_tcp_lifecycle_states_timeouts_and_counts() {
    // §4.3: DR: SYN→SYN_RECV (60 s), ACK→ESTABLISHED (900 s), client FIN→FIN_WAIT (120 s), later
    // ACKs keep FIN_WAIT. §4.4 (6.12): SYN_RECV and ESTABLISHED are active, FIN_WAIT is not.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    let c = "1.2.3.4:5000";
    let v = ipvs.process_in(&tcp_pkt(c, SYN), secs(0));
    let f = *v.forward().unwrap();
    assert!(f.created);
    assert_eq!((f.daddr, f.dport, f.fwd), (ip("192.168.1.1"), 80, FwdMethod::Route));
    assert_eq!(state(&ipvs, 5000, secs(0)), ("SYN_RECV", 60_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (1, 0, 0));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(1));
    assert_eq!(state(&ipvs, 5000, secs(1)), ("ESTABLISHED", 900_000));
    let v = ipvs.process_in(&tcp_pkt(c, ACK | PSH), secs(2));
    assert!(!v.forward().unwrap().created);
    assert_eq!(v.forward().unwrap().conn, f.conn);
    ipvs.process_in(&tcp_pkt(c, FIN | ACK), secs(10));
    assert_eq!(state(&ipvs, 5000, secs(10)), ("FIN_WAIT", 120_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 1, 0));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(11));
    assert_eq!(state(&ipvs, 5000, secs(11)), ("FIN_WAIT", 120_000));
    // No reply passes through a DR director: replies are not NAT replies.
    let reply = PacketMeta::tcp(sa("192.168.1.1:80"), sa(c), ACK);
    assert_eq!(ipvs.process_out(&reply, secs(11)), OutVerdict::Pass);
    // The timer runs from the last packet: alive at 130.999 s, gone at 131 s.
    ipvs.advance(ms(130_999));
    assert!(conn(&ipvs, 5000, ms(130_999)).is_some());
    ipvs.advance(secs(131));
    assert!(conn(&ipvs, 5000, secs(131)).is_none());
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 0, 0));
    // §5.1: one conn, five client packets of 60 bytes each, no outgoing packets.
    let st = dest_of(&ipvs, "192.168.1.1").stats.counters();
    assert_eq!((st.conns, st.inpkts, st.inbytes, st.outpkts), (1, 5, 300, 0));
    assert_eq!(ipvs.service(&k).unwrap().stats.counters().inpkts, 5);
    assert_eq!(ipvs.stats.counters().conns, 1);
    ipvs.check_conns();
}

#[test]
fn nat_tcp_lifecycle_through_close_wait_and_time_wait() {
    // §4.3 NAT: SYN→SYN_RECV, SYN+ACK (output)→SYN_RECV, ACK→ESTABLISHED, client FIN→CLOSE_WAIT
    // (60 s), server FIN→TIME_WAIT (120 s). Output packets are SNATed to the VIP and counted.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    let mut rs = DestConfig::new(ip("192.168.1.1"));
    rs.fwd = FwdMethod::Masq;
    rs.port = Some(8080);
    ipvs.add_dest(&k, &rs).unwrap();
    let c = "1.2.3.4:5000";
    let f = *ipvs.process_in(&tcp_pkt(c, SYN), secs(0)).forward().unwrap();
    assert_eq!((f.dport, f.fwd), (8080, FwdMethod::Masq));
    let out = |flags| PacketMeta::tcp(sa("192.168.1.1:8080"), sa(c), flags).with_len(52);
    let v = ipvs.process_out(&out(SYN | ACK), secs(0));
    assert_eq!(v, OutVerdict::Masq { conn: f.conn.unwrap(), vaddr: ip(VIP), vport: 80 });
    assert_eq!(state(&ipvs, 5000, secs(0)).0, "SYN_RECV");
    ipvs.process_in(&tcp_pkt(c, ACK), secs(1));
    assert_eq!(state(&ipvs, 5000, secs(1)), ("ESTABLISHED", 900_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (1, 0, 0));
    ipvs.process_in(&tcp_pkt(c, FIN | ACK), secs(2));
    assert_eq!(state(&ipvs, 5000, secs(2)), ("CLOSE_WAIT", 60_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 1, 0));
    ipvs.process_out(&out(FIN | ACK), secs(3));
    assert_eq!(state(&ipvs, 5000, secs(3)), ("TIME_WAIT", 120_000));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(4));
    assert_eq!(state(&ipvs, 5000, secs(4)), ("TIME_WAIT", 120_000));
    // A reply from the wrong port is not this connection's.
    let wrong = PacketMeta::tcp(sa("192.168.1.1:80"), sa(c), ACK);
    assert_eq!(ipvs.process_out(&wrong, secs(4)), OutVerdict::Pass);
    // Side-effect-free reply lookup and related (ICMP) accounting: counters move, state does not.
    let id = ipvs.lookup_conn_out(&out(ACK)).unwrap();
    assert_eq!(Some(id), f.conn);
    assert_eq!(ipvs.lookup_conn_out(&wrong), None);
    ipvs.count_related(id, Dir::Output, 56);
    ipvs.count_related(id, Dir::Input, 56);
    assert_eq!(state(&ipvs, 5000, secs(4)), ("TIME_WAIT", 120_000));
    let st = dest_of(&ipvs, "192.168.1.1").stats.counters();
    assert_eq!((st.inpkts, st.outpkts, st.outbytes), (5, 3, 160));
    assert_eq!(ipvs.stats.counters().outpkts, 3);
    ipvs.advance(secs(124));
    assert!(conn(&ipvs, 5000, secs(124)).is_none());
    ipvs.check_conns();
}

#[test]
fn rst_and_flagless_segments_close() {
    // §4.3: event index rst > syn > fin > ack; no flags → CLOSE (10 s).
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    for (port, flags) in [(1000u16, RST | ACK), (1001, PSH), (1002, 0)] {
        let c = format!("1.2.3.4:{port}");
        ipvs.process_in(&tcp_pkt(&c, SYN), secs(0));
        ipvs.process_in(&tcp_pkt(&c, ACK), secs(0));
        ipvs.process_in(&tcp_pkt(&c, flags), secs(1));
        assert_eq!(state(&ipvs, port, secs(1)), ("CLOSE", 10_000), "flags {flags:#x}");
    }
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 3, 0));
    ipvs.advance(secs(11));
    assert!(ipvs.connections(secs(11)).is_empty());
    ipvs.check_conns();
}

#[test]
fn only_syn_creates_tcp_connections_unless_sloppy() {
    // tcp_conn_schedule: a SYN without RST schedules (SYN+ACK too, for active FTP); anything else
    // without a connection passes to the local stack; sloppy_tcp schedules any non-RST packet.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    let p = PassReason::NotSchedulable;
    assert_eq!(ipvs.process_in(&tcp_pkt("1.1.1.1:1", ACK), secs(0)), InVerdict::Pass(p));
    assert_eq!(ipvs.process_in(&tcp_pkt("1.1.1.1:1", SYN | RST), secs(0)), InVerdict::Pass(p));
    assert!(ipvs.process_in(&tcp_pkt("1.1.1.1:2", SYN | ACK), secs(0)).forward().is_some());
    ipvs.sysctl_mut().sloppy_tcp = true;
    assert!(ipvs.process_in(&tcp_pkt("1.1.1.1:3", ACK), secs(0)).forward().is_some());
    // sNO + ack → ESTABLISHED (INPUT-ONLY table).
    assert_eq!(state(&ipvs, 3, secs(0)).0, "ESTABLISHED");
    assert_eq!(ipvs.process_in(&tcp_pkt("1.1.1.1:4", RST), secs(0)), InVerdict::Pass(p));
    // No service at all.
    let other = PacketMeta::tcp(sa("1.1.1.1:5"), sa("10.0.0.99:80"), SYN);
    assert_eq!(ipvs.process_in(&other, secs(0)), InVerdict::Pass(PassReason::NoService));
    // Unsupported protocol and mixed families.
    let icmp = PacketMeta::new(1, sa("1.1.1.1:0"), sa(&format!("{VIP}:0")));
    assert_eq!(ipvs.process_in(&icmp, secs(0)), InVerdict::Pass(PassReason::UnsupportedProtocol));
    let mixed = PacketMeta::tcp(sa("[2001:db8::1]:5"), sa(&format!("{VIP}:80")), SYN);
    assert_eq!(ipvs.process_in(&mixed, secs(0)), InVerdict::Drop(DropReason::Malformed));
}

#[test]
fn no_destination_rejects_and_ftp_rules() {
    // §8.3 ip_vs_leave: no server → ICMP port unreachable; a port-21 service reached for another
    // port passes instead. §2.1 step 3: TCP to VIP:20 or VIP:>=1024 finds the port-21 service.
    // ip_vs_schedule: source port 20 is never scheduled.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    assert_eq!(
        ipvs.process_in(&tcp_pkt("1.1.1.1:1", SYN), secs(0)),
        InVerdict::Reject(RejectReason::NoDestination)
    );
    let ftp = key(Protocol::Tcp, 21);
    service(&mut ipvs, ftp, "rr", None);
    let to_port = |p: u16| PacketMeta::tcp(sa("1.1.1.1:3000"), sa(&format!("{VIP}:{p}")), SYN);
    assert_eq!(ipvs.process_in(&to_port(21), secs(0)), InVerdict::Reject(RejectReason::NoDestination));
    assert_eq!(ipvs.process_in(&to_port(30000), secs(0)), InVerdict::Pass(PassReason::FtpService));
    assert_eq!(ipvs.process_in(&to_port(20), secs(0)), InVerdict::Pass(PassReason::FtpService));
    assert_eq!(ipvs.process_in(&to_port(500), secs(0)), InVerdict::Pass(PassReason::NoService));
    server(&mut ipvs, &ftp, "192.168.1.5", FwdMethod::Masq);
    let from20 = PacketMeta::tcp(sa("1.1.1.1:20"), sa(&format!("{VIP}:21")), SYN);
    assert_eq!(ipvs.process_in(&from20, secs(0)), InVerdict::Pass(PassReason::FtpData));
    // Scheduler "none" never schedules.
    let mut c = ServiceConfig::new(key(Protocol::Udp, 53));
    c.scheduler = "none".into();
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &key(Protocol::Udp, 53), "192.168.1.6", FwdMethod::Route);
    let dns = PacketMeta::udp(sa("1.1.1.1:999"), sa(&format!("{VIP}:53")));
    assert_eq!(ipvs.process_in(&dns, secs(0)), InVerdict::Reject(RejectReason::NoDestination));
}

#[test]
fn udp_single_state_refresh_and_set_timeouts() {
    // §4.5: UDP state "UDP", 300 s, refreshed by every packet; never active. §4.3: --set tcp
    // tcpfin udp changes ESTABLISHED, FIN_WAIT and UDP (0 = unchanged); existing entries keep
    // their timer until their next packet.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Udp, 53);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Masq);
    let q = PacketMeta::udp(sa("1.1.1.1:4000"), sa(&format!("{VIP}:53"))).with_len(40);
    ipvs.process_in(&q, secs(0));
    assert_eq!(state(&ipvs, 4000, secs(0)), ("UDP", 300_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 1, 0));
    ipvs.process_in(&q, secs(100));
    assert_eq!(state(&ipvs, 4000, secs(100)), ("UDP", 300_000));
    assert_eq!(ipvs.timeouts(), (900, 120, 300));
    ipvs.set_timeouts(0, 30, 10).unwrap();
    assert_eq!(ipvs.timeouts(), (900, 30, 10));
    assert!(ipvs.set_timeouts(MAX_TIMEOUT + 1, 0, 0).is_err());
    assert_eq!(state(&ipvs, 4000, secs(101)).1, 299_000, "existing timer unchanged");
    let reply = PacketMeta::udp(sa("192.168.1.1:53"), sa("1.1.1.1:4000"));
    assert!(matches!(ipvs.process_out(&reply, secs(150)), OutVerdict::Masq { .. }));
    assert_eq!(state(&ipvs, 4000, secs(150)), ("UDP", 10_000));
    ipvs.advance(ms(159_999));
    assert!(conn(&ipvs, 4000, ms(159_999)).is_some());
    ipvs.advance(secs(160));
    assert!(conn(&ipvs, 4000, secs(160)).is_none());
    // The TCP FIN_WAIT timeout follows --set as well.
    let t = key(Protocol::Tcp, 80);
    service(&mut ipvs, t, "rr", None);
    server(&mut ipvs, &t, "192.168.1.2", FwdMethod::Route);
    ipvs.set_timeouts(1000, 0, 0).unwrap();
    ipvs.process_in(&tcp_pkt("1.1.1.1:7", SYN), secs(200));
    ipvs.process_in(&tcp_pkt("1.1.1.1:7", ACK), secs(200));
    assert_eq!(state(&ipvs, 7, secs(200)), ("ESTABLISHED", 1_000_000));
    ipvs.process_in(&tcp_pkt("1.1.1.1:7", FIN), secs(201));
    assert_eq!(state(&ipvs, 7, secs(201)), ("FIN_WAIT", 30_000));
    ipvs.check_conns();
}

#[test]
fn sctp_association_lifecycle_and_scheduling_rules() {
    // §4.5: SCTP states/timeouts; only ESTABLISHED is active; new associations only on INIT (not
    // ABORT) unless sloppy_sctp.
    use super::sctp::chunk::*;
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Sctp, 3868);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Masq);
    let c = "1.1.1.1:5000";
    let vip = format!("{VIP}:3868");
    let inp = |ch| PacketMeta::sctp(sa(c), sa(&vip), ch);
    let out = |ch| PacketMeta::sctp(sa("192.168.1.1:3868"), sa(c), ch);
    assert_eq!(ipvs.process_in(&inp(DATA), secs(0)), InVerdict::Pass(PassReason::NotSchedulable));
    ipvs.process_in(&inp(INIT), secs(0));
    assert_eq!(state(&ipvs, 5000, secs(0)), ("INIT1", 4_000));
    ipvs.process_out(&out(INIT_ACK), secs(0));
    assert_eq!(state(&ipvs, 5000, secs(0)), ("C-SENT", 61_000));
    ipvs.process_in(&inp(COOKIE_ECHO), secs(0));
    assert_eq!(state(&ipvs, 5000, secs(0)).0, "C-REPLIED");
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 1, 0));
    ipvs.process_out(&out(COOKIE_ACK), secs(1));
    assert_eq!(state(&ipvs, 5000, secs(1)), ("ESTABLISHED", 900_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (1, 0, 0));
    ipvs.process_in(&inp(DATA), secs(2));
    ipvs.process_in(&inp(SHUTDOWN), secs(3));
    assert_eq!(state(&ipvs, 5000, secs(3)).0, "S-RECEIVED");
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 1, 0));
    ipvs.process_out(&out(SHUTDOWN_ACK), secs(3));
    assert_eq!(state(&ipvs, 5000, secs(3)).0, "S-ACK-SENT");
    ipvs.process_in(&inp(SHUTDOWN_COMPLETE), secs(3));
    assert_eq!(state(&ipvs, 5000, secs(3)), ("CLOSED", 61_000));
    // conn_reuse_mode 1: an INIT on a CLOSED association starts a new one.
    let before = ipvs.stats.counters().conns;
    let v = ipvs.process_in(&inp(INIT), secs(4));
    assert!(v.forward().unwrap().created);
    assert_eq!(ipvs.stats.counters().conns, before + 1);
    assert_eq!(state(&ipvs, 5000, secs(4)).0, "INIT1");
    // ABORT never creates, even sloppy; sloppy creates on DATA.
    ipvs.sysctl_mut().sloppy_sctp = true;
    let other = |ch| PacketMeta::sctp(sa("1.1.1.2:6000"), sa(&vip), ch);
    assert_eq!(ipvs.process_in(&other(ABORT), secs(5)), InVerdict::Pass(PassReason::NotSchedulable));
    assert!(ipvs.process_in(&other(HEARTBEAT), secs(5)).forward().is_some());
    assert_eq!(state(&ipvs, 6000, secs(5)).0, "ESTABLISHED");
    ipvs.check_conns();
}

#[test]
fn persistence_normal_service_template_and_rearm() {
    // §2.2: template <proto, snet, 0, VIP, vport> → <RS, RS port>; same client → same server while
    // it lives; its timer restarts with every new connection that uses it; PersistConn counts it;
    // it becomes ASSURED when a controlled connection reaches ESTABLISHED.
    let mut ipvs = Ipvs::new();
    rr_pair(&mut ipvs, key(Protocol::Tcp, 443), Some(300), FwdMethod::Route);
    let p = |c: &str, f| PacketMeta::tcp(sa(c), sa(&format!("{VIP}:443")), f);
    let a1 = to(ipvs.process_in(&p("1.1.1.1:1000", SYN), secs(0)));
    let b = to(ipvs.process_in(&p("2.2.2.2:1000", SYN), secs(0)));
    assert_ne!(a1, b, "rr alternates between new clients");
    let a2 = to(ipvs.process_in(&p("1.1.1.1:1001", SYN), secs(100)));
    assert_eq!(a1, a2, "same client, same server");
    let t = templates(&ipvs, secs(100));
    assert_eq!(t.len(), 2);
    let ta = t.iter().find(|t| t.caddr == ip("1.1.1.1")).unwrap();
    assert_eq!((ta.protocol_name(), ta.cport, ta.vport, ta.dport, ta.state), ("TCP", 0, 443, 443, "NONE"));
    assert_eq!(ta.expires.as_secs(), 300, "re-armed by the second connection");
    assert_eq!(ta.controls, 2);
    assert_eq!(counts(&ipvs, &a1), (2, 0, 1));
    ipvs.process_in(&p("1.1.1.1:1001", ACK), secs(101));
    let ta = templates(&ipvs, secs(101)).into_iter().find(|t| t.caddr == ip("1.1.1.1")).unwrap();
    assert_eq!(ta.state, "ASSURED");
    // The SYN_RECV connection (1000) expires at 60 s; the template stays for 300 s after t=100.
    ipvs.advance(secs(399));
    assert!(conn(&ipvs, 1000, secs(399)).is_none());
    let a3 = to(ipvs.process_in(&p("1.1.1.1:1002", SYN), secs(399)));
    assert_eq!(a1, a3);
    ipvs.check_conns();
}

#[test]
fn template_outlives_its_timeout_while_controlling() {
    // §2.2: a template whose timer fires while it controls connections is re-armed for 60 s
    // (expire_later) and afterwards re-armed with 60 s on reuse, not the persistence timeout.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", Some(360));
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    ipvs.process_in(&tcp_pkt("1.1.1.1:1000", SYN), secs(0));
    ipvs.process_in(&tcp_pkt("1.1.1.1:1000", ACK), secs(0));
    // ESTABLISHED until 900 s; template due at 360 s.
    ipvs.advance(secs(361));
    let t = &templates(&ipvs, secs(361))[0];
    assert_eq!(t.expires.as_secs(), 59, "fired at 360, re-armed to 420");
    // Reuse at 400 re-arms with 60 s (the timeout expire_later left), not 360.
    ipvs.process_in(&tcp_pkt("1.1.1.1:1001", SYN), secs(400));
    assert_eq!(templates(&ipvs, secs(400))[0].expires.as_secs(), 60);
    // One late call: the SYN_RECV conn dies at 460, the established one at 900; the template is
    // re-armed at 460, 520, ... and dies at the first firing after 900: 940.
    ipvs.advance(secs(939));
    assert_eq!(templates(&ipvs, secs(939)).len(), 1);
    assert_eq!(ipvs.connections(secs(939)).len(), 1);
    ipvs.advance(secs(940));
    assert!(ipvs.connections(secs(940)).is_empty());
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 0, 0));
    ipvs.check_conns();
}

#[test]
fn netmask_groups_clients() {
    // §2.2: -M 255.255.255.0: the template key is the client's /24.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.persistent = Some(600);
    c.netmask = crate::addr::Netmask::parse("255.255.255.0", false).unwrap();
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    let a = to(ipvs.process_in(&tcp_pkt("10.1.1.1:1000", SYN), secs(0)));
    let b = to(ipvs.process_in(&tcp_pkt("10.1.1.200:2000", SYN), secs(1)));
    let other = to(ipvs.process_in(&tcp_pkt("10.1.2.1:3000", SYN), secs(2)));
    assert_eq!(a, b);
    assert_ne!(a, other);
    let t = templates(&ipvs, secs(2));
    assert_eq!(t.len(), 2);
    assert!(t.iter().any(|t| t.caddr == ip("10.1.1.0")));
    assert!(t.iter().any(|t| t.caddr == ip("10.1.2.0")));
}

#[test]
fn port_zero_service_one_template_for_all_ports() {
    // §2.2: port-0 service: template <proto, snet, 0, VIP, 0> → <RS, 0>; the connection's port is
    // the packet's; §2.1 step 4: found after the exact lookup fails.
    let mut ipvs = Ipvs::new();
    rr_pair(&mut ipvs, key(Protocol::Tcp, 0), Some(300), FwdMethod::Route);
    let p = |port: u16| PacketMeta::tcp(sa("1.1.1.1:1000"), sa(&format!("{VIP}:{port}")), SYN);
    let f80 = *ipvs.process_in(&p(80), secs(0)).forward().unwrap();
    let f443 = *ipvs.process_in(&p(443), secs(0)).forward().unwrap();
    assert_eq!(f80.daddr, f443.daddr);
    assert_eq!((f80.dport, f443.dport), (80, 443));
    let t = templates(&ipvs, secs(0));
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].vport, t[0].dport, t[0].controls), (0, 0, 2));
    // Another client goes elsewhere (rr).
    let q = PacketMeta::tcp(sa("2.2.2.2:1"), sa(&format!("{VIP}:22")), SYN);
    assert_ne!(ipvs.process_in(&q, secs(0)).forward().unwrap().daddr, f80.daddr);
}

#[test]
fn fwmark_service_persistence() {
    // §2.2: fwmark template <IPPROTO_IP, snet, 0, fwmark-as-address, 0> → <RS, 0>, shown with
    // protocol IP; §2.1 step 1: fwmark lookup first. The RS port 0 means "the packet's port".
    let mut ipvs = Ipvs::new();
    let k = ServiceKey::Fwmark { mark: 1, family: Family::Inet };
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    let web = PacketMeta::tcp(sa("1.1.1.1:1000"), sa("10.0.0.1:80"), SYN).with_fwmark(1);
    let mail = PacketMeta::tcp(sa("1.1.1.1:1001"), sa("10.0.0.2:25"), SYN).with_fwmark(1);
    let dns = PacketMeta::udp(sa("1.1.1.1:1002"), sa("10.0.0.3:53")).with_fwmark(1);
    let a = *ipvs.process_in(&web, secs(0)).forward().unwrap();
    let b = *ipvs.process_in(&mail, secs(0)).forward().unwrap();
    let c = *ipvs.process_in(&dns, secs(0)).forward().unwrap();
    assert_eq!((a.daddr, a.dport), (b.daddr, 80));
    assert_eq!((c.daddr, b.dport, c.dport), (a.daddr, 25, 53));
    let t = templates(&ipvs, secs(0));
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].protocol_name(), t[0].vaddr, t[0].vport, t[0].controls), ("IP", ip("0.0.0.1"), 0, 3));
    // Without the mark there is no service.
    let unmarked = PacketMeta::tcp(sa("1.1.1.1:1003"), sa("10.0.0.1:80"), SYN);
    assert_eq!(ipvs.process_in(&unmarked, secs(0)), InVerdict::Pass(PassReason::NoService));
}

#[test]
fn ftp_persistence_covers_data_connections() {
    // §2.2 FTP: the port-21 template has vport 0 and dport 0 and also serves the client's data
    // connections, which reach the service through the FTP rule.
    let mut ipvs = Ipvs::new();
    rr_pair(&mut ipvs, key(Protocol::Tcp, 21), Some(300), FwdMethod::Route);
    let p = |c: &str, port: u16| PacketMeta::tcp(sa(c), sa(&format!("{VIP}:{port}")), SYN);
    let ctl = *ipvs.process_in(&p("1.1.1.1:3000", 21), secs(0)).forward().unwrap();
    let data = *ipvs.process_in(&p("1.1.1.1:3001", 40000), secs(0)).forward().unwrap();
    assert_eq!(ctl.daddr, data.daddr);
    assert_eq!(data.dport, 40000);
    let t = templates(&ipvs, secs(0));
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].vport, t[0].dport), (0, 0));
}

#[test]
fn one_packet_udp_schedules_every_datagram() {
    // §2.3: -o: every UDP datagram is scheduled and counted as a connection, nothing is kept.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Udp, 53);
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.one_packet = true;
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    let q = PacketMeta::udp(sa("1.1.1.1:4000"), sa(&format!("{VIP}:53"))).with_len(50);
    let picks: Vec<String> = (0..4).map(|i| to(ipvs.process_in(&q, secs(i)))).collect();
    assert_eq!(picks, ["192.168.1.2", "192.168.1.1", "192.168.1.2", "192.168.1.1"]);
    assert!(ipvs.process_in(&q, secs(5)).forward().unwrap().conn.is_none());
    assert!(ipvs.connections(secs(5)).is_empty());
    assert_eq!(ipvs.stats.counters().conns, 5);
    assert_eq!(ipvs.stats.counters().inbytes, 250);
    assert_eq!(counts(&ipvs, "192.168.1.1"), (0, 0, 0));
    // With persistence: the template is kept, the connections are not.
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.one_packet = true;
    c.persistent = Some(60);
    ipvs.edit_service(c).unwrap();
    let a = to(ipvs.process_in(&q, secs(10)));
    let b = to(ipvs.process_in(&q, secs(11)));
    assert_eq!(a, b);
    let t = templates(&ipvs, secs(11));
    assert_eq!((t.len(), t[0].controls, t[0].expires.as_secs()), (1, 0, 60));
    assert_eq!(ipvs.connections(secs(11)).len(), 1);
    ipvs.check_conns();
}

#[test]
fn thresholds_set_and_clear_overload() {
    // §3.4 (6.12): OVERLOAD set when totalconns reaches -x, cleared when it falls below -y (or
    // 3/4 of -x); while set the server gets no new connections; templates do not count.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    let mut a = DestConfig::new(ip("192.168.1.1"));
    a.u_threshold = 2;
    ipvs.add_dest(&k, &a).unwrap();
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    // List order: .2 then .1 (newest first): rr picks .2, .1, .2, .1(overloaded → .2) ...
    let picks: Vec<String> = (0..6)
        .map(|i| to(ipvs.process_in(&tcp_pkt(&format!("1.1.1.1:{}", 100 + i), SYN), secs(0))))
        .collect();
    assert_eq!(
        picks,
        ["192.168.1.2", "192.168.1.1", "192.168.1.2", "192.168.1.1", "192.168.1.2", "192.168.1.2"]
    );
    assert!(dest_of(&ipvs, "192.168.1.1").overloaded);
    // Close one of .1's connections (RST → CLOSE, 10 s) and let it expire: 2 → 1 < l (2 - 0) clears.
    let first = picks.iter().position(|p| p == "192.168.1.1").unwrap() as u16;
    // SYN_RECV + rst stays SYN_RECV (§4.3 table), so establish it first.
    ipvs.process_in(&tcp_pkt(&format!("1.1.1.1:{}", 100 + first), ACK), secs(1));
    ipvs.process_in(&tcp_pkt(&format!("1.1.1.1:{}", 100 + first), RST), secs(1));
    ipvs.advance(secs(11));
    assert!(!dest_of(&ipvs, "192.168.1.1").overloaded);
    assert_eq!(dest_of(&ipvs, "192.168.1.1").totalconns, 1);
    ipvs.check_conns();
}

#[test]
fn deleted_server_without_expire_nodest_conn_drops_packets() {
    // §3.5: expire_nodest_conn = 0: packets of its connections are dropped silently; the
    // connections live until their timers; the server stays in the trash while referenced and
    // 120 s after.
    let mut ipvs = Ipvs::new();
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), None, FwdMethod::Route);
    let c = "1.1.1.1:1000";
    let first = to(ipvs.process_in(&tcp_pkt(c, SYN), secs(0)));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    ipvs.del_dest(&k, ip(&first), None, secs(1)).unwrap();
    assert_eq!(ipvs.process_in(&tcp_pkt(c, ACK), secs(2)), InVerdict::Drop(DropReason::DestUnavailable));
    assert_eq!(ipvs.process_in(&tcp_pkt(c, SYN), secs(2)), InVerdict::Drop(DropReason::DestUnavailable));
    let before = ipvs.stats.counters().inpkts;
    assert_eq!(before, 2, "dropped packets are not counted");
    ipvs.advance(secs(500));
    assert_eq!(ipvs.trash_len(), 1, "still referenced until 900 s");
    ipvs.advance(secs(900));
    assert!(ipvs.connections(secs(900)).is_empty());
    ipvs.advance(secs(1019));
    assert_eq!(ipvs.trash_len(), 1);
    ipvs.advance(secs(1020));
    assert_eq!(ipvs.trash_len(), 0, "freed 120 s after its last reference");
}

#[test]
fn deleted_server_with_expire_nodest_conn_expires_connections() {
    // §3.5: expire_nodest_conn = 1: deleting flushes the server's connections and templates;
    // a packet of a connection to an unavailable server expires it and is treated as new (a
    // non-SYN is then not scheduled).
    let mut ipvs = Ipvs::new();
    ipvs.sysctl_mut().expire_nodest_conn = true;
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), Some(300), FwdMethod::Route);
    let a = to(ipvs.process_in(&tcp_pkt("1.1.1.1:1000", SYN), secs(0)));
    let b = to(ipvs.process_in(&tcp_pkt("2.2.2.2:1000", SYN), secs(0)));
    assert_ne!(a, b);
    ipvs.del_dest(&k, ip(&a), None, secs(1)).unwrap();
    let left = ipvs.connections(secs(1));
    assert_eq!(left.len(), 2, "b's connection and template remain");
    assert!(left.iter().all(|c| c.daddr == ip(&b)));
    assert_eq!(ipvs.trash_len(), 1);
    ipvs.check_conns();
    // The in-hook path: delete b with the sysctl off (no flush), then turn it on.
    ipvs.sysctl_mut().expire_nodest_conn = false;
    ipvs.del_dest(&k, ip(&b), None, secs(2)).unwrap();
    ipvs.sysctl_mut().expire_nodest_conn = true;
    assert_eq!(
        ipvs.process_in(&tcp_pkt("2.2.2.2:1000", ACK), secs(3)),
        InVerdict::Pass(PassReason::NotSchedulable)
    );
    assert!(conn(&ipvs, 1000, secs(3)).is_none());
    server(&mut ipvs, &k, "192.168.1.3", FwdMethod::Route);
    // The stale template (server unavailable) fails check_template and is replaced.
    assert_eq!(to(ipvs.process_in(&tcp_pkt("2.2.2.2:1001", SYN), secs(4))), "192.168.1.3");
    let t = templates(&ipvs, secs(4));
    assert!(t.iter().any(|t| t.vport == 0xffff && t.daddr == ip(&b)), "invalidated template kept: {t:?}");
    assert!(t.iter().any(|t| t.vport == 80 && t.daddr == ip("192.168.1.3")));
    ipvs.check_conns();
}

#[test]
fn weight_zero_and_expire_quiescent_template() {
    // §3.5: weight 0: existing connections continue, persistence templates keep sending the
    // client to it unless expire_quiescent_template = 1, which invalidates them.
    let mut ipvs = Ipvs::new();
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), Some(300), FwdMethod::Route);
    let a = to(ipvs.process_in(&tcp_pkt("1.1.1.1:1000", SYN), secs(0)));
    let mut q = DestConfig::new(ip(&a));
    q.weight = 0;
    ipvs.edit_dest(&k, &q).unwrap();
    assert_eq!(to(ipvs.process_in(&tcp_pkt("1.1.1.1:1001", SYN), secs(1))), a);
    assert_eq!(to(ipvs.process_in(&tcp_pkt("1.1.1.1:1000", ACK), secs(1))), a);
    ipvs.sysctl_mut().expire_quiescent_template = true;
    let moved = to(ipvs.process_in(&tcp_pkt("1.1.1.1:1002", SYN), secs(2)));
    assert_ne!(moved, a);
    // Old connections still go to the quiesced server.
    assert_eq!(to(ipvs.process_in(&tcp_pkt("1.1.1.1:1001", ACK), secs(2))), a);
    let t = templates(&ipvs, secs(2));
    assert_eq!(t.len(), 2);
    let old = t.iter().find(|t| t.daddr == ip(&a)).unwrap();
    assert_eq!((old.vport, old.dport, old.controls), (0xffff, 0xffff, 2));
    assert_eq!(counts(&ipvs, &a).2, 1, "invalidated template still counted until it expires");
    ipvs.check_conns();
}

#[test]
fn weight_zero_with_expire_nodest_conn_reschedules_syn() {
    // §3.5: with expire_nodest_conn = 1 a SYN hitting a connection to a weight-0 server expires
    // it and is rescheduled; without, it stays (ESTABLISHED + syn → ESTABLISHED).
    let mut ipvs = Ipvs::new();
    ipvs.sysctl_mut().conn_reuse_mode = 0;
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), None, FwdMethod::Route);
    let c = "1.1.1.1:1000";
    let a = to(ipvs.process_in(&tcp_pkt(c, SYN), secs(0)));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    let mut q = DestConfig::new(ip(&a));
    q.weight = 0;
    ipvs.edit_dest(&k, &q).unwrap();
    assert_eq!(to(ipvs.process_in(&tcp_pkt(c, SYN), secs(1))), a);
    assert_eq!(state(&ipvs, 1000, secs(1)).0, "ESTABLISHED");
    ipvs.sysctl_mut().expire_nodest_conn = true;
    let v = ipvs.process_in(&tcp_pkt(c, SYN), secs(2));
    assert!(v.forward().unwrap().created);
    assert_ne!(to(v), a);
    assert_eq!(counts(&ipvs, &a), (0, 0, 0));
    ipvs.check_conns();
}

#[test]
fn conn_reuse_mode_reschedules_closing_connections() {
    // §4.6 conn_reuse_mode: bit 0: a SYN on an uncontrolled TIME_WAIT/CLOSE connection expires it
    // and schedules anew; bit 1: also FIN_WAIT of non-NAT connections; 0: the entry is reused.
    let mut ipvs = Ipvs::new();
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), None, FwdMethod::Route);
    let c = "1.1.1.1:1000";
    let a = to(ipvs.process_in(&tcp_pkt(c, SYN), secs(0)));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    ipvs.process_in(&tcp_pkt(c, RST), secs(0));
    assert_eq!(state(&ipvs, 1000, secs(0)).0, "CLOSE");
    let v = ipvs.process_in(&tcp_pkt(c, SYN), secs(1));
    assert!(v.forward().unwrap().created);
    let b = to(v);
    assert_ne!(a, b, "rescheduled by rr");
    assert_eq!(ipvs.stats.counters().conns, 2);
    // FIN_WAIT (DR, NOOUTPUT): only with bit 1.
    ipvs.process_in(&tcp_pkt(c, ACK), secs(1));
    ipvs.process_in(&tcp_pkt(c, FIN), secs(2));
    assert_eq!(state(&ipvs, 1000, secs(2)).0, "FIN_WAIT");
    assert!(!ipvs.process_in(&tcp_pkt(c, SYN), secs(3)).forward().unwrap().created);
    assert_eq!(state(&ipvs, 1000, secs(3)).0, "SYN_RECV");
    ipvs.process_in(&tcp_pkt(c, ACK), secs(3));
    ipvs.process_in(&tcp_pkt(c, FIN), secs(3));
    ipvs.sysctl_mut().conn_reuse_mode = 3;
    assert!(ipvs.process_in(&tcp_pkt(c, SYN), secs(4)).forward().unwrap().created);
    // Mode 0: a SYN on CLOSE reuses the entry (CLOSE + syn → SYN_RECV), same server.
    ipvs.sysctl_mut().conn_reuse_mode = 0;
    ipvs.process_in(&tcp_pkt(c, ACK), secs(5));
    ipvs.process_in(&tcp_pkt(c, RST), secs(5));
    assert_eq!(state(&ipvs, 1000, secs(5)).0, "CLOSE");
    assert!(!ipvs.process_in(&tcp_pkt(c, SYN), secs(6)).forward().unwrap().created);
    assert_eq!(state(&ipvs, 1000, secs(6)).0, "SYN_RECV");
    assert_eq!(ipvs.stats.counters().conns, 3);
    // Controlled (persistent) connections are never rescheduled.
    ipvs.sysctl_mut().conn_reuse_mode = 1;
    let mut cfg = ServiceConfig::new(k);
    cfg.scheduler = "rr".into();
    cfg.persistent = Some(300);
    ipvs.edit_service(cfg).unwrap();
    let p = "2.2.2.2:2000";
    ipvs.process_in(&tcp_pkt(p, SYN), secs(7));
    ipvs.process_in(&tcp_pkt(p, ACK), secs(7));
    ipvs.process_in(&tcp_pkt(p, RST), secs(7));
    assert_eq!(state(&ipvs, 2000, secs(7)).0, "CLOSE");
    assert!(!ipvs.process_in(&tcp_pkt(p, SYN), secs(8)).forward().unwrap().created);
    ipvs.check_conns();
}

#[test]
fn entry_limit_refuses_and_counts() {
    // Our own cap: connections + templates; beyond it the packet is dropped and counted.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    ipvs.set_conn_limit(Some(3));
    for i in 0..3 {
        assert!(ipvs.process_in(&tcp_pkt(&format!("1.1.1.1:{i}"), SYN), secs(0)).forward().is_some());
    }
    assert_eq!(ipvs.process_in(&tcp_pkt("1.1.1.1:9", SYN), secs(0)), InVerdict::Drop(DropReason::TableFull));
    let st = ipvs.conn_stats();
    assert_eq!((st.conns, st.templates, st.refused, st.limit), (3, 0, 1, Some(3)));
    // Existing connections still work.
    assert!(ipvs.process_in(&tcp_pkt("1.1.1.1:0", ACK), secs(0)).forward().is_some());
    // Persistence: a template and its connection are two entries.
    let pk = key(Protocol::Tcp, 443);
    service(&mut ipvs, pk, "rr", Some(60));
    server(&mut ipvs, &pk, "192.168.1.1", FwdMethod::Route);
    ipvs.set_conn_limit(Some(4));
    let p = PacketMeta::tcp(sa("3.3.3.3:1"), sa(&format!("{VIP}:443")), SYN);
    assert_eq!(ipvs.process_in(&p, secs(0)), InVerdict::Drop(DropReason::TableFull));
    assert_eq!(ipvs.conn_stats().templates, 1, "the template was created, its connection refused");
    assert_eq!(ipvs.conn_stats().refused, 2);
    ipvs.set_conn_limit(None);
    assert!(ipvs.process_in(&p, secs(0)).forward().is_some());
    let d443 = ipvs.dest(ipvs.service(&pk).unwrap().dest_ids()[0]).unwrap();
    assert_eq!((d443.persistconns, d443.stats.counters().conns), (1, 1), "refused attempts are not conns");
    let d80 = ipvs.dest(ipvs.service(&k).unwrap().dest_ids()[0]).unwrap();
    assert_eq!(d80.stats.counters().conns, 3);
    ipvs.check_conns();
}

#[test]
fn route_flow_creates_like_a_first_packet() {
    let mut ipvs = Ipvs::new();
    rr_pair(&mut ipvs, key(Protocol::Udp, 53), Some(100), FwdMethod::Route);
    let flow = Flow { protocol: 17, saddr: ip("5.5.5.5"), sport: 999, daddr: ip(VIP), dport: 53 };
    let a = ipvs.route_flow(&flow, 0, secs(0)).unwrap();
    let b = ipvs.route_flow(&Flow { sport: 1000, ..flow }, 0, secs(1)).unwrap();
    assert_eq!(a.daddr, b.daddr);
    assert_eq!(ipvs.connections(secs(1)).len(), 3);
    let none = Flow { dport: 54, ..flow };
    assert!(ipvs.route_flow(&none, 0, secs(1)).is_none());
    let t = Flow { protocol: 6, dport: 80, ..flow };
    assert!(ipvs.route_flow(&t, 0, secs(1)).is_none());
}

#[test]
fn ipv6_connections_and_listing() {
    let mut ipvs = Ipvs::new();
    let k = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip("2001:db8::100"), port: 80 };
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "2001:db8::1", FwdMethod::Masq);
    let c = "[2001:db8:ffff::7]:4444";
    let syn = PacketMeta::tcp(sa(c), sa("[2001:db8::100]:80"), SYN);
    let f = *ipvs.process_in(&syn, secs(0)).forward().unwrap();
    assert_eq!(f.daddr, ip("2001:db8::1"));
    let out = PacketMeta::tcp(sa("[2001:db8::1]:80"), sa(c), SYN | ACK);
    assert!(matches!(ipvs.process_out(&out, secs(0)), OutVerdict::Masq { vport: 80, .. }));
    let list = ipvs.connections(secs(0));
    assert_eq!(list.len(), 2);
    let cn = list.iter().find(|c| !c.template).unwrap();
    assert_eq!(
        (cn.caddr, cn.cport, cn.vaddr, cn.state),
        (ip("2001:db8:ffff::7"), 4444, ip("2001:db8::100"), "SYN_RECV")
    );
    assert_eq!(ipvs.lookup_conn(&syn), Some(cn.id));
    assert_eq!(ipvs.connection(cn.id, secs(0)).unwrap().state, "SYN_RECV");
    ipvs.check_conns();
}

#[test]
fn batch_lookups_match_single_lookups() {
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    let pkts: Vec<PacketMeta> =
        (0..100u16).map(|i| tcp_pkt(&format!("1.1.{}.1:{}", i % 7, 1000 + i), SYN)).collect();
    for p in pkts.iter().step_by(2) {
        ipvs.process_in(p, secs(0));
    }
    let mut out = vec![None; pkts.len()];
    ipvs.lookup_conns(&pkts, &mut out);
    for (p, r) in pkts.iter().zip(&out) {
        assert_eq!(*r, ipvs.lookup_conn(p));
    }
    assert_eq!(out.iter().filter(|r| r.is_some()).count(), 50);
    let mut verdicts = Vec::new();
    ipvs.process_in_batch(&pkts, secs(1), &mut verdicts);
    assert_eq!(verdicts.len(), 100);
    assert_eq!(ipvs.conn_stats().conns, 100);
}

#[test]
fn new_connections_are_filed_at_their_real_expiry() {
    // A new connection is stored with its first packet already applied and filed on the timer
    // wheel once; with a UDP timeout of 1 s (shorter than the 3 s a connection has before its
    // first transition) it must expire at exactly 1 s, without and with persistence, one at a
    // time and in batches, also when the inserts fill clusters of the table.
    let mut ipvs = Ipvs::new();
    let plain = key(Protocol::Udp, 53);
    service(&mut ipvs, plain, "rr", None);
    server(&mut ipvs, &plain, "192.168.1.1", FwdMethod::Masq);
    server(&mut ipvs, &plain, "192.168.1.2", FwdMethod::Route);
    let sticky = key(Protocol::Udp, 54);
    service(&mut ipvs, sticky, "rr", Some(5));
    server(&mut ipvs, &sticky, "192.168.1.3", FwdMethod::Masq);
    ipvs.set_timeouts(0, 0, 1).unwrap();
    let pkt = |i: u32, port: u16| {
        PacketMeta::udp(
            sa(&format!("1.0.{}.{}:{}", i / 200, i % 200, 2000 + i)),
            sa(&format!("{VIP}:{port}")),
        )
    };
    for i in 0..600 {
        let v = ipvs.process_in(&pkt(i, if i % 3 == 0 { 54 } else { 53 }), ms(10));
        assert!(v.forward().unwrap().created);
    }
    let later: Vec<PacketMeta> = (600..1200).map(|i| pkt(i, 53)).collect();
    let mut out = Vec::new();
    ipvs.process_in_batch(&later, ms(500), &mut out);
    assert!(out.iter().all(|v| v.forward().is_some_and(|f| f.created)));
    ipvs.check_conns();
    assert_eq!(state(&ipvs, 2000, ms(10)), ("UDP", 1000));
    ipvs.advance(ms(1009));
    assert_eq!(ipvs.conn_stats().conns, 1200);
    ipvs.advance(ms(1010));
    assert_eq!(ipvs.conn_stats().conns, 600, "the first 600 expire at 10 ms + 1 s");
    ipvs.check_conns();
    ipvs.advance(ms(1499));
    assert_eq!(ipvs.conn_stats().conns, 600);
    ipvs.advance(ms(1500));
    assert_eq!(ipvs.conn_stats().conns, 0);
    assert_eq!(ipvs.conn_stats().templates, 200, "templates live on for their 5 s");
    assert_eq!(counts(&ipvs, "192.168.1.1").1 + counts(&ipvs, "192.168.1.2").1, 0);
    ipvs.check_conns();
}

#[test]
fn batches_decide_exactly_like_single_packets() {
    // The batch path hashes each packet once ahead of time and reuses the hashes for the lookup
    // and the inserts: over mixed families, NAT and direct routing, persistence, repeated flows and
    // table growth, it must leave the same verdicts, connections and counters as one-at-a-time.
    let build = || {
        let mut ipvs = Ipvs::new();
        let v4 = key(Protocol::Tcp, 80);
        service(&mut ipvs, v4, "rr", None);
        server(&mut ipvs, &v4, "192.168.1.1", FwdMethod::Masq);
        server(&mut ipvs, &v4, "192.168.1.2", FwdMethod::Route);
        let udp = key(Protocol::Udp, 53);
        service(&mut ipvs, udp, "wlc", Some(60));
        server(&mut ipvs, &udp, "192.168.2.1", FwdMethod::Masq);
        server(&mut ipvs, &udp, "192.168.2.2", FwdMethod::Masq);
        let v6 = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip("2001:db8::100"), port: 443 };
        service(&mut ipvs, v6, "sh", None);
        server(&mut ipvs, &v6, "2001:db8:1::1", FwdMethod::Masq);
        server(&mut ipvs, &v6, "2001:db8:1::2", FwdMethod::Route);
        ipvs
    };
    let (mut single, mut batched) = (build(), build());
    let mut pkts = Vec::new();
    for i in 0..4500u32 {
        let flow = i % 3000;
        let flags = if i < 3000 { SYN } else { ACK };
        let mut p = tcp_pkt(&format!("1.{}.{}.1:{}", flow % 5, flow / 5 % 250, 1000 + flow), flags);
        match i % 3 {
            1 => {
                p.protocol = ipproto::UDP;
                p.dport = 53;
            }
            2 => {
                p.saddr = ip(&format!("2001:db8:ff::{:x}", flow));
                p.daddr = ip("2001:db8::100");
                p.dport = 443;
            }
            _ => {}
        }
        pkts.push(p);
    }
    // Flows repeated within the batch's read-ahead window, and connections removed inside it
    // (a SYN on a closed connection ends it and schedules a new one, shifting its cluster), so
    // that the slots read ahead for the packets that follow have moved by the time they run.
    for i in 0..600u32 {
        let flow = 5000 + i / 6;
        let flags = [SYN, ACK, RST, SYN, SYN, ACK][i as usize % 6];
        pkts.push(tcp_pkt(&format!("1.9.{}.{}:{}", flow / 250, flow % 250, 3000 + flow % 7), flags));
    }
    // Not forwarded either way: no service, and mixed families.
    let mut no_service = tcp_pkt("1.2.3.4:5", SYN);
    no_service.dport = 81;
    pkts.push(no_service);
    let mut mixed = tcp_pkt("1.2.3.4:6", SYN);
    mixed.daddr = ip("2001:db8::100");
    pkts.push(mixed);
    let want: Vec<InVerdict> = pkts.iter().map(|p| single.process_in(p, secs(1))).collect();
    let mut got = Vec::new();
    batched.process_in_batch(&pkts, secs(1), &mut got);
    assert_eq!(got, want);
    assert_eq!(batched.connections(secs(1)), single.connections(secs(1)));
    assert_eq!(single.conn_stats().conns, 3100, "the tables grew through several doublings");
    let created = want.iter().filter(|v| v.forward().is_some_and(|f| f.created)).count();
    assert_eq!(created, 3000 + 2 * 100, "the SYN after each RST ended its connection and made a new one");
    let mut found = vec![None; pkts.len()];
    batched.lookup_conns(&pkts, &mut found);
    let want: Vec<Option<ConnId>> = pkts.iter().map(|p| batched.lookup_conn(p)).collect();
    assert_eq!(found, want);
    assert_eq!(found.iter().filter(|c| c.is_some()).count(), pkts.len() - 2, "all but the two unforwarded");
    batched.check_conns();
}

#[test]
fn random_traffic_keeps_counters_consistent() {
    // Mixed TCP/UDP/SCTP traffic over persistent and plain services, deletions and timer runs;
    // after each step every server's active/total/persist counts and references must equal what
    // the table holds.
    use crate::rng::Rng;
    let mut rng = Rng::new(77);
    let mut ipvs = Ipvs::new();
    ipvs.set_conn_hash_seed(1234);
    let specs = [
        (Protocol::Tcp, 80, None),
        (Protocol::Udp, 53, Some(30)),
        (Protocol::Sctp, 9, None),
        (Protocol::Tcp, 0, Some(20)),
    ];
    for (proto, port, pers) in specs {
        let k = key(proto, port);
        service(&mut ipvs, k, "rr", pers);
        for h in 1..=3 {
            let fwd = if h == 2 { FwdMethod::Masq } else { FwdMethod::Route };
            server(&mut ipvs, &k, &format!("192.168.{port}.{h}"), fwd);
        }
    }
    ipvs.sysctl_mut().expire_nodest_conn = true;
    let mut now = 0u64;
    for step in 0..3000 {
        now += rng.below(3000) as u64;
        let (proto, port, _) = specs[rng.below(4) as usize];
        let dport = if port == 0 { 1 + rng.below(3) as u16 } else { port };
        let client = format!("1.1.1.{}:{}", rng.below(5), 1000 + rng.below(20));
        let vip = format!("{VIP}:{dport}");
        let mut pkt = match proto {
            Protocol::Tcp => {
                PacketMeta::tcp(sa(&client), sa(&vip), [SYN, ACK, FIN | ACK, RST, PSH][rng.below(5) as usize])
            }
            Protocol::Udp => PacketMeta::udp(sa(&client), sa(&vip)),
            Protocol::Sctp => PacketMeta::sctp(sa(&client), sa(&vip), rng.below(16) as u8),
        };
        pkt.len = 100;
        if let InVerdict::Forward(f) = ipvs.process_in(&pkt, ms(now)) {
            if rng.below(2) == 0 {
                let mut r = pkt.reply();
                r.saddr = f.daddr;
                r.sport = f.dport;
                ipvs.process_out(&r, ms(now));
            }
        }
        match rng.below(200) {
            0 => {
                let k = key(specs[0].0, specs[0].1);
                let _ = ipvs.del_dest(&k, ip("192.168.80.1"), None, ms(now));
                if rng.below(2) == 0 {
                    server(&mut ipvs, &k, "192.168.80.1", FwdMethod::Route);
                }
            }
            1 => ipvs.advance(ms(now)),
            2 => ipvs.sysctl_mut().expire_nodest_conn ^= true,
            _ => {}
        }
        if step % 100 == 0 {
            ipvs.advance(ms(now));
            ipvs.check_conns();
        }
    }
    ipvs.advance(ms(now + 10_000_000));
    assert!(ipvs.connections(ms(now + 10_000_000)).is_empty());
    ipvs.check_conns();
    let mem = ipvs.conn_memory();
    assert_eq!(mem.entries, 0);
}

/// A SIP request with Call-ID `call` (long form, or compact `i:` when `compact`).
fn sip(call: &str, compact: bool) -> Vec<u8> {
    let h = if compact { "i" } else { "Call-ID" };
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example.com\r\n\
         {h}: {call}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn sip_in(ipvs: &mut Ipvs, client: &str, port: u16, body: &[u8], now: Instant) -> InVerdict {
    let p = PacketMeta::new(ipproto::UDP, sa(client), SocketAddr::new(ip(VIP), port));
    ipvs.process_in_payload(&p, crate::pe::Payload::new(body, 28), now)
}

/// `--pe sip` (ipvs.md §2.2; ip_vs_pe_sip.c, ip_vs_sched_persist): one template per client
/// network and Call-ID, matched on the Call-ID; no Call-ID, no connection.
#[test]
fn pe_sip_templates_per_call_id() {
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Udp, 5060);
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.persistent = Some(300);
    c.pe = Some("sip".into());
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &k, "10.0.1.1", FwdMethod::Masq);
    server(&mut ipvs, &k, "10.0.1.2", FwdMethod::Masq);
    // Two phones behind one NAT address (different source ports), different calls: round robin
    // spreads them although plain persistence would pin the address.
    let a = to(sip_in(&mut ipvs, "192.0.2.7:5060", 5060, &sip("call-a@192.0.2.7", false), secs(0)));
    let b = to(sip_in(&mut ipvs, "192.0.2.7:5062", 5060, &sip("call-b@192.0.2.7", true), secs(0)));
    assert_ne!(a, b);
    // The same call from another port (a re-INVITE after a NAT rebinding) goes where the call is;
    // compact and long forms are the same Call-ID.
    for (i, port) in [5070u16, 5071, 5072].into_iter().enumerate() {
        let compact = i % 2 == 0;
        let v =
            sip_in(&mut ipvs, &format!("192.0.2.7:{port}"), 5060, &sip("call-b@192.0.2.7", compact), secs(1));
        assert_eq!(to(v), b);
    }
    let tpls = templates(&ipvs, secs(1));
    assert_eq!(tpls.len(), 2);
    let tb = tpls.iter().find(|t| t.pe_data.as_deref() == Some(&b"call-b@192.0.2.7"[..])).unwrap();
    assert_eq!((tb.pe_name, tb.daddr.to_string(), tb.controls), (Some("sip"), b.clone(), 4));
    assert_eq!((tb.caddr, tb.cport, tb.vport, tb.protocol), (ip("192.0.2.7"), 0, 5060, ipproto::UDP));
    assert_eq!(tb.flags & 0x10, 0, "the internal PE bit is not reported");
    // Connections themselves carry no engine data.
    assert!(conn(&ipvs, 5070, secs(1)).unwrap().pe_data.is_none());
    // Without a Call-ID (or not UDP, or no payload at all) a new connection is dropped...
    let none = sip_in(&mut ipvs, "192.0.2.8:5060", 5060, b"\r\n\r\n", secs(1));
    assert_eq!(none, InVerdict::Drop(DropReason::NoPeData));
    let p = PacketMeta::new(ipproto::UDP, sa("192.0.2.8:5060"), SocketAddr::new(ip(VIP), 5060));
    assert_eq!(ipvs.process_in(&p, secs(1)), InVerdict::Drop(DropReason::NoPeData));
    // ... but datagrams of existing connections need none (keep-alive CRLFs).
    assert_eq!(to(sip_in(&mut ipvs, "192.0.2.7:5060", 5060, b"\r\n\r\n", secs(2))), a);
    // Malformed payloads never panic and never create entries.
    let before = ipvs.connections(secs(2)).len();
    for junk in [&b""[..], b"Call-ID", b"\r\nCall-ID:", b"\r\ni:\r\n", b"\r\nCall-ID: x", &[0xff; 64]] {
        let v = sip_in(&mut ipvs, "192.0.2.9:1", 5060, junk, secs(2));
        assert_eq!(v, InVerdict::Drop(DropReason::NoPeData));
    }
    assert_eq!(ipvs.connections(secs(2)).len(), before);
    ipvs.check_conns();
    // Templates expire like any other: once their connections are gone and the timeout passed.
    ipvs.advance(secs(2 + 300 + 60 + 10));
    assert!(ipvs.connections(secs(400)).is_empty());
    ipvs.check_conns();
    // A server taken out invalidates its call's template: the call is scheduled anew.
    let a2 = to(sip_in(&mut ipvs, "192.0.2.7:5060", 5060, &sip("call-z", false), secs(500)));
    ipvs.del_dest(&k, ip(&a2), None, secs(501)).unwrap();
    let other = to(sip_in(&mut ipvs, "192.0.2.7:5061", 5060, &sip("call-z", false), secs(502)));
    assert_ne!(a2, other);
    ipvs.check_conns();
}

/// `-Lc --persistent-conn` adds the engine name and data (ipvsadm print_conn).
#[test]
fn pe_sip_listing() {
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Udp, 5060);
    let mut c = ServiceConfig::new(k);
    c.persistent = Some(360);
    c.pe = Some("sip".into());
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &k, "10.0.1.1", FwdMethod::Masq);
    sip_in(&mut ipvs, "192.0.2.7:5060", 5060, &sip("abc@host", false), secs(0));
    let mut conns = ipvs.connections(secs(0));
    conns.sort_by_key(|c| c.template);
    let f = crate::ipvsadm::Format { numeric: true, persistent_conn: true, ..Default::default() };
    let out = crate::ipvsadm::list_conn(&conns, &f, &crate::ipvsadm::NoNames);
    assert_eq!(
        out,
        "IPVS connection entries\n\
         pro expire state       source             virtual            destination        pe name          pe_data\n\
         UDP 05:00  UDP         192.0.2.7:5060     10.0.0.100:5060    10.0.1.1:5060                       \n\
         UDP 06:00  NONE        192.0.2.7:0        10.0.0.100:5060    10.0.1.1:5060      sip              abc@host\n"
    );
}

/// A real server of a `--pe sip` service starts a call (ip_vs_new_conn_out): the datagram is
/// masqueraded as the virtual service, and the call's template binds the client to that server.
#[test]
fn pe_sip_real_server_started_calls() {
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Udp, 5060);
    let mut c = ServiceConfig::new(k);
    c.persistent = Some(300);
    c.pe = Some("sip".into());
    ipvs.add_service(c).unwrap();
    let mut d = DestConfig::new(ip("10.0.1.1"));
    d.fwd = FwdMethod::Masq;
    d.port = Some(5080);
    ipvs.add_dest(&k, &d).unwrap();
    server(&mut ipvs, &k, "10.0.1.2", FwdMethod::Masq);
    let out = |ipvs: &mut Ipvs, from: &str, to: &str, body: &[u8], now| {
        let p = PacketMeta::new(ipproto::UDP, sa(from), sa(to));
        ipvs.process_out_payload(&p, crate::pe::Payload::new(body, 28), now)
    };
    // 10.0.1.2 calls the phone at 192.0.2.7:5060.
    let v = out(&mut ipvs, "10.0.1.2:5060", "192.0.2.7:5060", &sip("srv-1@10.0.1.2", false), secs(0));
    let OutVerdict::Masq { vaddr, vport, .. } = v else { panic!("not masqueraded: {v:?}") };
    assert_eq!((vaddr, vport), (ip(VIP), 5060));
    let cn = conn(&ipvs, 5060, secs(0)).unwrap();
    assert_eq!((cn.caddr, cn.vport, cn.daddr, cn.dport), (ip("192.0.2.7"), 5060, ip("10.0.1.2"), 5060));
    let t = &templates(&ipvs, secs(0))[0];
    assert_eq!((t.pe_data.as_deref(), t.daddr), (Some(&b"srv-1@10.0.1.2"[..]), ip("10.0.1.2")));
    assert_eq!(ipvs.services().next().unwrap().stats.counters().conns, 1);
    // The phone's answer goes back to that server, also from another port with the same call.
    assert_eq!(to(sip_in(&mut ipvs, "192.0.2.7:5060", 5060, b"SIP/2.0 200 OK\r\n\r\n", secs(1))), "10.0.1.2");
    assert_eq!(
        to(sip_in(&mut ipvs, "192.0.2.7:5999", 5060, &sip("srv-1@10.0.1.2", true), secs(1))),
        "10.0.1.2"
    );
    // The server on another port (5080) is found by its port too.
    let v = out(&mut ipvs, "10.0.1.1:5080", "192.0.2.8:5060", &sip("srv-2", false), secs(2));
    assert!(matches!(v, OutVerdict::Masq { .. }));
    // Not from a service's server port, no Call-ID, or not UDP: nothing is created.
    let before = ipvs.connections(secs(2)).len();
    assert_eq!(
        out(&mut ipvs, "10.0.1.2:5061", "192.0.2.9:5060", &sip("x", false), secs(2)),
        OutVerdict::Pass
    );
    assert_eq!(out(&mut ipvs, "10.0.1.2:5060", "192.0.2.9:5060", b"\r\n\r\n", secs(2)), OutVerdict::Pass);
    let p = PacketMeta::new(ipproto::UDP, sa("10.0.1.2:5060"), sa("192.0.2.9:5060"));
    assert_eq!(ipvs.process_out(&p, secs(2)), OutVerdict::Pass, "no payload, no Call-ID");
    let p = PacketMeta::tcp(sa("10.0.1.2:5060"), sa("192.0.2.9:5060"), SYN);
    assert_eq!(ipvs.process_out(&p, secs(2)), OutVerdict::Pass);
    assert_eq!(ipvs.connections(secs(2)).len(), before);
    ipvs.check_conns();
    // Without the engine the same datagram is just not ours.
    let mut plain = Ipvs::new();
    service(&mut plain, k, "rr", Some(300));
    server(&mut plain, &k, "10.0.1.2", FwdMethod::Masq);
    assert_eq!(
        out(&mut plain, "10.0.1.2:5060", "192.0.2.7:5060", &sip("srv-1", false), secs(0)),
        OutVerdict::Pass
    );
}

/// A server with a forwarding method and a port (NAT can change ports).
fn server_port(ipvs: &mut Ipvs, k: &ServiceKey, addr: &str, fwd: FwdMethod, port: u16) {
    let mut c = DestConfig::new(ip(addr));
    c.fwd = fwd;
    c.port = Some(port);
    ipvs.add_dest(k, &c).unwrap();
}

#[test]
fn udp_reply_assures_nat_template_but_dr_template_stays_none() {
    // §2.2: a template becomes ASSURED when a UDP reply is seen (ip_vs_control_assure_ct); a DR
    // director never sees replies, so its UDP templates stay NONE.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Udp, 53);
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Masq);
    let q = PacketMeta::udp(sa("1.1.1.1:4000"), sa(&format!("{VIP}:53")));
    ipvs.process_in(&q, secs(0));
    ipvs.process_in(&q, secs(1));
    assert_eq!(templates(&ipvs, secs(1))[0].state, "NONE", "client datagrams alone do not assure");
    let reply = PacketMeta::udp(sa("192.168.1.1:53"), sa("1.1.1.1:4000"));
    assert!(matches!(ipvs.process_out(&reply, secs(2)), OutVerdict::Masq { .. }));
    assert_eq!(templates(&ipvs, secs(2))[0].state, "ASSURED");
    ipvs.check_conns();

    let mut ipvs = Ipvs::new();
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    for t in 0..5 {
        ipvs.process_in(&q, secs(t));
    }
    let reply = PacketMeta::udp(sa("192.168.1.1:53"), sa("1.1.1.1:4000"));
    assert_eq!(ipvs.process_out(&reply, secs(5)), OutVerdict::Pass);
    assert_eq!(templates(&ipvs, secs(5))[0].state, "NONE");
    ipvs.check_conns();
}

#[test]
fn sctp_established_assures_template() {
    // §2.2: ASSURED when a controlled connection reaches SCTP ESTABLISHED (NAT: INIT, INIT-ACK,
    // COOKIE-ECHO, COOKIE-ACK, §4.5) and not before.
    use super::sctp::chunk::*;
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Sctp, 3868);
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Masq);
    let c = "1.1.1.1:5000";
    let vip = format!("{VIP}:3868");
    let inp = |ch| PacketMeta::sctp(sa(c), sa(&vip), ch);
    let out = |ch| PacketMeta::sctp(sa("192.168.1.1:3868"), sa(c), ch);
    ipvs.process_in(&inp(INIT), secs(0));
    ipvs.process_out(&out(INIT_ACK), secs(0));
    ipvs.process_in(&inp(COOKIE_ECHO), secs(0));
    assert_eq!(state(&ipvs, 5000, secs(0)).0, "C-REPLIED");
    let t = templates(&ipvs, secs(0));
    assert_eq!((t.len(), t[0].state, t[0].protocol_name()), (1, "NONE", "SCTP"));
    ipvs.process_out(&out(COOKIE_ACK), secs(1));
    assert_eq!(state(&ipvs, 5000, secs(1)).0, "ESTABLISHED");
    assert_eq!(templates(&ipvs, secs(1))[0].state, "ASSURED");
    ipvs.check_conns();
}

#[test]
fn thresholds_count_connections_not_templates() {
    // §3.4: "connections" = all non-template connections of the dest; templates are not counted.
    // -x 2 on .1: its first client brings a template and one connection, which is not yet 2.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", Some(300));
    let mut a = DestConfig::new(ip("192.168.1.1"));
    a.u_threshold = 2;
    ipvs.add_dest(&k, &a).unwrap();
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    // List order .2, .1 (newest first); one new client each, so rr alternates.
    let pick =
        |ipvs: &mut Ipvs, n: u32| to(ipvs.process_in(&tcp_pkt(&format!("1.1.1.{n}:1000"), SYN), secs(0)));
    assert_eq!(pick(&mut ipvs, 1), "192.168.1.2");
    assert_eq!(pick(&mut ipvs, 2), "192.168.1.1");
    let d = dest_of(&ipvs, "192.168.1.1");
    assert_eq!((d.totalconns, d.persistconns, d.overloaded), (1, 1, false));
    assert_eq!(pick(&mut ipvs, 3), "192.168.1.2");
    assert_eq!(pick(&mut ipvs, 4), "192.168.1.1");
    let d = dest_of(&ipvs, "192.168.1.1");
    assert_eq!((d.totalconns, d.persistconns, d.overloaded), (2, 2, true));
    assert_eq!(pick(&mut ipvs, 5), "192.168.1.2");
    assert_eq!(pick(&mut ipvs, 6), "192.168.1.2", ".1 overloaded");
    ipvs.check_conns();
}

#[test]
fn overloaded_server_keeps_connections_and_persistent_clients() {
    // §3.4: while OVERLOAD is set the dest gets no new connections, but existing connections and
    // persistence templates pointing to it keep working.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    let mut a = DestConfig::new(ip("192.168.1.1"));
    a.u_threshold = 1;
    ipvs.add_dest(&k, &a).unwrap();
    // List order .1, .2: the first client goes to .1, which is then overloaded (1 >= -x 1).
    assert_eq!(to(ipvs.process_in(&tcp_pkt("1.1.1.1:1000", SYN), secs(0))), "192.168.1.1");
    assert!(dest_of(&ipvs, "192.168.1.1").overloaded);
    let v = ipvs.process_in(&tcp_pkt("1.1.1.1:1000", ACK), secs(1));
    assert_eq!((v.forward().unwrap().created, to(v)), (false, "192.168.1.1".to_owned()));
    let v = ipvs.process_in(&tcp_pkt("1.1.1.1:1001", SYN), secs(1));
    assert!(v.forward().unwrap().created);
    assert_eq!(to(v), "192.168.1.1", "the template still sends its client to the overloaded server");
    assert_eq!(to(ipvs.process_in(&tcp_pkt("2.2.2.2:1000", SYN), secs(2))), "192.168.1.2");
    assert_eq!(to(ipvs.process_in(&tcp_pkt("3.3.3.3:1000", SYN), secs(2))), "192.168.1.2");
    assert_eq!(counts(&ipvs, "192.168.1.1"), (2, 0, 1));
    ipvs.check_conns();
}

#[test]
fn ipv6_netmask_prefix_groups_clients() {
    // §2.2: -M for IPv6 is a prefix length: snet = saddr masked to the prefix; §2.1: a netmask of
    // the other family than the service is EINVAL.
    let vip6 = "2001:db8::100";
    let k = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip(vip6), port: 80 };
    let mut ipvs = Ipvs::new();
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.persistent = Some(600);
    c.netmask = crate::addr::Netmask::parse("64", true).unwrap();
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &k, "2001:db8:ff::1", FwdMethod::Route);
    server(&mut ipvs, &k, "2001:db8:ff::2", FwdMethod::Route);
    let p = |client: &str| PacketMeta::tcp(sa(client), sa(&format!("[{vip6}]:80")), SYN);
    let a = to(ipvs.process_in(&p("[2001:db8:1:2::1]:1000"), secs(0)));
    let b = to(ipvs.process_in(&p("[2001:db8:1:2:ffff::ff]:2000"), secs(1)));
    let other = to(ipvs.process_in(&p("[2001:db8:1:3::1]:3000"), secs(2)));
    assert_eq!(a, b, "same /64, same server");
    assert_ne!(a, other);
    let mut nets: Vec<IpAddr> = templates(&ipvs, secs(2)).iter().map(|t| t.caddr).collect();
    nets.sort();
    assert_eq!(nets, [ip("2001:db8:1:2::"), ip("2001:db8:1:3::")]);
    ipvs.check_conns();

    // Family mismatch between key and netmask.
    let mut v4 = ServiceConfig::new(key(Protocol::Tcp, 81));
    v4.persistent = Some(60);
    v4.netmask = crate::addr::Netmask::parse("64", true).unwrap();
    assert_eq!(ipvs.add_service(v4).unwrap_err().code(), crate::error::Code::Invalid);
    let mut v6 = ServiceConfig::new(ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip(vip6), port: 81 });
    v6.persistent = Some(60);
    v6.netmask = crate::addr::Netmask::parse("255.255.255.0", false).unwrap();
    assert_eq!(ipvs.add_service(v6).unwrap_err().code(), crate::error::Code::Invalid);
}

#[test]
fn persistent_nat_and_fwmark_real_server_ports() {
    // §2.2: normal persistent service: conn and template dport = RS port; fwmark persistent
    // service: the RS port is not used (dport = packet dport, template dport 0); non-persistent
    // fwmark service: dport = dest.port ? dest.port : vport.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", Some(300));
    server_port(&mut ipvs, &k, "192.168.1.1", FwdMethod::Masq, 8080);
    let f = *ipvs.process_in(&tcp_pkt("1.1.1.1:1000", SYN), secs(0)).forward().unwrap();
    assert_eq!((f.daddr, f.dport, f.fwd), (ip("192.168.1.1"), 8080, FwdMethod::Masq));
    let t = templates(&ipvs, secs(0));
    assert_eq!((t.len(), t[0].vport, t[0].dport), (1, 80, 8080));
    let c = conn(&ipvs, 1000, secs(0)).unwrap();
    assert_eq!((c.vport, c.dport), (80, 8080));

    let pm = ServiceKey::Fwmark { mark: 1, family: Family::Inet };
    service(&mut ipvs, pm, "rr", Some(300));
    server_port(&mut ipvs, &pm, "192.168.1.2", FwdMethod::Masq, 8080);
    let marked = PacketMeta::tcp(sa("2.2.2.2:1000"), sa("10.0.0.1:80"), SYN).with_fwmark(1);
    let f = *ipvs.process_in(&marked, secs(0)).forward().unwrap();
    assert_eq!((f.daddr, f.dport), (ip("192.168.1.2"), 80));
    let t: Vec<ConnInfo> = templates(&ipvs, secs(0)).into_iter().filter(|t| t.protocol == 0).collect();
    assert_eq!((t.len(), t[0].vport, t[0].dport), (1, 0, 0));

    let nm = ServiceKey::Fwmark { mark: 2, family: Family::Inet };
    service(&mut ipvs, nm, "rr", None);
    server_port(&mut ipvs, &nm, "192.168.1.3", FwdMethod::Masq, 8080);
    let marked = PacketMeta::tcp(sa("3.3.3.3:1000"), sa("10.0.0.1:80"), SYN).with_fwmark(2);
    let f = *ipvs.process_in(&marked, secs(0)).forward().unwrap();
    assert_eq!((f.daddr, f.dport), (ip("192.168.1.3"), 8080));
    // The same service with a server without port: the packet's port.
    let nz = ServiceKey::Fwmark { mark: 3, family: Family::Inet };
    service(&mut ipvs, nz, "rr", None);
    server(&mut ipvs, &nz, "192.168.1.4", FwdMethod::Masq);
    let marked = PacketMeta::tcp(sa("3.3.3.3:1001"), sa("10.0.0.1:443"), SYN).with_fwmark(3);
    let f = *ipvs.process_in(&marked, secs(0)).forward().unwrap();
    assert_eq!((f.daddr, f.dport), (ip("192.168.1.4"), 443));
    ipvs.check_conns();
}

#[test]
fn found_template_keeps_its_timeout_after_persistence_edit() {
    // §2.2: ct.timeout = svc.timeout only when the template is created; a found template's timeout
    // is never reset from svc->timeout, so after -E -p 60 it is still re-armed with 300 s, while a
    // new client's template gets 60 s.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", Some(300));
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    ipvs.process_in(&tcp_pkt("1.1.1.1:1000", SYN), secs(0));
    assert_eq!(templates(&ipvs, secs(0))[0].expires.as_secs(), 300);
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.persistent = Some(60);
    ipvs.edit_service(c).unwrap();
    ipvs.process_in(&tcp_pkt("1.1.1.1:1001", SYN), secs(20));
    let t = templates(&ipvs, secs(20));
    assert_eq!((t.len(), t[0].controls, t[0].expires.as_secs()), (1, 2, 300));
    ipvs.process_in(&tcp_pkt("2.2.2.2:1000", SYN), secs(20));
    let t = templates(&ipvs, secs(20));
    let new = t.iter().find(|t| t.caddr == ip("2.2.2.2")).unwrap();
    assert_eq!(new.expires.as_secs(), 60);
    ipvs.check_conns();
}

#[test]
fn service_lookup_precedence() {
    // §2.1 ip_vs_service_find: (1) marked packets: fwmark table; (2) exact <proto, vaddr, vport>;
    // (3) TCP with a port-21 service and vport 20 or vport >= 1024: <TCP, vaddr, 21>; (4) port 0.
    let mut ipvs = Ipvs::new();
    let fm = ServiceKey::Fwmark { mark: 1, family: Family::Inet };
    service(&mut ipvs, fm, "rr", None);
    server(&mut ipvs, &fm, "192.168.1.1", FwdMethod::Route);
    let exact = key(Protocol::Tcp, 80);
    service(&mut ipvs, exact, "rr", None);
    server(&mut ipvs, &exact, "192.168.1.2", FwdMethod::Route);
    let zero = key(Protocol::Tcp, 0);
    service(&mut ipvs, zero, "rr", Some(300));
    server(&mut ipvs, &zero, "192.168.1.3", FwdMethod::Route);
    let ftp = key(Protocol::Tcp, 21);
    service(&mut ipvs, ftp, "rr", Some(300));
    server(&mut ipvs, &ftp, "192.168.1.4", FwdMethod::Route);
    // A fresh client for each packet so no template links two cases.
    let mut n = 0;
    let mut dest = |port: u16, mark: u32| {
        n += 1;
        let p = PacketMeta::tcp(sa(&format!("1.1.1.{n}:5000")), sa(&format!("{VIP}:{port}")), SYN);
        to(ipvs.process_in(&p.with_fwmark(mark), secs(0)))
    };
    assert_eq!(dest(80, 1), "192.168.1.1", "fwmark first");
    assert_eq!(dest(81, 1), "192.168.1.1");
    assert_eq!(dest(80, 2), "192.168.1.2", "mark without a service falls through");
    assert_eq!(dest(80, 0), "192.168.1.2", "exact beats port 0");
    assert_eq!(dest(81, 0), "192.168.1.3", "port 0 last");
    assert_eq!(dest(1023, 0), "192.168.1.3", "1023 is privileged: not FTP");
    assert_eq!(dest(1024, 0), "192.168.1.4", "1024 reaches the FTP service");
    assert_eq!(dest(20, 0), "192.168.1.4", "port 20 reaches the FTP service");
    assert_eq!(dest(21, 0), "192.168.1.4");
    // UDP never takes the FTP rule.
    let u = PacketMeta::udp(sa("1.1.1.99:5000"), sa(&format!("{VIP}:2000")));
    assert_eq!(ipvs.process_in(&u, secs(0)), InVerdict::Pass(PassReason::NoService));
    ipvs.check_conns();
}

#[test]
fn one_packet_applies_only_to_udp() {
    // §2.3: -o is applied only when the packet is UDP: TCP through an -o fwmark service gets a
    // normal hashed connection.
    let mut ipvs = Ipvs::new();
    let k = ServiceKey::Fwmark { mark: 5, family: Family::Inet };
    let mut c = ServiceConfig::new(k);
    c.scheduler = "rr".into();
    c.one_packet = true;
    ipvs.add_service(c).unwrap();
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
    let syn = PacketMeta::tcp(sa("1.1.1.1:1000"), sa("10.0.0.1:80"), SYN).with_fwmark(5);
    let f = *ipvs.process_in(&syn, secs(0)).forward().unwrap();
    assert!(f.created && f.conn.is_some());
    let ack = PacketMeta::tcp(sa("1.1.1.1:1000"), sa("10.0.0.1:80"), ACK).with_fwmark(5);
    let again = *ipvs.process_in(&ack, secs(1)).forward().unwrap();
    assert_eq!((again.created, again.conn), (false, f.conn));
    assert_eq!(state(&ipvs, 1000, secs(1)).0, "ESTABLISHED");
    let dns = PacketMeta::udp(sa("1.1.1.1:2000"), sa("10.0.0.1:53")).with_fwmark(5);
    assert!(ipvs.process_in(&dns, secs(1)).forward().unwrap().conn.is_none());
    assert_eq!(ipvs.connections(secs(1)).len(), 1);
    assert_eq!(ipvs.stats.counters().conns, 2);
    ipvs.check_conns();
}

#[test]
fn scheduler_edit_rebinds_and_same_scheduler_keeps_state() {
    // §1.1: init_service runs on creation or when -E changes the scheduler; §1.2/§1.3: rr starts
    // at the list head, wrr with cw = mw. An -E naming the same scheduler keeps its state.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    for (addr, w) in [("192.168.1.1", 1), ("192.168.1.2", 2), ("192.168.1.3", 3)] {
        let mut d = DestConfig::new(ip(addr));
        d.weight = w;
        ipvs.add_dest(&k, &d).unwrap();
    }
    let mut port = 1000;
    let mut picks = |ipvs: &mut Ipvs, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                port += 1;
                let a = to(ipvs.process_in(&tcp_pkt(&format!("1.1.1.1:{port}"), SYN), secs(0)));
                a.trim_start_matches("192.168.1.").to_owned()
            })
            .collect()
    };
    // List order .3 .2 .1 (newest first).
    assert_eq!(picks(&mut ipvs, 2), ["3", "2"]);
    let edit = |ipvs: &mut Ipvs, sched: &str| {
        let mut c = ServiceConfig::new(k);
        c.scheduler = sched.into();
        ipvs.edit_service(c).unwrap();
    };
    edit(&mut ipvs, "rr");
    assert_eq!(picks(&mut ipvs, 2), ["1", "3"], "same scheduler: rr pointer kept");
    edit(&mut ipvs, "wrr");
    // wrr init: di = 1, mw = 3, cw = 3: .3; cw 2: .3 .2; cw 1: .3 .2 .1.
    assert_eq!(picks(&mut ipvs, 7), ["3", "3", "2", "3", "2", "1", "3"]);
    edit(&mut ipvs, "wrr");
    assert_eq!(picks(&mut ipvs, 2), ["3", "2"], "same scheduler: wrr cw kept");
    edit(&mut ipvs, "rr");
    assert_eq!(picks(&mut ipvs, 1), ["3"], "rebound rr starts at the head");
    ipvs.check_conns();
}

#[test]
fn revived_server_keeps_its_connections() {
    // §3.5: re-adding a deleted dest to the same service revives it from the trash, keeping its
    // counters and connections: packets of its connection are forwarded again.
    let mut ipvs = Ipvs::new();
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), None, FwdMethod::Route);
    let c = "1.1.1.1:1000";
    let first = *ipvs.process_in(&tcp_pkt(c, SYN), secs(0)).forward().unwrap();
    let a = first.daddr.to_string();
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    ipvs.del_dest(&k, ip(&a), None, secs(1)).unwrap();
    assert_eq!(ipvs.process_in(&tcp_pkt(c, ACK), secs(2)), InVerdict::Drop(DropReason::DestUnavailable));
    assert_eq!(ipvs.trash_len(), 1);
    server(&mut ipvs, &k, &a, FwdMethod::Route);
    assert_eq!(ipvs.trash_len(), 0);
    let v = *ipvs.process_in(&tcp_pkt(c, ACK | PSH), secs(3)).forward().unwrap();
    assert_eq!((v.created, v.conn, v.daddr, v.dest), (false, first.conn, first.daddr, first.dest));
    assert_eq!(counts(&ipvs, &a), (1, 0, 0));
    assert_eq!(dest_of(&ipvs, &a).stats.counters().conns, 1, "counters kept");
    assert_eq!(state(&ipvs, 1000, secs(3)), ("ESTABLISHED", 900_000));
    ipvs.check_conns();
}

#[test]
fn expire_nodest_conn_reschedules_udp() {
    // §3.5: expire_nodest_conn = 1: a packet of a connection whose dest was deleted expires it and
    // is treated as new; a UDP datagram is always schedulable, so it goes to a live server.
    let mut ipvs = Ipvs::new();
    let k = rr_pair(&mut ipvs, key(Protocol::Udp, 53), None, FwdMethod::Route);
    let q = PacketMeta::udp(sa("1.1.1.1:4000"), sa(&format!("{VIP}:53")));
    let first = *ipvs.process_in(&q, secs(0)).forward().unwrap();
    ipvs.del_dest(&k, first.daddr, None, secs(1)).unwrap();
    assert_eq!(ipvs.process_in(&q, secs(2)), InVerdict::Drop(DropReason::DestUnavailable));
    ipvs.sysctl_mut().expire_nodest_conn = true;
    let v = *ipvs.process_in(&q, secs(3)).forward().unwrap();
    assert!(v.created);
    assert_ne!(v.daddr, first.daddr);
    let conns: Vec<ConnInfo> = ipvs.connections(secs(3));
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].daddr, v.daddr);
    assert_eq!(ipvs.stats.counters().conns, 2);
    ipvs.check_conns();
}

#[test]
fn weight_zero_reschedule_skips_controlled_and_covers_sctp_init() {
    // §3.5: with expire_nodest_conn = 1 a new connection attempt (TCP SYN / SCTP INIT) on an entry
    // to a weight-0 dest expires it and is rescheduled. Linux >= 5.16 ip_vs_in_hook tests
    // `cp && !cp->control` first, so connections controlled by a persistence template are kept.
    use super::sctp::chunk::{COOKIE_ECHO, INIT};
    let mut ipvs = Ipvs::new();
    ipvs.sysctl_mut().expire_nodest_conn = true;
    let k = rr_pair(&mut ipvs, key(Protocol::Tcp, 80), Some(300), FwdMethod::Route);
    let c = "1.1.1.1:1000";
    let first = *ipvs.process_in(&tcp_pkt(c, SYN), secs(0)).forward().unwrap();
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    let mut q = DestConfig::new(first.daddr);
    q.weight = 0;
    ipvs.edit_dest(&k, &q).unwrap();
    let v = *ipvs.process_in(&tcp_pkt(c, SYN), secs(1)).forward().unwrap();
    assert_eq!((v.created, v.conn, v.daddr), (false, first.conn, first.daddr));
    assert_eq!(state(&ipvs, 1000, secs(1)).0, "ESTABLISHED");
    assert_eq!(ipvs.stats.counters().conns, 1);
    ipvs.check_conns();

    // SCTP: INIT on an ESTABLISHED association to a weight-0 server.
    let mut ipvs = Ipvs::new();
    let k = rr_pair(&mut ipvs, key(Protocol::Sctp, 3868), None, FwdMethod::Route);
    let inp = |ch| PacketMeta::sctp(sa(c), sa(&format!("{VIP}:3868")), ch);
    let first = *ipvs.process_in(&inp(INIT), secs(0)).forward().unwrap();
    ipvs.process_in(&inp(COOKIE_ECHO), secs(0));
    assert_eq!(state(&ipvs, 1000, secs(0)).0, "ESTABLISHED");
    let mut q = DestConfig::new(first.daddr);
    q.weight = 0;
    ipvs.edit_dest(&k, &q).unwrap();
    // Without expire_nodest_conn the INIT stays on the entry (INPUT-ONLY init on ESTABLISHED).
    let v = *ipvs.process_in(&inp(INIT), secs(1)).forward().unwrap();
    assert_eq!((v.created, v.daddr), (false, first.daddr));
    assert_eq!(state(&ipvs, 1000, secs(1)).0, "ESTABLISHED");
    ipvs.sysctl_mut().expire_nodest_conn = true;
    let v = *ipvs.process_in(&inp(INIT), secs(2)).forward().unwrap();
    assert!(v.created);
    assert_ne!(v.daddr, first.daddr);
    assert_eq!(state(&ipvs, 1000, secs(2)), ("INIT1", 4_000));
    assert_eq!(counts(&ipvs, &first.daddr.to_string()), (0, 0, 0));
    ipvs.check_conns();
}

#[test]
fn conn_reuse_mode_fin_wait_bit_only_for_nooutput() {
    // §4.6: conn_reuse_mode bit 1 covers FIN_WAIT only with NOOUTPUT (DR/TUN); a NAT connection
    // in FIN_WAIT is not rescheduled even with mode 3 (FIN_WAIT + input syn → SYN_RECV, §4.3).
    let mut ipvs = Ipvs::new();
    ipvs.sysctl_mut().conn_reuse_mode = 3;
    rr_pair(&mut ipvs, key(Protocol::Tcp, 80), None, FwdMethod::Masq);
    let c = "1.1.1.1:1000";
    let first = *ipvs.process_in(&tcp_pkt(c, SYN), secs(0)).forward().unwrap();
    let out = |flags| PacketMeta::tcp(SocketAddr::new(first.daddr, 80), sa(c), flags);
    ipvs.process_out(&out(SYN | ACK), secs(0));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    // Server closes: ESTABLISHED + output fin → FIN_WAIT.
    ipvs.process_out(&out(FIN | ACK), secs(1));
    assert_eq!(state(&ipvs, 1000, secs(1)), ("FIN_WAIT", 120_000));
    let v = *ipvs.process_in(&tcp_pkt(c, SYN), secs(2)).forward().unwrap();
    assert_eq!((v.created, v.conn, v.daddr), (false, first.conn, first.daddr));
    assert_eq!(state(&ipvs, 1000, secs(2)).0, "SYN_RECV");
    assert_eq!(ipvs.stats.counters().conns, 1);
    ipvs.check_conns();
}

#[test]
fn overload_recomputed_only_when_thresholds_change() {
    // §3.4 (6.12): OVERLOAD is recomputed only when an add/edit changes u or l, and then
    // l_val <= total < u leaves it unchanged; an edit with the same thresholds never touches it.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    let mut a = DestConfig::new(ip("192.168.1.1"));
    a.u_threshold = 4;
    a.l_threshold = 2;
    ipvs.add_dest(&k, &a).unwrap();
    for p in 0..4 {
        let c = format!("1.1.1.1:{}", 100 + p);
        ipvs.process_in(&tcp_pkt(&c, SYN), secs(0));
        ipvs.process_in(&tcp_pkt(&c, ACK), secs(0));
    }
    assert!(dest_of(&ipvs, "192.168.1.1").overloaded);
    // One connection closes (RST → CLOSE, 10 s): 4 → 3, not below l = 2.
    ipvs.process_in(&tcp_pkt("1.1.1.1:100", RST), secs(1));
    ipvs.advance(secs(12));
    assert_eq!(dest_of(&ipvs, "192.168.1.1").totalconns, 3);
    assert!(dest_of(&ipvs, "192.168.1.1").overloaded);
    // Same thresholds, new weight: unchanged.
    a.weight = 5;
    ipvs.edit_dest(&k, &a).unwrap();
    assert!(dest_of(&ipvs, "192.168.1.1").overloaded);
    // -x 8 -y 2: 2 <= 3 < 8, unchanged; no new connection is scheduled to it.
    a.u_threshold = 8;
    ipvs.edit_dest(&k, &a).unwrap();
    assert!(dest_of(&ipvs, "192.168.1.1").overloaded);
    assert_eq!(
        ipvs.process_in(&tcp_pkt("2.2.2.2:1", SYN), secs(12)),
        InVerdict::Reject(RejectReason::NoDestination)
    );
    // -y 4: 3 < 4 clears.
    a.l_threshold = 4;
    ipvs.edit_dest(&k, &a).unwrap();
    assert!(!dest_of(&ipvs, "192.168.1.1").overloaded);
    assert_eq!(to(ipvs.process_in(&tcp_pkt("2.2.2.2:2", SYN), secs(12))), "192.168.1.1");
    ipvs.check_conns();
}

#[test]
fn mh_weight_edit_rebuilds_like_a_fresh_service() {
    // §1.13: -e to another non-zero weight sets last_weight and reassigns the Maglev table, so
    // every client maps as on a service built with the new weights; §3.5: -w 0 keeps last_weight.
    let mut ipvs = Ipvs::new();
    let edited = key(Protocol::Tcp, 80);
    // Same port on another VIP: mh hashes the server's address and port.
    let fresh = ServiceKey::Addr { protocol: Protocol::Tcp, addr: ip("10.0.0.101"), port: 80 };
    service(&mut ipvs, edited, "mh", None);
    service(&mut ipvs, fresh, "mh", None);
    for (k, w2) in [(edited, 1), (fresh, 3)] {
        server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Route);
        let mut d = DestConfig::new(ip("192.168.1.2"));
        d.weight = w2;
        ipvs.add_dest(&k, &d).unwrap();
    }
    let picks = |ipvs: &mut Ipvs, vip: &str, round: u16| -> Vec<String> {
        (0..200u32)
            .map(|i| {
                let client = SocketAddr::new(IpAddr::from([172, 16, (i >> 8) as u8, i as u8]), 1000 + round);
                to(ipvs.process_in(&PacketMeta::tcp(client, sa(&format!("{vip}:80")), SYN), secs(0)))
            })
            .collect()
    };
    let before = picks(&mut ipvs, VIP, 0);
    let mut d = DestConfig::new(ip("192.168.1.2"));
    d.weight = 3;
    ipvs.edit_dest(&edited, &d).unwrap();
    let after = picks(&mut ipvs, VIP, 1);
    assert_ne!(before, after);
    assert_eq!(after, picks(&mut ipvs, "10.0.0.101", 2));
    // Weight 0 then back to 3: last_weight stayed 3, the table is the same.
    d.weight = 0;
    ipvs.edit_dest(&edited, &d).unwrap();
    d.weight = 3;
    ipvs.edit_dest(&edited, &d).unwrap();
    assert_eq!(after, picks(&mut ipvs, VIP, 3));
    ipvs.check_conns();
}

#[test]
fn secure_tcp_uses_the_dos_table() {
    // §4.6 secure_tcp: 0 off, 1/2 automatic (only under memory pressure, which never happens
    // here), 3 always; §4.3: then tcp_states_dos drives the states: NAT stays SYNACK (120 s,
    // active in 6.12) until the real server's ACK; DR goes SYN → SYNACK → ESTABLISHED.
    let mut ipvs = Ipvs::new();
    let k = key(Protocol::Tcp, 80);
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.1", FwdMethod::Masq);
    assert_eq!(ipvs.sysctl().secure_tcp, 0);
    ipvs.sysctl_mut().secure_tcp = 1;
    let c = "1.1.1.1:1000";
    let out = |c: &str, flags| PacketMeta::tcp(sa("192.168.1.1:80"), sa(c), flags);
    ipvs.process_in(&tcp_pkt(c, SYN), secs(0));
    ipvs.process_out(&out(c, SYN | ACK), secs(0));
    assert_eq!(state(&ipvs, 1000, secs(0)).0, "SYN_RECV", "mode 1 without memory pressure: normal table");
    ipvs.process_in(&tcp_pkt(c, ACK), secs(0));
    assert_eq!(state(&ipvs, 1000, secs(0)).0, "ESTABLISHED");

    ipvs.sysctl_mut().secure_tcp = 3;
    let c = "1.1.1.1:2000";
    ipvs.process_in(&tcp_pkt(c, SYN), secs(1));
    assert_eq!(state(&ipvs, 2000, secs(1)), ("SYN_RECV", 60_000));
    ipvs.process_out(&out(c, SYN | ACK), secs(1));
    assert_eq!(state(&ipvs, 2000, secs(1)), ("SYNACK", 120_000));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(2));
    assert_eq!(state(&ipvs, 2000, secs(2)), ("SYNACK", 120_000));
    assert_eq!(counts(&ipvs, "192.168.1.1"), (2, 0, 0), "SYNACK is active");
    ipvs.process_out(&out(c, ACK), secs(3));
    assert_eq!(state(&ipvs, 2000, secs(3)), ("ESTABLISHED", 900_000));
    ipvs.check_conns();

    let mut ipvs = Ipvs::new();
    ipvs.sysctl_mut().secure_tcp = 3;
    service(&mut ipvs, k, "rr", None);
    server(&mut ipvs, &k, "192.168.1.2", FwdMethod::Route);
    ipvs.process_in(&tcp_pkt(c, SYN), secs(0));
    assert_eq!(state(&ipvs, 2000, secs(0)), ("SYNACK", 120_000));
    ipvs.process_in(&tcp_pkt(c, ACK), secs(1));
    assert_eq!(state(&ipvs, 2000, secs(1)), ("ESTABLISHED", 900_000));
    ipvs.sysctl_mut().secure_tcp = 0;
    ipvs.process_in(&tcp_pkt(c, FIN), secs(2));
    assert_eq!(state(&ipvs, 2000, secs(2)), ("FIN_WAIT", 120_000));
    ipvs.check_conns();
}
