//! CHECK (spec 0.4.0+): the container's networking still is what ADD returned in
//! `prevResult`: IPAM holds the addresses, the host interface is up with Calico's MAC, the pod
//! interface carries the addresses and routes, and the WorkloadEndpoint matches.

use std::collections::BTreeSet;

use ipnet::IpNet;

use config::model::WorkloadEndpoint;

use crate::error::{CHECK_MISMATCH, CniError, INVALID_CONFIG, Result};
use crate::result::{CniResult, host_prefix};
use crate::skel::Invocation;
use crate::{delegate, link, netns, pod};

use super::{Ctx, connect};

fn mismatch(msg: impl Into<String>, details: impl Into<String>) -> CniError {
    CniError::new(CHECK_MISMATCH, msg, details)
}

pub(super) async fn check(inv: &Invocation) -> Result<()> {
    let ctx = Ctx::new(inv)?;
    let prev = inv.conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            INVALID_CONFIG,
            "CHECK needs prevResult",
            "the runtime must pass the result of ADD as prevResult",
        )
    })?;
    let prev = CniResult::from_value(prev, "prevResult")?;
    let want: BTreeSet<IpNet> = prev
        .ips
        .iter()
        .map(|ip| host_prefix(ip.address.addr()))
        .collect();

    delegate::exec(&ctx.ipam_plugin, "CHECK", &inv.stdin).await?;

    let (h, task) = netns::connect_here()?;
    let host = link::by_name(&h, &ctx.host_ifname).await;
    task.abort();
    let host = host?.ok_or_else(|| {
        mismatch(
            format!("host interface {} is missing", ctx.host_ifname),
            "ADD created it",
        )
    })?;
    if !host.up || host.mac != link::HOST_MAC {
        return Err(mismatch(
            format!("host interface {} is not as ADD left it", ctx.host_ifname),
            format!(
                "up={} mac={} (want up, {})",
                host.up,
                link::format_mac(&host.mac),
                link::format_mac(&link::HOST_MAC)
            ),
        ));
    }

    let netns_path = inv
        .env
        .netns
        .clone()
        .expect("CHECK requires CNI_NETNS (env checks)");
    let ifname = inv.env.ifname.clone();
    let state = netns::run_in(&netns_path, move |h| pod::inspect(h, ifname)).await?;
    check_pod(inv, &prev, &want, &state)?;

    let ds = connect(inv).await?;
    let name = ctx.id.wep_name();
    let wep = ds
        .get::<WorkloadEndpoint>(Some(&ctx.id.namespace), &name)
        .await?
        .ok_or_else(|| {
            mismatch(
                format!("WorkloadEndpoint {name} is missing"),
                "ADD wrote it",
            )
        })?;
    let wep_ips: BTreeSet<String> = wep.spec.ip_networks.iter().cloned().collect();
    let want_ips: BTreeSet<String> = want.iter().map(ToString::to_string).collect();
    if wep.spec.container_id != ctx.id.container_id
        || wep.spec.interface_name != ctx.host_ifname
        || wep_ips != want_ips
    {
        return Err(mismatch(
            format!("WorkloadEndpoint {name} does not match the result"),
            format!(
                "containerID {:?} interfaceName {:?} ipNetworks {:?}; want {:?} {:?} {:?}",
                wep.spec.container_id,
                wep.spec.interface_name,
                wep_ips,
                ctx.id.container_id,
                ctx.host_ifname,
                want_ips
            ),
        ));
    }
    Ok(())
}

fn check_pod(
    inv: &Invocation,
    prev: &CniResult,
    want: &BTreeSet<IpNet>,
    state: &pod::PodState,
) -> Result<()> {
    let ifname = &inv.env.ifname;
    let link = state.link.as_ref().ok_or_else(|| {
        mismatch(
            format!("interface {ifname} is missing in the pod namespace"),
            "ADD created it",
        )
    })?;
    if !link.up {
        return Err(mismatch(format!("pod interface {ifname} is down"), ""));
    }
    let sandbox_mac = prev
        .interfaces
        .iter()
        .find(|i| i.name == *ifname && i.sandbox.is_some())
        .and_then(|i| i.mac.clone());
    if let Some(mac) = sandbox_mac
        && !mac.eq_ignore_ascii_case(&link::format_mac(&link.mac))
    {
        return Err(mismatch(
            format!("pod interface {ifname} has another MAC"),
            format!("{} (result says {mac})", link::format_mac(&link.mac)),
        ));
    }
    let have: BTreeSet<IpNet> = state.addresses.iter().copied().collect();
    if let Some(missing) = want.iter().find(|a| !have.contains(a)) {
        return Err(mismatch(
            format!("address {missing} is missing on {ifname}"),
            format!("addresses present: {have:?}"),
        ));
    }
    let want_v: Vec<IpNet> = want.iter().copied().collect();
    for route in pod::expected_routes(&want_v) {
        if !state.routes.contains(&route) {
            let (dst, gw) = route;
            return Err(mismatch(
                format!(
                    "route {dst}{} dev {ifname} is missing in the pod",
                    gw.map(|g| format!(" via {g}")).unwrap_or_default()
                ),
                format!("routes present: {:?}", state.routes),
            ));
        }
    }
    Ok(())
}
