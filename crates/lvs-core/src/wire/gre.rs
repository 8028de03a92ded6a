//! GRE headers (RFC 2784, with RFC 2890's key and sequence number), as IPVS sends them for
//! `--tun-type gre`: protocol 0x0800 or 0x86DD, no key, no sequence number, and with
//! `--tun-csum` the checksum word (C bit): the Internet checksum over the GRE header and the
//! whole payload, then 16 reserved bits.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C|R|K|S|  Reserved0        | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (optional)    |
//! |                          Key (optional)                       |
//! |                   Sequence Number (optional)                  |
//! ```

use super::{checksum, get_u16, get_u32, set_u16, Error, EtherType, Result};

mod field {
    use crate::wire::Field;
    pub const FLAGS_VERSION: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    pub const CHECKSUM: Field = 4..6;
    pub const RESERVED1: Field = 6..8;
}

/// The fixed header length.
pub const HEADER_LEN: usize = field::PROTOCOL.end;

/// Checksum present.
pub const FLAG_C: u16 = 0x8000;
/// Routing present (RFC 1701; deprecated, refused).
pub const FLAG_R: u16 = 0x4000;
/// Key present.
pub const FLAG_K: u16 = 0x2000;
/// Sequence number present.
pub const FLAG_S: u16 = 0x1000;

/// A view of a GRE packet: the header and everything after it (the checksum covers it all).
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
    /// Ensures the buffer holds the header with the optional words its flags announce.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            return Err(Error);
        }
        Ok(())
    }
    /// The buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Flags and version, as on the wire.
    #[inline]
    pub fn flags_version(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS_VERSION.start)
    }
    /// The version (0 for GRE; 1 is PPTP's enhanced GRE).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_version() & 0x7) as u8
    }
    /// Whether the checksum word is present.
    #[inline]
    pub fn has_checksum(&self) -> bool {
        self.flags_version() & FLAG_C != 0
    }
    /// The payload's EtherType.
    #[inline]
    pub fn protocol(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::PROTOCOL.start))
    }
    /// 4, plus 4 for each of checksum (or routing offset), key and sequence number.
    #[inline]
    pub fn header_len(&self) -> usize {
        let f = self.flags_version();
        let words = [FLAG_C | FLAG_R, FLAG_K, FLAG_S].iter().filter(|&&m| f & m != 0).count();
        HEADER_LEN + 4 * words
    }
    /// The checksum field, when present.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum().then(|| get_u16(self.buffer.as_ref(), field::CHECKSUM.start))
    }
    /// The key, when present.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let f = self.flags_version();
        let at = HEADER_LEN + if f & (FLAG_C | FLAG_R) != 0 { 4 } else { 0 };
        (f & FLAG_K != 0).then(|| get_u32(self.buffer.as_ref(), at))
    }
    /// Whether the checksum, when present, verifies over the whole buffer (true without one).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        !self.has_checksum() || checksum::data(self.buffer.as_ref()) == 0xffff
    }
    /// The encapsulated packet.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets flags and version.
    #[inline]
    pub fn set_flags_version(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::FLAGS_VERSION.start, value);
    }
    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol(&mut self, value: EtherType) {
        set_u16(self.buffer.as_mut(), field::PROTOCOL.start, value.into());
    }
    /// Computes and stores the checksum over the whole buffer (header with the checksum word,
    /// payload); the reserved word is zeroed first.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let b = self.buffer.as_mut();
        set_u16(b, field::CHECKSUM.start, 0);
        set_u16(b, field::RESERVED1.start, 0);
        let c = !checksum::data(b);
        set_u16(b, field::CHECKSUM.start, c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A GRE header carrying an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// [`EtherType::Ipv4`] or [`EtherType::Ipv6`].
    pub protocol: EtherType,
    /// Whether the checksum word is present (and filled on emit).
    pub checksum: bool,
}

impl Repr {
    /// Reads a version-0 header without routing, verifying the checksum when present. A key
    /// or sequence number is skipped.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let f = packet.flags_version();
        // Reserved0 must be zero (RFC 2784 §2.3 lets receivers discard otherwise).
        if packet.version() != 0 || f & FLAG_R != 0 || f & 0x0ff8 != 0 || !packet.verify_checksum() {
            return Err(Error);
        }
        Ok(Repr { protocol: packet.protocol(), checksum: packet.has_checksum() })
    }
    /// 4, or 8 with the checksum word.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        if self.checksum {
            HEADER_LEN + 4
        } else {
            HEADER_LEN
        }
    }
    /// Writes the header at the start of `packet`, whose buffer must end where the payload does:
    /// the checksum covers all of it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_flags_version(if self.checksum { FLAG_C } else { 0 });
        packet.set_protocol(self.protocol);
        if self.checksum {
            packet.fill_checksum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: [u8; 7] = [0x45, 0x00, 0x12, 0x34, 0xab, 0xcd, 0xef];

    /// RFC 1071 written out: 16-bit words, end-around carry, complement.
    fn reference_checksum(data: &[u8]) -> u16 {
        let mut sum = 0u32;
        for pair in data.chunks(2) {
            sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn golden_without_checksum() {
        let mut buf = vec![0xee; 4 + PAYLOAD.len()];
        buf[4..].copy_from_slice(&PAYLOAD);
        Repr { protocol: EtherType::Ipv4, checksum: false }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..4], &[0x00, 0x00, 0x08, 0x00]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(Repr { protocol: EtherType::Ipv4, checksum: false }));
        assert_eq!(p.payload(), &PAYLOAD);
    }

    #[test]
    fn golden_with_checksum() {
        let mut buf = vec![0xee; 8 + PAYLOAD.len()];
        buf[8..].copy_from_slice(&PAYLOAD);
        Repr { protocol: EtherType::Ipv6, checksum: true }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        let mut zeroed = buf.clone();
        zeroed[4..6].copy_from_slice(&[0, 0]);
        let want = reference_checksum(&zeroed);
        assert_eq!(&buf[..8], &[0x80, 0x00, 0x86, 0xdd, (want >> 8) as u8, want as u8, 0, 0]);
        // Known value: 0x8000 + 0x86dd + 0x4500 + 0x1234 + 0xabcd + 0xef00, folded, complemented.
        assert_eq!(want, 0x071f);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(Repr { protocol: EtherType::Ipv6, checksum: true }));
        assert_eq!(p.payload(), &PAYLOAD);
        // One flipped payload bit fails the checksum.
        buf[10] ^= 1;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])), Err(Error));
    }

    #[test]
    fn optional_words_and_refusals() {
        // Key and sequence number are skipped.
        let mut kp = vec![0x30, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0, 0, 0, 1];
        kp.extend_from_slice(&PAYLOAD);
        let p = Packet::new_checked(&kp[..]).unwrap();
        assert_eq!((p.header_len(), p.key()), (12, Some(7)));
        assert_eq!(Repr::parse(&p).map(|r| r.protocol), Ok(EtherType::Ipv4));
        assert_eq!(p.payload(), &PAYLOAD);
        for bad in [
            &[0x00u8, 0x01, 0x08, 0x00][..],       // version 1
            &[0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0], // routing
            &[0x00, 0x08, 0x08, 0x00],             // reserved0
        ] {
            assert_eq!(Repr::parse(&Packet::new_unchecked(bad)), Err(Error), "{bad:02x?}");
        }
        assert_eq!(Packet::new_checked(&[0x80u8, 0, 8, 0, 0][..]), Err(Error), "checksum word cut");
        assert_eq!(Packet::new_checked(&[0u8, 0, 8][..]), Err(Error));
    }
}
