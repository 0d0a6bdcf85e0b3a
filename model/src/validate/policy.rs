//! Checks for policies, profiles and their rules.

use ipnet::IpNet;

use super::Errors;
use super::primitives::{cidr, is_dns1123_subdomain, port, selector};
use crate::model::{
    Action, EntityRule, GlobalNetworkPolicySpec, IcmpFields, NetworkPolicySpec, PolicyType,
    ProfileSpec, Protocol, Rule, TierSpec,
};

const PERFORMANCE_HINTS: [&str; 1] = ["AssumeNeededOnEveryNode"];

/// The fields NetworkPolicy and GlobalNetworkPolicy share.
struct Common<'a> {
    tier: &'a str,
    order: Option<f64>,
    selector: &'a str,
    types: &'a [PolicyType],
    ingress: &'a [Rule],
    egress: &'a [Rule],
    service_account_selector: &'a str,
    performance_hints: &'a [String],
}

fn common(c: Common<'_>, e: &mut Errors) {
    if !c.tier.is_empty() && !is_dns1123_subdomain(c.tier) {
        e.add(
            "spec.tier",
            format!(
                "invalid tier name {:?}: must be a DNS-1123 subdomain",
                c.tier
            ),
        );
    }
    if let Some(o) = c.order
        && !o.is_finite()
    {
        e.add(
            "spec.order",
            format!("order must be a finite number, not {o}"),
        );
    }
    if !c.selector.is_empty() {
        selector("spec.selector", c.selector, e);
    }
    if !c.service_account_selector.is_empty() {
        selector("spec.serviceAccountSelector", c.service_account_selector, e);
    }
    for (i, t) in c.types.iter().enumerate() {
        if c.types[..i].contains(t) {
            e.add(format!("spec.types[{i}]"), format!("{t:?} is listed twice"));
        }
    }
    // Calico: rules for a direction the policy does not apply to would be silently ignored.
    if !c.types.is_empty() {
        if !c.ingress.is_empty() && !c.types.contains(&PolicyType::Ingress) {
            e.add(
                "spec.types",
                "ingress rules are present but types does not include Ingress",
            );
        }
        if !c.egress.is_empty() && !c.types.contains(&PolicyType::Egress) {
            e.add(
                "spec.types",
                "egress rules are present but types does not include Egress",
            );
        }
    }
    for (i, h) in c.performance_hints.iter().enumerate() {
        if !PERFORMANCE_HINTS.contains(&h.as_str()) {
            e.add(
                format!("spec.performanceHints[{i}]"),
                format!("unknown performance hint {h:?}"),
            );
        }
    }
    rules("spec.ingress", c.ingress, e);
    rules("spec.egress", c.egress, e);
}

/// A tier: a finite order, and a default action of Deny or Pass (Calico's validator
/// refuses Allow and Log there).
pub(super) fn tier(s: &TierSpec, e: &mut Errors) {
    if let Some(o) = s.order
        && !o.is_finite()
    {
        e.add(
            "spec.order",
            format!("order must be a finite number, not {o}"),
        );
    }
    if let Some(a) = s.default_action
        && !matches!(a, Action::Deny | Action::Pass)
    {
        e.add(
            "spec.defaultAction",
            format!("{a:?} is not a tier default action (Deny or Pass)"),
        );
    }
}

pub(super) fn network_policy(s: &NetworkPolicySpec, e: &mut Errors) {
    common(
        Common {
            tier: &s.tier,
            order: s.order,
            selector: &s.selector,
            types: &s.types,
            ingress: &s.ingress,
            egress: &s.egress,
            service_account_selector: &s.service_account_selector,
            performance_hints: &s.performance_hints,
        },
        e,
    );
}

pub(super) fn global_network_policy(s: &GlobalNetworkPolicySpec, e: &mut Errors) {
    common(
        Common {
            tier: &s.tier,
            order: s.order,
            selector: &s.selector,
            types: &s.types,
            ingress: &s.ingress,
            egress: &s.egress,
            service_account_selector: &s.service_account_selector,
            performance_hints: &s.performance_hints,
        },
        e,
    );
    if !s.namespace_selector.is_empty() {
        selector("spec.namespaceSelector", &s.namespace_selector, e);
    }
    // Calico's rules for host-endpoint special policies: untracked and pre-DNAT policies
    // are enforced outside the normal filter path, so they must apply to forwarded traffic.
    if s.do_not_track && s.pre_dnat {
        e.add("spec.preDNAT", "preDNAT and doNotTrack cannot both be true");
    }
    if (s.do_not_track || s.pre_dnat) && !s.apply_on_forward {
        e.add(
            "spec.applyOnForward",
            "applyOnForward must be true when doNotTrack or preDNAT is true",
        );
    }
    if s.pre_dnat && (!s.egress.is_empty() || s.types.contains(&PolicyType::Egress)) {
        e.add(
            "spec.egress",
            "a preDNAT policy cannot have egress rules or the Egress type",
        );
    }
}

pub(super) fn profile(s: &ProfileSpec, e: &mut Errors) {
    for (k, v) in &s.labels_to_apply {
        if let Some(m) = super::label_key_error(k) {
            e.add(format!("spec.labelsToApply[{k}]"), m);
        }
        if let Some(m) = super::label_value_error(v) {
            e.add(format!("spec.labelsToApply[{k}]"), m);
        }
    }
    rules("spec.ingress", &s.ingress, e);
    rules("spec.egress", &s.egress, e);
}

fn rules(path: &str, list: &[Rule], e: &mut Errors) {
    for (i, r) in list.iter().enumerate() {
        rule(&format!("{path}[{i}]"), r, e);
    }
}

/// One rule: protocol/port/ICMP consistency, IP version agreement, entity matches.
pub(super) fn rule(path: &str, r: &Rule, e: &mut Errors) {
    for (field, p) in [("protocol", r.protocol), ("notProtocol", r.not_protocol)] {
        if p == Some(Protocol::Number(0)) {
            e.add(format!("{path}.{field}"), "protocol number must be 1..255");
        }
    }
    let ports_ok = r.protocol.is_some_and(Protocol::supports_ports);
    for (side, ent) in [("source", &r.source), ("destination", &r.destination)] {
        if ent.has_ports() && !ports_ok {
            e.add(
                format!("{path}.{side}"),
                format!(
                    "ports are only allowed with protocol TCP, UDP or SCTP (protocol is {})",
                    r.protocol.map_or("unset".to_string(), |p| p.to_string())
                ),
            );
        }
    }
    let version = match r.ip_version {
        None => None,
        Some(v @ (4 | 6)) => Some(v),
        Some(v) => {
            e.add(
                format!("{path}.ipVersion"),
                format!("ipVersion must be 4 or 6, not {v}"),
            );
            None
        }
    };
    for (field, icmp, proto) in [
        ("icmp", &r.icmp, r.protocol),
        ("notICMP", &r.not_icmp, r.protocol),
    ] {
        if let Some(icmp) = icmp {
            icmp_fields(&format!("{path}.{field}"), icmp, proto, e);
        }
    }
    // ICMP is IPv4-only and ICMPv6 IPv6-only: a rule naming the other version never matches.
    match (r.protocol, version) {
        (Some(Protocol::Icmp), Some(6)) => e.add(
            format!("{path}.ipVersion"),
            "protocol ICMP requires ipVersion 4",
        ),
        (Some(Protocol::IcmpV6), Some(4)) => e.add(
            format!("{path}.ipVersion"),
            "protocol ICMPv6 requires ipVersion 6",
        ),
        _ => {}
    }
    for (side, ent) in [("source", &r.source), ("destination", &r.destination)] {
        entity(&format!("{path}.{side}"), ent, version, e);
    }
    if let Some(h) = &r.http {
        for (i, p) in h.paths.iter().enumerate() {
            if p.exact.is_empty() == p.prefix.is_empty() {
                e.add(
                    format!("{path}.http.paths[{i}]"),
                    "exactly one of exact or prefix must be set",
                );
            }
        }
    }
}

fn icmp_fields(path: &str, f: &IcmpFields, proto: Option<Protocol>, e: &mut Errors) {
    if !proto.is_some_and(Protocol::is_icmp) {
        e.add(path, "ICMP matches require protocol ICMP or ICMPv6");
    }
    // ICMP type 255 is reserved (RFC 4443 / IANA); iptables treats it as "any".
    if let Some(t) = f.icmp_type
        && !(0..=254).contains(&t)
    {
        e.add(
            format!("{path}.type"),
            format!("ICMP type {t} is outside 0..254"),
        );
    }
    if let Some(c) = f.code {
        if !(0..=255).contains(&c) {
            e.add(
                format!("{path}.code"),
                format!("ICMP code {c} is outside 0..255"),
            );
        }
        if f.icmp_type.is_none() {
            e.add(format!("{path}.code"), "an ICMP code requires an ICMP type");
        }
    }
}

fn entity(path: &str, ent: &EntityRule, version: Option<u8>, e: &mut Errors) {
    for (field, nets) in [("nets", &ent.nets), ("notNets", &ent.not_nets)] {
        for (i, n) in nets.iter().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            if let Some(net) = cidr(&p, n, e) {
                let v = if matches!(net, IpNet::V4(_)) { 4 } else { 6 };
                if version.is_some_and(|want| want != v) {
                    e.add(
                        p,
                        format!(
                            "IPv{v} CIDR {n:?} in a rule with ipVersion {}",
                            version.unwrap_or(v)
                        ),
                    );
                }
            }
        }
    }
    for (field, s) in [
        ("selector", &ent.selector),
        ("notSelector", &ent.not_selector),
        ("namespaceSelector", &ent.namespace_selector),
    ] {
        if !s.is_empty() {
            selector(&format!("{path}.{field}"), s, e);
        }
    }
    if let Some(sa) = &ent.service_accounts
        && !sa.selector.is_empty()
    {
        selector(&format!("{path}.serviceAccounts.selector"), &sa.selector, e);
    }
    for (field, ports) in [("ports", &ent.ports), ("notPorts", &ent.not_ports)] {
        for (i, p) in ports.iter().enumerate() {
            port(&format!("{path}.{field}[{i}]"), p, e);
        }
    }
    if let Some(svc) = &ent.services {
        if svc.name.is_empty() {
            e.add(format!("{path}.services.name"), "service name is required");
        }
        // Calico: a service match selects endpoints and ports itself.
        let mixed = !ent.selector.is_empty()
            || !ent.not_selector.is_empty()
            || !ent.nets.is_empty()
            || !ent.not_nets.is_empty()
            || ent.has_ports();
        if mixed {
            e.add(
                format!("{path}.services"),
                "services cannot be combined with selector, nets or ports",
            );
        }
    }
}
