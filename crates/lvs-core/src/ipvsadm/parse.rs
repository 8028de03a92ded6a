//! ipvsadm's command line, parsed the way ipvsadm 1.31 (with popt) parses it: short options may be
//! bundled (`-Ln`, `-At`), `-p` takes an optional argument, the command must come first, and the
//! table of legal command/option combinations produces ipvsadm's messages and exit codes.

use crate::addr::{HostPort, Netmask};
use crate::model::{
    sched_flags_from_names, DestConfig, Family, FwdMethod, Protocol, ServiceConfig, ServiceKey, TunnelConfig,
    TunnelCsum, TunnelType, DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHEDULER, MAX_TIMEOUT,
};
use std::net::IpAddr;

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-A`.
    AddService(ServiceConfig),
    /// `-E`.
    EditService(ServiceConfig),
    /// `-D`.
    DelService(ServiceKey),
    /// `-C`.
    Flush,
    /// `-L` / `-l`.
    List(ListOptions),
    /// `-a`.
    AddDest(ServiceKey, DestConfig),
    /// `-e`.
    EditDest(ServiceKey, DestConfig),
    /// `-d`: service, address, port (the service port when none was given).
    DelDest(ServiceKey, IpAddr, u16),
    /// `--set tcp tcpfin udp` (0 leaves a value unchanged).
    SetTimeout {
        /// TCP ESTABLISHED timeout in seconds.
        tcp: u32,
        /// TCP FIN_WAIT timeout.
        tcpfin: u32,
        /// UDP timeout.
        udp: u32,
    },
    /// `--start-daemon`.
    StartDaemon(DaemonConfig),
    /// `--stop-daemon`.
    StopDaemon {
        /// Which daemon.
        role: SyncRole,
    },
    /// `-R`: read commands from standard input.
    Restore,
    /// `-S`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-Z`, for one service or all.
    Zero(Option<ServiceKey>),
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

/// What `-L` shows and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// One service only (`-L -t …`).
    pub service: Option<ServiceKey>,
    /// `-c`: connections.
    pub connections: bool,
    /// `--timeout`.
    pub timeout: bool,
    /// `--daemon`.
    pub daemon: bool,
    /// Column set and number formatting.
    pub format: Format,
}

/// Listing format flags (`FMT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// `-n`.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// Master or backup sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRole {
    /// Sends connection updates.
    Master,
    /// Receives them.
    Backup,
}

/// `--start-daemon` settings, with ipvsadm's defaults where ipvsadm has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Role.
    pub role: SyncRole,
    /// `--mcast-interface`, default `eth0`.
    pub mcast_interface: String,
    /// `--syncid`, default 0.
    pub syncid: u8,
    /// `--sync-maxlen`, 0 = kernel default.
    pub sync_maxlen: u16,
    /// `--mcast-group`, none = 224.0.0.81.
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port`, 0 = 8848.
    pub mcast_port: u16,
    /// `--mcast-ttl`, 0 = 1.
    pub mcast_ttl: u8,
}

/// A command-line error: what ipvsadm prints on stderr and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The message, without a trailing newline.
    pub message: String,
    /// Exit status (2 for usage errors, 255 for popt errors and "try help").
    pub exit: i32,
}

fn fail(message: impl Into<String>) -> Usage {
    Usage { message: message.into(), exit: 2 }
}

fn try_help(program: &str) -> Usage {
    Usage { message: format!("Try `{program} -h' or '{program} --help' for more information."), exit: 255 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

/// Option bits, in ipvsadm's `OPTC_*` order (their names are `OPT_NAMES`).
mod o {
    pub const NUMERIC: usize = 0;
    pub const CONNECTION: usize = 1;
    pub const SERVICE: usize = 2;
    pub const SCHEDULER: usize = 3;
    pub const PERSISTENT: usize = 4;
    pub const NETMASK: usize = 5;
    pub const SERVER: usize = 6;
    pub const FORWARD: usize = 7;
    pub const WEIGHT: usize = 8;
    pub const UTHRESHOLD: usize = 9;
    pub const LTHRESHOLD: usize = 10;
    pub const MCAST: usize = 11;
    pub const TIMEOUT: usize = 12;
    pub const DAEMON: usize = 13;
    pub const STATS: usize = 14;
    pub const RATE: usize = 15;
    pub const THRESHOLDS: usize = 16;
    pub const PERSISTENTCONN: usize = 17;
    pub const NOSORT: usize = 18;
    pub const SYNCID: usize = 19;
    pub const EXACT: usize = 20;
    pub const ONEPACKET: usize = 21;
    pub const PE: usize = 22;
    pub const SCHED_FLAGS: usize = 23;
    pub const MCAST_GROUP: usize = 24;
    pub const MCAST_PORT: usize = 25;
    pub const MCAST_TTL: usize = 26;
    pub const SYNC_MAXLEN: usize = 27;
    pub const TUN_INFO: usize = 28;
    pub const TUN_TYPE: usize = 29;
    pub const TUN_PORT: usize = 30;
    pub const TUN_NOCSUM: usize = 31;
    pub const TUN_CSUM: usize = 32;
    pub const TUN_REMCSUM: usize = 33;
    pub const COUNT: usize = 34;
}

const OPT_NAMES: [&str; o::COUNT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// Legal combinations (`commands_v_options`): `+` required, `x` illegal, `1` at most one of them.
const LEGAL: [&[u8; o::COUNT]; 14] = [
    //-n c svc s p M r fwd w x y mc tot dmn st rt thr pc srt sid ex ops pe b grp port ttl size tinf type tprt nocs csum remc
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Cmd(Cmd),
    Help,
    Version,
    Service(Option<Protocol>),
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Fwd(FwdMethod),
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

struct Opt {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    tag: Tag,
}

const fn opt(long: &'static str, short: Option<char>, arg: Arg, tag: Tag) -> Opt {
    Opt { long, short, arg, tag }
}

const OPTIONS: &[Opt] = &[
    opt("add-service", Some('A'), Arg::None, Tag::Cmd(Cmd::Add)),
    opt("edit-service", Some('E'), Arg::None, Tag::Cmd(Cmd::Edit)),
    opt("delete-service", Some('D'), Arg::None, Tag::Cmd(Cmd::Del)),
    opt("clear", Some('C'), Arg::None, Tag::Cmd(Cmd::Flush)),
    opt("list", Some('L'), Arg::None, Tag::Cmd(Cmd::List)),
    opt("list", Some('l'), Arg::None, Tag::Cmd(Cmd::List)),
    opt("zero", Some('Z'), Arg::None, Tag::Cmd(Cmd::Zero)),
    opt("add-server", Some('a'), Arg::None, Tag::Cmd(Cmd::AddDest)),
    opt("edit-server", Some('e'), Arg::None, Tag::Cmd(Cmd::EditDest)),
    opt("delete-server", Some('d'), Arg::None, Tag::Cmd(Cmd::DelDest)),
    opt("set", None, Arg::None, Tag::Cmd(Cmd::Timeout)),
    opt("help", Some('h'), Arg::None, Tag::Help),
    opt("version", Some('v'), Arg::None, Tag::Version),
    opt("restore", Some('R'), Arg::None, Tag::Cmd(Cmd::Restore)),
    opt("save", Some('S'), Arg::None, Tag::Cmd(Cmd::Save)),
    opt("start-daemon", None, Arg::Required, Tag::Cmd(Cmd::StartDaemon)),
    opt("stop-daemon", None, Arg::Required, Tag::Cmd(Cmd::StopDaemon)),
    opt("tcp-service", Some('t'), Arg::Required, Tag::Service(Some(Protocol::Tcp))),
    opt("udp-service", Some('u'), Arg::Required, Tag::Service(Some(Protocol::Udp))),
    opt("sctp-service", None, Arg::Required, Tag::Service(Some(Protocol::Sctp))),
    opt("fwmark-service", Some('f'), Arg::Required, Tag::Service(None)),
    opt("scheduler", Some('s'), Arg::Required, Tag::Scheduler),
    opt("persistent", Some('p'), Arg::Optional, Tag::Persistent),
    opt("netmask", Some('M'), Arg::Required, Tag::Netmask),
    opt("real-server", Some('r'), Arg::Required, Tag::Server),
    opt("masquerading", Some('m'), Arg::None, Tag::Fwd(FwdMethod::Masq)),
    opt("ipip", Some('i'), Arg::None, Tag::Fwd(FwdMethod::Tunnel)),
    opt("gatewaying", Some('g'), Arg::None, Tag::Fwd(FwdMethod::Route)),
    opt("weight", Some('w'), Arg::Required, Tag::Weight),
    opt("u-threshold", Some('x'), Arg::Required, Tag::UThreshold),
    opt("l-threshold", Some('y'), Arg::Required, Tag::LThreshold),
    opt("numeric", Some('n'), Arg::None, Tag::Numeric),
    opt("connection", Some('c'), Arg::None, Tag::Connection),
    opt("mcast-interface", None, Arg::Required, Tag::McastInterface),
    opt("syncid", None, Arg::Required, Tag::SyncId),
    opt("timeout", None, Arg::None, Tag::Timeout),
    opt("daemon", None, Arg::None, Tag::Daemon),
    opt("stats", None, Arg::None, Tag::Stats),
    opt("rate", None, Arg::None, Tag::Rate),
    opt("thresholds", None, Arg::None, Tag::Thresholds),
    opt("persistent-conn", None, Arg::None, Tag::PersistentConn),
    opt("nosort", None, Arg::None, Tag::NoSort),
    opt("sort", None, Arg::None, Tag::Sort),
    opt("exact", Some('X'), Arg::None, Tag::Exact),
    opt("ipv6", Some('6'), Arg::None, Tag::Ipv6),
    opt("ops", Some('o'), Arg::None, Tag::Ops),
    opt("pe", None, Arg::Required, Tag::Pe),
    opt("sched-flags", Some('b'), Arg::Required, Tag::SchedFlags),
    opt("mcast-group", None, Arg::Required, Tag::McastGroup),
    opt("mcast-port", None, Arg::Required, Tag::McastPort),
    opt("mcast-ttl", None, Arg::Required, Tag::McastTtl),
    opt("sync-maxlen", None, Arg::Required, Tag::SyncMaxlen),
    opt("tun-info", None, Arg::None, Tag::TunInfo),
    opt("tun-type", None, Arg::Required, Tag::TunType),
    opt("tun-port", None, Arg::Required, Tag::TunPort),
    opt("tun-nocsum", None, Arg::None, Tag::TunNocsum),
    opt("tun-csum", None, Arg::None, Tag::TunCsum),
    opt("tun-remcsum", None, Arg::None, Tag::TunRemcsum),
];

/// One item from the option scanner: an option (with the text it was written as) or a bare
/// argument, which popt sets aside for later.
enum Item<'a> {
    Opt(&'static Opt, String, Option<String>),
    Bad(String, &'static str),
    Bare(&'a str),
}

/// Splits argv into options and bare arguments like popt: bundles of short options, attached or
/// separate arguments, `--name=value`, and `--` ending the options.
fn scan<'a>(args: &[&'a str]) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    let mut i = 0;
    let mut only_bare = false;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if only_bare || a == "-" || !a.starts_with('-') {
            items.push(Item::Bare(a));
            continue;
        }
        if a == "--" {
            only_bare = true;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let Some(o) = OPTIONS.iter().find(|o| o.long == name) else {
                items.push(Item::Bad(a.to_owned(), "unknown option"));
                continue;
            };
            let value = match (o.arg, inline) {
                (Arg::None, Some(_)) => {
                    items.push(Item::Bad(a.to_owned(), "option does not take an argument"));
                    continue;
                }
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some((*v).to_owned())
                    }
                    None => {
                        items.push(Item::Bad(a.to_owned(), "missing argument"));
                        continue;
                    }
                },
                (Arg::Optional, None) => optional_next(args, &mut i),
            };
            items.push(Item::Opt(o, a.to_owned(), value));
            continue;
        }
        // A bundle of short options: "-Ln", "-At", "-p1800".
        let chars: Vec<char> = a[1..].chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            let Some(o) = OPTIONS.iter().find(|o| o.short == Some(c)) else {
                items.push(Item::Bad(format!("-{c}"), "unknown option"));
                break;
            };
            let rest: String = chars[k..].iter().collect();
            let value = match o.arg {
                Arg::None => None,
                _ if !rest.is_empty() => {
                    k = chars.len();
                    Some(rest)
                }
                Arg::Required => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some((*v).to_owned())
                    }
                    None => {
                        items.push(Item::Bad(format!("-{c}"), "missing argument"));
                        break;
                    }
                },
                Arg::Optional => optional_next(args, &mut i),
            };
            items.push(Item::Opt(o, format!("-{c}"), value));
        }
    }
    items
}

fn optional_next(args: &[&str], i: &mut usize) -> Option<String> {
    match args.get(*i) {
        Some(v) if !v.starts_with('-') => {
            *i += 1;
            Some((*v).to_owned())
        }
        _ => None,
    }
}

/// `string_to_number`: strtol base 10 (leading blanks and a sign allowed), whole string, in range.
fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    let v = if neg { -v } else { v };
    (min..=max).contains(&v).then_some(v)
}

/// State collected while reading options (`struct ipvs_command_entry`).
struct Entry {
    cmd: Option<Cmd>,
    options: u64,
    format: Format,
    protocol: Option<Protocol>,
    svc_addr: Option<(IpAddr, u16)>,
    fwmark: u32,
    v6_fwmark: bool,
    scheduler: String,
    persistent: Option<u32>,
    netmask: Netmask,
    pe: Option<String>,
    one_packet: bool,
    sched_flags: Option<String>,
    dest: Option<(IpAddr, Option<u16>)>,
    fwd: FwdMethod,
    weight: i32,
    u_threshold: u32,
    l_threshold: u32,
    tunnel: TunnelConfig,
    role: Option<SyncRole>,
    mcast_interface: Option<String>,
    syncid: u8,
    sync_maxlen: u16,
    mcast_group: Option<IpAddr>,
    mcast_port: u16,
    mcast_ttl: u8,
}

impl Entry {
    fn set_option(&mut self, bit: usize) -> Result<(), Usage> {
        if self.options & (1 << bit) != 0 {
            return Err(fail(format!("multiple '{}' options specified", OPT_NAMES[bit])));
        }
        self.options |= 1 << bit;
        Ok(())
    }
    fn has(&self, bit: usize) -> bool {
        self.options & (1 << bit) != 0
    }
}

/// Parses one ipvsadm command line (without the program name). `program` is used in messages.
pub fn parse(program: &str, args: &[&str]) -> Result<Command, Usage> {
    let items = scan(args);
    let mut bare: Vec<&str> = Vec::new();
    let mut e = Entry {
        cmd: None,
        options: 0,
        format: Format::default(),
        protocol: None,
        svc_addr: None,
        fwmark: 0,
        v6_fwmark: false,
        scheduler: String::new(),
        persistent: None,
        netmask: Netmask::host(false),
        pe: None,
        one_packet: false,
        sched_flags: None,
        dest: None,
        fwd: FwdMethod::Route,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: TunnelConfig::default(),
        role: None,
        mcast_interface: None,
        syncid: 0,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    let mut first = true;
    for item in items {
        let (o, written, value) = match item {
            Item::Bare(b) => {
                bare.push(b);
                continue;
            }
            Item::Bad(text, why) => {
                if first {
                    return Err(try_help(program));
                }
                return Err(Usage { message: format!("{text}: {why}"), exit: 255 });
            }
            Item::Opt(o, written, value) => (o, written, value),
        };
        if first {
            first = false;
            match o.tag {
                Tag::Cmd(c) => {
                    e.cmd = Some(c);
                    if matches!(c, Cmd::StartDaemon | Cmd::StopDaemon) {
                        e.role = Some(match value.as_deref() {
                            Some("master") => SyncRole::Master,
                            Some("backup") => SyncRole::Backup,
                            _ if c == Cmd::StartDaemon => {
                                return Err(fail("illegal start-daemon parameter specified"))
                            }
                            _ => return Err(fail("illegal start_daemon specified")),
                        });
                    }
                    continue;
                }
                Tag::Help => return Ok(Command::Help),
                Tag::Version => return Ok(Command::Version),
                _ => return Err(try_help(program)),
            }
        }
        let given = value.is_some();
        let v = value.unwrap_or_default();
        match o.tag {
            // Only the first option may be a command; later ones are not in ipvsadm's option switch.
            Tag::Cmd(_) | Tag::Help | Tag::Version => {
                return Err(fail(format!("invalid option `{written}'")))
            }
            Tag::Service(proto) => {
                e.set_option(o::SERVICE)?;
                match proto {
                    Some(p) => {
                        e.protocol = Some(p);
                        let hp = HostPort::parse(&v)
                            .map_err(|_| fail("illegal virtual server address[:port] specified"))?;
                        if hp.addr.is_ipv6() {
                            e.netmask = Netmask::V6(128);
                        }
                        e.svc_addr = Some((hp.addr, hp.port.unwrap_or(0)));
                    }
                    None => {
                        e.protocol = Some(Protocol::Tcp);
                        e.fwmark = match number(&v, 1, u32::MAX as i64) {
                            Some(m) => m as u32,
                            None => return Err(fail(format!("invalid fwmark value `{v}' specified"))),
                        };
                    }
                }
            }
            Tag::Scheduler => {
                e.set_option(o::SCHEDULER)?;
                e.scheduler = v.chars().take(15).collect();
            }
            Tag::Persistent => {
                e.set_option(o::PERSISTENT)?;
                e.persistent = Some(if given { timeout(&v, 1)? } else { DEFAULT_PERSISTENT_TIMEOUT });
            }
            Tag::Netmask => {
                e.set_option(o::NETMASK)?;
                // Read with the family known at this point, as ipvsadm does.
                let v6 = e.v6_fwmark || e.svc_addr.is_some_and(|(a, _)| a.is_ipv6());
                e.netmask = if v6 {
                    match atoi(&v) {
                        p @ 1..=128 => Netmask::V6(p as u8),
                        _ => return Err(fail("illegal ipv6 netmask specified")),
                    }
                } else {
                    Netmask::V4(
                        inet_aton(&v)
                            .ok_or_else(|| fail("illegal virtual server persistent mask specified"))?,
                    )
                };
            }
            Tag::Server => {
                e.set_option(o::SERVER)?;
                let hp =
                    HostPort::parse(&v).map_err(|_| fail("illegal real server address[:port] specified"))?;
                e.dest = Some((hp.addr, hp.port));
            }
            Tag::Fwd(m) => {
                e.set_option(o::FORWARD)?;
                e.fwd = m;
            }
            Tag::Weight => {
                e.set_option(o::WEIGHT)?;
                e.weight = number(&v, 0, 65535).ok_or_else(|| fail("illegal weight specified"))? as i32;
            }
            Tag::UThreshold => {
                e.set_option(o::UTHRESHOLD)?;
                e.u_threshold = number(&v, 0, i32::MAX as i64)
                    .ok_or_else(|| fail("illegal u_threshold specified"))?
                    as u32;
            }
            Tag::LThreshold => {
                e.set_option(o::LTHRESHOLD)?;
                e.l_threshold = number(&v, 0, i32::MAX as i64)
                    .ok_or_else(|| fail("illegal l_threshold specified"))?
                    as u32;
            }
            Tag::Connection => e.set_option(o::CONNECTION)?,
            Tag::Numeric => {
                e.set_option(o::NUMERIC)?;
                e.format.numeric = true;
            }
            Tag::McastInterface => {
                e.set_option(o::MCAST)?;
                e.mcast_interface = Some(v.chars().take(15).collect());
            }
            Tag::SyncId => {
                e.set_option(o::SYNCID)?;
                e.syncid = number(&v, 0, 255).ok_or_else(|| fail("illegal syncid specified"))? as u8;
            }
            Tag::Timeout => e.set_option(o::TIMEOUT)?,
            Tag::Daemon => e.set_option(o::DAEMON)?,
            Tag::Stats => {
                e.set_option(o::STATS)?;
                e.format.stats = true;
            }
            Tag::Rate => {
                e.set_option(o::RATE)?;
                e.format.rate = true;
            }
            Tag::Thresholds => {
                e.set_option(o::THRESHOLDS)?;
                e.format.thresholds = true;
            }
            Tag::PersistentConn => {
                e.set_option(o::PERSISTENTCONN)?;
                e.format.persistent_conn = true;
            }
            Tag::NoSort => {
                e.set_option(o::NOSORT)?;
                e.format.nosort = true;
            }
            Tag::Sort => {}
            Tag::Exact => {
                e.set_option(o::EXACT)?;
                e.format.exact = true;
            }
            Tag::Ipv6 => {
                if e.fwmark != 0 {
                    e.v6_fwmark = true;
                    e.netmask = Netmask::V6(128);
                } else {
                    return Err(fail("-6 used before -f\n"));
                }
            }
            Tag::Ops => {
                e.set_option(o::ONEPACKET)?;
                e.one_packet = true;
            }
            Tag::Pe => {
                e.set_option(o::PE)?;
                e.pe = Some(v);
            }
            Tag::SchedFlags => {
                e.set_option(o::SCHED_FLAGS)?;
                e.sched_flags = Some(v);
            }
            Tag::McastGroup => {
                e.set_option(o::MCAST_GROUP)?;
                let (ok, family) = match v.parse::<IpAddr>() {
                    Ok(IpAddr::V6(a)) if v.contains(':') => (a.is_multicast(), "IPv6"),
                    Ok(IpAddr::V4(a)) if !v.contains(':') => (a.is_multicast(), "IPv4"),
                    _ => (false, if v.contains(':') { "IPv6" } else { "IPv4" }),
                };
                if !ok {
                    return Err(fail(format!("invalid {family} mcast-group `{v}'")));
                }
                e.mcast_group = v.parse().ok();
            }
            Tag::McastPort => {
                e.set_option(o::MCAST_PORT)?;
                e.mcast_port =
                    number(&v, 1, 65535).ok_or_else(|| fail("illegal mcast-port specified"))? as u16;
            }
            Tag::McastTtl => {
                e.set_option(o::MCAST_TTL)?;
                e.mcast_ttl = number(&v, 1, 255).ok_or_else(|| fail("illegal mcast-ttl specified"))? as u8;
            }
            Tag::SyncMaxlen => {
                e.set_option(o::SYNC_MAXLEN)?;
                e.sync_maxlen = number(&v, 1, 65535 - 20 - 8)
                    .ok_or_else(|| fail("illegal sync-maxlen specified"))?
                    as u16;
            }
            Tag::TunInfo => {
                e.set_option(o::TUN_INFO)?;
                e.format.tun_info = true;
            }
            Tag::TunType => {
                e.set_option(o::TUN_TYPE)?;
                e.tunnel.kind = match v.as_str() {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return Err(fail("illegal tunnel type specified")),
                };
            }
            Tag::TunPort => {
                e.set_option(o::TUN_PORT)?;
                e.tunnel.port =
                    number(&v, 1, 65535).ok_or_else(|| fail("illegal tunnel port specified"))? as u16;
            }
            Tag::TunNocsum => {
                e.set_option(o::TUN_NOCSUM)?;
            }
            Tag::TunCsum => {
                e.set_option(o::TUN_CSUM)?;
                e.tunnel.csum = TunnelCsum::Csum;
            }
            Tag::TunRemcsum => {
                e.set_option(o::TUN_REMCSUM)?;
                e.tunnel.csum = TunnelCsum::RemCsum;
            }
        }
    }
    let Some(cmd) = e.cmd else { return Err(try_help(program)) };

    let mut bare = bare.into_iter();
    let mut set_values = None;
    if cmd == Cmd::Timeout {
        match (bare.next(), bare.next(), bare.next()) {
            (Some(a), Some(b), Some(c)) => {
                set_values = Some((timeout(a, 0)?, timeout(b, 0)?, timeout(c, 0)?))
            }
            _ => return Err(fail("--set option requires 3 timeout values")),
        }
    }
    if let Some(extra) = bare.next() {
        return Err(fail(format!("unexpected argument {extra}")));
    }
    let sched_name = if e.scheduler.is_empty() { DEFAULT_SCHEDULER } else { e.scheduler.as_str() };
    let sched_bits = match &e.sched_flags {
        Some(text) => {
            let names: Vec<&str> = text.split(',').filter(|s| !s.is_empty()).collect();
            if names.is_empty() {
                return Err(fail(format!("invalid scheduler flag `{text}'")));
            }
            sched_flags_from_names(&names, sched_name).map_err(|err| fail(err.message()))?
        }
        None => 0,
    };

    check_legal(cmd, e.options)?;

    let key = service_key(&e);
    let netmask = e.netmask;
    Ok(match cmd {
        Cmd::Add | Cmd::Edit => {
            let key = key.ok_or_else(|| fail("You need to supply the 'service-address' option"))?;
            if !key.is_fwmark() && key.port() == 0 && e.persistent.is_none() {
                return Err(fail("Zero port specified for non-persistent service"));
            }
            if e.one_packet && !key.is_fwmark() && e.protocol != Some(Protocol::Udp) {
                return Err(fail("One-Packet Scheduling is only for UDP virtual services"));
            }
            let mut c = ServiceConfig::new(key);
            c.scheduler = sched_name.to_owned();
            c.persistent = e.persistent;
            c.netmask = netmask;
            c.pe = e.pe.clone().filter(|p| !p.is_empty());
            c.one_packet = e.one_packet;
            c.sched_flags = sched_bits;
            if cmd == Cmd::Add {
                Command::AddService(c)
            } else {
                Command::EditService(c)
            }
        }
        Cmd::Del => Command::DelService(key.ok_or_else(|| fail("missing service"))?),
        Cmd::Flush => Command::Flush,
        Cmd::List => {
            if (e.has(o::CONNECTION) || e.has(o::TIMEOUT) || e.has(o::DAEMON))
                && (e.has(o::STATS) || e.has(o::RATE) || e.has(o::THRESHOLDS))
                || (e.has(o::TIMEOUT) || e.has(o::DAEMON)) && e.has(o::PERSISTENTCONN)
            {
                return Err(fail("options conflicts in the list command"));
            }
            Command::List(ListOptions {
                service: key,
                connections: e.has(o::CONNECTION),
                timeout: e.has(o::TIMEOUT),
                daemon: e.has(o::DAEMON),
                format: e.format,
            })
        }
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let key = key.ok_or_else(|| fail("missing service"))?;
            let (addr, port) = e.dest.ok_or_else(|| fail("missing real server"))?;
            // A real server without a port gets the service port; DR and TUN always do.
            let mut port = port.unwrap_or(key.port());
            if cmd != Cmd::DelDest {
                if !key.is_fwmark() && matches!(e.fwd, FwdMethod::Tunnel | FwdMethod::Route) {
                    port = key.port();
                }
                if Family::of(addr) != key.family() && e.fwd != FwdMethod::Tunnel {
                    return Err(fail("Different address family is allowed only for tunneling servers"));
                }
                let tun_opts = o::TUN_TYPE..=o::TUN_REMCSUM;
                if tun_opts.clone().any(|b| e.has(b)) && e.fwd != FwdMethod::Tunnel {
                    return Err(fail("Tunnel options conflict with forward method"));
                }
                check_tunnel(e.tunnel.kind, e.options)?;
            }
            if cmd == Cmd::DelDest {
                Command::DelDest(key, addr, port)
            } else {
                let mut d = DestConfig::new(addr);
                d.port = Some(port);
                d.fwd = e.fwd;
                d.weight = e.weight;
                d.u_threshold = e.u_threshold;
                d.l_threshold = e.l_threshold;
                d.tunnel = e.tunnel;
                if cmd == Cmd::AddDest {
                    Command::AddDest(key, d)
                } else {
                    Command::EditDest(key, d)
                }
            }
        }
        Cmd::Timeout => {
            let (tcp, tcpfin, udp) = set_values.unwrap_or_default();
            Command::SetTimeout { tcp, tcpfin, udp }
        }
        Cmd::StartDaemon => Command::StartDaemon(DaemonConfig {
            role: e.role.unwrap_or(SyncRole::Master),
            mcast_interface: e.mcast_interface.clone().unwrap_or_else(|| "eth0".to_owned()),
            syncid: e.syncid,
            sync_maxlen: e.sync_maxlen,
            mcast_group: e.mcast_group,
            mcast_port: e.mcast_port,
            mcast_ttl: e.mcast_ttl,
        }),
        Cmd::StopDaemon => Command::StopDaemon { role: e.role.unwrap_or(SyncRole::Master) },
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save { numeric: e.format.numeric },
        Cmd::Zero => Command::Zero(key),
    })
}

/// `atoi` for the IPv6 `-M` prefix (ipvsadm uses atoi, then range-checks 1..128).
fn atoi(text: &str) -> i64 {
    let t = text.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).take(18).collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// `inet_aton`: one to four parts (decimal, octal with a leading 0, hex with 0x); the last part
/// fills the remaining bytes.
fn inet_aton(text: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        if digits.is_empty() && radix != 16 || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        vals.push(if digits.is_empty() { 0 } else { u64::from_str_radix(digits, radix).ok()? });
    }
    let (last, head) = vals.split_last()?;
    if head.iter().any(|&v| v > 255) || *last >= 1u64 << (8 * (4 - head.len())) {
        return None;
    }
    let mut n: u64 = 0;
    for (i, v) in head.iter().enumerate() {
        n |= v << (24 - 8 * i);
    }
    Some(std::net::Ipv4Addr::from((n | last) as u32))
}

fn timeout(text: &str, min: i64) -> Result<u32, Usage> {
    number(text, min, MAX_TIMEOUT as i64)
        .map(|v| v as u32)
        .ok_or_else(|| fail(format!("invalid timeout value `{text}' specified")))
}

fn service_key(e: &Entry) -> Option<ServiceKey> {
    if e.fwmark != 0 {
        let family = if e.v6_fwmark { Family::Inet6 } else { Family::Inet };
        return Some(ServiceKey::Fwmark { mark: e.fwmark, family });
    }
    let (addr, port) = e.svc_addr?;
    Some(ServiceKey::Addr { protocol: e.protocol.unwrap_or(Protocol::Tcp), addr, port })
}

fn check_legal(cmd: Cmd, options: u64) -> Result<(), Usage> {
    let row = LEGAL[cmd as usize];
    let name = CMD_NAMES[cmd as usize];
    let mut first_exclusive: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        let given = options & (1 << j) != 0;
        match (given, rule) {
            (false, b'+') => {
                return Err(fail(format!(
                    "You need to supply the '{}' option for the '{name}' command",
                    OPT_NAMES[j]
                )))
            }
            (true, b'x') => {
                return Err(fail(format!("Illegal '{}' option with the '{name}' command", OPT_NAMES[j])))
            }
            (true, b'1') => match first_exclusive {
                None => first_exclusive = Some(j),
                Some(last) => {
                    return Err(fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' command",
                        OPT_NAMES[j], OPT_NAMES[last]
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn check_tunnel(kind: TunnelType, options: u64) -> Result<(), Usage> {
    // tunnel_types_v_options: columns tun-port, tun-nocsum, tun-csum, tun-remcsum.
    let (row, name): (&[u8; 4], &str) = match kind {
        TunnelType::Ipip => (b"xxxx", "ipip"),
        TunnelType::Gue => (b"+111", "gue"),
        TunnelType::Gre => (b"x11x", "gre"),
    };
    let cols = [o::TUN_PORT, o::TUN_NOCSUM, o::TUN_CSUM, o::TUN_REMCSUM];
    let mut first: Option<usize> = None;
    for (j, &bit) in cols.iter().enumerate() {
        let given = options & (1 << bit) != 0;
        match (given, row[j]) {
            (false, b'+') => {
                return Err(fail(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    OPT_NAMES[bit]
                )))
            }
            (true, b'x') => {
                return Err(fail(format!(
                    "Illegal '{}' option with the '{name}' tunnel type",
                    OPT_NAMES[bit]
                )))
            }
            (true, b'1') => match first {
                None => first = Some(bit),
                Some(last) => {
                    return Err(fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                        OPT_NAMES[bit], OPT_NAMES[last]
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}
