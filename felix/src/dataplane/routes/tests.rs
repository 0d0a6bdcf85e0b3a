//! Validation and resolution of felix's desired routes, and a golden diff of a
//! mixed table through `kernel_routes` (whose own tests cover the diff rules).

use std::collections::HashMap;
use std::fmt::Write;

use kernel_routes::{RouteDiff, SCOPE_LINK, SCOPE_UNIVERSE, diff};

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

fn ours(dst: &str, target: RouteTarget) -> KernelRoute {
    FELIX.route(net(dst), target)
}

fn foreign(dst: &str, protocol: u8, target: RouteTarget) -> KernelRoute {
    KernelRoute {
        protocol,
        scope: SCOPE_UNIVERSE,
        ..ours(dst, target)
    }
}

fn render(d: &RouteDiff) -> String {
    let mut s = String::new();
    for r in &d.add {
        writeln!(s, "add {r}").unwrap();
    }
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
            ours("10.0.0.0/26", RouteTarget::Blackhole),
            ours("10.0.0.1/32", RouteTarget::Dev(5)),
            ours("fd00::2/128", RouteTarget::Dev(5)),
        ]
    );
}

#[test]
fn diff_golden_mixed() {
    let want = vec![
        // new: an exclusive add
        ours("10.0.0.1/32", RouteTarget::Dev(5)),
        // moved from ifindex 6 to 7: replaced in place
        ours("10.0.0.2/32", RouteTarget::Dev(7)),
        // present and right
        ours("10.0.0.0/26", RouteTarget::Blackhole),
        // slot held by a static route: conflict, untouched
        ours("10.0.0.3/32", RouteTarget::Dev(5)),
        // present with a wrong scope (someone re-added it by hand with proto 80)
        ours("fd00::4/128", RouteTarget::Dev(5)),
    ];
    let actual = vec![
        ours("10.0.0.2/32", RouteTarget::Dev(6)),
        ours("10.0.0.0/26", RouteTarget::Blackhole),
        foreign("10.0.0.3/32", 4, RouteTarget::Dev(2)),
        KernelRoute {
            scope: SCOPE_LINK,
            ..ours("fd00::4/128", RouteTarget::Dev(5))
        },
        // stale ours: swept
        ours("10.0.9.9/32", RouteTarget::Dev(5)),
        ours("10.0.1.0/26", RouteTarget::Blackhole),
        // same dst as ours but another metric: a different slot, and not ours
        KernelRoute {
            metric: 20,
            ..foreign("10.0.0.1/32", 186, RouteTarget::Other)
        },
        // bgpd's and the kernel's routes: never touched
        foreign("10.0.2.0/26", 186, RouteTarget::Other),
        foreign("192.168.0.0/24", 2, RouteTarget::Dev(2)),
    ];
    let d = diff(&FELIX, &want, &actual);
    assert!(
        d.delete.iter().all(|r| FELIX.owns(r)),
        "deletes only proto 80"
    );
    assert!(d.add.iter().chain(&d.replace).all(|r| FELIX.owns(r)));
    assert_golden("routes_diff_mixed.txt", &render(&d));
}
