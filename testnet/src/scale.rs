//! `testnet scale`: a cluster of N nodes on one machine, each running felix and bgpd from
//! etcd, in full mesh or with route reflectors, and what operators judge a CNI by at that
//! size: time to a ready cluster, a node joining, a new block reaching every other node,
//! a pod's route on its own node, a bgpd restart, memory per node.
//!
//! Routes are observed as the kernels take them ([`RouteWatch`]), so the latencies are
//! event times, not polling periods. The pool's blocks are /31 (two addresses): every
//! second pod on a node claims a new block, so one run samples both paths, the new block
//! (IPAM claim, felix's blackhole, bgpd's UPDATE, every other node's route) and the
//! existing one (the pod's /32 on its own node).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::Cluster;
use crate::route_watch::RouteWatch;
use crate::scenario::{make_route_reflectors, pool_manifest, start_node_daemons};

const BLOCK_SIZE: u8 = 31;
/// Bound on the cluster becoming ready, and on each single event.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: usize,
    /// Route-reflector nodes (`rr1`..); 0 for the full mesh.
    pub route_reflectors: usize,
    /// Pods sampled per path (new block, existing block).
    pub samples: usize,
    /// Pods on node1 for the memory figure with pods.
    pub pods_on_one_node: usize,
}

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    pub options: Options,
    /// Daemons started to every node routing to every other node's block.
    pub ready: Duration,
    /// A new node's daemons started, to every other node routing to its first block.
    pub join: Duration,
    /// Pod ADD (CNI) claiming a new block, to the block's route on every other node.
    pub new_block: Vec<Duration>,
    /// Pod ADD in an existing block, to its /32 on its own node.
    pub existing_block: Vec<Duration>,
    /// node1's bgpd restarted (SIGTERM, start), to its sessions all Established again.
    pub restart: Duration,
    /// BGP routes any node's kernel lost during that restart (graceful restart keeps them).
    pub restart_routes_lost: usize,
    /// felix + bgpd resident memory per node (KiB), with one or two pods each.
    pub idle_kib: Vec<u64>,
    /// felix + bgpd resident memory of node1 with `pods_on_one_node` pods (KiB).
    pub with_pods_kib: u64,
}

/// Builds the cluster, measures, removes everything (also on failure).
pub fn run(o: &Options) -> Result<Report> {
    anyhow::ensure!(
        (2..=200).contains(&(o.nodes + o.route_reflectors + 1)),
        "between 2 and 200 nodes (the fabric's addresses)"
    );
    let all_nodes = o.nodes + o.route_reflectors + 1;
    let all_pods = all_nodes + 2 * o.samples + o.pods_on_one_node;
    let _limits = NeighbourLimits::at_least(2 * (all_nodes * all_nodes + all_pods))?;
    let mut cluster = Cluster::create()?;
    let nodes: Vec<String> = (1..=o.nodes).map(|i| format!("node{i}")).collect();
    let rrs: Vec<String> = (1..=o.route_reflectors).map(|i| format!("rr{i}")).collect();
    for name in nodes.iter().chain(&rrs) {
        cluster.add_node(name)?;
    }
    cluster.calicoctl(
        &["apply", "-f", "-"],
        Some(&pool_manifest(rrs.is_empty(), BLOCK_SIZE, "")),
    )?;
    // Every pod may take a block of its own (/31): a node holds more than the default 20.
    let blocks_per_host = (all_pods + 2).to_string();
    cluster.calicoctl(
        &[
            "ipam",
            "configure",
            "--max-blocks-per-host",
            &blocks_per_host,
        ],
        None,
    )?;
    let rr_label: BTreeMap<String, String> =
        [("route-reflector".to_string(), "true".to_string())].into();
    let labels: BTreeMap<String, BTreeMap<String, String>> =
        rrs.iter().map(|r| (r.clone(), rr_label.clone())).collect();
    cluster.apply_nodes(&labels)?;
    if !rrs.is_empty() {
        make_route_reflectors(&cluster, &rrs)?;
    }
    // One pod per node before the daemons start: its block is what readiness waits for.
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let ip = cluster.add_pod(node, "default", &format!("p{}-0", i + 1))?;
        blocks.entry(node.clone()).or_default().push(block_of(&ip)?);
    }
    let mut watches: BTreeMap<String, RouteWatch> = BTreeMap::new();
    for n in &cluster.nodes {
        watches.insert(n.name.clone(), RouteWatch::start(&n.ns)?);
    }

    println!(
        "  {} nodes{}: starting felix and bgpd on each",
        o.nodes,
        if rrs.is_empty() {
            " in full mesh".to_string()
        } else {
            format!(" + {} route reflectors", rrs.len())
        }
    );
    let start = Instant::now();
    for name in nodes.iter().chain(&rrs) {
        start_node_daemons(&mut cluster, name)?;
    }
    let wanted: Vec<(String, String)> = blocks
        .iter()
        .flat_map(|(owner, bs)| bs.iter().map(move |b| (owner.clone(), b.clone())))
        .collect();
    let ready = routed_everywhere(&watches, &wanted, start, READY_TIMEOUT, "the cluster")?;
    println!(
        "  ready (every node routes to every block) after {:.2} s",
        ready.as_secs_f64()
    );

    // A node joins.
    let joining = format!("node{}", o.nodes + 1);
    cluster.add_node(&joining)?;
    cluster.apply_node(&joining, &labels)?;
    watches.insert(
        joining.clone(),
        RouteWatch::start(&cluster.node(&joining)?.ns)?,
    );
    let start = Instant::now();
    start_node_daemons(&mut cluster, &joining)?;
    let ip = cluster.add_pod(&joining, "default", &format!("p{}-0", o.nodes + 1))?;
    let block = block_of(&ip)?;
    let join = routed_everywhere(
        &watches,
        &[(joining.clone(), block.clone())],
        start,
        EVENT_TIMEOUT,
        "the joining node's block",
    )?;
    blocks.entry(joining.clone()).or_default().push(block);
    println!(
        "  {joining} joined: its block routed everywhere after {:.2} s",
        join.as_secs_f64()
    );

    // Pods, round-robin over the nodes: alternately in an existing and a new block.
    let mut new_block = Vec::new();
    let mut existing_block = Vec::new();
    let mut pods = 0;
    while new_block.len() < o.samples || existing_block.len() < o.samples {
        let node = &nodes[pods % nodes.len()];
        let (v, took) = match add_pod_timed(&mut cluster, &watches, &mut blocks, node, &mut pods)? {
            Added::NewBlock(t) => (&mut new_block, t),
            Added::ExistingBlock(t) => (&mut existing_block, t),
        };
        if v.len() < o.samples {
            v.push(took);
        }
    }

    // node1's bgpd restarts; graceful restart should keep every route in every kernel.
    for w in watches.values() {
        w.reset_deleted();
    }
    let node1 = nodes[0].clone();
    let peers = if rrs.is_empty() { o.nodes } else { rrs.len() };
    let socket = cluster.node(&node1)?.bgp_socket(cluster.work.path());
    let socket = socket.to_str().context("socket path")?.to_string();
    let eor_sent = |cluster: &Cluster| {
        cluster.node(&node1).map_or(0, |n| {
            n.daemons
                .iter()
                .find(|d| d.name() == format!("{node1}/bgpd"))
                .map_or(0, |d| d.log_text().matches(END_OF_RIB_SENT).count())
        })
    };
    let eor_before = eor_sent(&cluster);
    cluster.restart_daemon(
        &node1,
        "bgpd",
        &["--datastore", "--control-socket", &socket],
        false,
    )?;
    let start = Instant::now();
    let established = || -> usize {
        let ns = &cluster.node(&node1).expect("node1").ns;
        cluster
            .calicoctl_in(ns, &["node", "status", "--socket", &socket], None)
            .map(|o| o.matches("Established").count())
            .unwrap_or(0)
    };
    crate::daemon::wait_until(
        "node1's sessions after its bgpd restarted",
        EVENT_TIMEOUT,
        || established() >= peers,
    )?;
    let restart = start.elapsed();
    // Count the routes lost once every deletion the restart could cause has happened,
    // known from events: node1 sends End-of-RIB once every peer's has come (its FIB
    // sweep of what it did not learn again is queued by then); a new block of node1,
    // routed everywhere, follows that End-of-RIB on every session, so every peer has
    // dropped what it would of node1's; a new block of node2 reaches node1's kernel
    // through the FIB queue after the sweep.
    crate::daemon::wait_until(
        "node1's End-of-RIB after its restart",
        EVENT_TIMEOUT,
        || eor_sent(&cluster) > eor_before,
    )?;
    for node in [&node1, &nodes[1 % nodes.len()]] {
        while let Added::ExistingBlock(_) =
            add_pod_timed(&mut cluster, &watches, &mut blocks, node, &mut pods)?
        {}
    }
    let restart_routes_lost = watches.values().map(|w| w.seen().bgp_deleted).sum();
    println!(
        "  node1's bgpd restarted: {peers} sessions Established after {:.2} s, {restart_routes_lost} BGP routes lost meanwhile",
        restart.as_secs_f64()
    );

    let idle_kib: Vec<u64> = cluster.nodes.iter().map(node_rss_kib).collect();
    let on_node1 = cluster.pods.iter().filter(|p| p.node == node1).count();
    for i in on_node1..o.pods_on_one_node {
        cluster.add_pod(&node1, "default", &format!("m{i}"))?;
    }
    let with_pods_kib = node_rss_kib(cluster.node(&node1)?);
    drop(watches);
    Ok(Report {
        options: o.clone(),
        ready,
        join,
        new_block,
        existing_block,
        restart,
        restart_routes_lost,
        idle_kib,
        with_pods_kib,
    })
}

/// The kernel's neighbour (ARP) table limits, one set for all namespaces: 50 nodes each
/// resolving the other 49 pass the default 1,024 entries, and the kernel then fails to
/// add neighbours ("neighbor table overflow") and drops what is sent to them, which
/// stalls BGP sessions until their hold timers expire. A real node has a table of its
/// own, so this is an artifact of one machine hosting all nodes: the limits are raised
/// for the run when too low, and restored on drop (not when a signal kills the process).
struct NeighbourLimits {
    saved: Option<Vec<String>>,
}

const NEIGH_THRESH: [&str; 3] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh1",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
];

impl NeighbourLimits {
    fn at_least(entries: usize) -> Result<NeighbourLimits> {
        let saved = NEIGH_THRESH
            .iter()
            .map(|p| std::fs::read_to_string(p).map(|v| v.trim().to_string()))
            .collect::<std::io::Result<Vec<String>>>()
            .context("reading the neighbour table limits")?;
        let hard: usize = saved[2].parse().context("gc_thresh3")?;
        if hard >= entries {
            return Ok(NeighbourLimits { saved: None });
        }
        let want = entries.next_power_of_two();
        for (p, v) in NEIGH_THRESH.iter().zip([want / 4, want / 2, want]) {
            std::fs::write(p, v.to_string()).with_context(|| format!("writing {p}"))?;
        }
        println!(
            "  the kernel's neighbour table limit (shared by all namespaces) raised from {hard} to {want} entries for this run"
        );
        Ok(NeighbourLimits { saved: Some(saved) })
    }
}

impl Drop for NeighbourLimits {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            for (p, v) in NEIGH_THRESH.iter().zip(saved) {
                let _ = std::fs::write(p, v);
            }
        }
    }
}

/// What bgpd logs once its deferred selection is over and End-of-RIB is out.
const END_OF_RIB_SENT: &str = "End-of-RIB sent";

/// A pod ADD and how long its route took (see [`add_pod_timed`]).
enum Added {
    /// It claimed a new block: until the block's route is on every other node.
    NewBlock(Duration),
    /// It landed in a block its node had: until its /32 is on its node.
    ExistingBlock(Duration),
}

/// Adds pod `s<n>` on `node` (`n` counts the pods added this way) and waits for its
/// route; `blocks` (each node's blocks) learns a new block.
fn add_pod_timed(
    cluster: &mut Cluster,
    watches: &BTreeMap<String, RouteWatch>,
    blocks: &mut BTreeMap<String, Vec<String>>,
    node: &str,
    n: &mut usize,
) -> Result<Added> {
    *n += 1;
    let start = Instant::now();
    let ip = cluster.add_pod(node, "default", &format!("s{n}"))?;
    let block = block_of(&ip)?;
    let owned = blocks.entry(node.to_string()).or_default();
    if owned.contains(&block) {
        let took = first_seen(&watches[node], &ip, start, EVENT_TIMEOUT)
            .with_context(|| format!("{node}: no route to pod {ip}"))?;
        return Ok(Added::ExistingBlock(took));
    }
    owned.push(block.clone());
    let wanted = [(node.to_string(), block)];
    let took = routed_everywhere(watches, &wanted, start, EVENT_TIMEOUT, "a new block")?;
    Ok(Added::NewBlock(took))
}

/// The /31 block holding `ip`.
fn block_of(ip: &str) -> Result<String> {
    let a: Ipv4Addr = ip.parse().with_context(|| format!("pod address {ip}"))?;
    let mask = u32::MAX << (32 - u32::from(BLOCK_SIZE));
    Ok(format!(
        "{}/{BLOCK_SIZE}",
        Ipv4Addr::from(u32::from(a) & mask)
    ))
}

/// Waits until every node but a block's owner has a BGP route to it; the time from
/// `start` to the last of those routes.
fn routed_everywhere(
    watches: &BTreeMap<String, RouteWatch>,
    blocks: &[(String, String)],
    start: Instant,
    timeout: Duration,
    what: &str,
) -> Result<Duration> {
    loop {
        let mut last = start;
        let mut missing: Vec<String> = Vec::new();
        for (owner, block) in blocks {
            for (node, w) in watches.iter().filter(|(n, _)| *n != owner) {
                let seen = w.seen();
                match seen
                    .first
                    .get(block)
                    .filter(|_| seen.present.contains(block))
                {
                    Some(t) => last = last.max(*t),
                    None => missing.push(format!("{node} has no route to {owner}'s {block}")),
                }
            }
        }
        let missing = (!missing.is_empty()).then(|| {
            let n = missing.len();
            let shown: Vec<String> = missing.into_iter().take(5).collect();
            format!("{n} missing: {}", shown.join("; "))
        });
        match missing {
            None => return Ok(last - start),
            Some(m) if start.elapsed() > timeout => {
                bail!("{what}: not routed everywhere within {timeout:?}: {m}")
            }
            Some(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Waits for `route` on one node; the time from `start` to when it was added.
fn first_seen(w: &RouteWatch, route: &str, start: Instant, timeout: Duration) -> Result<Duration> {
    loop {
        if let Some(t) = w.seen().first.get(route) {
            return Ok(t.saturating_duration_since(start));
        }
        if start.elapsed() > timeout {
            bail!("no route {route} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// felix's plus bgpd's resident memory on `node` (KiB).
fn node_rss_kib(node: &crate::Node) -> u64 {
    node.daemons
        .iter()
        .filter_map(|d| d.memory_kib().map(|(rss, _)| rss))
        .sum()
}

/// The `q` quantile (0..=1) of `v` by the nearest-rank method.
pub fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

impl Report {
    pub fn print(&self) {
        let o = &self.options;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mode = if o.route_reflectors == 0 {
            "full mesh".to_string()
        } else {
            format!("{} route reflectors", o.route_reflectors)
        };
        println!("\n{} nodes, {mode}, /{BLOCK_SIZE} blocks", o.nodes);
        println!("| measure | figure |\n|---|---|");
        println!(
            "| ready: daemons started -> every node routes every block | {:.2} s |",
            self.ready.as_secs_f64()
        );
        println!(
            "| node joins: daemons started -> its first block routed on all others | {:.0} ms |",
            ms(self.join)
        );
        for (name, v) in [
            (
                "pod ADD claiming a new block -> route on all other nodes",
                &self.new_block,
            ),
            (
                "pod ADD in an existing block -> its /32 on its node",
                &self.existing_block,
            ),
        ] {
            println!(
                "| {name} ({} pods) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
                v.len(),
                ms(quantile(v, 0.5)),
                ms(quantile(v, 0.99)),
                ms(quantile(v, 1.0))
            );
        }
        println!(
            "| node1's bgpd restarted -> sessions Established | {:.2} s, {} BGP routes lost in any kernel |",
            self.restart.as_secs_f64(),
            self.restart_routes_lost
        );
        let mut idle = self.idle_kib.clone();
        idle.sort_unstable();
        let mib = |k: u64| k as f64 / 1024.0;
        println!(
            "| felix + bgpd RSS per node, 1-2 pods | median {:.1} MiB, max {:.1} MiB |",
            mib(idle.get(idle.len() / 2).copied().unwrap_or(0)),
            mib(idle.last().copied().unwrap_or(0))
        );
        println!(
            "| felix + bgpd RSS, node1 with {} pods | {:.1} MiB |",
            o.pods_on_one_node,
            mib(self.with_pods_kib)
        );
        let p99 = ms(quantile(&self.new_block, 0.99));
        println!(
            "target (new block -> route on all other nodes, p99 < 200 ms): {p99:.0} ms {}",
            if p99 < 200.0 { "met" } else { "NOT met" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_of_masks_to_the_block() {
        assert_eq!(block_of("10.244.7.9").unwrap(), "10.244.7.8/31");
        assert_eq!(block_of("10.244.7.8").unwrap(), "10.244.7.8/31");
        assert!(block_of("nope").is_err());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
