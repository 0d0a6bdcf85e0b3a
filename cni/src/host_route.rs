//! The pod's host route (`<ip>/32 dev caliX scope link`), written on ADD as Calico's plugin
//! does, so that a new pod is reachable at once, also while felix is down or restarting.
//!
//! The route is written in exactly the form felix writes it (felix's protocol and metric
//! slot, from the one kernel-route layer), so felix finds it already in place, adopts it as
//! its own and keeps owning it: it replaces it if the endpoint moves and deletes it with the
//! endpoint. Deleting the veth (DEL, or ADD's unwind) takes the route with it.

use ipnet::IpNet;
use kernel_routes::{FELIX, RouteTarget, route_message};
use rtnetlink::Handle;

use crate::error::Result;
use crate::link::netlink_error;

/// Writes (replaces) the host route of each of `addresses` through interface `index`.
/// Replace, not add: an address is the pod's alone (IPAM), so a route for it that is already
/// there can only be a leftover of an earlier sandbox or felix's own copy.
pub async fn write(h: &Handle, ifname: &str, index: u32, addresses: &[IpNet]) -> Result<()> {
    for addr in addresses {
        let route = FELIX.route(*addr, RouteTarget::Dev(index));
        h.route()
            .add(route_message(&route))
            .replace()
            .execute()
            .await
            .map_err(|e| netlink_error(format!("adding host route {addr} dev {ifname}"), e))?;
    }
    Ok(())
}
