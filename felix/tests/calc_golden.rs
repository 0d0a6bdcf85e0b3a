//! Golden tests of the calculation: each `tests/golden/calc/<name>.yaml` scenario (on
//! top of `common.yaml`) is calculated for node1 and rendered exactly as the dataplane
//! would send it to an empty kernel: `iptables-restore` input for raw, mangle, filter and nat,
//! `ipset restore` input, routes and neighbours. The result is compared with
//! `<name>.txt`; `UPDATE_GOLDEN=1` rewrites the files (review the diff like code).

use std::fmt::Write;
use std::path::PathBuf;

use config::model::parse_documents;
use felix::calc::routes::{NeighborKind, RouteSpec};
use felix::calc::{CalcConfig, CalcInput, Calculator, DesiredState, Update};
use felix::dataplane::ipsets::{SavedSets, render_update};
use felix::dataplane::iptables::{parse_save, render_restore};

const SCENARIOS: &[&str] = &[
    "no_policy",
    "default_deny",
    "allow_from_selector",
    "deny_port_range",
    "nets_not_nets",
    "namespace_selector",
    "icmp",
    "log_then_allow",
    "pass_to_profiles",
    "egress_only",
    "gnp_np_ordering",
    "long_names",
    "nat_outgoing",
    "invalid_rule",
    "service_accounts",
    "network_sets",
    "tiers",
    "host_endpoints",
    "host_endpoint_all_interfaces",
    "overlay_vxlan",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/calc")
}

fn load(name: &str) -> Vec<Update> {
    let path = dir().join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_documents(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|r| Update::from_resource(r).expect("scenario holds only kinds felix uses"))
        .chain(remote_blocks(name))
        .collect()
}

/// Other nodes' block affinities (IPAM keys, not resources) a scenario names.
fn remote_blocks(name: &str) -> Vec<Update> {
    let blocks: &[(&str, &str)] = match name {
        "overlay_vxlan" => &[
            ("node2", "10.70.1.0/26"),
            ("node3", "10.70.2.0/26"),
            ("node4", "10.70.3.0/26"),
            ("node2", "10.65.5.0/26"),
        ],
        _ => &[],
    };
    blocks
        .iter()
        .map(|(node, block)| Update::RemoteBlockConfirmed {
            node: node.to_string(),
            block: block.parse().unwrap(),
        })
        .collect()
}

/// The scenario's desired state, fed as updates (common first) to a calculator.
pub fn calculate(name: &str) -> DesiredState {
    let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
    calc.apply(Update::BlockAffinityConfirmed(
        "10.65.79.0/26".parse().unwrap(),
    ));
    for u in load("common").into_iter().chain(load(name)) {
        calc.apply(u);
    }
    calc.desired()
}

fn render(state: &DesiredState) -> String {
    let mut s = String::new();
    for table in [&state.raw, &state.mangle, &state.filter, &state.nat] {
        table
            .validate()
            .unwrap_or_else(|e| panic!("invalid table: {e}"));
        let empty = parse_save(table.table, "").unwrap();
        writeln!(s, "# iptables-restore --noflush ({})", table.table).unwrap();
        s.push_str(&render_restore(table, &empty));
    }
    felix::calc::desired::ipsets::validate_all(&state.ipsets).unwrap();
    writeln!(s, "# ipset restore").unwrap();
    s.push_str(&render_update(&state.ipsets, &SavedSets::new()));
    writeln!(s, "# routes").unwrap();
    for r in &state.routes {
        match r {
            RouteSpec::Workload { dst, ifname } => {
                writeln!(s, "{dst} dev {ifname} scope link proto 80")
            }
            RouteSpec::Blackhole { dst } => writeln!(s, "blackhole {dst} proto 80"),
            RouteSpec::Tunnel {
                dst,
                gateway,
                ifname,
            } => writeln!(s, "{dst} via {gateway} dev {ifname} onlink proto 80"),
            RouteSpec::Via { dst, gateway } => writeln!(s, "{dst} via {gateway} proto 80"),
        }
        .unwrap();
    }
    writeln!(s, "# neighbours").unwrap();
    for n in &state.neighbors {
        let mac: Vec<String> = n.mac.iter().map(|b| format!("{b:02x}")).collect();
        let mac = mac.join(":");
        match n.kind {
            NeighborKind::Arp => {
                writeln!(s, "{} lladdr {mac} dev {} nud permanent", n.ip, n.ifname)
            }
            NeighborKind::Fdb => {
                writeln!(s, "fdb {mac} dst {} dev {} self permanent", n.ip, n.ifname)
            }
        }
        .unwrap();
    }
    writeln!(s, "# sysctl interfaces: {}", state.interfaces.join(" ")).unwrap();
    writeln!(s, "# errors").unwrap();
    for e in &state.errors {
        writeln!(s, "{e}").unwrap();
    }
    s
}

#[test]
fn golden_scenarios() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failed = Vec::new();
    for name in SCENARIOS {
        let actual = render(&calculate(name));
        let path = dir().join(format!("{name}.txt"));
        if update {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
        if expected != actual {
            eprintln!("--- {name}: expected\n{expected}\n--- {name}: actual\n{actual}");
            failed.push(*name);
        }
    }
    assert!(
        failed.is_empty(),
        "scenarios differ from their golden files: {failed:?} (UPDATE_GOLDEN=1 regenerates)"
    );
}

/// The scenarios must not depend on the order updates arrive in: the reverse order
/// gives the same state.
#[test]
fn update_order_does_not_matter() {
    for name in SCENARIOS {
        let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
        let mut updates: Vec<Update> = load("common").into_iter().chain(load(name)).collect();
        updates.reverse();
        for u in updates {
            calc.apply(u);
            // Recalculate after every update to exercise the incremental paths.
            calc.recalculate();
        }
        calc.apply(Update::BlockAffinityConfirmed(
            "10.65.79.0/26".parse().unwrap(),
        ));
        assert_eq!(calc.desired(), calculate(name), "{name}");
    }
}
