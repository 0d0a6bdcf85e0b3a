//! NEEDS ROOT. Host endpoint policy enforced by the real felix binary with real
//! iptables, probed with real TCP and ICMP (harness: `daemon_harness`).
//!
//! Topology: a node namespace with felix, etcd and pod A, and an external host
//! namespace (`ext`, 192.168.77.2) on the node's uplink `hepup0` (192.168.77.1);
//! `ext` routes the pod network through the node. The uplink is a host endpoint
//! labelled `role=node`, without profiles, written before the uplink exists (its
//! chains match by name, so they wait for the interface). The node listens on TCP 22, 8080 and
//! 9090, `ext` on 179 and 7000, pod A on 8080.
//!
//! 1. Normal policy: `node-http` allows TCP 8080 in; 9090 is dropped (a host
//!    endpoint with policies but no matching rule drops), ssh (22) still answers
//!    (failsafe), the node cannot reach `ext`:7000 (no egress policy) but can reach
//!    BGP (179, outbound failsafe); forwarded traffic to A passes (no
//!    `applyOnForward` policy: allowed by default).
//! 2. `applyOnForward`: a policy denying forwarded TCP 8080 to pods stops ext -> A
//!    on 8080 but not ICMP; host traffic is unaffected.
//! 3. `preDNAT`: denying `ext` before DNAT stops ext -> node 8080 although
//!    `node-http` allows it; ssh stays (failsafes run first in mangle too);
//!    deleted, 8080 answers again.
//! 4. `doNotTrack`: allowing 9090 both ways untracked opens it although the
//!    filter policies drop it.
//! 5. `interfaceName: "*"`: the same policies now police every host interface,
//!    loopback included; felix's established etcd connection carries on (conntrack).
//! 6. `FELIX_FAILSAFEINBOUNDHOSTPORTS=none`, endpoint back on `hepup0`: ssh is
//!    dropped by the deny-all default; 8080 still answers.

mod daemon_harness;

use std::path::PathBuf;
use std::time::Duration;

use config::datastore::Datastore;
use config::testing::EtcdServer;
use daemon_harness::probe::{Servers, http_get};
use daemon_harness::table::{PodInfo, Proto, ThreePods, until_table};
use daemon_harness::{Felix, Netns, delete, eventually, in_ns, key, put_json, put_kns_profile};
use serde_json::{Value, json};

use Proto::{Icmp, Tcp};

const EXT: usize = 0;
const NODE: usize = 1;
const A: usize = 2;
const NODE_IP: &str = "192.168.77.1";
const EXT_IP: &str = "192.168.77.2";
const UPLINK: &str = "hepup0";

fn gnp(name: &str, spec: Value) -> (String, Value) {
    (
        key("globalnetworkpolicies", None, name),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
               "metadata": {"name": name}, "spec": spec}),
    )
}

fn host_endpoint(node: &str, interface: &str) -> (String, Value) {
    (
        key("hostendpoints", None, "uplink"),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
               "metadata": {"name": "uplink", "labels": {"role": "node"}},
               "spec": {"node": node, "interfaceName": interface,
                        "expectedIPs": [NODE_IP]}}),
    )
}

async fn put((k, v): &(String, Value), ds: &Datastore) {
    put_json(ds, k, v).await;
}

async fn start_felix(node: &str, etcd: &EtcdServer, path: PathBuf, env: &[(&str, &str)]) -> Felix {
    let felix = Felix::start(node, &etcd.endpoint(), env);
    eventually(Duration::from_secs(10), "felix ready", || {
        http_get(path.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
    })
    .await;
    felix
}

#[test]
fn host_endpoint_policy_failsafes_forward_prednat_and_untracked() {
    let cluster = ThreePods::new();
    let node_ns = &cluster.node_ns;
    let ext = Netns::new(&format!("{}-ext", node_ns.name));
    let (node_name, ext_name) = (node_ns.name.clone(), ext.name.clone());
    // The uplink comes up after felix has the host endpoint: its chains wait for it.
    let uplink_up = move || {
        let ip = |ns: &str, args: &str| {
            let mut argv = vec!["-n", ns];
            argv.extend(args.split_whitespace());
            daemon_harness::run("ip", &argv);
        };
        ip(
            &node_name,
            &format!("link add {UPLINK} type veth peer name eth0 netns {ext_name}"),
        );
        ip(&node_name, &format!("addr add {NODE_IP}/24 dev {UPLINK}"));
        ip(&node_name, &format!("link set {UPLINK} up"));
        ip(&ext_name, &format!("addr add {EXT_IP}/24 dev eth0"));
        ip(&ext_name, "link set eth0 up");
        ip(&ext_name, &format!("route add 10.65.0.0/16 via {NODE_IP}"));
    };

    let pods = cluster.info();
    let info = vec![
        PodInfo {
            name: "ext",
            ns_name: ext.name.clone(),
            path: ext.path(),
            ip: EXT_IP.into(),
        },
        PodInfo {
            name: "node",
            ns_name: node_ns.name.clone(),
            path: node_ns.path(),
            ip: NODE_IP.into(),
        },
        PodInfo {
            name: "A",
            ..pods[0].clone()
        },
    ];
    let _servers: Vec<Servers> = [(NODE, 22), (NODE, 8080), (NODE, 9090)]
        .into_iter()
        .chain([(EXT, 179), (EXT, 7000), (A, 8080)])
        .map(|(i, port)| Servers::start(info[i].path.clone(), port))
        .collect();
    let (a_key, a_wep) = cluster.wep(0, "a", None);
    let node = cluster.node.clone();
    let node_path = node_ns.path();
    in_ns(node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_json(&ds, &a_key, &a_wep).await;
        put(&host_endpoint(&node, UPLINK), &ds).await;
        let node_http = gnp(
            "node-http",
            json!({"order": 10, "selector": "role == 'node'", "types": ["Ingress"],
                   "ingress": [{"action": "Allow", "protocol": "TCP",
                                "destination": {"ports": [8080]}}]}),
        );
        put(&node_http, &ds).await;
        let felix = start_felix(&node, &etcd, node_path.clone(), &[]).await;
        uplink_up();

        let normal = [
            (EXT, NODE, Tcp(8080), true),
            (EXT, NODE, Tcp(9090), false),
            (EXT, NODE, Tcp(22), true),
            (NODE, EXT, Tcp(7000), false),
            (NODE, EXT, Tcp(179), true),
            (EXT, A, Tcp(8080), true),
        ];
        until_table("1 (normal host endpoint policy)", &info, &normal).await;

        let no_fwd = gnp(
            "no-fwd-8080",
            json!({"order": 5, "selector": "role == 'node'", "applyOnForward": true,
                   "types": ["Ingress"],
                   "ingress": [{"action": "Deny", "protocol": "TCP",
                                "destination": {"nets": ["10.65.0.0/16"], "ports": [8080]}},
                               {"action": "Allow", "destination": {"nets": ["10.65.0.0/16"]}}]}),
        );
        put(&no_fwd, &ds).await;
        let forward = [
            (EXT, A, Tcp(8080), false),
            (EXT, A, Icmp, true),
            (EXT, NODE, Tcp(8080), true),
        ];
        until_table("2 (applyOnForward)", &info, &forward).await;

        let pre_block = gnp(
            "pre-block",
            json!({"selector": "role == 'node'", "preDNAT": true, "applyOnForward": true,
                   "types": ["Ingress"],
                   "ingress": [{"action": "Deny", "source": {"nets": [format!("{EXT_IP}/32")]}}]}),
        );
        put(&pre_block, &ds).await;
        let blocked = [(EXT, NODE, Tcp(8080), false), (EXT, NODE, Tcp(22), true)];
        until_table("3 (preDNAT deny)", &info, &blocked).await;
        delete(&ds, &pre_block.0).await;
        until_table(
            "3 (preDNAT deleted)",
            &info,
            &[(EXT, NODE, Tcp(8080), true)],
        )
        .await;

        let untracked = gnp(
            "untracked-9090",
            json!({"selector": "role == 'node'", "doNotTrack": true, "applyOnForward": true,
                   "types": ["Ingress", "Egress"],
                   "ingress": [{"action": "Allow", "protocol": "TCP",
                                "destination": {"ports": [9090]}}],
                   "egress": [{"action": "Allow", "protocol": "TCP",
                               "source": {"ports": [9090]}}]}),
        );
        put(&untracked, &ds).await;
        let open = [(EXT, NODE, Tcp(9090), true), (EXT, NODE, Tcp(8080), true)];
        until_table("4 (doNotTrack allow)", &info, &open).await;
        delete(&ds, &untracked.0).await;
        until_table(
            "4 (untracked deleted)",
            &info,
            &[(EXT, NODE, Tcp(9090), false)],
        )
        .await;

        put(&host_endpoint(&node, "*"), &ds).await;
        let all = [
            (EXT, NODE, Tcp(8080), true),
            (EXT, NODE, Tcp(9090), false),
            (EXT, NODE, Tcp(22), true),
            (NODE, EXT, Tcp(7000), false),
            (EXT, A, Tcp(8080), false),
        ];
        until_table("5 (all interfaces)", &info, &all).await;
        // felix's established etcd connection survives: a change still takes effect.
        delete(&ds, &no_fwd.0).await;
        until_table(
            "5 (etcd still reachable)",
            &info,
            &[(EXT, A, Tcp(8080), true)],
        )
        .await;

        put(&host_endpoint(&node, UPLINK), &ds).await;
        // Stop felix only once the `*` chains are gone: left in the kernel, they would
        // keep the restarted felix from opening its etcd connection (etcd's port here is
        // not a failsafe one, so loopback is policed like any host interface).
        eventually(Duration::from_secs(10), "'*' endpoint removed", || {
            !daemon_harness::run("iptables-save", &["-t", "filter"]).contains("cali-fh-any")
        })
        .await;
        drop(felix);
        let _felix = start_felix(
            &node,
            &etcd,
            node_path,
            &[("FELIX_FAILSAFEINBOUNDHOSTPORTS", "none")],
        )
        .await;
        let no_failsafe = [(EXT, NODE, Tcp(22), false), (EXT, NODE, Tcp(8080), true)];
        until_table("6 (no inbound failsafes)", &info, &no_failsafe).await;
    });
    drop(ext);
    drop(cluster);
}
