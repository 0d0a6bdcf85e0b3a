//! bgpd's parts of the interop harness; namespaces, processes and waiting come from
//! `netns_kit` (per-run names, removal on drop and on signals, no traffic from the root
//! namespace).

#![allow(dead_code)]

use std::path::Path;

#[allow(unused_imports)] // the tests and the receive bench use different subsets
pub use netns_kit::{
    Netns, Proc, cleanup_on_signal, output, sweep_stale, unique, wait_for, wait_output,
};

/// Routes of protocol bgp (186) in a namespace's main table.
pub trait BgpRoutes {
    fn bgp_routes(&self, v6: bool) -> String;
}

impl BgpRoutes for Netns {
    fn bgp_routes(&self, v6: bool) -> String {
        let fam = if v6 { "-6" } else { "-4" };
        self.ip(&[fam, "route", "show", "proto", "bgp"])
    }
}

/// A veth pair between two namespaces with IPv4 /24 and IPv6 /64 addresses
/// `<v4net>.1`/`.2` and `<v6net>::1`/`::2`.
pub fn link(a: &Netns, b: &Netns, v4net: &str, v6net: &str) {
    let (ea, eb) = (unique("va"), unique("vb"));
    a.veth_to(&ea, b, &eb).unwrap_or_else(|e| panic!("{e}"));
    for (ns, dev, host) in [(a, &ea, "1"), (b, &eb, "2")] {
        ns.ip(&[
            "addr",
            "add",
            &format!("{v6net}::{host}/64"),
            "dev",
            dev,
            "nodad",
        ]);
        ns.addr_up(dev, &format!("{v4net}.{host}/24"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
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
