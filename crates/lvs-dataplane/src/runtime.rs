//! The director at run time: worker threads that move frames between AF_PACKET rings and the
//! packet engine. Each worker owns, per interface, an RX socket (in a fanout group shared by
//! all workers, so each flow stays on one worker) and a TX sender (qdisc bypass, one `sendmmsg`
//! per batch); the engine sits behind one lock, taken once per received block.
//!
//! With [`RuntimeOptions::xdp`] the workers use AF_XDP sockets instead (see [`crate::xdp`]):
//! worker `i` owns queues `i, i + W, …` of every interface, and worker 0 also reads the ARP /
//! ND tap and keeps the XDP address map in step with the engine's VIPs and the host's addresses.

use crate::ring::{Fanout, PacketSender, PacketSocket, RingConfig, RxConfig, TxConfig};
use crate::xdp::{self, XdpAttachments, XdpMode, XskConfig, XskRx, XskTx};
use lvs_core::engine::{Engine, Sink};
use lvs_core::time::Instant;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the runtime reads the time (the director's clock).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How to run.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Interface names (each must be in the engine's configuration).
    pub interfaces: Vec<String>,
    /// Worker threads (each reads every interface; fanout spreads flows over them).
    pub workers: usize,
    /// RX ring geometry.
    pub rx: RxConfig,
    /// TX batch size: `block_size * block_count / frame_size` slots of `frame_size` bytes.
    pub tx: TxConfig,
    /// Receive and transmit through AF_XDP sockets fed by an XDP program instead of AF_PACKET
    /// (needs native or generic XDP on every interface; [`Runtime::start`] fails otherwise).
    /// Workers are capped at the smallest number of RX queues.
    pub xdp: bool,
    /// AF_XDP socket geometry (with `xdp`).
    pub xsk: XskConfig,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            interfaces: Vec::new(),
            workers: 1,
            // The engine does not use the flow hash: spare the kernel computing it per frame.
            rx: RxConfig { fill_rxhash: false, ..RxConfig::default() },
            tx: TxConfig::default(),
            xdp: false,
            xsk: XskConfig::default(),
        }
    }
}

/// Running workers; [`Runtime::stop`] (or drop) ends them.
#[derive(Debug)]
pub struct Runtime {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// The first error a worker ended with, while the others may still run.
    failure: Arc<Mutex<Option<String>>>,
    /// With `xdp`: the attachments (detached when the runtime ends) and each interface's mode.
    xdp: Option<Arc<Mutex<XdpAttachments>>>,
    xdp_modes: Vec<(String, XdpMode)>,
}

/// How often timers (neighbour expiry, connection expiry) run when traffic is light.
const TICK: Duration = Duration::from_millis(50);
/// How long an idle worker sleeps in poll before checking for a stop request.
const IDLE_POLL_MS: i32 = 20;

/// One interface's RX socket of a worker.
struct Port {
    ifindex: u32,
    sock: PacketSocket,
    /// The socket reported an error (its link went down): whether the interface still exists is
    /// checked on every tick from then on, because its deletion may raise no second error.
    suspect: bool,
}

/// A worker's sockets: RX and TX apart, so frames are read from an RX block while the engine
/// writes into the TX slots (one copy, no intermediate buffer).
struct Ports {
    rx: Vec<Port>,
    tx: Vec<PacketSender>,
}

/// The TX side as the engine sees it: one sender per interface (a worker's, or the VRRP
/// speaker's for its announcements).
pub(crate) struct RingSink<'a> {
    pub(crate) ports: &'a mut [PacketSender],
}

pub(crate) fn flush_all(ports: &mut [PacketSender]) {
    for p in ports {
        // Back-pressure is not an error (frames stay queued); a refused frame was dropped.
        let _ = p.flush();
    }
}

impl Sink for RingSink<'_> {
    fn transmit<F: FnOnce(&mut [u8])>(&mut self, ifindex: u32, len: usize, fill: F) -> bool {
        let Some(port) = self.ports.iter_mut().find(|p| p.ifindex() == ifindex) else { return false };
        let mut fill = Some(fill);
        for _ in 0..2 {
            match port.try_send_with(len, |buf| {
                if let Some(f) = fill.take() {
                    f(buf)
                }
            }) {
                Ok(true) => return true,
                // All slots queued: hand the batch to the kernel and try again.
                Ok(false) => {
                    let _ = port.flush();
                }
                Err(_) => return false,
            }
        }
        false
    }
}

/// Number of TX slots the geometry describes (at least one).
fn tx_slots(tx: &TxConfig) -> usize {
    let per_block = (tx.block_size / tx.frame_size.max(1)) as usize;
    (per_block * tx.block_count as usize).max(1)
}

fn lock(engine: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    /// Opens every socket (so errors such as a missing interface or missing privileges are
    /// returned here), announces the VIPs with gratuitous ARP / unsolicited NA, and starts the
    /// workers.
    pub fn start(engine: Arc<Mutex<Engine>>, clock: Clock, opts: &RuntimeOptions) -> io::Result<Runtime> {
        if opts.interfaces.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no interfaces to run on"));
        }
        if opts.xdp {
            return Runtime::start_xdp(engine, clock, opts);
        }
        let workers = opts.workers.max(1);
        let mut sets: Vec<Ports> = (0..workers).map(|_| Ports { rx: Vec::new(), tx: Vec::new() }).collect();
        for name in &opts.interfaces {
            let ifindex = crate::iface::ifindex(name)?;
            // One fanout group per interface and process, so flows spread over the workers.
            let group = ((std::process::id() as u16) ^ (ifindex as u16).rotate_left(8)) & 0x7fff;
            for set in &mut sets {
                let rx_cfg = RingConfig {
                    rx: Some(opts.rx),
                    tx: None,
                    fanout: (workers > 1).then(|| Fanout::hash(group)),
                    ignore_outgoing: true,
                    ..RingConfig::default()
                };
                set.rx.push(Port { ifindex, sock: PacketSocket::open(name, &rx_cfg)?, suspect: false });
                set.tx.push(PacketSender::open(name, tx_slots(&opts.tx), opts.tx.frame_size as usize, true)?);
            }
        }
        {
            let mut e = lock(&engine);
            e.announce(&mut RingSink { ports: &mut sets[0].tx });
            flush_all(&mut sets[0].tx);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let threads = spawn_workers(sets, "lvs-worker", &engine, &clock, &stop, &failure, worker)?;
        Ok(Runtime { stop, threads, failure, xdp: None, xdp_modes: Vec::new() })
    }

    /// How XDP runs on each interface (empty without `xdp`).
    pub fn xdp_modes(&self) -> &[(String, XdpMode)] {
        &self.xdp_modes
    }

    fn start_xdp(engine: Arc<Mutex<Engine>>, clock: Clock, opts: &RuntimeOptions) -> io::Result<Runtime> {
        if lock(&engine).config().pass_transit {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "XDP: pass_transit needs the host to receive transit traffic, which XDP sends to lvs",
            ));
        }
        let names: Vec<(String, u32, u32)> = opts
            .interfaces
            .iter()
            .map(|n| Ok((n.clone(), crate::iface::ifindex(n)?, xdp::rx_queues(n))))
            .collect::<io::Result<_>>()?;
        let workers = names.iter().map(|n| n.2 as usize).min().unwrap_or(1).min(opts.workers.max(1));
        let largest_mtu = {
            let e = lock(&engine);
            let ifs = &e.config().interfaces;
            names
                .iter()
                .filter_map(|n| ifs.iter().find(|i| i.name == n.0))
                .map(|i| i.mtu)
                .max()
                .unwrap_or(1500)
        };
        let xsk_cfg = opts.xsk.fitting_mtu(largest_mtu)?;
        let mut att = XdpAttachments::new()?;
        {
            let vips = lock(&engine).vips().to_vec();
            att.set_addresses(&vips, &xdp::host_addresses()?)?;
        }
        let mut sets: Vec<XdpPorts> = (0..workers).map(|_| XdpPorts::default()).collect();
        let mut sockets = Vec::new();
        for (name, ifindex, queues) in &names {
            for q in 0..*queues {
                let (rx, tx) = xdp::xsk::open(*ifindex, q, &xsk_cfg)
                    .map_err(|e| io::Error::new(e.kind(), format!("XDP on `{name}`: {e}")))?;
                sockets.push((*ifindex, q, rx.fd()));
                let set = &mut sets[q as usize % workers];
                set.rx.push((*ifindex, rx));
                if !set.tx.iter().any(|t| t.ifindex() == *ifindex) {
                    set.tx.push(tx);
                }
            }
            // ARP and ND still reach the kernel; the engine reads them through this tap.
            let tap_cfg = RingConfig {
                rx: Some(RxConfig {
                    block_size: 1 << 16,
                    block_count: 4,
                    fill_rxhash: false,
                    ..RxConfig::default()
                }),
                tx: None,
                ignore_outgoing: true,
                ..RingConfig::default()
            };
            let sock = PacketSocket::open(name, &tap_cfg)?;
            xdp::attach_arp_nd_filter(sock.as_raw_fd())?;
            sets[0].taps.push(Port { ifindex: *ifindex, sock, suspect: false });
        }
        let mut modes = Vec::new();
        for (name, ifindex, queues) in &names {
            let mode = att.attach(name, *ifindex, *queues)?;
            modes.push((name.clone(), mode));
        }
        for (ifindex, q, fd) in sockets {
            att.add_socket(ifindex, q, fd)?;
        }
        {
            let mut e = lock(&engine);
            let mut sink = XskSink { ports: &mut sets[0].tx };
            e.announce(&mut sink);
            sink.flush();
        }
        let att = Arc::new(Mutex::new(att));
        sets[0].attachments = Some(att.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let threads = spawn_workers(sets, "lvs-xdp-worker", &engine, &clock, &stop, &failure, xdp_worker)?;
        Ok(Runtime { stop, threads, failure, xdp: Some(att), xdp_modes: modes })
    }

    /// The first error a worker ended with (its packets are no longer forwarded), if any; the
    /// others keep running.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the workers and waits for them; returns the first error a worker ended with.
    pub fn stop(mut self) -> io::Result<()> {
        self.halt()
    }

    fn halt(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        let mut first = Ok(());
        for t in self.threads.drain(..) {
            let r = t.join().unwrap_or_else(|_| Err(io::Error::other("a worker panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        // The workers are gone: detach the XDP programs (the sockets are closed already).
        self.xdp = None;
        first
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// One thread per socket set, named `{name}-{i}`, each running `run` until `stop` is set; the
/// first error a worker ends with is kept in `failure`.
fn spawn_workers<P: Send + 'static>(
    sets: Vec<P>,
    name: &str,
    engine: &Arc<Mutex<Engine>>,
    clock: &Clock,
    stop: &Arc<AtomicBool>,
    failure: &Arc<Mutex<Option<String>>>,
    run: fn(P, &Mutex<Engine>, &Clock, &AtomicBool) -> io::Result<()>,
) -> io::Result<Vec<JoinHandle<io::Result<()>>>> {
    sets.into_iter()
        .enumerate()
        .map(|(i, ports)| {
            let (engine, clock, stop, failure) =
                (engine.clone(), clock.clone(), stop.clone(), failure.clone());
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                let r = run(ports, &engine, &clock, &stop);
                if let Err(e) = &r {
                    let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                    f.get_or_insert_with(|| e.to_string());
                }
                r
            })
        })
        .collect()
}

fn worker(mut ports: Ports, engine: &Mutex<Engine>, clock: &Clock, stop: &AtomicBool) -> io::Result<()> {
    let mut last_tick = std::time::Instant::now();
    let mut fds: Vec<libc::pollfd> = ports
        .rx
        .iter()
        .map(|p| libc::pollfd { fd: p.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    while !stop.load(Ordering::Acquire) {
        let mut busy = false;
        let Ports { rx, tx } = &mut ports;
        for port in rx.iter_mut() {
            // One block without waiting; the engine lock is held while it is processed.
            let Some(block) = port.sock.next_block(Duration::ZERO)? else { continue };
            busy = true;
            let now = clock();
            let mut e = lock(engine);
            let mut sink = RingSink { ports: tx };
            for f in block.frames() {
                e.process(port.ifindex, f.data, now, &mut sink);
            }
            drop(e);
            drop(block);
            flush_all(tx);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = std::time::Instant::now();
            let now = clock();
            lock(engine).advance(now, &mut RingSink { ports: tx });
            flush_all(tx);
            recheck_ports(rx)?;
        }
        if !busy {
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, IDLE_POLL_MS) };
            for (fd, port) in fds.iter().zip(rx.iter_mut()) {
                if fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    check_port(port)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether an interface with this index still exists in the namespace.
fn interface_exists(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has room for IF_NAMESIZE bytes, as if_indextoname requires.
    !unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null()
}

/// After poll reported an error on a port's socket: an interface that went down comes back by
/// itself (reading the error clears it, so poll waits again instead of spinning); one that is
/// gone ends the worker with an error naming it.
fn check_port(port: &mut Port) -> io::Result<()> {
    let err = port.sock.take_socket_error()?;
    port.suspect = true;
    port_exists(port, err)
}

/// [`port_exists`] for every port whose socket has reported an error before.
fn recheck_ports(ports: &[Port]) -> io::Result<()> {
    ports.iter().filter(|p| p.suspect).try_for_each(|p| port_exists(p, None))
}

/// Ok while the port's interface exists; an error naming it (and the socket's error) once it is gone.
fn port_exists(port: &Port, err: Option<io::Error>) -> io::Result<()> {
    let name = port.sock.ifname();
    match crate::iface::ifindex(name) {
        Ok(i) if i == port.ifindex => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            match err {
                Some(e) => format!("interface `{name}` is gone ({e})"),
                None => format!("interface `{name}` is gone"),
            },
        )),
    }
}

/// A worker's AF_XDP sockets; worker 0 also has the ARP / ND taps and the address map upkeep.
#[derive(Default)]
struct XdpPorts {
    rx: Vec<(u32, XskRx)>,
    tx: Vec<XskTx>,
    taps: Vec<Port>,
    attachments: Option<Arc<Mutex<XdpAttachments>>>,
}

/// Frames one worker takes from one socket before looking at the others.
const XDP_BATCH: u32 = 256;
/// Below this many frames per round, the worker waits [`XDP_COALESCE`] before the next one.
const XDP_SMALL_BATCH: usize = 32;
/// How long a round that found few frames waits for more (bounded extra latency).
const XDP_COALESCE: Duration = Duration::from_micros(50);
/// How often worker 0 re-reads the host's addresses for the XDP address map.
const HOST_ADDR_REFRESH: Duration = Duration::from_secs(1);

/// The TX side over AF_XDP sockets, one per interface.
struct XskSink<'a> {
    ports: &'a mut [XskTx],
}

impl XskSink<'_> {
    fn flush(&mut self) {
        for p in self.ports.iter_mut() {
            p.flush();
        }
    }
}

impl Sink for XskSink<'_> {
    fn transmit<F: FnOnce(&mut [u8])>(&mut self, ifindex: u32, len: usize, fill: F) -> bool {
        match self.ports.iter_mut().find(|p| p.ifindex() == ifindex) {
            Some(p) => p.send_with(len, fill),
            None => false,
        }
    }
}

fn xdp_worker(
    mut ports: XdpPorts,
    engine: &Mutex<Engine>,
    clock: &Clock,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut last_tick = std::time::Instant::now();
    let mut host_refresh = std::time::Instant::now();
    let mut host = xdp::host_addresses().unwrap_or_default();
    let mut fds: Vec<libc::pollfd> = ports
        .rx
        .iter()
        .map(|(_, x)| x.fd())
        .chain(ports.taps.iter().map(|t| t.sock.as_raw_fd()))
        .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
        .collect();
    while !stop.load(Ordering::Acquire) {
        let mut busy = false;
        let mut frames = 0;
        let XdpPorts { rx, tx, taps, attachments } = &mut ports;
        for (ifindex, x) in rx.iter_mut() {
            if x.pending() == 0 {
                continue;
            }
            let now = clock();
            let mut e = lock(engine);
            let mut sink = XskSink { ports: tx };
            let n = x.recv(XDP_BATCH, |f| {
                e.process(*ifindex, f, now, &mut sink);
            });
            drop(e);
            // A ring that claims frames but yields none (its interface went away) is not work:
            // the round must reach poll, which reports the error.
            busy |= n > 0;
            frames += n;
        }
        // The taps are rings in shared memory: looking costs no system call.
        for port in taps.iter_mut() {
            let Some(block) = port.sock.next_block(Duration::ZERO)? else { continue };
            busy = true;
            let now = clock();
            let mut e = lock(engine);
            let mut sink = XskSink { ports: tx };
            for f in block.frames() {
                e.process(port.ifindex, f.data, now, &mut sink);
            }
        }
        // Publishes this round's frames (and sends leftovers of a busy wakeup).
        XskSink { ports: tx }.flush();
        if last_tick.elapsed() >= TICK {
            last_tick = std::time::Instant::now();
            let now = clock();
            let mut e = lock(engine);
            e.advance(now, &mut XskSink { ports: tx });
            if let Some(att) = attachments {
                if host_refresh.elapsed() >= HOST_ADDR_REFRESH {
                    host_refresh = std::time::Instant::now();
                    if let Ok(h) = xdp::host_addresses() {
                        host = h;
                    }
                }
                // Until the map lists a VIP that is also a host address, the kernel gets its
                // frames; a failed update is not fatal, the next tick tries again.
                let _ = att.lock().unwrap_or_else(|p| p.into_inner()).set_addresses(e.vips(), &host);
            }
            drop(e);
            XskSink { ports: tx }.flush();
            recheck_ports(taps)?;
        }
        if !busy {
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, IDLE_POLL_MS) };
            let failed =
                |fd: &libc::pollfd| fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            if fds.iter().any(failed) {
                // The taps tell whether an interface is gone (which ends the worker) or down.
                for (fd, port) in fds[rx.len()..].iter().zip(taps.iter_mut()) {
                    if failed(fd) {
                        check_port(port)?;
                    }
                }
                for (fd, (ifindex, _)) in fds.iter().zip(rx.iter()) {
                    if failed(fd) && !interface_exists(*ifindex) {
                        // The interface's tap names it in the error.
                        if let Some(tap) = taps.iter_mut().find(|t| t.ifindex == *ifindex) {
                            check_port(tap)?;
                        }
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("interface {ifindex} is gone (AF_XDP socket error)"),
                        ));
                    }
                }
                // A link that is down keeps its sockets in error: wait as an idle round would,
                // instead of spinning on poll.
                std::thread::sleep(Duration::from_millis(IDLE_POLL_MS as u64));
            }
        } else if frames > 0 && frames < XDP_SMALL_BATCH {
            // Frames trickle in: let a batch gather (like a NIC's interrupt moderation) rather
            // than pay the loop and a TX wakeup for every one or two frames.
            std::thread::sleep(XDP_COALESCE);
        }
    }
    Ok(())
}
