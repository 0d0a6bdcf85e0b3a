//! Test support for this and other crates (feature `testing`): a real `etcd` server as a
//! child process on free loopback ports with a throwaway data directory.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::datastore::{Datastore, EtcdConfig};

/// How long a started etcd may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(50);
/// Lines of etcd's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 40;

/// A running `etcd`, killed (and its data removed) on drop.
pub struct EtcdServer {
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts etcd on free 127.0.0.1 ports and waits until it answers. Panics, with the tail
    /// of etcd's log, if it does not within ten seconds.
    pub async fn start() -> EtcdServer {
        let dir = tempfile::Builder::new()
            .prefix("calico-rs-etcd-")
            .tempdir()
            .expect("creating a temporary directory for etcd");
        let client_port = free_port();
        let peer_port = std::iter::repeat_with(free_port)
            .find(|p| *p != client_port)
            .expect("a second port");
        let mut server = EtcdServer {
            dir,
            client_port,
            peer_port,
            child: None,
        };
        server.spawn_and_wait().await;
        server
    }

    /// The client URL, e.g. `http://127.0.0.1:23791`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// A datastore configuration pointing at this server.
    pub fn etcd_config(&self) -> EtcdConfig {
        EtcdConfig {
            endpoints: vec![self.endpoint()],
            ..EtcdConfig::default()
        }
    }

    /// Connects a datastore client to this server.
    pub async fn datastore(&self) -> Datastore {
        Datastore::connect(&self.etcd_config())
            .await
            .expect("connecting to the test etcd")
    }

    /// Kills etcd (as a crash would), keeping its data and ports for `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same data and ports (stopping it first if it runs).
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait().await;
    }

    /// Compacts etcd's history up to `revision` (physically, so that it takes effect now).
    pub async fn compact(&self, revision: i64) {
        let mut client = self.datastore().await.etcd_client();
        client
            .compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await
            .unwrap_or_else(|err| panic!("compacting test etcd to revision {revision}: {err}"));
    }

    /// The directory holding etcd's data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    async fn spawn_and_wait(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("creating the etcd log file");
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new("etcd");
        command
            .arg("--name=t")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log file handle"))
            .stderr(log);
        // etcd reads ETCD_* variables as flags: a developer's ETCD_ENDPOINTS must not leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("running etcd: {err} (is etcd installed?)"));
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let config = self.etcd_config();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "etcd exited during startup ({status}); log tail:\n{}",
                    self.log_tail()
                );
            }
            // Probe the port first: a client connecting before etcd listens would wait out
            // its whole connect timeout.
            let listening = tokio::net::TcpStream::connect(("127.0.0.1", self.client_port))
                .await
                .is_ok();
            if listening
                && let Ok(ds) = Datastore::connect(&config).await
                && ds.get_raw("/ready-probe").await.is_ok()
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "etcd at {} not ready within {READY_TIMEOUT:?}; log tail:\n{}",
                    self.endpoint(),
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

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nobody listens on right now: bind port 0, read what the kernel chose, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener
        .local_addr()
        .expect("reading the bound port")
        .port()
}
