//! Fast paths for a few changed routes or neighbour entries: write just those,
//! one netlink request each, without the full link, route and neighbour dumps
//! of the syncers (which grow with the node's interface count). Anything
//! unexpected makes them return false, and the caller falls back to the full
//! sync, which sorts it out.

use std::collections::BTreeSet;

use tracing::debug;

use super::Applier;
use crate::dataplane::neighbors::{KernelNeighbor, NeighborSpec, write_entry};
use crate::dataplane::netlink::{ENOENT, ESRCH, errno};
use crate::dataplane::routes::kernel::route_message;
use crate::dataplane::routes::{DesiredRoutes, KernelRoute, RouteSpec, RouteTarget};

/// Changes up to this many go through a fast path.
const FAST_PATH_MAX_CHANGES: usize = 32;

/// (added, removed) between two sorted-or-not lists, or `None` when too many.
fn delta<'a, T: Ord>(old: &'a [T], new: &'a [T]) -> Option<(Vec<&'a T>, Vec<&'a T>)> {
    let old: BTreeSet<&T> = old.iter().collect();
    let new: BTreeSet<&T> = new.iter().collect();
    let added: Vec<&T> = new.difference(&old).copied().collect();
    let removed: Vec<&T> = old.difference(&new).copied().collect();
    (added.len() + removed.len() <= FAST_PATH_MAX_CHANGES).then_some((added, removed))
}

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
        let Some((added, removed)) = delta(last, desired) else {
            return false;
        };
        let Ok(specs) = DesiredRoutes::new(desired.iter().cloned()) else {
            return false;
        };
        let handle = self.nl.handle().clone();
        for (add, spec) in added
            .iter()
            .map(|s| (true, *s))
            .chain(removed.iter().map(|s| (false, *s)))
        {
            let target = match spec {
                RouteSpec::Blackhole { .. } => RouteTarget::Blackhole,
                RouteSpec::Workload { ifname, .. } => match self.nl.link_index(ifname).await {
                    Ok(Some(index)) => RouteTarget::Dev(index),
                    // Interface gone: its routes went with it.
                    Ok(None) if !add => continue,
                    _ => return false,
                },
            };
            let msg = route_message(&KernelRoute::felix(spec.dst(), target));
            let result = if add {
                handle.route().add(msg).execute().await
            } else {
                handle.route().del(msg).execute().await
            };
            match result {
                Ok(()) => {}
                Err(e) if !add && matches!(errno(&e), Some(ESRCH | ENOENT)) => {}
                Err(e) => {
                    debug!(route = ?spec, add, error = %e, "fast route write failed; full sync");
                    return false;
                }
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
        let Some((added, removed)) = delta(last, desired) else {
            return false;
        };
        for (add, spec) in added
            .iter()
            .map(|s| (true, *s))
            .chain(removed.iter().map(|s| (false, *s)))
        {
            let ifindex = match self.nl.link_index(&spec.ifname).await {
                Ok(Some(index)) => index,
                // No interface: nothing to delete, nothing to add yet.
                Ok(None) => continue,
                Err(_) => return false,
            };
            let entry = KernelNeighbor {
                ifindex,
                ip: spec.ip,
                mac: spec.mac.to_vec(),
            };
            match write_entry(&self.nl, add, &entry).await {
                Ok(()) => {}
                Err(e) if !add && matches!(errno(&e), Some(ESRCH | ENOENT)) => {}
                Err(e) => {
                    debug!(neighbor = ?spec, add, error = %e, "fast neighbour write failed; full sync");
                    return false;
                }
            }
        }
        self.neighbors.set_desired(desired.to_vec());
        self.last_neighbors = Some(desired.to_vec());
        true
    }
}
