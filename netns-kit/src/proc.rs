//! Long-running processes, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{Error, Result};

/// A spawned process with its log file; killed on drop if still running.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` (stdin closed; the caller points stdout and stderr at `log`).
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Proc> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Error(format!("cannot start {cmd:?}: {e}")))?;
        Ok(Proc {
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Proc> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error(format!("cannot open log {}: {e}", log.display())))?;
        let dup = file
            .try_clone()
            .map_err(|e| Error(format!("log {}: {e}", log.display())))?;
        cmd.stdout(dup).stderr(file);
        Proc::spawn(cmd, log)
    }

    /// The process id while running.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process id; panics once stopped.
    pub fn pid(&self) -> u32 {
        self.id().expect("running")
    }

    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// Sends signal `sig` (a name like `TERM` or `HUP`).
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.id() {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status();
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits up to `t` for it to exit; true if it did.
    pub fn wait_exit(&mut self, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        let c = self.child.as_mut().expect("running");
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; whether it exited 0 within `grace`
    /// (true when it was already stopped).
    pub fn stop(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
