//! What an operator configures: virtual services and real servers, mirroring ipvsadm's options.

use crate::addr::{Netmask, SocketText};
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp-service`).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
    /// The protocol for an IP protocol number, if it is one a service can have.
    pub const fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// The name ipvsadm prints: `TCP`, `UDP` or `SCTP`.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Address family of a firewall-mark service (`-f N` or `-f N -6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        if addr.is_ipv6() {
            Family::Inet6
        } else {
            Family::Inet
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKey {
    /// `<protocol, address, port>`; port 0 means "all ports" (persistent services only).
    Addr {
        /// Protocol.
        protocol: Protocol,
        /// Virtual IP.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// A firewall mark, with the family its packets have.
    Fwmark {
        /// The mark (> 0).
        mark: u32,
        /// The address family.
        family: Family,
    },
}

impl ServiceKey {
    /// The address family of the service.
    pub fn family(&self) -> Family {
        match *self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => family,
        }
    }
    /// True for IPv6 services.
    pub fn is_v6(&self) -> bool {
        self.family() == Family::Inet6
    }
    /// The virtual port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match *self {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }
    /// True for firewall-mark services.
    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }
}

/// Packs the key into one word (IPv4, fwmark) or three (IPv6) instead of the derived field-by-field
/// hash, which cost more than the rest of a service lookup. Equal keys pack equally.
impl std::hash::Hash for ServiceKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match *self {
            ServiceKey::Addr { protocol, addr: IpAddr::V4(a), port } => {
                h.write_u64(u32::from(a) as u64 | (port as u64) << 32 | (protocol.number() as u64) << 48);
            }
            ServiceKey::Addr { protocol, addr: IpAddr::V6(a), port } => {
                let a = u128::from(a);
                h.write_u64(a as u64);
                h.write_u64((a >> 64) as u64);
                h.write_u64(port as u64 | (protocol.number() as u64) << 16 | 1 << 62);
            }
            ServiceKey::Fwmark { mark, family } => {
                h.write_u64(mark as u64 | (family as u64) << 32 | 1 << 63);
            }
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's `-S -n` form: `-t 10.0.0.1:80`, `-u [::1]:53`, `--sctp-service …`, `-f 10 [-6]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Addr { protocol, addr, port } => {
                let flag = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                write!(f, "{flag} {}", SocketText(addr, port))
            }
            ServiceKey::Fwmark { mark, family } => {
                write!(f, "-f {mark}")?;
                if family == Family::Inet6 {
                    f.write_str(" -6")?;
                }
                Ok(())
            }
        }
    }
}

/// How packets reach a real server (`IP_VS_CONN_F_FWD_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FwdMethod {
    /// NAT (`-m`): rewrite destination on the way in and source on the way out.
    Masq,
    /// Local node: the director's own stack serves it.
    Local,
    /// IP-in-IP tunnel (`-i`).
    Tunnel,
    /// Direct routing (`-g`, ipvsadm's default): rewrite the destination MAC only.
    Route,
    /// Bypass (cache_bypass): forward to the packet's original destination.
    Bypass,
}

impl FwdMethod {
    /// The word `ipvsadm -L` prints in the Forward column.
    pub const fn list_name(self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Local => "Local",
            FwdMethod::Tunnel => "Tunnel",
            FwdMethod::Route => "Route",
            FwdMethod::Bypass => "Bypass",
        }
    }
    /// The `IP_VS_CONN_F_*` value.
    pub const fn conn_flag(self) -> u32 {
        match self {
            FwdMethod::Masq => 0,
            FwdMethod::Local => 1,
            FwdMethod::Tunnel => 2,
            FwdMethod::Route => 3,
            FwdMethod::Bypass => 4,
        }
    }
}

/// Encapsulation for tunnel real servers (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelType {
    /// Plain IP-in-IP (or IPv6-in-IPv6), the default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (needs `--tun-port`).
    Gue,
    /// GRE.
    Gre,
}

/// Checksum option of GUE/GRE tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelCsum {
    /// `--tun-nocsum` (default).
    #[default]
    None,
    /// `--tun-csum`.
    Csum,
    /// `--tun-remcsum` (GUE only).
    RemCsum,
}

/// Tunnel parameters of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TunnelConfig {
    /// Encapsulation.
    pub kind: TunnelType,
    /// UDP destination port (GUE).
    pub port: u16,
    /// Checksum option.
    pub csum: TunnelCsum,
}

/// Service flag bits (`IP_VS_SVC_F_*`).
pub mod svc_flags {
    /// Persistent service (`-p`).
    pub const PERSISTENT: u32 = 0x0001;
    /// One-packet scheduling (`-o`).
    pub const ONEPACKET: u32 = 0x0004;
    /// Scheduler flag 1: `sh-fallback` / `mh-fallback` / `flag-1`.
    pub const SCHED1: u32 = 0x0008;
    /// Scheduler flag 2: `sh-port` / `mh-port` / `flag-2`.
    pub const SCHED2: u32 = 0x0010;
    /// Scheduler flag 3: `flag-3`.
    pub const SCHED3: u32 = 0x0020;
    /// All scheduler flag bits.
    pub const SCHED_MASK: u32 = SCHED1 | SCHED2 | SCHED3;
}

/// Parses `-b` flag names for a scheduler into `SCHED*` bits. `sh-*` names need scheduler `sh`,
/// `mh-*` names need `mh`; `flag-N` works with any scheduler.
pub fn sched_flags_from_names<S: AsRef<str>>(names: &[S], scheduler: &str) -> crate::Result<u32> {
    let mut bits = 0;
    for name in names {
        let name = name.as_ref();
        let (bit, needs) = match name {
            "flag-1" => (svc_flags::SCHED1, None),
            "flag-2" => (svc_flags::SCHED2, None),
            "flag-3" => (svc_flags::SCHED3, None),
            "sh-fallback" => (svc_flags::SCHED1, Some("sh")),
            "sh-port" => (svc_flags::SCHED2, Some("sh")),
            "mh-fallback" => (svc_flags::SCHED1, Some("mh")),
            "mh-port" => (svc_flags::SCHED2, Some("mh")),
            _ => return Err(crate::Error::invalid(format!("invalid scheduler flag `{name}'"))),
        };
        if needs.is_some_and(|s| s != scheduler) {
            return Err(crate::Error::invalid(format!("incompatible scheduler flag `{name}'")));
        }
        bits |= bit;
    }
    Ok(bits)
}

/// The names ipvsadm prints for `SCHED*` bits under a scheduler (`sh-fallback,sh-port`, `flag-3`, …).
pub fn sched_flag_names(bits: u32, scheduler: &str) -> Vec<&'static str> {
    let (one, two) = match scheduler {
        "sh" => ("sh-fallback", "sh-port"),
        "mh" => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    [(svc_flags::SCHED1, one), (svc_flags::SCHED2, two), (svc_flags::SCHED3, "flag-3")]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| name)
        .collect()
}

/// Default persistence timeout in seconds (`IPVS_SVC_PERSISTENT_TIMEOUT`, 6 minutes).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Largest timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// The scheduler ipvsadm uses when `-s` is absent.
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// A virtual service as configured by `-A`/`-E`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name (`-s`).
    pub scheduler: String,
    /// Persistence timeout in seconds (`-p`), `None` when not persistent.
    pub persistent: Option<u32>,
    /// Client mask for persistence (`-M`).
    pub netmask: Netmask,
    /// Persistence engine (`--pe`), only `sip` exists.
    pub pe: Option<String>,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
    /// Scheduler flag bits (`-b`), a subset of [`svc_flags::SCHED_MASK`].
    pub sched_flags: u32,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults: `wlc`, not persistent, host netmask.
    pub fn new(key: ServiceKey) -> Self {
        ServiceConfig {
            key,
            scheduler: DEFAULT_SCHEDULER.to_owned(),
            persistent: None,
            netmask: Netmask::host(key.is_v6()),
            pe: None,
            one_packet: false,
            sched_flags: 0,
        }
    }
    /// The `IP_VS_SVC_F_*` bits.
    pub fn flags(&self) -> u32 {
        let mut f = self.sched_flags & svc_flags::SCHED_MASK;
        if self.persistent.is_some() {
            f |= svc_flags::PERSISTENT;
        }
        if self.one_packet {
            f |= svc_flags::ONEPACKET;
        }
        f
    }
}

/// A real server as configured by `-a`/`-e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestConfig {
    /// Address.
    pub addr: IpAddr,
    /// Port; `None` means "the service port" (0 for fwmark services).
    pub port: Option<u16>,
    /// Forwarding method (`-g`, `-i`, `-m`).
    pub fwd: FwdMethod,
    /// Weight (`-w`, 0..=65535 in ipvsadm; 0 quiesces).
    pub weight: i32,
    /// Upper connection threshold (`-x`, 0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = none).
    pub l_threshold: u32,
    /// Tunnel parameters (for [`FwdMethod::Tunnel`]).
    pub tunnel: TunnelConfig,
}

impl DestConfig {
    /// A real server with ipvsadm's defaults: direct routing, weight 1, no thresholds.
    pub fn new(addr: IpAddr) -> Self {
        DestConfig {
            addr,
            port: None,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: TunnelConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_flags_round_trip_and_check_the_scheduler() {
        let bits = sched_flags_from_names(&["sh-fallback", "sh-port"], "sh").unwrap();
        assert_eq!(bits, svc_flags::SCHED1 | svc_flags::SCHED2);
        assert_eq!(sched_flag_names(bits, "sh"), ["sh-fallback", "sh-port"]);
        assert_eq!(sched_flag_names(bits, "rr"), ["flag-1", "flag-2"]);
        assert_eq!(sched_flag_names(svc_flags::SCHED3, "mh"), ["flag-3"]);
        let err = sched_flags_from_names(&["mh-port"], "sh").unwrap_err();
        assert_eq!(err.to_string(), "incompatible scheduler flag `mh-port'");
        assert!(sched_flags_from_names(&["bogus"], "rr").is_err());
    }

    #[test]
    fn service_key_prints_like_ipvsadm_save() {
        let k = ServiceKey::Addr { protocol: Protocol::Udp, addr: "2001:db8::1".parse().unwrap(), port: 53 };
        assert_eq!(k.to_string(), "-u [2001:db8::1]:53");
        assert_eq!(ServiceKey::Fwmark { mark: 10, family: Family::Inet6 }.to_string(), "-f 10 -6");
        let mut c = ServiceConfig::new(ServiceKey::Fwmark { mark: 1, family: Family::Inet });
        c.persistent = Some(1800);
        assert_eq!(c.flags(), svc_flags::PERSISTENT);
    }
}
