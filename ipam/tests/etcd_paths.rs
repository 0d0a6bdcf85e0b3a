//! Every IPAM path against a real etcd.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::{args, env, pool};
use ipam::keys::{CONFIG_KEY, affinity_key, block_key, handle_key};
use ipam::{
    AffinityState, AllocationBlock, BlockAffinity, Exhaustion, InUse, IpamConfig, IpamError,
    IpamHandle, Problem, ReleaseOptions,
};
use ipnet::IpNet;
use serde_json::Value;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn get_json(ds: &config::datastore::Datastore, key: &str) -> Option<Value> {
    ds.get_raw(key)
        .await
        .unwrap()
        .map(|kv| serde_json::from_slice(&kv.value).unwrap())
}

fn in_use(handles: &[&str]) -> InUse {
    InUse {
        ips: Default::default(),
        handles: handles.iter().map(|h| h.to_string()).collect(),
    }
}

#[tokio::test]
async fn auto_assign_claims_block_and_writes_calico_keys() {
    let e = env(vec![pool("10.0.0.0/24", 26)]).await;
    let ds = e.ipam.datastore();
    let a = e
        .ipam
        .auto_assign(&args("node1", "k8s-pod-network.c1", 1))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let block = a[0].block;
    assert_eq!(a[0].ip, block.network(), "first address of a fresh block");

    let b = get_json(ds, &block_key(&block))
        .await
        .expect("block written");
    assert_eq!(b["cidr"], Value::from(block.to_string()));
    assert_eq!(b["affinity"], Value::from("host:node1"));
    assert_eq!(b["allocations"][0], Value::from(0));
    assert_eq!(
        b["attributes"][0]["handle_id"],
        Value::from("k8s-pod-network.c1")
    );
    assert_eq!(
        b["attributes"][0]["secondary"]["node"],
        Value::from("node1")
    );
    assert_eq!(
        b["sequenceNumberForAllocation"]["0"],
        Value::from(a[0].sequence)
    );
    let aff = get_json(ds, &affinity_key("node1", &block))
        .await
        .expect("affinity written");
    assert_eq!(
        aff,
        serde_json::json!({"state": "confirmed", "deleted": false})
    );
    let h = get_json(ds, &handle_key("k8s-pod-network.c1"))
        .await
        .expect("handle written");
    assert_eq!(
        h,
        serde_json::json!({"block": {block.to_string(): 1}, "deleted": false})
    );

    // Same host: next ordinal of the same block; another host: another block.
    let a2 = e
        .ipam
        .auto_assign(&args("node1", "k8s-pod-network.c2", 2))
        .await
        .unwrap();
    assert!(a2.iter().all(|x| x.block == block));
    let base = ipam::pool::addr_to_u128(block.network());
    let want: Vec<IpAddr> = (1..=2)
        .map(|i| ipam::pool::u128_to_addr(block.network(), base + i))
        .collect();
    assert_eq!(
        a2.iter().map(|x| x.ip).collect::<Vec<_>>(),
        want,
        "FIFO: ordinals 1 and 2 follow 0"
    );
    let other = e
        .ipam
        .auto_assign(&args("node2", "k8s-pod-network.c3", 1))
        .await
        .unwrap();
    assert_ne!(other[0].block, block);

    let attrs = e
        .ipam
        .get_assignment_attributes(a[0].ip)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attrs.handle(), Some("k8s-pod-network.c1"));
    let report = e
        .ipam
        .check(Some(&in_use(&[
            "k8s-pod-network.c1",
            "k8s-pod-network.c2",
            "k8s-pod-network.c3",
        ])))
        .await
        .unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.allocated_ips, 4);
    assert_eq!(report.blocks, 2);
}

#[tokio::test]
async fn release_with_stale_sequence_cannot_free_reallocated_ip() {
    // One /30 block: 4 addresses, so a released address is the only one to come back.
    let e = env(vec![pool("10.1.0.0/30", 30)]).await;
    let all = e.ipam.auto_assign(&args("n", "h-all", 4)).await.unwrap();
    let first = all[0];
    let rel = ReleaseOptions {
        ip: first.ip,
        sequence_number: Some(first.sequence),
        handle: None,
    };
    assert!(
        e.ipam
            .release_ips(std::slice::from_ref(&rel))
            .await
            .unwrap()
            .is_empty()
    );
    let again = e.ipam.auto_assign(&args("n", "h-new", 1)).await.unwrap();
    assert_eq!(again[0].ip, first.ip);
    assert_ne!(again[0].sequence, first.sequence);
    let err = e.ipam.release_ips(&[rel]).await.unwrap_err();
    assert!(matches!(err, IpamError::StaleSequence { .. }), "{err}");
    let owner = e
        .ipam
        .get_assignment_attributes(first.ip)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        owner.handle(),
        Some("h-new"),
        "stale release left the new allocation alone"
    );
    // Wrong handle is refused too; the right sequence frees it.
    let wrong = ReleaseOptions {
        ip: first.ip,
        sequence_number: None,
        handle: Some("h-all".into()),
    };
    assert!(matches!(
        e.ipam.release_ips(&[wrong]).await.unwrap_err(),
        IpamError::WrongHandle { .. }
    ));
    let ok = ReleaseOptions {
        ip: first.ip,
        sequence_number: Some(again[0].sequence),
        handle: Some("h-new".into()),
    };
    assert!(
        e.ipam
            .release_ips(std::slice::from_ref(&ok))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        e.ipam
            .datastore()
            .get_raw(&handle_key("h-new"))
            .await
            .unwrap()
            .is_none(),
        "empty handle deleted"
    );
    // Releasing a free address reports it back.
    assert_eq!(
        e.ipam
            .release_ips(&[ReleaseOptions::ip(first.ip)])
            .await
            .unwrap(),
        vec![first.ip]
    );
    let h = get_json(e.ipam.datastore(), &handle_key("h-all"))
        .await
        .unwrap();
    assert_eq!(h["block"]["10.1.0.0/30"], Value::from(3));
    assert!(
        e.ipam
            .check(Some(&in_use(&["h-all"])))
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn release_by_handle_frees_all_blocks() {
    let e = env(vec![pool("10.2.0.0/28", 30)]).await;
    // 6 addresses for one handle span two /30 blocks.
    let got = e.ipam.auto_assign(&args("n", "multi", 6)).await.unwrap();
    let blocks: std::collections::BTreeSet<IpNet> = got.iter().map(|a| a.block).collect();
    assert_eq!(blocks.len(), 2);
    let mut freed = e.ipam.release_by_handle("multi").await.unwrap();
    freed.sort();
    let mut want: Vec<IpAddr> = got.iter().map(|a| a.ip).collect();
    want.sort();
    assert_eq!(freed, want);
    assert!(
        e.ipam
            .datastore()
            .get_raw(&handle_key("multi"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        e.ipam.release_by_handle("multi").await.unwrap_err(),
        IpamError::HandleNotFound { .. }
    ));
    let r = e.ipam.check(Some(&InUse::default())).await.unwrap();
    assert!(r.is_consistent(), "{r:?}");
    assert_eq!(r.allocated_ips, 0);
    assert_eq!(r.blocks, 2, "empty blocks stay affine");
}

#[tokio::test]
async fn limits_are_named() {
    // 4 blocks of 2 addresses.
    let e = env(vec![pool("10.3.0.0/29", 31)]).await;
    let mut a = args("a", "a1", 3);
    a.max_blocks_per_host = Some(1);
    let err = e.ipam.auto_assign(&a).await.unwrap_err();
    match err {
        IpamError::Exhausted {
            reason: Exhaustion::MaxBlocksPerHost { limit: 1 },
            requested: 3,
            ..
        } => {}
        other => panic!("unexpected {other}"),
    }
    let r = e.ipam.check(Some(&InUse::default())).await.unwrap();
    assert_eq!(
        r.allocated_ips, 0,
        "all or nothing: partial assignment undone: {r:?}"
    );
    assert!(r.is_consistent(), "{r:?}");

    // Host b claims the three other blocks and fills them.
    e.ipam.auto_assign(&args("b", "b1", 6)).await.unwrap();
    // Host c can claim nothing (a's empty block is too recently claimed to reclaim), so it
    // borrows from a's block when not strict...
    let got = e.ipam.auto_assign(&args("c", "c1", 1)).await.unwrap();
    let owner = e
        .ipam
        .ip_usage()
        .await
        .unwrap()
        .blocks
        .into_iter()
        .find(|b| b.cidr == got[0].block)
        .unwrap()
        .host;
    assert_eq!(
        owner.as_deref(),
        Some("a"),
        "borrowed from another host's block"
    );
    // ...until no block has a free address left.
    let err = e.ipam.auto_assign(&args("c", "c2", 2)).await.unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                reason: Exhaustion::PoolsExhausted,
                assigned: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("exhausted"), "{err}");

    // Strict affinity forbids borrowing and says so.
    e.ipam
        .set_config(&IpamConfig {
            strict_affinity: true,
            ..IpamConfig::default()
        })
        .await
        .unwrap();
    let err = e.ipam.auto_assign(&args("d", "d1", 1)).await.unwrap_err();
    match &err {
        IpamError::Exhausted {
            reason: Exhaustion::StrictAffinity { cause },
            ..
        } => {
            assert_eq!(**cause, Exhaustion::PoolsExhausted)
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("strict affinity"));
    assert_eq!(
        get_json(e.ipam.datastore(), CONFIG_KEY).await.unwrap()["strict_affinity"],
        Value::Bool(true)
    );

    // No pool for the node: disabled pool / requested pool that is not usable.
    let e2 = env(vec![ipam::PoolSpec {
        disabled: true,
        ..pool("10.4.0.0/24", 26)
    }])
    .await;
    let err = e2.ipam.auto_assign(&args("n", "x", 1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                reason: Exhaustion::NoPoolForNode,
                ..
            }
        ),
        "{err}"
    );
    let mut req = args("n", "x", 1);
    req.pools = Some(vec![net("10.9.0.0/16")]);
    assert!(matches!(
        e2.ipam.auto_assign(&req).await.unwrap_err(),
        IpamError::PoolNotUsable { .. }
    ));
}

#[tokio::test]
async fn node_selector_and_requested_pools() {
    let mut gpu = pool("10.5.0.0/24", 26);
    gpu.node_selector = "gpu == 'true'".into();
    let e = env(vec![pool("10.6.0.0/24", 26), gpu]).await;
    let mut a = args("n1", "h1", 1);
    a.pools = Some(vec![net("10.5.0.0/24")]);
    assert!(matches!(
        e.ipam.auto_assign(&a).await.unwrap_err(),
        IpamError::PoolNotUsable { .. }
    ));
    a.node_labels = BTreeMap::from([("gpu".to_string(), "true".to_string())]);
    let got = e.ipam.auto_assign(&a).await.unwrap();
    assert!(net("10.5.0.0/24").contains(&got[0].ip));
    let got = e.ipam.auto_assign(&args("n2", "h2", 1)).await.unwrap();
    assert!(
        net("10.6.0.0/24").contains(&got[0].ip),
        "unlabelled node only gets the general pool"
    );
}

#[tokio::test]
async fn assign_ip_and_attributes() {
    let e = env(vec![pool("10.7.0.0/24", 26)]).await;
    let attrs = BTreeMap::from([("note".to_string(), "manual".to_string())]);
    let a = e
        .ipam
        .assign_ip(ip("10.7.0.70"), "manual-1", &attrs, "n1")
        .await
        .unwrap();
    assert_eq!(a.block, net("10.7.0.64/26"));
    let err = e
        .ipam
        .assign_ip(ip("10.7.0.70"), "manual-2", &attrs, "n1")
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::AlreadyAllocated { .. }));
    assert!(matches!(
        e.ipam
            .assign_ip(ip("10.8.0.1"), "m", &attrs, "n1")
            .await
            .unwrap_err(),
        IpamError::NotInPool { .. }
    ));
    let at = e
        .ipam
        .get_assignment_attributes(ip("10.7.0.70"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at.secondary, attrs);
    assert!(
        e.ipam
            .get_assignment_attributes(ip("10.7.0.71"))
            .await
            .unwrap()
            .is_none()
    );
    // The block was claimed for n1, so auto-assign on n1 continues in it.
    let next = e.ipam.auto_assign(&args("n1", "p", 1)).await.unwrap();
    assert_eq!(next[0].block, net("10.7.0.64/26"));
    assert!(
        e.ipam
            .check(Some(&in_use(&["manual-1", "p"])))
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn claim_and_release_affinity() {
    let e = env(vec![pool("10.9.0.0/24", 26)]).await;
    let ds = e.ipam.datastore();
    let r = e
        .ipam
        .claim_affinity(net("10.9.0.0/25"), "n1")
        .await
        .unwrap();
    assert_eq!(r.claimed, vec![net("10.9.0.0/26"), net("10.9.0.64/26")]);
    let r2 = e
        .ipam
        .claim_affinity(net("10.9.0.0/26"), "n2")
        .await
        .unwrap();
    assert_eq!(r2.failed, vec![net("10.9.0.0/26")]);
    assert!(
        ds.get_raw(&affinity_key("n2", &net("10.9.0.0/26")))
            .await
            .unwrap()
            .is_none(),
        "loser's pending affinity removed"
    );

    // Empty block: released and deleted.
    e.ipam
        .release_affinity(net("10.9.0.64/26"), "n1", true)
        .await
        .unwrap();
    assert!(
        ds.get_raw(&block_key(&net("10.9.0.64/26")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ds.get_raw(&affinity_key("n1", &net("10.9.0.64/26")))
            .await
            .unwrap()
            .is_none()
    );

    // Non-empty block: refused when it must be empty; otherwise it loses its affinity.
    let got = e.ipam.auto_assign(&args("n1", "h", 1)).await.unwrap();
    assert_eq!(got[0].block, net("10.9.0.0/26"));
    let err = e
        .ipam
        .release_affinity(net("10.9.0.0/26"), "n1", true)
        .await
        .unwrap_err();
    assert!(
        matches!(err, IpamError::BlockNotEmpty { in_use: 1, .. }),
        "{err}"
    );
    e.ipam
        .release_affinity(net("10.9.0.0/26"), "n1", false)
        .await
        .unwrap();
    let b = get_json(ds, &block_key(&net("10.9.0.0/26"))).await.unwrap();
    assert_eq!(b["affinity"], Value::Null);
    assert!(
        e.ipam
            .check(Some(&in_use(&["h"])))
            .await
            .unwrap()
            .is_consistent()
    );
    // Its last address released: a block with no affinity is deleted.
    e.ipam.release_by_handle("h").await.unwrap();
    assert!(
        ds.get_raw(&block_key(&net("10.9.0.0/26")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        e.ipam
            .release_affinity(net("10.9.0.0/26"), "n1", false)
            .await
            .unwrap_err(),
        IpamError::AffinityMismatch { .. }
    ));
    let r = e.ipam.check(Some(&InUse::default())).await.unwrap();
    assert!(r.is_consistent(), "{r:?}");
    assert_eq!(
        e.ipam.release_host_affinities("n1", false).await.unwrap(),
        Vec::<IpNet>::new()
    );
}

#[tokio::test]
async fn repairs_half_done_claims() {
    let e = env(vec![pool("10.10.0.0/24", 26)]).await;
    let ds = e.ipam.datastore();
    let enc = |v: &dyn erased::Ser| v.json();
    // A crashed Calico left: pending affinity + block already created for us...
    let b1 = net("10.10.0.0/26");
    ds.create_raw(
        &affinity_key("n1", &b1),
        enc(&BlockAffinity::new(AffinityState::Pending)),
    )
    .await
    .unwrap();
    ds.create_raw(
        &block_key(&b1),
        enc(&AllocationBlock::new(b1, Some("n1"), 5)),
    )
    .await
    .unwrap();
    // ...and a pending affinity whose block was never created.
    let b2 = net("10.10.0.128/26");
    ds.create_raw(
        &affinity_key("n1", &b2),
        enc(&BlockAffinity::new(AffinityState::Pending)),
    )
    .await
    .unwrap();
    let before = e.ipam.check(None).await.unwrap();
    assert_eq!(
        before
            .problems
            .iter()
            .filter(|p| matches!(p, Problem::UnfinishedAffinity { .. }))
            .count(),
        2,
        "{before:?}"
    );

    let got = e.ipam.auto_assign(&args("n1", "h", 1)).await.unwrap();
    assert_eq!(got[0].block, b1, "the block already created for us is used");
    let aff = get_json(ds, &affinity_key("n1", &b1)).await.unwrap();
    assert_eq!(aff["state"], Value::from("confirmed"));
    assert!(
        ds.get_raw(&affinity_key("n1", &b2))
            .await
            .unwrap()
            .is_none(),
        "pending affinity with no block removed"
    );
    let r = e.ipam.check(Some(&in_use(&["h"]))).await.unwrap();
    assert!(r.is_consistent(), "{r:?}");
}

#[tokio::test]
async fn allocates_from_calico_written_block_and_reclaims_old_empty_blocks() {
    let e = env(vec![pool("10.65.79.0/29", 29)]).await;
    let ds = e.ipam.datastore();
    let fixture = std::fs::read(format!(
        "{}/tests/fixtures/block_calico_in_use.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let b = net("10.65.79.0/29");
    ds.create_raw(&block_key(&b), fixture).await.unwrap();
    ds.create_raw(
        &affinity_key("node1", &b),
        br#"{"state":"confirmed","deleted":false}"#.to_vec(),
    )
    .await
    .unwrap();
    for (h, n) in [("k8s-pod-network.aaa", 2), ("ipip-tunnel-addr-node1", 1)] {
        let v = serde_json::json!({"block": {"10.65.79.0/29": n}, "deleted": false});
        ds.create_raw(&handle_key(h), serde_json::to_vec(&v).unwrap())
            .await
            .unwrap();
    }
    assert!(e.ipam.check(None).await.unwrap().is_consistent());
    // FIFO order of the Calico block: 4,5,6,7 then 1.
    let got = e.ipam.auto_assign(&args("node1", "new", 5)).await.unwrap();
    let ips: Vec<String> = got.iter().map(|a| a.ip.to_string()).collect();
    assert_eq!(
        ips,
        [
            "10.65.79.4",
            "10.65.79.5",
            "10.65.79.6",
            "10.65.79.7",
            "10.65.79.1"
        ]
    );
    assert!(e.ipam.check(None).await.unwrap().is_consistent());

    // An empty block of another node, claimed long ago, is reclaimed by a node that needs one.
    let e = env(vec![pool("10.66.0.0/30", 30)]).await;
    let ds = e.ipam.datastore();
    let old = net("10.66.0.0/30");
    let mut blk = AllocationBlock::new(old, Some("gone-node"), 1);
    blk.affinity_claim_time = Some("2020-01-01T00:00:00Z".into());
    ds.create_raw(&block_key(&old), serde_json::to_vec(&blk).unwrap())
        .await
        .unwrap();
    ds.create_raw(
        &affinity_key("gone-node", &old),
        br#"{"state":"confirmed","deleted":false}"#.to_vec(),
    )
    .await
    .unwrap();
    let got = e.ipam.auto_assign(&args("fresh", "f", 1)).await.unwrap();
    assert_eq!(got[0].block, old);
    let b = get_json(ds, &block_key(&old)).await.unwrap();
    assert_eq!(b["affinity"], Value::from("host:fresh"));
    assert!(
        ds.get_raw(&affinity_key("gone-node", &old))
            .await
            .unwrap()
            .is_none()
    );
    assert!(e.ipam.check(None).await.unwrap().is_consistent());
}

#[tokio::test]
async fn check_finds_each_kind_of_problem() {
    let e = env(vec![pool("10.11.0.0/24", 26)]).await;
    let ds = e.ipam.datastore();
    let used = e.ipam.auto_assign(&args("n1", "good", 2)).await.unwrap()[0].block;
    e.ipam.auto_assign(&args("n1", "leaked", 1)).await.unwrap();
    let others: Vec<IpNet> = [
        "10.11.0.0/26",
        "10.11.0.64/26",
        "10.11.0.128/26",
        "10.11.0.192/26",
    ]
    .map(net)
    .into_iter()
    .filter(|b| *b != used)
    .collect();
    // Handle deleted behind IPAM's back; an extra empty handle; a handle over-counting.
    ds.delete_raw(&handle_key("good"), None).await.unwrap();
    ds.create_raw(
        &handle_key("empty"),
        serde_json::to_vec(&IpamHandle::default()).unwrap(),
    )
    .await
    .unwrap();
    let v = serde_json::json!({"block": {others[2].to_string(): 4}, "deleted": false});
    ds.create_raw(&handle_key("ghost"), serde_json::to_vec(&v).unwrap())
        .await
        .unwrap();
    // A block affine to a host without an affinity key, with a dangling attribute index.
    let mut bad = AllocationBlock::new(others[0], Some("nokey"), 1);
    bad.allocations[3] = Some(7);
    bad.unallocated.retain(|o| *o != 3);
    ds.create_raw(&block_key(&bad.cidr), serde_json::to_vec(&bad).unwrap())
        .await
        .unwrap();
    // A confirmed affinity for a block that does not exist.
    ds.create_raw(
        &affinity_key("n9", &others[1]),
        br#"{"state":"confirmed","deleted":false}"#.to_vec(),
    )
    .await
    .unwrap();

    let r = e.ipam.check(Some(&in_use(&["good"]))).await.unwrap();
    let has = |f: &dyn Fn(&Problem) -> bool| r.problems.iter().any(f);
    assert!(
        has(&|p| matches!(p, Problem::HandleMissing { handle, .. } if handle == "good")),
        "{r:#?}"
    );
    assert!(has(
        &|p| matches!(p, Problem::EmptyHandle { handle } if handle == "empty")
    ));
    assert!(has(
        &|p| matches!(p, Problem::HandleCountMismatch { handle, handle_count: 4, block_count: 0, .. } if handle == "ghost")
    ));
    assert!(has(
        &|p| matches!(p, Problem::BlockAffinityMissing { host, .. } if host == "nokey")
    ));
    assert!(has(
        &|p| matches!(p, Problem::InvalidBlock { detail, .. } if detail.contains("allocations[3]=7"))
    ));
    assert!(has(
        &|p| matches!(p, Problem::DanglingAffinity { host, block_owner: None, .. } if host == "n9")
    ));
    assert!(has(
        &|p| matches!(p, Problem::LeakedIp { handle: Some(h), .. } if h == "leaked")
    ));
    assert!(
        has(&|p| matches!(p, Problem::NoHandle { .. })),
        "dangling index has no handle"
    );
    // 2 handle-missing (good holds 2), empty, ghost, block affinity, invalid block, no-handle
    // and its leak, dangling affinity, the leaked allocation.
    assert_eq!(r.problems.len(), 10, "{r:#?}");
    let json = serde_json::to_value(&r).unwrap();
    assert!(
        json["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "leakedIp")
    );
}

#[tokio::test]
async fn usage_per_pool_and_block() {
    let e = env(vec![
        pool("10.12.0.0/24", 26),
        ipam::PoolSpec {
            disabled: true,
            ..pool("10.13.0.0/24", 26)
        },
    ])
    .await;
    e.ipam.auto_assign(&args("n1", "a", 3)).await.unwrap();
    e.ipam.auto_assign(&args("n2", "b", 1)).await.unwrap();
    let u = e.ipam.ip_usage().await.unwrap();
    assert_eq!(u.pools.len(), 2);
    let p = &u.pools[0];
    assert_eq!((p.total, p.in_blocks, p.in_use, p.blocks), (256, 128, 4, 2));
    assert!(u.pools[1].disabled);
    assert_eq!(u.pools[1].in_use, 0);
    let mut per_block: Vec<(Option<String>, u64)> = u
        .blocks
        .iter()
        .map(|b| (b.host.clone(), b.in_use))
        .collect();
    per_block.sort();
    assert_eq!(
        per_block,
        vec![(Some("n1".into()), 3), (Some("n2".into()), 1)]
    );

    // Blocks come by address, not by etcd's key order ("10.12.0.128-26" < "10.12.0.64-26").
    e.ipam
        .claim_affinity(net("10.12.0.0/24"), "n3")
        .await
        .unwrap();
    let order: Vec<IpNet> = e
        .ipam
        .ip_usage()
        .await
        .unwrap()
        .blocks
        .iter()
        .map(|b| b.cidr)
        .collect();
    assert_eq!(
        order,
        [
            "10.12.0.0/26",
            "10.12.0.64/26",
            "10.12.0.128/26",
            "10.12.0.192/26"
        ]
        .map(net)
    );
}

#[tokio::test]
async fn pools_from_datastore_ippools() {
    let etcd = config::testing::EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let pool: config::model::IPPool = serde_json::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "p1"},
        "spec": {"cidr": "10.14.0.0/24", "blockSize": 28}
    }))
    .unwrap();
    ds.create(&pool).await.unwrap();
    let ipam = ipam::Ipam::new(ds, ipam::PoolSource::Datastore);
    let got = ipam.auto_assign(&args("n", "h", 1)).await.unwrap();
    assert_eq!(got[0].block.prefix_len(), 28);
    assert!(net("10.14.0.0/24").contains(&got[0].ip));
}

/// Tiny helper so hand-written etcd values use the crate's own encoding.
mod erased {
    pub trait Ser {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap()
        }
    }
}
