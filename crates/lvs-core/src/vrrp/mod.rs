//! VRRP (v2 RFC 3768, v3 RFC 5798) as keepalived 2.2.7 runs it: the per-instance state machine and
//! sync groups, pure and clocked by the caller.
//!
//! An [`Instance`] takes events (start, a received message, the clock reaching
//! [`Instance::next_deadline`], priority and fault changes, shutdown) and answers with [`Action`]s in
//! the order keepalived performs them. The runtime does the I/O: it sends each `Send` message in an
//! IP packet (TTL 255, TOS 0xc0, protocol 112), claims or releases the VIPs, sends gratuitous ARP or
//! unsolicited NA rounds and logs. The message bytes come from [`crate::wire::vrrp`].
//!
//! Notes for the runtime (helper C), beyond the task-B contract, which is kept as written:
//! * Additions: [`DropReason`] and [`Counters`] fields, [`Instance::advert`],
//!   [`Instance::master_adver_int_cs`], [`InstanceConfig::check_unicast_src`], and in
//!   `wire::vrrp` the constants `PROTOCOL`, `MCAST_V4`, `MCAST_V6`, `TTL` and `Repr::to_bytes`.
//! * `ReleaseVips` also comes on startup into BACKUP (keepalived clears leftovers): treat it as
//!   idempotent.
//! * `Auth::Ah` is refused by `validate` (the VRRP bytes alone cannot carry the HMAC); messages
//!   that arrive with IP protocol 51 are dropped and logged.
//! * `Received::message` must be the IP payload as the IP length says (no link padding), and
//!   `ip_payload_len` that length; TTL is the received TTL / hop limit.

mod config;
mod instance;
mod sync;

#[cfg(test)]
mod tests;

pub use config::InstanceConfig;
pub use instance::DropReason;
pub use instance::{Counters, Instance};
pub use sync::SyncGroup;

use crate::time::Instant;
use std::fmt;
use std::net::IpAddr;

/// The state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started yet.
    Init,
    /// Listening to a master; takes over when the master-down timer expires.
    Backup,
    /// Owns the virtual addresses and advertises.
    Master,
    /// A tracked resource failed: no adverts, no addresses.
    Fault,
    /// Shut down.
    Stop,
}

impl State {
    /// keepalived's name for the state, as in `Entering MASTER STATE`.
    pub const fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A received VRRP message with the facts of its IP header that the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The IP source.
    pub src: IpAddr,
    /// The IP destination (the multicast group, or our address for unicast).
    pub dst: IpAddr,
    /// The TTL / hop limit.
    pub ttl: u8,
    /// The IP protocol: 112 (VRRP) or 51 (AH in front of VRRP).
    pub protocol: u8,
    /// The IP payload length (total length − header length for IPv4, payload length for IPv6).
    pub ip_payload_len: usize,
    /// The VRRP message.
    pub message: &'a [u8],
}

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a complete VRRP message (checksum included) to `dst`.
    Send {
        /// The multicast group or a unicast peer.
        dst: IpAddr,
        /// The VRRP message.
        message: Vec<u8>,
    },
    /// The instance changed state.
    Transition {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
    },
    /// Take the VIPs: the director answers ARP/ND for them from now on.
    ClaimVips,
    /// Give the VIPs up.
    ReleaseVips,
    /// Announce every VIP `rounds` times (gratuitous ARP for IPv4, unsolicited NA for IPv6).
    Garp {
        /// How many rounds over all VIPs.
        rounds: u32,
    },
    /// A log line in keepalived's words, e.g. `(VI_1) Entering MASTER STATE`.
    Log(String),
}

/// Whether a deadline is set and has been reached at `now`.
fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|t| t <= now)
}
