//! felix as a daemon: start-up, the servers, and the owner loop ([`owner`]).
//!
//! Tasks (all in this module tree, so the wiring is in one place):
//! * the syncer ([`crate::syncer`]): etcd -> `SyncerEvent`s;
//! * the link watch ([`links`]): rtnetlink link events;
//! * the owner loop ([`owner::Owner`]): model + calculation + dataplane;
//! * the health (`:9099`) and metrics (`:9091`) HTTP servers.
//!
//! Kernel work happens in the network namespace felix was started in.

pub mod apply;
pub mod links;
pub mod owner;
pub mod settings;
pub mod tunnel_addr;

use std::time::Duration;

use anyhow::Context;
use config::datastore::{Datastore, EtcdConfig};
use daemon_kit::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub use self::settings::{BackendChoice, FelixConfig};
use crate::calc::desired::Family;
use crate::calc::{CalcConfig, CalcInput, Calculator};
use crate::dataplane::iptables::{Backend, Iptables, detect_backend};
use crate::dataplane::netlink::Netlink;
use crate::health::Health;
use crate::metrics::Metrics;

/// `net.ipv4.ip_forward`: pods are routed through the host, so the host must
/// forward (Calico's felix sets it at start).
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Runs felix until `shutdown` turns true.
pub async fn run(
    config: FelixConfig,
    etcd: EtcdConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    info!(node = %config.node, "felix starting");
    set_ip_forward().context("enabling net.ipv4.ip_forward")?;
    let metrics = Metrics::new();
    let health = Health::new();
    health.beat();

    let health_listener =
        tokio::net::TcpListener::bind((config.health_host.as_str(), config.health_port))
            .await
            .with_context(|| {
                format!(
                    "binding health endpoint {}:{}",
                    config.health_host, config.health_port
                )
            })?;
    let metrics_listener =
        tokio::net::TcpListener::bind((config.metrics_host.as_str(), config.metrics_port))
            .await
            .with_context(|| {
                format!(
                    "binding metrics endpoint {}:{}",
                    config.metrics_host, config.metrics_port
                )
            })?;
    let servers = [
        serve(health_listener, health.router(), shutdown.clone()),
        serve(metrics_listener, metrics.router(), shutdown.clone()),
    ];

    let nl = Netlink::connect().context("opening the rtnetlink socket")?;
    let backend = match config.backend {
        BackendChoice::Auto => detect_backend().await,
        BackendChoice::Nft => Backend::Nft,
        BackendChoice::Legacy => Backend::Legacy,
    };
    let iptables = Iptables::new(backend, Family::V4).with_retry(5, Duration::from_millis(100));
    let applier = apply::Applier::new(nl, iptables, metrics.clone())
        .with_overlay_settings(config.overlay)
        .with_mtu_file(config.mtu_file.clone());

    let (link_tx, link_rx) = mpsc::channel(1024);
    let link_task = links::spawn(link_tx, metrics.clone()).context("subscribing to link events")?;

    let (sync_tx, sync_rx) = mpsc::channel(1024);
    let syncer = tokio::spawn(syncer_task(
        etcd.clone(),
        config.node.clone(),
        sync_tx,
        metrics.clone(),
        shutdown.clone(),
    ));

    let (tunnel_tx, tunnel_rx) = watch::channel(None);
    let tunnel_task = tokio::spawn(tunnel_addr::run(
        etcd.clone(),
        config.node.clone(),
        tunnel_rx,
    ));

    let owner = owner::Owner {
        calc: Calculator::new(
            CalcInput::new(&config.node),
            CalcConfig {
                failsafes: config.failsafes.clone(),
                ..CalcConfig::default()
            },
        ),
        config,
        applier,
        health,
        metrics,
        tunnel: tunnel_tx,
    };
    owner.run(sync_rx, link_rx, shutdown).await;

    syncer.abort();
    link_task.abort();
    tunnel_task.abort();
    for server in servers {
        let _ = server.await;
    }
    Ok(())
}

fn set_ip_forward() -> std::io::Result<()> {
    if std::fs::read_to_string(IP_FORWARD)?.trim() != "1" {
        std::fs::write(IP_FORWARD, "1")?;
        info!("net.ipv4.ip_forward set to 1");
    }
    Ok(())
}

fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    daemon_kit::http::serve(listener, router, async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
}

/// Connects to etcd (retrying while it is unavailable; felix keeps the kernel
/// as it is meanwhile) and runs the syncer.
async fn syncer_task(
    etcd: EtcdConfig,
    node: String,
    tx: mpsc::Sender<crate::syncer::SyncerEvent>,
    metrics: std::sync::Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) {
    metrics.resync_state.set(1);
    // Every node's felix reconnects after the same etcd outage: jitter spreads them.
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).jitter(0.2);
    let ds = loop {
        if *shutdown.borrow() {
            return;
        }
        match Datastore::connect(&etcd).await {
            Ok(ds) => break ds,
            Err(error) => {
                let delay = backoff.next_delay();
                warn!(%error, retry_in = ?delay, "cannot reach etcd yet");
                tokio::time::sleep(delay).await;
            }
        }
    };
    info!(endpoints = ?etcd.endpoints, "connected to etcd");
    crate::syncer::run(ds, node, tx, metrics).await;
}
