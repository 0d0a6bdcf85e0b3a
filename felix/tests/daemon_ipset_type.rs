//! NEEDS ROOT. A `cali40` set felix wants already exists with another type
//! (left by another tool or an older felix) and felix's own rules reference
//! it. The kernel refuses to destroy a referenced set and `ipset swap`
//! refuses different types, so felix points its rules at a stand-in,
//! recreates the set, points the rules back and removes the stand-in.

mod daemon_harness;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use config::testing::EtcdServer;
use daemon_harness::probe::http_get;
use daemon_harness::{
    Felix, Netns, cali_name, eventually, in_ns, key, kns_profile, put_json, run, wep_json,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

fn restore_noflush(input: &str) {
    let mut child = Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(Stdio::piped())
        .spawn()
        .expect("iptables-restore");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "restore failed: {input}");
}

#[test]
fn a_referenced_set_of_another_type_is_recreated() {
    let prefix = daemon_harness::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    let node = format!("{prefix}-n");
    let path = node_ns.path();
    in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        let profile = kns_profile("ns1", &[]);
        put_json(&ds, &key("profiles", None, "kns.ns1"), &profile).await;
        for (pod, ip, app) in [("pa", "10.65.0.2", "a"), ("pb", "10.65.0.3", "b")] {
            let iface = cali_name("ns1", pod);
            let labels = [("app", app)];
            let v = wep_json(&node, "ns1", pod, ip, &iface, "02:00:00:00:00:01", &labels);
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            put_json(&ds, &key("workloadendpoints", Some("ns1"), &name), &v).await;
        }
        let np = json!({
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "b-from-a", "namespace": "ns1"},
            "spec": {"selector": "app == 'b'", "types": ["Ingress"],
                     "ingress": [{"action": "Allow", "source": {"selector": "app == 'a'"}}]}
        });
        put_json(&ds, &key("networkpolicies", Some("ns1"), "b-from-a"), &np).await;
        let ready = || http_get(path.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200);

        let mut felix = Felix::start(&node, &etcd.endpoint(), &[]);
        eventually(WAIT, "felix ready", ready).await;
        let set = run("ipset", &["list", "-n"])
            .lines()
            .find(|n| n.starts_with("cali40s:"))
            .expect("selector set")
            .to_string();
        assert!(felix.stop(), "felix did not stop cleanly");

        // Replace the set by a hash:ip one while keeping felix's rule on it.
        let saved = run("iptables-save", &["-t", "filter"]);
        let rule = saved
            .lines()
            .find(|l| l.contains(&format!("--match-set {set} ")))
            .expect("a rule matching the set")
            .to_string();
        let chain = rule.split_whitespace().nth(1).unwrap().to_string();
        let chain_rules: Vec<&str> = saved
            .lines()
            .filter(|l| l.starts_with(&format!("-A {chain} ")))
            .collect();
        run("iptables", &["-F", &chain]);
        run("ipset", &["destroy", &set]);
        run("ipset", &["create", &set, "hash:ip", "family", "inet"]);
        run("ipset", &["add", &set, "10.65.0.9"]);
        restore_noflush(&format!("*filter\n{}\nCOMMIT\n", chain_rules.join("\n")));
        let header = |set: &str| run("ipset", &["list", set]);
        assert!(header(&set).contains("Type: hash:ip"), "{}", header(&set));
        assert!(header(&set).contains("References: 1"), "{}", header(&set));

        let _felix = Felix::start(&node, &etcd.endpoint(), &[]);
        eventually(WAIT, "felix ready", ready).await;
        eventually(WAIT, "set recreated as hash:net", || {
            let h = header(&set);
            h.contains("Type: hash:net") && h.contains("10.65.0.2") && !h.contains("10.65.0.9")
        })
        .await;
        eventually(WAIT, "stand-in removed", || {
            !run("ipset", &["list", "-n"]).contains("cali40d:")
        })
        .await;
        let saved = run("iptables-save", &["-t", "filter"]);
        assert!(saved.contains(&format!("--match-set {set} ")), "{saved}");
        assert!(!saved.contains("cali40d:"), "{saved}");
    });
}
