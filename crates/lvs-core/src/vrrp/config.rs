//! The configuration of one VRRP instance (keepalived's `vrrp_instance` block), its defaults and
//! keepalived's consistency checks.

use crate::error::Error;
use crate::wire::vrrp::{Auth, Version, MAX_ADDRS, MAX_V3_ADVER_INT_CS, MCAST_V4, MCAST_V6};
use std::net::IpAddr;

/// One VRRP instance. [`InstanceConfig::new`] gives keepalived 2.2.7's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// The instance name (`vrrp_instance NAME`), the prefix of every log line.
    pub name: String,
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// `version`: 2 (IPv4 only) or 3.
    pub version: Version,
    /// `priority`, 1..=255 (255 = address owner).
    pub priority: u8,
    /// `advert_int` in centiseconds (v2: whole seconds, 100..=25500; v3: 1..=4095).
    pub advert_int_cs: u16,
    /// `state MASTER`: with priority 255, become master at once instead of waiting as backup.
    pub initial_master: bool,
    /// `nopreempt`: never take over from a lower-priority master.
    pub nopreempt: bool,
    /// `preempt_delay` in milliseconds: how long a lower-priority master is tolerated.
    pub preempt_delay_ms: u64,
    /// v2 authentication (`auth_type PASS` + `auth_pass`). AH is not supported.
    pub auth: Auth,
    /// `virtual_ipaddress`: the addresses advertised and claimed, all of one family (at most 255).
    pub vips: Vec<IpAddr>,
    /// `unicast_peer`: send adverts to each of these instead of multicasting.
    pub unicast_peers: Vec<IpAddr>,
    /// Our advert source (`mcast_src_ip`/`unicast_src_ip` or the interface address); equal-priority
    /// ties are broken on it.
    pub src: IpAddr,
    /// The multicast group: 224.0.0.18 or ff02::12.
    pub mcast_group: IpAddr,
    /// `lower_prio_no_advert`: a master does not answer a lower-priority advert with its own.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: a master sends one advert before yielding to a higher priority.
    pub higher_prio_send_advert: bool,
    /// `down_timer_adverts`: adverts missed before the master is declared down (1..=100).
    pub down_timer_adverts: u8,
    /// `garp_master_delay` (ms): the second gratuitous ARP burst after becoming master; 0 = none.
    pub garp_master_delay_ms: u64,
    /// `garp_master_repeat`: rounds per burst on becoming master.
    pub garp_master_repeat: u32,
    /// `garp_lower_prio_delay` (ms): the second burst after a lower-priority advert; 0 = none.
    pub garp_lower_prio_delay_ms: u64,
    /// `garp_lower_prio_repeat`: rounds per burst after a lower-priority advert; 0 = no bursts.
    pub garp_lower_prio_repeat: u32,
    /// `garp_master_refresh` (ms): while master, re-announce this often; 0 = never.
    pub garp_master_refresh_ms: u64,
    /// `garp_master_refresh_repeat`: rounds per refresh.
    pub garp_master_refresh_repeat: u32,
    /// `skip_check_adv_addr`: a backup skips the VIP check for adverts from the current master.
    pub skip_check_adv_addr: bool,
    /// `check_unicast_src`: drop unicast adverts whose source is not a configured peer.
    pub check_unicast_src: bool,
}

impl InstanceConfig {
    /// An instance with keepalived's defaults: priority 100, advert_int 1 s, preemption on, no
    /// authentication, multicast, 3 down-timer adverts, GARP bursts of 5 rounds repeated after
    /// 5 s. The version is 3 when `src` or any VIP is IPv6 (keepalived forces it), else 2.
    ///
    /// ```
    /// use lvs_core::vrrp::InstanceConfig;
    /// let cfg = InstanceConfig::new("VI_1", 51, vec!["10.200.0.100".parse().unwrap()], "10.200.0.1".parse().unwrap());
    /// assert_eq!((cfg.priority, cfg.advert_int_cs, cfg.mcast_group.to_string().as_str()), (100, 100, "224.0.0.18"));
    /// assert!(cfg.validate().is_ok());
    /// ```
    pub fn new(name: impl Into<String>, vrid: u8, vips: Vec<IpAddr>, src: IpAddr) -> Self {
        let v6 = src.is_ipv6() || vips.iter().any(IpAddr::is_ipv6);
        InstanceConfig {
            name: name.into(),
            vrid,
            version: if v6 { Version::V3 } else { Version::V2 },
            priority: 100,
            advert_int_cs: 100,
            initial_master: false,
            nopreempt: false,
            preempt_delay_ms: 0,
            auth: Auth::None,
            vips,
            unicast_peers: Vec::new(),
            src,
            mcast_group: if src.is_ipv6() { IpAddr::V6(MCAST_V6) } else { IpAddr::V4(MCAST_V4) },
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
            garp_master_delay_ms: 5000,
            garp_master_repeat: 5,
            garp_lower_prio_delay_ms: 5000,
            garp_lower_prio_repeat: 5,
            garp_master_refresh_ms: 0,
            garp_master_refresh_repeat: 1,
            skip_check_adv_addr: false,
            check_unicast_src: false,
        }
    }

    /// Checks what keepalived refuses (the message names the instance and the problem):
    /// VRID and priority ranges, the interval for the version, address families, the VIP count,
    /// and unsupported AH authentication.
    ///
    /// ```
    /// use lvs_core::vrrp::InstanceConfig;
    /// let mut cfg = InstanceConfig::new("VI_1", 51, vec!["10.200.0.100".parse().unwrap()], "10.200.0.1".parse().unwrap());
    /// cfg.advert_int_cs = 150; // v2 intervals are whole seconds
    /// assert_eq!(cfg.validate().unwrap_err().message(), "(VI_1) VRRPv2 advert_int must be whole seconds from 1 to 255, not 1.5");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        let name = &self.name;
        let fail = |what: String| Err(Error::invalid(format!("({name}) {what}")));
        if name.is_empty() {
            return Err(Error::invalid("the VRRP instance name must not be empty"));
        }
        if self.vrid == 0 {
            return fail("the virtual router id must be set (1 to 255)".into());
        }
        if self.priority == 0 {
            return fail("priority must be from 1 to 255".into());
        }
        match self.version {
            Version::V2 if self.advert_int_cs % 100 != 0 || !(100..=25500).contains(&self.advert_int_cs) => {
                return fail(format!(
                    "VRRPv2 advert_int must be whole seconds from 1 to 255, not {}",
                    Cs(self.advert_int_cs)
                ));
            }
            Version::V3 if self.advert_int_cs == 0 || self.advert_int_cs > MAX_V3_ADVER_INT_CS => {
                return fail(format!(
                    "VRRPv3 advert_int must be from 0.01 to 40.95 seconds, not {}",
                    Cs(self.advert_int_cs)
                ));
            }
            _ => {}
        }
        if self.src.is_unspecified() {
            return fail("the advert source address must be set".into());
        }
        let v6 = self.src.is_ipv6();
        if v6 && self.version == Version::V2 {
            return fail("VRRPv2 cannot be used with IPv6 - use version 3".into());
        }
        if let Some(a) = self.vips.iter().find(|a| a.is_ipv6() != v6) {
            return fail(format!("VIP {a} is not of the address family of the source {}", self.src));
        }
        if self.vips.len() > MAX_ADDRS {
            return fail(format!(
                "{} VIPs configured, an advert carries at most {MAX_ADDRS}",
                self.vips.len()
            ));
        }
        if self.vips.is_empty() && self.version == Version::V3 {
            return fail("No VIP specified; at least one is required with VRRPv3".into());
        }
        if let Some(a) = self.unicast_peers.iter().find(|a| a.is_ipv6() != v6) {
            return fail(format!("unicast peer {a} is not of the address family of the source {}", self.src));
        }
        if self.mcast_group.is_ipv6() != v6 || !self.mcast_group.is_multicast() {
            return fail(format!("{} is not a multicast group of the source's family", self.mcast_group));
        }
        if self.auth == Auth::Ah && self.version == Version::V2 {
            return fail("IPSEC AH authentication is not supported - use PASS or none".into());
        }
        if !(1..=100).contains(&self.down_timer_adverts) {
            return fail(format!(
                "down_timer_adverts must be from 1 to 100, not {}",
                self.down_timer_adverts
            ));
        }
        Ok(())
    }

    /// The settings keepalived clears with a warning, and the warnings. Applied by
    /// [`crate::vrrp::Instance::new`]; the warnings are logged on start.
    pub(crate) fn normalized(&self) -> (InstanceConfig, Vec<String>) {
        let mut cfg = self.clone();
        let mut warnings = Vec::new();
        let name = &self.name;
        if cfg.version == Version::V3 && cfg.auth != Auth::None {
            warnings.push(format!("({name}) authentication is not supported with VRRPv3 - ignoring"));
            cfg.auth = Auth::None;
        }
        if cfg.nopreempt && (cfg.initial_master || cfg.priority == 255) {
            warnings.push(format!(
                "({name}) nopreempt is incompatible with initial state MASTER or priority 255 - resetting"
            ));
            cfg.nopreempt = false;
        }
        if cfg.preempt_delay_ms > 0 && (cfg.initial_master || cfg.nopreempt) {
            warnings.push(format!(
                "({name}) preempt_delay is incompatible with initial state MASTER or nopreempt - resetting"
            ));
            cfg.preempt_delay_ms = 0;
        }
        if cfg.vips.is_empty() {
            warnings.push(format!("({name}) No VIP specified; at least one is sensible"));
        }
        (cfg, warnings)
    }
}

/// Centiseconds shown as seconds.
struct Cs(u16);

impl std::fmt::Display for Cs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, cs) = (self.0 / 100, self.0 % 100);
        match cs {
            0 => write!(f, "{s}"),
            c if c % 10 == 0 => write!(f, "{s}.{}", c / 10),
            c => write!(f, "{s}.{c:02}"),
        }
    }
}
