//! Packet-path configuration from JS: real interfaces (read from the kernel) or virtual ones
//! (for `inject`), routes and firewall-mark rules.

use crate::error::{invalid, to_js, Result};
use lvs_core::engine::{EngineConfig, Interface, MarkRule, PortRange, Prefix, Route};
use lvs_core::model::Protocol;
use lvs_core::wire::EthernetAddress;
use napi_derive::napi;
use std::net::IpAddr;

/// A virtual interface for an offline director (frames go in and out through `inject`).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct VirtualInterface {
    /// Name.
    pub name: String,
    /// Index (default: position + 1).
    pub index: Option<u32>,
    /// MAC address `'02:00:00:00:00:01'`.
    pub mac: String,
    /// MTU (default 1500).
    pub mtu: Option<u32>,
    /// Addresses with prefix length: `'10.0.0.1/24'`, `'fd00::1/64'`.
    pub addresses: Option<Vec<String>>,
}

/// A route: destination prefix, optional gateway, interface name.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// `'0.0.0.0/0'`, `'10.1.0.0/16'`.
    pub destination: String,
    /// Next hop.
    pub gateway: Option<String>,
    /// Interface name.
    pub interface: String,
}

/// A firewall-mark rule, like `iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport
/// --dports 80,443 -j MARK --set-mark 10`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct MarkRuleSpec {
    /// Destination address or prefix.
    pub destination: String,
    /// `'tcp' | 'udp' | 'sctp'`; any when absent.
    #[napi(ts_type = "'tcp' | 'udp' | 'sctp'")]
    pub protocol: Option<String>,
    /// Destination ports: `80`, `'8000-8080'`.
    #[napi(ts_type = "Array<number | string>")]
    pub ports: Option<Vec<napi::Either<u32, String>>>,
    /// The mark (> 0).
    pub mark: u32,
}

/// Parses `addr/len` (a bare address is a host prefix).
pub fn prefix(text: &str) -> Result<Prefix> {
    let (a, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| invalid(format!("invalid address `{a}'")))?;
    let max = if addr.is_ipv6() { 128 } else { 32 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| invalid(format!("invalid prefix `{text}'")))?,
        None => max,
    };
    Prefix::new(addr, len).map_err(to_js)
}

fn mac(text: &str) -> Result<EthernetAddress> {
    text.parse().map_err(|_| invalid(format!("invalid MAC address `{text}'")))
}

/// Builds the virtual interfaces of an offline director.
pub fn virtual_interfaces(list: &[VirtualInterface]) -> Result<Vec<Interface>> {
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let mut ifc = Interface::new(
                v.index.unwrap_or(i as u32 + 1),
                v.name.clone(),
                mac(&v.mac)?,
                v.mtu.unwrap_or(1500),
            );
            for a in v.addresses.iter().flatten() {
                let p = prefix(a)?;
                ifc = ifc.with_addr(p.addr(), p.len());
            }
            Ok(ifc)
        })
        .collect()
}

/// Routes by interface name.
pub fn routes(specs: &[RouteSpec], interfaces: &[Interface]) -> Result<Vec<Route>> {
    specs
        .iter()
        .map(|r| {
            let ifindex = interfaces
                .iter()
                .find(|i| i.name == r.interface)
                .map(|i| i.index)
                .ok_or_else(|| invalid(format!("route via unknown interface `{}'", r.interface)))?;
            let gateway = match &r.gateway {
                Some(g) => Some(g.parse::<IpAddr>().map_err(|_| invalid(format!("invalid gateway `{g}'")))?),
                None => None,
            };
            Ok(Route::new(prefix(&r.destination)?, gateway, ifindex))
        })
        .collect()
}

/// Firewall-mark rules.
pub fn mark_rules(specs: &[MarkRuleSpec]) -> Result<Vec<MarkRule>> {
    specs
        .iter()
        .map(|m| {
            if m.mark == 0 {
                return Err(invalid("a firewall mark must be greater than zero"));
            }
            let mut rule = MarkRule::new(prefix(&m.destination)?, m.mark);
            if let Some(p) = &m.protocol {
                rule = rule.protocol(match p.as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    "sctp" => Protocol::Sctp,
                    other => return Err(invalid(format!("unknown protocol `{other}'"))),
                });
            }
            if let Some(ports) = &m.ports {
                let ranges = ports
                    .iter()
                    .map(|p| match p {
                        napi::Either::A(n) => u16::try_from(*n)
                            .map(PortRange::port)
                            .map_err(|_| invalid(format!("invalid port {n}"))),
                        napi::Either::B(s) => {
                            let bad = || invalid(format!("invalid port range `{s}'"));
                            let (a, b) = s.split_once('-').unwrap_or((s, s));
                            let (a, b) =
                                (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?);
                            if a > b {
                                return Err(bad());
                            }
                            Ok(PortRange::range(a, b))
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                rule = rule.ports(&ranges);
            }
            Ok(rule)
        })
        .collect()
}

/// An engine configuration with defaults for everything but interfaces, routes and marks.
pub fn engine_config(
    interfaces: Vec<Interface>,
    routes: Vec<Route>,
    mark_rules: Vec<MarkRule>,
) -> EngineConfig {
    EngineConfig { interfaces, routes, mark_rules, ..EngineConfig::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_macs_and_rules() {
        assert_eq!(prefix("10.0.0.1/24").unwrap().len(), 24);
        assert_eq!(prefix("fd00::1").unwrap().len(), 128);
        assert!(prefix("10.0.0.1/33").is_err() && prefix("nope/1").is_err());
        assert_eq!(mac("02:00:0a:00:00:01").unwrap(), EthernetAddress([2, 0, 10, 0, 0, 1]));
        assert!(mac("02:00:0a").is_err() && mac("02:00:0a:00:00:01:ff").is_err());
        let rules = mark_rules(&[MarkRuleSpec {
            destination: "192.168.10.101".into(),
            protocol: Some("tcp".into()),
            ports: Some(vec![napi::Either::A(80), napi::Either::B("443-444".into())]),
            mark: 10,
        }])
        .unwrap();
        assert!(rules[0].matches("192.168.10.101".parse().unwrap(), 6, 443));
        assert!(!rules[0].matches("192.168.10.101".parse().unwrap(), 6, 22));
    }
}
