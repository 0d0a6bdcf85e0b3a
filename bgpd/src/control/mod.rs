//! The control socket: BIRD's CLI protocol on a Unix socket, so that
//! `birdc -s SOCK show protocols` and `calicoctl node status` work against
//! bgpd as they do against BIRD.

pub mod command;
pub mod format;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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
    let mut r = BufReader::new(r);
    loop {
        let line = match read_line(&mut r, MAX_LINE).await? {
            Line::Eof => return Ok(()),
            Line::Text(l) => l,
            Line::TooLong => {
                // A client that never ends its line must not grow the buffer:
                // answer with BIRD's "Command too long" (9000), then hang up.
                let msg = format!("command longer than {MAX_LINE} bytes");
                w.write_all(format::error(9000, &msg).as_bytes()).await?;
                return Ok(());
            }
        };
        let reply = match parse(&line) {
            Ok(Command::Quit) => return Ok(()),
            Ok(Command::Nothing) => continue,
            Ok(c) => answer(c, &daemon).await,
            Err(e) => format::error(9001, &e.to_string()),
        };
        w.write_all(reply.as_bytes()).await?;
    }
}

/// Longest command line accepted (BIRD's own limit is smaller).
const MAX_LINE: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text(String),
    TooLong,
    Eof,
}

/// One line of at most `max` bytes (the newline not counted), read without
/// ever buffering more than `max + 1` bytes of it.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> io::Result<Line> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(max as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > max {
        return Ok(Line::TooLong);
    }
    match String::from_utf8(buf) {
        Ok(s) => Ok(Line::Text(s)),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

async fn answer(c: Command, daemon: &DaemonHandle) -> String {
    let now = SystemTime::now();
    let report = match daemon.status().await {
        Ok(r) => r,
        Err(e) => return format::error(8002, &e.to_string()),
    };
    match c {
        Command::ShowStatus => format::status(&report, &hostname(), now),
        Command::ShowProtocols { all, name } => {
            format::protocols(&report, all, name.as_deref(), now)
                .unwrap_or_else(|| format::error(8003, "No protocols match"))
        }
        Command::ShowBfdSessions => format::bfd_sessions(&report.bfd, now),
        Command::ShowRoute { count: true, .. } => format::route_count(&report),
        Command::ShowRoute { for_ip, all, .. } => match daemon.routes(for_ip).await {
            Ok(v) if v.is_empty() && for_ip.is_some() => format::error(8001, "Network not found"),
            Ok(v) => format::routes(&v, all, now),
            Err(e) => format::error(8002, &e.to_string()),
        },
        Command::Quit | Command::Nothing => String::new(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_up_to_the_limit() {
        let mut r: &[u8] = b"show status\r\nshow protocols\nlast";
        assert_eq!(
            read_line(&mut r, 16).await.unwrap(),
            Line::Text("show status".into())
        );
        assert_eq!(
            read_line(&mut r, 16).await.unwrap(),
            Line::Text("show protocols".into())
        );
        assert_eq!(
            read_line(&mut r, 16).await.unwrap(),
            Line::Text("last".into())
        );
        assert_eq!(read_line(&mut r, 16).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn a_line_without_end_stops_at_the_limit() {
        // Exactly the limit is fine; one more byte before the newline is not.
        let ok = [b'a'; 16].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        assert_eq!(
            read_line(&mut &ok[..], 16).await.unwrap(),
            Line::Text("a".repeat(16))
        );
        let endless = vec![b'x'; 1 << 20];
        let mut r = &endless[..];
        assert_eq!(read_line(&mut r, 16).await.unwrap(), Line::TooLong);
        assert_eq!(r.len(), (1 << 20) - 17, "read past the limit");
    }

    #[tokio::test]
    async fn too_long_command_gets_the_syntax_error_and_a_close() {
        let (handle, _owner, _) = crate::daemon::Daemon::start(crate::daemon::DaemonOptions {
            config: crate::config::Config::parse("asNumber: 64512\nrouterId: 192.0.2.1\n").unwrap(),
            fib: None,
            listener: None,
            stale_sweep_after: std::time::Duration::from_secs(60),
        });
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let served = tokio::spawn(session(ours, handle));
        theirs.write_all(&vec![b'x'; 2 * MAX_LINE]).await.unwrap();
        let mut got = String::new();
        theirs.read_to_string(&mut got).await.unwrap();
        served.await.unwrap().unwrap();
        assert!(got.starts_with(&format::greeting()), "{got}");
        assert!(got.contains("9000"), "{got}");
        assert!(got.contains("command longer than 4096 bytes"), "{got}");
    }
}
