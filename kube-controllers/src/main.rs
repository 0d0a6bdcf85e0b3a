//! `kube-controllers`: Calico's calico-kube-controllers for the etcd datastore.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use config::datastore::Datastore;
use config::model::parse_go_duration;
use config::settings::{EtcdArgs, Settings, init_tracing};
use kube_controllers::controllers::Kind;
use kube_controllers::controllers::nodes::GcConfig;
use kube_controllers::leader::ElectionConfig;
use kube_controllers::leader::lease::LeaseConfig;
use kube_controllers::run::{Options, start};

#[derive(Parser, Debug)]
#[command(
    name = "kube-controllers",
    about = "Kubernetes API -> Calico datastore (etcd): profiles, endpoint labels, policies, node cleanup"
)]
struct Args {
    #[command(flatten)]
    etcd: EtcdArgs,
    /// kubeconfig file; in-cluster configuration when absent
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Controllers to run, comma-separated (Calico's names)
    #[arg(
        long,
        env = "ENABLED_CONTROLLERS",
        default_value = "node,namespace,serviceaccount,workloadendpoint,policy"
    )]
    controllers: String,
    /// Address of /liveness and /readiness (port 0: off)
    #[arg(long, env = "HEALTH_LISTEN", default_value = "0.0.0.0:9440")]
    health_listen: SocketAddr,
    /// Address of the Prometheus /metrics endpoint (port 0: off)
    #[arg(long, env = "METRICS_LISTEN", default_value = "0.0.0.0:9094")]
    metrics_listen: SocketAddr,
    /// Elect a leader among replicas through a Lease (false: this replica always writes)
    #[arg(long, env = "LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Name of the Lease
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE_NAME",
        default_value = "calico-kube-controllers"
    )]
    lease_name: String,
    /// Namespace of the Lease
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE", default_value = "kube-system")]
    lease_namespace: String,
    /// This replica's identity in the Lease [default: POD_NAME or HOSTNAME, plus a random suffix]
    #[arg(long, env = "LEADER_ELECTION_IDENTITY")]
    identity: Option<String>,
    /// How long a lease stays valid after its last renewal
    #[arg(long, default_value = "15s", value_parser = duration)]
    lease_duration: Duration,
    /// How long the leader keeps writing without a successful renewal
    #[arg(long, default_value = "10s", value_parser = duration)]
    renew_deadline: Duration,
    /// How often the lease is read and renewed
    #[arg(long, default_value = "2s", value_parser = duration)]
    retry_period: Duration,
    /// How often IPAM allocations are checked for leaks
    #[arg(long, env = "IPAM_GC_INTERVAL", default_value = "5m", value_parser = duration)]
    ipam_gc_interval: Duration,
    /// How long a pod address must look leaked before release (0: never release those)
    #[arg(long, env = "IPAM_LEAK_GRACE_PERIOD", default_value = "15m", value_parser = duration)]
    ipam_leak_grace_period: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s)
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        // One line: what is wrong and where.
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("kube-controllers: {msg}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let settings = Settings::from_env_and_args(&args.etcd)?;
    init_tracing(&settings.log_level)?;
    let controllers = Kind::parse_list(&args.controllers)
        .map_err(|e| anyhow!("--controllers/ENABLED_CONTROLLERS: {e}"))?;
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let ds = connect_etcd(&settings).await?;
    let leader = if args.leader_elect {
        let election = ElectionConfig {
            identity: args.identity.clone().unwrap_or_else(default_identity),
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        };
        election
            .validate()
            .map_err(|e| anyhow!("leader election: {e}"))?;
        Some(LeaseConfig {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            election,
        })
    } else {
        None
    };
    let opts = Options {
        controllers,
        gc: GcConfig {
            interval: args.ipam_gc_interval,
            leak_grace: Some(args.ipam_leak_grace_period).filter(|g| !g.is_zero()),
        },
        leader,
    };
    tracing::info!(controllers = %args.controllers, leader_election = args.leader_elect, "starting");
    let running = start(client, ds, opts);
    serve(args.health_listen, running.health.router(), "health").await?;
    serve(args.metrics_listen, running.metrics.router(), "metrics").await?;
    shutdown_signal().await;
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}

/// The API client from `path`, or the in-cluster configuration.
async fn kube_client(path: Option<&std::path::Path>) -> Result<kube::Client> {
    let config = match path.filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| anyhow!("kubeconfig {}: {}", path.display(), root_cause(&e)))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| anyhow!("kubeconfig {}: {}", path.display(), root_cause(&e)))?
        }
        None => kube::Config::incluster().map_err(|e| {
            anyhow!("no --kubeconfig/KUBECONFIG given and no in-cluster configuration: {e}")
        })?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// An error and its causes on one line (the first line of each: YAML errors append a
/// multi-line excerpt of the input).
fn root_cause(e: &dyn std::error::Error) -> String {
    let first_line = |e: &dyn std::error::Error| {
        e.to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mut parts = vec![first_line(e)];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = first_line(s);
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Connects to etcd, waiting while it is unreachable (a configuration error fails).
async fn connect_etcd(settings: &Settings) -> Result<Datastore> {
    loop {
        match Datastore::connect(&settings.etcd).await {
            Ok(ds) => return Ok(ds),
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "etcd unreachable; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => bail!(e),
        }
    }
}

fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "kube-controllers".into());
    format!("{base}-{:08x}", rand::random::<u32>())
}

async fn serve(addr: SocketAddr, router: axum::Router, what: &str) -> Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))?;
    daemon_kit::http::serve(listener, router, std::future::pending());
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
