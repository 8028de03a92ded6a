//! The IPVS connection table and the types of the packet path.
//!
//! Storage (`table.rs`) is one table per address family: compact entries (56 bytes for IPv4, each
//! in its own 64-byte cache line; 96 for IPv6) stored inline in an open-addressing table keyed by
//! the client→virtual tuple (one random memory access per established-flow lookup), a `hash → slot` index for NAT replies, a slab and
//! index for persistence templates, and a hierarchical timer wheel whose links live in the
//! entries, so expiry costs O(1) per connection and never scans the table.
//!
//! The protocol state machines are in [`tcp`], [`udp`] and [`sctp`]; the packet path itself
//! (`process_in`, `process_out`, `advance`, `route_flow`) is on [`crate::Ipvs`].

mod index;
pub mod sctp;
pub(crate) mod table;
pub mod tcp;
#[cfg(test)]
mod tests;
pub mod udp;
mod wheel;

use crate::dest::DestId;
use crate::model::{FwdMethod, TunnelConfig, MAX_TIMEOUT};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Direction of a packet relative to the connection (`IP_VS_DIR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client → real server.
    Input = 0,
    /// Real server → client (seen only for NAT).
    Output = 1,
    /// Client → real server on a connection that has seen no reply (non-NAT methods).
    InputOnly = 2,
}

/// IP protocol numbers.
pub mod ipproto {
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// The TCP/UDP port of FTP control connections (`FTPPORT`).
pub const FTP_PORT: u16 = 21;
/// The source port of active FTP data connections (`FTPDATA`); never scheduled.
pub const FTP_DATA_PORT: u16 = 20;
/// Ports below this need privileges (`net.ipv4.ip_unprivileged_port_start` default); FTP data
/// connections to the VIP are looked up on the port-21 service only for port 20 or ports >= this.
pub const UNPRIVILEGED_PORT_START: u16 = 1024;
/// Timeout a template gets when it expires while still controlling connections (`expire_later`).
pub const TEMPLATE_EXPIRE_LATER: u32 = 60;

/// Names a connection or template, for use right away: a connection's slot (and so its id) can
/// change when another connection is removed (backward shift) or the table is resized, and ids
/// are reused. Template ids are stable while the template lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u32);

impl ConnId {
    const V6: u32 = 1 << 31;
    pub(crate) fn new(v6: bool, index: u32) -> ConnId {
        ConnId(index | if v6 { Self::V6 } else { 0 })
    }
    pub(crate) fn is_v6(self) -> bool {
        self.0 & Self::V6 != 0
    }
    pub(crate) fn index(self) -> u32 {
        self.0 & !Self::V6
    }
    /// The raw value (bit 31 set for IPv6 entries).
    pub fn raw(self) -> u32 {
        self.0
    }
}

/// What the packet path needs to know about a packet. Build it with [`PacketMeta::new`] and the
/// `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// IP protocol number (only TCP, UDP and SCTP are load balanced).
    pub protocol: u8,
    /// Source address.
    pub saddr: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// The TCP flags byte ([`tcp::flags`]); ignored for other protocols.
    pub tcp_flags: u8,
    /// The type of the first SCTP chunk ([`sctp::chunk`]).
    pub sctp_chunk: u8,
    /// True when an ABORT chunk follows a first COOKIE ECHO / COOKIE ACK chunk.
    pub sctp_abort_follows: bool,
    /// IP datagram length (what the byte counters add).
    pub len: u32,
    /// Firewall mark (`skb->mark`), 0 for none.
    pub fwmark: u32,
}

impl PacketMeta {
    /// A packet from `src` to `dst` (ports from the socket addresses), no flags, length 0.
    pub fn new(protocol: u8, src: SocketAddr, dst: SocketAddr) -> PacketMeta {
        PacketMeta {
            protocol,
            saddr: src.ip(),
            sport: src.port(),
            daddr: dst.ip(),
            dport: dst.port(),
            tcp_flags: 0,
            sctp_chunk: 0,
            sctp_abort_follows: false,
            len: 0,
            fwmark: 0,
        }
    }
    /// A TCP segment with `flags`.
    pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: u8) -> PacketMeta {
        PacketMeta::new(ipproto::TCP, src, dst).with_tcp_flags(flags)
    }
    /// A UDP datagram.
    pub fn udp(src: SocketAddr, dst: SocketAddr) -> PacketMeta {
        PacketMeta::new(ipproto::UDP, src, dst)
    }
    /// An SCTP packet whose first chunk is `chunk`.
    pub fn sctp(src: SocketAddr, dst: SocketAddr, chunk: u8) -> PacketMeta {
        PacketMeta::new(ipproto::SCTP, src, dst).with_sctp_chunk(chunk, false)
    }
    /// Sets the TCP flags.
    pub fn with_tcp_flags(mut self, flags: u8) -> PacketMeta {
        self.tcp_flags = flags;
        self
    }
    /// Sets the first SCTP chunk type and whether an ABORT follows it.
    pub fn with_sctp_chunk(mut self, chunk: u8, abort_follows: bool) -> PacketMeta {
        self.sctp_chunk = chunk;
        self.sctp_abort_follows = abort_follows;
        self
    }
    /// Sets the IP length.
    pub fn with_len(mut self, len: u32) -> PacketMeta {
        self.len = len;
        self
    }
    /// Sets the firewall mark.
    pub fn with_fwmark(mut self, mark: u32) -> PacketMeta {
        self.fwmark = mark;
        self
    }
    /// The same flow in the other direction (ports and addresses swapped), other fields kept.
    pub fn reply(mut self) -> PacketMeta {
        std::mem::swap(&mut self.saddr, &mut self.daddr);
        std::mem::swap(&mut self.sport, &mut self.dport);
        self
    }
}

/// Where a client packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The connection (`None` for one-packet scheduling, whose entry is dropped at once).
    pub conn: Option<ConnId>,
    /// True when this packet created the connection.
    pub created: bool,
    /// The real server.
    pub dest: DestId,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port (for NAT the rewritten destination port).
    pub dport: u16,
    /// Forwarding method the connection was created with.
    pub fwd: FwdMethod,
    /// The server's tunnel parameters (for [`FwdMethod::Tunnel`]).
    pub tunnel: TunnelConfig,
}

/// Why a client packet is left to the local stack (`NF_ACCEPT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    /// Not TCP, UDP or SCTP.
    UnsupportedProtocol,
    /// No connection and no virtual service for it.
    NoService,
    /// No connection and not a connection opener: TCP without SYN (or with RST) unless
    /// `sloppy_tcp`; SCTP without INIT (or with ABORT) unless `sloppy_sctp`.
    NotSchedulable,
    /// Source port 20: active FTP data is never scheduled.
    FtpData,
    /// Reached a port-21 service through the FTP rule but no server could be chosen
    /// (`ip_vs_leave` passes such packets rather than rejecting them).
    FtpService,
}

/// Why a client packet is dropped silently (`NF_DROP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its connection's real server was deleted and `expire_nodest_conn` is 0.
    DestUnavailable,
    /// The connection table is at its configured limit (see `Ipvs::set_conn_limit`).
    TableFull,
    /// Source and destination address families differ.
    Malformed,
    /// A new connection to a `--pe sip` service without a Call-ID the engine accepts (not UDP,
    /// no or bad `Call-ID` header): `ip_vs_sched_persist` drops it when the engine's
    /// `fill_param` fails.
    NoPeData,
}

/// Why a client packet is answered with ICMP port unreachable and dropped (`ip_vs_leave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The scheduler found no usable real server (or the scheduler is `none`).
    NoDestination,
    /// A non-persistent port-0 service: "port zero only supported in persistent services".
    PortZeroNotPersistent,
}

/// The outcome for a client → virtual service packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InVerdict {
    /// Send to a real server.
    Forward(Forward),
    /// Hand to the local stack unchanged.
    Pass(PassReason),
    /// Drop silently.
    Drop(DropReason),
    /// Send ICMP (ICMPv6) port unreachable to the client, then drop.
    Reject(RejectReason),
}

impl InVerdict {
    /// The forwarding decision, if any.
    pub fn forward(&self) -> Option<&Forward> {
        match self {
            InVerdict::Forward(f) => Some(f),
            _ => None,
        }
    }
}

/// The outcome for a packet from a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutVerdict {
    /// A reply on a NAT connection: rewrite the source to `vaddr:vport`.
    Masq {
        /// The connection.
        conn: ConnId,
        /// Virtual address to write as source.
        vaddr: IpAddr,
        /// Virtual port to write as source port.
        vport: u16,
    },
    /// Not a NAT reply: leave it alone.
    Pass,
}

/// Per-state timeouts in seconds (`timeout_table` of each protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP, by [`tcp`] state.
    pub tcp: [u32; tcp::STATE_COUNT],
    /// UDP.
    pub udp: u32,
    /// SCTP, by [`sctp`] state.
    pub sctp: [u32; sctp::STATE_COUNT],
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { tcp: tcp::DEFAULT_TIMEOUTS, udp: udp::DEFAULT_TIMEOUT, sctp: sctp::DEFAULT_TIMEOUTS }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp`: sets TCP ESTABLISHED, TCP FIN_WAIT and UDP; 0 leaves a
    /// value unchanged (`ip_vs_set_timeout`).
    pub fn set(&mut self, tcp_secs: u32, tcpfin_secs: u32, udp_secs: u32) -> crate::Result<()> {
        if [tcp_secs, tcpfin_secs, udp_secs].iter().any(|&t| t > MAX_TIMEOUT) {
            return Err(crate::Error::invalid("invalid timeout value"));
        }
        if tcp_secs != 0 {
            self.tcp[tcp::ESTABLISHED as usize] = tcp_secs;
        }
        if tcpfin_secs != 0 {
            self.tcp[tcp::FIN_WAIT as usize] = tcpfin_secs;
        }
        if udp_secs != 0 {
            self.udp = udp_secs;
        }
        Ok(())
    }
    /// `ipvsadm --timeout`: `(tcp, tcpfin, udp)`, default `(900, 120, 300)`.
    pub fn summary(&self) -> (u32, u32, u32) {
        (self.tcp[tcp::ESTABLISHED as usize], self.tcp[tcp::FIN_WAIT as usize], self.udp)
    }
    /// Timeout of a connection state, in seconds.
    #[inline]
    pub(crate) fn of(&self, proto: u8, state: u8) -> u32 {
        match proto {
            ipproto::TCP => self.tcp.get(state as usize).copied().unwrap_or(2),
            ipproto::SCTP => self.sctp.get(state as usize).copied().unwrap_or(2),
            ipproto::UDP => self.udp,
            _ => 2,
        }
    }
}

/// The `/proc/sys/net/ipv4/vs/*` settings the connection table obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Expire connections whose real server was deleted (instead of dropping their packets), and
    /// flush them when a server is deleted. Default off.
    pub expire_nodest_conn: bool,
    /// Invalidate persistence templates whose server has weight 0. Default off.
    pub expire_quiescent_template: bool,
    /// Create TCP connections on any non-RST packet. Default off.
    pub sloppy_tcp: bool,
    /// Create SCTP connections on any non-ABORT packet. Default off.
    pub sloppy_sctp: bool,
    /// Bit 0: a SYN/INIT hitting an uncontrolled connection in TIME_WAIT/CLOSE (SCTP CLOSED)
    /// expires it and is scheduled anew; bit 1: also FIN_WAIT of non-NAT connections. Default 1.
    pub conn_reuse_mode: u32,
    /// TCP defense mode, 0..=3 as in the kernel: 0 off; 1 and 2 automatic, switching to the
    /// `tcp_states_dos` table only under memory pressure, which the user-space table never
    /// reports, so they act as off; 3 always uses that table. Default 0.
    pub secure_tcp: u32,
    /// Per-state timeouts.
    pub timeouts: Timeouts,
}

impl Sysctl {
    /// True when TCP state changes follow `tcp_states_dos` (`secure_tcp` 3).
    pub fn tcp_dos(&self) -> bool {
        self.secure_tcp >= 3
    }
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            sloppy_sctp: false,
            conn_reuse_mode: 1,
            secure_tcp: 0,
            timeouts: Timeouts::default(),
        }
    }
}

/// One line of `ipvsadm -Lc` (`/proc/net/ip_vs_conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The entry.
    pub id: ConnId,
    /// IP protocol number; 0 (`IP`) for firewall-mark templates.
    pub protocol: u8,
    /// True for persistence templates.
    pub template: bool,
    /// State name (`ESTABLISHED`, `UDP`, `C-SENT`, `NONE`/`ASSURED` for templates, …).
    pub state: &'static str,
    /// Time until expiry.
    pub expires: Duration,
    /// Client (for templates the masked client network, port 0).
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address (for firewall-mark templates the mark written as an address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// The real server.
    pub dest: DestId,
    /// Kernel `IP_VS_CONN_F_*` flags.
    pub flags: u32,
    /// For templates, the number of connections they control.
    pub controls: u32,
    /// For templates keyed by a persistence engine: its name (`sip`).
    pub pe_name: Option<&'static str>,
    /// ... and the data (the SIP Call-ID).
    pub pe_data: Option<Vec<u8>>,
}

impl ConnInfo {
    /// `ip_vs_proto_name`: `TCP`, `UDP`, `SCTP`, or `IP` for firewall-mark templates.
    pub fn protocol_name(&self) -> &'static str {
        proto_name(self.protocol)
    }
}

/// `ip_vs_proto_name` for the protocols a table can hold.
pub fn proto_name(protocol: u8) -> &'static str {
    match protocol {
        ipproto::TCP => "TCP",
        ipproto::UDP => "UDP",
        ipproto::SCTP => "SCTP",
        0 => "IP",
        _ => "IP_?",
    }
}

/// Counts of the connection table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnTableStats {
    /// Live connections (not templates).
    pub conns: u64,
    /// Live persistence templates.
    pub templates: u64,
    /// Entries refused because the table was at its limit.
    pub refused: u64,
    /// The configured limit on connections + templates, if any.
    pub limit: Option<u64>,
}

/// Memory of the connection table, from the capacities actually allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnMemory {
    /// Live entries.
    pub entries: u64,
    /// Entry bytes: the open-addressing connection table (free slots included) and the
    /// template slab.
    pub slab_bytes: u64,
    /// Index bytes (NAT-reply and template indexes).
    pub index_bytes: u64,
    /// Timer wheel bytes (the links are inside the entries).
    pub wheel_bytes: u64,
}

impl ConnMemory {
    /// All bytes.
    pub fn total_bytes(&self) -> u64 {
        self.slab_bytes + self.index_bytes + self.wheel_bytes
    }
    /// Bytes per live entry, all in.
    pub fn bytes_per_entry(&self) -> f64 {
        if self.entries == 0 {
            0.0
        } else {
            self.total_bytes() as f64 / self.entries as f64
        }
    }
}
