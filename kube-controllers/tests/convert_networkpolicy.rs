//! Kubernetes NetworkPolicy -> Calico NetworkPolicy, table-tested: each case is the
//! Kubernetes object as YAML and the Calico object we expect, as YAML.

use config::model::{NetworkPolicy, to_yaml};
use k8s_openapi::api::networking::v1 as knet;
use kube_controllers::convert::networkpolicy::convert_network_policy;

fn convert(k8s: &str) -> Result<NetworkPolicy, String> {
    let np: knet::NetworkPolicy = serde_yaml_ng::from_str(k8s).expect("test input parses");
    convert_network_policy(&np).map_err(|e| e.to_string())
}

fn check(k8s: &str, calico: &str) {
    let got = to_yaml(&convert(k8s).unwrap()).unwrap();
    assert_eq!(got.trim(), calico.trim(), "\n--- got\n{got}");
}

#[test]
fn empty_pod_selector_is_every_pod_and_no_rules_is_deny() {
    check(
        r#"
metadata: {name: deny-all, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"#,
        r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: knp.default.deny-all
  namespace: prod
spec:
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s'
  types:
  - Ingress
  - Egress
"#,
    );
}

#[test]
fn peers_are_or_pod_and_namespace_selector_are_and() {
    check(
        r#"
metadata: {name: db, namespace: prod}
spec:
  podSelector:
    matchLabels: {role: db, app: pg}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: web}
      namespaceSelector:
        matchExpressions:
        - {key: team, operator: In, values: [a, b]}
    - namespaceSelector: {}
    - podSelector:
        matchExpressions:
        - {key: tier, operator: NotIn, values: [test]}
        - {key: canary, operator: DoesNotExist}
        - {key: release, operator: Exists}
"#,
        r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: knp.default.db
  namespace: prod
spec:
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s' && app == 'pg' && role == 'db'
  types:
  - Ingress
  ingress:
  - action: Allow
    source:
      selector: projectcalico.org/orchestrator == 'k8s' && role == 'web'
      namespaceSelector: team in { 'a', 'b' }
  - action: Allow
    source:
      namespaceSelector: all()
  - action: Allow
    source:
      selector: projectcalico.org/orchestrator == 'k8s' && tier not in { 'test' } && ! has(canary) && has(release)
"#,
    );
}

#[test]
fn ports_group_by_protocol_default_tcp_and_end_port() {
    check(
        r#"
metadata: {name: web, namespace: default}
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - ports:
    - port: 443
    - {port: 80, protocol: TCP}
    - {port: 8000, endPort: 8080}
    - {port: 8081}
    - {port: dns, protocol: UDP}
    - {port: 53, protocol: UDP}
    from:
    - ipBlock:
        cidr: 10.0.0.0/8
        except: [10.1.0.0/16, 10.2.0.1/16]
"#,
        r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: knp.default.web
  namespace: default
spec:
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s' && app == 'web'
  types:
  - Ingress
  ingress:
  - action: Allow
    protocol: TCP
    source:
      nets:
      - 10.0.0.0/8
      notNets:
      - 10.1.0.0/16
      - 10.2.0.0/16
    destination:
      ports:
      - 80
      - 443
      - 8000:8081
  - action: Allow
    protocol: UDP
    source:
      nets:
      - 10.0.0.0/8
      notNets:
      - 10.1.0.0/16
      - 10.2.0.0/16
    destination:
      ports:
      - 53
      - dns
"#,
    );
}

#[test]
fn egress_rules_and_default_types() {
    // policyTypes absent: Ingress plus Egress because there are egress rules. A port
    // entry without a port opens the whole protocol.
    check(
        r#"
metadata: {name: out, namespace: dev}
spec:
  podSelector: {}
  egress:
  - to:
    - podSelector: {matchLabels: {role: db}}
    ports:
    - {protocol: UDP}
    - {protocol: UDP, port: 53}
  - {}
"#,
        r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: knp.default.out
  namespace: dev
spec:
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s'
  types:
  - Ingress
  - Egress
  egress:
  - action: Allow
    protocol: UDP
    destination:
      selector: projectcalico.org/orchestrator == 'k8s' && role == 'db'
  - action: Allow
"#,
    );
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (
            "metadata: {name: x, namespace: d}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 80, protocol: ICMP}]\n",
            "NetworkPolicy d/x: ingress[0].ports[0].protocol: unknown protocol \"ICMP\"",
        ),
        (
            "metadata: {name: x, namespace: d}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 90, endPort: 80}]\n",
            "NetworkPolicy d/x: ingress[0].ports[0].endPort: 80 is not a port >= 90",
        ),
        (
            "metadata: {name: x, namespace: d}\nspec:\n  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/99}}]\n",
            "NetworkPolicy d/x: egress[0].to[0].ipBlock.cidr: \"10.0.0.0/99\" is not a CIDR",
        ),
        (
            "metadata: {name: x, namespace: d}\nspec:\n  podSelector:\n    matchExpressions: [{key: a, operator: In}]\n",
            "NetworkPolicy d/x: podSelector: operator In on key \"a\" needs values",
        ),
        (
            "metadata: {name: x}\nspec: {podSelector: {}}\n",
            "NetworkPolicy /x: metadata: name and namespace are required",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(convert(input).unwrap_err(), want);
    }
}

/// What the converter makes passes the project's validation of Calico resources.
#[test]
fn converted_policy_validates() {
    let np = convert(
        "metadata: {name: db, namespace: prod}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: web}}}]\n",
    )
    .unwrap();
    let result = config::validate::validate(&config::model::AnyResource::NetworkPolicy(np));
    assert!(result.is_ok(), "{result:?}");
}
