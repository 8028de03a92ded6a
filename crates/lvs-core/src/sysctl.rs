//! `/proc/sys/net/ipv4/vs/*` by name: what `sysctl -w net.ipv4.vs.NAME=VALUE` does to the kernel,
//! done to an [`Ipvs`]. Names are accepted bare (`expire_nodest_conn`), with the `net.ipv4.vs.`
//! prefix, or in slash form (`net/ipv4/vs/…`), as `sysctl` accepts them.
//!
//! Values are parsed as the kernel's handlers parse them (`proc_dointvec`: any integer, non-zero
//! meaning on; `sync_version` 0..1; `sync_threshold` two integers, threshold below period). A
//! setting lvs does not act on is refused with `ENOTSUP` unless the value written is what lvs does
//! anyway (e.g. `conntrack = 0`, `pmtu_disc = 1`), so a `sysctl.conf` written for the kernel either
//! works or says which line lvs cannot honour.

use crate::error::{Code, Error, Result};
use crate::Ipvs;
use std::time::Duration;

/// Every sysctl lvs acts on, in the kernel's `vs_vars[]` order.
pub const SUPPORTED: &[&str] = &[
    "secure_tcp",
    "sync_version",
    "sync_persist_mode",
    "sync_qlen_max",
    "expire_nodest_conn",
    "sloppy_tcp",
    "sloppy_sctp",
    "expire_quiescent_template",
    "sync_threshold",
    "conn_reuse_mode",
    "lblc_expiration",
    "lblcr_expiration",
];

/// Kernel sysctls lvs does not act on, with the one value that describes what lvs does (writing
/// it is accepted; any other value is `ENOTSUP`).
const FIXED: &[(&str, &str)] = &[
    ("amemthresh", "1024"),
    ("am_droprate", "10"),
    ("drop_entry", "0"),
    ("drop_packet", "0"),
    ("conntrack", "0"),
    ("snat_reroute", "1"),
    ("sync_ports", "1"),
    ("sync_sock_size", "0"),
    ("cache_bypass", "0"),
    ("sync_refresh_period", "0"),
    ("sync_retries", "0"),
    ("nat_icmp_send", "0"),
    ("pmtu_disc", "1"),
    ("backup_only", "0"),
    ("schedule_icmp", "0"),
    ("ignore_tunneled", "0"),
    ("run_estimation", "1"),
];

/// The bare name (`expire_nodest_conn`) of any accepted spelling.
fn bare(name: &str) -> &str {
    let name = name.trim();
    name.strip_prefix("net.ipv4.vs.")
        .or_else(|| name.strip_prefix("net/ipv4/vs/"))
        .or_else(|| name.strip_prefix("/proc/sys/net/ipv4/vs/"))
        .unwrap_or(name)
}

fn unknown(name: &str) -> Error {
    Error::new(Code::NotFound, format!("net.ipv4.vs.{name}: no such sysctl"))
}

fn int(name: &str, value: &str) -> Result<i64> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(format!("net.ipv4.vs.{name}: '{}' is not an integer", value.trim())))?;
    if i32::try_from(v).is_err() {
        return Err(Error::range(format!("net.ipv4.vs.{name}: {v} is out of range")));
    }
    Ok(v)
}

fn in_range(name: &str, value: &str, min: i64, max: i64) -> Result<i64> {
    let v = int(name, value)?;
    if v < min || v > max {
        return Err(Error::range(format!("net.ipv4.vs.{name}: {v} is out of range {min}..{max}")));
    }
    Ok(v)
}

/// The value `cat /proc/sys/net/ipv4/vs/NAME` would show (`sync_threshold` as `3\t50`).
///
/// # Errors
/// `ENOENT` for a name the kernel does not have.
pub fn get(ipvs: &Ipvs, name: &str) -> Result<String> {
    let name = bare(name);
    let conn = ipvs.sysctl();
    let sync = ipvs.sync_sysctl();
    let sched = ipvs.sched_tunables();
    let flag = |b: bool| u8::from(b).to_string();
    Ok(match name {
        "secure_tcp" => conn.secure_tcp.to_string(),
        "sync_version" => sync.version.to_string(),
        "sync_persist_mode" => flag(sync.persist_mode),
        "sync_qlen_max" => sync.qlen_max.to_string(),
        "expire_nodest_conn" => flag(conn.expire_nodest_conn),
        "sloppy_tcp" => flag(conn.sloppy_tcp),
        "sloppy_sctp" => flag(conn.sloppy_sctp),
        "expire_quiescent_template" => flag(conn.expire_quiescent_template),
        "sync_threshold" => format!("{}\t{}", sync.threshold, sync.period),
        "conn_reuse_mode" => conn.conn_reuse_mode.to_string(),
        "lblc_expiration" => sched.lblc_expiration.as_secs().to_string(),
        "lblcr_expiration" => sched.lblcr_expiration.as_secs().to_string(),
        _ => match FIXED.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => (*v).to_owned(),
            None => return Err(unknown(name)),
        },
    })
}

/// Every sysctl and its value, supported ones first (what `sysctl net.ipv4.vs` lists).
pub fn all(ipvs: &Ipvs) -> Vec<(&'static str, String)> {
    SUPPORTED
        .iter()
        .chain(FIXED.iter().map(|(n, _)| n))
        .filter_map(|n| get(ipvs, n).ok().map(|v| (*n, v)))
        .collect()
}

/// Sets several sysctls at once: either all of them take effect or, on the first bad one, none
/// does (the error names it).
///
/// # Errors
/// `ENOENT` unknown name, `EINVAL` unparsable value, `ERANGE` out of range or a
/// `sync_threshold` whose threshold is not below its period, `ENOTSUP` a setting lvs does not act
/// on.
pub fn set_all<'a>(ipvs: &mut Ipvs, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<()> {
    let mut conn = ipvs.sysctl().clone();
    let mut sync = ipvs.sync_sysctl().clone();
    let mut sched = *ipvs.sched_tunables();
    for (name, value) in settings {
        let name = bare(name);
        let on = |v: &str| int(name, v).map(|v| v != 0);
        match name {
            // 1 and 2 switch to the DoS table only under memory pressure, which lvs never reports.
            "secure_tcp" => conn.secure_tcp = in_range(name, value, 0, 3)? as u32,
            "sync_version" => sync.version = in_range(name, value, 0, 1)? as u8,
            "sync_persist_mode" => sync.persist_mode = on(value)?,
            "sync_qlen_max" => sync.qlen_max = in_range(name, value, 1, i64::from(i32::MAX))? as usize,
            "expire_nodest_conn" => conn.expire_nodest_conn = on(value)?,
            "sloppy_tcp" => conn.sloppy_tcp = on(value)?,
            "sloppy_sctp" => conn.sloppy_sctp = on(value)?,
            "expire_quiescent_template" => conn.expire_quiescent_template = on(value)?,
            "sync_threshold" => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                let [t, p] = parts[..] else {
                    return Err(Error::invalid(format!(
                        "net.ipv4.vs.sync_threshold: '{}' is not two integers (threshold period)",
                        value.trim()
                    )));
                };
                let t = in_range(name, t, 0, i64::from(i32::MAX))? as u32;
                let p = in_range(name, p, 0, i64::from(i32::MAX))? as u32;
                sync.set_threshold(t, p).map_err(|_| {
                    Error::range(format!(
                        "net.ipv4.vs.sync_threshold: threshold {t} must be below period {p}"
                    ))
                })?;
            }
            // The kernel stores any integer; lvs reads its two low bits, as the kernel does.
            "conn_reuse_mode" => conn.conn_reuse_mode = int(name, value)? as u32,
            "lblc_expiration" => sched.lblc_expiration = expiration(name, value)?,
            "lblcr_expiration" => sched.lblcr_expiration = expiration(name, value)?,
            _ => match FIXED.iter().find(|(n, _)| *n == name) {
                Some((_, fixed)) if int(name, value).ok() == fixed.parse::<i64>().ok() => {}
                Some((_, fixed)) => {
                    return Err(Error::new(
                        Code::NotSupported,
                        format!("net.ipv4.vs.{name}: not supported by lvs (it behaves as {name} = {fixed})"),
                    ))
                }
                None => return Err(unknown(name)),
            },
        }
    }
    *ipvs.sysctl_mut() = conn;
    *ipvs.sync_sysctl_mut() = sync;
    *ipvs.sched_tunables_mut() = sched;
    Ok(())
}

/// `lblc(r)_expiration`: seconds (`proc_dointvec_jiffies`), not negative.
fn expiration(name: &str, value: &str) -> Result<Duration> {
    Ok(Duration::from_secs(in_range(name, value, 0, i64::from(i32::MAX) / 1000)? as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ipvs: &mut Ipvs, name: &str, value: &str) -> Result<()> {
        set_all(ipvs, [(name, value)])
    }

    #[test]
    fn defaults_read_as_the_kernel_shows_them() {
        let ipvs = Ipvs::new();
        let all = all(&ipvs);
        let get = |n: &str| all.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("expire_nodest_conn"), Some("0"));
        assert_eq!(get("conn_reuse_mode"), Some("1"));
        assert_eq!(get("sync_threshold"), Some("3\t50"));
        assert_eq!(get("sync_version"), Some("1"));
        assert_eq!(get("lblc_expiration"), Some("86400"));
        assert_eq!(get("pmtu_disc"), Some("1"));
        assert_eq!(all.len(), SUPPORTED.len() + FIXED.len());
    }

    #[test]
    fn every_spelling_of_a_name_reaches_the_same_setting() {
        let mut ipvs = Ipvs::new();
        set(&mut ipvs, "net.ipv4.vs.expire_nodest_conn", "1").unwrap();
        assert!(ipvs.sysctl().expire_nodest_conn);
        set(&mut ipvs, "net/ipv4/vs/expire_nodest_conn", "0").unwrap();
        assert!(!ipvs.sysctl().expire_nodest_conn);
        set(&mut ipvs, " expire_nodest_conn ", " 2 ").unwrap(); // any non-zero integer is on
        assert_eq!(get(&ipvs, "/proc/sys/net/ipv4/vs/expire_nodest_conn").unwrap(), "1");
    }

    #[test]
    fn values_reach_the_tables_that_obey_them() {
        let mut ipvs = Ipvs::new();
        set_all(
            &mut ipvs,
            [
                ("sloppy_tcp", "1"),
                ("sloppy_sctp", "1"),
                ("expire_quiescent_template", "1"),
                ("conn_reuse_mode", "3"),
                ("secure_tcp", "3"),
                ("sync_threshold", "5 100"),
                ("sync_version", "0"),
                ("sync_persist_mode", "1"),
                ("sync_qlen_max", "64"),
                ("lblc_expiration", "60"),
                ("lblcr_expiration", "120"),
            ],
        )
        .unwrap();
        let c = ipvs.sysctl();
        assert!(c.sloppy_tcp && c.sloppy_sctp && c.expire_quiescent_template);
        assert_eq!(c.conn_reuse_mode, 3);
        assert!(c.tcp_dos());
        let s = ipvs.sync_sysctl();
        assert_eq!((s.threshold, s.period, s.version, s.persist_mode, s.qlen_max), (5, 100, 0, true, 64));
        assert_eq!(ipvs.sched_tunables().lblc_expiration, Duration::from_secs(60));
        assert_eq!(ipvs.sched_tunables().lblcr_expiration, Duration::from_secs(120));
    }

    #[test]
    fn one_bad_setting_changes_nothing_and_is_named() {
        let mut ipvs = Ipvs::new();
        let before = all(&ipvs);
        let cases: [(&str, &str, &str, &str); 9] = [
            ("secure_tcp", "4", "ERANGE", "net.ipv4.vs.secure_tcp: 4 is out of range 0..3"),
            ("sync_version", "2", "ERANGE", "net.ipv4.vs.sync_version: 2 is out of range 0..1"),
            (
                "sync_threshold",
                "50 50",
                "ERANGE",
                "net.ipv4.vs.sync_threshold: threshold 50 must be below period 50",
            ),
            (
                "sync_threshold",
                "3",
                "EINVAL",
                "net.ipv4.vs.sync_threshold: '3' is not two integers (threshold period)",
            ),
            (
                "expire_nodest_conn",
                "yes",
                "EINVAL",
                "net.ipv4.vs.expire_nodest_conn: 'yes' is not an integer",
            ),
            (
                "conn_reuse_mode",
                "4294967296",
                "ERANGE",
                "net.ipv4.vs.conn_reuse_mode: 4294967296 is out of range",
            ),
            ("lblc_expiration", "-1", "ERANGE", "net.ipv4.vs.lblc_expiration: -1 is out of range 0..2147483"),
            (
                "drop_entry",
                "1",
                "ENOTSUP",
                "net.ipv4.vs.drop_entry: not supported by lvs (it behaves as drop_entry = 0)",
            ),
            ("no_such", "1", "ENOENT", "net.ipv4.vs.no_such: no such sysctl"),
        ];
        for (name, value, code, message) in cases {
            let e = set_all(&mut ipvs, [("sloppy_tcp", "1"), (name, value)]).unwrap_err();
            assert_eq!((e.code().errno(), e.message()), (code, message), "{name}={value}");
            assert_eq!(all(&ipvs), before, "{name}={value} left everything as it was");
        }
    }

    #[test]
    fn settings_lvs_does_not_act_on_accept_what_lvs_does() {
        let mut ipvs = Ipvs::new();
        set_all(&mut ipvs, [("conntrack", "0"), ("pmtu_disc", "1"), ("run_estimation", "1")]).unwrap();
        assert_eq!(set(&mut ipvs, "conntrack", "1").unwrap_err().code().errno(), "ENOTSUP");
        assert_eq!(get(&ipvs, "no_such").unwrap_err().code().errno(), "ENOENT");
    }
}
