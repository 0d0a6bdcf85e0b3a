//! A 3-member (or n-member) etcd cluster on loopback ports, as operators run the datastore:
//! members can be killed and restarted one at a time, the leader included, to prove that
//! clients given every endpoint ride through the loss of any one member.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use super::{LOG_TAIL_LINES, free_port, log_tail, spawn_etcd, wait_answering};
use crate::datastore::{Datastore, EtcdConfig};

/// How long a new cluster may take to elect a leader and answer.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(20);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// A running etcd cluster, every member killed (and all data removed) on drop.
pub struct EtcdCluster {
    dir: TempDir,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `n` members on free loopback ports and waits until the cluster answers through
    /// every member.
    pub async fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::Builder::new()
            .prefix("calico-rs-etcd-cluster-")
            .tempdir()
            .expect("creating a temporary directory for the etcd cluster");
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 2 * n {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster { dir, members };
        for i in 0..n {
            cluster.spawn(i, "new");
        }
        for i in 0..n {
            cluster.wait_member(i).await;
        }
        cluster
    }

    /// Every member's client URL, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Client settings naming every member (`ETCD_ENDPOINTS=a,b,c`).
    pub fn etcd_config(&self) -> EtcdConfig {
        EtcdConfig {
            endpoints: self.endpoints(),
            ..EtcdConfig::default()
        }
    }

    pub async fn datastore(&self) -> Datastore {
        Datastore::connect(&self.etcd_config())
            .await
            .expect("connecting to the test etcd cluster")
    }

    /// The index of the current leader, asked of the first running member that answers.
    pub async fn leader(&self) -> Option<usize> {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let Ok(mut client) = etcd_client::Client::connect([m.client_url()], None).await else {
                continue;
            };
            let Ok(status) = client.status().await else {
                continue;
            };
            let leader = status.leader();
            let Ok(list) = client.member_list().await else {
                continue;
            };
            let name = list
                .members()
                .iter()
                .find(|x| x.id() == leader)
                .map(|x| x.name().to_string())?;
            return self.members.iter().position(|m| m.name == name);
        }
        None
    }

    /// Kills member `i` (as a crash would), keeping its data and ports.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts killed member `i` again on its data; it rejoins the cluster.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, "existing");
        self.wait_member(i).await;
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[i].name))
    }

    /// The tail of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        log_tail(&self.log_path(i), LOG_TAIL_LINES)
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("creating an etcd member's log file");
        let m = &self.members[i];
        let data = self.dir.path().join(&m.name);
        let mut command = Command::new("etcd");
        command
            .arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={}", m.client_url()))
            .arg(format!("--advertise-client-urls={}", m.client_url()))
            .arg(format!("--listen-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-advertise-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-cluster={initial_cluster}"))
            .arg(format!("--initial-cluster-state={state}"))
            .arg("--initial-cluster-token=calico-rs-test")
            // Loopback: short heartbeats make a leader's loss visible (and the test) fast.
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500");
        self.members[i].child = Some(spawn_etcd(command, log));
    }

    async fn wait_member(&mut self, i: usize) {
        let config = EtcdConfig {
            endpoints: vec![self.members[i].client_url()],
            ..EtcdConfig::default()
        };
        let log = self.log_path(i);
        let m = &mut self.members[i];
        let what = format!("etcd member {}", m.name);
        let port = m.client_port;
        wait_answering(
            &what,
            m.child.as_mut(),
            port,
            &config,
            CLUSTER_READY_TIMEOUT,
            &log,
        )
        .await;
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
