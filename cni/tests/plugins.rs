//! The `calico` and `calico-ipam` binaries driven as a runtime drives them, against a real
//! etcd, in network namespaces this test creates (a "host" namespace and one per pod).
//!
//! Needs root: run as root (`cargo test -p cni`). See `common` for the setup.

mod common;

use common::{Host, Pod, host_test, pod_ip};
use serde_json::{Value, json};

/// Pings both ways through the host route ADD wrote (no felix runs here).
fn assert_pings(host: &Host, pod: &Pod, ip: &str) {
    pod.ns
        .exec(&["ping", "-c", "2", "-W", "1", common::HOST_ADDR]);
    host.host_exec(&["ping", "-c", "2", "-W", "1", ip]);
}

#[test]
fn add_check_ping_del_twice() {
    host_test(|host| async move {
        common::add_host_address(&host);
        let pod = Pod::new("web-1");
        let conf = host.conf("1.0.0");
        let result = host.calico("ADD", &pod, &conf).await.result();

        // The result: host interface, pod interface in its sandbox, a /32 in the pool.
        let ifaces = result["interfaces"].as_array().expect("interfaces");
        assert_eq!(ifaces[0]["name"], pod.host_ifname());
        assert_eq!(ifaces[0]["mac"], "ee:ee:ee:ee:ee:ee");
        assert_eq!(ifaces[1]["name"], "eth0");
        assert_eq!(ifaces[1]["sandbox"], pod.ns.path().display().to_string());
        assert_eq!(result["ips"][0]["interface"], 1);
        assert!(
            result["ips"][0].get("version").is_none(),
            "1.0.0 has no version"
        );
        let ip = pod_ip(&result);
        let addr: std::net::IpAddr = ip.parse().unwrap();
        assert!(
            common::POOL
                .parse::<ipnet::IpNet>()
                .unwrap()
                .contains(&addr)
        );
        assert!(
            result["ips"][0]["address"]
                .as_str()
                .unwrap()
                .ends_with("/32")
        );

        // The kernel agrees with the result.
        let link = pod.ns.exec(&["ip", "-o", "link", "show", "eth0"]);
        let mac = ifaces[1]["mac"].as_str().unwrap();
        assert!(link.contains(mac), "{link} lacks {mac}");
        let routes = pod.ns.exec(&["ip", "route"]);
        assert!(
            routes.contains("default via 169.254.1.1 dev eth0"),
            "{routes}"
        );
        // The host route, in the form felix writes it (felix adopts it as its own).
        let host_route = host.host_exec(&["ip", "route", "show", &format!("{ip}/32")]);
        assert_eq!(
            host_route.trim(),
            format!("{ip} dev {} proto 80 scope link", pod.host_ifname()),
            "host route"
        );
        for (key, want) in [
            ("ipv4/conf/{}/proxy_arp", "1"),
            ("ipv4/conf/{}/forwarding", "1"),
            ("ipv4/conf/{}/route_localnet", "1"),
            ("ipv4/neigh/{}/proxy_delay", "0"),
        ] {
            let path = format!("/proc/sys/net/{}", key.replace("{}", &pod.host_ifname()));
            assert_eq!(host.host_exec(&["cat", &path]).trim(), want, "{path}");
        }

        // The endpoint.
        let wep = host.wep(&pod).await.expect("endpoint written");
        assert_eq!(wep.spec.container_id, pod.container_id);
        assert_eq!(wep.spec.interface_name, pod.host_ifname());
        assert_eq!(wep.spec.mac, mac);
        assert_eq!(wep.spec.ip_networks, vec![format!("{ip}/32")]);
        assert_eq!(wep.spec.profiles, vec!["kns.default"]);
        assert_eq!(wep.spec.node, common::NODE);
        assert_eq!(
            wep.metadata.labels["projectcalico.org/namespace"],
            "default"
        );
        assert_eq!(wep.metadata.labels["projectcalico.org/orchestrator"], "k8s");

        assert_pings(&host, &pod, &ip);

        // CHECK with the ADD result as prevResult passes.
        let mut check = conf.clone();
        check["prevResult"] = result.clone();
        let out = host.calico("CHECK", &pod, &check).await;
        assert!(out.ok, "CHECK failed: {}", out.stdout);
        assert!(
            out.stdout.is_empty(),
            "CHECK prints nothing: {}",
            out.stdout
        );

        // DEL removes everything; a second DEL still succeeds.
        for round in 0..2 {
            let out = host.calico("DEL", &pod, &conf).await;
            assert!(out.ok, "DEL #{round}: {} {}", out.stdout, out.stderr);
        }
        assert!(!host.host_has_link(&pod.host_ifname()));
        assert!(!pod.ns.try_exec(&["ip", "link", "show", "eth0"]));
        let host_route = host.host_exec(&["ip", "route", "show", &format!("{ip}/32")]);
        assert!(
            host_route.trim().is_empty(),
            "host route left: {host_route}"
        );
        assert!(host.wep(&pod).await.is_none());
        assert_eq!(host.ips_in_use().await, 0);
        assert!(host.handles().await.is_empty());
    });
}

#[test]
fn two_pods_get_different_addresses_and_both_work() {
    host_test(|host| async move {
        common::add_host_address(&host);
        let conf = host.conf("0.3.1");
        let (a, b) = (Pod::new("a"), Pod::new("b"));
        let ra = host.calico("ADD", &a, &conf).await.result();
        let rb = host.calico("ADD", &b, &conf).await.result();
        // 0.3.x results carry the IP version.
        assert_eq!(ra["ips"][0]["version"], "4");
        let (ia, ib) = (pod_ip(&ra), pod_ip(&rb));
        assert_ne!(ia, ib);
        assert_ne!(a.host_ifname(), b.host_ifname());
        assert_pings(&host, &a, &ia);
        assert_pings(&host, &b, &ib);
        assert_eq!(host.ips_in_use().await, 2);
        for pod in [&a, &b] {
            assert!(host.calico("DEL", pod, &conf).await.ok);
        }
        assert_eq!(host.ips_in_use().await, 0);
    });
}

#[test]
fn check_fails_after_tampering() {
    host_test(|host| async move {
        let pod = Pod::new("tampered");
        let conf = host.conf("1.0.0");
        let result = host.calico("ADD", &pod, &conf).await.result();
        let mut check = conf.clone();
        check["prevResult"] = result;
        pod.ns.exec(&["ip", "route", "del", "default"]);
        let out = host.calico("CHECK", &pod, &check).await;
        assert_eq!(out.error_code(), 100, "{}", out.stdout);
        assert!(out.json()["msg"].as_str().unwrap().contains("0.0.0.0/0"));
        // CHECK without prevResult is a configuration error.
        let out = host.calico("CHECK", &pod, &conf).await;
        assert_eq!(out.error_code(), 7);
        // CHECK does not exist before 0.4.0.
        let mut old = check.clone();
        old["cniVersion"] = json!("0.3.1");
        assert_eq!(host.calico("CHECK", &pod, &old).await.error_code(), 1);
        assert!(host.calico("DEL", &pod, &conf).await.ok);
    });
}

#[test]
fn failed_add_leaves_nothing_behind() {
    host_test(|host| async move {
        let conf = host.conf("1.0.0");
        // A real failure: the pod namespace already has an eth0, so the veth peer cannot be
        // created there after IPAM assigned an address.
        let pod = Pod::new("clash");
        pod.ns.exec(&[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "x0",
        ]);
        let out = host.calico("ADD", &pod, &conf).await;
        assert_eq!(
            out.error_code(),
            cni::error::NETLINK_FAILURE as u64,
            "{}",
            out.stdout
        );
        host.assert_nothing_left(&pod).await;
        assert!(
            pod.ns.try_exec(&["ip", "link", "show", "eth0"]),
            "the pod's own eth0 stays"
        );
        assert!(
            host.calico("DEL", &pod, &conf).await.ok,
            "DEL after a failed ADD"
        );

        // Injected failures after each later step unwind all earlier ones.
        for step in [
            "after-ipam",
            "after-veth",
            "after-pod",
            "after-route",
            "after-wep",
        ] {
            let pod = Pod::new(step);
            let out = host
                .run(
                    "calico",
                    "ADD",
                    &pod,
                    &conf,
                    &[(cni::undo::FAILPOINT_ENV, step)],
                )
                .await;
            assert_eq!(
                out.error_code(),
                u64::from(cni::undo::FAILPOINT_CODE),
                "{step}"
            );
            host.assert_nothing_left(&pod).await;
            assert!(
                !pod.ns.try_exec(&["ip", "link", "show", "eth0"]),
                "{step}: pod eth0 left"
            );
            let host_routes = host.host_exec(&["ip", "route", "show", "proto", "80"]);
            assert!(host_routes.trim().is_empty(), "{step}: {host_routes}");
            assert!(host.calico("DEL", &pod, &conf).await.ok, "{step}: DEL");
        }
    });
}

#[test]
fn fifty_parallel_adds() {
    host_test(|host| async move {
        let conf = host.conf("1.0.0");
        let pods: Vec<Pod> = (0..50).map(|i| Pod::new(&format!("par-{i}"))).collect();
        let results =
            futures::future::join_all(pods.iter().map(|p| host.calico("ADD", p, &conf))).await;
        let mut ips = std::collections::BTreeSet::new();
        for (pod, out) in pods.iter().zip(&results) {
            ips.insert(pod_ip(&out.result()));
            let wep = host.wep(pod).await.expect("endpoint");
            assert_eq!(wep.spec.container_id, pod.container_id);
        }
        assert_eq!(ips.len(), 50, "addresses are distinct");
        let (weps, _) = host
            .ds
            .list::<config::model::WorkloadEndpoint>(None)
            .await
            .unwrap();
        assert_eq!(weps.len(), 50);
        assert_eq!(host.ips_in_use().await, 50);
        let dels =
            futures::future::join_all(pods.iter().map(|p| host.calico("DEL", p, &conf))).await;
        assert!(dels.iter().all(|o| o.ok), "{dels:?}");
        assert_eq!(host.ips_in_use().await, 0);
    });
}

#[test]
fn gc_releases_what_the_runtime_forgot_and_status_reports() {
    host_test(|host| async move {
        let conf = host.conf("1.1.0");
        let (keep, lost) = (Pod::new("keep"), Pod::new("lost"));
        let kept = host.calico("ADD", &keep, &conf).await.result();
        host.calico("ADD", &lost, &conf).await.result();
        let mut gc = conf.clone();
        gc["cni.dev/valid-attachments"] =
            json!([{"containerID": keep.container_id, "ifname": "eth0"}]);
        let out = host.calico("GC", &keep, &gc).await;
        assert!(out.ok, "GC: {} {}", out.stdout, out.stderr);
        assert!(
            host.wep(&lost).await.is_none(),
            "forgotten endpoint removed"
        );
        assert!(host.wep(&keep).await.is_some(), "valid endpoint kept");
        assert_eq!(host.ips_in_use().await, 1);
        let handles = host.handles().await;
        assert_eq!(handles.len(), 1);
        assert!(handles[0].ends_with(&keep.container_id), "{handles:?}");
        let mut check = conf.clone();
        check["prevResult"] = kept;
        assert!(host.calico("CHECK", &keep, &check).await.ok);
        // GC without the list would release everything: refused.
        assert_eq!(host.calico("GC", &keep, &conf).await.error_code(), 7);

        let out = host.calico("STATUS", &keep, &conf).await;
        assert!(out.ok && out.stdout.is_empty(), "{out:?}");
        let mut down = conf.clone();
        down["etcd_endpoints"] = json!("http://127.0.0.1:1");
        assert_eq!(host.calico("STATUS", &keep, &down).await.error_code(), 50);
    });
}

#[test]
fn calico_ipam_alone_honours_requested_ips_and_pools() {
    host_test(|host| async move {
        common::create_pool(&host.ds, "second", "10.250.0.0/24").await;
        let mut conf = host.conf("1.0.0");
        conf["type"] = json!("calico-ipam");
        let pod = Pod::new("ipam-only");
        // IP= in CNI_ARGS.
        let out = host
            .run(
                "calico-ipam",
                "ADD",
                &pod,
                &conf,
                &[("CNI_ARGS", "IP=10.244.7.7")],
            )
            .await
            .result();
        assert_eq!(out["ips"][0]["address"], "10.244.7.7/32");
        let attrs = ipam::Ipam::new(host.ds.clone(), ipam::PoolSource::Datastore)
            .get_assignment_attributes("10.244.7.7".parse().unwrap())
            .await
            .unwrap()
            .expect("allocated");
        assert_eq!(
            attrs.handle(),
            Some(format!("{}.{}", common::NETWORK, pod.container_id).as_str())
        );
        assert_eq!(attrs.secondary["node"], common::NODE);
        assert!(attrs.secondary.contains_key("timestamp"));
        assert!(host.run("calico-ipam", "DEL", &pod, &conf, &[]).await.ok);
        assert!(
            host.run("calico-ipam", "DEL", &pod, &conf, &[]).await.ok,
            "second DEL"
        );
        // A pool by name.
        conf["ipam"]["ipv4_pools"] = json!(["second"]);
        let out = host
            .run("calico-ipam", "ADD", &pod, &conf, &[])
            .await
            .result();
        assert!(pod_ip(&out).starts_with("10.250.0."), "{out}");
        assert!(host.run("calico-ipam", "DEL", &pod, &conf, &[]).await.ok);
        conf["ipam"]["ipv4_pools"] = json!(["no-such-pool"]);
        assert_eq!(
            host.run("calico-ipam", "ADD", &pod, &conf, &[])
                .await
                .error_code(),
            7
        );
        assert_eq!(host.ips_in_use().await, 0);
    });
}

#[test]
fn host_local_ipam_works() {
    host_test(|host| async move {
        common::add_host_address(&host);
        let data_dir = std::env::temp_dir().join(common::unique("cni-host-local-"));
        let _cleanup = common::RemoveDir(data_dir.clone());
        let mut conf = host.conf("1.0.0");
        conf["ipam"] = json!({
            "type": "host-local",
            "ranges": [[{"subnet": "10.77.0.0/24"}]],
            "dataDir": data_dir,
        });
        let pod = Pod::new("hl");
        let result = host.calico("ADD", &pod, &conf).await.result();
        let ip = pod_ip(&result);
        assert!(ip.starts_with("10.77.0."), "{result}");
        assert_eq!(result["ips"][0]["address"], format!("{ip}/32"));
        let wep = host.wep(&pod).await.expect("endpoint");
        assert_eq!(wep.spec.ip_networks, vec![format!("{ip}/32")]);
        assert_pings(&host, &pod, &ip);
        let lease = data_dir.join(common::NETWORK).join(&ip);
        assert!(lease.exists(), "host-local recorded {}", lease.display());
        assert!(host.calico("DEL", &pod, &conf).await.ok);
        assert!(!lease.exists(), "host-local released the address");
        assert_eq!(host.ips_in_use().await, 0, "calico IPAM untouched");
    });
}

#[test]
fn chained_with_portmap_and_bandwidth() {
    host_test(|host| async move {
        let conf = host.conf("1.0.0");
        let pod = Pod::new("chained");
        let mut prev: Value = host.calico("ADD", &pod, &conf).await.result();
        let ip = pod_ip(&prev);
        // As libcni runs a conflist: each later plugin gets the previous result.
        let chain = [
            json!({"type": "portmap", "capabilities": {"portMappings": true},
                   "runtimeConfig": {"portMappings":
                       [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}}),
            json!({"type": "bandwidth", "capabilities": {"bandwidth": true},
                   "runtimeConfig": {"bandwidth": {"ingressRate": 1000000, "ingressBurst": 100000,
                       "egressRate": 1000000, "egressBurst": 100000}}}),
        ];
        for step in &chain {
            let mut c = step.clone();
            c["cniVersion"] = json!("1.0.0");
            c["name"] = json!(common::NETWORK);
            c["prevResult"] = prev.clone();
            let plugin = c["type"].as_str().unwrap().to_string();
            let out = host.run(&plugin, "ADD", &pod, &c, &[]).await;
            prev = out.result();
            assert_eq!(pod_ip(&prev), ip, "{plugin} keeps our result");
        }
        let nat = host.host_exec(&["iptables-save", "-t", "nat"]);
        assert!(
            nat.contains("18080") && nat.contains(&ip),
            "portmap DNAT missing:\n{nat}"
        );
        let qdisc = host.host_exec(&["tc", "qdisc", "show", "dev", &pod.host_ifname()]);
        assert!(qdisc.contains("tbf"), "bandwidth shaping missing: {qdisc}");
        // DEL in reverse order, as libcni does.
        for step in chain.iter().rev() {
            let mut c = step.clone();
            c["cniVersion"] = json!("1.0.0");
            c["name"] = json!(common::NETWORK);
            c["prevResult"] = prev.clone();
            let plugin = c["type"].as_str().unwrap().to_string();
            let out = host.run(&plugin, "DEL", &pod, &c, &[]).await;
            assert!(out.ok, "{plugin} DEL: {}", out.stdout);
        }
        assert!(host.calico("DEL", &pod, &conf).await.ok);
        let nat = host.host_exec(&["iptables-save", "-t", "nat"]);
        assert!(!nat.contains("18080"), "portmap rules left:\n{nat}");
    });
}

#[test]
fn spec_errors_and_version() {
    host_test(|host| async move {
        let pod = Pod::new("errs");
        let v = host
            .run(
                "calico",
                "VERSION",
                &pod,
                &json!({"cniVersion": "0.4.0"}),
                &[],
            )
            .await
            .result();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(
            v["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
        let mut conf = host.conf("0.2.0");
        assert_eq!(host.calico("ADD", &pod, &conf).await.error_code(), 1);
        conf["cniVersion"] = json!("1.0.0");
        conf["mtu"] = json!(20);
        assert_eq!(host.calico("ADD", &pod, &conf).await.error_code(), 7);
        let out = host
            .run(
                "calico",
                "ADD",
                &pod,
                &host.conf("1.0.0"),
                &[("CNI_NETNS", "/var/run/netns/none-such")],
            )
            .await;
        assert_eq!(out.error_code(), 4);
        let out = host
            .run(
                "calico",
                "ADD",
                &pod,
                &host.conf("1.0.0"),
                &[("CNI_COMMAND", "FROB")],
            )
            .await;
        assert_eq!(out.error_code(), 4);
        let mut bad_ipam = host.conf("1.0.0");
        bad_ipam["ipam"]["type"] = json!("no-such-ipam");
        assert_eq!(host.calico("ADD", &pod, &bad_ipam).await.error_code(), 7);
        let mut k8s = host.conf("1.0.0");
        k8s["datastore_type"] = json!("kubernetes");
        assert_eq!(host.calico("ADD", &pod, &k8s).await.error_code(), 2);
        // Nothing was allocated by any of these.
        assert_eq!(host.ips_in_use().await, 0);
    });
}
