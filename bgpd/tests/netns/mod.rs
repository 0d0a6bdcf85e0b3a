//! Throwaway network namespaces and processes for interop tests. Every
//! name carries a per-run prefix; everything is removed on Drop, also when
//! a test panics. Nothing here sends from the root namespace.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short unique prefix for this process (namespace and link names are
/// limited to 15 bytes).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id() % 100_000)
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
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
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

    /// Routes of protocol bgp (186) in the main table.
    pub fn bgp_routes(&self, v6: bool) -> String {
        let fam = if v6 { "-6" } else { "-4" };
        self.ip(&[fam, "route", "show", "proto", "bgp"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
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
