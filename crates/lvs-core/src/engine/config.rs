//! What the engine is told about the director: its interfaces, the routing table (copied from the
//! kernel's by the I/O layer), the firewall-mark rules and the neighbour-table settings.

use crate::error::{Error, Result};
use crate::model::Protocol;
use crate::wire::EthernetAddress;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address prefix (`10.0.0.0/24`, `2001:db8::/64`); host bits are cleared on construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// `addr/len`; `len` at most 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(Error::invalid(format!("invalid prefix length {len} for {addr}")));
        }
        Ok(Prefix { addr: mask(addr, len), len })
    }
    /// The single address `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> Prefix {
        Prefix { addr, len: if addr.is_ipv4() { 32 } else { 128 } }
    }
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    /// The prefix length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }
    /// A single address (/32 or /128).
    pub fn is_host(&self) -> bool {
        self.len == if self.addr.is_ipv4() { 32 } else { 128 }
    }
    /// Whether `addr` is inside (addresses of the other family never are).
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(n) == u32::from(a) & mask32(self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(n) == u128::from(a) & mask128(self.len),
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = Error;
    /// `ADDR/LEN` or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Prefix> {
        let bad = || Error::invalid(format!("invalid prefix `{s}'"));
        match s.split_once('/') {
            Some((a, l)) => {
                let addr: IpAddr = a.parse().map_err(|_| bad())?;
                let len: u8 = l.parse().map_err(|_| bad())?;
                Prefix::new(addr, len)
            }
            None => Ok(Prefix::host(s.parse().map_err(|_| bad())?)),
        }
    }
}

#[inline]
fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32) as u32)
    }
}

#[inline]
fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len.min(128) as u32)
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(len))),
    }
}

/// An address configured on an interface, with its prefix length (`ip addr add 10.0.0.2/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length of the attached subnet.
    pub prefix_len: u8,
}

impl IfAddr {
    /// The attached subnet.
    pub fn subnet(&self) -> Prefix {
        Prefix::new(self.addr, self.prefix_len).unwrap_or(Prefix::host(self.addr))
    }
}

/// One of the director's interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The kernel's interface index (what the I/O layer passes to [`super::Engine::process`]).
    pub index: u32,
    /// The name (`eth0`), for messages.
    pub name: String,
    /// Its MAC address: source of every frame sent on it, and the unicast address frames must
    /// carry to be processed.
    pub mac: EthernetAddress,
    /// The link MTU (IP bytes, without the Ethernet header).
    pub mtu: u32,
    /// Its addresses (not the VIPs: the engine owns those and answers ARP/ND for them itself).
    pub addrs: Vec<IfAddr>,
    /// An 802.1Q VLAN id: frames sent get this tag, and received frames must carry it. `None`
    /// (the usual case: the ring sits on `eth0.100`, which sees untagged frames) for untagged.
    pub vlan: Option<u16>,
}

impl Interface {
    /// An interface without addresses or VLAN.
    pub fn new(index: u32, name: impl Into<String>, mac: EthernetAddress, mtu: u32) -> Interface {
        Interface { index, name: name.into(), mac, mtu, addrs: Vec::new(), vlan: None }
    }
    /// Adds an address.
    pub fn with_addr(mut self, addr: IpAddr, prefix_len: u8) -> Interface {
        self.addrs.push(IfAddr { addr, prefix_len });
        self
    }
    /// Sets the VLAN id.
    pub fn with_vlan(mut self, vid: u16) -> Interface {
        self.vlan = Some(vid);
        self
    }
}

/// A route: destinations in `dest` go out of `ifindex`, through `gateway` when there is one
/// (else the destination is on the link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destinations.
    pub dest: Prefix,
    /// The next hop, `None` for an on-link (connected) route.
    pub gateway: Option<IpAddr>,
    /// The egress interface.
    pub ifindex: u32,
    /// Preferred source address (`src` of `ip route`); else an address of the egress interface.
    pub src: Option<IpAddr>,
    /// Route MTU (`mtu` of `ip route`); else the interface MTU.
    pub mtu: Option<u32>,
}

impl Route {
    /// A route through `gateway` (or on-link when `None`) out of `ifindex`.
    pub fn new(dest: Prefix, gateway: Option<IpAddr>, ifindex: u32) -> Route {
        Route { dest, gateway, ifindex, src: None, mtu: None }
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (≥ `first`).
    pub last: u16,
}

impl PortRange {
    /// A single port.
    pub const fn port(p: u16) -> PortRange {
        PortRange { first: p, last: p }
    }
    /// `first..=last`.
    pub const fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }
    /// Whether `p` is in the range.
    #[inline]
    pub const fn contains(&self, p: u16) -> bool {
        self.first <= p && p <= self.last
    }
}

/// A firewall-mark rule, like
/// `iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK --set-mark 10`.
/// Rules are tried in order; the first that matches sets `PacketMeta::fwmark`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRule {
    /// Destination address or prefix (`-d`). Host prefixes are VIPs: the engine answers ARP/ND
    /// for them. Packets to any address inside a wider prefix are load balanced too when they
    /// reach the director (routed to its MAC), but it does not claim those addresses on the link.
    pub destination: Prefix,
    /// Protocol (`-p`); `None` for any.
    pub protocol: Option<Protocol>,
    /// Destination ports (`--dport`, `-m multiport --dports`); empty for any. A rule with ports
    /// only matches TCP, UDP and SCTP.
    pub ports: Vec<PortRange>,
    /// The mark set (`--set-mark`), > 0.
    pub mark: u32,
}

impl MarkRule {
    /// A rule marking everything to `destination` with `mark`.
    pub fn new(destination: Prefix, mark: u32) -> MarkRule {
        MarkRule { destination, protocol: None, ports: Vec::new(), mark }
    }
    /// Restricts to a protocol.
    pub fn protocol(mut self, protocol: Protocol) -> MarkRule {
        self.protocol = Some(protocol);
        self
    }
    /// Restricts to destination ports.
    pub fn ports(mut self, ports: &[PortRange]) -> MarkRule {
        self.ports = ports.to_vec();
        self
    }
    /// Whether a packet to `daddr:dport` of IP protocol `protocol` matches.
    #[inline]
    pub fn matches(&self, daddr: IpAddr, protocol: u8, dport: u16) -> bool {
        if !self.destination.contains(daddr) {
            return false;
        }
        if let Some(p) = self.protocol {
            if p.number() != protocol {
                return false;
            }
        }
        if self.ports.is_empty() {
            return true;
        }
        Protocol::from_number(protocol).is_some() && self.ports.iter().any(|r| r.contains(dport))
    }
}

/// Neighbour table (ARP / ND cache) settings. The defaults follow Linux's `net.ipv4.neigh.default`
/// values where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighConfig {
    /// How long an answer keeps an entry usable without question (`base_reachable_time_ms`, 30 s).
    pub reachable_ms: u64,
    /// After that, how long the entry is still used while it is re-probed by unicast requests;
    /// then it is removed (`gc_stale_time`, 60 s).
    pub stale_ms: u64,
    /// Time between solicitations (`retrans_time_ms`, 1 s).
    pub retrans_ms: u64,
    /// Broadcast solicitations before giving up on an address (`mcast_solicit`, 3); its queued
    /// packets are then dropped.
    pub max_probes: u8,
    /// Packets queued per unresolved address (`unres_qlen`, 101 in Linux; 64 here); more are dropped.
    pub queue_len: usize,
    /// Addresses being resolved at once; packets for further ones are dropped.
    pub max_incomplete: usize,
    /// Entries in the table; learning stops beyond it until entries expire (`gc_thresh3`).
    pub max_entries: usize,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            reachable_ms: 30_000,
            stale_ms: 60_000,
            retrans_ms: 1_000,
            max_probes: 3,
            queue_len: 64,
            max_incomplete: 1024,
            max_entries: 65_536,
        }
    }
}

/// Everything the engine needs besides the virtual server table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The interfaces the I/O layer reads and writes.
    pub interfaces: Vec<Interface>,
    /// Routes, looked up by longest prefix. The on-link subnets of the interface addresses are
    /// added automatically (after these, so a supplied route of the same length wins).
    pub routes: Vec<Route>,
    /// Firewall-mark rules, first match wins.
    pub mark_rules: Vec<MarkRule>,
    /// Neighbour table settings.
    pub neigh: NeighConfig,
    /// Hand transit packets that are not NAT replies to the host stack (which may route them)
    /// instead of dropping them. Default off: the director is not a general router.
    pub pass_transit: bool,
    /// Answer ICMP echo requests to VIPs. Default on.
    pub answer_echo: bool,
    /// Verify TCP, UDP and SCTP checksums of load-balanced packets (IPv4 header and ICMP checksums
    /// are always verified). Default off: the real server verifies them anyway, and incremental
    /// updates keep a bad checksum bad.
    pub verify_l4_checksums: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interfaces: Vec::new(),
            routes: Vec::new(),
            mark_rules: Vec::new(),
            neigh: NeighConfig::default(),
            pass_transit: false,
            answer_echo: true,
            verify_l4_checksums: false,
        }
    }
}

impl EngineConfig {
    /// Checks interface indexes are unique and non-zero, MTUs sane, routes name known interfaces
    /// with gateways and sources of their family, and marks are non-zero.
    pub fn validate(&self) -> Result<()> {
        for (i, ifc) in self.interfaces.iter().enumerate() {
            if ifc.index == 0 {
                return Err(Error::invalid(format!("interface {} has index 0", ifc.name)));
            }
            if self.interfaces[..i].iter().any(|o| o.index == ifc.index) {
                return Err(Error::invalid(format!("duplicate interface index {}", ifc.index)));
            }
            if !(68..=65535).contains(&ifc.mtu) {
                return Err(Error::invalid(format!("interface {} has MTU {}", ifc.name, ifc.mtu)));
            }
            for a in &ifc.addrs {
                Prefix::new(a.addr, a.prefix_len)?;
            }
            if ifc.vlan.is_some_and(|v| v == 0 || v >= 4095) {
                return Err(Error::invalid(format!("interface {} has an invalid VLAN id", ifc.name)));
            }
        }
        for r in &self.routes {
            if !self.interfaces.iter().any(|i| i.index == r.ifindex) {
                return Err(Error::invalid(format!("route {} uses unknown interface {}", r.dest, r.ifindex)));
            }
            let fam = r.dest.addr().is_ipv4();
            if r.gateway.is_some_and(|g| g.is_ipv4() != fam) || r.src.is_some_and(|s| s.is_ipv4() != fam) {
                return Err(Error::invalid(format!("route {} mixes address families", r.dest)));
            }
            if r.mtu.is_some_and(|m| !(68..=65535).contains(&m)) {
                return Err(Error::invalid(format!("route {} has an invalid MTU", r.dest)));
            }
        }
        if let Some(r) = self.mark_rules.iter().find(|r| r.mark == 0) {
            return Err(Error::invalid(format!("mark rule for {} sets mark 0", r.destination)));
        }
        Ok(())
    }
}

/// Where a packet to some address leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Egress {
    /// Position of the interface in the configuration.
    pub iface: usize,
    /// Its index.
    pub ifindex: u32,
    /// The address whose MAC the frame goes to.
    pub nexthop: IpAddr,
    /// Path MTU.
    pub mtu: u32,
    /// The route's preferred source, if it has one (see `Engine::source_for`).
    pub src: Option<IpAddr>,
}

/// Longest-prefix match over a handful of routes: per family, sorted by prefix length (longest
/// first, stable), scanned linearly. The tables a director needs are small (its subnets and a
/// default route), so a scan of a few cache lines beats a trie.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    v4: Vec<(u32, u32, Route)>,
    v6: Vec<(u128, u128, Route)>,
}

impl RouteTable {
    pub fn new(cfg: &EngineConfig) -> RouteTable {
        let mut all: Vec<Route> = cfg.routes.clone();
        for ifc in &cfg.interfaces {
            for a in &ifc.addrs {
                let mut r = Route::new(a.subnet(), None, ifc.index);
                r.src = Some(a.addr);
                all.push(r);
            }
        }
        let mut t = RouteTable::default();
        for r in all {
            match r.dest.addr() {
                IpAddr::V4(a) => t.v4.push((u32::from(a), mask32(r.dest.len()), r)),
                IpAddr::V6(a) => t.v6.push((u128::from(a), mask128(r.dest.len()), r)),
            }
        }
        t.v4.sort_by_key(|(_, _, r)| std::cmp::Reverse(r.dest.len()));
        t.v6.sort_by_key(|(_, _, r)| std::cmp::Reverse(r.dest.len()));
        t
    }

    /// The most specific route to `addr`.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<&Route> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find(|(n, m, _)| a & m == *n).map(|(_, _, r)| r)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find(|(n, m, _)| a & m == *n).map(|(_, _, r)| r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_mask_and_match() {
        let p: Prefix = "10.1.2.3/24".parse().unwrap();
        assert_eq!(p.to_string(), "10.1.2.0/24");
        assert!(p.contains(ip("10.1.2.200")) && !p.contains(ip("10.1.3.1")) && !p.contains(ip("::1")));
        assert!(Prefix::new(ip("10.0.0.0"), 33).is_err());
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("255.1.2.3")));
        let h: Prefix = "2001:db8::1".parse().unwrap();
        assert!(h.is_host() && h.contains(ip("2001:db8::1")) && !h.contains(ip("2001:db8::2")));
        let p6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(p6.contains(ip("2001:db8:ffff::1")) && !p6.contains(ip("2001:db9::1")));
        assert!("10.0.0.0/x".parse::<Prefix>().is_err() && "nope".parse::<Prefix>().is_err());
    }

    #[test]
    fn longest_prefix_wins() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let cfg = EngineConfig {
            interfaces: vec![
                Interface::new(1, "eth0", mac, 1500).with_addr(ip("10.0.0.1"), 24),
                Interface::new(2, "eth1", mac, 1500).with_addr(ip("192.168.0.1"), 16),
            ],
            routes: vec![
                Route::new("0.0.0.0/0".parse().unwrap(), Some(ip("10.0.0.254")), 1),
                Route::new("192.168.7.0/24".parse().unwrap(), Some(ip("10.0.0.9")), 1),
            ],
            ..EngineConfig::default()
        };
        cfg.validate().unwrap();
        let t = RouteTable::new(&cfg);
        assert_eq!(t.lookup(ip("8.8.8.8")).unwrap().gateway, Some(ip("10.0.0.254")));
        assert_eq!(t.lookup(ip("10.0.0.7")).unwrap().gateway, None);
        assert_eq!(t.lookup(ip("192.168.1.1")).unwrap().ifindex, 2);
        assert_eq!(t.lookup(ip("192.168.7.1")).unwrap().gateway, Some(ip("10.0.0.9")));
        assert!(t.lookup(ip("2001:db8::1")).is_none());
    }

    #[test]
    fn validation_catches_mistakes() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let good = EngineConfig {
            interfaces: vec![Interface::new(1, "eth0", mac, 1500)],
            ..EngineConfig::default()
        };
        good.validate().unwrap();
        let mut c = good.clone();
        c.interfaces.push(Interface::new(1, "eth1", mac, 1500));
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.routes.push(Route::new("0.0.0.0/0".parse().unwrap(), None, 9));
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.routes.push(Route::new("0.0.0.0/0".parse().unwrap(), Some(ip("::1")), 1));
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.mark_rules.push(MarkRule::new(Prefix::host(ip("10.0.0.1")), 0));
        assert!(c.validate().is_err());
        let mut c = good;
        c.interfaces[0].mtu = 20;
        assert!(c.validate().is_err());
    }

    #[test]
    fn mark_rules_match_like_iptables() {
        let r = MarkRule::new(Prefix::host(ip("10.0.0.10")), 10)
            .protocol(Protocol::Tcp)
            .ports(&[PortRange::port(80), PortRange::port(443)]);
        assert!(r.matches(ip("10.0.0.10"), 6, 80));
        assert!(r.matches(ip("10.0.0.10"), 6, 443));
        assert!(!r.matches(ip("10.0.0.10"), 6, 8080));
        assert!(!r.matches(ip("10.0.0.10"), 17, 80));
        assert!(!r.matches(ip("10.0.0.11"), 6, 80));
        let any = MarkRule::new("10.0.0.0/24".parse().unwrap(), 3).ports(&[PortRange::range(1000, 2000)]);
        assert!(any.matches(ip("10.0.0.99"), 17, 1500));
        assert!(!any.matches(ip("10.0.0.99"), 1, 1500), "ports only match port protocols");
        assert!(MarkRule::new(Prefix::host(ip("10.0.0.10")), 4).matches(ip("10.0.0.10"), 1, 0));
    }
}
