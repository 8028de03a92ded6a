//! `lvs-tun-decap` end to end, in two private network namespaces joined by a
//! veth pair: a sender writes IP-in-IP packets (all four kinds: 4in4, 6in4,
//! 4in6, 6in6) carrying UDP to a VIP; the decapsulator on the server hands the
//! inner packets to the kernel through a TUN device; a UDP echo service bound
//! to the VIP (on `lo`, DR-style) answers, and the answers reach the sender
//! directly, from the VIP. Malformed tunnel packets in between must not stop
//! it. Needs root; skips with a message otherwise. Every wait is bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{in_netns, skip, spawn_in_netns, Netns};
use lvs_dataplane::decap::ipv4_checksum;

const SND4: Ipv4Addr = Ipv4Addr::new(10, 91, 0, 1);
const SRV4: Ipv4Addr = Ipv4Addr::new(10, 91, 0, 2);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 91, 9, 9);
const SND6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 0, 0, 0, 0, 0, 1);
const SRV6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 0, 0, 0, 0, 0, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 9, 0, 0, 0, 0, 9);
const ECHO_PORT: u16 = 7007;
/// Datagrams per tunnel kind.
const PER_KIND: usize = 25;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn write_sysctl(path: &str, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("write {value} to {path}: {e}"));
}

/// Waits (bounded) until the devices report operstate UP: until the kernel's
/// link watch has activated their queues, frames (ARP, ND) may be dropped.
fn wait_up(devs: &[(&str, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for (ns, dev) in devs {
        loop {
            let out =
                Command::new("ip").args(["-n", ns, "-o", "link", "show", "dev", dev]).output().expect("ip");
            if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                break;
            }
            assert!(Instant::now() < deadline, "{dev} in {ns} did not come up within 5 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Kills the child (SIGKILL) if the test did not stop it.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    match !(acc as u16) {
        0 => 0xffff,
        v => v,
    }
}

fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = Vec::with_capacity(len as usize);
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&len.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&u32::from(len).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
        _ => panic!("mixed families"),
    }
    let sum = fold(sum16(&u, sum16(&pseudo, 0)));
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    u
}

/// A complete inner IP/UDP packet from `src` to `dst`.
fn inner_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let u = udp(src, dst, payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + u.len()) as u16;
            let mut p = vec![0x45, 0, 0, 0, 0x4c, 0x56, 0, 0, 64, 17, 0, 0];
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let c = ipv4_checksum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p.extend_from_slice(&u);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(u.len() as u16).to_be_bytes());
            p.extend_from_slice(&[17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&u);
            p
        }
        _ => panic!("mixed families"),
    }
}

/// A raw socket whose packets the kernel wraps in an IPv4 or IPv6 header with
/// protocol `proto`: the payload we pass is the inner packet.
struct Raw(OwnedFd);

impl Raw {
    fn open(v6: bool, proto: i32) -> Raw {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain system call with integer arguments.
        let fd = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh descriptor nothing else owns.
        Raw(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn send_to(&self, payload: &[u8], to: IpAddr) {
        let rc = match to {
            IpAddr::V4(a) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: valid buffer and sockaddr_in of the stated size.
                unsafe {
                    libc::sendto(
                        self.0.as_raw_fd(),
                        payload.as_ptr().cast(),
                        payload.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                }
            }
            IpAddr::V6(a) => {
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: 0,
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr { s6_addr: a.octets() },
                    sin6_scope_id: 0,
                };
                // SAFETY: valid buffer and sockaddr_in6 of the stated size.
                unsafe {
                    libc::sendto(
                        self.0.as_raw_fd(),
                        payload.as_ptr().cast(),
                        payload.len(),
                        0,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    )
                }
            }
        };
        assert!(rc >= 0, "sendto {to}: {}", std::io::Error::last_os_error());
    }
}

/// UDP echo on `addr` until `stop` or `deadline`; answers `echo:` + payload.
fn echo_server(addr: SocketAddr, ready: &AtomicBool, stop: &AtomicBool) -> usize {
    let sock = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind echo server to {addr}: {e}"));
    sock.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
    ready.store(true, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 2048];
    let mut answered = 0;
    while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            sock.send_to(&reply, from).expect("echo reply");
            answered += 1;
        }
    }
    answered
}

#[test]
fn decapsulated_udp_reaches_a_vip_service_and_replies_go_direct() {
    if skip("decapsulated_udp_reaches_a_vip_service_and_replies_go_direct") {
        return;
    }
    let pid = std::process::id();
    let snd = Netns::add(format!("lvstun-{pid}-snd"));
    let srv = Netns::add(format!("lvstun-{pid}-srv"));
    // No duplicate address detection: until a link-local address has passed
    // it, neighbour discovery has no source address and waits (about 2 s).
    for ns in [&snd, &srv] {
        in_netns(&ns.name, || {
            for k in ["all", "default"] {
                write_sysctl(&format!("/proc/sys/net/ipv6/conf/{k}/accept_dad"), "0");
            }
        });
    }
    ip(&["-n", &snd.name, "link", "add", "s0", "type", "veth", "peer", "name", "r0", "netns", &srv.name]);
    for (ns, dev, a4, a6) in [(&snd.name, "s0", SND4, SND6), (&srv.name, "r0", SRV4, SRV6)] {
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "addr", "add", &format!("{a4}/24"), "dev", dev]);
        ip(&["-n", ns, "addr", "add", &format!("{a6}/64"), "dev", dev, "nodad"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    wait_up(&[(&snd.name, "s0"), (&srv.name, "r0")]);
    // The real server: VIPs on lo, no ARP for them, no reverse-path filter.
    ip(&["-n", &srv.name, "addr", "add", &format!("{VIP4}/32"), "dev", "lo"]);
    // The sender's routes to the VIPs lead to the server, as a client's default
    // route would: the server may resolve the sender's address with the VIP as
    // source (IPv6 has no arp_announce), and the answer must find its way back.
    // The IPv4 route also carries the "not ours" case (outer destination = VIP).
    ip(&["-n", &snd.name, "route", "add", &format!("{VIP4}/32"), "via", &SRV4.to_string()]);
    ip(&["-n", &snd.name, "-6", "route", "add", &format!("{VIP6}/128"), "via", &SRV6.to_string()]);
    ip(&["-n", &srv.name, "addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"]);
    in_netns(&srv.name, || {
        for (k, v) in [
            ("ipv4/conf/all/arp_ignore", "1"),
            ("ipv4/conf/all/arp_announce", "2"),
            ("ipv4/conf/all/rp_filter", "0"),
            ("ipv4/conf/default/rp_filter", "0"),
            ("ipv4/conf/r0/rp_filter", "0"),
        ] {
            write_sysctl(&format!("/proc/sys/net/{k}"), v);
        }
    });
    // Without a tunnel module the kernel would answer every tunnel packet
    // with ICMP; drop them at input (AF_PACKET has seen them by then).
    // System directories only: under `npm test`, PATH starts with node_modules/.bin, whose `nft`
    // is @vercel/nft.
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/local/sbin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if let Some(nft) = nft {
        let rules = "table inet lvs_tun {\n  counter tunnel {}\n  chain input {\n    type filter hook input \
                     priority 0;\n    meta l4proto { 4, 41 } counter name tunnel drop\n  }\n}\n";
        let mut c = Command::new("ip")
            .args(["netns", "exec", &srv.name, nft, "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft");
        std::io::Write::write_all(c.stdin.as_mut().expect("stdin"), rules.as_bytes()).expect("write rules");
        drop(c.stdin.take());
        assert!(c.wait().expect("nft").success(), "nft -f failed");
    } else {
        eprintln!("note: nft not installed; the server's kernel will send ICMP protocol-unreachable");
    }

    let bin = env!("CARGO_BIN_EXE_lvs-tun-decap");
    let child = Command::new("ip")
        .args(["netns", "exec", &srv.name, bin, "--iface", "r0", "--tun", "lvstun0"])
        .args(["--local", &SRV4.to_string(), "--local", &SRV6.to_string(), "--max-seconds", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lvs-tun-decap");
    let mut child = ChildGuard(child);
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let stderr = child.0.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  [decap] {line}");
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = line_rx.recv_timeout(Duration::from_secs(10)).expect("lvs-tun-decap did not start in 10 s");
    assert!(ready.contains("ready"), "unexpected first line: {ready}");

    let stop = AtomicBool::new(false);
    let (ready4, ready6) = (AtomicBool::new(false), AtomicBool::new(false));
    let received = std::thread::scope(|s| {
        let e4 = spawn_in_netns(s, &srv.name, || echo_server((VIP4, ECHO_PORT).into(), &ready4, &stop));
        let e6 = spawn_in_netns(s, &srv.name, || echo_server((VIP6, ECHO_PORT).into(), &ready6, &stop));
        common::wait_flag(&ready4, Duration::from_secs(5), "IPv4 echo server");
        common::wait_flag(&ready6, Duration::from_secs(5), "IPv6 echo server");
        let result = in_netns(&snd.name, sender);
        stop.store(true, Ordering::Release);
        let answered = e4.join().expect("echo4") + e6.join().expect("echo6");
        (result, answered)
    });
    let ((received, sent), answered) = received;
    assert_eq!(received, 4 * PER_KIND, "every datagram was echoed from the VIP");
    assert_eq!(answered as u64, sent.iter().sum::<u64>(), "the echo servers saw every valid tunnel packet");

    // Graceful stop: SIGTERM, then the summary line and exit status 0.
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(st) = child.0.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "lvs-tun-decap did not exit within 5 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    reader.join().expect("stderr reader");
    let lines: Vec<String> = line_rx.try_iter().collect();
    let summary = lines.iter().find(|l| l.contains("exit (signal)")).expect("summary line");
    let field = |name: &str| -> u64 {
        let key = format!(" {name}=");
        let rest =
            &summary[summary.find(&key).unwrap_or_else(|| panic!("{name} in {summary}")) + key.len()..];
        rest.split(' ').next().and_then(|v| v.parse().ok()).expect("number")
    };
    for (i, k) in ["4in4", "6in4", "4in6", "6in6"].into_iter().enumerate() {
        assert_eq!(field(k), sent[i], "{k}: {summary}");
    }
    assert_eq!(field("delivered"), sent.iter().sum::<u64>());
    assert!(field("malformed") >= 3, "{summary}");
    assert!(field("not_local") >= 1, "{summary}");
    assert_eq!(field("tun_errors"), 0);
    assert!(lines.iter().any(|l| l.contains("malformed tunnel packet")), "malformed packets are logged");
    if let Some(nft) = nft {
        let out = Command::new("ip")
            .args(["netns", "exec", &srv.name, nft, "list", "counter", "inet", "lvs_tun", "tunnel"])
            .output()
            .expect("nft list");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("packets 0 "), "the input rule saw the tunnel packets: {text}");
    }
    drop(child);
    drop(srv);
    drop(snd);
}

/// Runs in the sender namespace: warm-up, garbage, then PER_KIND datagrams
/// of each tunnel kind, each answered before the next is sent. Returns the
/// number of verified echoes (not counting warm-ups) and the number of valid
/// tunnel packets sent per kind (warm-ups and retries included).
fn sender() -> (usize, [u64; 4]) {
    let reply4 = UdpSocket::bind((SND4, 0)).expect("bind reply socket v4");
    let reply6 = UdpSocket::bind((SND6, 0)).expect("bind reply socket v6");
    for s in [&reply4, &reply6] {
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    }
    let local4: SocketAddr = reply4.local_addr().expect("addr");
    let local6: SocketAddr = reply6.local_addr().expect("addr");
    let vip4: SocketAddr = (VIP4, ECHO_PORT).into();
    let vip6: SocketAddr = (VIP6, ECHO_PORT).into();
    // (name, outer is IPv6, protocol, outer destination, inner is IPv6)
    let kinds = [
        ("4in4", false, 4, IpAddr::V4(SRV4), false),
        ("6in4", false, 41, IpAddr::V4(SRV4), true),
        ("4in6", true, 4, IpAddr::V6(SRV6), false),
        ("6in6", true, 41, IpAddr::V6(SRV6), true),
    ];
    let raws: Vec<Raw> = kinds.iter().map(|k| Raw::open(k.1, k.2)).collect();
    let mut sent = [0u64; 4];
    let mut exchange = |kind: usize, payload: &[u8], tries: u32| -> bool {
        let (_, _, _, outer, inner_v6) = kinds[kind];
        let raw = &raws[kind];
        let (from, to, sock) = if inner_v6 { (local6, vip6, &reply6) } else { (local4, vip4, &reply4) };
        let pkt = inner_packet(from, to, payload);
        let mut expect = b"echo:".to_vec();
        expect.extend_from_slice(payload);
        for _ in 0..tries {
            raw.send_to(&pkt, outer);
            sent[kind] += 1;
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                let mut got = [0u8; 2048];
                match sock.recv_from(&mut got) {
                    Ok((n, src)) if got[..n] == expect[..] => {
                        assert_eq!(src, to, "the reply comes straight from the VIP");
                        return true;
                    }
                    Ok(_) => {} // a late answer to an earlier try
                    Err(_) => break,
                }
            }
        }
        false
    };
    // Warm-up (neighbour resolution), one per kind, retried a few times.
    for (i, k) in kinds.iter().enumerate() {
        assert!(exchange(i, format!("warm-{}", k.0).as_bytes(), 5), "no echo for {}", k.0);
    }
    // Garbage that must be skipped, not crash anything: a truncated inner
    // header, an IPv4 packet behind protocol 41, an inner length past the
    // end, and a well-formed packet for an address that is not ours.
    raws[0].send_to(&[0x45, 0, 0], IpAddr::V4(SRV4));
    raws[1].send_to(&inner_packet(local4, vip4, b"mismatch"), IpAddr::V4(SRV4));
    let mut long = inner_packet(local4, vip4, b"long");
    long[2..4].copy_from_slice(&1400u16.to_be_bytes());
    raws[0].send_to(&long, IpAddr::V4(SRV4));
    // To the server's VIP itself: the decapsulator only takes --local addresses.
    raws[0].send_to(&inner_packet(local4, vip4, b"not-local"), IpAddr::V4(VIP4));
    let mut ok = 0;
    for i in 0..PER_KIND {
        for (j, k) in kinds.iter().enumerate() {
            if exchange(j, format!("{}-{i}", k.0).as_bytes(), 1) {
                ok += 1;
            }
        }
    }
    (ok, sent)
}
