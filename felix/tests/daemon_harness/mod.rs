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

use std::ops::Deref;
use std::process::Command;
use std::time::Duration;

use config::datastore::Datastore;
use netns_kit::Proc;
pub use netns_kit::{eventually, in_ns};
use sha1::{Digest, Sha1};

/// A unique short prefix for this run and call.
pub fn unique_prefix() -> String {
    netns_kit::unique("fxd")
}

/// `ip netns exec <ns> <cmd...>`.
pub fn ns_exec(ns: &str, cmd: &[&str]) -> String {
    let mut args = vec!["netns", "exec", ns];
    args.extend_from_slice(cmd);
    run("ip", &args)
}

/// A network namespace with exactly the name given (the caller puts
/// [`unique_prefix`] in it), deleted on drop.
pub struct Netns(netns_kit::Netns);

impl Deref for Netns {
    type Target = netns_kit::Netns;

    fn deref(&self) -> &netns_kit::Netns {
        &self.0
    }
}

impl Netns {
    pub fn new(name: &str) -> Self {
        Netns(netns_kit::Netns::create(name).unwrap_or_else(|e| panic!("{e}")))
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

    /// Runs `cmd` (split on whitespace) inside the namespace.
    pub fn exec(&self, cmd: &str) -> String {
        self.0.exec(&cmd.split_whitespace().collect::<Vec<_>>())
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
        node.veth_to(&iface, &ns, "eth0")
            .unwrap_or_else(|e| panic!("{e}"));
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
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl Felix {
    /// Starts felix from the calling thread (which must be in the node's
    /// namespace), logging to a temp file.
    pub fn start(node: &str, etcd_endpoint: &str, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("felix.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_felix"));
        cmd.args(["--node-name", node, "--etcd-endpoints", etcd_endpoint])
            .env("LOG_LEVEL", "info")
            // Not the host's /var/lib/calico/mtu.
            .env("FELIX_MTUFILE", dir.path().join("mtu"))
            .env_remove("RUST_LOG");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn_logged(cmd, &log).expect("starting felix");
        Felix { proc, _dir: dir }
    }

    /// The process id while running (benchmarks read its CPU time from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.proc.id()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        self.proc.stop(Duration::from_secs(10))
    }
}

impl Drop for Felix {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- felix log tail ---");
            eprintln!("{}", self.proc.log_tail(40));
        }
    }
}
