//! The packet engine: one received Ethernet frame plus the time in, frames out, no I/O.
//!
//! Structured like Katran's `balancer_ingress` / `process_packet`: [`Engine::process`] bounds-checks
//! the Ethernet header, counts the frame, dispatches by EtherType (ARP, IPv4, IPv6) and each path
//! ends in one [`Outcome`] with a counter per verdict and per drop reason ([`Counters`]).
//!
//! * **ARP / ND** ([`l2`](self)): the VIPs are not kernel addresses, the engine owns them. It
//!   answers ARP requests and neighbour solicitations for them on the interface they arrive on,
//!   sends gratuitous ARP / unsolicited NA on [`Engine::announce`], and keeps a neighbour table
//!   (learned from ARP and NA, expiring) to address real servers, next hops and clients. A packet
//!   whose next hop is unknown is parked in a bounded per-address queue while an ARP request / NS
//!   goes out, and sent when the answer arrives.
//! * **Client → VIP**: parsed into a [`PacketMeta`](crate::conn::PacketMeta) (TCP flags, SCTP first chunk and ABORT
//!   bundling, IP length, the firewall mark from the [`MarkRule`]s), run through
//!   [`Ipvs::process_in`], then per verdict: NAT rewrites destination address and port with
//!   incremental checksums (SCTP: CRC32c recomputed); DR only changes the MAC addresses and the
//!   TTL; TUN wraps the packet in IPIP / IPv6-in-IPv6 (ICMP fragmentation needed / packet too big
//!   when it would not fit and may not be fragmented); Local hands it to the host; Reject answers
//!   ICMP port unreachable. The TTL / hop limit goes down by one on every forwarded packet (ICMP
//!   time exceeded at 1).
//! * **Real server → client** (NAT replies, arriving at our MAC for an address not ours):
//!   [`Ipvs::process_out`], source rewritten to VIP:port, routed to the client. Other transit
//!   traffic is dropped (or handed to the host with [`EngineConfig::pass_transit`]).
//! * **ICMP**: errors about a tracked connection are forwarded to its real server (NAT:
//!   translated, outer and quoted headers) or translated back to the VIP for the client; echo
//!   requests to a VIP are answered.
//!
//! Fragments, unknown protocols, bad checksums and malformed frames are counted and dropped (or
//! passed to the host), never a panic.
//!
//! ## Driving it
//!
//! The I/O layer owns the rings. Per received frame it calls
//! `engine.process(ifindex, frame, now, &mut sink)`; the [`Sink`] gets each output frame through
//! `transmit(ifindex, len, |buf| ..)` and lends the engine the TX slot to write into, so a frame
//! crosses from the RX ring to the TX ring with a single copy and nothing is allocated per packet
//! (parking for neighbour resolution copies into pooled buffers). Every few hundred milliseconds
//! it calls [`Engine::advance`] (neighbour retries and expiry, and [`Ipvs::advance`]). Control
//! changes go through [`Engine::ipvs_mut`] / [`Engine::set_config`]. [`Engine::inject`] is the
//! offline form: one frame in, the frames out.
//!
//! With an AF_PACKET ring the kernel also receives every frame, so the host must not route the
//! VIP traffic itself (`net.ipv4.ip_forward=0` on those interfaces, or a drop rule); frames the
//! engine hands "to the host" are already there.

mod config;
mod counters;
mod ip;
mod l2;
mod neigh;
mod sink;

#[cfg(test)]
mod tests;

pub use config::{EngineConfig, IfAddr, Interface, MarkRule, NeighConfig, PortRange, Prefix, Route};
pub use counters::Counters;
pub use sink::{Sink, TxBatch, TxFrame, FILL_BYTE};

use crate::conn::{DropReason, RejectReason};
use crate::error::Result;
use crate::time::Instant;
use crate::wire::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanTag};
use crate::Ipvs;
use config::{Egress, RouteTable};
use neigh::{Key, Learn, Lookup, Neighbours, Park};
use std::net::IpAddr;

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent on (rewritten, encapsulated or fragmented as its method says).
    Forwarded,
    /// Parked until the next hop answers ARP / ND.
    Queued,
    /// Answered by the engine (ARP reply, neighbour advertisement, echo reply).
    Answered,
    /// Handed to the host stack.
    ToHost,
    /// Dropped.
    Dropped(DropCause),
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// Truncated, inconsistent or otherwise malformed.
    Malformed,
    /// A checksum the engine verifies is wrong.
    BadChecksum,
    /// Unicast to another MAC, or a frame we sent.
    NotForUs,
    /// Interface index not configured.
    UnknownInterface,
    /// VLAN tag not the interface's.
    VlanMismatch,
    /// A fragment (no reassembly).
    Fragment,
    /// TTL / hop limit exhausted (ICMP time exceeded sent).
    TtlExceeded,
    /// Larger than the path MTU and not fragmentable (ICMP sent when allowed).
    TooBig,
    /// No route to the destination (or no source address for it).
    NoRoute,
    /// The neighbour queue for the next hop is full.
    NeighQueueFull,
    /// The sink had no room.
    TxRingFull,
    /// Transit traffic that is not a NAT reply.
    Transit,
    /// Something to a VIP the engine does not handle and does not pass.
    Unsupported,
    /// To a managed address this director does not hold now (a VRRP backup's VIP).
    Standby,
    /// IPVS dropped it.
    Ipvs(DropReason),
    /// IPVS rejected it (ICMP port unreachable sent).
    Rejected(RejectReason),
}

const ZERO_MAC: EthernetAddress = EthernetAddress([0; 6]);

/// The Ethernet header length for an interface's VLAN setting.
#[inline]
fn eth_len(vlan: Option<u16>) -> usize {
    if vlan.is_some() {
        crate::wire::ethernet::VLAN_HEADER_LEN
    } else {
        crate::wire::ethernet::HEADER_LEN
    }
}

/// Writes an Ethernet header at the start of `buf`.
#[inline]
fn write_eth(
    buf: &mut [u8],
    dst: EthernetAddress,
    src: EthernetAddress,
    vlan: Option<u16>,
    ethertype: EtherType,
) {
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
        vlan: vlan.map(|vid| VlanTag { pcp: 0, dei: false, vid }),
    }
    .emit(&mut EthernetFrame::new_unchecked(buf));
}

/// The EtherType of an IP packet of the family of `addr`.
#[inline]
fn ethertype_of(addr: IpAddr) -> EtherType {
    if addr.is_ipv4() {
        EtherType::Ipv4
    } else {
        EtherType::Ipv6
    }
}

/// The packet engine of a director: interfaces, routes, neighbour table, firewall-mark rules and
/// the virtual server table, turning received frames into frames to send.
#[derive(Debug)]
pub struct Engine {
    ipvs: Ipvs,
    cfg: EngineConfig,
    routes: RouteTable,
    /// Sorted host VIPs: service addresses and host mark-rule destinations.
    vips: Vec<IpAddr>,
    /// Wider mark-rule destinations.
    vip_prefixes: Vec<Prefix>,
    vips_dirty: bool,
    /// Sorted addresses whose ownership an arbiter (VRRP) decides, and the sorted subset it
    /// currently holds ([`Engine::set_vip_ownership`]).
    managed: Vec<IpAddr>,
    claimed: Vec<IpAddr>,
    /// Sorted `managed` minus `claimed`: neither answered nor balanced.
    standby: Vec<IpAddr>,
    /// Sorted interface addresses.
    locals: Vec<IpAddr>,
    neigh: Neighbours,
    counters: Counters,
    /// Identification of IPv4 packets the engine originates (ICMP, echo replies, tunnel headers).
    ident: u16,
    /// Scratch for the slow paths (fragmentation, local NAT delivery).
    scratch: Vec<u8>,
    /// Scratch for solicitations due in `advance`.
    solicit: Vec<Key>,
}

impl Engine {
    /// An engine for `cfg` ([`EngineConfig::validate`]d) over the virtual server table `ipvs`.
    pub fn new(cfg: EngineConfig, ipvs: Ipvs) -> Result<Engine> {
        cfg.validate()?;
        let mut e = Engine {
            ipvs,
            routes: RouteTable::new(&cfg),
            neigh: Neighbours::new(cfg.neigh),
            cfg,
            vips: Vec::new(),
            vip_prefixes: Vec::new(),
            vips_dirty: true,
            managed: Vec::new(),
            claimed: Vec::new(),
            standby: Vec::new(),
            locals: Vec::new(),
            counters: Counters::default(),
            ident: 0,
            scratch: Vec::new(),
            solicit: Vec::new(),
        };
        e.index_locals();
        Ok(e)
    }

    /// Replaces the interfaces, routes, mark rules and settings; the neighbour table is kept.
    pub fn set_config(&mut self, cfg: EngineConfig) -> Result<()> {
        cfg.validate()?;
        self.routes = RouteTable::new(&cfg);
        self.neigh.set_config(cfg.neigh);
        self.cfg = cfg;
        self.vips_dirty = true;
        self.index_locals();
        Ok(())
    }

    fn index_locals(&mut self) {
        self.locals = self.cfg.interfaces.iter().flat_map(|i| i.addrs.iter().map(|a| a.addr)).collect();
        self.locals.sort_unstable();
        self.locals.dedup();
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The virtual server table.
    pub fn ipvs(&self) -> &Ipvs {
        &self.ipvs
    }

    /// The virtual server table, to change services and servers; the VIP set is recomputed
    /// before the next packet.
    pub fn ipvs_mut(&mut self) -> &mut Ipvs {
        self.vips_dirty = true;
        &mut self.ipvs
    }

    /// Gives the virtual server table back.
    pub fn into_ipvs(self) -> Ipvs {
        self.ipvs
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Zeroes the counters.
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// The VIPs the engine answers ARP / ND for: every service address plus the host
    /// destinations of the mark rules, plus the claimed managed addresses, minus the managed
    /// addresses not claimed; sorted.
    pub fn vips(&mut self) -> &[IpAddr] {
        self.refresh_vips();
        &self.vips
    }

    /// Hands the ownership of `managed` addresses to an arbiter such as a VRRP speaker, which
    /// holds the `claimed` ones (a claimed address is managed too). A claimed address is a VIP
    /// even when no service uses it (a NAT gateway address: the engine answers ARP / ND for it
    /// and passes its traffic on as for any VIP). A managed address not claimed is a backup's
    /// address: the engine neither answers ARP / ND for it nor balances packets sent to it
    /// (counted in `drop_standby`), whatever services or mark rules name it, because the
    /// current master serves it. Replaces the previous sets; empty slices end the management.
    pub fn set_vip_ownership(&mut self, managed: &[IpAddr], claimed: &[IpAddr]) {
        self.claimed = claimed.to_vec();
        self.claimed.sort_unstable();
        self.claimed.dedup();
        self.managed = managed.iter().chain(claimed).copied().collect();
        self.managed.sort_unstable();
        self.managed.dedup();
        self.vips_dirty = true;
    }

    /// The managed addresses (sorted), as set by [`set_vip_ownership`](Self::set_vip_ownership).
    pub fn managed_vips(&self) -> &[IpAddr] {
        &self.managed
    }

    /// The claimed managed addresses (sorted).
    pub fn claimed_vips(&self) -> &[IpAddr] {
        &self.claimed
    }

    /// The MAC known for `addr` on interface `ifindex` (reachable or stale entries).
    pub fn neighbour(&self, ifindex: u32, addr: IpAddr) -> Option<EthernetAddress> {
        self.neigh.peek((ifindex, addr))
    }

    /// Known neighbours: `(ifindex, address, mac)`, in no particular order.
    pub fn neighbours(&self) -> impl Iterator<Item = (u32, IpAddr, EthernetAddress)> + '_ {
        self.neigh.entries()
    }

    /// Seeds (or refreshes) a neighbour entry as if `addr` had answered at `now`; it ages like a
    /// learned one. Packets parked for it are sent. `false` when the table is full.
    pub fn add_neighbour<S: Sink>(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        mac: EthernetAddress,
        now: Instant,
        sink: &mut S,
    ) -> bool {
        self.learn((ifindex, addr), mac, now, true, sink)
    }

    /// Processes one received frame from interface `ifindex` at `now`; output goes to `sink`.
    pub fn process<S: Sink>(&mut self, ifindex: u32, frame: &[u8], now: Instant, sink: &mut S) -> Outcome {
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += frame.len() as u64;
        self.refresh_vips();
        let Some(ifp) = self.iface_pos(ifindex) else {
            return self.drop(DropCause::UnknownInterface);
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return self.drop(DropCause::Malformed);
        };
        let iface = &self.cfg.interfaces[ifp];
        if eth.vlan_tag().map(|t| t.vid) != iface.vlan {
            return self.drop(DropCause::VlanMismatch);
        }
        let dst = eth.dst_addr();
        if eth.src_addr() == iface.mac || (dst.is_unicast() && dst != iface.mac) {
            return self.drop(DropCause::NotForUs);
        }
        let hl = eth.header_len();
        match eth.payload_ethertype() {
            EtherType::Arp => self.arp(ifp, frame, hl, now, sink),
            EtherType::Ipv4 => self.ipv4(ifp, frame, hl, now, sink),
            EtherType::Ipv6 => self.ipv6(ifp, frame, hl, now, sink),
            _ => {
                self.counters.to_host_other_ethertype += 1;
                self.hand_to_host(sink, ifindex, frame)
            }
        }
    }

    /// [`process`](Self::process) into a fresh vector: the offline entry point behind the SDK's
    /// `director.inject(frame)`. Frames handed to the host are included with `to_host` set.
    pub fn inject(&mut self, ifindex: u32, frame: &[u8], now: Instant) -> Vec<TxFrame> {
        let mut out = Vec::new();
        self.process(ifindex, frame, now, &mut out);
        out
    }

    /// Runs the timers due at `now`: neighbour solicitation retries (sent to `sink`), failed
    /// resolutions (their packets dropped), neighbour expiry, and [`Ipvs::advance`].
    pub fn advance<S: Sink>(&mut self, now: Instant, sink: &mut S) {
        self.ipvs.advance(now);
        let mut due = std::mem::take(&mut self.solicit);
        due.clear();
        self.counters.drop_neigh_failed += self.neigh.advance(now.millis(), &mut due);
        for &(ifindex, addr) in &due {
            if let Some(ifp) = self.iface_pos(ifindex) {
                self.solicit_neighbour(sink, ifp, addr, None);
            }
        }
        self.solicit = due;
    }

    fn refresh_vips(&mut self) {
        if !self.vips_dirty {
            return;
        }
        self.vips.clear();
        self.vips.extend(self.ipvs.services().filter_map(|s| match s.config().key {
            crate::model::ServiceKey::Addr { addr, .. } => Some(addr),
            crate::model::ServiceKey::Fwmark { .. } => None,
        }));
        self.vip_prefixes.clear();
        for r in &self.cfg.mark_rules {
            if r.destination.is_host() {
                self.vips.push(r.destination.addr());
            } else {
                self.vip_prefixes.push(r.destination);
            }
        }
        self.vips.extend_from_slice(&self.claimed);
        self.standby.clear();
        self.standby.extend(self.managed.iter().filter(|a| self.claimed.binary_search(a).is_err()));
        let standby = &self.standby;
        self.vips.retain(|a| standby.binary_search(a).is_err());
        self.vips.sort_unstable();
        self.vips.dedup();
        self.vips_dirty = false;
    }

    /// A VIP the engine claims on the link (ARP / ND).
    #[inline]
    fn owns(&self, addr: IpAddr) -> bool {
        self.vips.binary_search(&addr).is_ok()
    }

    /// A destination the engine load balances: a VIP or inside a mark-rule prefix (unless a
    /// backup's managed address).
    #[inline]
    fn is_vip(&self, addr: IpAddr) -> bool {
        self.owns(addr)
            || (!self.vip_prefixes.is_empty()
                && !self.is_standby(addr)
                && self.vip_prefixes.iter().any(|p| p.contains(addr)))
    }

    /// A managed address this director does not hold now.
    #[inline]
    fn is_standby(&self, addr: IpAddr) -> bool {
        !self.standby.is_empty() && self.standby.binary_search(&addr).is_ok()
    }

    /// One of the interface addresses.
    #[inline]
    fn is_local(&self, addr: IpAddr) -> bool {
        self.locals.binary_search(&addr).is_ok()
    }

    #[inline]
    fn iface_pos(&self, ifindex: u32) -> Option<usize> {
        self.cfg.interfaces.iter().position(|i| i.index == ifindex)
    }

    /// The firewall mark for a packet: the first matching rule's, else 0.
    #[inline]
    fn classify(&self, daddr: IpAddr, protocol: u8, dport: u16) -> u32 {
        self.cfg.mark_rules.iter().find(|r| r.matches(daddr, protocol, dport)).map_or(0, |r| r.mark)
    }

    #[inline]
    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// A source address on interface `ifp` for talking to `peer`: one whose subnet holds `peer`,
    /// else the first of its family.
    fn iface_src(&self, ifp: usize, peer: IpAddr) -> Option<IpAddr> {
        let addrs = &self.cfg.interfaces[ifp].addrs;
        addrs
            .iter()
            .find(|a| a.subnet().contains(peer))
            .or_else(|| addrs.iter().find(|a| a.addr.is_ipv4() == peer.is_ipv4()))
            .map(|a| a.addr)
    }

    /// The way to `dst`: longest-prefix route, next hop = `nexthop` when given (direct routing
    /// sends to the real server itself), else the route's gateway, else `dst`.
    fn egress(&self, dst: IpAddr, nexthop: Option<IpAddr>) -> Option<Egress> {
        let r = self.routes.lookup(dst)?;
        let iface = self.iface_pos(r.ifindex)?;
        let nexthop = nexthop.unwrap_or(r.gateway.unwrap_or(dst));
        let if_mtu = self.cfg.interfaces[iface].mtu;
        let mtu = r.mtu.map_or(if_mtu, |m| m.min(if_mtu));
        Some(Egress { iface, ifindex: r.ifindex, nexthop, mtu, src: r.src })
    }

    /// The source address for packets the director originates along `eg`: the route's preferred
    /// source, else an address of the egress interface (computed only when needed, off the
    /// forwarding fast path).
    fn source_for(&self, eg: &Egress) -> Option<IpAddr> {
        eg.src.or_else(|| self.iface_src(eg.iface, eg.nexthop))
    }

    fn drop(&mut self, cause: DropCause) -> Outcome {
        let c = &mut self.counters;
        match cause {
            DropCause::Malformed => c.drop_malformed += 1,
            DropCause::BadChecksum => c.drop_bad_checksum += 1,
            DropCause::NotForUs => c.drop_not_for_us += 1,
            DropCause::UnknownInterface => c.drop_unknown_interface += 1,
            DropCause::VlanMismatch => c.drop_vlan_mismatch += 1,
            DropCause::Fragment => c.drop_fragment += 1,
            DropCause::TtlExceeded => c.drop_ttl_exceeded += 1,
            DropCause::TooBig => c.drop_too_big += 1,
            DropCause::NoRoute => c.drop_no_route += 1,
            DropCause::NeighQueueFull => c.drop_neigh_queue_full += 1,
            // Counted where it happens (`tx_ring_full`).
            DropCause::TxRingFull => {}
            DropCause::Transit => c.drop_transit += 1,
            DropCause::Unsupported => c.drop_unsupported += 1,
            DropCause::Standby => c.drop_standby += 1,
            DropCause::Ipvs(DropReason::DestUnavailable) => c.drop_dest_unavailable += 1,
            DropCause::Ipvs(DropReason::TableFull) => c.drop_conn_table_full += 1,
            DropCause::Ipvs(DropReason::Malformed) => c.drop_ipvs_malformed += 1,
            DropCause::Ipvs(DropReason::NoPeData) => c.drop_pe_no_data += 1,
            DropCause::Rejected(_) => c.drop_rejected += 1,
        }
        Outcome::Dropped(cause)
    }

    fn hand_to_host<S: Sink>(&mut self, sink: &mut S, ifindex: u32, frame: &[u8]) -> Outcome {
        self.counters.to_host += 1;
        sink.to_host(ifindex, frame);
        Outcome::ToHost
    }

    /// Sends a frame with a known destination MAC out of interface `ifp`: Ethernet header, then
    /// `write` fills the `l3_len` bytes after it.
    fn send_raw<S: Sink, F: FnOnce(&mut [u8])>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        dst: EthernetAddress,
        ethertype: EtherType,
        l3_len: usize,
        write: F,
    ) -> bool {
        let iface = &self.cfg.interfaces[ifp];
        let (src, vlan, ifindex) = (iface.mac, iface.vlan, iface.index);
        let hl = eth_len(vlan);
        let len = hl + l3_len;
        let sent = sink.transmit(ifindex, len, |buf| {
            write_eth(buf, dst, src, vlan, ethertype);
            write(&mut buf[hl..]);
        });
        if sent {
            self.counters.tx_frames += 1;
            self.counters.tx_bytes += len as u64;
        } else {
            self.counters.tx_ring_full += 1;
        }
        sent
    }

    /// Sends an IP packet of `l3_len` bytes written by `write` along `eg`: straight to the next
    /// hop's MAC when known (with a refresh probe when the entry is stale), else parked while the
    /// next hop is solicited.
    fn send_ip<S: Sink, F: FnOnce(&mut [u8])>(
        &mut self,
        sink: &mut S,
        eg: &Egress,
        l3_len: usize,
        now: Instant,
        write: F,
    ) -> Outcome {
        let ethertype = ethertype_of(eg.nexthop);
        let key = (eg.ifindex, eg.nexthop);
        match self.neigh.lookup(key, now.millis()) {
            Lookup::Known(mac, probe) => {
                if probe {
                    self.solicit_neighbour(sink, eg.iface, eg.nexthop, Some(mac));
                }
                if self.send_raw(sink, eg.iface, mac, ethertype, l3_len, write) {
                    Outcome::Forwarded
                } else {
                    Outcome::Dropped(DropCause::TxRingFull)
                }
            }
            Lookup::Unknown => {
                let iface = &self.cfg.interfaces[eg.iface];
                let (src, vlan) = (iface.mac, iface.vlan);
                let hl = eth_len(vlan);
                let parked = self.neigh.park(key, now.millis(), hl + l3_len, |buf| {
                    write_eth(buf, ZERO_MAC, src, vlan, ethertype);
                    write(&mut buf[hl..]);
                });
                match parked {
                    Park::Queued(first) => {
                        self.counters.queued += 1;
                        if first {
                            self.solicit_neighbour(sink, eg.iface, eg.nexthop, None);
                        }
                        Outcome::Queued
                    }
                    Park::Full => self.drop(DropCause::NeighQueueFull),
                }
            }
        }
    }

    /// Records an answer from `key` and sends what was waiting for it.
    fn learn<S: Sink>(
        &mut self,
        key: Key,
        mac: EthernetAddress,
        now: Instant,
        create: bool,
        sink: &mut S,
    ) -> bool {
        match self.neigh.learn(key, mac, now.millis(), create) {
            Learn::Ignored => false,
            Learn::TableFull => {
                self.counters.neigh_table_full += 1;
                false
            }
            Learn::Learned => {
                self.counters.neigh_learned += 1;
                true
            }
            Learn::Release(queue) => {
                self.counters.neigh_learned += 1;
                for mut buf in queue {
                    buf[..6].copy_from_slice(&mac.0);
                    let len = buf.len();
                    if sink.transmit(key.0, len, |out| out.copy_from_slice(&buf)) {
                        self.counters.released += 1;
                        self.counters.tx_frames += 1;
                        self.counters.tx_bytes += len as u64;
                    } else {
                        self.counters.tx_ring_full += 1;
                    }
                    self.neigh.give_back(buf);
                }
                true
            }
        }
    }
}
