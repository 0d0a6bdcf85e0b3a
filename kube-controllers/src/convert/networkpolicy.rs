//! Kubernetes NetworkPolicy (networking.k8s.io/v1) -> Calico NetworkPolicy, as
//! Calico's converter (libcalico-go `conversion.K8sNetworkPolicyToCalico`) does it:
//! name `knp.default.<name>`, order 1000, Allow rules only.
//!
//! * `podSelector` selects pods of the policy's namespace; empty means all of them
//!   (`projectcalico.org/orchestrator == 'k8s'` is always part of a pod selector, so
//!   only Kubernetes pods match).
//! * Peers in `from`/`to` are ORed: one Calico rule per peer (and per protocol of
//!   the ports). `podSelector` and `namespaceSelector` in one peer are ANDed (the
//!   rule's `selector` and `namespaceSelector`). `ipBlock` -> `nets`/`notNets`.
//! * A port's protocol defaults to TCP; `endPort` makes a range; ports of one
//!   protocol are merged and sorted.
//! * `policyTypes` empty: Ingress, plus Egress when there are egress rules (what the
//!   API server stores by default).

use std::collections::BTreeMap;

use config::model::{
    Action, EntityRule, NetworkPolicy, NetworkPolicySpec, ObjectMeta, PolicyType, Port, Protocol,
    Rule,
};
use config::selector::Selector;
use ipnet::IpNet;
use k8s_openapi::api::networking::v1 as knet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use thiserror::Error;

/// Prefix of the Calico name of a converted Kubernetes policy.
pub const K8S_POLICY_PREFIX: &str = "knp.default.";
/// The order Calico gives converted Kubernetes policies.
pub const K8S_POLICY_ORDER: f64 = 1000.0;
pub(crate) const ORCHESTRATOR_K8S: &str = "projectcalico.org/orchestrator == 'k8s'";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("NetworkPolicy {namespace}/{name}: {field}: {reason}")]
pub struct K8sConvertError {
    pub namespace: String,
    pub name: String,
    /// Where in the spec, e.g. `ingress[0].from[1].ipBlock.cidr`.
    pub field: String,
    pub reason: String,
}

/// Converts one Kubernetes NetworkPolicy.
pub fn convert_network_policy(np: &knet::NetworkPolicy) -> Result<NetworkPolicy, K8sConvertError> {
    let name = np.metadata.name.clone().unwrap_or_default();
    let namespace = np.metadata.namespace.clone().unwrap_or_default();
    let fail = |field: &str, reason: String| K8sConvertError {
        namespace: namespace.clone(),
        name: name.clone(),
        field: field.into(),
        reason,
    };
    if name.is_empty() || namespace.is_empty() {
        return Err(fail("metadata", "name and namespace are required".into()));
    }
    let empty = knet::NetworkPolicySpec::default();
    let spec = np.spec.as_ref().unwrap_or(&empty);
    let selector = policy_selector(spec).map_err(|r| fail("podSelector", r))?;
    let mut ingress = Vec::new();
    for (i, r) in spec.ingress.iter().flatten().enumerate() {
        let at = format!("ingress[{i}]");
        ingress.extend(
            rules(r.from.as_deref(), r.ports.as_deref(), true, &at)
                .map_err(|(f, r)| fail(&f, r))?,
        );
    }
    let mut egress = Vec::new();
    for (i, r) in spec.egress.iter().flatten().enumerate() {
        let at = format!("egress[{i}]");
        egress.extend(
            rules(r.to.as_deref(), r.ports.as_deref(), false, &at).map_err(|(f, r)| fail(&f, r))?,
        );
    }
    let types = policy_types(spec).map_err(|r| fail("policyTypes", r))?;
    Ok(NetworkPolicy {
        metadata: ObjectMeta {
            name: format!("{K8S_POLICY_PREFIX}{name}"),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: NetworkPolicySpec {
            order: Some(K8S_POLICY_ORDER),
            selector,
            types,
            ingress,
            egress,
            ..NetworkPolicySpec::default()
        },
    })
}

/// The policy's selector in Calico syntax: its pods, or all Kubernetes pods of the
/// namespace when `podSelector` is absent.
pub(crate) fn policy_selector(spec: &knet::NetworkPolicySpec) -> Result<String, String> {
    Ok(pod_selector(spec.pod_selector.as_ref())?.unwrap_or_else(|| ORCHESTRATOR_K8S.to_string()))
}

/// `policyTypes`; when empty, Ingress plus Egress if there are egress rules (what the
/// API server stores by default).
pub(crate) fn policy_types(spec: &knet::NetworkPolicySpec) -> Result<Vec<PolicyType>, String> {
    match spec.policy_types.as_deref() {
        None | Some([]) => {
            let mut t = vec![PolicyType::Ingress];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                t.push(PolicyType::Egress);
            }
            Ok(t)
        }
        Some(given) => {
            if let Some(bad) = given.iter().find(|g| *g != "Ingress" && *g != "Egress") {
                return Err(format!("unknown type {bad:?}"));
            }
            Ok([
                ("Ingress", PolicyType::Ingress),
                ("Egress", PolicyType::Egress),
            ]
            .into_iter()
            .filter(|(want, _)| given.iter().any(|g| g == want))
            .map(|(_, ty)| ty)
            .collect())
        }
    }
}

type FieldError = (String, String);
/// Ports per protocol: `None` protocol = any; an empty list = every port.
type PortsByProtocol = Vec<(Option<Protocol>, Vec<Port>)>;

/// One rule per (peer, protocol); no peers = any peer, no ports = any port.
fn rules(
    peers: Option<&[knet::NetworkPolicyPeer]>,
    ports: Option<&[knet::NetworkPolicyPort]>,
    ingress: bool,
    at: &str,
) -> Result<Vec<Rule>, FieldError> {
    let by_protocol = ports_by_protocol(ports.unwrap_or_default(), at)?;
    let peer_list: Vec<Option<&knet::NetworkPolicyPeer>> = match peers {
        None | Some([]) => vec![None],
        Some(ps) => ps.iter().map(Some).collect(),
    };
    let side = if ingress { "from" } else { "to" };
    let mut out = Vec::new();
    for (i, peer) in peer_list.into_iter().enumerate() {
        let entity = match peer {
            Some(p) => peer_entity(p).map_err(|(f, r)| (format!("{at}.{side}[{i}].{f}"), r))?,
            None => EntityRule::default(),
        };
        for (protocol, ports) in &by_protocol {
            let mut rule = Rule {
                action: Action::Allow,
                protocol: *protocol,
                ..Rule::default()
            };
            let ports = simplify_ports(ports);
            if ingress {
                rule.source = entity.clone();
                rule.destination.ports = ports;
            } else {
                rule.destination = EntityRule {
                    ports,
                    ..entity.clone()
                };
            }
            out.push(rule);
        }
    }
    Ok(out)
}

/// Ports grouped by protocol (sorted by name, as Calico); an empty port list for a
/// protocol means all its ports, and a `None` protocol (no ports at all) means any.
fn ports_by_protocol(
    ports: &[knet::NetworkPolicyPort],
    at: &str,
) -> Result<PortsByProtocol, FieldError> {
    if ports.is_empty() {
        return Ok(vec![(None, Vec::new())]);
    }
    let mut by_name: BTreeMap<String, (Protocol, Option<Vec<Port>>)> = BTreeMap::new();
    for (i, p) in ports.iter().enumerate() {
        let field = |f: &str| format!("{at}.ports[{i}].{f}");
        let proto = match p.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            other => return Err((field("protocol"), format!("unknown protocol {other:?}"))),
        };
        let port = match (&p.port, p.end_port) {
            (None, None) => None,
            (None, Some(_)) => return Err((field("endPort"), "endPort needs port".into())),
            (Some(IntOrString::Int(n)), end) => {
                let num =
                    port_number(*n).ok_or_else(|| (field("port"), format!("{n} is not a port")))?;
                match end {
                    None => Some(Port::Number(num)),
                    Some(e) => {
                        let end = port_number(e).filter(|e| *e >= num).ok_or_else(|| {
                            (field("endPort"), format!("{e} is not a port >= {num}"))
                        })?;
                        Some(Port::Range(num, end))
                    }
                }
            }
            (Some(IntOrString::String(s)), end) => {
                if end.is_some() {
                    return Err((field("endPort"), "endPort needs a numeric port".into()));
                }
                Some(s.parse::<Port>().map_err(|r| (field("port"), r))?)
            }
        };
        let entry = by_name
            .entry(proto.to_string())
            .or_insert((proto, Some(Vec::new())));
        match (port, &mut entry.1) {
            // A port entry without a port opens the whole protocol.
            (None, all) => *all = None,
            (Some(p), Some(list)) => list.push(p),
            (Some(_), None) => {}
        }
    }
    Ok(by_name
        .into_values()
        .map(|(proto, ports)| (Some(proto), ports.unwrap_or_default()))
        .collect())
}

fn port_number(n: i32) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// Numeric ports sorted with overlapping or adjacent ranges merged, then named ports
/// (Calico's `SimplifyPorts`).
fn simplify_ports(ports: &[Port]) -> Vec<Port> {
    let mut ranges: Vec<(u16, u16)> = ports.iter().filter_map(Port::bounds).collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut out: Vec<Port> = merged
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                Port::Number(a)
            } else {
                Port::Range(a, b)
            }
        })
        .collect();
    for p in ports {
        if matches!(p, Port::Named(_)) && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

fn peer_entity(peer: &knet::NetworkPolicyPeer) -> Result<EntityRule, FieldError> {
    if let Some(block) = &peer.ip_block {
        let net = |s: &str, f: &str| {
            s.parse::<IpNet>()
                .map(|n| n.trunc().to_string())
                .map_err(|_| (f.to_string(), format!("{s:?} is not a CIDR")))
        };
        let nets = vec![net(&block.cidr, "ipBlock.cidr")?];
        let not_nets = block
            .except
            .iter()
            .flatten()
            .map(|e| net(e, "ipBlock.except"))
            .collect::<Result<_, _>>()?;
        return Ok(EntityRule {
            nets,
            not_nets,
            ..EntityRule::default()
        });
    }
    let mut e = EntityRule::default();
    if let Some(ps) = &peer.pod_selector {
        e.selector = pod_selector(Some(ps))
            .map_err(|r| ("podSelector".to_string(), r))?
            .unwrap_or_else(|| ORCHESTRATOR_K8S.into());
    }
    if let Some(ns) = &peer.namespace_selector {
        let terms = label_selector_terms(ns).map_err(|r| ("namespaceSelector".to_string(), r))?;
        e.namespace_selector = if terms.is_empty() {
            "all()".into()
        } else {
            checked(terms.join(" && ")).map_err(|r| ("namespaceSelector".to_string(), r))?
        };
    }
    Ok(e)
}

/// A pod selector in Calico syntax, always restricted to Kubernetes pods; `None`
/// when absent.
fn pod_selector(sel: Option<&LabelSelector>) -> Result<Option<String>, String> {
    let Some(sel) = sel else { return Ok(None) };
    let mut terms = vec![ORCHESTRATOR_K8S.to_string()];
    terms.extend(label_selector_terms(sel)?);
    checked(terms.join(" && ")).map(Some)
}

/// `matchLabels` (sorted by key) then `matchExpressions`, each as one Calico term.
fn label_selector_terms(sel: &LabelSelector) -> Result<Vec<String>, String> {
    let mut terms: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k} == '{v}'"))
        .collect();
    for req in sel.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let set = || {
            if values.is_empty() {
                Err(format!(
                    "operator {} on key {:?} needs values",
                    req.operator, req.key
                ))
            } else {
                Ok(format!("{{ '{}' }}", values.join("', '")))
            }
        };
        terms.push(match req.operator.as_str() {
            "In" => format!("{} in {}", req.key, set()?),
            "NotIn" => format!("{} not in {}", req.key, set()?),
            "Exists" => format!("has({})", req.key),
            "DoesNotExist" => format!("! has({})", req.key),
            other => return Err(format!("unknown operator {other:?} on key {:?}", req.key)),
        });
    }
    Ok(terms)
}

/// Refuses a selector our parser (Calico's grammar) cannot read, e.g. a value with
/// a quote: better an error now than a policy that never applies.
fn checked(selector: String) -> Result<String, String> {
    Selector::parse(&selector)
        .map(|_| selector.clone())
        .map_err(|e| format!("converted selector {selector:?} does not parse: {e}"))
}
