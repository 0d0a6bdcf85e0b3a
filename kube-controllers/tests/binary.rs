//! The `kube-controllers` binary: a kubeconfig that is missing or wrong is one line
//! naming the file and the problem; a real run against kube-apiserver and etcd serves
//! health and metrics, leads, writes, and gives the lease up on SIGTERM.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use config::model::Profile;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_kube-controllers");

/// Runs the binary to completion; returns (exit code, stderr).
fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("ETCD_ENDPOINTS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("running kube-controllers");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_kubeconfig_is_one_line_naming_it() {
    let (code, stderr) = run_to_end(&["--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains("/nonexistent/kubeconfig"), "{stderr}");
    assert!(stderr.contains("No such file"), "{stderr}");
}

#[test]
fn a_broken_kubeconfig_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("garbage", "clusters: [unclosed\n", ""),
        (
            "no-context",
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
            "context",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, stderr) = run_to_end(&["--kubeconfig", path.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr:?}");
        assert!(stderr.contains(path.to_str().unwrap()), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: says {want:?}: {stderr}");
    }
}

/// Kills the child on drop (a failed assertion must not leave it running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over plain HTTP/1.0; (status code, body), or `None` when nobody answers.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_leads_writes_serves_health_and_metrics_and_releases_on_sigterm() {
    let c = Cluster::start().await;
    c.create_namespace("prod", json!({})).await;
    let (health, metrics) = (free_port(), free_port());
    let child = Command::new(BIN)
        .arg("--kubeconfig")
        .arg(c.api.kubeconfig_path())
        .args(["--etcd-endpoints", &c.etcd.endpoint()])
        .args(["--health-listen", &format!("127.0.0.1:{health}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .args(["--identity", "binary-test"])
        .env_remove("RUST_LOG")
        .env("LOG_LEVEL", "warning")
        .stdin(Stdio::null())
        .spawn()
        .expect("starting kube-controllers");
    let mut child = Running(child);

    eventually("kns.prod written", CONVERGE, || async {
        c.ds.get::<Profile>(None, "kns.prod")
            .await
            .unwrap()
            .map(|_| ())
    })
    .await;
    eventually("/readiness 200", CONVERGE, || async {
        get(health, "/readiness")
            .await
            .filter(|(code, _)| *code == 200)
    })
    .await;
    assert_eq!(get(health, "/liveness").await.map(|r| r.0), Some(200));
    let (code, text) = get(metrics, "/metrics").await.expect("metrics answer");
    assert_eq!(code, 200);
    assert!(text.contains("kube_controllers_is_leader 1"), "{text}");
    assert!(
        text.contains("kube_controllers_synced{controller=\"policy\"} 1"),
        "{text}"
    );

    let leases = Api::<Lease>::namespaced(c.client.clone(), "kube-system");
    let holder = |l: Option<Lease>| l.and_then(|l| l.spec).and_then(|s| s.holder_identity);
    assert_eq!(
        holder(leases.get_opt("calico-kube-controllers").await.unwrap()).as_deref(),
        Some("binary-test")
    );
    // SIGTERM: a clean stop that gives the lease up.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually("the process exits", Duration::from_secs(15), || {
        let s = child.0.try_wait().unwrap();
        async move { s }
    })
    .await;
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        holder(leases.get_opt("calico-kube-controllers").await.unwrap()),
        None,
        "the lease was released"
    );
}
