//! ADD latency of the `calico` plugin across the loss of the etcd leader (issue: the
//! datastore as operators run it). A 3-member etcd cluster on loopback, the plugin given
//! all three endpoints (`etcd_endpoints: a,b,c`), [`PODS`] sequential ADDs. The leader is
//! killed while an ADD is in flight, twice (the first victim rejoins in between, so the
//! cluster keeps its quorum): those ADDs pay the failover.
//!
//! Prints p50/p90/p99/max over all ADDs and the latency of each ADD a kill hit, beside the
//! plain p50; then checks what a lost or doubled write would break: every ADD succeeded,
//! no address is held twice, IPAM's consistency check is clean, and DEL gives everything
//! back. Needs root (veths in throwaway namespaces), like the tests.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{NODE, POOL, Pod, create_pool, host_test, pod_ip};
use config::testing::EtcdCluster;

const PODS: usize = 90;
/// The ADDs during which the leader is killed.
const KILL_AT: [usize; 2] = [30, 60];
/// How far into the ADD the kill comes: past the spawn, inside IPAM's reads and writes.
const KILL_AFTER: Duration = Duration::from_millis(15);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    host_test(|host| async move {
        let mut cluster = EtcdCluster::start(3).await;
        let ds = cluster.datastore().await;
        create_pool(&ds, "default-pool", POOL).await;
        let mut conf = host.conf("1.0.0");
        conf["etcd_endpoints"] = cluster.endpoints().join(",").into();

        let mut adds = Vec::with_capacity(PODS);
        let mut hit = Vec::new();
        let mut pods = Vec::with_capacity(PODS);
        let mut ips = BTreeSet::new();
        let mut killed: Option<usize> = None;
        for i in 0..PODS {
            let pod = Pod::new(&format!("ll-{i}"));
            if let Some(k) = KILL_AT.iter().position(|&at| at == i) {
                // The previous victim rejoins first (not timed), so a quorum survives.
                if let Some(v) = killed.take() {
                    cluster.restart(v).await;
                }
                let leader = cluster.leader().await.expect("a leader");
                let start = Instant::now();
                let (out, ()) =
                    tokio::join!(host.run_direct("calico", "ADD", &pod, &conf), async {
                        tokio::time::sleep(KILL_AFTER).await;
                        cluster.kill(leader);
                    });
                let took = start.elapsed();
                adds.push(took);
                hit.push((k, leader, took));
                killed = Some(leader);
                assert!(
                    out.ok,
                    "ADD {i} across the kill: {}\n{}",
                    out.stdout, out.stderr
                );
                assert!(ips.insert(pod_ip(&out.result())), "address given twice");
            } else {
                let start = Instant::now();
                let out = host.run_direct("calico", "ADD", &pod, &conf).await;
                adds.push(start.elapsed());
                assert!(out.ok, "ADD {i}: {}\n{}", out.stdout, out.stderr);
                assert!(ips.insert(pod_ip(&out.result())), "address given twice");
            }
            pods.push(pod);
        }

        let ds = cluster.datastore().await;
        let ipam = ipam::Ipam::new(ds.clone(), ipam::PoolSource::Datastore);
        let report = ipam.check(None).await.expect("ipam check");
        assert!(report.is_consistent(), "ipam check: {:?}", report.problems);
        assert_eq!(report.allocated_ips, PODS, "allocations in etcd vs ADDs");

        let mut sorted = adds.clone();
        sorted.sort();
        println!(
            "calico ADD across etcd leader loss: {PODS} sequential pods on node {NODE}, 3 members, leader killed {KILL_AFTER:?} into ADDs {KILL_AT:?} (ms)"
        );
        println!(
            "{:<6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "n", "min", "p50", "p90", "p99", "max"
        );
        println!(
            "{:<6} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            "ADD",
            sorted.len(),
            ms(sorted[0]),
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 90.0)),
            ms(percentile(&sorted, 99.0)),
            ms(sorted[sorted.len() - 1]),
        );
        let before = {
            let mut v = adds[..KILL_AT[0]].to_vec();
            v.sort();
            percentile(&v, 50.0)
        };
        println!(
            "p50 of the {} ADDs before the first kill: {:.2} ms",
            KILL_AT[0],
            ms(before)
        );
        for (k, &at) in KILL_AT.iter().enumerate() {
            let after: Vec<String> = adds[at..(at + 6).min(PODS)]
                .iter()
                .map(|d| format!("{:.0}", ms(*d)))
                .collect();
            println!(
                "kill {}: ADD {at} and the five after it took {} ms",
                k + 1,
                after.join(", ")
            );
        }
        let slow: Vec<String> = adds
            .iter()
            .enumerate()
            .filter(|(_, d)| **d > before * 10)
            .map(|(i, d)| format!("{i}: {:.0}", ms(*d)))
            .collect();
        println!("ADDs over 10x that p50 (index: ms): {}", slow.join(", "));
        for (k, leader, took) in &hit {
            println!(
                "kill {}: member m{leader} (the leader) died during an ADD that took {:.2} ms ({:.1}x the p50)",
                k + 1,
                ms(*took),
                took.as_secs_f64() / percentile(&sorted, 50.0).as_secs_f64()
            );
        }
        println!(
            "{} addresses, none twice; ipam check clean: {} blocks, {} handles",
            ips.len(),
            report.blocks,
            report.handles
        );

        for pod in &pods {
            let out = host.run_direct("calico", "DEL", pod, &conf).await;
            assert!(out.ok, "DEL: {}\n{}", out.stdout, out.stderr);
        }
        let report = ipam.check(None).await.expect("ipam check");
        assert!(report.is_consistent(), "after DEL: {:?}", report.problems);
        assert_eq!(report.allocated_ips, 0, "addresses left after DEL");
    });
}
