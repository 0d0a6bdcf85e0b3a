//! Document parsing: multi-document YAML, JSON streams, Lists, error paths, aliases.

use config::model::{
    AnyResource, BGPPeer, IPPool, Node, ParseError, Resource, ResourceKind, ResourceList,
    parse_documents, parse_one, to_json, to_yaml,
};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn err(text: &str) -> String {
    parse_documents(text)
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn node_list_with_items() {
    let docs = parse_documents(&fixture("nodelist.yaml")).unwrap();
    let names: Vec<&str> = docs.iter().map(AnyResource::name).collect();
    assert_eq!(names, ["node1", "node2"]);
    assert!(docs.iter().all(|d| d.kind() == ResourceKind::Node));
}

#[test]
fn json_stream_with_mixed_list() {
    let docs = parse_documents(&fixture("mixed.json")).unwrap();
    let kinds: Vec<ResourceKind> = docs.iter().map(AnyResource::kind).collect();
    assert_eq!(
        kinds,
        [
            ResourceKind::IPPool,
            ResourceKind::BGPPeer,
            ResourceKind::Profile
        ]
    );
    let AnyResource::BGPPeer(p) = &docs[1] else {
        panic!("not a BGPPeer")
    };
    assert_eq!(p.spec.as_number.map(|a| a.0), Some(65546));
}

#[test]
fn empty_documents_are_skipped() {
    let text =
        "---\n---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: p\n---\n";
    assert_eq!(parse_documents(text).unwrap().len(), 1);
    assert!(parse_documents("").unwrap().is_empty());
}

#[test]
fn unknown_field_names_its_path() {
    let text = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n\nspec:\n  bgp:\n    asNumbr: 1\n";
    let e = err(text);
    assert!(
        e.starts_with("spec.bgp.asNumbr: unknown field `asNumbr`"),
        "{e}"
    );

    let text = r#"{"apiVersion":"projectcalico.org/v3","kind":"NetworkPolicy","metadata":{"name":"p"},
        "spec":{"ingress":[{"action":"Allow"},{"action":"Allow","source":{"nets":["1.0.0.0/8"],"prots":[1]}}]}}"#;
    let e = err(text);
    assert!(
        e.starts_with("spec.ingress[1].source.prots: unknown field"),
        "{e}"
    );

    let e = err(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\n  lables: {}\nspec:\n  cidr: 10.0.0.0/8\n",
    );
    assert!(e.starts_with("metadata.lables: unknown field"), "{e}");
}

#[test]
fn bad_values_name_their_path() {
    let e = err(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/8\n  ipipMode: always\n",
    );
    assert!(
        e.starts_with("spec.ipipMode: unknown variant `always`"),
        "{e}"
    );
    let e = err(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  asNumber: 1.10\n",
    );
    assert!(
        e.starts_with("spec.asNumber: ") && e.contains("quoted"),
        "{e}"
    );
    let e = err(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\nspec:\n  ingress:\n  - action: Allow\n    protocol: TPC\n",
    );
    assert!(
        e.starts_with("spec.ingress[0].protocol: unknown protocol \"TPC\""),
        "{e}"
    );
    let e = err(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nstatus: {}\nspec:\n  cidr: 10.0.0.0/8\n",
    );
    assert!(e.contains("status") && e.contains("no status"), "{e}");
}

#[test]
fn list_item_errors_name_the_item() {
    let text = "kind: NodeList\napiVersion: projectcalico.org/v3\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: Node\n  metadata: {name: a}\n- apiVersion: projectcalico.org/v3\n  kind: Node\n  metadata: {name: b}\n  spec: {bgp: {ipv4Adress: 1.2.3.4}}\n";
    let e = err(text);
    assert!(
        e.starts_with("items[1].spec.bgp.ipv4Adress: unknown field"),
        "{e}"
    );
    let text = "kind: NodeList\napiVersion: projectcalico.org/v3\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: a}\n";
    assert!(err(text).starts_with("items[0].kind: \"IPPool\" item in a NodeList"));
}

#[test]
fn kind_and_api_version_are_checked() {
    let e =
        err("apiVersion: projectcalico.org/v3\nkind: FelixConfiguratio\nmetadata:\n  name: x\n");
    assert_eq!(e, "unknown resource kind \"FelixConfiguratio\"");
    let e = err("apiVersion: projectcalico.org/v2\nkind: Node\nmetadata:\n  name: x\n");
    assert!(
        e.starts_with("apiVersion: expected \"projectcalico.org/v3\""),
        "{e}"
    );
    let e = err("apiVersion: projectcalico.org/v3\nmetadata:\n  name: x\n");
    assert!(e.contains("missing or non-string field `kind`"), "{e}");
    let e =
        err("---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: a}\n---\n42\n");
    assert_eq!(e, "document 2: expected a resource object");
    // Typed reads refuse another kind with the field named.
    let e =
        parse_one::<Node>("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\n")
            .unwrap_err();
    assert!(
        matches!(&e, ParseError::Field { path, .. } if path == "kind"),
        "{e}"
    );
    assert!(
        e.to_string().contains("expected \"Node\", got \"IPPool\""),
        "{e}"
    );
}

#[test]
fn yaml_flow_style_is_not_mistaken_for_json() {
    let docs =
        parse_documents("{apiVersion: projectcalico.org/v3, kind: Profile, metadata: {name: p}}\n")
            .unwrap();
    assert_eq!(docs[0].name(), "p");
}

#[test]
fn syntax_errors_name_the_format() {
    assert!(err("{\"kind\": ").starts_with("invalid JSON"));
    assert!(err("kind: [unclosed\n").starts_with("invalid YAML"));
}

#[test]
fn objects_always_write_api_version_and_kind() {
    let pool = IPPool::named(
        "p",
        config::model::IPPoolSpec {
            cidr: "10.0.0.0/16".into(),
            ..Default::default()
        },
    );
    let v = serde_json::to_value(&pool).unwrap();
    assert_eq!(v["apiVersion"], "projectcalico.org/v3");
    assert_eq!(v["kind"], "IPPool");
    assert_eq!(v["metadata"]["name"], "p");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
}

#[test]
fn list_output() {
    let peers = parse_documents(&fixture("bgppeer.yaml")).unwrap();
    let list = ResourceList::of_kind(
        Some(ResourceKind::BGPPeer),
        peers.clone(),
        Some("99".into()),
    );
    let json = to_json(&list).unwrap();
    assert!(json.starts_with("{\n  \"apiVersion\": \"projectcalico.org/v3\",\n  \"kind\": \"BGPPeerList\",\n  \"metadata\": {\n    \"resourceVersion\": \"99\"\n  },\n  \"items\": ["), "{json}");
    // A printed List reads back as its items.
    assert_eq!(parse_documents(&json).unwrap(), peers);
    let yaml = to_yaml(&list).unwrap();
    assert_eq!(parse_documents(&yaml).unwrap(), peers);

    let typed: Vec<BGPPeer> = peers
        .into_iter()
        .map(|p| match p {
            AnyResource::BGPPeer(p) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    let v = serde_json::to_value(ResourceList::new(typed, None)).unwrap();
    assert_eq!(v["kind"], "BGPPeerList");
    assert_eq!(v["metadata"], serde_json::json!({}));
}

#[test]
fn from_value_reads_stored_json() {
    let v = serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "p", "resourceVersion": "5"}, "spec": {"cidr": "10.0.0.0/16"}});
    let r = AnyResource::from_value(ResourceKind::IPPool, v.clone()).unwrap();
    assert_eq!(r.meta().resource_version.as_deref(), Some("5"));
    let e = AnyResource::from_value(ResourceKind::Node, v).unwrap_err();
    assert!(e.contains("expected \"Node\""), "{e}");
}

#[test]
fn alias_table() {
    use ResourceKind::*;
    let table: &[(&[&str], ResourceKind)] = &[
        (&["node", "nodes", "no", "NODE", "Nodes"], Node),
        (&["bgppeer", "bgppeers", "bgpp", "bp", "BGPPeer"], BGPPeer),
        (
            &[
                "bgpconfiguration",
                "bgpconfigurations",
                "bgpconfig",
                "bgpconfigs",
                "BGPConfig",
            ],
            BGPConfiguration,
        ),
        (
            &["ippool", "ippools", "ipp", "pool", "pools", "IPPool"],
            IPPool,
        ),
        (
            &[
                "networkpolicy",
                "networkpolicies",
                "policy",
                "policies",
                "np",
                "pol",
                "NetworkPolicy",
            ],
            NetworkPolicy,
        ),
        (
            &["globalnetworkpolicy", "globalnetworkpolicies", "gnp", "GNP"],
            GlobalNetworkPolicy,
        ),
        (
            &[
                "workloadendpoint",
                "workloadendpoints",
                "wep",
                "weps",
                "WEP",
            ],
            WorkloadEndpoint,
        ),
        (
            &["hostendpoint", "hostendpoints", "hep", "heps"],
            HostEndpoint,
        ),
        (&["profile", "profiles", "pro"], Profile),
        (
            &["ipamconfiguration", "ipamconfigurations", "ipamconfig"],
            IPAMConfiguration,
        ),
        (
            &["clusterinformation", "clusterinformations", "clusterinfo"],
            ClusterInformation,
        ),
        (
            &[
                "networkset",
                "networksets",
                "netsets",
                "netset",
                "NetworkSet",
            ],
            NetworkSet,
        ),
        (
            &["globalnetworkset", "globalnetworksets", "gnetsets"],
            GlobalNetworkSet,
        ),
        (&["tier", "tiers", "Tier"], Tier),
    ];
    for (aliases, kind) in table {
        for a in *aliases {
            assert_eq!(ResourceKind::from_alias(a), Some(*kind), "{a}");
        }
    }
    for bad in ["", "n", "ippoo", "felixconfiguration", "bgp"] {
        assert_eq!(ResourceKind::from_alias(bad), None, "{bad}");
    }
}

#[test]
fn kind_table_matches_resource_impls() {
    let expect = [
        (ResourceKind::Node, "Node", "nodes", false),
        (ResourceKind::BGPPeer, "BGPPeer", "bgppeers", false),
        (
            ResourceKind::BGPConfiguration,
            "BGPConfiguration",
            "bgpconfigurations",
            false,
        ),
        (ResourceKind::IPPool, "IPPool", "ippools", false),
        (
            ResourceKind::NetworkPolicy,
            "NetworkPolicy",
            "networkpolicies",
            true,
        ),
        (
            ResourceKind::GlobalNetworkPolicy,
            "GlobalNetworkPolicy",
            "globalnetworkpolicies",
            false,
        ),
        (
            ResourceKind::WorkloadEndpoint,
            "WorkloadEndpoint",
            "workloadendpoints",
            true,
        ),
        (
            ResourceKind::HostEndpoint,
            "HostEndpoint",
            "hostendpoints",
            false,
        ),
        (ResourceKind::Profile, "Profile", "profiles", false),
        (ResourceKind::NetworkSet, "NetworkSet", "networksets", true),
        (
            ResourceKind::GlobalNetworkSet,
            "GlobalNetworkSet",
            "globalnetworksets",
            false,
        ),
        (ResourceKind::Tier, "Tier", "tiers", false),
        (
            ResourceKind::IPAMConfiguration,
            "IPAMConfiguration",
            "ipamconfigurations",
            false,
        ),
        (
            ResourceKind::ClusterInformation,
            "ClusterInformation",
            "clusterinformations",
            false,
        ),
    ];
    assert_eq!(expect.len(), ResourceKind::ALL.len());
    for (k, name, plural, ns) in expect {
        assert_eq!(
            (k.kind_name(), k.plural(), k.namespaced()),
            (name, plural, ns)
        );
        assert_eq!(ResourceKind::from_plural(plural), Some(k));
        assert_eq!(ResourceKind::from_kind_name(name), Some(k));
    }
    assert_eq!(<IPPool as Resource>::PLURAL, "ippools");
}
