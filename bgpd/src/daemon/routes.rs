//! Route handling of the owner task: session events in, Loc-RIB changes
//! out to the FIB and the Adj-RIBs-Out.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::time::SystemTime;

use ipnet::IpNet;
use tracing::{debug, info};

use super::{Daemon, graceful};
use crate::fib::FibOp;
use crate::fsm::State;
use crate::peer::{PeerCommand, PeerEvent};
use crate::policy::{Source, Target, local_addresses};
use crate::rib::{Attrs, Best, Change, PeerId, PeerInfo, RouteAttrs};
use crate::wire::attribute::as4::merge_from_two_octet;
use crate::wire::{Family, NextHop, Nlri, Update, UpdateAction};

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
                self.advertise_all(id);
                // RFC 4724 2: End-of-RIB after the initial table; 4.1: a Restarting
                // Speaker sends it only once its deferred route selection is done.
                let deferring = self.deferring;
                if let Some(p) = self.peers.get_mut(&id) {
                    let mut updates = p
                        .adj_out
                        .take_updates(&p.negotiated.as_ref().expect("just set").encode_context());
                    if !deferring {
                        updates.extend(families.iter().map(|f| Update::end_of_rib(*f)));
                        p.eor_sent = true;
                    }
                    p.stats.updates_out += updates.len() as u64;
                    let _ = p.tx.send(PeerCommand::Send(updates));
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
                    }
                    (None, _) => {}
                }
            }
            PeerEvent::Update(u) => self.on_update(id, *u),
            PeerEvent::RouteRefresh(rr) => {
                // RFC 2918 4: re-advertise the Adj-RIB-Out.
                debug!(peer = %p.name, family = %rr.family, "route refresh");
                p.adj_out.clear();
                self.advertise_all(id);
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
        let mut announce: Vec<(Nlri, NextHop)> = Vec::new();
        if let Some(nh) = u.attributes.next_hop {
            announce.extend(u.nlri.drain(..).map(|n| (n, NextHop::V4(nh))));
        }
        if let Some(m) = u.attributes.mp_reach.take() {
            announce.extend(m.nlri.into_iter().map(|n| (n, m.next_hop)));
        }
        p.stats.withdraws_received += withdraw.len() as u64;
        p.stats.prefixes_received += announce.len() as u64;
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
            debug!(peer = %p.name, reason = %why, prefixes = announce.len(), "routes not accepted");
            p.stats.prefixes_rejected += announce.len() as u64;
            withdraw.extend(announce.drain(..).map(|(n, _)| n));
        }
        let mut changes = Vec::new();
        if self.stale.has(id) {
            for n in withdraw.iter().chain(announce.iter().map(|(n, _)| n)) {
                self.stale.refreshed(id, (n.prefix, n.path_id.unwrap_or(0)));
            }
        }
        for n in withdraw {
            changes.extend(self.rib.withdraw(id, n.prefix, n.path_id.unwrap_or(0)));
        }
        let mut attrs: Option<(NextHop, Attrs)> = None;
        for (n, nh) in announce {
            let a = match &attrs {
                Some((h, a)) if *h == nh => a.clone(),
                _ => {
                    let a = self.rib.intern(RouteAttrs::new(u.attributes.clone(), nh));
                    attrs = Some((nh, a.clone()));
                    a
                }
            };
            changes.extend(self.rib.announce(id, n.prefix, n.path_id.unwrap_or(0), a));
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
    fn fib_op(&self, prefix: IpNet, best: Option<&Best>) -> FibOp {
        let excluded = self.fib_exclude.iter().any(|x| x.contains(&prefix));
        match best {
            // Our own prefixes are felix's (blackholes): never installed; nor are routes
            // felix programs itself (the overlay's pools).
            Some(b) if b.path.peer != PeerId::LOCAL && !excluded => FibOp::Replace {
                prefix,
                next_hops: b.next_hops(),
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
        self.rib
            .for_each_best(|prefix, best| ops.push(self.fib_op(prefix, Some(&best))));
        fib.apply(ops);
    }

    /// Push Loc-RIB changes to the FIB and to every established peer's
    /// Adj-RIB-Out (sent at the next [`Daemon::flush`]).
    pub(super) fn apply_changes(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        if let Some(fib) = &self.fib {
            let ops = changes
                .iter()
                .map(|c| self.fib_op(c.prefix, c.best.as_ref()))
                .collect();
            fib.apply(ops);
        }
        let targets = self.targets();
        if targets.is_empty() {
            return;
        }
        let mut cache = ExportCache::default();
        for c in changes {
            for t in &targets {
                let out = c
                    .best
                    .as_ref()
                    .and_then(|b| self.export(&mut cache, &c.prefix, &b.path, t));
                if let Some(p) = self.peers.get_mut(&t.peer) {
                    p.adj_out.set(c.prefix, out);
                }
            }
        }
    }

    /// Fill a newly established peer's Adj-RIB-Out from the Loc-RIB.
    pub(super) fn advertise_all(&mut self, id: PeerId) {
        let Some(t) = self.targets().into_iter().find(|t| t.peer == id) else {
            return;
        };
        let mut all = Vec::new();
        self.rib
            .for_each_best(|prefix, b| all.push((prefix, b.path)));
        let mut cache = ExportCache::default();
        for (prefix, path) in all {
            let out = self.export(&mut cache, &prefix, &path, &t);
            if let Some(p) = self.peers.get_mut(&id) {
                p.adj_out.set(prefix, out);
            }
        }
    }

    fn export(
        &mut self,
        cache: &mut ExportCache,
        prefix: &IpNet,
        path: &crate::rib::Path,
        t: &Target,
    ) -> Option<Attrs> {
        let key = (path.attrs.id(), path.peer, t.peer, prefix.addr().is_ipv6());
        if let Some(v) = cache.get(&key) {
            return v;
        }
        let source = (path.peer != PeerId::LOCAL).then(|| {
            let info = self.rib.peer(path.peer);
            Source {
                peer: path.peer,
                router_id: info.map_or(self.policy.router_id, |i| i.router_id),
                internal: info.is_some_and(|i| i.internal),
                rr_client: self
                    .peers
                    .get(&path.peer)
                    .is_some_and(|p| p.cfg.route_reflector_client),
            }
        });
        let out = self
            .policy
            .export(prefix, &path.attrs, source.as_ref(), t)
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

    /// Send what every Adj-RIB-Out has pending.
    pub(super) fn flush(&mut self) {
        for p in self.peers.values_mut() {
            if !p.adj_out.has_pending() {
                continue;
            }
            let Some(n) = &p.negotiated else {
                continue;
            };
            let updates = p.adj_out.take_updates(&n.encode_context());
            if updates.is_empty() {
                continue;
            }
            p.stats.updates_out += updates.len() as u64;
            let _ = p.tx.send(PeerCommand::Send(updates));
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

/// (attributes, source peer, target peer, IPv6) -> what export policy made of them.
type ExportKey = (usize, PeerId, PeerId, bool);

/// Export results of one batch of changes. Export policy depends on the attributes and
/// the peers, not on the prefix, so the routes of one UPDATE (which share attributes)
/// are judged once per target: the last result is kept beside the map, which is
/// consulted (with a fast hash: the keys are local) only when the attributes change.
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
