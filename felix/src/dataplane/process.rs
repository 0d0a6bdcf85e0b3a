//! Running a tool with a (possibly large) input on stdin.
//!
//! The input is written while the child is waited for, not before: a tool
//! that rejects an early line exits without reading the rest, and a writer
//! that waits for the whole input to be taken would then fail with EPIPE and
//! lose the exit status and stderr, which name the offending line (and, when
//! the pipe buffer is full on both sides, deadlock on stdout/stderr).

use std::io::ErrorKind;
use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Spawns `cmd` with `input` on stdin (closed afterwards) and collects its
/// exit status, stdout and stderr. A broken pipe while writing is not an
/// error: the tool stopped reading, and its exit status and stderr say why.
/// Other write errors are returned only when the tool reported success (its
/// own failure report is the more useful one).
pub async fn output_with_input(mut cmd: Command, input: &[u8]) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let write = async move {
        let result = stdin.write_all(input).await;
        // Dropping stdin closes the pipe: the tool sees end of input.
        drop(stdin);
        match result {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    };
    let (written, output) = tokio::join!(write, child.wait_with_output());
    let output = output?;
    if output.status.success() {
        written?;
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `head -c 1` reads one byte and exits 3 with a message, long before a
    /// 16 MiB input (far beyond any pipe buffer) is written.
    #[tokio::test]
    async fn early_exit_keeps_status_and_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "head -c 1 >/dev/null; echo 'line 1 failed' >&2; exit 3",
        ]);
        let input = vec![b'x'; 16 << 20];
        let out = output_with_input(cmd, &input).await.expect("ran");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "line 1 failed");
    }

    #[tokio::test]
    async fn whole_input_reaches_a_reading_tool() {
        let mut cmd = Command::new("wc");
        cmd.arg("-c");
        let input = vec![b'y'; 1 << 20];
        let out = output_with_input(cmd, &input).await.expect("ran");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1048576");
    }
}

/// Stand-in tools for error-path tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// A stand-in tool at a fresh path that reads one line, rejects it the
    /// way the real tools do and exits; `ETXTBSY` (a concurrent test's fork
    /// still holding the script's write descriptor) is retried.
    pub fn rejecting_tool(dir: &std::path::Path, stderr: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("tool");
        let script = format!("#!/bin/sh\nhead -n 1 >/dev/null\necho '{stderr}' >&2\nexit 2\n");
        std::fs::write(&path, script).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.to_string_lossy().into_owned()
    }

    pub fn is_text_busy(e: &std::io::Error) -> bool {
        e.raw_os_error() == Some(26)
    }
}
