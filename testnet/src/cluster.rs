//! A virtual cluster: a fabric namespace holding a bridge (the "physical network") and
//! etcd, one namespace per node with `eth0` on the bridge, and pods wired by the real CNI
//! plugin. Everything lives in namespaces named with the run's prefix and is removed on
//! drop; nothing touches the root namespace's network.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::daemon::{Daemon, wait_until};
use crate::kube::Kube;
use crate::netns::{Netns, run_prefix};

/// The fabric's subnet; the bridge (and etcd) is .1, nodes from .11 up.
pub const FABRIC_PREFIX_LEN: u8 = 16;
pub const FABRIC_GATEWAY: &str = "172.18.0.1";
pub const ETCD_PORT: u16 = 2379;
/// The network name Calico's conflist uses; IPAM handles are `<network>.<containerID>`.
pub const CNI_NETWORK: &str = "k8s-pod-network";

/// Where the project's binaries are: `TESTNET_BIN_DIR`, else next to this executable
/// (or its parent, for cargo's `deps/` test binaries), else the debug build beside a
/// release one (benchmarks run from `target/release/deps` over `cargo build --bins`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TESTNET_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current executable");
    let dir = exe.parent().expect("executable directory").to_path_buf();
    let parent = dir.parent().map(Path::to_path_buf).unwrap_or(dir.clone());
    let debug = parent.parent().map(|t| t.join("debug"));
    [Some(dir), Some(parent.clone()), debug]
        .into_iter()
        .flatten()
        .find(|d| d.join("calicoctl").exists())
        .unwrap_or(parent)
}

pub struct Node {
    pub name: String,
    pub ip: String,
    /// The prefix length of the node's subnet (16 on the flat fabric, 24 on a routed one).
    pub prefix_len: u8,
    pub ns: Netns,
    pub daemons: Vec<Daemon>,
}

impl Node {
    /// The BGP daemon's control socket of this node.
    pub fn bgp_socket(&self, work: &Path) -> PathBuf {
        work.join(format!("{}-bird.ctl", self.name))
    }
}

pub struct Pod {
    pub node: String,
    pub namespace: String,
    pub name: String,
    pub container_id: String,
    pub ip: String,
    pub ns: Netns,
}

pub struct Cluster {
    pub prefix: String,
    pub work: tempfile_dir::Dir,
    // Drop order matters: pods, then node daemons, then nodes, then etcd and the fabric.
    pub pods: Vec<Pod>,
    /// Kubernetes namespaces whose `kns.` profile exists.
    pub namespaces: Vec<String>,
    pub nodes: Vec<Node>,
    /// The API server and kube-controllers, in Kubernetes mode.
    pub kube: Option<Kube>,
    /// The etcd members, in member order (one unless created with more).
    pub etcd: Vec<Daemon>,
    etcd_members: usize,
    pub fabric: Netns,
    bins: PathBuf,
}

/// A private working directory removed on drop (logs, sockets, etcd data).
pub mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> std::io::Result<Dir> {
            let path = std::env::temp_dir().join(format!("{prefix}-work"));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path)?;
            Ok(Dir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if std::env::var_os("TESTNET_KEEP_WORK").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}

/// The Calico Node resource of `node`, with its fabric address and `labels[node]`.
fn node_manifest(node: &Node, labels: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut label_text = String::new();
    for (k, v) in labels.get(&node.name).into_iter().flatten() {
        label_text.push_str(&format!("\n    {k}: \"{v}\""));
    }
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {}\n  labels:\n    kubernetes.io/hostname: {}{label_text}\nspec:\n  bgp:\n    ipv4Address: {}/{}\n---\n",
        node.name, node.name, node.ip, node.prefix_len
    )
}

impl Cluster {
    /// Creates the fabric (bridge + etcd) and no nodes yet.
    pub fn create() -> Result<Cluster> {
        Self::create_with_etcd_members(1)
    }

    /// Like [`create`](Self::create), with the datastore as operators run it: `members`
    /// etcd members (on the fabric's gateway address, client ports 2379, 12379, 22379, ...),
    /// and every client given all of them.
    pub fn create_with_etcd_members(members: usize) -> Result<Cluster> {
        let bins = bin_dir();
        for program in ["calicoctl", "calico", "calico-ipam"] {
            if !bins.join(program).exists() {
                bail!(
                    "{} is missing: build the workspace binaries first (cargo build --bins) \
                     or point TESTNET_BIN_DIR at them",
                    bins.join(program).display()
                );
            }
        }
        let prefix = run_prefix();
        let work = tempfile_dir::Dir::new(&prefix)?;
        let fabric = Netns::create(&format!("{prefix}-fab"))?;
        fabric.try_ip(&["link", "add", "br0", "type", "bridge"])?;
        fabric.try_ip(&[
            "addr",
            "add",
            &format!("{FABRIC_GATEWAY}/{FABRIC_PREFIX_LEN}"),
            "dev",
            "br0",
        ])?;
        fabric.try_ip(&["link", "set", "br0", "up"])?;
        let mut cluster = Cluster {
            prefix,
            work,
            pods: Vec::new(),
            namespaces: Vec::new(),
            nodes: Vec::new(),
            kube: None,
            etcd: Vec::new(),
            etcd_members: members.max(1),
            fabric,
            bins,
        };
        cluster.start_etcd()?;
        Ok(cluster)
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    /// Every etcd member's client URL, comma-separated (`ETCD_ENDPOINTS`).
    pub fn etcd_endpoint(&self) -> String {
        (0..self.etcd_members)
            .map(|i| member_url(i, ETCD_PORT))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Stops etcd and starts it again on the same data (an etcd restart or outage).
    pub fn restart_etcd(&mut self, down_for: Duration) -> Result<()> {
        for mut member in self.etcd.drain(..) {
            member.stop(Duration::from_secs(5));
        }
        std::thread::sleep(down_for);
        self.start_etcd()
    }

    /// The member that leads the etcd cluster now, as `etcdctl endpoint status` reports it.
    pub fn etcd_leader(&self) -> Result<usize> {
        let out = self
            .fabric
            .command("etcdctl")
            .args(["--endpoints", &self.etcd_endpoint()])
            .args(["endpoint", "status", "-w", "json"])
            .output()?;
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "etcdctl endpoint status: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let entries = status.as_array().context("etcdctl status is not a list")?;
        entries
            .iter()
            .position(|e| {
                let s = &e["Status"];
                s["header"]["member_id"].is_u64() && s["header"]["member_id"] == s["leader"]
            })
            .context("no member reports itself leader")
    }

    /// Kills etcd member `i` (as a crash would); it stays down.
    pub fn kill_etcd_member(&mut self, i: usize) {
        self.etcd[i].kill();
    }

    fn start_etcd(&mut self) -> Result<()> {
        let n = self.etcd_members;
        let peer = |i: usize| format!("http://127.0.0.1:{}", ETCD_PORT + 1 + 10_000 * i as u16);
        let initial: Vec<String> = (0..n).map(|i| format!("m{i}={}", peer(i))).collect();
        for i in 0..n {
            let client = member_url(i, ETCD_PORT);
            let port = ETCD_PORT + 10_000 * i as u16;
            let data = self.work.path().join(format!("etcd-m{i}"));
            let mut cmd = self.fabric.command("etcd");
            cmd.args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(&data)
                .args([
                    "--listen-client-urls",
                    &format!("{client},http://127.0.0.1:{port}"),
                    "--advertise-client-urls",
                    &client,
                    "--listen-peer-urls",
                    &peer(i),
                    "--initial-advertise-peer-urls",
                    &peer(i),
                    "--initial-cluster",
                    &initial.join(","),
                    "--initial-cluster-token",
                    "testnet",
                ]);
            if n > 1 {
                // Short heartbeats: a lost leader is replaced within a second.
                cmd.args(["--heartbeat-interval", "50", "--election-timeout", "500"]);
            }
            let log = self.work.path().join(format!("etcd-m{i}.log"));
            self.etcd
                .push(Daemon::spawn(&format!("etcd-m{i}"), cmd, &log)?);
        }
        let client = self.etcd_endpoint();
        let fabric = &self.fabric;
        wait_until("etcd to answer", Duration::from_secs(15), || {
            fabric
                .command("etcdctl")
                .args(["--endpoints", &client, "endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Adds a node namespace with `eth0` on the fabric and forwarding on, and returns its IP.
    pub fn add_node(&mut self, name: &str) -> Result<String> {
        let ip = format!("172.18.0.{}", 10 + self.nodes.len() + 1);
        self.attach_node(name, "br0", &ip, FABRIC_PREFIX_LEN, FABRIC_GATEWAY)
    }

    /// Adds a node on routed subnet `subnet` (1-254): `172.18.<subnet>.0/24`, its own
    /// bridge in the fabric namespace, which routes between the subnets (and reaches etcd)
    /// but knows no pod address: a fabric that does not carry pod routes, as across racks
    /// or in most clouds.
    pub fn add_node_in_subnet(&mut self, name: &str, subnet: u8) -> Result<String> {
        anyhow::ensure!(subnet != 0, "subnet 0 is the flat fabric's");
        let bridge = format!("br{subnet}");
        let gateway = format!("172.18.{subnet}.1");
        if self.fabric.try_ip(&["link", "show", &bridge]).is_err() {
            self.fabric
                .try_ip(&["link", "add", &bridge, "type", "bridge"])?;
            self.fabric
                .try_ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge])?;
            self.fabric.try_ip(&["link", "set", &bridge, "up"])?;
            self.fabric.sysctl("net.ipv4.ip_forward", "1")?;
        }
        let ip = format!("172.18.{subnet}.{}", 10 + self.nodes.len() + 1);
        self.attach_node(name, &bridge, &ip, 24, &gateway)
    }

    fn attach_node(
        &mut self,
        name: &str,
        bridge: &str,
        ip: &str,
        prefix_len: u8,
        gateway: &str,
    ) -> Result<String> {
        let index = self.nodes.len() + 1;
        let ns = Netns::create(&format!("{}-{name}", self.prefix))?;
        let fabric_side = format!("{}v{index}", self.prefix);
        ns.veth_to("eth0", &self.fabric, &fabric_side)?;
        self.fabric
            .try_ip(&["link", "set", &fabric_side, "master", bridge, "up"])?;
        ns.addr_up("eth0", &format!("{ip}/{prefix_len}"))?;
        // Like a real node, a default gateway: proxy ARP on the cali interfaces answers
        // for 169.254.1.1 only when the node has a route to it.
        ns.try_ip(&["route", "add", "default", "via", gateway, "dev", "eth0"])?;
        ns.sysctl("net.ipv4.ip_forward", "1")?;
        self.nodes.push(Node {
            name: name.to_string(),
            ip: ip.to_string(),
            prefix_len,
            ns,
            daemons: Vec::new(),
        });
        Ok(ip.to_string())
    }

    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("no node {name}"))
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .with_context(|| format!("no node {name}"))
    }

    /// Runs calicoctl inside the fabric namespace (where etcd is), returning stdout.
    pub fn calicoctl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let ns = &self.fabric;
        self.calicoctl_in(ns, args, stdin)
    }

    /// Runs calicoctl inside `ns` (e.g. a node, for `node status`).
    pub fn calicoctl_in(&self, ns: &Netns, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut cmd = ns.command(self.bin("calicoctl").to_str().unwrap());
        cmd.args(args)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", self.etcd_endpoint());
        run_with_stdin("calicoctl", args, cmd, stdin)
    }

    /// Registers each node as a Calico Node resource with its fabric address.
    pub fn apply_nodes(&self, labels: &BTreeMap<String, BTreeMap<String, String>>) -> Result<()> {
        let docs: String = self
            .nodes
            .iter()
            .map(|n| node_manifest(n, labels))
            .collect();
        self.calicoctl(&["apply", "-f", "-"], Some(&docs)).map(drop)
    }

    /// Registers one node (added after the others, whose resources stay as they are).
    pub fn apply_node(
        &self,
        name: &str,
        labels: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<()> {
        let doc = node_manifest(self.node(name)?, labels);
        self.calicoctl(&["apply", "-f", "-"], Some(&doc)).map(drop)
    }

    /// Starts a daemon inside a node's namespace with the cluster's datastore settings.
    pub fn start_daemon(
        &mut self,
        node: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Result<()> {
        let bin = self.bin(program);
        let endpoint = self.etcd_endpoint();
        let log = self.work.path().join(format!("{node}-{program}.log"));
        let mtu_file = self.mtu_file(node);
        let n = self.node_mut(node)?;
        let mut cmd = n.ns.command(bin.to_str().unwrap());
        cmd.args(args)
            .env("NODENAME", node)
            .env("ETCD_ENDPOINTS", endpoint)
            .env("LOG_LEVEL", "info")
            // Each node's own pod MTU file (they share one file system).
            .env("FELIX_MTUFILE", &mtu_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let daemon = Daemon::spawn(&format!("{node}/{program}"), cmd, &log)?;
        n.daemons.push(daemon);
        Ok(())
    }

    /// Stops a node's daemon (`program`, e.g. "bgpd") with SIGTERM, or SIGKILL when `crash`,
    /// and starts it again with `args` (as it was started: see [`scenario::build`]).
    ///
    /// [`scenario::build`]: crate::scenario::build
    pub fn restart_daemon(
        &mut self,
        node: &str,
        program: &str,
        args: &[&str],
        crash: bool,
    ) -> Result<()> {
        let name = format!("{node}/{program}");
        let n = self.node_mut(node)?;
        let i = n
            .daemons
            .iter()
            .position(|d| d.name() == name)
            .with_context(|| format!("no {name} running"))?;
        let mut old = n.daemons.remove(i);
        if crash {
            old.kill();
        } else {
            old.stop(Duration::from_secs(10));
        }
        drop(old);
        self.start_daemon(node, program, args, &[])
    }

    /// Creates the namespace's `kns.<ns>` profile (allow all, namespace label) as Calico's
    /// kube-controllers does for every Kubernetes namespace, once; in Kubernetes mode the
    /// Namespace object, and kube-controllers writes the profile.
    fn ensure_namespace(&mut self, namespace: &str) -> Result<()> {
        if self.namespaces.iter().any(|n| n == namespace) {
            return Ok(());
        }
        if self.kube.is_some() {
            self.create_namespace_object(namespace)?;
            self.namespaces.push(namespace.to_string());
            return Ok(());
        }
        let profile = format!(
            "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: kns.{namespace}\nspec:\n  ingress:\n  - action: Allow\n  egress:\n  - action: Allow\n  labelsToApply:\n    projectcalico.org/name: {namespace}\n"
        );
        self.calicoctl(&["apply", "-f", "-"], Some(&profile))?;
        self.namespaces.push(namespace.to_string());
        Ok(())
    }

    /// Wires a pod with the real CNI plugin (`calico` + `calico-ipam`), as kubelet would.
    pub fn add_pod(&mut self, node: &str, namespace: &str, name: &str) -> Result<String> {
        self.add_labelled_pod(node, namespace, name, &BTreeMap::new())
    }

    /// Like [`add_pod`](Self::add_pod); in Kubernetes mode the Pod object (with `labels`)
    /// is created first and the plugin reads it from the API server.
    pub fn add_labelled_pod(
        &mut self,
        node: &str,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.ensure_namespace(namespace)?;
        if self.kube.is_some() {
            self.create_pod_object(node, namespace, name, labels)?;
        }
        let container_id = format!("{}{:04}{name}", self.prefix, self.pods.len());
        let ns = Netns::create(&format!("{}-pod-{}", self.prefix, self.pods.len()))?;
        let conf = self.cni_config(node);
        let out = self.cni(node, "ADD", &container_id, &ns, namespace, name, &conf)?;
        let result: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("CNI result is not JSON: {out}"))?;
        let address = result["ips"][0]["address"]
            .as_str()
            .with_context(|| format!("CNI result has no IP: {out}"))?;
        let ip = address.split('/').next().unwrap_or(address).to_string();
        self.pods.push(Pod {
            node: node.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            container_id,
            ip: ip.clone(),
            ns,
        });
        Ok(ip)
    }

    /// Where `node`'s felix writes the pod MTU and its CNI plugin reads it.
    pub fn mtu_file(&self, node: &str) -> PathBuf {
        self.work.path().join(format!("{node}-mtu"))
    }

    fn cni_config(&self, node: &str) -> String {
        let mut conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "type": "calico",
            "etcd_endpoints": self.etcd_endpoint(),
            "nodename": node,
            // No "mtu": the pods follow what the node's felix wrote (the overlay's).
            "mtu_file": self.mtu_file(node),
            "log_level": "warn",
            "ipam": {
                "type": "calico-ipam",
                "hint_dir": self.work.path().join("ipam-hints"),
            }
        });
        if let Ok(kubeconfig) = self.kubeconfig() {
            conf["kubernetes"] = serde_json::json!({ "kubeconfig": kubeconfig });
            conf["policy"] = serde_json::json!({ "type": "k8s" });
        }
        conf.to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn cni(
        &self,
        node: &str,
        command: &str,
        container_id: &str,
        pod_ns: &Netns,
        namespace: &str,
        pod: &str,
        conf: &str,
    ) -> Result<String> {
        let n = self.node(node)?;
        let mut cmd = n.ns.command(self.bin("calico").to_str().unwrap());
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", pod_ns.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.bins)
            .env(
                "CNI_ARGS",
                format!("K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={container_id}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("cannot run the calico CNI plugin")?;
        child.stdin.take().unwrap().write_all(conf.as_bytes())?;
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            bail!(
                "CNI {command} of {namespace}/{pod} on {node} failed: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Removes a pod with CNI DEL, as kubelet would.
    pub fn delete_pod(&mut self, name: &str) -> Result<()> {
        let idx = self
            .pods
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("no pod {name}"))?;
        let pod = self.pods.remove(idx);
        let conf = self.cni_config(&pod.node);
        self.cni(
            &pod.node,
            "DEL",
            &pod.container_id,
            &pod.ns,
            &pod.namespace,
            &pod.name,
            &conf,
        )
        .map(drop)
    }

    pub fn pod(&self, name: &str) -> Result<&Pod> {
        self.pods
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no pod {name}"))
    }

    /// `ping -c COUNT -W 1` from a pod; true when every reply came back.
    pub fn ping(&self, from_pod: &str, to_ip: &str, count: u32) -> Result<bool> {
        let pod = self.pod(from_pod)?;
        let status = pod
            .ns
            .command("ping")
            .args([
                "-c",
                &count.to_string(),
                "-W",
                "1",
                "-i",
                "0.2",
                "-q",
                to_ip,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status.success())
    }

    /// Output of `ip route` inside a node.
    pub fn routes(&self, node: &str) -> Result<String> {
        Ok(self.node(node)?.ns.try_ip(&["route", "show"])?)
    }

    /// `calicoctl patch bgpconfiguration default -p <patch>` (a JSON merge patch).
    pub fn patch_bgp_configuration(&self, patch: &str) -> Result<String> {
        self.calicoctl(&["patch", "bgpconfiguration", "default", "-p", patch], None)
    }

    /// The first block `node` owns, as felix programmed it (its blackhole route).
    pub fn node_block(&self, node: &str) -> Result<Option<String>> {
        Ok(self.routes(node)?.lines().find_map(|l| {
            l.strip_prefix("blackhole ")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        }))
    }
}

/// Runs `cmd` (the tool `what` with `args`) with `stdin` as its input; its stdout, or an
/// error with its output when it fails.
pub(crate) fn run_with_stdin(
    what: &str,
    args: &[&str],
    mut cmd: std::process::Command,
    stdin: Option<&str>,
) -> Result<String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes())?;
    }
    drop(pipe);
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "{what} {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // CNI DEL for every pod still present, so IPAM and interfaces are released the
        // way kubelet would; then daemons stop before their namespaces go.
        let names: Vec<String> = self.pods.iter().map(|p| p.name.clone()).collect();
        for name in names {
            let _ = self.delete_pod(&name);
        }
        for node in &mut self.nodes {
            for d in &mut node.daemons {
                d.stop(Duration::from_secs(5));
            }
        }
        self.nodes.clear();
        self.kube = None;
        for mut member in self.etcd.drain(..) {
            member.stop(Duration::from_secs(5));
        }
    }
}

/// Client URL of etcd member `i` on the fabric's gateway address.
fn member_url(i: usize, base_port: u16) -> String {
    format!("http://{FABRIC_GATEWAY}:{}", base_port + 10_000 * i as u16)
}
