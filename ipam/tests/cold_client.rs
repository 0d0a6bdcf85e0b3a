//! The one-shot client's round trips (the CNI plugin runs one per ADD and DEL): what it
//! reads is counted by the datastore handle, so these tests fail when a change adds a read.
//! Also the per-host hint of the last block: used when right, harmless when wrong.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::datastore::{Datastore, RequestCounts};
use config::model::{IPPool, Node};
use config::testing::EtcdServer;
use ipam::{Ipam, IpamError, PoolSource, ReleaseOptions};
use ipnet::IpNet;

use common::args;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A fresh etcd holding one pool of /29 blocks; it runs until the server is dropped.
async fn etcd_with_pool(name: &str, cidr: &str, node_selector: &str) -> (EtcdServer, Datastore) {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    create_pool(&ds, name, cidr, node_selector).await;
    (etcd, ds)
}

async fn create_pool(ds: &Datastore, name: &str, cidr: &str, node_selector: &str) {
    let pool: IPPool = serde_json::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {"cidr": cidr, "blockSize": 29, "nodeSelector": node_selector}
    }))
    .unwrap();
    ds.create(&pool).await.unwrap();
}

/// A temporary hint directory, removed when dropped.
struct HintDir(PathBuf);

impl HintDir {
    fn new(tag: &str) -> HintDir {
        HintDir(std::env::temp_dir().join(format!("ipam-hints-{tag}-{}", std::process::id())))
    }
    /// The block the host's hint names.
    fn hint(&self, host: &str) -> Option<String> {
        let text = std::fs::read(self.0.join(format!("{host}.ipv4"))).ok()?;
        // The file is the JSON's SHA-256 in hex, a newline, then the JSON.
        let v: serde_json::Value = serde_json::from_slice(text.get(65..)?).ok()?;
        v["block"].as_str().map(str::to_string)
    }
    /// Writes `json` as the host's hint, with the sum that makes the plugin read it.
    fn write(&self, host: &str, json: &str) {
        use sha2::{Digest, Sha256};
        std::fs::create_dir_all(&self.0).unwrap();
        let text = format!("{:x}\n{json}", Sha256::digest(json));
        std::fs::write(self.0.join(format!("{host}.ipv4")), text).unwrap();
    }
}

impl Drop for HintDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh client, as the CNI plugin makes one per call.
fn cold(ds: &Datastore, hints: Option<&Path>) -> Ipam {
    let ipam = Ipam::new(ds.clone(), PoolSource::Datastore);
    match hints {
        Some(d) => ipam.with_hint_dir(d),
        None => ipam,
    }
}

fn cni_args(host: &str, handle: &str) -> ipam::AutoAssignArgs {
    ipam::AutoAssignArgs {
        node_labels_from_datastore: true,
        ..args(host, handle, 1)
    }
}

fn since(ds: &Datastore, before: RequestCounts) -> (u64, u64) {
    let now = ds.request_counts();
    (now.reads - before.reads, now.writes - before.writes)
}

#[tokio::test]
async fn cold_allocation_reads_once_with_hint_and_twice_without() {
    let (_etcd, ds) = etcd_with_pool("p", "10.20.0.0/24", "").await;
    let hints = HintDir::new("reads");

    // Fill two blocks of 8 so that the node has blocks to read.
    for n in 0..16 {
        cold(&ds, Some(&hints.0))
            .auto_assign(&cni_args("n1", &format!("fill-{n}")))
            .await
            .unwrap();
    }
    let last = hints.hint("n1").expect("hint written");

    // With the hint: the pools, the Node, the affinities, the config and the hinted block
    // in one read; here the hinted block is full, so the others are read too.
    let before = ds.request_counts();
    let got = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "a"))
        .await
        .unwrap();
    // A full node claims a third block (claim reads and writes are not counted here).
    assert_ne!(got[0].block.to_string(), last);
    assert_eq!(
        hints.hint("n1"),
        Some(got[0].block.to_string()),
        "hint follows the new block"
    );

    // The hint holds the block as written and it has room: one write, nothing read.
    let before2 = ds.request_counts();
    let b = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "b"))
        .await
        .unwrap();
    assert_eq!(since(&ds, before2), (0, 1));
    assert_eq!(b[0].block, got[0].block);
    // The full node: the context with the full hinted block, the node's other blocks,
    // then the claim's own reads.
    assert!(since(&ds, before).0 >= 2, "{:?}", since(&ds, before));

    // A release by a client keeping hints refreshes the hint: still nothing read.
    cold(&ds, Some(&hints.0))
        .release_by_handle("b")
        .await
        .unwrap();
    let before2 = ds.request_counts();
    let b2 = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "b2"))
        .await
        .unwrap();
    assert_eq!(since(&ds, before2), (0, 1));
    assert_eq!(b2[0].block, got[0].block);

    // A change the hint did not see (a release by a client without hints): the guarded
    // write fails, then one read and the write.
    cold(&ds, None).release_by_handle("b2").await.unwrap();
    let before2 = ds.request_counts();
    let b3 = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "b3"))
        .await
        .unwrap();
    assert_eq!(since(&ds, before2), (1, 2));
    assert_eq!(b3[0].block, got[0].block);

    // Free one address in the first block: without a hint the client reads the context,
    // then the node's blocks, and allocates the freed address.
    let first = cold(&ds, None).release_by_handle("fill-3").await.unwrap();
    let before = ds.request_counts();
    let c = cold(&ds, None)
        .auto_assign(&cni_args("n1", "c"))
        .await
        .unwrap();
    assert_eq!(since(&ds, before), (2, 1));
    assert_eq!(c[0].ip, first[0], "the first block with room is used");
}

#[tokio::test]
async fn cold_release_reads_once_by_address_and_twice_by_handle() {
    let (_etcd, ds) = etcd_with_pool("p", "10.21.0.0/24", "").await;
    let a = cold(&ds, None)
        .auto_assign(&cni_args("n1", "h1"))
        .await
        .unwrap();
    let b = cold(&ds, None)
        .auto_assign(&cni_args("n1", "h2"))
        .await
        .unwrap();

    // By address with its handle: the pools, then the block and the handle together.
    let before = ds.request_counts();
    let opts = ReleaseOptions {
        ip: a[0].ip,
        sequence_number: Some(a[0].sequence),
        handle: Some("h1".into()),
    };
    assert!(
        cold(&ds, None)
            .release_ips(&[opts])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(since(&ds, before), (2, 1));

    // By handle (the CNI DEL): the handle, then its block.
    let before = ds.request_counts();
    assert_eq!(
        cold(&ds, None).release_by_handle("h2").await.unwrap(),
        vec![b[0].ip]
    );
    assert_eq!(since(&ds, before), (2, 1));
    assert!(matches!(
        cold(&ds, None).release_by_handle("h2").await,
        Err(IpamError::HandleNotFound { .. })
    ));
}

#[tokio::test]
async fn a_wrong_hint_costs_reads_never_a_wrong_allocation() {
    let (_etcd, ds) = etcd_with_pool("p", "10.22.0.0/24", "").await;
    let hints = HintDir::new("wrong");
    let other = cold(&ds, None)
        .auto_assign(&cni_args("n2", "other"))
        .await
        .unwrap();

    // The hint names n2's block: n1 must not allocate from it.
    hints.write("n1", &format!(r#"{{"block":"{}"}}"#, other[0].block));
    let got = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "h1"))
        .await
        .unwrap();
    assert_ne!(got[0].block, other[0].block);
    assert_eq!(hints.hint("n1"), Some(got[0].block.to_string()));

    // n1's hint, with its copy of n1's block, as n3's: n3 must not allocate from it.
    std::fs::copy(hints.0.join("n1.ipv4"), hints.0.join("n3.ipv4")).unwrap();
    let n3 = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n3", "h-n3"))
        .await
        .unwrap();
    assert_ne!(n3[0].block, got[0].block);

    // A hint naming no block, or garbage: ignored.
    for text in [
        r#"{"block":"10.22.0.248/29"}"#,
        "10.22.0.0/29",
        "not json",
        "",
    ] {
        hints.write("n1", text);
        let next = cold(&ds, Some(&hints.0))
            .auto_assign(&cni_args("n1", &format!("h-{}", text.len())))
            .await
            .unwrap();
        assert_eq!(next[0].block, got[0].block, "hint {text:?}");
    }

    // A directory that cannot be written: allocation still works.
    let file = hints.0.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    cold(&ds, Some(&file))
        .auto_assign(&cni_args("n1", "h-last"))
        .await
        .unwrap();
}

#[tokio::test]
async fn node_labels_come_from_the_node_in_the_same_read() {
    let (_etcd, ds) = etcd_with_pool("gpu", "10.23.0.0/24", "gpu == 'true'").await;

    // No Node: no labels, no pool.
    assert!(matches!(
        cold(&ds, None).auto_assign(&cni_args("n1", "h0")).await,
        Err(IpamError::Exhausted { .. })
    ));
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"gpu": "true"}},
        "spec": {}
    }))
    .unwrap();
    ds.create(&node).await.unwrap();
    let hints = HintDir::new("labels");
    let got = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "h1"))
        .await
        .unwrap();
    assert!(net("10.23.0.0/24").contains(&got[0].ip));
    // Labels given by the caller are not used when the Node's are asked for, and the
    // Node is read with the rest (one read in all).
    let mut a = cni_args("n1", "h2");
    a.node_labels = BTreeMap::from([("gpu".into(), "false".into())]);
    let before = ds.request_counts();
    cold(&ds, Some(&hints.0)).auto_assign(&a).await.unwrap();
    assert_eq!(since(&ds, before), (0, 1), "from the hint");

    // The Node loses the label: the hint's copy is guarded by the Node's revision, so the
    // next allocation reads and finds no pool for the node.
    let mut node = ds.get::<Node>(None, "n1").await.unwrap().unwrap();
    node.metadata.labels.insert("gpu".into(), "false".into());
    ds.update(&node).await.unwrap();
    assert!(matches!(
        cold(&ds, Some(&hints.0))
            .auto_assign(&cni_args("n1", "h3"))
            .await,
        Err(IpamError::Exhausted { .. })
    ));
}

#[tokio::test]
async fn a_hint_never_allocates_from_a_pool_disabled_since() {
    let (_etcd, ds) = etcd_with_pool("p", "10.24.0.0/24", "").await;
    let hints = HintDir::new("disabled");
    cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "h1"))
        .await
        .unwrap();
    let mut pool = ds.get::<IPPool>(None, "p").await.unwrap().unwrap();
    pool.spec.disabled = true;
    ds.update(&pool).await.unwrap();
    assert!(matches!(
        cold(&ds, Some(&hints.0))
            .auto_assign(&cni_args("n1", "h2"))
            .await,
        Err(IpamError::Exhausted { .. })
    ));
    // Deleted and created again elsewhere: the new pool's addresses, not the hint's.
    ds.delete::<IPPool>(None, "p", None).await.unwrap();
    create_pool(&ds, "q", "10.25.0.0/24", "").await;
    let got = cold(&ds, Some(&hints.0))
        .auto_assign(&cni_args("n1", "h3"))
        .await
        .unwrap();
    assert!(net("10.25.0.0/24").contains(&got[0].ip));
}
