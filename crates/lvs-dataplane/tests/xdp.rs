//! The AF_XDP path end to end (root only): client ⇄ director ⇄ real server in three namespaces
//! joined by veth pairs, the director running the engine with `xdp: true` (native XDP on veth).
//! A UDP echo through a NAT service crosses the XDP program, the AF_XDP sockets (RX and TX, both
//! ways: the reply comes back as transit traffic) and needs the ARP tap (the client resolves the
//! VIP, the engine resolves client and real server). Traffic for the host itself (ping, ARP for
//! the host's address) must still reach the kernel, and stopping the runtime detaches XDP.

mod common;

use common::{in_netns, skip, spawn_in_netns, Netns};
use lvs_core::engine::{Engine, EngineConfig, Interface};
use lvs_core::model::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use lvs_core::time::Instant;
use lvs_core::Ipvs;
use lvs_dataplane::runtime::{Runtime, RuntimeOptions};
use lvs_dataplane::xdp::XdpMode;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "`ip {}`: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn link_shows_xdp(ns: &str, dev: &str) -> bool {
    let out = Command::new("ip").args(["-n", ns, "link", "show", "dev", dev]).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

/// The engine's view of a veth end (sysfs shows the test's own namespace, so not from there).
fn iface(ns: &str, dev: &str, addr: &str) -> Interface {
    let out =
        Command::new("ip").args(["-n", ns, "-br", "link", "show", "dev", dev]).output().expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text.split_whitespace().nth(2).and_then(|m| m.parse().ok()).expect("a MAC address");
    let index = lvs_dataplane::iface::ifindex(dev).expect("ifindex");
    Interface::new(index, dev, mac, 1500).with_addr(addr.parse().expect("xdp test"), 24)
}

const VIP: &str = "10.77.1.100";

/// Echoes datagrams on `addr` until `stop` (200 ms read timeout); returns how many.
fn udp_echo(addr: &str, stop: &AtomicBool) -> usize {
    let sock = UdpSocket::bind(addr).expect("xdp test");
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("xdp test");
    let mut buf = [0u8; 2048];
    let mut served = 0;
    while !stop.load(Ordering::Acquire) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            sock.send_to(&buf[..n], from).expect("xdp test");
            served += 1;
        }
    }
    served
}

/// Sends up to 20 datagrams to `to` (500 ms for each answer: the first ones wait for ARP) and
/// counts correct answers from `to` itself, stopping at five.
fn echoes(to: SocketAddr) -> usize {
    let sock = UdpSocket::bind("10.77.1.2:0").expect("xdp test");
    sock.set_read_timeout(Some(Duration::from_millis(500))).expect("xdp test");
    let mut ok = 0;
    let mut buf = [0u8; 2048];
    for i in 0..20 {
        let msg = format!("xdp {i}");
        sock.send_to(msg.as_bytes(), to).expect("xdp test");
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            assert_eq!(from, to, "the answer comes from {to} (for the VIP: NAT undone)");
            assert_eq!(&buf[..n], msg.as_bytes());
            ok += 1;
            if ok == 5 {
                break;
            }
        }
    }
    ok
}

#[test]
fn xdp_path_forwards_nat_both_ways_and_leaves_host_traffic_to_the_kernel() {
    if skip("xdp_path_forwards_nat_both_ways_and_leaves_host_traffic_to_the_kernel") {
        return;
    }
    let id = std::process::id() % 100_000;
    let (c, d, r) =
        (Netns::add(format!("xd{id}c")), Netns::add(format!("xd{id}d")), Netns::add(format!("xd{id}r")));
    let (c0, d0, d1, r0) =
        (format!("xd{id}c0"), format!("xd{id}d0"), format!("xd{id}d1"), format!("xd{id}r0"));
    ip(&["-n", &c.name, "link", "add", &c0, "type", "veth", "peer", "name", &d0, "netns", &d.name]);
    ip(&["-n", &d.name, "link", "add", &d1, "type", "veth", "peer", "name", &r0, "netns", &r.name]);
    for (ns, dev, addr) in [
        (&c.name, &c0, "10.77.1.2/24"),
        (&d.name, &d0, "10.77.1.1/24"),
        (&d.name, &d1, "10.77.2.1/24"),
        (&r.name, &r0, "10.77.2.2/24"),
    ] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    // Complete checksums on the wire (veth would otherwise leave them to a later "offload").
    for (ns, dev) in [(&c.name, &c0), (&r.name, &r0)] {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ethtool -K {dev} tx off");
    }
    ip(&["-n", &c.name, "route", "add", "default", "via", "10.77.1.1"]);
    ip(&["-n", &r.name, "route", "add", "default", "via", "10.77.2.1"]);
    in_netns(&d.name, || std::fs::write("/proc/sys/net/ipv4/ip_forward", "0").expect("ip_forward"));

    let start = std::time::Instant::now();
    let clock = Arc::new(move || Instant::from_millis(start.elapsed().as_millis() as u64));
    let (engine, runtime) = in_netns(&d.name, || {
        let ifs = vec![iface(&d.name, &d0, "10.77.1.1"), iface(&d.name, &d1, "10.77.2.1")];
        let routes = lvs_dataplane::iface::routes(&ifs).expect("routes");
        let cfg = EngineConfig { interfaces: ifs, routes, ..EngineConfig::default() };
        let mut ipvs = Ipvs::new();
        let vip: IpAddr = VIP.parse().expect("xdp test");
        let key = ServiceKey::Addr { protocol: Protocol::Udp, addr: vip, port: 9 };
        ipvs.add_service(ServiceConfig { scheduler: "rr".into(), ..ServiceConfig::new(key) })
            .expect("xdp test");
        let dest =
            DestConfig { fwd: FwdMethod::Masq, ..DestConfig::new("10.77.2.2".parse().expect("xdp test")) };
        ipvs.add_dest(&key, &dest).expect("xdp test");
        let engine = Arc::new(Mutex::new(Engine::new(cfg, ipvs).expect("xdp test")));
        let opts =
            RuntimeOptions { interfaces: vec![d0.clone(), d1.clone()], xdp: true, ..Default::default() };
        let rt = Runtime::start(engine.clone(), clock, &opts).expect("start the XDP runtime");
        (engine, rt)
    });
    assert_eq!(
        runtime.xdp_modes(),
        &[(d0.clone(), XdpMode::Native), (d1.clone(), XdpMode::Native)],
        "veth runs XDP in the driver"
    );
    assert!(link_shows_xdp(&d.name, &d0) && link_shows_xdp(&d.name, &d1));

    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // The real server echoes (bounded: stops with the flag, 200 ms read timeout).
        let echo = spawn_in_netns(s, &r.name, || udp_echo("0.0.0.0:9", &stop));
        // The director's own stack echoes on its own address (not a VIP: the kernel's traffic).
        let host_echo = spawn_in_netns(s, &d.name, || udp_echo("10.77.1.1:7", &stop));
        let replies = in_netns(&c.name, || {
            let vip: SocketAddr = format!("{VIP}:9").parse().expect("xdp test");
            let host: SocketAddr = "10.77.1.1:7".parse().expect("xdp test");
            (echoes(vip), echoes(host))
        });
        stop.store(true, Ordering::Release);
        let served = echo.join().expect("xdp test");
        let host_served = host_echo.join().expect("xdp test");
        let counters: Vec<String> = {
            let e = engine.lock().expect("xdp test");
            e.counters().iter().filter(|(_, v)| *v > 0).map(|(k, v)| format!("{k}={v}")).collect()
        };
        assert!(served >= 5 && replies.0 == 5, "served {served}, replies {replies:?}; engine: {counters:?}");
        assert!(host_served >= 5 && replies.1 == 5, "the host's own address: {host_served} {replies:?}");
    });

    {
        let e = engine.lock().expect("xdp test");
        let n = |k: &str| e.counters().get(k).unwrap_or(0);
        assert!(n("rx_frames") >= 10, "the engine saw the echoes: {}", n("rx_frames"));
        // The client's address was learnt from its ARP request (through the tap).
        let ifindex0 = e.config().interfaces[0].index;
        assert!(e.neighbour(ifindex0, "10.77.1.2".parse().expect("xdp test")).is_some());
    }
    runtime.stop().expect("workers end cleanly");
    assert!(!link_shows_xdp(&d.name, &d0) && !link_shows_xdp(&d.name, &d1), "stop detaches XDP");
}

#[test]
fn xdp_start_fails_clearly_on_a_missing_interface() {
    let engine = Arc::new(Mutex::new(Engine::new(EngineConfig::default(), Ipvs::new()).expect("xdp test")));
    let opts = RuntimeOptions { interfaces: vec!["xdnope0".into()], xdp: true, ..Default::default() };
    let err = Runtime::start(engine, Arc::new(|| Instant::ZERO), &opts).unwrap_err();
    assert!(err.to_string().contains("xdnope0"), "{err}");
}
