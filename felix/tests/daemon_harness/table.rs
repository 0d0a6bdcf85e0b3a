//! Truth tables: rows of (from pod, to pod, protocol, allowed?) probed with real
//! traffic until they all hold or a deadline passes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Netns, Pod, key, probe};

#[derive(Clone, Copy, Debug)]
pub enum Proto {
    Tcp(u16),
    Udp(u16),
    Icmp,
}

#[derive(Clone)]
pub struct PodInfo {
    pub name: &'static str,
    pub ns_name: String,
    pub path: PathBuf,
    pub ip: String,
}

impl PodInfo {
    /// What the probes need of each pod, named A, B, C ... in order.
    pub fn of(pods: &[super::Pod]) -> Vec<PodInfo> {
        const NAMES: [&str; 8] = ["A", "B", "C", "D", "E", "F", "G", "H"];
        assert!(pods.len() <= NAMES.len(), "name more pods in PodInfo::of");
        pods.iter()
            .zip(NAMES)
            .map(|(p, name)| PodInfo {
                name,
                ns_name: p.ns.name.clone(),
                path: p.ns.path(),
                ip: p.ip.clone(),
            })
            .collect()
    }
}

pub fn probe(from: &PodInfo, to: &PodInfo, proto: Proto) -> bool {
    match proto {
        Proto::Tcp(port) => probe::tcp(from.path.clone(), &to.ip, port),
        Proto::Udp(port) => probe::udp(from.path.clone(), &to.ip, port),
        Proto::Icmp => probe::icmp(&from.ns_name, &to.ip),
    }
}

pub type Row = (usize, usize, Proto, bool);

/// The first row that does not hold, if any.
pub fn mismatch(pods: &[PodInfo], table: &[Row]) -> Option<String> {
    table.iter().find_map(|&(f, t, proto, want)| {
        let got = probe(&pods[f], &pods[t], proto);
        (got != want).then(|| {
            format!(
                "{} -> {} {proto:?}: expected {}, got {}",
                pods[f].name,
                pods[t].name,
                if want { "allowed" } else { "denied" },
                if got { "allowed" } else { "denied" }
            )
        })
    })
}

pub async fn until_table(stage: &str, pods: &[PodInfo], table: &[Row]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let Some(bad) = mismatch(pods, table) else {
            return;
        };
        assert!(Instant::now() < deadline, "stage {stage}: {bad}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pods of a truth table on one node: A (ns1, 10.65.0.2), B (ns1, .3), C (ns2, .4),
/// their etcd keys and endpoint JSON.
pub struct ThreePods {
    pub node_ns: Netns,
    pub node: String,
    pub pods: Vec<Pod>,
}

impl ThreePods {
    pub fn new() -> Self {
        let prefix = super::unique_prefix();
        let node_ns = Netns::new_node(&format!("{prefix}-node"));
        let node = format!("{prefix}-n");
        let pods = vec![
            Pod::new(&node_ns, "ns1", "pa", "10.65.0.2", 1),
            Pod::new(&node_ns, "ns1", "pb", "10.65.0.3", 2),
            Pod::new(&node_ns, "ns2", "pc", "10.65.0.4", 3),
        ];
        Self {
            node_ns,
            node,
            pods,
        }
    }

    pub fn info(&self) -> Vec<PodInfo> {
        PodInfo::of(&self.pods)
    }

    /// (key, JSON) of pod `i`'s endpoint with label app=<app>, running as `account`.
    pub fn wep(&self, i: usize, app: &str, account: Option<&str>) -> (String, serde_json::Value) {
        let p = &self.pods[i];
        let mut labels = vec![("app", app)];
        if let Some(sa) = account {
            labels.push(("projectcalico.org/serviceaccount", sa));
        }
        let mut wep = p.wep_json(&self.node, &labels);
        if let Some(sa) = account {
            wep["spec"]["profiles"] = json!([
                format!("kns.{}", p.namespace),
                format!("ksa.{}.{sa}", p.namespace)
            ]);
        }
        (
            key(
                "workloadendpoints",
                Some(&p.namespace),
                &p.wep_name(&self.node),
            ),
            wep,
        )
    }
}
