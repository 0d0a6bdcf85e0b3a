//! The pure part: a Pod and its Namespace -> what the endpoint and IPAM request carry.

use std::collections::BTreeMap;
use std::net::IpAddr;

use config::model::{Protocol, WorkloadEndpointPort};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::Value;

use crate::error::{CniError, DECODE_FAILURE, INVALID_CONFIG, Result};

/// IPv4 pools (names or CIDRs, a JSON list) for the pod, on the pod or its namespace.
pub const ANNOTATION_IPV4_POOLS: &str = "cni.projectcalico.org/ipv4pools";
pub const ANNOTATION_IPV6_POOLS: &str = "cni.projectcalico.org/ipv6pools";
/// Addresses the pod must get (a JSON list, at most one per family), through IPAM.
pub const ANNOTATION_IP_ADDRS: &str = "cni.projectcalico.org/ipAddrs";
/// Addresses without IPAM: a Calico feature behind `feature_control`, not implemented.
pub const ANNOTATION_IP_ADDRS_NO_IPAM: &str = "cni.projectcalico.org/ipAddrsNoIpam";

/// What ADD takes from the pod and its namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodInfo {
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    /// Container ports with a name or a host port (Calico's rule), in container order.
    pub ports: Vec<WorkloadEndpointPort>,
    pub ipv4_pools: Option<Vec<String>>,
    pub ipv6_pools: Option<Vec<String>>,
    pub ip_addrs: Vec<IpAddr>,
}

/// Maps a pod and its namespace, checking the annotations Calico reads.
pub fn pod_info(pod: &Pod, ns: &Namespace) -> Result<PodInfo> {
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let ns_annotations = ns.metadata.annotations.as_ref().unwrap_or(&empty);
    let pools = |key: &str| -> Result<Option<Vec<String>>> {
        // The pod's annotation wins over its namespace's.
        match annotations.get(key).or_else(|| ns_annotations.get(key)) {
            None => Ok(None),
            Some(text) => string_list(key, text).map(Some),
        }
    };
    if annotations.contains_key(ANNOTATION_IP_ADDRS_NO_IPAM) {
        return Err(CniError::new(
            INVALID_CONFIG,
            format!("annotation {ANNOTATION_IP_ADDRS_NO_IPAM} is not supported"),
            "addresses are always assigned through IPAM; use cni.projectcalico.org/ipAddrs",
        ));
    }
    let ip_addrs = match annotations.get(ANNOTATION_IP_ADDRS) {
        None => Vec::new(),
        Some(text) => ip_addrs(text)?,
    };
    let spec = pod.spec.as_ref();
    Ok(PodInfo {
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|sa| !sa.is_empty()),
        ports: spec.map(ports).unwrap_or_default(),
        ipv4_pools: pools(ANNOTATION_IPV4_POOLS)?,
        ipv6_pools: pools(ANNOTATION_IPV6_POOLS)?,
        ip_addrs,
    })
}

/// libcalico-go's conversion: a container port becomes an endpoint port when it has a
/// name or a host port; the protocol defaults to TCP.
fn ports(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<WorkloadEndpointPort> {
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.container_port > 0 && (p.name.is_some() || p.host_port.unwrap_or(0) != 0))
        .filter_map(|p| {
            let protocol = match p.protocol.as_deref() {
                None | Some("TCP") => Protocol::Tcp,
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                Some(_) => return None,
            };
            Some(WorkloadEndpointPort {
                name: p.name.clone().unwrap_or_default(),
                protocol,
                port: u16::try_from(p.container_port).ok()?,
                host_port: p.host_port.and_then(|h| u16::try_from(h).ok()).unwrap_or(0),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect()
}

fn string_list(key: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        CniError::new(
            DECODE_FAILURE,
            format!("annotation {key}"),
            format!("{text:?} is not a JSON list of strings: {e}"),
        )
    })
}

/// Calico's rule: a JSON list of addresses, at most one IPv4 and one IPv6.
fn ip_addrs(text: &str) -> Result<Vec<IpAddr>> {
    let bad = |details: String| {
        CniError::new(
            INVALID_CONFIG,
            format!("annotation {ANNOTATION_IP_ADDRS}"),
            details,
        )
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for s in string_list(ANNOTATION_IP_ADDRS, text)? {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| bad(format!("{s:?} is not an IP address")))?;
        if out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
            return Err(bad(format!(
                "{text}: at most one IPv4 and one IPv6 address"
            )));
        }
        out.push(ip);
    }
    if out.is_empty() {
        return Err(bad(format!("{text}: no address")));
    }
    Ok(out)
}

/// The network configuration the IPAM plugin gets: the original, with the pod's pools
/// and requested addresses (`runtimeConfig.ips`) when it has any.
pub fn ipam_stdin(stdin: &[u8], info: &PodInfo) -> Result<Vec<u8>> {
    if info.ipv4_pools.is_none() && info.ipv6_pools.is_none() && info.ip_addrs.is_empty() {
        return Ok(stdin.to_vec());
    }
    let decode = |e: serde_json::Error| {
        CniError::new(
            DECODE_FAILURE,
            "cannot decode the network configuration",
            e.to_string(),
        )
    };
    let mut conf: Value = serde_json::from_slice(stdin).map_err(decode)?;
    let object = |v: &mut Value, field: &str| -> Result<()> {
        if v.get(field).is_none() {
            v[field] = Value::Object(Default::default());
        }
        if !v[field].is_object() {
            return Err(CniError::new(
                INVALID_CONFIG,
                format!("{field} is not an object"),
                v[field].to_string(),
            ));
        }
        Ok(())
    };
    object(&mut conf, "ipam")?;
    for (field, pools) in [
        ("ipv4_pools", &info.ipv4_pools),
        ("ipv6_pools", &info.ipv6_pools),
    ] {
        if let Some(pools) = pools {
            conf["ipam"][field] = serde_json::json!(pools);
        }
    }
    if !info.ip_addrs.is_empty() {
        object(&mut conf, "runtimeConfig")?;
        let ips: Vec<String> = info.ip_addrs.iter().map(ToString::to_string).collect();
        conf["runtimeConfig"]["ips"] = serde_json::json!(ips);
    }
    Ok(serde_json::to_vec(&conf).expect("a JSON value serialises"))
}

#[cfg(test)]
mod tests;
