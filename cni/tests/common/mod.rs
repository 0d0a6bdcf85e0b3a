//! Test support: a "host" network namespace with its own etcd, pod namespaces, and running
//! the plugin binaries the way a runtime does (env + stdin, `ip netns exec <host>`).
//!
//! Needs root (network namespaces). The test body runs on a thread that entered the host
//! namespace, so etcd (a child of that thread), the test's datastore client and the plugins
//! all live there; the real root namespace is never configured. Every namespace carries a
//! per-run prefix and is removed on drop, also when the test panics.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use config::datastore::Datastore;
use config::model::{IPPool, IPPoolSpec, ObjectMeta, WorkloadEndpoint};
use config::testing::EtcdServer;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

pub const NETWORK: &str = "k8s-pod-network";
pub const NODE: &str = "node1";
pub const POOL: &str = "10.244.0.0/16";

/// Names carry a per-run prefix; namespaces are removed on drop (see `netns_kit`).
pub use netns_kit::{Netns, sh, try_sh, unique};

/// One pod sandbox: its namespace and CNI identity.
pub struct Pod {
    pub ns: Netns,
    pub container_id: String,
    pub namespace: String,
    pub name: String,
}

impl Pod {
    pub fn new(name: &str) -> Pod {
        Pod {
            ns: Netns::new("cnitpod"),
            container_id: unique("cid"),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    pub fn cni_args(&self) -> String {
        format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={}",
            self.namespace, self.name, self.container_id
        )
    }

    pub fn host_ifname(&self) -> String {
        cni::link::host_veth_name(&self.namespace, &self.name)
    }

    pub fn wep_name(&self) -> String {
        config::model::wep_name(NODE, "k8s", &self.name, "eth0")
    }
}

/// What a plugin run returned.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// The result of a successful run.
    pub fn result(&self) -> Value {
        assert!(
            self.ok,
            "plugin failed: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.json()
    }

    /// The error code of a failed run (which must print the spec's error JSON).
    pub fn error_code(&self) -> u64 {
        assert!(!self.ok, "plugin succeeded unexpectedly: {}", self.stdout);
        let v = self.json();
        for field in ["cniVersion", "msg"] {
            assert!(v.get(field).is_some(), "error JSON lacks {field}: {v}");
        }
        v["code"].as_u64().expect("code is a number")
    }
}

/// The host namespace of one test, with its etcd and a client to it.
pub struct Host {
    pub ns_name: String,
    pub etcd: EtcdServer,
    pub ds: Datastore,
    pub bin_dir: PathBuf,
    /// calico-ipam's hint directory (removed with the host).
    pub hint_dir: PathBuf,
}

/// Runs `body` on a thread inside a fresh host namespace with etcd running there and the
/// pool [`POOL`] created. Everything is removed afterwards, also when `body` panics.
pub fn host_test<F, Fut>(body: F)
where
    F: FnOnce(Host) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let host_ns = Netns::new("cnithost");
    let ns_name = host_ns.name.clone();
    // The body runs on a thread that entered the host namespace; a panic there is
    // re-raised here, and `host_ns` is removed on the way out.
    netns_kit::in_ns(&host_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        create_pool(&ds, "default-pool", POOL).await;
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_calico"))
            .parent()
            .expect("binary directory")
            .to_path_buf();
        let hint_dir = std::env::temp_dir().join(format!("{ns_name}-ipam-hints"));
        let _cleanup = RemoveDir(hint_dir.clone());
        body(Host {
            ns_name,
            etcd,
            ds,
            bin_dir,
            hint_dir,
        })
        .await;
    });
}

pub async fn create_pool(ds: &Datastore, name: &str, cidr: &str) {
    ds.create(&IPPool {
        metadata: ObjectMeta {
            name: name.into(),
            ..ObjectMeta::default()
        },
        spec: IPPoolSpec {
            cidr: cidr.into(),
            block_size: Some(26),
            ..IPPoolSpec::default()
        },
    })
    .await
    .expect("creating the IP pool");
}

impl Host {
    /// The calico network configuration for this host's etcd.
    pub fn conf(&self, cni_version: &str) -> Value {
        json!({
            "cniVersion": cni_version,
            "name": NETWORK,
            "type": "calico",
            "etcd_endpoints": self.etcd.endpoint(),
            "nodename": NODE,
            "log_level": "warn",
            "ipam": {"type": "calico-ipam", "hint_dir": self.hint_dir},
        })
    }

    pub fn cni_path(&self) -> String {
        format!("{}:/usr/lib/cni", self.bin_dir.display())
    }

    /// Runs `plugin` (a file name in CNI_PATH) for `command` on `pod`, as a runtime does:
    /// `ip netns exec <host> <plugin>` with the CNI_* environment and `conf` on stdin.
    pub async fn run(
        &self,
        plugin: &str,
        command: &str,
        pod: &Pod,
        conf: &Value,
        extra_env: &[(&str, &str)],
    ) -> Outcome {
        let binary = if plugin.starts_with("calico") {
            self.bin_dir.join(plugin)
        } else {
            Path::new("/usr/lib/cni").join(plugin)
        };
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name]).arg(&binary);
        self.spawn(cmd, command, pod, conf, extra_env).await
    }

    /// Like [`run`](Self::run), but spawns the binary directly from this thread (which is
    /// in the host namespace), so that a measurement holds the plugin and nothing else.
    pub async fn run_direct(
        &self,
        plugin: &str,
        command: &str,
        pod: &Pod,
        conf: &Value,
    ) -> Outcome {
        let cmd = tokio::process::Command::new(self.bin_dir.join(plugin));
        self.spawn(cmd, command, pod, conf, &[]).await
    }

    async fn spawn(
        &self,
        mut cmd: tokio::process::Command,
        command: &str,
        pod: &Pod,
        conf: &Value,
        extra_env: &[(&str, &str)],
    ) -> Outcome {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &pod.container_id)
            .env("CNI_NETNS", pod.ns.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", pod.cni_args())
            .env("CNI_PATH", self.cni_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning the plugin");
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(conf.to_string().as_bytes())
            .await
            .expect("writing the configuration");
        drop(stdin);
        let out = child
            .wait_with_output()
            .await
            .expect("waiting for the plugin");
        Outcome {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn calico(&self, command: &str, pod: &Pod, conf: &Value) -> Outcome {
        self.run("calico", command, pod, conf, &[]).await
    }

    /// Addresses allocated in all blocks.
    pub async fn ips_in_use(&self) -> u64 {
        let ipam = ipam::Ipam::new(self.ds.clone(), ipam::PoolSource::Datastore);
        ipam.ip_usage()
            .await
            .expect("IPAM usage")
            .blocks
            .iter()
            .map(|b| b.in_use)
            .sum()
    }

    /// IPAM handle keys present.
    pub async fn handles(&self) -> Vec<String> {
        let (kvs, _) = self
            .ds
            .list_raw(ipam::keys::HANDLE_PREFIX)
            .await
            .expect("listing handles");
        kvs.into_iter().map(|kv| kv.key).collect()
    }

    pub async fn wep(&self, pod: &Pod) -> Option<WorkloadEndpoint> {
        self.ds
            .get::<WorkloadEndpoint>(Some(&pod.namespace), &pod.wep_name())
            .await
            .expect("reading the endpoint")
    }

    /// After a failed ADD nothing is left: no address, no handle, no interface, no endpoint.
    pub async fn assert_nothing_left(&self, pod: &Pod) {
        assert_eq!(self.ips_in_use().await, 0, "an address is still allocated");
        assert!(self.handles().await.is_empty(), "a handle is left");
        assert!(!self.host_has_link(&pod.host_ifname()), "host veth left");
        assert!(self.wep(pod).await.is_none(), "endpoint left");
    }

    /// Whether an interface exists in the host namespace.
    pub fn host_has_link(&self, name: &str) -> bool {
        try_sh(&["ip", "-n", &self.ns_name, "link", "show", name])
    }

    pub fn host_exec(&self, cmd: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.ns_name];
        full.extend_from_slice(cmd);
        sh(&full)
    }
}

/// The pod's address (without prefix) from an ADD result.
pub fn pod_ip(result: &Value) -> String {
    let addr = result["ips"][0]["address"]
        .as_str()
        .expect("ips[0].address");
    addr.split('/').next().expect("address").to_string()
}

/// The host namespace's own address (on its loopback), which pods ping.
pub const HOST_ADDR: &str = "10.99.0.1";

/// Gives the host namespace [`HOST_ADDR`].
pub fn add_host_address(host: &Host) {
    sh(&[
        "ip",
        "-n",
        &host.ns_name,
        "addr",
        "add",
        &format!("{HOST_ADDR}/32"),
        "dev",
        "lo",
    ]);
}

/// Removes a directory on drop.
pub struct RemoveDir(pub PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
