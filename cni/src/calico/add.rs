//! ADD: IPAM, veth, host sysctls, pod addressing and routes, host route, WorkloadEndpoint,
//! result. Each step pushes its reversal; any failure unwinds them all.

use std::path::Path;

use ipnet::IpNet;

use crate::error::{CniError, IPAM_FAILURE, Result};
use crate::k8s::{self, PodInfo};
use crate::result::{CniResult, Interface, IpConfig, Route};
use crate::skel::Invocation;
use crate::undo::{Undo, UndoStack, failpoint};
use crate::{delegate, host_route, link, netns, pod, sysctl, wep};

use super::{Ctx, connect};

pub(super) async fn add(inv: &Invocation) -> Result<String> {
    let ctx = Ctx::new(inv)?;
    let mtu = inv
        .conf
        .pod_mtu(|path| std::fs::read_to_string(path).ok())?;
    let netns_path = inv
        .env
        .netns
        .clone()
        .expect("ADD requires CNI_NETNS (env checks)");
    // Fail before allocating anything when the namespace is not there, or the pod
    // cannot be read from the API server.
    let netns_file = netns::open(&netns_path)?;
    let pod = match inv.conf.kubeconfig()? {
        Some(kubeconfig) => k8s::read_pod(kubeconfig, &ctx.id.namespace, &ctx.id.pod).await?,
        None => PodInfo::default(),
    };
    let ipam_stdin = k8s::ipam_stdin(&inv.stdin, &pod)?;
    let ds = connect(inv).await?;
    let mut undo = UndoStack::default();
    let pod = PodRequest {
        info: &pod,
        ipam_stdin: &ipam_stdin,
    };
    let sandbox = Sandbox {
        path: &netns_path,
        file: &netns_file,
    };
    match steps(inv, &ctx, &ds, sandbox, mtu, pod, &mut undo).await {
        Ok(result) => Ok(result.to_json(inv.version)),
        Err(e) => {
            undo.unwind(&e).await;
            Err(e)
        }
    }
}

/// What the pod asks of ADD: its API facts and the IPAM plugin's input with its pools
/// and addresses.
#[derive(Clone, Copy)]
struct PodRequest<'a> {
    info: &'a PodInfo,
    ipam_stdin: &'a [u8],
}

/// The pod's network namespace: its path and the open file (kept open so it cannot go
/// away under us).
#[derive(Clone, Copy)]
struct Sandbox<'a> {
    path: &'a Path,
    file: &'a std::fs::File,
}

async fn steps(
    inv: &Invocation,
    ctx: &Ctx,
    ds: &config::datastore::Datastore,
    sandbox: Sandbox<'_>,
    mtu: u32,
    pod: PodRequest<'_>,
    undo: &mut UndoStack,
) -> Result<CniResult> {
    // 1. Addresses from the IPAM plugin. Its DEL is pushed before its output is read: an
    //    unreadable answer may still stand for an allocation.
    let out = delegate::exec(&ctx.ipam_plugin, "ADD", pod.ipam_stdin).await;
    if out.is_ok() {
        undo.push(Undo::IpamDel {
            plugin: ctx.ipam_plugin.clone(),
            stdin: pod.ipam_stdin.to_vec(),
        });
    }
    let ipam = CniResult::parse(&out?, "the IPAM plugin's result")?;
    // Calico gives every pod host prefixes, whatever subnet the IPAM plugin reports.
    let addresses: Vec<IpNet> = ipam
        .ips
        .iter()
        .map(|ip| crate::result::host_prefix(ip.address.addr()))
        .collect();
    if addresses.is_empty() {
        return Err(CniError::new(
            IPAM_FAILURE,
            "the IPAM plugin returned no addresses",
            format!("plugin {}", ctx.ipam_plugin.display()),
        ));
    }
    failpoint("after-ipam")?;

    // 2. The veth, host side configured here (this thread is in the host namespace).
    let (h, task) = netns::connect_here()?;
    let host = host_side(&h, ctx, sandbox.file, mtu, undo).await;
    task.abort();
    let host = host?;
    failpoint("after-veth")?;

    // 3. The pod side, in the pod's namespace.
    let (ifname, addrs) = (inv.env.ifname.clone(), addresses.clone());
    let pod_if = netns::run_in(sandbox.path, move |h| pod::configure(h, ifname, addrs)).await?;
    failpoint("after-pod")?;

    // 4. The host route, in felix's form: the pod is reachable now, whether felix runs or not.
    let (h, task) = netns::connect_here()?;
    let routed = host_route::write(&h, &ctx.host_ifname, host.index, &addresses).await;
    task.abort();
    routed?;
    failpoint("after-route")?;

    // 5. The endpoint felix programs the host from.
    let endpoint = wep::build(&ctx.id, &ctx.host_ifname, &pod_if.mac, &addresses, pod.info);
    ds.apply(&endpoint).await?;
    undo.push(Undo::Wep {
        ds: ds.clone(),
        id: ctx.id.clone(),
    });
    failpoint("after-wep")?;
    tracing::info!(wep = %ctx.id.wep_name(), iface = %ctx.host_ifname, ?addresses, "pod networked");

    Ok(CniResult {
        cni_version: inv.cni_version().to_string(),
        interfaces: vec![
            Interface {
                name: host.name,
                mac: Some(link::format_mac(&host.mac)),
                ..Interface::default()
            },
            Interface {
                name: inv.env.ifname.clone(),
                mac: Some(pod_if.mac),
                sandbox: Some(sandbox.path.display().to_string()),
                ..Interface::default()
            },
        ],
        ips: addresses
            .iter()
            .map(|a| IpConfig {
                address: *a,
                gateway: None,
                interface: Some(1),
            })
            .collect(),
        routes: pod::expected_routes(&addresses)
            .into_iter()
            .filter(|(_, gw)| gw.is_some())
            .map(|(dst, gw)| Route { dst, gw })
            .collect(),
        dns: ipam.dns,
    })
}

async fn host_side(
    h: &rtnetlink::Handle,
    ctx: &Ctx,
    netns_file: &std::fs::File,
    mtu: u32,
    undo: &mut UndoStack,
) -> Result<link::Link> {
    let name = &ctx.host_ifname;
    // A leftover of an earlier sandbox of the same pod (Calico removes it the same way).
    if link::delete_by_name(h, name).await? {
        tracing::warn!(iface = %name, "removed a stale host interface of this pod");
    }
    let host = link::create_veth(h, name, &ctx.id.endpoint, netns_file, mtu).await?;
    undo.push(Undo::HostLink { name: name.clone() });
    sysctl::apply_host(Path::new("/proc/sys"), name)?;
    link::set_up(h, host.index, name).await?;
    Ok(host)
}
