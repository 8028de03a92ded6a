//! Kernel ABI for AF_PACKET `TPACKET_V3` rings (`include/uapi/linux/if_packet.h`).
//!
//! The structs are written out here (rather than re-exported from `libc`) so
//! that the layout this crate relies on is visible in one place; every size
//! and field offset is checked at compile time against the kernel ABI and
//! against `libc`'s own definitions.

use core::ffi::{c_int, c_ushort};
use core::mem::{offset_of, size_of};

/// `SOL_PACKET` socket option level.
pub const SOL_PACKET: c_int = 263;
/// `ETH_P_ALL`: receive every protocol (host byte order; use `to_be()`).
pub const ETH_P_ALL: u16 = 0x0003;
/// Length of an Ethernet header without VLAN tags.
pub const ETH_HLEN: usize = 14;
/// Extra length a single 802.1Q tag adds.
pub const VLAN_HLEN: usize = 4;

/// `PACKET_ADD_MEMBERSHIP` (takes a [`PacketMreq`]).
pub const PACKET_ADD_MEMBERSHIP: c_int = 1;
/// `PACKET_RX_RING` (takes a [`TpacketReq3`] under `TPACKET_V3`).
pub const PACKET_RX_RING: c_int = 5;
/// `PACKET_STATISTICS` (returns [`TpacketStatsV3`] and resets the counters).
pub const PACKET_STATISTICS: c_int = 6;
/// `PACKET_VERSION` (takes an `int`, one of `TPACKET_V*`).
pub const PACKET_VERSION: c_int = 10;
/// `PACKET_TX_RING` (takes a [`TpacketReq3`] under `TPACKET_V3`).
pub const PACKET_TX_RING: c_int = 13;
/// `PACKET_LOSS`: skip malformed TX frames instead of stopping the ring.
pub const PACKET_LOSS: c_int = 14;
/// `PACKET_FANOUT` (takes `id | (mode | flags) << 16`, see [`fanout_arg`]).
pub const PACKET_FANOUT: c_int = 18;
/// `PACKET_TX_HAS_OFF`: TX data offset is taken from `tp_mac`/`tp_net`.
pub const PACKET_TX_HAS_OFF: c_int = 19;
/// `PACKET_QDISC_BYPASS`: TX goes straight to the driver.
pub const PACKET_QDISC_BYPASS: c_int = 20;
/// `PACKET_IGNORE_OUTGOING`: do not deliver locally sent frames to this socket.
pub const PACKET_IGNORE_OUTGOING: c_int = 23;

/// `PACKET_MR_PROMISC` membership type.
pub const PACKET_MR_PROMISC: c_ushort = 1;

/// `TPACKET_V3` (value of `enum tpacket_versions`).
pub const TPACKET_V3: c_int = 2;

/// Fanout mode: by skb flow hash.
pub const PACKET_FANOUT_HASH: u16 = 0;
/// Fanout mode: round robin.
pub const PACKET_FANOUT_LB: u16 = 1;
/// Fanout mode: by receiving CPU.
pub const PACKET_FANOUT_CPU: u16 = 2;
/// Fanout mode: fill one socket, then roll over.
pub const PACKET_FANOUT_ROLLOVER: u16 = 3;
/// Fanout mode: random.
pub const PACKET_FANOUT_RND: u16 = 4;
/// Fanout mode: by recorded queue mapping.
pub const PACKET_FANOUT_QM: u16 = 5;
/// Fanout flag: roll over to another socket when the chosen one is full.
pub const PACKET_FANOUT_FLAG_ROLLOVER: u16 = 0x1000;
/// Fanout flag: let the kernel pick a unique group id.
pub const PACKET_FANOUT_FLAG_UNIQUEID: u16 = 0x2000;
/// Fanout flag: defragment IP before hashing.
pub const PACKET_FANOUT_FLAG_DEFRAG: u16 = 0x8000;

/// RX block / frame: owned by the kernel.
pub const TP_STATUS_KERNEL: u32 = 0;
/// RX block / frame: owned by user space.
pub const TP_STATUS_USER: u32 = 1 << 0;
/// RX: frames were dropped because the ring was full.
pub const TP_STATUS_LOSING: u32 = 1 << 2;
/// RX: checksum not yet computed (outgoing offload).
pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// RX: `tp_vlan_tci` is valid.
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// RX block: retired by the block timer rather than because it was full.
pub const TP_STATUS_BLK_TMO: u32 = 1 << 5;
/// RX: `tp_vlan_tpid` is valid.
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// RX: checksum was validated.
pub const TP_STATUS_CSUM_VALID: u32 = 1 << 7;

/// TX frame: free for user space.
pub const TP_STATUS_AVAILABLE: u32 = 0;
/// TX frame: filled by user space, to be sent at the next kick.
pub const TP_STATUS_SEND_REQUEST: u32 = 1 << 0;
/// TX frame: taken by the kernel, not yet released.
pub const TP_STATUS_SENDING: u32 = 1 << 1;
/// TX frame: rejected by the kernel (only without [`PACKET_LOSS`]).
pub const TP_STATUS_WRONG_FORMAT: u32 = 1 << 2;

/// `TP_FT_REQ_FILL_RXHASH`: fill `tp_rxhash` in RX headers.
pub const TP_FT_REQ_FILL_RXHASH: u32 = 1;

/// `TPACKET_ALIGNMENT`: frames and packet headers are aligned to this.
pub const TPACKET_ALIGNMENT: usize = 16;

/// `TPACKET_ALIGN(x)`.
pub const fn tpacket_align(x: usize) -> usize {
    (x + TPACKET_ALIGNMENT - 1) & !(TPACKET_ALIGNMENT - 1)
}

/// `TPACKET3_HDRLEN`: the per-frame header length the kernel uses for V3
/// (aligned `tpacket3_hdr` plus a `sockaddr_ll`) = 68.
pub const TPACKET3_HDRLEN: usize = tpacket_align(size_of::<Tpacket3Hdr>()) + size_of::<SockaddrLl>();

/// Where user data starts in a V3 TX frame (without `PACKET_TX_HAS_OFF`):
/// `TPACKET3_HDRLEN - sizeof(struct sockaddr_ll)` = 48.
pub const TX_DATA_OFFSET: usize = TPACKET3_HDRLEN - size_of::<SockaddrLl>();

/// Byte offset of `block_status` inside a block (`tpacket_block_desc.hdr.bh1`).
pub const BLOCK_STATUS_OFFSET: usize =
    offset_of!(TpacketBlockDesc, hdr) + offset_of!(TpacketHdrV1, block_status);

/// Byte offset of `tp_status` inside a `tpacket3_hdr`.
pub const TP_STATUS_OFFSET: usize = offset_of!(Tpacket3Hdr, tp_status);

/// `struct sockaddr_ll` (libc has it).
pub type SockaddrLl = libc::sockaddr_ll;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketReq3 {
    /// Block size in bytes: a multiple of the page size.
    pub tp_block_size: u32,
    /// Number of blocks.
    pub tp_block_nr: u32,
    /// Frame size: a multiple of 16, more than `TPACKET3_HDRLEN`.
    pub tp_frame_size: u32,
    /// Must equal `(tp_block_size / tp_frame_size) * tp_block_nr`.
    pub tp_frame_nr: u32,
    /// RX block retire timeout in milliseconds (0 = kernel default; must be 0 for TX).
    pub tp_retire_blk_tov: u32,
    /// Private area per block (must be 0 for TX).
    pub tp_sizeof_priv: u32,
    /// Feature request bits, e.g. [`TP_FT_REQ_FILL_RXHASH`] (must be 0 for TX).
    pub tp_feature_req_word: u32,
}

/// `struct tpacket_bd_ts` (the second word is a union of `ts_usec`/`ts_nsec`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketBdTs {
    /// Seconds.
    pub ts_sec: u32,
    /// Micro- or nanoseconds, depending on the socket's timestamp setting.
    pub ts_usec: u32,
}

/// `struct tpacket_hdr_v1` (block header; `seq_num` is `__aligned_u64`).
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketHdrV1 {
    /// [`TP_STATUS_KERNEL`] or [`TP_STATUS_USER`] plus flags such as [`TP_STATUS_BLK_TMO`].
    pub block_status: u32,
    /// Number of packets in the block.
    pub num_pkts: u32,
    /// Offset of the first `tpacket3_hdr` from the block start.
    pub offset_to_first_pkt: u32,
    /// Bytes used in the block.
    pub blk_len: u32,
    /// Block sequence number.
    pub seq_num: u64,
    /// Timestamp of the first packet.
    pub ts_first_pkt: TpacketBdTs,
    /// Timestamp of the last packet.
    pub ts_last_pkt: TpacketBdTs,
}

/// `struct tpacket_block_desc`. The kernel's `hdr` is `union tpacket_bd_header_u`
/// whose only member is `bh1`, so it is represented by that member directly.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketBlockDesc {
    /// Block descriptor version.
    pub version: u32,
    /// Offset of the private area.
    pub offset_to_priv: u32,
    /// `hdr.bh1`.
    pub hdr: TpacketHdrV1,
}

/// `struct tpacket_hdr_variant1`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketHdrVariant1 {
    /// Flow hash (with [`TP_FT_REQ_FILL_RXHASH`]).
    pub tp_rxhash: u32,
    /// VLAN TCI (valid with [`TP_STATUS_VLAN_VALID`]).
    pub tp_vlan_tci: u32,
    /// VLAN TPID (valid with [`TP_STATUS_VLAN_TPID_VALID`]).
    pub tp_vlan_tpid: u16,
    /// Padding.
    pub tp_padding: u16,
}

/// `struct tpacket3_hdr` (48 bytes; per-packet header in RX blocks and TX frames).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tpacket3Hdr {
    /// RX: offset to the next packet in the block (0 for the last); TX: must be 0.
    pub tp_next_offset: u32,
    /// Timestamp seconds.
    pub tp_sec: u32,
    /// Timestamp nanoseconds.
    pub tp_nsec: u32,
    /// Captured bytes.
    pub tp_snaplen: u32,
    /// Original length (TX: the length to send).
    pub tp_len: u32,
    /// Status bits (byte offset 20).
    pub tp_status: u32,
    /// Offset of the link-layer header from this header.
    pub tp_mac: u16,
    /// Offset of the network header from this header.
    pub tp_net: u16,
    /// `hv1`.
    pub hv1: TpacketHdrVariant1,
    /// Padding.
    pub tp_padding: [u8; 8],
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpacketStatsV3 {
    /// Packets seen by the socket since the last read, *including* `tp_drops`.
    pub tp_packets: u32,
    /// Packets dropped since the last read.
    pub tp_drops: u32,
    /// Times the queue was frozen because the ring was full.
    pub tp_freeze_q_cnt: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketMreq {
    /// Interface index.
    pub mr_ifindex: c_int,
    /// Membership type, e.g. [`PACKET_MR_PROMISC`].
    pub mr_type: c_ushort,
    /// Address length.
    pub mr_alen: c_ushort,
    /// Address.
    pub mr_address: [u8; 8],
}

/// Encodes the `PACKET_FANOUT` option value: `id | (mode | flags) << 16`.
pub const fn fanout_arg(group_id: u16, mode: u16, flags: u16) -> u32 {
    (group_id as u32) | (((mode | flags) as u32) << 16)
}

// Kernel ABI: sizes and offsets from include/uapi/linux/if_packet.h.
const _: () = {
    assert!(size_of::<TpacketReq3>() == 28);
    assert!(offset_of!(TpacketReq3, tp_retire_blk_tov) == 16);
    assert!(offset_of!(TpacketReq3, tp_feature_req_word) == 24);

    assert!(size_of::<TpacketBdTs>() == 8);
    assert!(size_of::<TpacketHdrV1>() == 40);
    assert!(core::mem::align_of::<TpacketHdrV1>() == 8);
    assert!(offset_of!(TpacketHdrV1, block_status) == 0);
    assert!(offset_of!(TpacketHdrV1, num_pkts) == 4);
    assert!(offset_of!(TpacketHdrV1, offset_to_first_pkt) == 8);
    assert!(offset_of!(TpacketHdrV1, blk_len) == 12);
    assert!(offset_of!(TpacketHdrV1, seq_num) == 16);
    assert!(offset_of!(TpacketHdrV1, ts_first_pkt) == 24);
    assert!(offset_of!(TpacketHdrV1, ts_last_pkt) == 32);

    assert!(size_of::<TpacketBlockDesc>() == 48);
    assert!(offset_of!(TpacketBlockDesc, version) == 0);
    assert!(offset_of!(TpacketBlockDesc, offset_to_priv) == 4);
    assert!(offset_of!(TpacketBlockDesc, hdr) == 8);
    assert!(BLOCK_STATUS_OFFSET == 8);

    assert!(size_of::<TpacketHdrVariant1>() == 12);
    assert!(size_of::<Tpacket3Hdr>() == 48);
    assert!(offset_of!(Tpacket3Hdr, tp_next_offset) == 0);
    assert!(offset_of!(Tpacket3Hdr, tp_sec) == 4);
    assert!(offset_of!(Tpacket3Hdr, tp_nsec) == 8);
    assert!(offset_of!(Tpacket3Hdr, tp_snaplen) == 12);
    assert!(offset_of!(Tpacket3Hdr, tp_len) == 16);
    assert!(offset_of!(Tpacket3Hdr, tp_status) == 20);
    assert!(TP_STATUS_OFFSET == 20);
    assert!(offset_of!(Tpacket3Hdr, tp_mac) == 24);
    assert!(offset_of!(Tpacket3Hdr, tp_net) == 26);
    assert!(offset_of!(Tpacket3Hdr, hv1) == 28);
    assert!(offset_of!(Tpacket3Hdr, tp_padding) == 40);

    assert!(size_of::<SockaddrLl>() == 20);
    assert!(TPACKET3_HDRLEN == 68);
    assert!(TX_DATA_OFFSET == 48);

    assert!(size_of::<TpacketStatsV3>() == 12);
    assert!(size_of::<PacketMreq>() == 16);
    assert!(offset_of!(PacketMreq, mr_address) == 8);
};

// The same facts, against libc's definitions of the same kernel structures.
const _: () = {
    assert!(size_of::<TpacketReq3>() == size_of::<libc::tpacket_req3>());
    assert!(offset_of!(TpacketReq3, tp_retire_blk_tov) == offset_of!(libc::tpacket_req3, tp_retire_blk_tov));
    assert!(
        offset_of!(TpacketReq3, tp_feature_req_word) == offset_of!(libc::tpacket_req3, tp_feature_req_word)
    );

    assert!(size_of::<TpacketHdrV1>() == size_of::<libc::tpacket_hdr_v1>());
    assert!(offset_of!(TpacketHdrV1, num_pkts) == offset_of!(libc::tpacket_hdr_v1, num_pkts));
    assert!(
        offset_of!(TpacketHdrV1, offset_to_first_pkt)
            == offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt)
    );
    assert!(offset_of!(TpacketHdrV1, seq_num) == offset_of!(libc::tpacket_hdr_v1, seq_num));
    assert!(offset_of!(TpacketHdrV1, ts_last_pkt) == offset_of!(libc::tpacket_hdr_v1, ts_last_pkt));

    assert!(size_of::<TpacketBlockDesc>() == size_of::<libc::tpacket_block_desc>());
    assert!(offset_of!(TpacketBlockDesc, hdr) == offset_of!(libc::tpacket_block_desc, hdr));

    assert!(size_of::<Tpacket3Hdr>() == size_of::<libc::tpacket3_hdr>());
    assert!(offset_of!(Tpacket3Hdr, tp_snaplen) == offset_of!(libc::tpacket3_hdr, tp_snaplen));
    assert!(offset_of!(Tpacket3Hdr, tp_len) == offset_of!(libc::tpacket3_hdr, tp_len));
    assert!(offset_of!(Tpacket3Hdr, tp_status) == offset_of!(libc::tpacket3_hdr, tp_status));
    assert!(offset_of!(Tpacket3Hdr, tp_mac) == offset_of!(libc::tpacket3_hdr, tp_mac));
    assert!(offset_of!(Tpacket3Hdr, hv1) == offset_of!(libc::tpacket3_hdr, hv1));
    assert!(
        offset_of!(TpacketHdrVariant1, tp_vlan_tpid) == offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid)
    );

    assert!(size_of::<TpacketStatsV3>() == size_of::<libc::tpacket_stats_v3>());
    assert!(size_of::<PacketMreq>() == size_of::<libc::packet_mreq>());
    assert!(TPACKET3_HDRLEN == libc::TPACKET3_HDRLEN);
    assert!(TPACKET_ALIGNMENT == libc::TPACKET_ALIGNMENT);

    assert!(SOL_PACKET == libc::SOL_PACKET);
    assert!(ETH_P_ALL as c_int == libc::ETH_P_ALL);
    assert!(PACKET_ADD_MEMBERSHIP == libc::PACKET_ADD_MEMBERSHIP);
    assert!(PACKET_RX_RING == libc::PACKET_RX_RING);
    assert!(PACKET_STATISTICS == libc::PACKET_STATISTICS);
    assert!(PACKET_VERSION == libc::PACKET_VERSION);
    assert!(PACKET_TX_RING == libc::PACKET_TX_RING);
    assert!(PACKET_LOSS == libc::PACKET_LOSS);
    assert!(PACKET_FANOUT == libc::PACKET_FANOUT);
    assert!(PACKET_TX_HAS_OFF == libc::PACKET_TX_HAS_OFF);
    assert!(PACKET_QDISC_BYPASS == libc::PACKET_QDISC_BYPASS);
    assert!(PACKET_IGNORE_OUTGOING == libc::PACKET_IGNORE_OUTGOING);
    assert!(PACKET_MR_PROMISC as c_int == libc::PACKET_MR_PROMISC);
    assert!(TPACKET_V3 == libc::tpacket_versions::TPACKET_V3 as c_int);

    assert!(PACKET_FANOUT_HASH as u32 == libc::PACKET_FANOUT_HASH);
    assert!(PACKET_FANOUT_LB as u32 == libc::PACKET_FANOUT_LB);
    assert!(PACKET_FANOUT_CPU as u32 == libc::PACKET_FANOUT_CPU);
    assert!(PACKET_FANOUT_ROLLOVER as u32 == libc::PACKET_FANOUT_ROLLOVER);
    assert!(PACKET_FANOUT_RND as u32 == libc::PACKET_FANOUT_RND);
    assert!(PACKET_FANOUT_QM as u32 == libc::PACKET_FANOUT_QM);
    assert!(PACKET_FANOUT_FLAG_ROLLOVER as u32 == libc::PACKET_FANOUT_FLAG_ROLLOVER);
    assert!(PACKET_FANOUT_FLAG_UNIQUEID as u32 == libc::PACKET_FANOUT_FLAG_UNIQUEID);
    assert!(PACKET_FANOUT_FLAG_DEFRAG as u32 == libc::PACKET_FANOUT_FLAG_DEFRAG);

    assert!(TP_STATUS_KERNEL == libc::TP_STATUS_KERNEL);
    assert!(TP_STATUS_USER == libc::TP_STATUS_USER);
    assert!(TP_STATUS_LOSING == libc::TP_STATUS_LOSING);
    assert!(TP_STATUS_CSUMNOTREADY == libc::TP_STATUS_CSUMNOTREADY);
    assert!(TP_STATUS_VLAN_VALID == libc::TP_STATUS_VLAN_VALID);
    assert!(TP_STATUS_BLK_TMO == libc::TP_STATUS_BLK_TMO);
    assert!(TP_STATUS_VLAN_TPID_VALID == libc::TP_STATUS_VLAN_TPID_VALID);
    assert!(TP_STATUS_CSUM_VALID == libc::TP_STATUS_CSUM_VALID);
    assert!(TP_STATUS_AVAILABLE == libc::TP_STATUS_AVAILABLE);
    assert!(TP_STATUS_SEND_REQUEST == libc::TP_STATUS_SEND_REQUEST);
    assert!(TP_STATUS_SENDING == libc::TP_STATUS_SENDING);
    assert!(TP_STATUS_WRONG_FORMAT == libc::TP_STATUS_WRONG_FORMAT);
    assert!(TP_FT_REQ_FILL_RXHASH == libc::TP_FT_REQ_FILL_RXHASH);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_argument_encoding() {
        assert_eq!(fanout_arg(0x1234, PACKET_FANOUT_HASH, 0), 0x0000_1234);
        assert_eq!(fanout_arg(7, PACKET_FANOUT_LB, 0), 0x0001_0007);
        assert_eq!(fanout_arg(0xffff, PACKET_FANOUT_CPU, PACKET_FANOUT_FLAG_DEFRAG), 0x8002_ffff);
        assert_eq!(
            fanout_arg(1, PACKET_FANOUT_HASH, PACKET_FANOUT_FLAG_ROLLOVER | PACKET_FANOUT_FLAG_DEFRAG),
            0x9000_0001
        );
    }

    #[test]
    fn header_lengths_match_kernel_macros() {
        assert_eq!(tpacket_align(0), 0);
        assert_eq!(tpacket_align(1), 16);
        assert_eq!(tpacket_align(48), 48);
        assert_eq!(tpacket_align(49), 64);
        assert_eq!(TPACKET3_HDRLEN, 68);
        assert_eq!(TX_DATA_OFFSET, 48);
        // The smallest frame the kernel accepts for V3 is the aligned header length.
        assert_eq!(tpacket_align(TPACKET3_HDRLEN), 80);
    }

    #[test]
    fn status_field_is_byte_20_of_a_zeroed_header() {
        let mut h = Tpacket3Hdr { tp_status: TP_STATUS_SEND_REQUEST, ..Tpacket3Hdr::default() };
        h.tp_len = 0x0102_0304;
        // SAFETY: Tpacket3Hdr is repr(C), 48 bytes, no padding holes (all
        // fields are integers laid out contiguously, checked above), so
        // viewing it as bytes is sound.
        let bytes: &[u8; 48] = unsafe { &*(&h as *const Tpacket3Hdr as *const [u8; 48]) };
        assert_eq!(u32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]), TP_STATUS_SEND_REQUEST);
        assert_eq!(u32::from_ne_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]), 0x0102_0304);
    }
}
