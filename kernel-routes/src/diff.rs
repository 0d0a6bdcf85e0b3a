//! The pure decisions: what to write so the kernel holds an owner's desired
//! routes ([`diff`], also the read-back repair), which routes of an earlier run
//! to sweep ([`Sweep`]), and when a change is small enough for the fast path
//! ([`few_changes`]).

use std::collections::{BTreeSet, HashMap};

use ipnet::IpNet;

use crate::owner::Owner;
use crate::route::{KernelRoute, SlotKey};

/// What [`diff`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteDiff {
    /// Into an empty slot: write with `NLM_F_CREATE | NLM_F_EXCL`.
    pub add: Vec<KernelRoute>,
    /// Over a route of ours that differs: `NLM_F_REPLACE` (fixes it in place,
    /// no gap).
    pub replace: Vec<KernelRoute>,
    /// Routes of ours to remove, each fully specified so the delete can only hit
    /// it.
    pub delete: Vec<KernelRoute>,
    /// Desired routes whose slot is held by a route of another protocol: left
    /// alone, as (desired, holder).
    pub conflicts: Vec<(KernelRoute, KernelRoute)>,
}

impl RouteDiff {
    /// Nothing to write (conflicts are not writes).
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.replace.is_empty() && self.delete.is_empty()
    }
}

/// Compares `owner`'s desired routes with every main-table route the kernel
/// holds (all protocols, as [`crate::dump_routes`] returns them) and returns the
/// writes that make the kernel match.
///
/// * A desired route already present exactly: nothing.
/// * A desired route whose slot holds a foreign route: conflict, untouched.
/// * A desired route whose slot holds a route of ours that differs: replace.
/// * A desired route whose slot is empty: exclusive add.
/// * Routes of ours in slots nobody wants: delete. Extra routes of ours in a
///   wanted slot (the kernel allows several IPv4 routes per slot with
///   `NLM_F_APPEND`) are deleted too, except the one the replace overwrites.
///
/// Routes of other owners are never in `delete` nor in `add`/`replace` over
/// them. Each list comes back sorted.
pub fn diff<'a>(
    owner: &Owner,
    desired: impl IntoIterator<Item = &'a KernelRoute>,
    actual: &[KernelRoute],
) -> RouteDiff {
    let desired = desired.into_iter();
    let mut by_key: HashMap<SlotKey, Vec<&KernelRoute>> = HashMap::new();
    for route in actual {
        by_key.entry(route.key()).or_default().push(route);
    }
    let mut out = RouteDiff::default();
    let mut wanted = HashMap::with_capacity(desired.size_hint().0);
    for want in desired {
        wanted.insert(want.key(), want);
        let present = by_key.get(&want.key()).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(foreign) = present.iter().find(|r| !owner.owns(r)) {
            out.conflicts.push((want.clone(), (*foreign).clone()));
            continue;
        }
        if let Some(pos) = present.iter().position(|r| *r == want) {
            let extras = present
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != pos)
                .map(|(_, r)| (*r).clone());
            out.delete.extend(extras);
        } else if present.is_empty() {
            out.add.push(want.clone());
        } else {
            out.replace.push(want.clone());
            out.delete
                .extend(present.iter().skip(1).map(|r| (*r).clone()));
        }
    }
    for route in actual {
        if owner.owns(route) && !wanted.contains_key(&route.key()) {
            out.delete.push(route.clone());
        }
    }
    out.add.sort();
    out.replace.sort();
    out.delete.sort();
    out.conflicts.sort();
    out
}

/// Mark and sweep of an owner's routes left by an earlier run, for an owner
/// that learns its desired routes gradually after a restart (bgpd: the
/// sessions re-announce them). The routes found at start are marked; a write
/// for a destination unmarks it; [`Sweep::take`] hands over what is still
/// marked, to delete, once the owner has had its chance to want them again.
/// Until then, [`Sweep::is_marked`] routes are not a diff's extras.
///
/// An owner that knows its whole desired state at once (felix) needs no marks:
/// its first full [`diff`] deletes whatever of its routes nobody wants.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    marked: HashMap<IpNet, Vec<KernelRoute>>,
}

impl Sweep {
    /// Marks `owner`'s routes among `found`.
    pub fn mark(owner: &Owner, found: &[KernelRoute]) -> Self {
        let mut marked: HashMap<IpNet, Vec<KernelRoute>> = HashMap::new();
        for r in found.iter().filter(|r| owner.owns(r)) {
            marked.entry(r.dst).or_default().push(r.clone());
        }
        Self { marked }
    }

    pub fn len(&self) -> usize {
        self.marked.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.marked.is_empty()
    }

    /// `dst` is wanted again (written or deleted since): not swept.
    pub fn unmark(&mut self, dst: &IpNet) {
        if !self.marked.is_empty() {
            self.marked.remove(dst);
        }
    }

    pub fn is_marked(&self, route: &KernelRoute) -> bool {
        self.marked
            .get(&route.dst)
            .is_some_and(|v| v.iter().any(|m| m.key() == route.key()))
    }

    /// Everything still marked, to delete; the marks are cleared.
    pub fn take(&mut self) -> Vec<KernelRoute> {
        let mut out: Vec<KernelRoute> = self.marked.drain().flat_map(|(_, v)| v).collect();
        out.sort();
        out
    }
}

/// (added, removed) between two desired lists, or `None` when more than `max`
/// changed: the test for a fast path that writes just the changes, one request
/// each, without the dumps a full sync needs.
pub fn few_changes<'a, T: Ord>(
    old: &'a [T],
    new: &'a [T],
    max: usize,
) -> Option<(Vec<&'a T>, Vec<&'a T>)> {
    let old: BTreeSet<&T> = old.iter().collect();
    let new: BTreeSet<&T> = new.iter().collect();
    let added: Vec<&T> = new.difference(&old).copied().collect();
    let removed: Vec<&T> = old.difference(&new).copied().collect();
    (added.len() + removed.len() <= max).then_some((added, removed))
}

#[cfg(test)]
mod tests;
