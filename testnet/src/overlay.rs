//! The routed-fabric scenario: nodes in two subnets joined by the fabric namespace as a
//! router that knows the node subnets only (no pod routes, no BGP), the way racks or
//! cloud subnets are joined. node1 and node2 share 172.18.1.0/24, node3 is alone on
//! 172.18.2.0/24; one pod per node. With the pool in BGP-only mode cross-subnet pods
//! cannot reach each other (the fabric drops pod addresses); with VXLAN they can, and
//! with CrossSubnet only the cross-subnet traffic is encapsulated.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::Cluster;

/// The pool's encapsulation (IPPool `vxlanMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// `Never`: BGP only.
    Bgp,
    VxlanAlways,
    VxlanCrossSubnet,
    /// `ipipMode: Always` (`vxlanMode: Never`).
    IpipAlways,
}

impl PoolMode {
    pub fn vxlan_mode(self) -> &'static str {
        match self {
            PoolMode::Bgp | PoolMode::IpipAlways => "Never",
            PoolMode::VxlanAlways => "Always",
            PoolMode::VxlanCrossSubnet => "CrossSubnet",
        }
    }

    pub fn ipip_mode(self) -> &'static str {
        match self {
            PoolMode::IpipAlways => "Always",
            _ => "Never",
        }
    }
}

pub use crate::scenario::POOL_CIDR;
/// VXLAN's UDP port (Calico's `vxlanPort` default).
pub const VXLAN_PORT: u16 = 4789;

/// (node, subnet): node1 and node2 on subnet 1, node3 on subnet 2.
pub const NODES: [(&str, u8); 3] = [("node1", 1), ("node2", 1), ("node3", 2)];

fn manifest(mode: PoolMode) -> String {
    crate::scenario::cluster_manifest_with(
        true,
        &format!(
            "  vxlanMode: {}\n  ipipMode: {}\n",
            mode.vxlan_mode(),
            mode.ipip_mode()
        ),
    )
}

/// Builds the routed cluster with felix and bgpd on every node and one pod per node
/// (`pod-<n>-1`).
pub fn build_routed(mode: PoolMode) -> Result<Cluster> {
    let mut cluster = Cluster::create()?;
    for (name, subnet) in NODES {
        cluster.add_node_in_subnet(name, subnet)?;
    }
    cluster.calicoctl(&["apply", "-f", "-"], Some(&manifest(mode)))?;
    cluster.apply_nodes(&Default::default())?;
    for (name, _) in NODES {
        crate::scenario::start_node_daemons(&mut cluster, name)?;
    }
    // Pods take their MTU from felix (the overlay's): wait until each felix wrote it.
    for (name, _) in NODES {
        let file = cluster.mtu_file(name);
        crate::daemon::wait_until(
            &format!("{name}'s felix to write its pod MTU"),
            Duration::from_secs(30),
            || file.exists(),
        )?;
    }
    for (i, (name, _)) in NODES.iter().enumerate() {
        cluster.add_pod(name, "default", &format!("pod-{}-1", i + 1))?;
    }
    Ok(cluster)
}

/// Whether two nodes share a subnet in [`NODES`].
pub fn same_subnet(a: &str, b: &str) -> bool {
    let subnet = |n: &str| NODES.iter().find(|(name, _)| *name == n).map(|(_, s)| *s);
    subnet(a).is_some() && subnet(a) == subnet(b)
}

/// Waits until every node routes every other node's block the way `mode` says: through
/// `vxlan.calico` (VXLAN, or CrossSubnet across subnets), or straight to the node
/// (CrossSubnet within a subnet). Returns how long that took.
pub fn wait_overlay_routes(
    cluster: &Cluster,
    mode: PoolMode,
    timeout: Duration,
) -> Result<Duration> {
    anyhow::ensure!(
        matches!(mode, PoolMode::VxlanAlways | PoolMode::VxlanCrossSubnet),
        "only VXLAN modes have these routes"
    );
    let started = Instant::now();
    loop {
        let mut missing = Vec::new();
        for owner in &cluster.nodes {
            let Some(block) = cluster.node_block(&owner.name)? else {
                missing.push(format!("{}: no block yet", owner.name));
                continue;
            };
            for other in cluster.nodes.iter().filter(|n| n.name != owner.name) {
                let routes = cluster.routes(&other.name)?;
                let direct =
                    mode == PoolMode::VxlanCrossSubnet && same_subnet(&owner.name, &other.name);
                let found = routes.lines().any(|l| {
                    l.starts_with(&format!("{block} via "))
                        && if direct {
                            l.contains(&format!("via {} dev eth0", owner.ip))
                        } else {
                            l.contains("dev vxlan.calico") && l.contains("onlink")
                        }
                });
                if !found {
                    missing.push(format!(
                        "{}: {block} ({})",
                        other.name,
                        if direct { "direct" } else { "vxlan" }
                    ));
                }
            }
        }
        if missing.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "overlay routes missing after {timeout:?}:\n  {}",
                missing.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pings `to_ip` from `from_pod` while capturing UDP port 4789 on the fabric's bridge
/// for `subnet`; returns (ping ok, VXLAN packets seen). After the ping the fabric sends
/// one marker datagram to the subnet's first node on port 4789: tcpdump reports packets
/// in order, so once the marker shows, every packet of the ping has been counted (no
/// guessing how long tcpdump takes). Bounded in count and time.
pub fn ping_counting_vxlan(
    cluster: &Cluster,
    from_pod: &str,
    to_ip: &str,
    subnet: u8,
) -> Result<(bool, usize)> {
    let bridge = format!("br{subnet}");
    let gateway = format!("172.18.{subnet}.1");
    let marker_to = cluster
        .nodes
        .iter()
        .find(|n| n.ip.starts_with(&format!("172.18.{subnet}.")))
        .with_context(|| format!("no node on subnet {subnet}"))?
        .ip
        .clone();
    let mut capture = cluster
        .fabric
        .command("timeout")
        .args([
            "10",
            "tcpdump",
            "-n",
            "-l",
            "--immediate-mode",
            "-i",
            &bridge,
            "-c",
            "200",
            &format!("udp port {VXLAN_PORT}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running tcpdump (apt install tcpdump)")?;
    // tcpdump needs a moment to open the interface; it says so on stderr.
    wait_listening(&mut capture)?;
    let lines = line_channel(capture.stdout.take().context("tcpdump stdout")?);
    let ok = cluster.ping(from_pod, to_ip, 3)?;
    cluster
        .fabric
        .command("bash")
        .args([
            "-c",
            &format!("echo marker > /dev/udp/{marker_to}/{VXLAN_PORT}"),
        ])
        .status()?;
    let from_marker = format!("IP {gateway}.");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(&from_marker) => break Ok((ok, seen)),
            // The filter passes UDP 4789 only: every other line is a VXLAN packet.
            Ok(line) if !line.trim().is_empty() => seen += 1,
            Ok(_) => {}
            Err(_) => {
                break Err(anyhow::anyhow!(
                    "the marker never showed in tcpdump's capture"
                ));
            }
        }
    };
    interrupt(&capture);
    capture.wait()?;
    result
}

/// The lines `out` yields, from a reader thread (ends with the stream).
fn line_channel(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out)
            .lines()
            .map_while(std::io::Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_listening(child: &mut std::process::Child) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().context("tcpdump stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => {
                // Keep draining stderr so tcpdump never blocks on it.
                std::thread::spawn(move || for _ in lines {});
                return Ok(());
            }
            Some(Ok(_)) => continue,
            _ => break,
        }
    }
    bail!("tcpdump did not start listening")
}

/// Stops the capture with SIGINT (through `timeout`, which passes it on to tcpdump). A
/// capture that already ended (its count or time limit) has nothing to stop.
fn interrupt(child: &std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

/// Whether this kernel can make IPIP tunnels (the ipip module), tried in a throwaway
/// namespace.
pub fn kernel_has_ipip() -> bool {
    let Ok(ns) = crate::netns::Netns::create(&format!("{}-ipip", crate::netns::run_prefix()))
    else {
        return false;
    };
    ns.try_ip(&["link", "add", "ipiptry", "type", "ipip"])
        .is_ok()
}

/// felix's `/readiness` on `node` (its health port on the node's loopback): the HTTP
/// status line and body.
pub fn felix_readiness(cluster: &Cluster, node: &str) -> Result<String> {
    let n = cluster.node(node)?;
    let out = n
        .ns
        .command("bash")
        .args([
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/9099 && printf 'GET /readiness HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 5 cat <&3",
        ])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}
