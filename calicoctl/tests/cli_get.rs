//! `calicoctl apply` then `get` in every output format, against golden files.

mod common;

use common::{Ctl, assert_golden, example};

#[tokio::test]
async fn apply_then_get_prints_calicos_tables() {
    let ctl = Ctl::start().await;
    let cluster = example("cluster.yaml");
    let applied = ctl.run(&["apply", "-f", &cluster], None);
    assert!(applied.success, "{}", applied.stdout);
    assert_eq!(applied.stdout, "Successfully applied 7 resource(s)\n");
    let policy = example("policy.yaml");
    assert!(ctl.run(&["apply", "-f", &policy], None).success);

    for (golden, args) in [
        ("nodes_ps.txt", &["get", "nodes"][..]),
        ("nodes_wide.txt", &["get", "nodes", "-o", "wide"]),
        (
            "nodes_custom.txt",
            &["get", "no", "-o", "custom-columns=NAME,IPV4"],
        ),
        ("bgppeers_ps.txt", &["get", "bgpPeers"]),
        ("bgpconfig_ps.txt", &["get", "bgpconfig"]),
        ("ippools_ps.txt", &["get", "ippools"]),
        ("ippools_wide.txt", &["get", "ipp", "-o", "wide"]),
        ("gnp_wide.txt", &["get", "gnp", "-o", "wide"]),
        (
            "np_all_namespaces.txt",
            &["get", "networkpolicy", "-A", "-o", "wide"],
        ),
        ("np_namespace.txt", &["get", "policy", "-n", "shop"]),
        ("node_yaml.txt", &["get", "node", "node1", "-o", "yaml"]),
        ("nodes_yaml.txt", &["get", "nodes", "-o", "yaml"]),
        (
            "pool_json.txt",
            &["get", "ippool", "default-ipv4-ippool", "-o", "json"],
        ),
        ("peers_json.txt", &["get", "bgppeers", "-o", "json"]),
    ] {
        let run = ctl.run(args, None);
        assert!(run.success, "{args:?}: {}", run.stdout);
        assert_golden(golden, &run.stdout);
    }
}

#[tokio::test]
async fn yaml_output_applies_back_unchanged() {
    let ctl = Ctl::start().await;
    assert!(
        ctl.run(&["apply", "-f", &example("cluster.yaml")], None)
            .success
    );
    let before = ctl.run(&["get", "nodes", "-o", "yaml"], None).stdout;
    // A NodeList read from stdin is a valid input too; applying it changes no spec.
    let reapplied = ctl.run(&["apply", "-f", "-"], Some(&before));
    assert_eq!(
        reapplied.stdout,
        "Successfully applied 3 'Node' resource(s)\n"
    );
    let after = ctl.run(&["get", "nodes", "-o", "wide"], None).stdout;
    assert_golden("nodes_wide.txt", &after);
}

#[tokio::test]
async fn delete_label_patch_and_lock() {
    let ctl = Ctl::start().await;
    assert!(
        ctl.run(&["apply", "-f", &example("cluster.yaml")], None)
            .success
    );

    let label = ctl.run(&["label", "nodes", "node1", "rack=r1"], None);
    assert_eq!(label.stdout, "Successfully set label rack on nodes node1\n");
    let again = ctl.run(&["label", "nodes", "node1", "rack=r2"], None);
    assert!(!again.success);
    assert!(
        again.stdout.contains("already exists, use --overwrite"),
        "{}",
        again.stdout
    );
    let over = ctl.run(&["label", "nodes", "node1", "rack=r2", "--overwrite"], None);
    assert!(over.success, "{}", over.stdout);

    let patch = ctl.run(
        &[
            "patch",
            "node",
            "node2",
            "-p",
            r#"{"spec":{"bgp":{"asNumber":65002}}}"#,
        ],
        None,
    );
    assert_eq!(patch.stdout, "Successfully patched 1 'Node' resource\n");
    let bad_patch = ctl.run(
        &[
            "patch",
            "node",
            "node2",
            "-p",
            r#"{"spec":{"bgp":{"ipv4Address":"nonsense"}}}"#,
        ],
        None,
    );
    assert!(!bad_patch.success);
    assert!(
        bad_patch.stdout.contains("spec.bgp.ipv4Address"),
        "{}",
        bad_patch.stdout
    );

    let wide = ctl.run(&["get", "nodes", "-o", "wide"], None);
    assert!(wide.stdout.contains("node2   65002 "), "{}", wide.stdout);
    let labels = ctl
        .run(&["get", "node", "node1", "-o", "json"], None)
        .stdout;
    assert!(labels.contains(r#""rack": "r2""#), "{labels}");

    let deleted = ctl.run(&["delete", "node", "node2", "rr1"], None);
    assert_eq!(
        deleted.stdout,
        "Successfully deleted 2 'Node' resource(s)\n"
    );
    let missing = ctl.run(&["delete", "node", "node2"], None);
    assert!(!missing.success);
    assert_eq!(
        missing.stdout,
        "Failed to delete 'Node' resource: resource does not exist: Node(node2)\n"
    );
    assert!(ctl.run(&["delete", "node", "node2", "-s"], None).success);

    assert_eq!(
        ctl.run(&["datastore", "migrate", "lock"], None).stdout,
        "Datastore locked.\n"
    );
    let info = ctl
        .run(&["get", "clusterinfo", "default", "-o", "yaml"], None)
        .stdout;
    assert!(info.contains("datastoreReady: false"), "{info}");
    assert!(ctl.run(&["datastore", "migrate", "unlock"], None).success);
}
