//! The pure part of install-cni: template -> conflist text, token -> kubeconfig text.
//! No file system, no environment: [`super::Config`] gathers the inputs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::InstallError;
use crate::netconf::NetConf;

/// The template used when neither `CNI_NETWORK_CONFIG` nor `CNI_NETWORK_CONFIG_FILE` gives
/// one: Calico's etcd-mode conflist (calico + portmap).
pub const DEFAULT_TEMPLATE: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "__LOG_LEVEL__",
      "datastore_type": "__DATASTORE_TYPE__",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "etcd_key_file": "__ETCD_KEY_FILE__",
      "etcd_cert_file": "__ETCD_CERT_FILE__",
      "etcd_ca_cert_file": "__ETCD_CA_CERT_FILE__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {"type": "calico-ipam"},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}
"#;

/// Placeholder -> value, e.g. `__CNI_MTU__` -> `1440`.
pub type Substitutions = BTreeMap<String, String>;

/// Replaces every placeholder in `template` (plain text replacement, as Calico's
/// install-cni does, so a number placeholder like `__CNI_MTU__` can stand unquoted), then
/// checks the result: a JSON object, no `__NAME__` placeholder left (an unknown one is a
/// typo, not something to hand to kubelet), and every `calico` plugin entry one that the
/// plugin itself accepts (its MTU in range, its IPAM type set, etcd the datastore).
pub fn render_conflist(template: &str, subs: &Substitutions) -> Result<String, InstallError> {
    let mut text = template.to_string();
    for (placeholder, value) in subs {
        text = text.replace(placeholder.as_str(), value);
    }
    if let Some(left) = leftover_placeholder(&text) {
        return Err(InstallError::new(format!(
            "the CNI network config template uses {left}, which install-cni does not know"
        )));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        InstallError::new(format!(
            "the CNI network config is not valid JSON after substitution: {e}"
        ))
    })?;
    let Value::Object(object) = &value else {
        return Err(InstallError::new(
            "the CNI network config is not a JSON object",
        ));
    };
    let plugins: Vec<&Value> = match object.get("plugins") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(_) => return Err(InstallError::new("\"plugins\" is not a list")),
        None => vec![&value],
    };
    for plugin in plugins {
        if plugin.get("type").and_then(Value::as_str) != Some("calico") {
            continue;
        }
        NetConf::parse(plugin.to_string().as_bytes())
            .and_then(|c| {
                c.mtu()?;
                c.ipam()?;
                c.check_datastore()
            })
            .map_err(|e| {
                InstallError::new(format!("the calico plugin's configuration is invalid: {e}"))
            })?;
    }
    Ok(text)
}

/// The first `__UPPER_CASE__` token in `text`, if any.
fn leftover_placeholder(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(start) = text[i..].find("__").map(|p| p + i) {
        let name_start = start + 2;
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        // The name ends where "__" closes it; greedy matching may have eaten the closing
        // underscores, so back off to the last "__".
        let run = &text[name_start..name_start + name_len];
        if let Some(end) = run.rfind("__").filter(|&e| e > 0) {
            return Some(&text[start..name_start + end + 2]);
        }
        i = name_start;
    }
    None
}

/// Where the plugin reaches the API server and how it proves who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeconfigParams {
    /// `KUBERNETES_SERVICE_PROTOCOL` (default https).
    pub protocol: String,
    /// `KUBERNETES_SERVICE_HOST`: an IP address or a name.
    pub host: String,
    /// `KUBERNETES_SERVICE_PORT`.
    pub port: String,
    /// The service-account token (trailing whitespace already removed).
    pub token: String,
    /// The CA that signed the API server's certificate (PEM), unless TLS is not verified.
    pub ca_pem: Option<Vec<u8>>,
    /// `SKIP_TLS_VERIFY=true`.
    pub skip_tls_verify: bool,
}

/// The kubeconfig the plugin reads (`"kubernetes": {"kubeconfig": ...}`): Calico's layout
/// (cluster `local`, user `calico`, context `calico-context`), every value a YAML
/// double-quoted string (JSON string syntax, which YAML accepts) so that no token or
/// host can break the document.
pub fn kubeconfig_yaml(p: &KubeconfigParams) -> Result<String, InstallError> {
    if p.host.is_empty() || p.port.is_empty() {
        return Err(InstallError::new(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set to write the \
             plugin's kubeconfig",
        ));
    }
    if p.token.is_empty() {
        return Err(InstallError::new("the service-account token is empty"));
    }
    // An IPv6 address needs brackets in a URL; a name or IPv4 address must not get them.
    let host = if p.host.contains(':') && !p.host.starts_with('[') {
        format!("[{}]", p.host)
    } else {
        p.host.clone()
    };
    let server = format!("{}://{}:{}", p.protocol, host, p.port);
    let tls = if p.skip_tls_verify {
        "insecure-skip-tls-verify: true".to_string()
    } else {
        let ca = p.ca_pem.as_deref().ok_or_else(|| {
            InstallError::new(
                "no CA certificate (ca.crt) next to the token; set SKIP_TLS_VERIFY=true to \
                 connect without verifying the API server",
            )
        })?;
        format!("certificate-authority-data: {}", quoted(&base64(ca)))
    };
    Ok(format!(
        "# Kubeconfig file for the Calico CNI plugin, written by install-cni.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: {server}
    {tls}
users:
- name: calico
  user:
    token: {token}
contexts:
- name: calico-context
  context:
    cluster: local
    user: calico
current-context: calico-context
",
        server = quoted(&server),
        token = quoted(&p.token),
    ))
}

fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Standard base64 with padding (RFC 4648 section 4), as kubeconfig's `*-data` fields are.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(pairs: &[(&str, &str)]) -> Substitutions {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn default_subs() -> Substitutions {
        subs(&[
            ("__LOG_LEVEL__", "info"),
            ("__DATASTORE_TYPE__", "etcdv3"),
            ("__ETCD_ENDPOINTS__", "https://10.0.0.1:2379"),
            ("__ETCD_KEY_FILE__", ""),
            ("__ETCD_CERT_FILE__", ""),
            ("__ETCD_CA_CERT_FILE__", "/etc/cni/net.d/calico-tls/etcd-ca"),
            ("__KUBERNETES_NODE_NAME__", "node-a"),
            ("__CNI_MTU__", "1440"),
            (
                "__KUBECONFIG_FILEPATH__",
                "/etc/cni/net.d/calico-kubeconfig",
            ),
        ])
    }

    #[test]
    fn default_template_renders_to_a_conflist_the_plugin_reads() {
        let text = render_conflist(DEFAULT_TEMPLATE, &default_subs()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let calico = &v["plugins"][0];
        assert_eq!(calico["mtu"], 1440);
        assert_eq!(calico["nodename"], "node-a");
        assert_eq!(calico["etcd_endpoints"], "https://10.0.0.1:2379");
        assert_eq!(
            calico["etcd_ca_cert_file"],
            "/etc/cni/net.d/calico-tls/etcd-ca"
        );
        assert_eq!(
            calico["kubernetes"]["kubeconfig"],
            "/etc/cni/net.d/calico-kubeconfig"
        );
        let conf = NetConf::parse(calico.to_string().as_bytes()).unwrap();
        assert_eq!(conf.mtu().unwrap(), Some(1440));
        assert_eq!(conf.ipam().unwrap().plugin_type, "calico-ipam");
        assert_eq!(
            conf.policy.unwrap().policy_type.as_deref(),
            Some("k8s"),
            "policy type"
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn every_occurrence_is_replaced() {
        let t = r#"{"name": "__X__", "type": "other", "a": "__X__-__X__"}"#;
        let out = render_conflist(t, &subs(&[("__X__", "v")])).unwrap();
        assert_eq!(out, r#"{"name": "v", "type": "other", "a": "v-v"}"#);
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        let t = r#"{"name": "n", "mtu": __CNI_MTU__, "x": "__NOT_KNOWN__"}"#;
        let err = render_conflist(t, &subs(&[("__CNI_MTU__", "1500")])).unwrap_err();
        assert!(err.to_string().contains("__NOT_KNOWN__"), "{err}");
        // Underscores that are not a placeholder pass.
        let t = r#"{"name": "a__b", "x": "__", "y": "___"}"#;
        render_conflist(t, &Substitutions::new()).unwrap();
    }

    #[test]
    fn invalid_json_is_refused() {
        // An empty MTU leaves `"mtu": ,`.
        let err = render_conflist(DEFAULT_TEMPLATE, &{
            let mut s = default_subs();
            s.insert("__CNI_MTU__".into(), String::new());
            s
        })
        .unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        let err = render_conflist("[1, 2]", &Substitutions::new()).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }

    #[test]
    fn a_calico_entry_the_plugin_would_refuse_is_refused() {
        for (mtu, datastore, want) in [
            ("10", "etcdv3", "mtu"),
            ("1500", "kubernetes", "datastore_type"),
        ] {
            let mut s = default_subs();
            s.insert("__CNI_MTU__".into(), mtu.into());
            s.insert("__DATASTORE_TYPE__".into(), datastore.into());
            let err = render_conflist(DEFAULT_TEMPLATE, &s).unwrap_err();
            assert!(err.to_string().contains(want), "{mtu} {datastore}: {err}");
        }
        // A plain single-plugin config is checked too.
        let err = render_conflist(r#"{"type": "calico", "name": "n"}"#, &Substitutions::new())
            .unwrap_err();
        assert!(err.to_string().contains("ipam.type"), "{err}");
    }

    fn params() -> KubeconfigParams {
        KubeconfigParams {
            protocol: "https".into(),
            host: "10.96.0.1".into(),
            port: "443".into(),
            token: "eyJhbGciOi.payload.sig".into(),
            ca_pem: Some(
                b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
            ),
            skip_tls_verify: false,
        }
    }

    #[test]
    fn kubeconfig_carries_server_ca_and_token() {
        let p = params();
        let text = kubeconfig_yaml(&p).unwrap();
        assert!(
            text.contains("server: \"https://10.96.0.1:443\"\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "certificate-authority-data: \"{}\"\n",
                base64(p.ca_pem.as_ref().unwrap())
            )),
            "{text}"
        );
        assert!(
            text.contains("token: \"eyJhbGciOi.payload.sig\"\n"),
            "{text}"
        );
        assert!(text.contains("current-context: calico-context\n"), "{text}");
    }

    #[test]
    fn kubeconfig_brackets_ipv6_only_and_can_skip_tls() {
        let mut p = params();
        p.host = "fd00::1".into();
        p.skip_tls_verify = true;
        p.ca_pem = None;
        let text = kubeconfig_yaml(&p).unwrap();
        assert!(text.contains("server: \"https://[fd00::1]:443\""), "{text}");
        assert!(text.contains("insecure-skip-tls-verify: true\n"), "{text}");
        assert!(!text.contains("certificate-authority"), "{text}");
        p.host = "[fd00::1]".into();
        assert!(
            kubeconfig_yaml(&p)
                .unwrap()
                .contains("https://[fd00::1]:443")
        );
        p.host = "kubernetes.default.svc".into();
        assert!(
            kubeconfig_yaml(&p)
                .unwrap()
                .contains("https://kubernetes.default.svc:443")
        );
    }

    #[test]
    fn kubeconfig_needs_host_port_token_and_a_ca() {
        for (edit, want) in [
            (
                (|p: &mut KubeconfigParams| p.host.clear()) as fn(&mut KubeconfigParams),
                "KUBERNETES_SERVICE_HOST",
            ),
            (|p| p.port.clear(), "KUBERNETES_SERVICE_PORT"),
            (|p| p.token.clear(), "token is empty"),
            (|p| p.ca_pem = None, "SKIP_TLS_VERIFY"),
        ] {
            let mut p = params();
            edit(&mut p);
            let err = kubeconfig_yaml(&p).unwrap_err();
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn kubeconfig_values_cannot_break_the_yaml() {
        let mut p = params();
        p.token = "a\"b\nc: d".into();
        let text = kubeconfig_yaml(&p).unwrap();
        assert!(text.contains(r#"token: "a\"b\nc: d""#), "{text}");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }
}
