//! Address notation as ipvsadm writes and reads it: `a.b.c.d[:port]`, `[v6addr]:port` or a bare
//! IPv6 address, and netmasks as dotted quads (IPv4) or prefix lengths (IPv6).

use crate::error::{Error, Result};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with an optional port, as given on an ipvsadm command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The address.
    pub addr: IpAddr,
    /// The port, when one was written.
    pub port: Option<u16>,
}

impl HostPort {
    /// Parses ipvsadm's `host[:port]` forms. IPv6 addresses with a port need brackets
    /// (`[2001:db8::1]:80`); brackets without a port are refused, as ipvsadm refuses them.
    pub fn parse(text: &str) -> Result<HostPort> {
        let bad = || Error::invalid(format!("invalid address `{text}'"));
        if text.is_empty() || text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if let Some(rest) = text.strip_prefix('[') {
            let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
            let port = tail.strip_prefix(':').ok_or_else(bad)?;
            let addr: Ipv6Addr = host.parse().map_err(|_| bad())?;
            return Ok(HostPort { addr: IpAddr::V6(addr), port: Some(parse_port(port).ok_or_else(bad)?) });
        }
        if let Ok(addr) = text.parse::<Ipv6Addr>() {
            return Ok(HostPort { addr: IpAddr::V6(addr), port: None });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(parse_port(port).ok_or_else(bad)?)),
            None => (text, None),
        };
        let addr: Ipv4Addr = host.parse().map_err(|_| bad())?;
        Ok(HostPort { addr: IpAddr::V4(addr), port })
    }
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Writes `addr:port`, bracketing IPv6 addresses, as ipvsadm's numeric listings do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketText(pub IpAddr, pub u16);

impl fmt::Display for SocketText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// The client-address mask of a persistent service (`-M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// An IPv4 mask, kept as written (ipvsadm does not require it to be contiguous).
    V4(Ipv4Addr),
    /// An IPv6 prefix length, 1..=128.
    V6(u8),
}

impl Netmask {
    /// The default mask for a family: 255.255.255.255 or /128.
    pub fn host(v6: bool) -> Netmask {
        if v6 {
            Netmask::V6(128)
        } else {
            Netmask::V4(Ipv4Addr::BROADCAST)
        }
    }

    /// Parses `-M`: a dotted IPv4 mask, or a prefix length for IPv6 services.
    pub fn parse(text: &str, v6: bool) -> Result<Netmask> {
        if v6 {
            match text.parse::<u8>() {
                Ok(p) if (1..=128).contains(&p) => Ok(Netmask::V6(p)),
                _ => Err(Error::invalid(format!("invalid IPv6 netmask prefix `{text}' (1..128)"))),
            }
        } else {
            text.parse::<Ipv4Addr>()
                .map(Netmask::V4)
                .map_err(|_| Error::invalid(format!("invalid netmask `{text}'")))
        }
    }

    /// True for the family default (no masking).
    pub fn is_host(self) -> bool {
        matches!(self, Netmask::V4(Ipv4Addr::BROADCAST) | Netmask::V6(128))
    }

    /// Masks a client address; addresses of the other family are returned unchanged.
    pub fn apply(self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Netmask::V4(m), IpAddr::V4(a)) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(m))),
            (Netmask::V6(p), IpAddr::V6(a)) => {
                let mask = if p >= 128 { u128::MAX } else { !(u128::MAX >> p) };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => addr,
        }
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::V4(m) => write!(f, "{m}"),
            Netmask::V6(p) => write!(f, "{p}"),
        }
    }
}

/// True when `addr` can be a real server: not unspecified, multicast or broadcast.
pub fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(text: &str) -> HostPort {
        HostPort::parse(text).expect(text)
    }

    #[test]
    fn parses_ipvsadm_forms() {
        assert_eq!(hp("10.10.36.11:80"), HostPort { addr: "10.10.36.11".parse().unwrap(), port: Some(80) });
        assert_eq!(hp("192.168.10.200").port, None);
        assert_eq!(hp("[2001:db8::1]:443").port, Some(443));
        assert_eq!(hp("2001:db8::1"), HostPort { addr: "2001:db8::1".parse().unwrap(), port: None });
        assert_eq!(hp("10.0.0.1:0").port, Some(0));
    }

    #[test]
    fn refuses_what_ipvsadm_refuses() {
        for bad in [
            "",
            "80",
            "[2001:db8::1]",
            "[::1]:x",
            "10.0.0.1:65536",
            "10.0.0.1:",
            "host.example:80",
            "1.2.3:80",
        ] {
            let err = HostPort::parse(bad).expect_err(bad);
            assert_eq!(err.code().errno(), "EINVAL", "{bad}");
        }
    }

    #[test]
    fn socket_text_brackets_v6() {
        assert_eq!(SocketText("10.0.0.1".parse().unwrap(), 80).to_string(), "10.0.0.1:80");
        assert_eq!(SocketText("2001:db8::1".parse().unwrap(), 80).to_string(), "[2001:db8::1]:80");
    }

    #[test]
    fn netmask_masks_and_prints() {
        let m = Netmask::parse("255.255.255.0", false).unwrap();
        assert_eq!(m.apply("10.1.2.3".parse().unwrap()), "10.1.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(m.to_string(), "255.255.255.0");
        let m6 = Netmask::parse("64", true).unwrap();
        assert_eq!(
            m6.apply("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert!(Netmask::host(false).is_host() && Netmask::host(true).is_host());
        assert!(Netmask::parse("0", true).is_err() && Netmask::parse("129", true).is_err());
    }
}
