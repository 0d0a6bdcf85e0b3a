//! Checks of the desired-set types, and the fixtures the dataplane's render
//! tests build on.

use super::*;

pub(crate) fn net(s: &str) -> SetMember {
    SetMember::Net(s.parse().unwrap())
}

pub(crate) fn set(name: &str, kind: SetType, members: &[&str]) -> IpSet {
    IpSet {
        name: name.into(),
        kind,
        family: Family::V4,
        members: members.iter().map(|m| net(m)).collect(),
    }
}

#[test]
fn validation() {
    assert!(
        set("cali40ok", SetType::HashNet, &["10.0.0.0/8"])
            .validate()
            .is_ok()
    );
    let e = set("KUBE-x", SetType::HashNet, &[]).validate().unwrap_err();
    assert!(matches!(e, IpSetSpecError::BadName { .. }), "{e}");
    let long = format!("cali40{}", "x".repeat(26));
    assert!(
        set(&long, SetType::HashNet, &[]).validate().is_err(),
        "32 chars is too long"
    );
    assert!(matches!(
        set("cali40a", SetType::HashIp, &["10.0.0.0/24"]).validate(),
        Err(IpSetSpecError::NotAnAddress { .. })
    ));
    assert!(matches!(
        set("cali40a", SetType::HashNet, &["fd00::/64"]).validate(),
        Err(IpSetSpecError::WrongFamily { .. })
    ));
    assert!(matches!(
        set("cali40a", SetType::HashNet, &["0.0.0.0/0"]).validate(),
        Err(IpSetSpecError::ZeroPrefix { .. })
    ));
    let dup = [
        set("cali40a", SetType::HashNet, &[]),
        set("cali40a", SetType::HashNet, &[]),
    ];
    assert!(matches!(
        validate_all(&dup),
        Err(IpSetSpecError::Duplicate { .. })
    ));
}
