//! The control socket: BIRD's CLI protocol on a Unix socket, so that
//! `birdc -s SOCK show protocols` and `calicoctl node status` work against
//! bgpd as they do against BIRD.

pub mod command;
pub mod format;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::daemon::DaemonHandle;
use command::{Command, parse};

/// Bind `path` (replacing a stale socket file) and serve until aborted.
pub fn serve(path: &Path, daemon: DaemonHandle) -> io::Result<JoinHandle<()>> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    let path: PathBuf = path.to_owned();
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    let d = daemon.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session(s, d).await {
                            debug!(error = %e, "control connection ended");
                        }
                    });
                }
                Err(e) => {
                    warn!(socket = %path.display(), error = %e, "control accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn session(s: UnixStream, daemon: DaemonHandle) -> io::Result<()> {
    let (r, mut w) = s.into_split();
    w.write_all(format::greeting().as_bytes()).await?;
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match parse(&line) {
            Ok(Command::Quit) => return Ok(()),
            Ok(Command::Nothing) => continue,
            Ok(c) => answer(c, &daemon).await,
            Err(e) => format::error(9001, &e.to_string()),
        };
        w.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

async fn answer(c: Command, daemon: &DaemonHandle) -> String {
    let now = SystemTime::now();
    let Some(report) = daemon.status().await else {
        return format::error(8002, "Daemon is shutting down");
    };
    match c {
        Command::ShowStatus => format::status(&report, &hostname(), now),
        Command::ShowProtocols { all, name } => {
            format::protocols(&report, all, name.as_deref(), now)
                .unwrap_or_else(|| format::error(8003, "No protocols match"))
        }
        Command::ShowRoute { count: true, .. } => format::route_count(&report),
        Command::ShowRoute { for_ip, all, .. } => match daemon.routes(for_ip).await {
            Some(v) if v.is_empty() && for_ip.is_some() => format::error(8001, "Network not found"),
            Some(v) => format::routes(&v, all, now),
            None => format::error(8002, "Daemon is shutting down"),
        },
        Command::Quit | Command::Nothing => String::new(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
