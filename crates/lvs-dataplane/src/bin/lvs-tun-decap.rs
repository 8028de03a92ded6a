//! `lvs-tun-decap`: user-space IP-in-IP decapsulation for LVS/TUN real servers.
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
//! Usage: `lvs-tun-decap --iface IF [--tun NAME] [--local ADDR]... [--any-mac]
//! [--mtu N] [--no-sysctl] [--count N] [--max-seconds S]`. Runs until SIGINT
//! or SIGTERM (or a limit), then logs its counters on stderr and exits 0.

mod common;

use std::io;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{install_stop_handlers, write_sysctl, Args, Limits};
use lvs_dataplane::decap::{decapsulate_frame, mark_ce, Skip, TunnelKind};
use lvs_dataplane::tun::{self, TunDevice};
use lvs_dataplane::{PacketSocket, RingConfig, RxConfig};

const USAGE: &str = "usage: lvs-tun-decap --iface IF [--tun NAME] [--local ADDR]... [--any-mac] \
                     [--mtu N] [--no-sysctl] [--count N] [--max-seconds S]";

#[derive(Debug)]
struct Options {
    iface: String,
    tun: String,
    local: Vec<IpAddr>,
    any_mac: bool,
    mtu: u32,
    sysctl: bool,
    limits: Limits,
}

fn parse_args() -> Result<Options, String> {
    let mut args = Args::from_env();
    let mut iface = None;
    let mut o = Options {
        iface: String::new(),
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
            "--iface" | "-i" => iface = Some(args.value::<String>(&flag)?),
            "--tun" => o.tun = args.value(&flag)?,
            "--local" => o.local.push(args.value(&flag)?),
            "--any-mac" => o.any_mac = true,
            "--mtu" => o.mtu = args.value(&flag)?,
            "--no-sysctl" => o.sysctl = false,
            "--help" | "-h" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument `{flag}`\n{USAGE}")),
        }
    }
    o.iface = iface.ok_or_else(|| format!("--iface is required\n{USAGE}"))?;
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
}

impl Counters {
    fn summary(&self) -> String {
        let kinds: Vec<String> =
            TunnelKind::ALL.iter().map(|k| format!("{}={}", k.name(), self.by_kind[k.index()])).collect();
        format!(
            "frames={} delivered={} {} ce_marked={} other_host={} not_ip={} not_tunnel={} not_local={} \
             fragments={} ecn_drops={} malformed={} truncated={} tun_errors={}",
            self.frames,
            self.delivered,
            kinds.join(" "),
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

struct Decapsulator {
    tun: TunDevice,
    mac: Option<[u8; 6]>,
    local: Vec<IpAddr>,
    buf: Vec<u8>,
    c: Counters,
    /// Diagnostics are rate-limited to the first few of each kind.
    logged_malformed: u32,
    logged_tun_errors: u32,
}

impl Decapsulator {
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

fn run(o: &Options) -> io::Result<Counters> {
    install_stop_handlers()?;
    let tun = TunDevice::create(&o.tun)?;
    tun::set_mtu(tun.name(), o.mtu)?;
    tun::set_up(tun.name())?;
    if o.sysctl {
        setup_sysctls(tun.name());
    }
    let mac = if o.any_mac { None } else { Some(tun::hardware_address(&o.iface)?) };
    let cfg = RingConfig {
        rx: Some(RxConfig { block_size: 1 << 16, block_count: 32, ..RxConfig::default() }),
        tx: None,
        ignore_outgoing: true,
        poll_timeout: Duration::from_millis(100),
        ..RingConfig::default()
    };
    let mut sock = PacketSocket::open(&o.iface, &cfg)?;
    eprintln!(
        "lvs-tun-decap: ready iface={} tun={} mtu={} local={}",
        o.iface,
        tun.name(),
        o.mtu,
        if o.local.is_empty() {
            "any".to_string()
        } else {
            o.local.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
        }
    );
    let mut d = Decapsulator {
        tun,
        mac,
        local: o.local.clone(),
        buf: Vec::with_capacity(2048),
        c: Counters::default(),
        logged_malformed: 0,
        logged_tun_errors: 0,
    };
    let started = Instant::now();
    let reason = loop {
        if let Some(r) = o.limits.reason(d.c.delivered, started) {
            break r;
        }
        match sock.recv_frames(Duration::from_millis(100), |f| d.frame(f.data, f.is_truncated())) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let drops = sock.stats().map(|s| s.drops).unwrap_or(0);
    eprintln!("lvs-tun-decap: exit ({reason}) {} ring_drops={drops}", d.c.summary());
    Ok(d.c)
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
