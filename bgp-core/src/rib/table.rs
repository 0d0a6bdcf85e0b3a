//! The per-family route table: prefix -> every path received for it.
//!
//! RFC 4271 3.2 lets the Adj-RIBs-In and the Loc-RIB share storage; here
//! they do. Each destination holds the accepted paths of all peers (that is
//! the Adj-RIB-In of each peer, after import policy), and the Loc-RIB entry
//! is computed from them by [`super::best::select`]. A path is 16 bytes
//! (attributes pointer, peer, path id) and a destination with one path holds
//! it inline, so a single-path prefix costs one hash table slot (key + path:
//! 24 bytes and a control byte for IPv4) and nothing else.
//!
//! The index is a hash table, not an ordered map: peers (BIRD among them)
//! send prefixes in their own hash order, and in a million-entry B-tree
//! every such insert is a chain of cache misses. Nothing on the receive
//! path needs order; the two consumers that do (`show route`, longest
//! prefix match) sort on demand or probe each prefix length.
//!
//! The table is split into [`SHARDS`] hash tables chosen by hash bits the
//! tables themselves do not use. A hash table doubles when it fills up and
//! holds old and new arrays while it moves the entries; with one table of
//! a million routes that transient alone is as large as the table. With
//! shards only one shard grows at a time, so peak memory stays close to
//! the steady state, and no single insert stalls for a whole-table rehash.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::PeerId;
use super::attrs::Attrs;

/// Number of sub-tables; a power of two (see [`shard_of`]).
const SHARDS: usize = 64;

/// One path: attributes (shared), where it came from, its ADD-PATH id.
#[derive(Debug, Clone)]
pub struct Path {
    pub attrs: Attrs,
    pub peer: PeerId,
    /// RFC 7911 path identifier (0 without ADD-PATH).
    pub path_id: u32,
}

impl Path {
    /// Same source, same identifier, same interned attributes.
    pub fn same(&self, other: &Path) -> bool {
        self.peer == other.peer && self.path_id == other.path_id && self.attrs.same(&other.attrs)
    }
}

/// The paths of one destination; one path is kept inline (no allocation).
/// The list of the rare multi-path destination is boxed so that the enum is
/// as small as one path (16 bytes: `Many` fits beside the pointer niche of
/// `One`), which is most of the size of a hash table slot.
#[derive(Debug, Clone)]
pub(crate) enum Paths {
    One(Path),
    /// Two or more paths (empty only transiently, while being removed).
    #[expect(
        clippy::box_collection,
        reason = "a bare Vec would make every destination 24 bytes, not 16"
    )]
    Many(Box<Vec<Path>>),
}

impl Paths {
    pub(crate) fn as_slice(&self) -> &[Path] {
        match self {
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v.as_slice(),
        }
    }

    /// Insert or replace the path with the same (peer, path id). Returns
    /// false if that exact path was already there (nothing changed).
    fn upsert(&mut self, path: Path) -> bool {
        match self {
            Paths::One(p) if p.peer == path.peer && p.path_id == path.path_id => {
                if p.attrs.same(&path.attrs) {
                    return false;
                }
                *p = path;
            }
            Paths::One(p) => {
                let first = p.clone();
                *self = Paths::Many(Box::new(vec![first, path]));
            }
            Paths::Many(v) => {
                match v
                    .iter_mut()
                    .find(|p| p.peer == path.peer && p.path_id == path.path_id)
                {
                    Some(p) if p.attrs.same(&path.attrs) => return false,
                    Some(p) => *p = path,
                    None => v.push(path),
                }
            }
        }
        true
    }

    /// Remove the paths matching `pred` (at least one does); returns true
    /// if none is left, and the caller then drops the destination.
    fn remove_where(&mut self, pred: impl Fn(&Path) -> bool) -> bool {
        match self {
            Paths::One(_) => true,
            Paths::Many(v) => {
                v.retain(|p| !pred(p));
                if v.len() == 1 {
                    let last = v.pop().expect("one left");
                    *self = Paths::One(last);
                }
                self.as_slice().is_empty()
            }
        }
    }
}

/// A map from prefix to paths for one address family.
#[derive(Debug)]
pub(crate) struct Table<K> {
    shards: Box<[HashTable<(K, Paths)>]>,
    /// Seeded per process, so a peer cannot pick prefixes that collide.
    hasher: RandomState,
    len: usize,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
            hasher: RandomState::default(),
            len: 0,
        }
    }
}

/// The shard for a hash. hashbrown takes the bucket index from the low bits
/// and the 7-bit control tag from the top bits; the shard comes from bits
/// in between, so that all entries of a shard still spread over its
/// buckets and tags (a shard would need 2^40 buckets to reach them).
fn shard_of(hash: u64) -> usize {
    (hash >> 40) as usize & (SHARDS - 1)
}

/// What an insert/remove did to a destination's path list.
pub(crate) struct Edit<'a> {
    /// The paths before the edit (`None`: the destination was new).
    pub before: Option<Paths>,
    /// The paths after (`None`: the destination is gone).
    pub after: Option<&'a Paths>,
}

impl<K: Hash + Eq + Copy> Table<K> {
    /// Destinations held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, k: &K) -> Option<&Paths> {
        let h = self.hasher.hash_one(k);
        self.shards[shard_of(h)]
            .find(h, |(key, _)| key == k)
            .map(|(_, p)| p)
    }

    /// Insert `path` for `k`; `None` if nothing changed.
    pub(crate) fn upsert(&mut self, k: K, path: Path) -> Option<Edit<'_>> {
        let h = self.hasher.hash_one(k);
        let hasher = &self.hasher;
        let shard = &mut self.shards[shard_of(h)];
        match shard.entry(h, |(key, _)| *key == k, |(key, _)| hasher.hash_one(key)) {
            Entry::Vacant(e) => {
                self.len += 1;
                let slot = e.insert((k, Paths::One(path))).into_mut();
                Some(Edit {
                    before: None,
                    after: Some(&slot.1),
                })
            }
            Entry::Occupied(e) => {
                let paths = &mut e.into_mut().1;
                // Cloning a one-path destination is an Arc increment; the
                // multi-path case is rare and small.
                let before = paths.clone();
                if !paths.upsert(path) {
                    return None;
                }
                Some(Edit {
                    before: Some(before),
                    after: Some(paths),
                })
            }
        }
    }

    /// Remove the paths of `k` matching `pred`; `None` if none matched.
    pub(crate) fn remove(&mut self, k: K, pred: impl Fn(&Path) -> bool) -> Option<Edit<'_>> {
        let h = self.hasher.hash_one(k);
        let shard = &mut self.shards[shard_of(h)];
        let Ok(mut e) = shard.find_entry(h, |(key, _)| *key == k) else {
            return None;
        };
        if !e.get().1.as_slice().iter().any(&pred) {
            return None;
        }
        // The last path going (the common case: a withdrawal of a
        // single-path prefix) moves the old paths out instead of cloning.
        if let Paths::One(_) = e.get().1 {
            let ((_, before), _) = e.remove();
            self.len -= 1;
            return Some(Edit {
                before: Some(before),
                after: None,
            });
        }
        let before = e.get().1.clone();
        if e.get_mut().1.remove_where(pred) {
            e.remove();
            self.len -= 1;
            return Some(Edit {
                before: Some(before),
                after: None,
            });
        }
        Some(Edit {
            before: Some(before),
            after: Some(&e.into_mut().1),
        })
    }

    /// Every destination, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &Paths)> {
        self.shards
            .iter()
            .flat_map(|s| s.iter().map(|(k, p)| (*k, p)))
    }

    /// Give memory back after mass removal (a peer went down): a shard
    /// shrinks when it is less than a quarter full, so a flapping session
    /// does not rehash it every time.
    pub(crate) fn shrink(&mut self) {
        let hasher = &self.hasher;
        for s in self.shards.iter_mut() {
            if s.len() < s.capacity() / 4 {
                s.shrink_to_fit(|(k, _)| hasher.hash_one(k));
            }
        }
    }

    /// Keys with at least one path matching `pred`.
    pub(crate) fn keys_where(&self, pred: impl Fn(&Path) -> bool) -> Vec<K> {
        self.iter()
            .filter(|(_, p)| p.as_slice().iter().any(&pred))
            .map(|(k, _)| k)
            .collect()
    }
}

impl<K: Hash + Ord + Copy> Table<K> {
    /// Every destination in prefix order. Sorts a list of references, so
    /// it is for display (`show route`), not for the receive path.
    pub(crate) fn sorted(&self) -> Vec<(K, &Paths)> {
        let mut v: Vec<(K, &Paths)> = self.iter().collect();
        v.sort_unstable_by_key(|a| a.0);
        v
    }
}
