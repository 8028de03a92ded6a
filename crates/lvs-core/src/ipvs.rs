//! The virtual server table: services and their real servers, changed the way ipvsadm's commands
//! change the kernel's (`-A -E -D -a -e -d -C -Z`), with the same checks and error texts; and the
//! packet path over the connection table ([`crate::conn`]): `process_in` / `process_out` for
//! packets, `advance` for timers, `route_flow` for "where would this client go".

use crate::addr::is_unicast;
use crate::conn::table::{flags as cf, Addr, ConnTable, Entry, FlowHash, KERNEL_HASHED, TPL, V6};
use crate::conn::{
    ipproto, sctp, tcp, udp, ConnId, ConnInfo, ConnMemory, ConnTableStats, Dir, DropReason, Forward,
    InVerdict, OutVerdict, PacketMeta, PassReason, RejectReason, Sysctl, FTP_DATA_PORT, FTP_PORT,
    TEMPLATE_EXPIRE_LATER, UNPRIVILEGED_PORT_START,
};
use crate::dest::{Dest, DestArena, DestId};
use crate::error::{Error, Result};
use crate::model::{
    DestConfig, Family, FwdMethod, Protocol, ServiceConfig, ServiceKey, TunnelCsum, TunnelType,
    DEFAULT_PERSISTENT_TIMEOUT, MAX_TIMEOUT,
};
use crate::pe::Payload;
use crate::rng::Rng;
use crate::sched::{new_scheduler, DestChange, DestList, Flow, SchedCtx, SchedTunables, Scheduler};
use crate::stats::Stats;
use crate::time::Instant;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

mod svc_cache;
mod sync;

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

/// Services, real servers, the deleted servers still referenced ("trash"), and the connection
/// table with its timers and sysctls.
#[derive(Debug)]
pub struct Ipvs {
    services: Vec<Service>,
    index: HashMap<ServiceKey, usize, KeyHash>,
    /// `find_service` results for the packet path; emptied whenever `index` changes.
    svc_cache: svc_cache::SvcCache,
    dests: DestArena,
    trash: Vec<DestId>,
    /// Totals over all services.
    pub stats: Stats,
    conns: Conns,
    sysctl: Sysctl,
    rng: Rng,
    tunables: SchedTunables,
    /// Service index of each listed real server, by arena slot (`NO_SVC` for none).
    svc_of_dest: Vec<u32>,
    /// Services on port 21 (`ftpsvc_counter`) and on port 0 (`nullsvc_counter`).
    ftp_services: usize,
    port0_services: usize,
    /// Services with a persistence engine (`conn_out_counter`: real-server-initiated UDP).
    pe_services: usize,
    /// Next time (ms) the schedulers' housekeeping runs.
    next_tick: u64,
    /// Connection synchronization daemons.
    sync: crate::sync::SyncState,
}

/// Both families' tables, the entry limit and the refusal counter.
#[derive(Debug, Default)]
struct Conns {
    v4: ConnTable<u32>,
    v6: ConnTable<V6>,
    limit: Option<u64>,
    refused: u64,
}

impl Conns {
    fn live(&self) -> u64 {
        self.v4.len() as u64 + self.v6.len() as u64
    }
    fn has_room(&self) -> bool {
        self.limit.is_none_or(|l| self.live() < l)
    }
}

/// [`Ipvs::warm`] for one packet of a family: its hashes, with the tags of its home slot and
/// its reply-index slot prefetched.
#[inline]
fn warm_af<A: Addr>(t: &ConnTable<A>, p: &PacketMeta, c: A, v: A) -> FlowHash {
    let h = t.flow_hash(p.protocol, c, p.sport, v, p.dport, may_start_conn(p));
    t.prefetch_tags(h.key());
    t.prefetch_out(&h);
    h
}

/// Selects a family's table.
trait Fam: Addr {
    fn table(c: &Conns) -> &ConnTable<Self>;
    fn table_mut(c: &mut Conns) -> &mut ConnTable<Self>;
}

impl Fam for u32 {
    #[inline]
    fn table(c: &Conns) -> &ConnTable<u32> {
        &c.v4
    }
    #[inline]
    fn table_mut(c: &mut Conns) -> &mut ConnTable<u32> {
        &mut c.v4
    }
}

impl Fam for V6 {
    #[inline]
    fn table(c: &Conns) -> &ConnTable<V6> {
        &c.v6
    }
    #[inline]
    fn table_mut(c: &mut Conns) -> &mut ConnTable<V6> {
        &mut c.v6
    }
}

/// The service index's hasher: a multiply-and-rotate mix (FxHash style) instead of SipHash, which
/// cost more than the rest of the lookup. Its keys come from the configuration only (packets
/// just query it), so flooding resistance buys nothing here.
#[derive(Debug, Clone, Copy, Default)]
struct KeyHash;

impl std::hash::BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the top 7 bits as tags and the low bits as the position: spread both.
        let h = self.0;
        h ^ (h >> 29) ^ (h << 31)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.add(v as u64);
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.add(v as u64);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.add(v as u64);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    #[inline]
    fn write_isize(&mut self, v: isize) {
        self.add(v as u64);
    }
}

const NO_SVC: u32 = u32::MAX;
/// "No controlling template" in an entry's `control`.
const NO_CONTROL: u32 = u32::MAX;
/// The default seed of the scheduler randomness (twos).
const RNG_SEED: u64 = 0x6c76_7321_5eed_0001;
/// Template state bit `IP_VS_CTPL_S_ASSURED`.
const CTPL_ASSURED: u8 = 1;
/// How often the schedulers' `tick` runs (ms).
const SCHED_TICK_MS: u64 = 1000;
/// How many packets ahead [`Ipvs::process_in_batch`] hashes a packet and prefetches the tags of
/// its home slot and its reply-index slot.
const AHEAD_TAGS: usize = 8;
/// How many packets ahead it reads those tags and prefetches the one entry the probe will stop
/// at (fewer than [`AHEAD_TAGS`], so the tags have arrived by then).
const AHEAD_ENTRY: usize = 4;
/// The ring of hashes between the two: a power of two above [`AHEAD_TAGS`].
const RING: usize = 16;

/// A scheduled connection: stored in the table, or a one-packet connection that is dropped after
/// its packet (its entry waits in the table's one-packet stash). Small, like [`NoConn`], so that
/// results passed up through the scheduling functions are not copies of whole entries.
#[derive(Clone, Copy)]
enum Slot {
    Stored(u32),
    OnePacket,
}

/// The verdict on a client packet that gets no connection.
#[derive(Clone, Copy)]
enum NoConn {
    Pass(PassReason),
    Drop(DropReason),
    Reject(RejectReason),
}

impl From<NoConn> for InVerdict {
    #[inline]
    fn from(n: NoConn) -> InVerdict {
        match n {
            NoConn::Pass(r) => InVerdict::Pass(r),
            NoConn::Drop(r) => InVerdict::Drop(r),
            NoConn::Reject(r) => InVerdict::Reject(r),
        }
    }
}

impl Default for Ipvs {
    fn default() -> Self {
        Ipvs {
            services: Vec::new(),
            index: HashMap::default(),
            svc_cache: svc_cache::SvcCache::default(),
            dests: DestArena::default(),
            trash: Vec::new(),
            stats: Stats::default(),
            conns: Conns::default(),
            sysctl: Sysctl::default(),
            rng: Rng::new(RNG_SEED),
            tunables: SchedTunables::default(),
            svc_of_dest: Vec::new(),
            ftp_services: 0,
            port0_services: 0,
            pe_services: 0,
            next_tick: 0,
            sync: crate::sync::SyncState::default(),
        }
    }
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
        self.count_service(&cfg.key, true);
        self.pe_services += cfg.pe.is_some() as usize;
        self.index.insert(cfg.key, self.services.len());
        self.svc_cache.clear();
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
        self.pe_services = self.pe_services + cfg.pe.is_some() as usize - svc.config.pe.is_some() as usize;
        svc.config = cfg;
        Ok(())
    }

    /// `-D`: deletes a service; its servers go to the trash.
    pub fn del_service(&mut self, key: &ServiceKey, now: Instant) -> Result<()> {
        let i = self.index.remove(key).ok_or_else(Error::no_service)?;
        self.svc_cache.clear();
        let svc = self.services.swap_remove(i);
        self.count_service(key, false);
        self.pe_services -= svc.config.pe.is_some() as usize;
        if let Some(moved) = self.services.get(i) {
            self.index.insert(moved.config.key, i);
            for id in moved.order.clone() {
                self.map_dest(id, i as u32);
            }
        }
        for id in svc.order {
            self.map_dest(id, NO_SVC);
            self.trash_dest(id, now);
        }
        self.after_dest_removal(now);
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
        self.map_dest(id, i as u32);
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
        self.map_dest(id, NO_SVC);
        self.after_dest_removal(now);
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
        let Ipvs { services, dests, .. } = self;
        for svc in services.iter_mut() {
            svc.stats.estimate(now);
            for &id in &svc.order {
                if let Some(d) = dests.get_mut(id) {
                    d.stats.estimate(now);
                }
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

/// Sysctls, limits and introspection of the connection table.
impl Ipvs {
    /// The sysctls the packet path obeys.
    pub fn sysctl(&self) -> &Sysctl {
        &self.sysctl
    }

    /// Changes sysctls (takes effect for the next packet / timer).
    pub fn sysctl_mut(&mut self) -> &mut Sysctl {
        &mut self.sysctl
    }

    /// `ipvsadm --set tcp tcpfin udp` (seconds, 0 = unchanged). Existing connections keep their
    /// current expiry and get the new value at their next packet, as in the kernel.
    pub fn set_timeouts(&mut self, tcp_secs: u32, tcpfin_secs: u32, udp_secs: u32) -> Result<()> {
        self.sysctl.timeouts.set(tcp_secs, tcpfin_secs, udp_secs)
    }

    /// `ipvsadm -L --timeout`: `(tcp, tcpfin, udp)` in seconds.
    pub fn timeouts(&self) -> (u32, u32, u32) {
        self.sysctl.timeouts.summary()
    }

    /// The tunables schedulers read (lblc/lblcr expiration).
    pub fn sched_tunables(&self) -> &SchedTunables {
        &self.tunables
    }

    /// Changes the tunables schedulers read.
    pub fn sched_tunables_mut(&mut self) -> &mut SchedTunables {
        &mut self.tunables
    }

    /// Reseeds the randomness randomized schedulers use.
    pub fn seed_rng(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// Limits connections + templates (`None`: no limit). New entries beyond it are refused (the
    /// packet is dropped) and counted in [`ConnTableStats::refused`].
    pub fn set_conn_limit(&mut self, limit: Option<u64>) {
        self.conns.limit = limit;
    }

    /// Rehashes the connection indexes with a new seed (give a random one to resist collision
    /// attacks; the default is fixed).
    pub fn set_conn_hash_seed(&mut self, seed: u64) {
        self.conns.v4.reseed(seed);
        self.conns.v6.reseed(seed.rotate_left(17) ^ 0x5151);
    }

    /// Entry counts and refusals.
    pub fn conn_stats(&self) -> ConnTableStats {
        let templates = self.conns.v4.templates() as u64 + self.conns.v6.templates() as u64;
        ConnTableStats {
            conns: self.conns.live() - templates,
            templates,
            refused: self.conns.refused,
            limit: self.conns.limit,
        }
    }

    /// Memory of the connection table from its allocated capacities.
    pub fn conn_memory(&self) -> ConnMemory {
        let a = self.conns.v4.bytes();
        let b = self.conns.v6.bytes();
        ConnMemory {
            entries: self.conns.live(),
            slab_bytes: (a.entries + b.entries) as u64,
            index_bytes: (a.indexes + b.indexes) as u64,
            wheel_bytes: (a.wheel + b.wheel) as u64,
        }
    }

    /// Every connection and template, for `ipvsadm -Lc` (IPv4 first, then IPv6, in table order).
    pub fn connections(&self, now: Instant) -> Vec<ConnInfo> {
        let mut out = Vec::with_capacity(self.conns.live() as usize);
        self.list_af::<u32>(now, &mut out);
        self.list_af::<V6>(now, &mut out);
        out
    }

    /// One connection or template by id.
    pub fn connection(&self, id: ConnId, now: Instant) -> Option<ConnInfo> {
        if id.is_v6() {
            self.conn_info::<V6>(id.index(), now)
        } else {
            self.conn_info::<u32>(id.index(), now)
        }
    }

    fn list_af<A: Fam>(&self, now: Instant, out: &mut Vec<ConnInfo>) {
        let t = A::table(&self.conns);
        out.extend(t.ids().filter_map(|id| self.conn_info::<A>(id, now)));
    }

    fn conn_info<A: Fam>(&self, id: u32, now: Instant) -> Option<ConnInfo> {
        let e = A::table(&self.conns).live(id)?;
        let template = e.is_template();
        let state = if template {
            if e.state & CTPL_ASSURED != 0 {
                "ASSURED"
            } else {
                "NONE"
            }
        } else {
            match e.proto {
                ipproto::TCP => tcp::state_name(e.state),
                ipproto::UDP => udp::state_name(e.state),
                ipproto::SCTP => sctp::state_name(e.state),
                _ => "ERR!",
            }
        };
        let daddr = self.dests.get(e.dest).map_or_else(|| e.daddr.to_ip(), |d| d.addr);
        let pe_data = A::table(&self.conns).pe_data(id).map(<[u8]>::to_vec);
        Some(ConnInfo {
            id: ConnId::new(A::V6, id),
            protocol: e.proto,
            template,
            state,
            expires: Duration::from_millis(e.expires.saturating_sub(now.millis())),
            caddr: e.caddr.to_ip(),
            cport: e.cport,
            vaddr: e.vaddr.to_ip(),
            vport: e.vport,
            daddr,
            dport: e.dport,
            fwd: e.fwd(),
            dest: e.dest,
            flags: (e.flags & cf::KERNEL_MASK) as u32 | KERNEL_HASHED,
            controls: if template { e.aux } else { 0 },
            pe_name: pe_data.as_ref().map(|_| crate::pe::SIP),
            pe_data,
        })
    }

    /// Consistency of the connection tables and the servers' counters (tests).
    #[cfg(test)]
    pub(crate) fn check_conns(&self) {
        self.conns.v4.check();
        self.conns.v6.check();
        for (id, d) in self.dests.iter() {
            let (mut total, mut active, mut persist) = (0u32, 0u32, 0u32);
            for info in self.connections(Instant::ZERO) {
                if info.dest != id {
                    continue;
                }
                if info.template {
                    persist += 1;
                } else {
                    total += 1;
                    if info.flags & cf::INACTIVE as u32 == 0 {
                        active += 1;
                    }
                }
            }
            assert_eq!((d.totalconns, d.activeconns, d.persistconns), (total, active, persist), "{}", d.addr);
            assert_eq!(d.refs, total + persist, "refs of {}", d.addr);
        }
    }
}

/// The packet path.
impl Ipvs {
    /// A client → virtual service packet (`ip_vs_in_hook`): finds the connection or schedules a
    /// new one (service lookup by fwmark, exact match, FTP rule, port 0; persistence templates;
    /// one-packet scheduling), applies the protocol state transition, updates the servers'
    /// active/inactive counters and the conn/packet/byte statistics, and says what to do with it.
    ///
    /// Without the payload, new connections to `--pe sip` services are dropped
    /// ([`DropReason::NoPeData`]); use [`process_in_payload`](Self::process_in_payload) for them.
    #[inline]
    pub fn process_in(&mut self, pkt: &PacketMeta, now: Instant) -> InVerdict {
        self.process_in_with(pkt, None, None, now)
    }

    /// [`process_in`](Self::process_in) with the packet's transport payload, which persistence
    /// engines read: a new connection to a `--pe sip` service is persistent per SIP Call-ID
    /// (client network, virtual service and Call-ID), so clients behind one address with
    /// different calls can go to different servers and every datagram of one call to the same.
    pub fn process_in_payload(&mut self, pkt: &PacketMeta, payload: Payload<'_>, now: Instant) -> InVerdict {
        self.process_in_with(pkt, Some(payload), None, now)
    }

    /// `hash`: the packet's hashes in its family's table, when [`warm`](Self::warm) made them.
    #[inline]
    fn process_in_with(
        &mut self,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        hash: Option<&FlowHash>,
        now: Instant,
    ) -> InVerdict {
        if Protocol::from_number(pkt.protocol).is_none() {
            return InVerdict::Pass(PassReason::UnsupportedProtocol);
        }
        match (pkt.saddr, pkt.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.in_af::<u32>(pkt, payload, u32::from(s), u32::from(d), hash, now)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.in_af::<V6>(pkt, payload, s.octets(), d.octets(), hash, now)
            }
            _ => InVerdict::Drop(DropReason::Malformed),
        }
    }

    /// [`process_in`](Self::process_in) for a batch, verdicts appended to `out`. Its table reads
    /// are pipelined: [`AHEAD_TAGS`] packets ahead of the one processed, a packet is hashed and
    /// the tags of its home slot and its reply-index slot are prefetched; [`AHEAD_ENTRY`] packets
    /// ahead, its tags are read and the entry its lookup will stop at (the match, or the free
    /// slot a new connection takes) is prefetched. So each packet's cache misses overlap the work
    /// on the packets before it, and only lines that will be used are fetched, a few per packet
    /// at any time rather than a burst. The hashes are used again for the lookups and inserts.
    pub fn process_in_batch(&mut self, pkts: &[PacketMeta], now: Instant, out: &mut Vec<InVerdict>) {
        out.reserve(pkts.len());
        let mut hashes = [None; RING];
        for (i, p) in pkts.iter().enumerate().take(AHEAD_TAGS) {
            hashes[i] = self.warm(p);
        }
        for (i, p) in pkts.iter().enumerate().take(AHEAD_ENTRY) {
            self.warm_entry(p, hashes[i].as_ref());
        }
        for (i, p) in pkts.iter().enumerate() {
            if let Some(a) = pkts.get(i + AHEAD_TAGS) {
                hashes[(i + AHEAD_TAGS) % RING] = self.warm(a);
            }
            if let Some(b) = pkts.get(i + AHEAD_ENTRY) {
                self.warm_entry(b, hashes[(i + AHEAD_ENTRY) % RING].as_ref());
            }
            out.push(self.process_in_with(p, None, hashes[i % RING].as_ref(), now));
        }
    }

    /// The connection a client packet belongs to, without changing anything.
    #[inline]
    pub fn lookup_conn(&self, pkt: &PacketMeta) -> Option<ConnId> {
        match (pkt.saddr, pkt.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self
                .conns
                .v4
                .lookup_in(pkt.protocol, u32::from(s), pkt.sport, u32::from(d), pkt.dport)
                .map(|i| ConnId::new(false, i)),
            (IpAddr::V6(s), IpAddr::V6(d)) => self
                .conns
                .v6
                .lookup_in(pkt.protocol, s.octets(), pkt.sport, d.octets(), pkt.dport)
                .map(|i| ConnId::new(true, i)),
            _ => None,
        }
    }

    /// The NAT connection a real-server → client packet belongs to, without changing anything
    /// (for ICMP errors that quote such a packet: `ip_vs_out_icmp` looks the quoted packet up).
    #[inline]
    pub fn lookup_conn_out(&self, pkt: &PacketMeta) -> Option<ConnId> {
        match (pkt.saddr, pkt.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self
                .conns
                .v4
                .lookup_out(pkt.protocol, u32::from(d), pkt.dport, u32::from(s), pkt.sport)
                .map(|i| ConnId::new(false, i)),
            (IpAddr::V6(s), IpAddr::V6(d)) => self
                .conns
                .v6
                .lookup_out(pkt.protocol, d.octets(), pkt.dport, s.octets(), pkt.sport)
                .map(|i| ConnId::new(true, i)),
            _ => None,
        }
    }

    /// Counts a packet that belongs to a connection but is not part of its stream (an ICMP error
    /// relayed for it): the packet/byte counters of its server, service and the totals move
    /// (`ip_vs_in_stats` / `ip_vs_out_stats`, only while the server is available), its state and
    /// timer do not.
    pub fn count_related(&mut self, id: ConnId, dir: Dir, len: u32) {
        let dest = if id.is_v6() {
            self.conns.v6.live(id.index()).map(|e| e.dest)
        } else {
            self.conns.v4.live(id.index()).map(|e| e.dest)
        };
        let Some(did) = dest else { return };
        let Some(d) = self.dests.get_mut(did) else { return };
        if !d.available {
            return;
        }
        let svc = self.svc_of_dest.get(did.index()).and_then(|&i| self.services.get_mut(i as usize));
        let bytes = len as u64;
        if dir == Dir::Output {
            d.stats.outbound(bytes);
            if let Some(svc) = svc {
                svc.stats.outbound(bytes);
            }
            self.stats.outbound(bytes);
        } else {
            d.stats.inbound(bytes);
            if let Some(svc) = svc {
                svc.stats.inbound(bytes);
            }
            self.stats.inbound(bytes);
        }
    }

    /// [`lookup_conn`](Self::lookup_conn) for many packets. `out` gets one result per packet (it
    /// must be at least as long as `pkts`). Read ahead like
    /// [`process_in_batch`](Self::process_in_batch): [`AHEAD_TAGS`] packets ahead a packet is
    /// hashed and the tags and entry of its home slot are prefetched.
    pub fn lookup_conns(&self, pkts: &[PacketMeta], out: &mut [Option<ConnId>]) {
        let mut hashes = [None; RING];
        for (i, p) in pkts.iter().enumerate().take(AHEAD_TAGS) {
            hashes[i] = self.warm_lookup(p);
        }
        for (i, (p, r)) in pkts.iter().zip(out.iter_mut()).enumerate() {
            if let Some(a) = pkts.get(i + AHEAD_TAGS) {
                hashes[(i + AHEAD_TAGS) % RING] = self.warm_lookup(a);
            }
            *r = hashes[i % RING].and_then(|h| match (p.saddr, p.daddr) {
                (IpAddr::V4(s), IpAddr::V4(d)) => self
                    .conns
                    .v4
                    .lookup_in_hashed(h, p.protocol, u32::from(s), p.sport, u32::from(d), p.dport)
                    .map(|i| ConnId::new(false, i)),
                (IpAddr::V6(s), IpAddr::V6(d)) => self
                    .conns
                    .v6
                    .lookup_in_hashed(h, p.protocol, s.octets(), p.sport, d.octets(), p.dport)
                    .map(|i| ConnId::new(true, i)),
                _ => None,
            });
        }
    }

    /// The read-ahead of [`lookup_conns`](Self::lookup_conns): a packet's lookup hash, with the
    /// tags and the entry of its home slot prefetched.
    #[inline]
    fn warm_lookup(&self, p: &PacketMeta) -> Option<u32> {
        fn warm<A: Addr>(t: &ConnTable<A>, p: &PacketMeta, c: A, v: A) -> u32 {
            let h = t.in_hash(p.protocol, c, p.sport, v, p.dport);
            t.prefetch_tags(h);
            t.prefetch_home(h);
            h
        }
        match (p.saddr, p.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(warm(&self.conns.v4, p, u32::from(s), u32::from(d))),
            (IpAddr::V6(s), IpAddr::V6(d)) => Some(warm(&self.conns.v6, p, s.octets(), d.octets())),
            _ => None,
        }
    }

    /// The first stage of [`process_in_batch`](Self::process_in_batch): a packet's hashes, with
    /// the tags of its home slot and (for a packet that may start a connection) the reply-index
    /// slot it would take prefetched.
    #[inline]
    fn warm(&self, p: &PacketMeta) -> Option<FlowHash> {
        match (p.saddr, p.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(warm_af(&self.conns.v4, p, u32::from(s), u32::from(d))),
            (IpAddr::V6(s), IpAddr::V6(d)) => Some(warm_af(&self.conns.v6, p, s.octets(), d.octets())),
            _ => None,
        }
    }

    /// The second stage: the entry the packet's lookup will stop at, prefetched.
    #[inline]
    fn warm_entry(&self, p: &PacketMeta, h: Option<&FlowHash>) {
        let Some(h) = h else { return };
        match p.saddr {
            IpAddr::V4(_) => self.conns.v4.prefetch_entry(h.key()),
            IpAddr::V6(_) => self.conns.v6.prefetch_entry(h.key()),
        }
    }

    /// A real server → client packet (`ip_vs_out_hook`): if it is a reply on a NAT connection,
    /// applies the OUTPUT state transition, counts it and returns the address to write as source.
    ///
    /// Without the payload, real-server-initiated SIP requests are not recognised; see
    /// [`process_out_payload`](Self::process_out_payload).
    #[inline]
    pub fn process_out(&mut self, pkt: &PacketMeta, now: Instant) -> OutVerdict {
        self.process_out_with(pkt, None, now)
    }

    /// [`process_out`](Self::process_out) with the transport payload: a UDP datagram from a NAT
    /// real server of a `--pe sip` service that belongs to no connection is a request the server
    /// starts (`ip_vs_new_conn_out`): it creates the connection (and, for a persistent service,
    /// the Call-ID template bound to that server), so that the client's answers reach the same
    /// server, and is rewritten to come from the virtual service.
    pub fn process_out_payload(
        &mut self,
        pkt: &PacketMeta,
        payload: Payload<'_>,
        now: Instant,
    ) -> OutVerdict {
        self.process_out_with(pkt, Some(payload), now)
    }

    #[inline]
    fn process_out_with(
        &mut self,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        now: Instant,
    ) -> OutVerdict {
        if Protocol::from_number(pkt.protocol).is_none() {
            return OutVerdict::Pass;
        }
        match (pkt.saddr, pkt.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.out_af::<u32>(pkt, payload, u32::from(s), u32::from(d), now)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => self.out_af::<V6>(pkt, payload, s.octets(), d.octets(), now),
            _ => OutVerdict::Pass,
        }
    }

    /// Where a client goes: exactly the path of a first packet (TCP SYN, UDP datagram, SCTP INIT)
    /// of `flow` with firewall mark `fwmark` — it creates the connection (and template) and counts
    /// a packet of length 0, like a real one would. `None` when the packet would not be forwarded.
    pub fn route_flow(&mut self, flow: &Flow, fwmark: u32, now: Instant) -> Option<Forward> {
        let pkt = PacketMeta {
            protocol: flow.protocol,
            saddr: flow.saddr,
            sport: flow.sport,
            daddr: flow.daddr,
            dport: flow.dport,
            tcp_flags: tcp::flags::SYN,
            sctp_chunk: sctp::chunk::INIT,
            sctp_abort_follows: false,
            len: 0,
            fwmark,
        };
        self.process_in(&pkt, now).forward().copied()
    }

    /// Runs everything due by `now`: connection and template expiry (templates that still control
    /// connections are kept another 60 s), the schedulers' housekeeping (at most once a second)
    /// and the real-server trash. Entries are expired in expiry order, so one late call gives the
    /// same result as many timely ones.
    pub fn advance(&mut self, now: Instant) {
        self.expire_af::<u32>(now.millis());
        self.expire_af::<V6>(now.millis());
        if now.millis() >= self.next_tick {
            self.next_tick = now.millis() + SCHED_TICK_MS;
            for svc in &mut self.services {
                if let Some(s) = svc.scheduler.as_mut() {
                    s.tick(DestList::new(&self.dests, &svc.order), now);
                }
            }
        }
        self.expire_trash(now);
    }

    fn in_af<A: Fam>(
        &mut self,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        c: A,
        v: A,
        hash: Option<&FlowHash>,
        now: Instant,
    ) -> InVerdict {
        let now_ms = now.millis();
        let table = A::table(&self.conns);
        // Hashed once: the lookup here, the inserts of a new connection later.
        let mut hash = match hash {
            // Prefetched by the batch's read-ahead.
            Some(h) => *h,
            None => {
                let h = table.flow_hash(pkt.protocol, c, pkt.sport, v, pkt.dport, may_start_conn(pkt));
                // The home slot's entry and the reply-index slot a new NAT connection would
                // take: prefetched now, so their misses overlap the tags' instead of following.
                table.prefetch_home(h.key());
                table.prefetch_out(&h);
                h
            }
        };
        let mut found = table.lookup_flow(&mut hash, pkt.protocol, c, pkt.sport, v, pkt.dport);
        if let Some(id) = found {
            let e = A::table(&self.conns).get(id);
            let (control, dest_id) = (e.control, e.dest);
            let dest = self.dests.get(dest_id);
            // A SYN / INIT on an uncontrolled connection may start a new one (Linux >= 5.16
            // ip_vs_in_hook): always when expire_nodest_conn and the server has weight 0,
            // otherwise per conn_reuse_mode for closing states.
            if control == NO_CONTROL && is_new_conn(pkt) {
                let resched = if self.sysctl.expire_nodest_conn && dest.is_some_and(|d| d.weight == 0) {
                    true
                } else {
                    self.sysctl.conn_reuse_mode != 0 && is_new_conn_expected(e, self.sysctl.conn_reuse_mode)
                };
                if resched {
                    self.drop_entry::<A>(id, now_ms);
                    hash.forget_vacancy();
                    found = None;
                }
            }
        }
        if let Some(id) = found {
            let dest_id = A::table(&self.conns).get(id).dest;
            if !self.dests.get(dest_id).is_some_and(|d| d.available) {
                if !self.sysctl.expire_nodest_conn {
                    return InVerdict::Drop(DropReason::DestUnavailable);
                }
                self.drop_entry::<A>(id, now_ms);
                hash.forget_vacancy();
                found = None;
            }
        }
        match found {
            Some(id) => self.finish_in::<A>(Slot::Stored(id), pkt, false, now_ms),
            None => self.schedule_new::<A>(pkt, payload, c, v, &hash, now),
        }
    }

    /// Statistics, state transition and timer of an accepted client packet.
    fn finish_in<A: Fam>(&mut self, slot: Slot, pkt: &PacketMeta, created: bool, now_ms: u64) -> InVerdict {
        let Ipvs { conns, dests, services, stats, sysctl, svc_of_dest, .. } = self;
        let table = A::table_mut(conns);
        let (mut transient, id) = match slot {
            Slot::Stored(id) => (None, id),
            Slot::OnePacket => match table.take_one_packet() {
                Some(e) => (Some(e), NO_CONTROL),
                // Not reached: `new_conn` stashes the entry right before it returns `OnePacket`.
                None => return InVerdict::Drop(DropReason::TableFull),
            },
        };
        let stored = transient.is_none();
        let e = match transient.as_mut() {
            Some(e) => e,
            None => table.get_mut(id),
        };
        let dest_id = e.dest;
        let Some(dest) = dests.get_mut(dest_id) else {
            // Not reached for a new connection (`new_conn` resolved its server), but one is
            // never left off the timer wheel.
            if created && stored {
                let expires = e.expires;
                table.rearm(id, expires);
            }
            return InVerdict::Drop(DropReason::DestUnavailable);
        };
        if dest.available {
            let bytes = pkt.len as u64;
            dest.stats.inbound(bytes);
            if let Some(svc) = svc_of_dest.get(dest_id.index()).and_then(|&i| services.get_mut(i as usize)) {
                svc.stats.inbound(bytes);
            }
            stats.inbound(bytes);
        }
        let assure = transition(e, dest, Dir::Input, pkt, sysctl.tcp_dos());
        // in_pkts, for the sync threshold (a one-packet connection's is never read).
        e.aux = e.aux.wrapping_add(1);
        let (control, dport, fwd) = (e.control, e.dport, e.fwd());
        let timeout = sysctl.timeouts.of(e.proto, e.state) as u64 * 1000;
        let fwd = Forward {
            conn: transient.is_none().then(|| ConnId::new(A::V6, id)),
            created,
            dest: dest_id,
            daddr: dest.addr,
            dport,
            fwd,
            tunnel: dest.tunnel,
        };
        if assure {
            assure_template(table, control);
        }
        match transient {
            None => {
                // Also files a new connection (stored unfiled by `new_conn`).
                table.rearm(id, now_ms + timeout);
                if self.sync.master.is_some() {
                    self.sync_after_packet::<A>(Some(id), control, now_ms);
                }
            }
            // ip_vs_conn_put of a one-packet connection: expired at once.
            Some(e) => {
                if self.sync.master.is_some() {
                    self.sync_after_packet::<A>(None, control, now_ms);
                }
                self.unbind::<A>(&e, now_ms);
            }
        }
        InVerdict::Forward(fwd)
    }

    fn out_af<A: Fam>(
        &mut self,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        s: A,
        d: A,
        now: Instant,
    ) -> OutVerdict {
        let mut found = A::table(&self.conns).lookup_out(pkt.protocol, d, pkt.dport, s, pkt.sport);
        // Real-server-started requests, only for UDP: connection-oriented protocols use ephemeral
        // ports for their own connections, which no virtual service would match anyway.
        if found.is_none() && self.pe_services > 0 && pkt.protocol == ipproto::UDP {
            found = self.conn_out::<A>(pkt, payload, s, d, now);
        }
        let Some(id) = found else {
            return OutVerdict::Pass;
        };
        let Ipvs { conns, dests, services, stats, sysctl, svc_of_dest, .. } = self;
        let table = A::table_mut(conns);
        let e = table.get_mut(id);
        let Some(dest) = dests.get_mut(e.dest) else {
            return OutVerdict::Pass;
        };
        if dest.available {
            let bytes = pkt.len as u64;
            dest.stats.outbound(bytes);
            if let Some(svc) = svc_of_dest.get(e.dest.index()).and_then(|&i| services.get_mut(i as usize)) {
                svc.stats.outbound(bytes);
            }
            stats.outbound(bytes);
        }
        let assure = transition(e, dest, Dir::Output, pkt, sysctl.tcp_dos());
        let (control, vaddr, vport) = (e.control, e.vaddr.to_ip(), e.vport);
        let timeout = sysctl.timeouts.of(e.proto, e.state) as u64 * 1000;
        if assure {
            assure_template(table, control);
        }
        table.rearm(id, now.millis() + timeout);
        OutVerdict::Masq { conn: ConnId::new(A::V6, id), vaddr, vport }
    }

    /// `__ip_vs_rs_conn_out` + `ip_vs_new_conn_out`: a UDP datagram from `rs` (a NAT real server
    /// of a service with a persistence engine) to `client`. Returns the new connection. Services
    /// by firewall mark and one-packet services are left out (the kernel would give the former
    /// the null address as virtual address and free the latter's connection at once).
    fn conn_out<A: Fam>(
        &mut self,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        rs: A,
        client: A,
        now: Instant,
    ) -> Option<u32> {
        let (si, did) = self.services.iter().enumerate().find_map(|(si, svc)| {
            let cfg = &svc.config;
            let udp = matches!(cfg.key, ServiceKey::Addr { protocol: Protocol::Udp, .. });
            if !udp || cfg.pe.is_none() || cfg.one_packet {
                return None;
            }
            let did = svc.order.iter().copied().find(|&id| {
                self.dests.get(id).is_some_and(|d| {
                    d.addr == pkt.saddr && d.port == pkt.sport && d.fwd == FwdMethod::Masq && d.available
                })
            })?;
            Some((si, did))
        })?;
        let now_ms = now.millis();
        let cfg = &self.services[si].config;
        let ServiceKey::Addr { addr, port: vport, .. } = cfg.key else { return None };
        let vaddr = A::from_ip(addr)?;
        let mut ct = NO_CONTROL;
        if let Some(timeout) = cfg.persistent {
            let snet = A::from_ip(cfg.netmask.apply(pkt.daddr)).unwrap_or(client);
            let data = payload.and_then(crate::pe::sip_call_id)?;
            let table = A::table(&self.conns);
            let found = table.lookup_template_pe(ipproto::UDP, snet, vaddr, vport, data);
            // The template must be usable and name this server (`ip_vs_check_template(ct, dest)`);
            // a new one shadows another in the kernel (hashed first), here the old one is
            // invalidated to the same effect.
            match found.filter(|&t| table.get(t).dest == did && self.check_template::<A>(t)) {
                Some(t) => ct = t,
                None => {
                    if let Some(t) = found {
                        A::table_mut(&mut self.conns).invalidate_template(t);
                    }
                    if !self.conns.has_room() {
                        self.conns.refused += 1;
                        return None;
                    }
                    let dest = self.dests.get_mut(did)?;
                    let flags = cf::TEMPLATE | conn_flags(dest.fwd);
                    let mut t = Entry::new(ipproto::UDP, snet, 0, vaddr, vport, rs, pkt.sport, did, flags);
                    t.control = timeout;
                    t.expires = now_ms + timeout as u64 * 1000;
                    let Some(id) = A::table_mut(&mut self.conns).insert_pe(t, data) else {
                        self.conns.refused += 1;
                        return None;
                    };
                    dest.refs += 1;
                    dest.persistconns += 1;
                    ct = id;
                }
            }
        }
        // The connection as the client's packet would have made it.
        let as_client = PacketMeta {
            protocol: ipproto::UDP,
            saddr: pkt.daddr,
            sport: pkt.dport,
            daddr: vaddr.to_ip(),
            dport: vport,
            tcp_flags: 0,
            sctp_chunk: 0,
            sctp_abort_follows: false,
            len: 0,
            fwmark: 0,
        };
        let res = self.new_conn::<A>(si, &as_client, client, vaddr, None, did, pkt.sport, false, ct, now_ms);
        if ct != NO_CONTROL {
            let table = A::table_mut(&mut self.conns);
            let t_timeout = table.get(ct).control as u64 * 1000;
            table.rearm(ct, now_ms + t_timeout);
        }
        let Ok(Slot::Stored(id)) = res else { return None };
        Some(id)
    }

    /// `conn_schedule` of the protocol + `ip_vs_schedule`, and the packet's own accounting.
    fn schedule_new<A: Fam>(
        &mut self,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        c: A,
        v: A,
        hash: &FlowHash,
        now: Instant,
    ) -> InVerdict {
        match pkt.protocol {
            ipproto::TCP => {
                let f = pkt.tcp_flags;
                if f & tcp::flags::RST != 0 || (f & tcp::flags::SYN == 0 && !self.sysctl.sloppy_tcp) {
                    return InVerdict::Pass(PassReason::NotSchedulable);
                }
            }
            ipproto::SCTP => {
                let ch = pkt.sctp_chunk;
                if ch == sctp::chunk::ABORT || (ch != sctp::chunk::INIT && !self.sysctl.sloppy_sctp) {
                    return InVerdict::Pass(PassReason::NotSchedulable);
                }
            }
            _ => {}
        }
        let Some(si) = self.find_service_cached(pkt) else {
            return InVerdict::Pass(PassReason::NoService);
        };
        if pkt.sport == FTP_DATA_PORT {
            return InVerdict::Pass(PassReason::FtpData);
        }
        if self.services[si].config.persistent.is_none() {
            return self.sched_plain::<A>(si, pkt, c, v, hash, now);
        }
        match self.sched_persist::<A>(si, pkt, payload, c, v, hash, now) {
            Ok(slot) => self.finish_in::<A>(slot, pkt, true, now.millis()),
            Err(no) => no.into(),
        }
    }

    /// [`find_service`](Self::find_service) through the cache.
    #[inline]
    fn find_service_cached(&mut self, pkt: &PacketMeta) -> Option<usize> {
        let key = svc_cache::Key::of(pkt);
        if let Some(hit) = self.svc_cache.get(&key) {
            debug_assert_eq!(hit, self.find_service(pkt), "stale service cache");
            return hit;
        }
        let found = self.find_service(pkt);
        self.svc_cache.put(&key, found);
        found
    }

    /// `ip_vs_service_find`: fwmark, then `<proto, vaddr, vport>`, then the FTP rule, then port 0.
    fn find_service(&self, pkt: &PacketMeta) -> Option<usize> {
        if pkt.fwmark != 0 {
            let key = ServiceKey::Fwmark { mark: pkt.fwmark, family: Family::of(pkt.daddr) };
            if let Some(&i) = self.index.get(&key) {
                return Some(i);
            }
        }
        let protocol = Protocol::from_number(pkt.protocol)?;
        let at = |port| self.index.get(&ServiceKey::Addr { protocol, addr: pkt.daddr, port }).copied();
        if let Some(i) = at(pkt.dport) {
            return Some(i);
        }
        if protocol == Protocol::Tcp
            && self.ftp_services > 0
            && (pkt.dport == FTP_DATA_PORT || pkt.dport >= UNPRIVILEGED_PORT_START)
        {
            if let Some(i) = at(FTP_PORT) {
                return Some(i);
            }
        }
        if self.port0_services > 0 {
            return at(0);
        }
        None
    }

    /// `ip_vs_leave` without cache_bypass: a port-21 service passes packets for other ports,
    /// everything else is rejected with ICMP port unreachable.
    fn leave(&self, si: usize, pkt: &PacketMeta, why: RejectReason) -> NoConn {
        if self.services[si].config.key.port() == FTP_PORT && pkt.dport != FTP_PORT {
            NoConn::Pass(PassReason::FtpService)
        } else {
            NoConn::Reject(why)
        }
    }

    /// Asks the service's scheduler for a server.
    fn pick(&mut self, si: usize, pkt: &PacketMeta, now: Instant) -> Option<DestId> {
        let svc = &mut self.services[si];
        let svc_flags = svc.config.flags();
        let sched = svc.scheduler.as_mut()?;
        let mut ctx = SchedCtx { svc_flags, now, rng: &mut self.rng, tunables: &self.tunables };
        sched.schedule(DestList::new(&self.dests, &svc.order), pkt, &mut ctx)
    }

    /// `ip_vs_schedule` for a non-persistent service, and the packet's own accounting.
    #[inline(always)]
    fn sched_plain<A: Fam>(
        &mut self,
        si: usize,
        pkt: &PacketMeta,
        c: A,
        v: A,
        hash: &FlowHash,
        now: Instant,
    ) -> InVerdict {
        let cfg = &self.services[si].config;
        if !cfg.key.is_fwmark() && pkt.dport != cfg.key.port() {
            return self.leave(si, pkt, RejectReason::PortZeroNotPersistent).into();
        }
        let one_packet = cfg.one_packet && pkt.protocol == ipproto::UDP;
        let Some(did) = self.pick(si, pkt, now) else {
            return self.leave(si, pkt, RejectReason::NoDestination).into();
        };
        if !one_packet {
            return self.new_plain_conn::<A>(si, pkt, c, v, hash, did, now.millis());
        }
        let dport = match self.dests.get(did) {
            Some(d) if d.port != 0 => d.port,
            _ => pkt.dport,
        };
        match self.new_conn::<A>(si, pkt, c, v, Some(hash), did, dport, true, NO_CONTROL, now.millis()) {
            Ok(slot) => self.finish_in::<A>(slot, pkt, true, now.millis()),
            Err(no) => no.into(),
        }
    }

    /// [`new_conn`](Self::new_conn) + [`finish_in`](Self::finish_in) for a stored connection of
    /// a non-persistent service (most new flows), in one pass with the same steps and results:
    /// the entry is built complete (the packet's state transition, its expiry, in_pkts 1) and
    /// stored and filed once, and the service and the server are each looked up once.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn new_plain_conn<A: Fam>(
        &mut self,
        si: usize,
        pkt: &PacketMeta,
        c: A,
        v: A,
        hash: &FlowHash,
        did: DestId,
        now_ms: u64,
    ) -> InVerdict {
        let Ipvs { dests, conns, services, stats, sysctl, svc_of_dest, .. } = self;
        let Some(dest) = dests.get_mut(did) else {
            return InVerdict::Drop(DropReason::DestUnavailable);
        };
        let dport = if dest.port != 0 { dest.port } else { pkt.dport };
        let daddr = A::from_ip(dest.addr).unwrap_or_default();
        let mut e =
            Entry::new(pkt.protocol, c, pkt.sport, v, pkt.dport, daddr, dport, did, conn_flags(dest.fwd));
        e.control = NO_CONTROL;
        // The server's counters move only once the entry is stored.
        let (_, flip) = step(&mut e, Dir::Input, pkt, sysctl.tcp_dos());
        // in_pkts: this packet. No template to assure (no persistence).
        e.aux = 1;
        e.expires = now_ms + sysctl.timeouts.of(e.proto, e.state) as u64 * 1000;
        if !conns.has_room() {
            conns.refused += 1;
            return InVerdict::Drop(DropReason::TableFull);
        }
        let Some(id) = A::table_mut(conns).insert_hashed(e, hash) else {
            conns.refused += 1;
            return InVerdict::Drop(DropReason::TableFull);
        };
        dest.refs += 1;
        dest.bind_conn();
        count_active(dest, flip);
        let svc = &mut services[si];
        debug_assert_eq!(
            svc_of_dest.get(did.index()),
            Some(&(si as u32)),
            "a scheduled server counts for its service"
        );
        dest.stats.conn();
        svc.stats.conn();
        stats.conn();
        if dest.available {
            let bytes = pkt.len as u64;
            dest.stats.inbound(bytes);
            svc.stats.inbound(bytes);
            stats.inbound(bytes);
        }
        let fwd = Forward {
            conn: Some(ConnId::new(A::V6, id)),
            created: true,
            dest: did,
            daddr: dest.addr,
            dport,
            fwd: e.fwd(),
            tunnel: dest.tunnel,
        };
        if self.sync.master.is_some() {
            self.sync_after_packet::<A>(Some(id), NO_CONTROL, now_ms);
        }
        InVerdict::Forward(fwd)
    }

    /// `ip_vs_sched_persist`: find or create the template, then the connection it controls.
    #[allow(clippy::too_many_arguments)]
    fn sched_persist<A: Fam>(
        &mut self,
        si: usize,
        pkt: &PacketMeta,
        payload: Option<Payload<'_>>,
        c: A,
        v: A,
        hash: &FlowHash,
        now: Instant,
    ) -> std::result::Result<Slot, NoConn> {
        let now_ms = now.millis();
        let cfg = &self.services[si].config;
        let svc_port = cfg.key.port();
        let timeout = cfg.persistent.unwrap_or(DEFAULT_PERSISTENT_TIMEOUT);
        let one_packet = cfg.one_packet && pkt.protocol == ipproto::UDP;
        let snet = A::from_ip(cfg.netmask.apply(pkt.saddr)).unwrap_or(c);
        // The template key (reference §2.2): normal <proto, snet, 0, vip, vport>; FTP and port-0
        // services vport 0; fwmark <IPPROTO_IP, snet, 0, mark, 0>.
        let (tproto, tvaddr, tvport) = if pkt.dport == svc_port {
            (pkt.protocol, v, if svc_port != FTP_PORT { pkt.dport } else { 0 })
        } else if let ServiceKey::Fwmark { mark, .. } = cfg.key {
            (0, A::from_mark(mark), 0)
        } else {
            (pkt.protocol, v, 0)
        };
        // `--pe sip` (`ip_vs_conn_fill_param_persist`): the Call-ID joins the key. The engine only
        // reads UDP; when it finds no Call-ID the packet is dropped (since Linux 3.7 the caller
        // checks `fill_param`; the engine's own comment about falling back predates that).
        let pe_data = match cfg.pe {
            Some(_) => {
                match payload.filter(|_| pkt.protocol == ipproto::UDP).and_then(crate::pe::sip_call_id) {
                    Some(d) => Some(d),
                    None => return Err(NoConn::Drop(DropReason::NoPeData)),
                }
            }
            None => None,
        };
        let table = A::table(&self.conns);
        let mut ct = match pe_data {
            Some(d) => table.lookup_template_pe(tproto, snet, tvaddr, tvport, d),
            None => table.lookup_template(tproto, snet, tvaddr, tvport),
        };
        if let Some(t) = ct {
            if !self.check_template::<A>(t) {
                A::table_mut(&mut self.conns).invalidate_template(t);
                ct = None;
            }
        }
        let (ct, did) = match ct {
            Some(t) => (t, A::table(&self.conns).get(t).dest),
            None => {
                let Some(did) = self.pick(si, pkt, now) else {
                    return Err(self.leave(si, pkt, RejectReason::NoDestination));
                };
                if !self.conns.has_room() {
                    self.conns.refused += 1;
                    return Err(NoConn::Drop(DropReason::TableFull));
                }
                let Some(dest) = self.dests.get_mut(did) else {
                    return Err(NoConn::Drop(DropReason::DestUnavailable));
                };
                let tdport = if pkt.dport == svc_port && svc_port != FTP_PORT { dest.port } else { 0 };
                let daddr = A::from_ip(dest.addr).unwrap_or_default();
                let flags = cf::TEMPLATE | conn_flags(dest.fwd);
                let mut t = Entry::new(tproto, snet, 0, tvaddr, tvport, daddr, tdport, did, flags);
                t.control = timeout;
                t.expires = now_ms + timeout as u64 * 1000;
                let table = A::table_mut(&mut self.conns);
                let stored = match pe_data {
                    Some(d) => table.insert_pe(t, d),
                    None => table.insert(t),
                };
                let Some(id) = stored else {
                    self.conns.refused += 1;
                    return Err(NoConn::Drop(DropReason::TableFull));
                };
                dest.refs += 1;
                dest.persistconns += 1;
                (id, did)
            }
        };
        let dport = match self.dests.get(did) {
            Some(d) if pkt.dport == svc_port && d.port != 0 => d.port,
            _ => pkt.dport,
        };
        let res = self.new_conn::<A>(si, pkt, c, v, Some(hash), did, dport, one_packet, ct, now_ms);
        // ip_vs_conn_put(ct): the template's timer restarts with its own timeout.
        let table = A::table_mut(&mut self.conns);
        let t_timeout = table.get(ct).control as u64 * 1000;
        table.rearm(ct, now_ms + t_timeout);
        res
    }

    /// `ip_vs_check_template`: the server must be available and, with expire_quiescent_template,
    /// have a non-zero weight.
    fn check_template<A: Fam>(&self, t: u32) -> bool {
        let e = A::table(&self.conns).get(t);
        self.dests
            .get(e.dest)
            .is_some_and(|d| d.available && !(self.sysctl.expire_quiescent_template && d.weight == 0))
    }

    /// `ip_vs_conn_new` + `ip_vs_bind_dest` (+ `ip_vs_control_add`), and on success
    /// `ip_vs_conn_stats` for service `si`. `hash`: the packet's hashes when `pkt` is the client
    /// packet itself.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn new_conn<A: Fam>(
        &mut self,
        si: usize,
        pkt: &PacketMeta,
        c: A,
        v: A,
        hash: Option<&FlowHash>,
        did: DestId,
        dport: u16,
        one_packet: bool,
        control: u32,
        now_ms: u64,
    ) -> std::result::Result<Slot, NoConn> {
        let Ipvs { dests, conns, services, stats, .. } = self;
        let Some(dest) = dests.get_mut(did) else {
            return Err(NoConn::Drop(DropReason::DestUnavailable));
        };
        let daddr = A::from_ip(dest.addr).unwrap_or_default();
        let mut e =
            Entry::new(pkt.protocol, c, pkt.sport, v, pkt.dport, daddr, dport, did, conn_flags(dest.fwd));
        e.control = control;
        // A new connection's timer is 3 s until its first state transition (same packet).
        e.expires = now_ms + 3000;
        let slot = if one_packet {
            e.flags |= cf::ONE_PACKET;
            A::table_mut(conns).stash_one_packet(e);
            Slot::OnePacket
        } else {
            if !conns.has_room() {
                conns.refused += 1;
                return Err(NoConn::Drop(DropReason::TableFull));
            }
            let table = A::table_mut(conns);
            // With the packet's hashes this is the client packet's own connection, which
            // `finish_in` files on the timer wheel once the packet has set its expiry.
            let stored = match hash {
                Some(h) => table.insert_hashed_unfiled(e, h),
                None => table.insert(e),
            };
            match stored {
                Some(id) => Slot::Stored(id),
                None => {
                    conns.refused += 1;
                    return Err(NoConn::Drop(DropReason::TableFull));
                }
            }
        };
        dest.refs += 1;
        dest.bind_conn();
        dest.stats.conn();
        services[si].stats.conn();
        stats.conn();
        if control != NO_CONTROL {
            let t = A::table_mut(conns).get_mut(control);
            t.aux += 1;
        }
        Ok(slot)
    }

    /// Removes an entry and unbinds it (`ip_vs_conn_expire` without the delay).
    fn drop_entry<A: Fam>(&mut self, id: u32, now_ms: u64) {
        let e = A::table_mut(&mut self.conns).remove(id);
        self.unbind::<A>(&e, now_ms);
    }

    /// `ip_vs_control_del` + `ip_vs_unbind_dest` for a removed (or one-packet) entry.
    fn unbind<A: Fam>(&mut self, e: &Entry<A>, now_ms: u64) {
        if !e.is_template() && e.control != NO_CONTROL {
            let table = A::table_mut(&mut self.conns);
            if table.live(e.control).is_some_and(|t| t.is_template()) {
                let t = table.get_mut(e.control);
                t.aux = t.aux.saturating_sub(1);
            }
        }
        let Some(dest) = self.dests.get_mut(e.dest) else { return };
        if e.is_template() {
            dest.persistconns = dest.persistconns.saturating_sub(1);
        } else {
            if e.flags & cf::INACTIVE == 0 {
                dest.activeconns = dest.activeconns.saturating_sub(1);
            }
            dest.unbind_conn();
        }
        dest.refs = dest.refs.saturating_sub(1);
        if dest.refs == 0 && !dest.available {
            dest.idle_since = Some(Instant::from_millis(now_ms));
        }
    }

    /// Expires everything due in one family's table, in expiry order.
    fn expire_af<A: Fam>(&mut self, now: u64) {
        let n = A::table_mut(&mut self.conns).collect_due(now);
        // Templates kept by expire_later whose next firing is also due by `now`.
        let mut again: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
        let mut pos = 0;
        loop {
            let table = A::table_mut(&mut self.conns);
            let next_due = (pos < n).then(|| {
                let id = table.due_id(pos);
                (table.get(id).expires, id)
            });
            let take_again = match (again.peek(), next_due) {
                (None, None) => break,
                (Some(Reverse(a)), Some(d)) => *a < d,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            let (at, id) = if take_again {
                match again.pop() {
                    Some(Reverse(a)) => a,
                    None => break,
                }
            } else {
                let id = table.due_at(pos);
                pos += 1;
                (table.get(id).expires, id)
            };
            let e = table.get_mut(id);
            if e.is_template() && e.aux > 0 {
                // expire_later: still controlling connections; try again in 60 s, and from now on
                // the template's timeout is 60 s.
                e.control = TEMPLATE_EXPIRE_LATER;
                let next = at + TEMPLATE_EXPIRE_LATER as u64 * 1000;
                if next <= now {
                    e.expires = next;
                    again.push(Reverse((next, id)));
                } else {
                    table.rearm(id, next);
                }
                self.sync_kept_template::<A>(id, at);
                continue;
            }
            self.drop_entry::<A>(id, at);
        }
        let table = A::table_mut(&mut self.conns);
        table.end_due();
        table.compact();
    }

    /// After a real server left its service: with expire_nodest_conn, flush every entry whose
    /// server is unavailable (`ip_vs_expire_nodest_conn_flush`), and templates left controlling
    /// nothing by that.
    fn after_dest_removal(&mut self, now: Instant) {
        if self.sysctl.expire_nodest_conn {
            self.flush_nodest::<u32>(now.millis());
            self.flush_nodest::<V6>(now.millis());
        }
    }

    fn flush_nodest<A: Fam>(&mut self, now_ms: u64) {
        let gone = |dests: &DestArena, e: &Entry<A>| !dests.get(e.dest).is_some_and(|d| d.available);
        // Connections: a removal may shift another entry into the same slot, so look again.
        let mut i = 0;
        while i < A::table(&self.conns).slots() {
            match A::table(&self.conns).live(i) {
                Some(&e) if gone(&self.dests, &e) => {
                    self.drop_entry::<A>(i, now_ms);
                    if e.control != NO_CONTROL {
                        let t = A::table(&self.conns).live(e.control);
                        if t.is_some_and(|t| t.is_template() && t.aux == 0) {
                            self.drop_entry::<A>(e.control, now_ms);
                        }
                    }
                }
                _ => i += 1,
            }
        }
        for slot in 0..A::table(&self.conns).template_slots() {
            let id = slot | TPL;
            if let Some(&e) = A::table(&self.conns).live(id) {
                if gone(&self.dests, &e) && e.aux == 0 {
                    self.drop_entry::<A>(id, now_ms);
                }
            }
        }
    }

    /// Counts a service in or out of the FTP / port-0 counts the packet path checks.
    fn count_service(&mut self, key: &ServiceKey, added: bool) {
        if let ServiceKey::Addr { port, .. } = *key {
            let (ftp, port0) = ((port == FTP_PORT) as usize, (port == 0) as usize);
            if added {
                self.ftp_services += ftp;
                self.port0_services += port0;
            } else {
                self.ftp_services -= ftp;
                self.port0_services -= port0;
            }
        }
    }

    /// Records which service (list index, or `NO_SVC`) a server's traffic counts for. Kept
    /// incrementally: a restore of 100,000 rules must not rescan every service per line.
    fn map_dest(&mut self, id: DestId, svc: u32) {
        if self.svc_of_dest.len() <= id.index() {
            self.svc_of_dest.resize(id.index() + 1, NO_SVC);
        }
        self.svc_of_dest[id.index()] = svc;
    }
}

/// The flags a new connection gets from its server (`dest->conn_flags`): the method, INACTIVE,
/// and NOOUTPUT for every method but NAT.
fn conn_flags(fwd: FwdMethod) -> u16 {
    let mut f = fwd.conn_flag() as u16 | cf::INACTIVE;
    if fwd != FwdMethod::Masq {
        f |= cf::NOOUTPUT;
    }
    f
}

/// A cheap filter for packets that may create a connection (TCP SYN, SCTP INIT, any UDP): only
/// used to decide what to read ahead, never for a decision.
#[inline]
fn may_start_conn(pkt: &PacketMeta) -> bool {
    match pkt.protocol {
        ipproto::TCP => pkt.tcp_flags & tcp::flags::SYN != 0,
        ipproto::SCTP => pkt.sctp_chunk == sctp::chunk::INIT,
        _ => true,
    }
}

/// `is_new_conn`: TCP SYN or SCTP INIT.
#[inline]
fn is_new_conn(pkt: &PacketMeta) -> bool {
    match pkt.protocol {
        ipproto::TCP => pkt.tcp_flags & tcp::flags::SYN != 0,
        ipproto::SCTP => pkt.sctp_chunk == sctp::chunk::INIT,
        _ => false,
    }
}

/// `is_new_conn_expected` (the `control` test is done by the caller).
fn is_new_conn_expected<A: Addr>(e: &Entry<A>, mode: u32) -> bool {
    match e.proto {
        ipproto::TCP => {
            e.state == tcp::TIME_WAIT
                || e.state == tcp::CLOSE
                || (mode & 2 != 0 && e.state == tcp::FIN_WAIT && e.flags & cf::NOOUTPUT != 0)
        }
        ipproto::SCTP => e.state == sctp::CLOSED,
        _ => false,
    }
}

/// The protocol's state transition (`set_tcp_state`, `set_sctp_state`, `udp_state_transition`):
/// NOOUTPUT handling, the new state and the active/inactive flip on the server. Returns true when
/// the controlling template is to be assured (TCP/SCTP reaching ESTABLISHED, a UDP reply).
/// `tcp_dos` selects the `secure_tcp` table.
#[inline]
fn transition<A: Addr>(e: &mut Entry<A>, dest: &mut Dest, dir: Dir, pkt: &PacketMeta, tcp_dos: bool) -> bool {
    let (assure, flip) = step(e, dir, pkt, tcp_dos);
    count_active(dest, flip);
    assure
}

/// The entry's half of [`transition`]: returns whether to assure the template and the server's
/// active-count change ([`count_active`]).
#[inline(always)]
fn step<A: Addr>(e: &mut Entry<A>, dir: Dir, pkt: &PacketMeta, tcp_dos: bool) -> (bool, Flip) {
    if e.proto == ipproto::UDP {
        return (dir == Dir::Output, Flip::None);
    }
    let mut d = dir;
    if e.flags & cf::NOOUTPUT != 0 {
        if dir == Dir::Output {
            e.flags &= !cf::NOOUTPUT;
        } else {
            d = Dir::InputOnly;
        }
    }
    let (new, active, established) = match e.proto {
        ipproto::TCP => {
            let s = if tcp_dos {
                tcp::next_state_dos(d, pkt.tcp_flags, e.state)
            } else {
                tcp::next_state(d, pkt.tcp_flags, e.state)
            };
            (s, tcp::is_active(s), s == tcp::ESTABLISHED)
        }
        ipproto::SCTP => {
            let s = sctp::next_state(d, pkt.sctp_chunk, pkt.sctp_abort_follows, e.state);
            (s, sctp::is_active(s), s == sctp::ESTABLISHED)
        }
        _ => return (false, Flip::None),
    };
    let mut assure = false;
    let mut flip = Flip::None;
    if new != e.state {
        let inactive = e.flags & cf::INACTIVE != 0;
        if !inactive && !active {
            flip = Flip::Inactive;
            e.flags |= cf::INACTIVE;
        } else if inactive && active {
            flip = Flip::Active;
            e.flags &= !cf::INACTIVE;
        }
        assure = established;
    }
    e.state = new;
    (assure, flip)
}

/// A connection's move between the server's active and inactive counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flip {
    None,
    Active,
    Inactive,
}

#[inline]
fn count_active(dest: &mut Dest, flip: Flip) {
    match flip {
        Flip::None => {}
        Flip::Active => dest.activeconns += 1,
        Flip::Inactive => dest.activeconns = dest.activeconns.saturating_sub(1),
    }
}

/// `ip_vs_control_assure_ct`.
fn assure_template<A: Addr>(table: &mut ConnTable<A>, control: u32) {
    if control != NO_CONTROL && table.live(control).is_some_and(|t| t.is_template()) {
        table.get_mut(control).state |= CTPL_ASSURED;
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
