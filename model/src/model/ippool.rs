//! `IPPool` and `IPAMConfiguration`.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::object::{impl_resource, is_false};

/// A range of pod addresses, carved into blocks that nodes claim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IPPool {
    pub metadata: ObjectMeta,
    pub spec: IPPoolSpec,
}
impl_resource!(IPPool, IPPoolSpec, "IPPool", "ippools", false);

/// Default block prefix length for IPv4 pools.
pub const DEFAULT_BLOCK_SIZE_V4: u8 = 26;
/// Default block prefix length for IPv6 pools.
pub const DEFAULT_BLOCK_SIZE_V6: u8 = 122;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolSpec {
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<EncapMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<EncapMode>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nat_outgoing: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    #[serde(default, rename = "disableBGPExport", skip_serializing_if = "is_false")]
    pub disable_bgp_export: bool,
    /// Block prefix length; unset means 26 (IPv4) / 122 (IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Nodes that may claim blocks from this pool; empty means `all()`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_uses: Vec<AllowedUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<AssignmentMode>,
}

/// IP-in-IP / VXLAN encapsulation mode of a pool.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EncapMode {
    Always,
    CrossSubnet,
    #[default]
    Never,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllowedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AssignmentMode {
    #[default]
    Automatic,
    Manual,
}

impl IPPoolSpec {
    /// The pool CIDR as written (host bits possibly set).
    pub fn parsed_cidr(&self) -> Result<IpNet, ipnet::AddrParseError> {
        self.cidr.parse()
    }

    /// The pool's network (host bits cleared), if `cidr` parses.
    pub fn network(&self) -> Option<IpNet> {
        self.parsed_cidr().ok().map(|n| n.trunc())
    }

    fn is_v6(&self) -> bool {
        match self.parsed_cidr() {
            Ok(n) => matches!(n, IpNet::V6(_)),
            Err(_) => self.cidr.contains(':'),
        }
    }

    /// The block prefix length in use: the configured one, else the family default.
    pub fn effective_block_size(&self) -> u8 {
        let default = if self.is_v6() {
            DEFAULT_BLOCK_SIZE_V6
        } else {
            DEFAULT_BLOCK_SIZE_V4
        };
        self.block_size
            .and_then(|b| u8::try_from(b).ok())
            .filter(|b| *b != 0)
            .unwrap_or(default)
    }

    pub fn effective_ipip_mode(&self) -> EncapMode {
        self.ipip_mode.unwrap_or_default()
    }

    pub fn effective_vxlan_mode(&self) -> EncapMode {
        self.vxlan_mode.unwrap_or_default()
    }

    /// `nodeSelector`, with Calico's default `all()` when empty.
    pub fn effective_node_selector(&self) -> &str {
        if self.node_selector.is_empty() {
            "all()"
        } else {
            &self.node_selector
        }
    }

    /// Whether the pool may hand out addresses for `usage` (default: Workload and Tunnel).
    pub fn allows(&self, usage: AllowedUse) -> bool {
        if self.allowed_uses.is_empty() {
            matches!(usage, AllowedUse::Workload | AllowedUse::Tunnel)
        } else {
            self.allowed_uses.contains(&usage)
        }
    }

    /// Fills in what Calico's client sets before writing a pool: the normalised CIDR,
    /// block size, node selector, encapsulation modes, allowed uses, assignment mode.
    pub fn set_defaults(&mut self) {
        if let Some(net) = self.network() {
            self.cidr = net.to_string();
        }
        self.block_size = Some(u32::from(self.effective_block_size()));
        if self.node_selector.is_empty() {
            self.node_selector = "all()".to_string();
        }
        self.ipip_mode.get_or_insert(EncapMode::Never);
        self.vxlan_mode.get_or_insert(EncapMode::Never);
        if self.allowed_uses.is_empty() {
            self.allowed_uses = vec![AllowedUse::Workload, AllowedUse::Tunnel];
        }
        self.assignment_mode
            .get_or_insert(AssignmentMode::Automatic);
    }
}

impl IPPool {
    /// See [`IPPoolSpec::effective_block_size`].
    pub fn effective_block_size(&self) -> u8 {
        self.spec.effective_block_size()
    }
}

/// Cluster IPAM settings; the only valid name is `default`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IPAMConfiguration {
    pub metadata: ObjectMeta,
    pub spec: IPAMConfigurationSpec,
}
impl_resource!(
    IPAMConfiguration,
    IPAMConfigurationSpec,
    "IPAMConfiguration",
    "ipamconfigurations",
    false
);

/// Calico's cap on blocks per host when `maxBlocksPerHost` is 0.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMConfigurationSpec {
    /// Written always, as Calico does (no `omitempty`).
    #[serde(default)]
    pub strict_affinity: bool,
    /// 0 means the default of 20.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_blocks_per_host: u32,
    #[serde(default = "yes")]
    pub auto_allocate_blocks: bool,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn yes() -> bool {
    true
}

impl Default for IPAMConfigurationSpec {
    fn default() -> Self {
        Self {
            strict_affinity: false,
            max_blocks_per_host: 0,
            auto_allocate_blocks: true,
        }
    }
}

impl IPAMConfigurationSpec {
    pub fn effective_max_blocks_per_host(&self) -> u32 {
        if self.max_blocks_per_host == 0 {
            DEFAULT_MAX_BLOCKS_PER_HOST
        } else {
            self.max_blocks_per_host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_defaults_by_family() {
        let mut s = IPPoolSpec {
            cidr: "10.0.0.0/16".into(),
            ..Default::default()
        };
        assert_eq!(s.effective_block_size(), 26);
        s.cidr = "fd00::/48".into();
        assert_eq!(s.effective_block_size(), 122);
        s.block_size = Some(120);
        assert_eq!(s.effective_block_size(), 120);
    }

    #[test]
    fn set_defaults_normalises() {
        let mut s = IPPoolSpec {
            cidr: "10.1.2.3/16".into(),
            ..Default::default()
        };
        s.set_defaults();
        assert_eq!(s.cidr, "10.1.0.0/16");
        assert_eq!(s.block_size, Some(26));
        assert_eq!(s.node_selector, "all()");
        assert_eq!(s.ipip_mode, Some(EncapMode::Never));
        assert!(s.allows(AllowedUse::Tunnel) && !s.allows(AllowedUse::LoadBalancer));
    }
}
