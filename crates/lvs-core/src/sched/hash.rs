//! The hash functions the hashing schedulers (dh, sh, mh, lblc, lblcr) share: the kernel's
//! multiplicative `hash_32` (`include/linux/hash.h`) and `hsiphash` as a 64-bit kernel computes it
//! (`lib/siphash.c`: on 64-bit, "HalfSipHash-1-3" is really SipHash-1-3 truncated to 32 bits).

use std::net::IpAddr;

/// `GOLDEN_RATIO_32` of `include/linux/hash.h`.
pub(super) const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(val, bits)`: the top `bits` bits of `val * GOLDEN_RATIO_32` (x86 has no arch override).
/// `bits` must be in `1..=32`.
#[inline]
pub(super) fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// The address as the kernel's IPVS hashes see it, in host order: an IPv4 address as a number, an
/// IPv6 address folded by XOR of its four 32-bit words (`ip6[0]^ip6[1]^ip6[2]^ip6[3]`, then `ntohl`,
/// which commutes with XOR).
#[inline]
pub(super) fn addr_fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// An `hsiphash_key_t` of a 64-bit kernel: two `unsigned long` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HsipKey(pub u64, pub u64);

/// SipHash state after the key was mixed in.
struct Sip {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl Sip {
    #[inline]
    fn new(key: &HsipKey) -> Sip {
        Sip {
            v0: 0x736f_6d65_7073_6575 ^ key.0,
            v1: 0x646f_7261_6e64_6f6d ^ key.1,
            v2: 0x6c79_6765_6e65_7261 ^ key.0,
            v3: 0x7465_6462_7974_6573 ^ key.1,
        }
    }

    #[inline]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    /// One compression round for a message word.
    #[inline]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.v0 ^= m;
    }

    /// The last word (length byte plus tail), then three finalisation rounds.
    #[inline]
    fn finish(mut self, b: u64) -> u32 {
        self.compress(b);
        self.v2 ^= 0xff;
        self.round();
        self.round();
        self.round();
        (self.v0 ^ self.v1 ^ self.v2 ^ self.v3) as u32
    }
}

/// `hsiphash(data, len, key)` of a 64-bit kernel: SipHash-1-3 over `data`, truncated to 32 bits.
/// Only the 4-byte form is needed at run time; this general one checks it against the kernel's
/// self-test vectors.
#[cfg(test)]
pub(super) fn hsiphash(data: &[u8], key: &HsipKey) -> u32 {
    let mut s = Sip::new(key);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        s.compress(u64::from_le_bytes(w));
    }
    let mut b = (data.len() as u64) << 56;
    for (i, &byte) in chunks.remainder().iter().enumerate() {
        b |= u64::from(byte) << (8 * i);
    }
    s.finish(b)
}

/// `hsiphash(&v, sizeof(v), key)` for a `u32` stored in memory on a little-endian machine (x86):
/// the same as [`hsiphash`] over `v.to_le_bytes()`, without touching memory.
#[inline]
pub(super) fn hsiphash_u32(v: u32, key: &HsipKey) -> u32 {
    Sip::new(key).finish((4u64 << 56) | u64::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the kernel's self-test (`lib/siphash_kunit.c`): bytes 00..0f.
    const TEST_KEY: HsipKey = HsipKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);

    /// `test_vectors_hsiphash` for `BITS_PER_LONG == 64` from `lib/siphash_kunit.c`: the hash of
    /// the bytes `0, 1, …, i-1` for i = 0..=20.
    const HSIPHASH_VECTORS: [u32; 21] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
        0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
        0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040,
    ];

    /// A textbook SipHash-c-d (Aumasson & Bernstein), written independently of [`Sip`].
    fn siphash_cd(c: usize, d: usize, k0: u64, k1: u64, msg: &[u8]) -> u64 {
        let mut v = [
            k0 ^ 0x736f6d6570736575,
            k1 ^ 0x646f72616e646f6d,
            k0 ^ 0x6c7967656e657261,
            k1 ^ 0x7465646279746573,
        ];
        fn sipround(v: &mut [u64; 4]) {
            v[0] = v[0].wrapping_add(v[1]);
            v[2] = v[2].wrapping_add(v[3]);
            v[1] = v[1].rotate_left(13);
            v[3] = v[3].rotate_left(16);
            v[1] ^= v[0];
            v[3] ^= v[2];
            v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[1]);
            v[0] = v[0].wrapping_add(v[3]);
            v[1] = v[1].rotate_left(17);
            v[3] = v[3].rotate_left(21);
            v[1] ^= v[2];
            v[3] ^= v[0];
            v[2] = v[2].rotate_left(32);
        }
        // Pad: the message, zeros up to a multiple of 8 minus one, then the length mod 256.
        let mut padded = msg.to_vec();
        while padded.len() % 8 != 7 {
            padded.push(0);
        }
        padded.push(msg.len() as u8);
        for w in padded.chunks(8) {
            let m = w.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
            v[3] ^= m;
            for _ in 0..c {
                sipround(&mut v);
            }
            v[0] ^= m;
        }
        v[2] ^= 0xff;
        for _ in 0..d {
            sipround(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }

    #[test]
    fn textbook_siphash_2_4_matches_the_paper() {
        // Appendix A of the SipHash paper: key 00..0f, message 00..0e.
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash_cd(2, 4, TEST_KEY.0, TEST_KEY.1, &msg), 0xa129ca6149be45e5);
        // First entry of the reference implementation's vectors (empty message).
        assert_eq!(siphash_cd(2, 4, TEST_KEY.0, TEST_KEY.1, &[]), 0x726fdb47dd0e0e31);
    }

    #[test]
    fn hsiphash_matches_the_kernel_self_test_vectors() {
        let bytes: Vec<u8> = (0..64).collect();
        for (len, &want) in HSIPHASH_VECTORS.iter().enumerate() {
            assert_eq!(hsiphash(&bytes[..len], &TEST_KEY), want, "length {len}");
        }
        // hsiphash_1u32(0x03020100) is checked against vector 4 in the kernel too.
        assert_eq!(hsiphash_u32(0x0302_0100, &TEST_KEY), HSIPHASH_VECTORS[4]);
    }

    #[test]
    fn hsiphash_is_siphash_1_3_truncated() {
        let keys = [TEST_KEY, HsipKey(2654435761, 2654435761), HsipKey(2654446892, 2654446892)];
        let bytes: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        for key in &keys {
            for len in 0..bytes.len() {
                let want = siphash_cd(1, 3, key.0, key.1, &bytes[..len]) as u32;
                assert_eq!(hsiphash(&bytes[..len], key), want, "len {len}");
            }
            for v in [0u32, 1, 80, 0x0a00_0001, 0xc0a8_0101, 0xdead_beef, u32::MAX] {
                let want = siphash_cd(1, 3, key.0, key.1, &v.to_le_bytes()) as u32;
                assert_eq!(hsiphash_u32(v, key), want, "v {v:#x}");
                assert_eq!(hsiphash(&v.to_le_bytes(), key), want);
            }
        }
    }

    #[test]
    fn hash_32_golden_values() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 32), 0x61C8_8647);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(2, 8), 0xC3);
        // 10.0.0.1 and 192.168.1.1 (host order); values computed separately (Python, big integers).
        assert_eq!(hash_32(0x0a00_0001, 32), 0x27C8_8647);
        assert_eq!(hash_32(0x0a00_0001, 8), 0x27);
        assert_eq!(hash_32(0x0a00_0001, 10), 0x9F);
        assert_eq!(hash_32(0xc0a8_0101, 32), 0x88E6_CD47);
        assert_eq!(hash_32(0xc0a8_0101, 8), 0x88);
        assert_eq!(hash_32(0xc0a8_0101, 10), 0x223);
    }

    #[test]
    fn ipv6_fold_xors_the_words() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(addr_fold(&a), 0x2001_0db8 ^ 1);
        let b: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(addr_fold(&b), 0x0a01_0203);
    }
}
