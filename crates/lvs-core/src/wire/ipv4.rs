//! IPv4 headers (RFC 791): options length, DF/MF/fragment offset, TTL, header checksum, and in-place
//! address rewrites with incremental checksum updates.

use super::{checksum, get_ipv4, get_u16, set_u16, ChecksumCapabilities, Error, IpProtocol, Result};
use std::net::Ipv4Addr;

mod field {
    use crate::wire::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// The length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// The longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
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
    /// Wraps the possibly truncated copy of a datagram that an ICMP error quotes, after
    /// [`Packet::check_header_len`]: the total length may exceed the buffer, and `payload()` returns
    /// what is there.
    #[inline]
    pub fn new_checked_truncated(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_header_len()?;
        Ok(p)
    }
    /// Ensures 20 ≤ header length ≤ total length ≤ buffer length. Bytes past the total length (link
    /// padding) are allowed and ignored by `payload()`.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        if self.total_len() as usize > self.buffer.as_ref().len() {
            return Err(Error);
        }
        Ok(())
    }
    /// Ensures 20 ≤ header length ≤ buffer length and header length ≤ total length.
    #[inline]
    pub fn check_header_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error);
        }
        let hl = self.header_len() as usize;
        if hl < HEADER_LEN || hl > len || hl > self.total_len() as usize {
            return Err(Error);
        }
        Ok(())
    }
    /// The buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// The version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// The header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// The length of the options (header length − 20).
    #[inline]
    pub fn options_len(&self) -> usize {
        (self.header_len() as usize).saturating_sub(HEADER_LEN)
    }
    /// The DSCP (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    /// The ECN bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }
    /// The whole type-of-service byte (DSCP and ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    /// The total length.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// The identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT.start)
    }
    /// Don't fragment.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & DF != 0
    }
    /// More fragments.
    #[inline]
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & MF != 0
    }
    /// The fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & OFFSET_MASK) << 3
    }
    /// Part of a fragmented datagram (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & (MF | OFFSET_MASK) != 0
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// The protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SRC_ADDR.start)
    }
    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::DST_ADDR.start)
    }
    /// The options.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len() as usize]
    }
    /// Whether the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len() as usize]) == 0xffff
    }
    /// The payload: from the end of the header to the total length, or to the end of the buffer when
    /// the buffer is shorter (a quoted datagram).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = data.len().min(self.total_len() as usize);
        &data[self.header_len() as usize..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }
    /// Sets the header length in bytes (a multiple of 4, at most 60).
    #[inline]
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((value / 4) & 0x0f);
    }
    /// Sets the DSCP.
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }
    /// Sets the ECN bits.
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (value & 0x03);
    }
    /// Sets the type-of-service byte.
    #[inline]
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }
    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }
    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT.start, value);
    }
    /// Clears DF, MF and the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, 0);
    }
    #[inline]
    fn set_flag(&mut self, bit: u16, on: bool) {
        let v = get_u16(self.buffer.as_ref(), field::FLG_OFF.start);
        let v = if on { v | bit } else { v & !bit };
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, v);
    }
    /// Sets don't fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(DF, value);
    }
    /// Sets more fragments.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(MF, value);
    }
    /// Sets the fragment offset in bytes (a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let v = get_u16(self.buffer.as_ref(), field::FLG_OFF.start);
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, (v & !OFFSET_MASK) | (value >> 3));
    }
    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }
    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }
    /// Computes and stores the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len() as usize;
        let sum = checksum::data(&self.buffer.as_ref()[..hl]);
        self.set_checksum(!sum);
    }
    /// Sets the source address and updates the header checksum incrementally. Returns the old address
    /// (for the transport checksum: see [`checksum::rewrite_l4`]).
    #[inline]
    pub fn rewrite_src_addr(&mut self, value: Ipv4Addr) -> Ipv4Addr {
        let old = self.src_addr();
        let check = checksum::update_v4(self.checksum(), &old, &value);
        self.set_src_addr(value);
        self.set_checksum(check);
        old
    }
    /// Sets the destination address and updates the header checksum incrementally. Returns the old
    /// address.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, value: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst_addr();
        let check = checksum::update_v4(self.checksum(), &old, &value);
        self.set_dst_addr(value);
        self.set_checksum(check);
        old
    }
    /// Decrements the TTL with an incremental checksum update, as a router does. Returns `false`
    /// (changing nothing) when the TTL is already 0 or 1: the packet must not be forwarded.
    #[inline]
    pub fn decrement_ttl(&mut self) -> bool {
        let data = self.buffer.as_ref();
        let ttl = data[field::TTL];
        if ttl <= 1 {
            return false;
        }
        let old = get_u16(data, field::TTL);
        let check = checksum::update16(self.checksum(), old, old - 0x0100);
        self.set_ttl(ttl - 1);
        self.set_checksum(check);
        true
    }
    /// The options, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
    /// The payload, mutably (as bounded as [`Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        let end = self.buffer.as_ref().len().min(self.total_len() as usize);
        &mut self.buffer.as_mut()[hl..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed IPv4 header. Options are not kept: `emit` writes a 20-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length (total length − header length); at most 65515 when emitted.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Repr {
    /// Reads a packet: the version must be 4, the lengths consistent and, when `caps.ipv4.rx()`, the
    /// checksum valid.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>, caps: &ChecksumCapabilities) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error);
        }
        if caps.ipv4.rx() && !packet.verify_checksum() {
            return Err(Error);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() as usize - packet.header_len() as usize,
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }
    /// 20.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the 20-byte header (the payload is the caller's), filling the checksum when
    /// `caps.ipv4.tx()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, caps: &ChecksumCapabilities) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_tos(self.tos);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        if caps.ipv4.tx() {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 30] = [
        0x45, 0xb8, 0x00, 0x1e, // ver/ihl, tos, total length 30
        0x01, 0x02, 0x62, 0x03, // ident, DF+MF, offset 0x203*8
        0x1a, 0x01, 0xd4, 0xb6, // ttl, ICMP, checksum
        0x11, 0x12, 0x13, 0x14, // src
        0x21, 0x22, 0x23, 0x24, // dst
        0xaa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    ];

    static REPR_BYTES: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0xd2, 0x79, 0x11, 0x12, 0x13, 0x14, 0x21,
        0x22, 0x23, 0x24, 0xaa, 0x00, 0x00, 0xff,
    ];

    fn packet_repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(0x11, 0x12, 0x13, 0x14),
            dst_addr: Ipv4Addr::new(0x21, 0x22, 0x23, 0x24),
            protocol: IpProtocol::Icmp,
            payload_len: 4,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.options_len(), 0);
        assert_eq!(p.dscp(), 0x2e);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 30);
        assert_eq!(p.ident(), 0x102);
        assert!(p.dont_frag());
        assert!(p.more_frags());
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 0x203 * 8);
        assert_eq!(p.ttl(), 0x1a);
        assert_eq!(p.protocol(), IpProtocol::Icmp);
        assert_eq!(p.checksum(), 0xd4b6);
        assert_eq!(p.src_addr(), Ipv4Addr::new(0x11, 0x12, 0x13, 0x14));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(0x21, 0x22, 0x23, 0x24));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &PACKET_BYTES[20..]);
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 30];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_version(4);
        p.set_header_len(20);
        p.clear_flags();
        p.set_dscp(0x2e);
        p.set_ecn(0);
        p.set_total_len(30);
        p.set_ident(0x102);
        p.set_more_frags(true);
        p.set_dont_frag(true);
        p.set_frag_offset(0x203 * 8);
        p.set_ttl(0x1a);
        p.set_protocol(IpProtocol::Icmp);
        p.set_src_addr(Ipv4Addr::new(0x11, 0x12, 0x13, 0x14));
        p.set_dst_addr(Ipv4Addr::new(0x21, 0x22, 0x23, 0x24));
        p.fill_checksum();
        p.payload_mut().copy_from_slice(&PACKET_BYTES[20..]);
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn parse_and_emit() {
        let p = Packet::new_checked(&REPR_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p, &ChecksumCapabilities::default()), Ok(packet_repr()));
        let repr = packet_repr();
        let mut bytes = vec![0xa5; repr.buffer_len() + repr.payload_len];
        let mut p = Packet::new_unchecked(&mut bytes);
        repr.emit(&mut p, &ChecksumCapabilities::default());
        p.payload_mut().copy_from_slice(&REPR_BYTES[20..]);
        assert_eq!(&bytes[..], &REPR_BYTES[..]);
        // Fragment fields survive a round trip.
        let frag = Repr { more_frags: true, frag_offset: 1480, dont_frag: false, ..repr };
        let mut bytes = vec![0; 24];
        frag.emit(&mut Packet::new_unchecked(&mut bytes), &ChecksumCapabilities::default());
        let parsed = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), &Default::default()).unwrap();
        assert_eq!(parsed, frag);
        // Without checksum filling the field is 0 and verification can be skipped.
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &ChecksumCapabilities::ignored());
        assert_eq!(&bytes[10..12], &[0, 0]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p, &Default::default()), Err(Error));
        assert_eq!(Repr::parse(&p, &ChecksumCapabilities::ignored()), Ok(repr));
    }

    #[test]
    fn options_and_padding() {
        let mut bytes = vec![0u8; 40];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_version(4);
        p.set_header_len(24);
        p.set_total_len(30);
        p.options_mut().copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
        p.fill_checksum();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.options_len(), 4);
        assert_eq!(p.payload().len(), 6, "trailing link padding is excluded");
        assert!(p.verify_checksum());
    }

    #[test]
    fn negative() {
        // Total length beyond the buffer.
        let mut bytes = REPR_BYTES;
        bytes[3] = 25;
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        // IHL below 5.
        let mut bytes = REPR_BYTES;
        bytes[0] = 0x44;
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        // IHL beyond the buffer and the total length.
        let mut bytes = REPR_BYTES;
        bytes[0] = 0x4f;
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        // Total length below the header length.
        let mut bytes = REPR_BYTES;
        bytes[3] = 19;
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        // Too short for a header.
        assert_eq!(Packet::new_checked(&REPR_BYTES[..19]), Err(Error));
        // Wrong version.
        let mut bytes = REPR_BYTES;
        bytes[0] = 0x65;
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p, &ChecksumCapabilities::ignored()), Err(Error));
        // Bad checksum.
        let mut bytes = REPR_BYTES;
        bytes[11] ^= 1;
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p, &Default::default()), Err(Error));
    }

    #[test]
    fn truncated_quote() {
        // A 28-byte quote of a 1500-byte datagram.
        let mut bytes = [0u8; 28];
        bytes[..20].copy_from_slice(&REPR_BYTES[..20]);
        bytes[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        let p = Packet::new_checked_truncated(&bytes[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
        assert_eq!(Packet::new_checked_truncated(&bytes[..19]), Err(Error));
    }

    #[test]
    fn rewrites_keep_the_checksum_valid() {
        let mut bytes = REPR_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        let old = p.rewrite_dst_addr(Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(old, Ipv4Addr::new(0x21, 0x22, 0x23, 0x24));
        p.rewrite_src_addr(Ipv4Addr::new(192, 0, 2, 1));
        assert!(p.decrement_ttl());
        assert!(p.verify_checksum());
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), incremental);
        assert_eq!(p.ttl(), 63);
        p.set_ttl(1);
        p.fill_checksum();
        assert!(!p.decrement_ttl());
        assert_eq!(p.ttl(), 1);
    }
}
