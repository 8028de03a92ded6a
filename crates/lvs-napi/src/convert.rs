//! JS-shaped objects and their conversion to and from core types.

use crate::error::{invalid, to_js, Result};
use lvs_core::addr::{HostPort, Netmask, SocketText};
use lvs_core::conn::{ConnInfo, Forward};
use lvs_core::dest::Dest;
use lvs_core::model::{
    sched_flag_names, sched_flags_from_names, DestConfig, Family, FwdMethod, Protocol, ServiceConfig,
    ServiceKey, TunnelConfig, TunnelCsum, TunnelType, DEFAULT_PERSISTENT_TIMEOUT,
};
use lvs_core::sched::Flow;
use lvs_core::stats::Stats;
use napi::bindgen_prelude::BigInt;
use napi_derive::napi;

/// Identifies a virtual service: `{ protocol, address }` or `{ fwmark, family }`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ServiceRef {
    /// `'tcp' | 'udp' | 'sctp'` (with `address`).
    #[napi(ts_type = "'tcp' | 'udp' | 'sctp'")]
    pub protocol: Option<String>,
    /// Virtual address `'ip:port'` or `'[ipv6]:port'`.
    pub address: Option<String>,
    /// Firewall mark (instead of protocol and address).
    pub fwmark: Option<u32>,
    /// Address family of a fwmark service, default `'inet'`.
    #[napi(ts_type = "'inet' | 'inet6'")]
    pub family: Option<String>,
}

/// Settings of a virtual service (`ipvsadm -A`/`-E`).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// See [`ServiceRef`].
    #[napi(ts_type = "'tcp' | 'udp' | 'sctp'")]
    pub protocol: Option<String>,
    /// See [`ServiceRef`].
    pub address: Option<String>,
    /// See [`ServiceRef`].
    pub fwmark: Option<u32>,
    /// See [`ServiceRef`].
    #[napi(ts_type = "'inet' | 'inet6'")]
    pub family: Option<String>,
    /// Scheduler name, default `wlc`.
    pub scheduler: Option<String>,
    /// Persistence: `true` for 360 s, or a timeout in seconds.
    #[napi(ts_type = "boolean | number")]
    pub persistent: Option<napi::Either<bool, u32>>,
    /// Persistence netmask: dotted IPv4 mask or IPv6 prefix length.
    #[napi(ts_type = "string | number")]
    pub netmask: Option<napi::Either<String, u32>>,
    /// Persistence engine (`'sip'`).
    pub pe: Option<String>,
    /// One-packet scheduling (UDP and fwmark services).
    pub one_packet: Option<bool>,
    /// Scheduler flags (`'sh-fallback'`, `'sh-port'`, `'mh-fallback'`, `'mh-port'`, `'flag-1'`…).
    pub sched_flags: Option<Vec<String>>,
}

/// Tunnel settings of a real server.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    /// `'ipip' | 'gue' | 'gre'`.
    #[napi(ts_type = "'ipip' | 'gue' | 'gre'")]
    pub r#type: String,
    /// UDP port (GUE).
    pub port: Option<u32>,
    /// `'none' | 'csum' | 'remcsum'`.
    #[napi(ts_type = "'none' | 'csum' | 'remcsum'")]
    pub checksum: Option<String>,
}

/// Settings of a real server (`ipvsadm -a`/`-e`).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// `'ip[:port]'` or `'[ipv6]:port'`.
    pub address: String,
    /// Forwarding method, default `'route'` (direct routing).
    pub method: Option<String>,
    /// Weight 0..65535, default 1.
    pub weight: Option<i32>,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: Option<u32>,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: Option<u32>,
    /// Tunnel settings.
    pub tunnel: Option<TunnelSpec>,
}

/// Traffic counters.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct StatsInfo {
    /// Connections scheduled.
    pub conns: BigInt,
    /// Packets from clients.
    pub in_packets: BigInt,
    /// Packets to clients.
    pub out_packets: BigInt,
    /// Bytes from clients.
    pub in_bytes: BigInt,
    /// Bytes to clients.
    pub out_bytes: BigInt,
}

/// Estimated rates (2-second EWMA, as IPVS computes them).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct RatesInfo {
    /// Connections per second.
    pub cps: f64,
    /// Incoming packets per second.
    pub in_pps: f64,
    /// Outgoing packets per second.
    pub out_pps: f64,
    /// Incoming bytes per second.
    pub in_bps: f64,
    /// Outgoing bytes per second.
    pub out_bps: f64,
}

/// A real server as listed.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `'ip:port'` / `'[ipv6]:port'`.
    pub address: String,
    /// `'masq' | 'route' | 'tunnel' | 'local' | 'bypass'`.
    pub method: String,
    /// Weight.
    pub weight: i32,
    /// Upper threshold.
    pub upper_threshold: u32,
    /// Lower threshold.
    pub lower_threshold: u32,
    /// Tunnel settings for tunnel servers.
    pub tunnel: Option<TunnelSpec>,
    /// ActiveConn.
    pub active_conns: u32,
    /// InActConn.
    pub inactive_conns: u32,
    /// PersistConn.
    pub persistent_conns: u32,
    /// True while over the upper threshold.
    pub overloaded: bool,
    /// Counters.
    pub stats: StatsInfo,
    /// Rates.
    pub rates: RatesInfo,
}

/// A virtual service as listed.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Protocol (absent for fwmark services).
    pub protocol: Option<String>,
    /// Virtual address (absent for fwmark services).
    pub address: Option<String>,
    /// Firewall mark.
    pub fwmark: Option<u32>,
    /// `'inet' | 'inet6'`.
    pub family: String,
    /// Scheduler name.
    pub scheduler: String,
    /// Persistence timeout in seconds, if persistent.
    pub persistent: Option<u32>,
    /// Persistence netmask.
    pub netmask: String,
    /// Persistence engine.
    pub pe: Option<String>,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Scheduler flags, as ipvsadm names them.
    pub sched_flags: Vec<String>,
    /// Counters.
    pub stats: StatsInfo,
    /// Rates.
    pub rates: RatesInfo,
    /// Real servers in ipvsadm's order.
    pub servers: Vec<ServerInfo>,
}

fn protocol(text: &str) -> Result<Protocol> {
    match text {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(invalid(format!("unknown protocol `{text}' (expected tcp, udp or sctp)"))),
    }
}

fn family(text: Option<&str>) -> Result<Family> {
    match text {
        None | Some("inet") => Ok(Family::Inet),
        Some("inet6") => Ok(Family::Inet6),
        Some(other) => Err(invalid(format!("unknown family `{other}' (expected inet or inet6)"))),
    }
}

/// A service key from the identifying fields of a ref or spec.
pub fn service_key(
    proto: Option<&str>,
    address: Option<&str>,
    fwmark: Option<u32>,
    fam: Option<&str>,
) -> Result<ServiceKey> {
    match (fwmark, address) {
        (Some(_), Some(_)) => Err(invalid("give either fwmark or protocol and address, not both")),
        (Some(mark), None) => Ok(ServiceKey::Fwmark { mark, family: family(fam)? }),
        (None, Some(a)) => {
            let hp = HostPort::parse(a).map_err(to_js)?;
            Ok(ServiceKey::Addr {
                protocol: protocol(proto.unwrap_or("tcp"))?,
                addr: hp.addr,
                port: hp.port.unwrap_or(0),
            })
        }
        (None, None) => Err(invalid("a service needs an address or a fwmark")),
    }
}

impl ServiceRef {
    /// The key it names.
    pub fn key(&self) -> Result<ServiceKey> {
        service_key(self.protocol.as_deref(), self.address.as_deref(), self.fwmark, self.family.as_deref())
    }
}

impl ServiceSpec {
    /// The core configuration, with ipvsadm's defaults for what is absent.
    pub fn config(&self) -> Result<ServiceConfig> {
        let key = service_key(
            self.protocol.as_deref(),
            self.address.as_deref(),
            self.fwmark,
            self.family.as_deref(),
        )?;
        let mut c = ServiceConfig::new(key);
        if let Some(s) = &self.scheduler {
            c.scheduler = s.clone();
        }
        c.persistent = match self.persistent {
            None | Some(napi::Either::A(false)) => None,
            Some(napi::Either::A(true)) => Some(DEFAULT_PERSISTENT_TIMEOUT),
            Some(napi::Either::B(t)) => Some(t),
        };
        if let Some(m) = &self.netmask {
            let text = match m {
                napi::Either::A(s) => s.clone(),
                napi::Either::B(n) => n.to_string(),
            };
            c.netmask = Netmask::parse(&text, key.is_v6()).map_err(to_js)?;
        }
        c.pe = self.pe.clone();
        c.one_packet = self.one_packet.unwrap_or(false);
        if let Some(flags) = &self.sched_flags {
            c.sched_flags = sched_flags_from_names(flags, &c.scheduler).map_err(to_js)?;
        }
        Ok(c)
    }
}

fn method(text: &str) -> Result<FwdMethod> {
    match text {
        "masq" | "nat" => Ok(FwdMethod::Masq),
        "route" | "dr" => Ok(FwdMethod::Route),
        "tunnel" | "tun" => Ok(FwdMethod::Tunnel),
        "local" => Ok(FwdMethod::Local),
        _ => Err(invalid(format!("unknown forwarding method `{text}' (expected masq, route or tunnel)"))),
    }
}

fn method_name(m: FwdMethod) -> &'static str {
    match m {
        FwdMethod::Masq => "masq",
        FwdMethod::Route => "route",
        FwdMethod::Tunnel => "tunnel",
        FwdMethod::Local => "local",
        FwdMethod::Bypass => "bypass",
    }
}

fn tunnel(spec: &TunnelSpec) -> Result<TunnelConfig> {
    let kind = match spec.r#type.as_str() {
        "ipip" => TunnelType::Ipip,
        "gue" => TunnelType::Gue,
        "gre" => TunnelType::Gre,
        other => return Err(invalid(format!("unknown tunnel type `{other}'"))),
    };
    let csum = match spec.checksum.as_deref() {
        None | Some("none") => TunnelCsum::None,
        Some("csum") => TunnelCsum::Csum,
        Some("remcsum") => TunnelCsum::RemCsum,
        Some(other) => return Err(invalid(format!("unknown tunnel checksum `{other}'"))),
    };
    let port = u16::try_from(spec.port.unwrap_or(0)).map_err(|_| invalid("tunnel port out of range"))?;
    Ok(TunnelConfig { kind, port, csum })
}

fn tunnel_spec(t: &TunnelConfig) -> TunnelSpec {
    let (kind, csum) = (
        match t.kind {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        },
        match t.csum {
            TunnelCsum::None => "none",
            TunnelCsum::Csum => "csum",
            TunnelCsum::RemCsum => "remcsum",
        },
    );
    TunnelSpec { r#type: kind.into(), port: Some(t.port as u32), checksum: Some(csum.into()) }
}

impl ServerSpec {
    /// The core configuration, with ipvsadm's defaults for what is absent.
    pub fn config(&self) -> Result<DestConfig> {
        let hp = HostPort::parse(&self.address).map_err(to_js)?;
        let mut c = DestConfig::new(hp.addr);
        c.port = hp.port;
        if let Some(m) = &self.method {
            c.fwd = method(m)?;
        }
        c.weight = self.weight.unwrap_or(1);
        c.u_threshold = self.upper_threshold.unwrap_or(0);
        c.l_threshold = self.lower_threshold.unwrap_or(0);
        if let Some(t) = &self.tunnel {
            c.tunnel = tunnel(t)?;
        }
        Ok(c)
    }
}

/// Counters and rates of a stats block.
pub fn stats_info(s: &Stats) -> (StatsInfo, RatesInfo) {
    let c = s.counters();
    let r = s.rates();
    (
        StatsInfo {
            conns: BigInt::from(c.conns),
            in_packets: BigInt::from(c.inpkts),
            out_packets: BigInt::from(c.outpkts),
            in_bytes: BigInt::from(c.inbytes),
            out_bytes: BigInt::from(c.outbytes),
        },
        RatesInfo {
            cps: r.cps as f64,
            in_pps: r.inpps as f64,
            out_pps: r.outpps as f64,
            in_bps: r.inbps as f64,
            out_bps: r.outbps as f64,
        },
    )
}

/// A listed real server.
pub fn server_info(d: &Dest) -> ServerInfo {
    let (stats, rates) = stats_info(&d.stats);
    ServerInfo {
        address: SocketText(d.addr, d.port).to_string(),
        method: method_name(d.fwd).into(),
        weight: d.weight,
        upper_threshold: d.u_threshold,
        lower_threshold: d.l_threshold,
        tunnel: (d.fwd == FwdMethod::Tunnel).then(|| tunnel_spec(&d.tunnel)),
        active_conns: d.activeconns,
        inactive_conns: d.inactconns(),
        persistent_conns: d.persistconns,
        overloaded: d.overloaded,
        stats,
        rates,
    }
}

/// A listed service (servers supplied in display order).
pub fn service_info(c: &ServiceConfig, s: &Stats, servers: Vec<ServerInfo>) -> ServiceInfo {
    let (stats, rates) = stats_info(s);
    let (protocol, address, fwmark) = match c.key {
        ServiceKey::Addr { protocol, addr, port } => {
            (Some(protocol.name().to_ascii_lowercase()), Some(SocketText(addr, port).to_string()), None)
        }
        ServiceKey::Fwmark { mark, .. } => (None, None, Some(mark)),
    };
    ServiceInfo {
        protocol,
        address,
        fwmark,
        family: if c.key.is_v6() { "inet6" } else { "inet" }.into(),
        scheduler: c.scheduler.clone(),
        persistent: c.persistent,
        netmask: c.netmask.to_string(),
        pe: c.pe.clone(),
        one_packet: c.one_packet,
        sched_flags: sched_flag_names(c.sched_flags, &c.scheduler).into_iter().map(String::from).collect(),
        stats,
        rates,
        servers,
    }
}

/// A flow to route: `{ protocol, client, virtual }` or `{ fwmark, client, virtual? }`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct FlowQuery {
    /// `'tcp' | 'udp' | 'sctp'`, default `'tcp'`.
    #[napi(ts_type = "'tcp' | 'udp' | 'sctp'")]
    pub protocol: Option<String>,
    /// Client `'ip:port'`.
    pub client: String,
    /// Virtual `'ip:port'` the client connects to (optional with `fwmark`).
    pub r#virtual: Option<String>,
    /// Firewall mark the packet carries.
    pub fwmark: Option<u32>,
}

impl FlowQuery {
    /// The flow and mark.
    pub fn flow(&self) -> Result<(Flow, u32)> {
        let client = HostPort::parse(&self.client).map_err(to_js)?;
        let protocol = protocol(self.protocol.as_deref().unwrap_or("tcp"))?;
        let (daddr, dport) = match (&self.r#virtual, self.fwmark) {
            (Some(v), _) => {
                let hp = HostPort::parse(v).map_err(to_js)?;
                (hp.addr, hp.port.unwrap_or(0))
            }
            (None, Some(_)) if client.addr.is_ipv6() => (std::net::Ipv6Addr::UNSPECIFIED.into(), 0),
            (None, Some(_)) => (std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            (None, None) => return Err(invalid("a flow needs `virtual` (or a `fwmark`)")),
        };
        if daddr.is_ipv6() != client.addr.is_ipv6() {
            return Err(invalid("client and virtual addresses must be of one family"));
        }
        let flow = Flow {
            protocol: protocol.number(),
            saddr: client.addr,
            sport: client.port.unwrap_or(0),
            daddr,
            dport,
        };
        Ok((flow, self.fwmark.unwrap_or(0)))
    }
}

/// Where a flow went.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The real server `'ip:port'`.
    pub server: String,
    /// Forwarding method.
    pub method: String,
    /// True when this query created the connection (false: it already existed).
    pub created: bool,
}

/// The routing decision as JS sees it.
pub fn route_info(f: &Forward) -> RouteInfo {
    RouteInfo {
        server: SocketText(f.daddr, f.dport).to_string(),
        method: method_name(f.fwd).into(),
        created: f.created,
    }
}

/// A connection or persistence template, as `ipvsadm -Lc` shows it.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// `'tcp' | 'udp' | 'sctp' | 'ip'` (`'ip'`: a firewall-mark template).
    pub protocol: String,
    /// True for persistence templates.
    pub template: bool,
    /// IPVS state name (`ESTABLISHED`, `SYN_RECV`, `UDP`, `NONE`, `ASSURED`, …).
    pub state: String,
    /// Milliseconds until it expires.
    pub expires_ms: f64,
    /// Client `'ip:port'` (templates: the masked client network, port 0).
    pub client: String,
    /// Virtual `'ip:port'` (fwmark templates: the mark written as an address).
    pub r#virtual: String,
    /// Real server `'ip:port'`.
    pub server: String,
    /// Forwarding method.
    pub method: String,
    /// Persistence engine of a template keyed by one (`'sip'`).
    pub pe: Option<String>,
    /// The engine's data (the SIP Call-ID; bytes that are not UTF-8 shown as U+FFFD).
    pub pe_data: Option<String>,
}

/// A listed connection.
pub fn connection_info(c: &ConnInfo) -> ConnectionInfo {
    ConnectionInfo {
        protocol: c.protocol_name().to_ascii_lowercase(),
        template: c.template,
        state: c.state.into(),
        expires_ms: c.expires.as_millis() as f64,
        client: SocketText(c.caddr, c.cport).to_string(),
        r#virtual: SocketText(c.vaddr, c.vport).to_string(),
        server: SocketText(c.daddr, c.dport).to_string(),
        method: method_name(c.fwd).into(),
        pe: c.pe_name.map(String::from),
        pe_data: c.pe_data.as_deref().map(|d| String::from_utf8_lossy(d).into_owned()),
    }
}

/// Connection timeouts in seconds (`--set tcp tcpfin udp`).
#[napi(object)]
#[derive(Debug, Clone, Copy)]
pub struct TimeoutsInfo {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcpfin: u32,
    /// UDP.
    pub udp: u32,
}
