//! felix's own settings from the environment, with Calico's variable names
//! (`FELIX_<FIELD IN CAPITALS>`). Pure: parsed from a lookup closure.

use std::time::Duration;

use thiserror::Error;

use crate::calc::policy::host::{Failsafes, parse_failsafe_list};

/// Which iptables tools to drive (`--iptables-backend`, `FELIX_IPTABLESBACKEND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// The backend whose tables already hold rules (Calico's `Auto`).
    #[default]
    Auto,
    Nft,
    Legacy,
}

/// Settings of the daemon loop and its servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FelixConfig {
    pub node: String,
    pub backend: BackendChoice,
    /// `FELIX_HEALTHHOST` (default `localhost`), `FELIX_HEALTHPORT` (9099).
    pub health_host: String,
    pub health_port: u16,
    /// `FELIX_PROMETHEUSMETRICSHOST` (default all addresses), `FELIX_PROMETHEUSMETRICSPORT` (9091).
    pub metrics_host: String,
    pub metrics_port: u16,
    /// `FELIX_ROUTEREFRESHINTERVAL` in seconds (default 90; 0 disables).
    pub route_refresh: Option<Duration>,
    /// `FELIX_IPTABLESREFRESHINTERVAL` in seconds (default 90; 0 disables).
    pub iptables_refresh: Option<Duration>,
    /// `FELIX_APPLYMININTERVALMS`: minimum time between two applies during a burst
    /// of updates (default 20 ms). An update arriving when felix is idle is
    /// applied at once.
    pub apply_min_interval: Duration,
    /// `FELIX_READINESSMAXAPPLYFAILURES`: consecutive failed applies after
    /// which readiness fails (default 3; 0 = never on count alone).
    pub ready_max_failures: u32,
    /// `FELIX_READINESSAPPLYFAILURETIMEOUTSECS`: how long applies may keep
    /// failing before readiness fails (default 30 s; 0 = never on time alone).
    pub ready_failure_timeout: Option<Duration>,
    /// `FELIX_FAILSAFEINBOUNDHOSTPORTS` / `FELIX_FAILSAFEOUTBOUNDHOSTPORTS`
    /// (FelixConfiguration `failsafeInboundHostPorts` / `failsafeOutboundHostPorts`):
    /// `<protocol>:[<net>:]<port>,...` or `none`; Calico's defaults otherwise.
    pub failsafes: Failsafes,
    /// `FELIX_VXLANVNI`, `FELIX_VXLANPORT`, `FELIX_VXLANMTU` (FelixConfiguration
    /// `vxlanVNI`, `vxlanPort`, `vxlanMTU`).
    pub overlay: OverlaySettings,
    /// `FELIX_MTUFILE`: where the pod MTU is written for the CNI plugin (Calico's
    /// `/var/lib/calico/mtu`); `none` writes nowhere.
    pub mtu_file: Option<std::path::PathBuf>,
}

/// Where Calico's felix writes the pod MTU and its CNI plugin reads it.
pub const DEFAULT_MTU_FILE: &str = "/var/lib/calico/mtu";

/// The VXLAN device's settings; Calico's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlaySettings {
    pub vxlan_vni: u32,
    pub vxlan_port: u16,
    /// `None`: the host interface's MTU less the 50 bytes VXLAN adds.
    pub vxlan_mtu: Option<u32>,
}

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

impl Default for OverlaySettings {
    fn default() -> Self {
        Self {
            vxlan_vni: 4096,
            vxlan_port: 4789,
            vxlan_mtu: None,
        }
    }
}

pub const DEFAULT_REFRESH: Duration = Duration::from_secs(90);
pub const DEFAULT_APPLY_MIN_INTERVAL: Duration = Duration::from_millis(20);
pub const DEFAULT_READY_MAX_FAILURES: u32 = 3;
pub const DEFAULT_READY_FAILURE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl FelixConfig {
    /// Defaults for `node`.
    pub fn new(node: &str) -> Self {
        Self {
            node: node.into(),
            backend: BackendChoice::Auto,
            health_host: "localhost".into(),
            health_port: 9099,
            metrics_host: "0.0.0.0".into(),
            metrics_port: 9091,
            route_refresh: Some(DEFAULT_REFRESH),
            iptables_refresh: Some(DEFAULT_REFRESH),
            apply_min_interval: DEFAULT_APPLY_MIN_INTERVAL,
            ready_max_failures: DEFAULT_READY_MAX_FAILURES,
            ready_failure_timeout: Some(DEFAULT_READY_FAILURE_TIMEOUT),
            failsafes: Failsafes::default(),
            overlay: OverlaySettings::default(),
            mtu_file: Some(DEFAULT_MTU_FILE.into()),
        }
    }

    /// Overrides the defaults with the `FELIX_*` variables `lookup` knows.
    pub fn from_lookup(
        node: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut c = Self::new(node);
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        };
        let number = |(name, value): (&'static str, String)| {
            value.parse::<u64>().map_err(|_| ConfigError {
                name,
                value,
                reason: "not a non-negative integer".into(),
            })
        };
        let port = |(name, value): (&'static str, String)| {
            value.parse::<u16>().map_err(|_| ConfigError {
                name,
                value,
                reason: "not a port number (0-65535)".into(),
            })
        };
        let interval = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        if let Some(v) = get("FELIX_HEALTHHOST") {
            c.health_host = v.1;
        }
        if let Some(v) = get("FELIX_HEALTHPORT") {
            c.health_port = port(v)?;
        }
        if let Some(v) = get("FELIX_PROMETHEUSMETRICSHOST") {
            c.metrics_host = v.1;
        }
        if let Some(v) = get("FELIX_PROMETHEUSMETRICSPORT") {
            c.metrics_port = port(v)?;
        }
        if let Some(v) = get("FELIX_ROUTEREFRESHINTERVAL") {
            c.route_refresh = interval(number(v)?);
        }
        if let Some(v) = get("FELIX_IPTABLESREFRESHINTERVAL") {
            c.iptables_refresh = interval(number(v)?);
        }
        if let Some(v) = get("FELIX_APPLYMININTERVALMS") {
            c.apply_min_interval = Duration::from_millis(number(v)?);
        }
        if let Some(v) = get("FELIX_READINESSMAXAPPLYFAILURES") {
            let (name, value) = v.clone();
            c.ready_max_failures = u32::try_from(number(v)?).map_err(|_| ConfigError {
                name,
                value,
                reason: "too large".into(),
            })?;
        }
        if let Some(v) = get("FELIX_READINESSAPPLYFAILURETIMEOUTSECS") {
            c.ready_failure_timeout = interval(number(v)?);
        }
        let failsafe = |(name, value): (&'static str, String)| {
            parse_failsafe_list(&value).map_err(|reason| ConfigError {
                name,
                value: value.clone(),
                reason,
            })
        };
        if let Some(v) = get("FELIX_FAILSAFEINBOUNDHOSTPORTS") {
            c.failsafes.inbound = failsafe(v)?;
        }
        if let Some(v) = get("FELIX_FAILSAFEOUTBOUNDHOSTPORTS") {
            c.failsafes.outbound = failsafe(v)?;
        }
        let ranged = |(name, value): (&'static str, String),
                      range: std::ops::RangeInclusive<u64>| {
            let n = number((name, value.clone()))?;
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(ConfigError {
                    name,
                    value,
                    reason: format!("out of range {}-{}", range.start(), range.end()),
                })
            }
        };
        if let Some(v) = get("FELIX_VXLANVNI") {
            c.overlay.vxlan_vni = ranged(v, 1..=u64::from(MAX_VNI))? as u32;
        }
        if let Some(v) = get("FELIX_VXLANPORT") {
            c.overlay.vxlan_port = ranged(v, 1..=65535)? as u16;
        }
        if let Some(v) = get("FELIX_VXLANMTU") {
            // 0 means "detect" (Calico); 68 is the least IPv4 allows.
            c.overlay.vxlan_mtu = match number(v.clone())? {
                0 => None,
                _ => Some(ranged(v, 68..=65535)? as u32),
            };
        }
        if let Some((_, value)) = get("FELIX_MTUFILE") {
            c.mtu_file = (!value.eq_ignore_ascii_case("none")).then(|| value.into());
        }
        if let Some((name, value)) = get("FELIX_IPTABLESBACKEND") {
            c.backend = match value.to_ascii_lowercase().as_str() {
                "auto" => BackendChoice::Auto,
                "nft" => BackendChoice::Nft,
                "legacy" => BackendChoice::Legacy,
                _ => {
                    return Err(ConfigError {
                        name,
                        value,
                        reason: "not one of Auto, NFT, Legacy".into(),
                    });
                }
            };
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_are_calicos() {
        let c = FelixConfig::from_lookup("n1", lookup(&[])).unwrap();
        assert_eq!(c, FelixConfig::new("n1"));
        assert_eq!((c.health_port, c.metrics_port), (9099, 9091));
        assert_eq!(c.route_refresh, Some(Duration::from_secs(90)));
    }

    #[test]
    fn env_overrides_and_zero_disables_refresh() {
        let c = FelixConfig::from_lookup(
            "n1",
            lookup(&[
                ("FELIX_HEALTHPORT", "19099"),
                ("FELIX_ROUTEREFRESHINTERVAL", "0"),
                ("FELIX_IPTABLESREFRESHINTERVAL", "5"),
                ("FELIX_IPTABLESBACKEND", "Legacy"),
                ("FELIX_APPLYMININTERVALMS", "50"),
                ("FELIX_READINESSMAXAPPLYFAILURES", "7"),
                ("FELIX_READINESSAPPLYFAILURETIMEOUTSECS", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(c.health_port, 19099);
        assert_eq!(c.route_refresh, None);
        assert_eq!(c.iptables_refresh, Some(Duration::from_secs(5)));
        assert_eq!(c.backend, BackendChoice::Legacy);
        assert_eq!(c.apply_min_interval, Duration::from_millis(50));
        assert_eq!(c.ready_max_failures, 7);
        assert_eq!(c.ready_failure_timeout, None);
    }

    #[test]
    fn failsafe_ports_parse_as_calicos_and_none_clears_them() {
        let c = FelixConfig::from_lookup(
            "n1",
            lookup(&[
                (
                    "FELIX_FAILSAFEINBOUNDHOSTPORTS",
                    "tcp:22, udp:10.0.0.0/8:68",
                ),
                ("FELIX_FAILSAFEOUTBOUNDHOSTPORTS", "none"),
            ]),
        )
        .unwrap();
        let shown: Vec<String> = c.failsafes.inbound.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["tcp:22", "udp:10.0.0.0/8:68"]);
        assert!(c.failsafes.outbound.is_empty());
        let defaults = FelixConfig::new("n1").failsafes;
        assert_eq!(defaults.inbound.len(), 9);
        assert_eq!(defaults.outbound[0].to_string(), "udp:53");
        for bad in ["sctp:22", "tcp:0", "tcp:70000", "tcp", "tcp:10.0.0.0/40:22"] {
            let err =
                FelixConfig::from_lookup("n1", lookup(&[("FELIX_FAILSAFEINBOUNDHOSTPORTS", bad)]))
                    .unwrap_err();
            assert_eq!(err.name, "FELIX_FAILSAFEINBOUNDHOSTPORTS", "{bad}");
        }
    }

    #[test]
    fn vxlan_settings_default_to_calicos_and_refuse_out_of_range() {
        let c = FelixConfig::from_lookup("n1", lookup(&[])).unwrap();
        assert_eq!(c.overlay, OverlaySettings::default());
        assert_eq!((c.overlay.vxlan_vni, c.overlay.vxlan_port), (4096, 4789));
        let c = FelixConfig::from_lookup(
            "n1",
            lookup(&[
                ("FELIX_VXLANVNI", "16777215"),
                ("FELIX_VXLANPORT", "8472"),
                ("FELIX_VXLANMTU", "1400"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.overlay,
            OverlaySettings {
                vxlan_vni: MAX_VNI,
                vxlan_port: 8472,
                vxlan_mtu: Some(1400)
            }
        );
        let c = FelixConfig::from_lookup("n1", lookup(&[("FELIX_VXLANMTU", "0")])).unwrap();
        assert_eq!(c.overlay.vxlan_mtu, None);
        assert_eq!(c.mtu_file, Some(DEFAULT_MTU_FILE.into()));
        let c = FelixConfig::from_lookup("n1", lookup(&[("FELIX_MTUFILE", "none")])).unwrap();
        assert_eq!(c.mtu_file, None);
        let c = FelixConfig::from_lookup("n1", lookup(&[("FELIX_MTUFILE", "/w/mtu")])).unwrap();
        assert_eq!(c.mtu_file, Some("/w/mtu".into()));
        for (name, bad) in [
            ("FELIX_VXLANVNI", "0"),
            ("FELIX_VXLANVNI", "16777216"),
            ("FELIX_VXLANPORT", "0"),
            ("FELIX_VXLANPORT", "65536"),
            ("FELIX_VXLANMTU", "40"),
            ("FELIX_VXLANMTU", "-1"),
        ] {
            let err = FelixConfig::from_lookup("n1", lookup(&[(name, bad)])).unwrap_err();
            assert_eq!(err.name, name, "{bad}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err =
            FelixConfig::from_lookup("n1", lookup(&[("FELIX_HEALTHPORT", "99999")])).unwrap_err();
        assert_eq!(err.name, "FELIX_HEALTHPORT");
        let err = FelixConfig::from_lookup("n1", lookup(&[("FELIX_ROUTEREFRESHINTERVAL", "-1")]))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("FELIX_ROUTEREFRESHINTERVAL=\"-1\""),
            "{err}"
        );
    }
}
