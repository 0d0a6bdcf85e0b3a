//! `bgpd --config FILE`: the YAML daemon configuration, its validation, and
//! the per-peer FSM settings derived from it.
//!
//! Unknown fields are refused, and every error names the field (with its
//! path, e.g. `peers[1].holdTime`) and the rule it broke.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::fsm::{self, PeerAs};
use crate::wire::{Capability, Family, GrFamily, GracefulRestart};

/// Default control socket, where calicoctl and birdc look for BIRD's.
pub const DEFAULT_CONTROL_SOCKET: &str = "/var/run/calico/bird.ctl";
/// DESIGN.md: bgpd metrics on 9092.
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9092";
pub const BGP_PORT: u16 = 179;
/// RFC 2385 / Linux TCP_MD5SIG_MAXKEYLEN.
pub const MAX_PASSWORD_LEN: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config field `{field}`: {message}")]
    Parse { field: String, message: String },
    #[error("config field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamilyName {
    Ipv4,
    Ipv6,
}

impl FamilyName {
    pub fn family(self) -> Family {
        match self {
            FamilyName::Ipv4 => Family::IPV4_UNICAST,
            FamilyName::Ipv6 => Family::IPV6_UNICAST,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listen {
    #[serde(default = "default_listen_address")]
    pub address: IpAddr,
    #[serde(default = "default_port")]
    pub port: u16,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            address: default_listen_address(),
            port: BGP_PORT,
        }
    }
}

fn default_listen_address() -> IpAddr {
    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
}
fn default_port() -> u16 {
    BGP_PORT
}
fn default_hold() -> u16 {
    240
}
fn default_families() -> Vec<FamilyName> {
    vec![FamilyName::Ipv4, FamilyName::Ipv6]
}
fn default_true() -> bool {
    true
}

/// One configured neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerConfig {
    /// Session name as shown by `show protocols`; default `Global_<ip>`.
    #[serde(default)]
    pub name: Option<String>,
    pub address: IpAddr,
    pub as_number: u32,
    #[serde(default = "default_port")]
    pub port: u16,
    /// TCP MD5 signature key (RFC 2385).
    #[serde(default)]
    pub password: Option<String>,
    /// Never connect; wait for the peer.
    #[serde(default)]
    pub passive: bool,
    #[serde(default = "default_hold")]
    pub hold_time: u16,
    /// Default: a third of the negotiated hold time.
    #[serde(default)]
    pub keepalive_time: Option<u16>,
    #[serde(default = "default_families")]
    pub families: Vec<FamilyName>,
    /// Cease (subcode 1) when the peer sends more (RFC 4486).
    #[serde(default)]
    pub max_prefixes: Option<u32>,
    /// GTSM (RFC 5082): the peer is at most this many hops away; packets
    /// are sent with TTL 255 and accepted with TTL >= 256 - hops.
    #[serde(default)]
    pub ttl_security: Option<u8>,
    #[serde(default)]
    pub source_address: Option<IpAddr>,
    /// RFC 4456: this iBGP peer is a client of ours.
    #[serde(default)]
    pub route_reflector_client: bool,
    /// Bytes that may wait to be sent to this peer; beyond that the peer
    /// is not reading and the session is reset with Cease "Out of
    /// Resources" (RFC 4486 subcode 8).
    #[serde(default = "default_send_queue_limit")]
    pub send_queue_limit: usize,
    /// Graceful Restart (RFC 4724) with this Restart Time in seconds (at most 4095): offered
    /// to the peer, which then keeps our routes while we restart (and we keep its routes
    /// while it does). Unset: no Graceful Restart.
    #[serde(default)]
    pub graceful_restart_time: Option<u16>,
    /// BFD (RFC 5880/5881) towards this peer: `true` for 100 ms x 3, or
    /// `{minRxMs, minTxMs, multiplier}`. When the BFD session goes from Up to Down the
    /// BGP session drops at once and its routes are withdrawn. The BGP session does not
    /// wait for BFD to come up.
    #[serde(default, deserialize_with = "bfd_setting")]
    pub bfd: Option<BfdConfig>,
}

/// A peer's BFD timers (our RequiredMinRxInterval, DesiredMinTxInterval and DetectMult).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BfdConfig {
    #[serde(default = "default_bfd_ms")]
    pub min_rx_ms: u32,
    #[serde(default = "default_bfd_ms")]
    pub min_tx_ms: u32,
    #[serde(default = "default_bfd_multiplier")]
    pub multiplier: u8,
}

/// The longest BFD interval accepted: a minute (the wire carries microseconds in 32 bits).
pub const MAX_BFD_INTERVAL_MS: u32 = 60_000;

fn default_bfd_ms() -> u32 {
    100
}
fn default_bfd_multiplier() -> u8 {
    3
}

impl Default for BfdConfig {
    fn default() -> Self {
        BfdConfig {
            min_rx_ms: default_bfd_ms(),
            min_tx_ms: default_bfd_ms(),
            multiplier: default_bfd_multiplier(),
        }
    }
}

impl BfdConfig {
    /// The session timers in the core's microseconds.
    pub fn session_config(&self) -> bgp_core::bfd::Config {
        bgp_core::bfd::Config {
            desired_min_tx_us: self.min_tx_ms.saturating_mul(1000),
            required_min_rx_us: self.min_rx_ms.saturating_mul(1000),
            detect_mult: self.multiplier,
        }
    }
}

/// `bfd: true|false` or `bfd: {minRxMs, minTxMs, multiplier}`.
fn bfd_setting<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<BfdConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Setting {
        On(bool),
        Timers(BfdConfig),
    }
    match Option::<Setting>::deserialize(d)? {
        None | Some(Setting::On(false)) => Ok(None),
        Some(Setting::On(true)) => Ok(Some(BfdConfig::default())),
        Some(Setting::Timers(t)) => Ok(Some(t)),
    }
}

/// The largest Restart Time the Graceful Restart capability can carry (12 bits).
pub const MAX_RESTART_TIME: u16 = 0x0fff;

/// 64 MiB: a full table of a few hundred thousand routes fits many times.
pub const DEFAULT_SEND_QUEUE_LIMIT: usize = 64 << 20;

fn default_send_queue_limit() -> usize {
    DEFAULT_SEND_QUEUE_LIMIT
}

impl PeerConfig {
    /// A peer with the defaults, for code that builds configs at run time.
    pub fn new(address: IpAddr, as_number: u32) -> Self {
        PeerConfig {
            name: None,
            address,
            as_number,
            port: BGP_PORT,
            password: None,
            passive: false,
            hold_time: default_hold(),
            keepalive_time: None,
            families: default_families(),
            max_prefixes: None,
            ttl_security: None,
            source_address: None,
            route_reflector_client: false,
            send_queue_limit: DEFAULT_SEND_QUEUE_LIMIT,
            graceful_restart_time: None,
            bfd: None,
        }
    }

    /// The configured name, or Calico's `Global_<ip>`.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| session_name("Global", self.address))
    }

    pub fn families(&self) -> Vec<Family> {
        self.families.iter().map(|f| f.family()).collect()
    }

    /// The FSM settings for this peer. `forwarding_preserved`: whether our forwarding state
    /// survives our own restart (the F bit of our Graceful Restart capability).
    pub fn fsm_config(
        &self,
        local_as: u32,
        router_id: Ipv4Addr,
        forwarding_preserved: bool,
    ) -> fsm::Config {
        let mut c = fsm::Config::new(local_as, router_id, PeerAs::Exact(self.as_number));
        c.hold_time = self.hold_time;
        c.keepalive = self.keepalive_time;
        c.passive = self.passive;
        c.max_prefixes = self.max_prefixes;
        let fams = self.families();
        c.capabilities.retain(|cap| match cap {
            Capability::Multiprotocol(f) => fams.contains(f),
            _ => true,
        });
        if let Some(restart_time) = self.graceful_restart_time {
            c.capabilities
                .push(Capability::GracefulRestart(GracefulRestart {
                    restarting: false,
                    notification: false,
                    restart_time,
                    families: fams
                        .iter()
                        .map(|f| GrFamily {
                            family: *f,
                            forwarding_preserved,
                        })
                        .collect(),
                }));
        }
        c
    }

    fn validate(&self, field: &str, local_as: u32) -> Result<(), ConfigError> {
        if self.as_number == 0 {
            return Err(invalid(
                format!("{field}.asNumber"),
                "AS 0 is reserved (RFC 7607)",
            ));
        }
        if let Some(n) = &self.name
            && !valid_name(n)
        {
            return Err(invalid(
                format!("{field}.name"),
                format!("{n:?}: use 1-64 letters, digits and '_' (a BIRD protocol name)"),
            ));
        }
        if self.address.is_unspecified() || self.address.is_multicast() {
            return Err(invalid(
                format!("{field}.address"),
                format!("{} is not a unicast address", self.address),
            ));
        }
        if self.port == 0 {
            return Err(invalid(format!("{field}.port"), "port 0 is not a port"));
        }
        if let Some(t) = self.graceful_restart_time
            && t > MAX_RESTART_TIME
        {
            return Err(invalid(
                format!("{field}.gracefulRestartTime"),
                format!(
                    "{t} s: the capability carries at most {MAX_RESTART_TIME} (12 bits, RFC 4724 3)"
                ),
            ));
        }
        if let Some(b) = &self.bfd {
            for (name, v) in [("minRxMs", b.min_rx_ms), ("minTxMs", b.min_tx_ms)] {
                if v == 0 || v > MAX_BFD_INTERVAL_MS {
                    return Err(invalid(
                        format!("{field}.bfd.{name}"),
                        format!("{v} ms: must be 1-{MAX_BFD_INTERVAL_MS}"),
                    ));
                }
            }
            // RFC 5880 6.8.6: a Detect Mult of zero is invalid on the wire.
            if b.multiplier == 0 {
                return Err(invalid(
                    format!("{field}.bfd.multiplier"),
                    "must be at least 1 (RFC 5880 4.1)",
                ));
            }
        }
        if let Some(p) = &self.password
            && (p.is_empty() || p.len() > MAX_PASSWORD_LEN)
        {
            return Err(invalid(
                format!("{field}.password"),
                format!(
                    "must be 1-{MAX_PASSWORD_LEN} bytes (TCP MD5 key), got {}",
                    p.len()
                ),
            ));
        }
        // One UPDATE batch must fit, or every table would reset the session.
        if self.send_queue_limit < crate::wire::MAX_EXTENDED_MESSAGE_LEN {
            return Err(invalid(
                format!("{field}.sendQueueLimit"),
                format!(
                    "{} bytes: must be at least {} (one extended message, RFC 8654)",
                    self.send_queue_limit,
                    crate::wire::MAX_EXTENDED_MESSAGE_LEN
                ),
            ));
        }
        // RFC 4271 4.2: hold time 0 or at least 3 seconds.
        if matches!(self.hold_time, 1 | 2) {
            return Err(invalid(
                format!("{field}.holdTime"),
                format!(
                    "{} s: must be 0 or at least 3 (RFC 4271 4.2)",
                    self.hold_time
                ),
            ));
        }
        if let Some(k) = self.keepalive_time
            && self.hold_time > 0
            && (k == 0 || k >= self.hold_time)
        {
            return Err(invalid(
                format!("{field}.keepaliveTime"),
                format!(
                    "{k} s: must be between 1 and holdTime - 1 ({})",
                    self.hold_time - 1
                ),
            ));
        }
        if self.families.is_empty() {
            return Err(invalid(
                format!("{field}.families"),
                "at least one of ipv4, ipv6",
            ));
        }
        let mut seen = HashSet::new();
        if let Some(f) = self.families.iter().find(|f| !seen.insert(**f)) {
            return Err(invalid(
                format!("{field}.families"),
                format!("{f:?} listed twice"),
            ));
        }
        if let Some(h) = self.ttl_security
            && !(1..=254).contains(&h)
        {
            return Err(invalid(
                format!("{field}.ttlSecurity"),
                format!("{h}: hop count must be 1-254 (RFC 5082)"),
            ));
        }
        if let Some(s) = self.source_address
            && s.is_ipv4() != self.address.is_ipv4()
        {
            return Err(invalid(
                format!("{field}.sourceAddress"),
                format!(
                    "{s} is not in the address family of the peer {}",
                    self.address
                ),
            ));
        }
        if self.route_reflector_client && self.as_number != local_as {
            return Err(invalid(
                format!("{field}.routeReflectorClient"),
                "only iBGP peers (same asNumber) can be route reflector clients (RFC 4456)",
            ));
        }
        Ok(())
    }
}

/// Calico's session naming: `<kind>_<ip>` with `.` and `:` as `_`.
pub fn session_name(kind: &str, ip: IpAddr) -> String {
    format!("{kind}_{}", ip.to_string().replace(['.', ':'], "_"))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub as_number: u32,
    pub router_id: Ipv4Addr,
    /// RFC 4456 cluster id; set it (or give a peer routeReflectorClient) to
    /// reflect routes. Defaults to the router id when reflecting.
    #[serde(default)]
    pub cluster_id: Option<Ipv4Addr>,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Prefixes this speaker advertises.
    #[serde(default)]
    pub originate: Vec<IpNet>,
    /// Install best routes in the kernel (proto bgp).
    #[serde(default = "default_true")]
    pub fib: bool,
    /// Routes inside these prefixes are never installed (in datastore mode: the VXLAN
    /// pools, whose routes felix programs through the overlay, as Calico's BIRD
    /// templates leave them to felix).
    #[serde(default)]
    pub fib_exclude: Vec<IpNet>,
    /// Leave our kernel routes in place at exit (for graceful restart).
    #[serde(default)]
    pub keep_fib_on_exit: bool,
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// Parse and validate YAML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ConfigError::Parse {
                field: if field == "." {
                    "(document)".into()
                } else {
                    field
                },
                message: e.into_inner().to_string(),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.as_number == 0 {
            return Err(invalid("asNumber", "AS 0 is reserved (RFC 7607)"));
        }
        // RFC 6286 2.1: a non-zero 4-octet identifier.
        if self.router_id.is_unspecified() {
            return Err(invalid(
                "routerId",
                "0.0.0.0 is not a BGP Identifier (RFC 6286)",
            ));
        }
        if self.listen.port == 0 {
            return Err(invalid("listen.port", "port 0 is not a port"));
        }
        let mut addrs = HashSet::new();
        let mut names = HashSet::new();
        for (i, p) in self.peers.iter().enumerate() {
            let field = format!("peers[{i}]");
            p.validate(&field, self.as_number)?;
            if !addrs.insert(p.address) {
                return Err(invalid(
                    format!("{field}.address"),
                    format!("{} is configured twice", p.address),
                ));
            }
            if !names.insert(p.name()) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("{} is used twice", p.name()),
                ));
            }
        }
        for (i, n) in self.originate.iter().enumerate() {
            if n.trunc() != *n {
                return Err(invalid(
                    format!("originate[{i}]"),
                    format!("{n}: host bits set (did you mean {}?)", n.trunc()),
                ));
            }
        }
        Ok(())
    }

    /// The cluster id in force: set when any peer is a client or one is given.
    pub fn effective_cluster_id(&self) -> Option<Ipv4Addr> {
        self.cluster_id.or_else(|| {
            self.peers
                .iter()
                .any(|p| p.route_reflector_client)
                .then_some(self.router_id)
        })
    }

    pub fn control_socket(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET))
    }

    pub fn metrics_listen(&self) -> SocketAddr {
        self.metrics_listen
            .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.parse().expect("valid default"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
asNumber: 64512
routerId: 10.0.0.1
listen: { address: 0.0.0.0, port: 1179 }
peers:
  - address: 10.0.0.2
    asNumber: 64513
    password: s3cret
    holdTime: 90
    families: [ipv4]
    maxPrefixes: 1000
    ttlSecurity: 1
  - name: Mesh_fd00__2
    address: "fd00::2"
    asNumber: 64512
    passive: true
    routeReflectorClient: true
originate: [10.244.1.0/26, "fd00:244::/122"]
fib: false
controlSocket: /tmp/x.ctl
metricsListen: 127.0.0.1:9092
"#;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn bfd_as_a_switch_or_with_timers() {
        let peers = |bfd: &str| {
            Config::parse(&format!(
                "asNumber: 1\nrouterId: 1.1.1.1\npeers:\n  - address: 10.0.0.2\n    asNumber: 2\n    {bfd}\n"
            ))
            .map(|c| c.peers[0].bfd)
        };
        assert_eq!(peers("holdTime: 90").unwrap(), None);
        assert_eq!(peers("bfd: false").unwrap(), None);
        assert_eq!(peers("bfd: true").unwrap(), Some(BfdConfig::default()));
        assert_eq!(
            peers("bfd: {minRxMs: 300, minTxMs: 200, multiplier: 5}").unwrap(),
            Some(BfdConfig {
                min_rx_ms: 300,
                min_tx_ms: 200,
                multiplier: 5
            })
        );
        assert_eq!(
            peers("bfd: {multiplier: 4}")
                .unwrap()
                .unwrap()
                .session_config(),
            bgp_core::bfd::Config {
                desired_min_tx_us: 100_000,
                required_min_rx_us: 100_000,
                detect_mult: 4
            }
        );
        let e = peers("bfd: {multiplier: 0}").unwrap_err().to_string();
        assert!(e.contains("peers[0].bfd.multiplier"), "{e}");
        let e = peers("bfd: {minRxMs: 0}").unwrap_err().to_string();
        assert!(e.contains("peers[0].bfd.minRxMs"), "{e}");
        assert!(peers("bfd: {minRx: 5}").is_err());
        assert!(peers("bfd: yes please").is_err());
    }

    #[test]
    fn parses_every_field() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.as_number, 64512);
        assert_eq!(c.listen.port, 1179);
        assert_eq!(c.peers[0].name(), "Global_10_0_0_2");
        assert_eq!(c.peers[1].name(), "Mesh_fd00__2");
        assert_eq!(c.peers[0].families(), vec![Family::IPV4_UNICAST]);
        assert_eq!(c.peers[1].families.len(), 2);
        assert!(c.peers[1].passive);
        assert_eq!(c.originate.len(), 2);
        assert!(!c.fib);
        assert_eq!(c.effective_cluster_id(), Some("10.0.0.1".parse().unwrap()));
        let f = c.peers[0].fsm_config(c.as_number, c.router_id, false);
        assert_eq!((f.hold_time, f.max_prefixes), (90, Some(1000)));
        assert!(
            !f.capabilities
                .contains(&Capability::Multiprotocol(Family::IPV6_UNICAST))
        );
    }

    #[test]
    fn defaults() {
        let c = Config::parse("asNumber: 1\nrouterId: 1.1.1.1\n").unwrap();
        assert!(c.fib);
        assert_eq!(c.listen.port, 179);
        assert_eq!(c.control_socket(), PathBuf::from(DEFAULT_CONTROL_SOCKET));
        assert_eq!(c.metrics_listen().port(), 9092);
    }

    #[test]
    fn unknown_field_is_named() {
        let e = err(
            "asNumber: 1\nrouterId: 1.1.1.1\npeers:\n  - address: 1.2.3.4\n    asNumber: 2\n    holdtime: 3\n",
        );
        assert!(e.contains("peers[0]") && e.contains("holdtime"), "{e}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let base =
            "asNumber: 1\nrouterId: 1.1.1.1\npeers:\n  - address: 10.0.0.2\n    asNumber: 2\n";
        for (extra, field) in [
            ("    holdTime: 2\n", "peers[0].holdTime"),
            ("    keepaliveTime: 300\n", "peers[0].keepaliveTime"),
            ("    ttlSecurity: 0\n", "peers[0].ttlSecurity"),
            ("    sourceAddress: \"fd00::1\"\n", "peers[0].sourceAddress"),
            ("    families: []\n", "peers[0].families"),
            (
                "    routeReflectorClient: true\n",
                "peers[0].routeReflectorClient",
            ),
            ("    name: \"bad name\"\n", "peers[0].name"),
            (
                &format!("    password: {}\n", "x".repeat(81)),
                "peers[0].password",
            ),
            ("    port: nope\n", "peers[0].port"),
        ] {
            let e = err(&format!("{base}{extra}"));
            assert!(e.contains(field), "{extra:?}: {e}");
        }
        assert!(err("asNumber: 1\nrouterId: 0.0.0.0\n").contains("routerId"));
        assert!(
            err("asNumber: 1\nrouterId: 1.1.1.1\noriginate: [10.0.0.1/24]\n")
                .contains("originate[0]")
        );
        let dup = format!("{base}  - address: 10.0.0.2\n    asNumber: 3\n");
        assert!(err(&dup).contains("peers[1].address"));
    }
}
