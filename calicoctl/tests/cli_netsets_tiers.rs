//! NetworkSet, GlobalNetworkSet and Tier through the real calicoctl and a real etcd:
//! apply from stdin, the etcd keys Calico uses, get by every alias in ps/wide/yaml
//! (Calico's columns), the yaml applying back unchanged, validation, delete.

mod common;

use common::{Ctl, assert_golden};

const DOCS: &str = "\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: external-db
  labels: {role: db}
spec:
  nets: [198.51.100.0/24, 203.0.113.7, 2001:db8::/64]
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: partners
  namespace: shop
  labels: {role: partner}
spec:
  nets: [192.0.2.0/28]
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: security
spec:
  order: 100
  defaultAction: Pass
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: default
spec:
  order: 1000000
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: zz-unordered
";

#[tokio::test]
async fn network_sets_and_tiers_round_trip() {
    let ctl = Ctl::start().await;
    let applied = ctl.run(&["apply", "-f", "-"], Some(DOCS));
    assert!(applied.success, "{}", applied.stdout);
    assert_eq!(applied.stdout, "Successfully applied 5 resource(s)\n");

    let keys: Vec<String> = ctl.dump().await.into_iter().map(|kv| kv.key).collect();
    for key in [
        "/calico/resources/v3/projectcalico.org/globalnetworksets/external-db",
        "/calico/resources/v3/projectcalico.org/networksets/shop/partners",
        "/calico/resources/v3/projectcalico.org/tiers/security",
        "/calico/resources/v3/projectcalico.org/tiers/default",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing in {keys:?}");
    }

    for (golden, args) in [
        ("gnetsets_ps.txt", &["get", "globalnetworksets"][..]),
        ("gnetsets_wide.txt", &["get", "gnetsets", "-o", "wide"]),
        (
            "netsets_wide.txt",
            &["get", "netsets", "-n", "shop", "-o", "wide"],
        ),
        ("netsets_all.txt", &["get", "networkset", "-A"]),
        ("tiers_ps.txt", &["get", "tiers"]),
    ] {
        let run = ctl.run(args, None);
        assert!(run.success, "{args:?}: {}", run.stdout);
        assert_golden(golden, &run.stdout);
    }
    // The singular alias of netsets and the kind name both resolve.
    let by_alias = ctl.run(&["get", "netset", "partners", "-n", "shop"], None);
    assert!(by_alias.success, "{}", by_alias.stdout);
    assert!(by_alias.stdout.contains("partners"));

    // yaml out applies back unchanged (but for the revisions), for each kind.
    let without_revisions = |yaml: &str| -> String {
        yaml.lines()
            .filter(|l| !l.contains("resourceVersion"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for kind in ["globalnetworkset", "tier"] {
        let yaml = ctl.run(&["get", kind, "-o", "yaml"], None).stdout;
        let again = ctl.run(&["apply", "-f", "-"], Some(&yaml));
        assert!(again.success, "{kind}: {}", again.stdout);
        let after = ctl.run(&["get", kind, "-o", "yaml"], None).stdout;
        assert_eq!(without_revisions(&after), without_revisions(&yaml));
    }

    let deleted = ctl.run(&["delete", "networkset", "partners", "-n", "shop"], None);
    assert!(deleted.success, "{}", deleted.stdout);
    let gone = ctl.run(&["get", "netsets", "-A"], None);
    assert!(!gone.stdout.contains("partners"), "{}", gone.stdout);
}

#[tokio::test]
async fn bad_nets_and_tier_actions_are_refused() {
    let ctl = Ctl::start().await;
    let bad = "\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: bad}
spec:
  nets: [10.0.0.0/33]
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: t.x}
spec: {defaultAction: Allow}
";
    let run = ctl.run(&["apply", "-f", "-"], Some(bad));
    assert!(!run.success, "{}", run.stdout);
    assert!(run.stdout.contains("spec.nets[0]"), "{}", run.stdout);
    assert!(ctl.dump().await.is_empty(), "nothing written");
}
