//! The per-family route table: prefix -> every path received for it.
//!
//! RFC 4271 3.2 lets the Adj-RIBs-In and the Loc-RIB share storage; here
//! they do. Each destination holds the accepted paths of all peers (that is
//! the Adj-RIB-In of each peer, after import policy), and the Loc-RIB entry
//! is computed from them by [`super::best::select`]. A path is 16 bytes
//! (attributes pointer, peer, path id) and a destination with one path holds
//! it inline, so a table of a million single-path prefixes costs roughly the
//! B-tree nodes and nothing else.

use std::collections::BTreeMap;

use super::PeerId;
use super::attrs::Attrs;

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
#[derive(Debug, Clone)]
pub(crate) enum Paths {
    One(Path),
    Many(Vec<Path>),
}

impl Paths {
    pub(crate) fn as_slice(&self) -> &[Path] {
        match self {
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v,
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
                *self = Paths::Many(vec![first, path]);
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

    /// Remove the paths matching `pred`; returns how many went. The caller
    /// drops the destination when [`Paths::is_empty`].
    fn remove_where(&mut self, pred: impl Fn(&Path) -> bool) -> usize {
        match self {
            Paths::One(p) => {
                if pred(p) {
                    *self = Paths::Many(Vec::new());
                    1
                } else {
                    0
                }
            }
            Paths::Many(v) => {
                let before = v.len();
                v.retain(|p| !pred(p));
                let removed = before - v.len();
                if v.len() == 1 {
                    let last = v.pop().expect("one left");
                    *self = Paths::One(last);
                }
                removed
            }
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Paths::Many(v) if v.is_empty())
    }
}

/// A map from prefix to paths for one address family.
#[derive(Debug)]
pub(crate) struct Table<K> {
    pub(crate) map: BTreeMap<K, Paths>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            map: BTreeMap::new(),
        }
    }
}

/// What an insert/remove did to a destination's path list.
pub(crate) struct Edit<'a> {
    /// The paths before the edit (`None`: the destination was new).
    pub before: Option<Paths>,
    /// The paths after (`None`: the destination is gone).
    pub after: Option<&'a Paths>,
}

impl<K: Ord + Copy> Table<K> {
    pub(crate) fn get(&self, k: &K) -> Option<&Paths> {
        self.map.get(k)
    }

    /// Insert `path` for `k`; `None` if nothing changed.
    pub(crate) fn upsert(&mut self, k: K, path: Path) -> Option<Edit<'_>> {
        use std::collections::btree_map::Entry;
        match self.map.entry(k) {
            Entry::Vacant(e) => Some(Edit {
                before: None,
                after: Some(e.insert(Paths::One(path))),
            }),
            Entry::Occupied(e) => {
                let paths = e.into_mut();
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
        use std::collections::btree_map::Entry;
        let Entry::Occupied(mut e) = self.map.entry(k) else {
            return None;
        };
        if !e.get().as_slice().iter().any(&pred) {
            return None;
        }
        let before = e.get().clone();
        e.get_mut().remove_where(pred);
        if e.get().is_empty() {
            e.remove();
            return Some(Edit {
                before: Some(before),
                after: None,
            });
        }
        Some(Edit {
            before: Some(before),
            after: Some(e.into_mut()),
        })
    }

    /// Keys with at least one path matching `pred`.
    pub(crate) fn keys_where(&self, pred: impl Fn(&Path) -> bool) -> Vec<K> {
        self.map
            .iter()
            .filter(|(_, p)| p.as_slice().iter().any(&pred))
            .map(|(k, _)| *k)
            .collect()
    }
}
