//! Schedulers: given a service's real servers in kernel list order (newest first), pick one for a
//! new connection, making the same choice Linux IPVS makes for the same history.
//!
//! Each scheduler is told about every change to its list through [`Scheduler::dests_changed`], in the
//! order the kernel calls its `init_service`/`add_dest`/`del_dest`/`upd_dest` hooks, because several
//! (rr, wrr, sh, mh, dh) keep state whose evolution is observable.

mod dh;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

use crate::conn::PacketMeta;
use crate::dest::{Dest, DestArena, DestId};
use crate::error::Result;
use crate::rng::Rng;
use crate::time::Instant;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A service's real servers in kernel list order: index 0 is the most recently added.
#[derive(Debug, Clone, Copy)]
pub struct DestList<'a> {
    arena: &'a DestArena,
    order: &'a [DestId],
}

impl<'a> DestList<'a> {
    /// A view of `order` (ids that must all resolve in `arena`).
    pub fn new(arena: &'a DestArena, order: &'a [DestId]) -> Self {
        DestList { arena, order }
    }
    /// Number of servers.
    #[inline]
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// True when the service has no servers.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// The id at list position `pos`.
    #[inline]
    pub fn id(&self, pos: usize) -> DestId {
        self.order[pos]
    }
    /// The server at list position `pos`.
    #[inline]
    pub fn at(&self, pos: usize) -> &'a Dest {
        self.arena.listed(self.order[pos])
    }
    /// A server by id (also deleted servers still referenced elsewhere), if it still exists.
    #[inline]
    pub fn get(&self, id: DestId) -> Option<&'a Dest> {
        self.arena.get(id)
    }
    /// The list position of `id`, if it is on the list.
    pub fn position(&self, id: DestId) -> Option<usize> {
        self.order.iter().position(|&d| d == id)
    }
    /// Servers with their ids, in list order.
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &'a Dest)> + 'a {
        let arena = self.arena;
        self.order.iter().map(move |&id| (id, arena.listed(id)))
    }
}

/// A flow to route without a packet ([`Ipvs::route_flow`](crate::Ipvs::route_flow)): the fields
/// of a first packet that decide where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// IP protocol number of the packet.
    pub protocol: u8,
    /// Source (client) address.
    pub saddr: IpAddr,
    /// Source port (0 for protocols without ports).
    pub sport: u16,
    /// Destination address.
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// Tunables some schedulers read (`/proc/sys/net/ipv4/vs/lblc*_expiration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedTunables {
    /// `lblc_expiration`, default 24 h.
    pub lblc_expiration: Duration,
    /// `lblcr_expiration`, default 24 h.
    pub lblcr_expiration: Duration,
}

impl Default for SchedTunables {
    fn default() -> Self {
        SchedTunables {
            lblc_expiration: Duration::from_secs(24 * 60 * 60),
            lblcr_expiration: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What a scheduling call may use besides the list and the packet.
#[derive(Debug)]
pub struct SchedCtx<'a> {
    /// The service's `IP_VS_SVC_F_*` flags (scheduler flags `SCHED1..3` among them).
    pub svc_flags: u32,
    /// Now.
    pub now: Instant,
    /// Randomness (twos).
    pub rng: &'a mut Rng,
    /// Tunables.
    pub tunables: &'a SchedTunables,
}

/// A change to a service's list, delivered after the list was updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestChange {
    /// The scheduler was bound to the service (creation, or `-E` switching schedulers).
    Init,
    /// A server was added at the head of the list (position 0).
    Add(DestId),
    /// A server was removed from the list; `pos` is where it was.
    Del {
        /// The removed server (still resolvable while connections refer to it).
        id: DestId,
        /// Its former list position.
        pos: usize,
    },
    /// A server's weight, thresholds or method were edited.
    Update(DestId),
}

/// A scheduling algorithm with its per-service state.
pub trait Scheduler: Send + fmt::Debug {
    /// The name ipvsadm uses (`rr`, `wlc`, …).
    fn name(&self) -> &'static str;

    /// Called after every change to the service's list. Errors are only reported for
    /// [`DestChange::Init`] (the kernel ignores the others' return values too).
    fn dests_changed(&mut self, dests: DestList<'_>, change: DestChange) -> Result<()>;

    /// Picks a server for a new connection, or `None` ("no destination available").
    fn schedule(&mut self, dests: DestList<'_>, pkt: &PacketMeta, ctx: &mut SchedCtx<'_>) -> Option<DestId>;

    /// Periodic housekeeping (lblc/lblcr cache expiry); `now` only moves forward.
    fn tick(&mut self, _dests: DestList<'_>, _now: Instant) {}
}

/// Every scheduler name lvs knows, in ipvsadm's help order (plus `twos`).
pub const SCHEDULER_NAMES: &[&str] =
    &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];

/// A fresh scheduler by name, or `None` if there is no such scheduler.
pub fn new_scheduler(name: &str) -> Option<Box<dyn Scheduler>> {
    Some(match name {
        "rr" => Box::new(rr::RoundRobin::default()),
        "wrr" => Box::new(wrr::WeightedRoundRobin::default()),
        "lc" => Box::new(lc::LeastConnection),
        "wlc" => Box::new(wlc::WeightedLeastConnection),
        "lblc" => Box::new(lblc::Lblc::default()),
        "lblcr" => Box::new(lblcr::Lblcr::default()),
        "dh" => Box::new(dh::DestHash::default()),
        "sh" => Box::new(sh::SourceHash::default()),
        "sed" => Box::new(sed::ShortestExpectedDelay),
        "nq" => Box::new(nq::NeverQueue),
        "fo" => Box::new(fo::WeightedFailOver),
        "ovf" => Box::new(ovf::Overflow),
        "mh" => Box::new(mh::Maglev::default()),
        "twos" => Box::new(twos::TwosChoice),
        _ => return None,
    })
}

/// True when a server may take new connections: weight above zero and not OVERLOADed.
#[inline]
pub(crate) fn usable(d: &Dest) -> bool {
    d.weight > 0 && !d.overloaded
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builds lists for scheduler unit tests.
    use super::*;
    use crate::model::{DestConfig, Protocol, ServiceKey};

    /// A list built by "adding" servers in the given order, so the last one is at position 0.
    #[derive(Debug, Default)]
    pub struct Fixture {
        pub arena: DestArena,
        pub order: Vec<DestId>,
        pub rng: Rng,
        pub tunables: SchedTunables,
        pub now: Instant,
        pub svc_flags: u32,
    }

    impl Default for Rng {
        fn default() -> Self {
            Rng::new(1)
        }
    }

    pub fn svc() -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.100".parse().unwrap(), port: 80 }
    }

    impl Fixture {
        pub fn list(&self) -> DestList<'_> {
            DestList::new(&self.arena, &self.order)
        }
        /// Adds `addr` with `weight` at the head and tells the scheduler, as `ipvsadm -a` would.
        pub fn add(&mut self, s: &mut dyn Scheduler, addr: &str, weight: i32) -> DestId {
            let mut cfg = DestConfig::new(addr.parse().unwrap());
            cfg.weight = weight;
            let id = self.arena.insert(Dest::new(svc(), &cfg, 80));
            self.order.insert(0, id);
            s.dests_changed(self.list(), DestChange::Add(id)).unwrap();
            id
        }
        pub fn del(&mut self, s: &mut dyn Scheduler, id: DestId) {
            let pos = self.order.iter().position(|&d| d == id).unwrap();
            self.order.remove(pos);
            self.arena.get_mut(id).unwrap().available = false;
            s.dests_changed(self.list(), DestChange::Del { id, pos }).unwrap();
        }
        pub fn edit(&mut self, s: &mut dyn Scheduler, id: DestId, f: impl FnOnce(&mut Dest)) {
            f(self.arena.get_mut(id).unwrap());
            s.dests_changed(self.list(), DestChange::Update(id)).unwrap();
        }
        pub fn dest(&mut self, id: DestId) -> &mut Dest {
            self.arena.get_mut(id).unwrap()
        }
        pub fn pick(&mut self, s: &mut dyn Scheduler, flow: &PacketMeta) -> Option<DestId> {
            let mut ctx = SchedCtx {
                svc_flags: self.svc_flags,
                now: self.now,
                rng: &mut self.rng,
                tunables: &self.tunables,
            };
            s.schedule(DestList::new(&self.arena, &self.order), flow, &mut ctx)
        }
        /// The address of the picked server, as text (or "-" for none).
        pub fn pick_addr(&mut self, s: &mut dyn Scheduler, flow: &PacketMeta) -> String {
            match self.pick(s, flow) {
                Some(id) => self.arena.get(id).unwrap().addr.to_string(),
                None => "-".into(),
            }
        }
    }

    /// A TCP flow from `src:sport` to `dst:80`.
    pub fn flow(src: &str, sport: u16, dst: &str) -> PacketMeta {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        PacketMeta::new(6, (s, sport).into(), (d, 80).into())
    }
}
