//! Named network namespaces owned by one run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::cmd::{self, Result, output, run, stdout};
use crate::name::unique;
use crate::proc::Proc;

/// Namespaces of this process not yet removed (for [`cleanup_on_signal`]).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<String>> {
    // A panic while holding the lock must not stop later cleanups.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A named network namespace (`ip netns add`) with its loopback up; removed on drop,
/// also while a test panics, after killing what still runs inside.
pub struct Netns {
    /// The namespace's name (read it; Drop removes the namespace of this name).
    pub name: String,
}

impl Netns {
    /// Creates the namespace `name` (the caller puts the run's prefix in it).
    pub fn create(name: &str) -> Result<Netns> {
        // Registered before it exists: a signal between the two steps must not leave it
        // behind (removing a missing namespace is harmless).
        live().push(name.to_string());
        if let Err(e) = run(Command::new("ip").args(["netns", "add", name])) {
            // Not ours (it may exist already): never remove it.
            live().retain(|n| n != name);
            return Err(e);
        }
        let ns = Netns {
            name: name.to_string(),
        };
        ns.try_ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates a namespace named [`unique`]`(tag)`; panics when it cannot.
    pub fn new(tag: &str) -> Netns {
        Netns::create(&unique(tag)).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/<name>` (for CNI_NETNS, or to enter it with setns).
    pub fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which execs
    /// it: the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// argv that runs `cmd` inside the namespace.
    pub fn exec_argv<'a>(&'a self, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(cmd);
        v
    }

    /// Runs `argv` inside the namespace; its stdout, or an error with its stderr.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        run(self.command(argv[0]).args(&argv[1..])).map(stdout)
    }

    /// Runs `argv` inside the namespace; its stdout; panics when it fails.
    pub fn exec(&self, argv: &[&str]) -> String {
        self.run(argv).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `argv` inside the namespace; whether it succeeded.
    pub fn try_exec(&self, argv: &[&str]) -> bool {
        cmd::try_sh(&self.exec_argv(argv))
    }

    /// stdout then stderr of `argv` run inside the namespace, success or not.
    pub fn output(&self, argv: &[&str]) -> String {
        output(&self.exec_argv(argv))
    }

    /// `ip -n <name> ARGS`; its stdout, or an error with its stderr.
    pub fn try_ip(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args)).map(stdout)
    }

    /// `ip -n <name> ARGS`; its stdout; panics when it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets a sysctl inside the namespace (`sysctl -qw key=value`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run(&["sysctl", "-qw", &format!("{key}={value}")])
            .map(drop)
    }

    /// A veth pair: `dev` here, `peer_dev` in `peer` (both still down).
    pub fn veth_to(&self, dev: &str, peer: &Netns, peer_dev: &str) -> Result<()> {
        self.try_ip(&[
            "link", "add", dev, "type", "veth", "peer", "name", peer_dev, "netns", &peer.name,
        ])
        .map(drop)
    }

    /// Adds `cidr` (`addr/len`) to `dev`, then sets `dev` up.
    pub fn addr_up(&self, dev: &str, cidr: &str) -> Result<()> {
        self.try_ip(&["addr", "add", cidr, "dev", dev])?;
        self.try_ip(&["link", "set", dev, "up"]).map(drop)
    }

    /// Starts a long-running `argv` inside the namespace, stdout and stderr to `log`.
    pub fn spawn(&self, argv: &[&str], log: &Path) -> Proc {
        let f = std::fs::File::create(log).expect("log file");
        let mut cmd = self.command(argv[0]);
        cmd.args(&argv[1..])
            .stdout(f.try_clone().expect("dup log"))
            .stderr(f);
        Proc::spawn(cmd, log).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Netns::spawn`], with stdout piped back (stderr to `log`).
    pub fn spawn_piped(&self, argv: &[&str], log: &Path) -> (Proc, std::process::ChildStdout) {
        let f = std::fs::File::create(log).expect("log file");
        let mut cmd = self.command(argv[0]);
        cmd.args(&argv[1..]).stdout(Stdio::piped()).stderr(f);
        let mut p = Proc::spawn(cmd, log).unwrap_or_else(|e| panic!("{e}"));
        let out = p.take_stdout().expect("piped stdout");
        (p, out)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.name);
        live().retain(|n| n != &self.name);
    }
}

/// Kills whatever still runs in namespace `name` (daemons that forked, a client stuck on a
/// socket), then deletes it. `ip netns del` only unmounts the name: a process left inside
/// would keep the namespace (and its veths) alive unnamed.
pub fn remove_netns(name: &str) {
    let pids = output(&["ip", "netns", "pids", name]);
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    let path = Path::new("/run/netns").join(name);
    for attempt in 0..20 {
        let st = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        if !path.exists() {
            return;
        }
        if attempt == 19 {
            eprintln!("netns {name}: not removed ({st:?})");
        }
        // A just-killed process may still hold the mount.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// On SIGINT, SIGTERM or SIGHUP: removes every live namespace of this process (killing
/// what runs in them), then exits 130. Call once at the start of a program that creates
/// namespaces; Drop does not run when a signal kills the process.
pub fn cleanup_on_signal() {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("signal runtime");
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        });
        let names: Vec<String> = live().clone();
        for n in &names {
            remove_netns(n);
        }
        eprintln!("signal: removed {} namespace(s), exiting", names.len());
        std::process::exit(130);
    });
}
