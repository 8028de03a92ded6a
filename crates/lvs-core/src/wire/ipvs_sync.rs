//! IPVS connection synchronization messages (`ip_vs_sync.c`): what a master director multicasts
//! to 224.0.0.81:8848 so backups know its connections and persistence templates.
//!
//! * **Version 1** (sent by default): an 8-byte header `reserved(0) | syncid | be16 size |
//!   nr_conns | version(1) | be16 spare(0)`, then `nr_conns` records, each padded to 4 bytes: a
//!   36-byte IPv4 or 72-byte IPv6 fixed part (`type | protocol | be16 version<<12 | length |
//!   be32 flags | be16 state | cport | vport | dport | be32 fwmark | be32 timeout | caddr | vaddr |
//!   daddr`) followed by type-length-value options (sequence data, persistence-engine data and
//!   name; types with bit 0x40 may be ignored).
//! * **Version 0** (parsed): a 4-byte header `nr_conns | syncid | be16 size` and 24-byte IPv4
//!   records `reserved | protocol | cport | vport | dport | caddr | vaddr | daddr | be16 flags |
//!   be16 state`, each followed by 24 bytes of sequence data when a SEQ flag is set.
//!
//! A datagram is version 1 iff `version == 1 && reserved == 0 && spare == 0`; a version 0
//! receiver drops it because its first byte (nr_conns for v0) is 0.

use super::{get_u16, get_u32, set_u16, set_u32, Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The default multicast group (`IP_VS_SYNC_GROUP`).
pub const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The default UDP port (`IP_VS_SYNC_PORT`).
pub const SYNC_PORT: u16 = 8848;
/// Protocol version written in v1 headers (`SYNC_PROTO_VER`).
pub const VERSION: u8 = 1;
/// Version 1 header length.
pub const HEADER_LEN: usize = 8;
/// Version 0 header length.
pub const V0_HEADER_LEN: usize = 4;
/// Fixed part of a v1 IPv4 record (`struct ip_vs_sync_v4`).
pub const V4_CONN_LEN: usize = 36;
/// Fixed part of a v1 IPv6 record (`struct ip_vs_sync_v6`).
pub const V6_CONN_LEN: usize = 72;
/// A v0 record without sequence data.
pub const V0_CONN_LEN: usize = 24;
/// Sequence data: in_seq and out_seq, each `init_seq | delta | previous_delta` (be32).
pub const SEQ_DATA_LEN: usize = 24;
/// Longest persistence-engine data (`IP_VS_PEDATA_MAXLEN`).
pub const PE_DATA_MAXLEN: usize = 255;
/// Longest persistence-engine name (`IP_VS_PENAME_MAXLEN`).
pub const PE_NAME_MAXLEN: usize = 16;

/// Record type bit: IPv6 addresses (`STYPE_F_INET6`).
const TYPE_INET6: u8 = 1;
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;

/// Option types (`IPVS_OPT_*`).
pub mod opt {
    /// Sequence adjustment data (NAT with payload rewriting).
    pub const SEQ_DATA: u8 = 1;
    /// Persistence-engine data (e.g. a SIP Call-ID).
    pub const PE_DATA: u8 = 2;
    /// Persistence-engine name.
    pub const PE_NAME: u8 = 3;
    /// Set on optional options: a receiver that does not know the type skips it.
    pub const F_PARAM: u8 = 1 << 6;
}

/// Connection flags as they travel (`IP_VS_CONN_F_*`).
pub mod flags {
    /// Forwarding method mask.
    pub const FWD_MASK: u32 = 0x0007;
    /// Created by synchronization.
    pub const SYNC: u32 = 0x0020;
    /// Hashed in the table (never sent).
    pub const HASHED: u32 = 0x0040;
    /// No reply seen yet (non-NAT).
    pub const NOOUTPUT: u32 = 0x0080;
    /// Not counted as active.
    pub const INACTIVE: u32 = 0x0100;
    /// Outgoing sequence adjustment.
    pub const OUT_SEQ: u32 = 0x0200;
    /// Incoming sequence adjustment.
    pub const IN_SEQ: u32 = 0x0400;
    /// Both sequence flags.
    pub const SEQ_MASK: u32 = 0x0600;
    /// No client port known yet.
    pub const NO_CPORT: u32 = 0x0800;
    /// Persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling.
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a backup keeps of received flags (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
    /// What an update may change on an existing entry (`IP_VS_CONN_F_BACKUP_UPD_MASK`).
    pub const BACKUP_UPD_MASK: u32 = INACTIVE | SEQ_MASK;
}

mod field {
    use crate::wire::Field;
    // v1 header
    pub const RESERVED: usize = 0;
    pub const SYNCID: usize = 1;
    pub const SIZE: Field = 2..4;
    pub const NR_CONNS: usize = 4;
    pub const VERSION: usize = 5;
    pub const SPARE: Field = 6..8;
    // v0 header
    pub const V0_NR_CONNS: usize = 0;
    // v1 record
    pub const TYPE: usize = 0;
    pub const PROTOCOL: usize = 1;
    pub const VER_SIZE: Field = 2..4;
    pub const FLAGS: Field = 4..8;
    pub const STATE: Field = 8..10;
    pub const CPORT: Field = 10..12;
    pub const VPORT: Field = 12..14;
    pub const DPORT: Field = 14..16;
    pub const FWMARK: Field = 16..20;
    pub const TIMEOUT: Field = 20..24;
    pub const ADDRS: usize = 24;
    // v0 record
    pub const V0_PROTOCOL: usize = 1;
    pub const V0_CPORT: Field = 2..4;
    pub const V0_VPORT: Field = 4..6;
    pub const V0_DPORT: Field = 6..8;
    pub const V0_CADDR: Field = 8..12;
    pub const V0_VADDR: Field = 12..16;
    pub const V0_DADDR: Field = 16..20;
    pub const V0_FLAGS: Field = 20..22;
    pub const V0_STATE: Field = 22..24;
}

/// A view of a sync message (either version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Message<T> {
        Message { buffer }
    }
    /// Wraps a buffer after [`Message::check_len`].
    pub fn new_checked(buffer: T) -> Result<Message<T>> {
        let m = Message::new_unchecked(buffer);
        m.check_len()?;
        Ok(m)
    }
    /// Ensures the buffer holds a v0 header and the size field equals the datagram length (the
    /// kernel drops any other datagram as "bogus message size").
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < V0_HEADER_LEN || self.size() as usize != b.len() {
            return Err(Error);
        }
        Ok(())
    }
    /// True for a version 1 message.
    pub fn is_v1(&self) -> bool {
        let b = self.buffer.as_ref();
        b.len() >= HEADER_LEN
            && b[field::RESERVED] == 0
            && b[field::VERSION] == VERSION
            && get_u16(b, field::SPARE.start) == 0
    }
    /// The sync id (both versions).
    pub fn syncid(&self) -> u8 {
        self.buffer.as_ref()[field::SYNCID]
    }
    /// The size field (both versions).
    pub fn size(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SIZE.start)
    }
    /// The number of records: byte 4 for v1, byte 0 for v0.
    pub fn nr_conns(&self) -> u8 {
        let b = self.buffer.as_ref();
        if self.is_v1() {
            b[field::NR_CONNS]
        } else {
            b[field::V0_NR_CONNS]
        }
    }
    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        let start = if self.is_v1() { HEADER_LEN } else { V0_HEADER_LEN };
        &self.buffer.as_ref()[start..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    /// Writes a v1 header.
    pub fn set_v1_header(&mut self, syncid: u8, size: u16, nr_conns: u8) {
        let b = self.buffer.as_mut();
        b[field::RESERVED] = 0;
        b[field::SYNCID] = syncid;
        set_u16(b, field::SIZE.start, size);
        b[field::NR_CONNS] = nr_conns;
        b[field::VERSION] = VERSION;
        set_u16(b, field::SPARE.start, 0);
    }
    /// Writes a v0 header.
    pub fn set_v0_header(&mut self, syncid: u8, size: u16, nr_conns: u8) {
        let b = self.buffer.as_mut();
        b[field::V0_NR_CONNS] = nr_conns;
        b[field::SYNCID] = syncid;
        set_u16(b, field::SIZE.start, size);
    }
}

/// One direction's TCP sequence adjustment (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seq {
    /// Sequence number where the adjustment starts.
    pub init_seq: u32,
    /// Delta after it.
    pub delta: u32,
    /// Delta before it.
    pub previous_delta: u32,
}

/// Sequence data of a connection: incoming then outgoing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqData {
    /// Client → server adjustment.
    pub in_seq: Seq,
    /// Server → client adjustment.
    pub out_seq: Seq,
}

impl SeqData {
    fn parse(b: &[u8]) -> SeqData {
        let seq = |at: usize| Seq {
            init_seq: get_u32(b, at),
            delta: get_u32(b, at + 4),
            previous_delta: get_u32(b, at + 8),
        };
        SeqData { in_seq: seq(0), out_seq: seq(12) }
    }
    fn emit(&self, b: &mut [u8]) {
        for (at, s) in [(0, self.in_seq), (12, self.out_seq)] {
            set_u32(b, at, s.init_seq);
            set_u32(b, at + 4, s.delta);
            set_u32(b, at + 8, s.previous_delta);
        }
    }
}

/// Why a record could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Inconsistent lengths, an unknown record type or version, a bad or repeated option: the
    /// rest of the message cannot be trusted and is dropped.
    Malformed,
    /// An option the receiver must understand but does not: this record is skipped.
    UnknownOption(u8),
}

/// One synchronized connection or template (a v1 record, or a v0 one with `timeout` and
/// `fwmark` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRepr<'a> {
    /// IP protocol (0 for firewall-mark templates).
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` flags, without HASHED.
    pub flags: u32,
    /// Protocol state (template: 0 or 1 = ASSURED).
    pub state: u16,
    /// Client address (all three addresses have one family).
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address (a firewall-mark template: the mark).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark of the service (0 for none).
    pub fwmark: u32,
    /// Timeout in seconds (0 in v0: the backup uses its own).
    pub timeout: u32,
    /// Sequence adjustment data.
    pub seq: Option<SeqData>,
    /// Persistence-engine data.
    pub pe_data: Option<&'a [u8]>,
    /// Persistence-engine name.
    pub pe_name: Option<&'a [u8]>,
}

impl<'a> ConnRepr<'a> {
    /// True for IPv6 records.
    pub fn is_v6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Length of the v1 record without trailing padding (what `ver_size` holds).
    pub fn buffer_len(&self) -> usize {
        let mut len = if self.is_v6() { V6_CONN_LEN } else { V4_CONN_LEN };
        if self.seq.is_some() {
            len += 2 + SEQ_DATA_LEN;
        }
        if let Some(d) = self.pe_data {
            len += 2 + d.len();
            if let Some(n) = self.pe_name {
                len += 2 + n.len();
            }
        }
        len
    }

    /// Writes the v1 record into `b` (at least [`buffer_len`](Self::buffer_len) bytes). The
    /// three addresses must share one family; the PE name is only sent with PE data, as the
    /// kernel does.
    pub fn emit(&self, b: &mut [u8]) {
        let len = self.buffer_len();
        b[field::TYPE] = if self.is_v6() { TYPE_INET6 } else { 0 };
        b[field::PROTOCOL] = self.protocol;
        set_u16(b, field::VER_SIZE.start, len as u16 & SVER_MASK);
        set_u32(b, field::FLAGS.start, self.flags & !flags::HASHED);
        set_u16(b, field::STATE.start, self.state);
        set_u16(b, field::CPORT.start, self.cport);
        set_u16(b, field::VPORT.start, self.vport);
        set_u16(b, field::DPORT.start, self.dport);
        set_u32(b, field::FWMARK.start, self.fwmark);
        set_u32(b, field::TIMEOUT.start, self.timeout);
        let mut p = field::ADDRS;
        for a in [self.caddr, self.vaddr, self.daddr] {
            match a {
                IpAddr::V4(a) => {
                    b[p..p + 4].copy_from_slice(&a.octets());
                    p += 4;
                }
                IpAddr::V6(a) => {
                    b[p..p + 16].copy_from_slice(&a.octets());
                    p += 16;
                }
            }
        }
        if let Some(s) = self.seq {
            b[p] = opt::SEQ_DATA;
            b[p + 1] = SEQ_DATA_LEN as u8;
            s.emit(&mut b[p + 2..p + 2 + SEQ_DATA_LEN]);
            p += 2 + SEQ_DATA_LEN;
        }
        if let Some(d) = self.pe_data {
            for (ty, data) in [(opt::PE_DATA, Some(d)), (opt::PE_NAME, self.pe_name)] {
                let Some(data) = data else { continue };
                b[p] = ty;
                b[p + 1] = data.len() as u8;
                b[p + 2..p + 2 + data.len()].copy_from_slice(data);
                p += 2 + data.len();
            }
        }
    }

    /// Parses the v1 record at the start of `b` (`b` ends where the message does). Returns the
    /// record and its length including padding to 4 bytes (the offset of the next record).
    pub fn parse_v1(b: &'a [u8]) -> core::result::Result<(ConnRepr<'a>, usize), RecordError> {
        use RecordError::Malformed;
        if b.len() < V4_CONN_LEN {
            return Err(Malformed);
        }
        let ver_size = get_u16(b, field::VER_SIZE.start);
        let size = (ver_size & SVER_MASK) as usize;
        if size < V4_CONN_LEN || size > b.len() || ver_size >> SVER_SHIFT != 0 {
            return Err(Malformed);
        }
        let rec = &b[..size];
        let ty = rec[field::TYPE];
        let v6 = match ty {
            0 => false,
            TYPE_INET6 => true,
            _ => return Err(Malformed),
        };
        let fixed = if v6 { V6_CONN_LEN } else { V4_CONN_LEN };
        if size < fixed {
            return Err(Malformed);
        }
        let addr = |i: usize| -> IpAddr {
            if v6 {
                let at = field::ADDRS + 16 * i;
                let mut o = [0u8; 16];
                o.copy_from_slice(&rec[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            } else {
                IpAddr::V4(Ipv4Addr::from(get_u32(rec, field::ADDRS + 4 * i)))
            }
        };
        let mut repr = ConnRepr {
            protocol: rec[field::PROTOCOL],
            flags: get_u32(rec, field::FLAGS.start),
            state: get_u16(rec, field::STATE.start),
            caddr: addr(0),
            cport: get_u16(rec, field::CPORT.start),
            vaddr: addr(1),
            vport: get_u16(rec, field::VPORT.start),
            daddr: addr(2),
            dport: get_u16(rec, field::DPORT.start),
            fwmark: get_u32(rec, field::FWMARK.start),
            timeout: get_u32(rec, field::TIMEOUT.start),
            seq: None,
            pe_data: None,
            pe_name: None,
        };
        let mut p = fixed;
        let mut unknown = None;
        while p < size {
            if p + 2 > size {
                return Err(Malformed);
            }
            let (ty, len) = (rec[p], rec[p + 1] as usize);
            p += 2;
            if len == 0 || p + len > size {
                return Err(Malformed);
            }
            let data = &rec[p..p + len];
            match ty & !opt::F_PARAM {
                opt::SEQ_DATA => {
                    if len != SEQ_DATA_LEN || repr.seq.is_some() {
                        return Err(Malformed);
                    }
                    repr.seq = Some(SeqData::parse(data));
                }
                opt::PE_DATA => {
                    if len > PE_DATA_MAXLEN || repr.pe_data.is_some() {
                        return Err(Malformed);
                    }
                    repr.pe_data = Some(data);
                }
                opt::PE_NAME => {
                    if len > PE_NAME_MAXLEN || repr.pe_name.is_some() {
                        return Err(Malformed);
                    }
                    repr.pe_name = Some(data);
                }
                _ if ty & opt::F_PARAM == 0 => unknown = unknown.or(Some(ty)),
                _ => {}
            }
            p += len;
        }
        let next = ((size + 3) & !3).min(b.len());
        match unknown {
            Some(ty) => Err(RecordError::UnknownOption(ty)),
            None => Ok((repr, next)),
        }
    }

    /// Parses the v0 record at the start of `b`; returns it and its length (24, or 48 with
    /// sequence data).
    pub fn parse_v0(b: &'a [u8]) -> Result<(ConnRepr<'a>, usize)> {
        if b.len() < V0_CONN_LEN {
            return Err(Error);
        }
        let flags = get_u16(b, field::V0_FLAGS.start) as u32;
        let mut len = V0_CONN_LEN;
        let mut seq = None;
        if flags & flags::SEQ_MASK != 0 {
            len += SEQ_DATA_LEN;
            if b.len() < len {
                return Err(Error);
            }
            seq = Some(SeqData::parse(&b[V0_CONN_LEN..len]));
        }
        let a = |f: core::ops::Range<usize>| IpAddr::V4(Ipv4Addr::from(get_u32(b, f.start)));
        Ok((
            ConnRepr {
                protocol: b[field::V0_PROTOCOL],
                flags,
                state: get_u16(b, field::V0_STATE.start),
                caddr: a(field::V0_CADDR),
                cport: get_u16(b, field::V0_CPORT.start),
                vaddr: a(field::V0_VADDR),
                vport: get_u16(b, field::V0_VPORT.start),
                daddr: a(field::V0_DADDR),
                dport: get_u16(b, field::V0_DPORT.start),
                fwmark: 0,
                timeout: 0,
                seq,
                pe_data: None,
                pe_name: None,
            },
            len,
        ))
    }

    /// Length of the v0 record (IPv4 only).
    pub fn v0_len(&self) -> usize {
        V0_CONN_LEN + if self.flags & flags::SEQ_MASK != 0 { SEQ_DATA_LEN } else { 0 }
    }

    /// Writes the v0 record (IPv4 only; callers skip IPv6 connections, as the kernel does).
    pub fn emit_v0(&self, b: &mut [u8]) {
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(_) => 0,
        };
        b[0] = 0;
        b[field::V0_PROTOCOL] = self.protocol;
        set_u16(b, field::V0_CPORT.start, self.cport);
        set_u16(b, field::V0_VPORT.start, self.vport);
        set_u16(b, field::V0_DPORT.start, self.dport);
        set_u32(b, field::V0_CADDR.start, v4(self.caddr));
        set_u32(b, field::V0_VADDR.start, v4(self.vaddr));
        set_u32(b, field::V0_DADDR.start, v4(self.daddr));
        set_u16(b, field::V0_FLAGS.start, (self.flags & !flags::HASHED) as u16);
        set_u16(b, field::V0_STATE.start, self.state);
        if self.flags & flags::SEQ_MASK != 0 {
            self.seq.unwrap_or_default().emit(&mut b[V0_CONN_LEN..V0_CONN_LEN + SEQ_DATA_LEN]);
        }
    }
}

/// What one record of a message turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A connection or template.
    Conn(ConnRepr<'a>),
    /// Skipped: an unknown mandatory option.
    Skipped(u8),
}

/// The records of a checked message, in order; after a malformed one the iterator yields
/// `Err(Error)` once and stops (the kernel drops the rest of the buffer).
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    left: u8,
    v1: bool,
    failed: bool,
}

impl<'a> Records<'a> {
    /// The records of `msg`.
    pub fn new(msg: &Message<&'a [u8]>) -> Records<'a> {
        let buf: &'a [u8] = msg.buffer;
        let start = if msg.is_v1() { HEADER_LEN } else { V0_HEADER_LEN };
        Records { rest: &buf[start..], left: msg.nr_conns(), v1: msg.is_v1(), failed: false }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        self.left -= 1;
        let (rec, used) = if self.v1 {
            match ConnRepr::parse_v1(self.rest) {
                Ok((r, used)) => (Record::Conn(r), used),
                Err(RecordError::UnknownOption(ty)) => {
                    let size = (get_u16(self.rest, field::VER_SIZE.start) & SVER_MASK) as usize;
                    (Record::Skipped(ty), ((size + 3) & !3).min(self.rest.len()))
                }
                Err(RecordError::Malformed) => {
                    self.failed = true;
                    return Some(Err(Error));
                }
            }
        } else {
            match ConnRepr::parse_v0(self.rest) {
                Ok((r, used)) => (Record::Conn(r), used),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        };
        self.rest = &self.rest[used..];
        Some(Ok(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp_conn() -> ConnRepr<'static> {
        ConnRepr {
            protocol: 6,
            flags: 0x0183, // DR | NOOUTPUT | INACTIVE
            state: 1,
            caddr: v4("10.0.0.2"),
            cport: 40000,
            vaddr: v4("10.0.0.100"),
            vport: 80,
            daddr: v4("10.0.0.11"),
            dport: 80,
            fwmark: 0,
            timeout: 900,
            seq: None,
            pe_data: None,
            pe_name: None,
        }
    }

    /// A v1 message with one IPv4 TCP record, byte by byte from the layout in ip_vs_sync.c.
    const GOLDEN_V4: [u8; 44] = [
        0x00, 0x05, 0x00, 0x2c, 0x01, 0x01, 0x00,
        0x00, // reserved, syncid 5, size 44, 1 conn, v1, spare
        0x00, 0x06, 0x00, 0x24, // type 0, TCP, version 0 | length 36
        0x00, 0x00, 0x01, 0x83, // flags
        0x00, 0x01, 0x9c, 0x40, // state ESTABLISHED, cport 40000
        0x00, 0x50, 0x00, 0x50, // vport 80, dport 80
        0x00, 0x00, 0x00, 0x00, // fwmark
        0x00, 0x00, 0x03, 0x84, // timeout 900
        10, 0, 0, 2, 10, 0, 0, 100, 10, 0, 0, 11, // caddr, vaddr, daddr
    ];

    #[test]
    fn v1_ipv4_golden_bytes() {
        let c = tcp_conn();
        assert_eq!(c.buffer_len(), 36);
        let mut buf = vec![0u8; HEADER_LEN + 36];
        Message::new_unchecked(&mut buf[..]).set_v1_header(5, 44, 1);
        c.emit(&mut buf[HEADER_LEN..]);
        assert_eq!(buf, GOLDEN_V4);
        let m = Message::new_checked(&GOLDEN_V4[..]).unwrap();
        assert!(m.is_v1());
        assert_eq!((m.syncid(), m.size(), m.nr_conns()), (5, 44, 1));
        let recs: Vec<_> = Records::new(&m).collect();
        assert_eq!(recs, vec![Ok(Record::Conn(c))]);
    }

    #[test]
    fn v1_ipv6_with_options_round_trips_and_pads() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let c = ConnRepr {
            protocol: 17,
            flags: 0x0600,
            state: 0,
            caddr: a("2001:db8::2"),
            cport: 5060,
            vaddr: a("2001:db8::100"),
            vport: 5060,
            daddr: a("2001:db8::11"),
            dport: 5060,
            fwmark: 7,
            timeout: 300,
            seq: Some(SeqData {
                in_seq: Seq { init_seq: 1, delta: 2, previous_delta: 3 },
                out_seq: Seq { init_seq: 4, delta: 5, previous_delta: 6 },
            }),
            pe_data: Some(b"call-id-1"),
            pe_name: Some(b"sip"),
        };
        // 72 + (2 + 24) + (2 + 9) + (2 + 3) = 114, padded to 116.
        assert_eq!(c.buffer_len(), 114);
        let mut rec = vec![0u8; 116];
        c.emit(&mut rec);
        assert_eq!(rec[0], 1, "IPv6 type bit");
        assert_eq!(&rec[2..4], &[0x00, 114]);
        assert_eq!(&rec[72..76], &[opt::SEQ_DATA, 24, 0, 0]);
        assert_eq!(&rec[98..100], &[opt::PE_DATA, 9]);
        assert_eq!(&rec[109..111], &[opt::PE_NAME, 3]);
        let (back, used) = ConnRepr::parse_v1(&rec).unwrap();
        assert_eq!((back, used), (c, 116));
    }

    #[test]
    fn options_unknown_optional_and_mandatory() {
        let mut rec = vec![0u8; 40];
        let mut c = tcp_conn();
        c.emit(&mut rec);
        // An optional unknown option (type 9 | F_PARAM) is ignored.
        rec[2..4].copy_from_slice(&40u16.to_be_bytes());
        rec[36..40].copy_from_slice(&[9 | opt::F_PARAM, 2, 0xaa, 0xbb]);
        assert_eq!(ConnRepr::parse_v1(&rec).map(|r| r.0), Ok(c));
        // A mandatory one skips the record.
        rec[36] = 9;
        assert_eq!(ConnRepr::parse_v1(&rec), Err(RecordError::UnknownOption(9)));
        // A zero-length option, or one past the record, is malformed.
        rec[36..38].copy_from_slice(&[opt::PE_DATA, 0]);
        assert_eq!(ConnRepr::parse_v1(&rec), Err(RecordError::Malformed));
        rec[36..38].copy_from_slice(&[opt::PE_DATA, 3]);
        assert_eq!(ConnRepr::parse_v1(&rec), Err(RecordError::Malformed));
        // Repeated sequence data is malformed.
        c.seq = Some(SeqData::default());
        let mut rec = vec![0u8; 36 + 26 * 2];
        c.emit(&mut rec);
        rec[62..64].copy_from_slice(&[opt::SEQ_DATA, 24]);
        rec[2..4].copy_from_slice(&(88u16).to_be_bytes());
        assert_eq!(ConnRepr::parse_v1(&rec), Err(RecordError::Malformed));
    }

    #[test]
    fn v0_golden_bytes() {
        let c = tcp_conn();
        let mut buf = vec![0u8; V0_HEADER_LEN + V0_CONN_LEN];
        Message::new_unchecked(&mut buf[..]).set_v0_header(3, 28, 1);
        c.emit_v0(&mut buf[V0_HEADER_LEN..]);
        let golden: [u8; 28] = [
            1, 3, 0, 28, // nr_conns 1, syncid 3, size 28
            0, 6, 0x9c, 0x40, 0, 80, 0, 80, // reserved, TCP, cport, vport, dport
            10, 0, 0, 2, 10, 0, 0, 100, 10, 0, 0, 11, // addresses
            0x01, 0x83, 0x00, 0x01, // flags, state
        ];
        assert_eq!(buf, golden);
        let m = Message::new_checked(&golden[..]).unwrap();
        assert!(!m.is_v1());
        let got: Vec<_> = Records::new(&m).collect();
        let want = ConnRepr { timeout: 0, ..c };
        assert_eq!(got, vec![Ok(Record::Conn(want))]);
    }

    #[test]
    fn malformed_messages_never_panic() {
        assert!(Message::new_checked(&[0u8, 1, 0][..]).is_err());
        // Size field must match the datagram.
        let mut g = GOLDEN_V4;
        g[3] = 45;
        assert!(Message::new_checked(&g[..]).is_err());
        // More records announced than present: one error, then nothing.
        let mut g = GOLDEN_V4;
        g[4] = 3;
        let m = Message::new_checked(&g[..]).unwrap();
        let got: Vec<_> = Records::new(&m).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].is_err());
        // Unknown record version, unknown type.
        for (at, v) in [(10usize, 0x10u8), (8, 2)] {
            let mut g = GOLDEN_V4;
            g[at] = v;
            let m = Message::new_checked(&g[..]).unwrap();
            assert_eq!(Records::new(&m).next(), Some(Err(Error)));
        }
        // Every truncation and every single-byte value at every position: no panic.
        for cut in 0..GOLDEN_V4.len() {
            let mut g = GOLDEN_V4[..cut].to_vec();
            if g.len() >= 4 {
                let n = g.len() as u16;
                g[2..4].copy_from_slice(&n.to_be_bytes());
            }
            if let Ok(m) = Message::new_checked(&g[..]) {
                Records::new(&m).for_each(drop);
            }
        }
        for at in 0..GOLDEN_V4.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0xff] {
                let mut g = GOLDEN_V4;
                g[at] = v;
                if let Ok(m) = Message::new_checked(&g[..]) {
                    Records::new(&m).for_each(drop);
                }
            }
        }
    }
}
