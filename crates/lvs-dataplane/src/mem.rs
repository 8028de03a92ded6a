//! In-memory [`FrameIo`]: queues of `Vec<u8>`.

use std::collections::VecDeque;
use std::io;

use crate::FrameIo;

/// An in-memory [`FrameIo`] backend.
///
/// Frames pushed with [`push_rx`](MemIo::push_rx) are delivered by
/// [`recv_batch`](FrameIo::recv_batch) (at most `rx_batch` per call, like one
/// ring block). [`send`](FrameIo::send) queues frames like TX ring slots
/// (at most `tx_capacity`); [`flush`](FrameIo::flush) moves them to the
/// "wire", read back with [`take_sent`](MemIo::take_sent). When the queue is
/// full, `send` flushes by itself (as the ring does) unless the wire is
/// [blocked](MemIo::set_wire_blocked), in which case it returns `Ok(false)`.
#[derive(Debug, Clone)]
pub struct MemIo {
    rx: VecDeque<Vec<u8>>,
    queued: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
    tx_capacity: usize,
    rx_batch: usize,
    wire_blocked: bool,
    flushes: u64,
}

impl Default for MemIo {
    fn default() -> Self {
        Self::new()
    }
}

impl MemIo {
    /// A backend with 256 TX slots and RX batches of up to 64 frames.
    pub fn new() -> Self {
        Self::with_limits(256, 64)
    }

    /// A backend with `tx_capacity` TX slots and RX batches of up to
    /// `rx_batch` frames (both at least 1).
    pub fn with_limits(tx_capacity: usize, rx_batch: usize) -> Self {
        Self {
            rx: VecDeque::new(),
            queued: Vec::new(),
            sent: Vec::new(),
            tx_capacity: tx_capacity.max(1),
            rx_batch: rx_batch.max(1),
            wire_blocked: false,
            flushes: 0,
        }
    }

    /// Adds a frame to the receive queue.
    pub fn push_rx(&mut self, frame: impl Into<Vec<u8>>) {
        self.rx.push_back(frame.into());
    }

    /// Frames still waiting to be received.
    pub fn rx_len(&self) -> usize {
        self.rx.len()
    }

    /// Frames queued by `send` and not yet flushed.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// Frames flushed to the wire so far (not yet taken).
    pub fn sent(&self) -> &[Vec<u8>] {
        &self.sent
    }

    /// Takes the frames flushed to the wire so far.
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.sent)
    }

    /// Number of `flush` calls that moved at least one frame.
    pub fn flush_count(&self) -> u64 {
        self.flushes
    }

    /// While blocked, `flush` moves nothing and `send` on a full queue
    /// returns `Ok(false)` (models a stalled link).
    pub fn set_wire_blocked(&mut self, blocked: bool) {
        self.wire_blocked = blocked;
    }
}

impl FrameIo for MemIo {
    fn recv_batch(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        while n < self.rx_batch {
            let Some(frame) = self.rx.pop_front() else {
                break;
            };
            f(&frame);
            n += 1;
        }
        Ok(n)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if self.queued.len() >= self.tx_capacity {
            self.flush()?;
            if self.queued.len() >= self.tx_capacity {
                return Ok(false);
            }
        }
        self.queued.push(frame.to_vec());
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.wire_blocked && !self.queued.is_empty() {
            self.sent.append(&mut self.queued);
            self.flushes += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recv_delivers_in_order_in_bounded_batches() {
        let mut io = MemIo::with_limits(4, 2);
        for i in 0..5u8 {
            io.push_rx(vec![i; 3]);
        }
        let mut got = Vec::new();
        assert_eq!(io.recv_batch(&mut |f| got.push(f.to_vec())).ok(), Some(2));
        assert_eq!(io.recv_batch(&mut |f| got.push(f.to_vec())).ok(), Some(2));
        assert_eq!(io.recv_batch(&mut |f| got.push(f.to_vec())).ok(), Some(1));
        assert_eq!(io.recv_batch(&mut |f| got.push(f.to_vec())).ok(), Some(0));
        assert_eq!(got, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
    }

    #[test]
    fn send_queues_until_flush() {
        let mut io = MemIo::with_limits(4, 2);
        assert!(io.send(b"a").unwrap());
        assert!(io.send(b"b").unwrap());
        assert!(io.sent().is_empty());
        assert_eq!(io.queued_len(), 2);
        io.flush().unwrap();
        assert_eq!(io.take_sent(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(io.flush_count(), 1);
        io.flush().unwrap();
        assert_eq!(io.flush_count(), 1, "empty flush is not counted");
    }

    #[test]
    fn full_queue_flushes_itself_or_reports_full_when_blocked() {
        let mut io = MemIo::with_limits(2, 1);
        assert!(io.send(b"1").unwrap());
        assert!(io.send(b"2").unwrap());
        assert!(io.send(b"3").unwrap(), "full queue flushes like the ring");
        assert_eq!(io.sent().len(), 2);
        io.set_wire_blocked(true);
        assert!(io.send(b"4").unwrap());
        assert!(!io.send(b"5").unwrap(), "blocked wire: no free slot");
        io.set_wire_blocked(false);
        io.flush().unwrap();
        let sent: Vec<Vec<u8>> = io.take_sent();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[3], b"4".to_vec());
    }

    #[test]
    fn works_through_dyn_and_mut_ref() {
        fn echo(io: &mut dyn FrameIo) -> io::Result<usize> {
            let mut frames = Vec::new();
            let n = io.recv_batch(&mut |f| frames.push(f.to_vec()))?;
            for f in &frames {
                io.send(f)?;
            }
            io.flush()?;
            Ok(n)
        }
        let mut io = MemIo::new();
        io.push_rx(b"ping".to_vec());
        assert_eq!(echo(&mut io).unwrap(), 1);
        let mut r = &mut io;
        assert_eq!(echo(&mut r).unwrap(), 0);
        assert_eq!(io.take_sent(), vec![b"ping".to_vec()]);
    }
}
