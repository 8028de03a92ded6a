//! The VRRP speaker of a director: instance options in, a handle and an event callback out.
//! Conversion only; the state machine is `lvs_core::vrrp`, the I/O `lvs_dataplane::vrrp`.

use crate::error::{guard, invalid, Result};
use lvs_core::vrrp::{InstanceConfig, State};
use lvs_core::wire::vrrp::{Auth, Version};
use lvs_dataplane::vrrp::{default_source, Event, InstanceSpec, InstanceStatus, Speaker};
use napi::bindgen_prelude::BigInt;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One `vrrp_instance`, keyword by keyword (times in seconds).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct VrrpInstanceSpec {
    /// Instance name.
    pub name: String,
    /// Interface (one the director runs on).
    pub interface: String,
    /// `virtual_router_id`.
    pub virtual_router_id: u32,
    /// `priority` (default 100).
    pub priority: Option<u32>,
    /// `advert_int` in seconds (default 1).
    pub advert_int: Option<f64>,
    /// `version` 2 or 3 (default 2 for IPv4, 3 for IPv6).
    pub version: Option<u32>,
    /// `state MASTER` (true) or `BACKUP`.
    pub initial_master: Option<bool>,
    /// `nopreempt`.
    pub nopreempt: Option<bool>,
    /// `preempt_delay` in seconds.
    pub preempt_delay: Option<f64>,
    /// `auth_pass` of `auth_type PASS` (VRRPv2).
    pub auth_pass: Option<String>,
    /// `virtual_ipaddress`: bare addresses.
    pub virtual_ipaddress: Vec<String>,
    /// `mcast_src_ip` / `unicast_src_ip` (default: the interface's address).
    pub src_ip: Option<String>,
    /// `unicast_peer` addresses.
    pub unicast_peer: Option<Vec<String>>,
    /// `vrrp_lower_prio_no_advert`.
    pub lower_prio_no_advert: Option<bool>,
    /// `vrrp_higher_prio_send_advert`.
    pub higher_prio_send_advert: Option<bool>,
    /// `vrrp_down_timer_adverts`.
    pub down_timer_adverts: Option<u32>,
    /// `garp_master_delay` (s).
    pub garp_master_delay: Option<f64>,
    /// `garp_master_repeat`.
    pub garp_master_repeat: Option<u32>,
    /// `garp_lower_prio_delay` (s).
    pub garp_lower_prio_delay: Option<f64>,
    /// `garp_lower_prio_repeat`.
    pub garp_lower_prio_repeat: Option<u32>,
    /// `garp_master_refresh` (s).
    pub garp_master_refresh: Option<f64>,
    /// `garp_master_refresh_repeat`.
    pub garp_master_refresh_repeat: Option<u32>,
    /// `skip_check_adv_addr`.
    pub skip_check_adv_addr: Option<bool>,
    /// `check_unicast_src`.
    pub check_unicast_src: Option<bool>,
}

/// Something the speaker reports.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct VrrpEvent {
    /// `'state'`, `'log'` or `'error'`.
    #[napi(ts_type = "'state' | 'log' | 'error'")]
    pub kind: String,
    /// The instance (absent for errors not tied to one).
    pub instance: Option<String>,
    /// Old state (`state`).
    pub from: Option<String>,
    /// New state (`state`).
    pub to: Option<String>,
    /// Effective priority (`state`).
    pub priority: Option<u32>,
    /// The log line or error message.
    pub message: Option<String>,
}

/// An instance as the speaker last saw it.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct VrrpInstanceInfo {
    /// Instance name.
    pub name: String,
    /// `INIT`, `BACKUP`, `MASTER`, `FAULT` or `STOP`.
    pub state: String,
    /// Effective priority.
    pub priority: u32,
    /// The master a backup listens to.
    pub master: Option<String>,
    /// Receive, send and drop counters.
    pub counters: HashMap<String, BigInt>,
}

fn addr(what: &str, s: &str) -> Result<IpAddr> {
    s.trim().parse().map_err(|_| invalid(format!("{what}: `{s}' is not an IP address")))
}

fn ms(what: &str, seconds: f64) -> Result<u64> {
    if !(seconds.is_finite() && (0.0..=1e6).contains(&seconds)) {
        return Err(invalid(format!("{what} must be a number of seconds from 0, not {seconds}")));
    }
    Ok((seconds * 1000.0).round() as u64)
}

fn u8_of(what: &str, v: u32) -> Result<u8> {
    u8::try_from(v).map_err(|_| invalid(format!("{what} must be from 0 to 255, not {v}")))
}

/// The core configuration of a spec (keepalived's defaults for whatever is absent).
pub fn instance_spec(s: &VrrpInstanceSpec) -> Result<InstanceSpec> {
    let n = &s.name;
    let vips = s
        .virtual_ipaddress
        .iter()
        .map(|a| addr(&format!("({n}) virtual_ipaddress"), a))
        .collect::<Result<Vec<_>>>()?;
    let v6 = vips.first().is_some_and(IpAddr::is_ipv6);
    let src = match &s.src_ip {
        Some(a) => addr(&format!("({n}) source address"), a)?,
        None => default_source(&s.interface, v6).map_err(|e| invalid(format!("({n}) {e}")))?,
    };
    let mut c = InstanceConfig::new(n.clone(), u8_of("virtual_router_id", s.virtual_router_id)?, vips, src);
    if let Some(p) = s.priority {
        c.priority = u8_of("priority", p)?;
    }
    if let Some(v) = s.version {
        c.version = match v {
            2 => Version::V2,
            3 => Version::V3,
            _ => return Err(invalid(format!("({n}) version must be 2 or 3, not {v}"))),
        };
    }
    if let Some(t) = s.advert_int {
        let cs = (ms("advert_int", t)? + 5) / 10;
        c.advert_int_cs =
            u16::try_from(cs).map_err(|_| invalid(format!("({n}) advert_int {t} too large")))?;
    }
    c.initial_master = s.initial_master.unwrap_or(false);
    c.nopreempt = s.nopreempt.unwrap_or(false);
    if let Some(d) = s.preempt_delay {
        c.preempt_delay_ms = ms("preempt_delay", d)?;
    }
    if let Some(p) = &s.auth_pass {
        c.auth = Auth::pass(p);
    }
    if let Some(peers) = &s.unicast_peer {
        c.unicast_peers =
            peers.iter().map(|a| addr(&format!("({n}) unicast_peer"), a)).collect::<Result<_>>()?;
    }
    c.lower_prio_no_advert = s.lower_prio_no_advert.unwrap_or(c.lower_prio_no_advert);
    c.higher_prio_send_advert = s.higher_prio_send_advert.unwrap_or(c.higher_prio_send_advert);
    if let Some(d) = s.down_timer_adverts {
        c.down_timer_adverts = u8_of("down_timer_adverts", d)?;
    }
    if let Some(d) = s.garp_master_delay {
        c.garp_master_delay_ms = ms("garp_master_delay", d)?;
    }
    c.garp_master_repeat = s.garp_master_repeat.unwrap_or(c.garp_master_repeat);
    if let Some(d) = s.garp_lower_prio_delay {
        c.garp_lower_prio_delay_ms = ms("garp_lower_prio_delay", d)?;
    }
    c.garp_lower_prio_repeat = s.garp_lower_prio_repeat.unwrap_or(c.garp_lower_prio_repeat);
    if let Some(d) = s.garp_master_refresh {
        c.garp_master_refresh_ms = ms("garp_master_refresh", d)?;
    }
    c.garp_master_refresh_repeat = s.garp_master_refresh_repeat.unwrap_or(c.garp_master_refresh_repeat);
    c.skip_check_adv_addr = s.skip_check_adv_addr.unwrap_or(c.skip_check_adv_addr);
    c.check_unicast_src = s.check_unicast_src.unwrap_or(c.check_unicast_src);
    c.validate().map_err(|e| invalid(e.message()))?;
    Ok(InstanceSpec { interface: s.interface.clone(), config: c })
}

fn event(e: Event) -> VrrpEvent {
    let none = VrrpEvent {
        kind: String::new(),
        instance: None,
        from: None,
        to: None,
        priority: None,
        message: None,
    };
    match e {
        Event::State { instance, from, to, priority } => VrrpEvent {
            kind: "state".into(),
            instance: Some(instance),
            from: Some(from.name().into()),
            to: Some(to.name().into()),
            priority: Some(priority.into()),
            ..none
        },
        Event::Log { instance, message } => {
            VrrpEvent { kind: "log".into(), instance: Some(instance), message: Some(message), ..none }
        }
        Event::Error { instance, message } => {
            VrrpEvent { kind: "error".into(), instance, message: Some(message), ..none }
        }
    }
}

fn info(s: InstanceStatus) -> VrrpInstanceInfo {
    VrrpInstanceInfo {
        name: s.name,
        state: State::name(s.state).into(),
        priority: s.priority.into(),
        master: s.master.map(|a| a.to_string()),
        counters: s.counters.into_iter().map(|(n, v)| (n, BigInt::from(v))).collect(),
    }
}

/// The JS callback events are delivered to (one argument, the event).
pub type EventCallback = ThreadsafeFunction<VrrpEvent, (), VrrpEvent, Status, false>;

/// A running VRRP speaker.
#[napi]
#[derive(Debug)]
pub struct NativeVrrpSpeaker {
    speaker: Mutex<Option<Speaker>>,
    /// The director's "a speaker runs" flag, cleared on stop.
    active: Arc<AtomicBool>,
}

impl NativeVrrpSpeaker {
    /// Starts a speaker over `engine`; `active` is the director's one-speaker flag, already set.
    pub fn start(
        engine: Arc<Mutex<lvs_core::engine::Engine>>,
        clock: lvs_dataplane::runtime::Clock,
        instances: &[VrrpInstanceSpec],
        sync_groups: &[Vec<String>],
        callback: EventCallback,
        active: Arc<AtomicBool>,
    ) -> Result<NativeVrrpSpeaker> {
        let specs = instances.iter().map(instance_spec).collect::<Result<Vec<_>>>()?;
        let sink = Box::new(move |e: Event| {
            callback.call(event(e), ThreadsafeFunctionCallMode::NonBlocking);
        });
        let speaker = Speaker::start(engine, clock, specs, sync_groups, sink).map_err(|e| {
            let code = match e.kind() {
                std::io::ErrorKind::PermissionDenied => "EPERM",
                std::io::ErrorKind::NotFound => "ENODEV",
                _ => "EINVAL",
            };
            napi::Error::new(code.to_owned(), e.to_string())
        })?;
        Ok(NativeVrrpSpeaker { speaker: Mutex::new(Some(speaker)), active })
    }

    fn with<T>(&self, f: impl FnOnce(&Speaker) -> std::io::Result<T>) -> Result<T> {
        guard(|| {
            let s = self.speaker.lock().unwrap_or_else(|p| p.into_inner());
            let s = s.as_ref().ok_or_else(|| {
                napi::Error::new("ESRCH".to_owned(), "the VRRP speaker has stopped".to_owned())
            })?;
            f(s).map_err(|e| {
                let code = if e.kind() == std::io::ErrorKind::NotFound { "ENOENT" } else { "EIO" };
                napi::Error::new(code.to_owned(), e.to_string())
            })
        })
    }
}

#[napi]
impl NativeVrrpSpeaker {
    /// The instances' states, priorities and counters.
    #[napi]
    pub fn status(&self) -> Result<Vec<VrrpInstanceInfo>> {
        self.with(|s| Ok(s.status().into_iter().map(info).collect()))
    }

    /// Sets the sum of the tracking weights of an instance.
    #[napi]
    pub fn set_priority_delta(&self, name: String, delta: i32) -> Result<()> {
        self.with(|s| s.set_priority_delta(&name, delta))
    }

    /// Puts an instance into FAULT or lets it out.
    #[napi]
    pub fn set_fault(&self, name: String, fault: bool) -> Result<()> {
        self.with(|s| s.set_fault(&name, fault))
    }

    /// Shuts every instance down (priority 0 from a master) and stops. Idempotent.
    #[napi]
    pub fn stop(&self) -> Result<()> {
        guard(|| {
            let s = self.speaker.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(s) = s {
                let r = s.stop();
                self.active.store(false, Ordering::Release);
                r.map_err(|e| napi::Error::new("EIO".to_owned(), e.to_string()))?;
            }
            Ok(())
        })
    }
}
