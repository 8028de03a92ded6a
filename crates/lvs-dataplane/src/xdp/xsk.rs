//! One AF_XDP socket: its UMEM (frames in this process's memory that the kernel reads and
//! writes), the four rings, and the split into an RX half (fill + RX rings, the RX frames) and a
//! TX half (TX + completion rings, the TX frames), so the engine reads a received frame while it
//! writes its output into a TX frame of the same UMEM.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Geometry of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// UMEM chunk size: 2048 or 4096 (a frame and the kernel's 256-byte XDP headroom must fit).
    pub frame_size: u32,
    /// Frames for receiving (also the fill and RX ring sizes); a power of two.
    pub rx_frames: u32,
    /// Frames for transmitting (also the TX and completion ring sizes); a power of two.
    pub tx_frames: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig { frame_size: 2048, rx_frames: 2048, tx_frames: 2048 }
    }
}

impl XskConfig {
    /// This geometry, with 4096-byte frames if a frame of `mtu` (plus Ethernet and VLAN headers
    /// and the kernel's headroom) does not fit the configured size; an error if none fits.
    pub fn fitting_mtu(self, mtu: u32) -> io::Result<XskConfig> {
        let need = mtu + 18 + XDP_PACKET_HEADROOM;
        match [self.frame_size, 4096].into_iter().find(|&s| s >= need) {
            Some(frame_size) => Ok(XskConfig { frame_size, ..self }),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "XDP: an MTU of {mtu} does not fit a 4096-byte AF_XDP frame (at most {})",
                    4096 - 18 - XDP_PACKET_HEADROOM
                ),
            )),
        }
    }
}

/// Headroom the kernel keeps in front of a received frame (`XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: u32 = 256;
/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17): frames one `sendto` may send in copy mode (default 32).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// An anonymous mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; which thread touches which part is governed by the ring
// protocol (RX half: RX frames, TX half: TX frames), never by the mapping itself.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize, fd: RawFd, offset: u64, what: &str) -> io::Result<Mapping> {
        let (flags, fd) = if fd < 0 {
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE, -1)
        } else {
            (libc::MAP_SHARED | libc::MAP_POPULATE, fd)
        };
        // SAFETY: a fresh mapping at an address of the kernel's choice; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("AF_XDP: mapping the {what}: {e}")));
        }
        Ok(Mapping { ptr: ptr.cast(), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and nothing uses after drop.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The state shared by the two halves: the socket (closed last) and the UMEM.
#[derive(Debug)]
struct Shared {
    umem: Mapping,
    fd: OwnedFd,
}

/// One ring: producer / consumer indices and descriptors in a mapping shared with the kernel.
#[derive(Debug)]
struct Ring {
    map: Mapping,
    producer: usize,
    consumer: usize,
    flags: usize,
    desc: usize,
    mask: u32,
    size: u32,
    /// Our copy of the index we advance (producer of fill/TX, consumer of RX/completion).
    cached: u32,
}

impl Ring {
    /// Maps a ring; `consumer` for the rings this process reads (RX, completion).
    fn open(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        (size, entry): (u32, usize),
        pgoff: u64,
        consumer: bool,
        what: &str,
    ) -> io::Result<Ring> {
        let len = off.desc as usize + size as usize * entry;
        let map = Mapping::new(len, fd, pgoff, what)?;
        let mut r = Ring {
            map,
            producer: off.producer as usize,
            consumer: off.consumer as usize,
            flags: off.flags as usize,
            desc: off.desc as usize,
            mask: size - 1,
            size,
            cached: 0,
        };
        r.cached = if consumer {
            r.index(r.consumer).load(Ordering::Relaxed)
        } else {
            r.index(r.producer).load(Ordering::Relaxed)
        };
        Ok(r)
    }

    fn index(&self, off: usize) -> &AtomicU32 {
        // SAFETY: the kernel's offsets point at 4-byte aligned u32 indices inside the mapping,
        // which lives as long as `self`; they are only accessed atomically.
        unsafe { &*(self.map.ptr.add(off) as *const AtomicU32) }
    }

    fn needs_wakeup(&self) -> bool {
        self.index(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries a consumer may read.
    fn available(&self) -> u32 {
        self.index(self.producer).load(Ordering::Acquire).wrapping_sub(self.cached)
    }

    /// Entries a producer may write.
    fn free(&self) -> u32 {
        self.size - self.cached.wrapping_sub(self.index(self.consumer).load(Ordering::Acquire))
    }

    fn slot<T>(&self, i: u32) -> *mut T {
        // SAFETY: `i & mask` < size, and the mapping holds `size` entries of T after `desc`.
        unsafe { self.map.ptr.add(self.desc).cast::<T>().add((i & self.mask) as usize) }
    }

    fn read<T: Copy>(&self, i: u32) -> T {
        // SAFETY: `slot` is in bounds; the kernel published this entry (Acquire on the producer).
        unsafe { self.slot::<T>(i).read_volatile() }
    }

    fn write<T>(&mut self, i: u32, v: T) {
        // SAFETY: `slot` is in bounds; the entry is ours until the producer index moves past it.
        unsafe { self.slot::<T>(i).write_volatile(v) }
    }

    /// Publishes what the producer wrote, or releases what the consumer read.
    fn commit_producer(&self) {
        self.index(self.producer).store(self.cached, Ordering::Release);
    }
    fn commit_consumer(&self) {
        self.index(self.consumer).store(self.cached, Ordering::Release);
    }

    /// Entries the kernel has not consumed yet (producer rings).
    fn outstanding(&self) -> u32 {
        self.cached.wrapping_sub(self.index(self.consumer).load(Ordering::Acquire))
    }
}

/// Counters of one socket half.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskCounters {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Frames refused: no free TX frame even after a kick.
    pub tx_full: u64,
    /// `sendto` wakeups.
    pub tx_kicks: u64,
    /// Wakeups that failed with an error other than "busy, try again".
    pub tx_errors: u64,
}

/// The receive half: fill and RX rings, the RX frames.
#[derive(Debug)]
pub struct XskRx {
    shared: Arc<Shared>,
    fill: Ring,
    rx: Ring,
    frame_mask: u64,
    counters: XskCounters,
}

/// The transmit half: TX and completion rings, a free list of TX frames.
#[derive(Debug)]
pub struct XskTx {
    shared: Arc<Shared>,
    ifindex: u32,
    tx: Ring,
    comp: Ring,
    free: Vec<u64>,
    frame_size: u32,
    zerocopy: bool,
    counters: XskCounters,
}

fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("AF_XDP: {what}: {e}"))
}

fn set_opt<T>(fd: RawFd, name: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: `v` is a live value of the type the option expects, passed with its size.
    let r = unsafe {
        libc::setsockopt(fd, libc::SOL_XDP, name, (v as *const T).cast(), std::mem::size_of::<T>() as u32)
    };
    if r < 0 {
        Err(os_err(what))
    } else {
        Ok(())
    }
}

fn get_opt<T: Copy>(fd: RawFd, name: libc::c_int, init: T, what: &str) -> io::Result<T> {
    let mut v = init;
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is writable memory of `len` bytes.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_XDP, name, (&mut v as *mut T).cast(), &mut len) };
    if r < 0 {
        Err(os_err(what))
    } else {
        Ok(v)
    }
}

fn check_config(cfg: &XskConfig) -> io::Result<()> {
    let pow2 = |n: u32| n >= 8 && n.is_power_of_two();
    if !(cfg.frame_size == 2048 || cfg.frame_size == 4096) || !pow2(cfg.rx_frames) || !pow2(cfg.tx_frames) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "AF_XDP geometry {cfg:?}: frame_size must be 2048 or 4096, frame counts powers of two >= 8"
            ),
        ));
    }
    Ok(())
}

/// Opens an AF_XDP socket on queue `queue` of interface `ifindex` and splits it into its halves.
/// The kernel picks zero-copy when the driver offers it, copy mode otherwise (veth).
pub fn open(ifindex: u32, queue: u32, cfg: &XskConfig) -> io::Result<(XskRx, XskTx)> {
    check_config(cfg)?;
    // SAFETY: plain socket creation; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_err("socket(AF_XDP)"));
    }
    // SAFETY: `raw` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let frames = cfg.rx_frames + cfg.tx_frames;
    let umem = Mapping::new(frames as usize * cfg.frame_size as usize, -1, 0, "UMEM")?;
    let reg = libc::xdp_umem_reg {
        addr: umem.ptr as u64,
        len: umem.len as u64,
        chunk_size: cfg.frame_size,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    set_opt(raw, libc::XDP_UMEM_REG, &reg, "registering the UMEM")?;
    let n = |v: u32| v as libc::c_int;
    set_opt(raw, libc::XDP_UMEM_FILL_RING, &n(cfg.rx_frames), "sizing the fill ring")?;
    set_opt(raw, libc::XDP_UMEM_COMPLETION_RING, &n(cfg.tx_frames), "sizing the completion ring")?;
    set_opt(raw, libc::XDP_RX_RING, &n(cfg.rx_frames), "sizing the RX ring")?;
    set_opt(raw, libc::XDP_TX_RING, &n(cfg.tx_frames), "sizing the TX ring")?;
    let zero_off = libc::xdp_ring_offset { producer: 0, consumer: 0, desc: 0, flags: 0 };
    let offs = get_opt(
        raw,
        libc::XDP_MMAP_OFFSETS,
        libc::xdp_mmap_offsets { rx: zero_off, tx: zero_off, fr: zero_off, cr: zero_off },
        "reading the ring offsets",
    )?;
    let desc = std::mem::size_of::<libc::xdp_desc>();
    let addr = std::mem::size_of::<u64>();
    let (rxn, txn) = (cfg.rx_frames, cfg.tx_frames);
    let mut fill =
        Ring::open(raw, &offs.fr, (rxn, addr), libc::XDP_UMEM_PGOFF_FILL_RING, false, "fill ring")?;
    let comp = Ring::open(
        raw,
        &offs.cr,
        (txn, addr),
        libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        true,
        "completion ring",
    )?;
    let rx = Ring::open(raw, &offs.rx, (rxn, desc), libc::XDP_PGOFF_RX_RING as u64, true, "RX ring")?;
    let tx = Ring::open(raw, &offs.tx, (txn, desc), libc::XDP_PGOFF_TX_RING as u64, false, "TX ring")?;
    // The RX frames are the first `rx_frames` chunks, all handed to the kernel now.
    for i in 0..cfg.rx_frames {
        let at = fill.cached.wrapping_add(i);
        fill.write(at, u64::from(i) * u64::from(cfg.frame_size));
    }
    fill.cached = fill.cached.wrapping_add(cfg.rx_frames);
    fill.commit_producer();
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_USE_NEED_WAKEUP,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a valid sockaddr_xdp passed with its size.
    let r = unsafe {
        libc::bind(
            raw,
            (&sa as *const libc::sockaddr_xdp).cast(),
            std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(os_err(&format!("binding to interface {ifindex} queue {queue}")));
    }
    let opts = get_opt(raw, libc::XDP_OPTIONS, libc::xdp_options { flags: 0 }, "reading the options")?;
    let zerocopy = opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0;
    if !zerocopy {
        // Let one wakeup send a whole batch (older kernels refuse the option: 32 per call).
        let _ = set_opt(raw, XDP_MAX_TX_SKB_BUDGET, &n(cfg.tx_frames), "raising the TX budget");
    }
    let shared = Arc::new(Shared { umem, fd });
    let fs = u64::from(cfg.frame_size);
    let free = (cfg.rx_frames..frames).map(|i| u64::from(i) * fs).collect();
    Ok((
        XskRx { shared: shared.clone(), fill, rx, frame_mask: !(fs - 1), counters: XskCounters::default() },
        XskTx {
            shared,
            ifindex,
            tx,
            comp,
            free,
            frame_size: cfg.frame_size,
            zerocopy,
            counters: XskCounters::default(),
        },
    ))
}

impl XskRx {
    /// The socket, for `poll` and for the XSKMAP.
    pub fn fd(&self) -> RawFd {
        self.shared.fd.as_raw_fd()
    }

    /// Counters.
    pub fn counters(&self) -> XskCounters {
        self.counters
    }

    /// Frames waiting in the RX ring.
    pub fn pending(&self) -> u32 {
        self.rx.available()
    }

    /// Hands up to `max` received frames to `f`, then gives their buffers back to the kernel.
    /// Returns the number of frames; never blocks.
    pub fn recv(&mut self, max: u32, mut f: impl FnMut(&[u8])) -> usize {
        let n = self.rx.available().min(max);
        if n == 0 {
            return 0;
        }
        let umem_len = self.shared.umem.len as u64;
        for k in 0..n {
            let d: libc::xdp_desc = self.rx.read(self.rx.cached.wrapping_add(k));
            // The kernel only writes addresses inside the UMEM; checked anyway, never trusted.
            if d.addr.saturating_add(u64::from(d.len)) <= umem_len {
                // SAFETY: the range is inside the UMEM, and this RX frame belongs to us (not in the
                // fill ring) until it is given back below; the TX half never touches RX frames.
                let frame = unsafe {
                    std::slice::from_raw_parts(self.shared.umem.ptr.add(d.addr as usize), d.len as usize)
                };
                f(frame);
            }
            let slot = self.fill.cached.wrapping_add(k);
            self.fill.write(slot, d.addr & self.frame_mask);
        }
        self.rx.cached = self.rx.cached.wrapping_add(n);
        self.rx.commit_consumer();
        // Room is guaranteed: fill + RX + in hand never exceed the RX frame count (the ring size).
        self.fill.cached = self.fill.cached.wrapping_add(n);
        self.fill.commit_producer();
        self.counters.rx_frames += u64::from(n);
        if self.fill.needs_wakeup() {
            // Zero-copy drivers wait for a wakeup to refill their queue; copy mode never asks.
            // SAFETY: a zero-length non-blocking receive on our socket.
            unsafe {
                libc::recvfrom(
                    self.fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
        n as usize
    }
}

impl XskTx {
    /// The interface this half sends on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the kernel runs this socket in zero-copy mode.
    pub fn is_zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// Counters.
    pub fn counters(&self) -> XskCounters {
        self.counters
    }

    /// Largest frame a TX buffer holds.
    pub fn max_frame_len(&self) -> usize {
        self.frame_size as usize
    }

    /// Takes back the frames the kernel has sent.
    fn reclaim(&mut self) {
        let n = self.comp.available();
        for k in 0..n {
            let addr: u64 = self.comp.read(self.comp.cached.wrapping_add(k));
            self.free.push(addr & !(u64::from(self.frame_size) - 1));
        }
        if n > 0 {
            self.comp.cached = self.comp.cached.wrapping_add(n);
            self.comp.commit_consumer();
        }
    }

    /// Queues a frame of `len` bytes written by `fill` into a TX buffer. `false` (and `fill` not
    /// called) when no buffer is free even after a kick, or `len` does not fit a buffer.
    pub fn send_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        if len > self.frame_size as usize {
            self.counters.tx_full += 1;
            return false;
        }
        if self.free.is_empty() || self.tx.free() == 0 {
            self.flush();
        }
        let Some(addr) = (if self.tx.free() > 0 { self.free.pop() } else { None }) else {
            self.counters.tx_full += 1;
            return false;
        };
        // SAFETY: `addr` is a TX frame start inside the UMEM (frame_size bytes follow it), free
        // (not in the TX or completion ring), and only this half writes TX frames.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.shared.umem.ptr.add(addr as usize), len) };
        fill(buf);
        let slot = self.tx.cached;
        self.tx.write(slot, libc::xdp_desc { addr, len: len as u32, options: 0 });
        self.tx.cached = slot.wrapping_add(1);
        self.counters.tx_frames += 1;
        true
    }

    /// Publishes the queued frames and wakes the kernel when it has to send them (always in copy
    /// mode, where sending happens inside the wakeup); takes back completed frames.
    pub fn flush(&mut self) {
        self.tx.commit_producer();
        let fd = self.shared.fd.as_raw_fd();
        // Copy mode sends a bounded budget per call ("try again" when more remain).
        let mut rounds = self.tx.size / 32 + 2;
        while self.tx.outstanding() > 0 && (!self.zerocopy || self.tx.needs_wakeup()) && rounds > 0 {
            rounds -= 1;
            self.counters.tx_kicks += 1;
            // SAFETY: a zero-length non-blocking send on our socket: the AF_XDP wakeup.
            let r = unsafe { libc::sendto(fd, std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
            if r < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => {
                        // Completions free room for the rest.
                        self.reclaim();
                    }
                    _ => {
                        self.counters.tx_errors += 1;
                        break;
                    }
                }
            }
            if self.zerocopy {
                break;
            }
        }
        self.reclaim();
    }
}
