//! AF_PACKET socket with `TPACKET_V3` RX and TX rings in one mapping.
//!
//! Layout of the shared mapping (kernel rule: RX first, TX right after it):
//!
//! ```text
//! [ RX block 0 | RX block 1 | ... | RX block n-1 ][ TX block 0 | ... ]
//!   each RX block: tpacket_block_desc, then variable-size packets
//!   each TX block: fixed-size frames, tpacket3_hdr at +0, data at +48
//! ```
//!
//! Ownership is handed back and forth with the `block_status` (RX) and
//! `tp_status` (TX) words, which are accessed as atomics: user space reads
//! them with `Acquire` (so the kernel's writes to the block/frame are visible)
//! and writes them with `Release` (so our writes are visible before the kernel
//! sees the new owner).

use std::ffi::CString;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ffi::{self, PacketMreq, SockaddrLl, Tpacket3Hdr, TpacketReq3, TpacketStatsV3};
use crate::FrameIo;

/// RX ring geometry (`tpacket_req3` for `PACKET_RX_RING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxConfig {
    /// Block size in bytes: a multiple of the page size (a power of two avoids waste).
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Nominal frame size (multiple of 16, at least 80). With V3, packets are
    /// packed into blocks; the kernel only uses this to check the request.
    pub frame_size: u32,
    /// A partly filled block is handed to user space after this many
    /// milliseconds (`tp_retire_blk_tov`; 0 lets the kernel choose).
    pub retire_timeout_ms: u32,
    /// Ask the kernel to fill the flow hash ([`RxFrame::rxhash`]).
    pub fill_rxhash: bool,
}

impl Default for RxConfig {
    /// 16 blocks of 256 KiB (4 MiB), 2 KiB frames, 4 ms retire timeout, rxhash on.
    fn default() -> Self {
        Self {
            block_size: 1 << 18,
            block_count: 16,
            frame_size: 2048,
            retire_timeout_ms: 4,
            fill_rxhash: true,
        }
    }
}

/// TX ring geometry (`tpacket_req3` for `PACKET_TX_RING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxConfig {
    /// Block size in bytes: a multiple of the page size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Frame slot size (multiple of 16, at least 80); the largest frame that
    /// fits is `frame_size - 48`.
    pub frame_size: u32,
}

impl Default for TxConfig {
    /// 8 blocks of 64 KiB with 2 KiB slots: 256 frames.
    fn default() -> Self {
        Self { block_size: 1 << 16, block_count: 8, frame_size: 2048 }
    }
}

/// How the kernel spreads packets over the sockets of a fanout group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FanoutMode {
    /// By the skb flow hash: one flow always lands on one socket.
    #[default]
    Hash,
    /// Round robin.
    LoadBalance,
    /// By the CPU that received the packet.
    Cpu,
    /// Fill one socket, then move to the next.
    Rollover,
    /// Random.
    Random,
    /// By the recorded receive queue.
    QueueMapping,
}

impl FanoutMode {
    fn raw(self) -> u16 {
        match self {
            FanoutMode::Hash => ffi::PACKET_FANOUT_HASH,
            FanoutMode::LoadBalance => ffi::PACKET_FANOUT_LB,
            FanoutMode::Cpu => ffi::PACKET_FANOUT_CPU,
            FanoutMode::Rollover => ffi::PACKET_FANOUT_ROLLOVER,
            FanoutMode::Random => ffi::PACKET_FANOUT_RND,
            FanoutMode::QueueMapping => ffi::PACKET_FANOUT_QM,
        }
    }
}

/// `PACKET_FANOUT` membership: all sockets with the same `group_id` (in one
/// network namespace, same interface, same mode and flags) share the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Group id (per network namespace).
    pub group_id: u16,
    /// Distribution mode.
    pub mode: FanoutMode,
    /// `PACKET_FANOUT_FLAG_DEFRAG`: reassemble IP fragments before hashing.
    pub defrag: bool,
    /// `PACKET_FANOUT_FLAG_ROLLOVER`: use another socket when the chosen one is full.
    pub rollover: bool,
}

impl Fanout {
    /// Hash mode, no flags.
    pub fn hash(group_id: u16) -> Self {
        Self { group_id, mode: FanoutMode::Hash, defrag: false, rollover: false }
    }

    /// Any mode, no flags.
    pub fn with_mode(group_id: u16, mode: FanoutMode) -> Self {
        Self { group_id, mode, defrag: false, rollover: false }
    }

    /// The `setsockopt(PACKET_FANOUT)` argument.
    pub fn arg(&self) -> u32 {
        let mut flags = 0;
        if self.defrag {
            flags |= ffi::PACKET_FANOUT_FLAG_DEFRAG;
        }
        if self.rollover {
            flags |= ffi::PACKET_FANOUT_FLAG_ROLLOVER;
        }
        ffi::fanout_arg(self.group_id, self.mode.raw(), flags)
    }
}

/// Everything [`PacketSocket::open`] needs besides the interface name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// RX ring; `None` for a TX-only socket (it then receives nothing).
    pub rx: Option<RxConfig>,
    /// TX ring; `None` for an RX-only socket.
    pub tx: Option<TxConfig>,
    /// Join a fanout group (needs an RX ring).
    pub fanout: Option<Fanout>,
    /// `PACKET_QDISC_BYPASS`: TX skips the qdisc layer (and other packet sockets' taps).
    pub qdisc_bypass: bool,
    /// `PACKET_IGNORE_OUTGOING`: do not receive frames sent from this host.
    pub ignore_outgoing: bool,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// How long the [`FrameIo`] methods wait for a ready RX block or a free TX slot.
    pub poll_timeout: Duration,
}

impl Default for RingConfig {
    /// Default RX and TX rings, no fanout, no options, 100 ms poll timeout.
    fn default() -> Self {
        Self {
            rx: Some(RxConfig::default()),
            tx: Some(TxConfig::default()),
            fanout: None,
            qdisc_bypass: false,
            ignore_outgoing: false,
            promiscuous: false,
            poll_timeout: Duration::from_millis(100),
        }
    }
}

impl RingConfig {
    /// Only an RX ring (default geometry).
    pub fn rx_only() -> Self {
        Self { tx: None, ..Self::default() }
    }

    /// Only a TX ring (default geometry).
    pub fn tx_only() -> Self {
        Self { rx: None, ..Self::default() }
    }
}

/// Kernel socket statistics (`PACKET_STATISTICS`), accumulated since the
/// socket was opened (the kernel resets its counters on every read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Packets that reached the socket, *including* the dropped ones.
    pub packets: u64,
    /// Packets dropped because the RX ring was full.
    pub drops: u64,
    /// Times the RX queue was frozen because no block was free.
    pub freeze_q_cnt: u64,
}

/// User-space counters kept by the ring (no system calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Frames handed out by RX.
    pub rx_frames: u64,
    /// Blocks returned to the kernel.
    pub rx_blocks: u64,
    /// Blocks retired by the timeout rather than because they were full.
    pub rx_blocks_timed_out: u64,
    /// Blocks whose packet chain was inconsistent (walk stopped early).
    pub rx_malformed_blocks: u64,
    /// Frames placed in TX slots.
    pub tx_frames: u64,
    /// `send()` kicks issued.
    pub tx_kicks: u64,
    /// Times a TX slot was not free.
    pub tx_ring_full: u64,
}

/// One received frame: a view into an RX block plus kernel metadata.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame<'b> {
    /// Captured bytes, starting at the link-layer header.
    pub data: &'b [u8],
    /// Length on the wire (larger than `data.len()` if truncated).
    pub wire_len: u32,
    /// `tp_status` flags (`TP_STATUS_VLAN_VALID`, `TP_STATUS_CSUM_VALID`, ...).
    pub status: u32,
    /// Flow hash, if the ring was opened with `fill_rxhash`.
    pub rxhash: u32,
    /// Timestamp seconds.
    pub sec: u32,
    /// Timestamp nanoseconds.
    pub nsec: u32,
    vlan_tci: u32,
}

impl RxFrame<'_> {
    /// The frame was cut short because it did not fit.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.wire_len)
    }

    /// The VLAN TCI the NIC stripped, if any.
    pub fn vlan_tci(&self) -> Option<u16> {
        (self.status & ffi::TP_STATUS_VLAN_VALID != 0).then_some(self.vlan_tci as u16)
    }
}

/// Iterator over the frames of an [`RxBlock`].
#[derive(Debug)]
pub struct RxFrames<'b> {
    block: *const u8,
    block_size: usize,
    offset: usize,
    remaining: u32,
    _block: PhantomData<&'b [u8]>,
}

impl<'b> Iterator for RxFrames<'b> {
    type Item = RxFrame<'b>;

    fn next(&mut self) -> Option<RxFrame<'b>> {
        if self.remaining == 0 {
            return None;
        }
        let off = self.offset;
        let hdr_end = off.checked_add(size_of::<Tpacket3Hdr>())?;
        if hdr_end > self.block_size {
            self.remaining = 0;
            return None;
        }
        // SAFETY: `off + 48 <= block_size` was checked just above, and
        // `block` points at a block of `block_size` bytes that stays mapped
        // and user-owned for `'b` (the RxBlock borrow). read_unaligned makes
        // no alignment assumption about a kernel-provided offset.
        let hdr: Tpacket3Hdr = unsafe { ptr::read_unaligned(self.block.add(off).cast::<Tpacket3Hdr>()) };
        let start = off + usize::from(hdr.tp_mac);
        let len = hdr.tp_snaplen as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.block_size => {}
            _ => {
                self.remaining = 0;
                return None;
            }
        }
        // SAFETY: `start + len <= block_size` (checked above) keeps the slice
        // inside the block. The block is owned by user space (status USER was
        // observed with Acquire) until the RxBlock is dropped, which the
        // lifetime `'b` outlives, so the kernel does not write these bytes
        // while the slice exists.
        let data = unsafe { std::slice::from_raw_parts(self.block.add(start), len) };
        self.remaining -= 1;
        if hdr.tp_next_offset == 0 {
            self.remaining = 0;
        } else {
            self.offset = off.saturating_add(hdr.tp_next_offset as usize);
        }
        Some(RxFrame {
            data,
            wire_len: hdr.tp_len,
            status: hdr.tp_status,
            rxhash: hdr.hv1.tp_rxhash,
            sec: hdr.tp_sec,
            nsec: hdr.tp_nsec,
            vlan_tci: hdr.hv1.tp_vlan_tci,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

/// A block of received frames, owned by user space until dropped; dropping it
/// returns the block to the kernel.
pub struct RxBlock<'a> {
    rx: &'a mut RxState,
    counters: &'a mut RingCounters,
    block: *const u8,
    status: u32,
    num_pkts: u32,
    first: u32,
    seq: u64,
}

impl fmt::Debug for RxBlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxBlock")
            .field("index", &self.rx.next)
            .field("status", &self.status)
            .field("num_pkts", &self.num_pkts)
            .field("seq", &self.seq)
            .finish()
    }
}

impl RxBlock<'_> {
    /// Number of packets the kernel put in the block.
    pub fn len(&self) -> usize {
        self.num_pkts as usize
    }

    /// The block holds no packets.
    pub fn is_empty(&self) -> bool {
        self.num_pkts == 0
    }

    /// The block was retired by the timeout, not because it was full.
    pub fn timed_out(&self) -> bool {
        self.status & ffi::TP_STATUS_BLK_TMO != 0
    }

    /// The block's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The block's `block_status` word as read.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The frames in the block, in arrival order.
    pub fn frames(&self) -> RxFrames<'_> {
        RxFrames {
            block: self.block,
            block_size: self.rx.block_size,
            offset: self.first as usize,
            remaining: self.num_pkts,
            _block: PhantomData,
        }
    }
}

impl Drop for RxBlock<'_> {
    fn drop(&mut self) {
        let timed_out = self.timed_out();
        self.counters.rx_blocks += 1;
        if timed_out {
            self.counters.rx_blocks_timed_out += 1;
        }
        // SAFETY: `block` is the start of block `rx.next` inside the live
        // mapping; see RxState::status.
        let status = unsafe { RxState::status_at(self.block) };
        // Release: all our reads of the block happen before the kernel may reuse it.
        status.store(ffi::TP_STATUS_KERNEL, Ordering::Release);
        self.rx.next = (self.rx.next + 1) % self.rx.block_count;
    }
}

/// An owned shared mapping of the socket's rings.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    locked: bool,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing refers
        // to the mapping after this (the rings are dropped with it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[derive(Debug)]
struct RxState {
    base: *mut u8,
    block_size: usize,
    block_count: usize,
    next: usize,
}

impl RxState {
    fn block(&self, idx: usize) -> *mut u8 {
        // Plain address arithmetic (no dereference); callers only use indices
        // < block_count, which stay inside the RX part of the mapping.
        self.base.wrapping_add(idx * self.block_size)
    }

    /// The `block_status` word of the block starting at `block`.
    ///
    /// # Safety
    /// `block` must be the start of an RX block inside a live mapping.
    unsafe fn status_at<'m>(block: *const u8) -> &'m AtomicU32 {
        // SAFETY: the block start is page aligned, so `block + 8` is 4-byte
        // aligned; the word is inside the mapping (caller contract) and the
        // kernel accesses it concurrently only as a 32-bit word, which is what
        // AtomicU32 models.
        unsafe { AtomicU32::from_ptr(block.add(ffi::BLOCK_STATUS_OFFSET).cast::<u32>().cast_mut()) }
    }

    /// The next block's status word (Acquire), if user space owns the block.
    fn ready_status(&self) -> Option<u32> {
        // SAFETY: `next < block_count`, so the block is inside the mapping.
        let st = unsafe { Self::status_at(self.block(self.next)) }.load(Ordering::Acquire);
        (st & ffi::TP_STATUS_USER != 0).then_some(st)
    }

    fn ready(&self) -> bool {
        self.ready_status().is_some()
    }
}

#[derive(Debug)]
struct TxState {
    base: *mut u8,
    block_size: usize,
    frames_per_block: usize,
    frame_size: usize,
    frame_count: usize,
    head: usize,
    last: usize,
    pending: usize,
}

impl TxState {
    fn frame(&self, idx: usize) -> *mut u8 {
        let block = idx / self.frames_per_block;
        let slot = idx % self.frames_per_block;
        self.base.wrapping_add(block * self.block_size + slot * self.frame_size)
    }

    fn status(&self, idx: usize) -> &AtomicU32 {
        // SAFETY: callers pass idx < frame_count, so the frame lies inside the
        // TX part of the mapping, which lives as long as `self` is reachable
        // from its PacketSocket. Frames are 16-byte aligned, so `+20` is
        // 4-byte aligned; the kernel accesses tp_status as a 32-bit word.
        unsafe { AtomicU32::from_ptr(self.frame(idx).add(ffi::TP_STATUS_OFFSET).cast::<u32>()) }
    }

    fn max_payload(&self) -> usize {
        self.frame_size - ffi::TX_DATA_OFFSET
    }
}

/// One AF_PACKET socket bound to one interface, with a `TPACKET_V3` RX ring
/// and/or TX ring in one shared mapping. Closing (dropping) it unmaps the
/// rings, closes the socket, leaves the fanout group and drops promiscuous mode.
pub struct PacketSocket {
    rx: Option<RxState>,
    tx: Option<TxState>,
    map: Mapping,
    fd: OwnedFd,
    ifindex: u32,
    ifname: String,
    mtu: usize,
    poll_timeout: Duration,
    stats: SocketStats,
    counters: RingCounters,
}

// SAFETY: the raw pointers in `rx`/`tx` point into `map`, which the socket
// owns exclusively; nothing else in the process refers to the mapping, and
// every access goes through `&mut self` (or `&self` for atomics only), so
// moving the socket to another thread is sound. (Not `Sync`: by design one
// socket is driven by one thread.)
unsafe impl Send for PacketSocket {}

impl fmt::Debug for PacketSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketSocket")
            .field("fd", &self.fd.as_raw_fd())
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .field("rx", &self.rx.as_ref().map(|r| (r.block_count, r.block_size)))
            .field("tx", &self.tx.as_ref().map(|t| (t.frame_count, t.frame_size)))
            .field("mapping_len", &self.map.len)
            .field("memory_locked", &self.map.locked)
            .finish()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Wraps `err` with `context`, keeping its kind.
fn with_context(err: io::Error, context: impl fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{context}: {err}"))
}

fn last_error(context: impl fmt::Display) -> io::Error {
    with_context(io::Error::last_os_error(), context)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Checks one ring request against the kernel's `packet_set_ring` rules and
/// returns its `tpacket_req3` and byte size.
fn ring_request(
    what: &str,
    block_size: u32,
    block_count: u32,
    frame_size: u32,
    page: usize,
) -> io::Result<(TpacketReq3, usize)> {
    let bs = block_size as usize;
    if bs == 0 || bs % page != 0 || block_size > i32::MAX as u32 {
        return Err(invalid(format!(
            "{what} ring: block_size {block_size} must be a non-zero multiple of the page size ({page})"
        )));
    }
    if block_count == 0 {
        return Err(invalid(format!("{what} ring: block_count must be at least 1")));
    }
    let min_frame = ffi::tpacket_align(ffi::TPACKET3_HDRLEN);
    let fs = frame_size as usize;
    if fs < min_frame || fs % ffi::TPACKET_ALIGNMENT != 0 || fs > bs {
        return Err(invalid(format!(
            "{what} ring: frame_size {frame_size} must be a multiple of {} between {min_frame} and \
             block_size {block_size}",
            ffi::TPACKET_ALIGNMENT
        )));
    }
    let frames_per_block = block_size / frame_size;
    let frame_nr = frames_per_block
        .checked_mul(block_count)
        .ok_or_else(|| invalid(format!("{what} ring: too many frames")))?;
    let bytes = bs
        .checked_mul(block_count as usize)
        .filter(|&b| b <= u32::MAX as usize)
        .ok_or_else(|| invalid(format!("{what} ring: block_size * block_count exceeds 4 GiB")))?;
    let req = TpacketReq3 {
        tp_block_size: block_size,
        tp_block_nr: block_count,
        tp_frame_size: frame_size,
        tp_frame_nr: frame_nr,
        ..TpacketReq3::default()
    };
    Ok((req, bytes))
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, value: &T, what: impl fmt::Display) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised `T` and we pass its exact size;
    // the kernel only reads `size_of::<T>()` bytes from it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            ffi::SOL_PACKET,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error(what))
    }
}

fn if_index(ifname: &str) -> io::Result<u32> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(invalid(format!(
            "interface name `{ifname}` must be 1..{} bytes long",
            libc::IFNAMSIZ - 1
        )));
    }
    let c = CString::new(ifname)
        .map_err(|_| invalid(format!("interface name `{ifname:?}` contains a NUL byte")))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let err = io::Error::last_os_error();
        let kind =
            if err.raw_os_error() == Some(libc::ENODEV) { io::ErrorKind::NotFound } else { err.kind() };
        return Err(io::Error::new(
            kind,
            format!("interface `{ifname}` not found in this network namespace: {err}"),
        ));
    }
    Ok(idx)
}

fn interface_mtu(fd: RawFd, ifname: &str) -> io::Result<usize> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { MaybeUninit::zeroed().assume_init() };
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name (the name is
    // shorter than IFNAMSIZ and the rest is zero); SIOCGIFMTU writes ifru_mtu.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut req as *mut libc::ifreq) };
    if rc != 0 {
        return Err(last_error(format_args!("SIOCGIFMTU on `{ifname}`")));
    }
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote the mtu member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(0))
}

/// A fresh `AF_PACKET`/`SOCK_RAW` socket with protocol 0 (it receives nothing until bound).
fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("AF_PACKET socket needs CAP_NET_RAW (run as root or grant cap_net_raw): {err}"),
            ),
            Some(libc::EAFNOSUPPORT) => with_context(err, "the kernel has no AF_PACKET support"),
            _ => with_context(err, "socket(AF_PACKET, SOCK_RAW)"),
        });
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Binds a packet socket to `ifindex`, receiving `protocol` (host order; 0: nothing).
fn bind_packet(fd: RawFd, ifindex: u32, protocol: u16, ifname: &str) -> io::Result<()> {
    let mut sll: SockaddrLl = SockaddrLl {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex as libc::c_int,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a valid sockaddr_ll and we pass its exact size.
    let rc = unsafe {
        libc::bind(fd, (&mut sll as *mut SockaddrLl).cast(), size_of::<SockaddrLl>() as libc::socklen_t)
    };
    if rc != 0 {
        return Err(last_error(format_args!("bind AF_PACKET socket to `{ifname}` (ifindex {ifindex})")));
    }
    Ok(())
}

fn duration_to_poll_ms(d: Duration) -> libc::c_int {
    if d.is_zero() {
        return 0;
    }
    // Round up so a sub-millisecond wait still sleeps instead of spinning.
    let ms = d.as_micros().div_ceil(1000);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}

impl PacketSocket {
    /// Opens an AF_PACKET socket on `ifname` (in the calling thread's network
    /// namespace) with the rings and options in `cfg`.
    ///
    /// Errors carry context, e.g. `PermissionDenied` "AF_PACKET socket needs
    /// CAP_NET_RAW", `NotFound` for an unknown interface, `InvalidInput` for a
    /// ring geometry the kernel would reject.
    pub fn open(ifname: &str, cfg: &RingConfig) -> io::Result<PacketSocket> {
        let page = page_size();
        let rx_req = match &cfg.rx {
            Some(rx) => {
                let (mut req, bytes) =
                    ring_request("RX", rx.block_size, rx.block_count, rx.frame_size, page)?;
                req.tp_retire_blk_tov = rx.retire_timeout_ms;
                if rx.fill_rxhash {
                    req.tp_feature_req_word = ffi::TP_FT_REQ_FILL_RXHASH;
                }
                Some((req, bytes))
            }
            None => None,
        };
        let tx_req = match &cfg.tx {
            Some(tx) => Some(ring_request("TX", tx.block_size, tx.block_count, tx.frame_size, page)?),
            None => None,
        };
        if rx_req.is_none() && tx_req.is_none() {
            return Err(invalid("PacketSocket needs an RX ring, a TX ring or both".into()));
        }
        if cfg.fanout.is_some() && rx_req.is_none() {
            return Err(invalid("PACKET_FANOUT needs an RX ring".into()));
        }
        let rx_bytes = rx_req.map_or(0, |(_, b)| b);
        let tx_bytes = tx_req.map_or(0, |(_, b)| b);
        let total = rx_bytes + tx_bytes;
        let ifindex = if_index(ifname)?;

        // Protocol 0: receive nothing until bind() names the interface, so no
        // frame from another interface can land in the ring in between.
        let fd = packet_socket()?;
        let sfd = fd.as_raw_fd();

        setsockopt(sfd, ffi::PACKET_VERSION, &ffi::TPACKET_V3, "PACKET_VERSION=TPACKET_V3")?;
        if tx_req.is_some() {
            // Without PACKET_LOSS a malformed TX frame stalls the ring in
            // WRONG_FORMAT; with it the kernel skips the frame.
            setsockopt(sfd, ffi::PACKET_LOSS, &1 as &libc::c_int, "PACKET_LOSS")?;
        }
        if let Some((req, bytes)) = &rx_req {
            setsockopt(sfd, ffi::PACKET_RX_RING, req, format_args!("PACKET_RX_RING ({bytes} bytes)"))
                .map_err(ring_hint)?;
        }
        if let Some((req, bytes)) = &tx_req {
            setsockopt(sfd, ffi::PACKET_TX_RING, req, format_args!("PACKET_TX_RING ({bytes} bytes)"))
                .map_err(ring_hint)?;
        }
        let map = map_rings(sfd, total)?;

        // A TX-only socket binds with protocol 0 so it installs no receive
        // hook (it would otherwise queue copies of every frame).
        bind_packet(sfd, ifindex, if rx_req.is_some() { ffi::ETH_P_ALL } else { 0 }, ifname)?;

        if cfg.qdisc_bypass {
            setsockopt(sfd, ffi::PACKET_QDISC_BYPASS, &1 as &libc::c_int, "PACKET_QDISC_BYPASS")?;
        }
        if cfg.ignore_outgoing {
            setsockopt(sfd, ffi::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int, "PACKET_IGNORE_OUTGOING")?;
        }
        if cfg.promiscuous {
            let mreq = PacketMreq {
                mr_ifindex: ifindex as libc::c_int,
                mr_type: ffi::PACKET_MR_PROMISC,
                ..PacketMreq::default()
            };
            setsockopt(
                sfd,
                ffi::PACKET_ADD_MEMBERSHIP,
                &mreq,
                format_args!("PACKET_ADD_MEMBERSHIP(PROMISC) on `{ifname}`"),
            )?;
        }
        if let Some(fanout) = &cfg.fanout {
            // Must come after bind(): the kernel only accepts running sockets.
            let arg = fanout.arg();
            setsockopt(
                sfd,
                ffi::PACKET_FANOUT,
                &arg,
                format_args!("PACKET_FANOUT group {}", fanout.group_id),
            )
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) => {
                    with_context(e, "(an existing group with this id uses another mode, flags or interface)")
                }
                _ => e,
            })?;
        }
        let mtu = interface_mtu(sfd, ifname)?;

        let base = map.ptr.as_ptr();
        let rx = rx_req.map(|(req, _)| RxState {
            base,
            block_size: req.tp_block_size as usize,
            block_count: req.tp_block_nr as usize,
            next: 0,
        });
        let tx = tx_req.map(|(req, _)| {
            let frames_per_block = (req.tp_block_size / req.tp_frame_size) as usize;
            TxState {
                // TX starts right after the RX ring (kernel rule).
                base: base.wrapping_add(rx_bytes),
                block_size: req.tp_block_size as usize,
                frames_per_block,
                frame_size: req.tp_frame_size as usize,
                frame_count: req.tp_frame_nr as usize,
                head: 0,
                last: 0,
                pending: 0,
            }
        });
        Ok(PacketSocket {
            rx,
            tx,
            map,
            fd,
            ifindex,
            ifname: ifname.to_owned(),
            mtu,
            poll_timeout: cfg.poll_timeout,
            stats: SocketStats::default(),
            counters: RingCounters::default(),
        })
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface MTU read at open time.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Whether the ring memory is locked (`MAP_LOCKED` succeeded).
    pub fn is_memory_locked(&self) -> bool {
        self.map.locked
    }

    /// Size of the shared mapping in bytes (RX + TX).
    pub fn mapping_len(&self) -> usize {
        self.map.len
    }

    /// The timeout the [`FrameIo`] methods use.
    pub fn poll_timeout(&self) -> Duration {
        self.poll_timeout
    }

    /// Changes the timeout the [`FrameIo`] methods use.
    pub fn set_poll_timeout(&mut self, timeout: Duration) {
        self.poll_timeout = timeout;
    }

    /// User-space ring counters.
    pub fn counters(&self) -> RingCounters {
        self.counters
    }

    /// Kernel socket statistics, accumulated since open (one `getsockopt`).
    pub fn stats(&mut self) -> io::Result<SocketStats> {
        let mut st = TpacketStatsV3::default();
        let mut len = size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st` is a writable TpacketStatsV3 and `len` its size; the
        // kernel writes at most `len` bytes and updates `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                ffi::SOL_PACKET,
                ffi::PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(last_error("getsockopt(PACKET_STATISTICS)"));
        }
        self.stats.packets += u64::from(st.tp_packets);
        self.stats.drops += u64::from(st.tp_drops);
        self.stats.freeze_q_cnt += u64::from(st.tp_freeze_q_cnt);
        Ok(self.stats)
    }

    // ---------------------------------------------------------------- RX

    fn rx_state(&self) -> io::Result<&RxState> {
        self.rx.as_ref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, format!("socket on `{}` has no RX ring", self.ifname))
        })
    }

    /// Waits up to `timeout` for the next RX block (`Duration::ZERO`: just
    /// check, no system call). The block goes back to the kernel when the
    /// returned guard is dropped; blocks are consumed strictly in ring order.
    ///
    /// A pending socket error is returned (once) while waiting, e.g.
    /// `ENETDOWN` when the interface goes down, or was down at bind time.
    pub fn next_block(&mut self, timeout: Duration) -> io::Result<Option<RxBlock<'_>>> {
        if !self.rx_state()?.ready() && !self.wait_rx(timeout)? {
            return Ok(None);
        }
        let Some(rx) = self.rx.as_mut() else {
            return Ok(None);
        };
        let Some(status) = rx.ready_status() else {
            return Ok(None);
        };
        let block = rx.block(rx.next).cast_const();
        // SAFETY: `block` is block `rx.next` (< block_count) of the live RX
        // ring, and we just observed TP_STATUS_USER with Acquire, so the
        // kernel finished writing the block and will not touch it until we
        // store TP_STATUS_KERNEL. The block header is 8-byte aligned (page
        // aligned block start); the status word itself is only accessed
        // atomically, the other header fields are plain reads.
        let (num_pkts, first, seq) = unsafe {
            let h = block.add(core::mem::offset_of!(ffi::TpacketBlockDesc, hdr)).cast::<ffi::TpacketHdrV1>();
            (
                ptr::addr_of!((*h).num_pkts).read(),
                ptr::addr_of!((*h).offset_to_first_pkt).read(),
                ptr::addr_of!((*h).seq_num).read(),
            )
        };
        Ok(Some(RxBlock { rx, counters: &mut self.counters, block, status, num_pkts, first, seq }))
    }

    /// Waits up to `timeout` for received frames, then calls `f` for every
    /// frame of every ready block (at most one full ring per call) and returns
    /// them to the kernel. Returns the number of frames.
    pub fn recv_frames(&mut self, timeout: Duration, mut f: impl FnMut(&RxFrame<'_>)) -> io::Result<usize> {
        let blocks = self.rx_state()?.block_count;
        let mut n = 0usize;
        let mut wait = timeout;
        for _ in 0..blocks {
            let Some(block) = self.next_block(wait)? else {
                break;
            };
            wait = Duration::ZERO;
            let mut walked = 0u32;
            for frame in block.frames() {
                f(&frame);
                walked += 1;
            }
            let short = walked < block.num_pkts;
            drop(block);
            if short {
                self.counters.rx_malformed_blocks += 1;
            }
            n += walked as usize;
        }
        self.counters.rx_frames += n as u64;
        Ok(n)
    }

    /// Like [`recv_frames`](Self::recv_frames), handing out only the bytes.
    pub fn recv(&mut self, timeout: Duration, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        self.recv_frames(timeout, |fr| f(fr.data))
    }

    /// Polls until the next RX block is ready or `timeout` passes.
    fn wait_rx(&mut self, timeout: Duration) -> io::Result<bool> {
        if timeout.is_zero() {
            return Ok(false);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(self.rx_state()?.ready());
            }
            self.poll_once(libc::POLLIN, left)?;
            if self.rx_state()?.ready() {
                return Ok(true);
            }
        }
    }

    /// One `poll()`; reports socket errors (e.g. the interface went away).
    fn poll_once(&mut self, events: libc::c_short, timeout: Duration) -> io::Result<libc::c_short> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: `pfd` is one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, duration_to_poll_ms(timeout)) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(with_context(err, format_args!("poll on AF_PACKET socket `{}`", self.ifname)));
        }
        if pfd.revents & libc::POLLNVAL != 0 {
            return Err(io::Error::other(format!("poll: AF_PACKET socket `{}` is not open", self.ifname)));
        }
        if pfd.revents & libc::POLLERR != 0 {
            if let Some(err) = self.take_socket_error()? {
                return Err(with_context(err, format_args!("AF_PACKET socket on `{}`", self.ifname)));
            }
        }
        Ok(pfd.revents)
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it: `ENETDOWN` when the
    /// interface went down or away.
    pub fn take_socket_error(&self) -> io::Result<Option<io::Error>> {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` is a writable int and `len` its size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(last_error("getsockopt(SO_ERROR)"));
        }
        Ok((v != 0).then(|| io::Error::from_raw_os_error(v)))
    }

    // ---------------------------------------------------------------- TX

    fn tx_state(&self) -> io::Result<&TxState> {
        self.tx.as_ref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, format!("socket on `{}` has no TX ring", self.ifname))
        })
    }

    /// Number of TX slots.
    pub fn tx_capacity(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.frame_count)
    }

    /// Frames queued since the last kick that the kernel has not taken yet.
    pub fn tx_pending(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.pending)
    }

    /// The largest frame [`try_send`](Self::try_send) accepts: the slot size
    /// minus the 48-byte header, capped at MTU + Ethernet header + one VLAN
    /// tag (the kernel drops longer frames; untagged frames longer than
    /// MTU + 14 are rejected too).
    pub fn max_frame_len(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.max_payload().min(self.mtu + ffi::ETH_HLEN + ffi::VLAN_HLEN))
    }

    fn check_frame_len(&self, tx: &TxState, frame: &[u8]) -> io::Result<()> {
        let len = frame.len();
        let tagged = matches!(frame.get(12..14), Some([0x81, 0x00]) | Some([0x88, 0xa8]));
        let link_max = self.mtu + ffi::ETH_HLEN + if tagged { ffi::VLAN_HLEN } else { 0 };
        let max = tx.max_payload().min(link_max);
        if len < ffi::ETH_HLEN || len > max {
            return Err(invalid(format!(
                "frame of {len} bytes does not fit: `{}` takes {}..={max} bytes (TX slot payload {}, MTU {})",
                self.ifname,
                ffi::ETH_HLEN,
                tx.max_payload(),
                self.mtu
            )));
        }
        Ok(())
    }

    /// Copies `frame` into the next TX slot and marks it `SEND_REQUEST`; no
    /// system call. Returns `Ok(false)` if the slot is still in use (ring
    /// full: [`flush`](Self::flush) and retry, or use [`send_wait`](Self::send_wait)).
    /// The frame goes out at the next [`flush`](Self::flush).
    pub fn try_send(&mut self, frame: &[u8]) -> io::Result<bool> {
        let tx = self.tx_state()?;
        self.check_frame_len(tx, frame)?;
        self.try_send_with(frame.len(), |slot| slot.copy_from_slice(frame))
    }

    /// Like [`try_send`](Self::try_send), but lends the slot's `len` bytes to
    /// `fill`, which must write the whole frame: a forwarder rewrites a
    /// received frame straight into the TX ring with a single copy. `fill` is
    /// not called when the ring is full (`Ok(false)`). A frame that turns out
    /// too long for the link (a VLAN tag is only known after `fill`) is not
    /// sent and reported as an error.
    pub fn try_send_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<bool> {
        let tx = self.tx_state()?;
        let max = tx.max_payload().min(self.mtu + ffi::ETH_HLEN + ffi::VLAN_HLEN);
        if len < ffi::ETH_HLEN || len > max {
            return Err(invalid(format!(
                "frame of {len} bytes does not fit: `{}` takes {}..={max} bytes (TX slot payload {}, MTU {})",
                self.ifname,
                ffi::ETH_HLEN,
                tx.max_payload(),
                self.mtu
            )));
        }
        let Some(tx) = self.tx.as_mut() else {
            return Ok(false);
        };
        let idx = tx.head;
        let status = tx.status(idx);
        let st = status.load(Ordering::Acquire);
        if st & (ffi::TP_STATUS_SEND_REQUEST | ffi::TP_STATUS_SENDING) != 0 {
            self.counters.tx_ring_full += 1;
            return Ok(false);
        }
        let p = tx.frame(idx);
        // SAFETY: slot `idx` (< frame_count) lies in the TX part of the live
        // mapping; its status is AVAILABLE (or WRONG_FORMAT), observed with
        // Acquire, so the kernel neither reads nor writes the slot until we
        // publish SEND_REQUEST below, and nothing else in this process holds
        // a reference to it (`&mut self`). `len <= frame_size - 48` was
        // checked, so the slice stays inside the slot.
        let data = unsafe { std::slice::from_raw_parts_mut(p.add(ffi::TX_DATA_OFFSET), len) };
        fill(data);
        let tagged = matches!(data.get(12..14), Some([0x81, 0x00]) | Some([0x88, 0xa8]));
        if !tagged && len > self.mtu + ffi::ETH_HLEN {
            // Not published: the slot stays AVAILABLE for the next frame.
            return Err(invalid(format!(
                "frame of {len} bytes exceeds the MTU {} of `{}`",
                self.mtu, self.ifname
            )));
        }
        // SAFETY: as above; the header is written through field pointers of a
        // 16-byte-aligned tpacket3_hdr at the start of the slot.
        unsafe {
            let h = p.cast::<Tpacket3Hdr>();
            ptr::addr_of_mut!((*h).tp_next_offset).write(0);
            ptr::addr_of_mut!((*h).tp_len).write(len as u32);
            ptr::addr_of_mut!((*h).tp_snaplen).write(len as u32);
        }
        // Release: the bytes and header above are visible before the kernel
        // can observe SEND_REQUEST.
        status.store(ffi::TP_STATUS_SEND_REQUEST, Ordering::Release);
        tx.last = idx;
        tx.head = (idx + 1) % tx.frame_count;
        tx.pending += 1;
        self.counters.tx_frames += 1;
        Ok(true)
    }

    /// Kicks the kernel to transmit all `SEND_REQUEST` slots: one
    /// `send(fd, NULL, 0, MSG_DONTWAIT)` if anything is pending. Transient
    /// back-pressure (`EAGAIN`, `ENOBUFS`) is not an error: the frames stay
    /// queued and the next flush retries them.
    pub fn flush(&mut self) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        let Some(tx) = self.tx.as_mut() else {
            return Ok(());
        };
        if tx.pending == 0 {
            return Ok(());
        }
        // SAFETY: a NULL buffer of length 0 is what the TX ring protocol
        // asks for; the kernel reads the frames from the ring.
        let rc = unsafe { libc::send(fd, ptr::null(), 0, libc::MSG_DONTWAIT) };
        self.counters.tx_kicks += 1;
        if rc < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {}
                Some(libc::ENXIO) | Some(libc::ENETDOWN) => {
                    return Err(with_context(
                        err,
                        format_args!("TX kick on `{}` (is the interface up?)", self.ifname),
                    ))
                }
                _ => return Err(with_context(err, format_args!("TX kick on `{}`", self.ifname))),
            }
        }
        // The kernel sends slots in ring order, so once the newest queued slot
        // has left SEND_REQUEST all earlier ones have too. If it has not (the
        // socket's send buffer was exhausted), keep `pending` for a retry.
        if tx.status(tx.last).load(Ordering::Acquire) & ffi::TP_STATUS_SEND_REQUEST == 0 {
            tx.pending = 0;
        }
        Ok(())
    }

    /// [`try_send`](Self::try_send); if the ring is full, flushes and polls
    /// for a free slot for up to `timeout`. `Ok(false)`: still full.
    pub fn send_wait(&mut self, frame: &[u8], timeout: Duration) -> io::Result<bool> {
        if self.try_send(frame)? {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.flush()?;
            if self.try_send(frame)? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let revents = self.poll_once(libc::POLLOUT, left.min(Duration::from_millis(10)))?;
            if revents & libc::POLLOUT != 0 && self.try_send(frame)? {
                return Ok(true);
            }
            if revents != 0 {
                // POLLOUT also reflects free socket buffer space, not only the
                // ring slot: back off briefly instead of spinning.
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Flushes and waits up to `timeout` until the kernel has released every
    /// TX slot (all queued frames left the ring). Slow path: scans the ring.
    pub fn wait_tx_complete(&mut self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            self.flush()?;
            let tx = self.tx_state()?;
            let busy = (0..tx.frame_count).any(|i| {
                tx.status(i).load(Ordering::Acquire) & (ffi::TP_STATUS_SEND_REQUEST | ffi::TP_STATUS_SENDING)
                    != 0
            });
            if !busy {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // Best effort: hand queued frames to the kernel before closing.
        let _ = self.flush();
    }
}

impl FrameIo for PacketSocket {
    /// Waits up to the configured poll timeout.
    fn recv_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        self.recv(self.poll_timeout, f)
    }

    /// Waits up to the configured poll timeout for a free slot.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.send_wait(frame, self.poll_timeout)
    }

    fn flush(&mut self) -> io::Result<()> {
        PacketSocket::flush(self)
    }
}

/// Which slots of a [`PacketSender`] hold frames not yet handed to the kernel: `start..len`
/// of `cap`. Slots are filled in order and only reused once the whole batch has gone out,
/// so a partly sent batch keeps its order and no frame moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SendQueue {
    start: usize,
    len: usize,
    cap: usize,
}

impl SendQueue {
    fn new(cap: usize) -> Self {
        Self { start: 0, len: 0, cap }
    }

    /// The slot the next frame goes to, if any is free.
    fn free_slot(&self) -> Option<usize> {
        (self.len < self.cap).then_some(self.len)
    }

    /// The slot returned by [`free_slot`](Self::free_slot) now holds a frame.
    fn push(&mut self) {
        self.len = (self.len + 1).min(self.cap);
    }

    fn pending(&self) -> std::ops::Range<usize> {
        self.start..self.len
    }

    /// The kernel took the first `n` pending frames (or they were given up).
    fn consumed(&mut self, n: usize) {
        self.start = (self.start + n).min(self.len);
        if self.start == self.len {
            self.start = 0;
            self.len = 0;
        }
    }
}

/// Counters of a [`PacketSender`] (no system calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderCounters {
    /// Frames queued.
    pub frames: u64,
    /// `sendmmsg` calls.
    pub kicks: u64,
    /// Times no slot was free.
    pub full: u64,
    /// Frames given up because the kernel refused them with a hard error.
    pub errors: u64,
}

/// Largest batch one `sendmmsg` takes (`UIO_MAXIOV`).
const MAX_BATCH: usize = 1024;

/// A TX-only `AF_PACKET` socket that sends from private memory: frames are written into
/// fixed slots and handed to the kernel with one `sendmmsg` per [`flush`](Self::flush).
///
/// Why not the TX ring: the kernel builds a ring frame's skb from page fragments of the
/// ring, and a veth (any device that loops the skb into a receive path) must then copy
/// those into a freshly allocated page per packet (`skb_copy_ubufs`). A frame from
/// `sendmsg` becomes one small linear skb instead, which costs less per packet; the
/// batching keeps it at one system call per batch either way.
pub struct PacketSender {
    fd: OwnedFd,
    ifname: String,
    ifindex: u32,
    mtu: usize,
    slot_size: usize,
    slots: Vec<u8>,
    lens: Vec<usize>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    queue: SendQueue,
    counters: SenderCounters,
}

// SAFETY: the raw pointers in `iov`/`msgs` are scratch space, rewritten from `slots` (owned by
// the sender) on every flush and never dereferenced outside it; all access goes through
// `&mut self`, so moving the sender to another thread is sound.
unsafe impl Send for PacketSender {}

impl fmt::Debug for PacketSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketSender")
            .field("fd", &self.fd.as_raw_fd())
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .field("slots", &self.queue.cap)
            .field("slot_size", &self.slot_size)
            .field("pending", &self.queue.pending().len())
            .finish()
    }
}

impl PacketSender {
    /// Opens a sender on `ifname` with `slots` frame slots of `slot_size` bytes, bypassing
    /// the qdisc layer if `qdisc_bypass`.
    pub fn open(ifname: &str, slots: usize, slot_size: usize, qdisc_bypass: bool) -> io::Result<Self> {
        if slots == 0 || slot_size < ffi::ETH_HLEN {
            return Err(invalid(format!(
                "PacketSender needs at least one slot of at least {} bytes (got {slots} x {slot_size})",
                ffi::ETH_HLEN
            )));
        }
        let bytes = slots.checked_mul(slot_size).filter(|&b| b <= 1 << 30).ok_or_else(|| {
            invalid(format!("PacketSender: {slots} slots of {slot_size} bytes exceed 1 GiB"))
        })?;
        let ifindex = if_index(ifname)?;
        let fd = packet_socket()?;
        let sfd = fd.as_raw_fd();
        bind_packet(sfd, ifindex, 0, ifname)?;
        if qdisc_bypass {
            setsockopt(sfd, ffi::PACKET_QDISC_BYPASS, &1 as &libc::c_int, "PACKET_QDISC_BYPASS")?;
        }
        // Room for a whole batch in flight on devices that hold skbs until TX completion;
        // FORCE needs CAP_NET_ADMIN, the plain option is capped by wmem_max.
        let sndbuf = libc::c_int::try_from(bytes.saturating_mul(2)).unwrap_or(libc::c_int::MAX);
        if sol_socket_int(sfd, libc::SO_SNDBUFFORCE, sndbuf).is_err() {
            let _ = sol_socket_int(sfd, libc::SO_SNDBUF, sndbuf);
        }
        let mtu = interface_mtu(sfd, ifname)?;
        // SAFETY: iovec and mmsghdr are plain old data; all-zero (null pointers) is valid.
        let zero_iov: libc::iovec = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: as above.
        let zero_msg: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        let batch = slots.min(MAX_BATCH);
        Ok(Self {
            fd,
            ifname: ifname.to_owned(),
            ifindex,
            mtu,
            slot_size,
            slots: vec![0; bytes],
            lens: vec![0; slots],
            iov: vec![zero_iov; batch],
            msgs: vec![zero_msg; batch],
            queue: SendQueue::new(slots),
            counters: SenderCounters::default(),
        })
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Counters.
    pub fn counters(&self) -> SenderCounters {
        self.counters
    }

    /// Frames queued and not yet taken by the kernel.
    pub fn pending(&self) -> usize {
        self.queue.pending().len()
    }

    /// The largest frame accepted: the slot size, capped at MTU + Ethernet header + one VLAN tag.
    pub fn max_frame_len(&self) -> usize {
        self.slot_size.min(self.mtu + ffi::ETH_HLEN + ffi::VLAN_HLEN)
    }

    /// Lends the next free slot's `len` bytes to `fill`, which must write the whole frame;
    /// no system call. `Ok(false)`: no slot is free ([`flush`](Self::flush) and retry; `fill`
    /// is not called). A frame too long for the link is an error and is not queued.
    pub fn try_send_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<bool> {
        let max = self.max_frame_len();
        if len < ffi::ETH_HLEN || len > max {
            return Err(invalid(format!(
                "frame of {len} bytes does not fit: `{}` takes {}..={max} bytes (slot {}, MTU {})",
                self.ifname,
                ffi::ETH_HLEN,
                self.slot_size,
                self.mtu
            )));
        }
        let Some(slot) = self.queue.free_slot() else {
            self.counters.full += 1;
            return Ok(false);
        };
        let off = slot * self.slot_size;
        let Some(data) = self.slots.get_mut(off..off + len) else {
            return Ok(false);
        };
        fill(data);
        let tagged = matches!(data.get(12..14), Some([0x81, 0x00]) | Some([0x88, 0xa8]));
        if !tagged && len > self.mtu + ffi::ETH_HLEN {
            return Err(invalid(format!(
                "frame of {len} bytes exceeds the MTU {} of `{}`",
                self.mtu, self.ifname
            )));
        }
        if let Some(l) = self.lens.get_mut(slot) {
            *l = len;
        }
        self.queue.push();
        self.counters.frames += 1;
        Ok(true)
    }

    /// Copies `frame` into the next free slot (see [`try_send_with`](Self::try_send_with)).
    pub fn try_send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.try_send_with(frame.len(), |slot| slot.copy_from_slice(frame))
    }

    /// Hands every queued frame to the kernel: one `sendmmsg(MSG_DONTWAIT)` per up to 1024
    /// frames, none if nothing is queued. Back-pressure (`EAGAIN`, `ENOBUFS`) keeps the rest
    /// queued for the next flush; a frame the kernel refuses otherwise is given up (counted
    /// in `errors`) and the error returned, so one bad frame never stalls the queue.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.queue.pending().is_empty() {
            let pending = self.queue.pending();
            let n = pending.len().min(self.iov.len());
            for (i, slot) in pending.take(n).enumerate() {
                let (Some(iov), Some(msg), Some(&len)) =
                    (self.iov.get_mut(i), self.msgs.get_mut(i), self.lens.get(slot))
                else {
                    return Ok(());
                };
                iov.iov_base = self.slots.as_mut_ptr().wrapping_add(slot * self.slot_size).cast();
                iov.iov_len = len;
                msg.msg_hdr.msg_iov = iov;
                msg.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: `msgs[..n]` are valid mmsghdr (no name, no control data) whose single
            // iovec each points at `len` initialised bytes of `slots`, which outlives the
            // call; the kernel only reads them (and writes `msg_len`).
            let rc = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    self.msgs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            self.counters.kicks += 1;
            if rc < 0 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => Ok(()),
                    _ => {
                        // The first frame was refused: drop it so the others can go.
                        self.queue.consumed(1);
                        self.counters.errors += 1;
                        Err(with_context(err, format_args!("send on `{}`", self.ifname)))
                    }
                };
            }
            let sent = usize::try_from(rc).unwrap_or(0);
            self.queue.consumed(sent);
            if sent < n {
                // The kernel stopped early (e.g. send buffer full): retry at the next flush.
                return Ok(());
            }
        }
        Ok(())
    }
}

impl Drop for PacketSender {
    fn drop(&mut self) {
        // Best effort: hand queued frames to the kernel before closing.
        let _ = self.flush();
    }
}

fn sol_socket_int(fd: RawFd, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live int and we pass its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error(format_args!("setsockopt(SOL_SOCKET, {name})")))
    }
}

fn ring_hint(err: io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(libc::EINVAL) => with_context(err, "ring geometry rejected by the kernel"),
        Some(libc::ENOMEM) => with_context(err, "not enough memory for the ring (smaller blocks?)"),
        Some(libc::EBUSY) => with_context(err, "ring already set up"),
        _ => err,
    }
}

fn map_rings(fd: RawFd, len: usize) -> io::Result<Mapping> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let base_flags = libc::MAP_SHARED | libc::MAP_POPULATE;
    let mut locked = true;
    // SAFETY: a fresh shared mapping of the socket's rings; the kernel checks
    // that `len` equals the ring size. No existing memory is affected.
    let mut p = unsafe { libc::mmap(ptr::null_mut(), len, prot, base_flags | libc::MAP_LOCKED, fd, 0) };
    if p == libc::MAP_FAILED {
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // No CAP_IPC_LOCK / RLIMIT_MEMLOCK too small: map unlocked.
            Some(libc::EPERM) | Some(libc::EAGAIN) | Some(libc::ENOMEM) => {
                locked = false;
                // SAFETY: as above, without MAP_LOCKED.
                p = unsafe { libc::mmap(ptr::null_mut(), len, prot, base_flags, fd, 0) };
                if p == libc::MAP_FAILED {
                    return Err(last_error(format_args!("mmap of {len}-byte packet ring")));
                }
            }
            _ => return Err(with_context(err, format_args!("mmap of {len}-byte packet ring"))),
        }
    }
    let ptr = NonNull::new(p.cast::<u8>())
        .ok_or_else(|| io::Error::other("mmap of packet ring returned a null address"))?;
    Ok(Mapping { ptr, len, locked })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_request_follows_kernel_rules() {
        let (req, bytes) = ring_request("RX", 1 << 16, 4, 2048, 4096).unwrap();
        assert_eq!(req.tp_frame_nr, 32 * 4);
        assert_eq!(bytes, 1 << 18);
        assert_eq!(req.tp_retire_blk_tov, 0);
        assert!(ring_request("RX", 1000, 4, 2048, 4096).is_err(), "not page aligned");
        assert!(ring_request("RX", 4096, 0, 2048, 4096).is_err(), "no blocks");
        assert!(ring_request("RX", 4096, 4, 2047, 4096).is_err(), "frame not 16-aligned");
        assert!(ring_request("RX", 4096, 4, 64, 4096).is_err(), "frame below header size");
        assert!(ring_request("RX", 4096, 4, 8192, 4096).is_err(), "frame larger than block");
        let e = ring_request("TX", 1 << 30, 8, 2048, 4096).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("4 GiB"), "{e}");
    }

    #[test]
    fn fanout_config_encoding() {
        assert_eq!(Fanout::hash(0x42).arg(), 0x0000_0042);
        assert_eq!(Fanout::with_mode(3, FanoutMode::LoadBalance).arg(), 0x0001_0003);
        let f = Fanout { group_id: 9, mode: FanoutMode::Cpu, defrag: true, rollover: true };
        assert_eq!(f.arg(), 0x9002_0009);
    }

    #[test]
    fn poll_timeout_rounds_up() {
        assert_eq!(duration_to_poll_ms(Duration::ZERO), 0);
        assert_eq!(duration_to_poll_ms(Duration::from_micros(1)), 1);
        assert_eq!(duration_to_poll_ms(Duration::from_millis(250)), 250);
        assert_eq!(duration_to_poll_ms(Duration::from_secs(u64::MAX)), libc::c_int::MAX);
    }

    #[test]
    fn open_rejects_bad_config_before_any_syscall() {
        let cfg = RingConfig { rx: None, tx: None, ..RingConfig::default() };
        assert_eq!(PacketSocket::open("lo", &cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let cfg = RingConfig { fanout: Some(Fanout::hash(1)), ..RingConfig::tx_only() };
        assert_eq!(PacketSocket::open("lo", &cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let e = PacketSocket::open("this-name-is-far-too-long", &RingConfig::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = PacketSocket::open("lvsnosuchif0", &RingConfig::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("lvsnosuchif0"), "{e}");
    }

    #[test]
    fn send_queue_keeps_order_across_partial_sends() {
        let mut q = SendQueue::new(3);
        assert_eq!(q.pending(), 0..0);
        for want in 0..3 {
            assert_eq!(q.free_slot(), Some(want));
            q.push();
        }
        assert_eq!(q.free_slot(), None, "full");
        q.push();
        assert_eq!(q.pending(), 0..3, "a push on a full queue changes nothing");
        q.consumed(2);
        assert_eq!(q.pending(), 2..3, "the unsent frame stays, in its slot");
        assert_eq!(q.free_slot(), None, "slots are reused only after the whole batch went out");
        q.consumed(1);
        assert_eq!(q.pending(), 0..0);
        assert_eq!(q.free_slot(), Some(0), "an empty queue starts over at slot 0");
        q.push();
        q.consumed(5);
        assert_eq!((q.pending(), q.free_slot()), (0..0, Some(0)), "consuming more than queued clamps");
    }

    #[test]
    fn sender_rejects_bad_geometry_before_any_syscall() {
        assert_eq!(PacketSender::open("lo", 0, 2048, false).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(PacketSender::open("lo", 4, 8, false).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let e = PacketSender::open("lo", 1 << 20, 1 << 20, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = PacketSender::open("lvsnosuchif0", 4, 2048, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    }
}
