//! Tests of the VRRP wire format, instance and sync groups: golden bytes and replays of keepalived
//! 2.2.7 captures (`fixtures/`, copied from the shared reference fixtures, described in
//! keepalived.md §3.2 and §5), synthetic-time state-machine tests and a fuzz test.

mod golden;
mod replay;
mod state;
mod sync;

use super::{Action, Instance, InstanceConfig, Received};
use crate::time::Instant;
use crate::wire::ethernet::{EtherType, Frame};
use crate::wire::vrrp::{Auth, Repr, Version};
use crate::wire::{IpProtocol, Ipv4Packet, Ipv6Packet};
use std::net::IpAddr;

pub(super) const V2_PASS: &[u8] = include_bytes!("fixtures/vrrpv2-pass-multicast.pcap");
pub(super) const V3_V4: &[u8] = include_bytes!("fixtures/vrrpv3-ipv4-multicast.pcap");
pub(super) const V2_UNICAST: &[u8] = include_bytes!("fixtures/vrrpv2-unicast-prio255.pcap");
pub(super) const V3_V6: &[u8] = include_bytes!("fixtures/vrrpv3-ipv6.pcap");
pub(super) const V2_TIEBREAK: &[u8] = include_bytes!("fixtures/vrrpv2-tiebreak.pcap");

/// One captured frame, decoded down to what the instance sees.
#[derive(Debug, Clone)]
pub(super) struct Captured {
    /// 1-based, as tshark numbers frames.
    pub number: usize,
    /// Microseconds since the first frame.
    pub time_us: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Vrrp(IpMessage),
    /// A gratuitous ARP (or any ARP): the sender protocol address.
    Arp,
    Other,
}

/// An IP datagram's facts and payload.
#[derive(Debug, Clone)]
pub(super) struct IpMessage {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub protocol: u8,
    pub ip_payload_len: usize,
    pub payload: Vec<u8>,
}

impl IpMessage {
    pub fn received(&self) -> Received<'_> {
        Received {
            src: self.src,
            dst: self.dst,
            ttl: self.ttl,
            protocol: self.protocol,
            ip_payload_len: self.ip_payload_len,
            message: &self.payload,
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A minimal pcap reader: little-endian microsecond files with Ethernet frames (what tcpdump wrote
/// for the fixtures): a 24-byte global header, then 16-byte record headers.
pub(super) fn read_pcap(file: &[u8]) -> Vec<Captured> {
    assert_eq!(le32(file, 0), 0xa1b2_c3d4, "little-endian microsecond pcap");
    assert_eq!(le32(file, 20), 1, "Ethernet link type");
    let mut at = 24;
    let mut frames = Vec::new();
    let mut first = None;
    while at + 16 <= file.len() {
        let us = u64::from(le32(file, at)) * 1_000_000 + u64::from(le32(file, at + 4));
        let len = le32(file, at + 8) as usize;
        let data = &file[at + 16..at + 16 + len];
        at += 16 + len;
        let t0 = *first.get_or_insert(us);
        frames.push(Captured { number: frames.len() + 1, time_us: us - t0, kind: decode(data) });
    }
    assert_eq!(at, file.len(), "no trailing bytes");
    frames
}

fn decode(data: &[u8]) -> Kind {
    let Ok(eth) = Frame::new_checked(data) else { return Kind::Other };
    match eth.ethertype() {
        EtherType::Arp => Kind::Arp,
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return Kind::Other };
            if !matches!(ip.protocol(), IpProtocol::Unknown(112) | IpProtocol::Ah) {
                return Kind::Other;
            }
            Kind::Vrrp(IpMessage {
                src: ip.src_addr().into(),
                dst: ip.dst_addr().into(),
                ttl: ip.ttl(),
                protocol: ip.protocol().into(),
                ip_payload_len: usize::from(ip.total_len()) - usize::from(ip.header_len()),
                payload: ip.payload().to_vec(),
            })
        }
        EtherType::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else { return Kind::Other };
            if ip.next_header() != IpProtocol::Unknown(112) {
                return Kind::Other;
            }
            Kind::Vrrp(IpMessage {
                src: ip.src_addr().into(),
                dst: ip.dst_addr().into(),
                ttl: ip.hop_limit(),
                protocol: 112,
                ip_payload_len: usize::from(ip.payload_len()),
                payload: ip.payload().to_vec(),
            })
        }
        _ => Kind::Other,
    }
}

/// The VRRP messages of a capture.
pub(super) fn vrrp_frames(file: &[u8]) -> Vec<(Captured, IpMessage)> {
    read_pcap(file)
        .into_iter()
        .filter_map(|c| match &c.kind {
            Kind::Vrrp(m) => {
                let m = m.clone();
                Some((c, m))
            }
            _ => None,
        })
        .collect()
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// `ka_v2.conf`: VI_1, VRID 51, `state MASTER`, priority 150, PASS `secret12`, two VIPs.
pub(super) fn ka_v2() -> InstanceConfig {
    let mut cfg =
        InstanceConfig::new("VI_1", 51, vec![ip("10.200.0.100"), ip("10.200.0.101")], ip("10.200.0.1"));
    cfg.initial_master = true;
    cfg.priority = 150;
    cfg.auth = Auth::pass("secret12");
    cfg
}

/// `ka_v3.conf`: VI_3, version 3, VRID 52, `state BACKUP`, priority 120, advert_int 0.5,
/// `vrrp_garp_master_delay 0` (which the lower-priority delay defaults to as well).
pub(super) fn ka_v3() -> InstanceConfig {
    let mut cfg =
        InstanceConfig::new("VI_3", 52, vec![ip("10.200.0.110"), ip("10.200.0.111")], ip("10.200.0.1"));
    cfg.version = Version::V3;
    cfg.priority = 120;
    cfg.advert_int_cs = 50;
    cfg.garp_master_delay_ms = 0;
    cfg.garp_lower_prio_delay_ms = 0;
    cfg
}

/// `ka_uc.conf`: VI_U, VRID 53, `state BACKUP`, priority 255, unicast to 10.200.0.2.
pub(super) fn ka_uc() -> InstanceConfig {
    let mut cfg = InstanceConfig::new("VI_U", 53, vec![ip("10.200.0.120")], ip("10.200.0.1"));
    cfg.priority = 255;
    cfg.unicast_peers = vec![ip("10.200.0.2")];
    cfg
}

/// `ka_v6.conf`: VI_6, VRID 55, `state MASTER`, priority 100, VIP fd00:200::100 (forces v3).
pub(super) fn ka_v6() -> InstanceConfig {
    let mut cfg = InstanceConfig::new("VI_6", 55, vec![ip("fd00:200::100")], ip("fe80::5889:80ff:feea:fada"));
    cfg.initial_master = true;
    cfg
}

/// `ka_eq.conf`: VI_EQ, VRID 56, `state BACKUP`, priority 100, VIP 10.200.0.150, from `src`.
pub(super) fn ka_eq(src: &str) -> InstanceConfig {
    InstanceConfig::new("VI_EQ", 56, vec![ip("10.200.0.150")], ip(src))
}

/// A well-formed advert from `src` for `cfg`'s router (same VIPs, interval and auth) with `priority`.
pub(super) fn advert_from(cfg: &InstanceConfig, src: &str, priority: u8) -> IpMessage {
    let repr = Repr {
        version: cfg.version,
        vrid: cfg.vrid,
        priority,
        auth: cfg.auth,
        advert_int_cs: cfg.advert_int_cs,
        addrs: cfg.vips.clone(),
    };
    message(&repr, ip(src), cfg.mcast_group)
}

pub(super) fn message(repr: &Repr, src: IpAddr, dst: IpAddr) -> IpMessage {
    let payload = repr.to_bytes(src, dst);
    IpMessage { src, dst, ttl: 255, protocol: 112, ip_payload_len: payload.len(), payload }
}

pub(super) fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub(super) fn started(cfg: InstanceConfig, now: u64) -> (Instance, Vec<Action>) {
    let mut vi = Instance::new(cfg).expect("valid test config");
    let actions = vi.start(at(now));
    (vi, actions)
}

pub(super) fn logs(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

pub(super) fn sends(actions: &[Action]) -> Vec<(IpAddr, &[u8])> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { dst, message } => Some((*dst, message.as_slice())),
            _ => None,
        })
        .collect()
}

/// The priority of every advert sent.
pub(super) fn sent_priorities(actions: &[Action]) -> Vec<u8> {
    sends(actions).iter().map(|(_, m)| m[2]).collect()
}
