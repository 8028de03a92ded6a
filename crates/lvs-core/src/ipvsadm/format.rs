//! ipvsadm's output, byte for byte: `-L` (and its `--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn`, `--tun-info`, `--exact`, `--nosort` variants) and `-S`.

use super::parse::Format;
use crate::dest::Dest;
use crate::ipvs::{Ipvs, Service};
use crate::model::{sched_flag_names, FwdMethod, Protocol, ServiceKey, TunnelCsum, TunnelType};
use crate::order::{cmp_dests, cmp_services, qsort_like};
use std::fmt::Write;
use std::net::IpAddr;

/// The IPVS version ipvsadm reports (`IP_VS_VERSION_CODE` 0x010201).
pub const IPVS_VERSION: &str = "1.2.1";

/// Turns addresses and ports into names for listings without `-n` (ipvsadm uses
/// `gethostbyaddr` and `getservbyport`). The core does no I/O: callers bring a resolver.
pub trait Names {
    /// A host name for an address.
    fn host(&self, addr: IpAddr) -> Option<String>;
    /// A service name for a port of a protocol.
    fn service(&self, port: u16, protocol: Protocol) -> Option<String>;
}

/// Resolves nothing: every listing is numeric.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl Names for NoNames {
    fn host(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service(&self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// `addrport_to_anyname`.
fn addrport(addr: IpAddr, port: u16, protocol: Protocol, numeric: bool, names: &dyn Names) -> String {
    let (open, close) = if addr.is_ipv6() { ("[", "]") } else { ("", "") };
    if numeric {
        return format!("{open}{addr}{close}:{port}");
    }
    let host = names.host(addr).unwrap_or_else(|| addr.to_string());
    let serv = names.service(port, protocol).unwrap_or_else(|| port.to_string());
    format!("{open}{host}{close}:{serv}")
}

/// `print_largenum`.
pub(crate) fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>width$}");
    } else if i < 100_000_000 {
        let _ = write!(out, "{i:>9}");
    } else if i < 1_000_000_000 {
        let _ = write!(out, "{:>8}K", i / 1000);
    } else if i < 100_000_000_000 {
        let _ = write!(out, "{:>8}M", i / 1_000_000);
    } else if i < 100_000_000_000_000 {
        let _ = write!(out, "{:>8}G", i / 1_000_000_000);
    } else {
        let _ = write!(out, "{:>8}T", i / 1_000_000_000_000);
    }
}

fn title(out: &mut String, f: &Format, rule: bool) {
    if f.stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if f.rate {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if f.thresholds {
        let _ = writeln!(
            out,
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else if f.tun_info {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n");
    } else if !rule {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

fn fwd_switch(m: FwdMethod) -> &'static str {
    match m {
        FwdMethod::Masq => "-m",
        FwdMethod::Tunnel => "-i",
        _ => "-g",
    }
}

fn tun_type_name(t: TunnelType) -> &'static str {
    match t {
        TunnelType::Ipip => "ipip",
        TunnelType::Gue => "gue",
        TunnelType::Gre => "gre",
    }
}

fn tun_info(d: &Dest) -> String {
    if d.fwd != FwdMethod::Tunnel {
        return "n/a".into();
    }
    let flag = match d.tunnel.csum {
        TunnelCsum::None => "-c",
        TunnelCsum::Csum => "+c",
        TunnelCsum::RemCsum => "r+c",
    };
    match d.tunnel.kind {
        TunnelType::Ipip => "ipip".into(),
        TunnelType::Gue => format!("gue:{}:{flag}", d.tunnel.port),
        TunnelType::Gre => format!("gre:{flag}"),
    }
}

fn truncate(s: &mut String, at: usize) {
    if s.len() > at {
        let mut cut = at;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// `print_service_entry`.
fn service_entry(out: &mut String, ipvs: &Ipvs, svc: &Service, f: &Format, rule: bool, names: &dyn Names) {
    let c = svc.config();
    let protocol = match c.key {
        ServiceKey::Addr { protocol, .. } => protocol,
        ServiceKey::Fwmark { .. } => Protocol::Tcp,
    };
    let v6 = c.key.is_v6();
    let svc_name = match c.key {
        ServiceKey::Fwmark { mark, .. } => match (rule, v6) {
            (true, true) => format!("-f {mark} -6"),
            (true, false) => format!("-f {mark}"),
            (false, true) => format!("FWM  {mark} IPv6"),
            (false, false) => format!("FWM  {mark}"),
        },
        ServiceKey::Addr { protocol, addr, port } => {
            let vname = addrport(addr, port, protocol, f.numeric, names);
            if rule {
                let opt = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                format!("{opt} {vname}")
            } else {
                let mut s = format!("{:<4} {vname}", protocol.name());
                if !v6 {
                    truncate(&mut s, 33);
                }
                s
            }
        }
    };
    let flags = sched_flag_names(c.sched_flags, &c.scheduler).join(",");
    let st = svc.stats.counters();
    let rt = svc.stats.rates();
    if rule {
        let _ = write!(out, "-A {svc_name} -s {}", c.scheduler);
        if let Some(t) = c.persistent {
            let _ = write!(out, " -p {t}");
            if !c.netmask.is_host() {
                let _ = write!(out, " -M {}", c.netmask);
            }
        }
        if let Some(pe) = &c.pe {
            let _ = write!(out, " --pe {pe}");
        }
        if c.one_packet {
            out.push_str(" -o");
        }
        if c.sched_flags != 0 {
            let _ = write!(out, " -b {flags}");
        }
    } else if f.stats {
        let _ = write!(out, "{svc_name:<33}");
        for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
            largenum(out, v, f.exact);
        }
    } else if f.rate {
        let _ = write!(out, "{svc_name:<33}");
        for v in [rt.cps, rt.inpps, rt.outpps, rt.inbps, rt.outbps] {
            largenum(out, v, f.exact);
        }
    } else {
        let _ = write!(out, "{svc_name} {}", c.scheduler);
        if c.sched_flags != 0 {
            let _ = write!(out, " ({flags})");
        }
        if let Some(t) = c.persistent {
            let _ = write!(out, " persistent {t}");
            if !c.netmask.is_host() {
                let _ = write!(out, " mask {}", c.netmask);
            }
            if let Some(pe) = &c.pe {
                let _ = write!(out, " pe {pe}");
            }
        }
        if c.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let mut dests: Vec<&Dest> = ipvs.dest_list(svc).iter().map(|(_, d)| d).collect();
    if !f.nosort {
        qsort_like(&mut dests, &mut |a, b| cmp_dests((a.addr, a.port), (b.addr, b.port)));
    }
    for d in dests {
        let mut dname = addrport(d.addr, d.port, protocol, f.numeric, names);
        if !rule && !d.addr.is_ipv6() {
            truncate(&mut dname, 28);
        }
        let ds = d.stats.counters();
        let dr = d.stats.rates();
        if rule {
            let sw = fwd_switch(d.fwd);
            if d.fwd == FwdMethod::Tunnel {
                let tt = tun_type_name(d.tunnel.kind);
                let csum = match d.tunnel.csum {
                    TunnelCsum::None => "--tun-nocsum",
                    TunnelCsum::Csum => "--tun-csum",
                    TunnelCsum::RemCsum => "--tun-remcsum",
                };
                let _ = match d.tunnel.kind {
                    TunnelType::Ipip => {
                        writeln!(out, "-a {svc_name} -r {dname} {sw} -w {} --tun-type {tt}", d.weight)
                    }
                    TunnelType::Gue => writeln!(
                        out,
                        "-a {svc_name} -r {dname} {sw} -w {} --tun-type {tt} --tun-port {} {csum}",
                        d.weight, d.tunnel.port
                    ),
                    TunnelType::Gre => {
                        writeln!(out, "-a {svc_name} -r {dname} {sw} -w {} --tun-type {tt} {csum}", d.weight)
                    }
                };
            } else {
                let _ = writeln!(out, "-a {svc_name} -r {dname} {sw} -w {}", d.weight);
            }
        } else if f.stats {
            let _ = write!(out, "  -> {dname:<28}");
            for v in [ds.conns, ds.inpkts, ds.outpkts, ds.inbytes, ds.outbytes] {
                largenum(out, v, f.exact);
            }
            out.push('\n');
        } else if f.rate {
            let _ = write!(out, "  -> {dname:<28} {:>8} {:>8} {:>8}", dr.cps, dr.inpps, dr.outpps);
            largenum(out, dr.inbps, f.exact);
            largenum(out, dr.outbps, f.exact);
            out.push('\n');
        } else if f.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                d.u_threshold,
                d.l_threshold,
                d.activeconns,
                d.inactconns()
            );
        } else if f.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight,
                d.persistconns,
                d.activeconns,
                d.inactconns()
            );
        } else if f.tun_info {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                d.fwd.list_name(),
                tun_info(d),
                d.weight,
                d.activeconns,
                d.inactconns()
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                d.fwd.list_name(),
                d.weight,
                d.activeconns,
                d.inactconns()
            );
        }
    }
}

fn services_in_order<'a>(ipvs: &'a Ipvs, f: &Format) -> Vec<&'a Service> {
    let mut v: Vec<&Service> = ipvs.services().collect();
    if !f.nosort {
        qsort_like(&mut v, &mut |a, b| cmp_services(&a.config().key, &b.config().key));
    }
    v
}

/// `ipvsadm -L` without a service: the version header, the title and every service.
/// `conn_tab_size` is what ipvsadm shows as `size=` (4096 by default in Linux).
pub fn list_all(ipvs: &Ipvs, f: &Format, names: &dyn Names, conn_tab_size: u32) -> String {
    let mut out = format!("IP Virtual Server version {IPVS_VERSION} (size={conn_tab_size})\n");
    title(&mut out, f, false);
    for svc in services_in_order(ipvs, f) {
        service_entry(&mut out, ipvs, svc, f, false, names);
    }
    out
}

/// `ipvsadm -L -t …`: the title and one service, or `None` if there is no such service.
pub fn list_service(ipvs: &Ipvs, key: &ServiceKey, f: &Format, names: &dyn Names) -> Option<String> {
    let svc = ipvs.service(key)?;
    let mut out = String::new();
    title(&mut out, f, false);
    service_entry(&mut out, ipvs, svc, f, false, names);
    Some(out)
}

/// `ipvsadm -S` (`numeric` for `-S -n`): one `-A` line per service followed by its `-a` lines.
pub fn save(ipvs: &Ipvs, numeric: bool, names: &dyn Names) -> String {
    let f = Format { numeric, ..Format::default() };
    let mut out = String::new();
    for svc in services_in_order(ipvs, &f) {
        service_entry(&mut out, ipvs, svc, &f, true, names);
    }
    out
}

/// `ipvsadm -Lc`: the connection entries (`/proc/net/ip_vs_conn` read back by ipvsadm).
pub fn list_conn(conns: &[crate::conn::ConnInfo], f: &Format, names: &dyn Names) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if f.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(out, "pro expire {:<11} {:<18} {:<18} destination", "state", "source", "virtual");
    }
    for c in conns {
        // ipvsadm resolves names with the entry's protocol; firewall-mark templates have none.
        let protocol = Protocol::from_number(c.protocol).unwrap_or(Protocol::Tcp);
        let secs = c.expires.as_secs();
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let dname = addrport(c.daddr, c.dport, protocol, f.numeric, names);
        let _ = write!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} ",
            c.protocol_name(),
            expire,
            c.state,
            addrport(c.caddr, c.cport, protocol, f.numeric, names),
            addrport(c.vaddr, c.vport, protocol, f.numeric, names),
        );
        if f.persistent_conn {
            // Entries without engine data have empty name and data columns.
            let data = c.pe_data.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let _ = writeln!(out, "{dname:<18} {:<16} {data}", c.pe_name.unwrap_or(""));
        } else {
            let _ = writeln!(out, "{dname}");
        }
    }
    out
}

/// `ipvsadm -L --timeout`.
pub fn list_timeout(tcp: u32, tcpfin: u32, udp: u32) -> String {
    format!("Timeout (tcp tcpfin udp): {tcp} {tcpfin} {udp}\n")
}

/// `-L --daemon`: one line per running sync daemon, master first.
pub fn list_daemons(daemons: &[crate::sync::Daemon]) -> String {
    daemons.iter().map(|d| d.listing() + "\n").collect()
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::largenum;
}
