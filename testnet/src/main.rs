//! `testnet demo`: a virtual Calico cluster in network namespaces, end to end: nodes run
//! felix and bgpd from etcd, pods are wired by the CNI plugins, routes converge over BGP,
//! pods ping across nodes, and calicoctl shows nodes, BGP sessions and IPAM.
//! Needs root. Everything is removed at exit.

use std::time::Duration;

use clap::{Parser, Subcommand};
use testnet::kube_scenario::{self, OPEN, POLICED, RELABELLED};
use testnet::scenario::{self, Shape};

mod overlay_demo;

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
        /// Kubernetes mode: kube-apiserver and kube-controllers in the fabric, pods created
        /// as Pod objects, a Kubernetes NetworkPolicy enforced and a pod relabelled live.
        #[arg(long)]
        kubernetes: bool,
        /// Overlay mode: nodes on two subnets behind a router that knows no pod address,
        /// the pool in BGP-only, VXLAN and CrossSubnet mode in turn.
        #[arg(long)]
        overlay: bool,
    },
    /// A large cluster on this machine: time to ready, a node joining, new-block and
    /// existing-block pod latencies, a bgpd restart, memory per node; in full mesh, then
    /// with route reflectors.
    Scale {
        #[arg(long, default_value_t = 50)]
        nodes: usize,
        /// Route-reflector nodes for the second run (0: full mesh only).
        #[arg(long, default_value_t = 2)]
        route_reflectors: usize,
        /// Pods sampled per path (new block, existing block).
        #[arg(long, default_value_t = 100)]
        samples: usize,
        /// Pods on node1 for the memory figure with pods.
        #[arg(long, default_value_t = 100)]
        pods_on_one_node: usize,
    },
}

fn section(title: &str) {
    println!("\n=== {title}");
}

fn main() -> anyhow::Result<()> {
    // Ctrl-C must not leave the cluster's namespaces (and what runs in them) behind.
    netns_kit::cleanup_on_signal();
    let (nodes, pods_per_node, route_reflector, kubernetes, overlay) = match Cli::parse().command {
        Cmd::Demo {
            nodes,
            pods_per_node,
            route_reflector,
            kubernetes,
            overlay,
        } => (nodes, pods_per_node, route_reflector, kubernetes, overlay),
        Cmd::Scale {
            nodes,
            route_reflectors,
            samples,
            pods_on_one_node,
        } => return scale(nodes, route_reflectors, samples, pods_on_one_node),
    };
    if overlay {
        return overlay_demo::run();
    }
    let shape = Shape {
        nodes,
        pods_per_node,
        route_reflector,
        kubernetes,
    };
    section(&format!(
        "Building a cluster: {nodes} nodes{}, {pods_per_node} pods per node",
        if route_reflector {
            " + route reflector rr1 (mesh off)"
        } else {
            " (full BGP mesh)"
        }
    ));
    if kubernetes {
        println!("  with kube-apiserver and kube-controllers in the fabric; pods are Pod objects");
    }
    let mut cluster = scenario::build(&shape)?;
    let servers = if kubernetes {
        Some(kube_scenario::add_pods(&mut cluster, nodes)?)
    } else {
        None
    };
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

    if servers.is_some() {
        network_policy_act(&cluster)?;
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
    section("Memory per node daemon (resident now / peak)");
    print_footprint(&cluster);

    drop(servers);
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

/// `testnet scale`: the full mesh, then (unless 0) with route reflectors, each on a fresh
/// cluster.
fn scale(
    nodes: usize,
    route_reflectors: usize,
    samples: usize,
    pods_on_one_node: usize,
) -> anyhow::Result<()> {
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("loadavg at start: {}", load().trim());
    let mut reports = Vec::new();
    for rrs in [0, route_reflectors] {
        if rrs == 0 && !reports.is_empty() {
            break;
        }
        section(&format!(
            "Scale: {nodes} nodes, {}",
            if rrs == 0 {
                "full mesh".to_string()
            } else {
                format!("{rrs} route reflectors")
            }
        ));
        let o = testnet::scale::Options {
            nodes,
            route_reflectors: rrs,
            samples,
            pods_on_one_node,
        };
        reports.push(testnet::scale::run(&o)?);
    }
    for r in &reports {
        r.print();
    }
    println!("loadavg at end: {}", load().trim());
    Ok(())
}

/// felix's and bgpd's resident memory on each node, and the two together: what every node
/// of a cluster pays (the nodes here each hold two pods and learn two other nodes' blocks).
fn print_footprint(cluster: &testnet::Cluster) {
    for node in &cluster.nodes {
        let mut total = 0;
        let mut parts = Vec::new();
        for d in &node.daemons {
            if let Some((rss, hwm)) = d.memory_kib() {
                total += rss;
                let program = d.name().rsplit('/').next().unwrap_or_default();
                parts.push(format!("{program} {:.1} / {:.1} MiB", mib(rss), mib(hwm)));
            }
        }
        println!(
            "  {:<8} {}   together {:.1} MiB",
            node.name,
            parts.join(", "),
            mib(total)
        );
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The Kubernetes act: pods as the API shows them, the endpoint labels kube-controllers
/// wrote, the NetworkPolicy applied with kubectl and enforced by felix, and a relabel.
fn network_policy_act(cluster: &testnet::Cluster) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(30);
    section("kubectl get pods -n shop -o wide --show-labels");
    print!(
        "{}",
        cluster.kubectl(
            &["get", "pods", "-n", "shop", "-o", "wide", "--show-labels"],
            None
        )?
    );
    let show = |title: &str, table: &[kube_scenario::Expect]| {
        println!("  {title}");
        for (from, port, want) in table {
            println!(
                "    {from:<7} -> web:{port}  {}",
                if *want { "allowed" } else { "denied" }
            );
        }
    };
    section("TCP across nodes with no policy (the namespace profile allows all)");
    kube_scenario::wait_verdicts(cluster, OPEN, timeout)?;
    show("every connection answered:", OPEN);

    section("kubectl apply: NetworkPolicy web-from-client (app=client -> app=web TCP 8080)");
    kube_scenario::apply_policy(cluster)?;
    let took = kube_scenario::wait_verdicts(cluster, POLICED, timeout)?;
    show(
        &format!("enforced {:.1} s after kubectl apply:", took.as_secs_f64()),
        POLICED,
    );
    print!(
        "{}",
        cluster.calicoctl(&["get", "networkpolicy", "-n", "shop", "-o", "wide"], None)?
    );

    section("kubectl label pod other app=client --overwrite");
    kube_scenario::relabel(cluster, "other", "client")?;
    let took = kube_scenario::wait_verdicts(cluster, RELABELLED, timeout)?;
    show(
        &format!(
            "verdict flipped {:.1} s after the relabel:",
            took.as_secs_f64()
        ),
        RELABELLED,
    );
    Ok(())
}
