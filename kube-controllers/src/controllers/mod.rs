//! The controllers' I/O: each one watches a Kubernetes kind with
//! `kube::runtime::watcher` (list, then watch from the list's resourceVersion; on 410
//! Gone or a broken watch it lists again, with backoff), keeps what it wants in etcd in
//! memory, and writes the difference with compare-and-swap while this replica leads.
//!
//! * [`driver`]: the loop every controller runs (batching, retry, leadership, health);
//! * [`mapped`]: a Kubernetes object -> one Calico resource (namespaces, service
//!   accounts, network policies);
//! * [`pods`]: pods -> their workload endpoints' labels;
//! * [`nodes`]: deleted nodes -> Calico node and IPAM cleanup;
//! * [`write`](mod@write): one etcd write with its conflict handling and metrics.

pub mod driver;
pub mod mapped;
pub mod nodes;
pub mod pods;
pub mod write;

use std::sync::Arc;

use config::datastore::Datastore;

use crate::health::Health;
use crate::leader::Leadership;
use crate::metrics::Metrics;

/// What every controller shares.
#[derive(Clone)]
pub struct Ctx {
    pub ds: Datastore,
    pub metrics: Arc<Metrics>,
    pub health: Health,
    pub leadership: Leadership,
}

/// A controller by its Calico name (`ENABLED_CONTROLLERS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Node,
    Namespace,
    ServiceAccount,
    WorkloadEndpoint,
    Policy,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Node,
        Kind::Namespace,
        Kind::ServiceAccount,
        Kind::WorkloadEndpoint,
        Kind::Policy,
    ];

    /// Calico's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Namespace => "namespace",
            Kind::ServiceAccount => "serviceaccount",
            Kind::WorkloadEndpoint => "workloadendpoint",
            Kind::Policy => "policy",
        }
    }

    /// Parses a comma-separated list of controller names (Calico's
    /// `ENABLED_CONTROLLERS`, e.g. `node,policy`); duplicates are dropped.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown controller {part:?} (known: node, namespace, serviceaccount, workloadendpoint, policy)"
                    )
                })?;
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
        if out.is_empty() {
            return Err("no controller enabled".into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_lists_parse_as_calico_names_them() {
        assert_eq!(
            Kind::parse_list("node,namespace,serviceaccount,workloadendpoint,policy").unwrap(),
            Kind::ALL
        );
        assert_eq!(
            Kind::parse_list(" policy , node,policy").unwrap(),
            [Kind::Policy, Kind::Node]
        );
        assert!(Kind::parse_list("profile").unwrap_err().contains("profile"));
        assert!(Kind::parse_list("").is_err());
    }
}
