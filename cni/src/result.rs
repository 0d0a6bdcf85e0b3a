//! The success result (spec "Success"): interfaces, ips, routes, dns. Written in the shape of
//! the configuration's version (0.3.x/0.4.0 IP entries carry `"version"`, 1.x ones do not)
//! and read from any of them (a delegated IPAM plugin's output, a `prevResult`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CniError, DECODE_FAILURE, Result};
use crate::version::Version;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for interfaces inside the container; absent for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl CniResult {
    /// Reads a result of any supported version (unknown fields such as the 0.x `version` of
    /// IP entries are ignored).
    pub fn parse(json: &[u8], what: &str) -> Result<CniResult> {
        serde_json::from_slice(json).map_err(|e| {
            CniError::new(
                DECODE_FAILURE,
                format!("cannot decode {what}"),
                format!("{e}: {}", String::from_utf8_lossy(json)),
            )
        })
    }

    pub fn from_value(v: &Value, what: &str) -> Result<CniResult> {
        serde_json::from_value(v.clone()).map_err(|e| {
            CniError::new(
                DECODE_FAILURE,
                format!("cannot decode {what}"),
                e.to_string(),
            )
        })
    }

    /// The result as `version` writes it.
    pub fn to_json(&self, version: Version) -> String {
        let mut v = serde_json::to_value(self).expect("plain data always serialises");
        if version.ip_has_version_field()
            && let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut)
        {
            for (ip, conf) in ips.iter_mut().zip(&self.ips) {
                let family = if conf.address.addr().is_ipv4() {
                    "4"
                } else {
                    "6"
                };
                if let Some(o) = ip.as_object_mut() {
                    o.insert("version".into(), Value::from(family));
                }
            }
        }
        v.to_string()
    }
}

/// The host route form of an address (`/32` or `/128`), as Calico configures pod addresses.
pub fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_local_output_and_writes_both_shapes() {
        let out = br#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.2.3/24",
            "gateway":"10.1.2.1"}],"dns":{}}"#;
        let r = CniResult::parse(out, "host-local output").unwrap();
        assert_eq!(r.ips[0].address, "10.1.2.3/24".parse::<IpNet>().unwrap());
        assert_eq!(r.ips[0].gateway, Some("10.1.2.1".parse().unwrap()));
        let old: Value = serde_json::from_str(&r.to_json(Version(0, 4, 0))).unwrap();
        assert_eq!(old["ips"][0]["version"], "4");
        let new: Value = serde_json::from_str(&r.to_json(Version(1, 0, 0))).unwrap();
        assert!(new["ips"][0].get("version").is_none());
        assert_eq!(new["dns"], serde_json::json!({}));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert_eq!(
            CniResult::parse(b"not json", "x").unwrap_err().code,
            DECODE_FAILURE
        );
    }
}
