//! Test support: a real kube-apiserver over a real etcd.
//!
//! The binary is built from the `k8s.io/kubernetes` Go module by `scripts/kube-apiserver.sh`
//! at the version pinned in `scripts/go/kube-apiserver/go.mod` (read here at compile time)
//! and cached outside the repository, in
//! `${XDG_CACHE_HOME:-$HOME/.cache}/calico-rs/kube-apiserver-<version>/kube-apiserver`.
//! A missing binary is a test failure that says to run the script, never a skip.
//!
//! [`KubeApiServer::start`] runs it on a free 127.0.0.1 port against a given
//! [`EtcdServer`], with a throwaway CA and serving certificate, RBAC authorization, a static
//! token for an admin in `system:masters` and a service-account signing key. Only the API
//! server runs (no controller-manager, no scheduler): the `ServiceAccount` admission plugin
//! is off so that pods can be created without a token controller, and namespaces that are
//! deleted stay `Terminating` (nothing finalizes them).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use config::testing::{EtcdServer, TlsFiles};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tempfile::TempDir;

/// How long a started kube-apiserver may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_POLL: Duration = Duration::from_millis(100);
/// Lines of the API server's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 60;
/// The wrapper module that pins the k8s.io/kubernetes version (the one place for it).
const WRAPPER_GO_MOD: &str = include_str!("../../scripts/go/kube-apiserver/go.mod");
/// Where tests find kubectl (Debian's package).
const KUBECTL: &str = "/usr/bin/kubectl";
/// The static token file's admin user (group `system:masters`).
pub const ADMIN_USER: &str = "admin";

/// The pinned kube-apiserver version, e.g. `v1.33.13`.
pub fn kube_apiserver_version() -> &'static str {
    pinned_version(WRAPPER_GO_MOD)
        .expect("scripts/go/kube-apiserver/go.mod requires no k8s.io/kubernetes version")
}

/// The version in a go.mod's `require k8s.io/kubernetes vX.Y.Z` (single-line or in a block).
fn pinned_version(go_mod: &str) -> Option<&str> {
    go_mod.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("require").unwrap_or(line).trim_start();
        line.strip_prefix("k8s.io/kubernetes ")?
            .split_whitespace()
            .next()
    })
}

/// The cached binary built by `scripts/kube-apiserver.sh`. Panics, saying to run that
/// script, if it is not there.
pub fn kube_apiserver_binary() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .expect("neither XDG_CACHE_HOME nor HOME is set");
    let version = kube_apiserver_version();
    let binary = cache
        .join("calico-rs")
        .join(format!("kube-apiserver-{version}"))
        .join("kube-apiserver");
    assert!(
        binary.is_file(),
        "kube-apiserver {version} is not built ({} is missing): run scripts/kube-apiserver.sh",
        binary.display()
    );
    binary
}

/// A running kube-apiserver, killed (and its directory removed) on drop.
pub struct KubeApiServer {
    dir: TempDir,
    port: u16,
    etcd_endpoint: String,
    etcd_tls: Option<TlsFiles>,
    tls: TlsFiles,
    token: String,
    kubeconfig: PathBuf,
    child: Option<Child>,
}

impl KubeApiServer {
    /// Starts kube-apiserver on a free 127.0.0.1 port against `etcd` (plain, or TLS with
    /// its client certificate) and waits until
    /// `/readyz` answers ok. Panics, with the tail of its log, if it does not within 60 s.
    pub async fn start(etcd: &EtcdServer) -> KubeApiServer {
        let binary = kube_apiserver_binary();
        let dir = tempfile::Builder::new()
            .prefix("calico-rs-kube-apiserver-")
            .tempdir()
            .expect("creating a temporary directory for kube-apiserver");
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).expect("creating the certificate directory");
        let tls = TlsFiles::generate(&certs);
        openssl(
            &certs,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "sa.key",
            ],
        );
        openssl(
            &certs,
            &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let token = format!("calico-rs-admin-{:x}-{nanos:x}", std::process::id());
        // token,user,uid,"groups"
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .expect("writing the token file");
        let port = free_port();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kubeconfig_yaml(&format!("https://127.0.0.1:{port}"), &tls.ca_cert, &token),
        )
        .expect("writing the kubeconfig");
        let mut server = KubeApiServer {
            dir,
            port,
            etcd_endpoint: etcd.endpoint(),
            etcd_tls: etcd.tls_files().cloned(),
            tls,
            token,
            kubeconfig,
            child: None,
        };
        let started = Instant::now();
        server.spawn(&binary);
        server.wait_ready().await;
        eprintln!(
            "kube-apiserver {} ready at {} in {:.1?}",
            kube_apiserver_version(),
            server.url(),
            started.elapsed()
        );
        server
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig file for the admin user (group `system:masters`), usable by kubectl
    /// and `kube::Config`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The admin user's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM file) that signed the serving certificate.
    pub fn ca_cert_path(&self) -> &Path {
        &self.tls.ca_cert
    }

    /// A client authenticated as the admin user.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|err| panic!("reading {}: {err}", self.kubeconfig.display()));
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap_or_else(|err| panic!("loading {}: {err}", self.kubeconfig.display()));
        kube::Client::try_from(config).expect("building the kube client")
    }

    /// Runs `/usr/bin/kubectl --kubeconfig <admin kubeconfig> <args>` and returns its output
    /// (whatever the exit status).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(KUBECTL)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("kubectl-cache").display()
            ))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("running {KUBECTL}: {err} (is kubectl installed?)"))
    }

    /// Kills the API server (as a crash would), keeping its port, certificates and tokens
    /// for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the API server again on the same port with the same certificates and tokens
    /// (stopping it first if it runs), and waits until it is ready.
    pub async fn restart(&mut self) {
        self.stop();
        let started = Instant::now();
        self.spawn(&kube_apiserver_binary());
        self.wait_ready().await;
        eprintln!(
            "kube-apiserver restarted at {} in {:.1?}",
            self.url(),
            started.elapsed()
        );
    }

    /// The directory holding the API server's certificates, keys, token file and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("kube-apiserver.log")
    }

    fn spawn(&mut self, binary: &Path) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("creating the kube-apiserver log file");
        let dir = self.dir.path();
        let certs = dir.join("certs");
        let path = |p: &Path| p.display().to_string();
        let mut command = Command::new(binary);
        command.arg(format!("--etcd-servers={}", self.etcd_endpoint));
        if let Some(etcd) = &self.etcd_tls {
            command
                .arg(format!("--etcd-cafile={}", path(&etcd.ca_cert)))
                .arg(format!("--etcd-certfile={}", path(&etcd.client_cert)))
                .arg(format!("--etcd-keyfile={}", path(&etcd.client_key)));
        }
        command
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={}", self.port))
            // The address the `kubernetes` Service would point at; with the reconciler off
            // nothing writes it, and nothing looks for a non-loopback interface.
            .arg("--advertise-address=127.0.0.1")
            .arg("--endpoint-reconciler-type=none")
            .arg(format!("--cert-dir={}", path(&certs)))
            .arg(format!("--tls-cert-file={}", path(&self.tls.server_cert)))
            .arg(format!(
                "--tls-private-key-file={}",
                path(&self.tls.server_key)
            ))
            .arg(format!(
                "--token-auth-file={}",
                path(&dir.join("tokens.csv"))
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--service-account-key-file={}",
                path(&certs.join("sa.pub"))
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                path(&certs.join("sa.key"))
            ))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            // No token controller runs: the ServiceAccount plugin would refuse every pod
            // until a `default` service account exists in its namespace.
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--allow-privileged=true")
            .arg("--enable-priority-and-fairness=false")
            .arg("--profiling=false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log file handle"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("running {}: {err}", binary.display()));
        self.child = Some(child);
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut client = None;
        let mut last = String::from("not listening yet");
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "kube-apiserver exited during startup ({status}); log tail:\n{}",
                    self.log_tail()
                );
            }
            // Probe the port first: a request before the server listens would wait out the
            // client's connect timeout.
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                if client.is_none() {
                    client = Some(self.client().await);
                }
                let client = client.as_ref().expect("set above");
                let request = http::Request::get("/readyz")
                    .body(Vec::new())
                    .expect("building the /readyz request");
                match client.request_text(request).await {
                    Ok(body) if body.trim() == "ok" => return,
                    Ok(body) => last = body,
                    Err(err) => last = err.to_string(),
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "kube-apiserver at {} not ready within {READY_TIMEOUT:?} (last /readyz: \
                     {last}); log tail:\n{}",
                    self.url(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kubeconfig_yaml(server: &str, ca_cert: &Path, token: &str) -> String {
    let ca = ca_cert.display();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {ADMIN_USER}
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: {ADMIN_USER}
current-context: test
"
    )
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("running openssl: {err} (is openssl installed?)"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nobody listens on right now: bind port 0, read what the kernel chose, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener
        .local_addr()
        .expect("reading the bound port")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_version_reads_a_require_block_or_line() {
        assert_eq!(
            pinned_version("module m\n\nrequire (\n\tk8s.io/kubernetes v1.33.13\n)\n"),
            Some("v1.33.13")
        );
        assert_eq!(
            pinned_version("require k8s.io/kubernetes v1.32.2 // indirect\n"),
            Some("v1.32.2")
        );
        assert_eq!(pinned_version("require k8s.io/kubernetes-x v1\n"), None);
        assert!(kube_apiserver_version().starts_with("v1."));
    }
}
