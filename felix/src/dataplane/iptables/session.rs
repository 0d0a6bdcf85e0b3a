//! One long-lived `iptables-nft-restore --noflush --verbose` process that
//! takes every change as another `*table ... COMMIT` block on its stdin.
//!
//! Why: with nf_tables, a restore process that deleted rules waits, when it
//! closes its netlink socket, for the kernel to free them after an RCU grace
//! period (`nft_rcv_nl_event` flushes the destroy work on NETLINK_URELEASE).
//! On a 2-core machine that is ~12 ms of a ~40 ms one-chain change, plus
//! ~3 ms of process start; a process that stays open pays neither, while
//! the kernel frees the old rules in the background.
//!
//! The tool commits each table block at its `COMMIT` line and, in verbose
//! mode, echoes comment lines as it reaches them. A sentinel comment after
//! the block is therefore echoed exactly when the commit succeeded; on a
//! failure the tool prints the error and exits. Line numbers in its errors
//! count every line the process was given, so they are mapped back into the
//! failing block. Another process changing the table between two commits is
//! safe: iptables-nft sends its cached generation with every batch and
//! rebuilds its cache when the kernel refuses a stale one.
//!
//! Only for the nft backend: iptables-legacy-restore holds the xtables lock
//! for its whole life and would lock every other iptables user out.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tracing::{debug, warn};

/// How long the tool may take to echo the first sentinel before persistent
/// mode is given up as unsupported.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// How long one commit may take before the process is killed (a first sync
/// of a large table takes seconds).
const COMMIT_LIMIT: Duration = Duration::from_secs(300);
/// Most stderr kept for an error report (the tail).
const STDERR_KEEP: usize = 64 << 10;

/// Why a session could not apply an input; the session is unusable after it.
#[derive(Debug)]
pub enum SessionError {
    /// Talking to the process failed (it may never have started).
    Io(std::io::Error),
    /// The process ended instead of confirming the commit.
    Exited {
        status: Option<ExitStatus>,
        stderr: String,
        /// The failing line as the tool numbered it, mapped into the input.
        line: Option<usize>,
    },
    /// No confirmation within the limit; the process was killed.
    TimedOut,
}

#[derive(Debug)]
pub struct RestoreSession {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    stderr_done: tokio::task::JoinHandle<()>,
    /// Lines written before the current input (the tool's numbering).
    lines_before: usize,
    commits: u64,
}

impl RestoreSession {
    /// Starts `program --noflush --verbose` and checks it echoes a sentinel
    /// (an iptables that does not echo comments gets [`SessionError`]).
    pub async fn start(program: &str) -> Result<Self, SessionError> {
        let mut child = Command::new(program)
            .args(["--noflush", "--verbose"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(SessionError::Io)?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_done = tokio::spawn(drain_stderr(
            child.stderr.take().expect("stderr is piped"),
            Arc::clone(&stderr),
        ));
        let mut session = Self {
            child,
            stdin,
            stdout,
            stderr,
            stderr_done,
            lines_before: 0,
            commits: 0,
        };
        session.exchange("", HANDSHAKE_LIMIT).await?;
        Ok(session)
    }

    /// Commits `input` (whole `*table ... COMMIT` blocks) and returns once
    /// the tool confirmed it, or why it did not.
    pub async fn apply(&mut self, input: &str) -> Result<(), SessionError> {
        self.exchange(input, COMMIT_LIMIT).await
    }

    /// Writes `input` and a sentinel comment, then reads until the sentinel
    /// comes back (other echoed comments are skipped).
    async fn exchange(&mut self, input: &str, limit: Duration) -> Result<(), SessionError> {
        self.commits += 1;
        let sentinel = format!("# felix-commit {}", self.commits);
        let mut text = String::with_capacity(input.len() + sentinel.len() + 2);
        text.push_str(input);
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&sentinel);
        text.push('\n');
        let input_lines = text.lines().count() - 1;
        let confirmed = tokio::time::timeout(limit, async {
            // A broken pipe means the tool exited: its status and stderr say why.
            self.stdin.write_all(text.as_bytes()).await?;
            self.stdin.flush().await?;
            while let Some(line) = self.stdout.next_line().await? {
                if line == sentinel {
                    return Ok(true);
                }
                debug!(%line, "iptables-restore echoed");
            }
            Ok::<bool, std::io::Error>(false)
        })
        .await;
        match confirmed {
            Ok(Ok(true)) => {
                self.lines_before += input_lines + 1;
                // Whatever it said was about a commit that went through.
                self.stderr.lock().expect("stderr lock").clear();
                Ok(())
            }
            Ok(Ok(false)) | Ok(Err(_)) => Err(self.ended(input_lines).await),
            Err(_) => {
                let _ = self.child.start_kill();
                Err(SessionError::TimedOut)
            }
        }
    }

    /// The process stopped confirming: collects its status and stderr, and
    /// maps the line its error names into the current input.
    async fn ended(&mut self, input_lines: usize) -> SessionError {
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                None
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.stderr_done).await;
        let stderr = self.stderr.lock().expect("stderr lock").trim().to_string();
        let line = super::apply::failed_line(&stderr)
            .and_then(|n| n.checked_sub(self.lines_before))
            .filter(|n| (1..=input_lines).contains(n));
        SessionError::Exited {
            status,
            stderr,
            line,
        }
    }
}

/// Reads the tool's stderr as it comes (so a chatty tool never blocks on a
/// full pipe), logs it, and keeps the tail for an error report.
async fn drain_stderr(stderr: tokio::process::ChildStderr, keep: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        warn!(%line, "iptables-restore said");
        let mut kept = keep.lock().expect("stderr lock");
        kept.push_str(&line);
        kept.push('\n');
        if kept.len() > STDERR_KEEP {
            let mut cut = kept.len() - STDERR_KEEP;
            while !kept.is_char_boundary(cut) {
                cut += 1;
            }
            kept.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::process::test_support::is_text_busy;

    /// A stand-in for `iptables-restore --verbose`: echoes comment lines,
    /// and on a line starting with BAD reports it by its running number the
    /// way iptables-nft does, then exits.
    const FAKE_RESTORE: &str = r#"#!/bin/sh
n=0
while IFS= read -r l; do
  n=$((n+1))
  case "$l" in
    '#'*) echo "$l" ;;
    BAD*) echo "Error occurred at line: $n" >&2; exit 2 ;;
  esac
done
"#;

    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("restore");
        std::fs::write(&path, body).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.to_string_lossy().into_owned()
    }

    async fn start(program: &str) -> Result<RestoreSession, SessionError> {
        loop {
            match RestoreSession::start(program).await {
                Err(SessionError::Io(e)) if is_text_busy(&e) => continue,
                other => return other,
            }
        }
    }

    #[tokio::test]
    async fn commits_confirm_and_errors_name_the_line_of_their_own_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(dir.path(), FAKE_RESTORE);
        let mut session = start(&program).await.expect("handshake");
        for _ in 0..3 {
            // Comments in the input are echoed too and must not confuse it.
            session
                .apply("*filter\n# a comment\n-A x\nCOMMIT\n")
                .await
                .expect("commit");
        }
        match session.apply("*filter\n-A y\nBAD z\nCOMMIT\n").await {
            Err(SessionError::Exited {
                status,
                stderr,
                line,
            }) => {
                assert_eq!(line, Some(3), "{stderr}");
                assert_eq!(status.and_then(|s| s.code()), Some(2));
                // The tool's own (running) number is kept in its message.
                assert_eq!(stderr, "Error occurred at line: 19");
            }
            other => panic!("expected the tool to exit, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_tool_that_does_not_echo_fails_the_handshake() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(dir.path(), "#!/bin/sh\nexit 0\n");
        match start(&program).await {
            Err(SessionError::Exited { status, .. }) => {
                assert_eq!(status.and_then(|s| s.code()), Some(0))
            }
            other => panic!("expected a failed handshake, got {other:?}"),
        }
    }
}
