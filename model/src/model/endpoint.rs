//! `WorkloadEndpoint`, `HostEndpoint`, and Calico's workload endpoint naming.

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::numorstring::Protocol;
use super::object::impl_resource;

/// A pod's network interface.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadEndpoint {
    pub metadata: ObjectMeta,
    pub spec: WorkloadEndpointSpec,
}
impl_resource!(
    WorkloadEndpoint,
    WorkloadEndpointSpec,
    "WorkloadEndpoint",
    "workloadendpoints",
    true
);

/// Label Calico puts on every workload endpoint: its namespace.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
/// Label Calico puts on every workload endpoint: its orchestrator (`k8s`).
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// Label with the pod's service account name.
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(
        default,
        rename = "containerID",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// The endpoint's addresses as CIDRs (`10.65.79.1/32`).
    #[serde(default, rename = "ipNetworks", skip_serializing_if = "Vec::is_empty")]
    pub ip_networks: Vec<String>,
    #[serde(default, rename = "ipNATs", skip_serializing_if = "Vec::is_empty")]
    pub ip_nats: Vec<IpNat>,
    #[serde(
        default,
        rename = "ipv4Gateway",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_gateway: String,
    #[serde(
        default,
        rename = "ipv6Gateway",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_gateway: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Host-side interface (`cali...`), at most 15 bytes (IFNAMSIZ - 1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<WorkloadEndpointPort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_spoofed_source_prefixes: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpNat {
    #[serde(rename = "internalIP")]
    pub internal_ip: String,
    #[serde(rename = "externalIP")]
    pub external_ip: String,
}

/// A named container port (resolves named ports in rules); `hostPort` maps it on the node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_zero_port")]
    pub host_port: u16,
    #[serde(default, rename = "hostIP", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

fn is_zero_port(p: &u16) -> bool {
    *p == 0
}

/// A host interface (or all of a host's interfaces, `interfaceName: "*"`) under policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostEndpoint {
    pub metadata: ObjectMeta,
    pub spec: HostEndpointSpec,
}
impl_resource!(
    HostEndpoint,
    HostEndpointSpec,
    "HostEndpoint",
    "hostendpoints",
    false
);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEndpointSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    #[serde(default, rename = "expectedIPs", skip_serializing_if = "Vec::is_empty")]
    pub expected_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// The four identifiers a workload endpoint name is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WepNameParts {
    pub node: String,
    pub orchestrator: String,
    pub pod: String,
    pub endpoint: String,
}

/// Calico's workload endpoint name: `<node>-<orchestrator>-<pod>-<endpoint>`, each part
/// with its `-` doubled so the single `-` separators stay unambiguous
/// (`node1`, `k8s`, `my-nginx`, `eth0` -> `node1-k8s-my--nginx-eth0`).
pub fn wep_name(node: &str, orchestrator: &str, pod: &str, endpoint: &str) -> String {
    [node, orchestrator, pod, endpoint]
        .iter()
        .map(|p| p.replace('-', "--"))
        .collect::<Vec<_>>()
        .join("-")
}

/// Splits a name made by [`wep_name`] back into its parts.
pub fn parse_wep_name(name: &str) -> Result<WepNameParts, String> {
    let mut parts = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '-' {
            parts.last_mut().expect("never empty").push(c);
        } else if chars.peek() == Some(&'-') {
            chars.next();
            parts.last_mut().expect("never empty").push('-');
        } else {
            parts.push(String::new());
        }
    }
    match <[String; 4]>::try_from(parts) {
        Ok([node, orchestrator, pod, endpoint])
            if [&node, &orchestrator, &pod, &endpoint]
                .iter()
                .all(|p| !p.is_empty()) =>
        {
            Ok(WepNameParts {
                node,
                orchestrator,
                pod,
                endpoint,
            })
        }
        _ => Err(format!(
            "workload endpoint name {name:?} is not <node>-<orchestrator>-<pod>-<endpoint> \
             (with '-' inside a part doubled)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wep_names_round_trip() {
        let cases = [
            (
                ("node1", "k8s", "my-nginx", "eth0"),
                "node1-k8s-my--nginx-eth0",
            ),
            (
                ("ip-10-0-0-1", "k8s", "a", "eth0"),
                "ip--10--0--0--1-k8s-a-eth0",
            ),
            (("n", "cni", "x--y", "e-1"), "n-cni-x----y-e--1"),
        ];
        for ((n, o, p, e), want) in cases {
            let name = wep_name(n, o, p, e);
            assert_eq!(name, want);
            let back = parse_wep_name(&name).unwrap();
            assert_eq!(
                (
                    back.node.as_str(),
                    back.orchestrator.as_str(),
                    back.pod.as_str(),
                    back.endpoint.as_str()
                ),
                (n, o, p, e)
            );
        }
    }

    #[test]
    fn wep_names_refused() {
        for bad in [
            "node1-k8s-pod",
            "a-b-c-d-e",
            "a--b-c-d",
            "-k8s-p-e",
            "n-k8s-p-",
        ] {
            assert!(parse_wep_name(bad).is_err(), "{bad}");
        }
    }
}
