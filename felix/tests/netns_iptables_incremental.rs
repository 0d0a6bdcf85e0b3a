//! After the first sync, a policy change costs exactly one commit holding
//! only the changed chains, in the `iptables-restore` process the first sync
//! started, and no `iptables-save`: the real tools are wrapped by scripts
//! that log every run and its input. The rules use no
//! ipsets (this is about iptables alone). NEEDS ROOT (see `support`).

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use config::model::{
    Action, EntityRule, NetworkPolicy, NetworkPolicySpec, ObjectMeta, Port, Protocol, Rule,
    WorkloadEndpoint, WorkloadEndpointSpec,
};
use felix::calc::desired::Family;
use felix::calc::desired::iptables::DesiredTable;
use felix::calc::{CalcConfig, CalcInput, Calculator, Update};
use felix::dataplane::iptables::{Backend, Iptables};
use support::in_netns;

const NODE: &str = "node1";

fn wep(i: usize) -> Update {
    let mut metadata = ObjectMeta {
        name: format!("{NODE}-k8s-p{i}-eth0"),
        namespace: Some("ns".into()),
        ..ObjectMeta::default()
    };
    metadata
        .labels
        .insert("app".into(), format!("app{}", i % 5));
    Update::WepSet(WorkloadEndpoint {
        metadata,
        spec: WorkloadEndpointSpec {
            node: NODE.into(),
            orchestrator: "k8s".into(),
            pod: format!("p{i}"),
            endpoint: "eth0".into(),
            ip_networks: vec![format!("10.65.0.{}/32", i + 1)],
            interface_name: format!("calitest{i:05}"),
            ..WorkloadEndpointSpec::default()
        },
    })
}

fn policy(i: usize, port: u16) -> Update {
    let mut p = NetworkPolicy::named(
        format!("pol-{i}"),
        NetworkPolicySpec {
            selector: format!("app == 'app{}'", i % 5),
            ingress: vec![Rule {
                action: Action::Allow,
                protocol: Some(Protocol::Tcp),
                destination: EntityRule {
                    ports: vec![Port::Number(port)],
                    ..EntityRule::default()
                },
                ..Rule::default()
            }],
            ..NetworkPolicySpec::default()
        },
    );
    p.metadata.namespace = Some("ns".into());
    Update::NetworkPolicySet(p)
}

/// A script that logs `<what> <args>` (and for restore, its input) to `log`,
/// then runs `program`.
fn wrapper(dir: &Path, what: &str, program: &str, log: &Path) -> String {
    let path = dir.join(what);
    let log = log.display();
    let body = if what == "restore" {
        format!("#!/bin/sh\necho \"restore $*\" >> {log}\ntee -a {log} | {program} \"$@\"\n")
    } else {
        format!("#!/bin/sh\necho \"save $*\" >> {log}\nexec {program} \"$@\"\n")
    };
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Names of chains whose rules differ between two desired tables.
fn changed_chains(before: &DesiredTable, after: &DesiredTable) -> BTreeSet<String> {
    let rules = |t: &DesiredTable| -> Vec<(String, Vec<String>)> {
        t.chains
            .iter()
            .map(|c| (c.name.clone(), c.rules.to_vec()))
            .collect()
    };
    let (b, a) = (rules(before), rules(after));
    a.iter()
        .filter(|c| !b.contains(c))
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
fn one_policy_change_is_one_commit_of_only_its_chain() {
    in_netns(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        let mut ipt = Iptables::new(Backend::Nft, Family::V4).with_programs(
            &wrapper(dir.path(), "save", "iptables-nft-save", &log),
            &wrapper(dir.path(), "restore", "iptables-nft-restore", &log),
        );
        let mut calc = Calculator::new(CalcInput::new(NODE), CalcConfig::default());
        for i in 0..40 {
            calc.apply(wep(i));
        }
        for i in 0..20 {
            calc.apply(policy(i, 8000 + i as u16));
        }
        let before = calc.desired().filter;
        let out = ipt.sync_table(&before).await.unwrap();
        assert_eq!((out.attempts, out.reads), (1, 1), "first sync reads once");
        let first = std::fs::read_to_string(&log).unwrap();
        assert_eq!(first.matches("save ").count(), 1, "{first}");
        assert_eq!(
            first.matches("restore --noflush --verbose").count(),
            1,
            "one long-lived restore: {first}"
        );
        std::fs::write(&log, "").unwrap();

        calc.apply(policy(7, 9999));
        let after = calc.desired().filter;
        let changed = changed_chains(&before, &after);
        assert_eq!(changed.len(), 1, "one policy chain changes: {changed:?}");
        let out = ipt.sync_table(&after).await.unwrap();
        assert_eq!((out.attempts, out.reads), (1, 0), "{out:?}");

        // Only input to the running restore process was logged since.
        let calls = std::fs::read_to_string(&log).unwrap();
        assert!(!calls.contains("save "), "no read-back: {calls}");
        assert!(!calls.contains("restore "), "no new process: {calls}");
        let input: Vec<&str> = calls.lines().collect();
        assert_eq!(
            input.iter().filter(|l| **l == "COMMIT").count(),
            1,
            "{calls}"
        );
        let declared: BTreeSet<String> = input
            .iter()
            .filter_map(|l| l.strip_prefix(':'))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        assert_eq!(declared, changed, "{calls}");
        for line in &input {
            let ok = *line == "*filter"
                || *line == "COMMIT"
                || line.starts_with("# felix-commit ")
                || line.starts_with(':')
                || changed
                    .iter()
                    .any(|c| line.starts_with(&format!("-A {c} ")));
            assert!(ok, "line about another chain: {line}\n{calls}");
        }
        assert!(input.iter().any(|l| l.contains("9999")), "{calls}");

        // The kernel holds the change (read back independently).
        let saved = support::run("iptables-nft-save", &["-t", "filter"]);
        assert!(saved.contains("--dports 9999"), "{saved}");
        assert!(!saved.contains("--dports 8007"), "{saved}");
    });
}
