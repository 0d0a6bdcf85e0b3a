//! Interned path attributes: every distinct attribute set is stored once and
//! shared by `Arc` among all the paths that carry it (hash-consing). A BGP
//! table of a million prefixes typically has a few hundred distinct sets, so
//! a path costs one pointer for its attributes instead of a copy.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::wire::{NextHop, PathAttributes};

/// The attributes of a stored path: the UPDATE's attributes without the
/// per-message MP_REACH/MP_UNREACH and without NEXT_HOP, plus the next hop
/// (from NEXT_HOP or MP_REACH_NLRI, RFC 4760 3) for any family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub attrs: PathAttributes,
    pub next_hop: NextHop,
}

impl RouteAttrs {
    /// Canonical form of `attrs` with `next_hop`: the fields that belong to one
    /// message (NEXT_HOP, MP_REACH/MP_UNREACH) are cleared so that the same
    /// path attributes received in different UPDATEs intern to one value.
    pub fn new(mut attrs: PathAttributes, next_hop: NextHop) -> Self {
        attrs.next_hop = None;
        attrs.mp_reach = None;
        attrs.mp_unreach = None;
        RouteAttrs { attrs, next_hop }
    }

    /// RFC 4271 5.1.5: LOCAL_PREF, with the usual default of 100 for a path
    /// that carries none (eBGP-learned or locally originated).
    pub fn local_pref(&self) -> u32 {
        self.attrs.local_pref.unwrap_or(100)
    }

    /// RFC 4271 9.1.2.2 c: a missing MED counts as the lowest value, 0.
    pub fn med(&self) -> u32 {
        self.attrs.med.unwrap_or(0)
    }

    pub fn next_hop_addr(&self) -> IpAddr {
        self.next_hop.addr()
    }
}

/// A shared handle on an interned [`RouteAttrs`]. Equality is by value, but
/// two handles from the same [`Interner`] are equal exactly when they point to
/// the same allocation, so [`Attrs::same`] (a pointer compare) is the fast test.
#[derive(Debug, Clone)]
pub struct Attrs(Arc<RouteAttrs>);

impl Attrs {
    /// A handle that is not interned (for tests and one-off values).
    pub fn unshared(a: RouteAttrs) -> Self {
        Attrs(Arc::new(a))
    }

    pub fn same(&self, other: &Attrs) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Identity of the allocation (for caches keyed by attribute set).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// How many handles share this attribute set (the interner holds one).
    pub fn share_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl Deref for Attrs {
    type Target = RouteAttrs;
    fn deref(&self) -> &RouteAttrs {
        &self.0
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}
impl Eq for Attrs {}

impl Hash for Attrs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl std::borrow::Borrow<RouteAttrs> for Attrs {
    fn borrow(&self) -> &RouteAttrs {
        &self.0
    }
}

/// The hash-consing table. Not thread-safe by design: the RIB owner is the
/// only one who interns.
#[derive(Debug, Default)]
pub struct Interner {
    set: HashSet<Attrs>,
    /// Size after the last sweep; the next automatic sweep waits until the
    /// table has doubled, so sweeping costs O(1) amortised per intern.
    swept_at: usize,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared handle for `a`, creating it if this value is new.
    pub fn intern(&mut self, a: RouteAttrs) -> Attrs {
        if let Some(h) = self.set.get(&a) {
            return h.clone();
        }
        if self.set.len() >= 2 * self.swept_at.max(512) {
            self.sweep();
        }
        let h = Attrs(Arc::new(a));
        self.set.insert(h.clone());
        h
    }

    /// Drop the values no path refers to any more; returns how many.
    pub fn sweep(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|h| h.share_count() > 1);
        self.swept_at = self.set.len();
        before - self.set.len()
    }

    /// Distinct attribute sets held (including unreferenced ones not yet swept).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
