//! `lvs-tun-encap`: the sending half of IP-in-IP, for test benches.
//!
//! Creates a TUN device; every IP packet the kernel routes into it is sent,
//! wrapped in an outer IP header, to one of the `--to` addresses through a raw
//! socket (the kernel writes the outer header: protocol 4 for an IPv4 inner
//! packet, 41 for IPv6). The destination is chosen by a hash of the inner
//! flow (addresses, protocol, ports), so a TCP connection stays on one real
//! server. With `ip route add VIP dev TUN` and forwarding on, this turns a
//! network namespace into a kernel-forwarding LVS/TUN-style director, which the
//! end-to-end tests use to exercise real servers running `lvs-tun-decap`
//! before (and besides) the lvs engine.
//!
//! Usage: `lvs-tun-encap --tun NAME --to ADDR [--to ADDR]... [--mtu N]
//! [--count N] [--max-seconds S]`. Inner IPv4 goes to an IPv4 `--to` address
//! if there is one, else IPv6 (4in6); likewise IPv6 prefers IPv6.

mod common;

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{install_stop_handlers, Args, Limits};
use lvs_dataplane::decap::{PROTO_IPIP, PROTO_IPV6};
use lvs_dataplane::tun::{self, TunDevice};

const USAGE: &str =
    "usage: lvs-tun-encap --tun NAME --to ADDR [--to ADDR]... [--mtu N] [--count N] [--max-seconds S]";

#[derive(Debug)]
struct Options {
    tun: String,
    to: Vec<IpAddr>,
    mtu: u32,
    limits: Limits,
}

fn parse_args() -> Result<Options, String> {
    let mut args = Args::from_env();
    let mut o = Options { tun: "lvsenc0".into(), to: Vec::new(), mtu: 1480, limits: Limits::default() };
    while let Some(flag) = args.next_flag() {
        if o.limits.parse_flag(&flag, &mut args)? {
            continue;
        }
        match flag.as_str() {
            "--tun" => o.tun = args.value(&flag)?,
            "--to" => o.to.push(args.value(&flag)?),
            "--mtu" => o.mtu = args.value(&flag)?,
            "--help" | "-h" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument `{flag}`\n{USAGE}")),
        }
    }
    if o.to.is_empty() {
        return Err(format!("at least one --to address is required\n{USAGE}"));
    }
    Ok(o)
}

/// FNV-1a over the inner flow: addresses, protocol and (first fragment of
/// TCP/UDP/SCTP) ports. `None` for a packet that is not IPv4/IPv6.
fn flow_hash(p: &[u8]) -> Option<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let (proto, l4) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            eat(p.get(12..20)?);
            let first_frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x1fff == 0;
            (*p.get(9)?, if first_frag { p.get(ihl..) } else { None })
        }
        6 => {
            eat(p.get(8..40)?);
            (*p.get(6)?, p.get(40..))
        }
        _ => return None,
    };
    eat(&[proto]);
    if matches!(proto, 6 | 17 | 132) {
        if let Some(ports) = l4.and_then(|l| l.get(..4)) {
            eat(ports);
        }
    }
    Some(h)
}

/// A raw socket sending IP packets with protocol `proto` (4 or 41) in an
/// outer IPv4 or IPv6 header.
struct RawSender {
    fd: OwnedFd,
}

impl RawSender {
    fn open(v6: bool, proto: u8) -> io::Result<RawSender> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain system call with integer arguments.
        let raw =
            unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::c_int::from(proto)) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("raw socket (protocol {proto}): {e}")));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // This socket only sends: keep its receive queue (copies of incoming
        // tunnel packets) as small as the kernel allows.
        let small: libc::c_int = 1;
        // SAFETY: a valid c_int option value of the stated size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&small as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        Ok(RawSender { fd })
    }

    fn send(&self, payload: &[u8], to: IpAddr) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        let rc = match to {
            IpAddr::V4(a) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: valid buffer and a sockaddr_in of the stated size.
                unsafe {
                    libc::sendto(
                        fd,
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
                // SAFETY: valid buffer and a sockaddr_in6 of the stated size.
                unsafe {
                    libc::sendto(
                        fd,
                        payload.as_ptr().cast(),
                        payload.len(),
                        0,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    )
                }
            }
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Picks the destination for an inner packet of version `inner_v6`.
fn pick(to: &[IpAddr], inner_v6: bool, hash: u64) -> Option<IpAddr> {
    let same: Vec<IpAddr> = to.iter().copied().filter(|a| a.is_ipv6() == inner_v6).collect();
    let pool = if same.is_empty() { to } else { &same[..] };
    if pool.is_empty() {
        return None;
    }
    pool.get((hash % pool.len() as u64) as usize).copied()
}

fn run(o: &Options) -> io::Result<()> {
    install_stop_handlers()?;
    let dev = TunDevice::create(&o.tun)?;
    tun::set_mtu(dev.name(), o.mtu)?;
    tun::set_up(dev.name())?;
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{}/accept_ra", dev.name()), "0");
    // [outer v4][outer v6] x [proto 4][proto 41], opened on first use.
    let mut senders: [[Option<RawSender>; 2]; 2] = Default::default();
    let mut per_dest = vec![0u64; o.to.len()];
    let (mut packets, mut sent, mut errors, mut unknown) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = vec![0u8; 65536];
    eprintln!(
        "lvs-tun-encap: ready tun={} mtu={} to={}",
        dev.name(),
        o.mtu,
        o.to.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
    );
    let started = Instant::now();
    let reason = loop {
        if let Some(r) = o.limits.reason(sent, started) {
            break r;
        }
        let Some(n) = dev.read_timeout(&mut buf, Duration::from_millis(100))? else {
            continue;
        };
        packets += 1;
        let packet = &buf[..n];
        let Some(hash) = flow_hash(packet) else {
            unknown += 1;
            continue;
        };
        let inner_v6 = packet[0] >> 4 == 6;
        let Some(dest) = pick(&o.to, inner_v6, hash) else {
            unknown += 1;
            continue;
        };
        let (fam, proto) = (usize::from(dest.is_ipv6()), if inner_v6 { PROTO_IPV6 } else { PROTO_IPIP });
        let slot = &mut senders[fam][usize::from(inner_v6)];
        if slot.is_none() {
            *slot = Some(RawSender::open(dest.is_ipv6(), proto)?);
        }
        let result = slot.as_ref().map_or(Ok(()), |s| s.send(packet, dest));
        match result {
            Ok(()) => {
                sent += 1;
                if let Some(i) = o.to.iter().position(|a| *a == dest) {
                    per_dest[i] += 1;
                }
            }
            Err(e) => {
                errors += 1;
                if errors <= 10 {
                    eprintln!("lvs-tun-encap: send to {dest}: {e}");
                }
            }
        }
    };
    let dests: Vec<String> = o.to.iter().zip(&per_dest).map(|(a, n)| format!("{a}={n}")).collect();
    eprintln!(
        "lvs-tun-encap: exit ({reason}) packets={packets} sent={sent} errors={errors} unknown={unknown} {}",
        dests.join(" ")
    );
    Ok(())
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lvs-tun-encap: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&[10, 0, 0, 100]);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&[0, 80, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn flow_hash_is_per_flow() {
        let a = flow_hash(&v4([10, 0, 0, 1], 1000)).unwrap();
        assert_eq!(a, flow_hash(&v4([10, 0, 0, 1], 1000)).unwrap());
        assert_ne!(a, flow_hash(&v4([10, 0, 0, 1], 1001)).unwrap());
        assert_ne!(a, flow_hash(&v4([10, 0, 0, 2], 1000)).unwrap());
        assert!(flow_hash(&[]).is_none());
        assert!(flow_hash(&[0x45, 0]).is_none());
        assert!(flow_hash(&[0x10; 60]).is_none());
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        v6.extend_from_slice(&[1; 32]);
        assert!(flow_hash(&v6).is_some(), "ports missing: hashed without them");
        // Many flows spread over two destinations.
        let to: Vec<IpAddr> = vec!["10.0.0.11".parse().unwrap(), "10.0.0.12".parse().unwrap()];
        let mut n = [0; 2];
        for port in 0..1000u16 {
            let d = pick(&to, false, flow_hash(&v4([10, 0, 0, 1], port)).unwrap()).unwrap();
            n[usize::from(d == to[1])] += 1;
        }
        assert!(n[0] > 400 && n[1] > 400, "{n:?}");
    }

    #[test]
    fn pick_prefers_the_inner_family() {
        let to: Vec<IpAddr> = vec!["10.0.0.11".parse().unwrap(), "fd00::11".parse().unwrap()];
        assert_eq!(pick(&to, false, 7), Some(to[0]));
        assert_eq!(pick(&to, true, 7), Some(to[1]));
        let only4 = &to[..1];
        assert_eq!(pick(only4, true, 3), Some(to[0]), "6in4 when there is no IPv6 destination");
        assert_eq!(pick(&[], true, 3), None);
    }
}
