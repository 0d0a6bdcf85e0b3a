//! `testnet demo`: a virtual Calico cluster in network namespaces, end to end: nodes run
//! felix and bgpd from etcd, pods are wired by the CNI plugins, routes converge over BGP,
//! pods ping across nodes, and calicoctl shows nodes, BGP sessions and IPAM.
//! Needs root. Everything is removed at exit.

use std::time::Duration;

use clap::{Parser, Subcommand};
use testnet::scenario::{self, Shape};

#[derive(Parser)]
#[command(
    name = "testnet",
    about = "Virtual Calico clusters in network namespaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a cluster, show it working, tear it down.
    Demo {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 2)]
        pods_per_node: usize,
        /// Add a route reflector node and turn the full mesh off.
        #[arg(long)]
        route_reflector: bool,
    },
}

fn section(title: &str) {
    println!("\n=== {title}");
}

fn main() -> anyhow::Result<()> {
    let Cmd::Demo {
        nodes,
        pods_per_node,
        route_reflector,
    } = Cli::parse().command;
    let shape = Shape {
        nodes,
        pods_per_node,
        route_reflector,
    };
    section(&format!(
        "Building a cluster: {nodes} nodes{}, {pods_per_node} pods per node",
        if route_reflector {
            " + route reflector rr1 (mesh off)"
        } else {
            " (full BGP mesh)"
        }
    ));
    let cluster = scenario::build(&shape)?;
    for pod in &cluster.pods {
        println!("  pod {:<10} on {:<6} {}", pod.name, pod.node, pod.ip);
    }
    let took = scenario::wait_converged(&cluster, Duration::from_secs(60))?;
    println!(
        "  BGP routes converged on every node in {:.1} s",
        took.as_secs_f64()
    );

    section("Pods ping pods on other nodes (3 packets each)");
    let results = scenario::ping_across_nodes(&cluster)?;
    let mut failed = 0;
    for r in &results {
        println!(
            "  {:<10} -> {:<10} {:<14} {}",
            r.from,
            r.to,
            r.to_ip,
            if r.ok { "ok" } else { "FAILED" }
        );
        failed += usize::from(!r.ok);
    }

    section("calicoctl get nodes -o wide");
    print!(
        "{}",
        cluster.calicoctl(&["get", "nodes", "-o", "wide"], None)?
    );
    let node1 = cluster.node("node1")?;
    let socket = node1.bgp_socket(cluster.work.path());
    section("calicoctl node status   (on node1)");
    print!(
        "{}",
        cluster.calicoctl_in(
            &node1.ns,
            &["node", "status", "--socket", socket.to_str().unwrap()],
            None
        )?
    );
    section("calicoctl ipam show --show-blocks");
    print!(
        "{}",
        cluster.calicoctl(&["ipam", "show", "--show-blocks"], None)?
    );
    section("ip route   (on node1: felix's /32s and blackholes, bgpd's routes to other nodes)");
    print!("{}", cluster.routes("node1")?);

    drop(cluster);
    println!("\nCluster removed.");
    anyhow::ensure!(failed == 0, "{failed} of {} pings failed", results.len());
    println!(
        "{} of {} cross-node pings succeeded.",
        results.len(),
        results.len()
    );
    Ok(())
}
