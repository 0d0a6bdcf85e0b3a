//! Table-driven validation tests: each rule with inputs it accepts and refuses.

use config::model::{AnyResource, IPPool, IPPoolSpec, parse_documents};
use config::validate::{ValidationErrors, check_pool_overlaps, validate};

/// A document of `kind` named `name` with `spec` given as indented YAML lines.
fn doc(kind: &str, name: &str, spec: &str) -> String {
    let ns = if kind == "NetworkPolicy" || kind == "WorkloadEndpoint" || kind == "NetworkSet" {
        "\n  namespace: default"
    } else {
        ""
    };
    format!(
        "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata:\n  name: {name}{ns}\nspec:\n{spec}"
    )
}

fn run(kind: &str, name: &str, spec: &str) -> Result<(), ValidationErrors> {
    let text = doc(kind, name, spec);
    let docs = parse_documents(&text).unwrap_or_else(|e| panic!("parse {text}: {e}"));
    validate(&docs[0])
}

/// `(kind, name, spec, expected)`: `None` = valid; `Some((path, fragment))` = an error at
/// `path` whose message contains `fragment`.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

fn check_all(cases: &[Case]) {
    for (kind, name, spec, want) in cases {
        let got = run(kind, name, spec);
        match (want, &got) {
            (None, Ok(())) => {}
            (Some((path, frag)), Err(errs)) => {
                assert!(
                    errs.errors
                        .iter()
                        .any(|e| e.path == *path && e.message.contains(frag)),
                    "{kind} {name} {spec}: want {path}: ..{frag}.., got {errs}"
                );
            }
            _ => panic!("{kind} {name}\n{spec}\nwant {want:?}, got {got:?}"),
        }
    }
}

const POOL: &str = "IPPool";

#[test]
fn names_and_labels() {
    check_all(&[
        (POOL, "pool-1.example", "  cidr: 10.0.0.0/16\n", None),
        (
            POOL,
            "Pool1",
            "  cidr: 10.0.0.0/16\n",
            Some(("metadata.name", "DNS-1123 subdomain")),
        ),
        (
            POOL,
            "pool_1",
            "  cidr: 10.0.0.0/16\n",
            Some(("metadata.name", "DNS-1123")),
        ),
        (
            POOL,
            "''",
            "  cidr: 10.0.0.0/16\n",
            Some(("metadata.name", "required")),
        ),
        ("BGPConfiguration", "default", "  asNumber: 65000\n", None),
        (
            "BGPConfiguration",
            "node.node-1",
            "  listenPort: 1790\n",
            None,
        ),
        (
            "BGPConfiguration",
            "global",
            "  listenPort: 1790\n",
            Some(("metadata.name", "\"node.<nodename>\"")),
        ),
        (
            "BGPConfiguration",
            "node.",
            "  listenPort: 1790\n",
            Some(("metadata.name", "DNS-1123")),
        ),
        (
            "BGPConfiguration",
            "node.n1",
            "  asNumber: 65000\n",
            Some((
                "spec.asNumber",
                "only be set in the BGPConfiguration named \"default\"",
            )),
        ),
        (
            "BGPConfiguration",
            "node.n1",
            "  nodeToNodeMeshEnabled: false\n",
            Some(("spec.nodeToNodeMeshEnabled", "default")),
        ),
        (
            "IPAMConfiguration",
            "default",
            "  strictAffinity: true\n",
            None,
        ),
        (
            "IPAMConfiguration",
            "other",
            "  strictAffinity: true\n",
            Some(("metadata.name", "must be named \"default\"")),
        ),
        (
            "ClusterInformation",
            "cluster",
            "  calicoVersion: v3\n",
            Some(("metadata.name", "\"default\"")),
        ),
        (
            "GlobalNetworkPolicy",
            "security.deny-all",
            "  tier: security\n",
            None,
        ),
        (
            "GlobalNetworkPolicy",
            "deny-all",
            "  tier: security\n",
            Some(("metadata.name", "\"security.<name>\"")),
        ),
        ("GlobalNetworkPolicy", "deny-all", "  tier: default\n", None),
    ]);

    let labelled = |labels: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: p\n  labels:\n{labels}\nspec: {{}}\n"
        )
    };
    let v = |text: String| validate(&parse_documents(&text).unwrap()[0]);
    assert!(
        v(labelled(
            "    app: web\n    example.com/tier: \"\"\n    a_b.c: v-1.2_3"
        ))
        .is_ok()
    );
    let e = v(labelled("    bad key: x")).unwrap_err();
    assert!(e.has_path("metadata.labels[bad key]"), "{e}");
    let e = v(labelled("    app: \"-web\"")).unwrap_err();
    assert!(
        e.to_string().contains("invalid label value \"-web\""),
        "{e}"
    );
    let e = v(labelled("    UPPER.example/x: y")).unwrap_err();
    assert!(
        e.to_string()
            .contains("prefix must be a DNS-1123 subdomain"),
        "{e}"
    );
}

#[test]
fn namespaces() {
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\n  namespace: default\nspec: {}\n";
    let e = validate(&parse_documents(text).unwrap()[0]).unwrap_err();
    assert!(
        e.to_string()
            .contains("metadata.namespace: GlobalNetworkPolicy is not namespaced"),
        "{e}"
    );
    let text = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: Default\nspec: {}\n";
    let e = validate(&parse_documents(text).unwrap()[0]).unwrap_err();
    assert!(e.has_path("metadata.namespace"), "{e}");
}

#[test]
fn ip_pools() {
    check_all(&[
        (POOL, "p", "  cidr: 10.0.0.0/16\n  blockSize: 20\n", None),
        (POOL, "p", "  cidr: 10.0.0.0/26\n", None),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/33\n",
            Some(("spec.cidr", "invalid CIDR \"10.0.0.0/33\"")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0/16\n",
            Some(("spec.cidr", "invalid CIDR")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/16\n  blockSize: 19\n",
            Some(("spec.blockSize", "outside 20..32 for an IPv4 pool")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/16\n  blockSize: 33\n",
            Some(("spec.blockSize", "outside 20..32")),
        ),
        (POOL, "p", "  cidr: 10.0.0.0/16\n  blockSize: 32\n", None),
        (POOL, "p", "  cidr: fd00::/64\n  blockSize: 116\n", None),
        (
            POOL,
            "p",
            "  cidr: fd00::/64\n  blockSize: 115\n",
            Some(("spec.blockSize", "outside 116..128 for an IPv6 pool")),
        ),
        (
            POOL,
            "p",
            "  cidr: fd00::/64\n  blockSize: 26\n",
            Some(("spec.blockSize", "116..128")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/27\n",
            Some(("spec.cidr", "smaller than one block (/26)")),
        ),
        (POOL, "p", "  cidr: 10.0.0.0/28\n  blockSize: 28\n", None),
        (
            POOL,
            "p",
            "  cidr: fd00::/123\n",
            Some(("spec.cidr", "smaller than one block (/122)")),
        ),
        (
            POOL,
            "p",
            "  cidr: 169.254.0.0/16\n",
            Some(("spec.cidr", "link-local")),
        ),
        (
            POOL,
            "p",
            "  cidr: 169.254.1.0/24\n",
            Some(("spec.cidr", "link-local")),
        ),
        (
            POOL,
            "p",
            "  cidr: 169.0.0.0/8\n",
            Some(("spec.cidr", "link-local")),
        ),
        (
            POOL,
            "p",
            "  cidr: fe80::/64\n",
            Some(("spec.cidr", "link-local")),
        ),
        (
            POOL,
            "p",
            "  cidr: 224.0.0.0/8\n",
            Some(("spec.cidr", "multicast")),
        ),
        (
            POOL,
            "p",
            "  cidr: fd00::/48\n  ipipMode: Always\n",
            Some(("spec.ipipMode", "IPv6")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/16\n  ipipMode: Always\n  vxlanMode: CrossSubnet\n",
            Some(("spec.vxlanMode", "both")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/16\n  nodeSelector: zone == 'a'\n",
            None,
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/16\n  nodeSelector: zone ==\n",
            Some(("spec.nodeSelector", "invalid selector")),
        ),
        (
            POOL,
            "p",
            "  cidr: 10.0.0.0/16\n  allowedUses: [Workload, Workload]\n",
            Some(("spec.allowedUses[1]", "twice")),
        ),
    ]);
}

fn pool(name: &str, cidr: &str) -> IPPool {
    IPPool::named(
        name,
        IPPoolSpec {
            cidr: cidr.into(),
            ..Default::default()
        },
    )
}

#[test]
fn pool_overlaps() {
    let existing = [
        pool("a", "10.0.0.0/16"),
        pool("b", "fd00::/48"),
        pool("broken", "not-a-cidr"),
    ];
    assert!(check_pool_overlaps(&pool("new", "10.1.0.0/16"), &existing).is_ok());
    assert!(check_pool_overlaps(&pool("new", "fd01::/48"), &existing).is_ok());
    for (cidr, other) in [
        ("10.0.128.0/17", "\"a\""),
        ("10.0.0.0/8", "\"a\""),
        ("10.0.0.0/16", "\"a\""),
        ("fd00:0:0:1::/64", "\"b\""),
    ] {
        let e = check_pool_overlaps(&pool("new", cidr), &existing).unwrap_err();
        assert!(
            e.has_path("spec.cidr") && e.to_string().contains(other),
            "{cidr}: {e}"
        );
    }
    // An update of a pool is not an overlap with itself.
    assert!(check_pool_overlaps(&pool("a", "10.0.0.0/15"), &existing).is_ok());
}

#[test]
fn bgp_peers() {
    let p = "BGPPeer";
    check_all(&[
        (p, "x", "  peerIP: 1.2.3.4\n  asNumber: 64512\n", None),
        (
            p,
            "x",
            "  peerIP: 1.2.3.4:1790\n  asNumber: \"1.10\"\n",
            None,
        ),
        (
            p,
            "x",
            "  peerIP: '[2001:db8::1]:179'\n  asNumber: 4200000000\n",
            None,
        ),
        (p, "x", "  peerIP: 2001:db8::1\n  asNumber: 65001\n", None),
        (
            p,
            "x",
            "  peerIP: 1.2.3.4:0\n  asNumber: 1\n",
            Some(("spec.peerIP", "port must be 1..65535")),
        ),
        (
            p,
            "x",
            "  peerIP: 1.2.3\n  asNumber: 1\n",
            Some(("spec.peerIP", "invalid peerIP \"1.2.3\"")),
        ),
        (
            p,
            "x",
            "  peerIP: '[1.2.3.4]:179'\n  asNumber: 1\n",
            Some(("spec.peerIP", "invalid peerIP")),
        ),
        (
            p,
            "x",
            "  peerIP: 1.2.3.4\n",
            Some(("spec.asNumber", "required with peerIP")),
        ),
        (
            p,
            "x",
            "  peerIP: 1.2.3.4\n  asNumber: 0\n",
            Some(("spec.asNumber", "RFC 7607")),
        ),
        (
            p,
            "x",
            "  asNumber: 1\n",
            Some(("spec.peerIP", "one of peerIP or peerSelector")),
        ),
        (
            p,
            "x",
            "  peerSelector: rr == 'true'\n  peerIP: 1.1.1.1\n  asNumber: 1\n",
            Some(("spec.peerSelector", "mutually exclusive")),
        ),
        (
            p,
            "x",
            "  peerSelector: rr == 'true'\n  node: n1\n  nodeSelector: all()\n",
            Some(("spec.nodeSelector", "mutually exclusive")),
        ),
        (
            p,
            "x",
            "  peerSelector: rr = 'true'\n",
            Some(("spec.peerSelector", "invalid selector")),
        ),
        (
            p,
            "x",
            "  peerSelector: has(rr)\n  keepaliveTime: '10'\n",
            Some(("spec.keepaliveTime", "invalid duration")),
        ),
        (
            p,
            "x",
            "  peerSelector: has(rr)\n  maxRestartTime: 2m\n  keepaliveTime: 30s\n",
            None,
        ),
        (
            p,
            "x",
            "  peerSelector: has(rr)\n  ttlSecurity: 0\n",
            Some(("spec.ttlSecurity", "1..255")),
        ),
        (
            p,
            "x",
            "  peerSelector: has(rr)\n  nextHopMode: Next\n",
            Some(("spec.nextHopMode", "Auto, Self, Keep")),
        ),
        (
            p,
            "x",
            "  peerSelector: has(rr)\n  sourceAddress: NodeIP\n",
            Some(("spec.sourceAddress", "UseNodeIP")),
        ),
        (
            p,
            "x",
            "  peerSelector: has(rr)\n  password:\n    secretKeyRef:\n      name: s\n      key: ''\n",
            Some(("spec.password.secretKeyRef.key", "required")),
        ),
    ]);
}

#[test]
fn bgp_configuration_and_nodes() {
    let c = "BGPConfiguration";
    let n = "Node";
    check_all(&[
        (
            c,
            "default",
            "  logSeverityScreen: Verbose\n",
            Some(("spec.logSeverityScreen", "Debug, Info")),
        ),
        (
            c,
            "default",
            "  listenPort: 0\n",
            Some(("spec.listenPort", "1..65535")),
        ),
        (
            c,
            "default",
            "  serviceClusterIPs:\n  - cidr: 10.96.0.0/40\n",
            Some(("spec.serviceClusterIPs[0].cidr", "invalid CIDR")),
        ),
        (
            c,
            "default",
            "  communities:\n  - name: c\n    value: 70000:1\n",
            Some(("spec.communities[0].value", "RFC 1997")),
        ),
        (
            c,
            "default",
            "  communities:\n  - name: c\n    value: 4200000000:1:2\n",
            None,
        ),
        (
            c,
            "default",
            "  prefixAdvertisements:\n  - cidr: 10.0.0.0/8\n    communities: [nope]\n",
            Some(("spec.prefixAdvertisements[0].communities[0]", "neither")),
        ),
        (
            c,
            "default",
            "  bindMode: All\n",
            Some(("spec.bindMode", "None or NodeIP")),
        ),
        (
            c,
            "default",
            "  nodeMeshMaxRestartTime: 2 minutes\n",
            Some(("spec.nodeMeshMaxRestartTime", "invalid duration")),
        ),
        (
            n,
            "node1",
            "  bgp:\n    ipv4Address: 10.0.0.1/24\n    ipv6Address: fd00::1\n",
            None,
        ),
        (
            n,
            "node1",
            "  bgp:\n    ipv4Address: fd00::1/64\n",
            Some(("spec.bgp.ipv4Address", "not an IPv4")),
        ),
        (
            n,
            "node1",
            "  bgp:\n    ipv4Address: 10.0.0.300/24\n",
            Some(("spec.bgp.ipv4Address", "invalid CIDR or IP")),
        ),
        (
            n,
            "node1",
            "  bgp:\n    asNumber: \"0.0\"\n",
            Some(("spec.bgp.asNumber", "reserved")),
        ),
        (
            n,
            "node1",
            "  bgp:\n    routeReflectorClusterID: 1.0.0\n",
            Some(("spec.bgp.routeReflectorClusterID", "invalid IP")),
        ),
        (
            n,
            "node1",
            "  vxlanTunnelMACAddr: 66:d5:2a\n",
            Some(("spec.vxlanTunnelMACAddr", "invalid MAC")),
        ),
        (
            n,
            "node1",
            "  orchRefs:\n  - nodeName: x\n    orchestrator: ''\n",
            Some(("spec.orchRefs[0].orchestrator", "required")),
        ),
    ]);
}

#[test]
fn policy_rules() {
    let g = "GlobalNetworkPolicy";
    let np = "NetworkPolicy";
    check_all(&[
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: UDP\n    destination:\n      ports: [53, '1000:2000', dns]\n",
            None,
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    destination:\n      ports: [80]\n",
            Some((
                "spec.ingress[0].destination",
                "protocol TCP, UDP or SCTP (protocol is unset)",
            )),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    source:\n      notPorts: [80]\n",
            Some(("spec.ingress[0].source", "(protocol is ICMP)")),
        ),
        (
            np,
            "p",
            "  egress:\n  - action: Allow\n    protocol: 132\n    destination:\n      ports: [80]\n",
            None,
        ),
        (
            np,
            "p",
            "  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: ['90:80']\n",
            Some(("spec.egress[0].destination.ports[0]", "start is above end")),
        ),
        (
            np,
            "p",
            "  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [Http_1]\n",
            Some(("spec.egress[0].destination.ports[0]", "invalid port name")),
        ),
        (
            np,
            "p",
            "  egress:\n  - action: Allow\n    protocol: 0\n",
            Some(("spec.egress[0].protocol", "1..255")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 8, code: 0}\n",
            None,
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 255}\n",
            Some(("spec.ingress[0].icmp.type", "outside 0..254")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: -1}\n",
            Some(("spec.ingress[0].icmp.type", "outside 0..254")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 3, code: 256}\n",
            Some(("spec.ingress[0].icmp.code", "outside 0..255")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {code: 1}\n",
            Some(("spec.ingress[0].icmp.code", "requires an ICMP type")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: TCP\n    icmp: {type: 8}\n",
            Some(("spec.ingress[0].icmp", "require protocol ICMP")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    protocol: ICMP\n    ipVersion: 6\n",
            Some(("spec.ingress[0].ipVersion", "requires ipVersion 4")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    ipVersion: 5\n",
            Some(("spec.ingress[0].ipVersion", "4 or 6")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    ipVersion: 4\n    source:\n      nets: [fd00::/8]\n",
            Some(("spec.ingress[0].source.nets[0]", "IPv6 CIDR")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Deny\n    source:\n      notNets: [10.0.0.0/35]\n",
            Some((
                "spec.ingress[0].source.notNets[0]",
                "invalid CIDR \"10.0.0.0/35\"",
            )),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Deny\n    source:\n      selector: a == 'b' &&\n",
            Some(("spec.ingress[0].source.selector", "invalid selector")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Deny\n    destination:\n      namespaceSelector: a in {'b'\n",
            Some((
                "spec.ingress[0].destination.namespaceSelector",
                "invalid selector",
            )),
        ),
        (
            np,
            "p",
            "  egress:\n  - action: Allow\n    destination:\n      services: {name: kube-dns}\n      nets: [10.0.0.0/8]\n",
            Some(("spec.egress[0].destination.services", "cannot be combined")),
        ),
        (
            np,
            "p",
            "  ingress:\n  - action: Allow\n    http:\n      paths:\n      - exact: /a\n        prefix: /b\n",
            Some(("spec.ingress[0].http.paths[0]", "exactly one")),
        ),
        (
            np,
            "p",
            "  selector: role == \n",
            Some(("spec.selector", "invalid selector")),
        ),
        (
            np,
            "p",
            "  types: [Egress]\n  ingress:\n  - action: Allow\n",
            Some(("spec.types", "does not include Ingress")),
        ),
        (
            np,
            "p",
            "  types: [Ingress, Ingress]\n",
            Some(("spec.types[1]", "twice")),
        ),
        (
            g,
            "p",
            "  preDNAT: true\n  applyOnForward: true\n  ingress:\n  - action: Deny\n",
            None,
        ),
        (
            g,
            "p",
            "  preDNAT: true\n  ingress:\n  - action: Deny\n",
            Some(("spec.applyOnForward", "must be true")),
        ),
        (
            g,
            "p",
            "  preDNAT: true\n  doNotTrack: true\n  applyOnForward: true\n",
            Some(("spec.preDNAT", "cannot both")),
        ),
        (
            g,
            "p",
            "  preDNAT: true\n  applyOnForward: true\n  egress:\n  - action: Deny\n",
            Some(("spec.egress", "preDNAT")),
        ),
        (
            g,
            "p",
            "  namespaceSelector: has(\n",
            Some(("spec.namespaceSelector", "invalid selector")),
        ),
        (
            "Profile",
            "p",
            "  labelsToApply:\n    'a b': c\n",
            Some(("spec.labelsToApply[a b]", "invalid label key")),
        ),
        (
            "Profile",
            "p",
            "  egress:\n  - action: Allow\n    protocol: ICMPv6\n    ipVersion: 4\n",
            Some(("spec.egress[0].ipVersion", "ICMPv6 requires ipVersion 6")),
        ),
    ]);
}

#[test]
fn endpoints() {
    let w = "WorkloadEndpoint";
    let h = "HostEndpoint";
    let base = "  node: node1\n  orchestrator: k8s\n";
    let cases: Vec<(String, Option<(&str, &str)>)> = vec![
        (
            format!(
                "{base}  interfaceName: cali0ef24b1b4c3\n  mac: ee:ee:ee:ee:ee:ee\n  ipNetworks: [10.0.0.1/32, fd00::1/128]\n"
            ),
            None,
        ),
        (
            format!("{base}  interfaceName: cali0ef24b1b4c3a\n"),
            Some(("spec.interfaceName", "1..15 bytes")),
        ),
        (
            format!("{base}  interfaceName: a/b\n"),
            Some(("spec.interfaceName", "'/'")),
        ),
        (
            format!("{base}  mac: ee:ee:ee:ee:ee\n"),
            Some(("spec.mac", "invalid MAC address")),
        ),
        (
            format!("{base}  mac: gg:ee:ee:ee:ee:ee\n"),
            Some(("spec.mac", "invalid MAC")),
        ),
        (
            format!("{base}  ipNetworks: [10.0.0.1/33]\n"),
            Some(("spec.ipNetworks[0]", "invalid CIDR \"10.0.0.1/33\"")),
        ),
        (
            "  orchestrator: k8s\n".to_string(),
            Some(("spec.node", "required")),
        ),
        (
            "  node: node1\n".to_string(),
            Some(("spec.orchestrator", "required")),
        ),
        (
            format!("{base}  ipv4Gateway: fd00::1\n"),
            Some(("spec.ipv4Gateway", "not an IPv4")),
        ),
        (
            format!(
                "{base}  ipNetworks: [10.0.0.1/32]\n  ipNATs:\n  - internalIP: 10.0.0.2\n    externalIP: 1.1.1.1\n"
            ),
            Some((
                "spec.ipNATs[0].internalIP",
                "not in the endpoint's ipNetworks",
            )),
        ),
        (
            format!("{base}  ports:\n  - name: http\n    protocol: TCP\n    port: 0\n"),
            Some(("spec.ports[0].port", "1..65535")),
        ),
        (
            format!("{base}  ports:\n  - name: http\n    protocol: ICMP\n    port: 1\n"),
            Some(("spec.ports[0].protocol", "has no ports")),
        ),
        (
            format!(
                "{base}  ports:\n  - name: http\n    protocol: TCP\n    port: 80\n    hostIP: nope\n"
            ),
            Some(("spec.ports[0].hostIP", "invalid IP")),
        ),
    ];
    for (spec, want) in cases {
        let got = run(w, "node1-k8s-pod-eth0", &spec);
        match want {
            None => assert!(got.is_ok(), "{spec}: {got:?}"),
            Some((path, frag)) => {
                let e = got.expect_err(&spec);
                assert!(
                    e.errors
                        .iter()
                        .any(|x| x.path == path && x.message.contains(frag)),
                    "{spec}: {e}"
                );
            }
        }
    }
    check_all(&[
        (h, "h", "  node: n1\n  interfaceName: \"*\"\n", None),
        (h, "h", "  node: n1\n  expectedIPs: [10.0.0.1]\n", None),
        (
            h,
            "h",
            "  node: n1\n",
            Some(("spec.interfaceName", "one of interfaceName or expectedIPs")),
        ),
        (
            h,
            "h",
            "  node: n1\n  expectedIPs: [10.0.0.1/24]\n",
            Some(("spec.expectedIPs[0]", "invalid IP")),
        ),
        (
            h,
            "h",
            "  interfaceName: eth0\n",
            Some(("spec.node", "required")),
        ),
    ]);
}

#[test]
fn order_must_be_finite() {
    use config::model::{NetworkPolicy, NetworkPolicySpec};
    let p = NetworkPolicy::named(
        "p",
        NetworkPolicySpec {
            order: Some(f64::NAN),
            ..Default::default()
        },
    );
    let e = validate(&p.into()).unwrap_err();
    assert!(
        e.to_string()
            .contains("spec.order: order must be a finite number"),
        "{e}"
    );
}

#[test]
fn every_error_is_reported() {
    let e = run(
        "IPPool",
        "Bad_Name",
        "  cidr: 10.0.0.0/27\n  nodeSelector: '&&'\n",
    )
    .unwrap_err();
    for p in ["metadata.name", "spec.cidr", "spec.nodeSelector"] {
        assert!(e.has_path(p), "{p}: {e}");
    }
    assert_eq!(e.errors.len(), 3, "{e}");
}

#[test]
fn validate_trait_on_concrete_kinds() {
    use config::validate::Validate;
    assert!(pool("ok", "10.0.0.0/16").validate().is_ok());
    let e = pool("ok", "10.0.0.0/33").validate().unwrap_err();
    assert_eq!(e.to_string(), "spec.cidr: invalid CIDR \"10.0.0.0/33\"");
    let any: AnyResource = pool("ok", "10.0.0.0/16").into();
    assert!(any.validate().is_ok());
}

#[test]
fn network_sets_take_cidrs_and_addresses() {
    for kind in ["NetworkSet", "GlobalNetworkSet"] {
        check_all(&[
            (
                kind,
                "ext",
                "  nets: [10.0.0.0/8, 192.0.2.7, 2001:db8::/32]\n",
                None,
            ),
            (kind, "ext", "  nets: []\n", None),
            (
                kind,
                "ext",
                "  nets: [10.0.0.0/8, 10.0.0.0/33]\n",
                Some(("spec.nets[1]", "10.0.0.0/33")),
            ),
            (
                kind,
                "ext",
                "  nets: [example.com]\n",
                Some(("spec.nets[0]", "example.com")),
            ),
            (
                kind,
                "Ext",
                "  nets: []\n",
                Some(("metadata.name", "DNS-1123")),
            ),
        ]);
    }
    // A GlobalNetworkSet has no namespace.
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: g, namespace: x}\nspec: {}\n";
    let errs = validate(&parse_documents(text).unwrap()[0]).unwrap_err();
    assert!(errs.has_path("metadata.namespace"), "{errs}");
}

#[test]
fn tiers() {
    check_all(&[
        (
            "Tier",
            "security",
            "  order: 100\n  defaultAction: Pass\n",
            None,
        ),
        ("Tier", "security", "  defaultAction: Deny\n", None),
        (
            "Tier",
            "security",
            "  defaultAction: Allow\n",
            Some(("spec.defaultAction", "Deny or Pass")),
        ),
        (
            "Tier",
            "security",
            "  defaultAction: Log\n",
            Some(("spec.defaultAction", "Deny or Pass")),
        ),
        (
            "Tier",
            "sec.urity",
            "  order: 1\n",
            Some(("metadata.name", "no '.'")),
        ),
        // A policy in a tier is named <tier>.<name>.
        (
            "GlobalNetworkPolicy",
            "security.block",
            "  tier: security\n",
            None,
        ),
        (
            "GlobalNetworkPolicy",
            "block",
            "  tier: security\n",
            Some(("metadata.name", "security.<name>")),
        ),
        ("GlobalNetworkPolicy", "block", "  tier: default\n", None),
    ]);
    use config::model::{Tier, TierSpec};
    let t = Tier::named(
        "t",
        TierSpec {
            order: Some(f64::INFINITY),
            ..Default::default()
        },
    );
    let e = validate(&t.into()).unwrap_err();
    assert!(e.has_path("spec.order"), "{e}");
}
