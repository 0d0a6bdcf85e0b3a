//! The end-to-end scenario the demo shows and the e2e tests assert: nodes running felix
//! and bgpd from the datastore, pods wired by CNI, routes converging over BGP, pods
//! pinging across nodes.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cluster::{Cluster, FABRIC_PREFIX_LEN};

/// The demo cluster's shape.
#[derive(Clone, Debug)]
pub struct Shape {
    pub nodes: usize,
    pub pods_per_node: usize,
    /// Add a dedicated route-reflector node and turn the full mesh off.
    pub route_reflector: bool,
    /// Run kube-apiserver and kube-controllers; pods are Pod objects the CNI plugin reads.
    pub kubernetes: bool,
}

pub const POOL_CIDR: &str = "10.244.0.0/16";

fn cluster_manifest(mesh: bool) -> String {
    cluster_manifest_with(mesh, "")
}

/// The BGP configuration (AS 64512) and the pool, with `pool_spec` (indented YAML lines)
/// added to the pool's spec.
pub fn cluster_manifest_with(mesh: bool, pool_spec: &str) -> String {
    pool_manifest(mesh, 26, pool_spec)
}

/// Like [`cluster_manifest_with`], with blocks of `/block_size`.
pub fn pool_manifest(mesh: bool, block_size: u8, pool_spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: {mesh}
  asNumber: 64512
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: {POOL_CIDR}
  blockSize: {block_size}
  natOutgoing: true
  nodeSelector: all()
{pool_spec}"
    )
}

const RR_PEERING: &str = "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
";

/// Turns `nodes` (labelled `route-reflector: "true"` already) into route reflectors of
/// one cluster (224.0.0.1) that every node peers with (the mesh is off).
pub fn make_route_reflectors(cluster: &Cluster, nodes: &[String]) -> Result<()> {
    for rr in nodes {
        cluster.calicoctl(
            &[
                "patch",
                "node",
                rr,
                "-p",
                r#"{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}"#,
            ],
            None,
        )?;
    }
    cluster.calicoctl(&["apply", "-f", "-"], Some(RR_PEERING))?;
    Ok(())
}

/// Node names of a shape: `node1..N`, then `rr1` when asked.
pub fn node_names(shape: &Shape) -> Vec<String> {
    let mut names: Vec<String> = (1..=shape.nodes).map(|i| format!("node{i}")).collect();
    if shape.route_reflector {
        names.push("rr1".into());
    }
    names
}

/// Builds the cluster: fabric, nodes registered in Calico, felix and bgpd on each node,
/// then pods (so that their blocks are claimed while the daemons run).
pub fn build(shape: &Shape) -> Result<Cluster> {
    build_with_etcd_members(shape, 1)
}

/// Like [`build`], on an etcd cluster of `members` members.
pub fn build_with_etcd_members(shape: &Shape, members: usize) -> Result<Cluster> {
    let mut cluster = Cluster::create_with_etcd_members(members)?;
    if shape.kubernetes {
        cluster.start_kubernetes()?;
    }
    let names = node_names(shape);
    for name in &names {
        cluster.add_node(name)?;
    }
    cluster.calicoctl(
        &["apply", "-f", "-"],
        Some(&cluster_manifest(!shape.route_reflector)),
    )?;
    let mut labels = std::collections::BTreeMap::new();
    if shape.route_reflector {
        labels.insert(
            "rr1".to_string(),
            [("route-reflector".to_string(), "true".to_string())].into(),
        );
    }
    cluster.apply_nodes(&labels)?;
    if shape.route_reflector {
        make_route_reflectors(&cluster, &["rr1".to_string()])?;
    }
    for name in &names {
        start_node_daemons(&mut cluster, name)?;
    }
    for i in 1..=shape.nodes {
        for p in 1..=shape.pods_per_node {
            cluster.add_pod(&format!("node{i}"), "default", &format!("pod-{i}-{p}"))?;
        }
    }
    Ok(cluster)
}

/// Starts felix and `bgpd --datastore` (its control socket at [`Node::bgp_socket`]) on
/// `node`, both configured from the datastore only.
///
/// [`Node::bgp_socket`]: crate::Node::bgp_socket
pub fn start_node_daemons(cluster: &mut Cluster, node: &str) -> Result<()> {
    let socket = cluster.node(node)?.bgp_socket(cluster.work.path());
    cluster.start_daemon(node, "felix", &[], &[])?;
    cluster.start_daemon(
        node,
        "bgpd",
        &["--datastore", "--control-socket", socket.to_str().unwrap()],
        &[],
    )
}

/// Two mesh nodes (node1, node2) with one pod each (pod-1-1, pod-2-1), routes converged.
pub fn two_converged_nodes() -> Result<Cluster> {
    let cluster = build(&Shape {
        nodes: 2,
        pods_per_node: 1,
        route_reflector: false,
        kubernetes: false,
    })?;
    wait_converged(&cluster, Duration::from_secs(60))?;
    Ok(cluster)
}

/// The blocks a node owns, as felix programmed them: one blackhole route per block.
fn own_blocks(cluster: &Cluster, node: &str) -> Result<Vec<String>> {
    Ok(cluster
        .routes(node)?
        .lines()
        .filter_map(|l| l.strip_prefix("blackhole "))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .collect())
}

/// Waits until every node has a BGP route to every other node's blocks, via that node.
pub fn wait_converged(cluster: &Cluster, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    let nodes: Vec<(String, String)> = cluster
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.ip.clone()))
        .collect();
    loop {
        let mut missing = Vec::new();
        for (owner, owner_ip) in &nodes {
            for block in own_blocks(cluster, owner)? {
                for (other, _) in nodes.iter().filter(|(o, _)| o != owner) {
                    let routes = cluster.routes(other)?;
                    let want = format!("{block} via {owner_ip} dev eth0 proto bgp");
                    if !routes.lines().any(|l| l.starts_with(&want)) {
                        missing.push(format!("{other}: {want}"));
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "routes did not converge within {timeout:?}; missing:\n  {}",
                missing.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Result of pinging from one pod to another.
pub struct PingResult {
    pub from: String,
    pub to: String,
    pub to_ip: String,
    pub ok: bool,
}

/// Every pod pings the first pod of every other node (3 packets each, bounded).
pub fn ping_across_nodes(cluster: &Cluster) -> Result<Vec<PingResult>> {
    let mut results = Vec::new();
    for from in &cluster.pods {
        for to in cluster.pods.iter().filter(|p| p.node != from.node) {
            let first_of_node = cluster
                .pods
                .iter()
                .find(|p| p.node == to.node)
                .context("no pod")?;
            if first_of_node.name != to.name {
                continue;
            }
            results.push(PingResult {
                from: from.name.clone(),
                to: to.name.clone(),
                to_ip: to.ip.clone(),
                ok: cluster.ping(&from.name, &to.ip, 3)?,
            });
        }
    }
    Ok(results)
}

/// A node's fabric address in CIDR form, as calicoctl shows it.
pub fn node_cidr(ip: &str) -> String {
    format!("{ip}/{FABRIC_PREFIX_LEN}")
}
