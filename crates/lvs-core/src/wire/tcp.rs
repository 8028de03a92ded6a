//! TCP headers (RFC 9293): ports, sequence numbers, flags, data offset, and the checksum over the
//! IPv4 or IPv6 pseudo-header.

use super::{checksum, get_u16, get_u32, set_u16, set_u32, ChecksumCapabilities, Error, IpProtocol, Result};
use core::ops::{BitOr, BitOrAssign};
use std::net::IpAddr;

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// The length of a header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// The longest header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// TCP flag bits (the low 9 bits of the offset/flags word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// NS (historic ECN nonce).
    pub const NS: TcpFlags = TcpFlags(0x100);
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);

    /// Whether every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

const FLAGS_MASK: u16 = 0x01ff;

/// A view of a TCP segment. The buffer is the whole segment (the IP payload): the checksum covers
/// all of it.
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
    /// Ensures 20 ≤ data offset × 4 ≤ buffer length.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error);
        }
        let hl = self.header_len() as usize;
        if hl < HEADER_LEN || hl > len {
            return Err(Error);
        }
        Ok(())
    }
    /// The buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }
    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }
    /// The sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }
    /// The acknowledgement number (meaningful with ACK).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }
    /// The header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }
    /// All flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(get_u16(self.buffer.as_ref(), field::FLAGS.start) & FLAGS_MASK)
    }
    #[inline]
    fn flag(&self, f: TcpFlags) -> bool {
        self.flags().contains(f)
    }
    /// FIN.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flag(TcpFlags::FIN)
    }
    /// SYN.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flag(TcpFlags::SYN)
    }
    /// RST.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flag(TcpFlags::RST)
    }
    /// PSH.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flag(TcpFlags::PSH)
    }
    /// ACK.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flag(TcpFlags::ACK)
    }
    /// URG.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flag(TcpFlags::URG)
    }
    /// ECE.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flag(TcpFlags::ECE)
    }
    /// CWR.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flag(TcpFlags::CWR)
    }
    /// NS.
    #[inline]
    pub fn ns(&self) -> bool {
        self.flag(TcpFlags::NS)
    }
    /// The window.
    #[inline]
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }
    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT.start)
    }
    /// The options (raw).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len() as usize]
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len() as usize..]
    }
    /// Sequence space used: payload length plus one for SYN and one for FIN.
    #[inline]
    pub fn segment_len(&self) -> usize {
        self.payload().len() + self.syn() as usize + self.fin() as usize
    }
    /// Whether the checksum verifies under the pseudo-header of `src` → `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        checksum::verify_upper_layer(src, dst, IpProtocol::Tcp, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT.start, value);
    }
    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT.start, value);
    }
    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ_NUM.start, value);
    }
    /// Sets the acknowledgement number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::ACK_NUM.start, value);
    }
    /// Sets the header length in bytes (a multiple of 4, at most 60), keeping the flags.
    #[inline]
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | (((value / 4) & 0x0f) << 4);
    }
    /// Sets all flags (and clears the reserved bits), keeping the data offset.
    #[inline]
    pub fn set_flags(&mut self, value: TcpFlags) {
        let v = get_u16(self.buffer.as_ref(), field::FLAGS.start);
        set_u16(self.buffer.as_mut(), field::FLAGS.start, (v & 0xf000) | (value.0 & FLAGS_MASK));
    }
    /// Sets the window.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::WIN_SIZE.start, value);
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }
    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::URGENT.start, value);
    }
    /// The options, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[hl..]
    }
    /// Computes and stores the checksum for the pseudo-header of `src` → `dst`.
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let c = checksum::upper_layer(src, dst, IpProtocol::Tcp, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgement number.
    pub ack_number: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Raw options; `emit` pads them with zeros (end-of-list) to a multiple of 4 and writes at most 40
    /// bytes.
    pub options: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Reads a segment, verifying the checksum when `caps.tcp.rx()`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
        caps: &ChecksumCapabilities,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if caps.tcp.rx() && !packet.verify_checksum(src, dst) {
            return Err(Error);
        }
        let data: &'a [u8] = packet.buffer.as_ref();
        let hl = packet.header_len() as usize;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            options: &data[HEADER_LEN..hl],
            payload: &data[hl..],
        })
    }
    /// The header length `emit` writes.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len().min(MAX_HEADER_LEN - HEADER_LEN).div_ceil(4) * 4
    }
    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }
    /// Writes the segment, filling the checksum when `caps.tcp.tx()`. The buffer must be exactly
    /// `buffer_len()` bytes, since the checksum covers all of it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
        caps: &ChecksumCapabilities,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(self.header_len() as u8);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(self.urgent_at);
        let n = self.options.len().min(MAX_HEADER_LEN - HEADER_LEN);
        let opts = packet.options_mut();
        opts[..n].copy_from_slice(&self.options[..n]);
        opts[n..].fill(0);
        packet.payload_mut()[..self.payload.len()].copy_from_slice(self.payload);
        if caps.tcp.tx() {
            packet.fill_checksum(src, dst);
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn src() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1))
    }
    fn dst() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2))
    }

    static PACKET_BYTES: [u8; 28] = [
        0xbf, 0x00, 0x00, 0x50, // ports 48896 -> 80
        0x01, 0x23, 0x45, 0x67, // seq
        0x89, 0xab, 0xcd, 0xef, // ack
        0x60, 0x35, // data offset 6, URG|ACK|RST|FIN
        0x01, 0x23, // window
        0x01, 0xb6, // checksum
        0x02, 0x01, // urgent
        0x03, 0x03, 0x0c, 0x01, // options: window scale 12, NOP
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    static SYN_BYTES: [u8; 24] = [
        0xbf, 0x00, 0x00, 0x50, 0x01, 0x23, 0x45, 0x67, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0x01, 0x23, 0x7a,
        0x8d, 0x00, 0x00, 0xaa, 0x00, 0x00, 0xff,
    ];

    fn syn_repr() -> Repr<'static> {
        Repr {
            src_port: 48896,
            dst_port: 80,
            seq_number: 0x01234567,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 0x0123,
            urgent_at: 0,
            options: &[],
            payload: &[0xaa, 0x00, 0x00, 0xff],
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x01234567);
        assert_eq!(p.ack_number(), 0x89abcdef);
        assert_eq!(p.header_len(), 24);
        assert!(p.fin() && !p.syn() && p.rst() && !p.psh() && p.ack() && p.urg());
        assert!(!p.ece() && !p.cwr() && !p.ns());
        assert_eq!(p.flags(), TcpFlags::FIN | TcpFlags::RST | TcpFlags::ACK | TcpFlags::URG);
        assert_eq!(p.window_len(), 0x0123);
        assert_eq!(p.checksum(), 0x01b6);
        assert_eq!(p.urgent_at(), 0x0201);
        assert_eq!(p.options(), &[0x03, 0x03, 0x0c, 0x01]);
        assert_eq!(p.payload(), &[0xaa, 0x00, 0x00, 0xff]);
        assert_eq!(p.segment_len(), 5);
        assert!(p.verify_checksum(&src(), &dst()));
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 28];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_src_port(48896);
        p.set_dst_port(80);
        p.set_seq_number(0x01234567);
        p.set_ack_number(0x89abcdef);
        p.set_header_len(24);
        p.set_flags(TcpFlags::FIN | TcpFlags::RST | TcpFlags::ACK | TcpFlags::URG);
        p.set_window_len(0x0123);
        p.set_urgent_at(0x0201);
        p.options_mut().copy_from_slice(&[0x03, 0x03, 0x0c, 0x01]);
        p.payload_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        p.fill_checksum(&src(), &dst());
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn parse_and_emit() {
        let p = Packet::new_checked(&SYN_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p, &src(), &dst(), &Default::default()), Ok(syn_repr()));
        let mut bytes = vec![0xa5; syn_repr().buffer_len()];
        syn_repr().emit(&mut Packet::new_unchecked(&mut bytes), &src(), &dst(), &Default::default());
        assert_eq!(&bytes[..], &SYN_BYTES[..]);
        // Options are padded.
        let with_opts = Repr { options: &[0x02, 0x04, 0x05, 0xb4, 0x01], ..syn_repr() };
        assert_eq!(with_opts.header_len(), 28);
        let mut bytes = vec![0xa5; with_opts.buffer_len()];
        with_opts.emit(&mut Packet::new_unchecked(&mut bytes), &src(), &dst(), &Default::default());
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4, 0x01, 0, 0, 0]);
        let back = Repr::parse(&p, &src(), &dst(), &Default::default()).unwrap();
        assert_eq!(back.payload, syn_repr().payload);
        // Overlong options are cut at 40 bytes.
        let long = [1u8; 50];
        let r = Repr { options: &long, ..syn_repr() };
        assert_eq!(r.header_len(), 60);
    }

    #[test]
    fn negative() {
        assert_eq!(Packet::new_checked(&SYN_BYTES[..19]), Err(Error));
        let mut bytes = SYN_BYTES;
        bytes[12] = 0x40; // data offset 4
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        bytes[12] = 0x70; // data offset 7 = 28 > 24
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error));
        let mut bytes = SYN_BYTES;
        bytes[23] ^= 0x10;
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p, &src(), &dst(), &Default::default()), Err(Error));
        assert!(Repr::parse(&p, &src(), &dst(), &ChecksumCapabilities::ignored()).is_ok());
        // Wrong pseudo-header.
        let p = Packet::new_checked(&SYN_BYTES[..]).unwrap();
        assert!(!p.verify_checksum(&dst(), &dst()));
    }

    #[test]
    fn flags_keep_the_offset() {
        let mut bytes = SYN_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_flags(TcpFlags::NS | TcpFlags::CWR | TcpFlags::ECE | TcpFlags::PSH);
        assert_eq!(p.header_len(), 20);
        assert!(p.ns() && p.cwr() && p.ece() && p.psh() && !p.syn());
        p.set_header_len(60);
        assert_eq!(p.flags(), TcpFlags::NS | TcpFlags::CWR | TcpFlags::ECE | TcpFlags::PSH);
        let mut f = TcpFlags::NONE;
        f |= TcpFlags::SYN;
        assert!(f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::SYN | TcpFlags::ACK));
    }
}
