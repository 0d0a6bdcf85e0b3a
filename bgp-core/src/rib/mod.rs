//! Routing information bases (RFC 4271 3.2): Adj-RIBs-In and Loc-RIB in
//! [`Rib`] (one shared table per family, see `table.rs`), Adj-RIBs-Out in
//! [`adj_out`], best path in [`best`], attribute interning in [`attrs`].
//!
//! Pure and synchronous: the daemon feeds it accepted routes and gets back
//! the Loc-RIB changes to install in the FIB and to advertise.

pub mod adj_out;
pub mod attrs;
pub mod best;
mod changes;
mod shard;
pub mod stale;
mod table;

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub use adj_out::{AdjRibOut, Outbound};
pub use attrs::{Attrs, Interner, RouteAttrs};
pub use best::{Candidate, Selection, select};
pub use changes::{ChangeRef, Changes, Run};
pub use stale::StalePaths;
pub use table::Path;

use table::{Edit, Paths, Table};

/// How many routes ahead of an insert [`Rib::announce_all`] fetches the
/// table lines of: enough misses in flight to cover the memory latency
/// (about 10 per core), few enough that the lines are still in L1 when
/// their turn comes.
const PREFETCH_AHEAD: usize = 16;

/// Index of a peer in the RIB. [`PeerId::LOCAL`] marks routes this speaker
/// originates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl PeerId {
    pub const LOCAL: PeerId = PeerId(0);
}

/// What best path selection needs to know about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's transport address (9.1.2.2 g).
    pub address: IpAddr,
    /// The peer's BGP Identifier from its OPEN (9.1.2.2 f).
    pub router_id: Ipv4Addr,
    pub asn: u32,
    /// iBGP session (9.1.2.2 d).
    pub internal: bool,
}

/// The Loc-RIB entry of a destination: the best path and, when several
/// paths are equal up to the router-id step, all of them (best first).
#[derive(Debug, Clone)]
pub struct Best {
    pub path: Path,
    /// Empty unless there is more than one equal path.
    pub multipath: Vec<Path>,
}

impl Best {
    /// The paths to forward over: the multipath set, or just the best.
    pub fn paths(&self) -> &[Path] {
        if self.multipath.is_empty() {
            std::slice::from_ref(&self.path)
        } else {
            &self.multipath
        }
    }

    /// Distinct next hops of [`Best::paths`], in order (for ECMP routes).
    pub fn next_hops(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = Vec::with_capacity(self.paths().len());
        for p in self.paths() {
            let nh = p.attrs.next_hop_addr();
            if !v.contains(&nh) {
                v.push(nh);
            }
        }
        v
    }

    fn same(&self, other: &Best) -> bool {
        self.path.same(&other.path)
            && self.multipath.len() == other.multipath.len()
            && self
                .multipath
                .iter()
                .zip(&other.multipath)
                .all(|(a, b)| a.same(b))
    }
}

/// A Loc-RIB change: the new entry for `prefix`, `None` if it has no route
/// any more.
#[derive(Debug, Clone)]
pub struct Change {
    pub prefix: IpNet,
    pub best: Option<Best>,
    /// The best path it replaces (what the peers were told about, through
    /// export policy).
    pub before: Option<Path>,
}

/// Adj-RIBs-In + Loc-RIB for IPv4 and IPv6 unicast.
#[derive(Debug)]
pub struct Rib {
    local_as: u32,
    v4: Table<Ipv4Net>,
    v6: Table<Ipv6Net>,
    interner: Interner,
    /// Indexed by `PeerId.0`.
    peers: Vec<Option<PeerInfo>>,
    /// Paths held per peer, indexed by `PeerId.0`.
    counts: Vec<u32>,
    /// Loc-RIB entries whose best path is the peer's, indexed by
    /// `PeerId.0`: kept as changes happen so that status queries (polled
    /// by calicoctl and monitoring) never walk the table.
    preferred: Vec<u32>,
    /// Paths held per family: (IPv4, IPv6).
    paths: (usize, usize),
}

impl Rib {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        let local = PeerInfo {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            router_id,
            asn: local_as,
            internal: true,
        };
        Rib {
            local_as,
            v4: Table::default(),
            v6: Table::default(),
            interner: Interner::new(),
            peers: vec![Some(local)],
            counts: vec![0],
            preferred: vec![0],
            paths: (0, 0),
        }
    }

    pub fn local_as(&self) -> u32 {
        self.local_as
    }

    /// Register (or update, e.g. after a new OPEN) a peer's identity. Its
    /// paths must be removed first if the identity changes, as best path
    /// results cached by callers would be stale otherwise.
    pub fn set_peer(&mut self, id: PeerId, info: PeerInfo) {
        let i = id.0 as usize;
        if self.peers.len() <= i {
            self.peers.resize(i + 1, None);
            self.counts.resize(i + 1, 0);
            self.preferred.resize(i + 1, 0);
        }
        self.peers[i] = Some(info);
    }

    pub fn peer(&self, id: PeerId) -> Option<&PeerInfo> {
        self.peers.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The shared handle for these attributes.
    pub fn intern(&mut self, a: RouteAttrs) -> Attrs {
        self.interner.intern(a)
    }

    pub fn interner(&self) -> &Interner {
        &self.interner
    }

    /// Paths held from `peer` (its Adj-RIB-In size, for max-prefix).
    pub fn path_count(&self, peer: PeerId) -> u32 {
        self.counts.get(peer.0 as usize).copied().unwrap_or(0)
    }

    /// Loc-RIB entries whose best path is from `peer`.
    pub fn preferred_count(&self, peer: PeerId) -> u32 {
        self.preferred.get(peer.0 as usize).copied().unwrap_or(0)
    }

    /// Paths held per family: (IPv4, IPv6).
    pub fn paths_by_family(&self) -> (usize, usize) {
        self.paths
    }

    /// Destinations (networks) in the Loc-RIB.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Destinations per family: (IPv4, IPv6).
    pub fn len_by_family(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Add or replace the path of `peer` (with ADD-PATH id `path_id`) for
    /// `prefix`: an implicit withdraw of the previous one (RFC 4271 3.1).
    pub fn announce(
        &mut self,
        peer: PeerId,
        prefix: IpNet,
        path_id: u32,
        attrs: Attrs,
    ) -> Option<Change> {
        let mut out = Changes::new();
        self.announce_all(peer, &attrs, [(prefix, path_id)], &mut out);
        out.into_vec().pop()
    }

    /// [`Rib::announce`] of every (prefix, ADD-PATH id) in `nlri` with the
    /// same attributes (one UPDATE's routes); the changes are appended to
    /// `out` in the order of `nlri`.
    ///
    /// Why in one call: a new destination's slot is a random line of a table
    /// far larger than the cache, and a locked instruction (an `Arc` count
    /// going up) waits until every store before it has reached the cache. One
    /// `announce` after the other put such an increment after each new slot,
    /// so every route paid a whole miss in turn. Here the handles are cloned
    /// before the first store, new destinations go into `out` as a run
    /// sharing one handle (see [`Changes`]), and each route's table lines
    /// are asked for [`PREFETCH_AHEAD`] routes before its turn, so the
    /// misses overlap.
    pub fn announce_all(
        &mut self,
        peer: PeerId,
        attrs: &Attrs,
        nlri: impl IntoIterator<Item = (IpNet, u32), IntoIter: ExactSizeIterator>,
        out: &mut Changes,
    ) {
        let (v4, v6) = (&self.v4, &self.v6);
        let routes: Vec<(IpNet, u32, u64)> = nlri
            .into_iter()
            .map(|(prefix, path_id)| {
                let h = match &prefix {
                    IpNet::V4(k) => v4.hash(k),
                    IpNet::V6(k) => v6.hash(k),
                };
                (prefix, path_id, h)
            })
            .collect();
        let prefetch = |rib: &Rib, i: usize| {
            if let Some(&(prefix, _, h)) = routes.get(i) {
                match prefix {
                    IpNet::V4(_) => rib.v4.prefetch(h),
                    IpNet::V6(_) => rib.v6.prefetch(h),
                }
            }
        };
        for i in 0..PREFETCH_AHEAD {
            prefetch(self, i);
        }
        let handles = vec![attrs.clone(); routes.len()];
        for (i, (&(prefix, path_id, h), handle)) in routes.iter().zip(handles).enumerate() {
            prefetch(self, i + PREFETCH_AHEAD);
            let path = Path {
                attrs: handle,
                peer,
                path_id,
            };
            let edit = match prefix {
                IpNet::V4(k) => self.v4.upsert_hashed(h, k, path),
                IpNet::V6(k) => self.v6.upsert_hashed(h, k, path),
            };
            let Some(edit) = edit else { continue };
            let had_path = match &edit.before {
                // A new destination: its only path is its best (as `change_of`
                // would find), and the counts move now, so that a later edit of
                // the same prefix in `nlri` sees them.
                None => {
                    if let Some(c) = self.preferred.get_mut(peer.0 as usize) {
                        *c += 1;
                    }
                    out.push_added(prefix, path_id, peer, attrs);
                    false
                }
                Some(b) => {
                    let had = b
                        .as_slice()
                        .iter()
                        .any(|p| p.peer == peer && p.path_id == path_id);
                    out.extend(change_of(
                        &self.peers,
                        &mut self.preferred,
                        self.local_as,
                        prefix,
                        edit,
                    ));
                    had
                }
            };
            if !had_path {
                self.bump(peer, 1);
                *family_paths(&mut self.paths, &prefix) += 1;
            }
        }
    }

    /// Remove `peer`'s path `path_id` for `prefix`.
    pub fn withdraw(&mut self, peer: PeerId, prefix: IpNet, path_id: u32) -> Option<Change> {
        let pred = |p: &Path| p.peer == peer && p.path_id == path_id;
        let edit = match prefix {
            IpNet::V4(k) => self.v4.remove(k, pred),
            IpNet::V6(k) => self.v6.remove(k, pred),
        };
        // A withdrawal of something we do not hold changes nothing (RFC 4271
        // 9 allows withdrawing unknown routes).
        let edit = edit?;
        let change = change_of(
            &self.peers,
            &mut self.preferred,
            self.local_as,
            prefix,
            edit,
        );
        self.bump_down(peer, 1);
        *family_paths(&mut self.paths, &prefix) -= 1;
        change
    }

    /// Drop every path of `peer` (session down, RFC 4271 8.2.2 "deletes all
    /// routes associated with this connection"); returns the Loc-RIB changes.
    /// The changes hold the paths they replace: once they are handled,
    /// [`Rib::sweep_attributes`] drops the attribute sets only those used.
    pub fn remove_peer(&mut self, peer: PeerId) -> Vec<Change> {
        let mut out = Vec::new();
        let pred = |p: &Path| p.peer == peer;
        let pref = &mut self.preferred;
        for k in self.v4.keys_where(pred) {
            if let Some(edit) = self.v4.remove(k, pred) {
                self.paths.0 -= removed(&edit);
                if let Some(c) = change_of(&self.peers, pref, self.local_as, IpNet::V4(k), edit) {
                    out.push(c);
                }
            }
        }
        for k in self.v6.keys_where(pred) {
            if let Some(edit) = self.v6.remove(k, pred) {
                self.paths.1 -= removed(&edit);
                if let Some(c) = change_of(&self.peers, pref, self.local_as, IpNet::V6(k), edit) {
                    out.push(c);
                }
            }
        }
        if let Some(c) = self.counts.get_mut(peer.0 as usize) {
            *c = 0;
        }
        self.v4.shrink();
        self.v6.shrink();
        out
    }

    /// Drop the attribute sets no path refers to any more (interning also
    /// does it, amortised, as the table grows); returns how many.
    pub fn sweep_attributes(&mut self) -> usize {
        self.interner.sweep()
    }

    /// All paths held for `prefix` (exact match).
    pub fn paths(&self, prefix: &IpNet) -> &[Path] {
        let p = match prefix {
            IpNet::V4(k) => self.v4.get(k),
            IpNet::V6(k) => self.v6.get(k),
        };
        p.map_or(&[], Paths::as_slice)
    }

    /// The Loc-RIB entry for `prefix` (exact match).
    pub fn best(&self, prefix: &IpNet) -> Option<Best> {
        best_of(&self.peers, self.local_as, self.paths(prefix))
    }

    /// The most specific prefix holding a route to `ip` (as a FIB lookup).
    pub fn longest_match(&self, ip: IpAddr) -> Option<IpNet> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let net = IpNet::new(ip, len).ok()?.trunc();
            (!self.paths(&net).is_empty()).then_some(net)
        })
    }

    /// Visit every destination with its paths, IPv4 first, in prefix order.
    /// Sorts the table first (O(n log n)): meant for display.
    pub fn for_each(&self, mut f: impl FnMut(IpNet, &[Path])) {
        for (k, p) in self.v4.sorted() {
            f(IpNet::V4(k), p.as_slice());
        }
        for (k, p) in self.v6.sorted() {
            f(IpNet::V6(k), p.as_slice());
        }
    }

    /// Visit every Loc-RIB entry, in no particular order.
    pub fn for_each_best(&self, mut f: impl FnMut(IpNet, Best)) {
        let v4 = self.v4.iter().map(|(k, p)| (IpNet::V4(k), p));
        let v6 = self.v6.iter().map(|(k, p)| (IpNet::V6(k), p));
        for (prefix, paths) in v4.chain(v6) {
            if let Some(b) = best_of(&self.peers, self.local_as, paths.as_slice()) {
                f(prefix, b)
            }
        }
    }

    /// Selection over an arbitrary path list (used for display).
    pub fn select(&self, paths: &[Path]) -> Option<Best> {
        best_of(&self.peers, self.local_as, paths)
    }

    fn bump(&mut self, peer: PeerId, n: u32) {
        if let Some(c) = self.counts.get_mut(peer.0 as usize) {
            *c += n;
        }
    }

    fn bump_down(&mut self, peer: PeerId, n: u32) {
        if let Some(c) = self.counts.get_mut(peer.0 as usize) {
            *c = c.saturating_sub(n);
        }
    }
}

fn family_paths<'a>(paths: &'a mut (usize, usize), prefix: &IpNet) -> &'a mut usize {
    match prefix {
        IpNet::V4(_) => &mut paths.0,
        IpNet::V6(_) => &mut paths.1,
    }
}

/// Paths an edit removed.
fn removed(edit: &Edit<'_>) -> usize {
    let before = edit.before.as_ref().map_or(0, |p| p.as_slice().len());
    let after = edit.after.map_or(0, |p| p.as_slice().len());
    before.saturating_sub(after)
}

/// The Loc-RIB change an edit made, if any; keeps `preferred` (per-peer
/// best-path counts) in step.
fn change_of(
    peers: &[Option<PeerInfo>],
    preferred: &mut [u32],
    local_as: u32,
    prefix: IpNet,
    edit: Edit<'_>,
) -> Option<Change> {
    let before = edit
        .before
        .as_ref()
        .and_then(|p| best_of(peers, local_as, p.as_slice()));
    let after = edit
        .after
        .and_then(|p| best_of(peers, local_as, p.as_slice()));
    let same = match (&before, &after) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same(b),
        _ => false,
    };
    if same {
        return None;
    }
    if let Some(c) = before
        .as_ref()
        .and_then(|b| preferred.get_mut(b.path.peer.0 as usize))
    {
        *c = c.saturating_sub(1);
    }
    if let Some(c) = after
        .as_ref()
        .and_then(|b| preferred.get_mut(b.path.peer.0 as usize))
    {
        *c += 1;
    }
    Some(Change {
        prefix,
        best: after,
        before: before.map(|b| b.path),
    })
}

/// Paths from a peer the RIB does not know are ignored (cannot happen
/// through the public API, which registers peers first).
fn best_of(peers: &[Option<PeerInfo>], local_as: u32, paths: &[Path]) -> Option<Best> {
    if let [only] = paths {
        return Some(Best {
            path: only.clone(),
            multipath: Vec::new(),
        });
    }
    let mut cands = Vec::with_capacity(paths.len());
    let mut index = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        if let Some(Some(info)) = peers.get(p.peer.0 as usize) {
            cands.push(Candidate {
                peer: p.peer,
                info,
                path_id: p.path_id,
                attrs: &p.attrs,
            });
            index.push(i);
        }
    }
    let sel = select(&cands, local_as)?;
    Some(Best {
        path: paths[index[sel.best]].clone(),
        multipath: sel
            .multipath
            .iter()
            .map(|&i| paths[index[i]].clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests;
