//! Calico's etcd key layout for IPAM (libcalico-go backend/model): blocks, affinities,
//! handles and the IPAM config, all under `/calico/ipam/v2/`.

use ipnet::IpNet;

pub const IPAM_ROOT: &str = "/calico/ipam/v2/";
pub const CONFIG_KEY: &str = "/calico/ipam/v2/config";
pub const HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";
pub const HOST_PREFIX: &str = "/calico/ipam/v2/host/";

/// 4 or 6, as used in `ipv4`/`ipv6` key segments.
pub fn family(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

/// The CIDR as a key segment: `/` becomes `-` (`10.65.79.0-26`).
pub fn cidr_segment(cidr: &IpNet) -> String {
    cidr.to_string().replacen('/', "-", 1)
}

/// Inverse of [`cidr_segment`]; `None` when the segment is not a CIDR.
pub fn parse_cidr_segment(seg: &str) -> Option<IpNet> {
    seg.replacen('-', "/", 1).parse().ok()
}

pub fn block_prefix(version: u8) -> String {
    format!("{IPAM_ROOT}assignment/ipv{version}/block/")
}

pub fn block_key(cidr: &IpNet) -> String {
    format!("{}{}", block_prefix(family(cidr)), cidr_segment(cidr))
}

/// The block CIDR a block key names.
pub fn parse_block_key(key: &str) -> Option<IpNet> {
    let rest = key
        .strip_prefix(IPAM_ROOT)?
        .strip_prefix("assignment/ipv")?;
    let (_, seg) = rest.split_once("/block/")?;
    parse_cidr_segment(seg)
}

/// All affinities of one host for one family: `/calico/ipam/v2/host/<host>/ipv4/block/`.
pub fn host_affinity_prefix(host: &str, version: u8) -> String {
    format!("{HOST_PREFIX}{host}/ipv{version}/block/")
}

pub fn affinity_key(host: &str, cidr: &IpNet) -> String {
    format!(
        "{}{}",
        host_affinity_prefix(host, family(cidr)),
        cidr_segment(cidr)
    )
}

/// (host, block CIDR) of an affinity key.
pub fn parse_affinity_key(key: &str) -> Option<(String, IpNet)> {
    let rest = key.strip_prefix(HOST_PREFIX)?;
    let (host, rest) = rest.split_once("/ipv")?;
    let (_, seg) = rest.split_once("/block/")?;
    Some((host.to_string(), parse_cidr_segment(seg)?))
}

pub fn handle_key(handle_id: &str) -> String {
    format!("{HANDLE_PREFIX}{handle_id}")
}

pub fn parse_handle_key(key: &str) -> Option<&str> {
    key.strip_prefix(HANDLE_PREFIX).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_calico_layout() {
        let c: IpNet = "10.65.79.0/26".parse().unwrap();
        assert_eq!(
            block_key(&c),
            "/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26"
        );
        assert_eq!(
            affinity_key("node1", &c),
            "/calico/ipam/v2/host/node1/ipv4/block/10.65.79.0-26"
        );
        assert_eq!(
            handle_key("k8s-pod-network.abc"),
            "/calico/ipam/v2/handle/k8s-pod-network.abc"
        );
        let v6: IpNet = "fd00::40/122".parse().unwrap();
        assert_eq!(
            block_key(&v6),
            "/calico/ipam/v2/assignment/ipv6/block/fd00::40-122"
        );
    }

    #[test]
    fn keys_parse_back() {
        let c: IpNet = "10.65.79.0/26".parse().unwrap();
        assert_eq!(parse_block_key(&block_key(&c)), Some(c));
        assert_eq!(
            parse_affinity_key(&affinity_key("n-1.x", &c)),
            Some(("n-1.x".into(), c))
        );
        assert_eq!(parse_handle_key(&handle_key("h")), Some("h"));
        assert_eq!(
            parse_block_key("/calico/ipam/v2/assignment/ipv4/block/junk"),
            None
        );
        assert_eq!(parse_handle_key(HANDLE_PREFIX), None);
    }
}
