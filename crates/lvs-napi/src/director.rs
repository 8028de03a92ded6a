//! `NativeDirector`: the in-memory director behind the SDK's `Director`.

use crate::convert::{
    connection_info, route_info, server_info, service_info, ConnectionInfo, FlowQuery, RouteInfo, ServerSpec,
    ServiceInfo, ServiceRef, ServiceSpec, TimeoutsInfo,
};
use crate::error::{guard, invalid, to_js, Result};
use crate::names::FileNames;
use lvs_core::addr::HostPort;
use lvs_core::ipvsadm;
use lvs_core::time::Instant;
use lvs_core::Ipvs;
use napi_derive::napi;
use std::sync::{Mutex, MutexGuard};

/// Where the director's time comes from.
#[derive(Debug)]
enum Clock {
    /// Monotonic time since the director was opened.
    System(std::time::Instant),
    /// Moved only by `advanceTime`.
    Manual(u64),
}

impl Clock {
    fn now(&self) -> Instant {
        match self {
            Clock::System(start) => Instant::from_millis(start.elapsed().as_millis() as u64),
            Clock::Manual(ms) => Instant::from_millis(*ms),
        }
    }
}

#[derive(Debug)]
struct State {
    ipvs: Ipvs,
    clock: Clock,
    names: Option<FileNames>,
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

/// Options of `new NativeDirector()`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeDirectorOptions {
    /// `'system'` (default) or `'manual'`.
    #[napi(ts_type = "'system' | 'manual'")]
    pub clock: Option<String>,
}

/// An in-memory director: the virtual server table with its clock.
#[napi]
#[derive(Debug)]
pub struct NativeDirector {
    state: Mutex<State>,
}

impl NativeDirector {
    /// Locks the state; a poisoned lock (a panic was caught mid-call) is taken over as it is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the state after every timer due by now (connection expiry, estimator, trash).
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        guard(|| {
            let mut st = self.lock();
            let now = st.clock.now();
            st.ipvs.advance(now);
            st.ipvs.estimate(now);
            f(&mut st)
        })
    }
}

#[napi]
impl NativeDirector {
    /// Opens an in-memory director.
    #[napi(constructor)]
    pub fn new(options: Option<NativeDirectorOptions>) -> Result<Self> {
        let clock = match options.and_then(|o| o.clock).as_deref() {
            None | Some("system") => Clock::System(std::time::Instant::now()),
            Some("manual") => Clock::Manual(0),
            Some(other) => {
                return Err(invalid(format!("unknown clock `{other}' (expected system or manual)")))
            }
        };
        Ok(NativeDirector { state: Mutex::new(State { ipvs: Ipvs::new(), clock, names: None }) })
    }

    /// `-A`.
    #[napi]
    pub fn add_service(&self, spec: ServiceSpec) -> Result<()> {
        self.with(|st| st.ipvs.add_service(spec.config()?).map_err(to_js))
    }

    /// `-E`.
    #[napi]
    pub fn edit_service(&self, spec: ServiceSpec) -> Result<()> {
        self.with(|st| st.ipvs.edit_service(spec.config()?).map_err(to_js))
    }

    /// `-D`.
    #[napi]
    pub fn delete_service(&self, service: ServiceRef) -> Result<()> {
        self.with(|st| {
            let now = st.clock.now();
            st.ipvs.del_service(&service.key()?, now).map_err(to_js)
        })
    }

    /// `-C`.
    #[napi]
    pub fn clear(&self) -> Result<()> {
        self.with(|st| {
            let now = st.clock.now();
            st.ipvs.clear(now);
            Ok(())
        })
    }

    /// `-a`.
    #[napi]
    pub fn add_server(&self, service: ServiceRef, spec: ServerSpec) -> Result<()> {
        self.with(|st| st.ipvs.add_dest(&service.key()?, &spec.config()?).map_err(to_js))
    }

    /// `-e`.
    #[napi]
    pub fn edit_server(&self, service: ServiceRef, spec: ServerSpec) -> Result<()> {
        self.with(|st| st.ipvs.edit_dest(&service.key()?, &spec.config()?).map_err(to_js))
    }

    /// `-d`.
    #[napi]
    pub fn delete_server(&self, service: ServiceRef, address: String) -> Result<()> {
        self.with(|st| {
            let now = st.clock.now();
            let hp = HostPort::parse(&address).map_err(to_js)?;
            st.ipvs.del_dest(&service.key()?, hp.addr, hp.port, now).map_err(to_js)
        })
    }

    /// `-Z`.
    #[napi]
    pub fn zero(&self, service: Option<ServiceRef>) -> Result<()> {
        self.with(|st| {
            let key = service.map(|s| s.key()).transpose()?;
            st.ipvs.zero(key.as_ref()).map_err(to_js)
        })
    }

    /// `-L`: services and servers in ipvsadm's order.
    #[napi]
    pub fn list(&self) -> Result<Vec<ServiceInfo>> {
        self.with(|st| {
            let ipvs = &st.ipvs;
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
        self.with(|st| {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let names = st.names.get_or_insert_with(FileNames::load);
            let ctx = ipvsadm::Context {
                program: &program,
                now: st.clock.now(),
                names: &*names,
                conn_tab_size: CONN_TAB_SIZE,
                stdin: stdin.as_deref(),
            };
            let o = ipvsadm::run(&mut st.ipvs, &argv, &ctx);
            Ok(ExecResult { stdout: o.stdout, stderr: o.stderr, status: o.status })
        })
    }

    /// `ipvsadm -S -n`.
    #[napi]
    pub fn save(&self) -> Result<String> {
        self.with(|st| Ok(ipvsadm::save(&st.ipvs, true, &ipvsadm::NoNames)))
    }

    /// `ipvsadm -R`, atomically: on any bad line nothing changes and the error names the line.
    #[napi]
    pub fn restore(&self, text: String) -> Result<()> {
        self.with(|st| {
            let ctx = ipvsadm::Context {
                program: "ipvsadm",
                now: st.clock.now(),
                names: &ipvsadm::NoNames,
                conn_tab_size: CONN_TAB_SIZE,
                stdin: None,
            };
            ipvsadm::restore(&mut st.ipvs, &text, &ctx).map_err(|e| invalid(e.to_string()))
        })
    }

    /// Where a client goes: the path of a first packet (TCP SYN, UDP datagram, SCTP INIT),
    /// creating the connection and persistence template as that packet would.
    #[napi]
    pub fn route_flow(&self, query: FlowQuery) -> Result<Option<RouteInfo>> {
        self.with(|st| {
            let (flow, fwmark) = query.flow()?;
            let now = st.clock.now();
            Ok(st.ipvs.route_flow(&flow, fwmark, now).map(|f| route_info(&f)))
        })
    }

    /// `ipvsadm -Lc`: connections and persistence templates.
    #[napi]
    pub fn connections(&self) -> Result<Vec<ConnectionInfo>> {
        self.with(|st| {
            let now = st.clock.now();
            Ok(st.ipvs.connections(now).iter().map(connection_info).collect())
        })
    }

    /// `ipvsadm --set tcp tcpfin udp` (seconds; 0 leaves a value unchanged).
    #[napi]
    pub fn set_timeouts(&self, timeouts: TimeoutsInfo) -> Result<()> {
        self.with(|st| st.ipvs.set_timeouts(timeouts.tcp, timeouts.tcpfin, timeouts.udp).map_err(to_js))
    }

    /// `ipvsadm -L --timeout`.
    #[napi]
    pub fn timeouts(&self) -> Result<TimeoutsInfo> {
        self.with(|st| {
            let (tcp, tcpfin, udp) = st.ipvs.timeouts();
            Ok(TimeoutsInfo { tcp, tcpfin, udp })
        })
    }

    /// Milliseconds on the director's clock.
    #[napi]
    pub fn now(&self) -> Result<f64> {
        self.with(|st| Ok(st.clock.now().millis() as f64))
    }

    /// Moves a manual clock forward by `ms` milliseconds and runs the timers that became due.
    #[napi]
    pub fn advance_time(&self, ms: f64) -> Result<()> {
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(invalid("advanceTime needs a finite, non-negative number of milliseconds"));
        }
        self.with(|st| match &mut st.clock {
            Clock::Manual(t) => {
                *t += ms as u64;
                let now = Instant::from_millis(*t);
                st.ipvs.advance(now);
                st.ipvs.estimate(now);
                Ok(())
            }
            Clock::System(_) => Err(napi::Error::new(
                "ENOTSUP".to_owned(),
                "advanceTime needs a director opened with { clock: 'manual' }".to_owned(),
            )),
        })
    }
}

/// Panics inside the binding on purpose. Exists so tests can prove a Rust panic reaches
/// JavaScript as an `EPANIC` error instead of aborting the process; not part of the SDK.
#[napi(js_name = "__lvsPanicForTest")]
pub fn panic_for_test() -> Result<()> {
    guard(|| panic!("deliberate panic for the test suite"))
}
