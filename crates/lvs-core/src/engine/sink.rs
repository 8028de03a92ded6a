//! Where the engine's output goes. The engine never owns transmit memory: it asks the [`Sink`] for
//! a buffer of the exact frame length and writes the frame straight into it, so a TPACKET TX ring
//! receives a forwarded frame with one copy (RX slot → TX slot, rewritten on the way) and no
//! intermediate buffer.

/// The transmit side of the I/O layer.
pub trait Sink {
    /// Sends a frame of `len` bytes out of interface `ifindex`: calls `fill` once with a buffer of
    /// exactly `len` bytes (e.g. a TX ring slot; its previous contents do not matter, the engine
    /// writes every byte) and queues it. Returns `false`, without calling `fill`, when there is
    /// no room; the engine counts that in `tx_ring_full`.
    fn transmit<F: FnOnce(&mut [u8])>(&mut self, ifindex: u32, len: usize, fill: F) -> bool;

    /// Hands a received frame, unchanged (or, for a NAT connection to a local real server,
    /// rewritten), to the host's own stack. A ring on an AF_PACKET socket can ignore this: the
    /// kernel already got its own copy of the frame.
    fn to_host(&mut self, ifindex: u32, frame: &[u8]) {
        let _ = (ifindex, frame);
    }
}

/// A frame the engine produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxFrame {
    /// Interface index.
    pub ifindex: u32,
    /// `true` for a frame handed to the host stack, `false` for one sent on the wire.
    pub to_host: bool,
    /// The frame, Ethernet header included.
    pub data: Vec<u8>,
}

/// The byte transmit buffers are filled with before the engine writes them, in tests and
/// [`TxBatch`]: a byte the engine forgets to write shows up as `0xa5` (smoltcp's test trick).
pub const FILL_BYTE: u8 = 0xa5;

/// A plain vector collects frames; each frame allocates (offline use: `inject`, tests).
impl Sink for Vec<TxFrame> {
    fn transmit<F: FnOnce(&mut [u8])>(&mut self, ifindex: u32, len: usize, fill: F) -> bool {
        let mut data = vec![FILL_BYTE; len];
        fill(&mut data);
        self.push(TxFrame { ifindex, to_host: false, data });
        true
    }
    fn to_host(&mut self, ifindex: u32, frame: &[u8]) {
        self.push(TxFrame { ifindex, to_host: true, data: frame.to_vec() });
    }
}

/// A reusable batch of output frames for an in-memory I/O layer: [`TxBatch::clear`] keeps every
/// buffer, so once the batch has grown to its working size, processing allocates nothing.
/// Optionally bounded, to model a full TX ring.
#[derive(Debug, Default, Clone)]
pub struct TxBatch {
    frames: Vec<TxFrame>,
    len: usize,
    limit: Option<usize>,
}

impl TxBatch {
    /// An empty, unbounded batch.
    pub fn new() -> TxBatch {
        TxBatch::default()
    }
    /// An empty batch that refuses frames beyond `limit` (like a TX ring with `limit` slots).
    pub fn with_limit(limit: usize) -> TxBatch {
        TxBatch { frames: Vec::new(), len: 0, limit: Some(limit) }
    }
    /// Forgets the frames, keeping their buffers.
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// The frames since the last `clear`.
    pub fn frames(&self) -> &[TxFrame] {
        &self.frames[..self.len]
    }
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.len
    }
    /// No frames.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn slot(&mut self, ifindex: u32, to_host: bool) -> Option<&mut TxFrame> {
        if self.limit.is_some_and(|l| self.len >= l) {
            return None;
        }
        if self.len == self.frames.len() {
            self.frames.push(TxFrame { ifindex, to_host, data: Vec::new() });
        }
        let f = &mut self.frames[self.len];
        self.len += 1;
        f.ifindex = ifindex;
        f.to_host = to_host;
        Some(f)
    }
}

impl Sink for TxBatch {
    fn transmit<F: FnOnce(&mut [u8])>(&mut self, ifindex: u32, len: usize, fill: F) -> bool {
        let Some(f) = self.slot(ifindex, false) else {
            return false;
        };
        f.data.clear();
        f.data.resize(len, FILL_BYTE);
        fill(&mut f.data);
        true
    }
    fn to_host(&mut self, ifindex: u32, frame: &[u8]) {
        if let Some(f) = self.slot(ifindex, true) {
            f.data.clear();
            f.data.extend_from_slice(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_reuses_buffers_and_honours_its_limit() {
        let mut b = TxBatch::with_limit(2);
        assert!(b.transmit(1, 3, |d| d.copy_from_slice(&[1, 2, 3])));
        b.to_host(2, &[9]);
        assert!(!b.transmit(1, 3, |_| panic!("no room, no fill")));
        assert_eq!(b.len(), 2);
        assert_eq!(b.frames()[0].data, [1, 2, 3]);
        assert!(b.frames()[1].to_host);
        let cap = b.frames()[0].data.capacity();
        b.clear();
        assert!(b.is_empty());
        assert!(b.transmit(4, 2, |d| d[0] = 7));
        assert_eq!(b.frames()[0].data, [7, FILL_BYTE]);
        assert_eq!(b.frames()[0].ifindex, 4);
        assert_eq!(b.frames()[0].data.capacity(), cap);
    }
}
