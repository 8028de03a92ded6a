//! The director at run time: worker threads that move frames between AF_PACKET rings and the
//! packet engine. Each worker owns, per interface, an RX socket (in a fanout group shared by
//! all workers, so each flow stays on one worker) and a TX sender (qdisc bypass, one `sendmmsg`
//! per batch); the engine sits behind one lock, taken once per received block.

use crate::ring::{Fanout, PacketSender, PacketSocket, RingConfig, RxConfig, TxConfig};
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
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            interfaces: Vec::new(),
            workers: 1,
            // The engine does not use the flow hash: spare the kernel computing it per frame.
            rx: RxConfig { fill_rxhash: false, ..RxConfig::default() },
            tx: TxConfig::default(),
        }
    }
}

/// Running workers; [`Runtime::stop`] (or drop) ends them.
#[derive(Debug)]
pub struct Runtime {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

/// How often timers (neighbour expiry, connection expiry) run when traffic is light.
const TICK: Duration = Duration::from_millis(50);
/// How long an idle worker sleeps in poll before checking for a stop request.
const IDLE_POLL_MS: i32 = 20;

/// One interface's RX socket of a worker.
struct Port {
    ifindex: u32,
    sock: PacketSocket,
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
                set.rx.push(Port { ifindex, sock: PacketSocket::open(name, &rx_cfg)? });
                set.tx.push(PacketSender::open(name, tx_slots(&opts.tx), opts.tx.frame_size as usize, true)?);
            }
        }
        {
            let mut e = lock(&engine);
            e.announce(&mut RingSink { ports: &mut sets[0].tx });
            flush_all(&mut sets[0].tx);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sets
            .into_iter()
            .enumerate()
            .map(|(i, ports)| {
                let (engine, clock, stop) = (engine.clone(), clock.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("lvs-worker-{i}"))
                    .spawn(move || worker(ports, &engine, &clock, &stop))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Runtime { stop, threads })
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
        first
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.halt();
    }
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
        }
        if !busy {
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, IDLE_POLL_MS) };
        }
    }
    Ok(())
}
