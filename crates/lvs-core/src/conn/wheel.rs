//! A hierarchical timing wheel over intrusive `u32` links.
//!
//! Six levels of 64 slots cover 2^36 ms (about two years) at 1 ms resolution. An entry is filed by
//! the highest bit in which its expiry differs from the wheel's clock (`elapsed`), so level `L`
//! slots are `64^L` ms wide and always lie in the current `64^(L+1)` block. A 64-bit occupancy map
//! per level finds the next non-empty slot without walking empty ones, so a long jump of the clock
//! costs only the slots that hold entries.
//!
//! The lists are doubly linked through the entries (`prev`/`next`), so linking and unlinking are
//! O(1). A list head is named by a sentinel id (`SENTINEL + slot`), which lets an entry unlink itself
//! without knowing where it is filed.
//!
//! Re-arming is lazy: moving an expiry *later* only rewrites the entry's `expires`; the entry stays
//! in its (earlier) slot and is re-filed when that slot comes due. Only an expiry moved *earlier*
//! needs an unlink and relink. Invariant: an entry's slot comes due no later than its expiry.

/// "No entry".
pub(crate) const NIL: u32 = u32::MAX;
const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// List heads are named `SENTINEL + slot`; entry ids must stay below it.
const SENTINEL: u32 = NIL - (LEVELS * SLOTS) as u32 - 1;
/// The largest id an entry may have.
pub(crate) const MAX_ID: u32 = SENTINEL - 1;
/// Expiries further than this from the clock are filed at its edge (and re-filed when it comes).
const SPAN: u64 = (1 << (LEVELS as u32 * SLOT_BITS)) - 1;

/// What the wheel needs from the entry store.
pub(crate) trait TimerLinks {
    /// The entry's expiry (ms).
    fn expires(&self, id: u32) -> u64;
    /// `(prev, next)`.
    fn links(&self, id: u32) -> (u32, u32);
    /// Sets both links.
    fn set_links(&mut self, id: u32, prev: u32, next: u32);
    /// Sets `prev`.
    fn set_prev(&mut self, id: u32, prev: u32);
    /// Sets `next`.
    fn set_next(&mut self, id: u32, next: u32);
}

/// The wheel: list heads, occupancy maps and the clock up to which slots have been run.
#[derive(Clone)]
pub(crate) struct Wheel {
    elapsed: u64,
    heads: Box<[u32; LEVELS * SLOTS]>,
    occupied: [u64; LEVELS],
    len: usize,
}

impl std::fmt::Debug for Wheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel").field("elapsed", &self.elapsed).field("len", &self.len).finish()
    }
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel { elapsed: 0, heads: Box::new([NIL; LEVELS * SLOTS]), occupied: [0; LEVELS], len: 0 }
    }
}

impl Wheel {
    /// Number of linked entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes used (the heads; the links live in the entries).
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Wheel>() + LEVELS * SLOTS * 4
    }

    /// The slot (level * 64 + index) for an expiry, relative to the current clock.
    #[inline]
    fn place(&self, when: u64) -> usize {
        let when = when.max(self.elapsed).min(self.elapsed | SPAN);
        let diff = (when ^ self.elapsed) | (SLOTS as u64 - 1);
        let level = ((63 - diff.leading_zeros()) / SLOT_BITS) as usize;
        let index = ((when >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1);
        level * SLOTS + index
    }

    #[inline]
    fn mark(&mut self, slot: usize, on: bool) {
        let bit = 1u64 << (slot % SLOTS);
        if on {
            self.occupied[slot / SLOTS] |= bit;
        } else {
            self.occupied[slot / SLOTS] &= !bit;
        }
    }

    /// Files an unlinked entry by its expiry.
    #[inline(always)]
    pub(crate) fn link<T: TimerLinks>(&mut self, t: &mut T, id: u32) {
        let (prev, head) = self.push(id, t.expires(id));
        t.set_links(id, prev, head);
        if head != NIL {
            t.set_prev(head, id);
        }
    }

    /// The list half of [`link`](Self::link), for a caller that holds the entry: puts `id` at the
    /// head of the slot for `when` and returns the entry's new `(prev, next)`. The caller stores
    /// them in the entry and, when `next` is not `NIL`, sets that entry's `prev` to `id`.
    #[inline(always)]
    pub(crate) fn push(&mut self, id: u32, when: u64) -> (u32, u32) {
        let slot = self.place(when);
        let head = std::mem::replace(&mut self.heads[slot], id);
        self.mark(slot, true);
        self.len += 1;
        (SENTINEL + slot as u32, head)
    }

    /// True when the entry is filed.
    #[inline]
    pub(crate) fn is_linked<T: TimerLinks>(t: &T, id: u32) -> bool {
        t.links(id).0 != NIL
    }

    /// Removes an entry from its list (no-op when it is not filed).
    #[inline]
    pub(crate) fn unlink<T: TimerLinks>(&mut self, t: &mut T, id: u32) {
        let (prev, next) = t.links(id);
        if prev == NIL {
            return;
        }
        if prev >= SENTINEL {
            let slot = (prev - SENTINEL) as usize;
            self.heads[slot] = next;
            if next == NIL {
                self.mark(slot, false);
            }
        } else {
            t.set_next(prev, next);
        }
        if next != NIL {
            t.set_prev(next, prev);
        }
        t.set_links(id, NIL, NIL);
        self.len -= 1;
    }

    /// The entry now stored at `to` was moved there from elsewhere: points its neighbours (or its
    /// list head) at the new id.
    #[inline]
    pub(crate) fn moved<T: TimerLinks>(&mut self, t: &mut T, to: u32) {
        let (prev, next) = t.links(to);
        if prev == NIL {
            return;
        }
        if prev >= SENTINEL {
            self.heads[(prev - SENTINEL) as usize] = to;
        } else {
            t.set_next(prev, to);
        }
        if next != NIL {
            t.set_prev(next, to);
        }
    }

    /// Empties every list, keeping the clock (the caller resets the entries' links).
    pub(crate) fn reset(&mut self) {
        self.heads.fill(NIL);
        self.occupied = [0; LEVELS];
        self.len = 0;
    }

    /// The earliest non-empty slot and the time it comes due.
    fn next_slot(&self) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for level in 0..LEVELS {
            let bits = self.occupied[level];
            if bits == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let cur = ((self.elapsed >> shift) as u32) & (SLOTS as u32 - 1);
            let ahead = bits & (u64::MAX << cur);
            // Slots behind the clock cannot be occupied (they were run when the clock passed them);
            // should one be, it is simply due now.
            let (index, behind) =
                if ahead != 0 { (ahead.trailing_zeros(), false) } else { (bits.trailing_zeros(), true) };
            let block_bits = shift + SLOT_BITS;
            let block = if block_bits >= 64 { 0 } else { self.elapsed & !((1u64 << block_bits) - 1) };
            let start = block + ((index as u64) << shift);
            let due = if behind { self.elapsed } else { start.max(self.elapsed) };
            if best.is_none_or(|(_, d)| due < d) {
                best = Some((level * SLOTS + index as usize, due));
            }
        }
        best
    }

    /// Runs every slot due by `now`: entries whose expiry is `<= now` are unlinked and pushed on
    /// `due` with their expiry; the others are re-filed. Afterwards the clock is `now`.
    pub(crate) fn poll<T: TimerLinks>(&mut self, t: &mut T, now: u64, due: &mut Vec<(u64, u32)>) {
        if now < self.elapsed {
            return;
        }
        while let Some((slot, when)) = self.next_slot() {
            if when > now {
                break;
            }
            self.elapsed = self.elapsed.max(when);
            let mut id = self.heads[slot];
            self.heads[slot] = NIL;
            self.mark(slot, false);
            while id != NIL {
                let (_, next) = t.links(id);
                t.set_links(id, NIL, NIL);
                self.len -= 1;
                let when = t.expires(id);
                if when <= now {
                    due.push((when, id));
                } else {
                    self.link(t, id);
                }
                id = next;
            }
        }
        self.elapsed = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Store {
        exp: Vec<u64>,
        prev: Vec<u32>,
        next: Vec<u32>,
    }

    impl Store {
        fn add(&mut self, when: u64) -> u32 {
            self.exp.push(when);
            self.prev.push(NIL);
            self.next.push(NIL);
            (self.exp.len() - 1) as u32
        }
    }

    impl TimerLinks for Store {
        fn expires(&self, id: u32) -> u64 {
            self.exp[id as usize]
        }
        fn links(&self, id: u32) -> (u32, u32) {
            (self.prev[id as usize], self.next[id as usize])
        }
        fn set_links(&mut self, id: u32, prev: u32, next: u32) {
            self.prev[id as usize] = prev;
            self.next[id as usize] = next;
        }
        fn set_prev(&mut self, id: u32, prev: u32) {
            self.prev[id as usize] = prev;
        }
        fn set_next(&mut self, id: u32, next: u32) {
            self.next[id as usize] = next;
        }
    }

    #[test]
    fn fires_exactly_at_expiry() {
        let mut w = Wheel::default();
        let mut s = Store::default();
        let a = s.add(10_000);
        w.link(&mut s, a);
        let mut due = Vec::new();
        w.poll(&mut s, 9_999, &mut due);
        assert!(due.is_empty());
        w.poll(&mut s, 10_000, &mut due);
        assert_eq!(due, [(10_000, a)]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn lazy_extension_and_early_move() {
        let mut w = Wheel::default();
        let mut s = Store::default();
        let a = s.add(60_000);
        w.link(&mut s, a);
        // Extend lazily: the entry stays filed early and is re-filed when its old slot comes due.
        s.exp[a as usize] = 900_000;
        let mut due = Vec::new();
        w.poll(&mut s, 100_000, &mut due);
        assert!(due.is_empty());
        assert!(Wheel::is_linked(&s, a));
        // Move earlier: must unlink and relink.
        w.unlink(&mut s, a);
        s.exp[a as usize] = 110_000;
        w.link(&mut s, a);
        w.poll(&mut s, 109_999, &mut due);
        assert!(due.is_empty());
        w.poll(&mut s, 200_000, &mut due);
        assert_eq!(due, [(110_000, a)]);
    }

    #[test]
    fn random_operations_match_a_sorted_model() {
        // Deterministic pseudo-random schedule: inserts, lazy extensions, early moves, removals and
        // polls with jumps from 1 ms to days; every poll must return exactly the model's due set.
        let mut rng = Rng::new(42);
        let mut w = Wheel::default();
        let mut s = Store::default();
        let mut model: BTreeMap<u32, u64> = BTreeMap::new();
        let mut now = 5u64;
        for round in 0..4000 {
            match rng.below(10) {
                0..=3 => {
                    let when = now + rng.below(1_000_000) as u64 * if rng.below(4) == 0 { 3000 } else { 1 };
                    let id = s.add(when);
                    w.link(&mut s, id);
                    model.insert(id, when);
                }
                4 | 5 if !model.is_empty() => {
                    let k = *model.keys().nth(rng.below(model.len() as u32) as usize).unwrap();
                    let new = now + rng.below(2_000_000) as u64;
                    let old = model[&k];
                    s.exp[k as usize] = new;
                    if new < old {
                        w.unlink(&mut s, k);
                        w.link(&mut s, k);
                    }
                    model.insert(k, new);
                }
                6 if !model.is_empty() => {
                    let k = *model.keys().nth(rng.below(model.len() as u32) as usize).unwrap();
                    w.unlink(&mut s, k);
                    model.remove(&k);
                }
                _ => {
                    now += match rng.below(5) {
                        0 => 1,
                        1 => rng.below(100) as u64,
                        2 => rng.below(100_000) as u64,
                        3 => rng.below(5_000_000) as u64,
                        _ => rng.below(200) as u64 * 86_400_000,
                    };
                    let mut due = Vec::new();
                    w.poll(&mut s, now, &mut due);
                    assert!(due.iter().all(|&(t, id)| t <= now && s.exp[id as usize] == t));
                    let mut due: Vec<u32> = due.into_iter().map(|(_, id)| id).collect();
                    due.sort_unstable();
                    let expect: Vec<u32> = model.iter().filter(|(_, &t)| t <= now).map(|(&k, _)| k).collect();
                    assert_eq!(due, expect, "round {round} now {now}");
                    for k in expect {
                        model.remove(&k);
                    }
                    assert_eq!(w.len(), model.len());
                }
            }
        }
    }
}
