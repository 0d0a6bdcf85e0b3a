//! Kubernetes in the virtual cluster: a real kube-apiserver (built by
//! scripts/kube-apiserver.sh) in the fabric namespace over the cluster's etcd, serving on
//! the fabric address so the nodes' CNI plugins reach it, and kube-controllers beside it
//! carrying namespaces, service accounts, pod labels and NetworkPolicies into etcd. There
//! is no kubelet: the cluster creates Pod objects through the API and then calls CNI with
//! their names, as kubelet would.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use kubetest::ApiServerFiles;

use crate::cluster::{Cluster, FABRIC_GATEWAY, run_with_stdin};
use crate::daemon::{Daemon, wait_until};

/// The API server's port on the fabric address.
pub const API_PORT: u16 = 6443;

/// The API server and kube-controllers of a cluster (stopped on drop, controllers first).
pub struct Kube {
    pub controllers: Option<Daemon>,
    pub apiserver: Daemon,
    pub files: ApiServerFiles,
}

impl Drop for Kube {
    fn drop(&mut self) {
        if let Some(mut c) = self.controllers.take() {
            c.stop(Duration::from_secs(5));
        }
        self.apiserver.stop(Duration::from_secs(5));
    }
}

impl Cluster {
    /// Starts kube-apiserver in the fabric namespace, waits until it is ready, then
    /// starts kube-controllers there.
    pub fn start_kubernetes(&mut self) -> Result<()> {
        let address: IpAddr = FABRIC_GATEWAY.parse().expect("a literal address");
        let dir = self.work.path().join("kube");
        let files = ApiServerFiles::generate(&dir, address, API_PORT);
        let binary = kubetest::kube_apiserver_binary();
        let mut cmd = self.fabric.command(binary.to_str().context("binary path")?);
        cmd.args(files.server_args(address, API_PORT, &self.etcd_endpoint(), None));
        let log = self.work.path().join("kube-apiserver.log");
        let apiserver = Daemon::spawn("kube-apiserver", cmd, &log)?;
        self.kube = Some(Kube {
            controllers: None,
            apiserver,
            files,
        });
        wait_until("kube-apiserver /readyz", Duration::from_secs(90), || {
            self.kubectl(&["get", "--raw", "/readyz"], None)
                .is_ok_and(|out| out.trim() == "ok")
        })?;
        let kubeconfig = self.kubeconfig()?;
        let mut cmd = self
            .fabric
            .command(self.bin("kube-controllers").to_str().unwrap());
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("ETCD_ENDPOINTS", self.etcd_endpoint())
            .env("LOG_LEVEL", "info");
        let log = self.work.path().join("kube-controllers.log");
        let controllers = Daemon::spawn("kube-controllers", cmd, &log)?;
        self.kube.as_mut().expect("set above").controllers = Some(controllers);
        Ok(())
    }

    /// The admin kubeconfig (the CNI plugin and kube-controllers use it too).
    pub fn kubeconfig(&self) -> Result<std::path::PathBuf> {
        let kube = self.kube.as_ref().context("Kubernetes is not running")?;
        Ok(kube.files.kubeconfig.clone())
    }

    /// Runs kubectl (the release of the API server) inside the fabric namespace with the
    /// admin kubeconfig.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let kubeconfig = self.kubeconfig()?;
        let cache = self.work.path().join("kubectl-cache");
        let kubectl = kubetest::kubectl_binary();
        let mut cmd = self
            .fabric
            .command(kubectl.to_str().context("kubectl path")?);
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args)
            .env_remove("KUBECONFIG");
        run_with_stdin("kubectl", args, cmd, stdin)
    }

    /// Creates the Pod object kubelet would run on `node` (labels, one container with the
    /// named port `http` 8080), before CNI wires it.
    pub fn create_pod_object(
        &self,
        node: &str,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node,
                     "containers": [{"name": "app", "image": "testnet",
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}
        });
        self.kubectl(&["apply", "-f", "-"], Some(&pod.to_string()))
            .map(drop)
    }

    /// Creates the Namespace object (kube-controllers then writes its `kns.` profile).
    pub(crate) fn create_namespace_object(&self, namespace: &str) -> Result<()> {
        let ns = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
        });
        self.kubectl(&["apply", "-f", "-"], Some(&ns.to_string()))
            .map(drop)
    }
}
