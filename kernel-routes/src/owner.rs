//! Who owns a route: a protocol number and a metric slot per family (see the
//! contract in the crate documentation).

use ipnet::IpNet;

use crate::route::{KernelRoute, RouteTarget, SCOPE_LINK, SCOPE_UNIVERSE};

/// The metric the kernel gives an IPv6 route added without one
/// (`IP6_RT_PRIO_USER`); IPv4 routes default to 0.
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// One writer of kernel routes: the protocol every route it writes carries and
/// the metric it writes at, per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `proto <n>` in `ip route`.
    pub protocol: u8,
    pub metric_v4: u32,
    pub metric_v6: u32,
}

/// felix: workload routes and blackholes, `proto 80`, at each family's default
/// metric (0 for IPv4, 1024 for IPv6), as `ip route add` would write them.
pub const FELIX: Owner = Owner {
    protocol: 80,
    metric_v4: 0,
    metric_v6: IPV6_DEFAULT_METRIC,
};

/// bgpd: routes learnt over BGP, `proto bgp` (186, `RTPROT_BGP`), at metric
/// 1536: above felix's slots, so felix's local route for a prefix wins.
pub const BGPD: Owner = Owner {
    protocol: 186,
    metric_v4: 1536,
    metric_v6: 1536,
};

// The contract's second rule: felix and bgpd never share a slot, and felix's
// routes win. (Also checked at run time by the unit test below, for reading.)
const _: () = assert!(FELIX.protocol != BGPD.protocol);
const _: () = assert!(FELIX.metric_v4 < BGPD.metric_v4 && FELIX.metric_v6 < BGPD.metric_v6);

impl Owner {
    /// The metric this owner writes `dst` at.
    pub fn metric(&self, dst: &IpNet) -> u32 {
        match dst {
            IpNet::V4(_) => self.metric_v4,
            IpNet::V6(_) => self.metric_v6,
        }
    }

    /// Whether `route` is this owner's (by protocol; the only mark the kernel
    /// keeps). Routes that are not are never replaced or deleted.
    pub fn owns(&self, route: &KernelRoute) -> bool {
        route.protocol == self.protocol
    }

    /// The exact form of a route this owner writes: its protocol, tos 0, its
    /// metric for the family, scope link for IPv4 device routes. IPv6 routes
    /// have no scope in the kernel (always reported as universe).
    pub fn route(&self, dst: IpNet, target: RouteTarget) -> KernelRoute {
        let scope = match (dst, &target) {
            (IpNet::V4(_), RouteTarget::Dev(_)) => SCOPE_LINK,
            _ => SCOPE_UNIVERSE,
        };
        KernelRoute {
            dst,
            tos: 0,
            metric: self.metric(&dst),
            protocol: self.protocol,
            scope,
            target,
        }
    }

    /// A delete of whatever route of ours holds `dst`'s slot, next hops unknown.
    pub fn slot(&self, dst: IpNet) -> KernelRoute {
        self.route(dst, RouteTarget::Via(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn felix_and_bgpd_never_share_a_slot() {
        for dst in ["10.0.0.0/26", "fd00::/64"] {
            let dst: IpNet = dst.parse().unwrap();
            let f = FELIX.route(dst, RouteTarget::Blackhole);
            let b = BGPD.route(dst, RouteTarget::via(vec![dst.addr()]));
            assert_ne!(f.key(), b.key(), "{dst}");
            assert!(f.metric < b.metric, "felix's route wins for {dst}");
            assert!(FELIX.owns(&f) && !FELIX.owns(&b));
            assert!(BGPD.owns(&b) && !BGPD.owns(&f));
        }
    }

    #[test]
    fn felix_writes_what_ip_route_would() {
        let v4 = FELIX.route("10.0.0.1/32".parse().unwrap(), RouteTarget::Dev(3));
        assert_eq!((v4.metric, v4.scope, v4.protocol), (0, SCOPE_LINK, 80));
        let v6 = FELIX.route("fd00::1/128".parse().unwrap(), RouteTarget::Dev(3));
        assert_eq!((v6.metric, v6.scope), (IPV6_DEFAULT_METRIC, SCOPE_UNIVERSE));
        let bh = FELIX.route("10.0.0.0/26".parse().unwrap(), RouteTarget::Blackhole);
        assert_eq!(bh.scope, SCOPE_UNIVERSE);
    }
}
