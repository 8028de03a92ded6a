//! Test fixtures: private network namespaces joined by a veth pair, a thread
//! runner that enters a namespace, and a self-checking test frame format.
//!
//! Everything is created inside namespaces this process creates, with names
//! that include the process id, and torn down by guards (also on panic).

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

/// True (after printing why) when the test cannot run here.
pub fn skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP {test}: needs root (network namespaces, veth, AF_PACKET with CAP_NET_RAW)");
        return true;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIP {test}: iproute2 `ip` not found");
        return true;
    }
    false
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A network namespace that is deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn add(name: String) -> Netns {
        // A leftover from an earlier run with the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Two namespaces `a` and `b` joined by veth `if_a` (in `a`) <-> `if_b` (in `b`),
/// both up, IPv6 off (so the kernel sends no RS/DAD/MLD noise), no addresses.
#[derive(Debug)]
pub struct VethNet {
    pub a: Netns,
    pub b: Netns,
    pub if_a: String,
    pub if_b: String,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

impl VethNet {
    /// `tag`: a short (<= 3 chars) test tag, unique within the test binary.
    pub fn new(tag: &str) -> VethNet {
        assert!(tag.len() <= 3, "tag too long for IFNAMSIZ");
        let pid = std::process::id();
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let a = Netns::add(format!("lvsdp-{pid}-{tag}{n}-a"));
        let b = Netns::add(format!("lvsdp-{pid}-{tag}{n}-b"));
        let id = format!("{}{tag}{n}", pid % 10_000_000);
        let (if_a, if_b) = (format!("l{id}a"), format!("l{id}b"));
        assert!(if_a.len() < 16, "interface name {if_a} too long");
        for ns in [&a, &b] {
            in_netns(&ns.name, || {
                for key in ["all", "default"] {
                    // Absent when the kernel has no IPv6; then there is no noise either.
                    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1");
                }
            });
        }
        ip(&["-n", &a.name, "link", "add", &if_a, "type", "veth", "peer", "name", &if_b, "netns", &b.name]);
        ip(&["-n", &a.name, "link", "set", &if_a, "up"]);
        ip(&["-n", &b.name, "link", "set", &if_b, "up"]);
        let net = VethNet { a, b, if_a, if_b };
        net.wait_up();
        net
    }

    /// Waits (bounded) until both ends report operstate UP, i.e. the kernel's
    /// link watch has activated the devices' queues.
    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for (ns, ifname) in [(&self.a.name, &self.if_a), (&self.b.name, &self.if_b)] {
            loop {
                let out = Command::new("ip")
                    .args(["-n", ns, "-o", "link", "show", "dev", ifname])
                    .output()
                    .expect("run ip link show");
                if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                    break;
                }
                assert!(Instant::now() < deadline, "{ifname} in {ns} did not come up within 5 s");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn enter_netns(ns: &str) {
    let path = format!("/var/run/netns/{ns}");
    let f = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: `f` is an open namespace file; setns only affects this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
}

/// Runs `f` on a new thread inside network namespace `ns` and returns its
/// result (re-raising its panic).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match spawn_in_netns(s, ns, f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    })
}

/// Spawns a scoped thread that enters `ns` and runs `f`. Threads it spawns
/// itself start in the same namespace.
pub fn spawn_in_netns<'scope, 'env, T: Send + 'scope>(
    s: &'scope Scope<'scope, 'env>,
    ns: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> ScopedJoinHandle<'scope, T> {
    let ns = ns.to_owned();
    s.spawn(move || {
        enter_netns(&ns);
        f()
    })
}

/// Joins all handles, re-raising the first panic after all have finished.
pub fn join_all<T>(handles: Vec<ScopedJoinHandle<'_, T>>) -> Vec<T> {
    let mut out = Vec::new();
    let mut panic = None;
    for h in handles {
        match h.join() {
            Ok(v) => out.push(v),
            Err(p) => {
                panic.get_or_insert(p);
            }
        }
    }
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    out
}

/// Waits (bounded) for `flag`; panics with `what` on timeout.
pub fn wait_flag(flag: &AtomicBool, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while !flag.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ------------------------------------------------------------ test frames

/// IEEE 802 "local experimental" ethertype.
pub const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const MAGIC: &[u8; 4] = b"LVSD";
/// magic + kind + run + seq
const TAG: usize = 4 + 1 + 4 + 4;
/// Ethernet + IPv4 + UDP headers of a flow frame.
const FLOW_HDRS: usize = 14 + 20 + 8;

pub const WARMUP: u8 = 1;
pub const DATA: u8 = 2;
pub const ECHO: u8 = 3;

/// Length of data frame `seq`: 60..=1459 bytes.
pub fn frame_len(seq: u32) -> usize {
    60 + (seq as usize * 37) % 1400
}

fn pattern(seq: u32, i: usize) -> u8 {
    (seq.wrapping_mul(31) as usize).wrapping_add(i.wrapping_mul(7)) as u8
}

/// Builds a broadcast test frame of `frame_len(seq)` bytes into `buf`, with
/// the experimental ethertype and the test tag right after the Ethernet header.
pub fn build_frame(buf: &mut Vec<u8>, run: u32, kind: u8, seq: u32) {
    build(buf, run, kind, seq, None);
}

/// Like [`build_frame`] but as an IPv4/UDP packet 10.79.0.1:(20000+flow) ->
/// 10.79.0.2:9, so the kernel's flow hash differs per `flow` (the test tag
/// follows the UDP header). Only ever sent inside the test namespaces, which
/// have no IPv4 addresses, so the stack just drops it.
pub fn build_flow_frame(buf: &mut Vec<u8>, run: u32, kind: u8, seq: u32, flow: u16) {
    build(buf, run, kind, seq, Some(flow));
}

fn build(buf: &mut Vec<u8>, run: u32, kind: u8, seq: u32, flow: Option<u16>) {
    let len = frame_len(seq);
    buf.clear();
    buf.extend_from_slice(&[0xff; 6]);
    buf.extend_from_slice(&[0x02, 0x4c, 0x56, 0x53, 0x00, 0x01]);
    if let Some(flow) = flow {
        buf.extend_from_slice(&ETHERTYPE_IPV4);
        let ip_len = (len - 14) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&[10, 79, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 79, 0, 2]);
        let sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        let csum = !(((folded & 0xffff) + (folded >> 16)) as u16);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        buf.extend_from_slice(&ip);
        buf.extend_from_slice(&(20000 + flow).to_be_bytes());
        buf.extend_from_slice(&9u16.to_be_bytes());
        buf.extend_from_slice(&(ip_len - 20).to_be_bytes());
        buf.extend_from_slice(&[0, 0]); // no UDP checksum (allowed for IPv4)
    } else {
        buf.extend_from_slice(&ETHERTYPE);
    }
    buf.extend_from_slice(MAGIC);
    buf.push(kind);
    buf.extend_from_slice(&run.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    for i in buf.len()..len {
        buf.push(pattern(seq, i));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not a test frame of this run.
    Foreign,
    /// An intact test frame.
    Ours { kind: u8, seq: u32 },
    /// A test frame of this run whose bytes do not match.
    Corrupt(String),
}

/// Offset of the test tag: after the Ethernet header, or after IPv4+UDP.
fn tag_offset(f: &[u8]) -> Option<usize> {
    match f.get(12..14)? {
        t if t == ETHERTYPE => Some(14),
        t if t == ETHERTYPE_IPV4 && f.get(23) == Some(&17) => Some(FLOW_HDRS),
        _ => None,
    }
}

pub fn parse_frame(f: &[u8], run: u32) -> Parsed {
    let Some(off) = tag_offset(f) else {
        return Parsed::Foreign;
    };
    let Some(tag) = f.get(off..off + TAG) else {
        return Parsed::Foreign;
    };
    if &tag[..4] != MAGIC || u32::from_be_bytes([tag[5], tag[6], tag[7], tag[8]]) != run {
        return Parsed::Foreign;
    }
    let kind = tag[4];
    let seq = u32::from_be_bytes([tag[9], tag[10], tag[11], tag[12]]);
    if f.len() != frame_len(seq) {
        return Parsed::Corrupt(format!("seq {seq}: length {} != {}", f.len(), frame_len(seq)));
    }
    if let Some(i) = (off + TAG..f.len()).find(|&i| f[i] != pattern(seq, i)) {
        return Parsed::Corrupt(format!("seq {seq}: byte {i} is {:#x}, want {:#x}", f[i], pattern(seq, i)));
    }
    Parsed::Ours { kind, seq }
}

/// The source UDP port's flow number of a flow frame.
pub fn flow_of(f: &[u8]) -> Option<u16> {
    (tag_offset(f)? == FLOW_HDRS).then(|| u16::from_be_bytes([f[34], f[35]]) - 20000)
}

/// Rewrites a test frame's kind byte in place.
pub fn set_kind(f: &mut [u8], kind: u8) {
    let off = tag_offset(f).expect("a test frame");
    f[off + 4] = kind;
}

/// A run id unique within this process.
pub fn run_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    (std::process::id() << 8) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// How often each sequence number was seen.
#[derive(Debug, Clone)]
pub struct Seen {
    counts: Vec<u32>,
    pub distinct: usize,
    pub dupes: usize,
}

impl Seen {
    pub fn new(n: usize) -> Seen {
        Seen { counts: vec![0; n], distinct: 0, dupes: 0 }
    }

    pub fn add(&mut self, seq: u32) {
        let c = self.counts.get_mut(seq as usize).unwrap_or_else(|| panic!("seq {seq} out of range"));
        *c += 1;
        if *c == 1 {
            self.distinct += 1;
        } else {
            self.dupes += 1;
        }
    }

    pub fn complete(&self) -> bool {
        self.distinct == self.counts.len()
    }

    pub fn merge(&mut self, other: &Seen) {
        for (seq, &c) in other.counts.iter().enumerate() {
            for _ in 0..c {
                self.add(seq as u32);
            }
        }
    }

    /// The sequence numbers seen at least once.
    pub fn seqs(&self) -> impl Iterator<Item = u32> + '_ {
        self.counts.iter().enumerate().filter(|(_, &c)| c > 0).map(|(s, _)| s as u32)
    }

    pub fn missing(&self) -> Vec<u32> {
        self.counts.iter().enumerate().filter(|(_, &c)| c == 0).map(|(s, _)| s as u32).take(20).collect()
    }

    pub fn assert_exactly_once(&self, what: &str) {
        assert_eq!(self.dupes, 0, "{what}: {} duplicate frames", self.dupes);
        assert!(
            self.complete(),
            "{what}: got {}/{} frames, first missing: {:?}",
            self.distinct,
            self.counts.len(),
            self.missing()
        );
    }
}
