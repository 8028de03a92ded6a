//! The order `ipvsadm -L` lists services and real servers in. ipvsadm compares by subtracting
//! unsigned fields as `int`s (`ipvs_cmp_services`, `ipvs_cmp_dests`), so addresses 2^31 or more
//! apart compare "wrongly" (200.x sorts before 10.x). That comparison is not a total order, so it
//! is applied with the top-down merge sort glibc's `qsort` uses, which never fails on it.

use crate::model::{Family, ServiceKey};
use std::cmp::Ordering;
use std::net::IpAddr;

fn sub(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_words(addr: IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            std::array::from_fn(|i| u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]))
        }
    }
}

fn cmp_addr(a: IpAddr, b: IpAddr) -> i32 {
    let (x, y) = (addr_words(a), addr_words(b));
    x.iter().zip(&y).map(|(&p, &q)| sub(p, q)).find(|&r| r != 0).unwrap_or(0)
}

/// `ipvs_cmp_services`: fwmark, family, protocol, address, port.
pub fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> Ordering {
    fn parts(k: &ServiceKey) -> (u32, u32, u32, Option<IpAddr>, u32) {
        let af = |f: Family| if f == Family::Inet6 { 10 } else { 2 };
        match *k {
            ServiceKey::Fwmark { mark, family } => (mark, af(family), 6, None, 0),
            ServiceKey::Addr { protocol, addr, port } => {
                (0, af(Family::of(addr)), protocol.number() as u32, Some(addr), port as u32)
            }
        }
    }
    let (m1, f1, p1, a1, o1) = parts(a);
    let (m2, f2, p2, a2, o2) = parts(b);
    let mut r = sub(m1, m2);
    if r == 0 {
        r = sub(f1, f2);
    }
    if r == 0 {
        r = sub(p1, p2);
    }
    if r == 0 {
        if let (Some(x), Some(y)) = (a1, a2) {
            r = cmp_addr(x, y);
        }
    }
    if r == 0 {
        r = sub(o1, o2);
    }
    r.cmp(&0)
}

/// `ipvs_cmp_dests`: address, then port.
pub fn cmp_dests(a: (IpAddr, u16), b: (IpAddr, u16)) -> Ordering {
    let r = cmp_addr(a.0, b.0);
    let r = if r == 0 { sub(a.1 as u32, b.1 as u32) } else { r };
    r.cmp(&0)
}

/// Sorts like glibc's `qsort` (top-down merge sort, left element first on ties); never panics
/// whatever `cmp` returns.
pub fn qsort_like<T: Clone>(items: &mut [T], cmp: &mut impl FnMut(&T, &T) -> Ordering) {
    let n = items.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    qsort_like(&mut items[..n1], cmp);
    qsort_like(&mut items[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&items[i], &items[j]) != Ordering::Greater {
            merged.push(items[i].clone());
            i += 1;
        } else {
            merged.push(items[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&items[i..n1]);
    merged.extend_from_slice(&items[j..n]);
    items.clone_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn tcp(a: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: a.parse().unwrap(), port }
    }

    #[test]
    fn services_sort_like_ipvsadm_including_the_wraparound_quirk() {
        let mut v = vec![
            tcp("10.0.0.2", 80),
            ServiceKey::Fwmark { mark: 10, family: Family::Inet },
            tcp("10.0.0.1", 443),
            ServiceKey::Addr { protocol: Protocol::Udp, addr: "10.0.0.1".parse().unwrap(), port: 53 },
            tcp("10.0.0.1", 80),
            tcp("200.0.0.1", 80),
        ];
        qsort_like(&mut v, &mut |a, b| cmp_services(a, b));
        let text: Vec<String> = v.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            text,
            [
                "-t 200.0.0.1:80", // 200.x - 10.x overflows an int: sorts first, as in ipvsadm
                "-t 10.0.0.1:80",
                "-t 10.0.0.1:443",
                "-t 10.0.0.2:80",
                "-u 10.0.0.1:53",
                "-f 10",
            ]
        );
    }

    #[test]
    fn dests_sort_by_address_then_port() {
        let mut v: Vec<(IpAddr, u16)> = vec![
            ("10.0.0.3".parse().unwrap(), 80),
            ("10.0.0.1".parse().unwrap(), 8080),
            ("10.0.0.1".parse().unwrap(), 80),
        ];
        qsort_like(&mut v, &mut |a, b| cmp_dests(*a, *b));
        assert_eq!(v[0].1, 80);
        assert_eq!(v[1].1, 8080);
        assert_eq!(v[2].0, "10.0.0.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn survives_inconsistent_comparators() {
        let mut v: Vec<u32> = (0..100).collect();
        let mut flip = 0u32;
        qsort_like(&mut v, &mut |_, _| {
            flip = flip.wrapping_mul(1103515245).wrapping_add(12345);
            if flip & 0x100 == 0 {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        });
        assert_eq!(v.len(), 100);
    }
}
