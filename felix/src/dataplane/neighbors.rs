//! Permanent neighbour (ARP/NDP) entries for workloads: pod IP -> pod MAC on
//! the pod's `caliX` interface, so the host never has to resolve it.
//!
//! Ownership: felix owns the permanent entries on interfaces whose name starts
//! with the configured prefix (`cali` by default) and on `vxlan.calico` (ARP and
//! FDB entries of remote VTEPs); dynamic entries and other interfaces are never
//! touched. The calculation's [`NeighborSpec`]s are
//! resolved here into `kernel_routes` entries; the diff, dump and pipelined
//! writes are `kernel_routes::neigh`.

use std::collections::{BTreeSet, HashMap};

use kernel_routes::neigh::{KernelNeighbor, diff, dump_neighbors, write_neighbors};
use kernel_routes::{Netlink, Outcome, RouteOp};
use thiserror::Error;
use tracing::{info, warn};

use crate::calc::overlay::VXLAN_DEVICE;
use crate::calc::routes::NeighborSpec;

/// Neighbour writes kept in flight on the netlink socket.
const IN_FLIGHT: usize = 64;

/// The kernel entry for `spec` on interface `ifindex`.
pub fn entry(spec: &NeighborSpec, ifindex: u32) -> KernelNeighbor {
    KernelNeighbor {
        ifindex,
        ip: spec.ip,
        mac: spec.mac.to_vec(),
        kind: spec.kind,
    }
}

/// The entries for `desired` whose interface exists, and the specs that wait
/// for theirs (sorted).
fn resolve(
    desired: &[NeighborSpec],
    ifindexes: &HashMap<String, u32>,
) -> (Vec<KernelNeighbor>, Vec<NeighborSpec>) {
    let mut resolved = Vec::with_capacity(desired.len());
    let mut pending = Vec::new();
    for spec in desired {
        match ifindexes.get(&spec.ifname) {
            Some(&ifindex) => resolved.push(entry(spec, ifindex)),
            None => pending.push(spec.clone()),
        }
    }
    pending.sort();
    (resolved, pending)
}

#[derive(Debug, Error)]
pub enum NeighborError {
    #[error("listing interfaces failed: {0}")]
    Links(#[source] rtnetlink::Error),
    #[error("dumping neighbour entries (RTM_GETNEIGH) failed: {0}")]
    Dump(#[source] rtnetlink::Error),
}

/// What one [`NeighborSyncer::apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NeighborReport {
    pub replaced: usize,
    pub deleted: usize,
    pub pending: Vec<NeighborSpec>,
    /// (entry, error) for writes the kernel refused.
    pub failures: Vec<(KernelNeighbor, String)>,
}

pub struct NeighborSyncer {
    nl: Netlink,
    iface_prefix: String,
    desired: Vec<NeighborSpec>,
}

impl NeighborSyncer {
    pub fn new(nl: Netlink) -> Self {
        Self::with_prefix(nl, "cali")
    }

    /// Owns permanent entries on interfaces whose names start with `prefix`.
    pub fn with_prefix(nl: Netlink, prefix: &str) -> Self {
        Self {
            nl,
            iface_prefix: prefix.into(),
            desired: Vec::new(),
        }
    }

    pub fn set_desired(&mut self, desired: Vec<NeighborSpec>) {
        self.desired = desired;
    }

    /// Permanent entries on owned interfaces.
    pub async fn dump(
        &self,
        ifindexes: &HashMap<String, u32>,
    ) -> Result<Vec<KernelNeighbor>, NeighborError> {
        let owned: BTreeSet<u32> = ifindexes
            .iter()
            .filter(|(name, _)| name.starts_with(&self.iface_prefix) || *name == VXLAN_DEVICE)
            .map(|(_, &i)| i)
            .collect();
        dump_neighbors(self.nl.handle(), &owned)
            .await
            .map_err(NeighborError::Dump)
    }

    pub async fn apply(&mut self) -> Result<NeighborReport, NeighborError> {
        let ifindexes = self.nl.link_indexes().await.map_err(NeighborError::Links)?;
        let actual = self.dump(&ifindexes).await?;
        let (resolved, pending) = resolve(&self.desired, &ifindexes);
        let d = diff(&resolved, &actual);
        let mut report = NeighborReport {
            replaced: d.replace.len(),
            deleted: d.delete.len(),
            pending,
            failures: Vec::new(),
        };
        let writes = d
            .replace
            .into_iter()
            .map(|n| (RouteOp::Replace, n))
            .chain(d.delete.into_iter().map(|n| (RouteOp::Delete, n)));
        for (op, n, outcome) in write_neighbors(self.nl.handle(), writes, IN_FLIGHT).await {
            let error = match outcome {
                Outcome::Done => continue,
                // The interface went away or is down: its link event redoes it.
                Outcome::NoLink => {
                    report.replaced -= 1;
                    continue;
                }
                Outcome::Failed { message, .. } => message,
                // Not an answer to a replace or delete; named for completeness.
                Outcome::SlotTaken => "entry exists".to_string(),
            };
            warn!(neighbor = ?n, %error, "neighbour write failed");
            match op {
                RouteOp::Delete => report.deleted -= 1,
                RouteOp::Add | RouteOp::Replace => report.replaced -= 1,
            }
            report.failures.push((n, error));
        }
        if report.replaced + report.deleted > 0 {
            info!(
                replaced = report.replaced,
                deleted = report.deleted,
                "neighbour entries synced"
            );
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0xee; 6];

    fn spec(ip: &str, ifname: &str) -> NeighborSpec {
        NeighborSpec {
            ip: ip.parse().unwrap(),
            mac: MAC,
            ifname: ifname.into(),
            kind: Default::default(),
        }
    }

    #[test]
    fn resolve_splits_pending() {
        let idx = HashMap::from([("calia".to_string(), 5)]);
        let (resolved, pending) = resolve(
            &[spec("10.0.0.1", "calia"), spec("10.0.0.4", "calizzz")],
            &idx,
        );
        assert_eq!(resolved, vec![entry(&spec("10.0.0.1", "calia"), 5)]);
        assert_eq!(pending, vec![spec("10.0.0.4", "calizzz")]);
    }
}
