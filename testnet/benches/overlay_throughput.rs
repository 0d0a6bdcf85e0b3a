//! NEEDS ROOT. Pod-to-pod TCP throughput across two nodes of one subnet (iperf3, Debian's),
//! three ways in the same run, interleaved round by round:
//! - direct: the pool in CrossSubnet mode, so same-subnet pods are routed unencapsulated;
//! - VXLAN: the pool in VXLAN Always mode, pods through `vxlan.calico`;
//! - hand-made VXLAN: a VXLAN link made with `ip link` between the same two node
//!   namespaces of the VXLAN cluster (no pods, no veths; felix's INPUT and OUTPUT rules
//!   and conntrack still apply there): the anchor the issue measures the VXLAN pods
//!   against;
//! - hand-made pods: the pods' topology made with `ip` alone, beside the cluster on the
//!   same fabric bridge: two bare nodes (no felix, no rules) joined by a hand-made VXLAN
//!   link, and behind each a namespace on a veth (MTU 1450) like a pod. The pods pay for
//!   two veth hops and forwarding on both nodes that the node-to-node link does not; this
//!   row measures that part, so that the rest is what felix adds;
//! - bare link: node to node over that bare VXLAN link (no rules anywhere).
//!
//! "hand-made pods / bare link" is the kernel's own ceiling for any data plane that puts
//! each pod behind a routed veth (Calico's model), with no rules at all: the ratio
//! "vxlan pods / hand-made vxlan" cannot be expected above it.
//!
//! Run: `cargo build --bins && cargo bench -p testnet --bench overlay_throughput`
//! (`BENCH_SECS` per measurement, default 5; `BENCH_ROUNDS`, default 3;
//! `BENCH_NO_RULES=1` flushes every node's iptables after the clusters are up, to see
//! what felix's rules cost on each path: a diagnosis, not a configuration; `BENCH_HOLD=FILE`
//! waits after building until FILE is removed, to look at the clusters or profile them with
//! `perf` before the measurements). The binaries come
//! from `TESTNET_BIN_DIR`, else the debug build (the dataplane is the kernel's: a debug
//! felix programs it the same).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use testnet::Cluster;
use testnet::overlay::{PoolMode, build_routed, wait_overlay_routes};

/// Throughput and CPU of one iperf3 run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    gbits: f64,
    /// iperf3's own CPU utilisation, sender and receiver (% of one machine).
    cpu_sender: f64,
    cpu_receiver: f64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `iperf3 -s -1` in `server`, then the client in `client` towards `ip`.
fn iperf(
    server: &netns_kit::Netns,
    client: &netns_kit::Netns,
    ip: &str,
    secs: u64,
) -> Result<Sample> {
    let mut srv = server
        .command("iperf3")
        .args(["-s", "-1", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("iperf3 server (apt install iperf3)")?;
    // The server needs a moment to listen; the client retries a few times.
    let mut out = None;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let o = client
            .command("iperf3")
            .args(["-c", ip, "-p", "5201", "-t", &secs.to_string(), "-J"])
            .output()?;
        if o.status.success() {
            out = Some(o);
            break;
        }
    }
    let _ = srv.kill();
    let _ = srv.wait();
    let out = out.context("iperf3 client never connected")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let end = &v["end"];
    let bps = end["sum_received"]["bits_per_second"]
        .as_f64()
        .context("no sum_received in iperf3 output")?;
    Ok(Sample {
        gbits: bps / 1e9,
        cpu_sender: end["cpu_utilization_percent"]["host_total"]
            .as_f64()
            .unwrap_or(0.0),
        cpu_receiver: end["cpu_utilization_percent"]["remote_total"]
            .as_f64()
            .unwrap_or(0.0),
    })
}

/// A VXLAN link `vxhand` (port 4790, MTU 1450 like vxlan.calico) in `ns` from `local` to
/// `remote`, with address `addr`.
fn vxlan_link(
    ns: &netns_kit::Netns,
    vni: &str,
    local: &str,
    remote: &str,
    addr: &str,
) -> Result<()> {
    ns.try_ip(&[
        "link", "add", "vxhand", "type", "vxlan", "id", vni, "dstport", "4790", "local", local,
        "remote", remote,
    ])?;
    ns.try_ip(&["link", "set", "vxhand", "mtu", "1450", "up"])?;
    ns.try_ip(&["addr", "add", addr, "dev", "vxhand"])?;
    Ok(())
}

/// A VXLAN link made by hand between node1 and node2 (VNI 77): 192.168.77.1 and .2.
fn hand_made_link(cluster: &Cluster) -> Result<()> {
    let n1 = cluster.node("node1")?;
    let n2 = cluster.node("node2")?;
    for (me, peer, addr) in [(n1, n2, "192.168.77.1/30"), (n2, n1, "192.168.77.2/30")] {
        vxlan_link(&me.ns, "77", &me.ip, &peer.ip, addr)?;
    }
    Ok(())
}

/// The pods' topology without Calico (see the module's comment): two bare nodes and a pod
/// behind each (`pods[0]` on the first, the client's side); the namespaces go when this
/// is dropped.
struct BarePods {
    nodes: [netns_kit::Netns; 2],
    pods: [netns_kit::Netns; 2],
}

impl BarePods {
    /// Two bare nodes on `cluster`'s subnet-1 bridge (172.18.1.201 and .202), a VXLAN link
    /// between them (VNI 78, port 4790, 192.168.78.0/30) and a pod behind each
    /// (10.99.<n>.2/24, its node 10.99.<n>.1).
    fn build(cluster: &Cluster) -> Result<BarePods> {
        use netns_kit::Netns;
        let nodes = [Netns::new("bare-node1"), Netns::new("bare-node2")];
        let pods = [Netns::new("bare-pod1"), Netns::new("bare-pod2")];
        for (i, (node, pod)) in nodes.iter().zip(&pods).enumerate() {
            let n = i + 1;
            let fabric_side = format!("bare{n}");
            node.veth_to("eth0", &cluster.fabric, &fabric_side)?;
            cluster
                .fabric
                .try_ip(&["link", "set", &fabric_side, "master", "br1", "up"])?;
            node.addr_up("eth0", &format!("172.18.1.{}/24", 200 + n))?;
            node.sysctl("net.ipv4.ip_forward", "1")?;
            pod.veth_to("eth0", node, "pod")?;
            pod.try_ip(&["link", "set", "eth0", "mtu", "1450"])?;
            pod.addr_up("eth0", &format!("10.99.{n}.2/24"))?;
            node.addr_up("pod", &format!("10.99.{n}.1/24"))?;
            pod.try_ip(&["route", "add", "default", "via", &format!("10.99.{n}.1")])?;
        }
        for (i, node) in nodes.iter().enumerate() {
            let (me, peer, other) = (201 + i, 202 - i, 2 - i);
            vxlan_link(
                node,
                "78",
                &format!("172.18.1.{me}"),
                &format!("172.18.1.{peer}"),
                &format!("192.168.78.{}/30", i + 1),
            )?;
            node.try_ip(&[
                "route",
                "add",
                &format!("10.99.{other}.0/24"),
                "via",
                &format!("192.168.78.{other}"),
            ])?;
        }
        Ok(BarePods { nodes, pods })
    }
}

fn pod_ns<'a>(cluster: &'a Cluster, pod: &str) -> Result<&'a netns_kit::Netns> {
    Ok(&cluster.pod(pod)?.ns)
}

fn main() -> Result<()> {
    if Command::new("iperf3").arg("--version").output().is_err() {
        bail!("iperf3 is missing: apt install iperf3 (scripts/setup.sh installs it)");
    }
    let secs = env_or("BENCH_SECS", 5);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let direct = build_routed(PoolMode::VxlanCrossSubnet)?;
    wait_overlay_routes(&direct, PoolMode::VxlanCrossSubnet, Duration::from_secs(60))?;
    let vxlan = build_routed(PoolMode::VxlanAlways)?;
    wait_overlay_routes(&vxlan, PoolMode::VxlanAlways, Duration::from_secs(60))?;
    hand_made_link(&vxlan)?;
    let bare = BarePods::build(&vxlan)?;
    if std::env::var_os("BENCH_NO_RULES").is_some() {
        for c in [&direct, &vxlan] {
            for n in &c.nodes {
                for t in ["raw", "mangle", "filter", "nat"] {
                    let _ = n.ns.command("iptables").args(["-t", t, "-F"]).status();
                }
            }
        }
    }
    if let Some(hold) = std::env::var_os("BENCH_HOLD") {
        eprintln!("holding until {hold:?} is removed");
        while std::path::Path::new(&hold).exists() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // (name, server, client, address the client connects to), node1 -> node2 each time.
    let paths: [(&str, &netns_kit::Netns, &netns_kit::Netns, String); 5] = [
        (
            "direct",
            pod_ns(&direct, "pod-2-1")?,
            pod_ns(&direct, "pod-1-1")?,
            direct.pod("pod-2-1")?.ip.clone(),
        ),
        (
            "vxlan pods",
            pod_ns(&vxlan, "pod-2-1")?,
            pod_ns(&vxlan, "pod-1-1")?,
            vxlan.pod("pod-2-1")?.ip.clone(),
        ),
        (
            "hand-made vxlan",
            &vxlan.node("node2")?.ns,
            &vxlan.node("node1")?.ns,
            "192.168.77.2".to_string(),
        ),
        (
            "hand-made pods",
            &bare.pods[1],
            &bare.pods[0],
            "10.99.2.2".to_string(),
        ),
        (
            "bare link",
            &bare.nodes[1],
            &bare.nodes[0],
            "192.168.78.2".to_string(),
        ),
    ];
    let mut rows: Vec<(&str, Vec<Sample>)> = paths.iter().map(|p| (p.0, vec![])).collect();
    for _ in 0..rounds {
        for (row, (_, server, client, ip)) in rows.iter_mut().zip(&paths) {
            row.1.push(iperf(server, client, ip, secs)?);
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\npod-to-pod TCP throughput, node1 -> node2 (same subnet), iperf3 {secs} s x {rounds} rounds, interleaved; load {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<16} {:>28} {:>10} {:>14} {:>14}",
        "", "Gbit/s per round", "median", "sender cpu %", "receiver cpu %"
    );
    let median = |v: &[Sample]| {
        let mut g: Vec<f64> = v.iter().map(|s| s.gbits).collect();
        g.sort_by(f64::total_cmp);
        g[g.len() / 2]
    };
    let mean = |v: &[Sample], f: fn(&Sample) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    for (name, samples) in &rows {
        let per: Vec<String> = samples.iter().map(|s| format!("{:.2}", s.gbits)).collect();
        println!(
            "{name:<16} {:>28} {:>10.2} {:>14.1} {:>14.1}",
            per.join(" "),
            median(samples),
            mean(samples, |s| s.cpu_sender),
            mean(samples, |s| s.cpu_receiver)
        );
    }
    let ratio = |a: usize, b: usize| median(&rows[a].1) / median(&rows[b].1);
    // Rows are measured round by round, so a round's ratio compares neighbours in time.
    let per_round = |a: usize, b: usize| {
        let r: Vec<String> = rows[a]
            .1
            .iter()
            .zip(&rows[b].1)
            .map(|(x, y)| format!("{:.2}", x.gbits / y.gbits))
            .collect();
        r.join(" ")
    };
    println!(
        "vxlan pods / hand-made vxlan: {:.2}x (the issue's target: 0.95x); \
         kernel ceiling, hand-made pods / bare link: {:.2}x",
        ratio(1, 2),
        ratio(3, 4)
    );
    println!(
        "per round: vxlan pods / hand-made vxlan {}; hand-made pods / bare link {}",
        per_round(1, 2),
        per_round(3, 4)
    );
    println!(
        "vxlan pods / direct: {:.2}x; vxlan pods / hand-made pods: {:.2}x; \
         hand-made vxlan / bare link (felix's rules on the node link): {:.2}x",
        ratio(1, 0),
        ratio(1, 3),
        ratio(2, 4)
    );
    Ok(())
}
