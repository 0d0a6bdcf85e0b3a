//! DEL: pod interface, addresses, endpoint; each step treats "already gone" as done, so DEL
//! can be repeated and succeeds after a partial ADD.

use crate::error::Result;
use crate::netns::{self, NetnsError};
use crate::skel::Invocation;
use crate::{delegate, link, wep};

use super::{Ctx, connect};

pub(super) async fn del(inv: &Invocation) -> Result<()> {
    let ctx = Ctx::new(inv)?;
    // The veth goes through the pod side: a host-side name may belong to a newer sandbox of
    // the same pod by now, the pod namespace is this container's own. A namespace that is
    // gone took the veth with it.
    if let Some(path) = &inv.env.netns {
        match netns::open(path) {
            Ok(_) => {
                let ifname = inv.env.ifname.clone();
                let deleted = netns::run_in(path, move |h| async move {
                    link::delete_by_name(&h, &ifname).await
                })
                .await?;
                tracing::debug!(deleted, "pod interface");
            }
            Err(NetnsError::Missing { .. }) => {
                tracing::debug!(netns = %path.display(), "pod namespace already gone");
            }
            Err(e) => return Err(e.into()),
        }
    }
    delegate::exec(&ctx.ipam_plugin, "DEL", &inv.stdin).await?;
    let ds = connect(inv).await?;
    let deleted = wep::delete_if_owned(&ds, &ctx.id).await?;
    tracing::info!(wep = %ctx.id.wep_name(), deleted, "pod removed");
    Ok(())
}
