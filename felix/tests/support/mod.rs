//! Test support: run test code inside a throwaway network namespace.
//!
//! NEEDS ROOT (CAP_SYS_ADMIN for `unshare(CLONE_NEWNET)`, CAP_NET_ADMIN inside).
//!
//! [`in_netns`] runs a closure on a fresh thread that first moves itself into a
//! new, anonymous network namespace. Everything the closure does lands there:
//! netlink sockets it opens, `/proc/sys/net` files it opens, and child processes
//! it spawns (`ip`, `iptables-restore`, `ipset`), since a child inherits the
//! namespace of the thread that forks it. The namespace has no name and no
//! other holder, so the kernel destroys it, with every veth, route, chain and
//! set inside, when the thread ends: also when the test panics. Nothing is ever
//! created in the root namespace.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, unshare};

/// Runs `f` on a new thread inside a new network namespace, with a
/// current-thread tokio runtime (so every task and every spawned child stays on
/// that thread, in that namespace). Panics in `f` are re-raised here.
pub fn in_netns<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    on_thread_after(
        || {
            unshare(CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET) failed: namespace tests need root")
        },
        f,
    )
}

/// Runs `f` on a new thread, after `enter` (which moves the thread into a
/// namespace), with a current-thread tokio runtime. Panics are re-raised here.
pub fn on_thread_after<E, F, Fut, T>(enter: E, f: F) -> T
where
    E: FnOnce() + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let thread = std::thread::spawn(move || {
        enter();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        rt.block_on(f())
    });
    match thread.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs a command (in the calling thread's namespace), panicking with its
/// stderr on failure; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `ip <args>` split on whitespace.
pub fn ip(args: &str) -> String {
    run("ip", &args.split_whitespace().collect::<Vec<_>>())
}

/// Creates a veth pair `name` <-> `name`-peer-ish (peer named `p<name>` cut to
/// 15 bytes) and sets both ends up.
pub fn veth(name: &str) {
    let peer: String = format!("p{name}").chars().take(15).collect();
    ip(&format!("link add {name} type veth peer name {peer}"));
    ip(&format!("link set {name} up"));
    ip(&format!("link set {peer} up"));
}

/// `ip route show <selector>` lines, trimmed and sorted.
pub fn routes(args: &str) -> Vec<String> {
    sorted_lines(&ip(&format!("route show {args}")))
}

/// `ip -6 route show <selector>` lines, trimmed and sorted.
pub fn routes6(args: &str) -> Vec<String> {
    sorted_lines(&ip(&format!("-6 route show {args}")))
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}
