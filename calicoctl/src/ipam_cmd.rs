//! `calicoctl ipam show|check|release|configure`, worded as Calico's.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use config::datastore::Datastore;
use config::model::{Node, WorkloadEndpoint};
use ipam::{CheckReport, InUse, Ipam, PoolSource, Problem, ReleaseOptions};

use crate::table::render_boxed;

/// The handle the CNI plugin writes for a pod: `<network>.<containerID>`.
const CNI_NETWORK: &str = "k8s-pod-network";

fn ipam(ds: &Datastore) -> Ipam {
    Ipam::new(ds.clone(), PoolSource::Datastore)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `N (P%)` with Go's `%.0f` rounding.
fn with_percent(n: u128, total: u128) -> String {
    let pct = if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    };
    format!("{n} ({pct:.0}%)")
}

pub async fn show(ds: &Datastore, show_blocks: bool) -> Result<String, String> {
    let usage = ipam(ds).ip_usage().await.map_err(err)?;
    let mut rows = Vec::new();
    for pool in &usage.pools {
        rows.push(vec![
            "IP Pool".to_string(),
            pool.cidr.to_string(),
            pool.total.to_string(),
            with_percent(pool.in_use, pool.total),
            with_percent(pool.total - pool.in_use, pool.total),
        ]);
        if show_blocks {
            for block in usage.blocks.iter().filter(|b| b.pool == Some(pool.cidr)) {
                let (total, used) = (u128::from(block.total), u128::from(block.in_use));
                rows.push(vec![
                    "Block".to_string(),
                    block.cidr.to_string(),
                    total.to_string(),
                    with_percent(used, total),
                    with_percent(total - used, total),
                ]);
            }
        }
    }
    Ok(render_boxed(
        &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"],
        &rows,
    ))
}

pub async fn show_ip(ds: &Datastore, ip: IpAddr) -> Result<String, String> {
    let Some(attr) = ipam(ds).get_assignment_attributes(ip).await.map_err(err)? else {
        return Ok(format!("IP {ip} is not assigned\n"));
    };
    let mut out = format!("IP {ip} is in use\n");
    if let Some(handle) = attr.handle() {
        out.push_str(&format!("Handle ID: {handle}\n"));
    }
    out.push_str("Active Owner Attributes:\n");
    for (k, v) in &attr.secondary {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    Ok(out)
}

/// What workloads and nodes use, for the leak scan.
async fn in_use(ds: &Datastore) -> Result<(InUse, usize, usize), String> {
    let (weps, _) = ds.list::<WorkloadEndpoint>(None).await.map_err(err)?;
    let (nodes, _) = ds.list::<Node>(None).await.map_err(err)?;
    let mut used = InUse::default();
    let mut workload_ips = 0;
    for wep in &weps {
        for net in &wep.spec.ip_networks {
            if let Ok(ip) = net.split('/').next().unwrap_or(net).parse::<IpAddr>() {
                used.ips.insert(ip);
                workload_ips += 1;
            }
        }
        if !wep.spec.container_id.is_empty() {
            used.handles
                .insert(format!("{CNI_NETWORK}.{}", wep.spec.container_id));
        }
    }
    let mut tunnel_ips = 0;
    for node in &nodes {
        let bgp_tunnel = node
            .spec
            .bgp
            .as_ref()
            .map(|b| b.ipv4_ipip_tunnel_addr.as_str());
        for addr in [
            bgp_tunnel.unwrap_or(""),
            &node.spec.ipv4_vxlan_tunnel_addr,
            &node.spec.ipv6_vxlan_tunnel_addr,
        ] {
            if let Ok(ip) = addr.parse::<IpAddr>() {
                used.ips.insert(ip);
                tunnel_ips += 1;
            }
        }
    }
    Ok((used, workload_ips, tunnel_ips))
}

pub async fn check(ds: &Datastore, report_file: Option<&Path>) -> Result<String, String> {
    let (used, workload_ips, tunnel_ips) = in_use(ds).await?;
    let report: CheckReport = ipam(ds).check(Some(&used)).await.map_err(err)?;
    let leaked = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::LeakedIp { .. }))
        .count();
    let mut out = String::from("Checking IPAM for inconsistencies...\n\n");
    out.push_str(&format!(
        "Loading all IPAM blocks...\nFound {} IPAM blocks.\nIPAM blocks record {} allocations.\n\n",
        report.blocks, report.allocated_ips
    ));
    out.push_str(&format!(
        "Loading all IPAM affinities and handles...\nFound {} affinities and {} handles.\n\n",
        report.affinities, report.handles
    ));
    out.push_str(&format!(
        "Loading all nodes.\nFound {tunnel_ips} node tunnel IPs.\n\n\
         Loading all workload endpoints.\nFound {workload_ips} workload IPs.\n\
         Workloads and nodes are using {} IPs.\n\n",
        used.ips.len()
    ));
    out.push_str(&format!(
        "Scanning for IPs that are allocated but not actually in use...\n\
         Found {leaked} IPs that are allocated in IPAM but not actually in use.\n\n"
    ));
    for problem in &report.problems {
        out.push_str(&format!("Problem: {}\n", describe_problem(problem)));
    }
    if let Some(path) = report_file {
        let json = serde_json::to_string_pretty(&report).map_err(err)?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write report {}: {e}", path.display()))?;
        out.push_str(&format!("Report written to {}\n", path.display()));
    }
    out.push_str(&format!(
        "Check complete; found {} problems.\n",
        report.problems.len()
    ));
    Ok(out)
}

fn describe_problem(p: &Problem) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| format!("{p:?}"))
}

/// Releases one address, or every leaked address of a report written by `ipam check -o`.
pub async fn release(
    ds: &Datastore,
    ip: Option<IpAddr>,
    report_file: Option<&Path>,
    force: bool,
) -> Result<String, String> {
    let targets: Vec<ReleaseOptions> = match (ip, report_file) {
        (Some(ip), None) => vec![ReleaseOptions::ip(ip)],
        (None, Some(path)) => {
            if !force && !crate::cluster::is_locked(ds).await? {
                return Err(
                    "the datastore is not locked: run `calicoctl datastore migrate lock` first \
                     (so no workload starts while leaked IPs are released), or pass --force"
                        .into(),
                );
            }
            leaked_from_report(path)?
        }
        _ => return Err("give exactly one of --ip or --from-report".into()),
    };
    // release_ips answers with the addresses that were not allocated.
    let unallocated = ipam(ds).release_ips(&targets).await.map_err(err)?;
    let unallocated: BTreeSet<IpAddr> = unallocated.into_iter().collect();
    let mut out = String::new();
    for t in &targets {
        if unallocated.contains(&t.ip) {
            out.push_str(&format!("IP {} is not assigned\n", t.ip));
        } else {
            out.push_str(&format!("Successfully released IP address {}\n", t.ip));
        }
    }
    Ok(out)
}

fn leaked_from_report(path: &Path) -> Result<Vec<ReleaseOptions>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read report {}: {e}", path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("report {} is not JSON: {e}", path.display()))?;
    let problems = report["problems"]
        .as_array()
        .ok_or_else(|| format!("report {} has no problems list", path.display()))?;
    problems
        .iter()
        .filter(|p| p["kind"] == "leakedIp")
        .map(|p| {
            let ip = p["ip"]
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .ok_or_else(|| format!("report entry without a valid ip: {p}"))?;
            Ok(ReleaseOptions {
                handle: p["handle"].as_str().map(str::to_string),
                ..ReleaseOptions::ip(ip)
            })
        })
        .collect()
}

pub async fn configure(
    ds: &Datastore,
    strict_affinity: Option<bool>,
    max_blocks_per_host: Option<u32>,
) -> Result<String, String> {
    if strict_affinity.is_none() && max_blocks_per_host.is_none() {
        return Err(
            "nothing to configure: give --strictaffinity and/or --max-blocks-per-host".into(),
        );
    }
    let ipam = ipam(ds);
    let mut cfg = ipam.get_config().await.map_err(err)?;
    let mut out = String::new();
    if let Some(strict) = strict_affinity {
        cfg.strict_affinity = strict;
        out.push_str(&format!("Successfully set StrictAffinity to: {strict}\n"));
    }
    if let Some(max) = max_blocks_per_host {
        cfg.max_blocks_per_host = max;
        out.push_str(&format!("Successfully set MaxBlocksPerHost to: {max}\n"));
    }
    ipam.set_config(&cfg).await.map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_like_go() {
        assert_eq!(with_percent(5, 65536), "5 (0%)");
        assert_eq!(with_percent(65531, 65536), "65531 (100%)");
        assert_eq!(with_percent(5, 64), "5 (8%)");
        assert_eq!(with_percent(59, 64), "59 (92%)");
        assert_eq!(with_percent(0, 0), "0 (0%)");
    }
}
