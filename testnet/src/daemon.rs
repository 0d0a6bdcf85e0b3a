//! Long-running processes of a test cluster (etcd, felix, bgpd), each in a namespace,
//! with its output in a log file; stopped with SIGTERM (then SIGKILL) on drop.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use netns_kit::Proc;

pub struct Daemon {
    name: String,
    proc: Proc,
}

impl Daemon {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> Result<Daemon> {
        let proc = Proc::spawn_logged(cmd, log).with_context(|| format!("cannot start {name}"))?;
        Ok(Daemon {
            name: name.to_string(),
            proc,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.proc.log_tail(lines)
    }

    /// Everything in its log file (which a restarted daemon appends to).
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Resident memory now and at its peak (VmRSS, VmHWM), in KiB, while running.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.id()?)).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// SIGKILL, as a crash would: no clean-up of any kind; waits for the exit.
    pub fn kill(&mut self) {
        self.proc.signal("KILL");
        self.proc.wait_exit(Duration::from_secs(10));
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL. `ip netns exec` execs the program,
    /// so the signal reaches it directly.
    pub fn stop(&mut self, grace: Duration) {
        self.proc.stop(grace);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Polls `ready` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let every = Duration::from_millis(50);
    netns_kit::poll(timeout, every, || {
        if ready() { Ok(()) } else { Err(String::new()) }
    })
    .map_err(|_| anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"))
}
