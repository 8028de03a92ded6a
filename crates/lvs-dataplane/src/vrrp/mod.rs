//! The VRRP speaker at run time: one thread drives the pure [`lvs_core::vrrp`] instances over raw
//! IP sockets and the director's engine.
//!
//! The thread polls the instances' sockets (one per interface and address family, shared by the
//! instances on it and demultiplexed by VRID) with the earliest instance deadline as timeout, feeds
//! received adverts to [`Instance::receive`] and due timers to [`Instance::poll`], and carries out
//! the actions: `Send` as an IP packet in keepalived's form, `ClaimVips` / `ReleaseVips` as the
//! engine's VIP ownership ([`Engine::set_vip_ownership`]: a backup neither answers ARP / ND for
//! its VIPs nor balances them), `Garp` as rounds of [`Engine::announce_addrs`] through the
//! speaker's own small TX rings, `Transition` / `Log` as [`Event`]s. Members of a sync group
//! move together ([`SyncGroup`]). [`Speaker::stop`] shuts every instance down (a MASTER sends its
//! priority-0 advert) before the sockets close; the VIPs stay managed and unclaimed afterwards,
//! as keepalived removes them on exit.

mod socket;

pub use socket::{ipv4_header, parse_ipv4, Datagram, VrrpSocket};

use crate::ring::PacketSender;
use crate::runtime::{Clock, RingSink};
use lvs_core::engine::Engine;
use lvs_core::time::Instant;
use lvs_core::vrrp::{Action, DropReason, Instance, InstanceConfig, Received, State, SyncGroup};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// One instance to run: its configuration and the interface it speaks on.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Interface name (`interface veth0`).
    pub interface: String,
    /// The instance; `src` must be an address of that interface (see [`default_source`]).
    pub config: InstanceConfig,
}

/// What the speaker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An instance changed state.
    State {
        /// Instance name.
        instance: String,
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// Effective priority at the time.
        priority: u8,
    },
    /// A log line in keepalived's words.
    Log {
        /// Instance name.
        instance: String,
        /// The line, e.g. `(VI_1) Entering MASTER STATE`.
        message: String,
    },
    /// An I/O error (sending, receiving); the speaker keeps running.
    Error {
        /// The instance concerned, if one is.
        instance: Option<String>,
        /// What failed.
        message: String,
    },
}

/// A snapshot of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// Instance name.
    pub name: String,
    /// Current state.
    pub state: State,
    /// Effective priority (base plus tracking deltas, clamped).
    pub priority: u8,
    /// The master it listens to (BACKUP), if known.
    pub master: Option<IpAddr>,
    /// The instance's counters as `(name, value)`, then the speaker's own for it.
    pub counters: Vec<(String, u64)>,
}

/// Where events go; called on the speaker thread.
pub type EventSink = Box<dyn FnMut(Event) + Send>;

enum Command {
    PriorityDelta(usize, i32),
    Fault(usize, bool),
}

/// A running speaker; [`Speaker::stop`] (or drop) shuts it down.
#[derive(Debug)]
pub struct Speaker {
    names: Vec<String>,
    commands: mpsc::Sender<Command>,
    wake: Arc<OwnedFd>,
    status: Arc<Mutex<Vec<InstanceStatus>>>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The address an instance advertises from when none is configured, as keepalived picks it: the
/// interface's first IPv4 address, or its IPv6 link-local address.
pub fn default_source(ifname: &str, v6: bool) -> io::Result<IpAddr> {
    let ifc = crate::iface::interface(ifname)?;
    ifc.addrs
        .iter()
        .map(|a| a.addr)
        .find(|a| match a {
            IpAddr::V4(_) => !v6,
            IpAddr::V6(x) => v6 && (x.segments()[0] & 0xffc0) == 0xfe80,
        })
        .ok_or_else(|| {
            let what = if v6 { "IPv6 link-local" } else { "IPv4" };
            io::Error::new(io::ErrorKind::NotFound, format!("interface `{ifname}` has no {what} address"))
        })
}

fn wake(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd; failure (counter full) is harmless.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

impl Speaker {
    /// Opens the sockets (errors such as a missing interface or privileges come back here), marks
    /// every VIP as managed and not claimed in `engine`, starts the instances and the thread.
    /// `sync_groups` lists member instance names per group (`vrrp_sync_group`).
    pub fn start(
        engine: Arc<Mutex<Engine>>,
        clock: Clock,
        specs: Vec<InstanceSpec>,
        sync_groups: &[Vec<String>],
        events: EventSink,
    ) -> io::Result<Speaker> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if specs.is_empty() {
            return Err(invalid("no VRRP instances".into()));
        }
        let mut names: Vec<String> = Vec::new();
        let mut socks: Vec<VrrpSocket> = Vec::new();
        let mut tx: Vec<PacketSender> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut instances: Vec<Option<Instance>> = Vec::new();
        for spec in specs {
            let cfg = spec.config;
            if names.contains(&cfg.name) {
                return Err(invalid(format!("duplicate VRRP instance `{}`", cfg.name)));
            }
            let ifindex = crate::iface::ifindex(&spec.interface)?;
            let v6 = cfg.src.is_ipv6();
            let sock = match socks.iter().position(|s| s.ifindex() == ifindex && s.is_v6() == v6) {
                Some(i) => i,
                None => {
                    socks.push(VrrpSocket::open(&spec.interface, ifindex, v6)?);
                    socks.len() - 1
                }
            };
            if !tx.iter().any(|p| p.ifindex() == ifindex) {
                // Announcements only: a few dozen frames per burst.
                tx.push(PacketSender::open(&spec.interface, 32, 2048, false)?);
            }
            let unicast = !cfg.unicast_peers.is_empty();
            if slots.iter().any(|s| s.sock == sock && s.vrid == cfg.vrid && s.unicast == unicast) {
                return Err(invalid(format!(
                    "VRRP instance `{}`: VRID {} is already used on `{}`",
                    cfg.name, cfg.vrid, spec.interface
                )));
            }
            names.push(cfg.name.clone());
            slots.push(Slot { unit: 0, k: 0, sock, vrid: cfg.vrid, ident: 0, claimed: false, unicast });
            instances.push(Some(Instance::new(cfg).map_err(|e| invalid(e.message().to_owned()))?));
        }
        // Sync groups first (members in the order listed), then every other instance alone.
        let mut units = Vec::new();
        for (g, members) in sync_groups.iter().enumerate() {
            let mut insts = Vec::new();
            let mut globals = Vec::new();
            for n in members {
                let i = names.iter().position(|m| m == n).ok_or_else(|| {
                    invalid(format!("sync group member `{n}` is not a VRRP instance being started"))
                })?;
                let inst = instances[i]
                    .take()
                    .ok_or_else(|| invalid(format!("VRRP instance `{n}` is in more than one sync group")))?;
                slots[i].unit = units.len();
                slots[i].k = insts.len();
                insts.push(inst);
                globals.push(i);
            }
            let group =
                SyncGroup::new(format!("G{g}"), insts).map_err(|e| invalid(e.message().to_owned()))?;
            units.push((Unit::Group(Box::new(group)), globals));
        }
        for (i, inst) in instances.into_iter().enumerate() {
            if let Some(inst) = inst {
                slots[i].unit = units.len();
                slots[i].k = 0;
                units.push((Unit::One(Box::new(inst)), vec![i]));
            }
        }
        // SAFETY: plain eventfd(2) call; the result is checked and owned below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let wakefd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let mut driver = Driver {
            units,
            slots,
            socks,
            tx,
            engine,
            clock,
            managed: Vec::new(),
            events,
            status: Arc::new(Mutex::new(Vec::new())),
            unknown_vrid: HashMap::new(),
        };
        driver.managed = (0..driver.slots.len()).flat_map(|i| driver.inst(i).config().vips.clone()).collect();
        driver.ownership();
        driver.publish();
        let status = driver.status.clone();
        let (commands, rx) = mpsc::channel();
        let w = wakefd.clone();
        let thread =
            std::thread::Builder::new().name("lvs-vrrp".into()).spawn(move || driver.run(&rx, &w))?;
        Ok(Speaker { names, commands, wake: wakefd, status, thread: Some(thread) })
    }

    fn index(&self, name: &str) -> io::Result<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no VRRP instance `{name}`")))
    }

    fn send(&self, c: Command) -> io::Result<()> {
        self.commands.send(c).map_err(|_| io::Error::other("the VRRP speaker has stopped"))?;
        wake(&self.wake);
        Ok(())
    }

    /// Sets the sum of the tracking weights of instance `name` (keepalived's track_script
    /// weights): effective priority = base + delta, clamped to 1..=254; an owner (255) is not
    /// changed.
    pub fn set_priority_delta(&self, name: &str, delta: i32) -> io::Result<()> {
        let i = self.index(name)?;
        self.send(Command::PriorityDelta(i, delta))
    }

    /// Puts instance `name` into FAULT (a tracked resource failed) or lets it out again.
    pub fn set_fault(&self, name: &str, fault: bool) -> io::Result<()> {
        let i = self.index(name)?;
        self.send(Command::Fault(i, fault))
    }

    /// The instances as of the speaker's last step.
    pub fn status(&self) -> Vec<InstanceStatus> {
        lock(&self.status).clone()
    }

    /// Shuts every instance down (priority-0 advert from a MASTER, VIPs released) and waits for
    /// the thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.halt()
    }

    fn halt(&mut self) -> io::Result<()> {
        let Some(t) = self.thread.take() else { return Ok(()) };
        // Dropping the sender is the stop request.
        let (dead, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, dead));
        wake(&self.wake);
        t.join().map_err(|_| io::Error::other("the VRRP speaker thread panicked"))
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Where an instance lives and what the runtime keeps for it.
struct Slot {
    /// Its unit and its index there.
    unit: usize,
    k: usize,
    /// Index of its socket.
    sock: usize,
    vrid: u8,
    /// Last IPv4 identification sent (keepalived: from 1, per instance, 0 skipped).
    ident: u16,
    /// Holds its VIPs.
    claimed: bool,
    /// Unicast peers configured (a VRID may be used once per mode on a socket).
    unicast: bool,
}

/// An instance on its own or a sync group of them.
enum Unit {
    One(Box<Instance>),
    Group(Box<SyncGroup>),
}

/// `(index within the unit, action)` pairs.
type Steps = Vec<(usize, Action)>;

fn tag(actions: Vec<Action>) -> Steps {
    actions.into_iter().map(|a| (0, a)).collect()
}

impl Unit {
    fn inst(&self, k: usize) -> &Instance {
        match self {
            Unit::One(i) => i,
            Unit::Group(g) => &g.members()[k],
        }
    }
    fn start(&mut self, now: Instant) -> Steps {
        match self {
            Unit::One(i) => tag(i.start(now)),
            Unit::Group(g) => g.start(now),
        }
    }
    fn poll(&mut self, now: Instant) -> Steps {
        match self {
            Unit::One(i) => tag(i.poll(now)),
            Unit::Group(g) => g.poll(now),
        }
    }
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Unit::One(i) => i.next_deadline(),
            Unit::Group(g) => g.next_deadline(),
        }
    }
    fn receive(&mut self, now: Instant, k: usize, rx: &Received<'_>) -> Steps {
        match self {
            Unit::One(i) => tag(i.receive(now, rx)),
            Unit::Group(g) => g.receive(now, k, rx),
        }
    }
    fn set_priority_delta(&mut self, now: Instant, k: usize, d: i32) -> Steps {
        match self {
            Unit::One(i) => tag(i.set_priority_delta(now, d)),
            Unit::Group(g) => g.set_priority_delta(now, k, d),
        }
    }
    fn set_fault(&mut self, now: Instant, k: usize, f: bool) -> Steps {
        match self {
            Unit::One(i) => tag(i.set_fault(now, f)),
            Unit::Group(g) => g.set_fault(now, k, f),
        }
    }
    fn shutdown(&mut self, now: Instant) -> Steps {
        match self {
            Unit::One(i) => tag(i.shutdown(now)),
            Unit::Group(g) => g.shutdown(now),
        }
    }
}

struct Driver {
    /// Units with the global instance index of each of their members.
    units: Vec<(Unit, Vec<usize>)>,
    /// Per instance, in the order given.
    slots: Vec<Slot>,
    socks: Vec<VrrpSocket>,
    tx: Vec<PacketSender>,
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    managed: Vec<IpAddr>,
    events: EventSink,
    status: Arc<Mutex<Vec<InstanceStatus>>>,
    /// Adverts for a VRID no instance has, per socket.
    unknown_vrid: HashMap<usize, u64>,
}

/// Datagrams read from one socket per wake-up at most, so timers are never starved.
const RECV_BURST: usize = 64;
/// Longest sleep without a deadline.
const MAX_SLEEP_MS: u64 = 1000;

impl Driver {
    fn inst(&self, i: usize) -> &Instance {
        let s = &self.slots[i];
        self.units[s.unit].0.inst(s.k)
    }

    fn run(&mut self, commands: &mpsc::Receiver<Command>, wakefd: &OwnedFd) {
        let now = (self.clock)();
        for u in 0..self.units.len() {
            let steps = self.units[u].0.start(now);
            self.execute(u, steps);
        }
        self.publish();
        let mut fds: Vec<libc::pollfd> = self
            .socks
            .iter()
            .map(|s| libc::pollfd { fd: s.raw_fd(), events: libc::POLLIN, revents: 0 })
            .chain([libc::pollfd { fd: wakefd.as_raw_fd(), events: libc::POLLIN, revents: 0 }])
            .collect();
        loop {
            let now = (self.clock)();
            let timeout = self
                .units
                .iter()
                .filter_map(|(u, _)| u.next_deadline())
                .min()
                .map_or(MAX_SLEEP_MS, |t| t.millis().saturating_sub(now.millis()).min(MAX_SLEEP_MS));
            for f in &mut fds {
                f.revents = 0;
            }
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout as libc::c_int) };
            if fds.last().is_some_and(|f| f.revents != 0) {
                let mut n = 0u64;
                // SAFETY: reads 8 bytes into a live u64 from the eventfd (resets it).
                unsafe { libc::read(wakefd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
            }
            let mut stop = false;
            loop {
                match commands.try_recv() {
                    Ok(c) => self.command(c),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        stop = true;
                        break;
                    }
                }
            }
            if stop {
                break;
            }
            let readable: Vec<usize> = fds[..self.socks.len()]
                .iter()
                .enumerate()
                .filter(|(_, f)| f.revents != 0)
                .map(|(s, _)| s)
                .collect();
            for s in readable {
                self.receive(s);
            }
            let now = (self.clock)();
            for u in 0..self.units.len() {
                if self.units[u].0.next_deadline().is_some_and(|t| t <= now) {
                    let steps = self.units[u].0.poll(now);
                    self.execute(u, steps);
                }
            }
            self.publish();
        }
        let now = (self.clock)();
        for u in 0..self.units.len() {
            let steps = self.units[u].0.shutdown(now);
            self.execute(u, steps);
        }
        for s in &mut self.slots {
            s.claimed = false;
        }
        self.ownership();
        self.publish();
    }

    fn command(&mut self, c: Command) {
        let now = (self.clock)();
        let i = match c {
            Command::PriorityDelta(i, _) | Command::Fault(i, _) => i,
        };
        let (u, k) = (self.slots[i].unit, self.slots[i].k);
        let unit = &mut self.units[u].0;
        let steps = match c {
            Command::PriorityDelta(_, d) => unit.set_priority_delta(now, k, d),
            Command::Fault(_, f) => unit.set_fault(now, k, f),
        };
        self.execute(u, steps);
    }

    fn receive(&mut self, s: usize) {
        for _ in 0..RECV_BURST {
            let d = match self.socks[s].recv() {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => continue,
                Err(e) => {
                    (self.events)(Event::Error { instance: None, message: format!("VRRP receive: {e}") });
                    return;
                }
            };
            let Some(&vrid) = self.socks[s].buffer()[d.start..d.end].get(1) else { continue };
            // The multicast instance for a group advert, the unicast one for an advert to us;
            // either when only one uses the VRID here.
            let multicast = d.dst.is_multicast();
            let mut candidates =
                (0..self.slots.len()).filter(|&i| self.slots[i].sock == s && self.slots[i].vrid == vrid);
            let target = match (candidates.next(), candidates.next()) {
                (None, _) => None,
                (Some(a), None) => Some(a),
                (Some(a), Some(b)) => Some(if self.slots[a].unicast != multicast { a } else { b }),
            };
            let Some(i) = target else {
                *self.unknown_vrid.entry(s).or_default() += 1;
                continue;
            };
            let now = (self.clock)();
            let (u, k) = (self.slots[i].unit, self.slots[i].k);
            let rx = Received {
                src: d.src,
                dst: d.dst,
                ttl: d.ttl,
                protocol: d.protocol,
                ip_payload_len: d.ip_payload_len,
                message: &self.socks[s].buffer()[d.start..d.end],
            };
            let steps = self.units[u].0.receive(now, k, &rx);
            self.execute(u, steps);
        }
    }

    /// Carries out a unit's actions in order.
    fn execute(&mut self, u: usize, steps: Steps) {
        for (k, a) in steps {
            let Some(&i) = self.units[u].1.get(k) else { continue };
            self.act(i, a);
        }
    }

    fn act(&mut self, i: usize, a: Action) {
        let name = self.inst(i).config().name.clone();
        match a {
            Action::Send { dst, message } => {
                let src = self.inst(i).config().src;
                let slot = &mut self.slots[i];
                slot.ident = slot.ident.wrapping_add(1).max(1);
                if let Err(e) = self.socks[slot.sock].send(src, dst, slot.ident, &message) {
                    (self.events)(Event::Error {
                        instance: Some(name),
                        message: format!("sending the advert to {dst}: {e}"),
                    });
                }
            }
            Action::Transition { from, to } => {
                let priority = self.inst(i).effective_priority();
                (self.events)(Event::State { instance: name, from, to, priority });
            }
            Action::ClaimVips => {
                self.slots[i].claimed = true;
                self.ownership();
            }
            Action::ReleaseVips => {
                self.slots[i].claimed = false;
                self.ownership();
            }
            Action::Garp { rounds } => {
                let vips = self.inst(i).config().vips.clone();
                let mut e = lock(&self.engine);
                for _ in 0..rounds {
                    e.announce_addrs(&mut RingSink { ports: &mut self.tx }, &vips);
                    crate::runtime::flush_all(&mut self.tx);
                }
            }
            Action::Log(message) => (self.events)(Event::Log { instance: name, message }),
        }
    }

    fn ownership(&mut self) {
        let claimed: Vec<IpAddr> = (0..self.slots.len())
            .filter(|&i| self.slots[i].claimed)
            .flat_map(|i| self.inst(i).config().vips.iter().copied())
            .collect();
        lock(&self.engine).set_vip_ownership(&self.managed, &claimed);
    }

    fn publish(&self) {
        let snap = (0..self.slots.len())
            .map(|i| {
                let inst = self.inst(i);
                let c = inst.counters();
                let mut counters: Vec<(String, u64)> = [
                    ("received", c.received),
                    ("adverts_received", c.adverts_received),
                    ("adverts_sent", c.adverts_sent),
                    ("priority_zero_received", c.priority_zero_received),
                    ("priority_zero_sent", c.priority_zero_sent),
                    ("become_master", c.become_master),
                    ("release_master", c.release_master),
                ]
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect();
                counters
                    .extend(DropReason::ALL.iter().map(|r| (format!("drop_{}", r.name()), c.dropped(*r))));
                let unknown = self.unknown_vrid.get(&self.slots[i].sock).copied().unwrap_or(0);
                counters.push(("drop_unknown_vrid".into(), unknown));
                InstanceStatus {
                    name: inst.config().name.clone(),
                    state: inst.state(),
                    priority: inst.effective_priority(),
                    master: inst.master(),
                    counters,
                }
            })
            .collect();
        *lock(&self.status) = snap;
    }
}
