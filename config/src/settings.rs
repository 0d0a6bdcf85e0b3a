//! Daemon settings from the environment and command-line flags, the way Calico components
//! read them: `NODENAME`, `ETCD_ENDPOINTS` (comma-separated), `ETCD_CA_CERT_FILE`,
//! `ETCD_CERT_FILE`, `ETCD_KEY_FILE`, `ETCD_USERNAME`, `ETCD_PASSWORD`, `LOG_LEVEL`, each also
//! as `CALICO_<NAME>` (what calicoctl users set). Flags (`--etcd-endpoints` ...) override the
//! environment. Parsing is a pure function of a lookup closure so that it is testable
//! without touching the process environment.

use std::path::PathBuf;

use crate::datastore::EtcdConfig;

/// The endpoint used when none is configured (Calico's default).
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";
/// The log level used when none is configured.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// A setting that is present but unusable; names where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {source_name}: {message}")]
pub struct SettingsError {
    /// The environment variable or flag, e.g. `CALICO_ETCD_ENDPOINTS` or `--etcd-endpoints`.
    pub source_name: String,
    pub message: String,
}

impl SettingsError {
    fn new(source_name: &str, message: impl Into<String>) -> Self {
        SettingsError {
            source_name: source_name.to_string(),
            message: message.into(),
        }
    }
}

/// What every daemon needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// This node's name (`NODENAME`); daemons that need it fall back to the hostname.
    pub node_name: Option<String>,
    pub etcd: EtcdConfig,
    /// A `tracing` level: trace, debug, info, warn, error or off.
    pub log_level: String,
}

/// The etcd flags every daemon accepts (`#[command(flatten)]` them into its CLI).
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdArgs {
    /// Comma-separated etcd client URLs [env: ETCD_ENDPOINTS, default: http://127.0.0.1:2379]
    #[arg(long, value_name = "URLS")]
    pub etcd_endpoints: Option<String>,
    /// CA certificate (PEM) that signed etcd's server certificate [env: ETCD_CA_CERT_FILE]
    #[arg(long, value_name = "FILE")]
    pub etcd_ca_cert_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd [env: ETCD_CERT_FILE]
    #[arg(long, value_name = "FILE")]
    pub etcd_cert_file: Option<PathBuf>,
    /// Client key (PEM) for etcd [env: ETCD_KEY_FILE]
    #[arg(long, value_name = "FILE")]
    pub etcd_key_file: Option<PathBuf>,
    /// etcd user name [env: ETCD_USERNAME]
    #[arg(long, value_name = "NAME")]
    pub etcd_username: Option<String>,
    /// etcd password [env: ETCD_PASSWORD]
    #[arg(long, value_name = "PASSWORD")]
    pub etcd_password: Option<String>,
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from the process environment, overridden by flags.
    pub fn from_env_and_args(args: &EtcdArgs) -> Result<Settings, SettingsError> {
        Self::from_lookup_and_args(|name| std::env::var(name).ok(), args)
    }

    /// Settings from `lookup` (a variable name to its value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        Self::from_lookup_and_args(lookup, &EtcdArgs::default())
    }

    /// Settings from `lookup`, overridden by `args`.
    pub fn from_lookup_and_args(
        lookup: impl Fn(&str) -> Option<String>,
        args: &EtcdArgs,
    ) -> Result<Settings, SettingsError> {
        let node_name = match var(&lookup, "NODENAME") {
            Some((source, name)) => Some(check_node_name(&source, name)?),
            None => None,
        };
        let log_level = match var(&lookup, "LOG_LEVEL") {
            Some((source, level)) => normalise_level(&level)
                .ok_or_else(|| {
                    SettingsError::new(
                        &source,
                        format!(
                            "log level {level:?} is not one of trace, debug, info, warning, error, fatal, panic, off"
                        ),
                    )
                })?
                .to_string(),
            None => DEFAULT_LOG_LEVEL.to_string(),
        };
        Ok(Settings {
            node_name,
            etcd: etcd_config_from_lookup(&lookup, args)?,
            log_level,
        })
    }
}

/// The etcd client configuration from `lookup`, overridden by `args`.
pub fn etcd_config_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
    args: &EtcdArgs,
) -> Result<EtcdConfig, SettingsError> {
    let pick = |flag: &str, given: Option<String>, name: &str| -> Option<(String, String)> {
        given
            .filter(|v| !v.is_empty())
            .map(|v| (flag.to_string(), v))
            .or_else(|| var(&lookup, name))
    };
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    let endpoints = match pick(
        "--etcd-endpoints",
        args.etcd_endpoints.clone(),
        "ETCD_ENDPOINTS",
    ) {
        Some((source, raw)) => parse_endpoints(&source, &raw)?,
        None => vec![DEFAULT_ETCD_ENDPOINT.to_string()],
    };
    let ca = pick(
        "--etcd-ca-cert-file",
        path(&args.etcd_ca_cert_file),
        "ETCD_CA_CERT_FILE",
    );
    let cert = pick(
        "--etcd-cert-file",
        path(&args.etcd_cert_file),
        "ETCD_CERT_FILE",
    );
    let key = pick(
        "--etcd-key-file",
        path(&args.etcd_key_file),
        "ETCD_KEY_FILE",
    );
    let user = pick(
        "--etcd-username",
        args.etcd_username.clone(),
        "ETCD_USERNAME",
    );
    let password = pick(
        "--etcd-password",
        args.etcd_password.clone(),
        "ETCD_PASSWORD",
    );

    // A certificate without its key (or the reverse) cannot authenticate: say which is missing.
    match (&cert, &key) {
        (Some((source, _)), None) => {
            return Err(SettingsError::new(
                source,
                "a client certificate needs ETCD_KEY_FILE too",
            ));
        }
        (None, Some((source, _))) => {
            return Err(SettingsError::new(
                source,
                "a client key needs ETCD_CERT_FILE too",
            ));
        }
        _ => {}
    }
    if let (None, Some((source, _))) = (&user, &password) {
        return Err(SettingsError::new(
            source,
            "a password needs ETCD_USERNAME too",
        ));
    }
    let tls_source = ca.as_ref().or(cert.as_ref()).map(|(source, _)| source);
    if let Some(source) = tls_source
        && let Some(plain) = endpoints.iter().find(|e| e.starts_with("http://"))
    {
        return Err(SettingsError::new(
            source,
            format!("TLS files are set but endpoint {plain} is http://; use https://"),
        ));
    }
    Ok(EtcdConfig {
        endpoints,
        ca_cert_file: ca.map(|(_, v)| PathBuf::from(v)),
        cert_file: cert.map(|(_, v)| PathBuf::from(v)),
        key_file: key.map(|(_, v)| PathBuf::from(v)),
        username: user.map(|(_, v)| v),
        password: password.map(|(_, v)| v),
    })
}

/// Looks up `CALICO_<name>`, then `<name>`; empty counts as unset. Returns the variable that
/// was used with its value. The prefixed name wins, as in Calico's envconfig loading, so that
/// a calicoctl user's `CALICO_ETCD_ENDPOINTS` beats a stray `ETCD_ENDPOINTS`.
fn var(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<(String, String)> {
    [format!("CALICO_{name}"), name.to_string()]
        .into_iter()
        .find_map(|var| {
            lookup(&var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (var, v.trim().to_string()))
        })
}

/// Parses a comma-separated endpoint list; every entry must be an http:// or https:// URL
/// with a host and an optional port, and no path.
pub fn parse_endpoints(source: &str, raw: &str) -> Result<Vec<String>, SettingsError> {
    let mut endpoints = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        check_endpoint(entry)
            .map_err(|why| SettingsError::new(source, format!("endpoint {entry:?} {why}")))?;
        endpoints.push(entry.trim_end_matches('/').to_string());
    }
    if endpoints.is_empty() {
        return Err(SettingsError::new(
            source,
            "no endpoint given (expected e.g. http://127.0.0.1:2379)",
        ));
    }
    Ok(endpoints)
}

fn check_endpoint(entry: &str) -> Result<(), String> {
    let rest = entry
        .strip_prefix("http://")
        .or_else(|| entry.strip_prefix("https://"))
        .ok_or("must be an http:// or https:// URL")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() {
        return Err("must not have a path".into());
    }
    // RFC 3986 3.2.2: an IPv6 literal is bracketed, so its colons are not the port separator.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("has an unclosed '[' in its host")?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("has junk after the IPv6 host")?,
                    ),
                ),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err("has no valid host".into());
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("has an invalid port {port:?} (1-65535)")),
        }
    }
    Ok(())
}

fn check_node_name(source: &str, name: String) -> Result<String, SettingsError> {
    // The node name is a segment of datastore keys (…/nodes/<name>, IPAM affinities), so a
    // '/' would address another key; Kubernetes caps names at 253 characters.
    if name.len() > 253 || name.contains(|c: char| c == '/' || c.is_whitespace()) {
        return Err(SettingsError::new(
            source,
            format!("node name {name:?} must be at most 253 characters without '/' or spaces"),
        ));
    }
    Ok(name)
}

/// Maps Calico's level names (logrus: warning, fatal, panic) onto `tracing`'s.
fn normalise_level(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        "off" | "none" => "off",
        _ => return None,
    })
}

/// The filter directives logging starts with: `RUST_LOG` when set (it can name modules),
/// else the level from the settings.
pub fn log_directives(rust_log: Option<&str>, log_level: &str) -> String {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        Some(directives) => directives.to_string(),
        None => normalise_level(log_level)
            .unwrap_or(DEFAULT_LOG_LEVEL)
            .to_string(),
    }
}

/// Installs the global `tracing` subscriber, logging to stderr (stdout belongs to command
/// output; a CNI plugin's stdout is its result). `RUST_LOG` overrides `log_level`. Does
/// nothing if a subscriber is already installed; fails on unparsable `RUST_LOG`.
pub fn init_tracing(log_level: &str) -> Result<(), SettingsError> {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let directives = log_directives(rust_log.as_deref(), log_level);
    let source = if rust_log.is_some() {
        "RUST_LOG"
    } else {
        "LOG_LEVEL"
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|err| SettingsError::new(source, format!("{directives:?}: {err}")))?;
    let _already_installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}
