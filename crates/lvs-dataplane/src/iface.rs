//! What the engine needs to know about the host's interfaces, read from the kernel: index, MAC,
//! MTU and addresses of each interface the director uses, and the routes through them.

use lvs_core::engine::{Interface, Prefix, Route};
use lvs_core::wire::EthernetAddress;
use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn read_sys(name: &str, file: &str) -> io::Result<String> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"))
        .map(|s| s.trim().to_owned())
        .map_err(|e| io::Error::new(e.kind(), format!("interface `{name}`: cannot read {file}: {e}")))
}

fn parse_mac(text: &str) -> Option<EthernetAddress> {
    text.parse().ok()
}

/// Route flags (`RTF_*`) of the kernel's route tables.
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
const RTF_REJECT: u32 = 0x200;

/// The index of interface `name` in this network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| invalid(format!("bad interface name `{name}`")))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("interface `{name}` not found")));
    }
    Ok(idx)
}

/// The addresses (with prefix lengths) of every interface, from `getifaddrs`.
pub(crate) fn addresses() -> io::Result<Vec<(String, IpAddr, u8)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` walks the list getifaddrs returned; each node and its fields stay valid
        // until freeifaddrs. Address structs are read according to their family.
        unsafe {
            let ifa = &*p;
            p = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
                continue;
            }
            let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                    let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    let len = u32::from_be(m.sin_addr.s_addr).count_ones() as u8;
                    out.push((name, IpAddr::V4(addr), len));
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                    let len = m.sin6_addr.s6_addr.iter().map(|b| b.count_ones()).sum::<u32>() as u8;
                    out.push((name, IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)), len));
                }
                _ => {}
            }
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// An interface as the engine sees it: index, MAC, MTU and its addresses (link-local IPv6
/// included, which neighbour discovery needs).
pub fn interface(name: &str) -> io::Result<Interface> {
    let index = ifindex(name)?;
    let mac_text = read_sys(name, "address")?;
    let mac =
        parse_mac(&mac_text).ok_or_else(|| invalid(format!("interface `{name}` has no Ethernet address")))?;
    let mtu: u32 =
        read_sys(name, "mtu")?.parse().map_err(|_| invalid(format!("interface `{name}`: bad MTU")))?;
    let mut ifc = Interface::new(index, name, mac, mtu);
    for (n, addr, len) in addresses()? {
        if n == name {
            ifc = ifc.with_addr(addr, len);
        }
    }
    Ok(ifc)
}

/// Routes through the given interfaces, from `/proc/net/route` and `/proc/net/ipv6_route`
/// (the main table). On-link subnets come from the interface addresses in the engine itself.
pub fn routes(interfaces: &[Interface]) -> io::Result<Vec<Route>> {
    let by_name = |n: &str| interfaces.iter().find(|i| i.name == n).map(|i| i.index);
    let mut out = Vec::new();
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    out.extend(parse_route_v4(&v4, by_name));
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    out.extend(parse_route_v6(&v6, by_name));
    Ok(out)
}

/// The kernel's complete IPv4 neighbour entries (`/proc/net/arp`) on the given interfaces, so
/// static entries an operator installed (or ones the host already resolved) are used at once.
pub fn neighbours(interfaces: &[Interface]) -> Vec<(u32, IpAddr, EthernetAddress)> {
    parse_arp(&std::fs::read_to_string("/proc/net/arp").unwrap_or_default(), |n| {
        interfaces.iter().find(|i| i.name == n).map(|i| i.index)
    })
}

/// `/proc/net/arp`: `IP HWtype Flags HWaddress Mask Device`; only complete entries (ATF_COM).
fn parse_arp(text: &str, ifindex: impl Fn(&str) -> Option<u32>) -> Vec<(u32, IpAddr, EthernetAddress)> {
    const ATF_COM: u32 = 0x2;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ip: Ipv4Addr = f.first()?.parse().ok()?;
            let flags = u32::from_str_radix(f.get(2)?.trim_start_matches("0x"), 16).ok()?;
            let mac = parse_mac(f.get(3)?)?;
            let idx = ifindex(f.get(5)?)?;
            (flags & ATF_COM != 0).then_some((idx, IpAddr::V4(ip), mac))
        })
        .collect()
}

/// `/proc/net/route`: `Iface Destination Gateway Flags RefCnt Use Metric Mask …`, addresses as
/// little-endian hex. Only routes that are up and go through gateways are returned.
fn parse_route_v4(text: &str, ifindex: impl Fn(&str) -> Option<u32>) -> Vec<Route> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(&name), Some(dest), Some(gw), Some(flags), Some(mask)) = (
            f.first(),
            f.get(1).and_then(|h| u32::from_str_radix(h, 16).ok()),
            f.get(2).and_then(|h| u32::from_str_radix(h, 16).ok()),
            f.get(3).and_then(|h| u32::from_str_radix(h, 16).ok()),
            f.get(7).and_then(|h| u32::from_str_radix(h, 16).ok()),
        ) else {
            continue;
        };
        let Some(idx) = ifindex(name) else { continue };
        if flags & RTF_UP == 0 || flags & RTF_GATEWAY == 0 {
            continue;
        }
        // The kernel prints the network-order words as native (little-endian) hex.
        let dest = Ipv4Addr::from(dest.to_le_bytes());
        let len = mask.count_ones() as u8;
        let gw = Ipv4Addr::from(gw.to_le_bytes());
        if let Ok(p) = Prefix::new(IpAddr::V4(dest), len) {
            out.push(Route::new(p, Some(IpAddr::V4(gw)), idx));
        }
    }
    out
}

/// `/proc/net/ipv6_route`: `dest plen src splen nexthop metric refcnt use flags iface`, hex.
/// Only gateway routes that are up and not rejects.
fn parse_route_v6(text: &str, ifindex: impl Fn(&str) -> Option<u32>) -> Vec<Route> {
    let hex128 = |h: &str| u128::from_str_radix(h, 16).ok().map(Ipv6Addr::from);
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(dest), Some(len), Some(gw), Some(flags), Some(idx)) = (
            hex128(f[0]),
            u8::from_str_radix(f[1], 16).ok(),
            hex128(f[4]),
            u32::from_str_radix(f[8], 16).ok(),
            ifindex(f[9]),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || flags & RTF_GATEWAY == 0 || flags & RTF_REJECT != 0 {
            continue;
        }
        if let Ok(p) = Prefix::new(IpAddr::V6(dest), len) {
            out.push(Route::new(p, Some(IpAddr::V6(gw)), idx));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_route_tables() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  eth1\t0010A8C0\t0200000A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = parse_route_v4(v4, |n| (n == "eth0").then_some(2));
        assert_eq!(
            r,
            vec![Route::new(
                Prefix::new("0.0.0.0".parse().unwrap(), 0).unwrap(),
                Some("10.0.0.1".parse().unwrap()),
                2
            )]
        );
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n";
        let r6 = parse_route_v6(v6, |n| (n == "eth0").then_some(2));
        assert_eq!(
            r6,
            vec![Route::new(
                Prefix::new("::".parse().unwrap(), 0).unwrap(),
                Some("fd00::1".parse().unwrap()),
                2
            )]
        );
    }

    #[test]
    fn parses_the_kernel_arp_table() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    10.200.2.2       0x1         0x6         02:00:00:00:00:02     *        eth1\n\
                    10.200.2.9       0x1         0x0         00:00:00:00:00:00     *        eth1\n\
                    10.0.0.1         0x1         0x2         02:00:00:00:00:01     *        eth9\n";
        let n = parse_arp(text, |d| (d == "eth1").then_some(3));
        assert_eq!(n, vec![(3, "10.200.2.2".parse().unwrap(), EthernetAddress([2, 0, 0, 0, 0, 2]))]);
    }

    #[test]
    fn reads_loopback() {
        let lo = interface("lo").expect("lo exists in every namespace");
        assert_eq!(lo.index, ifindex("lo").unwrap());
        assert!(interface("no-such-if0").is_err());
        assert_eq!(parse_mac("02:00:0a:00:00:01"), Some(EthernetAddress([2, 0, 10, 0, 0, 1])));
        assert_eq!(parse_mac("02:00"), None);
    }
}
