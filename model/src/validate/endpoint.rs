//! Checks for WorkloadEndpoint and HostEndpoint.

use super::Errors;
use super::primitives::{cidr, interface_name, ip, is_dns1123_subdomain, mac, port_name_error};
use crate::model::{HostEndpointSpec, Protocol, WorkloadEndpointSpec};

fn node(path: &str, n: &str, e: &mut Errors) {
    if n.is_empty() {
        e.add(path, "node is required");
    } else if !is_dns1123_subdomain(n) {
        e.add(
            path,
            format!("invalid node name {n:?}: must be a DNS-1123 subdomain"),
        );
    }
}

/// Named endpoint ports are what named rule ports resolve to: TCP, UDP or SCTP.
fn endpoint_port(path: &str, name: &str, proto: Protocol, port: u16, e: &mut Errors) {
    if let Some(m) = port_name_error(name) {
        e.add(format!("{path}.name"), m);
    }
    if !proto.supports_ports() {
        e.add(
            format!("{path}.protocol"),
            format!("protocol {proto} has no ports; use TCP, UDP or SCTP"),
        );
    }
    if port == 0 {
        e.add(format!("{path}.port"), "port must be 1..65535");
    }
}

pub(super) fn workload_endpoint(s: &WorkloadEndpointSpec, e: &mut Errors) {
    node("spec.node", &s.node, e);
    if s.orchestrator.is_empty() {
        e.add("spec.orchestrator", "orchestrator is required");
    }
    if !s.interface_name.is_empty() {
        interface_name("spec.interfaceName", &s.interface_name, e);
    }
    if !s.mac.is_empty() {
        mac("spec.mac", &s.mac, e);
    }
    for (i, n) in s.ip_networks.iter().enumerate() {
        cidr(&format!("spec.ipNetworks[{i}]"), n, e);
    }
    for (i, n) in s.allow_spoofed_source_prefixes.iter().enumerate() {
        cidr(&format!("spec.allowSpoofedSourcePrefixes[{i}]"), n, e);
    }
    for (i, nat) in s.ip_nats.iter().enumerate() {
        let p = format!("spec.ipNATs[{i}]");
        let internal = ip(&format!("{p}.internalIP"), &nat.internal_ip, e);
        let external = ip(&format!("{p}.externalIP"), &nat.external_ip, e);
        if let (Some(a), Some(b)) = (internal, external)
            && a.is_ipv4() != b.is_ipv4()
        {
            e.add(
                p.clone(),
                "internalIP and externalIP must be of the same IP version",
            );
        }
        // Calico: a NAT maps one of the endpoint's own addresses.
        if let Some(a) = internal {
            let owned = s
                .ip_networks
                .iter()
                .filter_map(|n| n.parse::<ipnet::IpNet>().ok())
                .any(|n| n.contains(&a));
            if !owned {
                e.add(
                    format!("{p}.internalIP"),
                    format!("{a} is not in the endpoint's ipNetworks"),
                );
            }
        }
    }
    for (field, gw, v4) in [
        ("ipv4Gateway", &s.ipv4_gateway, true),
        ("ipv6Gateway", &s.ipv6_gateway, false),
    ] {
        let path = format!("spec.{field}");
        if !gw.is_empty()
            && let Some(a) = ip(&path, gw, e)
            && a.is_ipv4() != v4
        {
            e.add(
                path,
                format!("{a} is not an IPv{} address", if v4 { 4 } else { 6 }),
            );
        }
    }
    profiles(&s.profiles, e);
    for (i, p) in s.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        endpoint_port(&path, &p.name, p.protocol, p.port, e);
        if !p.host_ip.is_empty() {
            ip(&format!("{path}.hostIP"), &p.host_ip, e);
        }
    }
}

pub(super) fn host_endpoint(s: &HostEndpointSpec, e: &mut Errors) {
    node("spec.node", &s.node, e);
    if s.interface_name.is_empty() && s.expected_ips.is_empty() {
        e.add(
            "spec.interfaceName",
            "one of interfaceName or expectedIPs is required",
        );
    }
    // `*` means every interface of the host (Calico's "all-interfaces" host endpoint).
    if !s.interface_name.is_empty() && s.interface_name != "*" {
        interface_name("spec.interfaceName", &s.interface_name, e);
    }
    for (i, a) in s.expected_ips.iter().enumerate() {
        ip(&format!("spec.expectedIPs[{i}]"), a, e);
    }
    profiles(&s.profiles, e);
    for (i, p) in s.ports.iter().enumerate() {
        endpoint_port(&format!("spec.ports[{i}]"), &p.name, p.protocol, p.port, e);
    }
}

/// `spec.profiles` of an endpoint: names must not be empty.
fn profiles(names: &[String], e: &mut Errors) {
    for (i, p) in names.iter().enumerate() {
        if p.is_empty() {
            e.add(
                format!("spec.profiles[{i}]"),
                "profile name must not be empty",
            );
        }
    }
}
