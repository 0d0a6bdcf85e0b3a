use std::collections::HashMap;
use std::fmt::Write;

use super::*;
use crate::dataplane::golden::assert_golden;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn wl(dst: &str, ifname: &str) -> RouteSpec {
    RouteSpec::Workload {
        dst: net(dst),
        ifname: ifname.into(),
    }
}

fn bh(dst: &str) -> RouteSpec {
    RouteSpec::Blackhole { dst: net(dst) }
}

fn foreign(dst: &str, protocol: u8, target: RouteTarget) -> KernelRoute {
    KernelRoute {
        protocol,
        scope: SCOPE_UNIVERSE,
        ..KernelRoute::felix(net(dst), target)
    }
}

fn render(d: &RouteDiff) -> String {
    let mut s = String::new();
    for r in &d.replace {
        writeln!(s, "replace {r}").unwrap();
    }
    for r in &d.delete {
        writeln!(s, "delete {r}").unwrap();
    }
    for (want, held) in &d.conflicts {
        writeln!(s, "conflict {want} <- held by {held}").unwrap();
    }
    s
}

#[test]
fn validation_rejects_bad_specs() {
    assert!(matches!(
        DesiredRoutes::new([wl("10.0.0.0/24", "cali1")]),
        Err(RouteSpecError::NotHostPrefix { .. })
    ));
    assert!(matches!(
        DesiredRoutes::new([bh("10.0.0.1/24")]),
        Err(RouteSpecError::HostBitsSet { .. })
    ));
    assert!(matches!(
        DesiredRoutes::new([wl("10.0.0.1/32", "../etc")]),
        Err(RouteSpecError::BadIfname { .. })
    ));
    let dup = DesiredRoutes::new([wl("10.0.0.1/32", "cali1"), wl("10.0.0.1/32", "cali2")]);
    let err = dup.unwrap_err();
    assert!(err.to_string().contains("10.0.0.1/32"), "{err}");
    // Exact repeats are merged, not rejected.
    let ok = DesiredRoutes::new([wl("10.0.0.1/32", "cali1"), wl("10.0.0.1/32", "cali1")]).unwrap();
    assert_eq!(ok.len(), 1);
}

#[test]
fn resolve_splits_pending_workloads() {
    let d = DesiredRoutes::new([
        wl("10.0.0.1/32", "cali1"),
        wl("10.0.0.2/32", "cali2"),
        bh("10.0.0.0/26"),
        wl("fd00::2/128", "cali1"),
    ])
    .unwrap();
    let idx = HashMap::from([("cali1".to_string(), 5)]);
    let (resolved, pending) = d.resolve(&idx);
    assert_eq!(pending, vec![(net("10.0.0.2/32"), "cali2".to_string())]);
    assert_eq!(
        resolved,
        vec![
            KernelRoute::felix(net("10.0.0.0/26"), RouteTarget::Blackhole),
            KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(5)),
            KernelRoute::felix(net("fd00::2/128"), RouteTarget::Dev(5)),
        ]
    );
}

#[test]
fn diff_in_sync_is_empty() {
    let want = vec![
        KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(5)),
        KernelRoute::felix(net("10.0.0.0/26"), RouteTarget::Blackhole),
    ];
    let mut actual = want.clone();
    actual.push(foreign("0.0.0.0/0", 4, RouteTarget::Other));
    let d = diff(&want, &actual);
    assert!(d.is_empty(), "{}", render(&d));
    assert!(d.conflicts.is_empty());
}

#[test]
fn diff_golden_mixed() {
    let want = vec![
        // new
        KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(5)),
        // moved from ifindex 6 to 7: replaced in place
        KernelRoute::felix(net("10.0.0.2/32"), RouteTarget::Dev(7)),
        // present and right
        KernelRoute::felix(net("10.0.0.0/26"), RouteTarget::Blackhole),
        // slot held by a static route: conflict, untouched
        KernelRoute::felix(net("10.0.0.3/32"), RouteTarget::Dev(5)),
        // present with a wrong scope (someone re-added it by hand with proto 80)
        KernelRoute::felix(net("fd00::4/128"), RouteTarget::Dev(5)),
    ];
    let actual = vec![
        KernelRoute::felix(net("10.0.0.2/32"), RouteTarget::Dev(6)),
        KernelRoute::felix(net("10.0.0.0/26"), RouteTarget::Blackhole),
        foreign("10.0.0.3/32", 4, RouteTarget::Dev(2)),
        KernelRoute {
            scope: SCOPE_LINK,
            ..KernelRoute::felix(net("fd00::4/128"), RouteTarget::Dev(5))
        },
        // stale ours: swept
        KernelRoute::felix(net("10.0.9.9/32"), RouteTarget::Dev(5)),
        KernelRoute::felix(net("10.0.1.0/26"), RouteTarget::Blackhole),
        // same dst as ours but another metric: a different slot, and not ours
        foreign("10.0.0.1/32", 186, RouteTarget::Other),
        // bgpd's and the kernel's routes: never touched
        foreign("10.0.2.0/26", 186, RouteTarget::Other),
        foreign("192.168.0.0/24", 2, RouteTarget::Dev(2)),
    ]
    .into_iter()
    .map(|r| {
        if r.dst == net("10.0.0.1/32") {
            KernelRoute { metric: 20, ..r }
        } else {
            r
        }
    })
    .collect::<Vec<_>>();
    let d = diff(&want, &actual);
    assert!(
        d.delete.iter().all(KernelRoute::is_ours),
        "deletes only proto 80"
    );
    assert!(d.replace.iter().all(KernelRoute::is_ours));
    assert_golden("routes_diff_mixed.txt", &render(&d));
}

#[test]
fn diff_duplicates_in_one_slot() {
    let want = vec![KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(5))];
    // Two proto-80 routes in the slot, one of them right: delete the other.
    let a = KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(6));
    let d = diff(&want, &[a, want[0]]);
    assert_eq!(d.replace, vec![]);
    assert_eq!(d.delete, vec![a]);
    // Two wrong ones: replace overwrites the first, the second is deleted.
    let b = KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(8));
    let d = diff(&want, &[a, b]);
    assert_eq!(d.replace, want);
    assert_eq!(d.delete, vec![b]);
}

#[test]
fn diff_empty_desired_sweeps_only_ours() {
    let ours = KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(5));
    let theirs = foreign("10.0.0.2/32", 186, RouteTarget::Other);
    let d = diff(&[], &[ours, theirs]);
    assert_eq!(d.delete, vec![ours]);
    assert!(d.replace.is_empty());
}
