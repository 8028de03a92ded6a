//! VRRP advertisements: version 2 (RFC 3768, IPv4 only, with the 8 authentication bytes) and
//! version 3 (RFC 5798, IPv4 or IPv6, no authentication), as keepalived 2.2.7 sends them.
//!
//! The checksum of a v2 message covers the message alone. A v3 checksum also covers the IP
//! pseudo-header (source, destination, protocol 112, VRRP length) for both families; for IPv4 this is
//! what keepalived does and checks (older peers that leave it out are rejected), and for unicast the
//! destination in the pseudo-header is the peer's address.
//!
//! [`Packet::check_len`] only ensures the fixed 8-byte header is there, so a receiver can read the
//! version, VRID and counts and reject an advert for the reason keepalived gives; [`Repr::parse`] does
//! the full validation.

use super::{checksum, get_ipv4, get_ipv6, get_u16, set_u16, Error, IpProtocol, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod field {
    use crate::wire::Field;
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: the authentication type; v3: the reserved nibble and the top of the interval.
    pub const AUTH_TYPE: usize = 4;
    /// v2: the advertisement interval in seconds.
    pub const ADVER_INT: usize = 5;
    /// v3: 4 reserved bits and a 12-bit maximum advertisement interval in centiseconds.
    pub const RSVD_MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRS: usize = 8;
}

/// The IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The IPv4 multicast group of VRRP.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit adverts are sent with and (multicast) must arrive with.
pub const TTL: u8 = 255;
/// The fixed header length.
pub const HEADER_LEN: usize = field::ADDRS;
/// The length of the v2 authentication data.
pub const AUTH_DATA_LEN: usize = 8;
/// The only message type: advertisement.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// The most addresses one message carries (the count is 8 bits).
pub const MAX_ADDRS: usize = 255;
/// The largest v3 interval (12 bits of centiseconds).
pub const MAX_V3_ADVER_INT_CS: u16 = 0x0fff;

/// The protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2 (RFC 3768): IPv4 only, whole-second intervals, optional authentication.
    V2,
    /// VRRPv3 (RFC 5798): IPv4 or IPv6, centisecond intervals, no authentication.
    V3,
}

impl Version {
    /// The number in the version nibble.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// v2 authentication (RFC 2338 / keepalived): type 0, 1 (simple password) or 2 (IPsec AH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// No authentication (type 0); the auth data bytes are zero.
    None,
    /// Simple password (type 1): the first 8 bytes of the password, NUL-padded.
    Pass([u8; AUTH_DATA_LEN]),
    /// IPsec AH (type 2): the message travels behind an AH header (IP protocol 51).
    Ah,
}

impl Auth {
    /// The authentication type number.
    pub const fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
            Auth::Ah => 2,
        }
    }
    /// A PASS authentication from a configured password: only the first 8 bytes count, NUL-padded
    /// (keepalived truncates longer ones).
    pub fn pass(password: &str) -> Auth {
        let mut data = [0u8; AUTH_DATA_LEN];
        for (d, s) in data.iter_mut().zip(password.as_bytes()) {
            *d = *s;
        }
        Auth::Pass(data)
    }
}

/// The length of one address in a message whose IP source is `src`.
#[inline]
pub const fn addr_len(src: &IpAddr) -> usize {
    match src {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

/// A view of a VRRP message.
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
    /// Ensures the fixed header is there. The addresses and auth data are only read through
    /// [`Packet::addr`] and [`Packet::auth_data`], which check their own bounds.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error);
        }
        Ok(())
    }
    /// The buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// The whole message.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// The version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }
    /// The type nibble (1 = advertisement).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }
    /// The virtual router id.
    #[inline]
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }
    /// The priority.
    #[inline]
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }
    /// The address count.
    #[inline]
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }
    /// v2: the authentication type.
    #[inline]
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }
    /// v2: the advertisement interval in seconds.
    #[inline]
    pub fn adver_int_v2(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }
    /// v3: the maximum advertisement interval in centiseconds (12 bits).
    #[inline]
    pub fn max_adver_int_v3(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::RSVD_MAX_ADVER_INT.start) & MAX_V3_ADVER_INT_CS
    }
    /// The interval in centiseconds, whichever version the message says it is (v2 seconds × 100).
    #[inline]
    pub fn adver_int_cs(&self) -> u16 {
        if self.version() == 2 {
            u16::from(self.adver_int_v2()) * 100
        } else {
            self.max_adver_int_v3()
        }
    }
    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The length this message should have given its version, count and address size (4 or 16):
    /// v2 over IPv4 carries the 8 auth bytes.
    #[inline]
    pub fn expected_len(&self, addr_len: usize) -> usize {
        let auth = if self.version() == 2 && addr_len == 4 { AUTH_DATA_LEN } else { 0 };
        HEADER_LEN + self.addr_count() as usize * addr_len + auth
    }
    /// Address `index` (below the count), `addr_len` (4 or 16) bytes wide, if the buffer holds it.
    #[inline]
    pub fn addr(&self, index: usize, addr_len: usize) -> Option<IpAddr> {
        let start = HEADER_LEN + index.checked_mul(addr_len)?;
        let data = self.buffer.as_ref();
        if index >= usize::from(self.addr_count()) || start + addr_len > data.len() {
            return None;
        }
        match addr_len {
            4 => Some(IpAddr::V4(get_ipv4(data, start))),
            16 => Some(IpAddr::V6(get_ipv6(data, start))),
            _ => None,
        }
    }
    /// v2: the 8 authentication bytes after `addr_count` IPv4 addresses, if the buffer holds them.
    #[inline]
    pub fn auth_data(&self) -> Option<[u8; AUTH_DATA_LEN]> {
        let start = HEADER_LEN + self.addr_count() as usize * 4;
        let bytes = self.buffer.as_ref().get(start..start + AUTH_DATA_LEN)?;
        let mut data = [0u8; AUTH_DATA_LEN];
        data.copy_from_slice(bytes);
        Some(data)
    }
    /// Whether the checksum verifies: v2 over the message, v3 over the pseudo-header and the
    /// message.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let data = self.buffer.as_ref();
        if self.version() == 2 {
            checksum::data(data) == 0xffff
        } else {
            checksum::verify_upper_layer(src, dst, IpProtocol::Unknown(PROTOCOL), data)
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version and type nibbles.
    #[inline]
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }
    /// Sets the virtual router id.
    #[inline]
    pub fn set_vrid(&mut self, value: u8) {
        self.buffer.as_mut()[field::VRID] = value;
    }
    /// Sets the priority (the checksum is not updated).
    #[inline]
    pub fn set_priority(&mut self, value: u8) {
        self.buffer.as_mut()[field::PRIORITY] = value;
    }
    /// Sets the address count.
    #[inline]
    pub fn set_addr_count(&mut self, value: u8) {
        self.buffer.as_mut()[field::COUNT] = value;
    }
    /// v2: sets the authentication type.
    #[inline]
    pub fn set_auth_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = value;
    }
    /// v2: sets the interval in seconds.
    #[inline]
    pub fn set_adver_int_v2(&mut self, value: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = value;
    }
    /// v3: sets the 12-bit interval in centiseconds and clears the reserved bits.
    #[inline]
    pub fn set_max_adver_int_v3(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::RSVD_MAX_ADVER_INT.start, value & MAX_V3_ADVER_INT_CS);
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }
    /// Computes and stores the checksum (see [`Packet::verify_checksum`]).
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let sum = if self.version() == 2 {
            checksum::finish(checksum::data(data))
        } else {
            checksum::upper_layer(src, dst, IpProtocol::Unknown(PROTOCOL), data)
        };
        self.set_checksum(sum);
    }
}

/// A validated advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The version.
    pub version: Version,
    /// The virtual router id.
    pub vrid: u8,
    /// The priority (0 = the master is resigning, 255 = address owner).
    pub priority: u8,
    /// v2 authentication; always [`Auth::None`] for v3.
    pub auth: Auth,
    /// The advertisement interval in centiseconds (v2: seconds × 100).
    pub advert_int_cs: u16,
    /// The virtual addresses, all of the IP source's family.
    pub addrs: Vec<IpAddr>,
}

impl Repr {
    /// Parses and validates a message that arrived from `src` to `dst`: version 2 (IPv4 only) or 3,
    /// type advertisement, exact length, a known auth type (v2) and a verifying checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>, src: IpAddr, dst: IpAddr) -> Result<Repr> {
        packet.check_len()?;
        let version = match packet.version() {
            2 if src.is_ipv4() => Version::V2,
            3 => Version::V3,
            _ => return Err(Error),
        };
        if packet.msg_type() != TYPE_ADVERTISEMENT || src.is_ipv4() != dst.is_ipv4() {
            return Err(Error);
        }
        let alen = addr_len(&src);
        if packet.as_bytes().len() != packet.expected_len(alen) || !packet.verify_checksum(&src, &dst) {
            return Err(Error);
        }
        let addrs = (0..packet.addr_count() as usize)
            .map(|i| packet.addr(i, alen).ok_or(Error))
            .collect::<Result<Vec<_>>>()?;
        let auth = match version {
            Version::V3 => Auth::None,
            Version::V2 => match (packet.auth_type(), packet.auth_data()) {
                (0, Some(_)) => Auth::None,
                (1, Some(data)) => Auth::Pass(data),
                (2, Some(_)) => Auth::Ah,
                _ => return Err(Error),
            },
        };
        Ok(Repr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            auth,
            advert_int_cs: packet.adver_int_cs(),
            addrs,
        })
    }

    /// The length of the message.
    pub fn buffer_len(&self) -> usize {
        let addrs: usize = self.addrs.iter().take(MAX_ADDRS).map(addr_len).sum();
        let auth = if self.version == Version::V2 { AUTH_DATA_LEN } else { 0 };
        HEADER_LEN + addrs + auth
    }

    /// Writes the message into `buf` (at least [`Repr::buffer_len`] bytes) and fills the checksum,
    /// with the pseudo-header of `src` → `dst` for v3. Only the first 255 addresses fit (the count is
    /// 8 bits), and a v2 interval is rounded to whole seconds.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Repr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) {
        let len = self.buffer_len();
        let mut packet = Packet::new_unchecked(&mut buf[..len]);
        packet.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_addr_count(self.addrs.len().min(MAX_ADDRS) as u8);
        match self.version {
            Version::V2 => {
                packet.set_auth_type(self.auth.type_number());
                let secs = (u32::from(self.advert_int_cs) + 50) / 100;
                packet.set_adver_int_v2(secs.min(255) as u8);
            }
            Version::V3 => packet.set_max_adver_int_v3(self.advert_int_cs),
        }
        let data = &mut *packet.buffer;
        let mut at = HEADER_LEN;
        for addr in self.addrs.iter().take(MAX_ADDRS) {
            match addr {
                IpAddr::V4(a) => data[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => data[at..at + 16].copy_from_slice(&a.octets()),
            }
            at += addr_len(addr);
        }
        if self.version == Version::V2 {
            let auth = match &self.auth {
                Auth::Pass(p) => *p,
                Auth::None | Auth::Ah => [0; AUTH_DATA_LEN],
            };
            data[at..at + AUTH_DATA_LEN].copy_from_slice(&auth);
        }
        packet.fill_checksum(&src, &dst);
    }

    /// The message as a new vector.
    pub fn to_bytes(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf, src, dst);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// keepalived 2.2.7's VRRPv2 advert (keepalived.md §3.2): VRID 51, priority 150, PASS
    /// `secret12`, 10.200.0.100 and .101, checksum c3f1.
    const V2: [u8; 24] = [
        0x21, 0x33, 0x96, 0x02, 0x01, 0x01, 0xc3, 0xf1, 0x0a, 0xc8, 0x00, 0x64, 0x0a, 0xc8, 0x00, 0x65, 0x73,
        0x65, 0x63, 0x72, 0x65, 0x74, 0x31, 0x32,
    ];
    /// VRRPv3 over IPv4, VRID 52, priority 120, 50 cs, checksum 54ce over the pseudo-header.
    const V3: [u8; 16] =
        [0x31, 0x34, 0x78, 0x02, 0x00, 0x32, 0x54, 0xce, 0x0a, 0xc8, 0x00, 0x6e, 0x0a, 0xc8, 0x00, 0x6f];
    /// VRRPv2 unicast, VRID 53, priority 255, no auth (8 zero bytes), checksum d487.
    const UNICAST: [u8; 20] =
        [0x21, 0x35, 0xff, 0x01, 0x00, 0x01, 0xd4, 0x87, 0x0a, 0xc8, 0x00, 0x78, 0, 0, 0, 0, 0, 0, 0, 0];
    /// VRRPv3 over IPv6, VRID 55, priority 100, 100 cs, fd00:200::100, checksum 98f5.
    const V6: [u8; 24] = [
        0x31, 0x37, 0x64, 0x01, 0x00, 0x64, 0x98, 0xf5, 0xfd, 0x00, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x01, 0x00,
    ];

    fn round_trip(bytes: &[u8], src: &str, dst: &str) -> Repr {
        let packet = Packet::new_checked(bytes).expect("header");
        let repr = Repr::parse(&packet, ip(src), ip(dst)).expect("parses");
        assert_eq!(repr.to_bytes(ip(src), ip(dst)), bytes);
        repr
    }

    #[test]
    fn keepalived_v2_advert() {
        let packet = Packet::new_checked(&V2[..]).expect("header");
        assert_eq!((packet.version(), packet.msg_type(), packet.vrid(), packet.priority()), (2, 1, 51, 150));
        assert_eq!((packet.addr_count(), packet.auth_type(), packet.adver_int_v2()), (2, 1, 1));
        assert_eq!((packet.adver_int_cs(), packet.checksum(), packet.expected_len(4)), (100, 0xc3f1, 24));
        assert_eq!(packet.addr(1, 4), Some(ip("10.200.0.101")));
        assert_eq!(packet.addr(2, 4), None);
        assert_eq!(packet.auth_data(), Some(*b"secret12"));
        let repr = round_trip(&V2, "10.200.0.1", "224.0.0.18");
        assert_eq!(repr.auth, Auth::pass("secret12"));
        assert_eq!(repr.addrs, [ip("10.200.0.100"), ip("10.200.0.101")]);
        // The checksum does not depend on the addresses for v2.
        round_trip(&V2, "10.9.9.9", "10.200.0.2");
    }

    #[test]
    fn keepalived_v3_adverts() {
        let repr = round_trip(&V3, "10.200.0.1", "224.0.0.18");
        assert_eq!((repr.version, repr.advert_int_cs, repr.auth), (Version::V3, 50, Auth::None));
        let packet = Packet::new_checked(&V3[..]).expect("header");
        assert!(!packet.verify_checksum(&ip("10.200.0.1"), &ip("10.200.0.2")), "pseudo-header covers dst");
        let mut zeroed = V3;
        zeroed[6..8].fill(0);
        assert_eq!(checksum::finish(checksum::data(&zeroed)), 0x402a, "without the pseudo-header (§3.3)");
        let repr = round_trip(&V6, "fe80::5889:80ff:feea:fada", "ff02::12");
        assert_eq!(repr.addrs, [ip("fd00:200::100")]);
        assert_eq!(Packet::new_checked(&V6[..]).expect("header").expected_len(16), 24);
    }

    #[test]
    fn keepalived_unicast_advert_and_zero_auth_bytes() {
        let repr = round_trip(&UNICAST, "10.200.0.1", "10.200.0.2");
        assert_eq!((repr.priority, repr.auth), (255, Auth::None));
    }

    #[test]
    fn pass_keeps_the_first_eight_bytes() {
        assert_eq!(Auth::pass("secret12345"), Auth::Pass(*b"secret12"));
        assert_eq!(Auth::pass("ab"), Auth::Pass(*b"ab\0\0\0\0\0\0"));
        assert_eq!(
            (Auth::None.type_number(), Auth::pass("x").type_number(), Auth::Ah.type_number()),
            (0, 1, 2)
        );
    }

    #[test]
    fn emit_rounds_v2_intervals_and_clears_v3_reserved_bits() {
        let mut repr = round_trip(&V2, "10.200.0.1", "224.0.0.18");
        repr.advert_int_cs = 149;
        assert_eq!(repr.to_bytes(ip("10.200.0.1"), ip("224.0.0.18"))[5], 1);
        let mut bytes = V3;
        bytes[4] |= 0xf0;
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.max_adver_int_v3(), 50);
        let mut repr = round_trip(&V3, "10.200.0.1", "224.0.0.18");
        repr.advert_int_cs = 0xffff;
        assert_eq!(repr.to_bytes(ip("10.200.0.1"), ip("224.0.0.18"))[4], 0x0f);
    }
}
