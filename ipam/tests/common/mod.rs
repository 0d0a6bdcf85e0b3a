//! Shared setup for the etcd-backed tests: a real etcd per test, an `Ipam` on it, and
//! re-running this test binary as separate allocator processes.
#![allow(dead_code)]

pub mod allocator;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use config::testing::EtcdServer;
use ipam::{AutoAssignArgs, Ipam, PoolSource, PoolSpec};

pub struct Env {
    pub etcd: EtcdServer,
    pub ipam: Ipam,
}

pub fn pool(cidr: &str, block_size: u8) -> PoolSpec {
    PoolSpec::new(cidr.parse().unwrap(), block_size)
}

pub async fn env(pools: Vec<PoolSpec>) -> Env {
    let etcd = EtcdServer::start().await;
    let ipam = Ipam::new(etcd.datastore().await, PoolSource::Static(pools));
    Env { etcd, ipam }
}

pub fn args(host: &str, handle: &str, n: usize) -> AutoAssignArgs {
    AutoAssignArgs {
        num_v4: n,
        handle_id: handle.to_string(),
        attrs: BTreeMap::from([
            ("node".to_string(), host.to_string()),
            ("pod".to_string(), handle.to_string()),
        ]),
        hostname: host.to_string(),
        ..AutoAssignArgs::default()
    }
}

/// A child process killed (if still running) when dropped, so a failing test leaves none.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn take(&mut self) -> Child {
        self.0.take().expect("child already taken")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the test `entry` of this same test binary in a new process with `envs` set.
pub fn spawn_self(entry: &str, envs: &[(&str, String)]) -> ChildGuard {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    ChildGuard(Some(cmd.spawn().expect("spawning allocator process")))
}
