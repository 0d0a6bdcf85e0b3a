//! The I/O half of route sync: dump, diff, write, with many requests in flight.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::route::RouteMessage;
use thiserror::Error;
use tracing::{debug, info, warn};

use super::kernel::{parse_route, route_message};
use super::{DesiredRoutes, KernelRoute, RouteDiff, diff};
use crate::dataplane::netlink::{ENETDOWN, ENODEV, ENOENT, ESRCH, Netlink, errno};

/// Requests kept in flight on the netlink socket. The kernel handles route
/// requests one by one; pipelining hides the per-request round trip. 256 acks
/// (~36 bytes each) fit the socket's default receive buffer many times over.
pub const DEFAULT_IN_FLIGHT: usize = 256;

/// A failure that stops an apply before any write.
#[derive(Debug, Error)]
pub enum RouteError {
    #[error("listing interfaces (RTM_GETLINK dump) failed: {0}")]
    Links(#[source] rtnetlink::Error),
    #[error("dumping {family} routes (RTM_GETROUTE) failed: {source}")]
    Dump {
        family: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOp {
    Replace,
    Delete,
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
        let mut routes = self.dump_main().await?;
        routes.retain(KernelRoute::is_ours);
        Ok(routes)
    }

    /// Every main-table route, all protocols (needed to spot conflicts).
    async fn dump_main(&self) -> Result<Vec<KernelRoute>, RouteError> {
        // One dump at a time: a netlink socket runs a single dump, and a second
        // request while the first still has messages to send fails with EBUSY
        // (netlink_dump_start), which happens once a table outgrows one read.
        let mut routes = self.dump_family(false).await?;
        routes.extend(self.dump_family(true).await?);
        Ok(routes)
    }

    async fn dump_family(&self, v6: bool) -> Result<Vec<KernelRoute>, RouteError> {
        let mut query = RouteMessage::default();
        query.header.address_family = if v6 {
            netlink_packet_route::AddressFamily::Inet6
        } else {
            netlink_packet_route::AddressFamily::Inet
        };
        let family = if v6 { "IPv6" } else { "IPv4" };
        let msgs: Vec<RouteMessage> = self
            .nl
            .handle()
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(|source| RouteError::Dump { family, source })?;
        Ok(msgs.iter().filter_map(parse_route).collect())
    }

    /// Makes the kernel match the desired routes; see the type's doc.
    pub async fn apply(&mut self) -> Result<RouteApplyReport, RouteError> {
        let ifindexes = self.nl.link_indexes().await.map_err(RouteError::Links)?;
        let (resolved, pending) = self.desired.resolve(&ifindexes);
        let actual = self.dump_main().await?;
        let RouteDiff {
            replace,
            delete,
            conflicts,
        } = diff(&resolved, &actual);
        for (want, foreign) in &conflicts {
            warn!(route = %want, holder = %foreign, "route slot held by another protocol; not touching it");
        }
        let mut report = RouteApplyReport {
            replaced: replace.len(),
            deleted: delete.len(),
            pending,
            conflicts,
            failures: Vec::new(),
        };
        let ops = replace
            .into_iter()
            .map(|r| (RouteOp::Replace, r))
            .chain(delete.into_iter().map(|r| (RouteOp::Delete, r)));
        for failure in self.execute(ops).await {
            match (failure.op, failure.errno) {
                // Already gone: the goal of a delete is met.
                (RouteOp::Delete, Some(ESRCH | ENOENT)) => report.deleted -= 1,
                // The interface vanished between the link dump and the write, or
                // is not up yet (IPv4 refuses device routes on a down device):
                // pending, like an interface that does not exist yet.
                (RouteOp::Replace, Some(ENODEV | ENETDOWN)) => {
                    report.replaced -= 1;
                    if let Some(super::RouteSpec::Workload { dst, ifname }) =
                        self.desired.get(&failure.route.dst)
                    {
                        report.pending.push((*dst, ifname.clone()));
                    }
                }
                _ => {
                    warn!(op = ?failure.op, route = %failure.route, error = %failure.message, "route write failed");
                    match failure.op {
                        RouteOp::Replace => report.replaced -= 1,
                        RouteOp::Delete => report.deleted -= 1,
                    }
                    report.failures.push(failure);
                }
            }
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

    /// Runs the writes with up to `in_flight` outstanding; returns the failures.
    async fn execute(
        &self,
        ops: impl Iterator<Item = (RouteOp, KernelRoute)>,
    ) -> Vec<RouteFailure> {
        let handle = self.nl.handle().clone();
        futures::stream::iter(ops)
            .map(|(op, route)| {
                let routes = handle.route();
                async move {
                    let msg = route_message(&route);
                    let result = match op {
                        RouteOp::Replace => routes.add(msg).replace().execute().await,
                        RouteOp::Delete => routes.del(msg).execute().await,
                    };
                    result.err().map(|e| RouteFailure {
                        op,
                        route,
                        errno: errno(&e),
                        message: e.to_string(),
                    })
                }
            })
            .buffer_unordered(self.in_flight)
            .filter_map(futures::future::ready)
            .collect()
            .await
    }
}
