//! IPv6 fixed headers (RFC 8200) and a walker over extension headers to the upper-layer protocol,
//! noting fragments.

use super::{get_ipv6, get_u16, get_u32, set_u16, Error, IpProtocol, Result};
use std::net::Ipv6Addr;

mod field {
    use crate::wire::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// The length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// A view of an IPv6 packet.
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
    /// Wraps the possibly truncated copy of a packet that an ICMPv6 error quotes, after
    /// [`Packet::check_header_len`].
    #[inline]
    pub fn new_checked_truncated(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_header_len()?;
        Ok(p)
    }
    /// Ensures the fixed header and the payload length fit the buffer (bytes past them are ignored).
    /// Jumbograms (payload length 0 with a jumbo option) are not supported: they read as empty.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        if HEADER_LEN + self.payload_len() as usize > self.buffer.as_ref().len() {
            return Err(Error);
        }
        Ok(())
    }
    /// Ensures the fixed header fits.
    #[inline]
    pub fn check_header_len(&self) -> Result<()> {
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
    /// The version field (6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// The traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (get_u16(self.buffer.as_ref(), 0) >> 4) as u8
    }
    /// The flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }
    /// The payload length (everything after the fixed header, extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// The fixed header plus the payload length.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }
    /// The next header after the fixed header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }
    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::SRC_ADDR.start)
    }
    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::DST_ADDR.start)
    }
    /// The payload: up to the payload length, or to the end of a shorter (quoted) buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = data.len().min(self.total_len());
        &data[HEADER_LEN..end]
    }
    /// Walks the extension headers in the payload to the upper-layer header ([`walk_ext_headers`]);
    /// the offset is from the start of the payload.
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        walk_ext_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & 0x0f) | (value << 4);
    }
    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, value: u8) {
        let v = get_u16(self.buffer.as_ref(), 0);
        set_u16(self.buffer.as_mut(), 0, (v & 0xf00f) | ((value as u16) << 4));
    }
    /// Sets the flow label (20 bits).
    #[inline]
    pub fn set_flow_label(&mut self, value: u32) {
        let data = self.buffer.as_mut();
        data[1] = (data[1] & 0xf0) | ((value >> 16) as u8 & 0x0f);
        data[2] = (value >> 8) as u8;
        data[3] = value as u8;
    }
    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.into();
    }
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }
    /// Decrements the hop limit. Returns `false` (changing nothing) when it is 0 or 1.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> bool {
        let h = self.hop_limit();
        if h <= 1 {
            return false;
        }
        self.set_hop_limit(h - 1);
        true
    }
    /// The payload, mutably (as bounded as [`Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.buffer.as_ref().len().min(self.total_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A fragment header's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper-layer header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol (`Ipv6NoNxt` when there is none, `Esp` for encrypted payloads).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the walked data. For a non-first fragment
    /// this is where the fragment's data starts, which is not a header.
    pub offset: usize,
    /// The fragment header, when there is one.
    pub fragment: Option<Fragment>,
}

impl UpperLayer {
    /// Part of a fragmented packet.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset != 0 || f.more_frags)
    }
    /// Whether the upper-layer header is present here (not a non-first fragment).
    #[inline]
    pub fn has_header(&self) -> bool {
        !matches!(self.fragment, Some(f) if f.offset != 0)
    }
}

/// At most this many extension headers are walked; more is `Err`.
pub const MAX_EXT_HEADERS: usize = 16;

/// Walks IPv6 extension headers starting with `first` at the start of `data` (an IPv6 payload), as
/// the kernel's `ipv6_find_hdr`: hop-by-hop, routing and destination options (length in 8-octet
/// units), AH (4-octet units) and the fragment header are skipped; anything else, including "no next
/// header", ESP and unknown values, ends the walk. A fragment with a non-zero offset ends it too,
/// reporting the fragment's next header. Truncated or overlong chains are `Err`.
pub fn walk_ext_headers(first: IpProtocol, data: &[u8]) -> Result<UpperLayer> {
    let mut protocol = first;
    let mut offset = 0usize;
    let mut fragment = None;
    let mut count = 0;
    loop {
        if count == MAX_EXT_HEADERS && is_extension(protocol) {
            return Err(Error);
        }
        count += 1;
        let len = match protocol {
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                let hdr = data.get(offset..offset + 2).ok_or(Error)?;
                (hdr[1] as usize + 1) * 8
            }
            IpProtocol::Ah => {
                let hdr = data.get(offset..offset + 2).ok_or(Error)?;
                (hdr[1] as usize + 2) * 4
            }
            IpProtocol::Ipv6Frag => {
                let hdr = data.get(offset..offset + 8).ok_or(Error)?;
                let off_flags = get_u16(hdr, 2);
                let frag = Fragment {
                    offset: off_flags & 0xfff8,
                    more_frags: off_flags & 1 != 0,
                    ident: get_u32(hdr, 4),
                };
                fragment = Some(frag);
                protocol = IpProtocol::from(hdr[0]);
                offset += 8;
                if frag.offset != 0 {
                    return Ok(UpperLayer { protocol, offset, fragment });
                }
                continue;
            }
            _ => return Ok(UpperLayer { protocol, offset, fragment }),
        };
        if offset + len > data.len() {
            return Err(Error);
        }
        protocol = IpProtocol::from(data[offset]);
        offset += len;
    }
}

#[inline]
fn is_extension(protocol: IpProtocol) -> bool {
    matches!(
        protocol,
        IpProtocol::HopByHop
            | IpProtocol::Ipv6Route
            | IpProtocol::Ipv6Opts
            | IpProtocol::Ah
            | IpProtocol::Ipv6Frag
    )
}

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: IpProtocol,
    /// Payload length (at most 65535 when emitted).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Reads a checked packet whose version is 6.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len() as usize,
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }
    /// 40.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the fixed header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.buffer.as_mut()[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 52] = [
        0x69, 0x51, 0x23, 0x45, // version 6, traffic class 0x95, flow label 0x12345
        0x00, 0x0c, 0x11, 0x40, // payload length 12, UDP, hop limit 64
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
        0x00, 0x02, 0x00, 0x0c, 0x02, 0x4e, 0xff, 0xff, 0xff, 0xff,
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: "fe80::1".parse().unwrap(),
            dst_addr: "ff02::1".parse().unwrap(),
            next_header: IpProtocol::Udp,
            payload_len: 12,
            hop_limit: 64,
            traffic_class: 0x95,
            flow_label: 0x12345,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0x95);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 12);
        assert_eq!(p.total_len(), 52);
        assert_eq!(p.next_header(), IpProtocol::Udp);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &PACKET_BYTES[40..]);
        assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: IpProtocol::Udp, offset: 0, fragment: None }));
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 52];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_version(6);
        p.set_traffic_class(0x95);
        p.set_flow_label(0x12345);
        p.set_payload_len(12);
        p.set_next_header(IpProtocol::Udp);
        p.set_hop_limit(64);
        p.set_src_addr("fe80::1".parse().unwrap());
        p.set_dst_addr("ff02::1".parse().unwrap());
        p.payload_mut().copy_from_slice(&PACKET_BYTES[40..]);
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn parse_and_emit() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr()));
        let mut bytes = vec![0xa5; 52];
        let mut p = Packet::new_unchecked(&mut bytes);
        repr().emit(&mut p);
        p.payload_mut().copy_from_slice(&PACKET_BYTES[40..]);
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn negative() {
        assert_eq!(Packet::new_checked(&PACKET_BYTES[..39]), Err(Error));
        assert_eq!(Packet::new_checked(&PACKET_BYTES[..51]), Err(Error));
        let p = Packet::new_checked_truncated(&PACKET_BYTES[..44]).unwrap();
        assert_eq!(p.payload(), &PACKET_BYTES[40..44]);
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0x49;
        assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Err(Error));
    }

    #[test]
    fn hop_limit_decrement() {
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        assert!(p.decrement_hop_limit());
        assert_eq!(p.hop_limit(), 63);
        p.set_hop_limit(1);
        assert!(!p.decrement_hop_limit());
    }

    #[test]
    fn walks_extension_headers() {
        // hop-by-hop (8) -> dest opts (16) -> routing (8) -> AH (12+4=16) -> TCP
        let mut data = vec![];
        data.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH, next = dest opts
        data.extend_from_slice(&[43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // DO, next = routing
        data.extend_from_slice(&[51, 0, 0, 0, 0, 0, 0, 0]); // routing, next = AH
        data.extend_from_slice(&[6, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]); // AH, next = TCP
        data.extend_from_slice(&[0x01, 0xbb, 0x00, 0x50]);
        let ul = walk_ext_headers(IpProtocol::HopByHop, &data).unwrap();
        assert_eq!(ul, UpperLayer { protocol: IpProtocol::Tcp, offset: 48, fragment: None });
        assert!(ul.has_header() && !ul.is_fragment());
        // Truncated anywhere in the chain.
        for cut in [1, 7, 9, 23, 25, 31, 33, 47] {
            assert_eq!(walk_ext_headers(IpProtocol::HopByHop, &data[..cut]), Err(Error), "cut {cut}");
        }
        // The upper-layer header itself may be absent: the walk only finds where it starts.
        assert_eq!(walk_ext_headers(IpProtocol::HopByHop, &data[..48]).map(|u| u.offset), Ok(48));
        // No next header / ESP end the walk.
        let ul = walk_ext_headers(IpProtocol::Ipv6NoNxt, &[]).unwrap();
        assert_eq!(ul.protocol, IpProtocol::Ipv6NoNxt);
        assert_eq!(walk_ext_headers(IpProtocol::Esp, &[]).map(|u| u.protocol), Ok(IpProtocol::Esp));
    }

    #[test]
    fn detects_fragments() {
        // First fragment: offset 0, M=1, then UDP.
        let first = [17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x35];
        let ul = walk_ext_headers(IpProtocol::Ipv6Frag, &first).unwrap();
        assert_eq!(ul.protocol, IpProtocol::Udp);
        assert_eq!(ul.offset, 8);
        assert_eq!(ul.fragment, Some(Fragment { offset: 0, more_frags: true, ident: 0xdeadbeef }));
        assert!(ul.is_fragment() && ul.has_header());
        // Later fragment: offset 1232, M=0; the walk stops at the fragment data.
        let later = [6, 0, 0x04, 0xd0, 0, 0, 0, 7, 0xaa, 0xbb];
        let ul = walk_ext_headers(IpProtocol::Ipv6Frag, &later).unwrap();
        assert_eq!(ul.protocol, IpProtocol::Tcp);
        assert_eq!(ul.fragment, Some(Fragment { offset: 1232, more_frags: false, ident: 7 }));
        assert!(ul.is_fragment() && !ul.has_header());
        // An atomic fragment (offset 0, M=0) is not a fragment for forwarding purposes.
        let atomic = [6, 0, 0, 0, 0, 0, 0, 9];
        let ul = walk_ext_headers(IpProtocol::Ipv6Frag, &atomic).unwrap();
        assert!(!ul.is_fragment() && ul.has_header());
        assert_eq!(walk_ext_headers(IpProtocol::Ipv6Frag, &atomic[..7]), Err(Error));
    }

    #[test]
    fn overlong_chains_are_refused() {
        let data: Vec<u8> = (0..MAX_EXT_HEADERS + 1).flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0]).collect();
        assert_eq!(walk_ext_headers(IpProtocol::Ipv6Opts, &data), Err(Error));
        let ok: Vec<u8> = (0..MAX_EXT_HEADERS - 1)
            .flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0])
            .chain([6, 0, 0, 0, 0, 0, 0, 0])
            .collect();
        assert_eq!(walk_ext_headers(IpProtocol::Ipv6Opts, &ok).map(|u| u.protocol), Ok(IpProtocol::Tcp));
    }
}
