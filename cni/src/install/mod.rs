//! `install-cni`: what Calico's install-cni (cni-plugin/pkg/install) does on every node,
//! as the first step of the calico-node DaemonSet pod:
//!
//! 1. copies the plugin binaries from the image (`/opt/cni/bin`) into the host's
//!    `/opt/cni/bin` (mounted at `/host/opt/cni/bin`), each atomically with mode 0755 and
//!    only when it changed;
//! 2. copies the etcd TLS files (`etcd-ca`, `etcd-cert`, `etcd-key` from
//!    `TLS_ASSETS_DIR`, default `/calico-secrets`) into `<net dir>/calico-tls/`;
//! 3. writes `calico-kubeconfig` for the plugin from a service-account token and its CA
//!    (`SERVICEACCOUNT_DIR`, default the pod's own
//!    `/var/run/secrets/kubernetes.io/serviceaccount`) and `KUBERNETES_SERVICE_HOST/PORT`,
//!    when a token is there;
//! 4. last, writes the network config (`CNI_CONF_NAME`, default `10-calico.conflist`) from
//!    the template in `CNI_NETWORK_CONFIG_FILE`, `CNI_NETWORK_CONFIG` or the built-in
//!    one, with Calico's `__PLACEHOLDER__` substitutions; its appearance is what tells
//!    kubelet the node's network is ready, so everything it refers to exists first.
//!
//! Calico's environment variables keep their names and defaults, except `DATASTORE_TYPE`
//! (default `etcdv3`: the only datastore here). The host directories are settable
//! (`HOST_CNI_BIN_DIR`, `HOST_CNI_NET_DIR`, plus `CNI_BINARIES_DIR` for the source), so a
//! test can point them at a temporary directory standing for the host's root.
//!
//! [`render`] is pure (template -> conflist, token -> kubeconfig); [`files`] does the
//! atomic writes; [`install`] strings them together.

pub mod files;
pub mod render;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use files::{Outcome, install_binary, remove_if_present, write_if_changed};
use render::{DEFAULT_TEMPLATE, KubeconfigParams, Substitutions, kubeconfig_yaml, render_conflist};

/// A failure of the install, with what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InstallError(String);

impl InstallError {
    pub fn new(msg: impl Into<String>) -> Self {
        InstallError(msg.into())
    }
}

/// The kubeconfig's name in the network config directory (Calico's).
pub const KUBECONFIG_NAME: &str = "calico-kubeconfig";
/// The etcd TLS files' directory in the network config directory (Calico's).
pub const TLS_DIR_NAME: &str = "calico-tls";
/// The etcd TLS files Calico's manifests put in the `calico-etcd-secrets` Secret, and the
/// placeholders that name them in the template.
const TLS_FILES: [(&str, &str); 3] = [
    ("etcd-ca", "__ETCD_CA_CERT_FILE__"),
    ("etcd-cert", "__ETCD_CERT_FILE__"),
    ("etcd-key", "__ETCD_KEY_FILE__"),
];

/// Everything the install needs, read from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// The host's binary directory, as this process sees it (`HOST_CNI_BIN_DIR`).
    pub host_bin_dir: PathBuf,
    /// The host's network config directory, as this process sees it (`HOST_CNI_NET_DIR`).
    pub host_net_dir: PathBuf,
    /// The network config directory as the host (and so the plugin) sees it
    /// (`CNI_NET_DIR`, default `/etc/cni/net.d`): paths written into the conflist.
    pub cni_net_dir: String,
    /// Where the binaries to install are (`CNI_BINARIES_DIR`, default `/opt/cni/bin`).
    pub source_bin_dir: PathBuf,
    /// Binaries not to install (`SKIP_CNI_BINARIES`, comma-separated).
    pub skip_binaries: Vec<String>,
    /// Whether to replace binaries already on the host (`UPDATE_CNI_BINARIES`).
    pub update_binaries: bool,
    /// The token and CA (`SERVICEACCOUNT_DIR`).
    pub serviceaccount_dir: PathBuf,
    /// The etcd TLS files (`TLS_ASSETS_DIR`).
    pub tls_assets_dir: PathBuf,
    /// The conflist's name (`CNI_CONF_NAME`).
    pub conf_name: String,
    /// A previous conflist name to remove (`CNI_OLD_CONF_NAME`).
    pub old_conf_name: String,
    /// The template's text.
    pub template: String,
    /// `__NAME__` -> value for everything but what depends on the files present.
    pub substitutions: Substitutions,
    /// The API server as the plugin reaches it (protocol, host, port) and `SKIP_TLS_VERIFY`.
    pub api: (String, String, String, bool),
    /// Keep running after the install (`SLEEP`, default true as Calico's; an init
    /// container sets `false`).
    pub sleep: bool,
}

impl Config {
    /// Reads the configuration through `lookup` (the environment, or a test's map);
    /// `hostname` is the node name when `KUBERNETES_NODE_NAME` is not set.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Result<Config, InstallError> {
        let get = |name: &str, default: &str| lookup(name).unwrap_or_else(|| default.into());
        let flag = |name: &str, default: bool| -> Result<bool, InstallError> {
            match lookup(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(InstallError::new(format!(
                    "{name}={v:?} is neither true nor false"
                ))),
            }
        };
        let cni_net_dir = get("CNI_NET_DIR", "/etc/cni/net.d");
        let template = match lookup("CNI_NETWORK_CONFIG_FILE").filter(|f| !f.is_empty()) {
            Some(file) => fs::read_to_string(&file)
                .map_err(|e| InstallError::new(format!("CNI_NETWORK_CONFIG_FILE {file}: {e}")))?,
            None => lookup("CNI_NETWORK_CONFIG")
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_TEMPLATE.into()),
        };
        let node_name = lookup("KUBERNETES_NODE_NAME")
            .filter(|n| !n.is_empty())
            .or_else(hostname)
            .ok_or_else(|| {
                InstallError::new("no node name: set KUBERNETES_NODE_NAME (spec.nodeName)")
            })?;
        let mut substitutions = Substitutions::new();
        for (placeholder, value) in [
            ("__LOG_LEVEL__", get("LOG_LEVEL", "info")),
            (
                "__LOG_FILE_PATH__",
                get("LOG_FILE_PATH", "/var/log/calico/cni/cni.log"),
            ),
            ("__LOG_FILE_MAX_SIZE__", get("LOG_FILE_MAX_SIZE", "100")),
            ("__LOG_FILE_MAX_AGE__", get("LOG_FILE_MAX_AGE", "30")),
            ("__LOG_FILE_MAX_COUNT__", get("LOG_FILE_MAX_COUNT", "10")),
            ("__DATASTORE_TYPE__", get("DATASTORE_TYPE", "etcdv3")),
            ("__KUBERNETES_NODE_NAME__", node_name),
            (
                "__KUBECONFIG_FILEPATH__",
                format!("{cni_net_dir}/{KUBECONFIG_NAME}"),
            ),
            ("__CNI_MTU__", get("CNI_MTU", "1500")),
            (
                "__KUBERNETES_SERVICE_HOST__",
                get("KUBERNETES_SERVICE_HOST", ""),
            ),
            (
                "__KUBERNETES_SERVICE_PORT__",
                get("KUBERNETES_SERVICE_PORT", ""),
            ),
            ("__ETCD_ENDPOINTS__", get("ETCD_ENDPOINTS", "")),
            ("__ETCD_DISCOVERY_SRV__", get("ETCD_DISCOVERY_SRV", "")),
        ] {
            substitutions.insert(placeholder.into(), value);
        }
        Ok(Config {
            host_bin_dir: get("HOST_CNI_BIN_DIR", "/host/opt/cni/bin").into(),
            host_net_dir: get("HOST_CNI_NET_DIR", "/host/etc/cni/net.d").into(),
            cni_net_dir,
            source_bin_dir: get("CNI_BINARIES_DIR", "/opt/cni/bin").into(),
            skip_binaries: get("SKIP_CNI_BINARIES", "")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            update_binaries: flag("UPDATE_CNI_BINARIES", true)?,
            serviceaccount_dir: get(
                "SERVICEACCOUNT_DIR",
                "/var/run/secrets/kubernetes.io/serviceaccount",
            )
            .into(),
            tls_assets_dir: get("TLS_ASSETS_DIR", "/calico-secrets").into(),
            conf_name: get("CNI_CONF_NAME", "10-calico.conflist"),
            old_conf_name: get("CNI_OLD_CONF_NAME", "10-calico.conflist"),
            template,
            substitutions,
            api: (
                get("KUBERNETES_SERVICE_PROTOCOL", "https"),
                get("KUBERNETES_SERVICE_HOST", ""),
                get("KUBERNETES_SERVICE_PORT", ""),
                flag("SKIP_TLS_VERIFY", false)?,
            ),
            sleep: flag("SLEEP", true)?,
        })
    }
}

/// What an install did, file by file.
#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<(PathBuf, Outcome)>,
    pub removed: Vec<PathBuf>,
}

/// Runs the install (see the module docs for the order).
pub fn install(cfg: &Config) -> Result<Report, InstallError> {
    let mut report = Report::default();
    install_binaries(cfg, &mut report)?;
    let mut subs = cfg.substitutions.clone();
    install_tls_assets(cfg, &mut subs, &mut report)?;

    let token_file = cfg.serviceaccount_dir.join("token");
    match fs::read_to_string(&token_file) {
        Ok(token) => {
            let ca_file = cfg.serviceaccount_dir.join("ca.crt");
            let ca_pem = match fs::read(&ca_file) {
                Ok(ca) => Some(ca),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(io("reading", &ca_file, e)),
            };
            let token = token.trim().to_string();
            subs.insert("__SERVICEACCOUNT_TOKEN__".into(), token.clone());
            let (protocol, host, port, skip_tls_verify) = cfg.api.clone();
            let text = kubeconfig_yaml(&KubeconfigParams {
                protocol,
                host,
                port,
                token,
                ca_pem,
                skip_tls_verify,
            })?;
            let path = cfg.host_net_dir.join(KUBECONFIG_NAME);
            // The token is a credential: readable by root only.
            let outcome = write_if_changed(&path, text.as_bytes(), 0o600)?;
            report.files.push((path, outcome));
        }
        // Not running with a token (outside Kubernetes): no kubeconfig, as Calico.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            subs.insert("__SERVICEACCOUNT_TOKEN__".into(), String::new());
        }
        Err(e) => return Err(io("reading", &token_file, e)),
    }

    let text = render_conflist(&cfg.template, &subs)?;
    let path = cfg.host_net_dir.join(&cfg.conf_name);
    let outcome = write_if_changed(&path, text.as_bytes(), 0o644)?;
    report.files.push((path, outcome));
    if cfg.old_conf_name != cfg.conf_name {
        let old = cfg.host_net_dir.join(&cfg.old_conf_name);
        if remove_if_present(&old)? {
            report.removed.push(old);
        }
    }
    Ok(report)
}

/// Every regular file of the source directory, in name order, unless skipped.
fn install_binaries(cfg: &Config, report: &mut Report) -> Result<(), InstallError> {
    let entries =
        fs::read_dir(&cfg.source_bin_dir).map_err(|e| io("listing", &cfg.source_bin_dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("listing", &cfg.source_bin_dir, e))?;
        let meta = fs::metadata(entry.path()).map_err(|e| io("reading", &entry.path(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.is_file() && !name.starts_with('.') && !cfg.skip_binaries.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(InstallError::new(format!(
            "no binaries to install in {}",
            cfg.source_bin_dir.display()
        )));
    }
    names.sort();
    for name in names {
        let dst = cfg.host_bin_dir.join(&name);
        let outcome = install_binary(&cfg.source_bin_dir.join(&name), &dst, cfg.update_binaries)?;
        report.files.push((dst, outcome));
    }
    Ok(())
}

/// Copies the etcd TLS files that are there and points their placeholders at the
/// copies; a file that is not there (no TLS, or no client certificate) gets "" and its
/// old copy is removed, so that the conflist never names a stale one.
fn install_tls_assets(
    cfg: &Config,
    subs: &mut Substitutions,
    report: &mut Report,
) -> Result<(), InstallError> {
    let host_dir = cfg.host_net_dir.join(TLS_DIR_NAME);
    for (name, placeholder) in TLS_FILES {
        let src = cfg.tls_assets_dir.join(name);
        let dst = host_dir.join(name);
        let content = match fs::read(&src) {
            Ok(c) if !c.is_empty() => Some(c),
            Ok(_) => None,
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io("reading", &src, e)),
        };
        let value = match content {
            Some(content) => {
                fs::create_dir_all(&host_dir).map_err(|e| io("creating", &host_dir, e))?;
                let outcome = write_if_changed(&dst, &content, 0o600)?;
                report.files.push((dst, outcome));
                format!("{}/{TLS_DIR_NAME}/{name}", cfg.cni_net_dir)
            }
            None => {
                if remove_if_present(&dst)? {
                    report.removed.push(dst);
                }
                String::new()
            }
        };
        subs.insert(placeholder.into(), value);
    }
    Ok(())
}

fn io(what: &str, path: &Path, e: std::io::Error) -> InstallError {
    InstallError::new(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, InstallError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|n| map.get(n).cloned(), || Some("host-name".into()))
    }

    #[test]
    fn defaults_are_calicos() {
        let c = config(&[]).unwrap();
        assert_eq!(c.host_bin_dir, Path::new("/host/opt/cni/bin"));
        assert_eq!(c.host_net_dir, Path::new("/host/etc/cni/net.d"));
        assert_eq!(c.source_bin_dir, Path::new("/opt/cni/bin"));
        assert_eq!(
            c.serviceaccount_dir,
            Path::new("/var/run/secrets/kubernetes.io/serviceaccount")
        );
        assert_eq!(c.tls_assets_dir, Path::new("/calico-secrets"));
        assert_eq!(c.conf_name, "10-calico.conflist");
        assert!(c.update_binaries && c.sleep && !c.api.3);
        assert_eq!(c.template, DEFAULT_TEMPLATE);
        assert_eq!(c.substitutions["__KUBERNETES_NODE_NAME__"], "host-name");
        assert_eq!(c.substitutions["__CNI_MTU__"], "1500");
        assert_eq!(c.substitutions["__DATASTORE_TYPE__"], "etcdv3");
        assert_eq!(
            c.substitutions["__KUBECONFIG_FILEPATH__"],
            "/etc/cni/net.d/calico-kubeconfig"
        );
    }

    #[test]
    fn environment_overrides() {
        let c = config(&[
            ("KUBERNETES_NODE_NAME", "node-7"),
            ("CNI_NET_DIR", "/etc/kubernetes/cni/net.d"),
            ("SKIP_CNI_BINARIES", "portmap, install-cni,,"),
            ("UPDATE_CNI_BINARIES", "false"),
            ("SLEEP", "FALSE"),
            ("CNI_NETWORK_CONFIG", "{\"name\": \"t\"}"),
            ("CNI_MTU", "1440"),
            ("ETCD_ENDPOINTS", "https://10.0.0.1:2379"),
        ])
        .unwrap();
        assert_eq!(c.substitutions["__KUBERNETES_NODE_NAME__"], "node-7");
        assert_eq!(
            c.substitutions["__KUBECONFIG_FILEPATH__"],
            "/etc/kubernetes/cni/net.d/calico-kubeconfig"
        );
        assert_eq!(c.skip_binaries, ["portmap", "install-cni"]);
        assert!(!c.update_binaries && !c.sleep);
        assert_eq!(c.template, "{\"name\": \"t\"}");
        assert_eq!(c.substitutions["__CNI_MTU__"], "1440");
        assert_eq!(
            c.substitutions["__ETCD_ENDPOINTS__"],
            "https://10.0.0.1:2379"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let err = config(&[("SLEEP", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("SLEEP"), "{err}");
        let err = config(&[("CNI_NETWORK_CONFIG_FILE", "/nonexistent/template")]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/template"), "{err}");
        let err = Config::from_lookup(|_| None, || None).unwrap_err();
        assert!(err.to_string().contains("KUBERNETES_NODE_NAME"), "{err}");
    }
}
