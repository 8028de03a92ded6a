//! ICMP for IPv4 (RFC 792, RFC 1191): type, code, checksum, echo fields, and the quoted original
//! datagram of error messages.

use super::ipv4;
use super::{checksum, get_u16, set_u16, ChecksumCapabilities, Error, Result};

enum_with_unknown! {
    /// ICMPv4 message types.
    pub enum Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Source quench (deprecated; still an error message).
        SourceQuench = 4,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Router advertisement.
        RouterAdvert = 9,
        /// Router solicitation.
        RouterSolicit = 10,
        /// Time exceeded.
        TimeExceeded = 11,
        /// Parameter problem.
        ParamProblem = 12,
        /// Timestamp.
        Timestamp = 13,
        /// Timestamp reply.
        TimestampReply = 14,
    }
}

impl Message {
    /// Error messages, which quote the offending datagram.
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Message::DstUnreachable
                | Message::SourceQuench
                | Message::Redirect
                | Message::TimeExceeded
                | Message::ParamProblem
        )
    }
}

enum_with_unknown! {
    /// Destination-unreachable codes.
    pub enum DstUnreachable(u8) {
        /// Network unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set (carries the next-hop MTU).
        FragRequired = 4,
        /// Source route failed.
        SrcRouteFailed = 5,
        /// Destination network unknown.
        DstNetUnknown = 6,
        /// Destination host unknown.
        DstHostUnknown = 7,
        /// Source host isolated.
        SrcHostIsolated = 8,
        /// Network administratively prohibited.
        NetProhibited = 9,
        /// Host administratively prohibited.
        HostProhibited = 10,
        /// Network unreachable for ToS.
        NetUnreachToS = 11,
        /// Host unreachable for ToS.
        HostUnreachToS = 12,
        /// Communication administratively prohibited.
        CommProhibited = 13,
        /// Host precedence violation.
        HostPrecedViol = 14,
        /// Precedence cutoff in effect.
        PrecedCutoff = 15,
    }
}

enum_with_unknown! {
    /// Time-exceeded codes.
    pub enum TimeExceeded(u8) {
        /// TTL expired in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

mod field {
    use crate::wire::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const POINTER: usize = 4;
    pub const MTU: Field = 6..8;
    pub const REST: Field = 4..8;
    pub const DATA: Rest = 8..;
}

/// The header length (type, code, checksum and the 4-byte rest-of-header).
pub const HEADER_LEN: usize = field::DATA.start;
/// How much of an offending datagram an error should quote at most, so the error fits in 576 bytes
/// (RFC 1812 §4.3.2.3): 576 − 20 (IP) − 8 (ICMP).
pub const MAX_ERROR_QUOTE: usize = 576 - 20 - HEADER_LEN;

/// A view of an ICMPv4 message.
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
    /// Ensures the 8-byte header fits.
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
    /// The next-hop MTU of "fragmentation needed" (RFC 1191).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::MTU.start)
    }
    /// The pointer of a parameter problem.
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }
    /// The 4-byte rest-of-header.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        super::get_u32(self.buffer.as_ref(), field::REST.start)
    }
    /// Everything after the 8-byte header: echo data, or the quoted datagram of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }
    /// Whether this is an error message.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type().is_error()
    }
    /// The quoted original datagram of an error message, header-checked
    /// ([`ipv4::Packet::new_checked_truncated`]); `Err` for non-errors or a quote too short for its
    /// IP header. Its first 8 payload bytes normally hold the transport ports
    /// ([`crate::wire::l4_ports`]).
    #[inline]
    pub fn original_datagram(&self) -> Result<ipv4::Packet<&[u8]>> {
        if !self.is_error() {
            return Err(Error);
        }
        ipv4::Packet::new_checked_truncated(self.data())
    }
    /// Whether the checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
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
    /// Sets the next-hop MTU.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::MTU.start, value);
    }
    /// Sets the 4-byte rest-of-header.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        super::set_u32(self.buffer.as_mut(), field::REST.start, value);
    }
    /// The data, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
    /// Computes and stores the checksum (over the whole buffer).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::data(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An ICMPv4 message of a kind the load balancer reads or sends. The `original` of an error is the
/// quoted datagram as bytes (the caller truncates it, e.g. to [`MAX_ERROR_QUOTE`]).
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
        /// The next-hop MTU (meaningful for `FragRequired`, else 0).
        next_hop_mtu: u16,
        /// The quoted datagram.
        original: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted datagram.
        original: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// The code.
        code: u8,
        /// Offset of the problem in the quoted datagram.
        pointer: u8,
        /// The quoted datagram.
        original: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Reads a message, verifying the checksum when `caps.icmpv4.rx()`. Other types, and echo with a
    /// non-zero code, are `Err`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        caps: &ChecksumCapabilities,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if caps.icmpv4.rx() && !packet.verify_checksum() {
            return Err(Error);
        }
        let data: &'a [u8] = &packet.buffer.as_ref()[field::DATA];
        let code = packet.msg_code();
        match (packet.msg_type(), code) {
            (Message::EchoRequest, 0) => {
                Ok(Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (Message::EchoReply, 0) => {
                Ok(Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (Message::DstUnreachable, _) => Ok(Repr::DstUnreachable {
                reason: DstUnreachable::from(code),
                next_hop_mtu: packet.next_hop_mtu(),
                original: data,
            }),
            (Message::TimeExceeded, _) => {
                Ok(Repr::TimeExceeded { reason: TimeExceeded::from(code), original: data })
            }
            (Message::ParamProblem, _) => {
                Ok(Repr::ParamProblem { code, pointer: packet.pointer(), original: data })
            }
            _ => Err(Error),
        }
    }
    /// Header plus data.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data.len(),
                Repr::DstUnreachable { original, .. }
                | Repr::TimeExceeded { original, .. }
                | Repr::ParamProblem { original, .. } => original.len(),
            }
    }
    /// Writes the message (buffer exactly `buffer_len()` bytes), filling the checksum when
    /// `caps.icmpv4.tx()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, caps: &ChecksumCapabilities) {
        let payload = match *self {
            Repr::EchoRequest { ident, seq_no, data } | Repr::EchoReply { ident, seq_no, data } => {
                let t = if matches!(self, Repr::EchoRequest { .. }) {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                };
                packet.set_msg_type(t);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Repr::DstUnreachable { reason, next_hop_mtu, original } => {
                packet.set_msg_type(Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0);
                packet.set_next_hop_mtu(next_hop_mtu);
                original
            }
            Repr::TimeExceeded { reason, original } => {
                packet.set_msg_type(Message::TimeExceeded);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0);
                original
            }
            Repr::ParamProblem { code, pointer, original } => {
                packet.set_msg_type(Message::ParamProblem);
                packet.set_msg_code(code);
                packet.set_rest_of_header((pointer as u32) << 24);
                original
            }
        };
        packet.data_mut()[..payload.len()].copy_from_slice(payload);
        if caps.icmpv4.tx() {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{l4_ports, IpProtocol};

    static ECHO_BYTES: [u8; 12] = [0x08, 0x00, 0x8e, 0xfe, 0x12, 0x34, 0xab, 0xcd, 0xaa, 0x00, 0x00, 0xff];

    fn echo_repr() -> Repr<'static> {
        Repr::EchoRequest { ident: 0x1234, seq_no: 0xabcd, data: &ECHO_BYTES[8..] }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x8efe);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 0xabcd);
        assert_eq!(p.rest_of_header(), 0x1234abcd);
        assert_eq!(p.data(), &[0xaa, 0x00, 0x00, 0xff]);
        assert!(p.verify_checksum());
        assert!(!p.is_error());
        assert_eq!(p.original_datagram(), Err(Error));
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 12];
        let mut p = Packet::new_unchecked(&mut bytes);
        p.set_msg_type(Message::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(0xabcd);
        p.data_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        p.fill_checksum();
        assert_eq!(&bytes[..], &ECHO_BYTES[..]);
    }

    #[test]
    fn parse_and_emit_echo() {
        let p = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p, &Default::default()), Ok(echo_repr()));
        let mut bytes = vec![0xa5; echo_repr().buffer_len()];
        echo_repr().emit(&mut Packet::new_unchecked(&mut bytes), &Default::default());
        assert_eq!(&bytes[..], &ECHO_BYTES[..]);
    }

    /// An IPv4 + TCP header quoted by an error: 20 bytes of IP, 8 of TCP.
    fn quoted() -> Vec<u8> {
        let mut q = vec![
            0x45, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = !checksum::data(&q);
        q[10..12].copy_from_slice(&c.to_be_bytes());
        q.extend_from_slice(&[0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1]);
        q
    }

    #[test]
    fn frag_required_round_trip_and_quote() {
        let q = quoted();
        let repr =
            Repr::DstUnreachable { reason: DstUnreachable::FragRequired, next_hop_mtu: 1400, original: &q };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &Default::default());
        assert_eq!(&bytes[..8], &[3, 4, bytes[2], bytes[3], 0, 0, 0x05, 0x78]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.verify_checksum() && p.is_error());
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(Repr::parse(&p, &Default::default()), Ok(repr));
        let inner = p.original_datagram().unwrap();
        assert_eq!(inner.protocol(), IpProtocol::Tcp);
        assert_eq!(inner.total_len(), 1500);
        assert_eq!(l4_ports(inner.payload()), Ok((12345, 80)));
    }

    #[test]
    fn other_errors_round_trip() {
        let q = quoted();
        for repr in [
            Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, original: &q },
            Repr::ParamProblem { code: 0, pointer: 9, original: &q },
            Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, next_hop_mtu: 0, original: &q },
            Repr::EchoReply { ident: 1, seq_no: 2, data: &[] },
        ] {
            let mut bytes = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes), &Default::default());
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Repr::parse(&p, &Default::default()), Ok(repr));
        }
        let repr = Repr::ParamProblem { code: 0, pointer: 9, original: &q };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes), &Default::default());
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().pointer(), 9);
    }

    #[test]
    fn negative() {
        assert_eq!(Packet::new_checked(&ECHO_BYTES[..7]), Err(Error));
        let mut bytes = ECHO_BYTES;
        bytes[11] = 0;
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p, &Default::default()), Err(Error));
        // Unsupported type.
        let mut bytes = [13u8, 0, 0, 0, 0, 0, 0, 0];
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), &Default::default()), Err(Error));
        // An error whose quote is too short for an IP header.
        let mut bytes = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&quoted()[..19]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.original_datagram(), Err(Error));
        assert!(Message::Redirect.is_error() && !Message::Timestamp.is_error());
    }
}
