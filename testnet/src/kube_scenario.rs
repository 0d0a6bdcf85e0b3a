//! The Kubernetes scenario the demo shows and the e2e tests assert: pods created as Pod
//! objects with labels, a Kubernetes NetworkPolicy applied with kubectl that lets
//! `app=client` reach `app=web` on TCP 8080 and nothing else, real TCP connections across
//! nodes showing allowed and denied, and a relabelled pod whose verdict flips live
//! (API server -> kube-controllers -> endpoint labels in etcd -> felix -> iptables).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cluster::Cluster;
use crate::daemon::Daemon;

pub const NAMESPACE: &str = "shop";
pub const WEB_PORT: u16 = 8080;
/// A second port on the web pod that the policy does not open.
pub const OTHER_PORT: u16 = 9090;
/// The longest a test TCP server lives, whatever happens to its owner.
const SERVER_LIFETIME_SECS: u32 = 900;

/// The NetworkPolicy: pods `app=web` accept TCP 8080 from pods `app=client` only.
pub const WEB_POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-client
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: client
    ports:
    - protocol: TCP
      port: 8080
";

/// Accepts connections, answers `ok` and closes, for at most its lifetime (bounded).
const SERVER: &str = "import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(64)
s.settimeout(1)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.sendall(b'ok')
    c.close()
";

/// Connects with a one-second timeout; exit 0 when the server answered `ok`.
const CLIENT: &str = "import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    sys.exit(0 if c.recv(2) == b'ok' else 1)
except OSError:
    sys.exit(1)
";

/// The pods of the scenario: (node, name, app label).
pub fn pods(nodes: usize) -> Vec<(String, &'static str, &'static str)> {
    let node = |i: usize| format!("node{}", (i % nodes) + 1);
    vec![
        (node(0), "web", "web"),
        (node(1), "client", "client"),
        (node(2), "other", "other"),
    ]
}

/// The scenario's TCP servers on the web pod, stopped when this is dropped.
pub struct WebServers {
    _servers: Vec<Daemon>,
}

/// Creates the namespace's pods through the API and CNI, and starts the web servers.
pub fn add_pods(cluster: &mut Cluster, nodes: usize) -> Result<WebServers> {
    for (node, name, app) in pods(nodes) {
        let labels = BTreeMap::from([("app".to_string(), app.to_string())]);
        cluster.add_labelled_pod(&node, NAMESPACE, name, &labels)?;
    }
    let web = cluster.pod("web")?;
    let mut servers = Vec::new();
    for port in [WEB_PORT, OTHER_PORT] {
        let mut cmd = web.ns.command("python3");
        cmd.args([
            "-c",
            SERVER,
            &port.to_string(),
            &SERVER_LIFETIME_SECS.to_string(),
        ]);
        let log = cluster.work.path().join(format!("web-{port}.log"));
        servers.push(Daemon::spawn(&format!("web:{port}"), cmd, &log)?);
    }
    Ok(WebServers { _servers: servers })
}

/// Whether a TCP connection from pod `from` to the web pod's `port` is answered.
pub fn connects(cluster: &Cluster, from: &str, port: u16) -> Result<bool> {
    let web_ip = cluster.pod("web")?.ip.clone();
    let status = cluster
        .pod(from)?
        .ns
        .command("python3")
        .args(["-c", CLIENT, &web_ip, &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running the TCP client")?;
    Ok(status.success())
}

/// One expected connection verdict: (from pod, port, allowed).
pub type Expect = (&'static str, u16, bool);

/// Polls until every connection has its expected verdict; returns how long that took,
/// or the rows that still differ when `timeout` passes.
pub fn wait_verdicts(cluster: &Cluster, table: &[Expect], timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let mut wrong = Vec::new();
        for &(from, port, want) in table {
            if connects(cluster, from, port)? != want {
                wrong.push(format!(
                    "{from} -> web:{port} should be {}",
                    if want { "allowed" } else { "denied" }
                ));
            }
        }
        if wrong.is_empty() {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "after {timeout:?}: {}",
            wrong.join("; ")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Verdicts with no policy: everything answers.
pub const OPEN: &[Expect] = &[
    ("client", WEB_PORT, true),
    ("other", WEB_PORT, true),
    ("client", OTHER_PORT, true),
];
/// Under [`WEB_POLICY`]: only the client, only on 8080.
pub const POLICED: &[Expect] = &[
    ("client", WEB_PORT, true),
    ("other", WEB_PORT, false),
    ("client", OTHER_PORT, false),
];
/// After `other` is relabelled `app=client`.
pub const RELABELLED: &[Expect] = &[("client", WEB_PORT, true), ("other", WEB_PORT, true)];

/// `kubectl label pod <pod> app=<app> --overwrite`.
pub fn relabel(cluster: &Cluster, pod: &str, app: &str) -> Result<()> {
    cluster
        .kubectl(
            &[
                "label",
                "pod",
                "-n",
                NAMESPACE,
                pod,
                &format!("app={app}"),
                "--overwrite",
            ],
            None,
        )
        .map(drop)
}

/// `kubectl apply` of [`WEB_POLICY`].
pub fn apply_policy(cluster: &Cluster) -> Result<()> {
    cluster
        .kubectl(&["apply", "-f", "-"], Some(WEB_POLICY))
        .map(drop)
}
