//! The I/O half of route sync: resolve, dump, diff, write, with many requests
//! in flight (all through `kernel_routes`).

use std::collections::BTreeMap;

use ipnet::IpNet;
use kernel_routes::errno::EEXIST;
use kernel_routes::{
    DumpError, FELIX, Netlink, Outcome, RouteDiff, RouteOp, Written, diff, dump_routes, execute,
};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::{DesiredRoutes, KernelRoute};
use crate::calc::routes::RouteSpec;

pub use kernel_routes::DEFAULT_IN_FLIGHT;

/// A failure that stops an apply before any write.
#[derive(Debug, Error)]
pub enum RouteError {
    #[error("listing interfaces (RTM_GETLINK dump) failed: {0}")]
    Links(#[source] rtnetlink::Error),
    #[error(transparent)]
    Dump(#[from] DumpError),
}

/// One route write the kernel refused; the rest of the apply went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFailure {
    pub op: RouteOp,
    pub route: KernelRoute,
    /// Positive errno from the kernel's NACK, if it was one.
    pub errno: Option<i32>,
    pub message: String,
}

/// What one [`RouteSyncer::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteApplyReport {
    pub replaced: usize,
    pub deleted: usize,
    /// Workload routes waiting for their interface (dst, ifname).
    pub pending: Vec<(IpNet, String)>,
    /// Desired routes not written because a route of another protocol holds
    /// their slot: (desired, foreign).
    pub conflicts: Vec<(KernelRoute, KernelRoute)>,
    pub failures: Vec<RouteFailure>,
}

/// Keeps felix's routes in the main table equal to a [`DesiredRoutes`].
///
/// Every [`apply`](Self::apply) re-reads the kernel, so it also sweeps stale
/// proto-80 routes left by an earlier run (mark and sweep at start), repairs
/// routes removed behind our back, and writes pending workload routes once
/// their interface exists.
pub struct RouteSyncer {
    nl: Netlink,
    desired: DesiredRoutes,
    pending: BTreeMap<IpNet, String>,
    in_flight: usize,
}

impl RouteSyncer {
    pub fn new(nl: Netlink) -> Self {
        Self {
            nl,
            desired: DesiredRoutes::default(),
            pending: BTreeMap::new(),
            in_flight: DEFAULT_IN_FLIGHT,
        }
    }

    /// How many requests to keep outstanding (at least 1).
    pub fn with_in_flight(mut self, n: usize) -> Self {
        self.in_flight = n.max(1);
        self
    }

    pub fn set_desired(&mut self, desired: DesiredRoutes) {
        self.desired = desired;
    }

    pub fn desired(&self) -> &DesiredRoutes {
        &self.desired
    }

    /// Workload routes the last apply could not write for lack of their interface.
    pub fn pending(&self) -> &BTreeMap<IpNet, String> {
        &self.pending
    }

    /// Link-added hook: true when a pending route waits for `ifname`, i.e. the
    /// caller should run [`apply`](Self::apply) now rather than at the next refresh.
    pub fn on_link_added(&self, ifname: &str) -> bool {
        self.pending.values().any(|name| name == ifname)
    }

    /// Felix's routes (proto 80) in the main table, IPv4 and IPv6.
    pub async fn dump(&self) -> Result<Vec<KernelRoute>, RouteError> {
        let mut routes = dump_routes(self.nl.handle()).await?;
        routes.retain(|r| FELIX.owns(r));
        Ok(routes)
    }

    /// Makes the kernel match the desired routes; see the type's doc.
    pub async fn apply(&mut self) -> Result<RouteApplyReport, RouteError> {
        let ifindexes = self.nl.link_indexes().await.map_err(RouteError::Links)?;
        let (resolved, pending) = self.desired.resolve(&ifindexes);
        let actual = dump_routes(self.nl.handle()).await?;
        let RouteDiff {
            add,
            replace,
            delete,
            conflicts,
        } = diff(&FELIX, &resolved, &actual);
        for (want, foreign) in &conflicts {
            warn!(route = %want, holder = %foreign, "route slot held by another protocol; not touching it");
        }
        let mut report = RouteApplyReport {
            replaced: add.len() + replace.len(),
            deleted: delete.len(),
            pending,
            conflicts,
            failures: Vec::new(),
        };
        let writes = add
            .into_iter()
            .map(|r| (RouteOp::Add, r))
            .chain(replace.into_iter().map(|r| (RouteOp::Replace, r)))
            .chain(delete.into_iter().map(|r| (RouteOp::Delete, r)));
        for Written { op, route, outcome } in
            execute(self.nl.handle(), writes, self.in_flight).await
        {
            let (errno, message) = match outcome {
                // Written, or (a delete) already gone: the goal is met.
                Outcome::Done => continue,
                // The interface vanished between the link dump and the write, or
                // is not up yet (IPv4 refuses device routes on a down device):
                // pending, like an interface that does not exist yet.
                Outcome::NoLink => {
                    report.replaced -= 1;
                    if let Some(RouteSpec::Workload { dst, ifname }) = self.desired.get(&route.dst)
                    {
                        report.pending.push((*dst, ifname.clone()));
                    }
                    continue;
                }
                // A route took the empty slot since the dump: not overwritten;
                // the next apply's diff reports it as a conflict.
                Outcome::SlotTaken => (
                    Some(EEXIST),
                    "another route took the slot since the dump".to_string(),
                ),
                Outcome::Failed { errno, message } => (errno, message),
            };
            warn!(?op, %route, error = %message, "route write failed");
            match op {
                RouteOp::Add | RouteOp::Replace => report.replaced -= 1,
                RouteOp::Delete => report.deleted -= 1,
            }
            report.failures.push(RouteFailure {
                op,
                route,
                errno,
                message,
            });
        }
        report.pending.sort();
        self.pending = report.pending.iter().cloned().collect();
        if report.replaced + report.deleted > 0 {
            info!(
                replaced = report.replaced,
                deleted = report.deleted,
                pending = report.pending.len(),
                "routes synced"
            );
        } else {
            debug!(pending = report.pending.len(), "routes already in sync");
        }
        Ok(report)
    }
}
