//! Generic UDP Encapsulation headers (draft-ietf-intarea-gue), as IPVS sends them for
//! `--tun-type gue`: a UDP datagram to the tunnel port whose payload is a 4-byte GUE header and
//! the client's IP packet.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver|C|  Hlen   |  Proto/ctype  |             Flags             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 optional fields (Hlen words)                  |
//! ```
//!
//! IPVS writes variant 0 data messages (C = 0) with no optional fields: `ipvs_gue_encap` adds
//! the private-flags word and the remote-checksum-offload option only for a packet the local
//! stack left with `CHECKSUM_PARTIAL`, which a forwarded packet never is. Variant 1 (the IP
//! header itself in the place of the GUE header) is read too, as Linux's `fou` receiver does.

use super::{get_u16, get_u32, set_u16, Error, IpProtocol, Result};

mod field {
    use crate::wire::Field;
    pub const VER_C_HLEN: usize = 0;
    pub const PROTO_CTYPE: usize = 1;
    pub const FLAGS: Field = 2..4;
}

/// The fixed header length.
pub const HEADER_LEN: usize = field::FLAGS.end;
/// Flag: a 32-bit private-flags word follows (`GUE_FLAG_PRIV`).
pub const FLAG_PRIV: u16 = 0x0001;
/// Private flag: a remote checksum offload option follows (`GUE_PFLAG_REMCSUM`).
pub const PFLAG_REMCSUM: u32 = 0x8000_0000;

/// Linux's default `net.ipv4.ip_local_port_range`, from which `udp_flow_src_port` picks the
/// outer source port when the caller gives no range (IPVS gives none).
pub const SOURCE_PORT_RANGE: (u16, u16) = (32768, 60999);

/// A view of a GUE header and what follows it.
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
    /// Ensures the buffer holds the 4-byte header and its optional fields.
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
    /// The variant (0: GUE header; 1: an IPv4 or IPv6 header directly).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_C_HLEN] >> 6
    }
    /// The control bit (a control message, not data).
    #[inline]
    pub fn control(&self) -> bool {
        self.buffer.as_ref()[field::VER_C_HLEN] & 0x20 != 0
    }
    /// The length of the optional fields in 32-bit words.
    #[inline]
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::VER_C_HLEN] & 0x1f
    }
    /// The protocol of the payload (data messages) or the control type.
    #[inline]
    pub fn proto_ctype(&self) -> u8 {
        self.buffer.as_ref()[field::PROTO_CTYPE]
    }
    /// The flags.
    #[inline]
    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS.start)
    }
    /// Where the payload starts: after the header and its options (variant 0), at 0 (variant 1).
    #[inline]
    pub fn header_len(&self) -> usize {
        match self.buffer.as_ref().first() {
            Some(b) if b >> 6 == 1 => 0,
            _ => HEADER_LEN + 4 * self.hlen() as usize,
        }
    }
    /// The private-flags word, when [`FLAG_PRIV`] is set and the options hold it.
    #[inline]
    pub fn private_flags(&self) -> Option<u32> {
        (self.version() == 0 && self.flags() & FLAG_PRIV != 0 && self.hlen() >= 1)
            .then(|| get_u32(self.buffer.as_ref(), HEADER_LEN))
    }
    /// The encapsulated packet.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets variant, control bit and options length (`hlen` < 32 words).
    #[inline]
    pub fn set_first_byte(&mut self, version: u8, control: bool, hlen: u8) {
        self.buffer.as_mut()[field::VER_C_HLEN] = (version << 6) | (u8::from(control) << 5) | (hlen & 0x1f);
    }
    /// Sets the payload protocol / control type.
    #[inline]
    pub fn set_proto_ctype(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTO_CTYPE] = value;
    }
    /// Sets the flags.
    #[inline]
    pub fn set_flags(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::FLAGS.start, value);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A GUE data message carrying an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// [`IpProtocol::IpIp`] for IPv4 inside, [`IpProtocol::Ipv6`] for IPv6.
    pub protocol: IpProtocol,
}

impl Repr {
    /// Reads a data message carrying IPv4 or IPv6: variant 0 with only flags Linux knows (the
    /// private word without private flags), or variant 1. `Err` for control messages, unknown
    /// flags, remote checksum offload (not applied here) and other payloads.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let protocol = match packet.version() {
            0 => {
                if packet.control() || packet.flags() & !FLAG_PRIV != 0 {
                    return Err(Error);
                }
                if packet.flags() & FLAG_PRIV != 0 && packet.private_flags() != Some(0) {
                    return Err(Error);
                }
                IpProtocol::from(packet.proto_ctype())
            }
            1 => match packet.as_ref()[0] >> 4 {
                4 => IpProtocol::IpIp,
                6 => IpProtocol::Ipv6,
                _ => return Err(Error),
            },
            _ => return Err(Error),
        };
        let version_ok = match protocol {
            IpProtocol::IpIp => packet.payload().first().is_some_and(|b| b >> 4 == 4),
            IpProtocol::Ipv6 => packet.payload().first().is_some_and(|b| b >> 4 == 6),
            _ => false,
        };
        if !version_ok {
            return Err(Error);
        }
        Ok(Repr { protocol })
    }
    /// 4: no optional fields.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the header (variant 0, data, no options, no flags).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_first_byte(0, false, 0);
        packet.set_proto_ctype(self.protocol.into());
        packet.set_flags(0);
    }
}

/// The 32-bit flow hash of an IP packet: FNV-1a over its addresses, protocol and (TCP, UDP,
/// SCTP, not a later fragment) ports, finished with MurmurHash3's `fmix32` so every input bit
/// reaches the high bits the port choice uses. Linux hashes the same flow keys (`skb_get_hash`)
/// with a per-boot random key, so its values cannot be matched; what matters, and what this
/// keeps, is that a flow keeps one source port and flows spread over the range.
pub fn flow_hash(packet: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
    };
    let (addrs, proto, l4) = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            let ihl = (packet[0] & 0x0f) as usize * 4;
            let later_fragment = get_u16(packet, 6) & 0x1fff != 0;
            (&packet[12..20], packet[9], (!later_fragment).then(|| packet.get(ihl..)).flatten())
        }
        Some(6) if packet.len() >= 40 => (&packet[8..40], packet[6], packet.get(40..)),
        _ => (packet.get(..packet.len().min(40)).unwrap_or_default(), 0, None),
    };
    eat(addrs);
    eat(&[proto]);
    if matches!(IpProtocol::from(proto), IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp) {
        if let Some(ports) = l4.and_then(|l| l.get(..4)) {
            eat(ports);
        }
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The outer UDP source port for `packet`, as `udp_flow_src_port(net, skb, 0, 0, false)` picks
/// it: the flow hash with its low half folded into the high half, scaled into
/// [`SOURCE_PORT_RANGE`] (`min + hash * (max - min) / 2^32`).
pub fn flow_source_port(packet: &[u8]) -> u16 {
    let (min, max) = SOURCE_PORT_RANGE;
    let mut h = flow_hash(packet);
    h ^= h << 16;
    ((h as u64 * (max - min) as u64) >> 32) as u16 + min
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_UDP: [u8; 28] = [
        0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0, 80, 0, 8, 0, 0,
    ];

    #[test]
    fn golden_header() {
        let mut buf = [0xffu8; 4];
        Repr { protocol: IpProtocol::IpIp }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x00, 0x04, 0x00, 0x00]);
        Repr { protocol: IpProtocol::Ipv6 }.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, [0x00, 0x29, 0x00, 0x00]);
    }

    #[test]
    fn parse_variants_and_options() {
        let mut msg = vec![0x00, 0x04, 0, 0];
        msg.extend_from_slice(&V4_UDP);
        let p = Packet::new_checked(&msg[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(Repr { protocol: IpProtocol::IpIp }));
        assert_eq!(p.payload(), &V4_UDP[..]);
        // Private word without private flags: skipped.
        let mut priv_word = vec![0x01, 0x04, 0x00, 0x01, 0, 0, 0, 0];
        priv_word.extend_from_slice(&V4_UDP);
        let p = Packet::new_checked(&priv_word[..]).unwrap();
        assert_eq!(p.private_flags(), Some(0));
        assert_eq!(Repr::parse(&p), Ok(Repr { protocol: IpProtocol::IpIp }));
        assert_eq!(p.payload(), &V4_UDP[..]);
        // Remote checksum offload is not applied here.
        priv_word[4..8].copy_from_slice(&PFLAG_REMCSUM.to_be_bytes());
        assert_eq!(Repr::parse(&Packet::new_unchecked(&priv_word[..])), Err(Error));
        // Variant 1: the IP header is the GUE header.
        let p = Packet::new_checked(&V4_UDP[..]).unwrap();
        assert_eq!((p.version(), p.header_len()), (1, 0));
        assert_eq!(Repr::parse(&p), Ok(Repr { protocol: IpProtocol::IpIp }));
        assert_eq!(p.payload(), &V4_UDP[..]);
    }

    #[test]
    fn refusals() {
        let mut msg = vec![0x00, 0x04, 0, 0];
        msg.extend_from_slice(&V4_UDP);
        for (at, value) in [(0usize, 0x20u8), (0, 0x80), (1, 41), (1, 17), (3, 0x02), (0, 0x01)] {
            let mut m = msg.clone();
            m[at] |= value;
            if at == 1 {
                m[1] = value;
            }
            assert_eq!(Repr::parse(&Packet::new_unchecked(&m[..])), Err(Error), "byte {at} = {value:#x}");
        }
        assert_eq!(Packet::new_checked(&[][..]), Err(Error));
        assert_eq!(Packet::new_checked(&[0x02, 4, 0, 0, 0][..]), Err(Error), "options past the end");
        assert_eq!(Repr::parse(&Packet::new_unchecked(&[0u8, 4, 0, 0][..])), Err(Error), "no inner packet");
        assert_eq!(Repr::parse(&Packet::new_unchecked(&[0x50u8; 20][..])), Err(Error), "variant 1, not IP");
    }

    #[test]
    fn flow_ports_are_stable_in_range_and_spread() {
        let (min, max) = SOURCE_PORT_RANGE;
        let a = flow_source_port(&V4_UDP);
        assert_eq!(a, flow_source_port(&V4_UDP));
        // Known answer (computed by a separate script from the description above), so a change
        // of hash is a visible decision.
        assert_eq!((flow_hash(&V4_UDP), a), (0x1ee6_7a4d, 43869));
        let mut seen = std::collections::BTreeSet::new();
        for sport in 0..2000u16 {
            let mut p = V4_UDP;
            p[20..22].copy_from_slice(&sport.to_be_bytes());
            let port = flow_source_port(&p);
            assert!((min..max).contains(&port));
            seen.insert(port / 1024);
        }
        assert!(seen.len() >= 25, "2000 flows cover most 1024-port bands: {}", seen.len());
        // Payload bytes and TTL are not part of the flow.
        let mut q = V4_UDP;
        q[8] = 3;
        assert_eq!(flow_source_port(&q), a);
        let _ = flow_source_port(&[]);
        let _ = flow_source_port(&[0x60; 39]);
    }
}
