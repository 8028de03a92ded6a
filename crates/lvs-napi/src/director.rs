//! `NativeDirector`: the director behind the SDK's `Director`. The packet engine owns the virtual
//! server table; with real interfaces, worker threads run it over AF_PACKET rings.

use crate::convert::{
    connection_info, route_info, server_info, service_info, ConnectionInfo, FlowQuery, RouteInfo, ServerSpec,
    ServiceInfo, ServiceRef, ServiceSpec, TimeoutsInfo,
};
use crate::engine_config::{
    engine_config, mark_rules, routes, virtual_interfaces, MarkRuleSpec, RouteSpec, VirtualInterface,
};
use crate::error::{guard, invalid, to_js, Result};
use crate::names::FileNames;
use crate::sync::{daemon_info, role, stats_entries, DaemonInfo, DaemonSpec};
use crate::vrrp::{EventCallback, NativeVrrpSpeaker, VrrpInstanceSpec};
use lvs_core::addr::HostPort;
use lvs_core::engine::{Engine, EngineConfig, TxFrame};
use lvs_core::ipvsadm;
use lvs_core::sysctl;
use lvs_core::time::Instant;
use lvs_core::Ipvs;
use lvs_dataplane::runtime::{Runtime, RuntimeOptions};
use lvs_dataplane::sync::SyncIo;
use napi::bindgen_prelude::{BigInt, Buffer};
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where the director's time comes from.
#[derive(Debug)]
enum Clock {
    /// Monotonic time since the director was opened.
    System(std::time::Instant),
    /// Moved only by `advanceTime` (milliseconds).
    Manual(AtomicU64),
}

impl Clock {
    fn now(&self) -> Instant {
        match self {
            Clock::System(start) => Instant::from_millis(start.elapsed().as_millis() as u64),
            Clock::Manual(ms) => Instant::from_millis(ms.load(Ordering::Acquire)),
        }
    }
}

/// The size `ipvsadm -L` reports for the connection table (Linux's default, 1 << 12).
const CONN_TAB_SIZE: u32 = 4096;

/// What an ipvsadm command printed and how it exited.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ExecResult {
    /// Standard output, exactly as ipvsadm prints it.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status: 0, 2 (usage), 255 (rejected by the table), 1 (listing failed).
    pub status: i32,
}

/// One `/proc/sys/net/ipv4/vs/*` setting.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct SysctlEntry {
    /// The name: bare (`expire_nodest_conn`) or prefixed (`net.ipv4.vs.expire_nodest_conn`).
    pub name: String,
    /// The value as written to / read from /proc (`sync_threshold`: two integers).
    pub value: String,
}

/// Options of `new NativeDirector()`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeDirectorOptions {
    /// `'system'` (default) or `'manual'`.
    #[napi(ts_type = "'system' | 'manual'")]
    pub clock: Option<String>,
    /// Real interfaces to balance on (names), or virtual ones for `inject`.
    #[napi(ts_type = "string[] | VirtualInterface[]")]
    pub interfaces: Option<napi::Either<Vec<String>, Vec<VirtualInterface>>>,
    /// Extra routes (real interfaces also get the kernel's).
    pub routes: Option<Vec<RouteSpec>>,
    /// Firewall-mark rules.
    pub mark_rules: Option<Vec<MarkRuleSpec>>,
    /// Worker threads for real interfaces (default 1).
    pub workers: Option<u32>,
    /// Receive and send through AF_XDP (an XDP program on each interface) instead of AF_PACKET.
    pub xdp: Option<bool>,
}

/// A frame the packet path produced.
#[napi(object)]
pub struct OutFrame {
    /// Interface name it leaves on.
    pub interface: String,
    /// True when handed to the host stack rather than sent.
    pub to_host: bool,
    /// The Ethernet frame.
    pub data: Buffer,
}

impl std::fmt::Debug for OutFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutFrame").field("interface", &self.interface).field("len", &self.data.len()).finish()
    }
}

/// An in-memory or packet-forwarding director.
#[napi]
#[derive(Debug)]
pub struct NativeDirector {
    engine: Arc<Mutex<Engine>>,
    clock: Arc<Clock>,
    names: Mutex<Option<FileNames>>,
    runtime: Mutex<Option<Runtime>>,
    /// The sync daemons' sockets, started with the first daemon of a director on real interfaces.
    sync_io: Mutex<Option<SyncIo>>,
    /// A VRRP speaker runs (one per director: it owns the engine's managed VIPs).
    vrrp_active: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock (a panic was caught mid-call) is taken over as it is.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl NativeDirector {
    /// Runs `f` on the engine after the table's timers due by now (connection expiry, estimator,
    /// trash). Neighbour timers belong to the workers, which can send what they produce.
    fn with<T>(&self, f: impl FnOnce(&mut Engine, Instant) -> Result<T>) -> Result<T> {
        guard(|| {
            let now = self.clock.now();
            let mut e = lock(&self.engine);
            e.ipvs_mut().advance(now);
            e.ipvs_mut().estimate(now);
            f(&mut e, now)
        })
    }

    fn config(options: &NativeDirectorOptions) -> Result<(EngineConfig, Vec<String>)> {
        let (interfaces, real) = match &options.interfaces {
            None => (Vec::new(), Vec::new()),
            Some(napi::Either::A(names)) => {
                let ifs = names
                    .iter()
                    .map(|n| {
                        lvs_dataplane::iface::interface(n)
                            .map_err(|e| napi::Error::new("ENODEV".to_owned(), e.to_string()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (ifs, names.clone())
            }
            Some(napi::Either::B(list)) => (virtual_interfaces(list)?, Vec::new()),
        };
        let mut rts = routes(options.routes.as_deref().unwrap_or_default(), &interfaces)?;
        if !real.is_empty() {
            rts.extend(lvs_dataplane::iface::routes(&interfaces).map_err(|e| invalid(e.to_string()))?);
        }
        let marks = mark_rules(options.mark_rules.as_deref().unwrap_or_default())?;
        Ok((engine_config(interfaces, rts, marks), real))
    }

    /// Starts a sync daemon in the table; with real interfaces, checks its interface (the MTU
    /// sets a backup's default maxlen) and makes sure the sync sockets' threads run.
    fn start_daemon_in(&self, e: &mut Engine, cfg: &ipvsadm::DaemonConfig) -> Result<lvs_core::sync::Daemon> {
        let live = lock(&self.runtime).is_some();
        let mtu = if live {
            let ifc = lvs_dataplane::iface::interface(&cfg.mcast_interface)
                .map_err(|_| napi::Error::new("ENODEV".to_owned(), "No such device".to_owned()))?;
            Some(ifc.mtu)
        } else {
            None
        };
        let d = e.ipvs_mut().start_daemon(cfg, mtu).map_err(to_js)?;
        let mut io = lock(&self.sync_io);
        if live && io.is_none() {
            let c = self.clock.clone();
            match SyncIo::start(self.engine.clone(), Arc::new(move || c.now())) {
                Ok(s) => *io = Some(s),
                Err(err) => {
                    let _ = e.ipvs_mut().stop_daemon(cfg.role);
                    return Err(invalid(format!("cannot start the sync threads: {err}")));
                }
            }
        }
        Ok(d)
    }
}

#[napi]
impl NativeDirector {
    /// Opens a director; with real interfaces it starts forwarding at once.
    #[napi(constructor)]
    pub fn new(options: Option<NativeDirectorOptions>) -> Result<Self> {
        guard(|| {
            let options = options.unwrap_or(NativeDirectorOptions {
                clock: None,
                interfaces: None,
                routes: None,
                mark_rules: None,
                workers: None,
                xdp: None,
            });
            let clock = match options.clock.as_deref() {
                None | Some("system") => Clock::System(std::time::Instant::now()),
                Some("manual") => Clock::Manual(AtomicU64::new(0)),
                Some(other) => {
                    return Err(invalid(format!("unknown clock `{other}' (expected system or manual)")))
                }
            };
            let (cfg, real) = Self::config(&options)?;
            if !real.is_empty() && matches!(clock, Clock::Manual(_)) {
                return Err(invalid("a director on real interfaces runs on the system clock"));
            }
            let mut engine = Engine::new(cfg, Ipvs::new()).map_err(to_js)?;
            if !real.is_empty() {
                // Start with what the host already knows (static entries included).
                let now = clock.now();
                let known = lvs_dataplane::iface::neighbours(&engine.config().interfaces);
                for (ifindex, addr, mac) in known {
                    engine.add_neighbour(ifindex, addr, mac, now, &mut Vec::<TxFrame>::new());
                }
            }
            let engine = Arc::new(Mutex::new(engine));
            let clock = Arc::new(clock);
            let runtime = if real.is_empty() {
                None
            } else {
                let c = clock.clone();
                let opts = RuntimeOptions {
                    interfaces: real,
                    workers: options.workers.unwrap_or(1).clamp(1, 64) as usize,
                    xdp: options.xdp.unwrap_or(false),
                    ..RuntimeOptions::default()
                };
                Some(Runtime::start(engine.clone(), Arc::new(move || c.now()), &opts).map_err(|e| {
                    use std::io::ErrorKind as K;
                    let code = match e.kind() {
                        K::PermissionDenied => "EPERM",
                        K::ResourceBusy => "EBUSY",
                        K::NotFound => "ENODEV",
                        // XDP or AF_XDP missing, or the kernel refused the program.
                        _ if opts.xdp => "ENOTSUP",
                        _ => "ENODEV",
                    };
                    napi::Error::new(code.to_owned(), e.to_string())
                })?)
            };
            Ok(NativeDirector {
                engine,
                clock,
                names: Mutex::new(None),
                runtime: Mutex::new(runtime),
                sync_io: Mutex::new(None),
                vrrp_active: Arc::new(AtomicBool::new(false)),
            })
        })
    }

    /// `-A`.
    #[napi]
    pub fn add_service(&self, spec: ServiceSpec) -> Result<()> {
        self.with(|e, _| e.ipvs_mut().add_service(spec.config()?).map_err(to_js))
    }

    /// `-E`.
    #[napi]
    pub fn edit_service(&self, spec: ServiceSpec) -> Result<()> {
        self.with(|e, _| e.ipvs_mut().edit_service(spec.config()?).map_err(to_js))
    }

    /// `-D`.
    #[napi]
    pub fn delete_service(&self, service: ServiceRef) -> Result<()> {
        self.with(|e, now| e.ipvs_mut().del_service(&service.key()?, now).map_err(to_js))
    }

    /// `-C`.
    #[napi]
    pub fn clear(&self) -> Result<()> {
        self.with(|e, now| {
            e.ipvs_mut().clear(now);
            Ok(())
        })
    }

    /// `-a`.
    #[napi]
    pub fn add_server(&self, service: ServiceRef, spec: ServerSpec) -> Result<()> {
        self.with(|e, _| e.ipvs_mut().add_dest(&service.key()?, &spec.config()?).map_err(to_js))
    }

    /// `-e`.
    #[napi]
    pub fn edit_server(&self, service: ServiceRef, spec: ServerSpec) -> Result<()> {
        self.with(|e, _| e.ipvs_mut().edit_dest(&service.key()?, &spec.config()?).map_err(to_js))
    }

    /// `-d`.
    #[napi]
    pub fn delete_server(&self, service: ServiceRef, address: String) -> Result<()> {
        self.with(|e, now| {
            let hp = HostPort::parse(&address).map_err(to_js)?;
            e.ipvs_mut().del_dest(&service.key()?, hp.addr, hp.port, now).map_err(to_js)
        })
    }

    /// `-Z`.
    #[napi]
    pub fn zero(&self, service: Option<ServiceRef>) -> Result<()> {
        self.with(|e, _| {
            let key = service.map(|s| s.key()).transpose()?;
            e.ipvs_mut().zero(key.as_ref()).map_err(to_js)
        })
    }

    /// `-L`: services and servers in ipvsadm's order.
    #[napi]
    pub fn list(&self) -> Result<Vec<ServiceInfo>> {
        self.with(|e, _| {
            let ipvs = e.ipvs();
            Ok(ipvs
                .sorted_services()
                .into_iter()
                .map(|svc| {
                    let servers = ipvs.sorted_dests(svc).into_iter().map(|(_, d)| server_info(d)).collect();
                    service_info(svc.config(), &svc.stats, servers)
                })
                .collect())
        })
    }

    /// Runs one ipvsadm command line (`args` without the program name; `stdin` feeds `-R`).
    #[napi]
    pub fn exec(&self, program: String, args: Vec<String>, stdin: Option<String>) -> Result<ExecResult> {
        self.with(|e, now| {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut names = lock(&self.names);
            let names = names.get_or_insert_with(FileNames::load);
            let ctx = ipvsadm::Context {
                program: &program,
                now,
                names: &*names,
                conn_tab_size: CONN_TAB_SIZE,
                stdin: stdin.as_deref(),
            };
            let o = match ipvsadm::parse(&program, &argv) {
                // The daemon's interface is checked here, where interfaces are known.
                Ok(ipvsadm::Command::StartDaemon(cfg)) => match self.start_daemon_in(e, &cfg) {
                    Ok(_) => ipvsadm::Outcome::default(),
                    Err(err) => ipvsadm::Outcome {
                        stderr: format!("{}\n", err.reason),
                        status: 255,
                        ..ipvsadm::Outcome::default()
                    },
                },
                _ => ipvsadm::run(e.ipvs_mut(), &argv, &ctx),
            };
            Ok(ExecResult { stdout: o.stdout, stderr: o.stderr, status: o.status })
        })
    }

    /// `--start-daemon`: starts a connection-sync daemon (`--mcast-interface` etc.). On a director
    /// with real interfaces the interface must exist (ENODEV) and the multicast sockets start.
    #[napi]
    pub fn start_daemon(&self, spec: DaemonSpec) -> Result<DaemonInfo> {
        self.with(|e, _| {
            let cfg = spec.config()?;
            self.start_daemon_in(e, &cfg).map(|d| daemon_info(&d))
        })
    }

    /// `--stop-daemon master|backup`.
    #[napi]
    pub fn stop_daemon(&self, state: String) -> Result<()> {
        self.with(|e, _| e.ipvs_mut().stop_daemon(role(&state)?).map_err(to_js))
    }

    /// `ipvsadm -L --daemon`: the running daemons, master first.
    #[napi]
    pub fn daemons(&self) -> Result<Vec<DaemonInfo>> {
        self.with(|e, _| Ok(e.ipvs().daemons().iter().map(daemon_info).collect()))
    }

    /// Connection-sync counters (records queued and applied, malformed messages, socket traffic).
    #[napi]
    pub fn sync_stats(&self) -> Result<HashMap<String, BigInt>> {
        self.with(|e, _| {
            let io = lock(&self.sync_io).as_ref().map(SyncIo::status);
            Ok(stats_entries(&e.ipvs().sync_stats(), io.as_ref())
                .into_iter()
                .map(|(n, v)| (n.to_owned(), BigInt::from(v)))
                .collect())
        })
    }

    /// `ipvsadm -S -n`.
    #[napi]
    pub fn save(&self) -> Result<String> {
        self.with(|e, _| Ok(ipvsadm::save(e.ipvs(), true, &ipvsadm::NoNames)))
    }

    /// `ipvsadm -R`, atomically: on any bad line nothing changes and the error names the line.
    #[napi]
    pub fn restore(&self, text: String) -> Result<()> {
        self.with(|e, now| {
            let ctx = ipvsadm::Context {
                program: "ipvsadm",
                now,
                names: &ipvsadm::NoNames,
                conn_tab_size: CONN_TAB_SIZE,
                stdin: None,
            };
            ipvsadm::restore(e.ipvs_mut(), &text, &ctx).map_err(|err| invalid(err.to_string()))
        })
    }

    /// Where a client goes: the path of a first packet (TCP SYN, UDP datagram, SCTP INIT),
    /// creating the connection and persistence template as that packet would.
    #[napi]
    pub fn route_flow(&self, query: FlowQuery) -> Result<Option<RouteInfo>> {
        self.with(|e, now| {
            let (flow, fwmark) = query.flow()?;
            Ok(e.ipvs_mut().route_flow(&flow, fwmark, now).map(|f| route_info(&f)))
        })
    }

    /// `ipvsadm -Lc`: connections and persistence templates.
    #[napi]
    pub fn connections(&self) -> Result<Vec<ConnectionInfo>> {
        self.with(|e, now| Ok(e.ipvs().connections(now).iter().map(connection_info).collect()))
    }

    /// `ipvsadm --set tcp tcpfin udp` (seconds; 0 leaves a value unchanged).
    #[napi]
    pub fn set_timeouts(&self, timeouts: TimeoutsInfo) -> Result<()> {
        self.with(|e, _| {
            e.ipvs_mut().set_timeouts(timeouts.tcp, timeouts.tcpfin, timeouts.udp).map_err(to_js)
        })
    }

    /// `ipvsadm -L --timeout`.
    #[napi]
    pub fn timeouts(&self) -> Result<TimeoutsInfo> {
        self.with(|e, _| {
            let (tcp, tcpfin, udp) = e.ipvs().timeouts();
            Ok(TimeoutsInfo { tcp, tcpfin, udp })
        })
    }

    /// `/proc/sys/net/ipv4/vs/*`: every sysctl and its value as the kernel prints it.
    #[napi]
    pub fn sysctl(&self) -> Result<Vec<SysctlEntry>> {
        self.with(|e, _| {
            Ok(sysctl::all(e.ipvs())
                .into_iter()
                .map(|(name, value)| SysctlEntry { name: name.to_owned(), value })
                .collect())
        })
    }

    /// `cat /proc/sys/net/ipv4/vs/NAME` (any spelling of the name).
    #[napi]
    pub fn sysctl_value(&self, name: String) -> Result<String> {
        self.with(|e, _| sysctl::get(e.ipvs(), &name).map_err(to_js))
    }

    /// `sysctl -w net.ipv4.vs.NAME=VALUE` for several at once: all take effect, or none.
    #[napi]
    pub fn set_sysctl(&self, entries: Vec<SysctlEntry>) -> Result<()> {
        self.with(|e, _| {
            sysctl::set_all(e.ipvs_mut(), entries.iter().map(|s| (s.name.as_str(), s.value.as_str())))
                .map_err(to_js)
        })
    }

    /// Pushes one Ethernet frame received on `interface` through the packet path and returns the
    /// frames it would transmit (offline: nothing is sent).
    #[napi]
    pub fn inject(&self, interface: String, frame: Buffer) -> Result<Vec<OutFrame>> {
        self.with(|e, now| {
            let ifindex = e
                .config()
                .interfaces
                .iter()
                .find(|i| i.name == interface)
                .map(|i| i.index)
                .ok_or_else(|| invalid(format!("no interface `{interface}'")))?;
            let out: Vec<TxFrame> = e.inject(ifindex, &frame, now);
            let name_of = |idx: u32| {
                e.config()
                    .interfaces
                    .iter()
                    .find(|i| i.index == idx)
                    .map(|i| i.name.clone())
                    .unwrap_or_default()
            };
            Ok(out
                .into_iter()
                .map(|f| OutFrame { interface: name_of(f.ifindex), to_host: f.to_host, data: f.data.into() })
                .collect())
        })
    }

    /// Adds a firewall-mark rule (after the existing ones; first match wins).
    #[napi]
    pub fn add_mark_rule(&self, rule: MarkRuleSpec) -> Result<()> {
        self.with(|e, _| {
            let mut cfg = e.config().clone();
            cfg.mark_rules.extend(mark_rules(std::slice::from_ref(&rule))?);
            e.set_config(cfg).map_err(to_js)
        })
    }

    /// Packet-path counters: frames, verdicts and every drop reason.
    #[napi]
    pub fn counters(&self) -> Result<HashMap<String, BigInt>> {
        self.with(|e, _| Ok(e.counters().iter().map(|(n, v)| (n.to_owned(), BigInt::from(v))).collect()))
    }

    /// The first error a packet worker ended with (for example its interface was deleted), if any.
    #[napi]
    pub fn worker_failure(&self) -> Result<Option<String>> {
        guard(|| Ok(lock(&self.runtime).as_ref().and_then(|rt| rt.failure())))
    }

    /// Milliseconds on the director's clock.
    #[napi]
    pub fn now(&self) -> Result<f64> {
        guard(|| Ok(self.clock.now().millis() as f64))
    }

    /// Moves a manual clock forward by `ms` milliseconds and runs the timers that became due.
    #[napi]
    pub fn advance_time(&self, ms: f64) -> Result<()> {
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(invalid("advanceTime needs a finite, non-negative number of milliseconds"));
        }
        match &*self.clock {
            Clock::Manual(t) => {
                t.fetch_add(ms as u64, Ordering::AcqRel);
                self.with(|e, now| {
                    let mut discard: Vec<TxFrame> = Vec::new();
                    e.advance(now, &mut discard);
                    Ok(())
                })
            }
            Clock::System(_) => Err(napi::Error::new(
                "ENOTSUP".to_owned(),
                "advanceTime needs a director opened with { clock: 'manual' }".to_owned(),
            )),
        }
    }

    /// Starts a VRRP speaker for `instances` (on interfaces the director runs on); `callback` gets
    /// every event. One speaker per director.
    #[napi]
    pub fn start_vrrp(
        &self,
        instances: Vec<VrrpInstanceSpec>,
        sync_groups: Option<Vec<Vec<String>>>,
        #[napi(ts_arg_type = "(event: VrrpEvent) => void")] callback: EventCallback,
    ) -> Result<NativeVrrpSpeaker> {
        guard(|| {
            if lock(&self.runtime).is_none() {
                return Err(napi::Error::new(
                    "ENOTSUP".to_owned(),
                    "VRRP needs a director running on real interfaces".to_owned(),
                ));
            }
            let names: Vec<String> =
                lock(&self.engine).config().interfaces.iter().map(|i| i.name.clone()).collect();
            if let Some(i) = instances.iter().find(|i| !names.contains(&i.interface)) {
                return Err(invalid(format!(
                    "({}) interface `{}' is not one the director runs on",
                    i.name, i.interface
                )));
            }
            if self.vrrp_active.swap(true, Ordering::AcqRel) {
                return Err(napi::Error::new(
                    "EBUSY".to_owned(),
                    "a VRRP speaker already runs on this director".to_owned(),
                ));
            }
            let c = self.clock.clone();
            let r = NativeVrrpSpeaker::start(
                self.engine.clone(),
                Arc::new(move || c.now()),
                &instances,
                sync_groups.as_deref().unwrap_or_default(),
                callback,
                self.vrrp_active.clone(),
            );
            if r.is_err() {
                self.vrrp_active.store(false, Ordering::Release);
            }
            r
        })
    }

    /// Stops the packet workers (if any). Idempotent.
    #[napi]
    pub fn close(&self) -> Result<()> {
        guard(|| {
            if let Some(io) = lock(&self.sync_io).take() {
                io.stop();
            }
            if let Some(rt) = lock(&self.runtime).take() {
                rt.stop().map_err(|e| invalid(format!("a packet worker failed: {e}")))?;
            }
            Ok(())
        })
    }
}

/// Panics inside the binding on purpose. Exists so tests can prove a Rust panic reaches
/// JavaScript as an `EPANIC` error instead of aborting the process; not part of the SDK.
#[napi(js_name = "__lvsPanicForTest")]
pub fn panic_for_test() -> Result<()> {
    guard(|| panic!("deliberate panic for the test suite"))
}
