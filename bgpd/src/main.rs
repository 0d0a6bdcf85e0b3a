//! `bgpd --config FILE`: the BGP speaker daemon, configured from a file; or
//! `bgpd --datastore`: configured from the Calico datastore (mesh, BGPPeers, route
//! reflection, this node's IPAM blocks) and kept in step with it, as Calico's confd does
//! for BIRD.

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
    #[arg(
        long,
        short = 'c',
        required_unless_present = "datastore",
        conflicts_with = "datastore"
    )]
    config: Option<PathBuf>,
    /// Take the configuration from the Calico datastore (etcd) for node NODENAME.
    #[arg(long)]
    datastore: bool,
    /// This node's name in the datastore (with --datastore).
    #[arg(long, env = "NODENAME")]
    node_name: Option<String>,
    #[command(flatten)]
    etcd: config::settings::EtcdArgs,
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
    /// Seconds between dumps of our kernel routes that repair missing or
    /// changed ones and remove extras.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    fib_reconcile_secs: u64,
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &args.config {
        Some(path) => {
            let cfg = Config::load(path).context("configuration refused")?;
            runtime.block_on(run(args, cfg, None))
        }
        None => runtime.block_on(run_from_datastore(args)),
    }
}

/// Calico mode: read the node's BGP configuration from etcd, then follow changes.
async fn run_from_datastore(args: Args) -> anyhow::Result<()> {
    let settings = config::settings::Settings::from_env_and_args(&args.etcd)?;
    let node = args
        .node_name
        .clone()
        .or(settings.node_name.clone())
        .context("--datastore needs the node name: set NODENAME or --node-name")?;
    let ds = config::datastore::Datastore::connect(&settings.etcd).await?;
    let (desired, cached, revision) = bgpd::calico::initial(&ds, &node)
        .await
        .with_context(|| format!("reading node {node}'s BGP configuration"))?;
    let cfg = bgpd::calico::daemon_config(&desired, true, None, None);
    let follower: Follower = Box::new(move |handle| {
        Box::pin(bgpd::calico::follow(
            ds, node, handle, desired, cached, revision,
        ))
    });
    run(args, cfg, Some(follower)).await
}

/// Keeps a running daemon in step with its configuration source (Calico mode); returns
/// only when it cannot go on.
type Follower = Box<
    dyn FnOnce(
            bgpd::daemon::DaemonHandle,
        )
            -> futures::future::BoxFuture<'static, Result<(), bgpd::calico::CalicoError>>
        + Send,
>;

async fn run(args: Args, cfg: Config, follower: Option<Follower>) -> anyhow::Result<()> {
    let fib = if cfg.fib && !args.no_fib {
        let every = Duration::from_secs(args.fib_reconcile_secs);
        Some(
            Fib::start_with(every)
                .await
                .context("starting FIB install")?,
        )
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
    let (handle, owner, accept) = Daemon::start(DaemonOptions {
        config: cfg,
        fib,
        listener: Some(listener),
        stale_sweep_after: Duration::from_secs(args.stale_sweep_secs),
    });
    let mut owner = tokio::spawn(owner);
    let mut accept = accept;
    let _ctl = bgpd::control::serve(&control, handle.clone())
        .with_context(|| format!("control socket {}", control.display()))?;
    if let Some(m) = metrics {
        let _m = bgpd::metrics::serve(m, handle.clone())
            .await
            .with_context(|| format!("metrics on {m}"))?;
    }
    let mut follow = follower.map(|f| tokio::spawn(f(handle.clone())));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut failure = None;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT"),
        done = async { follow.as_mut().expect("guarded").await }, if follow.is_some() => {
            let reason = match done {
                Ok(Ok(())) => "the datastore follower ended".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("the datastore follower panicked: {e}"),
            };
            error!(error = %reason, "stopping");
            failure = Some(reason);
        }
        // The owner holds the RIB and the peers: without it bgpd would keep
        // answering on its sockets while doing nothing.
        done = &mut owner => {
            let reason = ended("the owner task (RIB, peers)", done);
            error!(error = %reason, "stopping");
            failure = Some(reason);
        }
        // Without the accept loop no passive session can come up again.
        done = async { accept.as_mut().expect("guarded").await }, if accept.is_some() => {
            let reason = ended("the BGP accept loop", done);
            error!(error = %reason, "stopping");
            failure = Some(reason);
        }
    }
    if let Some(task) = &follow {
        task.abort();
    }
    if let Some(task) = &accept {
        task.abort();
    }
    if !owner.is_finished() {
        handle.shutdown().await;
        if let Err(e) = owner.await {
            error!(error = %e, "owner task failed");
        }
    }
    let _ = std::fs::remove_file(&control);
    info!("bgpd stopped");
    match failure {
        Some(reason) => anyhow::bail!(reason),
        None => Ok(()),
    }
}

/// Why a task that should run until shutdown is gone.
fn ended(what: &str, r: Result<(), tokio::task::JoinError>) -> String {
    match r {
        Ok(()) => format!("{what} ended unexpectedly"),
        Err(e) if e.is_panic() => format!("{what} panicked: {e}"),
        Err(e) => format!("{what} was cancelled: {e}"),
    }
}
