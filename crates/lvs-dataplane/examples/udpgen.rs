//! `udpgen`: a small AF_PACKET TX-ring packet generator for the packet-rate
//! benchmark (benches/net/run.sh): Ethernet/IPv4/UDP frames over many flows,
//! as fast as the ring and the link take them, for a fixed time.
//!
//! ```text
//! cargo run --release -p lvs-dataplane --example udpgen -- \
//!     --iface eth0 --dst-mac 02:00:00:00:00:02 --src 10.200.1.2 --dst 10.200.3.1 \
//!     [--dport 9] [--flows 1024] [--size 60] [--seconds 10] [--batch 64] [--qdisc-bypass]
//!     [--sndbuf BYTES (64 MiB)] [--rate PPS (default: as fast as possible)]
//! ```
//!
//! Frames are prepared once (one per flow: source ports 1024.., checksums
//! computed) and copied into TX slots; the kernel is kicked once per batch.
//! Back-pressure from the link (ring full, ENOBUFS) is busy-waited out, not
//! counted as an error: the generator's CPU is meant to be fully used. Prints `sent=N seconds=S pps=R` on stderr at the end (also on
//! SIGINT/SIGTERM).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lvs_dataplane::decap::ipv4_checksum;
use lvs_dataplane::tun::hardware_address;
use lvs_dataplane::{PacketSocket, RingConfig, TxConfig};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

fn install_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: zeroed sigaction is valid; the handler only does an atomic store.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

#[derive(Debug)]
struct Opts {
    iface: String,
    dst_mac: [u8; 6],
    src_mac: Option<[u8; 6]>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
    flows: u16,
    size: usize,
    seconds: f64,
    batch: usize,
    qdisc_bypass: bool,
    sndbuf: usize,
    rate: Option<f64>,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    s.parse::<lvs_core::wire::EthernetAddress>().map(|a| a.0).map_err(|_| format!("bad MAC {s}"))
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        iface: String::new(),
        dst_mac: [0xff; 6],
        src_mac: None,
        src: Ipv4Addr::new(10, 200, 1, 2),
        dst: Ipv4Addr::new(10, 200, 3, 1),
        dport: 9,
        flows: 1024,
        size: 60,
        seconds: 10.0,
        batch: 64,
        qdisc_bypass: false,
        sndbuf: 64 << 20,
        rate: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let e = |v: &str| format!("{flag}: bad value {v}");
        match flag.as_str() {
            "--iface" => o.iface = val()?,
            "--dst-mac" => o.dst_mac = parse_mac(&val()?)?,
            "--src-mac" => o.src_mac = Some(parse_mac(&val()?)?),
            "--src" => o.src = val()?.parse().map_err(|_| e("address"))?,
            "--dst" => o.dst = val()?.parse().map_err(|_| e("address"))?,
            "--dport" => o.dport = val()?.parse().map_err(|_| e("port"))?,
            "--flows" => o.flows = val()?.parse().map_err(|_| e("1..64000"))?,
            "--size" => o.size = val()?.parse().map_err(|_| e("60..1514"))?,
            "--seconds" => o.seconds = val()?.parse().map_err(|_| e("seconds"))?,
            "--batch" => o.batch = val()?.parse().map_err(|_| e("1..4096"))?,
            "--qdisc-bypass" => o.qdisc_bypass = true,
            "--sndbuf" => o.sndbuf = val()?.parse().map_err(|_| e("bytes"))?,
            "--rate" => {
                let r: f64 = val()?.parse().map_err(|_| e("packets per second"))?;
                if !(r.is_finite() && r > 0.0) {
                    return Err(e("packets per second"));
                }
                o.rate = Some(r);
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if o.iface.is_empty() {
        return Err("--iface is required".into());
    }
    if o.flows == 0 || o.flows > 64000 || !(42..=1514).contains(&o.size) || o.batch == 0 || o.batch > 4096 {
        return Err("--flows 1..64000, --size 42..1514, --batch 1..4096".into());
    }
    if !(o.seconds > 0.0 && o.seconds <= 3600.0) {
        return Err("--seconds must be in (0, 3600]".into());
    }
    Ok(o)
}

/// One Ethernet/IPv4/UDP frame of `o.size` bytes from source port `sport`.
fn frame(o: &Opts, src_mac: [u8; 6], sport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(o.size);
    f.extend_from_slice(&o.dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (o.size - 14) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip.extend_from_slice(&o.src.octets());
    ip.extend_from_slice(&o.dst.octets());
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp_len = ip_len - 20;
    let mut udp = Vec::with_capacity(udp_len as usize);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&o.dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.resize(udp_len as usize, b'A');
    let mut pseudo = Vec::with_capacity(12 + udp.len());
    pseudo.extend_from_slice(&o.src.octets());
    pseudo.extend_from_slice(&o.dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&udp_len.to_be_bytes());
    pseudo.extend_from_slice(&udp);
    let c = match ipv4_checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// Every frame in flight (sent, not yet freed by whoever consumes it) is
/// charged to the socket's send buffer; with the default (~200 KiB) a TX ring
/// of small frames stalls at a few hundred frames in flight, and the rate
/// becomes latency-bound (both CPUs partly idle). SO_SNDBUFFORCE (root)
/// ignores wmem_max; plain SO_SNDBUF is the fallback.
fn raise_sndbuf(sock: &PacketSocket, bytes: usize) {
    let v = libc::c_int::try_from(bytes / 2).unwrap_or(libc::c_int::MAX); // the kernel doubles it
    for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: a valid c_int option value of the stated size on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
    eprintln!("udpgen: warning: could not raise the send buffer: {}", std::io::Error::last_os_error());
}

fn run(o: &Opts) -> std::io::Result<()> {
    install_handlers();
    let src_mac = match o.src_mac {
        Some(m) => m,
        None => hardware_address(&o.iface)?,
    };
    let frames: Vec<Vec<u8>> = (0..o.flows).map(|i| frame(o, src_mac, 1024u16.wrapping_add(i))).collect();
    let cfg = RingConfig {
        rx: None,
        tx: Some(TxConfig { block_size: 1 << 18, block_count: 8, frame_size: 256 }),
        qdisc_bypass: o.qdisc_bypass,
        poll_timeout: Duration::from_millis(50),
        ..RingConfig::default()
    };
    let mut sock = PacketSocket::open(&o.iface, &cfg)?;
    raise_sndbuf(&sock, o.sndbuf);
    let started = Instant::now();
    let limit = Duration::from_secs_f64(o.seconds);
    let (mut sent, mut next) = (0u64, 0usize);
    'outer: while !STOP.load(Ordering::Acquire) && started.elapsed() < limit {
        if let Some(rate) = o.rate {
            // Paced: no batch before its time (busy-wait; sleeping is too coarse at these rates).
            if sent as f64 > rate * started.elapsed().as_secs_f64() {
                sock.flush()?;
                std::hint::spin_loop();
                continue;
            }
        }
        for _ in 0..o.batch {
            let f = &frames[next];
            if !sock.try_send(f)? {
                // Ring full: kick and busy-wait for a slot (no sleeping: a generator that naps
                // under back-pressure leaves the link idle), at most 50 ms.
                let waited = Instant::now();
                loop {
                    sock.flush()?;
                    if sock.try_send(f)? {
                        break;
                    }
                    if waited.elapsed() > Duration::from_millis(50) {
                        continue 'outer;
                    }
                    std::hint::spin_loop();
                }
            }
            sent += 1;
            next += 1;
            if next == frames.len() {
                next = 0;
            }
        }
        sock.flush()?;
    }
    let _ = sock.wait_tx_complete(Duration::from_secs(1));
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "udpgen: sent={sent} seconds={secs:.3} pps={:.0} ring={:?}",
        sent as f64 / secs,
        sock.counters()
    );
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("udpgen: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udpgen: {e}");
            ExitCode::FAILURE
        }
    }
}
