//! NEEDS ROOT. The v3 policy model beyond plain selectors, enforced by the real felix
//! binary with real iptables and probed with real TCP and ICMP between pod namespaces
//! on one node (harness: `daemon_harness`; see also `policy_truth_table.rs`).
//!
//! Service accounts: A runs as account `api`, B as `batch` (endpoint label
//! `projectcalico.org/serviceaccount`, profiles `ksa.ns1.<account>` applying `pcsa.`
//! labels), C is the server. A policy on C allows TCP 8080 (1) from account names
//! `[api]`, (2) from accounts whose labels match `tier == 'front'` (batch's), (3) a
//! relabelled account follows live.
//!
//! Network sets: a pod's address in a GlobalNetworkSet stands for an external net.
//! A policy on C denies sources matching `role == 'blocked'` and allows the rest:
//! (1) the set holds A, (2) it is changed live to hold B; (3) a NetworkPolicy in C's
//! namespace allows TCP 8080 only from `role == 'partner'`: the NetworkSet of C's
//! namespace holds A, one of another namespace holds B, which does not count.
//!
//! Tiers: `security` (order 100) on C allows TCP from A and passes ICMP; `platform`
//! (order 200) denies ICMP and allows the rest. (1) B's TCP ends at security's
//! default action Deny, ICMP passed on to platform is denied; (2) security's default
//! action becomes Pass: B's TCP goes on to platform, allowed; (3) platform's policy
//! deleted: what security passes reaches the profiles (allow); (4) a default-tier
//! policy on C that matches nothing for ICMP ends that tier with a drop.
//!
//! Bad input: a policy on C that fails validation (a CIDR /40, written to etcd
//! directly, as a buggy writer could) closes C both ways instead of being skipped;
//! fixed, C is open again; one that does not decode (action `Reject`) closes it too.

mod daemon_harness;

use std::path::PathBuf;
use std::time::Duration;

use config::datastore::Datastore;
use config::testing::EtcdServer;
use daemon_harness::probe::{Servers, http_get};
use daemon_harness::table::{Proto, ThreePods as Cluster, until_table};
use daemon_harness::{Felix, delete, eventually, in_ns, key, put_json, put_kns_profile};
use serde_json::json;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
use Proto::{Icmp, Tcp};

/// The `ksa.<ns>.<account>` profile kube-controllers writes: the account's labels
/// as `pcsa.` labels, plus its name.
async fn put_ksa_profile(ds: &Datastore, ns: &str, account: &str, labels: &[(&str, &str)]) {
    let mut l = serde_json::Map::new();
    l.insert("pcsa.projectcalico.org/name".into(), account.into());
    for (k, v) in labels {
        l.insert(format!("pcsa.{k}"), (*v).into());
    }
    let name = format!("ksa.{ns}.{account}");
    let profile = json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Profile",
        "metadata": {"name": name}, "spec": {"labelsToApply": l}
    });
    put_json(ds, &key("profiles", None, &name), &profile).await;
}

async fn start_felix(node: &str, etcd: &EtcdServer, path: PathBuf) -> Felix {
    let felix = Felix::start(node, &etcd.endpoint(), &[]);
    eventually(Duration::from_secs(10), "felix ready", || {
        http_get(path.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
    })
    .await;
    felix
}

#[test]
fn service_accounts_select_by_name_and_by_account_labels() {
    let cluster = Cluster::new();
    let info = cluster.info();
    let (a_key, a_wep) = cluster.wep(A, "a", Some("api"));
    let (b_key, b_wep) = cluster.wep(B, "b", Some("batch"));
    let (c_key, c_wep) = cluster.wep(C, "c", None);
    let _servers = Servers::start(info[C].path.clone(), 8080);
    let node = cluster.node.clone();
    let node_path = cluster.node_ns.path();
    in_ns(&cluster.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_kns_profile(&ds, "ns2", &[]).await;
        put_ksa_profile(&ds, "ns1", "api", &[("tier", "back")]).await;
        put_ksa_profile(&ds, "ns1", "batch", &[("tier", "front")]).await;
        for (k, w) in [(&a_key, &a_wep), (&b_key, &b_wep), (&c_key, &c_wep)] {
            put_json(&ds, k, w).await;
        }
        let policy = |accounts: serde_json::Value| {
            json!({
                "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                "metadata": {"name": "c-from-accounts"},
                "spec": {"selector": "app == 'c'", "types": ["Ingress"],
                         "ingress": [{"action": "Allow", "protocol": "TCP",
                                      "source": {"serviceAccounts": accounts},
                                      "destination": {"ports": [8080]}}]}
            })
        };
        let gnp_key = key("globalnetworkpolicies", None, "c-from-accounts");
        put_json(&ds, &gnp_key, &policy(json!({"names": ["api"]}))).await;
        let _felix = start_felix(&node, &etcd, node_path).await;

        let by_name = [
            (A, C, Tcp(8080), true),
            (B, C, Tcp(8080), false),
            (A, C, Icmp, false),
        ];
        until_table("1 (account name api)", &info, &by_name).await;

        put_json(
            &ds,
            &gnp_key,
            &policy(json!({"selector": "tier == 'front'"})),
        )
        .await;
        let by_labels = [(A, C, Tcp(8080), false), (B, C, Tcp(8080), true)];
        until_table("2 (account labels tier=front)", &info, &by_labels).await;

        // The account's labels change (its profile): the set follows.
        put_ksa_profile(&ds, "ns1", "api", &[("tier", "front")]).await;
        let both = [(A, C, Tcp(8080), true), (B, C, Tcp(8080), true)];
        until_table("3 (api relabelled tier=front)", &info, &both).await;
    });
    drop(cluster);
}

/// A network set object (`kind` NetworkSet or GlobalNetworkSet) with one label.
fn net_set(
    kind: &str,
    ns: Option<&str>,
    name: &str,
    role: &str,
    nets: &[&str],
) -> serde_json::Value {
    let mut metadata = json!({"name": name, "labels": {"role": role}});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": metadata,
           "spec": {"nets": nets}})
}

#[test]
fn network_sets_stand_for_nets_in_rule_selectors() {
    let cluster = Cluster::new();
    let info = cluster.info();
    let (a_key, a_wep) = cluster.wep(A, "a", None);
    let (b_key, b_wep) = cluster.wep(B, "b", None);
    let (c_key, c_wep) = cluster.wep(C, "c", None);
    let _servers = Servers::start(info[C].path.clone(), 8080);
    let node = cluster.node.clone();
    let node_path = cluster.node_ns.path();
    let (a_ip, b_ip) = (format!("{}/32", info[A].ip), info[B].ip.clone());
    in_ns(&cluster.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_kns_profile(&ds, "ns2", &[]).await;
        for (k, w) in [(&a_key, &a_wep), (&b_key, &b_wep), (&c_key, &c_wep)] {
            put_json(&ds, k, w).await;
        }
        let gns_key = key("globalnetworksets", None, "blocked");
        let gns = |net: &str| net_set("GlobalNetworkSet", None, "blocked", "blocked", &[net]);
        put_json(&ds, &gns_key, &gns(&a_ip)).await;
        let gnp = json!({
            "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "c-block"},
            "spec": {"order": 10, "selector": "app == 'c'", "types": ["Ingress"],
                     "ingress": [{"action": "Deny", "source": {"selector": "role == 'blocked'"}},
                                 {"action": "Allow"}]}
        });
        put_json(&ds, &key("globalnetworkpolicies", None, "c-block"), &gnp).await;
        let _felix = start_felix(&node, &etcd, node_path).await;

        let a_blocked = [
            (A, C, Tcp(8080), false),
            (A, C, Icmp, false),
            (B, C, Tcp(8080), true),
        ];
        until_table("1 (GlobalNetworkSet holds A)", &info, &a_blocked).await;

        // A bare address (no prefix length) is a net too.
        put_json(&ds, &gns_key, &gns(&b_ip)).await;
        let b_blocked = [(A, C, Tcp(8080), true), (B, C, Tcp(8080), false)];
        until_table("2 (the set now holds B)", &info, &b_blocked).await;

        put_json(&ds, &gns_key, &gns("198.51.100.0/24")).await;
        let partners =
            |ns: &str, ip: &str| net_set("NetworkSet", Some(ns), "partners", "partner", &[ip]);
        put_json(
            &ds,
            &key("networksets", Some("ns2"), "partners"),
            &partners("ns2", &a_ip),
        )
        .await;
        put_json(
            &ds,
            &key("networksets", Some("ns1"), "partners"),
            &partners("ns1", &b_ip),
        )
        .await;
        let np = json!({
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "c-partners", "namespace": "ns2"},
            "spec": {"order": 1, "selector": "app == 'c'", "types": ["Ingress"],
                     "ingress": [{"action": "Allow", "protocol": "TCP",
                                  "source": {"selector": "role == 'partner'"},
                                  "destination": {"ports": [8080]}},
                                 {"action": "Deny"}]}
        });
        put_json(&ds, &key("networkpolicies", Some("ns2"), "c-partners"), &np).await;
        let own_namespace = [
            (A, C, Tcp(8080), true),
            (A, C, Icmp, false),
            (B, C, Tcp(8080), false),
        ];
        until_table(
            "3 (NetworkSet of C's namespace only)",
            &info,
            &own_namespace,
        )
        .await;
    });
    drop(cluster);
}

async fn put_tier(ds: &Datastore, name: &str, order: u32, default_action: &str) {
    let tier = json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": name},
        "spec": {"order": order, "defaultAction": default_action}
    });
    put_json(ds, &key("tiers", None, name), &tier).await;
}

/// A GlobalNetworkPolicy on C in `tier`, named `<tier>.<name>`.
async fn put_tiered(ds: &Datastore, tier: &str, name: &str, ingress: serde_json::Value) {
    let full = format!("{tier}.{name}");
    let gnp = json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
        "metadata": {"name": full},
        "spec": {"tier": tier, "selector": "app == 'c'", "types": ["Ingress"], "ingress": ingress}
    });
    put_json(ds, &key("globalnetworkpolicies", None, &full), &gnp).await;
}

#[test]
fn tiers_pass_to_the_next_tier_and_end_with_their_default_action() {
    let cluster = Cluster::new();
    let info = cluster.info();
    let (a_key, a_wep) = cluster.wep(A, "a", None);
    let (b_key, b_wep) = cluster.wep(B, "b", None);
    let (c_key, c_wep) = cluster.wep(C, "c", None);
    let _servers = Servers::start(info[C].path.clone(), 8080);
    let node = cluster.node.clone();
    let node_path = cluster.node_ns.path();
    in_ns(&cluster.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_kns_profile(&ds, "ns2", &[]).await;
        for (k, w) in [(&a_key, &a_wep), (&b_key, &b_wep), (&c_key, &c_wep)] {
            put_json(&ds, k, w).await;
        }
        put_tier(&ds, "security", 100, "Deny").await;
        put_tier(&ds, "platform", 200, "Deny").await;
        put_tiered(
            &ds,
            "security",
            "c-guard",
            json!([{"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'a'"}},
                   {"action": "Pass", "protocol": "ICMP"}]),
        )
        .await;
        put_tiered(
            &ds,
            "platform",
            "c-no-icmp",
            json!([{"action": "Deny", "protocol": "ICMP"}, {"action": "Allow"}]),
        )
        .await;
        let _felix = start_felix(&node, &etcd, node_path).await;

        let s1 = [
            (A, C, Tcp(8080), true),
            (B, C, Tcp(8080), false),
            (A, C, Icmp, false),
            (C, A, Icmp, true),
        ];
        until_table(
            "1 (security denies by default; ICMP passed, denied)",
            &info,
            &s1,
        )
        .await;

        put_tier(&ds, "security", 100, "Pass").await;
        let s2 = [
            (A, C, Tcp(8080), true),
            (B, C, Tcp(8080), true),
            (A, C, Icmp, false),
        ];
        until_table("2 (security passes by default)", &info, &s2).await;

        delete(
            &ds,
            &key("globalnetworkpolicies", None, "platform.c-no-icmp"),
        )
        .await;
        let s3 = [
            (B, C, Tcp(8080), true),
            (A, C, Icmp, true),
            (B, C, Icmp, true),
        ];
        until_table("3 (passed after the last tier: profiles)", &info, &s3).await;

        let np = json!({
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "c-udp", "namespace": "ns2"},
            "spec": {"selector": "app == 'c'", "types": ["Ingress"],
                     "ingress": [{"action": "Allow", "protocol": "UDP"}]}
        });
        put_json(&ds, &key("networkpolicies", Some("ns2"), "c-udp"), &np).await;
        let s4 = [
            (A, C, Tcp(8080), true),
            (B, C, Tcp(8080), false),
            (A, C, Icmp, false),
        ];
        until_table("4 (default tier ends with Deny)", &info, &s4).await;
    });
    drop(cluster);
}

#[test]
fn an_invalid_policy_closes_what_it_selects_until_fixed() {
    let cluster = Cluster::new();
    let info = cluster.info();
    let (a_key, a_wep) = cluster.wep(A, "a", None);
    let (c_key, c_wep) = cluster.wep(C, "c", None);
    let _servers = Servers::start(info[C].path.clone(), 8080);
    let node = cluster.node.clone();
    let node_path = cluster.node_ns.path();
    in_ns(&cluster.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_kns_profile(&ds, "ns2", &[]).await;
        put_json(&ds, &a_key, &a_wep).await;
        put_json(&ds, &c_key, &c_wep).await;
        let policy = |net: &str| {
            json!({
                "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                "metadata": {"name": "c-deny-some"},
                "spec": {"selector": "app == 'c'", "types": ["Ingress"],
                         "ingress": [{"action": "Deny", "source": {"nets": [net]}},
                                     {"action": "Allow"}]}
            })
        };
        let gnp_key = key("globalnetworkpolicies", None, "c-deny-some");
        put_json(&ds, &gnp_key, &policy("10.0.0.0/40")).await;
        let felix = start_felix(&node, &etcd, node_path).await;
        let closed = [
            (A, C, Tcp(8080), false),
            (A, C, Icmp, false),
            (C, A, Icmp, false),
        ];
        until_table("1 (invalid policy: C closed both ways)", &info, &closed).await;
        // Reported with the policy's name and the failing field.
        let log = felix.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains("policy c-deny-some is invalid")
                    && l.contains("spec.ingress[0].source.nets[0]")),
            "{log}"
        );
        put_json(&ds, &gnp_key, &policy("192.0.2.0/24")).await;
        let open = [(A, C, Tcp(8080), true), (C, A, Icmp, true)];
        until_table("2 (fixed)", &info, &open).await;
        // Not even decodable (an action Calico does not have): closed just the same.
        let mut undecodable = policy("192.0.2.0/24");
        undecodable["spec"]["ingress"][0]["action"] = json!("Reject");
        put_json(&ds, &gnp_key, &undecodable).await;
        until_table("3 (undecodable policy: closed)", &info, &closed).await;
        delete(&ds, &gnp_key).await;
        until_table("4 (deleted)", &info, &open).await;
    });
    drop(cluster);
}
