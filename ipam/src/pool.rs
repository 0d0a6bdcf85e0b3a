//! The part of an IPPool that IPAM needs, and address arithmetic over pools and blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An IP pool as IPAM sees it (projectcalico.org/v3 IPPool `spec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    pub cidr: IpNet,
    /// Prefix length of the pool's blocks (Calico default 26 for IPv4, 122 for IPv6).
    pub block_size: u8,
    pub disabled: bool,
    /// Calico selector over node labels; empty or `all()` selects every node.
    pub node_selector: String,
}

impl PoolSpec {
    pub fn new(cidr: IpNet, block_size: u8) -> PoolSpec {
        PoolSpec {
            cidr: cidr.trunc(),
            block_size,
            disabled: false,
            node_selector: String::new(),
        }
    }

    /// The block of this pool that holds `ip` (the IP masked to `block_size`).
    pub fn block_for(&self, ip: IpAddr) -> Option<IpNet> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        IpNet::new(ip, self.block_size).ok().map(|n| n.trunc())
    }

    /// Number of blocks in the pool (pool prefix <= block size is validated by the caller).
    pub fn num_blocks(&self) -> u128 {
        1u128 << (u32::from(self.block_size) - u32::from(self.cidr.prefix_len())).min(127)
    }

    /// The `index`-th block of the pool, counting from its base address.
    pub fn nth_block(&self, index: u128) -> IpNet {
        let base = addr_to_u128(self.cidr.network());
        let size = 1u128 << (u32::from(self.cidr.max_prefix_len()) - u32::from(self.block_size));
        let ip = u128_to_addr(self.cidr.network(), base + index * size);
        IpNet::new(ip, self.block_size).expect("block size validated against family")
    }

    /// Pools come from the datastore unvalidated: this is the IPAM's own guard.
    pub fn validate(&self) -> Result<(), crate::IpamError> {
        let max = self.cidr.max_prefix_len();
        if self.block_size > max || self.block_size < self.cidr.prefix_len() {
            return Err(crate::IpamError::Invalid {
                field: "blockSize",
                value: self.block_size.to_string(),
                rule: "must lie between the pool's prefix length and the address width",
            });
        }
        // REFERENCE section 2: v4 blocks /20../32, v6 /116../128. Larger blocks would also
        // need arrays of millions (or 2^64) of ordinals.
        let min = if max == 32 { 20 } else { 116 };
        if self.block_size < min {
            return Err(crate::IpamError::Invalid {
                field: "blockSize",
                value: self.block_size.to_string(),
                rule: "must be 20..32 for IPv4 pools and 116..128 for IPv6 pools",
            });
        }
        Ok(())
    }
}

impl TryFrom<&config::model::IPPool> for PoolSpec {
    type Error = crate::IpamError;

    /// The IPAM view of a stored IPPool; the block size defaults as Calico's (26 / 122).
    fn try_from(p: &config::model::IPPool) -> Result<PoolSpec, crate::IpamError> {
        let cidr: IpNet = p.spec.cidr.parse().map_err(|_| crate::IpamError::Invalid {
            field: "spec.cidr",
            value: p.spec.cidr.clone(),
            rule: "must be an IPv4 or IPv6 CIDR",
        })?;
        let default = match cidr {
            IpNet::V4(_) => config::model::DEFAULT_BLOCK_SIZE_V4,
            IpNet::V6(_) => config::model::DEFAULT_BLOCK_SIZE_V6,
        };
        let block_size = match p.spec.block_size {
            None => default,
            Some(b) => u8::try_from(b).map_err(|_| crate::IpamError::Invalid {
                field: "spec.blockSize",
                value: b.to_string(),
                rule: "must be at most 128",
            })?,
        };
        let spec = PoolSpec {
            cidr: cidr.trunc(),
            block_size,
            disabled: p.spec.disabled,
            node_selector: p.spec.node_selector.clone(),
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub fn addr_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// An integer as an address of the same family as `like`.
pub fn u128_to_addr(like: IpAddr, v: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// Number of addresses in a CIDR (saturating at u128::MAX for ::/0).
pub fn net_size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    }
}

/// Whether two networks are of the same family.
pub fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!(
        (a, b),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    )
}

/// The single host network of an address (`/32` or `/128`).
pub fn host_net(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_math() {
        let p = PoolSpec::new("10.244.0.0/16".parse().unwrap(), 26);
        assert_eq!(p.num_blocks(), 1024);
        assert_eq!(p.nth_block(0).to_string(), "10.244.0.0/26");
        assert_eq!(p.nth_block(5).to_string(), "10.244.1.64/26");
        assert_eq!(p.nth_block(1023).to_string(), "10.244.255.192/26");
        assert_eq!(
            p.block_for("10.244.1.77".parse().unwrap())
                .unwrap()
                .to_string(),
            "10.244.1.64/26"
        );
        assert_eq!(p.block_for("10.245.0.1".parse().unwrap()), None);
        let v6 = PoolSpec::new("fd00::/120".parse().unwrap(), 122);
        assert_eq!(v6.num_blocks(), 4);
        assert_eq!(v6.nth_block(3).to_string(), "fd00::c0/122");
        assert!(
            PoolSpec::new("10.0.0.0/24".parse().unwrap(), 23)
                .validate()
                .is_err()
        );
        assert!(
            PoolSpec::new("10.0.0.0/24".parse().unwrap(), 33)
                .validate()
                .is_err()
        );
    }
}
