//! Ethernet II frames, with at most one 802.1Q VLAN tag.

use super::{get_u16, set_u16, Error, Result};
use core::fmt;

enum_with_unknown! {
    /// EtherType values.
    pub enum EtherType(u16) {
        /// IPv4.
        Ipv4 = 0x0800,
        /// ARP.
        Arp = 0x0806,
        /// An 802.1Q VLAN tag follows.
        Vlan = 0x8100,
        /// IPv6.
        Ipv6 = 0x86dd,
        /// An 802.1ad service tag (QinQ); not parsed as a tag here.
        QinQ = 0x88a8,
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::QinQ => f.write_str("802.1ad"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Address = Address([0xff; 6]);

    /// The address in the first six bytes of `data`, or `None` when shorter.
    #[inline]
    pub fn from_bytes(data: &[u8]) -> Option<Address> {
        match data {
            [a, b, c, d, e, f, ..] => Some(Address([*a, *b, *c, *d, *e, *f])),
            _ => None,
        }
    }
    /// The octets.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Neither multicast nor broadcast.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }
    /// The group bit is set (broadcast included).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
    /// All ones.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Address::BROADCAST
    }
    /// The locally-administered bit is set.
    #[inline]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl std::str::FromStr for Address {
    type Err = Error;

    /// Six colon-separated groups of one or two hex digits, as `ip link` writes them.
    fn from_str(text: &str) -> Result<Address> {
        let mut mac = [0u8; 6];
        let mut parts = text.split(':');
        for b in &mut mac {
            let p = parts.next().ok_or(Error)?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| Error)?;
        }
        if parts.next().is_some() {
            return Err(Error);
        }
        Ok(Address(mac))
    }
}

/// The tag control information of an 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
}

impl VlanTag {
    /// From the 16-bit TCI.
    #[inline]
    pub const fn from_tci(tci: u16) -> VlanTag {
        VlanTag { pcp: (tci >> 13) as u8, dei: tci & 0x1000 != 0, vid: tci & 0x0fff }
    }
    /// The 16-bit TCI (out-of-range `pcp`/`vid` bits are masked off).
    #[inline]
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
}

mod field {
    use crate::wire::{Field, Rest};
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: Rest = 14..;
    pub const VLAN_TCI: Field = 14..16;
    pub const VLAN_ETHERTYPE: Field = 16..18;
    pub const VLAN_PAYLOAD: Rest = 18..;
}

/// The length of an untagged header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// The length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = field::VLAN_PAYLOAD.start;

/// A view of an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }
    /// Wraps a buffer after [`Frame::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }
    /// Ensures the header, including a VLAN tag when the EtherType announces one, fits the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || (self.has_vlan() && len < VLAN_HEADER_LEN) {
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
    /// Whether the EtherType is 802.1Q.
    #[inline]
    pub fn has_vlan(&self) -> bool {
        let data = self.buffer.as_ref();
        data.len() >= HEADER_LEN && get_u16(data, field::ETHERTYPE.start) == u16::from(EtherType::Vlan)
    }
    /// 14, or 18 with a VLAN tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.has_vlan() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }
    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Address {
        let d = &self.buffer.as_ref()[field::DESTINATION];
        Address([d[0], d[1], d[2], d[3], d[4], d[5]])
    }
    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Address {
        let d = &self.buffer.as_ref()[field::SOURCE];
        Address([d[0], d[1], d[2], d[3], d[4], d[5]])
    }
    /// The outer EtherType (`Vlan` when tagged).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }
    /// The VLAN tag, when there is one.
    #[inline]
    pub fn vlan_tag(&self) -> Option<VlanTag> {
        if self.has_vlan() {
            Some(VlanTag::from_tci(get_u16(self.buffer.as_ref(), field::VLAN_TCI.start)))
        } else {
            None
        }
    }
    /// The EtherType of the payload: after the tag when tagged.
    #[inline]
    pub fn payload_ethertype(&self) -> EtherType {
        if self.has_vlan() {
            EtherType::from(get_u16(self.buffer.as_ref(), field::VLAN_ETHERTYPE.start))
        } else {
            self.ethertype()
        }
    }
    /// The payload, after the tag when tagged.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        &self.buffer.as_ref()[hl..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0);
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0);
    }
    /// Sets the outer EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, value: EtherType) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE.start, value.into());
    }
    /// Sets the outer EtherType to 802.1Q and writes the tag (the buffer needs 18 bytes).
    #[inline]
    pub fn set_vlan_tag(&mut self, tag: VlanTag) {
        self.set_ethertype(EtherType::Vlan);
        set_u16(self.buffer.as_mut(), field::VLAN_TCI.start, tag.tci());
    }
    /// Sets the payload EtherType: after the tag when the outer EtherType is 802.1Q.
    #[inline]
    pub fn set_payload_ethertype(&mut self, value: EtherType) {
        let at = if self.has_vlan() { field::VLAN_ETHERTYPE.start } else { field::ETHERTYPE.start };
        set_u16(self.buffer.as_mut(), at, value.into());
    }
    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Frame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Address,
    /// Destination address.
    pub dst_addr: Address,
    /// EtherType of the payload (the inner one when tagged).
    pub ethertype: EtherType,
    /// The 802.1Q tag, if any.
    pub vlan: Option<VlanTag>,
}

impl Repr {
    /// Reads a checked frame.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.payload_ethertype(),
            vlan: frame.vlan_tag(),
        })
    }
    /// The header length this emits.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }
    /// Writes the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        match self.vlan {
            Some(tag) => frame.set_vlan_tag(tag),
            None => frame.set_ethertype(self.ethertype),
        }
        frame.set_payload_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME: [u8; 18] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // dst
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, // src
        0x08, 0x00, // IPv4
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    static VLAN_FRAME: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x81, 0x00, // 802.1Q
        0xb0, 0x64, // pcp 5, dei 1, vid 100
        0x86, 0xdd, // IPv6
        0xde, 0xad,
    ];

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), Address([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src_addr(), Address([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.payload_ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan_tag(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0x00, 0x00, 0xff]);
    }

    #[test]
    fn deconstruct_vlan() {
        let f = Frame::new_checked(&VLAN_FRAME[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        assert!(f.src_addr().is_local() && f.src_addr().is_unicast());
        assert_eq!(f.ethertype(), EtherType::Vlan);
        assert_eq!(f.vlan_tag(), Some(VlanTag { pcp: 5, dei: true, vid: 100 }));
        assert_eq!(f.payload_ethertype(), EtherType::Ipv6);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xde, 0xad]);
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 18];
        let mut f = Frame::new_unchecked(&mut bytes);
        f.set_dst_addr(Address([1, 2, 3, 4, 5, 6]));
        f.set_src_addr(Address([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]));
        f.set_ethertype(EtherType::Ipv4);
        f.payload_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        assert_eq!(&bytes[..], &FRAME[..]);

        let mut bytes = vec![0xa5; 20];
        let mut f = Frame::new_unchecked(&mut bytes);
        f.set_dst_addr(Address::BROADCAST);
        f.set_src_addr(Address([2, 0, 0, 0, 0, 1]));
        f.set_vlan_tag(VlanTag { pcp: 5, dei: true, vid: 100 });
        f.set_payload_ethertype(EtherType::Ipv6);
        f.payload_mut().copy_from_slice(&[0xde, 0xad]);
        assert_eq!(&bytes[..], &VLAN_FRAME[..]);
    }

    #[test]
    fn addresses_parse_what_display_writes() {
        let a: Address = "02:00:0a:00:00:01".parse().unwrap();
        assert_eq!(a, Address([2, 0, 10, 0, 0, 1]));
        assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        assert_eq!("2:0:A:0:0:1".parse::<Address>().unwrap(), a);
        for bad in [
            "",
            "02:00",
            "02:00:0a:00:00:01:ff",
            "02:00:0a:00:00:",
            "002:00:0a:00:00:01",
            "+2:00:0a:00:00:01",
            "0g:00:0a:00:00:01",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_and_emit_round_trip() {
        for bytes in [&FRAME[..], &VLAN_FRAME[..]] {
            let repr = Repr::parse(&Frame::new_checked(bytes).unwrap()).unwrap();
            let mut out = vec![0xa5; bytes.len()];
            let mut f = Frame::new_unchecked(&mut out);
            repr.emit(&mut f);
            let hl = repr.buffer_len();
            f.payload_mut().copy_from_slice(&bytes[hl..]);
            assert_eq!(&out[..], bytes);
        }
    }

    #[test]
    fn too_short() {
        assert_eq!(Frame::new_checked(&FRAME[..13]), Err(Error));
        assert_eq!(Frame::new_checked(&VLAN_FRAME[..17]), Err(Error));
        assert!(Frame::new_checked(&VLAN_FRAME[..18]).is_ok());
        assert!(Frame::new_checked(&FRAME[..14]).is_ok());
    }

    #[test]
    fn address_and_tag_helpers() {
        assert_eq!(Address([0, 0x1b, 0x21, 0xa, 0xb, 0xcc]).to_string(), "00:1b:21:0a:0b:cc");
        assert!(Address([1, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert_eq!(Address::from_bytes(&[1, 2, 3, 4, 5]), None);
        assert_eq!(Address::from_bytes(&[1, 2, 3, 4, 5, 6, 7]), Some(Address([1, 2, 3, 4, 5, 6])));
        assert_eq!(VlanTag::from_tci(0xb064).tci(), 0xb064);
        assert_eq!(VlanTag { pcp: 0xff, dei: false, vid: 0xffff }.tci(), 0xefff);
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
        assert_eq!(EtherType::Unknown(0x1234).to_string(), "0x1234");
    }
}
