//! ARP and IPv6 neighbour discovery: answering for VIPs, learning neighbours, soliciting next hops,
//! announcing VIPs.

use super::{DropCause, Engine, Outcome, Sink};
use crate::time::Instant;
use crate::wire::arp::Operation;
use crate::wire::icmpv6::{Message as Icmpv6Message, NdFlags};
use crate::wire::{
    ArpPacket, ArpRepr, ChecksumCapabilities, EtherType, EthernetAddress, EthernetFrame, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `ff02::1`, all nodes.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Neighbour discovery packets carry hop limit 255 (RFC 4861 §7.1), so they cannot come from off
/// the link.
const ND_HOP_LIMIT: u8 = 255;

/// The solicited-node multicast address of `a` (`ff02::1:ffXX:XXXX`).
fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]])
}

/// The Ethernet multicast address of an IPv6 multicast address (`33:33:` + last 4 octets).
fn multicast_mac(a: Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

impl Engine {
    /// An ARP frame: answer requests for a VIP, learn the sender, hand the rest to the host.
    pub(super) fn arp<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        hl: usize,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        let Ok(packet) = ArpPacket::new_checked(&frame[hl..]) else {
            return self.drop(DropCause::Malformed);
        };
        let ifindex = self.cfg.interfaces[ifp].index;
        let Ok(repr) = ArpRepr::parse(&packet) else {
            // Another hardware or protocol type: not ours to judge.
            self.counters.to_host_neigh += 1;
            return self.hand_to_host(sink, ifindex, frame);
        };
        let sender = IpAddr::V4(repr.source_protocol_addr);
        let target = IpAddr::V4(repr.target_protocol_addr);
        let addressed_to_us = self.owns(target) || self.is_local(target);
        if !repr.source_protocol_addr.is_unspecified()
            && repr.source_hardware_addr.is_unicast()
            && !self.owns(sender)
            && !self.is_local(sender)
        {
            // Like Linux with arp_accept=0: any ARP refreshes an existing entry, only one
            // addressed to us creates one.
            self.learn((ifindex, sender), repr.source_hardware_addr, now, addressed_to_us, sink);
        }
        if repr.operation == Operation::Request && self.owns(target) {
            let reply = repr.reply(self.cfg.interfaces[ifp].mac);
            let to = EthernetFrame::new_unchecked(frame).src_addr();
            let sent = self.send_raw(sink, ifp, to, EtherType::Arp, reply.buffer_len(), |buf| {
                reply.emit(&mut ArpPacket::new_unchecked(buf));
            });
            if !sent {
                return Outcome::Dropped(DropCause::TxRingFull);
            }
            self.counters.answered_arp += 1;
            return Outcome::Answered;
        }
        self.counters.to_host_neigh += 1;
        self.hand_to_host(sink, ifindex, frame)
    }

    /// Neighbour solicitations and advertisements (IPv6 packet `l3`, ICMPv6 at `l4`). `None` for
    /// other ICMPv6 messages, which take the normal path.
    pub(super) fn ndp<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        l3: &[u8],
        l4: usize,
        now: Instant,
        sink: &mut S,
    ) -> Option<Outcome> {
        let msg = Icmpv6Message::from(*l3.get(l4)?);
        if !matches!(msg, Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert) {
            return None;
        }
        let ifindex = self.cfg.interfaces[ifp].index;
        let ip = Ipv6Packet::new_unchecked(l3);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let Ok(packet) = Icmpv6Packet::new_checked(&l3[l4..]) else {
            return Some(self.drop(DropCause::Malformed));
        };
        if !packet.verify_checksum(&src, &dst) {
            return Some(self.drop(DropCause::BadChecksum));
        }
        let repr = match Icmpv6Repr::parse(&packet, &src, &dst, &ChecksumCapabilities::ignored()) {
            Ok(r) if ip.hop_limit() == ND_HOP_LIMIT => r,
            _ => {
                self.counters.to_host_neigh += 1;
                return Some(self.hand_to_host(sink, ifindex, frame));
            }
        };
        let eth_src = EthernetFrame::new_unchecked(frame).src_addr();
        match repr {
            Icmpv6Repr::NeighborSolicit { target_addr, lladdr } => {
                let target = IpAddr::V6(target_addr);
                let ours = self.owns(target);
                if let Some(mac) = lladdr {
                    if !src.is_unspecified() && mac.is_unicast() {
                        self.learn((ifindex, IpAddr::V6(src)), mac, now, ours || self.is_local(target), sink);
                    }
                }
                if !ours {
                    self.counters.to_host_neigh += 1;
                    return Some(self.hand_to_host(sink, ifindex, frame));
                }
                // Duplicate address detection (source ::) is answered to all nodes, unsolicited.
                let (to_ip, to_mac, flags) = if src.is_unspecified() {
                    (ALL_NODES, multicast_mac(ALL_NODES), NdFlags::OVERRIDE)
                } else {
                    (src, lladdr.unwrap_or(eth_src), NdFlags::SOLICITED | NdFlags::OVERRIDE)
                };
                let mac = self.cfg.interfaces[ifp].mac;
                let na = Icmpv6Repr::NeighborAdvert { flags, target_addr, lladdr: Some(mac) };
                if !self.send_nd(sink, ifp, to_mac, target_addr, to_ip, &na) {
                    return Some(Outcome::Dropped(DropCause::TxRingFull));
                }
                self.counters.answered_ns += 1;
                Some(Outcome::Answered)
            }
            Icmpv6Repr::NeighborAdvert { flags, target_addr, lladdr } => {
                let target = IpAddr::V6(target_addr);
                if let Some(mac) = lladdr.filter(|m| m.is_unicast()) {
                    if !self.owns(target) && !self.is_local(target) {
                        let to_us = self.is_local(IpAddr::V6(dst)) || self.owns(IpAddr::V6(dst));
                        let create = flags.contains(NdFlags::SOLICITED) && to_us;
                        self.learn((ifindex, target), mac, now, create, sink);
                    }
                }
                self.counters.to_host_neigh += 1;
                Some(self.hand_to_host(sink, ifindex, frame))
            }
            _ => None,
        }
    }

    /// Sends a neighbour discovery message from `src` to `dst` (hop limit 255).
    fn send_nd<S: Sink>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        to_mac: EthernetAddress,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        msg: &Icmpv6Repr<'_>,
    ) -> bool {
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: msg.buffer_len(),
            hop_limit: ND_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let len = ip.buffer_len() + msg.buffer_len();
        self.send_raw(sink, ifp, to_mac, EtherType::Ipv6, len, |buf| {
            let (h, rest) = buf.split_at_mut(ip.buffer_len());
            ip.emit(&mut Ipv6Packet::new_unchecked(h));
            msg.emit(&mut Icmpv6Packet::new_unchecked(rest), &src, &dst, &ChecksumCapabilities::default());
        })
    }

    /// Asks for the MAC of `target` on interface `ifp`: an ARP request or neighbour solicitation,
    /// broadcast / to the solicited-node group, or unicast to `known` (a refresh probe).
    pub(super) fn solicit_neighbour<S: Sink>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        target: IpAddr,
        known: Option<EthernetAddress>,
    ) {
        let mac = self.cfg.interfaces[ifp].mac;
        let src = self.iface_src(ifp, target);
        let sent = match target {
            IpAddr::V4(t) => {
                let spa = match src {
                    Some(IpAddr::V4(a)) => a,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                let req = ArpRepr::request(mac, spa, t);
                let to = known.unwrap_or(EthernetAddress::BROADCAST);
                self.send_raw(sink, ifp, to, EtherType::Arp, req.buffer_len(), |buf| {
                    req.emit(&mut ArpPacket::new_unchecked(buf));
                })
            }
            IpAddr::V6(t) => {
                let src = match src {
                    Some(IpAddr::V6(a)) => a,
                    _ => Ipv6Addr::UNSPECIFIED,
                };
                // A solicitation from :: must not carry a source link-layer address.
                let lladdr = if src.is_unspecified() { None } else { Some(mac) };
                let ns = Icmpv6Repr::NeighborSolicit { target_addr: t, lladdr };
                let (to_mac, dst) = match known {
                    Some(m) => (m, t),
                    None => (multicast_mac(solicited_node(t)), solicited_node(t)),
                };
                self.send_nd(sink, ifp, to_mac, src, dst, &ns)
            }
        };
        if sent {
            self.counters.neigh_solicit_sent += 1;
        }
    }

    /// Announces every VIP: a gratuitous ARP (IPv4; keepalived's form: a request with sender and
    /// target IP the VIP, target MAC `ff:ff:ff:ff:ff:ff`) or an unsolicited neighbour advertisement
    /// (IPv6; to all nodes, override flag) on each interface whose subnet holds the VIP, or on
    /// every interface when none does. Returns the number of frames sent.
    pub fn announce<S: Sink>(&mut self, sink: &mut S) -> usize {
        self.refresh_vips();
        let mut sent = 0;
        for i in 0..self.vips.len() {
            sent += self.announce_vip(sink, self.vips[i]);
        }
        sent
    }

    /// Announces one round of `addrs`, in their order, as [`announce`](Self::announce) does: the
    /// burst a VRRP master sends on taking over. Addresses the engine does not answer for (not
    /// VIPs, or managed and not claimed) are skipped, so the link is never pointed at an address
    /// nobody serves. Returns the number of frames sent.
    pub fn announce_addrs<S: Sink>(&mut self, sink: &mut S, addrs: &[IpAddr]) -> usize {
        self.refresh_vips();
        let mut sent = 0;
        for &a in addrs {
            if self.owns(a) {
                sent += self.announce_vip(sink, a);
            }
        }
        sent
    }

    /// Announces `vip` on each interface whose subnet holds it, or on every interface when none does.
    fn announce_vip<S: Sink>(&mut self, sink: &mut S, vip: IpAddr) -> usize {
        let on_subnet = |ifc: &super::Interface| ifc.addrs.iter().any(|a| a.subnet().contains(vip));
        let any = self.cfg.interfaces.iter().any(on_subnet);
        let mut sent = 0;
        for ifp in 0..self.cfg.interfaces.len() {
            if any && !on_subnet(&self.cfg.interfaces[ifp]) {
                continue;
            }
            if self.announce_one(sink, ifp, vip) {
                sent += 1;
            }
        }
        self.counters.neigh_announce_sent += sent as u64;
        sent
    }

    fn announce_one<S: Sink>(&mut self, sink: &mut S, ifp: usize, vip: IpAddr) -> bool {
        let mac = self.cfg.interfaces[ifp].mac;
        match vip {
            IpAddr::V4(v) => {
                let garp = ArpRepr {
                    operation: Operation::Request,
                    source_hardware_addr: mac,
                    source_protocol_addr: v,
                    target_hardware_addr: EthernetAddress::BROADCAST,
                    target_protocol_addr: v,
                };
                self.send_raw(
                    sink,
                    ifp,
                    EthernetAddress::BROADCAST,
                    EtherType::Arp,
                    garp.buffer_len(),
                    |buf| {
                        garp.emit(&mut ArpPacket::new_unchecked(buf));
                    },
                )
            }
            IpAddr::V6(v) => {
                let na = Icmpv6Repr::NeighborAdvert {
                    flags: NdFlags::OVERRIDE,
                    target_addr: v,
                    lladdr: Some(mac),
                };
                self.send_nd(sink, ifp, multicast_mac(ALL_NODES), v, ALL_NODES, &na)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_addresses() {
        let a: Ipv6Addr = "2001:db8::1:2:3:4567".parse().unwrap();
        assert_eq!(solicited_node(a), "ff02::1:ff03:4567".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(solicited_node(a)), EthernetAddress([0x33, 0x33, 0xff, 0x03, 0x45, 0x67]));
    }
}
