//! NEEDS ROOT. Policy enforced by the real felix binary with real iptables,
//! probed with real TCP, UDP and ICMP between pod namespaces on one node.
//!
//! Pods: A (ns1, app=a), B (ns1, app=b), C (ns2, app=c; ns2 labelled env=prod).
//! Each stage writes to etcd, then waits until the whole truth table holds
//! (denied probes fail within 0.7 s TCP/UDP, 1 s ICMP):
//! 0. no policies: the namespace profiles allow everything;
//! 1. NetworkPolicy on B: ingress only TCP 8080 from app == 'a';
//! 2. + GlobalNetworkPolicy on C: deny ICMP, allow the rest;
//! 3. the NetworkPolicy changed live: source is namespaceSelector env == 'prod';
//! 4. policy groups: more GlobalNetworkPolicies with C's selector, so C's ingress
//!    runs through one `cali-gi-` chain: (a) a TCP deny after the allow-all is
//!    never reached, (b) moved before it, it denies, (c) a Pass for ICMP in front
//!    skips the rest of the group and the profile allows ICMP;
//! 5. all deleted: everything allowed again.
//!
//! A second test, named ports: A names `http` 8080, B names it 9090; a policy
//! allowing `ports: [http]` lets each pod be reached on its own number only, and
//! follows a pod that renames its port (Calico's per-endpoint `hash:ip,port` sets).

mod daemon_harness;

use std::time::Duration;

use config::datastore::Datastore;
use config::testing::EtcdServer;
use daemon_harness::probe::{Servers, http_get};
use daemon_harness::table::{Proto, Row, ThreePods, until_table};
use daemon_harness::{Felix, delete, eventually, in_ns, key, put_json, put_kns_profile, run};
use serde_json::json;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
use Proto::{Icmp, Tcp, Udp};

async fn np_b(ds: &Datastore, source: serde_json::Value) {
    let np = json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": "b-ingress", "namespace": "ns1"},
        "spec": {"selector": "app == 'b'", "types": ["Ingress"],
                 "ingress": [{"action": "Allow", "protocol": "TCP", "source": source,
                              "destination": {"ports": [8080]}}]}
    });
    put_json(ds, &key("networkpolicies", Some("ns1"), "b-ingress"), &np).await;
}

/// A GlobalNetworkPolicy on C (selector `app == 'c'`) with one ingress rule.
async fn gnp_c(ds: &Datastore, name: &str, order: u32, rule: serde_json::Value) {
    let gnp = json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"order": order, "selector": "app == 'c'", "types": ["Ingress"],
                 "ingress": [rule]}
    });
    put_json(ds, &key("globalnetworkpolicies", None, name), &gnp).await;
}

#[test]
fn truth_table_follows_policy_changes() {
    let cluster = ThreePods::new();
    let weps = [(A, "a"), (B, "b"), (C, "c")].map(|(i, app)| cluster.wep(i, app, None));
    let info = cluster.info();
    let _servers = [
        Servers::start(info[A].path.clone(), 8080),
        Servers::start(info[B].path.clone(), 8080),
        Servers::start(info[B].path.clone(), 9090),
        Servers::start(info[C].path.clone(), 8080),
    ];
    let node = cluster.node.clone();
    let node_path = cluster.node_ns.path();
    in_ns(&cluster.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_kns_profile(&ds, "ns2", &[("env", "prod")]).await;
        for (key, wep) in &weps {
            put_json(&ds, key, wep).await;
        }
        let _felix = Felix::start(&node, &etcd.endpoint(), &[]);
        eventually(Duration::from_secs(10), "felix ready", || {
            http_get(node_path.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
        })
        .await;

        let open: Vec<Row> = vec![
            (A, B, Tcp(8080), true),
            (A, B, Tcp(9090), true),
            (A, B, Udp(8080), true),
            (A, B, Icmp, true),
            (C, B, Tcp(8080), true),
            (A, C, Tcp(8080), true),
            (A, C, Icmp, true),
            (B, A, Tcp(8080), true),
        ];
        until_table("0 (profiles allow)", &info, &open).await;

        np_b(&ds, json!({"selector": "app == 'a'"})).await;
        let mut s1 = vec![
            (A, B, Tcp(8080), true),
            (A, B, Tcp(9090), false),
            (A, B, Udp(8080), false),
            (A, B, Icmp, false),
            (C, B, Tcp(8080), false),
            (A, C, Tcp(8080), true),
            (B, A, Tcp(8080), true),
        ];
        until_table("1 (B only from A on TCP 8080)", &info, &s1).await;

        let gnp = json!({
            "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "c-no-icmp"},
            "spec": {"order": 10, "selector": "app == 'c'", "types": ["Ingress"],
                     "ingress": [{"action": "Deny", "protocol": "ICMP"}, {"action": "Allow"}]}
        });
        put_json(&ds, &key("globalnetworkpolicies", None, "c-no-icmp"), &gnp).await;
        s1.extend([(A, C, Icmp, false), (B, C, Tcp(8080), true)]);
        until_table("2 (+ deny ICMP to C)", &info, &s1).await;

        np_b(&ds, json!({"namespaceSelector": "env == 'prod'"})).await;
        let s3 = vec![
            (A, B, Tcp(8080), false),
            (C, B, Tcp(8080), true),
            (C, B, Udp(8080), false),
            (A, C, Icmp, false),
            (A, C, Tcp(8080), true),
        ];
        until_table("3 (B only from namespaces env=prod)", &info, &s3).await;

        let tcp_deny = json!({"action": "Deny", "protocol": "TCP"});
        gnp_c(&ds, "c-tcp-deny", 20, tcp_deny.clone()).await;
        // The expected table is stage 3's: wait until the group is in the kernel.
        let in_group =
            |line: &str| line.starts_with("-A cali-gi-") && line.contains("-j cali-pi-c-tcp-deny");
        eventually(Duration::from_secs(10), "group chain written", || {
            run("iptables-save", &["-t", "filter"])
                .lines()
                .any(in_group)
        })
        .await;
        let s4a = vec![(A, C, Tcp(8080), true), (A, C, Icmp, false)];
        until_table("4a (group: deny after allow-all)", &info, &s4a).await;
        gnp_c(&ds, "c-tcp-deny", 5, tcp_deny).await;
        let s4b = vec![(A, C, Tcp(8080), false), (A, C, Icmp, false)];
        until_table("4b (group: deny first)", &info, &s4b).await;
        gnp_c(
            &ds,
            "c-icmp-pass",
            1,
            json!({"action": "Pass", "protocol": "ICMP"}),
        )
        .await;
        let s4c = vec![(A, C, Tcp(8080), false), (A, C, Icmp, true)];
        until_table("4c (group: pass first)", &info, &s4c).await;

        delete(&ds, &key("networkpolicies", Some("ns1"), "b-ingress")).await;
        for name in ["c-no-icmp", "c-tcp-deny", "c-icmp-pass"] {
            delete(&ds, &key("globalnetworkpolicies", None, name)).await;
        }
        until_table("5 (policies deleted)", &info, &open).await;
        let saved = run("iptables-save", &["-t", "filter"]);
        assert!(!saved.contains("cali-gi-"), "group chain left:\n{saved}");
    });
    drop(cluster);
}

/// `pod`'s endpoint with a named TCP port.
fn with_port(mut wep: serde_json::Value, name: &str, port: u16) -> serde_json::Value {
    wep["spec"]["ports"] = json!([{"name": name, "protocol": "TCP", "port": port}]);
    wep
}

#[test]
fn named_ports_match_each_pods_own_number() {
    let cluster = ThreePods::new();
    let (a_key, a_wep) = cluster.wep(A, "a", None);
    let (b_key, b_wep) = cluster.wep(B, "b", None);
    let (c_key, c_wep) = cluster.wep(C, "c", None);
    let info = cluster.info();
    let _servers =
        [A, B].map(|i| [8080, 9090].map(|port| Servers::start(info[i].path.clone(), port)));
    let node = cluster.node.clone();
    let node_path = cluster.node_ns.path();
    in_ns(&cluster.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_kns_profile(&ds, "ns2", &[]).await;
        put_json(&ds, &a_key, &with_port(a_wep, "http", 8080)).await;
        put_json(&ds, &b_key, &with_port(b_wep.clone(), "http", 9090)).await;
        put_json(&ds, &c_key, &c_wep).await;
        let gnp = |port: &str| {
            json!({
                "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                "metadata": {"name": "web-http"},
                "spec": {"selector": "app in {'a', 'b'}", "types": ["Ingress"],
                         "ingress": [{"action": "Allow", "protocol": "TCP",
                                      "destination": {"ports": [port]}}]}
            })
        };
        put_json(
            &ds,
            &key("globalnetworkpolicies", None, "web-http"),
            &gnp("http"),
        )
        .await;
        let _felix = Felix::start(&node, &etcd.endpoint(), &[]);
        eventually(Duration::from_secs(10), "felix ready", || {
            http_get(node_path.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
        })
        .await;

        let own_numbers = vec![
            (C, A, Tcp(8080), true),
            (C, A, Tcp(9090), false),
            (C, B, Tcp(9090), true),
            (C, B, Tcp(8080), false),
        ];
        until_table("1 (each pod on its own http number)", &info, &own_numbers).await;

        // B renames: only the set's members change, the verdict follows.
        put_json(&ds, &b_key, &with_port(b_wep, "http", 8080)).await;
        let renamed = vec![
            (C, A, Tcp(8080), true),
            (C, A, Tcp(9090), false),
            (C, B, Tcp(8080), true),
            (C, B, Tcp(9090), false),
        ];
        until_table("2 (B's http is now 8080)", &info, &renamed).await;

        // A name no pod declares matches nothing (never everything).
        put_json(
            &ds,
            &key("globalnetworkpolicies", None, "web-http"),
            &gnp("nope"),
        )
        .await;
        let nothing = vec![
            (C, A, Tcp(8080), false),
            (C, A, Tcp(9090), false),
            (C, B, Tcp(8080), false),
            (C, B, Tcp(9090), false),
        ];
        until_table("3 (unknown name)", &info, &nothing).await;
    });
    drop(cluster);
}
