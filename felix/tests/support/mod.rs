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

/// [`in_netns`] runs a closure on a thread in a new anonymous namespace;
/// [`on_thread_after`] after any other way in.
#[allow(unused_imports)] // as dead_code above
pub use netns_kit::{in_new_netns as in_netns, on_thread_after};

/// Runs a command (in the calling thread's namespace), panicking with its
/// stderr on failure; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    netns_kit::sh(&[&[program], args].concat())
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
