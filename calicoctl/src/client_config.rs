//! Where calicoctl finds its datastore: `-c FILE`, else `/etc/calico/calicoctl.cfg` when it
//! exists, else the environment — the order Calico's calicoctl uses.
//!
//! ```yaml
//! apiVersion: projectcalico.org/v3
//! kind: CalicoAPIConfig
//! spec:
//!   datastoreType: etcdv3
//!   etcdEndpoints: http://127.0.0.1:2379
//! ```

use std::path::{Path, PathBuf};

use config::datastore::EtcdConfig;
use serde::Deserialize;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/calico/calicoctl.cfg";
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";

#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "datastore type {0:?} is not supported: this calicoctl speaks to etcd only (datastoreType: etcdv3)"
    )]
    UnsupportedDatastore(String),
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    datastore_type: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    etcd_key_file: Option<PathBuf>,
    etcd_cert_file: Option<PathBuf>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<PathBuf>,
}

/// Loads the client configuration. `explicit` is the `-c/--config` flag: when given, the file
/// must exist; the default path is used only when present.
pub fn load(explicit: Option<&Path>) -> Result<EtcdConfig, ClientConfigError> {
    let path = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    };
    let spec = match path {
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ClientConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
            parse_file(&text).map_err(|message| ClientConfigError::Parse { path, message })?
        }
        None => spec_from_env(|name| std::env::var(name).ok()),
    };
    into_etcd_config(spec)
}

fn parse_file(text: &str) -> Result<Spec, String> {
    let file: ConfigFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    if let Some(kind) = file.kind.as_deref().filter(|k| *k != "CalicoAPIConfig") {
        return Err(format!("kind must be CalicoAPIConfig, not {kind:?}"));
    }
    if let Some(version) = file
        .api_version
        .as_deref()
        .filter(|v| *v != "projectcalico.org/v3")
    {
        return Err(format!(
            "apiVersion must be projectcalico.org/v3, not {version:?}"
        ));
    }
    Ok(file.spec)
}

/// Reads `DATASTORE_TYPE`, `ETCD_*`, each also with the `CALICO_` prefix (which wins).
fn spec_from_env(lookup: impl Fn(&str) -> Option<String>) -> Spec {
    let var = |name: &str| {
        lookup(&format!("CALICO_{name}"))
            .or_else(|| lookup(name))
            .filter(|v| !v.is_empty())
    };
    Spec {
        datastore_type: var("DATASTORE_TYPE"),
        etcd_endpoints: var("ETCD_ENDPOINTS"),
        etcd_username: var("ETCD_USERNAME"),
        etcd_password: var("ETCD_PASSWORD"),
        etcd_key_file: var("ETCD_KEY_FILE").map(PathBuf::from),
        etcd_cert_file: var("ETCD_CERT_FILE").map(PathBuf::from),
        etcd_ca_cert_file: var("ETCD_CA_CERT_FILE").map(PathBuf::from),
    }
}

fn into_etcd_config(spec: Spec) -> Result<EtcdConfig, ClientConfigError> {
    match spec.datastore_type.as_deref() {
        None | Some("etcdv3") => {}
        Some(other) => return Err(ClientConfigError::UnsupportedDatastore(other.to_string())),
    }
    let endpoints = spec
        .etcd_endpoints
        .as_deref()
        .unwrap_or(DEFAULT_ENDPOINT)
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    Ok(EtcdConfig {
        endpoints,
        ca_cert_file: spec.etcd_ca_cert_file,
        cert_file: spec.etcd_cert_file,
        key_file: spec.etcd_key_file,
        username: spec.etcd_username,
        password: spec.etcd_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_spec_is_read() {
        let spec = parse_file(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  \
             datastoreType: etcdv3\n  etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379\n  \
             etcdCACertFile: /ca.pem\n",
        )
        .unwrap();
        let cfg = into_etcd_config(spec).unwrap();
        assert_eq!(
            cfg.endpoints,
            vec!["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(cfg.ca_cert_file, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn file_with_wrong_kind_or_unknown_field_is_refused() {
        assert!(
            parse_file("kind: Node\nspec: {}\n")
                .unwrap_err()
                .contains("CalicoAPIConfig")
        );
        let err = parse_file("kind: CalicoAPIConfig\nspec:\n  etcdEndpoint: x\n").unwrap_err();
        assert!(err.contains("etcdEndpoint"), "{err}");
    }

    #[test]
    fn env_prefixed_wins_and_kubernetes_is_refused() {
        let env: HashMap<&str, &str> = [
            ("ETCD_ENDPOINTS", "http://a:2379"),
            ("CALICO_ETCD_ENDPOINTS", "http://b:2379"),
            ("DATASTORE_TYPE", "etcdv3"),
        ]
        .into();
        let spec = spec_from_env(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(
            into_etcd_config(spec).unwrap().endpoints,
            vec!["http://b:2379"]
        );

        let spec = spec_from_env(|k| (k == "DATASTORE_TYPE").then(|| "kubernetes".to_string()));
        assert!(matches!(
            into_etcd_config(spec),
            Err(ClientConfigError::UnsupportedDatastore(_))
        ));
    }

    #[test]
    fn default_endpoint_is_local() {
        let cfg = into_etcd_config(spec_from_env(|_| None)).unwrap();
        assert_eq!(cfg.endpoints, vec![DEFAULT_ENDPOINT]);
    }
}
