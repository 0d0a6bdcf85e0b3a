use config::model::{Action, EntityRule, IcmpFields, Port, Protocol, Rule};

use super::*;

fn render(rule: &Rule, namespace: Option<&str>) -> Result<RenderedRule, RuleError> {
    render_rule(rule, &RuleContext { namespace })
}

fn tcp_to(ports: Vec<Port>) -> Rule {
    Rule {
        protocol: Some(Protocol::Tcp),
        destination: EntityRule {
            ports,
            ..EntityRule::default()
        },
        ..Rule::default()
    }
}

#[test]
fn allow_sets_mark_then_returns() {
    let r = render(&Rule::default(), None).unwrap();
    assert_eq!(
        r.bodies,
        [
            "-j MARK --set-xmark 0x10000/0x10000",
            "-m mark --mark 0x10000/0x10000 -j RETURN"
        ]
    );
}

#[test]
fn actions() {
    let with = |action| {
        render(
            &Rule {
                action,
                ..Rule::default()
            },
            None,
        )
        .unwrap()
        .bodies
    };
    assert_eq!(with(Action::Deny), ["-j DROP"]);
    assert_eq!(
        with(Action::Log),
        ["-j LOG --log-prefix \"calico-packet: \" --log-level 5"]
    );
    assert_eq!(
        with(Action::Pass),
        [
            "-j MARK --set-xmark 0x20000/0x20000",
            "-m mark --mark 0x20000/0x20000 -j RETURN"
        ]
    );
}

#[test]
fn ports_ranges_and_not_ports() {
    let mut rule = tcp_to(vec![
        Port::Number(80),
        Port::Range(1000, 2000),
        Port::Number(443),
    ]);
    rule.action = Action::Deny;
    rule.destination.not_ports = vec![Port::Number(1500)];
    let r = render(&rule, None).unwrap();
    assert_eq!(
        r.bodies,
        ["-p tcp -m multiport --dports 80,443,1000:2000 -m multiport ! --dports 1500 -j DROP"]
    );
}

#[test]
fn more_than_fifteen_port_slots_split_into_rules() {
    // 14 single ports + one range = 16 slots: two rules with the same action.
    let mut ports: Vec<Port> = (1..=14).map(Port::Number).collect();
    ports.push(Port::Range(100, 200));
    let mut rule = tcp_to(ports);
    rule.action = Action::Deny;
    let r = render(&rule, None).unwrap();
    assert_eq!(
        r.bodies,
        [
            "-p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14 -j DROP",
            "-p tcp -m multiport --dports 100:200 -j DROP"
        ]
    );
}

#[test]
fn named_ports_match_each_endpoints_own_number_through_a_set() {
    let mut rule = tcp_to(vec![Port::Number(80), Port::Named("http".into())]);
    rule.destination.selector = "app == 'web'".into();
    rule.destination.not_ports = vec![Port::Named("admin".into())];
    let r = render(&rule, Some("prod")).unwrap();
    let [endpoints, http, admin] = r.sets.as_slice() else {
        panic!(
            "expected the endpoint set and two named-port sets: {:?}",
            r.sets
        );
    };
    assert_eq!(
        http.kind(),
        crate::calc::desired::ipsets::SetType::HashIpPort
    );
    assert!(http.name.starts_with("cali40n:"), "{}", http.name);
    assert_eq!(
        http.id.to_string(),
        format!("named port tcp:http of {}", endpoints.id)
    );
    let ep = &endpoints.name;
    let (http, admin) = (&http.name, &admin.name);
    // Numeric ports and the named port are alternatives (two rules); the negated
    // named port is AND'ed onto both.
    assert_eq!(
        r.bodies,
        [
            format!(
                "-p tcp -m set --match-set {ep} dst -m multiport --dports 80 -m set ! --match-set {admin} dst,dst -j MARK --set-xmark 0x10000/0x10000"
            ),
            format!(
                "-p tcp -m set --match-set {ep} dst -m set --match-set {http} dst,dst -m set ! --match-set {admin} dst,dst -j MARK --set-xmark 0x10000/0x10000"
            ),
            "-m mark --mark 0x10000/0x10000 -j RETURN".to_string(),
        ]
    );
}

#[test]
fn source_named_ports_match_src_src_and_need_a_port_protocol() {
    let mut rule = Rule {
        protocol: Some(Protocol::Udp),
        ..Rule::default()
    };
    rule.source.ports = vec![Port::Named("dns".into())];
    let r = render(&rule, None).unwrap();
    let set = r
        .sets
        .iter()
        .find(|s| s.name.starts_with("cali40n:"))
        .unwrap();
    assert_eq!(
        r.bodies[0],
        format!(
            "-p udp -m set --match-set {} src,src -j MARK --set-xmark 0x10000/0x10000",
            set.name
        )
    );
    assert!(set.id.to_string().starts_with("named port udp:dns of"));
    rule.protocol = Some(Protocol::Icmp);
    assert!(matches!(
        render(&rule, None),
        Err(RuleError::PortsNeedProtocol { .. })
    ));
}

#[test]
fn one_net_is_inline_several_are_a_set() {
    let mut rule = Rule {
        action: Action::Deny,
        ..Rule::default()
    };
    rule.source.nets = vec!["10.0.0.0/8".into()];
    rule.source.not_nets = vec!["10.1.0.0/16".into(), "10.2.0.5/16".into()];
    let r = render(&rule, None).unwrap();
    assert_eq!(r.sets.len(), 1);
    let set = &r.sets[0];
    assert_eq!(
        r.bodies,
        [format!(
            "-s 10.0.0.0/8 -m set ! --match-set {} src -j DROP",
            set.name
        )]
    );
    // Host bits are cleared, as the kernel would.
    let want: std::collections::BTreeSet<_> = ["10.1.0.0/16", "10.2.0.0/16"]
        .iter()
        .map(|s| crate::calc::desired::ipsets::SetMember::Net(s.parse().unwrap()))
        .collect();
    assert_eq!(set.fixed_members(), want);
}

#[test]
fn one_net_and_one_not_net_use_one_address_flag() {
    let mut rule = Rule::default();
    rule.destination.nets = vec!["172.16.0.0/12".into()];
    rule.destination.not_nets = vec!["172.16.0.1".into()];
    let r = render(&rule, None).unwrap();
    assert_eq!(r.bodies[0].matches("-d ").count(), 1, "{}", r.bodies[0]);
    assert_eq!(
        r.bodies[0],
        format!(
            "-d 172.16.0.0/12 -m set ! --match-set {} dst -j MARK --set-xmark 0x10000/0x10000",
            r.sets[0].name
        )
    );
    // Without a positive net the lone notNet is inline.
    rule.destination.nets.clear();
    let r = render(&rule, None).unwrap();
    assert!(
        r.bodies[0].starts_with("! -d 172.16.0.1/32 "),
        "{}",
        r.bodies[0]
    );
}

#[test]
fn ipv6_only_rules_are_left_out() {
    let mut rule = Rule::default();
    rule.destination.nets = vec!["fd00::/64".into()];
    assert!(render(&rule, None).unwrap().bodies.is_empty());
    let rule = Rule {
        ip_version: Some(6),
        ..Rule::default()
    };
    assert!(render(&rule, None).unwrap().bodies.is_empty());
    // Mixed: only the IPv4 net remains.
    let mut rule = Rule::default();
    rule.destination.nets = vec!["fd00::/64".into(), "192.168.0.0/24".into()];
    assert!(render(&rule, None).unwrap().bodies[0].starts_with("-d 192.168.0.0/24 "));
}

#[test]
fn namespaced_selectors_are_scoped() {
    let mut rule = Rule::default();
    rule.source.selector = "role == 'web'".into();
    let scoped = render(&rule, Some("prod")).unwrap();
    let global = render(&rule, None).unwrap();
    assert_ne!(scoped.sets[0].name, global.sets[0].name);
    assert_eq!(
        scoped.sets[0].id.to_string(),
        "(role == \"web\" && projectcalico.org/namespace == \"prod\")"
    );
    // notSelector alone in a NetworkPolicy still means "in this namespace".
    let mut rule = Rule::default();
    rule.source.not_selector = "role == 'web'".into();
    let r = render(&rule, Some("prod")).unwrap();
    assert_eq!(r.sets.len(), 2);
    assert!(r.bodies[0].contains(&format!("-m set --match-set {} src", r.sets[0].name)));
    assert!(r.bodies[0].contains(&format!("-m set ! --match-set {} src", r.sets[1].name)));
    // An empty entity in a NetworkPolicy matches anything (no set).
    assert!(
        render(&Rule::default(), Some("prod"))
            .unwrap()
            .sets
            .is_empty()
    );
}

#[test]
fn icmp_type_and_code() {
    let rule = Rule {
        protocol: Some(Protocol::Icmp),
        icmp: Some(IcmpFields {
            icmp_type: Some(8),
            code: Some(0),
        }),
        not_icmp: Some(IcmpFields {
            icmp_type: Some(3),
            code: None,
        }),
        ..Rule::default()
    };
    let r = render(&rule, None).unwrap();
    assert_eq!(
        r.bodies[0],
        "-p icmp -m icmp --icmp-type 8/0 -m icmp ! --icmp-type 3 -j MARK --set-xmark 0x10000/0x10000"
    );
}

#[test]
fn errors_name_the_field() {
    let mut rule = Rule::default();
    rule.source.nets = vec!["10.0.0.0/33".into()];
    assert_eq!(
        render(&rule, None).unwrap_err().to_string(),
        "source.nets: \"10.0.0.0/33\" is not a CIDR"
    );
    let rule = tcp_to(vec![Port::Number(80)]);
    let rule = Rule {
        protocol: Some(Protocol::Icmp),
        ..rule
    };
    assert!(matches!(
        render(&rule, None),
        Err(RuleError::PortsNeedProtocol { .. })
    ));
    let mut rule = Rule::default();
    rule.destination.selector = "a ==".into();
    assert!(
        render(&rule, None)
            .unwrap_err()
            .to_string()
            .starts_with("destination.selector:")
    );
    let rule = Rule {
        icmp: Some(IcmpFields {
            icmp_type: Some(8),
            code: None,
        }),
        ..Rule::default()
    };
    assert!(matches!(
        render(&rule, None),
        Err(RuleError::IcmpNeedsProtocol { .. })
    ));
}

#[test]
fn service_accounts_are_one_more_selector_anded_with_the_sides() {
    use config::model::ServiceAccountMatch;
    let mut rule = Rule::default();
    rule.source.service_accounts = Some(ServiceAccountMatch {
        names: vec!["api".into(), "web".into()],
        selector: "team == 'a'".into(),
    });
    rule.source.selector = "role == 'x'".into();
    let r = render(&rule, Some("prod")).unwrap();
    assert_eq!(r.sets.len(), 1);
    assert_eq!(
        r.sets[0].id.to_string(),
        "(((pcsa.team == \"a\" && projectcalico.org/serviceaccount in {\"api\", \"web\"}) \
         && role == \"x\") && projectcalico.org/namespace == \"prod\")"
    );
    assert!(r.bodies[0].starts_with(&format!("-m set --match-set {} src ", r.sets[0].name)));
    // Names alone: the account name label, still scoped to the policy's namespace.
    let mut rule = Rule::default();
    rule.destination.service_accounts = Some(ServiceAccountMatch {
        names: vec!["api".into()],
        selector: String::new(),
    });
    let r = render(&rule, Some("prod")).unwrap();
    assert_eq!(
        r.sets[0].id.to_string(),
        "(projectcalico.org/serviceaccount in {\"api\"} && projectcalico.org/namespace == \"prod\")"
    );
    // In a global policy it is cluster-wide.
    let r = render(&rule, None).unwrap();
    assert_eq!(
        r.sets[0].id.to_string(),
        "projectcalico.org/serviceaccount in {\"api\"}"
    );
    // A bad account selector names its field.
    let mut rule = Rule::default();
    rule.source.service_accounts = Some(ServiceAccountMatch {
        names: vec![],
        selector: "team ==".into(),
    });
    match render(&rule, None) {
        Err(RuleError::BadSelector { field, .. }) => {
            assert_eq!(field, "source.serviceAccounts.selector")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn services_fail_closed_naming_the_field() {
    use config::model::ServiceMatch;
    let mut rule = Rule::default();
    rule.destination.services = Some(ServiceMatch {
        name: "db".into(),
        namespace: "prod".into(),
    });
    let err = render(&rule, None).unwrap_err();
    assert_eq!(
        err,
        RuleError::Unsupported {
            field: "destination.services"
        }
    );
}
