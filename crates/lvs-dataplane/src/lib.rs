//! Frame I/O for the LVS packet path.
//!
//! * [`PacketSocket`] — one Linux `AF_PACKET` socket bound to an interface,
//!   with a `TPACKET_V3` RX ring and a `TPACKET_V3` TX ring in one shared
//!   mapping. Optional `PACKET_FANOUT` lets N worker threads each own a socket
//!   in one fanout group. The fast path does no allocation and no per-packet
//!   system call: RX hands out `&[u8]` views of a whole block of frames, TX
//!   fills ring slots and kicks the kernel once per batch ([`FrameIo::flush`]).
//! * [`MemIo`] — an in-memory implementation of the same [`FrameIo`] trait,
//!   so the packet path can run against queues of `Vec<u8>` in unit tests.
//! * [`decap`] — IP-in-IP decapsulation (pure byte handling) and [`tun`] — TUN
//!   devices, for the `lvs-tun-decap` tool that LVS/TUN real servers run on a
//!   kernel without the `ipip` module (and `lvs-tun-encap`, its test-bench
//!   counterpart).
//! * [`sync`] — the UDP multicast sockets of the connection-sync daemons.
//! * [`xdp`] — the opt-in AF_XDP path: an XDP program (assembled here, loaded with bpf(2))
//!   redirects the frames lvs handles to AF_XDP sockets, the rest goes on to the kernel.
//! * [`vrrp`] — the VRRP speaker at run time: raw IP sockets and the thread that drives the pure
//!   instances of `lvs_core::vrrp` and the engine's VIP ownership.
//!
//! `unsafe` is confined to [`ffi`] layout checks, the ring module, the
//! [`tun`] ioctls and the [`xdp`] system calls and shared rings; every block states its invariant in a `SAFETY` comment.

pub mod decap;
#[cfg(target_os = "linux")]
pub mod ffi;
pub mod iface;
mod mem;
#[cfg(target_os = "linux")]
mod ring;
#[cfg(target_os = "linux")]
pub mod runtime;
#[cfg(target_os = "linux")]
pub mod sync;
pub mod tun;
#[cfg(target_os = "linux")]
pub mod vrrp;
#[cfg(target_os = "linux")]
pub mod xdp;

use std::io;

pub use mem::MemIo;
#[cfg(target_os = "linux")]
pub use ring::{
    Fanout, FanoutMode, PacketSender, PacketSocket, RingConfig, RingCounters, RxBlock, RxConfig, RxFrame,
    RxFrames, SenderCounters, SocketStats, TxConfig,
};

/// Frame-level I/O at the edge of the packet path.
///
/// Implemented by [`PacketSocket`] (AF_PACKET rings) and [`MemIo`] (in-memory
/// queues). Frames are complete link-layer frames (Ethernet header first).
pub trait FrameIo {
    /// Waits (up to an implementation-defined timeout) for received frames and
    /// calls `f` once per frame. Returns the number of frames delivered; `0`
    /// means nothing arrived in time. The slice is only valid during the call.
    fn recv_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize>;

    /// Queues one frame for transmission. Returns `Ok(false)` when no TX slot
    /// became free in time (the frame was not queued; the caller counts a
    /// drop). Queued frames go out at the next [`flush`](FrameIo::flush) (an
    /// implementation may also flush on its own when it runs out of space).
    fn send(&mut self, frame: &[u8]) -> io::Result<bool>;

    /// Hands all queued frames to the wire (one kick per batch).
    fn flush(&mut self) -> io::Result<()>;
}

impl<T: FrameIo + ?Sized> FrameIo for &mut T {
    fn recv_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        (**self).recv_batch(f)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        (**self).send(frame)
    }

    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
}

impl<T: FrameIo + ?Sized> FrameIo for Box<T> {
    fn recv_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        (**self).recv_batch(f)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        (**self).send(frame)
    }

    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
}
