//! `BGPConfiguration` and `BGPPeer`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::numorstring::AsNumber;
use super::object::{impl_resource, is_false};

/// Cluster-wide (`default`) or per-node (`node.<name>`) BGP settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BGPConfiguration {
    pub metadata: ObjectMeta,
    pub spec: BGPConfigurationSpec,
}
impl_resource!(
    BGPConfiguration,
    BGPConfigurationSpec,
    "BGPConfiguration",
    "bgpconfigurations",
    false
);

/// Calico's default BGP port.
pub const DEFAULT_BGP_PORT: u16 = 179;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPConfigurationSpec {
    /// `Debug`, `Info`, `Warning`, `Error`, `Fatal`; empty means `Info`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_severity_screen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(
        default,
        rename = "serviceLoadBalancerIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<ServiceIPBlock>,
    #[serde(
        default,
        rename = "serviceExternalIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_external_ips: Vec<ServiceIPBlock>,
    #[serde(
        default,
        rename = "serviceClusterIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_cluster_ips: Vec<ServiceIPBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BGPPassword>,
    /// Go duration string (`120s`), graceful restart time for mesh sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<String>,
    /// `None` (listen on all addresses) or `NodeIP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bind_mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_interfaces: Vec<String>,
}

impl BGPConfigurationSpec {
    /// The cluster AS (64512 when unset).
    pub fn effective_as_number(&self) -> AsNumber {
        self.as_number.unwrap_or(AsNumber::DEFAULT)
    }

    /// Whether the node-to-node mesh runs (on when unset).
    pub fn mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    /// The BGP listen port (179 when unset).
    pub fn effective_listen_port(&self) -> u16 {
        self.listen_port.unwrap_or(DEFAULT_BGP_PORT)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceIPBlock {
    pub cidr: String,
}

/// A named community value: standard `aa:nn` (RFC 1997) or large `aa:nn:mm` (RFC 8092).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Community {
    pub name: String,
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrefixAdvertisement {
    pub cidr: String,
    /// Community names from `communities` or literal values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// A BGP session password (TCP MD5, RFC 2385), by reference to a secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPassword {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    pub name: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// An explicit BGP peering: from `node`/`nodeSelector` (neither = every node) to
/// `peerIP` or to the Calico nodes matching `peerSelector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BGPPeer {
    pub metadata: ObjectMeta,
    pub spec: BGPPeerSpec,
}
impl_resource!(BGPPeer, BGPPeerSpec, "BGPPeer", "bgppeers", false);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeerSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// `1.2.3.4`, `1.2.3.4:1790`, `2001:db8::1` or `[2001:db8::1]:179`.
    #[serde(default, rename = "peerIP", skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_selector: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_original_next_hop: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BGPPassword>,
    /// `UseNodeIP` (default) or `None`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_address: String,
    /// `None` or `BFDIfDirectlyConnected`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_detection_mode: String,
    /// `GracefulRestart` (default) or `LongLivedGracefulRestart`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restart_mode: String,
    /// Go duration string (`120s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<String>,
    #[serde(
        default,
        rename = "numAllowedLocalASNumbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<u32>,
    /// GTSM (RFC 5082): the peer may be at most this many hops away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    /// Go duration string (`80s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    /// `Auto` (default), `Self` or `Keep`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next_hop_mode: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reachable_by: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    #[serde(
        default,
        rename = "localASNumber",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<AsNumber>,
}

impl BGPPeerSpec {
    /// Neither `node` nor `nodeSelector`: every node peers.
    pub fn is_global(&self) -> bool {
        self.node.is_empty() && self.node_selector.is_empty()
    }

    /// `peerIP` as address and optional port; `None` if unset or malformed.
    pub fn peer_addr(&self) -> Option<(IpAddr, Option<u16>)> {
        if self.peer_ip.is_empty() {
            return None;
        }
        parse_peer_ip(&self.peer_ip).ok()
    }
}

/// Parses Calico's `peerIP` forms: `1.2.3.4`, `1.2.3.4:1790`, `2001:db8::1`,
/// `[2001:db8::1]:179`. A bare IPv6 address has no port (colons are part of it).
pub fn parse_peer_ip(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("invalid peerIP {s:?}: expected IP, IPv4:port or [IPv6]:port");
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (
            h.parse::<std::net::Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| bad())?,
            p,
        )
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        (
            h.parse::<std::net::Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| bad())?,
            p,
        )
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("invalid peerIP {s:?}: port must be 1..65535"))?;
    Ok((host, Some(port)))
}

/// Parses a Go `time.Duration` string (`90s`, `1m30s`, `1.5h`, `250ms`, `0`), as
/// Kubernetes `metav1.Duration` writes them. Negative durations are refused.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = |why: &str| format!("invalid duration {s:?}: {why}");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.starts_with('-') {
        return Err(bad("must not be negative"));
    }
    if body.is_empty() {
        return Err(bad("empty"));
    }
    let mut rest = body;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit (ns, us, ms, s, m, h)"))?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .map_err(|_| bad("expected a number before the unit"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad("unknown unit, expected ns, us, ms, s, m or h")),
        };
        total += value * scale;
        rest = tail;
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad("out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ip_forms() {
        assert_eq!(
            parse_peer_ip("1.2.3.4").unwrap(),
            ("1.2.3.4".parse().unwrap(), None)
        );
        assert_eq!(parse_peer_ip("1.2.3.4:1790").unwrap().1, Some(1790));
        assert_eq!(parse_peer_ip("2001:db8::1").unwrap().1, None);
        assert_eq!(parse_peer_ip("[2001:db8::1]:179").unwrap().1, Some(179));
        for bad in [
            "1.2.3.4:0",
            "1.2.3.4:x",
            "[1.2.3.4]:179",
            "host:179",
            "[2001:db8::1]",
            "1.2.3.4:70000",
        ] {
            assert!(parse_peer_ip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_go_duration("1m30s").unwrap().as_secs(), 90);
        assert_eq!(parse_go_duration("1.5h").unwrap().as_secs(), 5400);
        assert_eq!(parse_go_duration("250ms").unwrap().as_millis(), 250);
        assert_eq!(parse_go_duration("0").unwrap().as_secs(), 0);
        for bad in ["", "10", "-5s", "5x", "s", "1..2s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bgp_defaults() {
        let s = BGPConfigurationSpec::default();
        assert_eq!(s.effective_as_number(), AsNumber(64512));
        assert!(s.mesh_enabled());
        assert_eq!(s.effective_listen_port(), 179);
        let s = BGPConfigurationSpec {
            as_number: Some(AsNumber(65000)),
            node_to_node_mesh_enabled: Some(false),
            listen_port: Some(1790),
            ..Default::default()
        };
        assert_eq!(
            (
                s.effective_as_number().0,
                s.mesh_enabled(),
                s.effective_listen_port()
            ),
            (65000, false, 1790)
        );
    }
}
