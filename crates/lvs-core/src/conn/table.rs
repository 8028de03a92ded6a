//! Storage of one address family's connections and templates.
//!
//! * Connections live **inline in an open-addressing table** keyed by the client→virtual tuple:
//!   a lookup hashes the packet and probes entries directly, so an established flow costs one
//!   random memory access (plus the adjacent probe lines). Linear probing, at most 3/4 full,
//!   deletion by backward shift. A connection's id is its slot; when a deletion shifts an entry,
//!   everything that names it (timer-wheel neighbours, the NAT-reply index, an expiry in progress)
//!   is patched, so ids are stable except across those shifts and table resizes.
//! * NAT connections are also in a reply index (`hash → slot`) for real-server→client packets.
//! * Persistence templates, which connections point to, live in a chunked slab with stable ids
//!   (`TPL | index`) and their own index.
//! * Every entry is on the hierarchical timer wheel through links stored in the entry.

use super::index::Index;
use super::wheel::{TimerLinks, Wheel, MAX_ID, NIL};
use crate::dest::DestId;
use crate::model::FwdMethod;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as stored in an entry: `u32` for IPv4, 16 octets for IPv6.
pub(crate) trait Addr: Copy + Eq + Default + fmt::Debug + Send + Sync + 'static {
    /// True for the IPv6 table.
    const V6: bool;
    /// How an entry is stored in the connection table: IPv4 entries are padded to one aligned
    /// 64-byte cache line, so a lookup and the packet's updates touch a single line.
    type Cell: Cell<Self>;
    /// The address, if it has this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// Back to an `IpAddr`.
    fn to_ip(self) -> IpAddr;
    /// A firewall mark as the kernel stores it in a template's vaddr (`htonl(mark)` in the first
    /// 32 bits).
    fn from_mark(mark: u32) -> Self;
    /// Hash of an address pair with 64 more bits.
    fn hash2(a: Self, b: Self, extra: u64) -> u64;
}

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

/// Folded 64×64→128 multiply (the wyhash/foldhash mixer).
#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl Addr for u32 {
    const V6: bool = false;
    type Cell = Line<Entry<u32>>;
    #[inline]
    fn from_ip(ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => Some(u32::from(a)),
            IpAddr::V6(_) => None,
        }
    }
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn from_mark(mark: u32) -> u32 {
        mark
    }
    #[inline]
    fn hash2(a: u32, b: u32, extra: u64) -> u64 {
        mix((((a as u64) << 32) | b as u64) ^ K0, extra ^ K1)
    }
}

/// An IPv6 address in network order.
pub(crate) type V6 = [u8; 16];

impl Addr for V6 {
    const V6: bool = true;
    type Cell = Entry<V6>;
    #[inline]
    fn from_ip(ip: IpAddr) -> Option<V6> {
        match ip {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    fn from_mark(mark: u32) -> V6 {
        let mut o = [0u8; 16];
        o[..4].copy_from_slice(&mark.to_be_bytes());
        o
    }
    #[inline]
    fn hash2(a: V6, b: V6, extra: u64) -> u64 {
        let a = u128::from_ne_bytes(a);
        let b = u128::from_ne_bytes(b);
        let h1 = mix((a as u64) ^ K0, ((a >> 64) as u64) ^ K1);
        let h2 = mix((b as u64) ^ K2, ((b >> 64) as u64) ^ K3);
        mix(h1 ^ extra, h2 ^ K1)
    }
}

/// A stored entry.
pub(crate) trait Cell<A>: Copy + fmt::Debug + Send + Sync + 'static {
    fn wrap(e: Entry<A>) -> Self;
    fn entry(&self) -> &Entry<A>;
    fn entry_mut(&mut self) -> &mut Entry<A>;
}

/// An entry alone on a 64-byte-aligned cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Line<E>(E);

impl Cell<u32> for Line<Entry<u32>> {
    #[inline]
    fn wrap(e: Entry<u32>) -> Self {
        Line(e)
    }
    #[inline]
    fn entry(&self) -> &Entry<u32> {
        &self.0
    }
    #[inline]
    fn entry_mut(&mut self) -> &mut Entry<u32> {
        &mut self.0
    }
}

impl Cell<V6> for Entry<V6> {
    #[inline]
    fn wrap(e: Entry<V6>) -> Self {
        e
    }
    #[inline]
    fn entry(&self) -> &Entry<V6> {
        self
    }
    #[inline]
    fn entry_mut(&mut self) -> &mut Entry<V6> {
        self
    }
}

/// The tag of a free slot.
const FREE_TAG: u8 = 0;

/// A connection's tag: 7 bits of its key hash that the home slot does not use (for tables below
/// 2^25 slots), and the top bit, so that no tag is [`FREE_TAG`].
#[inline(always)]
fn tag_of(hash: u32) -> u8 {
    (hash >> 25) as u8 | 0x80
}

/// Bytes of tags a probe reads at once (one `u64`).
const GROUP: usize = 8;

/// `0x80` in each byte of `x` that is zero. Exact for the lowest zero byte; a byte above a zero
/// byte may be flagged too (a borrow), which only costs a candidate that is checked anyway.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080
}

/// Where a probe of the 8 tags `group` for `tag` may stop: the bytes whose tag matches, below the
/// first free one (candidate bits, `0x80` per byte), and the first free byte's bit (0 if none).
/// No branch depends on the tags, so a probe does not mispredict on its cluster's length.
#[inline(always)]
fn scan(group: u64, tag: u8) -> (u64, u64) {
    let free = zero_bytes(group);
    let first_free = free & free.wrapping_neg();
    let before = first_free.wrapping_sub(1);
    let hits = zero_bytes(group ^ (tag as u64).wrapping_mul(0x0101_0101_0101_0101));
    (hits & before, first_free)
}

/// The byte offset of a `scan` bit.
#[inline(always)]
fn byte_of(bit: u64) -> usize {
    bit.trailing_zeros() as usize / 8
}

/// The connection table's storage: entries in their cells, indexed like a slice of entries,
/// and one tag byte per slot beside them. A probe walks the tags (64 slots to a cache line) and
/// reads an entry only where the tag matches (1 in 128 of the others), so a lookup that finds
/// nothing (every new connection) costs one line of tags instead of a line per slot of its
/// cluster, and a hit one entry line however far from home it sits.
#[derive(Clone)]
pub(crate) struct Cells<A: Addr> {
    cells: Vec<A::Cell>,
    tags: Vec<u8>,
}

impl<A: Addr> Cells<A> {
    fn empty() -> Cells<A> {
        Cells { cells: Vec::new(), tags: Vec::new() }
    }
    fn filled(e: Entry<A>, n: usize) -> Cells<A> {
        let mut cells = Vec::with_capacity(n);
        lvs_mem::advise_huge_pages(&cells);
        cells.resize(n, A::Cell::wrap(e));
        let mut tags = Vec::with_capacity(n);
        lvs_mem::advise_huge_pages(&tags);
        tags.resize(n, FREE_TAG);
        Cells { cells, tags }
    }
    #[inline]
    fn len(&self) -> usize {
        self.cells.len()
    }
    #[inline]
    fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
    #[inline]
    fn get(&self, i: usize) -> Option<&Entry<A>> {
        self.cells.get(i).map(|c| c.entry())
    }
    /// The tags of slots `i..i + GROUP` as one little-endian word (slot `i` in the low byte), or
    /// `None` where that runs past the end (the probe then goes a slot at a time).
    #[inline(always)]
    fn group(&self, i: usize) -> Option<u64> {
        let b: [u8; GROUP] = self.tags.get(i..i + GROUP)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }
    /// Whether slot `i` holds an entry.
    #[inline(always)]
    fn used(&self, i: usize) -> bool {
        self.tags[i] != FREE_TAG
    }
    /// Stores `e` in slot `i` under the tag of its key `hash`.
    #[inline(always)]
    fn put(&mut self, i: usize, hash: u32, e: Entry<A>) {
        self.tags[i] = tag_of(hash);
        self.cells[i] = A::Cell::wrap(e);
    }
    /// Frees slot `i` (its entry stays readable, flagged free, for stale ids).
    #[inline]
    fn clear(&mut self, i: usize) {
        self.tags[i] = FREE_TAG;
        let e = self.cells[i].entry_mut();
        e.flags = flags::FREE;
        e.prev = NIL;
        e.next = NIL;
    }
    /// Moves the entry of slot `from` to slot `to` with its tag (`from` is left as it was).
    #[inline]
    fn copy_within(&mut self, from: usize, to: usize) {
        self.tags[to] = self.tags[from];
        self.cells[to] = self.cells[from];
    }
    fn bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<A::Cell>() + self.tags.capacity()
    }
    fn into_entries(self) -> impl Iterator<Item = Entry<A>> {
        self.cells.into_iter().map(|c| *c.entry())
    }
}

impl<A: Addr> std::ops::Index<usize> for Cells<A> {
    type Output = Entry<A>;
    #[inline]
    fn index(&self, i: usize) -> &Entry<A> {
        self.cells[i].entry()
    }
}

impl<A: Addr> std::ops::IndexMut<usize> for Cells<A> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Entry<A> {
        self.cells[i].entry_mut()
    }
}

/// Entry flag bits; the low ones are the kernel's `IP_VS_CONN_F_*` values.
pub(crate) mod flags {
    /// Forwarding method (`IP_VS_CONN_F_FWD_MASK`).
    pub const FWD_MASK: u16 = 0x0007;
    /// No reply seen yet on a non-NAT connection: TCP/SCTP use the INPUT-ONLY table.
    pub const NOOUTPUT: u16 = 0x0080;
    /// Not counted in the server's active connections.
    pub const INACTIVE: u16 = 0x0100;
    /// A persistence template.
    pub const TEMPLATE: u16 = 0x1000;
    /// One-packet scheduling (never stored; reported for transient entries).
    pub const ONE_PACKET: u16 = 0x2000;
    /// Being expired by `advance` (its `next` holds its position in the due list). Internal
    /// (the kernel's IN_SEQ bit, which lvs never sets).
    pub const DUE: u16 = 0x0400;
    /// A template keyed with persistence-engine data (`--pe sip`), kept beside the slab. Not a
    /// kernel bit.
    pub const PE: u16 = 0x0010;
    /// Invalidated template (vport/dport 0xffff, unhashed). Not a kernel bit.
    pub const INVALID: u16 = 0x4000;
    /// Free slot. Not a kernel bit.
    pub const FREE: u16 = 0x8000;
    /// Bits that mean the same as the kernel's.
    pub const KERNEL_MASK: u16 = 0x3fff & !DUE & !PE;
}

/// `IP_VS_CONN_F_HASHED`, reported for every stored entry.
pub(crate) const KERNEL_HASHED: u32 = 0x0040;

/// The forwarding method named by kernel bits.
pub(crate) fn fwd_from_bits(bits: u16) -> FwdMethod {
    match bits & flags::FWD_MASK {
        0 => FwdMethod::Masq,
        1 => FwdMethod::Local,
        2 => FwdMethod::Tunnel,
        3 => FwdMethod::Route,
        _ => FwdMethod::Bypass,
    }
}

/// One connection or template. With `repr(C)` the lookup key (client and virtual address, ports,
/// protocol) and the flags are the first 16 (IPv4) or 40 (IPv6) bytes; an IPv4 entry is 56 bytes
/// (stored in a 64-byte aligned cell, one cache line), IPv6 96.
///
/// * `control`: for a connection, the id of its template (`NIL` if none); for a template, its
///   timeout in seconds (the service's persistence timeout, or 60 after an `expire_later`).
/// * `aux`: for a template, `n_control` (connections it controls); for a connection, `in_pkts`
///   (client packets seen, for the sync threshold).
/// * `daddr`: the real server (also in `dest`; kept here so NAT-reply lookups need no arena access).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Entry<A> {
    pub caddr: A,
    pub vaddr: A,
    pub cport: u16,
    pub vport: u16,
    pub proto: u8,
    pub state: u8,
    pub flags: u16,
    pub daddr: A,
    pub dport: u16,
    /// The state when the entry was last synchronized (`old_state`; in the padding before `dest`).
    pub old_state: u8,
    /// A template's packet count for the sync threshold (saturating; connections count in `aux`).
    pub tpl_pkts: u8,
    pub dest: DestId,
    pub control: u32,
    pub aux: u32,
    pub expires: u64,
    prev: u32,
    next: u32,
}

impl<A: Addr> Entry<A> {
    /// A fresh entry (state 0, unfiled).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
        daddr: A,
        dport: u16,
        dest: DestId,
        flags: u16,
    ) -> Entry<A> {
        Entry {
            caddr,
            vaddr,
            cport,
            vport,
            proto,
            state: 0,
            flags,
            daddr,
            dport,
            old_state: 0,
            tpl_pkts: 0,
            dest,
            control: NIL,
            aux: 0,
            expires: 0,
            prev: NIL,
            next: NIL,
        }
    }
    #[inline]
    pub(crate) fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    /// Whether this is the entry of the client→virtual key (`ip_vs_conn_in_get`'s comparison).
    #[inline(always)]
    fn has_key(&self, proto: u8, caddr: A, cport: u16, vaddr: A, vport: u16) -> bool {
        self.caddr == caddr
            && self.cport == cport
            && self.vaddr == vaddr
            && self.vport == vport
            && self.proto == proto
    }
    #[inline]
    pub(crate) fn is_free(&self) -> bool {
        self.flags & flags::FREE != 0
    }
    #[inline]
    pub(crate) fn fwd(&self) -> FwdMethod {
        fwd_from_bits(self.flags)
    }
    #[inline]
    fn in_out_index(&self) -> bool {
        !self.is_template() && self.flags & flags::FWD_MASK == 0
    }
}

/// A client packet's hashes in one family's table (see [`ConnTable::flow_hash`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlowHash {
    /// [`ConnTable::in_hash`] of the client→virtual key.
    key: u32,
    /// The reply-index hash, for packets that may start a connection.
    out: Option<u32>,
    /// The free slot a lookup of this key that found nothing stopped at (`NIL`: not known), where
    /// an insert of the key lands as long as no connection was removed and the table did not
    /// grow in between: the insert takes it without probing the cluster again.
    vacant: u32,
}

impl FlowHash {
    /// The client→virtual key's hash (for [`ConnTable::lookup_in_hashed`]).
    #[inline]
    pub(crate) fn key(&self) -> u32 {
        self.key
    }

    /// Forgets the free slot of [`ConnTable::lookup_flow`]: a connection was removed since (a
    /// backward shift may have freed an earlier slot of the cluster).
    #[inline]
    pub(crate) fn forget_vacancy(&mut self) {
        self.vacant = NIL;
    }
}

/// Entries per slab chunk: memory grows in 2^16-entry steps, never by copying.
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;

/// The template slab: chunks of entries, a free list threaded through `next`.
#[derive(Clone)]
pub(crate) struct Slab<A> {
    chunks: Vec<Vec<Entry<A>>>,
    free: u32,
    high: u32,
}

impl<A> Default for Slab<A> {
    fn default() -> Self {
        Slab { chunks: Vec::new(), free: NIL, high: 0 }
    }
}

impl<A: Addr> Slab<A> {
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &Entry<A> {
        &self.chunks[(id >> CHUNK_BITS) as usize][id as usize & (CHUNK - 1)]
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, id: u32) -> &mut Entry<A> {
        &mut self.chunks[(id >> CHUNK_BITS) as usize][id as usize & (CHUNK - 1)]
    }
    /// A live entry, or `None` for a free or never-used id.
    #[inline]
    pub(crate) fn live(&self, id: u32) -> Option<&Entry<A>> {
        let e = self.chunks.get((id >> CHUNK_BITS) as usize)?.get(id as usize & (CHUNK - 1))?;
        (!e.is_free()).then_some(e)
    }
    fn alloc(&mut self, e: Entry<A>) -> Option<u32> {
        if self.free != NIL {
            let id = self.free;
            let slot = self.get_mut(id);
            let next = slot.next;
            *slot = e;
            self.free = next;
            return Some(id);
        }
        if self.high > MAX_ID || self.high >= 1 << 31 {
            return None;
        }
        let id = self.high;
        if id as usize >> CHUNK_BITS == self.chunks.len() {
            let chunk = Vec::with_capacity(CHUNK);
            // Huge pages once templates outgrow a chunk: the first stays in small pages, so a
            // director with a few templates does not hold a 2 MiB page for them.
            if !self.chunks.is_empty() {
                lvs_mem::advise_huge_pages(&chunk);
            }
            self.chunks.push(chunk);
        }
        self.chunks[(id >> CHUNK_BITS) as usize].push(e);
        self.high += 1;
        Some(id)
    }
    fn release(&mut self, id: u32) {
        let free = self.free;
        let e = self.get_mut(id);
        e.flags = flags::FREE;
        e.prev = NIL;
        e.next = free;
        self.free = id;
    }
    /// Ids ever handed out (live ones are below this).
    pub(crate) fn high(&self) -> u32 {
        self.high
    }
    fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * std::mem::size_of::<Entry<A>>()).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Entry<A>>>()
    }
}

/// Template ids have this bit; connection ids are table slots below it.
pub(crate) const TPL: u32 = 1 << 30;
const MIN_SLOTS: usize = 64;

/// The wheel's view of both stores.
struct Store<'a, A: Addr> {
    conns: &'a mut Cells<A>,
    tpls: &'a mut Slab<A>,
}

impl<A: Addr> Store<'_, A> {
    #[inline(always)]
    fn e(&self, id: u32) -> &Entry<A> {
        if id & TPL != 0 {
            self.tpls.get(id & !TPL)
        } else {
            &self.conns[id as usize]
        }
    }
    #[inline(always)]
    fn e_mut(&mut self, id: u32) -> &mut Entry<A> {
        if id & TPL != 0 {
            self.tpls.get_mut(id & !TPL)
        } else {
            &mut self.conns[id as usize]
        }
    }
}

impl<A: Addr> TimerLinks for Store<'_, A> {
    #[inline]
    fn expires(&self, id: u32) -> u64 {
        self.e(id).expires
    }
    #[inline]
    fn links(&self, id: u32) -> (u32, u32) {
        let e = self.e(id);
        (e.prev, e.next)
    }
    #[inline]
    fn set_links(&mut self, id: u32, prev: u32, next: u32) {
        let e = self.e_mut(id);
        e.prev = prev;
        e.next = next;
    }
    #[inline]
    fn set_prev(&mut self, id: u32, prev: u32) {
        self.e_mut(id).prev = prev;
    }
    #[inline]
    fn set_next(&mut self, id: u32, next: u32) {
        self.e_mut(id).next = next;
    }
}

/// Memory used by a table, from allocated capacities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TableBytes {
    pub entries: usize,
    pub indexes: usize,
    pub wheel: usize,
}

/// One family's connections and templates.
#[derive(Clone)]
pub(crate) struct ConnTable<A: Addr> {
    /// The open-addressing connection table (empty until the first insert; then a power of two).
    conns: Cells<A>,
    mask: usize,
    nconns: u32,
    out_idx: Index,
    tpls: Slab<A>,
    tpl_idx: Index,
    ntpls: u32,
    /// Persistence-engine data of the templates flagged PE, by slab slot.
    pe_data: HashMap<u32, Box<[u8]>>,
    wheel: Wheel,
    seed: u64,
    /// Entries being expired, in expiry order (see [`collect_due`](Self::collect_due)).
    due: Vec<u32>,
    /// A one-packet connection between its scheduling and the end of its packet (never stored).
    one_packet: Option<Entry<A>>,
}

impl<A: Addr> fmt::Debug for ConnTable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnTable")
            .field("conns", &self.nconns)
            .field("slots", &self.conns.len())
            .field("templates", &self.ntpls)
            .field("wheel", &self.wheel)
            .finish()
    }
}

impl<A: Addr> Default for ConnTable<A> {
    fn default() -> Self {
        ConnTable {
            conns: Cells::empty(),
            mask: 0,
            nconns: 0,
            out_idx: Index::default(),
            tpls: Slab::default(),
            tpl_idx: Index::default(),
            ntpls: 0,
            pe_data: HashMap::new(),
            wheel: Wheel::default(),
            seed: 0,
            due: Vec::new(),
            one_packet: None,
        }
    }
}

#[inline]
fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

impl<A: Addr> ConnTable<A> {
    /// Keeps a one-packet connection's entry until [`take_one_packet`](Self::take_one_packet).
    #[inline]
    pub(crate) fn stash_one_packet(&mut self, e: Entry<A>) {
        self.one_packet = Some(e);
    }

    /// The entry of [`stash_one_packet`](Self::stash_one_packet).
    #[inline]
    pub(crate) fn take_one_packet(&mut self) -> Option<Entry<A>> {
        self.one_packet.take()
    }

    /// Live entries (connections and templates).
    pub(crate) fn len(&self) -> u32 {
        self.nconns + self.ntpls
    }
    /// Live templates.
    pub(crate) fn templates(&self) -> u32 {
        self.ntpls
    }

    /// An entry by id (connection slot or `TPL | template`).
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &Entry<A> {
        if id & TPL != 0 {
            self.tpls.get(id & !TPL)
        } else {
            &self.conns[id as usize]
        }
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, id: u32) -> &mut Entry<A> {
        if id & TPL != 0 {
            self.tpls.get_mut(id & !TPL)
        } else {
            &mut self.conns[id as usize]
        }
    }
    /// A live entry, or `None` for a free or out-of-range id.
    #[inline]
    pub(crate) fn live(&self, id: u32) -> Option<&Entry<A>> {
        if id & TPL != 0 {
            self.tpls.live(id & !TPL)
        } else {
            self.conns.get(id as usize).filter(|e| !e.is_free())
        }
    }

    /// Hash of the client→virtual key (templates use it with `cport` 0).
    #[inline]
    pub(crate) fn in_hash(&self, proto: u8, caddr: A, cport: u16, vaddr: A, vport: u16) -> u32 {
        let extra = ((cport as u64) << 32) | ((vport as u64) << 16) | proto as u64;
        fold(A::hash2(caddr, vaddr, extra ^ self.seed))
    }

    #[inline]
    fn home_hash(&self, e: &Entry<A>) -> u32 {
        self.in_hash(e.proto, e.caddr, e.cport, e.vaddr, e.vport)
    }

    #[inline]
    fn home(&self, e: &Entry<A>) -> usize {
        self.home_hash(e) as usize & self.mask
    }

    /// Hash of the reply key. Only the client's side (`proto`, `caddr`, `cport`) is hashed: the
    /// index checks the whole key on every candidate, and a key the new-connection path knows
    /// before scheduling lets it read the index slot early, so that miss overlaps the
    /// connection-table miss (see [`prefetch_out`](Self::prefetch_out)).
    #[inline]
    fn out_hash(&self, proto: u8, caddr: A, cport: u16) -> u32 {
        let extra = ((cport as u64) << 32) | proto as u64 | 0x0100_0000_0000_0000;
        fold(A::hash2(caddr, A::default(), extra ^ self.seed))
    }

    #[inline]
    fn out_hash_of(&self, e: &Entry<A>) -> u32 {
        self.out_hash(e.proto, e.caddr, e.cport)
    }

    /// The hashes of a client packet's key, computed once for its lookup and, when it starts a
    /// connection, the inserts. `out` (the reply-index hash) only for packets that may start one.
    #[inline]
    pub(crate) fn flow_hash(
        &self,
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
        out: bool,
    ) -> FlowHash {
        FlowHash {
            key: self.in_hash(proto, caddr, cport, vaddr, vport),
            out: out.then(|| self.out_hash(proto, caddr, cport)),
            vacant: NIL,
        }
    }

    /// Prefetches the reply-index slot a new NAT connection with these hashes would be filed
    /// under, so its miss runs while other work does (nothing for packets that cannot start one).
    #[inline]
    pub(crate) fn prefetch_out(&self, h: &FlowHash) {
        if let Some(o) = h.out {
            self.out_idx.prefetch(o);
        }
    }

    /// The template index hash of the template in slab `slot`.
    #[inline]
    fn tpl_hash_of(&self, slot: u32, e: &Entry<A>) -> u32 {
        match self.pe_data.get(&slot).filter(|_| e.flags & flags::PE != 0) {
            Some(data) => self.pe_hash(e.proto, e.caddr, e.vaddr, e.vport, data),
            None => self.in_hash(e.proto, e.caddr, 0, e.vaddr, e.vport),
        }
    }

    /// Hash of a template key with persistence-engine data.
    fn pe_hash(&self, proto: u8, snet: A, vaddr: A, vport: u16, data: &[u8]) -> u32 {
        let mut h = self.seed ^ K2 ^ data.len() as u64;
        for c in data.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = mix(h ^ u64::from_le_bytes(w), K3);
        }
        self.in_hash(proto, snet, 0, vaddr, vport) ^ fold(h)
    }

    /// The connection for a client→virtual packet (`ip_vs_conn_in_get`; templates never match).
    #[inline]
    pub(crate) fn lookup_in(&self, proto: u8, caddr: A, cport: u16, vaddr: A, vport: u16) -> Option<u32> {
        self.lookup_in_hashed(
            self.in_hash(proto, caddr, cport, vaddr, vport),
            proto,
            caddr,
            cport,
            vaddr,
            vport,
        )
    }

    /// [`lookup_in`](Self::lookup_in) with the key's [`in_hash`](Self::in_hash) already computed.
    #[inline]
    pub(crate) fn lookup_in_hashed(
        &self,
        hash: u32,
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Option<u32> {
        self.probe(hash, proto, caddr, cport, vaddr, vport).ok()
    }

    /// [`lookup_in_hashed`](Self::lookup_in_hashed) of a packet's [`FlowHash`]; when nothing is
    /// found, the hash keeps the free slot the probe stopped at for the insert that may follow.
    #[inline]
    pub(crate) fn lookup_flow(
        &self,
        h: &mut FlowHash,
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Option<u32> {
        // A packet that may start a connection is looked up expecting a miss; the others (the
        // established flows) expecting a hit.
        let found = match h.out {
            Some(_) => self.probe_for_free(h.key, proto, caddr, cport, vaddr, vport),
            None => self.probe(h.key, proto, caddr, cport, vaddr, vport),
        };
        match found {
            Ok(id) => Some(id),
            Err(free) => {
                h.vacant = free;
                None
            }
        }
    }

    /// The connection's slot, or the first free slot of the cluster (`NIL` for an empty table),
    /// a slot at a time: for lookups that usually find their connection. The CPU predicts each
    /// tag test and reads the entry it leads to while the tags are still on their way, so a hit
    /// costs about one miss.
    #[inline]
    fn probe(&self, hash: u32, proto: u8, caddr: A, cport: u16, vaddr: A, vport: u16) -> Result<u32, u32> {
        if self.conns.is_empty() {
            return Err(NIL);
        }
        self.probe_from(hash as usize & self.mask, tag_of(hash), proto, caddr, cport, vaddr, vport)
    }

    /// The slot-at-a-time walk of [`probe`](Self::probe), from slot `i` on.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn probe_from(
        &self,
        mut i: usize,
        tag: u8,
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Result<u32, u32> {
        loop {
            let t = self.conns.tags[i];
            if t == FREE_TAG {
                return Err(i as u32);
            }
            if t == tag && self.conns[i].has_key(proto, caddr, cport, vaddr, vport) {
                return Ok(i as u32);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// [`probe`](Self::probe) for lookups that usually find nothing (a packet that may start a
    /// connection): 8 tags at a time by bit arithmetic, so where the cluster ends costs no
    /// mispredicted branch. A hit pays for it: its entry is read only once the tags are in.
    #[inline]
    fn probe_for_free(
        &self,
        hash: u32,
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Result<u32, u32> {
        if self.conns.is_empty() {
            return Err(NIL);
        }
        let tag = tag_of(hash);
        let mut i = hash as usize & self.mask;
        loop {
            let Some(g) = self.conns.group(i) else {
                // The last slots of the table (and on across its end): a slot at a time.
                return self.probe_from(i, tag, proto, caddr, cport, vaddr, vport);
            };
            let (mut hits, free) = scan(g, tag);
            while hits != 0 {
                let j = i + byte_of(hits);
                if self.conns[j].has_key(proto, caddr, cport, vaddr, vport) {
                    return Ok(j as u32);
                }
                hits &= hits - 1;
            }
            if free != 0 {
                return Err((i + byte_of(free)) as u32);
            }
            i = (i + GROUP) & self.mask;
        }
    }

    /// Prefetches the tags of a connection hash's home slot (and the slots after it on the same
    /// line), ahead of a lookup. A prefetch, unlike a load, does not hold the CPU's reorder
    /// buffer until the line arrives.
    #[inline]
    pub(crate) fn prefetch_tags(&self, hash: u32) {
        if let Some(t) = self.conns.tags.get(hash as usize & self.mask) {
            lvs_mem::prefetch_read(t);
        }
    }

    /// Prefetches the entry in a connection hash's home slot, where a lookup most often stops.
    #[inline]
    pub(crate) fn prefetch_home(&self, hash: u32) {
        if let Some(c) = self.conns.cells.get(hash as usize & self.mask) {
            lvs_mem::prefetch_read(c);
        }
    }

    /// Prefetches the entry a lookup of `hash` will stop at as the table stands: the first slot
    /// from home whose tag matches or is free. Reads the tags (so after
    /// [`prefetch_tags`](Self::prefetch_tags) has had time); only a hint, the lookup probes
    /// again. Gives up on a cluster longer than one group of tags, and near the table's end.
    #[inline(always)]
    pub(crate) fn prefetch_entry(&self, hash: u32) {
        if self.conns.is_empty() {
            return;
        }
        let i = hash as usize & self.mask;
        if let Some(g) = self.conns.group(i) {
            let (hits, free) = scan(g, tag_of(hash));
            let stop = hits | free;
            if stop != 0 {
                lvs_mem::prefetch_read(&self.conns.cells[i + byte_of(stop)]);
            }
        }
    }

    /// The NAT connection for a real-server→client packet: source `daddr:dport`, destination
    /// `caddr:cport` (`ip_vs_conn_out_get`, MASQ only).
    #[inline]
    pub(crate) fn lookup_out(&self, proto: u8, caddr: A, cport: u16, daddr: A, dport: u16) -> Option<u32> {
        let h = self.out_hash(proto, caddr, cport);
        self.out_idx.find(h, |id| {
            let e = &self.conns[id as usize];
            e.caddr == caddr && e.cport == cport && e.daddr == daddr && e.dport == dport && e.proto == proto
        })
    }

    /// A valid template by its key (`ip_vs_ct_in_get`).
    pub(crate) fn lookup_template(&self, proto: u8, snet: A, vaddr: A, vport: u16) -> Option<u32> {
        let h = self.in_hash(proto, snet, 0, vaddr, vport);
        self.tpl_idx
            .find(h, |id| {
                let e = self.tpls.get(id);
                e.caddr == snet
                    && e.vaddr == vaddr
                    && e.vport == vport
                    && e.proto == proto
                    && e.flags & flags::PE == 0
            })
            .map(|id| id | TPL)
    }

    /// A valid template by its key and persistence-engine data (the `ct_match` of `--pe sip`:
    /// client network, virtual address and port, protocol and equal data).
    pub(crate) fn lookup_template_pe(
        &self,
        proto: u8,
        snet: A,
        vaddr: A,
        vport: u16,
        data: &[u8],
    ) -> Option<u32> {
        let h = self.pe_hash(proto, snet, vaddr, vport, data);
        self.tpl_idx
            .find(h, |id| {
                let e = self.tpls.get(id);
                e.caddr == snet
                    && e.vaddr == vaddr
                    && e.vport == vport
                    && e.proto == proto
                    && e.flags & flags::PE != 0
                    && self.pe_data.get(&id).is_some_and(|d| **d == *data)
            })
            .map(|id| id | TPL)
    }

    /// The persistence-engine data of a template.
    pub(crate) fn pe_data(&self, id: u32) -> Option<&[u8]> {
        if id & TPL == 0 {
            return None;
        }
        self.pe_data.get(&(id & !TPL)).map(|d| &d[..])
    }

    /// Stores a template keyed with persistence-engine data (see [`insert`](Self::insert)).
    pub(crate) fn insert_pe(&mut self, mut e: Entry<A>, data: &[u8]) -> Option<u32> {
        e.flags |= flags::TEMPLATE | flags::PE;
        self.insert_with(e, Some(data), None)
    }

    /// Stores an entry (a template if it has the TEMPLATE flag), indexes it and files its timer.
    /// The caller makes sure no connection with the same key exists. `None` when the id space is
    /// exhausted.
    pub(crate) fn insert(&mut self, mut e: Entry<A>) -> Option<u32> {
        e.flags &= !flags::PE;
        self.insert_with(e, None, None)
    }

    /// [`insert`](Self::insert) of a connection (not a template) whose key's hashes are known:
    /// `h` must come from [`flow_hash`](Self::flow_hash) of this table for the entry's key.
    #[inline(always)]
    pub(crate) fn insert_hashed(&mut self, mut e: Entry<A>, h: &FlowHash) -> Option<u32> {
        e.flags &= !(flags::PE | flags::TEMPLATE);
        self.insert_conn(e, Some(h), true)
    }

    /// [`insert_hashed`](Self::insert_hashed), but left
    /// off the timer wheel: the caller files it with [`rearm`](Self::rearm) before anything else
    /// uses the table, once the packet has set its real expiry (so it is filed once, not first
    /// at a placeholder expiry).
    #[inline]
    pub(crate) fn insert_hashed_unfiled(&mut self, mut e: Entry<A>, h: &FlowHash) -> Option<u32> {
        e.flags &= !(flags::PE | flags::TEMPLATE);
        self.insert_conn(e, Some(h), false)
    }

    fn insert_with(&mut self, mut e: Entry<A>, pe: Option<&[u8]>, h: Option<&FlowHash>) -> Option<u32> {
        if !e.is_template() {
            return self.insert_conn(e, h, true);
        }
        e.prev = NIL;
        e.next = NIL;
        e.flags &= !(flags::FREE | flags::DUE);
        let slot = self.tpls.alloc(e)?;
        let id = slot | TPL;
        if let Some(data) = pe {
            self.pe_data.insert(slot, data.into());
        }
        self.tpl_idx.insert(self.tpl_hash_of(slot, &e), slot);
        self.ntpls += 1;
        let Self { wheel, conns, tpls, .. } = self;
        wheel.link(&mut Store { conns, tpls }, id);
        Some(id)
    }

    /// The connection half of [`insert_with`](Self::insert_with), inlined into the packet path.
    /// `file`: link it on the timer wheel (else the caller does, see
    /// [`insert_hashed_unfiled`](Self::insert_hashed_unfiled)).
    #[inline(always)]
    fn insert_conn(&mut self, mut e: Entry<A>, h: Option<&FlowHash>, file: bool) -> Option<u32> {
        e.prev = NIL;
        e.next = NIL;
        e.flags &= !(flags::FREE | flags::DUE);
        let mut vacant = h.map_or(NIL, |h| h.vacant);
        if (self.nconns as usize + 1) * 4 > self.conns.len() * 3 {
            let slots = (self.conns.len() * 2).max(MIN_SLOTS);
            if slots > TPL as usize {
                return None;
            }
            self.rebuild(slots, self.seed, e);
            vacant = NIL;
        }
        debug_assert!(h.is_none_or(|h| h.key == self.home_hash(&e)), "flow hash of another key");
        let key = h.map_or_else(|| self.home_hash(&e), |h| h.key);
        let i = if vacant != NIL {
            vacant as usize
        } else {
            let mut i = key as usize & self.mask;
            while self.conns.used(i) {
                i = (i + 1) & self.mask;
            }
            i
        };
        debug_assert!(
            vacant == NIL
                || Err(vacant)
                    == self.probe(h.map_or(0, |h| h.key), e.proto, e.caddr, e.cport, e.vaddr, e.vport),
            "stale free slot"
        );
        let id = i as u32;
        if file {
            // Linked as it is written: the wheel's half here, the old list head's `prev` below.
            (e.prev, e.next) = self.wheel.push(id, e.expires);
        }
        self.conns.put(i, key, e);
        if e.next != NIL {
            let Self { conns, tpls, .. } = self;
            Store { conns, tpls }.set_prev(e.next, id);
        }
        if e.in_out_index() {
            let out = h.and_then(|h| h.out).unwrap_or_else(|| self.out_hash_of(&e));
            debug_assert_eq!(out, self.out_hash_of(&e), "reply hash of another key");
            self.out_idx.insert(out, id);
        }
        self.nconns += 1;
        Some(id)
    }

    /// Unindexes, unfiles and frees an entry; returns its last contents. Removing a connection
    /// may move others (backward shift).
    pub(crate) fn remove(&mut self, id: u32) -> Entry<A> {
        let Self { wheel, conns, tpls, .. } = self;
        wheel.unlink(&mut Store { conns, tpls }, id);
        let e = *self.get(id);
        if e.is_template() {
            if e.flags & flags::INVALID == 0 {
                self.tpl_idx.remove(self.tpl_hash_of(id & !TPL, &e), id & !TPL);
            }
            if e.flags & flags::PE != 0 {
                self.pe_data.remove(&(id & !TPL));
            }
            self.ntpls -= 1;
            self.tpls.release(id & !TPL);
            return e;
        }
        if e.in_out_index() {
            self.out_idx.remove(self.out_hash_of(&e), id);
        }
        self.nconns -= 1;
        // Backward shift: pull later members of the cluster into the hole when their home slot
        // is not between the hole and their position.
        let mut hole = id as usize;
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            if !self.conns.used(j) {
                break;
            }
            let home = self.home(&self.conns[j]);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.relocate(j, hole);
                hole = j;
            }
        }
        self.conns.clear(hole);
        e
    }

    /// Moves the connection at `from` to the free slot `to` and repoints what names it.
    fn relocate(&mut self, from: usize, to: usize) {
        self.conns.copy_within(from, to);
        let e = self.conns[to];
        let to_id = to as u32;
        if e.flags & flags::DUE != 0 {
            self.due[e.next as usize] = to_id;
        } else {
            let Self { wheel, conns, tpls, .. } = self;
            wheel.moved(&mut Store { conns, tpls }, to_id);
        }
        if e.in_out_index() {
            let h = self.out_hash_of(&e);
            self.out_idx.replace(h, from as u32, to_id);
        }
    }

    /// Rebuilds the connection table with `slots` slots and `seed` (growth, shrink, reseed):
    /// every connection gets a new slot, the reply index and the wheel are rebuilt. `filler` is
    /// any entry (free slots need a value). Cold: it runs at doublings only.
    #[cold]
    fn rebuild(&mut self, slots: usize, seed: u64, filler: Entry<A>) {
        debug_assert!(self.due.is_empty(), "no rebuild while expiring");
        let mut free = filler;
        free.flags = flags::FREE;
        free.prev = NIL;
        free.next = NIL;
        let old = std::mem::replace(&mut self.conns, Cells::filled(free, slots));
        self.mask = slots - 1;
        self.seed = seed;
        self.out_idx.clear();
        self.wheel.reset();
        for mut e in old.into_entries().filter(|e| !e.is_free()) {
            e.prev = NIL;
            e.next = NIL;
            let key = self.home_hash(&e);
            let mut i = key as usize & self.mask;
            while self.conns.used(i) {
                i = (i + 1) & self.mask;
            }
            self.conns.put(i, key, e);
            if e.in_out_index() {
                self.out_idx.insert(self.out_hash_of(&e), i as u32);
            }
        }
        self.tpl_idx.clear();
        for slot in 0..self.tpls.high() {
            let e = *self.tpls.get(slot);
            if e.is_free() {
                continue;
            }
            self.tpls.get_mut(slot).prev = NIL;
            if e.flags & flags::INVALID == 0 {
                self.tpl_idx.insert(self.tpl_hash_of(slot, &e), slot);
            }
        }
        let Self { wheel, conns, tpls, .. } = self;
        let mut store = Store { conns, tpls };
        for i in 0..store.conns.len() {
            if store.conns.used(i) {
                wheel.link(&mut store, i as u32);
            }
        }
        for slot in 0..store.tpls.high() {
            if !store.tpls.get(slot).is_free() {
                wheel.link(&mut store, slot | TPL);
            }
        }
    }

    /// `ip_vs_check_template` failure: the template is rehashed with vport = dport = 0xffff and
    /// cport 0 so it never matches again, and lives on until its timer.
    pub(crate) fn invalidate_template(&mut self, id: u32) {
        let e = *self.get(id);
        if e.flags & flags::INVALID != 0 || !e.is_template() {
            return;
        }
        self.tpl_idx.remove(self.tpl_hash_of(id & !TPL, &e), id & !TPL);
        let e = self.get_mut(id);
        e.vport = 0xffff;
        e.dport = 0xffff;
        e.cport = 0;
        e.flags |= flags::INVALID;
    }

    /// Sets a new expiry: later expiries are lazy (the entry stays filed early), earlier ones move;
    /// an unfiled entry is filed.
    #[inline(always)]
    pub(crate) fn rearm(&mut self, id: u32, expires: u64) {
        if id & TPL == 0 {
            // A connection: reached once for the packet path's two common cases.
            let Self { wheel, conns, tpls, .. } = self;
            let e = &mut conns[id as usize];
            if e.prev == NIL {
                e.expires = expires;
                let (prev, next) = wheel.push(id, expires);
                e.prev = prev;
                e.next = next;
                if next != NIL {
                    Store { conns, tpls }.set_prev(next, id);
                }
                return;
            }
            if expires >= e.expires {
                e.expires = expires;
                return;
            }
        }
        self.rearm_move(id, expires);
    }

    /// [`rearm`](Self::rearm) of a template, or to an earlier expiry.
    #[inline(never)]
    fn rearm_move(&mut self, id: u32, expires: u64) {
        let Self { wheel, conns, tpls, .. } = self;
        let mut store = Store { conns, tpls };
        let e = store.e_mut(id);
        let old = e.expires;
        e.expires = expires;
        if !Wheel::is_linked(&store, id) {
            wheel.link(&mut store, id);
        } else if expires < old {
            wheel.unlink(&mut store, id);
            wheel.link(&mut store, id);
        }
    }

    /// Unfiles every entry whose expiry is `<= now` and lists them in expiry order (ties by id);
    /// each is flagged DUE with its position, so moves keep the list right. The caller takes
    /// them with [`due_at`](Self::due_at) and must remove or re-arm each one, then call
    /// [`end_due`](Self::end_due).
    pub(crate) fn collect_due(&mut self, now: u64) -> usize {
        let mut found: Vec<(u64, u32)> = Vec::new();
        {
            let Self { wheel, conns, tpls, .. } = self;
            wheel.poll(&mut Store { conns, tpls }, now, &mut found);
        }
        // Mostly sorted already (slots come out in time order); ties by id.
        found.sort_unstable();
        self.due.clear();
        self.due.extend(found.iter().map(|&(_, id)| id));
        for (pos, &(_, id)) in found.iter().enumerate() {
            let e = self.get_mut(id);
            e.flags |= flags::DUE;
            e.next = pos as u32;
        }
        self.due.len()
    }

    /// The current id of the `pos`-th due entry.
    pub(crate) fn due_id(&self, pos: usize) -> u32 {
        self.due[pos]
    }

    /// The `pos`-th due entry (its current id), which stops being DUE.
    pub(crate) fn due_at(&mut self, pos: usize) -> u32 {
        let id = self.due[pos];
        let e = self.get_mut(id);
        e.flags &= !flags::DUE;
        e.next = NIL;
        id
    }

    /// Ends an expiry run.
    pub(crate) fn end_due(&mut self) {
        self.due.clear();
    }

    /// Live entry ids: connections in slot order, then templates.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        let conns = (0..self.conns.len() as u32).filter(|&i| self.conns.used(i as usize));
        let tpls = (0..self.tpls.high()).filter(|&i| !self.tpls.get(i).is_free()).map(|i| i | TPL);
        conns.chain(tpls)
    }

    /// Number of connection slots (ids of connections are below it).
    pub(crate) fn slots(&self) -> u32 {
        self.conns.len() as u32
    }

    /// Template slab size (template ids are `TPL | i` for `i` below it).
    pub(crate) fn template_slots(&self) -> u32 {
        self.tpls.high()
    }

    /// Rebuilds the indexes with a new hash seed.
    pub(crate) fn reseed(&mut self, seed: u64) {
        match self.conns.get(0).copied() {
            Some(filler) => self.rebuild(self.conns.len(), seed, filler),
            None => {
                self.seed = seed;
                self.tpl_idx.clear();
                for slot in 0..self.tpls.high() {
                    let e = *self.tpls.get(slot);
                    if !e.is_free() && e.flags & flags::INVALID == 0 {
                        self.tpl_idx.insert(self.tpl_hash_of(slot, &e), slot);
                    }
                }
            }
        }
    }

    /// Shrinks the connection table and indexes when at most 1/8 full.
    pub(crate) fn compact(&mut self) {
        let n = self.conns.len();
        if n > MIN_SLOTS && (self.nconns as usize) * 8 <= n {
            let target = (self.nconns as usize * 2).next_power_of_two().max(MIN_SLOTS);
            if target < n {
                let filler = self.conns[0];
                self.rebuild(target, self.seed, filler);
            }
        }
        self.out_idx.maybe_shrink();
        self.tpl_idx.maybe_shrink();
    }

    /// Memory from allocated capacities.
    pub(crate) fn bytes(&self) -> TableBytes {
        TableBytes {
            entries: self.conns.bytes()
                + self.tpls.bytes()
                + self.pe_data.values().map(|d| d.len()).sum::<usize>()
                + self.pe_data.capacity() * std::mem::size_of::<(u32, Box<[u8]>)>(),
            indexes: self.out_idx.bytes() + self.tpl_idx.bytes(),
            wheel: self.wheel.bytes() + self.due.capacity() * 4,
        }
    }

    /// Consistency check for tests: counts, indexes and wheel agree with the entries, and every
    /// connection is reachable from its home slot.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        for i in 0..self.conns.len() {
            let e = &self.conns[i];
            let tag = if e.is_free() { FREE_TAG } else { tag_of(self.home_hash(e)) };
            assert_eq!(self.conns.tags[i], tag, "tag of slot {i}");
        }
        let live: Vec<u32> = self.ids().collect();
        assert_eq!(live.len(), self.len() as usize);
        let tpl = live.iter().filter(|&&id| self.get(id).is_template()).count();
        assert_eq!(tpl, self.ntpls as usize);
        let masq = live.iter().filter(|&&id| self.get(id).in_out_index()).count();
        assert_eq!(self.out_idx.len(), masq);
        assert_eq!(self.wheel.len(), live.len());
        for &id in &live {
            let e = self.get(id);
            assert_eq!(e.flags & flags::DUE, 0);
            if !e.is_template() {
                assert_eq!(self.lookup_in(e.proto, e.caddr, e.cport, e.vaddr, e.vport), Some(id));
                if e.in_out_index() {
                    assert_eq!(self.lookup_out(e.proto, e.caddr, e.cport, e.daddr, e.dport), Some(id));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::{Dest, DestArena};
    use crate::model::{DestConfig, Protocol, ServiceKey};
    use crate::rng::Rng;
    use std::collections::HashMap;

    fn dest_id() -> DestId {
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
        DestArena::default().insert(Dest::new(key, &DestConfig::new("10.0.0.2".parse().unwrap()), 80))
    }

    #[test]
    fn group_scan_matches_a_byte_at_a_time() {
        // Every way 8 tags can mix free slots, the tag probed for and others (five kinds per
        // byte, the smallest and largest tags among them: 5^8 groups), against the plain walk:
        // the first free byte, and every byte before it whose tag matches (later false
        // candidates are allowed: the probe checks entries).
        let tag = tag_of(0xdead_beef);
        let kinds = [FREE_TAG, tag, tag ^ 0x01, 0x80, 0xff];
        for n in 0..5u32.pow(8) {
            let mut bytes = [0u8; 8];
            let mut k = n;
            for b in &mut bytes {
                *b = kinds[(k % 5) as usize];
                k /= 5;
            }
            let (hits, free) = scan(u64::from_le_bytes(bytes), tag);
            let first_free = bytes.iter().position(|&b| b == FREE_TAG);
            assert_eq!(free != 0, first_free.is_some(), "{bytes:?}");
            if let Some(f) = first_free {
                assert_eq!(byte_of(free), f, "{bytes:?}");
            }
            let end = first_free.unwrap_or(8);
            let want: Vec<usize> = (0..end).filter(|&i| bytes[i] == tag).collect();
            let got: Vec<usize> = (0..8).filter(|&i| hits >> (8 * i) & 0x80 != 0).collect();
            assert!(got.iter().all(|&i| i < end), "{bytes:?}: candidate past the free slot");
            assert!(want.iter().all(|i| got.contains(i)), "{bytes:?}: a match was missed");
        }
    }

    #[test]
    fn entry_sizes() {
        assert_eq!(std::mem::size_of::<Entry<u32>>(), 56);
        assert_eq!(std::mem::size_of::<Entry<V6>>(), 96);
        // IPv4 entries sit alone on a 64-byte line (8 bytes spare); IPv6 entries are packed.
        assert_eq!(std::mem::size_of::<<u32 as Addr>::Cell>(), 64);
        assert_eq!(std::mem::align_of::<<u32 as Addr>::Cell>(), 64);
        assert_eq!(std::mem::size_of::<<V6 as Addr>::Cell>(), 96);
    }

    #[test]
    fn both_probes_agree_at_every_load_and_across_the_end() {
        // The slot-at-a-time probe (hits expected) and the 8-tags-at-a-time one (misses
        // expected) must give the same answer for present and absent keys, the same free slot
        // included, while a small table fills up to its 3/4 limit (clusters then reach the end
        // of the table and wrap) and after it doubles.
        let d = dest_id();
        let mut t: ConnTable<u32> = ConnTable::default();
        let key = |i: u32| (0x0a00_0000 + i * 7919, 1000 + i as u16);
        for n in 0..200u32 {
            let (c, p) = key(n);
            t.insert(Entry::new(6, c, p, 0x0a00_0001, 80, 0x0a00_0002, 8080, d, 0)).unwrap();
            for i in 0..260u32 {
                let (c, p) = key(i);
                let h = t.in_hash(6, c, p, 0x0a00_0001, 80);
                let slow = t.probe(h, 6, c, p, 0x0a00_0001, 80);
                let fast = t.probe_for_free(h, 6, c, p, 0x0a00_0001, 80);
                assert_eq!(fast, slow, "key {i} with {} entries in {} slots", n + 1, t.slots());
                assert_eq!(slow.is_ok(), i <= n);
            }
        }
        t.check();
    }

    #[test]
    fn insert_lookup_remove_and_expire() {
        let d = dest_id();
        let mut t: ConnTable<u32> = ConnTable::default();
        let mut keys = Vec::new();
        for i in 0..1000u32 {
            let mut e =
                Entry::new(6, 0x0a00_0000 + i, 1000 + i as u16, 0x0a00_0001, 80, 0x0a00_0002, 8080, d, 0);
            e.expires = 1000 + i as u64;
            t.insert(e).unwrap();
            keys.push(i);
        }
        t.check();
        let id5 = t.lookup_in(6, 0x0a00_0005, 1005, 0x0a00_0001, 80).unwrap();
        assert_eq!(t.get(id5).cport, 1005);
        assert_eq!(t.lookup_in(17, 0x0a00_0005, 1005, 0x0a00_0001, 80), None);
        // NAT reply key: client and real server.
        let id7 = t.lookup_in(6, 0x0a00_0007, 1007, 0x0a00_0001, 80).unwrap();
        assert_eq!(t.lookup_out(6, 0x0a00_0007, 1007, 0x0a00_0002, 8080), Some(id7));
        assert_eq!(t.lookup_out(6, 0x0a00_0007, 1007, 0x0a00_0002, 80), None);
        let e = t.remove(id5);
        assert_eq!(e.cport, 1005);
        assert_eq!(t.lookup_in(6, 0x0a00_0005, 1005, 0x0a00_0001, 80), None);
        t.check();
        let n = t.collect_due(1500);
        // Expiries 1000..=1500 except the removed 1005.
        assert_eq!(n, 500);
        let mut last = 0;
        for pos in 0..n {
            let id = t.due_at(pos);
            let e = t.remove(id);
            assert!(e.expires >= last, "expiry order");
            last = e.expires;
        }
        t.end_due();
        t.check();
        assert_eq!(t.len(), 499);
        t.compact();
        t.check();
    }

    #[test]
    fn removals_shift_entries_and_keep_everything_consistent() {
        // Random inserts and removals (many sharing hash clusters in a small table), with an
        // expiry run in the middle that removes while other due entries are being shifted.
        let d = dest_id();
        let mut rng = Rng::new(5);
        let mut t: ConnTable<u32> = ConnTable::default();
        let mut model: HashMap<(u32, u16), u64> = HashMap::new();
        for round in 0..20_000u32 {
            let c = rng.below(300);
            let p = rng.below(4) as u16;
            match (model.contains_key(&(c, p)), rng.below(3)) {
                (false, _) => {
                    let fwd = if rng.below(2) == 0 { 0 } else { 3 };
                    let mut e = Entry::new(6, c, p, 7, 80, c ^ 0xff, 8080, d, fwd);
                    e.expires = rng.below(100_000) as u64 + round as u64 * 10;
                    t.insert(e).unwrap();
                    model.insert((c, p), e.expires);
                }
                (true, 0) => {
                    let id = t.lookup_in(6, c, p, 7, 80).unwrap();
                    t.rearm(id, round as u64 * 10 + 50_000);
                    model.insert((c, p), round as u64 * 10 + 50_000);
                }
                (true, _) => {
                    let id = t.lookup_in(6, c, p, 7, 80).unwrap();
                    t.remove(id);
                    model.remove(&(c, p));
                }
            }
            if round % 997 == 0 {
                let now = round as u64 * 10;
                let n = t.collect_due(now);
                let mut got = Vec::new();
                for pos in 0..n {
                    let id = t.due_at(pos);
                    let e = t.remove(id);
                    assert!(e.expires <= now);
                    got.push((e.caddr, e.cport));
                }
                t.end_due();
                got.sort_unstable();
                let mut want: Vec<(u32, u16)> =
                    model.iter().filter(|(_, &x)| x <= now).map(|(&k, _)| k).collect();
                want.sort_unstable();
                assert_eq!(got, want, "round {round}");
                for k in want {
                    model.remove(&k);
                }
                t.check();
                assert_eq!(t.len() as usize, model.len());
            }
        }
        t.reseed(99);
        t.check();
    }

    #[test]
    fn templates_and_invalidation() {
        let d = dest_id();
        let mut t: ConnTable<V6> = ConnTable::default();
        let snet = V6::from_ip("2001:db8::".parse().unwrap()).unwrap();
        let vip = V6::from_ip("2001:db8:1::1".parse().unwrap()).unwrap();
        let tpl = Entry::new(6, snet, 0, vip, 443, vip, 443, d, flags::TEMPLATE);
        let id = t.insert(tpl).unwrap();
        assert_eq!(id & TPL, TPL);
        assert_eq!(t.lookup_template(6, snet, vip, 443), Some(id));
        assert_eq!(t.lookup_in(6, snet, 0, vip, 443), None, "templates are not in the conn table");
        t.reseed(0x1234);
        assert_eq!(
            t.lookup_template(6, snet, vip, 443),
            Some(id),
            "found after a reseed with no connections"
        );
        t.invalidate_template(id);
        assert_eq!(t.lookup_template(6, snet, vip, 443), None);
        assert_eq!((t.get(id).vport, t.get(id).dport), (0xffff, 0xffff));
        assert_eq!(t.templates(), 1);
        t.check();
        t.remove(id);
        assert_eq!(t.templates(), 0);
        t.check();
        assert_eq!(V6::from_mark(1).to_ip(), "0:1::".parse::<IpAddr>().unwrap());
        assert_eq!(u32::from_mark(1).to_ip(), "0.0.0.1".parse::<IpAddr>().unwrap());
    }
}
