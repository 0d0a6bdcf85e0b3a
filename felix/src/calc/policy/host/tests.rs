use super::*;
use crate::calc::names::Direction;
use crate::calc::policy::endpoint::TierPlan;

fn plan(dir: Direction, targets: &[&str], profiles: &[&str]) -> EndpointPlan {
    EndpointPlan {
        direction: dir,
        tiers: if targets.is_empty() {
            Vec::new()
        } else {
            vec![TierPlan {
                name: "default".into(),
                targets: targets.iter().map(|t| t.to_string()).collect(),
                default_pass: false,
            }]
        },
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
    }
}

fn hep(interface: &str, untracked: &[&str], forward: &[&str]) -> HostPlans {
    let both = |targets: &[&str], profiles: &[&str]| {
        [
            plan(Direction::Ingress, targets, profiles),
            plan(Direction::Egress, targets, profiles),
        ]
    };
    HostPlans {
        interface: interface.into(),
        normal: both(&[], &[]),
        forward: both(forward, &[]),
        pre_dnat: plan(Direction::Ingress, &[], &[]),
        untracked: both(untracked, &[]),
    }
}

fn rules<'a>(chains: &'a [Chain], name: &str) -> &'a [String] {
    &chains
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no chain {name}"))
        .rules
}

#[test]
fn failsafes_come_before_every_policy_of_a_host_chain() {
    let t = host_tables(&[hep("eth0", &[], &[])], &Failsafes::default());
    let fh = rules(&t.filter, "cali-fh-eth0");
    let failsafe = fh.iter().position(|r| r == "-j cali-failsafe-in").unwrap();
    let clear = fh.iter().position(|r| r.starts_with("-j MARK")).unwrap();
    assert!(failsafe < clear, "{fh:?}");
    // No policy and no profile: everything else is dropped (Calico's default for
    // a host endpoint).
    assert_eq!(
        fh.last().unwrap(),
        "-m comment --comment \"Drop if no profiles matched\" -j DROP"
    );
    assert_eq!(rules(&t.filter, "cali-th-eth0")[2], "-j cali-failsafe-out");
    let fs = rules(&t.filter, "cali-failsafe-in");
    assert_eq!(fs[0], "-p tcp -m tcp --dport 22 -j ACCEPT");
    assert_eq!(fs.len(), 9);
}

#[test]
fn raw_failsafes_also_accept_the_replies_of_the_other_direction() {
    let f = Failsafes {
        inbound: parse_failsafe_list("tcp:22").unwrap(),
        outbound: parse_failsafe_list("udp:192.0.2.0/24:53").unwrap(),
    };
    let [fin, fout] = f.chains(Table::Raw);
    assert_eq!(
        *fin.rules,
        [
            "-p tcp -m tcp --dport 22 -j ACCEPT",
            "-p udp -m udp -s 192.0.2.0/24 --sport 53 -j ACCEPT",
        ]
    );
    assert_eq!(
        *fout.rules,
        [
            "-p udp -m udp -d 192.0.2.0/24 --dport 53 -j ACCEPT",
            "-p tcp -m tcp --sport 22 -j ACCEPT",
        ]
    );
    let [fin, _] = f.chains(Table::Filter);
    assert_eq!(fin.rules.len(), 1);
}

#[test]
fn forward_chains_allow_by_default_only_without_policies() {
    let t = host_tables(
        &[hep("eth0", &[], &[]), hep("eth1", &[], &["cali-pi-fw"])],
        &Failsafes::default(),
    );
    let open = rules(&t.filter, "cali-fhfw-eth0");
    assert!(
        open.iter()
            .any(|r| r.contains("Allow forwarded traffic by default")),
        "{open:?}"
    );
    let policed = rules(&t.filter, "cali-fhfw-eth1");
    assert!(!policed.iter().any(|r| r.contains("by default")));
    assert!(
        policed
            .iter()
            .any(|r| r.contains("Drop if no policies passed"))
    );
    // Forward chains have no failsafes and no profiles.
    assert!(
        !policed
            .iter()
            .any(|r| r.contains("failsafe") || r.contains("profiles"))
    );
}

#[test]
fn untracked_allows_are_notrack_and_undecided_traffic_goes_on() {
    let t = host_tables(&[hep("eth0", &["cali-pi-dns"], &[])], &Failsafes::default());
    let fh = rules(&t.raw, "cali-fh-eth0");
    assert!(!fh.iter().any(|r| r.contains("conntrack")), "{fh:?}");
    let jump = fh
        .iter()
        .position(|r| r.ends_with("-j cali-pi-dns"))
        .unwrap();
    assert_eq!(fh[jump + 1], "-m mark --mark 0x10000/0x10000 -j NOTRACK");
    assert!(!fh.iter().any(|r| r.contains("DROP")), "{fh:?}");
    let pre = rules(&t.mangle, "cali-fh-eth0");
    assert!(!pre.iter().any(|r| r.contains("Drop if no")), "{pre:?}");
}

#[test]
fn the_all_interfaces_endpoint_takes_what_named_ones_do_not_except_workloads() {
    let t = host_tables(
        &[hep("*", &[], &[]), hep("eth1", &[], &[])],
        &Failsafes::default(),
    );
    assert_eq!(
        rules(&t.filter, "cali-from-host-endpoint"),
        [
            "-i eth1 -g cali-fh-eth1",
            "-i cali+ -m comment --comment \"Workload interface: not a host endpoint\" -j RETURN",
            "-g cali-fh-any",
        ]
    );
    assert_eq!(rules(&t.raw, "cali-to-host-endpoint")[2], "-g cali-th-any");
    assert_eq!(
        rules(&t.filter, "cali-to-hep-forward")[2],
        "-g cali-thfw-any"
    );
}

#[test]
fn without_host_endpoints_the_dispatch_chains_return_everything() {
    let t = host_tables(&[], &Failsafes::default());
    for name in [
        "cali-from-host-endpoint",
        "cali-to-host-endpoint",
        "cali-from-hep-forward",
        "cali-to-hep-forward",
    ] {
        assert!(rules(&t.filter, name).is_empty(), "{name}");
    }
    let names: Vec<&str> = t.raw.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cali-from-host-endpoint",
            "cali-to-host-endpoint",
            "cali-failsafe-in",
            "cali-failsafe-out",
            "cali-PREROUTING",
            "cali-OUTPUT"
        ]
    );
}

#[test]
fn failsafe_entries_round_trip_and_bad_ones_say_why() {
    for s in [
        "tcp:22",
        "udp:68",
        "tcp:10.0.0.0/8:2379",
        "udp:192.0.2.1/32:53",
    ] {
        assert_eq!(s.parse::<FailsafePort>().unwrap().to_string(), s);
    }
    assert_eq!(
        "TCP:10.1.2.3:22"
            .parse::<FailsafePort>()
            .unwrap()
            .to_string(),
        "tcp:10.1.2.3/32:22"
    );
    let e = "icmp:22".parse::<FailsafePort>().unwrap_err();
    assert!(e.contains("not tcp or udp"), "{e}");
    assert!(parse_failsafe_list("none").unwrap().is_empty());
    assert!(parse_failsafe_list("tcp:22,,udp:53").is_err());
}
