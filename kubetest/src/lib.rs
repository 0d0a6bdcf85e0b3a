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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use config::testing::{EtcdServer, TlsFiles, free_port, log_tail, openssl};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tempfile::TempDir;

/// How long a started kube-apiserver may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_POLL: Duration = Duration::from_millis(100);
/// Lines of the API server's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 60;
/// The wrapper module that pins the k8s.io/kubernetes version (the one place for it).
const WRAPPER_GO_MOD: &str = include_str!("../../scripts/go/kube-apiserver/go.mod");
/// Where [`KubeApiServer`] listens.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
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

/// The cached kube-apiserver built by `scripts/kube-apiserver.sh`. Panics, saying to run
/// that script, if it is not there.
pub fn kube_apiserver_binary() -> PathBuf {
    cached_binary("kube-apiserver")
}

/// The kubectl of the same release, built by the same script (Debian's is too old).
pub fn kubectl_binary() -> PathBuf {
    cached_binary("kubectl")
}

fn cached_binary(name: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .expect("neither XDG_CACHE_HOME nor HOME is set");
    let version = kube_apiserver_version();
    let binary = cache
        .join("calico-rs")
        .join(format!("kube-apiserver-{version}"))
        .join(name);
    assert!(
        binary.is_file(),
        "{name} {version} is not built ({} is missing): run scripts/kube-apiserver.sh",
        binary.display()
    );
    binary
}

/// What a kube-apiserver needs on disk, generated in one directory: a throwaway CA and
/// serving certificate (`certs/`), the service-account signing key pair, the static token
/// file with the admin user, and an admin kubeconfig for `server`.
#[derive(Clone, Debug)]
pub struct ApiServerFiles {
    pub dir: PathBuf,
    pub tls: TlsFiles,
    pub token: String,
    pub kubeconfig: PathBuf,
}

impl ApiServerFiles {
    /// Generates the files in `dir` for a server at `https://<address>:<port>`.
    pub fn generate(dir: &Path, address: IpAddr, port: u16) -> ApiServerFiles {
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).expect("creating the certificate directory");
        let tls = TlsFiles::generate_for(&certs, &[address]);
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
            dir.join("tokens.csv"),
            format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .expect("writing the token file");
        let kubeconfig = dir.join("kubeconfig");
        let server = format!("https://{}", SocketAddr::new(address, port));
        std::fs::write(&kubeconfig, kubeconfig_yaml(&server, &tls.ca_cert, &token))
            .expect("writing the kubeconfig");
        ApiServerFiles {
            dir: dir.to_path_buf(),
            tls,
            token,
            kubeconfig,
        }
    }

    /// kube-apiserver's flags: serving on `address:port` with these files, over the etcd
    /// at `etcd_endpoint` (with its client certificate when it serves TLS).
    pub fn server_args(
        &self,
        address: IpAddr,
        port: u16,
        etcd_endpoint: &str,
        etcd_tls: Option<&TlsFiles>,
    ) -> Vec<String> {
        let certs = self.dir.join("certs");
        let path = |p: &Path| p.display().to_string();
        let mut args = vec![format!("--etcd-servers={etcd_endpoint}")];
        if let Some(etcd) = etcd_tls {
            args.extend([
                format!("--etcd-cafile={}", path(&etcd.ca_cert)),
                format!("--etcd-certfile={}", path(&etcd.client_cert)),
                format!("--etcd-keyfile={}", path(&etcd.client_key)),
            ]);
        }
        args.extend([
            format!("--bind-address={address}"),
            format!("--secure-port={port}"),
            // The address the `kubernetes` Service would point at; with the reconciler off
            // nothing writes it, and nothing looks for another interface.
            format!("--advertise-address={address}"),
            "--endpoint-reconciler-type=none".into(),
            format!("--cert-dir={}", path(&certs)),
            format!("--tls-cert-file={}", path(&self.tls.server_cert)),
            format!("--tls-private-key-file={}", path(&self.tls.server_key)),
            format!("--token-auth-file={}", path(&self.dir.join("tokens.csv"))),
            "--authorization-mode=RBAC".into(),
            format!("--service-account-key-file={}", path(&certs.join("sa.pub"))),
            format!(
                "--service-account-signing-key-file={}",
                path(&certs.join("sa.key"))
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            // No token controller runs: the ServiceAccount plugin would refuse every pod
            // until a `default` service account exists in its namespace.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
        ]);
        args
    }
}

/// A running kube-apiserver, killed (and its directory removed) on drop.
pub struct KubeApiServer {
    dir: TempDir,
    port: u16,
    etcd_endpoint: String,
    etcd_tls: Option<TlsFiles>,
    files: ApiServerFiles,
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
        let port = free_port();
        let files = ApiServerFiles::generate(dir.path(), LOOPBACK, port);
        let mut server = KubeApiServer {
            dir,
            port,
            etcd_endpoint: etcd.endpoint(),
            etcd_tls: etcd.tls_files().cloned(),
            files,
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
        &self.files.kubeconfig
    }

    /// The admin user's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.files.token
    }

    /// The CA certificate (PEM file) that signed the serving certificate.
    pub fn ca_cert_path(&self) -> &Path {
        &self.files.tls.ca_cert
    }

    /// A client authenticated as the admin user.
    pub async fn client(&self) -> kube::Client {
        let path = self.kubeconfig_path();
        let kubeconfig = Kubeconfig::read_from(path)
            .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap_or_else(|err| panic!("loading {}: {err}", path.display()));
        kube::Client::try_from(config).expect("building the kube client")
    }

    /// Runs `kubectl --kubeconfig <admin kubeconfig> <args>` (the [`kubectl_binary`]) and
    /// returns its output (whatever the exit status).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let kubectl = kubectl_binary();
        Command::new(&kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig_path().display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("kubectl-cache").display()
            ))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", kubectl.display()))
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
        let mut command = Command::new(binary);
        command
            .args(self.files.server_args(
                LOOPBACK,
                self.port,
                &self.etcd_endpoint,
                self.etcd_tls.as_ref(),
            ))
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
        log_tail(&self.log_path(), LOG_TAIL_LINES)
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
