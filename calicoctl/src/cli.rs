//! Command line, shaped like Calico's calicoctl (verbs, flags and their short forms).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "calicoctl",
    about = "Manage Calico resources and inspect a node",
    version
)]
pub struct Cli {
    /// Path to the client configuration file (CalicoAPIConfig).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// Log level for calicoctl's own diagnostics.
    #[arg(
        short = 'l',
        long = "log-level",
        global = true,
        default_value = "panic"
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create resources from a file; fails for resources that exist.
    Create(FileArgs),
    /// Create or update resources from a file.
    Apply(FileArgs),
    /// Update existing resources from a file.
    Replace(FileArgs),
    /// Delete resources named in a file or on the command line.
    Delete(DeleteArgs),
    /// Show resources.
    Get(GetArgs),
    /// Merge-patch a resource.
    Patch(PatchArgs),
    /// Add, change or remove labels of a resource.
    Label(LabelArgs),
    /// Check a file of resources without touching the datastore.
    Validate(ValidateArgs),
    /// Print the client version.
    Version,
    /// Node-local commands.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// IP address management.
    Ipam {
        #[command(subcommand)]
        command: IpamCommand,
    },
    /// Datastore maintenance.
    Datastore {
        #[command(subcommand)]
        command: DatastoreCommand,
    },
}

#[derive(Args, Debug)]
pub struct FileArgs {
    /// File of resources (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "filename")]
    pub filename: PathBuf,
    /// Namespace for namespaced resources that name none.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// create: do not fail for resources that already exist.
    #[arg(long = "skip-exists")]
    pub skip_exists: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[arg(short = 'f', long = "filename")]
    pub filename: PathBuf,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// KIND NAME... (or use -f).
    pub target: Vec<String>,
    #[arg(short = 'f', long = "filename")]
    pub filename: Option<PathBuf>,
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Do not fail for resources that do not exist.
    #[arg(short = 's', long = "skip-not-exists")]
    pub skip_not_exists: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// KIND [NAME...]
    pub kind: String,
    pub names: Vec<String>,
    /// ps (default), wide, yaml, json, custom-columns=COL,...
    #[arg(short = 'o', long = "output", default_value = "ps")]
    pub output: String,
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
}

#[derive(Args, Debug)]
pub struct PatchArgs {
    pub kind: String,
    pub name: String,
    /// JSON merge patch (RFC 7386).
    #[arg(short = 'p', long = "patch")]
    pub patch: String,
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
}

#[derive(Args, Debug)]
pub struct LabelArgs {
    pub kind: String,
    pub name: String,
    /// key=value to set, or key with --remove.
    pub label: String,
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    #[arg(long = "overwrite")]
    pub overwrite: bool,
    #[arg(long = "remove")]
    pub remove: bool,
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// BGP session status of this node's BGP daemon.
    Status {
        /// Control socket of the BGP daemon.
        #[arg(
            long = "socket",
            env = "CALICO_BGP_SOCKET",
            default_value = "/var/run/calico/bird.ctl"
        )]
        socket: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum IpamCommand {
    /// Usage of pools and blocks, or who holds one address.
    Show {
        #[arg(long = "show-blocks")]
        show_blocks: bool,
        #[arg(long = "ip")]
        ip: Option<std::net::IpAddr>,
    },
    /// Scan for leaked or inconsistent allocations.
    Check {
        /// Write the report (JSON) to this file.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Release addresses.
    Release {
        #[arg(long = "ip")]
        ip: Option<std::net::IpAddr>,
        #[arg(long = "from-report")]
        from_report: Option<PathBuf>,
        #[arg(long = "force")]
        force: bool,
    },
    /// Change IPAM settings.
    Configure {
        #[arg(long = "strictaffinity")]
        strict_affinity: Option<bool>,
        #[arg(long = "max-blocks-per-host")]
        max_blocks_per_host: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DatastoreCommand {
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// Lock the datastore (ClusterInformation datastoreReady=false).
    Lock,
    /// Unlock the datastore.
    Unlock,
}
