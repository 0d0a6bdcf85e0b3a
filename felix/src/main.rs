//! `felix`: the per-node agent. Needs root (CAP_NET_ADMIN) in the network
//! namespace whose dataplane it programs.

use anyhow::Context;
use clap::Parser;
use config::settings::{EtcdArgs, Settings, init_tracing};
use felix::daemon::{self, BackendChoice, FelixConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::info;

/// Calico-style per-node agent: programs routes, sysctls, iptables and ipsets
/// for the workloads of this node from the etcd datastore.
#[derive(Parser, Debug)]
#[command(name = "felix", version)]
struct Cli {
    #[command(flatten)]
    etcd: EtcdArgs,
    /// This node's name [env: NODENAME; default: the hostname]
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// iptables backend [env: FELIX_IPTABLESBACKEND; default: auto]
    #[arg(long, value_enum)]
    iptables_backend: Option<BackendChoice>,
}

fn hostname() -> anyhow::Result<String> {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?;
    Ok(name.trim().to_string())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env_and_args(&cli.etcd)?;
    init_tracing(&settings.log_level)?;
    let node = match cli.node_name.clone().or(settings.node_name.clone()) {
        Some(n) => n,
        None => hostname()?,
    };
    let mut config = FelixConfig::from_lookup(&node, |name| std::env::var(name).ok())?;
    if let Some(backend) = cli.iptables_backend {
        config.backend = backend;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM received"),
                _ = int.recv() => info!("SIGINT received"),
            }
            let _ = stop_tx.send(true);
        });
        daemon::run(config, settings.etcd, stop_rx).await
    })
}
