//! An open-addressing hash index from a 32-bit key hash to a `u32` entry id.
//!
//! Each slot is one `u64`: the key's 32-bit hash in the high half and the id in the low half, so a
//! probe rejects most non-matching slots without touching the entry. Linear probing from
//! `hash & mask`, at most 3/4 full, deletion by backward shift (no tombstones). Keys are not
//! stored: the caller's `eq` closure checks a candidate id against the entry.

const EMPTY: u64 = u64::MAX;
const MIN_SLOTS: usize = 64;

/// The index.
#[derive(Clone)]
pub(crate) struct Index {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("len", &self.len).field("slots", &self.slots.len()).finish()
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::with_slots(MIN_SLOTS)
    }
}

#[inline]
fn pack(hash: u32, id: u32) -> u64 {
    ((hash as u64) << 32) | id as u64
}

impl Index {
    fn with_slots(n: usize) -> Index {
        debug_assert!(n.is_power_of_two());
        let mut slots = Vec::with_capacity(n);
        lvs_mem::advise_huge_pages(&slots);
        slots.resize(n, EMPTY);
        Index { slots, mask: n - 1, len: 0 }
    }

    /// Number of ids stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * 8
    }

    /// The first id under `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if (s >> 32) as u32 == hash && eq(s as u32) {
                return Some(s as u32);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Prefetches the home slot of `hash` (to bring its cache line in early).
    #[inline]
    pub(crate) fn prefetch(&self, hash: u32) {
        lvs_mem::prefetch_read(&self.slots[hash as usize & self.mask]);
    }

    /// Adds `id` under `hash` (duplicates are the caller's business).
    #[inline(always)]
    pub(crate) fn insert(&mut self, hash: u32, id: u32) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize(self.slots.len() * 2);
        }
        self.put(pack(hash, id));
        self.len += 1;
    }

    /// Stores `word` in the first empty slot from its home. The first four slots are looked at
    /// together, without a branch per slot, so the usual short probe does not mispredict on
    /// where it ends.
    #[inline(always)]
    fn put(&mut self, word: u64) {
        let mut i = (word >> 32) as usize & self.mask;
        if let Some(s) = self.slots.get(i..i + 4) {
            let empty = (s[0] == EMPTY) as u32
                | ((s[1] == EMPTY) as u32) << 1
                | ((s[2] == EMPTY) as u32) << 2
                | ((s[3] == EMPTY) as u32) << 3;
            if empty != 0 {
                self.slots[i + empty.trailing_zeros() as usize] = word;
                return;
            }
            i = (i + 4) & self.mask;
        }
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = word;
    }

    /// Removes `id` stored under `hash`; false if it is not there.
    pub(crate) fn remove(&mut self, hash: u32, id: u32) -> bool {
        let want = pack(hash, id);
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return false;
            }
            if s == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward shift: pull later members of the cluster into the hole when their home slot is
        // not between the hole and their position.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let home = (s >> 32) as usize & self.mask;
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Repoints `old` (stored under `hash`) to `new`.
    pub(crate) fn replace(&mut self, hash: u32, old: u32, new: u32) -> bool {
        let want = pack(hash, old);
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return false;
            }
            if s == want {
                self.slots[i] = pack(hash, new);
                return true;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Shrinks to fit when at most 1/8 full (keeps memory proportional to the live count).
    pub(crate) fn maybe_shrink(&mut self) {
        let n = self.slots.len();
        if n > MIN_SLOTS && self.len * 8 <= n {
            let target = (self.len * 2).next_power_of_two().max(MIN_SLOTS);
            if target < n {
                self.resize(target);
            }
        }
    }

    #[cold]
    fn resize(&mut self, n: usize) {
        let old = std::mem::replace(self, Index::with_slots(n));
        self.len = old.len;
        for s in old.slots {
            if s != EMPTY {
                self.put(s);
            }
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        *self = Index::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::HashMap;

    #[test]
    fn clusters_wrap_around_the_end() {
        // Homes in the last slots of the smallest index: inserts run past the end (where the
        // four-slot look-ahead does not fit) and wrap to slot 0.
        let mut idx = Index::default();
        let homes = [62u32, 63, 61, 63, 62, 60, 63, 63, 59, 62, 63, 61, 0, 1, 63, 62];
        for (id, &h) in homes.iter().enumerate() {
            idx.insert(h, id as u32);
        }
        assert_eq!(idx.slots.len(), MIN_SLOTS, "no resize: 16 of 64");
        for (id, &h) in homes.iter().enumerate() {
            assert_eq!(idx.find(h, |c| c == id as u32), Some(id as u32), "id {id}");
        }
        for (id, &h) in homes.iter().enumerate().rev() {
            assert!(idx.remove(h, id as u32), "id {id}");
        }
        assert_eq!(idx.len(), 0);
        assert!(idx.slots.iter().all(|&s| s == EMPTY));
    }

    #[test]
    fn insert_find_remove_against_a_map() {
        let mut rng = Rng::new(9);
        let mut idx = Index::default();
        let mut model: HashMap<u32, u32> = HashMap::new();
        let mut next_id = 0u32;
        for _ in 0..20_000 {
            if rng.below(3) != 0 || model.is_empty() {
                // Few distinct hashes so that clusters and equal hashes are common.
                let h = rng.below(5000) | (rng.below(4) << 30);
                idx.insert(h, next_id);
                model.insert(next_id, h);
                next_id += 1;
            } else {
                let k = *model.keys().next().unwrap();
                let h = model.remove(&k).unwrap();
                assert!(idx.remove(h, k));
                assert!(!idx.remove(h, k));
            }
        }
        assert_eq!(idx.len(), model.len());
        for (&id, &h) in &model {
            assert_eq!(idx.find(h, |c| c == id), Some(id));
        }
        // 12345 is never generated (low part < 5000, no high bits), so it has no candidates.
        assert_eq!(idx.find(12345, |_| true), None);
        for (&id, &h) in model.clone().iter() {
            assert!(idx.remove(h, id));
        }
        assert_eq!(idx.len(), 0);
        idx.maybe_shrink();
        assert_eq!(idx.slots.len(), MIN_SLOTS);
    }
}
