//! SCTP common headers (RFC 9260 §3.1), the first chunk's type, and the CRC32c checksum (RFC 9260
//! appendix A), computed here with slicing-by-8 tables built at compile time.
//!
//! The checksum field holds the CRC32c of the packet (field zeroed) in little-endian byte order, as
//! Linux's `sctp_compute_cksum` stores it; [`Packet::checksum`] returns it as the CRC value.

use super::{get_u16, get_u32, set_u16, set_u32, ChecksumCapabilities, Error, Result};

mod field {
    use crate::wire::{Field, Rest};
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const VERIFICATION_TAG: Field = 4..8;
    pub const CHECKSUM: Field = 8..12;
    pub const CHUNKS: Rest = 12..;
    pub const CHUNK_TYPE: usize = 12;
    pub const CHUNK_FLAGS: usize = 13;
    pub const CHUNK_LENGTH: Field = 14..16;
}

/// The common header length.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// A chunk header's length.
pub const CHUNK_HEADER_LEN: usize = 4;

enum_with_unknown! {
    /// SCTP chunk types (RFC 9260 §3.2 and extensions).
    pub enum ChunkType(u8) {
        /// Payload data.
        Data = 0,
        /// Initiation.
        Init = 1,
        /// Initiation acknowledgement.
        InitAck = 2,
        /// Selective acknowledgement.
        Sack = 3,
        /// Heartbeat request.
        Heartbeat = 4,
        /// Heartbeat acknowledgement.
        HeartbeatAck = 5,
        /// Abort.
        Abort = 6,
        /// Shutdown.
        Shutdown = 7,
        /// Shutdown acknowledgement.
        ShutdownAck = 8,
        /// Operation error.
        Error = 9,
        /// State cookie.
        CookieEcho = 10,
        /// Cookie acknowledgement.
        CookieAck = 11,
        /// Explicit congestion notification echo.
        Ecne = 12,
        /// Congestion window reduced.
        Cwr = 13,
        /// Shutdown complete.
        ShutdownComplete = 14,
        /// Authentication (RFC 4895).
        Auth = 15,
        /// I-DATA (RFC 8260).
        IData = 64,
        /// ASCONF acknowledgement (RFC 5061).
        AsconfAck = 0x80,
        /// Re-configuration (RFC 6525).
        ReConfig = 130,
        /// Padding (RFC 4820).
        Pad = 132,
        /// Forward TSN (RFC 3758).
        ForwardTsn = 192,
        /// ASCONF (RFC 5061).
        Asconf = 0xc1,
        /// I-FORWARD-TSN (RFC 8260).
        IForwardTsn = 194,
    }
}

const POLY: u32 = 0x82f6_3b78; // Castagnoli, reflected

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

/// Feeds `data` into a running CRC32c register (start with `!0`, finish with `!`).
#[inline]
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The CRC32c (Castagnoli) of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// A view of an SCTP packet. The buffer is the whole packet (the IP payload): the CRC covers it.
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
    /// Ensures the common header fits. Chunk accessors return `None` when there is no whole chunk
    /// header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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
    /// The verification tag.
    #[inline]
    pub fn verification_tag(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VERIFICATION_TAG.start)
    }
    /// The checksum field as a CRC value (stored little-endian).
    #[inline]
    pub fn checksum(&self) -> u32 {
        let d = &self.buffer.as_ref()[field::CHECKSUM];
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    }
    /// The chunks (everything after the common header).
    #[inline]
    pub fn chunks(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CHUNKS]
    }
    /// The first chunk's type, when a chunk header is present.
    #[inline]
    pub fn first_chunk_type(&self) -> Option<ChunkType> {
        self.buffer.as_ref().get(field::CHUNK_TYPE).map(|&t| ChunkType::from(t))
    }
    /// The first chunk's flags.
    #[inline]
    pub fn first_chunk_flags(&self) -> Option<u8> {
        self.buffer.as_ref().get(field::CHUNK_FLAGS).copied()
    }
    /// The first chunk's length field (header and value, without padding).
    #[inline]
    pub fn first_chunk_len(&self) -> Option<u16> {
        let d = self.buffer.as_ref().get(field::CHUNK_LENGTH)?;
        Some(u16::from_be_bytes([d[0], d[1]]))
    }
    /// The CRC32c of the packet with the checksum field taken as zero.
    #[inline]
    pub fn compute_checksum(&self) -> u32 {
        let data = self.buffer.as_ref();
        let crc = crc32c_update(!0, &data[..field::CHECKSUM.start]);
        let crc = crc32c_update(crc, &[0; 4]);
        !crc32c_update(crc, &data[field::CHECKSUM.end..])
    }
    /// Whether the checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.compute_checksum() == self.checksum()
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
    /// Sets the verification tag.
    #[inline]
    pub fn set_verification_tag(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::VERIFICATION_TAG.start, value);
    }
    /// Sets the checksum field (a CRC value, stored little-endian).
    #[inline]
    pub fn set_checksum(&mut self, value: u32) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_le_bytes());
    }
    /// The chunks, mutably.
    #[inline]
    pub fn chunks_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::CHUNKS]
    }
    /// Computes and stores the CRC32c.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An SCTP packet: common header and raw chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag.
    pub verification_tag: u32,
    /// The chunks, as bytes.
    pub chunks: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Reads a packet, verifying the CRC32c when `caps.sctp.rx()`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        caps: &ChecksumCapabilities,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if caps.sctp.rx() && !packet.verify_checksum() {
            return Err(Error);
        }
        let data: &'a [u8] = packet.buffer.as_ref();
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            verification_tag: packet.verification_tag(),
            chunks: &data[field::CHUNKS],
        })
    }
    /// Header plus chunks.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.chunks.len()
    }
    /// Writes the packet (buffer exactly `buffer_len()` bytes), filling the CRC when `caps.sctp.tx()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, caps: &ChecksumCapabilities) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_verification_tag(self.verification_tag);
        packet.chunks_mut()[..self.chunks.len()].copy_from_slice(self.chunks);
        if caps.sctp.tx() {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn crc32c_known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[]), 0);
        // RFC 3720 B.4
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
        let dec: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&dec), 0x113f_db5c);
    }

    #[test]
    fn crc32c_matches_bitwise_at_every_length_and_split() {
        let mut rng = crate::rng::Rng::new(5);
        let data: Vec<u8> = (0..100).map(|_| rng.next_u64() as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc32c(&data[..len]), bitwise(&data[..len]), "len {len}");
        }
        for split in 0..data.len() {
            let c = crc32c_update(crc32c_update(!0, &data[..split]), &data[split..]);
            assert_eq!(!c, bitwise(&data), "split {split}");
        }
    }

    /// An INIT chunk from port 5000 to 80 (verification tag 0).
    fn init_bytes() -> Vec<u8> {
        let mut b = vec![
            0x13, 0x88, 0x00, 0x50, // ports
            0x00, 0x00, 0x00, 0x00, // vtag
            0x00, 0x00, 0x00, 0x00, // checksum
            0x01, 0x00, 0x00, 0x14, // INIT, flags 0, length 20
            0xde, 0xad, 0xbe, 0xef, // initiate tag
            0x00, 0x01, 0x00, 0x00, // a_rwnd
            0x00, 0x0a, 0xff, 0xff, // streams
            0x00, 0x00, 0x00, 0x01, // initial TSN
        ];
        let c = crc32c(&b);
        b[8..12].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn deconstruct() {
        let bytes = init_bytes();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.src_port(), 5000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.verification_tag(), 0);
        assert_eq!(p.first_chunk_type(), Some(ChunkType::Init));
        assert_eq!(p.first_chunk_flags(), Some(0));
        assert_eq!(p.first_chunk_len(), Some(20));
        assert_eq!(p.chunks().len(), 20);
        assert_eq!(
            p.checksum(),
            crc32c(&{
                let mut z = bytes.clone();
                z[8..12].fill(0);
                z
            })
        );
        assert!(p.verify_checksum());
    }

    #[test]
    fn construct() {
        let want = init_bytes();
        let mut bytes = vec![0xa5; want.len()];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_src_port(5000);
        p.set_dst_port(80);
        p.set_verification_tag(0);
        p.chunks_mut().copy_from_slice(&want[12..]);
        p.fill_checksum();
        assert_eq!(bytes, want);
    }

    #[test]
    fn parse_and_emit() {
        let want = init_bytes();
        let repr = Repr::parse(&Packet::new_checked(&want[..]).unwrap(), &Default::default()).unwrap();
        assert_eq!(repr.chunks, &want[12..]);
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &Default::default());
        assert_eq!(bytes, want);
    }

    #[test]
    fn negative() {
        let want = init_bytes();
        assert_eq!(Packet::new_checked(&want[..11]), Err(Error));
        let p = Packet::new_checked(&want[..12]).unwrap();
        assert_eq!(p.first_chunk_type(), None);
        assert_eq!(p.first_chunk_len(), None);
        let p = Packet::new_checked(&want[..13]).unwrap();
        assert_eq!(p.first_chunk_type(), Some(ChunkType::Init));
        assert_eq!(p.first_chunk_len(), None);
        let mut bad = want.clone();
        bad[20] ^= 1;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(Repr::parse(&p, &Default::default()), Err(Error));
        assert!(Repr::parse(&p, &ChecksumCapabilities::ignored()).is_ok());
    }

    #[test]
    fn chunk_types() {
        assert_eq!(ChunkType::from(0xc1), ChunkType::Asconf);
        assert_eq!(u8::from(ChunkType::ShutdownComplete), 14);
        assert_eq!(ChunkType::from(99), ChunkType::Unknown(99));
    }
}
