//! Cluster-wide IPAM settings at `/calico/ipam/v2/config` (Calico's IPAMConfig).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::handle::{decode, encode};
use crate::keys::CONFIG_KEY;
use crate::{Ipam, Result};

/// Calico's default when `maxBlocksPerHost` is 0.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IpamConfig {
    /// Never borrow addresses from blocks affine to other hosts.
    #[serde(default)]
    pub strict_affinity: bool,
    /// Claim new blocks when the affine ones are full.
    #[serde(default = "default_true")]
    pub auto_allocate_blocks: bool,
    /// Cap on blocks affine to one host; 0 means 20.
    #[serde(rename = "maxBlocksPerHost", default)]
    pub max_blocks_per_host: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_true() -> bool {
    true
}

impl Default for IpamConfig {
    fn default() -> Self {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
            extra: Map::new(),
        }
    }
}

impl IpamConfig {
    pub fn effective_max_blocks(&self) -> u32 {
        if self.max_blocks_per_host == 0 {
            DEFAULT_MAX_BLOCKS_PER_HOST
        } else {
            self.max_blocks_per_host
        }
    }
}

/// The config stored at [`CONFIG_KEY`], or the defaults when none was written.
pub(crate) fn from_kv(kv: Option<config::datastore::Kv>) -> Result<IpamConfig> {
    match kv {
        Some(kv) => decode(&kv.key, &kv.value),
        None => Ok(IpamConfig::default()),
    }
}

impl Ipam {
    /// The stored config, or the defaults when none was written.
    pub async fn get_config(&self) -> Result<IpamConfig> {
        from_kv(self.ds.get_raw(CONFIG_KEY).await?)
    }

    /// Writes the config (create, or CAS-update over whatever is stored).
    pub async fn set_config(&self, cfg: &IpamConfig) -> Result<()> {
        crate::retry::with_retries("set IPAM config", || async {
            match self.ds.get_raw(CONFIG_KEY).await? {
                Some(kv) => {
                    self.ds
                        .update_raw(CONFIG_KEY, encode(cfg), kv.mod_revision)
                        .await?
                }
                None => self.ds.create_raw(CONFIG_KEY, encode(cfg)).await?,
            };
            Ok(())
        })
        .await
    }
}
