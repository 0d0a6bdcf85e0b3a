//! Fast paths for a few changed routes or neighbour entries: write just those,
//! one pipelined netlink request each, without the full link, route and neighbour dumps
//! of the syncers (which grow with the node's interface count). Anything
//! unexpected makes them return false, and the caller falls back to the full
//! sync, which sorts it out.

use kernel_routes::neigh::write_neighbors;
use kernel_routes::{FELIX, RouteOp, RouteTarget, execute, few_changes};
use tracing::debug;

use super::Applier;
use crate::calc::routes::{NeighborSpec, RouteSpec};
use crate::dataplane::neighbors::entry;
use crate::dataplane::routes::DesiredRoutes;

/// Changes up to this many go through a fast path.
const FAST_PATH_MAX_CHANGES: usize = 32;

impl Applier {
    /// The fast path for a few changed routes: write just those, without the
    /// full link and route dumps (which grow with the node's interface count).
    /// Adds use `NLM_F_EXCL`, so a slot held by anyone (even a foreign route)
    /// makes it fall back to the full sync, which sorts that out. False when
    /// the fast path does not apply or did not complete.
    pub(super) async fn fast_routes(&mut self, desired: &[RouteSpec]) -> bool {
        let Some(last) = &self.last_routes else {
            return false;
        };
        let Some((added, removed)) = few_changes(last, desired, FAST_PATH_MAX_CHANGES) else {
            return false;
        };
        let Ok(specs) = DesiredRoutes::new(desired.iter().cloned()) else {
            return false;
        };
        let mut writes = Vec::with_capacity(added.len() + removed.len());
        for (op, spec) in added
            .iter()
            .map(|s| (RouteOp::Add, *s))
            .chain(removed.iter().map(|s| (RouteOp::Delete, *s)))
        {
            let target = match spec {
                RouteSpec::Blackhole { .. } => RouteTarget::Blackhole,
                RouteSpec::Workload { ifname, .. } => match self.nl.link_index(ifname).await {
                    Ok(Some(index)) => RouteTarget::Dev(index),
                    // Interface gone: its routes went with it.
                    Ok(None) if op == RouteOp::Delete => continue,
                    _ => return false,
                },
                RouteSpec::Tunnel {
                    gateway, ifname, ..
                } => match self.nl.link_index(ifname).await {
                    Ok(Some(dev)) => RouteTarget::OnlinkVia {
                        gateway: *gateway,
                        dev,
                    },
                    Ok(None) if op == RouteOp::Delete => continue,
                    _ => return false,
                },
                RouteSpec::Via { gateway, .. } => RouteTarget::via(vec![*gateway]),
            };
            writes.push((op, FELIX.route(spec.dst(), target)));
        }
        for w in execute(self.nl.handle(), writes, FAST_PATH_MAX_CHANGES).await {
            if !w.outcome.is_done() {
                debug!(route = %w.route, op = ?w.op, outcome = ?w.outcome, "fast route write failed; full sync");
                return false;
            }
        }
        self.routes.set_desired(specs);
        true
    }

    /// The neighbour twin of [`fast_routes`](Self::fast_routes): `replace`
    /// for new entries, delete for gone ones. An entry whose interface does
    /// not exist yet waits, as in the full sync, for its link event.
    pub(super) async fn fast_neighbors(&mut self, desired: &[NeighborSpec]) -> bool {
        let Some(last) = &self.last_neighbors else {
            return false;
        };
        let Some((added, removed)) = few_changes(last, desired, FAST_PATH_MAX_CHANGES) else {
            return false;
        };
        let mut writes = Vec::with_capacity(added.len() + removed.len());
        for (op, spec) in added
            .iter()
            .map(|s| (RouteOp::Replace, *s))
            .chain(removed.iter().map(|s| (RouteOp::Delete, *s)))
        {
            match self.nl.link_index(&spec.ifname).await {
                Ok(Some(index)) => writes.push((op, entry(spec, index))),
                // No interface: nothing to delete, nothing to add yet.
                Ok(None) => continue,
                Err(_) => return false,
            }
        }
        for (op, n, outcome) in
            write_neighbors(self.nl.handle(), writes, FAST_PATH_MAX_CHANGES).await
        {
            if !outcome.is_done() {
                debug!(neighbor = ?n, ?op, ?outcome, "fast neighbour write failed; full sync");
                return false;
            }
        }
        self.neighbors.set_desired(desired.to_vec());
        self.last_neighbors = Some(desired.to_vec());
        true
    }
}
