//! Damaged datastore contents never panic the allocator and are never written over.

mod common;

use common::{args, env, pool};
use ipam::IpamError;

/// A /30 block whose FIFO names an ordinal past the end and whose allocation points at a
/// missing attribute.
const CORRUPT: &str = r#"{"cidr":"10.9.0.0/30","affinity":"host:node1","allocations":[5,null,null,null],
"unallocated":[1,2,3,9],"attributes":[],"sequenceNumber":1,"deleted":false}"#;

#[tokio::test]
async fn corrupt_block_is_refused_not_panicked_on_and_left_unchanged() {
    let e = env(vec![pool("10.9.0.0/16", 30)]).await;
    let ds = e.etcd.datastore().await;
    let key = "/calico/ipam/v2/assignment/ipv4/block/10.9.0.0-30";
    ds.create_raw(key, CORRUPT.as_bytes().to_vec())
        .await
        .unwrap();
    ds.create_raw(
        "/calico/ipam/v2/host/node1/ipv4/block/10.9.0.0-30",
        br#"{"state":"confirmed","deleted":false}"#.to_vec(),
    )
    .await
    .unwrap();

    // node1's only affine block is corrupt: a clear error, no panic, nothing written.
    let err = e
        .ipam
        .auto_assign(&args("node1", "h1", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::CorruptBlock { .. }), "{err}");
    assert!(err.to_string().contains("calicoctl ipam check"), "{err}");
    let released = e
        .ipam
        .release_ips(&[ipam::ReleaseOptions::ip("10.9.0.0".parse().unwrap())])
        .await;
    assert!(
        matches!(released, Err(IpamError::CorruptBlock { .. })),
        "{released:?}"
    );
    assert_eq!(
        ds.get_raw(key).await.unwrap().unwrap().value,
        CORRUPT.as_bytes()
    );

    // Another node allocates elsewhere in the pool; check reports the damage.
    let got = e.ipam.auto_assign(&args("node2", "h2", 1)).await.unwrap();
    assert!(
        !"10.9.0.0/30"
            .parse::<ipnet::IpNet>()
            .unwrap()
            .contains(&got[0].ip)
    );
    let report = e.ipam.check(None).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, ipam::Problem::InvalidBlock { .. })),
        "{report:?}"
    );
}

#[test]
fn block_sizes_outside_calicos_ranges_are_refused() {
    for (cidr, size, ok) in [
        ("10.0.0.0/16", 26, true),
        ("10.0.0.0/16", 20, true),
        ("10.0.0.0/8", 19, false),
        ("fd00::/64", 122, true),
        ("fd00::/48", 64, false),
        ("fd00::/48", 96, false),
    ] {
        assert_eq!(pool(cidr, size).validate().is_ok(), ok, "{cidr} /{size}");
    }
}
