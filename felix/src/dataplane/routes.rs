//! Routes felix owns in the main table: one `/32` (or `/128`) per local workload
//! (`<ip> dev caliX scope link proto 80`), one blackhole per local IPAM block
//! (`blackhole <block> proto 80`) and, with an overlay, one route per remote block
//! (`<block> via <tunnel addr> dev vxlan.calico onlink proto 80`, or `via <node
//! addr>` for a node on our subnet).
//!
//! The calculation says what it wants as [`RouteSpec`]s; this file validates
//! them and turns them into the [`KernelRoute`]s felix owns
//! ([`kernel_routes::FELIX`]). Everything else (diff against the kernel, the
//! ownership contract with bgpd, messages, pipelined writes) is the
//! `kernel_routes` crate; [`syncer`] is the thin driver.

pub mod syncer;

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use kernel_routes::FELIX;
pub use kernel_routes::{KernelRoute, RouteTarget};
use thiserror::Error;

use crate::calc::routes::RouteSpec;

pub use syncer::{RouteApplyReport, RouteError, RouteFailure, RouteSyncer};

/// Why a set of [`RouteSpec`]s was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteSpecError {
    #[error("workload route {dst} via {ifname}: destination must be a host prefix (/32 or /128)")]
    NotHostPrefix { dst: IpNet, ifname: String },
    #[error(
        "route {dst}: host bits are set (the network is {network}); the kernel rejects such a prefix"
    )]
    HostBitsSet { dst: IpNet, network: IpNet },
    #[error("workload route {dst}: interface name {ifname:?} is not a valid Linux interface name")]
    BadIfname { dst: IpNet, ifname: String },
    #[error("route {dst} is wanted twice with different targets: {first:?} and {second:?}")]
    Duplicate {
        dst: IpNet,
        first: Box<RouteSpec>,
        second: Box<RouteSpec>,
    },
}

/// A validated desired state: at most one route per destination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredRoutes {
    routes: BTreeMap<IpNet, RouteSpec>,
}

impl DesiredRoutes {
    /// Validates `specs`: host prefixes for workloads, no host bits, valid
    /// interface names, one target per destination (exact repeats are merged).
    pub fn new(specs: impl IntoIterator<Item = RouteSpec>) -> Result<Self, RouteSpecError> {
        let mut routes: BTreeMap<IpNet, RouteSpec> = BTreeMap::new();
        for spec in specs {
            let dst = spec.dst();
            if dst.network() != dst.addr() {
                return Err(RouteSpecError::HostBitsSet {
                    dst,
                    network: dst.trunc(),
                });
            }
            if let RouteSpec::Workload { ifname, .. } = &spec {
                if dst.prefix_len() != dst.max_prefix_len() {
                    return Err(RouteSpecError::NotHostPrefix {
                        dst,
                        ifname: ifname.clone(),
                    });
                }
                if !config::validate::valid_ifname(ifname) {
                    return Err(RouteSpecError::BadIfname {
                        dst,
                        ifname: ifname.clone(),
                    });
                }
            }
            if let Some(first) = routes.get(&dst) {
                if *first != spec {
                    return Err(RouteSpecError::Duplicate {
                        dst,
                        first: Box::new(first.clone()),
                        second: Box::new(spec),
                    });
                }
                continue;
            }
            routes.insert(dst, spec);
        }
        Ok(Self { routes })
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The spec for a destination.
    pub fn get(&self, dst: &IpNet) -> Option<&RouteSpec> {
        self.routes.get(dst)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RouteSpec> {
        self.routes.values()
    }

    /// Turns each spec into the exact kernel route it should become, given the
    /// current interface indexes. Workload routes whose interface does not
    /// exist (yet) come back in the second list: they are pending, not errors,
    /// because the CNI plugin may not have created the veth yet.
    pub fn resolve(
        &self,
        ifindexes: &HashMap<String, u32>,
    ) -> (Vec<KernelRoute>, Vec<(IpNet, String)>) {
        let mut resolved = Vec::with_capacity(self.routes.len());
        let mut pending = Vec::new();
        for spec in self.routes.values() {
            match spec {
                RouteSpec::Workload { dst, ifname } => match ifindexes.get(ifname) {
                    Some(&index) => resolved.push(FELIX.route(*dst, RouteTarget::Dev(index))),
                    None => pending.push((*dst, ifname.clone())),
                },
                RouteSpec::Blackhole { dst } => {
                    resolved.push(FELIX.route(*dst, RouteTarget::Blackhole))
                }
                // The tunnel device comes with the overlay's first plan: until then
                // its routes wait like a workload's for its veth.
                RouteSpec::Tunnel {
                    dst,
                    gateway,
                    ifname,
                } => match ifindexes.get(ifname) {
                    Some(&dev) => resolved.push(FELIX.route(
                        *dst,
                        RouteTarget::OnlinkVia {
                            gateway: *gateway,
                            dev,
                        },
                    )),
                    None => pending.push((*dst, ifname.clone())),
                },
                RouteSpec::Via { dst, gateway } => {
                    resolved.push(FELIX.route(*dst, RouteTarget::via(vec![*gateway])))
                }
            }
        }
        (resolved, pending)
    }
}

#[cfg(test)]
mod tests;
