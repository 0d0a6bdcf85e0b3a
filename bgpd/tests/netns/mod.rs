//! Throwaway network namespaces and processes for interop tests. Every
//! name carries a per-run prefix; everything is removed on Drop, also when
//! a test panics. Nothing here sends from the root namespace.
//!
//! Drop does not run when the process is killed by a signal (Ctrl-C, a
//! harness timeout): [`cleanup_on_signal`] removes the live namespaces
//! then, and [`sweep_stale`] removes what a SIGKILLed earlier run left.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Namespaces of this process not yet removed (for the signal handler).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A short unique name for this process, `<tag><pid>x<n>` (link names are
/// limited to 15 bytes; pids are below 2^22, 7 digits).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}

pub fn run(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Output of a command, success or not.
pub fn output(cmd: &[&str]) -> String {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        // Registered before it exists: a signal between the two steps must
        // not leave it behind (removing a missing namespace is harmless).
        live().push(name.clone());
        let ns = Netns { name };
        run(&["ip", "netns", "add", &ns.name]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// argv to run `cmd` inside the namespace.
    pub fn exec_argv<'a>(&'a self, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(cmd);
        v
    }

    pub fn output(&self, cmd: &[&str]) -> String {
        output(&self.exec_argv(cmd))
    }

    /// Start a long-running process inside the namespace.
    pub fn spawn(&self, cmd: &[&str], log: &Path) -> Proc {
        let f = std::fs::File::create(log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup log"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc {
            child: Some(child),
            log: log.to_owned(),
        }
    }

    /// Like [`Netns::spawn`], with stdout piped back (stderr to `log`).
    pub fn spawn_piped(&self, cmd: &[&str], log: &Path) -> (Proc, std::process::ChildStdout) {
        let f = std::fs::File::create(log).expect("log file");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let p = Proc {
            child: Some(child),
            log: log.to_owned(),
        };
        (p, out)
    }

    /// Routes of protocol bgp (186) in the main table.
    pub fn bgp_routes(&self, v6: bool) -> String {
        let fam = if v6 { "-6" } else { "-4" };
        self.ip(&[fam, "route", "show", "proto", "bgp"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.name);
        live().retain(|n| n != &self.name);
    }
}

fn live() -> std::sync::MutexGuard<'static, Vec<String>> {
    // A panic while holding the lock must not stop later cleanups.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kill whatever still runs in namespace `name` (daemons that forked, a
/// `birdc` stuck on a socket), then delete it. `ip netns del` only
/// unmounts the name: a process left inside would keep the namespace
/// (and its veth) alive unnamed.
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
        // Retry back-off: a just-killed process may still hold the mount.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// On SIGINT, SIGTERM or SIGHUP: remove every live namespace (killing what
/// runs in them), then exit 130. Call once at the start of a program that
/// creates namespaces.
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

/// Remove namespaces named `<tag><pid>x<n>` (see [`unique`]) for any of
/// `tags` whose creating process no longer runs: left by a run that was
/// SIGKILLed, where no handler can clean up.
pub fn sweep_stale(tags: &[&str]) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return removed;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = tags.iter().find_map(|t| owner_pid(&name, t)) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_netns(&name);
            removed.push(name);
        }
    }
    removed
}

/// The pid in `<tag><pid>x<n>`, if `name` has that form.
fn owner_pid(name: &str, tag: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(tag)?.split_once('x')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// A veth pair between two namespaces with IPv4 /24 and IPv6 /64 addresses
/// `<v4net>.1`/`.2` and `<v6net>::1`/`::2`.
pub fn link(a: &Netns, b: &Netns, v4net: &str, v6net: &str) {
    let (ea, eb) = (unique("va"), unique("vb"));
    run(&[
        "ip", "link", "add", &ea, "netns", &a.name, "type", "veth", "peer", "name", &eb, "netns",
        &b.name,
    ]);
    for (ns, dev, host) in [(a, &ea, "1"), (b, &eb, "2")] {
        ns.ip(&["addr", "add", &format!("{v4net}.{host}/24"), "dev", dev]);
        ns.ip(&[
            "addr",
            "add",
            &format!("{v6net}::{host}/64"),
            "dev",
            dev,
            "nodad",
        ]);
        ns.ip(&["link", "set", dev, "up"]);
    }
}

pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `ip netns exec` execs the command, so the child pid is the daemon's.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
    }

    /// Wait for exit (up to `t`); true if it exited.
    pub fn wait_exit(&mut self, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        let c = self.child.as_mut().expect("running");
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

/// Poll `f` until it returns Some or `t` passes (then panic with `what`
/// and the last value seen).
pub fn wait_for<T>(what: &str, t: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + t;
    let mut last = String::new();
    while Instant::now() < deadline {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; last seen:\n{last}");
}

/// Wait until `cmd`'s output contains (or with `absent`, lacks) `needle`.
pub fn wait_output(
    what: &str,
    t: Duration,
    needle: &str,
    absent: bool,
    mut cmd: impl FnMut() -> String,
) {
    wait_for(what, t, || {
        let o = cmd();
        if o.contains(needle) != absent {
            Ok(())
        } else {
            Err(o)
        }
    })
}

pub fn bgpd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bgpd")
}

pub fn birdc(sock: &Path, args: &[&str]) -> String {
    let s = sock.to_str().expect("utf-8 path");
    let mut v = vec!["birdc", "-s", s];
    v.extend_from_slice(args);
    output(&v)
}
