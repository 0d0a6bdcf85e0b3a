//! `testnet demo --overlay`: the routed fabric (see `testnet::overlay`) three times: BGP
//! only (pods cannot cross subnets, and why), VXLAN Always (they can), CrossSubnet (VXLAN
//! on the wire only between subnets, counted with tcpdump on the fabric).

use std::time::Duration;

use anyhow::Result;
use testnet::Cluster;
use testnet::overlay::{
    NODES, POOL_CIDR, PoolMode, build_routed, ping_counting_vxlan, same_subnet, wait_overlay_routes,
};

use crate::section;

/// Every pod pings every other pod once; prints each pair and returns the failures.
fn ping_all(cluster: &Cluster) -> Result<usize> {
    let mut failed = 0;
    for from in &cluster.pods {
        for to in cluster.pods.iter().filter(|p| p.name != from.name) {
            let ok = cluster.ping(&from.name, &to.ip, 2)?;
            let path = if same_subnet(&from.node, &to.node) {
                "same subnet"
            } else {
                "across the router"
            };
            println!(
                "  {:<8} -> {:<8} {:<14} {:<18} {}",
                from.name,
                to.name,
                to.ip,
                path,
                if ok { "ok" } else { "no reply" }
            );
            failed += usize::from(!ok);
        }
    }
    Ok(failed)
}

fn describe_fabric(cluster: &Cluster) {
    for node in &cluster.nodes {
        println!("  {:<6} {}/{}", node.name, node.ip, node.prefix_len);
    }
    println!(
        "  the fabric routes between 172.18.1.0/24 and 172.18.2.0/24 and knows no pod address"
    );
}

pub fn run() -> Result<()> {
    section(&format!(
        "Routed fabric, pool {POOL_CIDR} in BGP-only mode (vxlanMode: Never)"
    ));
    let cluster = build_routed(PoolMode::Bgp)?;
    describe_fabric(&cluster);
    // Same-subnet BGP routes come within a second or two; give them the time.
    let first = &cluster.pods[0];
    let neighbour = cluster
        .pods
        .iter()
        .find(|p| p.node != first.node && same_subnet(&p.node, &first.node))
        .map(|p| p.ip.clone());
    if let Some(ip) = neighbour {
        for _ in 0..40 {
            if cluster.ping(&first.name, &ip, 1)? {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let bgp_failed = ping_all(&cluster)?;
    println!(
        "  {bgp_failed} pairs without reply: a BGP route's next hop must be on the node's own \
         subnet, and the fabric drops pod addresses, so only nodes sharing a subnet reach each \
         other's pods"
    );
    drop(cluster);

    section("The same fabric, pool in VXLAN mode (vxlanMode: Always)");
    let started = std::time::Instant::now();
    let cluster = build_routed(PoolMode::VxlanAlways)?;
    wait_overlay_routes(&cluster, PoolMode::VxlanAlways, Duration::from_secs(60))?;
    println!(
        "  cluster up in {:.1} s: felix gave every node a tunnel address from the pool and \
         routed every remote block through vxlan.calico (no BGP needed)",
        started.elapsed().as_secs_f64()
    );
    let vxlan_failed = ping_all(&cluster)?;
    section("ip route   (on node1: remote blocks via the other nodes' tunnel addresses)");
    print!("{}", cluster.routes("node1")?);
    section("calicoctl get nodes -o yaml | grep -i vxlan");
    for line in cluster
        .calicoctl(&["get", "nodes", "-o", "yaml"], None)?
        .lines()
        .filter(|l| l.trim_start().starts_with("name:") || l.to_ascii_lowercase().contains("vxlan"))
    {
        println!("{line}");
    }
    drop(cluster);

    section("The same fabric, pool in CrossSubnet mode (vxlanMode: CrossSubnet)");
    let cluster = build_routed(PoolMode::VxlanCrossSubnet)?;
    wait_overlay_routes(
        &cluster,
        PoolMode::VxlanCrossSubnet,
        Duration::from_secs(60),
    )?;
    let ip = |pod: &str| cluster.pod(pod).map(|p| p.ip.clone());
    let (within_ok, within) = ping_counting_vxlan(&cluster, "pod-1-1", &ip("pod-2-1")?, 1)?;
    let (across_ok, across) = ping_counting_vxlan(&cluster, "pod-1-1", &ip("pod-3-1")?, 2)?;
    println!(
        "  pod-1-1 -> pod-2-1 (same subnet):   {}, {within} VXLAN packets on the wire",
        if within_ok { "ok" } else { "no reply" }
    );
    println!(
        "  pod-1-1 -> pod-3-1 (across subnets): {}, {across} VXLAN packets on the wire",
        if across_ok { "ok" } else { "no reply" }
    );
    drop(cluster);
    println!("\nClusters removed.");
    let nodes = NODES.len();
    anyhow::ensure!(
        bgp_failed > 0,
        "BGP-only pods crossed a fabric that does not route them?"
    );
    anyhow::ensure!(
        vxlan_failed == 0,
        "{vxlan_failed} of {} VXLAN pings failed",
        nodes * (nodes - 1)
    );
    anyhow::ensure!(
        within_ok && across_ok && within == 0 && across > 0,
        "CrossSubnet: same-subnet {within_ok}/{within} packets, cross-subnet {across_ok}/{across}"
    );
    println!("VXLAN carried every pod pair across the routed fabric; BGP alone could not.");
    Ok(())
}
