//! The IP paths: client → VIP through `process_in` and the forwarding methods, NAT replies through
//! `process_out`, ICMP errors about connections, echo, and the ICMP errors the director sends.

use super::config::Egress;
use super::{DropCause, Engine, Outcome, Sink};
use crate::addr::is_unicast;
use crate::conn::{sctp, InVerdict, OutVerdict, PacketMeta, PassReason};
use crate::model::{FwdMethod, TunnelConfig, TunnelCsum, TunnelType};
use crate::time::Instant;
use crate::wire::checksum::{self, Endpoint};
use crate::wire::icmpv4::{self, DstUnreachable as DstUnreach4, Message as Msg4, TimeExceeded as TimeEx4};
use crate::wire::icmpv6::{self, DstUnreachable as DstUnreach6, Message as Msg6, TimeExceeded as TimeEx6};
use crate::wire::{
    gue, ipv4, ipv6, l4_ports, ChecksumCapabilities, Encap, Encapsulation, EthernetFrame, Icmpv4Packet,
    Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, SctpPacket,
    TcpPacket, Tunnel, UdpPacket,
};
use std::net::{IpAddr, SocketAddr};

/// TTL / hop limit of packets the director originates (`ip_default_ttl`).
const DEFAULT_TTL: u8 = 64;
/// `IPTOS_PREC_INTERNETCONTROL`: the precedence of ICMP errors.
const TOS_INTERNETCONTROL: u8 = 0xc0;
/// `IPTOS_TOS_MASK`.
const TOS_MASK: u8 = 0x1e;
/// Smallest IPv4 MTU (RFC 791).
const MIN_MTU_V4: u32 = 68;
/// Smallest IPv6 MTU (RFC 8200).
const MIN_MTU_V6: u32 = 1280;

/// A received IP packet, parsed just enough to steer it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ip<'a> {
    /// The packet, trimmed to its total length (link padding removed).
    pub pkt: &'a [u8],
    pub v6: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub proto: IpProtocol,
    /// Offset of the upper-layer header in `pkt`.
    pub l4: usize,
    pub ttl: u8,
    pub tos: u8,
    /// IPv4 DF; always true for IPv6 (routers never fragment it).
    pub df: bool,
    /// A fragment of a larger datagram.
    pub frag: bool,
}

impl<'a> Ip<'a> {
    pub(super) fn parse_v4(payload: &'a [u8]) -> Result<Ip<'a>, DropCause> {
        let p = Ipv4Packet::new_checked(payload).map_err(|_| DropCause::Malformed)?;
        if p.version() != 4 {
            return Err(DropCause::Malformed);
        }
        if !p.verify_checksum() {
            return Err(DropCause::BadChecksum);
        }
        Ok(Ip {
            pkt: &payload[..p.total_len() as usize],
            v6: false,
            src: p.src_addr().into(),
            dst: p.dst_addr().into(),
            proto: p.protocol(),
            l4: p.header_len() as usize,
            ttl: p.ttl(),
            tos: p.tos(),
            df: p.dont_frag(),
            frag: p.is_fragment(),
        })
    }

    pub(super) fn parse_v6(payload: &'a [u8]) -> Result<Ip<'a>, DropCause> {
        let p = Ipv6Packet::new_checked(payload).map_err(|_| DropCause::Malformed)?;
        if p.version() != 6 {
            return Err(DropCause::Malformed);
        }
        let ul = p.upper_layer().map_err(|_| DropCause::Malformed)?;
        Ok(Ip {
            pkt: &payload[..p.total_len()],
            v6: true,
            src: p.src_addr().into(),
            dst: p.dst_addr().into(),
            proto: ul.protocol,
            l4: ipv6::HEADER_LEN + ul.offset,
            ttl: p.hop_limit(),
            tos: p.traffic_class(),
            df: true,
            frag: ul.is_fragment(),
        })
    }

    #[inline]
    fn l4(&self) -> &'a [u8] {
        &self.pkt[self.l4..]
    }

    /// What follows the UDP header, with its offset in the packet (for persistence engines).
    fn udp_payload(&self) -> crate::pe::Payload<'a> {
        let off = self.l4 + crate::wire::udp::HEADER_LEN;
        crate::pe::Payload::new(self.pkt.get(off..).unwrap_or_default(), off)
    }
}

/// Where a quoted packet's headers are, in the ICMP error carrying it.
#[derive(Debug, Clone, Copy)]
struct Inner {
    /// Offset of the quoted IP header in the outer packet.
    ip: usize,
    /// Offset of the quoted transport header.
    l4: usize,
}

/// The packet an ICMP error quotes.
#[derive(Debug, Clone, Copy)]
struct Quote {
    at: Inner,
    proto: u8,
    src: SocketAddr,
    dst: SocketAddr,
}

/// How the outgoing packet is derived from the received one (besides the TTL).
#[derive(Debug, Clone, Copy)]
enum Xform {
    /// Unchanged.
    Route,
    /// Destination address and port (NAT, client → real server).
    Dnat(IpAddr, u16),
    /// Source address and port (NAT, real server → client).
    Snat(IpAddr, u16),
    /// An ICMP error to a NAT real server: outer destination, quoted source address and port.
    IcmpDnat(IpAddr, u16, Inner),
    /// An ICMP error from a NAT real server: outer source, quoted destination address and port.
    IcmpSnat(IpAddr, u16, Inner),
}

/// Which `fwd_*` counter a forwarded packet goes to.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Nat,
    Dr,
    Tunnel,
    Bypass,
    NatReply,
    IcmpIn,
    IcmpOut,
}

/// An ICMP error the director sends.
#[derive(Debug, Clone, Copy)]
enum IcmpErr {
    PortUnreachable,
    TimeExceeded,
    /// Fragmentation needed / packet too big, with the MTU to report.
    TooBig(u32),
    /// An IPv4 destination unreachable (type 3) or time exceeded (11) with this code and
    /// next-hop MTU, re-originated for an error about a tunnelled packet.
    Relay {
        ty: u8,
        code: u8,
        mtu: u16,
    },
}

/// Sets the source or destination address of the IP header at the start of `out` (the IPv4
/// header checksum updated incrementally) and returns the old one.
fn set_addr(out: &mut [u8], which: Endpoint, addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mut p = Ipv4Packet::new_unchecked(out);
            IpAddr::V4(match which {
                Endpoint::Source => p.rewrite_src_addr(a),
                Endpoint::Destination => p.rewrite_dst_addr(a),
            })
        }
        IpAddr::V6(a) => {
            let mut p = Ipv6Packet::new_unchecked(out);
            match which {
                Endpoint::Source => {
                    let old = p.src_addr();
                    p.set_src_addr(a);
                    IpAddr::V6(old)
                }
                Endpoint::Destination => {
                    let old = p.dst_addr();
                    p.set_dst_addr(a);
                    IpAddr::V6(old)
                }
            }
        }
    }
}

/// Rewrites the quoted packet of an ICMP error: its `which` address and port (the quoted IPv4
/// header checksum recomputed, as `ip_vs_nat_icmp` does; the quoted transport checksum is left).
fn set_quoted(out: &mut [u8], at: Inner, which: Endpoint, addr: IpAddr, port: u16) {
    match addr {
        IpAddr::V4(a) => {
            let mut p = Ipv4Packet::new_unchecked(&mut out[at.ip..]);
            match which {
                Endpoint::Source => p.set_src_addr(a),
                Endpoint::Destination => p.set_dst_addr(a),
            }
            p.fill_checksum();
        }
        IpAddr::V6(a) => {
            let mut p = Ipv6Packet::new_unchecked(&mut out[at.ip..]);
            match which {
                Endpoint::Source => p.set_src_addr(a),
                Endpoint::Destination => p.set_dst_addr(a),
            }
        }
    }
    let off = at.l4 + if which == Endpoint::Source { 0 } else { 2 };
    out[off..off + 2].copy_from_slice(&port.to_be_bytes());
}

/// Recomputes the checksum of the ICMP / ICMPv6 message at `l4` of the packet in `out`.
fn fill_icmp(out: &mut [u8], l4: usize, v6: bool) {
    if v6 {
        let p = Ipv6Packet::new_unchecked(&*out);
        let (s, d) = (p.src_addr(), p.dst_addr());
        Icmpv6Packet::new_unchecked(&mut out[l4..]).fill_checksum(&s, &d);
    } else {
        Icmpv4Packet::new_unchecked(&mut out[l4..]).fill_checksum();
    }
}

/// Writes the packet to send into `out` (exactly `ip.pkt.len()` bytes): a copy of the received
/// one, TTL / hop limit decremented when `route` (the caller checked it is above 1), rewritten as
/// `x` says with incremental checksum updates.
fn rewrite(ip: &Ip<'_>, x: Xform, route: bool, out: &mut [u8]) {
    out.copy_from_slice(ip.pkt);
    if route {
        if ip.v6 {
            Ipv6Packet::new_unchecked(&mut *out).decrement_hop_limit();
        } else {
            Ipv4Packet::new_unchecked(&mut *out).decrement_ttl();
        }
    }
    match x {
        Xform::Route => {}
        Xform::Dnat(addr, port) | Xform::Snat(addr, port) => {
            let which = if matches!(x, Xform::Dnat(..)) { Endpoint::Destination } else { Endpoint::Source };
            let old = set_addr(out, which, addr);
            // The transport header was validated when the packet was classified.
            let _ = checksum::rewrite_l4(ip.proto, &mut out[ip.l4..], which, &old, &addr, port);
        }
        Xform::IcmpDnat(addr, port, at) => {
            set_addr(out, Endpoint::Destination, addr);
            set_quoted(out, at, Endpoint::Source, addr, port);
            fill_icmp(out, ip.l4, ip.v6);
        }
        Xform::IcmpSnat(addr, port, at) => {
            set_addr(out, Endpoint::Source, addr);
            set_quoted(out, at, Endpoint::Destination, addr, port);
            fill_icmp(out, ip.l4, ip.v6);
        }
    }
}

/// The packet quoted by the ICMP error `ip`, when it is a TCP, UDP or SCTP packet whose ports
/// are present (not a non-first fragment).
fn quoted(ip: &Ip<'_>) -> Option<Quote> {
    let base = ip.l4 + icmpv4::HEADER_LEN;
    let q = ip.pkt.get(base..)?;
    let (src, dst, proto, l4) = if ip.v6 {
        let p = Ipv6Packet::new_checked_truncated(q).ok()?;
        if p.version() != 6 {
            return None;
        }
        let ul = p.upper_layer().ok()?;
        if !ul.has_header() {
            return None;
        }
        (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()), ul.protocol, ipv6::HEADER_LEN + ul.offset)
    } else {
        let p = Ipv4Packet::new_checked_truncated(q).ok()?;
        if p.version() != 4 || p.frag_offset() != 0 {
            return None;
        }
        (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()), p.protocol(), p.header_len() as usize)
    };
    if !matches!(proto, IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp) {
        return None;
    }
    let (sport, dport) = l4_ports(q.get(l4..)?).ok()?;
    Some(Quote {
        at: Inner { ip: base, l4: base + l4 },
        proto: proto.into(),
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
    })
}

impl Engine {
    pub(super) fn ipv4<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        hl: usize,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        match Ip::parse_v4(&frame[hl..]) {
            Ok(ip) => self.ip(ifp, frame, &ip, now, sink),
            Err(c) => self.drop(c),
        }
    }

    pub(super) fn ipv6<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        hl: usize,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        let ip = match Ip::parse_v6(&frame[hl..]) {
            Ok(ip) => ip,
            Err(c) => return self.drop(c),
        };
        if ip.proto == IpProtocol::Icmpv6 && !ip.frag {
            if let Some(o) = self.ndp(ifp, frame, ip.pkt, ip.l4, now, sink) {
                return o;
            }
        }
        self.ip(ifp, frame, &ip, now, sink)
    }

    fn ip<S: Sink>(&mut self, ifp: usize, frame: &[u8], ip: &Ip<'_>, now: Instant, sink: &mut S) -> Outcome {
        if self.is_vip(ip.dst) {
            return self.for_vip(ifp, frame, ip, now, sink);
        }
        if self.is_local(ip.dst) || !is_unicast(ip.dst) || self.is_subnet_broadcast(ip.dst) {
            if ip.proto == IpProtocol::Icmp && !ip.v6 && !ip.frag && self.is_local(ip.dst) {
                if let Some(o) = self.icmp_about_tunnel(sink, ifp, ip, now) {
                    return o;
                }
            }
            self.counters.to_host_own += 1;
            return self.hand_to_host(sink, self.cfg.interfaces[ifp].index, frame);
        }
        if self.is_standby(ip.dst) {
            return self.drop(DropCause::Standby);
        }
        self.transit(ifp, frame, ip, now, sink)
    }

    fn is_subnet_broadcast(&self, addr: IpAddr) -> bool {
        let IpAddr::V4(a) = addr else {
            return false;
        };
        let a = u32::from(a);
        self.cfg.interfaces.iter().flat_map(|i| &i.addrs).any(|ia| {
            let host = if ia.prefix_len >= 31 { 0 } else { u32::MAX >> ia.prefix_len };
            host != 0 && ia.subnet().contains(addr) && a & host == host
        })
    }

    /// Counts a packet a forwarding decision put on its way.
    fn count_fwd(&mut self, kind: Kind, o: Outcome) -> Outcome {
        if matches!(o, Outcome::Forwarded | Outcome::Queued) {
            let c = &mut self.counters;
            match kind {
                Kind::Nat => c.fwd_nat += 1,
                Kind::Dr => c.fwd_dr += 1,
                Kind::Tunnel => c.fwd_tunnel += 1,
                Kind::Bypass => c.fwd_bypass += 1,
                Kind::NatReply => c.fwd_nat_reply += 1,
                Kind::IcmpIn => c.fwd_icmp_in += 1,
                Kind::IcmpOut => c.fwd_icmp_out += 1,
            }
        }
        o
    }

    fn for_vip<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        ip: &Ip<'_>,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        if !is_unicast(ip.src) {
            return self.drop(DropCause::Malformed);
        }
        if ip.frag {
            return self.drop(DropCause::Fragment);
        }
        match ip.proto {
            IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp => self.lb_in(ifp, frame, ip, now, sink),
            IpProtocol::Icmp if !ip.v6 => self.icmp_to_vip(ifp, frame, ip, now, sink),
            IpProtocol::Icmpv6 if ip.v6 => self.icmp_to_vip(ifp, frame, ip, now, sink),
            _ => {
                self.counters.to_host_unsupported_protocol += 1;
                self.hand_to_host(sink, self.cfg.interfaces[ifp].index, frame)
            }
        }
    }

    /// The connection-table view of a TCP, UDP or SCTP packet (no firewall mark).
    pub(super) fn meta(&self, ip: &Ip<'_>) -> Result<PacketMeta, DropCause> {
        let l4 = ip.l4();
        let verify = self.cfg.verify_l4_checksums;
        let (sport, dport, flags, chunk, abort) = match ip.proto {
            IpProtocol::Tcp => {
                let t = TcpPacket::new_checked(l4).map_err(|_| DropCause::Malformed)?;
                if verify && !t.verify_checksum(&ip.src, &ip.dst) {
                    return Err(DropCause::BadChecksum);
                }
                (t.src_port(), t.dst_port(), t.flags().0 as u8, 0, false)
            }
            IpProtocol::Udp => {
                let u = UdpPacket::new_checked(l4).map_err(|_| DropCause::Malformed)?;
                if verify && !u.verify_checksum(&ip.src, &ip.dst) {
                    return Err(DropCause::BadChecksum);
                }
                (u.src_port(), u.dst_port(), 0, 0, false)
            }
            IpProtocol::Sctp => {
                let s = SctpPacket::new_checked(l4).map_err(|_| DropCause::Malformed)?;
                let first: u8 = s.first_chunk_type().ok_or(DropCause::Malformed)?.into();
                if verify && !s.verify_checksum() {
                    return Err(DropCause::BadChecksum);
                }
                // An ABORT bundled after a COOKIE ECHO / COOKIE ACK counts (`set_sctp_state`).
                let abort = matches!(first, sctp::chunk::COOKIE_ECHO | sctp::chunk::COOKIE_ACK) && {
                    let len = s.first_chunk_len().unwrap_or(0) as usize;
                    let next = crate::wire::sctp::HEADER_LEN + len.div_ceil(4) * 4;
                    l4.get(next) == Some(&sctp::chunk::ABORT)
                };
                (s.src_port(), s.dst_port(), 0, first, abort)
            }
            _ => return Err(DropCause::Unsupported),
        };
        Ok(PacketMeta {
            protocol: ip.proto.into(),
            saddr: ip.src,
            sport,
            daddr: ip.dst,
            dport,
            tcp_flags: flags,
            sctp_chunk: chunk,
            sctp_abort_follows: abort,
            len: ip.pkt.len() as u32,
            fwmark: 0,
        })
    }

    /// A TCP / UDP / SCTP packet to a VIP: `process_in`, then the verdict.
    fn lb_in<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        ip: &Ip<'_>,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        let mut meta = match self.meta(ip) {
            Ok(m) => m,
            Err(c) => return self.drop(c),
        };
        meta.fwmark = self.classify(meta.daddr, meta.protocol, meta.dport);
        let ifindex = self.cfg.interfaces[ifp].index;
        // UDP payloads go along for persistence engines (`--pe sip` reads the Call-ID).
        let verdict = match ip.proto {
            IpProtocol::Udp => self.ipvs.process_in_payload(&meta, ip.udp_payload(), now),
            _ => self.ipvs.process_in(&meta, now),
        };
        match verdict {
            InVerdict::Forward(f) => match f.fwd {
                FwdMethod::Masq => {
                    if f.daddr.is_ipv4() == ip.v6 {
                        return self.drop(DropCause::Unsupported);
                    }
                    if self.is_local(f.daddr) {
                        return self.nat_to_local(ifindex, frame, ip, Xform::Dnat(f.daddr, f.dport), sink);
                    }
                    self.route_out(
                        sink,
                        ifp,
                        ip,
                        f.daddr,
                        None,
                        Xform::Dnat(f.daddr, f.dport),
                        now,
                        Kind::Nat,
                    )
                }
                FwdMethod::Route => {
                    if f.daddr.is_ipv4() == ip.v6 {
                        return self.drop(DropCause::Unsupported);
                    }
                    if self.is_local(f.daddr) {
                        return self.local_dest(sink, ifindex, frame);
                    }
                    self.route_out(sink, ifp, ip, f.daddr, Some(f.daddr), Xform::Route, now, Kind::Dr)
                }
                FwdMethod::Tunnel => self.tunnel(sink, ifp, frame, ip, f.daddr, f.tunnel, now),
                FwdMethod::Local => self.local_dest(sink, ifindex, frame),
                FwdMethod::Bypass => {
                    self.route_out(sink, ifp, ip, ip.dst, None, Xform::Route, now, Kind::Bypass)
                }
            },
            InVerdict::Pass(r) => {
                let c = &mut self.counters;
                match r {
                    PassReason::UnsupportedProtocol => c.to_host_unsupported_protocol += 1,
                    PassReason::NoService => c.to_host_no_service += 1,
                    PassReason::NotSchedulable => c.to_host_not_schedulable += 1,
                    PassReason::FtpData => c.to_host_ftp_data += 1,
                    PassReason::FtpService => c.to_host_ftp_service += 1,
                }
                self.hand_to_host(sink, ifindex, frame)
            }
            InVerdict::Drop(r) => self.drop(DropCause::Ipvs(r)),
            InVerdict::Reject(r) => {
                self.icmp_error(sink, ifp, ip, IcmpErr::PortUnreachable, now);
                self.drop(DropCause::Rejected(r))
            }
        }
    }

    fn local_dest<S: Sink>(&mut self, sink: &mut S, ifindex: u32, frame: &[u8]) -> Outcome {
        self.counters.to_host_local_dest += 1;
        self.hand_to_host(sink, ifindex, frame)
    }

    /// NAT to a real server that is the director itself: rewritten, then handed to the host.
    fn nat_to_local<S: Sink>(
        &mut self,
        ifindex: u32,
        frame: &[u8],
        ip: &Ip<'_>,
        x: Xform,
        sink: &mut S,
    ) -> Outcome {
        let hl = EthernetFrame::new_unchecked(frame).header_len();
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(&frame[..hl]);
        buf.resize(hl + ip.pkt.len(), 0);
        rewrite(ip, x, false, &mut buf[hl..]);
        self.counters.to_host_local_dest += 1;
        let o = self.hand_to_host(sink, ifindex, &buf);
        self.scratch = buf;
        o
    }

    /// Forwards `ip` towards `dst` (next hop `nexthop`, else by the routes) rewritten as `x`:
    /// TTL check (ICMP time exceeded), path MTU check (ICMP fragmentation needed / packet too
    /// big, or IPv4 fragmentation without DF), neighbour resolution, send.
    #[allow(clippy::too_many_arguments)]
    fn route_out<S: Sink>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        ip: &Ip<'_>,
        dst: IpAddr,
        nexthop: Option<IpAddr>,
        x: Xform,
        now: Instant,
        kind: Kind,
    ) -> Outcome {
        if ip.ttl <= 1 {
            self.icmp_error(sink, ifp, ip, IcmpErr::TimeExceeded, now);
            return self.drop(DropCause::TtlExceeded);
        }
        let Some(eg) = self.egress(dst, nexthop) else {
            return self.drop(DropCause::NoRoute);
        };
        let len = ip.pkt.len();
        if len as u32 > eg.mtu {
            if ip.df {
                self.icmp_error(sink, ifp, ip, IcmpErr::TooBig(eg.mtu), now);
                return self.drop(DropCause::TooBig);
            }
            if ip.l4 != ipv4::HEADER_LEN {
                // Options would have to be split per RFC 791; not worth it for a balancer.
                return self.drop(DropCause::TooBig);
            }
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            buf.resize(len, 0);
            rewrite(ip, x, true, &mut buf);
            let o = self.send_fragments(sink, &eg, &buf, now);
            self.scratch = buf;
            return self.count_fwd(kind, o);
        }
        let ip = *ip;
        let o = self.send_ip(sink, &eg, len, now, |out| rewrite(&ip, x, true, out));
        self.count_fwd(kind, o)
    }

    /// Sends the complete IPv4 packet `pkt` (20-byte header, DF clear, not a fragment) in
    /// fragments that fit `eg.mtu`.
    fn send_fragments<S: Sink>(&mut self, sink: &mut S, eg: &Egress, pkt: &[u8], now: Instant) -> Outcome {
        let hl = ipv4::HEADER_LEN;
        let max = (eg.mtu as usize).saturating_sub(hl) / 8 * 8;
        if max == 0 || pkt.len() <= hl {
            return self.drop(DropCause::TooBig);
        }
        let data = &pkt[hl..];
        let mut result = Outcome::Forwarded;
        let mut off = 0;
        while off < data.len() {
            let n = max.min(data.len() - off);
            let more = off + n < data.len();
            let chunk = &data[off..off + n];
            let o = self.send_ip(sink, eg, hl + n, now, |out| {
                out[..hl].copy_from_slice(&pkt[..hl]);
                out[hl..].copy_from_slice(chunk);
                let mut p = Ipv4Packet::new_unchecked(out);
                p.set_total_len((hl + n) as u16);
                p.set_more_frags(more);
                p.set_frag_offset(off as u16);
                p.fill_checksum();
            });
            match o {
                Outcome::Dropped(_) => result = o,
                Outcome::Queued if result == Outcome::Forwarded => result = o,
                _ => {}
            }
            if matches!(o, Outcome::Forwarded | Outcome::Queued) {
                self.counters.tx_fragments += 1;
            }
            off += n;
        }
        result
    }

    /// The tunnel method (`ip_vs_tunnel_xmit*`): an outer IPv4/IPv6 header to the real server
    /// (families may differ), then nothing (IPIP: protocol 4 / 41 by the inner version), UDP and
    /// GUE (`--tun-type gue`), or GRE (`--tun-type gre`); see [`crate::wire::tunnel`]. The inner
    /// packet only loses one TTL; the outer header comes from the route to the real server
    /// (source address) and the inner packet (TTL, DSCP/ECN, DF). The tunnel MTU is the route MTU
    /// minus the whole overhead, and a packet over it gets the ICMP error reporting that MTU.
    #[allow(clippy::too_many_arguments)]
    fn tunnel<S: Sink>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        frame: &[u8],
        ip: &Ip<'_>,
        rs: IpAddr,
        tun: TunnelConfig,
        now: Instant,
    ) -> Outcome {
        if self.is_local(rs) {
            return self.local_dest(sink, self.cfg.interfaces[ifp].index, frame);
        }
        if ip.ttl <= 1 {
            self.icmp_error(sink, ifp, ip, IcmpErr::TimeExceeded, now);
            return self.drop(DropCause::TtlExceeded);
        }
        let Some(eg) = self.egress(rs, None) else {
            return self.drop(DropCause::NoRoute);
        };
        let Some(src) = self.source_for(&eg).filter(|s| s.is_ipv4() == rs.is_ipv4()) else {
            return self.drop(DropCause::NoRoute);
        };
        let encapsulation = match tun.kind {
            TunnelType::Ipip => Encapsulation::Ipip,
            // `--tun-remcsum` sends what `--tun-csum` does: the remote checksum offload option
            // is only added for locally generated CHECKSUM_PARTIAL packets.
            TunnelType::Gue => Encapsulation::Gue {
                src_port: gue::flow_source_port(ip.pkt),
                dst_port: tun.port,
                checksum: tun.csum != TunnelCsum::None,
            },
            TunnelType::Gre => Encapsulation::Gre { checksum: tun.csum == TunnelCsum::Csum },
        };
        let mut t = Tunnel {
            outer: Encap { src_addr: src, dst_addr: rs, hop_limit: ip.ttl - 1, ident: 0 },
            encapsulation,
        };
        let ohl = t.header_len();
        let total = ohl + ip.pkt.len();
        if total as u32 > eg.mtu {
            let tmtu = eg.mtu.saturating_sub(ohl as u32);
            if ip.v6 {
                if tmtu >= MIN_MTU_V6 {
                    self.icmp_error(sink, ifp, ip, IcmpErr::TooBig(tmtu), now);
                }
                return self.drop(DropCause::TooBig);
            }
            if ip.df {
                if tmtu >= MIN_MTU_V4 {
                    self.icmp_error(sink, ifp, ip, IcmpErr::TooBig(tmtu), now);
                }
                return self.drop(DropCause::TooBig);
            }
            if !rs.is_ipv4() {
                return self.drop(DropCause::TooBig);
            }
        }
        if t.check(ip.pkt).is_err() {
            // Only a packet too long for the outer header gets here.
            return self.drop(DropCause::TooBig);
        }
        if rs.is_ipv4() {
            t.outer.ident = self.next_ident();
        }
        // The checks above are what `emit` can fail on.
        let fill = |out: &mut [u8], ip: &Ip<'_>| {
            rewrite(ip, Xform::Route, true, &mut out[ohl..]);
            let _ = t.emit(out);
        };
        if total as u32 > eg.mtu {
            // Inner IPv4 without DF: the outer header copied DF = 0, so the outer packet may be
            // fragmented on the way, starting here (UDP and GRE checksums cover the whole).
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            buf.resize(total, 0);
            fill(&mut buf, ip);
            let o = self.send_fragments(sink, &eg, &buf, now);
            self.scratch = buf;
            return self.count_fwd(Kind::Tunnel, o);
        }
        let ip = *ip;
        let o = self.send_ip(sink, &eg, total, now, |out| fill(out, &ip));
        self.count_fwd(Kind::Tunnel, o)
    }

    /// An ICMP error to the director about a packet it tunnelled to a real server
    /// (`ip_vs_in_icmp`'s tunnel case, IPv4 outer and inner as there): the quoted IPIP, GUE or
    /// GRE packet is taken apart, and when the client packet inside belongs to a tunnel
    /// connection to that real server with that encapsulation (the GUE port included), the
    /// error is re-originated to the client with the same type and code, quoting the client's
    /// packet, and the original is consumed. Fragmentation needed reports the smaller of the
    /// route MTU and the reported one (Linux updates the route's PMTU with it first), less the
    /// tunnel overhead when that leaves more than 68. `None`: not such an error.
    fn icmp_about_tunnel<S: Sink>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        ip: &Ip<'_>,
        now: Instant,
    ) -> Option<Outcome> {
        let ty = self.icmp_type(ip).ok()?;
        if !matches!(Msg4::from(ty), Msg4::DstUnreachable | Msg4::TimeExceeded) {
            return None;
        }
        let icmp = Icmpv4Packet::new_unchecked(ip.l4());
        let (code, reported) = (icmp.msg_code(), icmp.next_hop_mtu());
        // The quoted packet: our outer header, then the encapsulation, then the client's packet.
        let q = ip.pkt.get(ip.l4 + icmpv4::HEADER_LEN..)?;
        let outer = Ipv4Packet::new_checked_truncated(q).ok()?;
        if outer.version() != 4 || outer.frag_offset() != 0 || !self.is_local(outer.src_addr().into()) {
            return None;
        }
        let rs = IpAddr::V4(outer.dst_addr());
        let ohl = outer.header_len() as usize;
        let rest = q.get(ohl..)?;
        let (kind, port, enc_len) = match outer.protocol() {
            IpProtocol::IpIp => (TunnelType::Ipip, 0, 0),
            IpProtocol::Udp => {
                let (_, dport) = l4_ports(rest).ok()?;
                let g = gue::Packet::new_checked(rest.get(crate::wire::udp::HEADER_LEN..)?).ok()?;
                gue::Repr::parse(&g).ok().filter(|r| r.protocol == IpProtocol::IpIp)?;
                (TunnelType::Gue, dport, crate::wire::udp::HEADER_LEN + g.header_len())
            }
            IpProtocol::Gre => {
                // The quote is cut short, so the GRE checksum cannot be checked.
                let g = crate::wire::gre::Packet::new_checked(rest).ok()?;
                if g.version() != 0 || g.protocol() != crate::wire::EtherType::Ipv4 {
                    return None;
                }
                (TunnelType::Gre, 0, g.header_len())
            }
            _ => return None,
        };
        let inner = rest.get(enc_len..)?;
        let p = Ipv4Packet::new_checked_truncated(inner).ok()?;
        if p.version() != 4 || p.frag_offset() != 0 {
            return None;
        }
        let proto = p.protocol();
        if !matches!(proto, IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp) {
            return None;
        }
        let l4 = p.header_len() as usize;
        let (sport, dport) = l4_ports(inner.get(l4..)?).ok()?;
        let (src, dst) = (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()));
        let meta = PacketMeta::new(proto.into(), SocketAddr::new(src, sport), SocketAddr::new(dst, dport));
        let c = self.ipvs.lookup_conn(&meta).and_then(|id| self.ipvs.connection(id, now))?;
        let tun = self.ipvs.dest(c.dest).map(|d| d.tunnel)?;
        if c.fwd != FwdMethod::Tunnel
            || c.daddr != rs
            || tun.kind != kind
            || (kind == TunnelType::Gue && tun.port != port)
        {
            return None;
        }
        let client = Ip {
            pkt: inner,
            v6: false,
            src,
            dst,
            proto,
            l4,
            ttl: p.ttl(),
            tos: p.tos(),
            df: p.dont_frag(),
            frag: false,
        };
        let mut mtu = 0;
        if Msg4::from(ty) == Msg4::DstUnreachable && DstUnreach4::from(code) == DstUnreach4::FragRequired {
            let route = self.egress(rs, None).map_or(u32::from(reported), |e| e.mtu);
            let pmtu = if u32::from(reported) >= MIN_MTU_V4 { route.min(u32::from(reported)) } else { route };
            let overhead = (ohl + enc_len) as u32;
            let m = if pmtu > MIN_MTU_V4 + overhead { pmtu - overhead } else { pmtu };
            mtu = m.min(u32::from(u16::MAX)) as u16;
        }
        if self.icmp_error(sink, ifp, &client, IcmpErr::Relay { ty, code, mtu }, now) {
            self.counters.fwd_icmp_tunnel += 1;
            Some(Outcome::Forwarded)
        } else {
            Some(self.drop(DropCause::Unsupported))
        }
    }

    /// Packets to neither a VIP nor us: NAT replies from real servers, ICMP errors from them, or
    /// transit traffic the director does not route.
    fn transit<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        ip: &Ip<'_>,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        if !is_unicast(ip.src) {
            return self.drop(DropCause::Malformed);
        }
        if ip.frag {
            if self.cfg.pass_transit {
                return self.transit_other(ifp, frame, sink);
            }
            return self.drop(DropCause::Fragment);
        }
        match ip.proto {
            IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp => {
                let meta = match self.meta(ip) {
                    Ok(m) => m,
                    Err(c) => return self.drop(c),
                };
                // UDP payloads go along: a `--pe sip` server may start a call itself.
                let verdict = match ip.proto {
                    IpProtocol::Udp => self.ipvs.process_out_payload(&meta, ip.udp_payload(), now),
                    _ => self.ipvs.process_out(&meta, now),
                };
                match verdict {
                    OutVerdict::Masq { vaddr, vport, .. } => {
                        if vaddr.is_ipv4() == ip.v6 {
                            return self.drop(DropCause::Unsupported);
                        }
                        let x = Xform::Snat(vaddr, vport);
                        self.route_out(sink, ifp, ip, ip.dst, None, x, now, Kind::NatReply)
                    }
                    OutVerdict::Pass => self.transit_other(ifp, frame, sink),
                }
            }
            IpProtocol::Icmp | IpProtocol::Icmpv6 => match self.icmp_from_real(ifp, ip, now, sink) {
                Some(o) => o,
                None => self.transit_other(ifp, frame, sink),
            },
            _ => self.transit_other(ifp, frame, sink),
        }
    }

    fn transit_other<S: Sink>(&mut self, ifp: usize, frame: &[u8], sink: &mut S) -> Outcome {
        if self.cfg.pass_transit {
            self.counters.to_host_transit += 1;
            self.hand_to_host(sink, self.cfg.interfaces[ifp].index, frame)
        } else {
            self.drop(DropCause::Transit)
        }
    }

    /// Checks an ICMP / ICMPv6 message's length and checksum; its type when good.
    fn icmp_type(&self, ip: &Ip<'_>) -> Result<u8, DropCause> {
        let l4 = ip.l4();
        if ip.v6 {
            let (IpAddr::V6(s), IpAddr::V6(d)) = (ip.src, ip.dst) else {
                return Err(DropCause::Malformed);
            };
            let p = Icmpv6Packet::new_checked(l4).map_err(|_| DropCause::Malformed)?;
            if !p.verify_checksum(&s, &d) {
                return Err(DropCause::BadChecksum);
            }
            Ok(p.msg_type().into())
        } else {
            let p = Icmpv4Packet::new_checked(l4).map_err(|_| DropCause::Malformed)?;
            if !p.verify_checksum() {
                return Err(DropCause::BadChecksum);
            }
            Ok(p.msg_type().into())
        }
    }

    /// Whether an ICMP type is one of the errors IPVS relays (`ip_vs_in_icmp`: destination
    /// unreachable, source quench, time exceeded; IPv6: unreachable, packet too big, time
    /// exceeded).
    fn relayed_error(v6: bool, ty: u8) -> bool {
        if v6 {
            matches!(Msg6::from(ty), Msg6::DstUnreachable | Msg6::PktTooBig | Msg6::TimeExceeded)
        } else {
            matches!(Msg4::from(ty), Msg4::DstUnreachable | Msg4::SourceQuench | Msg4::TimeExceeded)
        }
    }

    /// ICMP to a VIP: echo requests are answered, errors about a connection go to its real
    /// server, the rest goes to the host.
    fn icmp_to_vip<S: Sink>(
        &mut self,
        ifp: usize,
        frame: &[u8],
        ip: &Ip<'_>,
        now: Instant,
        sink: &mut S,
    ) -> Outcome {
        let ty = match self.icmp_type(ip) {
            Ok(t) => t,
            Err(c) => return self.drop(c),
        };
        let ifindex = self.cfg.interfaces[ifp].index;
        let echo =
            if ip.v6 { Msg6::from(ty) == Msg6::EchoRequest } else { Msg4::from(ty) == Msg4::EchoRequest };
        if echo && self.cfg.answer_echo {
            // Linux IPVS has no ICMP handler: echo to a VIP is answered by the director's local
            // stack, which owns the VIP there. Here the engine owns the VIP, so it answers.
            return self.echo_reply(sink, ip, now);
        }
        if !Self::relayed_error(ip.v6, ty) {
            self.counters.to_host_unsupported_protocol += 1;
            return self.hand_to_host(sink, ifindex, frame);
        }
        // The quote is a packet the VIP side sent to the client; its reverse is the client's.
        let Some(q) = quoted(ip) else {
            self.counters.to_host_icmp_no_conn += 1;
            return self.hand_to_host(sink, ifindex, frame);
        };
        let meta = PacketMeta::new(q.proto, q.dst, q.src);
        let conn = self.ipvs.lookup_conn(&meta).and_then(|id| self.ipvs.connection(id, now));
        let Some(c) = conn else {
            self.counters.to_host_icmp_no_conn += 1;
            return self.hand_to_host(sink, ifindex, frame);
        };
        let family_ok = c.daddr.is_ipv4() != ip.v6;
        match c.fwd {
            FwdMethod::Masq if family_ok => {
                let x = Xform::IcmpDnat(c.daddr, c.dport, q.at);
                self.route_out(sink, ifp, ip, c.daddr, None, x, now, Kind::IcmpIn)
            }
            FwdMethod::Route if family_ok => {
                self.route_out(sink, ifp, ip, c.daddr, Some(c.daddr), Xform::Route, now, Kind::IcmpIn)
            }
            FwdMethod::Tunnel => {
                let tun = self.ipvs.dest(c.dest).map(|d| d.tunnel).unwrap_or_default();
                self.tunnel(sink, ifp, frame, ip, c.daddr, tun, now)
            }
            FwdMethod::Local | FwdMethod::Bypass => self.local_dest(sink, ifindex, frame),
            FwdMethod::Masq | FwdMethod::Route => self.drop(DropCause::Unsupported),
        }
    }

    /// An ICMP error from a NAT real server about a client's packet: translated to come from the
    /// VIP (`ip_vs_out_icmp`). `None` when it is not one.
    ///
    /// The connection is found with the read-only [`crate::Ipvs::lookup_conn_out`], as the
    /// kernel's `conn_out_get`: an ICMP error changes no connection state and counts no packet.
    fn icmp_from_real<S: Sink>(
        &mut self,
        ifp: usize,
        ip: &Ip<'_>,
        now: Instant,
        sink: &mut S,
    ) -> Option<Outcome> {
        let ty = match self.icmp_type(ip) {
            Ok(t) => t,
            Err(c) => return Some(self.drop(c)),
        };
        if !Self::relayed_error(ip.v6, ty) {
            return None;
        }
        // The quote is the client's packet as the real server got it; its reverse is a reply.
        let q = quoted(ip)?;
        let meta = PacketMeta::new(q.proto, q.dst, q.src);
        let c = self.ipvs.lookup_conn_out(&meta).and_then(|id| self.ipvs.connection(id, now))?;
        if c.template || c.fwd != FwdMethod::Masq || c.vaddr.is_ipv4() == ip.v6 {
            return None;
        }
        let x = Xform::IcmpSnat(c.vaddr, c.vport, q.at);
        Some(self.route_out(sink, ifp, ip, ip.dst, None, x, now, Kind::IcmpOut))
    }

    /// Answers an echo request to a VIP (checked by the caller) from the VIP.
    fn echo_reply<S: Sink>(&mut self, sink: &mut S, ip: &Ip<'_>, now: Instant) -> Outcome {
        let Some(eg) = self.egress(ip.src, None) else {
            return self.drop(DropCause::NoRoute);
        };
        let l4 = ip.l4();
        let o = match (ip.src, ip.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let p = Icmpv4Packet::new_unchecked(l4);
                let echo =
                    Icmpv4Repr::EchoReply { ident: p.echo_ident(), seq_no: p.echo_seq_no(), data: p.data() };
                let hdr = Ipv4Repr {
                    src_addr: dst,
                    dst_addr: src,
                    protocol: IpProtocol::Icmp,
                    payload_len: echo.buffer_len(),
                    ttl: DEFAULT_TTL,
                    tos: ip.tos,
                    ident: self.next_ident(),
                    dont_frag: false,
                    more_frags: false,
                    frag_offset: 0,
                };
                let len = hdr.buffer_len() + echo.buffer_len();
                if len as u32 > eg.mtu {
                    return self.drop(DropCause::TooBig);
                }
                self.send_ip(sink, &eg, len, now, |out| {
                    let caps = ChecksumCapabilities::default();
                    let (h, rest) = out.split_at_mut(hdr.buffer_len());
                    hdr.emit(&mut Ipv4Packet::new_unchecked(h), &caps);
                    echo.emit(&mut Icmpv4Packet::new_unchecked(rest), &caps);
                })
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let p = Icmpv6Packet::new_unchecked(l4);
                let echo =
                    Icmpv6Repr::EchoReply { ident: p.echo_ident(), seq_no: p.echo_seq_no(), data: p.data() };
                let hdr = Ipv6Repr {
                    src_addr: dst,
                    dst_addr: src,
                    next_header: IpProtocol::Icmpv6,
                    payload_len: echo.buffer_len(),
                    hop_limit: DEFAULT_TTL,
                    traffic_class: ip.tos,
                    flow_label: 0,
                };
                let len = hdr.buffer_len() + echo.buffer_len();
                if len as u32 > eg.mtu {
                    return self.drop(DropCause::TooBig);
                }
                self.send_ip(sink, &eg, len, now, |out| {
                    let (h, rest) = out.split_at_mut(hdr.buffer_len());
                    hdr.emit(&mut Ipv6Packet::new_unchecked(h));
                    echo.emit(
                        &mut Icmpv6Packet::new_unchecked(rest),
                        &dst,
                        &src,
                        &ChecksumCapabilities::default(),
                    );
                })
            }
            _ => return self.drop(DropCause::Malformed),
        };
        match o {
            Outcome::Forwarded | Outcome::Queued => {
                self.counters.answered_echo += 1;
                Outcome::Answered
            }
            other => other,
        }
    }

    /// Whether the director may answer `ip` with an ICMP error (RFC 1122 §3.2.2, RFC 4443 §2.4):
    /// not about an ICMP error, nor to a source that is not a unicast host elsewhere.
    fn may_send_error(&self, ip: &Ip<'_>) -> bool {
        if !is_unicast(ip.src) || self.is_local(ip.src) || self.owns(ip.src) {
            return false;
        }
        let ty = ip.pkt.get(ip.l4).copied();
        match ip.proto {
            IpProtocol::Icmp if !ip.v6 => ty.is_some_and(|t| !Msg4::from(t).is_error()),
            IpProtocol::Icmpv6 if ip.v6 => ty.is_some_and(|t| !Msg6::from(t).is_error()),
            _ => true,
        }
    }

    /// Sends an ICMP / ICMPv6 error about `ip` (as received) to its source. The source is the
    /// packet's destination when that is a VIP or ours (as Linux answers for local addresses),
    /// else our address on the arrival interface. The quote is cut so the error fits 576 bytes
    /// (IPv4) or 1280 (IPv6).
    fn icmp_error<S: Sink>(
        &mut self,
        sink: &mut S,
        ifp: usize,
        ip: &Ip<'_>,
        kind: IcmpErr,
        now: Instant,
    ) -> bool {
        if !self.may_send_error(ip) {
            return false;
        }
        let from = if self.is_vip(ip.dst) || self.is_local(ip.dst) {
            Some(ip.dst)
        } else {
            self.iface_src(ifp, ip.src).filter(|a| a.is_ipv4() != ip.v6)
        };
        let Some(from) = from else {
            return false;
        };
        let Some(eg) = self.egress(ip.src, None) else {
            return false;
        };
        let o = match (from, ip.src) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let original = &ip.pkt[..ip.pkt.len().min(icmpv4::MAX_ERROR_QUOTE)];
                let msg = match kind {
                    IcmpErr::PortUnreachable => Icmpv4Repr::DstUnreachable {
                        reason: DstUnreach4::PortUnreachable,
                        next_hop_mtu: 0,
                        original,
                    },
                    IcmpErr::TimeExceeded => {
                        Icmpv4Repr::TimeExceeded { reason: TimeEx4::TtlExpired, original }
                    }
                    IcmpErr::TooBig(mtu) => Icmpv4Repr::DstUnreachable {
                        reason: DstUnreach4::FragRequired,
                        next_hop_mtu: mtu.min(u16::MAX as u32) as u16,
                        original,
                    },
                    IcmpErr::Relay { ty: 11, code, .. } => {
                        Icmpv4Repr::TimeExceeded { reason: TimeEx4::from(code), original }
                    }
                    IcmpErr::Relay { code, mtu, .. } => Icmpv4Repr::DstUnreachable {
                        reason: DstUnreach4::from(code),
                        next_hop_mtu: mtu,
                        original,
                    },
                };
                let hdr = Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: IpProtocol::Icmp,
                    payload_len: msg.buffer_len(),
                    ttl: DEFAULT_TTL,
                    tos: (ip.tos & TOS_MASK) | TOS_INTERNETCONTROL,
                    ident: self.next_ident(),
                    dont_frag: false,
                    more_frags: false,
                    frag_offset: 0,
                };
                let len = hdr.buffer_len() + msg.buffer_len();
                self.send_ip(sink, &eg, len, now, |out| {
                    let caps = ChecksumCapabilities::default();
                    let (h, rest) = out.split_at_mut(hdr.buffer_len());
                    hdr.emit(&mut Ipv4Packet::new_unchecked(h), &caps);
                    msg.emit(&mut Icmpv4Packet::new_unchecked(rest), &caps);
                })
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let original = &ip.pkt[..ip.pkt.len().min(icmpv6::MAX_ERROR_QUOTE)];
                let msg = match kind {
                    IcmpErr::PortUnreachable => {
                        Icmpv6Repr::DstUnreachable { reason: DstUnreach6::PortUnreachable, original }
                    }
                    IcmpErr::TimeExceeded => {
                        Icmpv6Repr::TimeExceeded { reason: TimeEx6::HopLimitExceeded, original }
                    }
                    IcmpErr::TooBig(mtu) => Icmpv6Repr::PktTooBig { mtu, original },
                    IcmpErr::Relay { .. } => return false,
                };
                let hdr = Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Icmpv6,
                    payload_len: msg.buffer_len(),
                    hop_limit: DEFAULT_TTL,
                    traffic_class: 0,
                    flow_label: 0,
                };
                let len = hdr.buffer_len() + msg.buffer_len();
                self.send_ip(sink, &eg, len, now, |out| {
                    let (h, rest) = out.split_at_mut(hdr.buffer_len());
                    hdr.emit(&mut Ipv6Packet::new_unchecked(h));
                    msg.emit(
                        &mut Icmpv6Packet::new_unchecked(rest),
                        &src,
                        &dst,
                        &ChecksumCapabilities::default(),
                    );
                })
            }
            _ => return false,
        };
        let sent = matches!(o, Outcome::Forwarded | Outcome::Queued);
        if sent {
            let c = &mut self.counters;
            match kind {
                IcmpErr::PortUnreachable => c.icmp_port_unreachable_sent += 1,
                IcmpErr::TimeExceeded => c.icmp_time_exceeded_sent += 1,
                IcmpErr::TooBig(_) => c.icmp_too_big_sent += 1,
                // Counted as the verdict of the error it answers (`fwd_icmp_tunnel`).
                IcmpErr::Relay { .. } => {}
            }
        }
        sent
    }
}
