//! Packet views and builders for the headers the packet path touches, in the style of smoltcp's
//! `wire` module.
//!
//! Every header has two layers:
//!
//! * a **packet** type (`Ipv4Packet<T>`, `TcpPacket<T>`, …) that wraps any `T: AsRef<[u8]>` and reads
//!   fields straight from the octets; with `T: AsMut<[u8]>` as well it also writes them, so the same
//!   type serves a borrowed RX frame (`&[u8]`) and an in-place rewrite (`&mut [u8]`). Field positions
//!   live in a private `field` module as byte ranges. Accessors are `#[inline]` and never allocate.
//! * a **representation** (`Ipv4Repr`, `TcpRepr`, …): a small validated value that is `parse`d from a
//!   packet, knows its `buffer_len()` and is `emit`ted into one. Emitting is how tests and the packet
//!   path build frames.
//!
//! ## The length contract
//!
//! `Packet::new_unchecked` wraps a buffer without looking at it; `Packet::new_checked` is
//! `new_unchecked` followed by `check_len`, which validates every length the accessors rely on
//! (header length fields, total length against the buffer, data offsets). **Once `check_len` has
//! passed, no accessor panics**, whatever the bytes are; malformed input only ever yields `Err(Error)`.
//! Setters and `Repr::emit` may panic when the buffer is shorter than `Repr::buffer_len()`: they are
//! for buffers the caller sized. Never use `new_checked` on a reused buffer you are about to emit
//! into (its stale length fields are meaningless); use `new_unchecked`.
//!
//! ICMP error messages carry a truncated copy of the offending datagram; `Ipv4Packet` and
//! `Ipv6Packet` therefore also have `new_checked_truncated`, which validates only the fixed header and
//! lets `payload()` return what is actually there.
//!
//! Checksums: [`checksum`] has the Internet checksum, pseudo-header sums, RFC 1624 incremental
//! updates and [`checksum::rewrite_l4`], the NAT helper. SCTP's CRC32c is in [`sctp`]. Whether
//! `Repr::parse` verifies and `Repr::emit` fills checksums is set by [`ChecksumCapabilities`], so
//! hardware offload can be modelled.

use core::fmt;

/// Declares a C-like enum over an integer type with an `Unknown(value)` variant for every value
/// without a name, and the conversions both ways (smoltcp's `enum_with_unknown!`).
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $(
              $( #[$variant_attr:meta] )*
              $variant:ident = $value:expr
            ),+ $(,)?
        }
    ) => {
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
        $( #[$enum_attr] )*
        pub enum $name {
            $(
              $( #[$variant_attr] )*
              $variant
            ),*,
            /// A value without a name here. Never construct it with a value that has one.
            Unknown($ty)
        }

        impl ::core::convert::From<$ty> for $name {
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant ),*,
                    other => $name::Unknown(other)
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value ),*,
                    $name::Unknown(other) => other
                }
            }
        }
    }
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod gre;
pub mod gue;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipip;
pub mod ipv4;
pub mod ipv6;
pub mod ipvs_sync;
pub mod sctp;
pub mod tcp;
pub mod tunnel;
pub mod udp;
pub mod vrrp;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod pnet_tests;

pub use arp::{Packet as ArpPacket, Repr as ArpRepr};
pub use checksum::Endpoint;
pub use ethernet::{
    Address as EthernetAddress, EtherType, Frame as EthernetFrame, Repr as EthernetRepr, VlanTag,
};
pub use icmpv4::{Packet as Icmpv4Packet, Repr as Icmpv4Repr};
pub use icmpv6::{Packet as Icmpv6Packet, Repr as Icmpv6Repr};
pub use ipip::Encap;
pub use ipv4::{Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use ipv6::{Packet as Ipv6Packet, Repr as Ipv6Repr, UpperLayer};
pub use sctp::{Packet as SctpPacket, Repr as SctpRepr};
pub use tcp::{Packet as TcpPacket, Repr as TcpRepr, TcpFlags};
pub use tunnel::{Encapsulation, Tunnel};
pub use udp::{Packet as UdpPacket, Repr as UdpRepr};
pub use vrrp::{Packet as VrrpPacket, Repr as VrrpRepr};

/// A field of a header: a byte range.
pub type Field = core::ops::Range<usize>;
/// The rest of a header: everything from an offset on.
pub type Rest = core::ops::RangeFrom<usize>;

/// The one parse error: the octets are not a well-formed header of the expected kind (too short,
/// inconsistent lengths, wrong version, bad checksum, unsupported variant). Zero-sized, so parsing
/// never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed packet")
    }
}

impl std::error::Error for Error {}

/// The result of parsing.
pub type Result<T> = core::result::Result<T, Error>;

enum_with_unknown! {
    /// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"): the IPv4 protocol field and the
    /// IPv6 next-header field.
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options.
        HopByHop = 0,
        /// ICMP for IPv4.
        Icmp = 1,
        /// IGMP.
        Igmp = 2,
        /// IPv4 encapsulated in IP (IPIP, the IPVS tunnel method).
        IpIp = 4,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// IPv6 encapsulated in IP.
        Ipv6 = 41,
        /// IPv6 routing header.
        Ipv6Route = 43,
        /// IPv6 fragment header.
        Ipv6Frag = 44,
        /// GRE.
        Gre = 47,
        /// IPsec ESP.
        Esp = 50,
        /// IPsec AH.
        Ah = 51,
        /// ICMPv6.
        Icmpv6 = 58,
        /// IPv6 "no next header".
        Ipv6NoNxt = 59,
        /// IPv6 destination options.
        Ipv6Opts = 60,
        /// SCTP.
        Sctp = 132,
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Sctp => f.write_str("SCTP"),
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Icmpv6 => f.write_str("ICMPv6"),
            other => write!(f, "{}", u8::from(*other)),
        }
    }
}

/// Whether a checksum is verified on receive, filled on transmit, both or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksum {
    /// Verify on parse and fill on emit.
    #[default]
    Both,
    /// Verify on parse only (transmit is offloaded).
    Rx,
    /// Fill on emit only (receive was verified by hardware).
    Tx,
    /// Neither (both offloaded).
    None,
}

impl Checksum {
    /// Whether `parse` verifies.
    #[inline]
    pub const fn rx(&self) -> bool {
        matches!(self, Checksum::Both | Checksum::Rx)
    }
    /// Whether `emit` fills.
    #[inline]
    pub const fn tx(&self) -> bool {
        matches!(self, Checksum::Both | Checksum::Tx)
    }
}

/// Checksum behaviour per protocol. The default verifies and fills everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChecksumCapabilities {
    /// IPv4 header checksum.
    pub ipv4: Checksum,
    /// TCP checksum.
    pub tcp: Checksum,
    /// UDP checksum.
    pub udp: Checksum,
    /// SCTP CRC32c.
    pub sctp: Checksum,
    /// ICMPv4 checksum.
    pub icmpv4: Checksum,
    /// ICMPv6 checksum.
    pub icmpv6: Checksum,
}

impl ChecksumCapabilities {
    /// Neither verify nor fill any checksum.
    pub const fn ignored() -> ChecksumCapabilities {
        ChecksumCapabilities {
            ipv4: Checksum::None,
            tcp: Checksum::None,
            udp: Checksum::None,
            sctp: Checksum::None,
            icmpv4: Checksum::None,
            icmpv6: Checksum::None,
        }
    }
}

/// The source and destination ports of a TCP, UDP or SCTP header, which all start with them. Works
/// on the 8 bytes an ICMP error quotes, where a full header view would not.
#[inline]
pub fn l4_ports(data: &[u8]) -> Result<(u16, u16)> {
    match data {
        [a, b, c, d, ..] => Ok((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))),
        _ => Err(Error),
    }
}

/// Big-endian field helpers. Callers guarantee the range is in bounds.
#[inline]
pub(crate) fn get_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

#[inline]
pub(crate) fn get_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline]
pub(crate) fn set_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn set_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn get_ipv4(data: &[u8], at: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3])
}

#[inline]
pub(crate) fn get_ipv6(data: &[u8], at: usize) -> std::net::Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&data[at..at + 16]);
    std::net::Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_protocol_round_trips_and_keeps_unknowns() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert_eq!(IpProtocol::Sctp.to_string(), "SCTP");
        assert_eq!(IpProtocol::Unknown(200).to_string(), "200");
    }

    #[test]
    fn l4_ports_needs_four_bytes() {
        assert_eq!(l4_ports(&[0, 80, 0x1f, 0x90, 9]), Ok((80, 8080)));
        assert_eq!(l4_ports(&[0, 80, 0x1f]), Err(Error));
    }

    #[test]
    fn checksum_capabilities() {
        let caps = ChecksumCapabilities::default();
        assert!(caps.tcp.rx() && caps.tcp.tx());
        let none = ChecksumCapabilities::ignored();
        assert!(!none.ipv4.rx() && !none.ipv4.tx());
        assert!(Checksum::Rx.rx() && !Checksum::Rx.tx());
        assert!(!Checksum::Tx.rx() && Checksum::Tx.tx());
        assert_eq!(Error.to_string(), "malformed packet");
    }
}
