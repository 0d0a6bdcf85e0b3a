//! ipset sync against the real tool, each test in its own network namespace.
//! NEEDS ROOT (see `support`).

mod support;

use std::collections::BTreeSet;

use felix::calc::desired::Family;
use felix::calc::desired::ipsets::{IpSet, SetMember, SetType};
use felix::dataplane::ipsets::Ipsets;
use support::{in_netns, run};

fn set(name: &str, kind: SetType, members: impl IntoIterator<Item = String>) -> IpSet {
    IpSet {
        name: name.into(),
        kind,
        family: Family::V4,
        members: members.into_iter().map(|m| m.parse().unwrap()).collect(),
    }
}

fn members(name: &str) -> BTreeSet<SetMember> {
    run("ipset", &["save", name])
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("add {name} ")))
        .map(|m| m.parse().unwrap())
        .collect()
}

#[test]
fn create_delta_swap_and_stale_removal() {
    in_netns(|| async {
        run("ipset", &["create", "KUBE-FOREIGN", "hash:ip"]);
        run("ipset", &["add", "KUBE-FOREIGN", "10.1.1.1"]);
        let mut ipsets = Ipsets::new();
        let pools =
            |r: std::ops::Range<u32>| r.map(|i| format!("10.{}.{}.0/24", 100 + i / 256, i % 256));

        // Create.
        let desired = vec![
            set("cali40pools", SetType::HashNet, pools(0..300)),
            set(
                "cali40hosts",
                SetType::HashIp,
                ["10.0.0.1/32".into(), "10.0.0.2/32".into()],
            ),
            set("cali40old", SetType::HashIp, []),
        ];
        let out = ipsets.sync(&desired).await.unwrap();
        assert_eq!(out.plan.create.len(), 3);
        assert_eq!(members("cali40pools"), desired[0].members);
        assert_eq!(members("cali40hosts"), desired[1].members);
        let out = ipsets.sync(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (0, 0), "in sync, from memory");

        // Tampering goes unseen until the refresh, which reads back and repairs.
        run("ipset", &["del", "cali40hosts", "10.0.0.2"]);
        let out = ipsets.sync(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (0, 0));
        ipsets.forget();
        let out = ipsets.sync(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (1, 1));
        assert_eq!(out.plan.delta.len(), 1, "{out:?}");
        assert_eq!(members("cali40hosts"), desired[1].members);

        // A rule uses the pools set across the swap below.
        run(
            "iptables-nft",
            &[
                "-A",
                "FORWARD",
                "-m",
                "set",
                "--match-set",
                "cali40pools",
                "src",
                "-j",
                "ACCEPT",
            ],
        );

        // Small delta on hosts, big change on pools (swap), cali40old dropped.
        let desired = vec![
            set("cali40pools", SetType::HashNet, pools(1000..1300)),
            set(
                "cali40hosts",
                SetType::HashIp,
                ["10.0.0.1/32".into(), "10.0.0.3/32".into()],
            ),
        ];
        let out = ipsets.sync(&desired).await.unwrap();
        assert_eq!(out.plan.swap, ["cali40pools"]);
        assert_eq!(out.plan.delta.len(), 1);
        assert_eq!(members("cali40pools"), desired[0].members);
        assert_eq!(members("cali40hosts"), desired[1].members);
        let names = ipsets.list_names().await.unwrap();
        assert!(
            !names.iter().any(|n| n.starts_with("cali4t")),
            "temporary destroyed: {names:?}"
        );
        assert!(
            names.contains(&"cali40old".to_string()),
            "sync never destroys"
        );
        let save = run("iptables-nft-save", &["-t", "filter"]);
        assert!(
            save.contains("--match-set cali40pools src"),
            "rule still bound: {save}"
        );

        let removed = ipsets.remove_stale(&desired).await.unwrap();
        assert_eq!(removed, ["cali40old"]);
        let names = ipsets.list_names().await.unwrap();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            run("ipset", &["list", "-n"]).contains("KUBE-FOREIGN"),
            "foreign set kept"
        );

        // A stale set still referenced by a rule cannot go: typed error.
        let err = ipsets
            .remove_stale(&desired[1..])
            .await
            .expect_err("cali40pools is in use by a rule");
        assert!(err.to_string().contains("cali40pools"), "{err}");
    });
}

#[test]
fn leftover_temporary_is_cleaned() {
    in_netns(|| async {
        run("ipset", &["create", "cali4tpools", "hash:net"]);
        let desired = vec![set("cali40pools", SetType::HashNet, ["10.9.0.0/16".into()])];
        let out = Ipsets::new().sync(&desired).await.unwrap();
        assert_eq!(out.plan.destroy_temps, ["cali4tpools"]);
        assert_eq!(Ipsets::new().list_names().await.unwrap(), ["cali40pools"]);
        assert!(!run("ipset", &["list", "-n"]).contains("cali4t"));
    });
}

/// Named-port sets (`hash:ip,port`): the members felix writes are what ipset reads
/// back, and a member moving to another port is one del and one add.
#[test]
fn ip_port_sets_round_trip_through_the_real_tool() {
    in_netns(|| async {
        let mut ipsets = Ipsets::new();
        let named = |members: &[&str]| {
            vec![set(
                "cali40n:http",
                SetType::HashIpPort,
                members.iter().map(|m| m.to_string()),
            )]
        };
        let desired = named(&["10.0.0.1,tcp:8080", "10.0.0.2,tcp:9090", "10.0.0.3,udp:53"]);
        ipsets.sync(&desired).await.unwrap();
        assert_eq!(members("cali40n:http"), desired[0].members);
        let desired = named(&["10.0.0.1,tcp:8080", "10.0.0.2,tcp:8080", "10.0.0.3,udp:53"]);
        ipsets.forget();
        let out = ipsets.sync(&desired).await.unwrap();
        let (_, adds, dels) = &out.plan.delta[0];
        assert_eq!((adds.len(), dels.len()), (1, 1), "{out:?}");
        assert_eq!(members("cali40n:http"), desired[0].members);
    });
}
