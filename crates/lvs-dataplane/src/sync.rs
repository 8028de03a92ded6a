//! The sockets of the connection-sync daemons (`ip_vs_sync.c` `make_send_sock` /
//! `make_receive_sock`), on two threads that follow the daemons started in the engine's table
//! (`--start-daemon` / `--stop-daemon` only change the table; these threads notice within
//! [`POLL`] and open or close their socket):
//!
//! * **sender**: a UDP socket bound to the multicast interface's address, multicast sent out of
//!   that interface with the daemon's TTL, no loopback, no path-MTU discovery, connected to
//!   group:port; it drains [`lvs_core::Ipvs::sync_take`] every 20 ms (`IPVS_SYNC_SEND_DELAY`).
//! * **receiver**: a UDP socket bound to group:port on the interface (`SO_BINDTODEVICE`) that has
//!   joined the group there; each datagram goes to [`lvs_core::Ipvs::sync_apply`] under the
//!   engine lock (which filters the sync id and counts malformed messages).
//!
//! Socket errors never end the threads: they are counted, the last one is kept in
//! [`SyncIoStatus`], and the socket is opened again after [`RETRY`].

use crate::runtime::Clock;
use lvs_core::engine::Engine;
use lvs_core::ipvsadm::SyncRole;
use lvs_core::sync::Daemon;
use std::ffi::CString;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the threads look at the daemons in the table (and the sender drains it).
pub const POLL: Duration = Duration::from_millis(20);
/// How long after a socket error the socket is opened again.
pub const RETRY: Duration = Duration::from_secs(1);

/// What the sync sockets have done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncIoStatus {
    /// Messages sent by the master.
    pub sent: u64,
    /// Send errors (the message is lost, as in the kernel).
    pub send_errors: u64,
    /// Datagrams received by the backup.
    pub received: u64,
    /// Receive errors and failures to open a socket.
    pub errors: u64,
    /// The last error, with the daemon it concerns.
    pub last_error: Option<String>,
}

/// The running sync threads; [`SyncIo::stop`] (or drop) ends them.
#[derive(Debug)]
pub struct SyncIo {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<SyncIoStatus>>,
    threads: Vec<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SyncIo {
    /// Starts the sender and receiver threads over `engine`.
    pub fn start(engine: Arc<Mutex<Engine>>, clock: Clock) -> io::Result<SyncIo> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(SyncIoStatus::default()));
        let mut threads = Vec::new();
        for role in [SyncRole::Master, SyncRole::Backup] {
            let (engine, clock, stop, status) = (engine.clone(), clock.clone(), stop.clone(), status.clone());
            let name = if role == SyncRole::Master { "lvs-sync-master" } else { "lvs-sync-backup" };
            threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || run(role, &engine, &clock, &stop, &status))?,
            );
        }
        Ok(SyncIo { stop, status, threads })
    }

    /// A snapshot of the counters.
    pub fn status(&self) -> SyncIoStatus {
        lock(&self.status).clone()
    }

    /// Stops the threads and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for SyncIo {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One thread: follows the daemon of `role` in the table.
fn run(
    role: SyncRole,
    engine: &Mutex<Engine>,
    clock: &Clock,
    stop: &AtomicBool,
    status: &Mutex<SyncIoStatus>,
) {
    let mut open: Option<(Daemon, UdpSocket)> = None;
    let mut retry_at: Option<Instant> = None;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Acquire) {
        let want = lock(engine).ipvs().daemons().into_iter().find(|d| d.role == role);
        if open.as_ref().map(|(d, _)| d) != want.as_ref() {
            open = None;
            retry_at = None;
        }
        let Some(daemon) = want else {
            std::thread::sleep(POLL);
            continue;
        };
        if open.is_none() && retry_at.is_none_or(|t| Instant::now() >= t) {
            let sock = match role {
                SyncRole::Master => send_socket(&daemon),
                SyncRole::Backup => receive_socket(&daemon),
            };
            match sock {
                Ok(s) => open = Some((daemon.clone(), s)),
                Err(e) => {
                    report(status, &daemon, "open", &e);
                    retry_at = Some(Instant::now() + RETRY);
                }
            }
        }
        let Some((_, sock)) = open.as_ref() else {
            std::thread::sleep(POLL);
            continue;
        };
        let failed = match role {
            SyncRole::Master => send_pending(sock, engine, clock, status, &daemon),
            SyncRole::Backup => receive(sock, &mut buf, engine, clock, status, &daemon),
        };
        if failed {
            open = None;
            retry_at = Some(Instant::now() + RETRY);
        }
    }
}

fn report(status: &Mutex<SyncIoStatus>, d: &Daemon, what: &str, e: &io::Error) {
    let mut s = lock(status);
    s.errors += 1;
    s.last_error = Some(format!("{} sync daemon on {}: {what}: {e}", role_name(d.role), d.mcast_interface));
}

fn role_name(r: SyncRole) -> &'static str {
    match r {
        SyncRole::Master => "master",
        SyncRole::Backup => "backup",
    }
}

/// Sends every message due, then waits [`POLL`]. True when the socket should be reopened.
fn send_pending(
    sock: &UdpSocket,
    engine: &Mutex<Engine>,
    clock: &Clock,
    status: &Mutex<SyncIoStatus>,
    d: &Daemon,
) -> bool {
    loop {
        let msg = {
            let mut e = lock(engine);
            let now = clock();
            e.ipvs_mut().sync_take(now, false)
        };
        let Some(msg) = msg else { break };
        match sock.send(&msg) {
            Ok(_) => lock(status).sent += 1,
            // A full socket buffer loses the message, as MSG_DONTWAIT does in the kernel.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => lock(status).send_errors += 1,
            Err(e) => {
                lock(status).send_errors += 1;
                report(status, d, "send", &e);
                return true;
            }
        }
    }
    std::thread::sleep(POLL);
    false
}

/// Receives for up to [`POLL`] and applies what arrived. True when the socket should be reopened.
fn receive(
    sock: &UdpSocket,
    buf: &mut [u8],
    engine: &Mutex<Engine>,
    clock: &Clock,
    status: &Mutex<SyncIoStatus>,
    d: &Daemon,
) -> bool {
    match sock.recv(buf) {
        Ok(n) => {
            lock(status).received += 1;
            let mut e = lock(engine);
            let now = clock();
            e.ipvs_mut().sync_apply(&buf[..n], now);
            false
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => false,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
        Err(e) => {
            report(status, d, "receive", &e);
            true
        }
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the given size for the duration of the call.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
}

/// A new UDP socket of the group's family.
fn udp_socket(v6: bool) -> io::Result<UdpSocket> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket from here on.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::IPPROTO_UDP) };
    check(fd)?;
    // SAFETY: `fd` is a fresh, valid UDP socket nobody else owns.
    Ok(unsafe { UdpSocket::from_raw_fd(fd) })
}

fn bind_to_device(fd: RawFd, name: &str) -> io::Result<()> {
    let c =
        CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"))?;
    let bytes = c.as_bytes_with_nul();
    // SAFETY: `bytes` is a live NUL-terminated buffer of the given length.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            bytes.as_ptr() as *const libc::c_void,
            bytes.len() as libc::socklen_t,
        )
    })
}

fn v4_mreqn(group: std::net::Ipv4Addr, ifindex: u32) -> libc::ip_mreqn {
    libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: u32::from(group).to_be() },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    }
}

/// `make_send_sock`.
fn send_socket(d: &Daemon) -> io::Result<UdpSocket> {
    let ifc = crate::iface::interface(&d.mcast_interface)?;
    let sock = udp_socket(d.mcast_group.is_ipv6())?;
    let fd = sock.as_raw_fd();
    match d.mcast_group {
        IpAddr::V4(g) => {
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &v4_mreqn(g, ifc.index))?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &0 as &libc::c_int)?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &(d.mcast_ttl as libc::c_int))?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &libc::IP_PMTUDISC_DONT)?;
            // Bound to the interface's address, so backups see where the updates come from.
            let src = ifc.addrs.iter().map(|a| a.addr).find(IpAddr::is_ipv4);
            let src = src.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            bind(&sock, SocketAddr::new(src, 0))?;
        }
        IpAddr::V6(_) => {
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &(ifc.index as libc::c_int))?;
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &0 as &libc::c_int)?;
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &(d.mcast_ttl as libc::c_int))?;
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, &libc::IPV6_PMTUDISC_DONT)?;
        }
    }
    sock.connect(SocketAddr::new(d.mcast_group, d.mcast_port))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// `make_receive_sock`.
fn receive_socket(d: &Daemon) -> io::Result<UdpSocket> {
    let ifindex = crate::iface::ifindex(&d.mcast_interface)?;
    let sock = udp_socket(d.mcast_group.is_ipv6())?;
    let fd = sock.as_raw_fd();
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1 as &libc::c_int)?;
    bind_to_device(fd, &d.mcast_interface)?;
    bind(&sock, SocketAddr::new(d.mcast_group, d.mcast_port))?;
    match d.mcast_group {
        IpAddr::V4(g) => setsockopt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &v4_mreqn(g, ifindex))?,
        IpAddr::V6(g) => {
            let m = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr { s6_addr: g.octets() },
                ipv6mr_interface: ifindex,
            };
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &m)?;
        }
    }
    sock.set_read_timeout(Some(POLL))?;
    Ok(sock)
}

/// bind(2) for an already created socket (std only binds while creating).
fn bind(sock: &UdpSocket, addr: SocketAddr) -> io::Result<()> {
    let fd = sock.as_raw_fd();
    match addr {
        SocketAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: `sa` is a valid sockaddr_in of the given size.
            check(unsafe {
                libc::bind(
                    fd,
                    &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            })
        }
        SocketAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sa` is a valid sockaddr_in6 of the given size.
            check(unsafe {
                libc::bind(
                    fd,
                    &sa as *const libc::sockaddr_in6 as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            })
        }
    }
}
