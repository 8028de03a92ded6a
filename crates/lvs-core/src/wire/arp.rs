//! ARP (RFC 826). The packet view handles any hardware/protocol sizes; the representation is IPv4
//! over Ethernet, requests and replies.

use super::ethernet::{Address as EthernetAddress, EtherType};
use super::{get_ipv4, get_u16, set_u16, Error, Result};
use std::net::Ipv4Addr;

enum_with_unknown! {
    /// ARP hardware types.
    pub enum Hardware(u16) {
        /// Ethernet.
        Ethernet = 1,
    }
}

enum_with_unknown! {
    /// ARP operations.
    pub enum Operation(u16) {
        /// Who has `target_protocol_addr`?
        Request = 1,
        /// `source_protocol_addr` is at `source_hardware_addr`.
        Reply = 2,
    }
}

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;

    #[inline]
    pub const fn SHA(hlen: u8, _plen: u8) -> Field {
        let start = OPER.end;
        start..(start + hlen as usize)
    }
    #[inline]
    pub const fn SPA(hlen: u8, plen: u8) -> Field {
        let start = SHA(hlen, plen).end;
        start..(start + plen as usize)
    }
    #[inline]
    pub const fn THA(hlen: u8, plen: u8) -> Field {
        let start = SPA(hlen, plen).end;
        start..(start + hlen as usize)
    }
    #[inline]
    pub const fn TPA(hlen: u8, plen: u8) -> Field {
        let start = THA(hlen, plen).end;
        start..(start + plen as usize)
    }
}

/// The fixed part before the addresses.
pub const FIXED_LEN: usize = field::OPER.end;
/// The length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = field::TPA(6, 4).end;

/// A view of an ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }
    /// Wraps a buffer after [`Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// Ensures the fixed part and the four addresses (of the announced sizes) fit.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN || len < field::TPA(self.hardware_len(), self.protocol_len()).end {
            Err(Error)
        } else {
            Ok(())
        }
    }
    /// The buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Hardware type.
    #[inline]
    pub fn hardware_type(&self) -> Hardware {
        Hardware::from(get_u16(self.buffer.as_ref(), field::HTYPE.start))
    }
    /// Protocol type.
    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::PTYPE.start))
    }
    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    #[inline]
    pub fn operation(&self) -> Operation {
        Operation::from(get_u16(self.buffer.as_ref(), field::OPER.start))
    }
    /// Sender hardware address.
    #[inline]
    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SHA(self.hardware_len(), self.protocol_len())]
    }
    /// Sender protocol address.
    #[inline]
    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SPA(self.hardware_len(), self.protocol_len())]
    }
    /// Target hardware address.
    #[inline]
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::THA(self.hardware_len(), self.protocol_len())]
    }
    /// Target protocol address.
    #[inline]
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TPA(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, value: Hardware) {
        set_u16(self.buffer.as_mut(), field::HTYPE.start, value.into());
    }
    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: EtherType) {
        set_u16(self.buffer.as_mut(), field::PTYPE.start, value.into());
    }
    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }
    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }
    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, value: Operation) {
        set_u16(self.buffer.as_mut(), field::OPER.start, value.into());
    }
    /// Sets the sender hardware address; `value` must be `hardware_len()` bytes.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, value: &[u8]) {
        let f = field::SHA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(value);
    }
    /// Sets the sender protocol address; `value` must be `protocol_len()` bytes.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, value: &[u8]) {
        let f = field::SPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(value);
    }
    /// Sets the target hardware address; `value` must be `hardware_len()` bytes.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, value: &[u8]) {
        let f = field::THA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(value);
    }
    /// Sets the target protocol address; `value` must be `protocol_len()` bytes.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, value: &[u8]) {
        let f = field::TPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[f].copy_from_slice(value);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An IPv4-over-Ethernet ARP request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request or reply.
    pub operation: Operation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in requests).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Reads an Ethernet/IPv4 request or reply; anything else is `Err`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.hardware_type() != Hardware::Ethernet
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error);
        }
        let operation = packet.operation();
        if !matches!(operation, Operation::Request | Operation::Reply) {
            return Err(Error);
        }
        let data = packet.buffer.as_ref();
        Ok(Repr {
            operation,
            source_hardware_addr: EthernetAddress::from_bytes(packet.source_hardware_addr()).ok_or(Error)?,
            source_protocol_addr: get_ipv4(data, field::SPA(6, 4).start),
            target_hardware_addr: EthernetAddress::from_bytes(packet.target_hardware_addr()).ok_or(Error)?,
            target_protocol_addr: get_ipv4(data, field::TPA(6, 4).start),
        })
    }
    /// A request: "who has `target`? tell `source_ip`".
    pub const fn request(source_mac: EthernetAddress, source_ip: Ipv4Addr, target: Ipv4Addr) -> Repr {
        Repr {
            operation: Operation::Request,
            source_hardware_addr: source_mac,
            source_protocol_addr: source_ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        }
    }
    /// The reply to this request from the owner of its target address, at `our_mac`.
    pub const fn reply(&self, our_mac: EthernetAddress) -> Repr {
        Repr {
            operation: Operation::Reply,
            source_hardware_addr: our_mac,
            source_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.source_hardware_addr,
            target_protocol_addr: self.source_protocol_addr,
        }
    }
    /// Gratuitous: the sender announces its own address.
    pub fn is_gratuitous(&self) -> bool {
        self.source_protocol_addr == self.target_protocol_addr
    }
    /// 28.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }
    /// Writes the packet.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(Hardware::Ethernet);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(&self.source_hardware_addr.0);
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(&self.target_hardware_addr.0);
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 28] = [
        0x00, 0x01, // ethernet
        0x08, 0x00, // IPv4
        0x06, 0x04, // sizes
        0x00, 0x01, // request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // sha
        0xc0, 0xa8, 0x01, 0x0a, // spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha
        0xc0, 0xa8, 0x01, 0x64, // tpa
    ];

    fn repr() -> Repr {
        Repr::request(
            EthernetAddress([2, 0, 0, 0, 0, 0x0a]),
            Ipv4Addr::new(192, 168, 1, 10),
            Ipv4Addr::new(192, 168, 1, 100),
        )
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.hardware_type(), Hardware::Ethernet);
        assert_eq!(p.protocol_type(), EtherType::Ipv4);
        assert_eq!(p.hardware_len(), 6);
        assert_eq!(p.protocol_len(), 4);
        assert_eq!(p.operation(), Operation::Request);
        assert_eq!(p.source_hardware_addr(), &[2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(p.source_protocol_addr(), &[192, 168, 1, 10]);
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &[192, 168, 1, 100]);
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 28];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_hardware_type(Hardware::Ethernet);
        p.set_protocol_type(EtherType::Ipv4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(Operation::Request);
        p.set_source_hardware_addr(&[2, 0, 0, 0, 0, 0x0a]);
        p.set_source_protocol_addr(&[192, 168, 1, 10]);
        p.set_target_hardware_addr(&[0; 6]);
        p.set_target_protocol_addr(&[192, 168, 1, 100]);
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn parse_and_emit() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr()));
        let mut bytes = vec![0xa5; repr().buffer_len()];
        repr().emit(&mut Packet::new_unchecked(&mut bytes));
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn reply_swaps_roles() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
        let r = repr().reply(mac);
        assert_eq!(r.operation, Operation::Reply);
        assert_eq!(r.source_hardware_addr, mac);
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(r.target_hardware_addr, repr().source_hardware_addr);
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(192, 168, 1, 10));
        assert!(!r.is_gratuitous());
        let mut g = repr();
        g.target_protocol_addr = g.source_protocol_addr;
        assert!(g.is_gratuitous());
    }

    #[test]
    fn negative() {
        assert_eq!(Packet::new_checked(&PACKET_BYTES[..27]), Err(Error));
        assert_eq!(Packet::new_checked(&PACKET_BYTES[..7]), Err(Error));
        let mut bytes = PACKET_BYTES;
        bytes[4] = 255; // hardware length beyond the buffer
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        let mut bytes = PACKET_BYTES;
        bytes[7] = 3; // RARP request
        assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Err(Error));
        let mut bytes = PACKET_BYTES;
        bytes[3] = 0xdd; // not IPv4
        assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Err(Error));
        // Other sizes are readable but not a Repr.
        let mut bytes = [0u8; 8 + 2 * (8 + 16)];
        bytes[4] = 8;
        bytes[5] = 16;
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.target_protocol_addr().len(), 16);
        assert_eq!(Repr::parse(&p), Err(Error));
    }
}
