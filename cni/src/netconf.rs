//! The network configuration on stdin: the spec's fields plus Calico's (`etcd_endpoints`,
//! `nodename`, `mtu`, `log_level`, `ipam.ipv4_pools` ...). Unknown fields are accepted, as
//! configurations carry settings for other plugins of a chain.

use std::collections::BTreeSet;

use config::datastore::EtcdConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{CniError, DECODE_FAILURE, INVALID_CONFIG, Result, UNSUPPORTED_FIELD};

/// MTU when neither the configuration nor felix sets one: Calico's default without
/// encapsulation.
pub const DEFAULT_MTU: u32 = 1500;
/// Where felix writes the pod MTU (Calico's path).
pub const DEFAULT_MTU_FILE: &str = "/var/lib/calico/mtu";
/// Where calico-ipam keeps its per-node hints of the last block.
pub const DEFAULT_IPAM_HINT_DIR: &str = "/var/lib/calico/ipam";
/// RFC 791 ("Fragmentation and Reassembly"): every internet module must be able to forward a
/// datagram of 68 octets without further fragmentation; the kernel refuses smaller IPv4 MTUs.
pub const MIN_MTU: u32 = 68;
/// The largest MTU a veth accepts (ETH_MAX_MTU).
pub const MAX_MTU: u32 = 65535;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default)]
    pub plugin_type: Option<String>,
    #[serde(default)]
    pub etcd_endpoints: Option<String>,
    #[serde(default)]
    pub etcd_ca_cert_file: Option<String>,
    #[serde(default)]
    pub etcd_cert_file: Option<String>,
    #[serde(default)]
    pub etcd_key_file: Option<String>,
    #[serde(default)]
    pub etcd_username: Option<String>,
    #[serde(default)]
    pub etcd_password: Option<String>,
    /// Calico accepts `etcdv3` (the default) and `kubernetes`; only etcd is implemented.
    #[serde(default)]
    pub datastore_type: Option<String>,
    #[serde(default)]
    pub nodename: Option<String>,
    /// Absent or 0: what felix wrote to `mtu_file` (Calico's "auto").
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Where felix writes the pod MTU (`FELIX_MTUFILE`); this project's extension, for
    /// several nodes on one file system (testnet). Default `/var/lib/calico/mtu`.
    #[serde(default)]
    pub mtu_file: Option<String>,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub ipam: Option<IpamConf>,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: RuntimeConfig,
    /// CNI 1.1 GC: the attachments the runtime still knows about.
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Calico's `"kubernetes": {"kubeconfig": ...}`: where the pod is read from at ADD.
    #[serde(default)]
    pub kubernetes: Option<KubernetesConf>,
    /// Calico's `"policy": {"type": "k8s"}`.
    #[serde(default)]
    pub policy: Option<PolicyConf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct KubernetesConf {
    #[serde(default)]
    pub kubeconfig: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PolicyConf {
    #[serde(rename = "type", default)]
    pub policy_type: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct IpamConf {
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// Calico writes these as the strings "true"/"false"; booleans are accepted too.
    #[serde(default)]
    pub assign_ipv4: Option<Flag>,
    #[serde(default)]
    pub assign_ipv6: Option<Flag>,
    /// IP pools to allocate from, by name or CIDR.
    #[serde(default)]
    pub ipv4_pools: Vec<String>,
    #[serde(default)]
    pub ipv6_pools: Vec<String>,
    /// Where the plugin keeps, per node, its hint of the block it allocated from last (the
    /// block as written and the revisions it was chosen under), so that the next ADD writes
    /// without reading, or reads that block with the pools instead of every block of the
    /// node (this project's extension). Default [`DEFAULT_IPAM_HINT_DIR`]; `""` keeps none.
    #[serde(default)]
    pub hint_dir: Option<String>,
}

impl IpamConf {
    pub fn hint_dir(&self) -> Option<std::path::PathBuf> {
        match self.hint_dir.as_deref() {
            None => Some(DEFAULT_IPAM_HINT_DIR.into()),
            Some("") => None,
            Some(dir) => Some(dir.into()),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn value(&self, field: &str) -> Result<bool> {
        match self {
            Flag::Bool(b) => Ok(*b),
            Flag::Text(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Flag::Text(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            Flag::Text(s) => Err(CniError::new(
                INVALID_CONFIG,
                format!("invalid ipam.{field}"),
                format!("{s:?} is neither \"true\" nor \"false\""),
            )),
        }
    }
}

impl IpamConf {
    pub fn assign_ipv4(&self) -> Result<bool> {
        self.assign_ipv4
            .as_ref()
            .map_or(Ok(true), |f| f.value("assign_ipv4"))
    }

    pub fn assign_ipv6(&self) -> Result<bool> {
        self.assign_ipv6
            .as_ref()
            .map_or(Ok(false), |f| f.value("assign_ipv6"))
    }
}

/// Capability arguments the runtime injects (`runtimeConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RuntimeConfig {
    /// The `ips` capability: addresses (CIDR or bare) the IPAM plugin must assign.
    #[serde(default)]
    pub ips: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub ifname: String,
}

impl NetConf {
    pub fn parse(stdin: &[u8]) -> Result<NetConf> {
        serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                DECODE_FAILURE,
                "cannot decode the network configuration",
                e.to_string(),
            )
        })
    }

    pub fn cni_version(&self) -> Result<&str> {
        self.cni_version
            .as_deref()
            .ok_or_else(|| required("cniVersion"))
    }

    pub fn name(&self) -> Result<&str> {
        self.name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| required("name"))
    }

    pub fn ipam(&self) -> Result<&IpamConf> {
        match &self.ipam {
            Some(i) if !i.plugin_type.is_empty() => Ok(i),
            _ => Err(required("ipam.type")),
        }
    }

    /// The configured MTU, checked against what IPv4 and a veth allow; `None` when the
    /// configuration leaves it to felix (absent, or 0 as Calico's manifests write it).
    pub fn mtu(&self) -> Result<Option<u32>> {
        match self.mtu {
            None | Some(0) => Ok(None),
            Some(mtu) if (MIN_MTU..=MAX_MTU).contains(&mtu) => Ok(Some(mtu)),
            Some(mtu) => Err(CniError::new(
                INVALID_CONFIG,
                "invalid mtu",
                format!("mtu {mtu} is outside {MIN_MTU}..={MAX_MTU}"),
            )),
        }
    }

    /// The MTU for a pod's veth: the configured one, else the one felix wrote (the host's
    /// less the overlay's overhead), else [`DEFAULT_MTU`]. `read` reads a file.
    pub fn pod_mtu(&self, read: impl Fn(&str) -> Option<String>) -> Result<u32> {
        if let Some(mtu) = self.mtu()? {
            return Ok(mtu);
        }
        let path = self.mtu_file.as_deref().unwrap_or(DEFAULT_MTU_FILE);
        Ok(read(path)
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
            .unwrap_or(DEFAULT_MTU))
    }

    /// Only the etcd datastore is implemented.
    pub fn check_datastore(&self) -> Result<()> {
        match self.datastore_type.as_deref() {
            None | Some("") | Some("etcdv3") => Ok(()),
            Some(other) => Err(CniError::new(
                UNSUPPORTED_FIELD,
                "unsupported datastore_type",
                format!("{other:?}: only \"etcdv3\" is supported"),
            )),
        }
    }

    /// `nodename`, else `NODENAME` from the environment, else the host name (as Calico).
    pub fn node_name(&self, env: impl Fn(&str) -> Option<String>) -> Result<String> {
        let name = self
            .nodename
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| env("NODENAME").filter(|n| !n.is_empty()))
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
            })
            .ok_or_else(|| {
                CniError::new(
                    INVALID_CONFIG,
                    "no node name",
                    "set nodename in the configuration or NODENAME in the environment",
                )
            })?;
        Ok(name)
    }

    /// How to reach etcd: the configuration's `etcd_*` fields, else `ETCD_*` from the
    /// environment, else Calico's default endpoint.
    pub fn etcd_config(&self, env: impl Fn(&str) -> Option<String>) -> Result<EtcdConfig> {
        let from_conf = |name: &str| -> Option<String> {
            match name {
                "ETCD_ENDPOINTS" => self.etcd_endpoints.clone(),
                "ETCD_CA_CERT_FILE" => self.etcd_ca_cert_file.clone(),
                "ETCD_CERT_FILE" => self.etcd_cert_file.clone(),
                "ETCD_KEY_FILE" => self.etcd_key_file.clone(),
                "ETCD_USERNAME" => self.etcd_username.clone(),
                "ETCD_PASSWORD" => self.etcd_password.clone(),
                _ => None,
            }
            .filter(|v| !v.is_empty())
        };
        config::settings::etcd_config_from_lookup(
            |name| from_conf(name).or_else(|| env(name)),
            &config::settings::EtcdArgs::default(),
        )
        .map_err(|e| CniError::new(INVALID_CONFIG, "invalid etcd settings", e.to_string()))
    }

    /// (containerID, ifname) pairs the runtime still uses (GC). GC without the list would
    /// delete everything, so its absence is a configuration error, not "nothing is valid".
    pub fn valid_attachment_set(&self) -> Result<BTreeSet<(String, String)>> {
        let list = self.valid_attachments.as_ref().ok_or_else(|| {
            CniError::new(
                INVALID_CONFIG,
                "GC needs cni.dev/valid-attachments",
                "the runtime must list the attachments it still uses (an empty list is allowed)",
            )
        })?;
        Ok(list
            .iter()
            .map(|a| (a.container_id.clone(), a.ifname.clone()))
            .collect())
    }

    /// The kubeconfig to read the pod with, when the configuration names one. Calico reads
    /// the pod only for `"policy": {"type": "k8s"}`; a kubeconfig with another policy type
    /// is refused rather than silently ignored.
    pub fn kubeconfig(&self) -> Result<Option<&str>> {
        let Some(path) = self
            .kubernetes
            .as_ref()
            .and_then(|k| k.kubeconfig.as_deref())
            .filter(|p| !p.is_empty())
        else {
            return Ok(None);
        };
        match self.policy.as_ref().and_then(|p| p.policy_type.as_deref()) {
            None | Some("k8s") => Ok(Some(path)),
            Some(other) => Err(CniError::new(
                UNSUPPORTED_FIELD,
                "unsupported policy.type",
                format!("{other:?}: only \"k8s\" is supported with kubernetes.kubeconfig"),
            )),
        }
    }

    /// The log level: `log_level`, else `LOG_LEVEL`, else info.
    pub fn log_level(&self, env: impl Fn(&str) -> Option<String>) -> String {
        self.log_level
            .clone()
            .or_else(|| env("LOG_LEVEL"))
            .unwrap_or_else(|| config::settings::DEFAULT_LOG_LEVEL.to_string())
    }
}

fn required(field: &str) -> CniError {
    CniError::new(
        INVALID_CONFIG,
        format!("network configuration has no {field}"),
        format!("{field} is required"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALICO: &str = r#"{
        "cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "calico",
        "etcd_endpoints": "http://127.0.0.1:2379", "nodename": "node1", "mtu": 1440,
        "log_level": "debug",
        "ipam": {"type": "calico-ipam", "assign_ipv4": "true", "ipv4_pools": ["default-pool"]},
        "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}
    }"#;

    #[test]
    fn calico_config_reads() {
        let c = NetConf::parse(CALICO.as_bytes()).unwrap();
        assert_eq!(c.name().unwrap(), "k8s-pod-network");
        assert_eq!(c.mtu().unwrap(), Some(1440));
        assert_eq!(c.node_name(|_| Some("other".into())).unwrap(), "node1");
        let ipam = c.ipam().unwrap();
        assert_eq!(ipam.plugin_type, "calico-ipam");
        assert!(ipam.assign_ipv4().unwrap());
        assert!(!ipam.assign_ipv6().unwrap());
        assert_eq!(ipam.ipv4_pools, vec!["default-pool"]);
        assert_eq!(ipam.hint_dir(), Some(DEFAULT_IPAM_HINT_DIR.into()));
        for (value, want) in [("\"\"", None), ("\"/w/h\"", Some("/w/h"))] {
            let text = format!(r#"{{"type":"calico-ipam","hint_dir":{value}}}"#);
            let conf: IpamConf = serde_json::from_str(&text).unwrap();
            assert_eq!(conf.hint_dir(), want.map(Into::into), "{value}");
        }
        assert_eq!(
            c.kubeconfig().unwrap(),
            Some("/etc/cni/net.d/calico-kubeconfig")
        );
        let etcd = c
            .etcd_config(|k| (k == "ETCD_ENDPOINTS").then(|| "http://x:1".into()))
            .unwrap();
        assert_eq!(etcd.endpoints, vec!["http://127.0.0.1:2379"]);
    }

    #[test]
    fn environment_fills_what_the_config_lacks() {
        let c = NetConf::parse(br#"{"cniVersion":"1.1.0","name":"n"}"#).unwrap();
        assert_eq!(c.mtu().unwrap(), None);
        assert_eq!(c.pod_mtu(|_| None).unwrap(), DEFAULT_MTU);
        assert_eq!(c.node_name(|_| Some("envnode".into())).unwrap(), "envnode");
        let etcd = c
            .etcd_config(|k| (k == "ETCD_ENDPOINTS").then(|| "http://10.0.0.1:2379".into()))
            .unwrap();
        assert_eq!(etcd.endpoints, vec!["http://10.0.0.1:2379"]);
        assert_eq!(c.ipam().unwrap_err().code, INVALID_CONFIG);
        assert_eq!(c.kubeconfig().unwrap(), None);
    }

    #[test]
    fn an_mtu_left_to_felix_is_read_from_its_file() {
        let felix_wrote = |path: &str| (path == DEFAULT_MTU_FILE).then(|| "1450\n".to_string());
        for conf in [
            &br#"{"cniVersion":"1.0.0","name":"n"}"#[..],
            br#"{"cniVersion":"1.0.0","name":"n","mtu":0}"#,
        ] {
            let c = NetConf::parse(conf).unwrap();
            assert_eq!(c.pod_mtu(felix_wrote).unwrap(), 1450);
        }
        // The configuration wins; a file elsewhere is found; nonsense in it is ignored.
        let c = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","mtu":1400}"#).unwrap();
        assert_eq!(c.pod_mtu(felix_wrote).unwrap(), 1400);
        let c =
            NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","mtu_file":"/w/mtu"}"#).unwrap();
        assert_eq!(
            c.pod_mtu(|p| (p == "/w/mtu").then(|| "1430".into()))
                .unwrap(),
            1430
        );
        assert_eq!(c.pod_mtu(|_| Some("12".into())).unwrap(), DEFAULT_MTU);
        assert_eq!(c.pod_mtu(|_| Some("big".into())).unwrap(), DEFAULT_MTU);
    }

    #[test]
    fn bad_configs_name_the_field() {
        assert_eq!(NetConf::parse(b"{").unwrap_err().code, DECODE_FAILURE);
        let c = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","mtu":65536}"#).unwrap();
        let e = c.mtu().unwrap_err();
        assert_eq!(e.code, INVALID_CONFIG);
        assert!(e.details.contains("65536"), "{e}");
        let c = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"x","assign_ipv4":"yes"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.ipam().unwrap().assign_ipv4().unwrap_err().code,
            INVALID_CONFIG
        );
        let c = NetConf::parse(
            br#"{"cniVersion":"1.0.0","kubernetes":{"kubeconfig":"/k"},"policy":{"type":"none"}}"#,
        )
        .unwrap();
        assert_eq!(c.kubeconfig().unwrap_err().code, UNSUPPORTED_FIELD);
        let c = NetConf::parse(br#"{"cniVersion":"1.0.0","datastore_type":"kubernetes"}"#).unwrap();
        assert_eq!(c.check_datastore().unwrap_err().code, UNSUPPORTED_FIELD);
        assert_eq!(
            NetConf::parse(br#"{"cniVersion":"1.0.0"}"#)
                .unwrap()
                .name()
                .unwrap_err()
                .code,
            INVALID_CONFIG
        );
    }
}
