//! `calicoctl ipam` on a real etcd, with allocations made through the ipam crate the way
//! the CNI plugin makes them.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::Ctl;
use config::model::{WorkloadEndpoint, parse_one};
use ipam::{AutoAssignArgs, Ipam, PoolSource};

const POOL: &str = "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pods
spec:
  cidr: 10.65.0.0/16
";

async fn allocate(ctl: &Ctl, container: &str, pod: &str) -> IpAddr {
    let ipam = Ipam::new(ctl.etcd.datastore().await, PoolSource::Datastore);
    let attrs: BTreeMap<String, String> = [
        ("namespace".to_string(), "default".to_string()),
        ("node".to_string(), "node1".to_string()),
        ("pod".to_string(), pod.to_string()),
    ]
    .into();
    let args = AutoAssignArgs {
        num_v4: 1,
        num_v6: 0,
        handle_id: format!("k8s-pod-network.{container}"),
        attrs,
        hostname: "node1".into(),
        node_labels: BTreeMap::new(),
        node_labels_from_datastore: false,
        pools: None,
        max_blocks_per_host: None,
    };
    ipam.auto_assign(&args).await.unwrap()[0].ip
}

/// A workload endpoint that uses `ip`, so `ipam check` sees it in use.
async fn wep_for(ctl: &Ctl, container: &str, pod: &str, ip: IpAddr) {
    let wep: WorkloadEndpoint = parse_one(&format!(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-k8s-{pod}-eth0\n  namespace: default\nspec:\n  orchestrator: k8s\n  node: node1\n  pod: {pod}\n  endpoint: eth0\n  containerID: {container}\n  interfaceName: cali0123456789a\n  ipNetworks: [{ip}/32]\n"
    ))
    .unwrap();
    ctl.etcd.datastore().await.create(&wep).await.unwrap();
}

#[tokio::test]
async fn show_check_release_and_configure() {
    let ctl = Ctl::start().await;
    assert!(ctl.run(&["apply", "-f", "-"], Some(POOL)).success);
    let used = allocate(&ctl, "c1", "web").await;
    wep_for(&ctl, "c1", "web", used).await;
    let leaked = allocate(&ctl, "c2", "gone").await;

    let show = ctl.run(&["ipam", "show", "--show-blocks"], None);
    assert!(show.success, "{}", show.stdout);
    let rows = common::table_rows(&show.stdout);
    assert_eq!(
        rows[1],
        ["IP Pool", "10.65.0.0/16", "65536", "2 (0%)", "65534 (100%)"],
        "{}",
        show.stdout
    );
    assert_eq!(rows[2][0], "Block");
    assert_eq!(
        rows[2][2..],
        ["64", "2 (3%)", "62 (97%)"],
        "{}",
        show.stdout
    );

    let ip = ctl.run(&["ipam", "show", "--ip", &used.to_string()], None);
    assert_eq!(
        ip.stdout,
        format!(
            "IP {used} is in use\nHandle ID: k8s-pod-network.c1\nActive Owner Attributes:\n  namespace: default\n  node: node1\n  pod: web\n"
        )
    );
    let free = ctl.run(&["ipam", "show", "--ip", "10.65.200.1"], None);
    assert_eq!(free.stdout, "IP 10.65.200.1 is not assigned\n");

    // The allocation without a workload is a leak; the report names it.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let check = ctl.run(&["ipam", "check", "-o", report.to_str().unwrap()], None);
    assert!(check.success, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("Found 1 IPs that are allocated in IPAM but not actually in use."),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .ends_with("Check complete; found 1 problems.\n"),
        "{}",
        check.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["problems"][0]["kind"], "leakedIp");
    assert_eq!(json["problems"][0]["ip"], leaked.to_string());

    // Releasing from a report needs the datastore locked (or --force).
    let before = ctl.dump().await;
    let refused = ctl.run(
        &["ipam", "release", "--from-report", report.to_str().unwrap()],
        None,
    );
    assert!(!refused.success);
    assert!(refused.stdout.contains("not locked"), "{}", refused.stdout);
    assert_eq!(ctl.dump().await, before);
    assert!(ctl.run(&["datastore", "migrate", "lock"], None).success);
    let released = ctl.run(
        &["ipam", "release", "--from-report", report.to_str().unwrap()],
        None,
    );
    assert_eq!(
        released.stdout,
        format!("Successfully released IP address {leaked}\n")
    );
    assert!(ctl.run(&["datastore", "migrate", "unlock"], None).success);
    let clean = ctl.run(&["ipam", "check"], None);
    assert!(
        clean
            .stdout
            .ends_with("Check complete; found 0 problems.\n"),
        "{}",
        clean.stdout
    );

    let again = ctl.run(&["ipam", "release", "--ip", &leaked.to_string()], None);
    assert_eq!(again.stdout, format!("IP {leaked} is not assigned\n"));

    let cfg = ctl.run(
        &[
            "ipam",
            "configure",
            "--strictaffinity=true",
            "--max-blocks-per-host=4",
        ],
        None,
    );
    assert_eq!(
        cfg.stdout,
        "Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 4\n"
    );
    let stored = ctl
        .etcd
        .datastore()
        .await
        .get_raw("/calico/ipam/v2/config")
        .await
        .unwrap()
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored.value).unwrap();
    assert_eq!(stored["strict_affinity"], true);
    assert_eq!(stored["maxBlocksPerHost"], 4);
}
