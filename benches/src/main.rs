//! lvs benchmarks: `cargo run -p lvs-benches --release -- <name>`; see benches/README.md for results.
//!
//! A tiny harness with no dependencies: each measurement runs many batches, times each batch with
//! `std::time::Instant`, and reports the median (and 90th percentile) time per operation.
//!
//! * `conn-lookup [N...]`: established-flow lookups in random order at N live connections
//!   (default 1M and 10M): single lookups, 16-wide batched lookups, and the full `process_in`
//!   packet path (single and batched).
//! * `conn-new [SCHED...]`: schedule + insert of new connections for every scheduler in
//!   `lvs_core::sched::SCHEDULER_NAMES` (or only the named ones) at 10, 100 and 1000 real servers;
//!   `conn-new-batch` the same through `process_in_batch`.
//! * `conn-new-steady[-batch] SCHED [SERVERS PREFILL N]`: N new connections after PREFILL
//!   (defaults 100, 100k, 92,160: no table doubling in between), for instruction counts.
//! * `conn-memory [N]`: bytes per entry from the structures' allocated capacities at N (default
//!   10M) NAT connections, plus the process RSS, insert rate and bulk expiry rate.
//! * `engine-nat [N...]` / `engine-dr [N...]`: the whole frame path of `lvs_core::engine::Engine`
//!   (Ethernet frame in, rewritten frame out into a reused `TxBatch`) for NAT and direct routing:
//!   new connections (SYN) and established flows (ACK, random order) at N flows (default 1k and 1M).
//! * `all`: everything above with the defaults.
// The harness reports on stdout.
#![allow(clippy::print_stdout)]

use lvs_core::conn::tcp::flags::{ACK, SYN};
use lvs_core::conn::{ConnId, InVerdict, PacketMeta};
use lvs_core::model::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use lvs_core::time::Instant as Clock;
use lvs_core::wire::EthernetAddress;
use lvs_core::Ipvs;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
const BATCH: usize = 1024;

/// xorshift64*: reproducible random flow order.
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// The i-th client flow: a distinct (address, port) per i.
fn client(i: usize) -> (IpAddr, u16) {
    let addr = Ipv4Addr::from(0x0b00_0000u32 + (i >> 10) as u32);
    (IpAddr::V4(addr), 1024 + (i & 1023) as u16)
}

fn packet(i: usize, flags: u8) -> PacketMeta {
    let (saddr, sport) = client(i);
    PacketMeta {
        protocol: 6,
        saddr,
        sport,
        daddr: IpAddr::V4(VIP),
        dport: 80,
        tcp_flags: flags,
        sctp_chunk: 0,
        sctp_abort_follows: false,
        len: 64,
        fwmark: 0,
    }
}

fn service_key() -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(VIP), port: 80 }
}

/// One TCP service with `servers` NAT real servers (weights 1..=4 cycling).
fn director(sched: &str, servers: usize) -> Ipvs {
    let mut ipvs = Ipvs::new();
    let mut cfg = ServiceConfig::new(service_key());
    cfg.scheduler = sched.to_owned();
    ipvs.add_service(cfg).expect("service");
    for i in 0..servers {
        let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::from(0xc0a8_0000u32 + 1 + i as u32)));
        d.fwd = FwdMethod::Masq;
        // ovf only takes servers whose active connections are <= their weight: give it room.
        d.weight = if sched == "ovf" { 65535 } else { 1 + (i % 4) as i32 };
        d.port = Some(8080);
        ipvs.add_dest(&service_key(), &d).expect("server");
    }
    ipvs
}

/// A director holding `n` ESTABLISHED NAT connections (SYN then ACK for each flow).
fn populated(n: usize) -> (Ipvs, f64) {
    let mut ipvs = director("rr", 10);
    let t = Instant::now();
    for i in 0..n {
        let v = ipvs.process_in(&packet(i, SYN), Clock::ZERO);
        assert!(matches!(v, InVerdict::Forward(_)), "{v:?}");
        ipvs.process_in(&packet(i, ACK), Clock::ZERO);
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64 / 2.0;
    (ipvs, per)
}

/// Median and 90th percentile of per-op nanoseconds over batches.
struct Summary {
    median: f64,
    p90: f64,
}

fn summarize(mut v: Vec<f64>) -> Summary {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Summary { median: at(0.5), p90: at(0.9) }
}

/// Runs `batches` batches of `BATCH` operations: `prepare` fills the batch (untimed), `run` is
/// timed.
fn measure<T>(
    batches: usize,
    mut prepare: impl FnMut(&mut Vec<T>),
    mut run: impl FnMut(&[T]) -> u64,
) -> Summary {
    let mut items = Vec::with_capacity(BATCH);
    let mut per = Vec::with_capacity(batches);
    let mut sink = 0u64;
    for _ in 0..batches {
        items.clear();
        prepare(&mut items);
        let t = Instant::now();
        sink = sink.wrapping_add(run(&items));
        per.push(t.elapsed().as_nanos() as f64 / items.len() as f64);
    }
    black_box(sink);
    summarize(per)
}

fn rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn conn_lookup(sizes: &[usize]) {
    println!("## conn-lookup: established flows, random order, median (p90) ns per packet\n");
    println!(
        "| live conns | lookup_conn | lookup_conns | process_in | process_in_batch | table build (SYN+ACK) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let (mut ipvs, build) = populated(n);
        let mut rng = Rand(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let batches = 3000;
        let mut fill = |v: &mut Vec<PacketMeta>| {
            for _ in 0..BATCH {
                v.push(packet(rng.below(n), ACK));
            }
        };
        let single = measure(batches, &mut fill, |pkts| {
            pkts.iter().map(|p| ipvs.lookup_conn(p).map_or(0, |c| c.raw() as u64)).sum()
        });
        let mut out: Vec<Option<ConnId>> = vec![None; BATCH];
        let batched = measure(batches, &mut fill, |pkts| {
            ipvs.lookup_conns(pkts, &mut out);
            out.iter().map(|c| c.map_or(0, |c| c.raw() as u64)).sum()
        });
        let mut now = 1_000u64;
        let full = measure(batches, &mut fill, |pkts| {
            now += 1;
            let mut hits = 0;
            for p in pkts {
                if let InVerdict::Forward(f) = ipvs.process_in(p, Clock::from_millis(now)) {
                    hits += f.dport as u64;
                }
            }
            hits
        });
        let mut verdicts = Vec::with_capacity(BATCH);
        let full_batch = measure(batches, &mut fill, |pkts| {
            now += 1;
            verdicts.clear();
            ipvs.process_in_batch(pkts, Clock::from_millis(now), &mut verdicts);
            verdicts.len() as u64
        });
        assert_eq!(ipvs.conn_stats().conns, n as u64, "every lookup hit an existing connection");
        println!(
            "| {} | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.0} |",
            human(n),
            single.median,
            single.p90,
            batched.median,
            batched.p90,
            full.median,
            full.p90,
            full_batch.median,
            full_batch.p90,
            build
        );
        drop(ipvs);
    }
    println!();
}

/// `only`: scheduler names to run (all when empty).
/// `batch`: through `process_in_batch` (lookups of the next packets read ahead) instead of
/// `process_in` one packet at a time.
fn conn_new(only: &[String], batch: bool) {
    let api = if batch { "process_in_batch" } else { "process_in" };
    println!(
        "## conn-new: schedule + insert of a new connection (SYN) via {api}, median (p90) ns per connection\n"
    );
    let sizes = [10usize, 100, 1000];
    println!("| scheduler | 10 servers | 100 servers | 1000 servers |");
    println!("|---|---:|---:|---:|");
    for &name in lvs_core::sched::SCHEDULER_NAMES {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let mut row = format!("| {name} |");
        for &servers in &sizes {
            let mut ipvs = director(name, servers);
            let mut verdicts = Vec::with_capacity(BATCH);
            let batches = 200;
            let mut next = 0usize;
            let s = measure(
                batches,
                |v: &mut Vec<PacketMeta>| {
                    for _ in 0..BATCH {
                        v.push(packet(next, SYN));
                        next += 1;
                    }
                },
                |pkts| {
                    if batch {
                        verdicts.clear();
                        ipvs.process_in_batch(pkts, Clock::ZERO, &mut verdicts);
                        return verdicts
                            .iter()
                            .filter_map(InVerdict::forward)
                            .map(|f| f.created as u64)
                            .sum();
                    }
                    let mut created = 0;
                    for p in pkts {
                        if let InVerdict::Forward(f) = ipvs.process_in(p, Clock::ZERO) {
                            created += f.created as u64;
                        }
                    }
                    created
                },
            );
            let made = ipvs.conn_stats().conns;
            if made != (batches * BATCH) as u64 {
                row.push_str(&format!(" {:.0} ({:.0}) [{made} created] |", s.median, s.p90));
            } else {
                row.push_str(&format!(" {:.0} ({:.0}) |", s.median, s.p90));
            }
        }
        println!("{row}");
    }
    println!();
}

/// A steady-state run for instruction counts (`valgrind --tool=callgrind`): `prefill` new
/// connections, then `n` more (single or batched) with the table never doubling in between. Run it
/// with `n` and with 0 and subtract: the difference is `n` new connections' instructions.
fn conn_new_steady(sched: &str, servers: usize, prefill: usize, n: usize, batch: bool) {
    let mut ipvs = director(sched, servers);
    let pkts: Vec<PacketMeta> = (0..prefill + n).map(|i| packet(i, SYN)).collect();
    for p in &pkts[..prefill] {
        ipvs.process_in(p, Clock::ZERO);
    }
    let mut verdicts = Vec::with_capacity(BATCH);
    let mut per = Vec::new();
    for chunk in pkts[prefill..].chunks(BATCH) {
        let t = Instant::now();
        if batch {
            verdicts.clear();
            ipvs.process_in_batch(chunk, Clock::ZERO, &mut verdicts);
        } else {
            for p in chunk {
                black_box(ipvs.process_in(p, Clock::ZERO));
            }
        }
        per.push(t.elapsed().as_nanos() as f64 / chunk.len() as f64);
    }
    assert_eq!(ipvs.conn_stats().conns, (prefill + n) as u64, "every packet made a connection");
    if !per.is_empty() {
        let s = summarize(per);
        println!(
            "conn-new-steady {sched} {servers} servers, {prefill} + {n}: {:.1} ({:.1}) ns per connection",
            s.median, s.p90
        );
    }
}

fn conn_memory(n: usize) {
    println!("## conn-memory: {} NAT connections (IPv4)\n", human(n));
    let rss0 = rss_mib();
    let (mut ipvs, build) = populated(n);
    let m = ipvs.conn_memory();
    let rss1 = rss_mib();
    println!("| what | value |");
    println!("|---|---:|");
    println!("| live entries | {} |", m.entries);
    println!("| entries (connection table + template slab) | {:.1} MiB |", m.slab_bytes as f64 / 1048576.0);
    println!("| indexes (NAT reply + template) | {:.1} MiB |", m.index_bytes as f64 / 1048576.0);
    println!("| timer wheel heads | {} B |", m.wheel_bytes);
    println!("| total | {:.1} MiB |", m.total_bytes() as f64 / 1048576.0);
    println!("| **bytes per entry, all in** | **{:.1}** |", m.bytes_per_entry());
    if let (Some(a), Some(b)) = (rss0, rss1) {
        println!("| process RSS growth | {:.1} MiB ({:.1} B/entry) |", b - a, (b - a) * 1048576.0 / n as f64);
    }
    println!("| build (SYN+ACK via process_in) | {build:.0} ns/packet |");
    let t = Instant::now();
    // Everything is ESTABLISHED (900 s): expire it all in one timer run.
    ipvs.advance(Clock::from_secs(10_000));
    let e = t.elapsed();
    assert_eq!(ipvs.conn_stats().conns, 0);
    println!(
        "| expire all in one advance() | {:.0} ns/entry ({:.2} s) |",
        e.as_nanos() as f64 / n as f64,
        e.as_secs_f64()
    );
    println!();
}

/// The engine bench's director: eth0 10.255.0.2/16 towards the clients (default route via
/// 10.255.0.254), eth1 192.168.0.254/24 with the 10 real servers of `director`, all neighbours known.
fn engine_for(fwd: FwdMethod) -> lvs_core::engine::Engine {
    use lvs_core::engine::{Engine, EngineConfig, Interface, Route};
    let mut ipvs = Ipvs::new();
    let mut cfg = ServiceConfig::new(service_key());
    cfg.scheduler = "rr".to_owned();
    ipvs.add_service(cfg).expect("service");
    let rs = |i: u32| IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1 + i as u8));
    for i in 0..10 {
        let mut d = DestConfig::new(rs(i));
        d.fwd = fwd;
        d.port = if fwd == FwdMethod::Masq { Some(8080) } else { None };
        ipvs.add_dest(&service_key(), &d).expect("server");
    }
    let ip = |s: &str| s.parse::<IpAddr>().expect("address");
    let cfg = EngineConfig {
        interfaces: vec![
            Interface::new(1, "eth0", ENGINE_MAC0, 1500).with_addr(ip("10.255.0.2"), 16),
            Interface::new(2, "eth1", EthernetAddress([2, 0, 0, 0, 1, 1]), 1500)
                .with_addr(ip("192.168.0.254"), 24),
        ],
        routes: vec![Route::new("0.0.0.0/0".parse().expect("prefix"), Some(ip("10.255.0.254")), 1)],
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg, ipvs).expect("engine");
    let mut sink = Vec::new();
    e.add_neighbour(1, ip("10.255.0.254"), ENGINE_ROUTER, Clock::ZERO, &mut sink);
    for i in 0..10 {
        e.add_neighbour(2, rs(i), EthernetAddress([2, 0, 0, 0, 2, i as u8]), Clock::ZERO, &mut sink);
    }
    e
}

const ENGINE_MAC0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const ENGINE_ROUTER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xfe]);

/// The client frame of flow `i`: Ethernet + IPv4 + TCP with `flags` and 64 bytes of payload.
fn tcp_frame(i: usize, flags: u8) -> Vec<u8> {
    use lvs_core::wire::{
        ChecksumCapabilities, EtherType, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
        TcpFlags, TcpPacket, TcpRepr,
    };
    let (saddr, sport) = client(i);
    let IpAddr::V4(src) = saddr else { unreachable!("IPv4 clients") };
    let payload = [0x42u8; 64];
    let tcp = TcpRepr {
        src_port: sport,
        dst_port: 80,
        seq_number: 1,
        ack_number: 1,
        flags: TcpFlags(flags as u16),
        window_len: 65535,
        urgent_at: 0,
        options: &[],
        payload: &payload,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: VIP,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        tos: 0,
        ident: i as u16,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut f = vec![0u8; 34 + tcp.buffer_len()];
    EthernetRepr { src_addr: ENGINE_ROUTER, dst_addr: ENGINE_MAC0, ethertype: EtherType::Ipv4, vlan: None }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]), &caps);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut f[34..]), &saddr, &IpAddr::V4(VIP), &caps);
    f
}

fn engine_path(fwd: FwdMethod, sizes: &[usize]) {
    use lvs_core::engine::{Outcome, TxBatch};
    let name = if fwd == FwdMethod::Masq { "nat" } else { "dr" };
    println!("## engine-{name}: `Engine::process`, frame in -> frame out, median (p90) ns per packet\n");
    println!("| flows | new connection (SYN) | established (ACK, random order) | hot (16 flows) |");
    println!("|---:|---:|---:|---:|");
    for &n in sizes {
        let mut e = engine_for(fwd);
        let mut out = TxBatch::new();
        let mut process = |frames: &[Vec<u8>]| {
            out.clear();
            let mut sent = 0u64;
            for f in frames {
                sent += (e.process(1, f, Clock::ZERO, &mut out) == Outcome::Forwarded) as u64;
            }
            assert_eq!(sent, frames.len() as u64, "every packet forwarded");
            sent
        };
        let mut next = 0;
        let syn = measure(
            n.div_ceil(BATCH),
            |b| {
                while b.len() < BATCH && next < n {
                    b.push(tcp_frame(next, SYN));
                    next += 1;
                }
            },
            &mut process,
        );
        let mut rng = Rand(0x9e37_79b9_7f4a_7c15);
        let est = measure(200, |b| b.extend((0..BATCH).map(|_| tcp_frame(rng.below(n), ACK))), &mut process);
        let hot = measure(200, |b| b.extend((0..BATCH).map(|i| tcp_frame(i % 16, ACK))), &mut process);
        println!(
            "| {} | {:.0} ({:.0}) | {:.0} ({:.0}) | {:.0} ({:.0}) |",
            human(n),
            syn.median,
            syn.p90,
            est.median,
            est.p90,
            hot.median,
            hot.p90
        );
    }
    println!();
}

fn human(n: usize) -> String {
    if n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn parse_sizes(args: &[String]) -> Vec<usize> {
    args.iter().filter_map(|a| a.replace('_', "").parse().ok()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let rest = parse_sizes(args.get(1..).unwrap_or(&[]));
    match cmd {
        "conn-lookup" => conn_lookup(if rest.is_empty() { &[1_000_000, 10_000_000] } else { &rest }),
        "conn-new" => conn_new(args.get(1..).unwrap_or(&[]), false),
        "conn-new-batch" => conn_new(args.get(1..).unwrap_or(&[]), true),
        "conn-new-steady" | "conn-new-steady-batch" => {
            let arg = |i: usize, d: usize| rest.get(i).copied().unwrap_or(d);
            let sched = args.get(1).map_or("rr", String::as_str);
            conn_new_steady(sched, arg(0, 100), arg(1, 100_000), arg(2, 92_160), cmd.ends_with("batch"));
        }
        "conn-memory" => conn_memory(rest.first().copied().unwrap_or(10_000_000)),
        "engine-nat" => {
            engine_path(FwdMethod::Masq, if rest.is_empty() { &[1000, 1_000_000] } else { &rest })
        }
        "engine-dr" => {
            engine_path(FwdMethod::Route, if rest.is_empty() { &[1000, 1_000_000] } else { &rest })
        }
        "all" => {
            conn_lookup(&[1_000_000, 10_000_000]);
            conn_new(&[], false);
            conn_new(&[], true);
            conn_memory(10_000_000);
            engine_path(FwdMethod::Masq, &[1000, 1_000_000]);
            engine_path(FwdMethod::Route, &[1000, 1_000_000]);
        }
        _ => {
            println!(
                "usage: lvs-benches <conn-lookup [N...] | conn-new [SCHED...] | conn-new-batch [SCHED...] | conn-new-steady[-batch] SCHED [SERVERS PREFILL N] | conn-memory [N] | engine-nat [N...] | engine-dr [N...] | all>"
            );
        }
    }
}
