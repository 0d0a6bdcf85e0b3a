//! One shard of the route table (see `table.rs`): an open-addressing hash
//! index with linear probing over a dense vector of entries. Per slot the
//! index holds a metadata byte (empty, or full with seven bits of the key's
//! hash) and the position of its entry.
//!
//! Why not hashbrown, which it replaced: in a table far larger than the
//! cache, an insert waits for the lines of its slot, whose address only the
//! table knows. Here the caller can ask for them ahead of time
//! ([`Shard::prefetch`]) for the routes of a whole UPDATE, so the misses
//! overlap instead of coming one after the other (that wait was most of
//! bgpd's CPU per received route), and a new entry is appended to a vector
//! (a line already in the cache) instead of stored in a random slot. Growing
//! rebuilds the small index only; the entries do not move.
//!
//! Invariants: the full slots and the entries are in one-to-one
//! correspondence through `index`; every full slot sits in the run of full
//! slots that starts at its key's home slot (linear probing without
//! tombstones: a removal shifts later slots back).

use std::hash::Hash;

/// Metadata of an empty slot; a full one is `FULL | 7 hash bits`.
const EMPTY: u8 = 0;
const FULL: u8 = 0x80;
/// Smallest number of slots once something is stored.
const MIN_SLOTS: usize = 8;

/// The metadata byte for a hash: its top seven bits (the home slot comes
/// from the low bits and the table's shard from bits 40-45).
fn tag(hash: u64) -> u8 {
    FULL | (hash >> 57) as u8
}

pub(crate) struct Shard<K, V> {
    /// Per slot: `EMPTY` or the tag of the entry it points to.
    ctrl: Box<[u8]>,
    /// Per slot: the position of its entry in `entries` (where full).
    index: Box<[u32]>,
    entries: Vec<(K, V)>,
}

impl<K, V> Default for Shard<K, V> {
    fn default() -> Self {
        Shard {
            ctrl: Box::new([]),
            index: Box::new([]),
            entries: Vec::new(),
        }
    }
}

/// Ask the CPU for the cache line holding `p`, without waiting for it.
#[allow(unsafe_code)]
fn prefetch_line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint with no architectural effect: it never
    // faults and does not dereference `p` (the intrinsic is `unsafe` only as
    // a `target_feature` function; SSE is part of the x86_64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<K: Eq + Hash, V> Shard<K, V> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Slots in the index.
    pub(crate) fn slots(&self) -> usize {
        self.ctrl.len()
    }

    fn mask(&self) -> usize {
        self.ctrl.len().wrapping_sub(1)
    }

    /// Start fetching the index lines an operation on `hash` reads first.
    pub(crate) fn prefetch(&self, hash: u64) {
        if self.ctrl.is_empty() {
            return;
        }
        let i = hash as usize & self.mask();
        prefetch_line(&self.ctrl[i]);
        prefetch_line(&self.index[i]);
    }

    /// The slot of `key`.
    pub(crate) fn find(&self, hash: u64, key: &K) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let (mask, t) = (self.mask(), tag(hash));
        let mut i = hash as usize & mask;
        loop {
            match self.ctrl[i] {
                EMPTY => return None,
                c if c == t && self.get(i).0 == *key => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The entry of a full slot.
    pub(crate) fn get(&self, slot: usize) -> &(K, V) {
        &self.entries[self.index[slot] as usize]
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> &mut (K, V) {
        &mut self.entries[self.index[slot] as usize]
    }

    /// Store an entry whose key is not in the table; returns it.
    /// `rehash` gives the hash of a stored key (to rebuild the index).
    pub(crate) fn insert_new(
        &mut self,
        hash: u64,
        entry: (K, V),
        rehash: impl Fn(&K) -> u64,
    ) -> &(K, V) {
        // At most 3/4 full: with linear probing, a search that misses then
        // reads about 8 adjacent metadata bytes (one line or two).
        if (self.len() + 1) * 4 > self.slots() * 3 {
            let slots = (self.slots() * 2).max(MIN_SLOTS);
            self.reindex(slots, &rehash);
        }
        let at = u32::try_from(self.entries.len()).expect("under 2^32 routes per shard");
        self.place(hash, at);
        self.entries.push(entry);
        &self.entries[at as usize]
    }

    /// Point the first empty slot from `hash`'s home at entry `at`.
    fn place(&mut self, hash: u64, at: u32) {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.ctrl[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.ctrl[i] = tag(hash);
        self.index[i] = at;
    }

    /// Take out the entry of full slot `slot`.
    pub(crate) fn remove_at(&mut self, slot: usize, rehash: impl Fn(&K) -> u64) -> (K, V) {
        let at = self.index[slot] as usize;
        self.free_slot(slot, &rehash);
        let out = self.entries.swap_remove(at);
        // The last entry moved into the gap: repoint its slot.
        if let Some((k, _)) = self.entries.get(at) {
            let moved = self.entries.len() as u32;
            let mask = self.mask();
            let mut i = rehash(k) as usize & mask;
            while !(self.ctrl[i] != EMPTY && self.index[i] == moved) {
                i = (i + 1) & mask;
            }
            self.index[i] = at as u32;
        }
        out
    }

    /// Empty `slot`, shifting back the slots after it that may move closer
    /// to their home, so that no search stops short at the hole (Knuth's
    /// algorithm R, TAOCP 6.4).
    fn free_slot(&mut self, slot: usize, rehash: &impl Fn(&K) -> u64) {
        let mask = self.mask();
        let mut hole = slot;
        let mut j = slot;
        loop {
            j = (j + 1) & mask;
            if self.ctrl[j] == EMPTY {
                break;
            }
            let home = rehash(&self.get(j).0) as usize & mask;
            // The slot at j stays if its home lies cyclically in (hole, j]:
            // moving it to the hole would put it before its home.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.ctrl[hole] = self.ctrl[j];
                self.index[hole] = self.index[j];
                hole = j;
            }
        }
        self.ctrl[hole] = EMPTY;
    }

    /// Rebuild the index with `slots` slots (a power of two, more than the
    /// entries); the entries stay where they are.
    fn reindex(&mut self, slots: usize, rehash: &impl Fn(&K) -> u64) {
        debug_assert!(slots.is_power_of_two() && slots > self.entries.len());
        self.ctrl = vec![EMPTY; slots].into_boxed_slice();
        self.index = vec![0; slots].into_boxed_slice();
        for at in 0..self.entries.len() {
            let h = rehash(&self.entries[at].0);
            self.place(h, at as u32);
        }
    }

    /// Give memory back when less than a quarter of the index is used (so
    /// that a table refilled after a flap is not rebuilt every time).
    pub(crate) fn shrink(&mut self, rehash: impl Fn(&K) -> u64) {
        if self.len() >= self.slots() / 4 {
            return;
        }
        if self.entries.is_empty() {
            *self = Shard::default();
            return;
        }
        let slots = (self.len() * 2).next_power_of_two().max(MIN_SLOTS);
        if slots < self.slots() {
            self.reindex(slots, &rehash);
        }
        self.entries.shrink_to_fit();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A deliberately poor hash, so that runs and wrap-around are common in
    /// a small table.
    fn h(k: &u32) -> u64 {
        u64::from(*k % 13).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(*k / 13) << 57
    }

    fn insert(s: &mut Shard<u32, String>, k: u32) {
        assert!(s.find(h(&k), &k).is_none());
        s.insert_new(h(&k), (k, k.to_string()), h);
    }

    #[test]
    fn behaves_as_a_map_through_inserts_removals_growth_and_shrinking() {
        let mut s: Shard<u32, String> = Shard::default();
        let mut model: HashMap<u32, String> = HashMap::new();
        // A fixed pseudo-random sequence of operations (xorshift).
        let mut x: u32 = 0x1234_5678;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = x % 300;
            match (s.find(h(&k), &k), step % 3) {
                (None, _) => {
                    insert(&mut s, k);
                    model.insert(k, k.to_string());
                }
                (Some(i), 0) => {
                    let (rk, rv) = s.remove_at(i, h);
                    assert_eq!((rk, rv), (k, model.remove(&k).unwrap()));
                }
                (Some(i), _) => {
                    s.get_mut(i).1.push('+');
                    model.get_mut(&k).unwrap().push('+');
                }
            }
            if step % 5_000 == 4_999 {
                s.shrink(h);
            }
            assert_eq!(s.len(), model.len());
        }
        for (k, v) in &model {
            let i = s.find(h(k), k).expect("every key of the model is found");
            assert_eq!(&s.get(i).1, v);
        }
        let mut seen: Vec<u32> = s.iter().map(|(k, _)| *k).collect();
        seen.sort_unstable();
        let mut want: Vec<u32> = model.keys().copied().collect();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn emptied_table_gives_its_memory_back_and_drops_values() {
        use std::rc::Rc;
        let counted = Rc::new(());
        let mut s: Shard<u32, Rc<()>> = Shard::default();
        for k in 0..1_000u32 {
            s.insert_new(h(&k), (k, counted.clone()), h);
        }
        assert_eq!(Rc::strong_count(&counted), 1_001);
        for k in 0..990u32 {
            let i = s.find(h(&k), &k).unwrap();
            s.remove_at(i, h);
        }
        s.shrink(h);
        assert!(s.slots() <= 32, "slots {}", s.slots());
        assert_eq!(s.len(), 10);
        for k in 990..1_000u32 {
            assert!(s.find(h(&k), &k).is_some());
        }
        drop(s);
        assert_eq!(Rc::strong_count(&counted), 1);
    }
}
