//! Calico mode: bgpd configured from the cluster datastore instead of a file, as Calico's
//! confd configures BIRD. [`desired`] is the pure mapping; [`source`] reads etcd; [`follow`]
//! keeps a running daemon in step with the datastore.

pub mod desired;
pub mod source;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use config::datastore::Datastore;
use futures::StreamExt;

use crate::config::{Config, Listen};
use crate::daemon::{ConfigUpdate, DaemonHandle};
pub use desired::{ClusterView, DesiredBgp, DesiredError, Identity, desired};

/// Prefixes whose changes can change the desired state.
const WATCHED: &[&str] = &[
    "/calico/resources/v3/projectcalico.org/",
    "/calico/ipam/v2/",
];
/// Bursts of datastore events (a pod start writes several keys) are applied once.
const SETTLE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum CalicoError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Desired(#[from] DesiredError),
    #[error("this node's BGP identity changed ({old:?} -> {new:?}); restart bgpd to apply it")]
    IdentityChanged { old: Identity, new: Identity },
    #[error("the datastore watch failed: {0}")]
    Watch(String),
    #[error("the BGP daemon stopped")]
    DaemonStopped,
}

/// The daemon configuration for the desired state (peers and prefixes included).
pub fn daemon_config(
    d: &DesiredBgp,
    fib: bool,
    control_socket: Option<PathBuf>,
    metrics_listen: Option<std::net::SocketAddr>,
) -> Config {
    Config {
        as_number: d.identity.as_number,
        router_id: d.identity.router_id,
        cluster_id: d.identity.cluster_id,
        listen: Listen {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: d.identity.listen_port,
        },
        peers: d.peers.values().cloned().collect(),
        originate: d.originate.iter().copied().collect(),
        fib,
        keep_fib_on_exit: false,
        control_socket,
        metrics_listen,
    }
}

/// Reads the datastore once: the starting configuration and the revision to follow from.
pub async fn initial(ds: &Datastore, node: &str) -> Result<(DesiredBgp, i64), CalicoError> {
    let (view, revision) = source::read_view(ds, node).await?;
    Ok((desired(&view, node)?, revision))
}

/// The updates that turn `old` into `new` (same identity).
pub fn updates(old: &DesiredBgp, new: &DesiredBgp) -> Vec<ConfigUpdate> {
    let mut out = Vec::new();
    for (ip, peer) in &old.peers {
        if new.peers.get(ip) != Some(peer) {
            out.push(ConfigUpdate::RemovePeer(*ip));
        }
    }
    for (ip, peer) in &new.peers {
        if old.peers.get(ip) != Some(peer) {
            out.push(ConfigUpdate::AddPeer(Box::new(peer.clone())));
        }
    }
    if old.originate != new.originate {
        out.push(ConfigUpdate::SetOriginated(
            new.originate.iter().copied().collect(),
        ));
    }
    out
}

/// Watches the datastore from `revision` and applies every change of the desired state
/// to the daemon. Returns only on error (the caller exits; a supervisor restarts bgpd).
pub async fn follow(
    ds: Datastore,
    node: String,
    handle: DaemonHandle,
    mut applied: DesiredBgp,
    revision: i64,
) -> Result<(), CalicoError> {
    let streams = WATCHED.iter().map(|p| ds.watch_prefix(p, revision));
    let mut events = futures::stream::select_all(streams);
    loop {
        match events.next().await {
            None => return Err(CalicoError::Watch("watch ended".into())),
            Some(Err(e)) => return Err(CalicoError::Watch(e.to_string())),
            Some(Ok(_)) => {}
        }
        // Let the rest of a burst arrive, then recompute once.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                ev = events.next() => match ev {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(CalicoError::Watch(e.to_string())),
                    None => return Err(CalicoError::Watch("watch ended".into())),
                },
            }
        }
        let (view, _) = source::read_view(&ds, &node).await?;
        let next = match desired(&view, &node) {
            Ok(next) => next,
            // Our Node was deleted or lost its address: keep running what we have and
            // say why, rather than tearing down every session.
            Err(e) => {
                tracing::error!(error = %e, "cannot compute BGP configuration; keeping the current one");
                continue;
            }
        };
        if next.identity != applied.identity {
            return Err(CalicoError::IdentityChanged {
                old: applied.identity,
                new: next.identity,
            });
        }
        for update in updates(&applied, &next) {
            tracing::info!(?update, "applying datastore change");
            if let Err(e) = handle.update(update).await {
                if e == "daemon stopped" {
                    return Err(CalicoError::DaemonStopped);
                }
                tracing::warn!(error = %e, "daemon refused a configuration change");
            }
        }
        applied = next;
    }
}
