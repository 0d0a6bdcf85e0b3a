//! NEEDS ROOT. Route latency of the felix binary: with 10,000 workload endpoints
//! in the datastore (100 local with veths, 9,900 on other nodes, one policy
//! whose selector ipset holds all of them), one more local endpoint is written
//! to etcd at t0; t1 is when its `/32 proto 80` route reaches the kernel, seen
//! by an rtnetlink subscription in the node namespace. 100 additions, each
//! written 25 ms after felix finished the previous apply, so that each is
//! one isolated addition: felix folds updates that arrive within
//! `FELIX_APPLYMININTERVALMS` (20 ms) of an apply's start into the next
//! apply, paced. `BENCH_GAP_MS=0` writes them back to back instead, which
//! measures that pacing (an addition then waits for the interval to pass).
//!
//! Run: `cargo bench -p felix --bench daemon_routes`.

mod daemon_common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use config::testing::EtcdServer;
use daemon_common::daemon_harness::{self as h, Netns, in_ns};
use daemon_common::*;
use futures::StreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::NetlinkPayload;
use serde_json::json;

const PRESENT: usize = 10_000;
const LOCAL_PRESENT: usize = 100;
const ADDITIONS: usize = 100;

fn local_ip(i: usize) -> String {
    format!("10.65.{}.{}", i / 250, i % 250 + 1)
}

fn main() {
    let prefix = h::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    let node = format!("{prefix}-n");
    // Veths for the present local endpoints and for the ones to add (the CNI
    // plugin creates the veth before it writes the endpoint).
    let batch: String = (0..LOCAL_PRESENT + ADDITIONS)
        .map(|i| {
            let name = h::cali_name("bench", &format!("p{i}"));
            format!(
                "link add {name} type veth peer name q{i}\nlink set {name} up\nlink set q{i} up\n"
            )
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), batch).unwrap();
    h::run(
        "ip",
        &["-n", &node_ns.name, "-batch", file.path().to_str().unwrap()],
    );
    let path = node_ns.path();
    in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        let wep = |node: &str, i: usize, ip: &str| {
            let pod = format!("p{i}");
            let v = h::wep_json(
                node,
                "bench",
                &pod,
                ip,
                &h::cali_name("bench", &pod),
                "02:00:00:00:00:01",
                &[("app", "web")],
            );
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            (h::key("workloadendpoints", Some("bench"), &name), v)
        };
        let mut items = vec![
            (
                h::key("profiles", None, "kns.bench"),
                h::kns_profile("bench", &[]),
            ),
            (
                h::key("globalnetworkpolicies", None, "web"),
                json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                    "metadata": {"name": "web"},
                    "spec": {"selector": "app == 'web'", "ingress": [{"action": "Allow",
                        "source": {"selector": "app == 'web'"}}]}}),
            ),
        ];
        for i in 0..PRESENT {
            if i < LOCAL_PRESENT {
                items.push(wep(&node, i, &local_ip(i)));
            } else {
                let other = format!("other-{}", i % 50);
                items.push(wep(
                    &other,
                    i,
                    &format!("10.66.{}.{}", i / 250, i % 250 + 1),
                ));
            }
        }
        create_many(&ds, items).await;

        let started = Instant::now();
        let _felix = h::Felix::start(&node, &etcd.endpoint(), &[]);
        wait_ready(&path, Duration::from_secs(120)).await;
        let sync = started.elapsed();

        let (conn, _handle, mut messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Ipv4Route]).unwrap();
        tokio::spawn(conn);
        let mut latencies = Vec::with_capacity(ADDITIONS);
        let mut apply_times = Vec::with_capacity(ADDITIONS);
        let mut puts = Vec::with_capacity(ADDITIONS);
        // The measure: from the etcd event (the write committed and acknowledged)
        // to the route in the kernel. The watch can deliver before the client sees the
        // acknowledgement, so this saturates at zero.
        let mut after_event = Vec::with_capacity(ADDITIONS);
        let gap = Duration::from_millis(
            std::env::var("BENCH_GAP_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(25),
        );
        let (mut count, mut sum) = wait_applies_after(&path, 0.0, Duration::from_secs(5)).await;
        let phases_before = phase_sums(&path);
        for k in 0..ADDITIONS {
            tokio::time::sleep(gap).await;
            let i = LOCAL_PRESENT + k;
            let ip: Ipv4Addr = local_ip(i).parse().unwrap();
            let (key, value) = wep(&node, i, &local_ip(i));
            let t0 = Instant::now();
            h::put_json(&ds, &key, &value).await;
            let acked = Instant::now();
            puts.push(acked - t0);
            let seen = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some((msg, _)) = messages.next().await {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) =
                        msg.payload
                        && u8::from(r.header.protocol) == 80
                        && r.attributes.iter().any(|a| {
                            matches!(a, RouteAttribute::Destination(RouteAddress::Inet(d)) if *d == ip)
                        })
                    {
                        return Instant::now();
                    }
                }
                panic!("route subscription ended");
            })
            .await
            .unwrap_or_else(|_| panic!("route for {ip} not seen within 5 s"));
            latencies.push(seen - t0);
            after_event.push(seen.saturating_duration_since(acked));
            let (c, s) = wait_applies_after(&path, count, Duration::from_secs(10)).await;
            apply_times.push(Duration::from_secs_f64((s - sum) / (c - count)));
            (count, sum) = (c, s);
        }
        let phases = phase_report(&phases_before, &phase_sums(&path));
        latencies.sort();
        apply_times.sort();
        puts.sort();
        after_event.sort();
        let body = daemon_common::daemon_harness::probe::http_get(path.clone(), 9091, "/metrics")
            .unwrap()
            .1;
        let calc = |n: &str| daemon_common::daemon_harness::probe::metric(&body, n).unwrap_or(0.0);
        println!(
            "felix calc (model -> desired) mean: {:.2} ms",
            calc("felix_calc_graph_update_time_seconds_sum") * 1e3
                / calc("felix_calc_graph_update_time_seconds_count")
        );
        println!("per-addition mean ms: {phases}");
        println!(
            "\nfelix route latency, {PRESENT} endpoints present ({LOCAL_PRESENT} local), {ADDITIONS} additions, {} ms apart",
            gap.as_millis()
        );
        println!(
            "initial sync (start -> ready): {:.0} ms",
            sync.as_secs_f64() * 1e3
        );
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>8}",
            "ms", "p50", "p90", "p99", "max"
        );
        for (what, v) in [
            ("etcd write -> route in kernel", &latencies),
            ("etcd event (acked) -> route", &after_event),
            ("felix apply (whole dataplane)", &apply_times),
            ("etcd write itself (client side)", &puts),
        ] {
            println!(
                "{what:<34} {:>8} {:>8} {:>8} {:>8}",
                ms(quantile(v, 0.5)),
                ms(quantile(v, 0.9)),
                ms(quantile(v, 0.99)),
                ms(*v.last().unwrap())
            );
        }
    });
}
