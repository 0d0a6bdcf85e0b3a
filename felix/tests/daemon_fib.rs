//! NEEDS ROOT. The felix binary in a node namespace with its own etcd: workload
//! endpoints written to etcd become `<ip>/32 dev caliX proto 80` routes (also
//! when the veth appears after the endpoint), with sysctls and a permanent
//! neighbour entry; a confirmed block affinity becomes a blackhole; deleting
//! them removes exactly those routes; SIGTERM exits cleanly and leaves the
//! kernel state in place.

mod daemon_harness;

use std::sync::Arc;
use std::time::Duration;

use config::testing::EtcdServer;
use daemon_harness::probe::http_get;
use daemon_harness::{
    Felix, Netns, Pod, eventually, in_ns, key, put, put_json, put_kns_profile, run,
};

const WAIT: Duration = Duration::from_secs(10);

fn felix_routes() -> Vec<String> {
    run("ip", &["route", "show", "proto", "80"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn endpoints_and_affinities_become_routes() {
    let prefix = daemon_harness::unique_prefix();
    // Shared with the namespace thread, which creates a pod late; the one
    // guard deletes the namespace when the last reference goes.
    let node_ns = Arc::new(Netns::new_node(&format!("{prefix}-node")));
    let node = format!("{prefix}-n");
    let pod_a = Pod::new(&node_ns, "ns1", "pod-a", "10.65.0.2", 1);
    let ns_path = node_ns.path();
    let late_pod_node = Arc::clone(&node_ns);
    let (a_iface, a_wep, a_json) = (
        pod_a.iface.clone(),
        pod_a.wep_name(&node),
        pod_a.wep_json(&node, &[]),
    );
    in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        let mut felix = Felix::start(&node, &etcd.endpoint(), &[]);
        let p = ns_path.clone();
        eventually(WAIT, "felix ready", || {
            http_get(p.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
        })
        .await;
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1",
            "felix enables forwarding"
        );

        // A WEP whose veth exists.
        put_json(&ds, &key("workloadendpoints", Some("ns1"), &a_wep), &a_json).await;
        let want_a = format!("10.65.0.2 dev {a_iface} scope link");
        eventually(WAIT, "route for pod-a", || felix_routes().contains(&want_a)).await;
        // The route goes out first (it is what makes the pod reachable); the
        // neighbour entry and sysctls follow in the same apply.
        let proxy_arp = format!("/proc/sys/net/ipv4/conf/{a_iface}/proxy_arp");
        eventually(WAIT, "proxy_arp on pod-a's interface", || {
            std::fs::read_to_string(&proxy_arp).is_ok_and(|v| v.trim() == "1")
        })
        .await;
        eventually(WAIT, "permanent neighbour for pod-a", || {
            run("ip", &["neigh", "show", "dev", &a_iface])
                .contains("10.65.0.2 lladdr 02:00:00:00:00:01 PERMANENT")
        })
        .await;

        // A WEP written before its veth: the route follows the link event.
        let b_json = daemon_harness::wep_json(
            &node,
            "ns1",
            "pod-b",
            "10.65.0.3",
            &daemon_harness::cali_name("ns1", "pod-b"),
            "02:00:00:00:00:02",
            &[],
        );
        let b_name = b_json["metadata"]["name"].as_str().unwrap().to_string();
        put_json(
            &ds,
            &key("workloadendpoints", Some("ns1"), &b_name),
            &b_json,
        )
        .await;
        let pod_b = Pod::new(&late_pod_node, "ns1", "pod-b", "10.65.0.3", 2);
        let want_b = format!("10.65.0.3 dev {} scope link", pod_b.iface);
        // The link event makes this fast (well under a second); the deadline
        // only has to be far below the 90 s route refresh that would also
        // fix it, with room for a loaded 2-core machine.
        eventually(WAIT, "route for late veth of pod-b", || {
            felix_routes().contains(&want_b)
        })
        .await;

        // A confirmed affinity: blackhole; pending again: gone.
        let aff = format!("/calico/ipam/v2/host/{node}/ipv4/block/10.65.0.0-26");
        put(&ds, &aff, br#"{"state":"confirmed","deleted":false}"#).await;
        let hole = "blackhole 10.65.0.0/26".to_string();
        eventually(WAIT, "blackhole for the block", || {
            felix_routes().contains(&hole)
        })
        .await;

        // Delete pod-a's WEP: only its route goes.
        daemon_harness::delete(&ds, &key("workloadendpoints", Some("ns1"), &a_wep)).await;
        eventually(WAIT, "route for pod-a removed", || {
            !felix_routes().contains(&want_a)
        })
        .await;
        let routes = felix_routes();
        assert!(
            routes.contains(&want_b) && routes.contains(&hole),
            "{routes:?}"
        );

        put(&ds, &aff, br#"{"state":"pendingDeletion","deleted":false}"#).await;
        eventually(WAIT, "blackhole removed", || {
            !felix_routes().contains(&hole)
        })
        .await;

        // Routes felix did not write are never touched.
        run(
            "ip",
            &[
                "route",
                "add",
                "10.99.0.0/24",
                "dev",
                "lo",
                "proto",
                "static",
            ],
        );
        assert!(
            felix.stop(),
            "felix exits 0 on SIGTERM:\n{}",
            felix.log_text()
        );
        assert_eq!(felix_routes(), vec![want_b.clone()], "state left in place");
        let all = run("ip", &["route"]);
        assert!(all.contains("10.99.0.0/24 dev lo proto static"), "{all}");
        drop(pod_b);
    });
    drop(pod_a);
}

#[test]
fn periodic_refresh_repairs_tampering() {
    let prefix = daemon_harness::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    let node = format!("{prefix}-n");
    let pod = Pod::new(&node_ns, "ns1", "pod-a", "10.65.0.2", 1);
    let ns_path = node_ns.path();
    let (iface, wep, wep_json) = (
        pod.iface.clone(),
        pod.wep_name(&node),
        pod.wep_json(&node, &[]),
    );
    in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        put_kns_profile(&ds, "ns1", &[]).await;
        put_json(&ds, &key("workloadendpoints", Some("ns1"), &wep), &wep_json).await;
        let env = [
            ("FELIX_ROUTEREFRESHINTERVAL", "1"),
            ("FELIX_IPTABLESREFRESHINTERVAL", "1"),
        ];
        let _felix = Felix::start(&node, &etcd.endpoint(), &env);
        let p = ns_path.clone();
        eventually(WAIT, "felix ready", || {
            http_get(p.clone(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
        })
        .await;
        let want = format!("10.65.0.2 dev {iface} scope link");
        assert!(felix_routes().contains(&want));
        let chain = format!("cali-tw-{iface}");
        let rules = || run("iptables-save", &["-t", "filter"]);
        assert!(rules().contains(&format!("-A {chain} ")));

        // Someone deletes our route and empties our chain and a jump rule.
        run("ip", &["route", "del", "10.65.0.2/32", "dev", &iface]);
        run("iptables", &["-F", &chain]);
        let forward = run("iptables", &["-S", "FORWARD"]);
        let first = forward.lines().nth(1).unwrap_or_default();
        assert!(first.contains("-j cali-FORWARD"), "{forward}");
        run("iptables", &["-D", "FORWARD", "1"]);
        assert!(!felix_routes().contains(&want));
        eventually(Duration::from_secs(5), "route repaired", || {
            felix_routes().contains(&want)
        })
        .await;
        eventually(Duration::from_secs(5), "rules repaired", || {
            let r = rules();
            r.contains(&format!("-A {chain} "))
                && r.contains("-A FORWARD")
                && r.contains("-j cali-FORWARD")
        })
        .await;
    });
    drop(pod);
}
