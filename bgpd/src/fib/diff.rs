//! The reconcile diff (pure): desired routes against what a dump found.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::ROUTE_METRIC;

/// One proto-186 route found in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub metric: u32,
    pub next_hops: Vec<IpAddr>,
}

/// What a reconcile does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Prefixes to (re)write from the desired state: missing, or with other
    /// next hops.
    pub writes: Vec<IpNet>,
    /// Our routes nobody wants, as (prefix, metric).
    pub extras: Vec<(IpNet, u32)>,
}

/// Compare `desired` with the proto-186 routes `found`. Routes in `stale`
/// (of an earlier run, waiting for the sweep) are neither extras nor
/// repaired: the sweep decides about them.
pub fn reconcile(
    desired: &HashMap<IpNet, Vec<IpAddr>>,
    found: &[KernelRoute],
    stale: &HashSet<(IpNet, u32)>,
) -> Plan {
    let sorted = |v: &[IpAddr]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let have: HashMap<IpNet, Vec<IpAddr>> = found
        .iter()
        .filter(|r| r.metric == ROUTE_METRIC)
        .map(|r| (r.prefix, sorted(&r.next_hops)))
        .collect();
    let mut writes: Vec<IpNet> = desired
        .iter()
        .filter(|(p, nh)| have.get(p) != Some(&sorted(nh)))
        .map(|(p, _)| *p)
        .collect();
    writes.sort();
    let mut extras: Vec<(IpNet, u32)> = found
        .iter()
        .map(|r| (r.prefix, r.metric))
        .filter(|(p, m)| !stale.contains(&(*p, *m)))
        .filter(|(p, m)| *m != ROUTE_METRIC || !desired.contains_key(p))
        .collect();
    extras.sort();
    extras.dedup();
    Plan { writes, extras }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn route(p: &str, metric: u32, nh: &[&str]) -> KernelRoute {
        KernelRoute {
            prefix: net(p),
            metric,
            next_hops: nh.iter().map(|n| ip(n)).collect(),
        }
    }

    #[test]
    fn in_step_needs_nothing() {
        let desired = HashMap::from([(net("10.0.1.0/26"), vec![ip("192.0.2.3"), ip("192.0.2.2")])]);
        let found = [route(
            "10.0.1.0/26",
            ROUTE_METRIC,
            &["192.0.2.2", "192.0.2.3"],
        )];
        assert_eq!(
            reconcile(&desired, &found, &HashSet::new()),
            Plan::default()
        );
    }

    #[test]
    fn missing_and_changed_are_rewritten_extras_removed() {
        let desired = HashMap::from([
            (net("10.0.1.0/26"), vec![ip("192.0.2.2")]),
            (net("10.0.2.0/26"), vec![ip("192.0.2.2")]),
        ]);
        let found = [
            route("10.0.2.0/26", ROUTE_METRIC, &["192.0.2.9"]),
            route("10.0.3.0/26", ROUTE_METRIC, &["192.0.2.2"]),
            // Ours by protocol but not at our metric: an extra too.
            route("10.0.1.0/26", 0, &["192.0.2.2"]),
        ];
        let plan = reconcile(&desired, &found, &HashSet::new());
        assert_eq!(plan.writes, vec![net("10.0.1.0/26"), net("10.0.2.0/26")]);
        assert_eq!(
            plan.extras,
            vec![(net("10.0.1.0/26"), 0), (net("10.0.3.0/26"), ROUTE_METRIC)]
        );
    }

    #[test]
    fn stale_routes_wait_for_the_sweep() {
        let found = [route("10.0.3.0/26", ROUTE_METRIC, &["192.0.2.2"])];
        let stale = HashSet::from([(net("10.0.3.0/26"), ROUTE_METRIC)]);
        assert_eq!(reconcile(&HashMap::new(), &found, &stale), Plan::default());
    }
}
