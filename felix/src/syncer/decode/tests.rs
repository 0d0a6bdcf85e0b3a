use super::*;

const NP: &str = "/calico/resources/v3/projectcalico.org/networkpolicies/";

fn np_json(selector: &str, protocol: &str) -> Vec<u8> {
    format!(
        r#"{{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3",
        "metadata":{{"name":"ignored","namespace":"other","resourceVersion":"7"}},
        "spec":{{"selector":"{selector}","ingress":[{{"action":"Allow","protocol":"{protocol}"}}]}}}}"#
    )
    .into_bytes()
}

#[test]
fn prefixes() {
    let all = Watched::all("node-1");
    let prefixes: Vec<String> = all.iter().map(Watched::prefix).collect();
    assert!(prefixes.contains(&NP.to_string()), "{prefixes:?}");
    assert!(
        prefixes.contains(&"/calico/ipam/v2/host/node-1/".to_string()),
        "{prefixes:?}"
    );
    assert!(
        prefixes.contains(&"/calico/resources/v3/projectcalico.org/networksets/".to_string()),
        "{prefixes:?}"
    );
    assert!(
        prefixes.contains(&"/calico/resources/v3/projectcalico.org/globalnetworksets/".to_string()),
        "{prefixes:?}"
    );
    assert!(
        prefixes.contains(&"/calico/resources/v3/projectcalico.org/hostendpoints/".to_string()),
        "{prefixes:?}"
    );
    assert!(
        prefixes.contains(&"/calico/resources/v3/projectcalico.org/nodes/".to_string()),
        "{prefixes:?}"
    );
    assert!(
        prefixes.contains(&"/calico/ipam/v2/host/".to_string()),
        "{prefixes:?}"
    );
    assert_eq!(all.len(), 12);
}

#[test]
fn host_endpoints_decode_with_their_keys_and_invalid_ones_are_refused() {
    let w = Watched::Resource(ResourceKind::HostEndpoint);
    let key = "/calico/resources/v3/projectcalico.org/hostendpoints/node-1-all";
    let value = br#"{"kind":"HostEndpoint","apiVersion":"projectcalico.org/v3",
        "metadata":{"name":"x","labels":{"host":"node-1"}},
        "spec":{"node":"node-1","interfaceName":"*"}}"#;
    match w.decode_put(key, value).unwrap() {
        Some(Update::HostEndpointSet(h)) => {
            assert_eq!(h.metadata.name, "node-1-all");
            assert_eq!(h.spec.interface_name, "*");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.decode_delete(key).unwrap(),
        Some(Update::HostEndpointDeleted(n)) if n == "node-1-all"
    ));
    let neither = br#"{"kind":"HostEndpoint","apiVersion":"projectcalico.org/v3",
        "metadata":{"name":"x"},"spec":{"node":"node-1"}}"#;
    let e = w.decode_put(key, neither).unwrap_err().to_string();
    assert!(e.contains("spec.interfaceName"), "{e}");
}

#[test]
fn network_sets_decode_with_their_keys() {
    let ns = Watched::Resource(ResourceKind::NetworkSet);
    let key = "/calico/resources/v3/projectcalico.org/networksets/shop/partners";
    let value = br#"{"kind":"NetworkSet","apiVersion":"projectcalico.org/v3",
        "metadata":{"name":"x","namespace":"y","labels":{"role":"p"}},
        "spec":{"nets":["192.0.2.0/28"]}}"#;
    let Some(Update::NetworkSetSet(s)) = ns.decode_put(key, value).unwrap() else {
        panic!("not a NetworkSet update")
    };
    assert_eq!(s.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(s.metadata.name, "partners");
    assert!(matches!(
        ns.decode_delete(key).unwrap(),
        Some(Update::NetworkSetDeleted(k)) if k == NetSetKey::namespaced("shop", "partners")
    ));
    let gns = Watched::Resource(ResourceKind::GlobalNetworkSet);
    let key = "/calico/resources/v3/projectcalico.org/globalnetworksets/ext";
    assert!(matches!(
        gns.decode_delete(key).unwrap(),
        Some(Update::NetworkSetDeleted(k)) if k == NetSetKey::global("ext")
    ));
    // A bad net is refused with the key named (validation).
    let bad = br#"{"kind":"GlobalNetworkSet","apiVersion":"projectcalico.org/v3",
        "metadata":{"name":"ext"},"spec":{"nets":["10.0.0.0/33"]}}"#;
    let err = gns.decode_put(key, bad).unwrap_err();
    assert!(err.to_string().contains("spec.nets[0]"), "{err}");
}

#[test]
fn key_is_the_identity_and_resource_version_is_dropped() {
    let w = Watched::Resource(ResourceKind::NetworkPolicy);
    let update = w
        .decode_put(&format!("{NP}ns1/p1"), &np_json("app == 'b'", "TCP"))
        .unwrap()
        .unwrap();
    let Update::NetworkPolicySet(p) = update else {
        panic!("{update:?}")
    };
    assert_eq!(p.metadata.name, "p1");
    assert_eq!(p.metadata.namespace.as_deref(), Some("ns1"));
    assert_eq!(p.metadata.resource_version, None);
    assert!(matches!(
        w.decode_delete(&format!("{NP}ns1/p1")).unwrap(),
        Some(Update::PolicyDeleted(PolicyKey::Namespaced { namespace, name })) if namespace == "ns1" && name == "p1"
    ));
}

#[test]
fn invalid_policies_are_delivered_as_refused_with_the_field() {
    let w = Watched::Resource(ResourceKind::NetworkPolicy);
    let key = format!("{NP}ns1/bad");
    let update = w.decode_put(&key, &np_json("app == ", "TCP")).unwrap();
    let Some(Update::PolicyRefused { def, reason }) = update else {
        panic!("{update:?}")
    };
    assert_eq!(def.key(), PolicyKey::namespaced("ns1", "bad"));
    assert!(reason.starts_with("spec.selector: "), "{reason}");
}

#[test]
fn invalid_objects_are_errors_naming_the_key() {
    let w = Watched::Resource(ResourceKind::NetworkPolicy);
    let key = format!("{NP}ns1/bad");
    let pool = Watched::Resource(ResourceKind::IPPool);
    let pool_key = "/calico/resources/v3/projectcalico.org/ippools/p";
    let bad_pool = br#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3",
        "metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/33"}}"#;
    let err = pool.decode_put(pool_key, bad_pool).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains(pool_key), "{err}");
    // A policy whose rules do not decode is refused with its selector kept.
    let update = w.decode_put(&key, &np_json("app == 'x'", "NOPE")).unwrap();
    let Some(Update::PolicyRefused { def, reason }) = update else {
        panic!("{update:?}")
    };
    assert_eq!(def.selector(), "app == 'x'");
    assert_eq!(def.key(), PolicyKey::namespaced("ns1", "bad"));
    assert!(def.ingress().is_empty());
    assert!(reason.contains("protocol"), "{reason}");
    let err = w.decode_put(&key, b"{not json").unwrap_err();
    assert!(matches!(err, DecodeError::NotJson { .. }), "{err:?}");
    let err = w
        .decode_put(&format!("{NP}toodeep/a/b"), &np_json("all()", "TCP"))
        .unwrap_err();
    assert!(matches!(err, DecodeError::BadKey { .. }), "{err:?}");
}

#[test]
fn affinities_only_confirmed_counts() {
    let w = Watched::Affinities {
        node: "node-1".into(),
    };
    let key = "/calico/ipam/v2/host/node-1/ipv4/block/10.244.1.0-26";
    let block: ipnet::IpNet = "10.244.1.0/26".parse().unwrap();
    let put = |v: &str| w.decode_put(key, v.as_bytes()).unwrap().unwrap();
    assert!(
        matches!(put(r#"{"state":"confirmed"}"#), Update::BlockAffinityConfirmed(b) if b == block)
    );
    assert!(matches!(put(r#"{"state":"pending"}"#), Update::BlockAffinityRemoved(b) if b == block));
    assert!(matches!(
        put(r#"{"state":"confirmed","deleted":true}"#),
        Update::BlockAffinityRemoved(_)
    ));
    assert!(
        matches!(w.decode_delete(key).unwrap(), Some(Update::BlockAffinityRemoved(b)) if b == block)
    );
    let other = "/calico/ipam/v2/host/node-2/ipv4/block/10.244.1.0-26";
    assert!(w.decode_put(other, br#"{"state":"confirmed"}"#).is_err());
}

#[test]
fn remote_affinities_name_their_node_and_skip_our_own() {
    let w = Watched::RemoteAffinities {
        local: "node-1".into(),
    };
    assert_eq!(w.prefix(), "/calico/ipam/v2/host/");
    let key = "/calico/ipam/v2/host/node-2/ipv4/block/10.244.2.0-26";
    let block: ipnet::IpNet = "10.244.2.0/26".parse().unwrap();
    let put = |k: &str, v: &str| w.decode_put(k, v.as_bytes()).unwrap();
    assert!(matches!(
        put(key, r#"{"state":"confirmed"}"#),
        Some(Update::RemoteBlockConfirmed { node, block: b }) if node == "node-2" && b == block
    ));
    assert!(matches!(
        put(key, r#"{"state":"pending"}"#),
        Some(Update::RemoteBlockRemoved { node, .. }) if node == "node-2"
    ));
    assert!(matches!(
        w.decode_delete(key).unwrap(),
        Some(Update::RemoteBlockRemoved { node, block: b }) if node == "node-2" && b == block
    ));
    // This node's own affinities are the local watch's.
    let own = "/calico/ipam/v2/host/node-1/ipv4/block/10.244.1.0-26";
    assert!(put(own, r#"{"state":"confirmed"}"#).is_none());
    assert!(w.decode_delete(own).unwrap().is_none());
    assert!(w.decode_put("/calico/ipam/v2/host/junk", b"{}").is_err());
}

#[test]
fn nodes_are_watched_and_their_deletion_decoded() {
    let w = Watched::Resource(ResourceKind::Node);
    assert!(Watched::all("n1").contains(&w));
    let key = format!("{}node-2", w.prefix());
    let json = br#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"x"},"spec":{"bgp":{"ipv4Address":"172.18.2.11/24"},"ipv4VXLANTunnelAddr":"10.70.2.1","vxlanTunnelMACAddr":"66:00:00:00:00:02"}}"#;
    match w.decode_put(&key, json).unwrap() {
        Some(Update::NodeSet(n)) => {
            assert_eq!(n.metadata.name, "node-2", "the key names it");
            assert_eq!(n.spec.ipv4_vxlan_tunnel_addr, "10.70.2.1");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.decode_delete(&key).unwrap(),
        Some(Update::NodeDeleted(n)) if n == "node-2"
    ));
}
