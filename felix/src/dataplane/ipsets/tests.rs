use super::*;
use crate::calc::desired::ipsets::PortProto;
use crate::calc::desired::ipsets::tests::{net, set};
use crate::dataplane::golden::assert_golden;

const SAVE: &str = "\
create cali40pools hash:net family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x32b63633
add cali40pools 10.244.0.0/16
add cali40pools 10.96.0.1
create cali40gone hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1
add cali40gone 10.0.0.9
create cali4tpools hash:net family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x2
create cali40typed hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x3
create cali40v6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x4
add cali40v6 fd00::1
add cali40v6 fd00:1::/64
create KUBE-FOREIGN hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5
add KUBE-FOREIGN 10.1.1.1
";

#[test]
fn parse_keeps_only_ours_and_normalises_members() {
    let sets = parse_save(SAVE).unwrap();
    assert_eq!(
        sets.keys().collect::<Vec<_>>(),
        [
            "cali40gone",
            "cali40pools",
            "cali40typed",
            "cali40v6",
            "cali4tpools"
        ]
    );
    let pools = &sets["cali40pools"];
    assert_eq!(pools.kind, Some(SetType::HashNet));
    assert_eq!(pools.family, Some(Family::V4));
    assert_eq!(
        pools.members,
        [net("10.244.0.0/16"), net("10.96.0.1/32")].into()
    );
    assert_eq!(
        sets["cali40v6"].members,
        [net("fd00::1/128"), net("fd00:1::/64")].into()
    );
    assert!(!pools.has_extras);
    let e = parse_save("add cali40x 10.0.0.1\n").unwrap_err();
    assert_eq!(e.line, 1);
    let extras =
        parse_save("create cali40x hash:ip family inet\nadd cali40x 10.0.0.1 timeout 5\n").unwrap();
    assert!(extras["cali40x"].has_extras);
}

#[test]
fn golden_update_and_stale() {
    let actual = parse_save(SAVE).unwrap();
    let big: Vec<String> = (0..100).map(|i| format!("10.50.{i}.0/24")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    let desired = vec![
        // small delta: one add, one del
        set(
            "cali40pools",
            SetType::HashNet,
            &["10.244.0.0/16", "10.245.0.0/16"],
        ),
        // new
        set(
            "cali40new",
            SetType::HashIp,
            &["10.0.0.1/32", "10.0.0.2/32"],
        ),
        // type change hash:ip -> hash:net: destroy and create
        set("cali40typed", SetType::HashNet, &["10.0.0.0/24"]),
        // family kept, members replaced (small: add/del)
        IpSet {
            family: Family::V6,
            members: [net("fd00:2::/64")].into(),
            ..set("cali40v6", SetType::HashNet, &[])
        },
        set("cali40big", SetType::HashNet, &big[..3]),
    ];
    let plan = plan_update(&desired, &actual);
    assert_eq!(plan.destroy_temps, ["cali4tpools"]);
    assert_eq!(plan.create, ["cali40new", "cali40big"]);
    assert_eq!(plan.recreate, ["cali40typed"]);
    assert!(
        plan.swap.is_empty(),
        "small sets change by add/del: {plan:?}"
    );
    let mut text = render_update(&desired, &actual);
    text += "# remove_stale:\n";
    text += &render_remove_stale(&desired, &actual);
    assert!(!text.contains("KUBE-FOREIGN"));
    assert_golden("ipsets_update.txt", &text);
}

#[test]
fn big_change_goes_through_swap() {
    let old: Vec<String> = (0..200).map(|i| format!("10.60.{i}.0/24")).collect();
    let new: Vec<String> = (0..200).map(|i| format!("10.61.{i}.0/24")).collect();
    let mut save = "create cali40big hash:net family inet\n".to_string();
    for m in &old {
        save += &format!("add cali40big {m}\n");
    }
    let actual = parse_save(&save).unwrap();
    let desired = [set(
        "cali40big",
        SetType::HashNet,
        &new.iter().map(String::as_str).collect::<Vec<_>>(),
    )];
    let plan = plan_update(&desired, &actual);
    assert_eq!(plan.swap, ["cali40big"]);
    let text = render_update(&desired, &actual);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("create cali4tbig hash:net family inet maxelem {MAX_ELEM}")
    );
    assert_eq!(lines.len(), 1 + 200 + 2);
    assert_eq!(lines[201], "swap cali4tbig cali40big");
    assert_eq!(lines[202], "destroy cali4tbig");
    // In sync: nothing.
    let mut save = "create cali40big hash:net family inet\n".to_string();
    for m in &new {
        save += &format!("add cali40big {m}\n");
    }
    assert_eq!(render_update(&desired, &parse_save(&save).unwrap()), "");
}

#[test]
fn ip_port_members_round_trip_and_are_checked_against_the_set_type() {
    let text = "create cali40n:web hash:ip,port family inet hashsize 1024 maxelem 1048576\n\
                add cali40n:web 10.0.0.1,tcp:8080\n\
                add cali40n:web 10.0.0.2,udp:53\n";
    let saved = parse_save(text).unwrap();
    let web = &saved["cali40n:web"];
    assert_eq!(web.kind, Some(SetType::HashIpPort));
    let a = SetMember::IpPort {
        ip: "10.0.0.1".parse().unwrap(),
        proto: PortProto::Tcp,
        port: 8080,
    };
    assert!(web.members.contains(&a));
    assert_eq!(a.to_string(), "10.0.0.1,tcp:8080");
    let desired = IpSet {
        name: "cali40n:web".into(),
        kind: SetType::HashIpPort,
        family: Family::V4,
        members: [a].into(),
    };
    desired.validate().unwrap();
    assert_eq!(
        render_update(std::slice::from_ref(&desired), &saved),
        "del cali40n:web 10.0.0.2,udp:53\n"
    );
    let mut fresh = render_update(std::slice::from_ref(&desired), &SavedSets::new());
    fresh = fresh.replace(&MAX_ELEM.to_string(), "N");
    assert_eq!(
        fresh,
        "create cali40n:web hash:ip,port family inet maxelem N\nadd cali40n:web 10.0.0.1,tcp:8080\n"
    );
    // A plain address in an ip,port set (or the reverse) is refused before ipset runs.
    let wrong = IpSet {
        members: [net("10.0.0.1/32")].into(),
        ..desired
    };
    assert!(matches!(
        wrong.validate(),
        Err(IpSetSpecError::WrongKind { .. })
    ));
    assert!(
        parse_save("create cali40x hash:ip,port family inet\nadd cali40x 10.0.0.1,icmp:8/0\n")
            .is_err()
    );
}
