//! calico-ipam ADD: named addresses (`CNI_ARGS IP=`, the `ips` runtime capability) or
//! auto-assignment from the node's blocks, optionally restricted to `ipv4_pools` /
//! `ipv6_pools` (pool names or CIDRs).

use std::collections::BTreeMap;
use std::net::IpAddr;

use config::datastore::Datastore;
use config::model::IPPool;
use ipam::{AutoAssignArgs, Ipam};
use ipnet::IpNet;

use crate::error::{CniError, INVALID_CONFIG, Result};
use crate::result::{CniResult, IpConfig, host_prefix};
use crate::skel::Invocation;

use super::{attributes, client, handle_id};

pub(super) async fn add(inv: &Invocation) -> Result<String> {
    let conf = inv.conf.ipam()?;
    let node = inv.conf.node_name(Invocation::env_var)?;
    let handle = handle_id(inv.conf.name()?, &inv.env.container_id);
    let attrs = attributes(inv, &node);
    let requested = requested_ips(inv)?;
    let ipam = client(inv).await?;

    let ips: Vec<IpAddr> = if requested.is_empty() {
        let (v4, v6) = (conf.assign_ipv4()?, conf.assign_ipv6()?);
        if !v4 && !v6 {
            return Err(CniError::new(
                INVALID_CONFIG,
                "nothing to assign",
                "ipam.assign_ipv4 and ipam.assign_ipv6 are both false",
            ));
        }
        let ds = ipam.datastore();
        let mut pools = resolve_pools(ds, &conf.ipv4_pools, "ipv4_pools").await?;
        pools.extend(resolve_pools(ds, &conf.ipv6_pools, "ipv6_pools").await?);
        let args = AutoAssignArgs {
            num_v4: usize::from(v4),
            num_v6: usize::from(v6),
            handle_id: handle.clone(),
            attrs,
            hostname: node.clone(),
            node_labels_from_datastore: true,
            node_labels: BTreeMap::new(),
            pools: (!pools.is_empty()).then_some(pools),
            max_blocks_per_host: None,
        };
        ipam.auto_assign(&args)
            .await?
            .into_iter()
            .map(|a| a.ip)
            .collect()
    } else {
        assign_named(&ipam, &requested, &handle, &attrs, &node).await?
    };
    tracing::info!(%handle, ?ips, "assigned");
    let result = CniResult {
        cni_version: inv.cni_version().to_string(),
        ips: ips
            .into_iter()
            .map(|ip| IpConfig {
                // Calico's calico-ipam hands out host prefixes, not the block's prefix.
                address: host_prefix(ip),
                gateway: None,
                interface: None,
            })
            .collect(),
        ..CniResult::default()
    };
    Ok(result.to_json(inv.version))
}

/// `IP=` from CNI_ARGS, else the `ips` runtime capability (CIDR or bare address).
fn requested_ips(inv: &Invocation) -> Result<Vec<IpAddr>> {
    if !inv.env.args.ips.is_empty() {
        return Ok(inv.env.args.ips.clone());
    }
    inv.conf
        .runtime_config
        .ips
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .map(|n| n.addr())
                .or_else(|_| s.parse::<IpAddr>())
                .map_err(|_| {
                    CniError::new(
                        INVALID_CONFIG,
                        "invalid runtimeConfig.ips",
                        format!("{s:?} is neither an address nor a CIDR"),
                    )
                })
        })
        .collect()
}

/// Assigns each named address; all or nothing.
async fn assign_named(
    ipam: &Ipam,
    ips: &[IpAddr],
    handle: &str,
    attrs: &BTreeMap<String, String>,
    node: &str,
) -> Result<Vec<IpAddr>> {
    let mut done = Vec::with_capacity(ips.len());
    for ip in ips {
        match ipam.assign_ip(*ip, handle, attrs, node).await {
            Ok(a) => done.push(a.ip),
            Err(e) => {
                if !done.is_empty()
                    && let Err(undo) = ipam.release_by_handle(handle).await
                {
                    tracing::error!(%handle, error = %undo, "could not return the addresses assigned so far");
                }
                return Err(e.into());
            }
        }
    }
    Ok(done)
}

/// Pool names or CIDRs -> CIDRs. A name must be an existing IPPool.
async fn resolve_pools(ds: &Datastore, entries: &[String], field: &str) -> Result<Vec<IpNet>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Ok(cidr) = entry.parse::<IpNet>() {
            out.push(cidr.trunc());
            continue;
        }
        let pool = ds.get::<IPPool>(None, entry).await?.ok_or_else(|| {
            CniError::new(
                INVALID_CONFIG,
                format!("ipam.{field} names an unknown pool"),
                format!("{entry:?} is neither a CIDR nor an existing IPPool"),
            )
        })?;
        let cidr = pool.spec.parsed_cidr().map_err(|e| {
            CniError::new(
                INVALID_CONFIG,
                format!("IPPool {entry} has an invalid cidr"),
                format!("{:?}: {e}", pool.spec.cidr),
            )
        })?;
        out.push(cidr.trunc());
    }
    Ok(out)
}
