//! Checks for the network kinds: Node, BGPConfiguration, BGPPeer, IPPool, IPAMConfiguration.

use ipnet::IpNet;

use super::Errors;
use super::primitives::{cidr, cidr_or_ip, duration, ip, mac, selector};
use crate::model::{
    AsNumber, BGPConfigurationSpec, BGPPassword, BGPPeerSpec, EncapMode, IPAMConfigurationSpec,
    IPPoolSpec, NodeSpec, parse_peer_ip,
};

/// RFC 7607: AS 0 is reserved and must not be used as a peer or local AS.
fn as_number(path: &str, a: Option<AsNumber>, e: &mut Errors) {
    if a == Some(AsNumber(0)) {
        e.add(path, "AS number 0 is reserved (RFC 7607)");
    }
}

fn family_is(net: IpNet, v4: bool) -> bool {
    matches!(net, IpNet::V4(_)) == v4
}

pub(super) fn node(spec: &NodeSpec, e: &mut Errors) {
    if let Some(bgp) = &spec.bgp {
        as_number("spec.bgp.asNumber", bgp.as_number, e);
        if !bgp.ipv4_address.is_empty()
            && let Some(n) = cidr_or_ip("spec.bgp.ipv4Address", &bgp.ipv4_address, e)
            && !family_is(n, true)
        {
            e.add(
                "spec.bgp.ipv4Address",
                format!("{:?} is not an IPv4 address", bgp.ipv4_address),
            );
        }
        if !bgp.ipv6_address.is_empty()
            && let Some(n) = cidr_or_ip("spec.bgp.ipv6Address", &bgp.ipv6_address, e)
            && !family_is(n, false)
        {
            e.add(
                "spec.bgp.ipv6Address",
                format!("{:?} is not an IPv6 address", bgp.ipv6_address),
            );
        }
        if !bgp.ipv4_ipip_tunnel_addr.is_empty() {
            ipv4("spec.bgp.ipv4IPIPTunnelAddr", &bgp.ipv4_ipip_tunnel_addr, e);
        }
        // RFC 4456 section 7: CLUSTER_ID is a 4-octet value, written as an IPv4 address.
        if !bgp.route_reflector_cluster_id.is_empty() {
            ipv4(
                "spec.bgp.routeReflectorClusterID",
                &bgp.route_reflector_cluster_id,
                e,
            );
        }
    }
    if !spec.ipv4_vxlan_tunnel_addr.is_empty() {
        ipv4("spec.ipv4VXLANTunnelAddr", &spec.ipv4_vxlan_tunnel_addr, e);
    }
    if !spec.ipv6_vxlan_tunnel_addr.is_empty()
        && let Some(a) = ip("spec.ipv6VXLANTunnelAddr", &spec.ipv6_vxlan_tunnel_addr, e)
        && a.is_ipv4()
    {
        e.add(
            "spec.ipv6VXLANTunnelAddr",
            format!("{a} is not an IPv6 address"),
        );
    }
    if !spec.vxlan_tunnel_mac_addr.is_empty() {
        mac("spec.vxlanTunnelMACAddr", &spec.vxlan_tunnel_mac_addr, e);
    }
    if !spec.vxlan_tunnel_mac_addr_v6.is_empty() {
        mac(
            "spec.vxlanTunnelMACAddrV6",
            &spec.vxlan_tunnel_mac_addr_v6,
            e,
        );
    }
    for (i, r) in spec.orch_refs.iter().enumerate() {
        if r.orchestrator.is_empty() {
            e.add(
                format!("spec.orchRefs[{i}].orchestrator"),
                "orchestrator is required",
            );
        }
    }
    for (i, a) in spec.addresses.iter().enumerate() {
        cidr_or_ip(&format!("spec.addresses[{i}].address"), &a.address, e);
    }
}

fn ipv4(path: &str, s: &str, e: &mut Errors) {
    if let Some(a) = ip(path, s, e)
        && !a.is_ipv4()
    {
        e.add(path, format!("{a} is not an IPv4 address"));
    }
}

const LOG_SEVERITIES: [&str; 5] = ["Debug", "Info", "Warning", "Error", "Fatal"];

pub(super) fn bgp_configuration(name: &str, spec: &BGPConfigurationSpec, e: &mut Errors) {
    as_number("spec.asNumber", spec.as_number, e);
    if !spec.log_severity_screen.is_empty()
        && !LOG_SEVERITIES.contains(&spec.log_severity_screen.as_str())
    {
        e.add(
            "spec.logSeverityScreen",
            format!(
                "invalid log severity {:?}: expected one of {}",
                spec.log_severity_screen,
                LOG_SEVERITIES.join(", ")
            ),
        );
    }
    if spec.listen_port == Some(0) {
        e.add("spec.listenPort", "listen port must be 1..65535");
    }
    for (field, blocks) in [
        ("serviceClusterIPs", &spec.service_cluster_ips),
        ("serviceExternalIPs", &spec.service_external_ips),
        ("serviceLoadBalancerIPs", &spec.service_load_balancer_ips),
    ] {
        for (i, b) in blocks.iter().enumerate() {
            cidr(&format!("spec.{field}[{i}].cidr"), &b.cidr, e);
        }
    }
    for (i, c) in spec.communities.iter().enumerate() {
        if c.name.is_empty() {
            e.add(
                format!("spec.communities[{i}].name"),
                "community name is required",
            );
        }
        if let Err(m) = community_value(&c.value) {
            e.add(format!("spec.communities[{i}].value"), m);
        }
    }
    for (i, p) in spec.prefix_advertisements.iter().enumerate() {
        cidr(&format!("spec.prefixAdvertisements[{i}].cidr"), &p.cidr, e);
        for (j, c) in p.communities.iter().enumerate() {
            let known = spec.communities.iter().any(|k| &k.name == c);
            if !known && community_value(c).is_err() {
                e.add(
                    format!("spec.prefixAdvertisements[{i}].communities[{j}]"),
                    format!("{c:?} is neither a community defined in spec.communities nor a community value"),
                );
            }
        }
    }
    if let Some(p) = &spec.node_mesh_password {
        password("spec.nodeMeshPassword", p, e);
    }
    if let Some(d) = &spec.node_mesh_max_restart_time {
        duration("spec.nodeMeshMaxRestartTime", d, e);
    }
    if !spec.bind_mode.is_empty() && !["None", "NodeIP"].contains(&spec.bind_mode.as_str()) {
        e.add(
            "spec.bindMode",
            format!(
                "invalid bindMode {:?}: expected None or NodeIP",
                spec.bind_mode
            ),
        );
    }
    // Calico: cluster-wide settings only make sense on the `default` object.
    if name != "default" {
        let global_only = [
            (
                "spec.nodeToNodeMeshEnabled",
                spec.node_to_node_mesh_enabled.is_some(),
            ),
            ("spec.asNumber", spec.as_number.is_some()),
            (
                "spec.serviceClusterIPs",
                !spec.service_cluster_ips.is_empty(),
            ),
            (
                "spec.serviceExternalIPs",
                !spec.service_external_ips.is_empty(),
            ),
            (
                "spec.serviceLoadBalancerIPs",
                !spec.service_load_balancer_ips.is_empty(),
            ),
            ("spec.nodeMeshPassword", spec.node_mesh_password.is_some()),
            (
                "spec.nodeMeshMaxRestartTime",
                spec.node_mesh_max_restart_time.is_some(),
            ),
        ];
        for (path, set) in global_only {
            if set {
                e.add(
                    path,
                    "may only be set in the BGPConfiguration named \"default\"",
                );
            }
        }
    }
}

/// Standard `aa:nn` (RFC 1997, 16-bit parts) or large `aa:nn:mm` (RFC 8092, 32-bit parts).
fn community_value(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = match parts.len() {
        2 => parts.iter().all(|p| p.parse::<u16>().is_ok()),
        3 => parts.iter().all(|p| p.parse::<u32>().is_ok()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid community {s:?}: expected aa:nn (RFC 1997) or aa:nn:mm (RFC 8092)"
        ))
    }
}

fn password(path: &str, p: &BGPPassword, e: &mut Errors) {
    match &p.secret_key_ref {
        None => e.add(path, "secretKeyRef is required"),
        Some(r) => {
            if r.name.is_empty() {
                e.add(
                    format!("{path}.secretKeyRef.name"),
                    "secret name is required",
                );
            }
            if r.key.is_empty() {
                e.add(format!("{path}.secretKeyRef.key"), "secret key is required");
            }
        }
    }
}

fn one_of(path: &str, value: &str, allowed: &[&str], e: &mut Errors) {
    if !value.is_empty() && !allowed.contains(&value) {
        e.add(
            path,
            format!(
                "invalid value {value:?}: expected one of {}",
                allowed.join(", ")
            ),
        );
    }
}

pub(super) fn bgp_peer(spec: &BGPPeerSpec, e: &mut Errors) {
    if !spec.node.is_empty() && !spec.node_selector.is_empty() {
        e.add(
            "spec.nodeSelector",
            "node and nodeSelector are mutually exclusive",
        );
    }
    if !spec.node_selector.is_empty() {
        selector("spec.nodeSelector", &spec.node_selector, e);
    }
    match (spec.peer_ip.is_empty(), spec.peer_selector.is_empty()) {
        (false, false) => e.add(
            "spec.peerSelector",
            "peerIP and peerSelector are mutually exclusive",
        ),
        (true, true) => e.add("spec.peerIP", "one of peerIP or peerSelector is required"),
        (false, true) => {
            if let Err(m) = parse_peer_ip(&spec.peer_ip) {
                e.add("spec.peerIP", m);
            }
            if spec.as_number.is_none() {
                e.add("spec.asNumber", "asNumber is required with peerIP");
            }
        }
        (true, false) => selector("spec.peerSelector", &spec.peer_selector, e),
    }
    as_number("spec.asNumber", spec.as_number, e);
    as_number("spec.localASNumber", spec.local_as_number, e);
    if let Some(p) = &spec.password {
        password("spec.password", p, e);
    }
    for (path, d) in [
        ("spec.maxRestartTime", &spec.max_restart_time),
        ("spec.keepaliveTime", &spec.keepalive_time),
    ] {
        if let Some(d) = d {
            duration(path, d, e);
        }
    }
    // RFC 5082 (GTSM): a hop count of 0 cannot be satisfied.
    if spec.ttl_security == Some(0) {
        e.add("spec.ttlSecurity", "ttlSecurity must be 1..255 hops");
    }
    one_of(
        "spec.sourceAddress",
        &spec.source_address,
        &["UseNodeIP", "None"],
        e,
    );
    one_of(
        "spec.failureDetectionMode",
        &spec.failure_detection_mode,
        &["None", "BFDIfDirectlyConnected"],
        e,
    );
    one_of(
        "spec.restartMode",
        &spec.restart_mode,
        &["GracefulRestart", "LongLivedGracefulRestart"],
        e,
    );
    one_of(
        "spec.nextHopMode",
        &spec.next_hop_mode,
        &["Auto", "Self", "Keep"],
        e,
    );
    if spec.keep_original_next_hop && !spec.next_hop_mode.is_empty() && spec.next_hop_mode != "Keep"
    {
        e.add(
            "spec.nextHopMode",
            "keepOriginalNextHop conflicts with nextHopMode other than Keep",
        );
    }
}

/// Link-local ranges cannot be pools: Calico uses 169.254.1.1 as every pod's gateway,
/// and RFC 3927 / RFC 4291 section 2.5.6 addresses are not routable.
fn reserved_overlap(net: IpNet) -> Option<&'static str> {
    let reserved: &[(&str, &str)] = &[
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("127.0.0.0/8", "loopback"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("::1/128", "loopback"),
    ];
    reserved.iter().find_map(|(r, what)| {
        let r: IpNet = r.parse().expect("constant CIDR");
        (r.contains(&net.network()) || net.contains(&r.network())).then_some(*what)
    })
}

pub(super) fn ip_pool(spec: &IPPoolSpec, e: &mut Errors) {
    let Some(net) = cidr("spec.cidr", &spec.cidr, e) else {
        return;
    };
    let net = net.trunc();
    let v4 = matches!(net, IpNet::V4(_));
    if let Some(what) = reserved_overlap(net) {
        e.add(
            "spec.cidr",
            format!("IP pool {net} overlaps the {what} range"),
        );
    }
    let (lo, hi) = if v4 { (20, 32) } else { (116, 128) };
    let block = match spec.block_size {
        Some(b) if b < lo || b > hi => {
            let fam = if v4 { "IPv4" } else { "IPv6" };
            e.add(
                "spec.blockSize",
                format!("block size {b} is outside {lo}..{hi} for an {fam} pool"),
            );
            None
        }
        _ => Some(spec.effective_block_size()),
    };
    if let Some(block) = block
        && net.prefix_len() > block
    {
        e.add(
            "spec.cidr",
            format!("IP pool {net} is smaller than one block (/{block}); use a prefix of at most /{block}"),
        );
    }
    let ipip = spec.effective_ipip_mode();
    if !v4 && ipip != EncapMode::Never {
        e.add("spec.ipipMode", "IP-in-IP is not supported for IPv6 pools");
    }
    if ipip != EncapMode::Never && spec.effective_vxlan_mode() != EncapMode::Never {
        e.add(
            "spec.vxlanMode",
            "ipipMode and vxlanMode cannot both be enabled",
        );
    }
    if !spec.node_selector.is_empty() {
        selector("spec.nodeSelector", &spec.node_selector, e);
    }
    let mut seen = Vec::new();
    for (i, u) in spec.allowed_uses.iter().enumerate() {
        if seen.contains(u) {
            e.add(
                format!("spec.allowedUses[{i}]"),
                format!("{u:?} is listed twice"),
            );
        }
        seen.push(*u);
    }
}

pub(super) fn ipam_configuration(spec: &IPAMConfigurationSpec, e: &mut Errors) {
    // Calico stores maxBlocksPerHost as int32.
    if spec.max_blocks_per_host > i32::MAX as u32 {
        e.add(
            "spec.maxBlocksPerHost",
            format!("{} exceeds {}", spec.max_blocks_per_host, i32::MAX),
        );
    }
}
