//! Routes felix owns in the main table: one `/32` (or `/128`) per local workload
//! (`<ip> dev caliX scope link proto 80`) and one blackhole per local IPAM block
//! (`blackhole <block> proto 80`).
//!
//! This file is the pure part: the desired-state types the calculation produces,
//! their validation, and [`diff`] against what the kernel holds. The netlink
//! side is in [`kernel`] (message encode/decode) and [`syncer`] (I/O).
//!
//! Ownership: every route felix writes carries protocol [`RTPROT_FELIX`]; routes of
//! any other protocol are never replaced or deleted. A desired route whose key
//! (table, dst, tos, metric) is held by a foreign route is reported as a conflict
//! instead of being written, because `NLM_F_REPLACE` would overwrite it.

pub mod kernel;
pub mod syncer;

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use thiserror::Error;

pub use syncer::{RouteApplyReport, RouteError, RouteFailure, RouteSyncer};

/// Route protocol number felix tags its routes with (`proto 80` in `ip route`).
pub const RTPROT_FELIX: u8 = 80;

/// The metric the kernel gives an IPv6 route added without one
/// (`IP6_RT_PRIO_USER`); IPv4 routes default to 0.
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// `RT_SCOPE_LINK`: the destination is directly on the link (no gateway).
pub const SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_UNIVERSE`.
pub const SCOPE_UNIVERSE: u8 = 0;

/// One route the calculation wants in the main table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteSpec {
    /// A local workload: `<dst> dev <ifname> scope link proto 80`. `dst` is a
    /// host prefix (/32 or /128).
    Workload { dst: IpNet, ifname: String },
    /// A local IPAM block: `blackhole <dst> proto 80`, so traffic to unassigned
    /// addresses of our own block is dropped here instead of following the
    /// default route back out.
    Blackhole { dst: IpNet },
}

impl RouteSpec {
    pub fn dst(&self) -> IpNet {
        match self {
            RouteSpec::Workload { dst, .. } | RouteSpec::Blackhole { dst } => *dst,
        }
    }
}

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
        first: RouteSpec,
        second: RouteSpec,
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
                if !super::netlink::valid_ifname(ifname) {
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
                        first: first.clone(),
                        second: spec,
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
                    Some(&index) => {
                        resolved.push(KernelRoute::felix(*dst, RouteTarget::Dev(index)))
                    }
                    None => pending.push((*dst, ifname.clone())),
                },
                RouteSpec::Blackhole { dst } => {
                    resolved.push(KernelRoute::felix(*dst, RouteTarget::Blackhole))
                }
            }
        }
        (resolved, pending)
    }
}

/// Where a route sends packets, in the forms felix writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// Directly out of this interface index, no gateway.
    Dev(u32),
    /// Drop (`RTN_BLACKHOLE`).
    Blackhole,
    /// Anything felix never writes (gateway, multipath, unreachable, ...).
    Other,
}

/// A main-table route as the kernel reports it, reduced to the fields felix
/// compares. Two routes with the same [`KernelRoute::key`] occupy the same slot:
/// a replace of one overwrites the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelRoute {
    pub dst: IpNet,
    pub tos: u8,
    pub metric: u32,
    pub protocol: u8,
    pub scope: u8,
    pub target: RouteTarget,
}

impl KernelRoute {
    /// The exact form of a route felix writes: proto 80, tos 0, the default
    /// metric of the family, scope link for IPv4 device routes. IPv6 routes have
    /// no scope in the kernel (always reported as universe).
    pub fn felix(dst: IpNet, target: RouteTarget) -> Self {
        let (metric, scope) = match (dst, target) {
            (IpNet::V4(_), RouteTarget::Dev(_)) => (0, SCOPE_LINK),
            (IpNet::V4(_), _) => (0, SCOPE_UNIVERSE),
            (IpNet::V6(_), _) => (IPV6_DEFAULT_METRIC, SCOPE_UNIVERSE),
        };
        Self {
            dst,
            tos: 0,
            metric,
            protocol: RTPROT_FELIX,
            scope,
            target,
        }
    }

    /// The slot a route occupies in a table: (dst, tos, metric).
    pub fn key(&self) -> (IpNet, u8, u32) {
        (self.dst, self.tos, self.metric)
    }

    pub fn is_ours(&self) -> bool {
        self.protocol == RTPROT_FELIX
    }
}

/// What [`diff`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteDiff {
    /// Write with `NLM_F_CREATE | NLM_F_REPLACE` (creates or overwrites in place).
    pub replace: Vec<KernelRoute>,
    /// Our routes to remove, each fully specified so the delete can only hit it.
    pub delete: Vec<KernelRoute>,
    /// Desired routes whose slot is held by a route of another protocol: left alone.
    pub conflicts: Vec<(KernelRoute, KernelRoute)>,
}

impl RouteDiff {
    pub fn is_empty(&self) -> bool {
        self.replace.is_empty() && self.delete.is_empty()
    }
}

/// Compares the resolved desired routes with every main-table route the kernel
/// holds (all protocols) and returns the writes that make the kernel match.
///
/// * A desired route already present exactly: nothing.
/// * A desired route whose slot holds a foreign route: conflict, untouched.
/// * Otherwise: replace (also fixes a changed interface in place, no gap).
/// * Our routes in slots nobody wants: delete. Extra routes of ours in a wanted
///   slot (the kernel allows several IPv4 routes per slot with `NLM_F_APPEND`)
///   are deleted too, except the first one, which the replace overwrites.
pub fn diff(desired: &[KernelRoute], actual: &[KernelRoute]) -> RouteDiff {
    let mut by_key: HashMap<(IpNet, u8, u32), Vec<&KernelRoute>> = HashMap::new();
    for route in actual {
        by_key.entry(route.key()).or_default().push(route);
    }
    let mut out = RouteDiff::default();
    let mut wanted = HashMap::with_capacity(desired.len());
    for want in desired {
        wanted.insert(want.key(), want);
        let present = by_key.get(&want.key()).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(foreign) = present.iter().find(|r| !r.is_ours()) {
            out.conflicts.push((*want, **foreign));
            continue;
        }
        if let Some(pos) = present.iter().position(|r| *r == want) {
            let extras = present
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != pos)
                .map(|(_, r)| **r);
            out.delete.extend(extras);
        } else {
            out.replace.push(*want);
            out.delete.extend(present.iter().skip(1).map(|r| **r));
        }
    }
    for route in actual {
        if route.is_ours() && !wanted.contains_key(&route.key()) {
            out.delete.push(*route);
        }
    }
    out.replace.sort();
    out.delete.sort();
    out.conflicts.sort();
    out
}

#[cfg(test)]
mod tests;
