//! Calico-written JSON (hand-written in Calico's format, including Go's `null` for nil
//! slices and maps and omitted optional fields) decodes, and encodes back to what Calico
//! reads.

use std::collections::BTreeMap;

use ipam::{AffinityState, AllocationBlock, BlockAffinity, IpamConfig, IpamHandle};
use serde_json::Value;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Go writes nil slices/maps as null and reads `[]`/`{}` identically: compare modulo that.
fn normalize(v: &mut Value) {
    if let Value::Object(m) = v {
        for key in ["allocations", "unallocated", "attributes"] {
            if m.get(key) == Some(&Value::Null) {
                m.insert(key.into(), Value::Array(vec![]));
            }
        }
        for key in ["sequenceNumberForAllocation", "secondary"] {
            if m.get(key) == Some(&Value::Null) {
                m.insert(key.into(), Value::Object(Default::default()));
            }
        }
        m.values_mut().for_each(normalize);
    } else if let Value::Array(a) = v {
        a.iter_mut().for_each(normalize);
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> (T, Value, Value) {
    let text = fixture(name);
    let t: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut original: Value = serde_json::from_str(&text).unwrap();
    let mut encoded = serde_json::to_value(&t).unwrap();
    normalize(&mut original);
    normalize(&mut encoded);
    (t, original, encoded)
}

#[test]
fn fresh_calico_block_with_null_attributes() {
    let (b, original, encoded) = round_trip::<AllocationBlock>("block_calico_fresh.json");
    assert_eq!(b.cidr.to_string(), "10.65.79.0/30");
    assert_eq!(b.host(), Some("node1"));
    assert!(b.attributes.is_empty());
    assert_eq!(b.unallocated, vec![0, 1, 2, 3]);
    assert_eq!(b.sequence_number, 1_700_000_000_000_000_000);
    assert_eq!(original, encoded);
}

#[test]
fn in_use_calico_block() {
    let (b, original, encoded) = round_trip::<AllocationBlock>("block_calico_in_use.json");
    assert_eq!(b.in_use(), 3);
    assert_eq!(b.free_count(), 5);
    let a = b.attribute_of(2).unwrap();
    assert_eq!(a.handle(), Some("ipip-tunnel-addr-node1"));
    assert_eq!(
        a.secondary.get("type").map(String::as_str),
        Some("ipipTunnelAddress")
    );
    assert_eq!(b.sequence_of(3), 6);
    assert_eq!(
        b.affinity_claim_time.as_deref(),
        Some("2024-05-01T10:00:00Z")
    );
    assert_eq!(
        b.count_by_handle(),
        BTreeMap::from([
            ("k8s-pod-network.aaa".into(), 2),
            ("ipip-tunnel-addr-node1".into(), 1)
        ])
    );
    assert!(b.structural_problems().is_empty());
    assert_eq!(original, encoded, "every field survives decode + encode");
}

#[test]
fn minimal_block_without_optional_fields() {
    let (b, _, encoded) = round_trip::<AllocationBlock>("block_calico_minimal.json");
    assert_eq!(b.host(), None);
    assert_eq!(b.sequence_number, 0);
    assert!(b.sequence_number_for_allocation.is_empty());
    assert_eq!(b.attribute_of(0).unwrap().handle(), None);
    // What we write carries every field Calico's Go struct has (affinity as null).
    for key in [
        "cidr",
        "affinity",
        "allocations",
        "unallocated",
        "attributes",
        "sequenceNumber",
        "sequenceNumberForAllocation",
        "deleted",
    ] {
        assert!(encoded.get(key).is_some(), "{key} written");
    }
    assert_eq!(encoded["affinity"], Value::Null);
    let again: AllocationBlock = serde_json::from_value(encoded).unwrap();
    assert_eq!(again, b);
}

#[test]
fn unknown_fields_are_kept() {
    let mut v: Value = serde_json::from_str(&fixture("block_calico_in_use.json")).unwrap();
    v["futureField"] = Value::from("x");
    v["attributes"][0]["alternate"] = serde_json::json!({"pod": "q"});
    let b: AllocationBlock = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&b).unwrap(), v);
}

#[test]
fn affinity_handle_and_config() {
    let (a, original, encoded) = round_trip::<BlockAffinity>("affinity_confirmed.json");
    assert_eq!(a.state, AffinityState::Confirmed);
    assert_eq!(original, encoded);
    let (a, _, encoded) = round_trip::<BlockAffinity>("affinity_pending.json");
    assert_eq!(a.state, AffinityState::Pending);
    assert_eq!(
        encoded,
        serde_json::json!({"state": "pending", "deleted": false})
    );
    let del: BlockAffinity =
        serde_json::from_str(r#"{"state":"pendingDeletion","deleted":false}"#).unwrap();
    assert_eq!(del.state, AffinityState::PendingDeletion);

    let (h, original, encoded) = round_trip::<IpamHandle>("handle.json");
    assert_eq!(h.blocks().map(|(_, n)| n).sum::<u64>(), 3);
    assert_eq!(original, encoded);

    let (c, original, encoded) = round_trip::<IpamConfig>("config.json");
    assert!(c.strict_affinity);
    assert_eq!(c.effective_max_blocks(), 4);
    assert_eq!(original, encoded);
    let c: IpamConfig = serde_json::from_str("{}").unwrap();
    assert!(c.auto_allocate_blocks && !c.strict_affinity);
    assert_eq!(c.effective_max_blocks(), 20);
}
