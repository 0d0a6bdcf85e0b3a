//! Every kind's fixture survives YAML -> value -> YAML and -> JSON -> value unchanged,
//! and validates.

use config::model::{AnyResource, ResourceKind, parse_documents, to_json, to_yaml};
use config::validate::validate;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The documents of a YAML file as plain values, for comparison with what we write.
fn yaml_values(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect()
}

fn round_trip(file: &str, kind: ResourceKind, count: usize) {
    let text = fixture(file);
    let parsed = parse_documents(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(parsed.len(), count, "{file}");
    let originals = yaml_values(&text);
    assert_eq!(originals.len(), count, "{file}");
    for (obj, original) in parsed.iter().zip(&originals) {
        assert_eq!(obj.kind(), kind, "{file}");
        validate(obj).unwrap_or_else(|e| panic!("{file} {}: {e}", obj.name()));
        // Written out, the object is the same document as the input.
        assert_eq!(
            &serde_json::to_value(obj).unwrap(),
            original,
            "{file} {}",
            obj.name()
        );

        let yaml = to_yaml(obj).unwrap();
        let again: Vec<AnyResource> = parse_documents(&yaml).unwrap();
        assert_eq!(again, vec![obj.clone()], "{file}: YAML round trip\n{yaml}");
        assert_eq!(yaml_values(&yaml)[0], *original, "{file}: YAML text");

        let json = to_json(obj).unwrap();
        let again: Vec<AnyResource> = parse_documents(&json).unwrap();
        assert_eq!(again, vec![obj.clone()], "{file}: JSON round trip\n{json}");
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap(),
            *original,
            "{file}: JSON text"
        );
    }
}

#[test]
fn node() {
    round_trip("node.yaml", ResourceKind::Node, 1);
}

#[test]
fn bgp_configuration() {
    round_trip("bgpconfiguration.yaml", ResourceKind::BGPConfiguration, 2);
}

#[test]
fn bgp_peer() {
    round_trip("bgppeer.yaml", ResourceKind::BGPPeer, 3);
}

#[test]
fn ip_pool() {
    round_trip("ippool.yaml", ResourceKind::IPPool, 2);
}

#[test]
fn ipam_configuration() {
    round_trip("ipamconfiguration.yaml", ResourceKind::IPAMConfiguration, 1);
}

#[test]
fn network_policy() {
    round_trip("networkpolicy.yaml", ResourceKind::NetworkPolicy, 1);
}

#[test]
fn global_network_policy() {
    round_trip(
        "globalnetworkpolicy.yaml",
        ResourceKind::GlobalNetworkPolicy,
        2,
    );
}

#[test]
fn profile() {
    round_trip("profile.yaml", ResourceKind::Profile, 2);
}

#[test]
fn workload_endpoint() {
    round_trip("workloadendpoint.yaml", ResourceKind::WorkloadEndpoint, 1);
}

#[test]
fn host_endpoint() {
    round_trip("hostendpoint.yaml", ResourceKind::HostEndpoint, 2);
}

#[test]
fn cluster_information() {
    round_trip(
        "clusterinformation.yaml",
        ResourceKind::ClusterInformation,
        1,
    );
}

#[test]
fn network_sets_and_tiers() {
    let text = fixture("networkset.yaml");
    let parsed = parse_documents(&text).unwrap();
    assert_eq!(parsed[0].kind(), ResourceKind::NetworkSet);
    assert_eq!(parsed[1].kind(), ResourceKind::GlobalNetworkSet);
    for (obj, original) in parsed.iter().zip(yaml_values(&text)) {
        validate(obj).unwrap();
        assert_eq!(serde_json::to_value(obj).unwrap(), original);
    }
    round_trip("tier.yaml", ResourceKind::Tier, 2);
}

#[test]
fn every_kind_has_a_fixture() {
    let files = [
        "node.yaml",
        "bgpconfiguration.yaml",
        "bgppeer.yaml",
        "ippool.yaml",
        "ipamconfiguration.yaml",
        "networkpolicy.yaml",
        "globalnetworkpolicy.yaml",
        "profile.yaml",
        "workloadendpoint.yaml",
        "hostendpoint.yaml",
        "clusterinformation.yaml",
        "networkset.yaml",
        "tier.yaml",
    ];
    let mut seen: Vec<ResourceKind> = files
        .iter()
        .flat_map(|f| parse_documents(&fixture(f)).unwrap())
        .map(|r| r.kind())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ResourceKind::ALL.to_vec());
}

#[test]
fn typed_values_are_read() {
    use config::model::{AsNumber, Port, Protocol};
    let docs = parse_documents(&fixture("networkpolicy.yaml")).unwrap();
    let AnyResource::NetworkPolicy(np) = &docs[0] else {
        panic!("not a NetworkPolicy")
    };
    assert_eq!(np.metadata.namespace.as_deref(), Some("production"));
    assert_eq!(np.spec.order, Some(100.0));
    let ports = &np.spec.ingress[1].destination.ports;
    assert_eq!(
        ports,
        &[
            Port::Number(6379),
            Port::Range(7000, 7010),
            Port::Named("redis".into())
        ]
    );
    assert_eq!(np.spec.egress[1].not_protocol, Some(Protocol::Number(47)));

    let docs = parse_documents(&fixture("bgppeer.yaml")).unwrap();
    let AnyResource::BGPPeer(p) = &docs[1] else {
        panic!("not a BGPPeer")
    };
    assert_eq!(p.spec.as_number, Some(AsNumber(65546)));
    assert_eq!(
        p.spec.peer_addr(),
        Some(("2001:db8::1".parse().unwrap(), Some(1790)))
    );
}
