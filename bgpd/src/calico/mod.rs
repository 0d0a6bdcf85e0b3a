//! Calico mode: bgpd configured from the cluster datastore instead of a file, as Calico's
//! confd configures BIRD. [`desired`] is the pure mapping; [`source`] reads etcd; [`follow`]
//! keeps a running daemon in step with the datastore.

pub mod desired;
pub mod source;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use config::datastore::{Datastore, WatchEvent, resource_prefix};
use config::model::Node;
use daemon_kit::backoff::Backoff;
use futures::StreamExt;

use crate::config::{Config, Listen};
use crate::daemon::{ConfigUpdate, DaemonHandle};
pub use desired::{ClusterView, DesiredBgp, DesiredError, Identity, desired};

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
        fib_exclude: d.fib_exclude.clone(),
        // Graceful Restart (on for every peer, see `desired`): the routes stay at exit.
        keep_fib_on_exit: true,
        control_socket,
        metrics_listen,
    }
}

/// What the follower knows of the datastore between events.
#[derive(Debug, Clone, Default)]
pub struct Cached {
    pub resources: source::Resources,
    pub affinities: Vec<ipnet::IpNet>,
    /// Block key -> addresses this node borrowed in it.
    pub borrowed: BTreeMap<String, Vec<IpAddr>>,
}

impl Cached {
    pub fn view(&self) -> ClusterView {
        ClusterView {
            nodes: self.resources.nodes.clone(),
            bgp_config: self.resources.bgp_config.clone(),
            peers: self.resources.peers.clone(),
            pools: self.resources.pools.clone(),
            affine_blocks: self.affinities.clone(),
            borrowed: self.borrowed.values().flatten().copied().collect(),
        }
    }
}

/// Which parts an event batch made stale.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    pub resources: bool,
    pub affinities: bool,
    pub borrowed: bool,
    /// Nodes whose resource was written: a node that starts again writes its Node, so a
    /// session to it that waits to retry can try at once.
    pub nodes: BTreeSet<String>,
}

/// Folds one event into `dirty`, updating the borrowed map straight from block events
/// (one block decoded per event, never a re-list of all blocks).
pub fn note_event(event: &WatchEvent, node: &str, cached: &mut Cached, dirty: &mut Dirty) {
    let key = event.key();
    if source::resource_prefixes()
        .iter()
        .any(|p| key.starts_with(p.as_str()))
    {
        dirty.resources = true;
        if let Some(name) = key.strip_prefix(resource_prefix::<Node>(None).as_str()) {
            dirty.nodes.insert(name.to_string());
        }
    } else if source::affinity_prefixes(node)
        .iter()
        .any(|p| key.starts_with(p.as_str()))
    {
        dirty.affinities = true;
    } else if source::block_prefixes()
        .iter()
        .any(|p| key.starts_with(p.as_str()))
    {
        let borrowed = match event {
            WatchEvent::Put(kv) => source::borrowed_in_block(key, &kv.value, node),
            WatchEvent::Delete { .. } => Vec::new(),
        };
        let changed = if borrowed.is_empty() {
            cached.borrowed.remove(key).is_some()
        } else {
            cached.borrowed.insert(key.to_string(), borrowed.clone()) != Some(borrowed)
        };
        dirty.borrowed |= changed;
    }
}

/// The peers to connect to now: those of the written `nodes` that this node peers with
/// (the mesh peer at the node's BGP address). A node back from a reboot is then peered
/// with as soon as its calico-node writes its Node, not at the end of a retry wait.
pub fn retry_now(nodes: &BTreeSet<String>, cached: &Cached, applied: &DesiredBgp) -> Vec<IpAddr> {
    cached
        .resources
        .nodes
        .iter()
        .filter(|n| nodes.contains(&n.metadata.name))
        .filter_map(desired::node_address)
        .filter(|ip| applied.peers.contains_key(ip))
        .collect()
}

/// Reads everything once: the cache, and the revision to follow from.
pub async fn read_all(ds: &Datastore, node: &str) -> Result<(Cached, i64), CalicoError> {
    let revision = source::current_revision(ds).await?;
    let cached = Cached {
        resources: source::read_resources(ds).await?,
        affinities: source::read_affinities(ds, node).await?,
        borrowed: source::read_borrowed(ds, node).await?,
    };
    Ok((cached, revision))
}

/// Reads the datastore once: the starting configuration, the cache and the revision to
/// follow from.
pub async fn initial(ds: &Datastore, node: &str) -> Result<(DesiredBgp, Cached, i64), CalicoError> {
    let (cached, revision) = read_all(ds, node).await?;
    Ok((desired(&cached.view(), node)?, cached, revision))
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
    if old.fib_exclude != new.fib_exclude {
        out.push(ConfigUpdate::SetFibExclude(new.fib_exclude.clone()));
    }
    out
}

/// Watches the relevant prefixes from `revision` and applies every change of the desired
/// state to the daemon, re-reading only the parts that changed. A lost watch (e.g. its
/// start revision was compacted) is replaced in place after a full re-read, so sessions
/// and routes stay up. Returns only when bgpd cannot go on: the identity changed (a
/// restart applies it) or the daemon stopped.
pub async fn follow(
    ds: Datastore,
    node: String,
    handle: DaemonHandle,
    mut applied: DesiredBgp,
    mut cached: Cached,
    mut revision: i64,
) -> Result<(), CalicoError> {
    // Every node's bgpd loses its watch in the same etcd outage: jitter spreads the re-reads.
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10)).jitter(0.2);
    loop {
        match watch_and_apply(&ds, &node, &handle, &mut applied, &mut cached, revision).await {
            // A lost watch or a failed read (etcd away) is retried; sessions stay up.
            Err(e @ (CalicoError::Watch(_) | CalicoError::Source(_))) => {
                tracing::warn!(error = %e, "datastore watch lost; re-reading and watching again");
            }
            other => return other,
        }
        loop {
            match read_all(&ds, &node).await {
                Ok((fresh, rev)) => {
                    cached = fresh;
                    revision = rev;
                    backoff.reset();
                    break;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot re-read the datastore");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        reconcile(&node, &handle, &cached, &mut applied).await?;
    }
}

/// Recomputes the desired state from the cache and sends the difference to the daemon.
async fn reconcile(
    node: &str,
    handle: &DaemonHandle,
    cached: &Cached,
    applied: &mut DesiredBgp,
) -> Result<(), CalicoError> {
    let next = match desired(&cached.view(), node) {
        Ok(next) => next,
        // Our Node was deleted or lost its address: keep running what we have and
        // say why, rather than tearing down every session.
        Err(e) => {
            tracing::error!(error = %e, "cannot compute BGP configuration; keeping the current one");
            return Ok(());
        }
    };
    if next.identity != applied.identity {
        return Err(CalicoError::IdentityChanged {
            old: applied.identity.clone(),
            new: next.identity,
        });
    }
    for update in updates(applied, &next) {
        tracing::info!(?update, "applying datastore change");
        if let Err(e) = handle.update(update).await {
            if e == "daemon stopped" {
                return Err(CalicoError::DaemonStopped);
            }
            tracing::warn!(error = %e, "daemon refused a configuration change");
        }
    }
    *applied = next;
    Ok(())
}

/// One watch session: returns `Watch` when the watch is lost.
async fn watch_and_apply(
    ds: &Datastore,
    node: &str,
    handle: &DaemonHandle,
    applied: &mut DesiredBgp,
    cached: &mut Cached,
    revision: i64,
) -> Result<(), CalicoError> {
    let prefixes: Vec<String> = source::resource_prefixes()
        .into_iter()
        .chain(source::affinity_prefixes(node))
        .chain(source::block_prefixes())
        .collect();
    let mut events =
        futures::stream::select_all(prefixes.iter().map(|p| ds.watch_prefix(p, revision)));
    loop {
        let mut dirty = Dirty::default();
        match events.next().await {
            None => return Err(CalicoError::Watch("watch ended".into())),
            Some(Err(e)) => return Err(CalicoError::Watch(e.to_string())),
            Some(Ok(ev)) => note_event(&ev, node, cached, &mut dirty),
        }
        // Let the rest of a burst arrive, then recompute once.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                ev = events.next() => match ev {
                    Some(Ok(ev)) => note_event(&ev, node, cached, &mut dirty),
                    Some(Err(e)) => return Err(CalicoError::Watch(e.to_string())),
                    None => return Err(CalicoError::Watch("watch ended".into())),
                },
            }
        }
        if dirty == Dirty::default() {
            continue;
        }
        if dirty.resources {
            cached.resources = source::read_resources(ds).await?;
        }
        if dirty.affinities {
            cached.affinities = source::read_affinities(ds, node).await?;
        }
        // Peers of written Nodes as they were before this batch: one whose configuration
        // the batch changed was just started again, and needs no nudge.
        let touched: Vec<(IpAddr, crate::config::PeerConfig)> =
            retry_now(&dirty.nodes, cached, applied)
                .into_iter()
                .filter_map(|ip| applied.peers.get(&ip).map(|p| (ip, p.clone())))
                .collect();
        reconcile(node, handle, cached, applied).await?;
        for (ip, before) in touched {
            if applied.peers.get(&ip) != Some(&before) {
                continue;
            }
            if handle.update(ConfigUpdate::RetryNow(ip)).await.is_err() {
                return Err(CalicoError::DaemonStopped);
            }
        }
    }
}
