//! Harness for the daemon tests. NEEDS ROOT.
//!
//! A node is a named network namespace (`ip netns add <prefix>-node`) that holds
//! etcd (on its own 127.0.0.1, started by `config::testing::EtcdServer` from a
//! thread that joined the namespace) and the real `felix` binary. Pods are
//! further namespaces joined to the node by a veth pair made exactly as the CNI
//! plugin makes it (host side `cali<11 hex of sha1(ns.pod)>`, MAC
//! ee:ee:ee:ee:ee:ee; pod side `eth0` with `<ip>/32` and a default route via
//! 169.254.1.1). Every namespace and process is removed on drop, also when a
//! test panics; names carry a per-run prefix (pid + counter).

#![allow(dead_code)] // each test binary uses a different subset

pub mod probe;
#[path = "../support/mod.rs"]
mod support;
pub mod table;

pub use support::run;

use std::fs::File;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use config::datastore::Datastore;
use nix::sched::{CloneFlags, setns};
use sha1::{Digest, Sha1};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique short prefix for this run and call.
pub fn unique_prefix() -> String {
    format!(
        "fxd{}x{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `ip netns exec <ns> <cmd...>`.
pub fn ns_exec(ns: &str, cmd: &[&str]) -> String {
    let mut args = vec!["netns", "exec", ns];
    args.extend_from_slice(cmd);
    run("ip", &args)
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Self {
        run("ip", &["netns", "add", name]);
        let ns = Netns { name: name.into() };
        ns_exec(name, &["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A node namespace: like [`Netns::new`], plus a default route out of a
    /// veth whose peer is down (traffic to unknown destinations dies there).
    /// Proxy ARP answers a pod's ARP for 169.254.1.1 only when the node has a
    /// unicast route to it through another interface, as a real host's default
    /// route is.
    pub fn new_node(name: &str) -> Self {
        let ns = Self::new(name);
        ns.exec("ip link add upl0 type veth peer name upl1");
        ns.exec("ip link set upl0 up");
        ns.exec("ip route add default dev upl0");
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    pub fn exec(&self, cmd: &str) -> String {
        ns_exec(&self.name, &cmd.split_whitespace().collect::<Vec<_>>())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `f` on a new thread that joined namespace `ns`, with a current-thread
/// tokio runtime (so sockets and children it makes are in `ns`). Panics in `f`
/// are re-raised.
pub fn in_ns<F, Fut, T>(ns: &Netns, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let path = ns.path();
    let enter = move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns(CLONE_NEWNET) needs root");
    };
    support::on_thread_after(enter, f)
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub async fn eventually<F: FnMut() -> bool>(limit: Duration, what: &str, mut cond: F) {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The host-side interface name Calico's CNI plugin gives a pod.
pub fn cali_name(namespace: &str, pod: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    format!("cali{}", &hex::encode(digest)[..11])
}

/// A pod: its own namespace, veth into the node.
pub struct Pod {
    pub ns: Netns,
    pub namespace: String,
    pub name: String,
    pub ip: String,
    pub mac: String,
    pub iface: String,
}

impl Pod {
    /// Creates the pod namespace and the veth pair (host side in `node`).
    pub fn new(node: &Netns, namespace: &str, name: &str, ip: &str, index: u8) -> Self {
        let ns = Netns::new(&format!("{}-{name}", node.name));
        let iface = cali_name(namespace, name);
        let mac = format!("02:00:00:00:00:{index:02x}");
        let n = node.name.as_str();
        run(
            "ip",
            &[
                "-n", n, "link", "add", &iface, "type", "veth", "peer", "name", "eth0", "netns",
                &ns.name,
            ],
        );
        run(
            "ip",
            &[
                "-n",
                n,
                "link",
                "set",
                &iface,
                "address",
                "ee:ee:ee:ee:ee:ee",
            ],
        );
        run("ip", &["-n", n, "link", "set", &iface, "up"]);
        let p = ns.name.as_str();
        run("ip", &["-n", p, "link", "set", "eth0", "address", &mac]);
        run(
            "ip",
            &["-n", p, "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
        );
        run("ip", &["-n", p, "link", "set", "eth0", "up"]);
        run(
            "ip",
            &[
                "-n",
                p,
                "route",
                "add",
                "169.254.1.1",
                "dev",
                "eth0",
                "scope",
                "link",
            ],
        );
        run(
            "ip",
            &[
                "-n",
                p,
                "route",
                "add",
                "default",
                "via",
                "169.254.1.1",
                "dev",
                "eth0",
            ],
        );
        Pod {
            ns,
            namespace: namespace.into(),
            name: name.into(),
            ip: ip.into(),
            mac,
            iface,
        }
    }

    /// The WorkloadEndpoint name (`<node>-k8s-<pod>-eth0`, `-` doubled inside parts).
    pub fn wep_name(&self, node: &str) -> String {
        let d = |s: &str| s.replace('-', "--");
        format!("{}-k8s-{}-eth0", d(node), d(&self.name))
    }

    /// The WorkloadEndpoint JSON for this pod with `labels`.
    pub fn wep_json(&self, node: &str, labels: &[(&str, &str)]) -> serde_json::Value {
        wep_json(
            node,
            &self.namespace,
            &self.name,
            &self.ip,
            &self.iface,
            &self.mac,
            labels,
        )
    }
}

/// A WorkloadEndpoint as the CNI plugin writes it.
pub fn wep_json(
    node: &str,
    namespace: &str,
    pod: &str,
    ip: &str,
    iface: &str,
    mac: &str,
    labels: &[(&str, &str)],
) -> serde_json::Value {
    let d = |s: &str| s.replace('-', "--");
    let mut l = serde_json::Map::new();
    l.insert("projectcalico.org/namespace".into(), namespace.into());
    l.insert("projectcalico.org/orchestrator".into(), "k8s".into());
    for (k, v) in labels {
        l.insert((*k).into(), (*v).into());
    }
    serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("{}-k8s-{}-eth0", d(node), d(pod)), "namespace": namespace, "labels": l},
        "spec": {
            "node": node, "orchestrator": "k8s", "pod": pod, "endpoint": "eth0",
            "containerID": format!("cid-{pod}"),
            "interfaceName": iface, "mac": mac, "ipNetworks": [format!("{ip}/32")],
            "profiles": [format!("kns.{namespace}")]
        }
    })
}

/// Key helpers.
pub fn key(plural: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{}{plural}/{ns}/{name}", config::datastore::RESOURCE_ROOT),
        None => format!("{}{plural}/{name}", config::datastore::RESOURCE_ROOT),
    }
}

/// Writes `value` at `key` (create or overwrite).
pub async fn put(ds: &Datastore, key: &str, value: &[u8]) {
    match ds.get_raw(key).await.expect("etcd get") {
        Some(kv) => ds
            .update_raw(key, value.to_vec(), kv.mod_revision)
            .await
            .map(|_| ())
            .unwrap_or_else(|e| panic!("update {key}: {e}")),
        None => ds
            .create_raw(key, value.to_vec())
            .await
            .map(|_| ())
            .unwrap_or_else(|e| panic!("create {key}: {e}")),
    }
}

pub async fn put_json(ds: &Datastore, key: &str, value: &serde_json::Value) {
    put(ds, key, value.to_string().as_bytes()).await
}

pub async fn delete(ds: &Datastore, key: &str) {
    ds.delete_raw(key, None)
        .await
        .unwrap_or_else(|e| panic!("delete {key}: {e}"));
}

/// Writes the `kns.<namespace>` profile (see [`kns_profile`]).
pub async fn put_kns_profile(ds: &Datastore, namespace: &str, labels: &[(&str, &str)]) {
    let name = format!("kns.{namespace}");
    put_json(
        ds,
        &key("profiles", None, &name),
        &kns_profile(namespace, labels),
    )
    .await
}

/// The namespace profile Calico keeps per Kubernetes namespace: allow all,
/// namespace labels as `pcns.` labels.
pub fn kns_profile(namespace: &str, labels: &[(&str, &str)]) -> serde_json::Value {
    let mut l = serde_json::Map::new();
    l.insert("pcns.projectcalico.org/name".into(), namespace.into());
    for (k, v) in labels {
        l.insert(format!("pcns.{k}"), (*v).into());
    }
    serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Profile",
        "metadata": {"name": format!("kns.{namespace}")},
        "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}], "labelsToApply": l}
    })
}

/// The felix binary running in a node namespace; SIGTERM (then SIGKILL) on drop.
pub struct Felix {
    child: Option<Child>,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Felix {
    /// Starts felix from the calling thread (which must be in the node's
    /// namespace), logging to a temp file.
    pub fn start(node: &str, etcd_endpoint: &str, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("felix.log");
        let file = File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_felix"));
        cmd.args(["--node-name", node, "--etcd-endpoints", etcd_endpoint])
            .env("LOG_LEVEL", "info")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting felix");
        Felix {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// The process id while running (benchmarks read its CPU time from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Felix {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- felix log tail ---");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}
