//! The virtual server table: services and their real servers, changed the way ipvsadm's commands
//! change the kernel's (`-A -E -D -a -e -d -C -Z`), with the same checks and error texts.

use crate::addr::is_unicast;
use crate::dest::{Dest, DestArena, DestId};
use crate::error::{Error, Result};
use crate::model::{
    DestConfig, Family, FwdMethod, Protocol, ServiceConfig, ServiceKey, TunnelCsum, TunnelType, MAX_TIMEOUT,
};
use crate::sched::{new_scheduler, DestChange, DestList, Scheduler};
use crate::stats::Stats;
use crate::time::Instant;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// How long a deleted real server with no connections stays revivable (`IP_VS_DEST_TRASH_PERIOD`).
pub const DEST_TRASH_PERIOD: Duration = Duration::from_secs(120);

/// The largest weight ipvsadm accepts.
pub const MAX_WEIGHT: i32 = 65535;

/// A virtual service at run time.
#[derive(Debug)]
pub struct Service {
    config: ServiceConfig,
    /// `None` for scheduler `none`: nothing is ever scheduled.
    scheduler: Option<Box<dyn Scheduler>>,
    /// Real servers in kernel list order (newest first).
    order: Vec<DestId>,
    /// Statistics.
    pub stats: Stats,
}

impl Service {
    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }
    /// The real servers' ids in kernel list order (newest first).
    pub fn dest_ids(&self) -> &[DestId] {
        &self.order
    }
}

/// Services, real servers and the deleted servers still referenced ("trash").
#[derive(Debug, Default)]
pub struct Ipvs {
    services: Vec<Service>,
    index: HashMap<ServiceKey, usize>,
    dests: DestArena,
    trash: Vec<DestId>,
    /// Totals over all services.
    pub stats: Stats,
}

impl Ipvs {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// `-A`: adds a service.
    pub fn add_service(&mut self, cfg: ServiceConfig) -> Result<()> {
        check_service(&cfg)?;
        if self.index.contains_key(&cfg.key) {
            return Err(Error::service_exists());
        }
        let scheduler = bind_scheduler(&cfg.scheduler, DestList::new(&self.dests, &[]))?;
        self.index.insert(cfg.key, self.services.len());
        self.services.push(Service { config: cfg, scheduler, order: Vec::new(), stats: Stats::default() });
        Ok(())
    }

    /// `-E`: replaces a service's settings (all of them, as ipvsadm sends a full spec).
    pub fn edit_service(&mut self, cfg: ServiceConfig) -> Result<()> {
        check_service(&cfg)?;
        let i = *self.index.get(&cfg.key).ok_or_else(Error::no_service)?;
        let svc = &mut self.services[i];
        if svc.config.scheduler != cfg.scheduler {
            svc.scheduler = bind_scheduler(&cfg.scheduler, DestList::new(&self.dests, &svc.order))?;
        }
        svc.config = cfg;
        Ok(())
    }

    /// `-D`: deletes a service; its servers go to the trash.
    pub fn del_service(&mut self, key: &ServiceKey, now: Instant) -> Result<()> {
        let i = self.index.remove(key).ok_or_else(Error::no_service)?;
        let svc = self.services.swap_remove(i);
        if let Some(moved) = self.services.get(i) {
            self.index.insert(moved.config.key, i);
        }
        for id in svc.order {
            self.trash_dest(id, now);
        }
        Ok(())
    }

    /// `-C`: deletes every service.
    pub fn clear(&mut self, now: Instant) {
        let keys: Vec<ServiceKey> = self.services.iter().map(|s| s.config.key).collect();
        for key in keys {
            let _ = self.del_service(&key, now);
        }
    }

    /// `-a`: adds a real server to a service. A server deleted from the same service within
    /// [`DEST_TRASH_PERIOD`] (or still referenced) comes back with its counters.
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: &DestConfig) -> Result<()> {
        let i = *self.index.get(key).ok_or_else(Error::service_not_defined)?;
        let port = resolve_dest_port(key, cfg);
        check_dest(key, cfg)?;
        if self.find_dest(i, cfg.addr, port).is_some() {
            return Err(Error::dest_exists());
        }
        let revived = self.trash.iter().position(|&id| {
            self.dests.get(id).is_some_and(|d| d.service == *key && d.addr == cfg.addr && d.port == port)
        });
        let id = match revived {
            Some(t) => {
                let id = self.trash.swap_remove(t);
                let d = self.dests.get_mut(id).expect("trash names live servers");
                apply_dest_config(d, cfg, true);
                d.available = true;
                d.idle_since = None;
                id
            }
            None => {
                let mut d = Dest::new(*key, cfg, port);
                d.thresholds_changed();
                self.dests.insert(d)
            }
        };
        let svc = &mut self.services[i];
        svc.order.insert(0, id);
        if let Some(s) = svc.scheduler.as_mut() {
            let _ = s.dests_changed(DestList::new(&self.dests, &svc.order), DestChange::Add(id));
        }
        Ok(())
    }

    /// `-e`: replaces a real server's settings.
    pub fn edit_dest(&mut self, key: &ServiceKey, cfg: &DestConfig) -> Result<()> {
        let i = *self.index.get(key).ok_or_else(Error::service_not_defined)?;
        let port = resolve_dest_port(key, cfg);
        check_dest(key, cfg)?;
        let id = self.find_dest(i, cfg.addr, port).ok_or_else(Error::no_dest)?;
        apply_dest_config(self.dests.get_mut(id).expect("listed servers are live"), cfg, false);
        let svc = &mut self.services[i];
        if let Some(s) = svc.scheduler.as_mut() {
            let _ = s.dests_changed(DestList::new(&self.dests, &svc.order), DestChange::Update(id));
        }
        Ok(())
    }

    /// `-d`: removes a real server from a service. `port` is `None` for "the service port".
    pub fn del_dest(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        now: Instant,
    ) -> Result<()> {
        let i = *self.index.get(key).ok_or_else(Error::service_not_defined)?;
        let port = port.unwrap_or(key.port());
        let id = self.find_dest(i, addr, port).ok_or_else(Error::no_dest)?;
        let svc = &mut self.services[i];
        let pos = svc.order.iter().position(|&d| d == id).expect("found on this list");
        svc.order.remove(pos);
        self.trash_dest(id, now);
        let svc = &mut self.services[i];
        if let Some(s) = svc.scheduler.as_mut() {
            let _ = s.dests_changed(DestList::new(&self.dests, &svc.order), DestChange::Del { id, pos });
        }
        Ok(())
    }

    /// `-Z`: zeroes the counters of one service and its servers, or of everything.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<()> {
        let targets: Vec<usize> = match key {
            Some(k) => vec![*self.index.get(k).ok_or_else(Error::no_service)?],
            None => {
                self.stats.zero();
                (0..self.services.len()).collect()
            }
        };
        for i in targets {
            let svc = &mut self.services[i];
            svc.stats.zero();
            for &id in &svc.order {
                if let Some(d) = self.dests.get_mut(id) {
                    d.stats.zero();
                }
            }
        }
        Ok(())
    }

    /// Frees trashed servers that have had no references for [`DEST_TRASH_PERIOD`].
    pub fn expire_trash(&mut self, now: Instant) {
        let dests = &mut self.dests;
        self.trash.retain(|&id| {
            let Some(d) = dests.get(id) else { return false };
            let expired = d.refs == 0 && d.idle_since.is_some_and(|t| now >= t + DEST_TRASH_PERIOD);
            if expired {
                dests.remove(id);
            }
            !expired
        });
    }

    /// Runs the rate estimators up to `now`.
    pub fn estimate(&mut self, now: Instant) {
        self.stats.estimate(now);
        for svc in &mut self.services {
            svc.stats.estimate(now);
        }
        for id in self.services.iter().flat_map(|s| s.order.iter().copied()).collect::<Vec<_>>() {
            if let Some(d) = self.dests.get_mut(id) {
                d.stats.estimate(now);
            }
        }
    }

    /// Services in the order they were added (ipvsadm sorts them for display).
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter()
    }

    /// Services in `ipvsadm -L` order.
    pub fn sorted_services(&self) -> Vec<&Service> {
        let mut v: Vec<&Service> = self.services.iter().collect();
        crate::order::qsort_like(&mut v, &mut |a, b| {
            crate::order::cmp_services(&a.config.key, &b.config.key)
        });
        v
    }

    /// A service's real servers in `ipvsadm -L` order.
    pub fn sorted_dests<'a>(&'a self, svc: &'a Service) -> Vec<(DestId, &'a Dest)> {
        let mut v: Vec<(DestId, &Dest)> = self.dest_list(svc).iter().collect();
        crate::order::qsort_like(&mut v, &mut |a, b| {
            crate::order::cmp_dests((a.1.addr, a.1.port), (b.1.addr, b.1.port))
        });
        v
    }

    /// A service by key.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.index.get(key).map(|&i| &self.services[i])
    }

    /// The servers of a service, in kernel list order.
    pub fn dest_list<'a>(&'a self, svc: &'a Service) -> DestList<'a> {
        DestList::new(&self.dests, &svc.order)
    }

    /// A server by id, also one in the trash.
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dests.get(id)
    }

    /// Number of deleted servers kept in the trash.
    pub fn trash_len(&self) -> usize {
        self.trash.len()
    }

    fn find_dest(&self, svc: usize, addr: IpAddr, port: u16) -> Option<DestId> {
        self.services[svc].order.iter().copied().find(|&id| {
            let d = self.dests.get(id).expect("listed servers are live");
            d.addr == addr && d.port == port
        })
    }

    fn trash_dest(&mut self, id: DestId, now: Instant) {
        if let Some(d) = self.dests.get_mut(id) {
            d.available = false;
            d.idle_since = Some(now);
            self.trash.push(id);
        }
    }
}

fn bind_scheduler(name: &str, dests: DestList<'_>) -> Result<Option<Box<dyn Scheduler>>> {
    if name == "none" {
        return Ok(None);
    }
    let mut s = new_scheduler(name).ok_or_else(Error::no_scheduler)?;
    s.dests_changed(dests, DestChange::Init)?;
    Ok(Some(s))
}

fn check_service(cfg: &ServiceConfig) -> Result<()> {
    match cfg.key {
        ServiceKey::Fwmark { mark: 0, .. } => return Err(Error::invalid("illegal fwmark specified")),
        ServiceKey::Addr { port: 0, .. } if cfg.persistent.is_none() => {
            return Err(Error::invalid("Zero port specified for non-persistent service"));
        }
        ServiceKey::Addr { addr, .. } if addr.is_unspecified() => {
            return Err(Error::invalid("illegal virtual service address"));
        }
        _ => {}
    }
    if let Some(t) = cfg.persistent {
        if t == 0 || t > MAX_TIMEOUT {
            return Err(Error::invalid("illegal timeout for persistent service"));
        }
    }
    if cfg.one_packet {
        let udp = matches!(cfg.key, ServiceKey::Addr { protocol: Protocol::Udp, .. });
        if !udp && !cfg.key.is_fwmark() {
            return Err(Error::invalid("One-Packet Scheduling is only for UDP virtual services"));
        }
    }
    let netmask_v6 = matches!(cfg.netmask, crate::addr::Netmask::V6(_));
    if netmask_v6 != cfg.key.is_v6() {
        return Err(Error::invalid("netmask does not match the service's address family"));
    }
    if let Some(pe) = cfg.pe.as_deref() {
        if pe != "sip" {
            return Err(Error::no_scheduler());
        }
    }
    if cfg.sched_flags & !crate::model::svc_flags::SCHED_MASK != 0 {
        return Err(Error::invalid("invalid scheduler flags"));
    }
    Ok(())
}

/// ipvsadm's port rules: no port means the service port (0 for fwmark); direct routing and
/// tunnelling cannot change ports, so the service port is forced for them.
fn resolve_dest_port(key: &ServiceKey, cfg: &DestConfig) -> u16 {
    match (key, cfg.fwd) {
        (ServiceKey::Addr { port, .. }, FwdMethod::Route | FwdMethod::Tunnel) => *port,
        _ => cfg.port.unwrap_or(key.port()),
    }
}

fn check_dest(key: &ServiceKey, cfg: &DestConfig) -> Result<()> {
    if !(0..=MAX_WEIGHT).contains(&cfg.weight) {
        return Err(Error::range("illegal weight specified"));
    }
    // The kernel refuses a lower threshold above the upper one even when the upper one is unset.
    if cfg.l_threshold > cfg.u_threshold || cfg.u_threshold > i32::MAX as u32 {
        return Err(Error::range("Numerical result out of range"));
    }
    if !is_unicast(cfg.addr) {
        return Err(Error::invalid(
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ));
    }
    if Family::of(cfg.addr) != key.family() && cfg.fwd != FwdMethod::Tunnel {
        return Err(Error::invalid("Different address family is allowed only for tunneling servers"));
    }
    if cfg.fwd == FwdMethod::Tunnel {
        let t = cfg.tunnel;
        match t.kind {
            TunnelType::Gue if t.port == 0 => return Err(Error::invalid("tunnel port is zero")),
            TunnelType::Ipip if t.port != 0 || t.csum != TunnelCsum::None => {
                return Err(Error::invalid("tunnel options are not allowed with tunnel type ipip"));
            }
            TunnelType::Gre if t.port != 0 || t.csum == TunnelCsum::RemCsum => {
                return Err(Error::invalid("only --tun-csum/--tun-nocsum are allowed with tunnel type gre"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `__ip_vs_update_dest`: settings of an add or edit; `last_weight` follows every non-zero weight
/// (and the weight a server is added with).
fn apply_dest_config(d: &mut Dest, cfg: &DestConfig, add: bool) {
    let thresholds_changed = d.u_threshold != cfg.u_threshold || d.l_threshold != cfg.l_threshold;
    d.fwd = cfg.fwd;
    d.tunnel = cfg.tunnel;
    d.weight = cfg.weight;
    if add || cfg.weight != 0 {
        d.last_weight = cfg.weight;
    }
    d.u_threshold = cfg.u_threshold;
    d.l_threshold = cfg.l_threshold;
    if thresholds_changed {
        d.thresholds_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn key(vip: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: vip.parse().unwrap(), port }
    }

    fn svc(vip: &str, port: u16, sched: &str) -> ServiceConfig {
        let mut c = ServiceConfig::new(key(vip, port));
        c.scheduler = sched.into();
        c
    }

    fn rs(addr: &str, fwd: FwdMethod, weight: i32) -> DestConfig {
        let mut c = DestConfig::new(addr.parse().unwrap());
        c.fwd = fwd;
        c.weight = weight;
        c
    }

    fn addrs(ipvs: &Ipvs, k: &ServiceKey) -> Vec<String> {
        let s = ipvs.service(k).unwrap();
        ipvs.dest_list(s).iter().map(|(_, d)| format!("{}:{}", d.addr, d.port)).collect()
    }

    #[test]
    fn add_list_and_errors_like_ipvsadm() {
        let mut ipvs = Ipvs::new();
        let k = key("10.10.36.11", 80);
        ipvs.add_service(svc("10.10.36.11", 80, "rr")).unwrap();
        assert_eq!(
            ipvs.add_service(svc("10.10.36.11", 80, "rr")).unwrap_err().to_string(),
            "Service already exists"
        );
        ipvs.add_dest(&k, &rs("10.10.36.4", FwdMethod::Route, 1)).unwrap();
        ipvs.add_dest(&k, &rs("10.10.36.7", FwdMethod::Tunnel, 1)).unwrap();
        assert_eq!(addrs(&ipvs, &k), ["10.10.36.7:80", "10.10.36.4:80"], "newest first");
        assert_eq!(
            ipvs.add_dest(&k, &rs("10.10.36.4", FwdMethod::Route, 1)).unwrap_err().to_string(),
            "Destination already exists"
        );
        let missing = key("10.10.36.12", 80);
        assert_eq!(
            ipvs.add_dest(&missing, &rs("1.2.3.4", FwdMethod::Masq, 1)).unwrap_err().to_string(),
            "Service not defined"
        );
        assert_eq!(ipvs.del_service(&missing, Instant::ZERO).unwrap_err().code().errno(), "ESRCH");
        assert_eq!(
            ipvs.del_dest(&k, "10.10.36.9".parse().unwrap(), None, Instant::ZERO).unwrap_err().to_string(),
            "No such destination"
        );
        assert_eq!(ipvs.add_service(svc("10.0.0.1", 80, "nope")).unwrap_err().code().errno(), "ENOENT");
    }

    #[test]
    fn ports_follow_ipvsadm_rules() {
        let mut ipvs = Ipvs::new();
        let k = key("10.0.0.1", 80);
        ipvs.add_service(svc("10.0.0.1", 80, "rr")).unwrap();
        let mut dr = rs("192.168.0.2", FwdMethod::Route, 1);
        dr.port = Some(8080);
        ipvs.add_dest(&k, &dr).unwrap();
        let mut nat = rs("192.168.0.3", FwdMethod::Masq, 1);
        nat.port = Some(8080);
        ipvs.add_dest(&k, &nat).unwrap();
        assert_eq!(addrs(&ipvs, &k), ["192.168.0.3:8080", "192.168.0.2:80"]);
        assert_eq!(
            ipvs.add_service(svc("10.0.0.1", 0, "rr")).unwrap_err().to_string(),
            "Zero port specified for non-persistent service"
        );
        let mut p = svc("10.0.0.1", 0, "rr");
        p.persistent = Some(1800);
        ipvs.add_service(p).unwrap();
    }

    #[test]
    fn bad_dests_leave_the_table_untouched() {
        let mut ipvs = Ipvs::new();
        let k = key("10.0.0.1", 80);
        ipvs.add_service(svc("10.0.0.1", 80, "rr")).unwrap();
        for (cfg, code) in [
            (rs("10.0.0.2", FwdMethod::Route, -1), "ERANGE"),
            (rs("10.0.0.2", FwdMethod::Route, 65536), "ERANGE"),
            (rs("224.0.0.1", FwdMethod::Route, 1), "EINVAL"),
            (rs("2001:db8::1", FwdMethod::Route, 1), "EINVAL"),
            (DestConfig { l_threshold: 5, u_threshold: 3, ..rs("10.0.0.2", FwdMethod::Masq, 1) }, "ERANGE"),
        ] {
            assert_eq!(ipvs.add_dest(&k, &cfg).unwrap_err().code().errno(), code, "{cfg:?}");
        }
        assert!(addrs(&ipvs, &k).is_empty());
        // IPv6 real servers behind an IPv4 VIP are fine for tunnels.
        ipvs.add_dest(&k, &rs("2001:db8::1", FwdMethod::Tunnel, 1)).unwrap();
    }

    #[test]
    fn deleted_server_revives_from_trash_with_counters() {
        let mut ipvs = Ipvs::new();
        let k = key("10.0.0.1", 80);
        ipvs.add_service(svc("10.0.0.1", 80, "rr")).unwrap();
        ipvs.add_dest(&k, &rs("10.0.0.2", FwdMethod::Masq, 1)).unwrap();
        let id = ipvs.service(&k).unwrap().dest_ids()[0];
        ipvs.dests.get_mut(id).unwrap().stats.conn();
        ipvs.del_dest(&k, "10.0.0.2".parse().unwrap(), None, Instant::from_secs(10)).unwrap();
        assert_eq!(ipvs.trash_len(), 1);
        ipvs.expire_trash(Instant::from_secs(100));
        assert_eq!(ipvs.trash_len(), 1, "kept for 120 s");
        ipvs.add_dest(&k, &rs("10.0.0.2", FwdMethod::Masq, 3)).unwrap();
        let d = ipvs.dest(ipvs.service(&k).unwrap().dest_ids()[0]).unwrap();
        assert_eq!((d.stats.counters().conns, d.weight, d.available), (1, 3, true));
        ipvs.del_dest(&k, "10.0.0.2".parse().unwrap(), None, Instant::from_secs(200)).unwrap();
        ipvs.expire_trash(Instant::from_secs(320));
        assert_eq!(ipvs.trash_len(), 0);
        assert!(ipvs.dest(id).is_none());
    }

    #[test]
    fn edit_replaces_settings_and_tracks_last_weight() {
        let mut ipvs = Ipvs::new();
        let k = key("10.0.0.1", 80);
        ipvs.add_service(svc("10.0.0.1", 80, "rr")).unwrap();
        ipvs.add_dest(&k, &rs("10.0.0.2", FwdMethod::Masq, 5)).unwrap();
        ipvs.edit_dest(&k, &rs("10.0.0.2", FwdMethod::Masq, 0)).unwrap();
        let id = ipvs.service(&k).unwrap().dest_ids()[0];
        assert_eq!((ipvs.dest(id).unwrap().weight, ipvs.dest(id).unwrap().last_weight), (0, 5));
        let mut e = svc("10.0.0.1", 80, "rr");
        e.persistent = Some(60);
        ipvs.edit_service(e).unwrap();
        assert_eq!(ipvs.service(&k).unwrap().config().persistent, Some(60));
        assert_eq!(ipvs.edit_service(svc("10.0.0.9", 80, "rr")).unwrap_err().to_string(), "No such service");
        ipvs.clear(Instant::ZERO);
        assert_eq!(ipvs.services().count(), 0);
    }
}
