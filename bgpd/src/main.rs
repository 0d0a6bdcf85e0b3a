//! `bgpd --config FILE`: the BGP speaker daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing::{error, info};

use bgpd::config::Config;
use bgpd::daemon::{Daemon, DaemonOptions};
use bgpd::fib::Fib;
use bgpd::peer::Listener;

#[derive(Parser, Debug)]
#[command(
    name = "bgpd",
    about = "BGP-4 speaker (BIRD-compatible control socket)"
)]
struct Args {
    /// YAML configuration file.
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// Control socket path (overrides `controlSocket`).
    #[arg(long, short = 's')]
    control_socket: Option<PathBuf>,
    /// Do not install routes in the kernel (overrides `fib`).
    #[arg(long)]
    no_fib: bool,
    /// Metrics address (overrides `metricsListen`); `off` disables.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Seconds after which stale kernel routes of an earlier run are
    /// removed if the peers have not all sent End-of-RIB by then.
    #[arg(long, default_value_t = 120)]
    stale_sweep_secs: u64,
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
    let args = Args::parse();
    let cfg = Config::load(&args.config).context("configuration refused")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args, cfg))
}

async fn run(args: Args, cfg: Config) -> anyhow::Result<()> {
    let fib = if cfg.fib && !args.no_fib {
        Some(Fib::start().await.context("starting FIB install")?)
    } else {
        info!("FIB install off");
        None
    };
    let listen = SocketAddr::new(cfg.listen.address, cfg.listen.port);
    let listener = Listener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    let control = args
        .control_socket
        .clone()
        .unwrap_or_else(|| cfg.control_socket());
    let metrics: Option<SocketAddr> = match args.metrics_listen.as_deref() {
        Some("off") => None,
        Some(a) => Some(a.parse().context("--metrics-listen")?),
        None => Some(cfg.metrics_listen()),
    };
    info!(asn = cfg.as_number, router_id = %cfg.router_id, %listen, peers = cfg.peers.len(), "bgpd starting");
    let (handle, owner) = Daemon::start(DaemonOptions {
        config: cfg,
        fib,
        listener: Some(listener),
        stale_sweep_after: Duration::from_secs(args.stale_sweep_secs),
    });
    let owner = tokio::spawn(owner);
    let _ctl = bgpd::control::serve(&control, handle.clone())
        .with_context(|| format!("control socket {}", control.display()))?;
    if let Some(m) = metrics {
        let _m = bgpd::metrics::serve(m, handle.clone())
            .await
            .with_context(|| format!("metrics on {m}"))?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT"),
    }
    handle.shutdown().await;
    if let Err(e) = owner.await {
        error!(error = %e, "owner task failed");
    }
    let _ = std::fs::remove_file(&control);
    info!("bgpd stopped");
    Ok(())
}
