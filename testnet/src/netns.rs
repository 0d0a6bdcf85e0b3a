//! Network namespaces owned by one test run: created with `ip netns add`, removed on drop
//! (also when a test panics). Every name carries the run's prefix.

use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

/// `ip ARGS...` in the current namespace.
pub fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args))
}

pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace and brings its loopback up.
    pub fn create(name: &str) -> Result<Netns> {
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs PROGRAM inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs PROGRAM ARGS inside the namespace to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        run(self.command(program).args(args))
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", &["-qw", &format!("{key}={value}")])
            .map(drop)
    }

    /// Path for CNI_NETNS.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside would keep the namespace alive; the owners of daemons
        // stop them first, this is the last resort.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A prefix unique to this process and call, short enough for interface names
/// (15 bytes) to hold it plus a few characters: `tn<pid mod 100000><counter, base 36>`.
pub fn run_prefix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut counter = String::new();
    loop {
        counter.insert(0, char::from_digit(n % 36, 36).expect("digit below 36"));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    format!("tn{}{counter}", std::process::id() % 100_000)
}

#[cfg(test)]
mod tests {
    use super::run_prefix;

    #[test]
    fn prefixes_never_repeat_and_stay_short() {
        let all: std::collections::BTreeSet<String> = (0..2000).map(|_| run_prefix()).collect();
        assert_eq!(all.len(), 2000);
        // Fabric-side veth names are `<prefix>v<n>`: must fit IFNAMSIZ - 1 = 15 bytes.
        assert!(
            all.iter().all(|p| p.len() + 3 <= 15),
            "{:?}",
            all.iter().max_by_key(|p| p.len())
        );
    }
}
