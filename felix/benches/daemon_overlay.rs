//! NEEDS ROOT. Programming the VXLAN overlay for 1,000 remote nodes from empty, felix
//! against `ip -batch` + `bridge -batch` writing the same entries, in one run.
//!
//! The datastore holds 1,000 remote Nodes (address, tunnel address, VTEP MAC) with one
//! confirmed block each, and this node's own VTEP. felix starts and syncs with no VXLAN
//! pool; at t0 the pool is written with `vxlanMode: Always`, and felix must create
//! `vxlan.calico` and write 1,000 routes (`<block> via <tunnel addr> dev vxlan.calico
//! onlink`), 1,000 permanent ARP entries and 1,000 FDB entries. t1 is when an apply has
//! finished and the kernel holds all 3,000 (checked by netlink dumps after each apply).
//! Then the pool is deleted and felix must remove all of it (timed the same way). The
//! anchor makes the same device and writes the same 3,000 entries with `ip -batch`
//! (device, routes, ARP) and `bridge -batch` (FDB), then deletes the device (its
//! entries go with it), as felix does.
//! Wall and CPU time for both; `BENCH_ROUNDS` rounds (default 5).
//!
//! Run: `cargo bench -p felix --bench daemon_overlay`.

mod daemon_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use config::testing::EtcdServer;
use daemon_common::daemon_harness::{self as h, Netns, in_ns};
use daemon_common::*;
use felix::dataplane::netlink::Netlink;
use ipam::{AffinityState, BlockAffinity};
use kernel_routes::neigh::{NeighborKind, dump_neighbors};
use kernel_routes::{FELIX, RouteTarget, dump_routes};
use serde_json::json;

const REMOTE: usize = 1_000;
const LOCAL_ADDR: &str = "172.20.0.1";
const LOCAL_TUNNEL: &str = "10.127.255.1";
const POOL: &str = "10.64.0.0/10";

fn block(i: usize) -> String {
    let base = u32::from(std::net::Ipv4Addr::new(10, 64, 0, 0)) + (i as u32) * 64;
    format!("{}/26", std::net::Ipv4Addr::from(base))
}

fn tunnel(i: usize) -> String {
    block(i).trim_end_matches("/26").to_string()
}

fn node_ip(i: usize) -> String {
    format!("172.21.{}.{}", i / 250, i % 250 + 1)
}

fn mac(i: usize) -> String {
    format!("66:00:00:00:{:02x}:{:02x}", i / 256, i % 256)
}

fn node_json(name: &str, addr: &str, tunnel: &str, mac: &str) -> serde_json::Value {
    json!({"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": {"name": name},
        "spec": {"bgp": {"ipv4Address": format!("{addr}/16")},
            "ipv4VXLANTunnelAddr": tunnel, "vxlanTunnelMACAddr": mac}})
}

fn pool_json() -> serde_json::Value {
    json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "vxlan"},
        "spec": {"cidr": POOL, "blockSize": 26, "vxlanMode": "Always"}})
}

/// (felix's routes through vxlan.calico, permanent ARP entries on it, FDB entries on
/// it), read with the same dumps felix's syncers use.
async fn overlay_counts(nl: &Netlink) -> (usize, usize, usize) {
    let Some(index) = nl.link_index("vxlan.calico").await.unwrap() else {
        return (0, 0, 0);
    };
    let routes = dump_routes(nl.handle())
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.protocol == FELIX.protocol
                && matches!(r.target, RouteTarget::OnlinkVia { dev, .. } if dev == index)
        })
        .count();
    let neighbors = dump_neighbors(nl.handle(), &BTreeSet::from([index]))
        .await
        .unwrap();
    let of_kind = |kind| neighbors.iter().filter(|n| n.kind == kind).count();
    (
        routes,
        of_kind(NeighborKind::Arp),
        of_kind(NeighborKind::Fdb),
    )
}

/// Waits for applies until the kernel holds `want`; returns (t1, felix apply seconds).
async fn until_counts(
    path: &std::path::Path,
    nl: &Netlink,
    want: (usize, usize, usize),
) -> (Instant, f64) {
    let (mut count, start_sum) = apply_stats(path);
    let mut sum = start_sum;
    loop {
        if overlay_counts(nl).await == want {
            return (Instant::now(), sum - start_sum);
        }
        (count, sum) = wait_applies_after(path, count, Duration::from_secs(30)).await;
    }
}

/// (wall, user + system CPU) of `argv`: wall by the clock, CPU from /usr/bin/time (in
/// the kernel's 10 ms ticks).
fn timed(argv: &[&str]) -> (Duration, Duration) {
    let started = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%U %S"])
        .args(argv)
        .output()
        .expect("running /usr/bin/time");
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let f: Vec<f64> = last
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (wall, Duration::from_secs_f64(f[0] + f[1]))
}

/// One round of the anchor from empty, as felix does it: the device and the 3,000
/// entries; then the device deleted (its entries go with it, as with felix's removal).
fn anchor_round(ns: &str, dir: &std::path::Path) -> [(Duration, Duration); 2] {
    let mut add_ip = format!(
        "link add vxlan.calico type vxlan id 4096 dstport 4789 local {LOCAL_ADDR} nolearning\n\
         link set vxlan.calico mtu 1450 up\naddr add {LOCAL_TUNNEL}/32 dev vxlan.calico\n"
    );
    let mut add_fdb = String::new();
    for i in 0..REMOTE {
        let (b, t, m, n) = (block(i), tunnel(i), mac(i), node_ip(i));
        add_ip.push_str(&format!(
            "route add {b} via {t} dev vxlan.calico onlink proto 80\n\
             neigh add {t} lladdr {m} dev vxlan.calico nud permanent\n"
        ));
        add_fdb.push_str(&format!(
            "fdb add {m} dev vxlan.calico dst {n} self permanent\n"
        ));
    }
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (ai, af) = (file("add-ip", &add_ip), file("add-fdb", &add_fdb));
    let a = timed(&["ip", "-n", ns, "-batch", &ai]);
    let b = timed(&["ip", "netns", "exec", ns, "bridge", "-batch", &af]);
    let del = timed(&["ip", "-n", ns, "link", "del", "vxlan.calico"]);
    [(a.0 + b.0, a.1 + b.1), del]
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let prefix = h::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    node_ns.exec("ip link add eth0 type veth peer name eth0p");
    node_ns.exec(&format!("ip addr add {LOCAL_ADDR}/16 dev eth0"));
    node_ns.exec("ip link set eth0 up");
    node_ns.exec("ip link set eth0p up");
    let anchor_ns = Netns::new(&format!("{prefix}-anchor"));
    anchor_ns.exec("ip link add eth0 type veth peer name eth0p");
    anchor_ns.exec(&format!("ip addr add {LOCAL_ADDR}/16 dev eth0"));
    anchor_ns.exec("ip link set eth0 up");
    anchor_ns.exec("ip link set eth0p up");
    let dir = tempfile::tempdir().unwrap();
    let anchor = (0..rounds)
        .map(|_| anchor_round(&anchor_ns.name, dir.path()))
        .collect::<Vec<_>>();

    let node = format!("{prefix}-n");
    let path = node_ns.path();
    let felix_rows = in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        let confirmed = serde_json::to_value(BlockAffinity::new(AffinityState::Confirmed)).unwrap();
        let mut items = vec![(
            h::key("nodes", None, &node),
            node_json(&node, LOCAL_ADDR, LOCAL_TUNNEL, "66:ff:00:00:00:01"),
        )];
        for i in 0..REMOTE {
            let name = format!("remote-{i}");
            items.push((
                h::key("nodes", None, &name),
                node_json(&name, &node_ip(i), &tunnel(i), &mac(i)),
            ));
            items.push((
                ipam::keys::affinity_key(&name, &block(i).parse().unwrap()),
                confirmed.clone(),
            ));
        }
        create_many(&ds, items).await;
        let felix = h::Felix::start(&node, &etcd.endpoint(), &[]);
        wait_ready(&path, Duration::from_secs(120)).await;
        let pid = felix.pid().expect("felix runs");
        let nl = Netlink::connect().unwrap();
        let pool_key = h::key("ippools", None, "vxlan");
        let mut rows = Vec::new();
        for _ in 0..rounds {
            let cpu0 = cpu_time(pid);
            let t0 = Instant::now();
            h::put_json(&ds, &pool_key, &pool_json()).await;
            let (t1, apply) = until_counts(&path, &nl, (REMOTE, REMOTE, REMOTE)).await;
            let add = (t1 - t0, cpu_time(pid) - cpu0, apply);
            let cpu0 = cpu_time(pid);
            let t0 = Instant::now();
            h::delete(&ds, &pool_key).await;
            let (t1, apply) = until_counts(&path, &nl, (0, 0, 0)).await;
            rows.push([add, (t1 - t0, cpu_time(pid) - cpu0, apply)]);
        }
        println!(
            "felix per apply (mean ms over the run, startup included): {}",
            phase_report(&(0.0, vec![0.0; PHASES.len()]), &phase_sums(&path))
        );
        drop(felix);
        rows
    });

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\noverlay programming, {REMOTE} remote nodes (routes + ARP + FDB = {} entries), {rounds} rounds; load {}",
        3 * REMOTE,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<8} {:>16} {:>16} {:>18} {:>14} {:>14} {:>10}",
        "", "felix wall ms", "felix cpu ms", "felix apply ms", "ip wall ms", "ip cpu ms", "wall x"
    );
    for (what, k) in [("add", 0usize), ("delete", 1)] {
        for (round, (f, a)) in felix_rows.iter().zip(&anchor).enumerate() {
            let (fw, fc, fa) = f[k];
            let (aw, ac) = a[k];
            println!(
                "{:<8} {:>16} {:>16} {:>18.2} {:>14} {:>14} {:>10.2}",
                format!("{what} {round}"),
                ms(fw),
                ms(fc),
                fa * 1e3,
                ms(aw),
                ms(ac),
                fw.as_secs_f64() / aw.as_secs_f64().max(1e-9)
            );
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (what, k) in [("add", 0usize), ("delete", 1)] {
        let fw = median(felix_rows.iter().map(|r| r[k].0.as_secs_f64()).collect());
        let fc = median(felix_rows.iter().map(|r| r[k].1.as_secs_f64()).collect());
        let aw = median(anchor.iter().map(|r| r[k].0.as_secs_f64()).collect());
        let ac = median(anchor.iter().map(|r| r[k].1.as_secs_f64()).collect());
        println!(
            "median {what}: felix {:.1} ms wall, {:.1} ms cpu; ip -batch + bridge -batch {:.1} ms wall, {:.1} ms cpu; wall ratio {:.2}x, cpu ratio {}",
            fw * 1e3,
            fc * 1e3,
            aw * 1e3,
            ac * 1e3,
            fw / aw,
            // CPU comes in 10 ms ticks: no ratio against less than one.
            if ac >= 0.01 {
                format!("{:.2}x", fc / ac)
            } else {
                "n/a (anchor under one 10 ms tick)".to_string()
            }
        );
    }
}
