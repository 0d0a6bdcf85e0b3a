//! What both binaries share around their commands: read the environment and stdin, answer
//! VERSION, check the configuration's version, set up logging (stderr only: stdout carries
//! the result), run the command on a current-thread runtime, print the result or the error
//! JSON and choose the exit status.

use std::future::Future;
use std::io::{Read, Write};
use std::process::ExitCode;

use crate::env::{CniEnv, Command};
use crate::error::{CniError, INCOMPATIBLE_VERSION, IO_FAILURE, Result};
use crate::netconf::NetConf;
use crate::version::{self, Version};

/// One invocation, with the parts every command needs already checked.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub env: CniEnv,
    /// The configuration bytes exactly as received (passed on to delegated plugins).
    pub stdin: Vec<u8>,
    pub conf: NetConf,
    pub version: Version,
}

impl Invocation {
    /// The configuration's `cniVersion` string.
    pub fn cni_version(&self) -> &str {
        self.conf.cni_version.as_deref().unwrap_or(version::LATEST)
    }

    /// Reads a process environment variable (kept behind one function so that commands do
    /// not reach for the environment in several places).
    pub fn env_var(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Runs `handler` for this process's invocation and returns the exit status. The handler
/// returns the text to print on success (`None` for commands without output).
pub fn main<F, Fut>(handler: F) -> ExitCode
where
    F: FnOnce(Invocation) -> Fut,
    Fut: Future<Output = Result<Option<String>>>,
{
    let mut printed_version = version::LATEST.to_string();
    let outcome = prepare().and_then(|prepared| match prepared {
        Prepared::Done(text) => Ok(Some(text)),
        Prepared::Run(inv) => {
            printed_version = inv.cni_version().to_string();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    CniError::new(IO_FAILURE, "cannot start the runtime", e.to_string())
                })?;
            let command = inv.env.command;
            let out = runtime.block_on(handler(*inv));
            if let Err(e) = &out {
                tracing::error!(?command, code = e.code, error = %e, "command failed");
            }
            out
        }
    });
    let mut stdout = std::io::stdout().lock();
    match outcome {
        Ok(text) => {
            if let Some(text) = text {
                let _ = writeln!(stdout, "{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(stdout, "{}", e.to_json(&printed_version));
            ExitCode::FAILURE
        }
    }
}

enum Prepared {
    /// Answered without running a command (VERSION).
    Done(String),
    Run(Box<Invocation>),
}

fn prepare() -> Result<Prepared> {
    let env = CniEnv::from_process()?;
    let mut stdin = Vec::new();
    std::io::stdin().read_to_end(&mut stdin).map_err(|e| {
        CniError::new(
            IO_FAILURE,
            "cannot read the configuration from stdin",
            e.to_string(),
        )
    })?;
    if env.command == Command::Version {
        // VERSION may come with only `{"cniVersion": ...}`, or nothing at all.
        let asked = NetConf::parse(&stdin)
            .ok()
            .and_then(|c| c.cni_version)
            .filter(|v| version::SUPPORTED.contains(&v.as_str()))
            .unwrap_or_else(|| version::LATEST.to_string());
        return Ok(Prepared::Done(version::version_result(&asked)));
    }
    let conf = NetConf::parse(&stdin)?;
    let version = version::require_supported(conf.cni_version()?)?;
    let needs = match env.command {
        Command::Check => Some(Version(0, 4, 0)),
        Command::Gc | Command::Status => Some(Version(1, 1, 0)),
        _ => None,
    };
    if let Some(min) = needs
        && version < min
    {
        return Err(CniError::new(
            INCOMPATIBLE_VERSION,
            format!("{:?} needs a newer cniVersion", env.command),
            format!(
                "cniVersion {} is older than {}.{}.{}, which introduced it",
                conf.cni_version()?,
                min.0,
                min.1,
                min.2
            ),
        ));
    }
    let level = conf.log_level(Invocation::env_var);
    if let Err(e) = config::settings::init_tracing(&level) {
        eprintln!("logging setup failed: {e}");
    }
    Ok(Prepared::Run(Box::new(Invocation {
        env,
        stdin,
        conf,
        version,
    })))
}
