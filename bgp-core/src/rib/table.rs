//! The per-family route table: prefix -> every path received for it.
//!
//! RFC 4271 3.2 lets the Adj-RIBs-In and the Loc-RIB share storage; here
//! they do. Each destination holds the accepted paths of all peers (that is
//! the Adj-RIB-In of each peer, after import policy), and the Loc-RIB entry
//! is computed from them by [`super::best::select`]. A path is 16 bytes
//! (attributes pointer, peer, path id) and a destination with one path holds
//! it inline, so a single-path prefix costs one entry (key + path: 24 bytes
//! for IPv4) and an index slot (5 bytes, at most 3/4 of them used) and
//! nothing else.
//!
//! The index is a hash table, not an ordered map: peers (BIRD among them)
//! send prefixes in their own hash order, and in a million-entry B-tree
//! every such insert is a chain of cache misses. Nothing on the receive
//! path needs order; the two consumers that do (`show route`, longest
//! prefix match) sort on demand or probe each prefix length. The hash
//! table is the project's own ([`Shard`]) so that a batch of inserts can
//! fetch its lines ahead ([`Table::prefetch`]).
//!
//! The table is split into [`SHARDS`] hash tables chosen by hash bits the
//! tables themselves do not use. A hash table doubles when it fills up and
//! holds old and new arrays while it moves the entries; with one table of
//! a million routes that transient alone is as large as the table. With
//! shards only one shard grows at a time, so peak memory stays close to
//! the steady state, and no single insert stalls for a whole-table rehash.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::RandomState;

use super::PeerId;
use super::attrs::Attrs;
use super::shard::Shard;

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
pub(crate) struct Table<K> {
    shards: Box<[Shard<K, Paths>]>,
    /// Seeded per process, so a peer cannot pick prefixes that collide.
    hasher: RandomState,
    len: usize,
}

impl<K> std::fmt::Debug for Table<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("len", &self.len).finish()
    }
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: RandomState::default(),
            len: 0,
        }
    }
}

/// The shard for a hash. A shard takes the home slot from the low bits and
/// the metadata tag from the top seven; the shard comes from bits in
/// between, so that all entries of a shard still spread over its slots and
/// tags (a shard would need 2^40 slots to reach them).
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

    pub(crate) fn hash(&self, k: &K) -> u64 {
        self.hasher.hash_one(k)
    }

    /// Start fetching what an edit of the key with hash `h` will read (see
    /// [`Shard::prefetch`]); a batch of edits calls it some keys ahead.
    pub(crate) fn prefetch(&self, h: u64) {
        self.shards[shard_of(h)].prefetch(h);
    }

    pub(crate) fn get(&self, k: &K) -> Option<&Paths> {
        let h = self.hash(k);
        let shard = &self.shards[shard_of(h)];
        shard.find(h, k).map(|i| &shard.get(i).1)
    }

    /// Insert `path` for `k`, whose hash is `h` ([`Table::hash`]); `None` if
    /// nothing changed.
    pub(crate) fn upsert_hashed(&mut self, h: u64, k: K, path: Path) -> Option<Edit<'_>> {
        let hasher = &self.hasher;
        let shard = &mut self.shards[shard_of(h)];
        match shard.find(h, &k) {
            None => {
                self.len += 1;
                let (_, paths) = shard.insert_new(h, (k, Paths::One(path)), |k| hasher.hash_one(k));
                Some(Edit {
                    before: None,
                    after: Some(paths),
                })
            }
            Some(i) => {
                let paths = &mut shard.get_mut(i).1;
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
        let h = self.hash(&k);
        let hasher = &self.hasher;
        let shard = &mut self.shards[shard_of(h)];
        let i = shard.find(h, &k)?;
        let paths = &mut shard.get_mut(i).1;
        if !paths.as_slice().iter().any(&pred) {
            return None;
        }
        // The last path going (the common case: a withdrawal of a
        // single-path prefix) moves the old paths out instead of cloning.
        let before = if let Paths::One(_) = paths {
            None
        } else {
            let before = paths.clone();
            if !paths.remove_where(pred) {
                return Some(Edit {
                    before: Some(before),
                    after: Some(&shard.get(i).1),
                });
            }
            Some(before)
        };
        let (_, taken) = shard.remove_at(i, |k| hasher.hash_one(k));
        self.len -= 1;
        Some(Edit {
            before: Some(before.unwrap_or(taken)),
            after: None,
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
            s.shrink(|k| hasher.hash_one(k));
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
