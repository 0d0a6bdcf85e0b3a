//! Route handling of the owner task: session events in, Loc-RIB changes
//! out to the FIB and the Adj-RIBs-Out.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use foldhash::fast::RandomState;
use std::time::SystemTime;

use ipnet::IpNet;
use tracing::{debug, info};

use super::{Daemon, graceful};
use crate::fib::FibOp;
use crate::fsm::State;
use crate::peer::{PeerCommand, PeerEvent, encode_updates};
use crate::policy::{Source, Target, local_addresses};
use crate::rib::{Attrs, Change, ChangeRef, Changes, Outbound, PeerId, PeerInfo, RouteAttrs, Run};
use crate::wire::attribute::as4::merge_from_two_octet;
use crate::wire::{EncodeContext, Family, NextHop, Nlri, Update, UpdateAction};

impl Daemon {
    pub(super) fn on_event(&mut self, id: PeerId, e: PeerEvent) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        match e {
            PeerEvent::StateChanged { to, .. } => {
                p.state = to;
                p.since = SystemTime::now();
            }
            PeerEvent::Established {
                negotiated,
                local,
                remote,
            } => {
                self.rib.set_peer(
                    id,
                    PeerInfo {
                        address: crate::peer::canonical(remote.ip()),
                        router_id: negotiated.peer_id,
                        asn: negotiated.peer_as,
                        internal: negotiated.internal,
                    },
                );
                p.last_error = None;
                p.local = Some(local);
                p.eor.clear();
                p.eor_sent = false;
                let families = negotiated.families.clone();
                p.negotiated = Some(negotiated.clone());
                self.peer_back(id, &negotiated);
                self.advertise_all(id, Advertise::Initial);
                // RFC 4724 2: End-of-RIB after the initial table; 4.1: a Restarting
                // Speaker sends it only once its deferred route selection is done.
                let deferring = self.deferring;
                if let Some(p) = self.peers.get_mut(&id) {
                    let ctx = negotiated.encode_context();
                    let mut updates = p.adj_out.take_updates(&ctx);
                    if !deferring {
                        updates.extend(families.iter().map(|f| Update::end_of_rib(*f)));
                        p.eor_sent = true;
                    }
                    p.stats.updates_out += updates.len() as u64;
                    let _ =
                        p.tx.send(PeerCommand::Send(encode_updates(updates, &ctx, &p.name)));
                }
            }
            PeerEvent::Down(reason) => {
                let negotiated = p.negotiated.take();
                let graceful = negotiated
                    .as_deref()
                    .and_then(|n| graceful::helper_time(n, &reason));
                p.last_error = Some(reason);
                p.adj_out.clear();
                p.local = None;
                let name = p.name.clone();
                match (negotiated, graceful) {
                    (Some(_), Some(time)) => self.keep_stale(id, &name, time),
                    (Some(_), None) => {
                        self.stale.take_all(id);
                        self.stale_deadlines.remove(&id);
                        let changes = self.rib.remove_peer(id);
                        debug!(peer = %id.0, changes = changes.len(), "routes of a lost session removed");
                        self.apply_changes(changes);
                        self.rib.sweep_attributes();
                    }
                    (None, _) => {}
                }
            }
            PeerEvent::Update(u) => self.on_update(id, *u),
            PeerEvent::RouteRefresh(rr) => {
                // RFC 2918 4: re-advertise the Adj-RIB-Out.
                debug!(peer = %p.name, family = %rr.family, "route refresh");
                self.advertise_all(id, Advertise::Again);
            }
        }
    }

    fn on_update(&mut self, id: PeerId, mut u: Update) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(neg) = &p.negotiated else { return };
        p.stats.updates_in += 1;
        if let Some(f) = u.end_of_rib_family() {
            p.eor.insert(f);
            // RFC 4724 4.2: what the restarted peer did not announce again goes now.
            self.withdraw_stale(id, Some(f));
            self.maybe_sweep();
            return;
        }
        if !neg.four_octet_as {
            merge_from_two_octet(&mut u.attributes);
        }
        let source = Source {
            peer: id,
            router_id: neg.peer_id,
            internal: neg.internal,
            rr_client: p.cfg.route_reflector_client,
        };
        let mut withdraw: Vec<Nlri> = std::mem::take(&mut u.withdrawn);
        if let Some(m) = u.attributes.mp_unreach.take() {
            withdraw.extend(m.withdrawn);
        }
        // The routes by next hop: NEXT_HOP's, MP_REACH_NLRI's (the decoded
        // lists, moved, not copied: an UPDATE of /32s holds hundreds).
        let mut announce: Vec<(NextHop, Vec<Nlri>)> = Vec::with_capacity(2);
        if let Some(nh) = u.attributes.next_hop
            && !u.nlri.is_empty()
        {
            announce.push((NextHop::V4(nh), std::mem::take(&mut u.nlri)));
        }
        if let Some(m) = u.attributes.mp_reach.take()
            && !m.nlri.is_empty()
        {
            announce.push((m.next_hop, m.nlri));
        }
        let announced: usize = announce.iter().map(|(_, n)| n.len()).sum();
        p.stats.withdraws_received += withdraw.len() as u64;
        p.stats.prefixes_received += announced as u64;
        // RFC 7606 2 / 5: treat-as-withdraw turns every NLRI into a
        // withdrawal; attribute-discard already happened in the decoder.
        let refused = match u.action() {
            Some(UpdateAction::TreatAsWithdraw | UpdateAction::SessionReset) => {
                Some("malformed attributes (RFC 7606 treat-as-withdraw)".to_string())
            }
            _ => self
                .policy
                .import(&source, &u.attributes)
                .err()
                .map(|e| e.to_string()),
        };
        if let Some(why) = refused {
            debug!(peer = %p.name, reason = %why, prefixes = announced, "routes not accepted");
            p.stats.prefixes_rejected += announced as u64;
            withdraw.extend(announce.drain(..).flat_map(|(_, n)| n));
        }
        let mut changes = Changes::new();
        if self.stale.has(id) {
            for n in withdraw.iter().chain(announce.iter().flat_map(|(_, n)| n)) {
                self.stale.refreshed(id, (n.prefix, n.path_id.unwrap_or(0)));
            }
        }
        for n in withdraw {
            changes.extend(self.rib.withdraw(id, n.prefix, n.path_id.unwrap_or(0)));
        }
        // The routes go to the RIB a next hop at a time.
        for (nh, nlri) in &announce {
            let a = self.rib.intern(RouteAttrs::new(u.attributes.clone(), *nh));
            let routes = nlri.iter().map(|n| (n.prefix, n.path_id.unwrap_or(0)));
            self.rib.announce_all(id, &a, routes, &mut changes);
        }
        self.apply_changes(changes);
        // RFC 4486 4: max-prefix is checked by the FSM against our count.
        if let Some(p) = self.peers.get(&id)
            && p.cfg.max_prefixes.is_some()
        {
            let count = self.rib.path_count(id);
            let family = Family::IPV4_UNICAST;
            let _ = p.tx.send(PeerCommand::PrefixCount { family, count });
        }
    }

    pub(super) fn set_originated(&mut self, prefixes: Vec<IpNet>) {
        let want: std::collections::BTreeSet<IpNet> = prefixes.into_iter().collect();
        let mut changes = Vec::new();
        for gone in self.originated.difference(&want) {
            changes.extend(self.rib.withdraw(PeerId::LOCAL, *gone, 0));
        }
        for new in want.difference(&self.originated) {
            let a = self.rib.intern(self.policy.originate(new));
            changes.extend(self.rib.announce(PeerId::LOCAL, *new, 0, a));
        }
        if !changes.is_empty() {
            info!(prefixes = want.len(), "originated prefixes set");
        }
        self.originated = want;
        self.apply_changes(changes);
    }

    /// What the kernel should hold for `prefix` given its best path.
    fn fib_op(&self, c: ChangeRef<'_>) -> FibOp {
        let prefix = c.prefix();
        let excluded = self.fib_exclude.iter().any(|x| x.contains(&prefix));
        match c.best() {
            // Our own prefixes are felix's (blackholes): never installed; nor are routes
            // felix programs itself (the overlay's pools).
            Some((_, source)) if source != PeerId::LOCAL && !excluded => FibOp::Replace {
                prefix,
                next_hops: c.next_hops(),
            },
            _ => FibOp::Delete(prefix),
        }
    }

    /// New FIB exclusions: every best route is pushed again under them (a pool that
    /// turned to VXLAN loses its BGP routes from the kernel, one that turned back gets
    /// them), so the cost is one pass over the Loc-RIB, on a pool change only.
    pub(super) fn set_fib_exclude(&mut self, exclude: Vec<IpNet>) {
        if exclude == self.fib_exclude {
            return;
        }
        self.fib_exclude = exclude;
        let Some(fib) = &self.fib else {
            return;
        };
        let mut ops = Vec::new();
        self.rib.for_each_best(|prefix, best| {
            let c = Change {
                prefix,
                best: Some(best),
                before: None,
            };
            ops.push(self.fib_op(ChangeRef::Changed(&c)));
        });
        fib.apply(ops);
    }

    /// Push Loc-RIB changes to the FIB and to every established peer's
    /// Adj-RIB-Out (sent at the next [`Daemon::flush`]).
    pub(super) fn apply_changes(&mut self, changes: impl Into<Changes>) {
        let changes = changes.into();
        if changes.is_empty() {
            return;
        }
        if let Some(fib) = &self.fib {
            let ops = changes.iter().map(|c| self.fib_op(c)).collect();
            fib.apply(ops);
        }
        let targets = self.targets();
        if targets.is_empty() {
            return;
        }
        self.unflushed += changes.len() * targets.len();
        let mut cache = ExportCache::default();
        // Target by target: consecutive changes (one UPDATE's routes) share
        // their attributes, so the cache's last entry answers most lookups.
        for (t, class) in targets.iter().zip(export_classes(&targets)) {
            for run in changes.runs() {
                match run {
                    Run::Changed(c) => {
                        let to = c.best.as_ref().and_then(|b| {
                            let (a, source) = (&b.path.attrs, b.path.peer);
                            self.export(&mut cache, &c.prefix, a, source, t, class)
                        });
                        // What the peer was told about the path this one replaces.
                        let from = c.before.as_ref().and_then(|b| {
                            self.export(&mut cache, &c.prefix, &b.attrs, b.peer, t, class)
                        });
                        if let Some(p) = self.peers.get_mut(&t.peer) {
                            p.adj_out.change(c.prefix, from, to);
                        }
                    }
                    // New destinations: export policy judges the run once. The peer
                    // had nothing for them, so if it is to get nothing either and no
                    // change of theirs is pending, there is nothing to do (the
                    // common case: the routes' own source).
                    Run::Added {
                        peer: source,
                        attrs,
                        routes,
                    } => {
                        let to = self.export(&mut cache, &routes[0].0, attrs, source, t, class);
                        let Some(p) = self.peers.get_mut(&t.peer) else {
                            continue;
                        };
                        if to.is_none() && !p.adj_out.has_pending() {
                            continue;
                        }
                        for &(prefix, _) in routes {
                            p.adj_out.change(prefix, None, to.clone());
                        }
                    }
                }
            }
        }
    }

    /// Fill a peer's Adj-RIB-Out from the Loc-RIB: a newly established one,
    /// or one that asked for everything again.
    pub(super) fn advertise_all(&mut self, id: PeerId, how: Advertise) {
        let Some(t) = self.targets().into_iter().find(|t| t.peer == id) else {
            return;
        };
        let mut all = Vec::new();
        self.rib
            .for_each_best(|prefix, b| all.push((prefix, b.path)));
        let mut cache = ExportCache::default();
        for (prefix, path) in all {
            let out = self.export(&mut cache, &prefix, &path.attrs, path.peer, &t, 0);
            if let Some(p) = self.peers.get_mut(&id) {
                match how {
                    Advertise::Initial => p.adj_out.change(prefix, None, out),
                    Advertise::Again => p.adj_out.refresh(prefix, out),
                }
            }
        }
    }

    /// What export policy makes of a path (`attrs` from `origin`) for target `t`.
    fn export(
        &mut self,
        cache: &mut ExportCache,
        prefix: &IpNet,
        attrs: &Attrs,
        origin: PeerId,
        t: &Target,
        class: u32,
    ) -> Option<Attrs> {
        let key = ExportKey {
            attrs: attrs.id(),
            source: origin,
            class,
            to_source: origin == t.peer,
            v6: prefix.addr().is_ipv6(),
        };
        if let Some(v) = cache.get(&key) {
            return v;
        }
        let source = (origin != PeerId::LOCAL).then(|| {
            let info = self.rib.peer(origin);
            Source {
                peer: origin,
                router_id: info.map_or(self.policy.router_id, |i| i.router_id),
                internal: info.is_some_and(|i| i.internal),
                rr_client: self
                    .peers
                    .get(&origin)
                    .is_some_and(|p| p.cfg.route_reflector_client),
            }
        });
        let out = self
            .policy
            .export(prefix, attrs, source.as_ref(), t)
            .map(|a| self.rib.intern(a));
        cache.insert(key, out.clone());
        out
    }

    /// Established peers as export targets.
    fn targets(&self) -> Vec<Target> {
        self.peers
            .iter()
            .filter(|(_, p)| p.state == State::Established)
            .filter_map(|(id, p)| {
                let n = p.negotiated.as_ref()?;
                let (v4, v6) = local_addresses(p.local?.ip());
                Some(Target {
                    peer: *id,
                    internal: n.internal,
                    rr_client: p.cfg.route_reflector_client,
                    local_v4: v4.or(match p.cfg.source_address {
                        Some(std::net::IpAddr::V4(a)) => Some(a),
                        _ => None,
                    }),
                    local_v6: v6,
                    families: n.families.clone(),
                })
            })
            .collect()
    }

    /// Send what every Adj-RIB-Out has pending. Peers with the same changes
    /// and the same session context (a reflector's clients, a mesh's nodes)
    /// share one encoding: the routes are packed and written once, and the
    /// bytes queued for every such peer are one buffer.
    pub(super) fn flush(&mut self) {
        self.unflushed = 0;
        let mut recent = EncodedMemo::default();
        for p in self.peers.values_mut() {
            if !p.adj_out.has_pending() {
                continue;
            }
            let Some(n) = &p.negotiated else {
                continue;
            };
            let ctx = n.encode_context();
            let out = p.adj_out.take(&ctx);
            if out.is_empty() {
                continue;
            }
            let (bytes, count) = recent.get_or_encode(out, ctx, &p.name);
            p.stats.updates_out += count as u64;
            let _ = p.tx.send(PeerCommand::Send(bytes));
        }
    }

    /// Sweep stale kernel routes once every established peer sent End-of-RIB
    /// for all its families (RFC 4724 4.1's signal that the table is complete).
    fn maybe_sweep(&mut self) {
        if self.swept || self.fib.is_none() {
            return;
        }
        let all_done = self.peers.values().all(|p| match &p.negotiated {
            Some(n) => n.families.iter().all(|f| p.eor.contains(f)),
            None => false,
        });
        if all_done {
            self.sweep();
        }
    }
}

/// The last few distinct encodings of one flush: the peers whose changes
/// differ (a reflector's source client, which is not sent its own routes)
/// are few, so a short list finds the shared one.
#[derive(Default)]
struct EncodedMemo {
    recent: VecDeque<(EncodeContext, Outbound, Bytes, usize)>,
}

impl EncodedMemo {
    const KEPT: usize = 4;

    /// The wire bytes of `out` for a session with `ctx`, and their UPDATE count.
    fn get_or_encode(&mut self, out: Outbound, ctx: EncodeContext, peer: &str) -> (Bytes, usize) {
        if let Some((_, _, b, n)) = self
            .recent
            .iter()
            .find(|(c, o, _, _)| *c == ctx && *o == out)
        {
            return (b.clone(), *n);
        }
        let updates = out.updates(&ctx);
        let n = updates.len();
        let b = encode_updates(updates, &ctx, peer);
        if self.recent.len() == Self::KEPT {
            self.recent.pop_back();
        }
        self.recent.push_front((ctx, out, b.clone(), n));
        (b, n)
    }
}

/// Why a peer's whole table goes out.
#[derive(Clone, Copy)]
pub(super) enum Advertise {
    /// The session just came up: the peer has nothing from us.
    Initial,
    /// Route refresh (RFC 2918): the peer has what it was sent.
    Again,
}

/// What export policy's result depends on: the attributes and their source, the
/// target's class (see [`export_classes`]) and whether it is the source, the family.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ExportKey {
    attrs: usize,
    source: PeerId,
    class: u32,
    to_source: bool,
    v6: bool,
}

/// For each target, the index of the first target that [`Target::exports_like`] it:
/// a reflector's clients (or a mesh's nodes) are one class, so a route is judged
/// once for all of them, not once per peer.
fn export_classes(targets: &[Target]) -> Vec<u32> {
    let mut firsts: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        let first = match firsts.iter().find(|&&f| targets[f].exports_like(t)) {
            Some(&f) => f,
            None => {
                firsts.push(i);
                i
            }
        };
        out.push(first as u32);
    }
    out
}

/// Export results of one batch of changes. Export policy depends on the attributes and
/// the peers, not on the prefix, so the routes of one UPDATE (which share attributes)
/// are judged once per class of targets: the last result is kept beside the map, which
/// is consulted (with a fast hash: the keys are local) only when the attributes change.
#[derive(Default)]
struct ExportCache {
    last: Option<(ExportKey, Option<Attrs>)>,
    all: HashMap<ExportKey, Option<Attrs>, RandomState>,
}

impl ExportCache {
    fn get(&mut self, key: &ExportKey) -> Option<Option<Attrs>> {
        if let Some((k, v)) = &self.last
            && k == key
        {
            return Some(v.clone());
        }
        let v = self.all.get(key)?.clone();
        self.last = Some((*key, v.clone()));
        Some(v)
    }

    fn insert(&mut self, key: ExportKey, value: Option<Attrs>) {
        self.last = Some((key, value.clone()));
        self.all.insert(key, value);
    }
}
