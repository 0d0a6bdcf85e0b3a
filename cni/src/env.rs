//! The `CNI_*` environment a runtime sets (spec "Parameters"), and `CNI_ARGS`.
//!
//! Parsing is a pure function of a lookup closure, so it is tested without touching the
//! process environment.

use std::net::IpAddr;
use std::path::PathBuf;

pub use config::validate::valid_ifname;

use crate::error::{CniError, INVALID_ENV, Result};

/// The operations of spec 1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            other => {
                return Err(CniError::new(
                    INVALID_ENV,
                    "unknown CNI_COMMAND",
                    format!("CNI_COMMAND={other:?} is not ADD, DEL, CHECK, VERSION, GC or STATUS"),
                ));
            }
        })
    }

    /// Whether the command concerns one container attachment (and so needs
    /// CNI_CONTAINERID and CNI_IFNAME).
    pub fn per_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// Everything the runtime passed in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Command,
    pub container_id: String,
    /// Path of the container's network namespace; DEL may run without it (already gone).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: CniArgs,
    /// Directories searched for delegated plugins.
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    pub fn from_process() -> Result<CniEnv> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<CniEnv> {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let command = Command::parse(&get("CNI_COMMAND").ok_or_else(|| missing("CNI_COMMAND"))?)?;
        let per = command.per_attachment();
        let container_id = match get("CNI_CONTAINERID") {
            Some(id) => check_container_id(&id)?,
            None if per => return Err(missing("CNI_CONTAINERID")),
            None => String::new(),
        };
        let ifname = match get("CNI_IFNAME") {
            Some(name) if valid_ifname(&name) => name,
            Some(name) => {
                return Err(CniError::new(
                    INVALID_ENV,
                    "invalid CNI_IFNAME",
                    format!(
                        "{name:?} is not a Linux interface name (1-15 bytes, no '/', ':' or spaces)"
                    ),
                ));
            }
            None if per => return Err(missing("CNI_IFNAME")),
            None => String::new(),
        };
        let netns = get("CNI_NETNS").map(PathBuf::from);
        if netns.is_none() && matches!(command, Command::Add | Command::Check) {
            return Err(missing("CNI_NETNS"));
        }
        Ok(CniEnv {
            command,
            container_id,
            netns,
            ifname,
            args: CniArgs::parse(&get("CNI_ARGS").unwrap_or_default())?,
            path: get("CNI_PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        })
    }
}

fn missing(name: &str) -> CniError {
    CniError::new(
        INVALID_ENV,
        format!("{name} is not set"),
        "the runtime must set it for this command",
    )
}

/// Spec: "alphanumeric, plus hyphen, underscore and period", must not be empty.
fn check_container_id(id: &str) -> Result<String> {
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(CniError::new(
            INVALID_ENV,
            "invalid CNI_CONTAINERID",
            format!("{id:?} must contain only letters, digits, '-', '_' and '.'"),
        ))
    }
}

/// The `CNI_ARGS` keys these plugins read (`K=V;K=V`; unknown keys are ignored, as with
/// `IgnoreUnknown=1`, because runtimes pass keys meant for other plugins in a chain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub infra_container_id: Option<String>,
    /// `IP=`: addresses the IPAM plugin must assign (comma-separated).
    pub ips: Vec<IpAddr>,
}

impl CniArgs {
    pub fn parse(raw: &str) -> Result<CniArgs> {
        let mut out = CniArgs::default();
        for pair in raw.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CniError::new(
                    INVALID_ENV,
                    "invalid CNI_ARGS",
                    format!("{pair:?} is not KEY=VALUE"),
                ));
            };
            let v = v.trim();
            match k.trim() {
                "K8S_POD_NAMESPACE" if !v.is_empty() => out.pod_namespace = Some(v.into()),
                "K8S_POD_NAME" if !v.is_empty() => out.pod_name = Some(v.into()),
                "K8S_POD_INFRA_CONTAINER_ID" if !v.is_empty() => {
                    out.infra_container_id = Some(v.into())
                }
                "IP" => {
                    for ip in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        out.ips.push(ip.parse().map_err(|_| {
                            CniError::new(
                                INVALID_ENV,
                                "invalid CNI_ARGS",
                                format!("IP={ip:?} is not an IP address"),
                            )
                        })?);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let full = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", "/var/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p-1;IP=10.0.0.7",
            ),
        ];
        let e = env(&full).unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.path.len(), 2);
        assert_eq!(e.args.pod_namespace.as_deref(), Some("ns"));
        assert_eq!(e.args.pod_name.as_deref(), Some("p-1"));
        assert_eq!(e.args.ips, vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
        for drop in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_COMMAND"] {
            let partial: Vec<_> = full.iter().copied().filter(|(k, _)| *k != drop).collect();
            assert_eq!(
                env(&partial).unwrap_err().code,
                INVALID_ENV,
                "without {drop}"
            );
        }
    }

    #[test]
    fn del_without_netns_and_version_without_anything() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert_eq!(e.netns, None);
        assert_eq!(
            env(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
    }

    #[test]
    fn bad_values_are_error_4() {
        let base = [("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")];
        let with = |k: &'static str, v: &'static str| {
            let mut p = base.to_vec();
            p.push(("CNI_CONTAINERID", "abc"));
            p.retain(|(key, _)| *key != k);
            p.push((k, v));
            env(&p)
        };
        assert_eq!(with("CNI_CONTAINERID", "a/b").unwrap_err().code, 4);
        assert_eq!(
            with("CNI_IFNAME", "a-very-long-ifname").unwrap_err().code,
            4
        );
        assert_eq!(with("CNI_ARGS", "novalue").unwrap_err().code, 4);
        assert_eq!(with("CNI_ARGS", "IP=10.0.0.300").unwrap_err().code, 4);
        assert_eq!(with("CNI_COMMAND", "FROB").unwrap_err().code, 4);
    }
}
