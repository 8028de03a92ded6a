//! `lvs-tun-decap`: user-space decapsulation for LVS/TUN real servers (IPIP,
//! and GUE / GRE for `ipvsadm --tun-type gue|gre`).
//!
//! A real server behind an LVS director in tunnelling mode receives the
//! client's packets wrapped in an outer IP header addressed to itself. The
//! kernel normally unwraps them in its `ipip` / `ip6_tunnel` / `sit` drivers;
//! where those modules are missing, this tool does it instead: it watches the
//! interface with an `AF_PACKET` RX ring (which sees frames before the IP
//! stack), takes the inner packet out of every IPv4 protocol-4/41 and IPv6
//! next-header-4/41 packet addressed to this host, and writes it into a TUN
//! device, so the kernel delivers it to the service bound to the VIP. Replies
//! leave directly to the client, as in direct routing.
//!
//! The real server is set up as for DR: the VIP on `lo`, `arp_ignore=1`,
//! `arp_announce=2`, and reverse-path filtering off (`rp_filter=0` on `all`
//! and on the TUN device: the inner packets arrive there with the client's
//! source address). Without a tunnel module the kernel itself answers each
//! tunnel packet with ICMP "protocol unreachable" (IPv6: parameter problem);
//! to silence that, drop them in the input hook, which runs after AF_PACKET
//! has taken its copy:
//!
//! ```text
//! nft add table inet lvs_tun
//! nft add chain inet lvs_tun input '{ type filter hook input priority 0; }'
//! nft add rule inet lvs_tun input meta l4proto '{ 4, 41 }' drop
//! ```
//!
//! GUE and GRE, which have no kernel driver here either (`fou`, `ip_gre`),
//! arrive through sockets instead: `--gue PORT` binds a dual-stack UDP socket
//! to the tunnel port (with `UDP_NO_CHECK6_RX`, since IPVS sends zero UDP
//! checksums over IPv6 for `--tun-nocsum`) and takes the GUE header off each
//! datagram; `--gre` opens raw `IPPROTO_GRE` sockets for IPv4 and IPv6, checks
//! the GRE header (and its checksum when present) and takes it off. An open
//! raw socket also keeps the kernel from answering GRE with ICMP "protocol
//! unreachable", and the UDP socket from answering with "port unreachable".
//!
//! Usage: `lvs-tun-decap [--iface IF] [--gue PORT] [--gre] [--tun NAME]
//! [--local ADDR]... [--any-mac] [--mtu N] [--no-sysctl] [--count N]
//! [--max-seconds S]`: IPIP with `--iface`, GUE and GRE with their flags, at
//! least one of them. Runs until SIGINT or SIGTERM (or a limit), then logs its
//! counters on stderr (`ipip=` `gue=` `gre=` delivered packets per
//! encapsulation, malformed input per kind) and exits 0.

mod common;

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{install_stop_handlers, write_sysctl, Args, Limits};
use lvs_dataplane::decap::{
    decapsulate_frame, decapsulate_gre, decapsulate_gue, mark_ce, strip_ipv4, Skip, TunnelKind,
};
use lvs_dataplane::tun::{self, TunDevice};
use lvs_dataplane::{PacketSocket, RingConfig, RxConfig};

const USAGE: &str = "usage: lvs-tun-decap [--iface IF] [--gue PORT] [--gre] [--tun NAME] [--local ADDR]... \
                     [--any-mac] [--mtu N] [--no-sysctl] [--count N] [--max-seconds S] \
                     (at least one of --iface, --gue, --gre)";

/// How long a socket waits before looking at the stop flag and the limits.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Options {
    /// IPIP through an AF_PACKET ring on this interface.
    iface: Option<String>,
    /// GUE on this UDP port.
    gue: Option<u16>,
    /// GRE through raw sockets.
    gre: bool,
    tun: String,
    local: Vec<IpAddr>,
    any_mac: bool,
    mtu: u32,
    sysctl: bool,
    limits: Limits,
}

fn parse_args() -> Result<Options, String> {
    let mut args = Args::from_env();
    let mut o = Options {
        iface: None,
        gue: None,
        gre: false,
        tun: "lvstun0".into(),
        local: Vec::new(),
        any_mac: false,
        mtu: 1480,
        sysctl: true,
        limits: Limits::default(),
    };
    while let Some(flag) = args.next_flag() {
        if o.limits.parse_flag(&flag, &mut args)? {
            continue;
        }
        match flag.as_str() {
            "--iface" | "-i" => o.iface = Some(args.value::<String>(&flag)?),
            "--gue" => {
                let port: u16 = args.value(&flag)?;
                if port == 0 {
                    return Err(format!("--gue needs a port 1..65535\n{USAGE}"));
                }
                o.gue = Some(port);
            }
            "--gre" => o.gre = true,
            "--tun" => o.tun = args.value(&flag)?,
            "--local" => o.local.push(args.value(&flag)?),
            "--any-mac" => o.any_mac = true,
            "--mtu" => o.mtu = args.value(&flag)?,
            "--no-sysctl" => o.sysctl = false,
            "--help" | "-h" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument `{flag}`\n{USAGE}")),
        }
    }
    if o.iface.is_none() && o.gue.is_none() && !o.gre {
        return Err(format!("nothing to decapsulate: give --iface, --gue or --gre\n{USAGE}"));
    }
    if o.any_mac && o.iface.is_none() {
        return Err(format!("--any-mac needs --iface\n{USAGE}"));
    }
    Ok(o)
}

/// What happened to the frames seen.
#[derive(Debug, Default)]
struct Counters {
    frames: u64,
    delivered: u64,
    by_kind: [u64; 4],
    ce_marked: u64,
    other_host: u64,
    not_ip: u64,
    not_tunnel: u64,
    not_local: u64,
    fragments: u64,
    ecn_drops: u64,
    malformed: u64,
    truncated: u64,
    tun_errors: u64,
    /// GUE / GRE datagrams received on the sockets, delivered, and refused.
    gue: SocketCounters,
    gre: SocketCounters,
}

/// What one socket-fed encapsulation saw.
#[derive(Debug, Default, Clone, Copy)]
struct SocketCounters {
    received: u64,
    delivered: u64,
    /// Not a tunnelled packet (GUE control messages, GRE of other protocols).
    other: u64,
    malformed: u64,
    not_local: u64,
    tun_errors: u64,
}

impl Counters {
    fn summary(&self) -> String {
        let kinds: Vec<String> =
            TunnelKind::ALL.iter().map(|k| format!("{}={}", k.name(), self.by_kind[k.index()])).collect();
        let sock = |name: &str, c: &SocketCounters| {
            format!(
                "{name}={} {name}_received={} {name}_other={} {name}_malformed={} {name}_not_local={} \
                 {name}_tun_errors={}",
                c.delivered, c.received, c.other, c.malformed, c.not_local, c.tun_errors
            )
        };
        format!(
            "frames={} delivered={} ipip={} {} {} {} ce_marked={} other_host={} not_ip={} not_tunnel={} \
             not_local={} fragments={} ecn_drops={} malformed={} truncated={} tun_errors={}",
            self.frames,
            self.delivered + self.gue.delivered + self.gre.delivered,
            self.delivered,
            kinds.join(" "),
            sock("gue", &self.gue),
            sock("gre", &self.gre),
            self.ce_marked,
            self.other_host,
            self.not_ip,
            self.not_tunnel,
            self.not_local,
            self.fragments,
            self.ecn_drops,
            self.malformed,
            self.truncated,
            self.tun_errors
        )
    }
}

struct Decapsulator<'t> {
    tun: &'t TunDevice,
    mac: Option<[u8; 6]>,
    local: Vec<IpAddr>,
    buf: Vec<u8>,
    c: Counters,
    /// Diagnostics are rate-limited to the first few of each kind.
    logged_malformed: u32,
    logged_tun_errors: u32,
}

impl Decapsulator<'_> {
    fn frame(&mut self, data: &[u8], truncated: bool) {
        self.c.frames += 1;
        if truncated {
            self.c.truncated += 1;
            return;
        }
        if let Some(mac) = self.mac {
            if data.get(..6) != Some(&mac[..]) {
                self.c.other_host += 1;
                return;
            }
        }
        let local = &self.local;
        let d = match decapsulate_frame(data, |a| local.is_empty() || local.contains(&a)) {
            Ok(d) => d,
            Err(skip) => {
                match skip {
                    Skip::NotIp => self.c.not_ip += 1,
                    Skip::NotTunnel => self.c.not_tunnel += 1,
                    Skip::NotLocal => self.c.not_local += 1,
                    Skip::Fragment => self.c.fragments += 1,
                    Skip::EcnDrop => self.c.ecn_drops += 1,
                    Skip::Malformed(why) => {
                        self.c.malformed += 1;
                        if self.logged_malformed < 10 {
                            self.logged_malformed += 1;
                            eprintln!("lvs-tun-decap: dropped a malformed tunnel packet: {why}");
                        }
                    }
                }
                return;
            }
        };
        let result = if d.set_ce {
            self.buf.clear();
            self.buf.extend_from_slice(d.inner);
            mark_ce(&mut self.buf);
            self.c.ce_marked += 1;
            self.tun.write_packet(&self.buf)
        } else {
            self.tun.write_packet(d.inner)
        };
        match result {
            Ok(()) => {
                self.c.delivered += 1;
                self.c.by_kind[d.kind.index()] += 1;
            }
            Err(e) => {
                self.c.tun_errors += 1;
                if self.logged_tun_errors < 10 {
                    self.logged_tun_errors += 1;
                    eprintln!("lvs-tun-decap: write to {}: {e}", self.tun.name());
                }
            }
        }
    }
}

fn setup_sysctls(tun: &str) {
    if let Some(w) = write_sysctl(&format!("/proc/sys/net/ipv4/conf/{tun}/rp_filter"), "0") {
        eprintln!("lvs-tun-decap: warning: {w}");
    }
    let all = std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/rp_filter").unwrap_or_default();
    if !matches!(all.trim(), "0" | "") {
        eprintln!(
            "lvs-tun-decap: warning: net.ipv4.conf.all.rp_filter={} (the maximum of `all` and the device \
             applies): inner IPv4 packets from clients will be dropped; set it to 0",
            all.trim()
        );
    }
    // No router solicitations or MLD reports out of the TUN device.
    let _ = write_sysctl(&format!("/proc/sys/net/ipv6/conf/{tun}/accept_ra"), "0");
}

/// A socket delivering tunnel packets of one kind.
enum Source {
    /// The GUE tunnel port: each datagram's payload is a GUE header and a packet.
    Gue(UdpSocket),
    /// A raw GRE socket; IPv4 ones deliver the IP header too.
    Gre { fd: OwnedFd, v4: bool },
}

impl Source {
    fn gue(port: u16) -> io::Result<Source> {
        // Dual-stack where IPv6 exists (`bindv6only` is 0 by default), else IPv4 only.
        let s = match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)) {
            Ok(s) => {
                // IPVS sends `--tun-nocsum` GUE over IPv6 with a zero UDP checksum (RFC 6935),
                // which the kernel drops for sockets that do not accept it.
                let on: libc::c_int = 1;
                // SAFETY: a valid c_int option value of the stated size on an open socket.
                let rc = unsafe {
                    libc::setsockopt(
                        s.as_raw_fd(),
                        libc::SOL_UDP,
                        libc::UDP_NO_CHECK6_RX,
                        (&on as *const libc::c_int).cast(),
                        size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
                if rc != 0 {
                    let e = io::Error::last_os_error();
                    return Err(io::Error::new(e.kind(), format!("UDP_NO_CHECK6_RX: {e}")));
                }
                s
            }
            Err(_) => UdpSocket::bind(("0.0.0.0", port))
                .map_err(|e| io::Error::new(e.kind(), format!("bind UDP port {port}: {e}")))?,
        };
        s.set_read_timeout(Some(POLL))?;
        Ok(Source::Gue(s))
    }

    fn gre(v4: bool) -> io::Result<Source> {
        let family = if v4 { libc::AF_INET } else { libc::AF_INET6 };
        // SAFETY: plain system call with integer arguments.
        let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_GRE) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("raw GRE socket: {e}")));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tv = libc::timeval { tv_sec: 0, tv_usec: POLL.as_micros() as libc::suseconds_t };
        // SAFETY: a valid timeval of the stated size on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Source::Gre { fd, v4 })
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Gue(_) => "GUE",
            Source::Gre { v4: true, .. } => "GRE/IPv4",
            Source::Gre { .. } => "GRE/IPv6",
        }
    }

    /// One datagram into `buf`; `Ok(None)` when nothing came within [`POLL`].
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = match self {
            Source::Gue(s) => s.recv(buf),
            Source::Gre { fd, .. } => {
                // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
                let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }
        };
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The inner packet of a datagram this socket delivered.
    fn inner<'b>(&self, data: &'b [u8], local: &[IpAddr]) -> Result<&'b [u8], Skip> {
        let (inner, _) = match self {
            Source::Gue(_) => decapsulate_gue(data)?,
            Source::Gre { v4: true, .. } => {
                let (dst, gre) = strip_ipv4(data)?;
                if !local.is_empty() && !local.contains(&dst) {
                    return Err(Skip::NotLocal);
                }
                decapsulate_gre(gre)?
            }
            Source::Gre { .. } => decapsulate_gre(data)?,
        };
        Ok(inner)
    }
}

/// Receives from `src` until `done`, writing inner packets into `tun`.
fn socket_loop(
    src: &Source,
    tun: &TunDevice,
    local: &[IpAddr],
    total: &AtomicU64,
    done: &AtomicU64,
) -> SocketCounters {
    let mut c = SocketCounters::default();
    let mut buf = vec![0u8; 65536];
    let mut logged = 0u32;
    let mut log = |what: String| {
        if logged < 10 {
            logged += 1;
            eprintln!("lvs-tun-decap: {}: {what}", src.name());
        }
    };
    while done.load(Ordering::Acquire) == 0 {
        let n = match src.recv(&mut buf) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                log(format!("receive failed, {} stops: {e}", src.name()));
                break;
            }
        };
        c.received += 1;
        let inner = match src.inner(&buf[..n], local) {
            Ok(inner) => inner,
            Err(Skip::NotTunnel) => {
                c.other += 1;
                continue;
            }
            Err(Skip::NotLocal) => {
                c.not_local += 1;
                continue;
            }
            Err(skip) => {
                c.malformed += 1;
                let why = if let Skip::Malformed(why) = skip { why } else { "unusable" };
                log(format!("dropped a malformed packet: {why}"));
                continue;
            }
        };
        match tun.write_packet(inner) {
            Ok(()) => {
                c.delivered += 1;
                total.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                c.tun_errors += 1;
                log(format!("write to {}: {e}", tun.name()));
            }
        }
    }
    c
}

fn run(o: &Options) -> io::Result<Counters> {
    install_stop_handlers()?;
    let tun = TunDevice::create(&o.tun)?;
    tun::set_mtu(tun.name(), o.mtu)?;
    tun::set_up(tun.name())?;
    if o.sysctl {
        setup_sysctls(tun.name());
    }
    let mut sources = Vec::new();
    if let Some(port) = o.gue {
        sources.push(Source::gue(port)?);
    }
    if o.gre {
        sources.push(Source::gre(true)?);
        sources.push(Source::gre(false)?);
    }
    let mut ring = match &o.iface {
        Some(iface) => {
            let mac = if o.any_mac { None } else { Some(tun::hardware_address(iface)?) };
            let cfg = RingConfig {
                rx: Some(RxConfig { block_size: 1 << 16, block_count: 32, ..RxConfig::default() }),
                tx: None,
                ignore_outgoing: true,
                poll_timeout: POLL,
                ..RingConfig::default()
            };
            Some((PacketSocket::open(iface, &cfg)?, mac))
        }
        None => None,
    };
    eprintln!(
        "lvs-tun-decap: ready iface={} gue={} gre={} tun={} mtu={} local={}",
        o.iface.as_deref().unwrap_or("none"),
        o.gue.map_or("off".to_string(), |p| p.to_string()),
        if o.gre { "on" } else { "off" },
        tun.name(),
        o.mtu,
        if o.local.is_empty() {
            "any".to_string()
        } else {
            o.local.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
        }
    );
    let mut d = Decapsulator {
        tun: &tun,
        mac: ring.as_ref().and_then(|(_, mac)| *mac),
        local: o.local.clone(),
        buf: Vec::with_capacity(2048),
        c: Counters::default(),
        logged_malformed: 0,
        logged_tun_errors: 0,
    };
    // Packets the sockets delivered, and the signal for them to stop (non-zero).
    let total = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let (reason, ring_result, socket_counters) = std::thread::scope(|scope| {
        let workers: Vec<_> = sources
            .iter()
            .map(|src| {
                let (tun, local, total, done) = (&tun, &o.local[..], &total, &done);
                scope.spawn(move || (src.name(), socket_loop(src, tun, local, total, done)))
            })
            .collect();
        let mut ring_result = Ok(());
        let reason = loop {
            if let Some(r) = o.limits.reason(d.c.delivered + total.load(Ordering::Acquire), started) {
                break r;
            }
            match ring.as_mut() {
                Some((sock, _)) => match sock.recv_frames(POLL, |f| d.frame(f.data, f.is_truncated())) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        ring_result = Err(e);
                        break "error";
                    }
                },
                None => std::thread::sleep(POLL),
            }
        };
        done.store(1, Ordering::Release);
        let counters: Vec<_> = workers.into_iter().filter_map(|w| w.join().ok()).collect();
        (reason, ring_result, counters)
    });
    ring_result?;
    for (name, c) in socket_counters {
        let sum = if name == "GUE" { &mut d.c.gue } else { &mut d.c.gre };
        sum.received += c.received;
        sum.delivered += c.delivered;
        sum.other += c.other;
        sum.malformed += c.malformed;
        sum.not_local += c.not_local;
        sum.tun_errors += c.tun_errors;
    }
    let drops = ring.as_mut().and_then(|(s, _)| s.stats().ok()).map_or(0, |s| s.drops);
    let c = std::mem::take(&mut d.c);
    eprintln!("lvs-tun-decap: exit ({reason}) {} ring_drops={drops}", c.summary());
    Ok(c)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lvs-tun-decap: {e}");
            ExitCode::FAILURE
        }
    }
}
