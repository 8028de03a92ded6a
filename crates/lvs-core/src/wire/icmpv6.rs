//! ICMPv6 (RFC 4443) and the neighbour discovery messages a load balancer answers (RFC 4861):
//! type, code, checksum over the IPv6 pseudo-header, echo fields, packet-too-big MTU, the quoted
//! original packet of error messages, and neighbour solicitation/advertisement with link-layer
//! address options.

use super::ethernet::Address as EthernetAddress;
use super::ipv6;
use super::{
    checksum, get_ipv6, get_u16, get_u32, set_u16, set_u32, ChecksumCapabilities, Error, IpProtocol, Result,
};
use std::net::{IpAddr, Ipv6Addr};

enum_with_unknown! {
    /// ICMPv6 message types.
    pub enum Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big.
        PktTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// MLD query.
        MldQuery = 130,
        /// MLDv1 report.
        MldReport = 131,
        /// MLDv1 done.
        MldDone = 132,
        /// Router solicitation.
        RouterSolicit = 133,
        /// Router advertisement.
        RouterAdvert = 134,
        /// Neighbour solicitation.
        NeighborSolicit = 135,
        /// Neighbour advertisement.
        NeighborAdvert = 136,
        /// Redirect.
        Redirect = 137,
        /// MLDv2 report.
        MldV2Report = 143,
    }
}

impl Message {
    /// Error messages (types below 128), which quote the offending packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        u8::from(*self) < 128
    }
}

enum_with_unknown! {
    /// Destination-unreachable codes.
    pub enum DstUnreachable(u8) {
        /// No route to destination.
        NoRoute = 0,
        /// Administratively prohibited.
        AdminProhibit = 1,
        /// Beyond the scope of the source address.
        BeyondScope = 2,
        /// Address unreachable.
        AddrUnreachable = 3,
        /// Port unreachable.
        PortUnreachable = 4,
        /// Source address failed ingress/egress policy.
        FailedPolicy = 5,
        /// Reject route to destination.
        RejectRoute = 6,
    }
}

enum_with_unknown! {
    /// Time-exceeded codes.
    pub enum TimeExceeded(u8) {
        /// Hop limit exceeded in transit.
        HopLimitExceeded = 0,
        /// Fragment reassembly time exceeded.
        FragReassemExceeded = 1,
    }
}

enum_with_unknown! {
    /// Parameter-problem codes.
    pub enum ParamProblem(u8) {
        /// Erroneous header field.
        ErroneousHdrField = 0,
        /// Unrecognised next header.
        UnrecognizedNxtHdr = 1,
        /// Unrecognised IPv6 option.
        UnrecognizedOption = 2,
    }
}

enum_with_unknown! {
    /// Neighbour discovery option types.
    pub enum NdpOptionType(u8) {
        /// Source link-layer address.
        SourceLinkLayerAddr = 1,
        /// Target link-layer address.
        TargetLinkLayerAddr = 2,
        /// Prefix information.
        PrefixInformation = 3,
        /// Redirected header.
        RedirectedHeader = 4,
        /// MTU.
        Mtu = 5,
    }
}

/// Neighbour advertisement flags (the top bits of byte 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdFlags(pub u8);

impl NdFlags {
    /// The sender is a router.
    pub const ROUTER: NdFlags = NdFlags(0x80);
    /// Sent in response to a solicitation.
    pub const SOLICITED: NdFlags = NdFlags(0x40);
    /// Override an existing cache entry.
    pub const OVERRIDE: NdFlags = NdFlags(0x20);

    /// Whether every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: NdFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for NdFlags {
    type Output = NdFlags;
    #[inline]
    fn bitor(self, rhs: NdFlags) -> NdFlags {
        NdFlags(self.0 | rhs.0)
    }
}

mod field {
    use crate::wire::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const REST: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const ND_FLAGS: usize = 4;
    pub const DATA: Rest = 8..;
    pub const TARGET_ADDR: Field = 8..24;
    pub const NDP_OPTIONS: Rest = 24..;
}

/// The basic header length (type, code, checksum, 4 bytes).
pub const HEADER_LEN: usize = field::DATA.start;
/// The header length of neighbour solicitations and advertisements (with the target address).
pub const ND_HEADER_LEN: usize = field::NDP_OPTIONS.start;
/// How much of an offending packet an error should quote at most, so the error fits in the IPv6
/// minimum MTU: 1280 − 40 − 8.
pub const MAX_ERROR_QUOTE: usize = 1280 - 40 - HEADER_LEN;

/// One neighbour discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NdpOption<'a> {
    /// The type.
    pub option_type: NdpOptionType,
    /// The bytes after type and length (length × 8 − 2 of them).
    pub data: &'a [u8],
}

impl NdpOption<'_> {
    /// The Ethernet address of a source/target link-layer address option.
    #[inline]
    pub fn link_layer_addr(&self) -> Option<EthernetAddress> {
        match self.option_type {
            NdpOptionType::SourceLinkLayerAddr | NdpOptionType::TargetLinkLayerAddr => {
                EthernetAddress::from_bytes(self.data)
            }
            _ => None,
        }
    }
}

/// Iterates over neighbour discovery options; a malformed option (length 0 or past the end) yields
/// one `Err` and ends the iteration.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    data: &'a [u8],
}

impl<'a> NdpOptions<'a> {
    /// Options in `data`.
    #[inline]
    pub const fn new(data: &'a [u8]) -> NdpOptions<'a> {
        NdpOptions { data }
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let data = self.data;
        let len = match data {
            [_, l, ..] => *l as usize * 8,
            _ => 0,
        };
        if len == 0 || len > data.len() {
            self.data = &[];
            return Some(Err(Error));
        }
        self.data = &data[len..];
        Some(Ok(NdpOption { option_type: NdpOptionType::from(data[0]), data: &data[2..len] }))
    }
}

/// A view of an ICMPv6 message.
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
    /// Ensures the 8-byte header fits, and the 24-byte header of neighbour solicitations and
    /// advertisements.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error);
        }
        if matches!(self.msg_type(), Message::NeighborSolicit | Message::NeighborAdvert)
            && len < ND_HEADER_LEN
        {
            return Err(Error);
        }
        Ok(())
    }
    /// The buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }
    /// The code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }
    /// The echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }
    /// The MTU of a packet-too-big message.
    #[inline]
    pub fn pkt_too_big_mtu(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::REST.start)
    }
    /// The pointer of a parameter problem.
    #[inline]
    pub fn param_problem_ptr(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::REST.start)
    }
    /// Neighbour advertisement flags.
    #[inline]
    pub fn nd_flags(&self) -> NdFlags {
        NdFlags(self.buffer.as_ref()[field::ND_FLAGS] & 0xe0)
    }
    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }
    /// Whether this is an error message.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type().is_error()
    }
    /// The quoted original packet of an error message, header-checked
    /// ([`ipv6::Packet::new_checked_truncated`]); `Err` for non-errors or a quote shorter than 40
    /// bytes. Walk it with [`ipv6::Packet::upper_layer`] to reach the ports.
    #[inline]
    pub fn original_datagram(&self) -> Result<ipv6::Packet<&[u8]>> {
        if !self.is_error() {
            return Err(Error);
        }
        ipv6::Packet::new_checked_truncated(self.data())
    }
    /// The target address of a neighbour solicitation/advertisement (or redirect); `None` when the
    /// message is too short to have one.
    #[inline]
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        let data = self.buffer.as_ref();
        if data.len() < field::TARGET_ADDR.end {
            return None;
        }
        Some(get_ipv6(data, field::TARGET_ADDR.start))
    }
    /// The options of a neighbour solicitation/advertisement (empty when too short).
    #[inline]
    pub fn ndp_options(&self) -> NdpOptions<'_> {
        NdpOptions::new(self.buffer.as_ref().get(field::NDP_OPTIONS).unwrap_or(&[]))
    }
    /// The first well-formed source link-layer address option.
    #[inline]
    pub fn source_ll_addr(&self) -> Option<EthernetAddress> {
        self.find_ll(NdpOptionType::SourceLinkLayerAddr)
    }
    /// The first well-formed target link-layer address option.
    #[inline]
    pub fn target_ll_addr(&self) -> Option<EthernetAddress> {
        self.find_ll(NdpOptionType::TargetLinkLayerAddr)
    }
    fn find_ll(&self, t: NdpOptionType) -> Option<EthernetAddress> {
        self.ndp_options()
            .map_while(|o| o.ok())
            .find(|o| o.option_type == t)
            .and_then(|o| o.link_layer_addr())
    }
    /// Whether the checksum verifies under the pseudo-header of `src` → `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::verify_upper_layer(
            &IpAddr::V6(*src),
            &IpAddr::V6(*dst),
            IpProtocol::Icmpv6,
            self.buffer.as_ref(),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the type.
    #[inline]
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }
    /// Sets the code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }
    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, value);
    }
    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, value);
    }
    /// Sets the 4 bytes after the checksum (MTU, pointer, or zero).
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::REST.start, value);
    }
    /// Sets the neighbour advertisement flags (and clears the reserved bits).
    #[inline]
    pub fn set_nd_flags(&mut self, value: NdFlags) {
        self.set_rest_of_header((value.0 as u32 & 0xe0) << 24);
    }
    /// Sets the target address (the buffer needs 24 bytes).
    #[inline]
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET_ADDR].copy_from_slice(&value.octets());
    }
    /// The data, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
    /// Computes and stores the checksum for the pseudo-header of `src` → `dst`.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::upper_layer(
            &IpAddr::V6(*src),
            &IpAddr::V6(*dst),
            IpProtocol::Icmpv6,
            self.buffer.as_ref(),
        );
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An ICMPv6 message of a kind the load balancer reads or sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// The quoted packet.
        original: &'a [u8],
    },
    /// Packet too big.
    PktTooBig {
        /// The MTU of the next hop.
        mtu: u32,
        /// The quoted packet.
        original: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted packet.
        original: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// The code.
        reason: ParamProblem,
        /// Offset of the problem in the quoted packet.
        pointer: u32,
        /// The quoted packet.
        original: &'a [u8],
    },
    /// Neighbour solicitation.
    NeighborSolicit {
        /// The address asked about.
        target_addr: Ipv6Addr,
        /// The solicitor's link-layer address (absent in duplicate address detection).
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbour advertisement.
    NeighborAdvert {
        /// Router/solicited/override flags.
        flags: NdFlags,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// The target's link-layer address.
        lladdr: Option<EthernetAddress>,
    },
}

impl<'a> Repr<'a> {
    /// Reads a message, verifying the checksum under `src` → `dst` when `caps.icmpv6.rx()`. Other
    /// types, echo or neighbour discovery with a non-zero code, and malformed options are `Err`
    /// (the hop limit 255 rule of neighbour discovery is the IP layer's to check).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        caps: &ChecksumCapabilities,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if caps.icmpv6.rx() && !packet.verify_checksum(src, dst) {
            return Err(Error);
        }
        let buf: &'a [u8] = packet.buffer.as_ref();
        let data = &buf[field::DATA];
        let code = packet.msg_code();
        let lladdr = |want: NdpOptionType| -> Result<Option<EthernetAddress>> {
            let mut found = None;
            for opt in NdpOptions::new(&buf[field::NDP_OPTIONS]) {
                let opt = opt?;
                if opt.option_type == want && found.is_none() {
                    found = Some(opt.link_layer_addr().ok_or(Error)?);
                }
            }
            Ok(found)
        };
        match (packet.msg_type(), code) {
            (Message::EchoRequest, 0) => {
                Ok(Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (Message::EchoReply, 0) => {
                Ok(Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (Message::DstUnreachable, _) => {
                Ok(Repr::DstUnreachable { reason: DstUnreachable::from(code), original: data })
            }
            (Message::PktTooBig, 0) => Ok(Repr::PktTooBig { mtu: packet.pkt_too_big_mtu(), original: data }),
            (Message::TimeExceeded, _) => {
                Ok(Repr::TimeExceeded { reason: TimeExceeded::from(code), original: data })
            }
            (Message::ParamProblem, _) => Ok(Repr::ParamProblem {
                reason: ParamProblem::from(code),
                pointer: packet.param_problem_ptr(),
                original: data,
            }),
            (Message::NeighborSolicit, 0) => Ok(Repr::NeighborSolicit {
                target_addr: get_ipv6(buf, field::TARGET_ADDR.start),
                lladdr: lladdr(NdpOptionType::SourceLinkLayerAddr)?,
            }),
            (Message::NeighborAdvert, 0) => Ok(Repr::NeighborAdvert {
                flags: packet.nd_flags(),
                target_addr: get_ipv6(buf, field::TARGET_ADDR.start),
                lladdr: lladdr(NdpOptionType::TargetLinkLayerAddr)?,
            }),
            _ => Err(Error),
        }
    }
    /// The reply to a neighbour solicitation for an address we own: solicited, override.
    pub const fn neighbor_advert_for(target_addr: Ipv6Addr, our_mac: EthernetAddress) -> Repr<'static> {
        Repr::NeighborAdvert {
            flags: NdFlags(NdFlags::SOLICITED.0 | NdFlags::OVERRIDE.0),
            target_addr,
            lladdr: Some(our_mac),
        }
    }
    /// The message length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Repr::DstUnreachable { original, .. }
            | Repr::PktTooBig { original, .. }
            | Repr::TimeExceeded { original, .. }
            | Repr::ParamProblem { original, .. } => HEADER_LEN + original.len(),
            Repr::NeighborSolicit { lladdr, .. } | Repr::NeighborAdvert { lladdr, .. } => {
                ND_HEADER_LEN + if lladdr.is_some() { 8 } else { 0 }
            }
        }
    }
    /// Writes the message (buffer exactly `buffer_len()` bytes), filling the checksum under
    /// `src` → `dst` when `caps.icmpv6.tx()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        caps: &ChecksumCapabilities,
    ) {
        let (msg, code, rest, body): (Message, u8, u32, &[u8]) = match *self {
            Repr::EchoRequest { ident, seq_no, data } => {
                (Message::EchoRequest, 0, ((ident as u32) << 16) | seq_no as u32, data)
            }
            Repr::EchoReply { ident, seq_no, data } => {
                (Message::EchoReply, 0, ((ident as u32) << 16) | seq_no as u32, data)
            }
            Repr::DstUnreachable { reason, original } => {
                (Message::DstUnreachable, reason.into(), 0, original)
            }
            Repr::PktTooBig { mtu, original } => (Message::PktTooBig, 0, mtu, original),
            Repr::TimeExceeded { reason, original } => (Message::TimeExceeded, reason.into(), 0, original),
            Repr::ParamProblem { reason, pointer, original } => {
                (Message::ParamProblem, reason.into(), pointer, original)
            }
            Repr::NeighborSolicit { .. } => (Message::NeighborSolicit, 0, 0, &[]),
            Repr::NeighborAdvert { flags, .. } => {
                (Message::NeighborAdvert, 0, (flags.0 as u32 & 0xe0) << 24, &[])
            }
        };
        packet.set_msg_type(msg);
        packet.set_msg_code(code);
        packet.set_rest_of_header(rest);
        match *self {
            Repr::NeighborSolicit { target_addr, lladdr }
            | Repr::NeighborAdvert { target_addr, lladdr, .. } => {
                packet.set_target_addr(target_addr);
                if let Some(mac) = lladdr {
                    let t = if msg == Message::NeighborSolicit {
                        NdpOptionType::SourceLinkLayerAddr
                    } else {
                        NdpOptionType::TargetLinkLayerAddr
                    };
                    let opt = &mut packet.buffer.as_mut()[field::NDP_OPTIONS.start..ND_HEADER_LEN + 8];
                    opt[0] = t.into();
                    opt[1] = 1;
                    opt[2..].copy_from_slice(&mac.0);
                }
            }
            _ => packet.data_mut()[..body.len()].copy_from_slice(body),
        }
        if caps.icmpv6.tx() {
            packet.fill_checksum(src, dst);
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Ipv6Addr {
        "fe80::1".parse().unwrap()
    }
    fn dst() -> Ipv6Addr {
        "fe80::2".parse().unwrap()
    }

    /// An ICMPv6 echo request (fe80::1 -> fe80::2); checksum computed independently.
    static ECHO_BYTES: [u8; 26] = [
        0x80, 0x00, 0x9e, 0xff, 0x12, 0x34, 0xab, 0xcd, 0x6e, 0x6f, 0x6e, 0x73, 0x65, 0x6e, 0x73, 0x65, 0x20,
        0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x20, 0x31,
    ];

    #[test]
    fn deconstruct_echo() {
        let p = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x9eff);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 0xabcd);
        assert_eq!(p.data(), b"nonsense payload 1");
        assert!(p.verify_checksum(&src(), &dst()));
        assert!(!p.is_error());
        assert_eq!(p.target_addr().map(|_| ()), Some(()));
    }

    #[test]
    fn construct_echo() {
        let mut bytes = vec![0xa5; 26];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_msg_type(Message::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(0xabcd);
        p.data_mut().copy_from_slice(b"nonsense payload 1");
        p.fill_checksum(&src(), &dst());
        assert_eq!(&bytes[..], &ECHO_BYTES[..]);
    }

    #[test]
    fn parse_and_emit_echo() {
        let p = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        let repr = Repr::parse(&p, &src(), &dst(), &Default::default()).unwrap();
        assert_eq!(repr, Repr::EchoRequest { ident: 0x1234, seq_no: 0xabcd, data: b"nonsense payload 1" });
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &src(), &dst(), &Default::default());
        assert_eq!(&bytes[..], &ECHO_BYTES[..]);
    }

    static NS_BYTES: [u8; 32] = [
        0x87, 0x00, 0x00, 0x00, // type, code, checksum (filled in the test)
        0x00, 0x00, 0x00, 0x00, // reserved
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x01,
        0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source link-layer address
    ];

    fn ns_bytes() -> Vec<u8> {
        let mut b = NS_BYTES.to_vec();
        Packet::new_unchecked(&mut b).fill_checksum(&src(), &dst());
        b
    }

    #[test]
    fn neighbor_solicitation() {
        let bytes = ns_bytes();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), Message::NeighborSolicit);
        assert_eq!(p.target_addr(), Some("2001:db8::64".parse().unwrap()));
        assert_eq!(p.source_ll_addr(), Some(EthernetAddress([2, 0, 0, 0, 0, 1])));
        assert_eq!(p.target_ll_addr(), None);
        let repr = Repr::parse(&p, &src(), &dst(), &Default::default()).unwrap();
        assert_eq!(
            repr,
            Repr::NeighborSolicit {
                target_addr: "2001:db8::64".parse().unwrap(),
                lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1]))
            }
        );
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out), &src(), &dst(), &Default::default());
        assert_eq!(out, bytes);
        // Without the option (duplicate address detection).
        let dad = Repr::NeighborSolicit { target_addr: "2001:db8::64".parse().unwrap(), lladdr: None };
        let mut out = vec![0xa5; dad.buffer_len()];
        dad.emit(&mut Packet::new_unchecked(&mut out), &src(), &dst(), &Default::default());
        assert_eq!(out.len(), 24);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&out[..]).unwrap(), &src(), &dst(), &Default::default()),
            Ok(dad)
        );
    }

    #[test]
    fn neighbor_advertisement() {
        let target: Ipv6Addr = "2001:db8::64".parse().unwrap();
        let mac = EthernetAddress([2, 0, 0, 0, 0, 0x64]);
        let repr = Repr::neighbor_advert_for(target, mac);
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &dst(), &src(), &Default::default());
        assert_eq!(&bytes[..2], &[136, 0]);
        assert_eq!(&bytes[4..8], &[0x60, 0, 0, 0]);
        assert_eq!(&bytes[24..], &[2, 1, 2, 0, 0, 0, 0, 0x64]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.nd_flags(), NdFlags::SOLICITED | NdFlags::OVERRIDE);
        assert!(p.nd_flags().contains(NdFlags::SOLICITED) && !p.nd_flags().contains(NdFlags::ROUTER));
        assert_eq!(p.target_ll_addr(), Some(mac));
        assert_eq!(Repr::parse(&p, &dst(), &src(), &Default::default()), Ok(repr));
    }

    #[test]
    fn ndp_option_errors() {
        // Length 0.
        let mut bytes = NS_BYTES.to_vec();
        bytes[25] = 0;
        Packet::new_unchecked(&mut bytes).fill_checksum(&src(), &dst());
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.ndp_options().collect::<Vec<_>>(), vec![Err(Error)]);
        assert_eq!(p.source_ll_addr(), None);
        assert_eq!(Repr::parse(&p, &src(), &dst(), &Default::default()), Err(Error));
        // Length past the end.
        let mut bytes = NS_BYTES.to_vec();
        bytes[25] = 2;
        Packet::new_unchecked(&mut bytes).fill_checksum(&src(), &dst());
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p, &src(), &dst(), &Default::default()), Err(Error));
        // A lone type byte.
        assert_eq!(NdpOptions::new(&[1]).collect::<Vec<_>>(), vec![Err(Error)]);
        // Unknown options are skipped.
        let opts = [9u8, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6];
        let v: Vec<_> = NdpOptions::new(&opts).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].map(|o| o.link_layer_addr()), Ok(Some(EthernetAddress([1, 2, 3, 4, 5, 6]))));
        // A short NS is refused by check_len.
        assert_eq!(Packet::new_checked(&NS_BYTES[..23]), Err(Error));
    }

    /// An IPv6 + UDP header quoted by an error.
    fn quoted() -> Vec<u8> {
        let mut q = vec![0x60, 0, 0, 0, 0x05, 0x00, 17, 64];
        q.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        q.extend_from_slice(&"2001:db8::64".parse::<Ipv6Addr>().unwrap().octets());
        q.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x05, 0x00, 0x12, 0x34]);
        q
    }

    #[test]
    fn packet_too_big_quotes_the_original() {
        let q = quoted();
        let repr = Repr::PktTooBig { mtu: 1280, original: &q };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &src(), &dst(), &Default::default());
        assert_eq!(&bytes[..2], &[2, 0]);
        assert_eq!(&bytes[4..8], &[0, 0, 5, 0]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.is_error());
        assert_eq!(p.pkt_too_big_mtu(), 1280);
        assert_eq!(Repr::parse(&p, &src(), &dst(), &Default::default()), Ok(repr));
        let inner = p.original_datagram().unwrap();
        assert_eq!(inner.dst_addr(), "2001:db8::64".parse::<Ipv6Addr>().unwrap());
        let ul = inner.upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::Udp);
        assert_eq!(crate::wire::l4_ports(&inner.payload()[ul.offset..]), Ok((12345, 53)));
    }

    #[test]
    fn other_errors_round_trip() {
        let q = quoted();
        for repr in [
            Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, original: &q },
            Repr::TimeExceeded { reason: TimeExceeded::HopLimitExceeded, original: &q },
            Repr::ParamProblem { reason: ParamProblem::UnrecognizedNxtHdr, pointer: 6, original: &q },
            Repr::EchoReply { ident: 7, seq_no: 8, data: b"x" },
        ] {
            let mut bytes = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes), &src(), &dst(), &Default::default());
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Repr::parse(&p, &src(), &dst(), &Default::default()), Ok(repr));
        }
    }

    #[test]
    fn negative() {
        assert_eq!(Packet::new_checked(&ECHO_BYTES[..7]), Err(Error));
        let p = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, &dst(), &src(), &Default::default()).map(|_| ()),
            Ok(()),
            "swapping is symmetric"
        );
        assert_eq!(Repr::parse(&p, &src(), &src(), &Default::default()), Err(Error));
        assert_eq!(p.original_datagram(), Err(Error));
        let short_err = [1u8, 4, 0, 0, 0, 0, 0, 0, 0x60];
        let p = Packet::new_checked(&short_err[..]).unwrap();
        assert_eq!(p.original_datagram(), Err(Error));
        assert_eq!(p.target_addr(), None);
        assert_eq!(p.ndp_options().count(), 0);
        // Router advertisement: not a Repr.
        let mut ra = vec![134u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Packet::new_unchecked(&mut ra).fill_checksum(&src(), &dst());
        assert_eq!(
            Repr::parse(&Packet::new_checked(&ra[..]).unwrap(), &src(), &dst(), &Default::default()),
            Err(Error)
        );
    }
}
