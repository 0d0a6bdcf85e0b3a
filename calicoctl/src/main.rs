//! calicoctl: reads and writes Calico resources in etcd, shows BGP peer status and IPAM.
//!
//! Every failure prints one line naming the problem and exits 1; a refused file writes
//! nothing (all of it is parsed and validated before the first write).

mod cli;
mod client_config;
mod cluster;
mod columns;
mod edit;
mod get;
mod input;
mod ipam_cmd;
mod kinds;
mod node_status;
mod resources;
mod table;

use std::process::ExitCode;

use clap::Parser;
use config::datastore::Datastore;
use config::model::ResourceKind;

use cli::{Cli, Command, DatastoreCommand, IpamCommand, MigrateCommand, NodeCommand};
use resources::Action;

/// What a command prints and whether it succeeded.
type Reply = Result<String, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(text) => {
            println!("{text}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(cli: &Cli) -> Result<Datastore, String> {
    let cfg = client_config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    Datastore::connect(&cfg).await.map_err(|e| e.to_string())
}

fn resolve_kind(arg: &str) -> Result<ResourceKind, String> {
    ResourceKind::from_alias(arg).ok_or_else(|| format!("resource type '{arg}' is not supported"))
}

async fn run(cli: Cli) -> Reply {
    match &cli.command {
        Command::Create(f) => {
            let action = Action::Create {
                skip_exists: f.skip_exists,
            };
            file_command(&cli, action, &f.filename, f.namespace.as_deref()).await
        }
        Command::Apply(f) => {
            file_command(&cli, Action::Apply, &f.filename, f.namespace.as_deref()).await
        }
        Command::Replace(f) => {
            file_command(&cli, Action::Replace, &f.filename, f.namespace.as_deref()).await
        }
        Command::Delete(d) => delete(&cli, d).await,
        Command::Get(g) => {
            let kind =
                resolve_kind(&g.kind).map_err(|e| format!("Failed to get resources: {e}"))?;
            let format = get::Format::parse(&g.output)
                .map_err(|e| format!("Failed to get resources: {e}"))?;
            let ds = connect(&cli)
                .await
                .map_err(|e| format!("Failed to get resources: {e}"))?;
            let req = get::GetRequest {
                kind,
                names: &g.names,
                format,
                namespace: g.namespace.as_deref(),
                all_namespaces: g.all_namespaces,
            };
            get::run(&ds, &req)
                .await
                .map_err(|e| format!("Failed to get resources: {e}"))
        }
        Command::Patch(p) => {
            let kind =
                resolve_kind(&p.kind).map_err(|e| format!("Failed to patch resource: {e}"))?;
            let ds = connect(&cli)
                .await
                .map_err(|e| format!("Failed to patch resource: {e}"))?;
            let ns = namespace_for(kind, p.namespace.as_deref());
            edit::patch(&ds, kind, ns, &p.name, &p.patch)
                .await
                .map(|m| m + "\n")
                .map_err(|e| format!("Failed to patch '{}' resource: {e}", kind.kind_name()))
        }
        Command::Label(l) => {
            let kind =
                resolve_kind(&l.kind).map_err(|e| format!("Failed to label resource: {e}"))?;
            let change = edit::LabelChange::parse(&l.label, l.remove, l.overwrite)?;
            let ds = connect(&cli)
                .await
                .map_err(|e| format!("Failed to label resource: {e}"))?;
            let ns = namespace_for(kind, l.namespace.as_deref());
            edit::label(&ds, kind, &l.kind, ns, &l.name, change)
                .await
                .map(|m| m + "\n")
        }
        Command::Validate(v) => {
            let resources = input::read_resources(&v.filename)
                .map_err(|e| format!("Failed to execute command: {e}"))?;
            input::check_all(&resources, &[]).map_err(|e| format!("Failed to validate: {e}"))?;
            Ok(format!(
                "Successfully validated {} resource(s)\n",
                resources.len()
            ))
        }
        Command::Version => {
            let mut out = format!("Client Version:    {}\n", cluster::CLIENT_VERSION);
            match connect(&cli).await {
                Ok(ds) => match cluster::cluster_version_lines(&ds).await {
                    Ok(lines) => out.push_str(&lines),
                    Err(e) => out.push_str(&format!(
                        "Unable to retrieve Cluster Version or Type: {e}\n"
                    )),
                },
                Err(e) => out.push_str(&format!(
                    "Unable to retrieve Cluster Version or Type: {e}\n"
                )),
            }
            Ok(out)
        }
        Command::Node {
            command: NodeCommand::Status { socket },
        } => node_status(socket),
        Command::Ipam { command } => {
            let ds = connect(&cli)
                .await
                .map_err(|e| format!("Failed to execute command: {e}"))?;
            match command {
                IpamCommand::Show {
                    show_blocks,
                    ip: None,
                } => ipam_cmd::show(&ds, *show_blocks).await,
                IpamCommand::Show { ip: Some(ip), .. } => ipam_cmd::show_ip(&ds, *ip).await,
                IpamCommand::Check { output } => ipam_cmd::check(&ds, output.as_deref()).await,
                IpamCommand::Release {
                    ip,
                    from_report,
                    force,
                } => ipam_cmd::release(&ds, *ip, from_report.as_deref(), *force).await,
                IpamCommand::Configure {
                    strict_affinity,
                    max_blocks_per_host,
                } => ipam_cmd::configure(&ds, *strict_affinity, *max_blocks_per_host).await,
            }
            .map_err(|e| format!("Failed to execute command: {e}"))
        }
        Command::Datastore {
            command: DatastoreCommand::Migrate { command },
        } => {
            let ds = connect(&cli)
                .await
                .map_err(|e| format!("Failed to execute command: {e}"))?;
            let (ready, message) = match command {
                MigrateCommand::Lock => (false, "Datastore locked.\n"),
                MigrateCommand::Unlock => (true, "Datastore unlocked.\n"),
            };
            cluster::set_datastore_ready(&ds, ready)
                .await
                .map(|()| message.to_string())
                .map_err(|e| format!("Failed to execute command: {e}"))
        }
    }
}

fn namespace_for(kind: ResourceKind, flag: Option<&str>) -> Option<&str> {
    kind.namespaced()
        .then(|| flag.unwrap_or(config::datastore::DEFAULT_NAMESPACE))
}

/// create/apply/replace -f: parse and validate everything first, then write in order.
async fn file_command(
    cli: &Cli,
    action: Action,
    path: &std::path::Path,
    namespace: Option<&str>,
) -> Reply {
    let mut resources =
        input::read_resources(path).map_err(|e| format!("Failed to execute command: {e}"))?;
    if resources.is_empty() {
        return Err("No resources specified".into());
    }
    input::default_namespaces(&mut resources, namespace);
    input::check_all(&resources, &[]).map_err(|e| format!("Failed to execute command: {e}"))?;
    let ds = connect(cli)
        .await
        .map_err(|e| format!("Failed to execute command: {e}"))?;
    if resources.iter().any(|r| r.kind() == ResourceKind::IPPool) {
        let existing = resources::existing_pools(&ds)
            .await
            .map_err(|e| format!("Failed to execute command: {e}"))?;
        input::check_all(&resources, &existing)
            .map_err(|e| format!("Failed to execute command: {e}"))?;
    }
    execute(&ds, action, &resources).await
}

async fn delete(cli: &Cli, d: &cli::DeleteArgs) -> Reply {
    let action = Action::Delete {
        skip_not_exists: d.skip_not_exists,
    };
    let mut resources = match (&d.filename, d.target.as_slice()) {
        (Some(path), []) => {
            input::read_resources(path).map_err(|e| format!("Failed to execute command: {e}"))?
        }
        (None, [kind, names @ ..]) if !names.is_empty() => {
            let kind = resolve_kind(kind).map_err(|e| format!("Failed to execute command: {e}"))?;
            let ns = namespace_for(kind, d.namespace.as_deref());
            names
                .iter()
                .map(|name| placeholder(kind, ns, name))
                .collect::<Result<_, _>>()?
        }
        _ => return Err("Failed to execute command: give -f FILE, or KIND NAME...".into()),
    };
    if resources.is_empty() {
        return Err("No resources specified".into());
    }
    input::default_namespaces(&mut resources, d.namespace.as_deref());
    let ds = connect(cli)
        .await
        .map_err(|e| format!("Failed to execute command: {e}"))?;
    execute(&ds, action, &resources).await
}

/// Writes the resources and words the outcome.
async fn execute(
    ds: &Datastore,
    action: Action,
    resources: &[config::model::AnyResource],
) -> Reply {
    let outcome = resources::execute(ds, action, resources).await;
    if outcome.success {
        Ok(outcome.message + "\n")
    } else {
        Err(outcome.message)
    }
}

/// A minimal object naming what `delete KIND NAME` removes.
fn placeholder(
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
) -> Result<config::model::AnyResource, String> {
    let mut meta = serde_json::json!({ "name": name });
    if let Some(ns) = namespace {
        meta["namespace"] = ns.into();
    }
    let value = serde_json::json!({
        "apiVersion": config::model::API_VERSION,
        "kind": kind.kind_name(),
        "metadata": meta,
        "spec": {},
    });
    config::model::AnyResource::from_value(kind, value)
        .map_err(|e| format!("Failed to execute command: {e}"))
}

fn node_status(socket: &std::path::Path) -> Reply {
    let mut out = String::from("Calico process is running.\n");
    match node_status::query_show_protocols(socket) {
        Ok(reply) => {
            let peers = node_status::parse_show_protocols(&reply).map_err(|e| e.to_string())?;
            out.push_str(&node_status::render_peer_tables(&peers));
            Ok(out)
        }
        Err(node_status::StatusError::Socket { .. }) => Err(
            "Calico process is not running.\n\nNone of the BGP backend processes (BIRD or GoBGP) are running."
                .to_string(),
        ),
        Err(e) => Err(e.to_string()),
    }
}
