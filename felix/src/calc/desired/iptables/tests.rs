//! Checks of the desired-table types, and the fixtures the dataplane's
//! render tests build on.

use super::*;

pub(crate) fn chain(name: &str, rules: &[&str]) -> Chain {
    Chain {
        name: name.into(),
        rules: Arc::new(rules.iter().map(|r| r.to_string()).collect()),
    }
}

pub(crate) fn desired_filter() -> DesiredTable {
    DesiredTable::new(
        Table::Filter,
        vec![
            chain("cali-INPUT", &["-i cali+ -j cali-wl-to-host"]),
            chain("cali-wl-to-host", &["-j ACCEPT"]),
            chain(
                "cali-FORWARD",
                &[
                    "-i cali+ -j cali-from-wl-dispatch",
                    "-o cali+ -j cali-to-wl-dispatch",
                ],
            ),
            chain(
                "cali-from-wl-dispatch",
                &[
                    "-i calia -g cali-fw-calia",
                    "-m comment --comment \"Unknown interface\" -j DROP",
                ],
            ),
            chain(
                "cali-to-wl-dispatch",
                &[
                    "-o calia -g cali-tw-calia",
                    "-m comment --comment \"Unknown interface\" -j DROP",
                ],
            ),
            chain(
                "cali-fw-calia",
                &[
                    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                    "-j DROP",
                ],
            ),
            chain(
                "cali-tw-calia",
                &[
                    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                    "-j DROP",
                ],
            ),
            chain("cali-OUTPUT", &[]),
        ],
        standard_jumps(Table::Filter),
    )
}
#[test]
fn validate_catches_mistakes() {
    assert!(desired_filter().validate().is_ok());
    let mut d = desired_filter();
    d.chains.push(chain("DOCKER", &[]));
    assert!(matches!(
        d.validate(),
        Err(DesiredTableError::NotOurChain { .. })
    ));
    let mut d = desired_filter();
    d.chains
        .push(chain("cali-this-name-is-far-too-long-x", &[]));
    assert!(matches!(
        d.validate(),
        Err(DesiredTableError::ChainNameTooLong { .. })
    ));
    let mut d = desired_filter();
    Arc::make_mut(&mut d.chains[0].rules).push("-j cali-missing".into());
    let e = d.validate().unwrap_err();
    assert!(e.to_string().contains("cali-missing"), "{e}");
    let mut d = desired_filter();
    Arc::make_mut(&mut d.chains[0].rules).push("-A cali-INPUT -j ACCEPT".into());
    assert!(matches!(
        d.validate(),
        Err(DesiredTableError::BadRule { .. })
    ));
    let mut d = desired_filter();
    Arc::make_mut(&mut d.chains[0].rules).push("-j ACCEPT\n-A INPUT -j DROP".into());
    assert!(matches!(
        d.validate(),
        Err(DesiredTableError::BadRule { .. })
    ));
    let mut d = desired_filter();
    d.jumps.push(JumpRule::new(
        "POSTROUTING",
        "cali-INPUT",
        JumpPosition::Top,
    ));
    assert!(matches!(
        d.validate(),
        Err(DesiredTableError::NotBaseChain { .. })
    ));
    let mut d = desired_filter();
    d.chains.push(chain("cali-INPUT", &[]));
    assert!(matches!(
        d.validate(),
        Err(DesiredTableError::DuplicateChain { .. })
    ));
}
#[test]
fn sets_are_renamed_only_where_matched_and_other_chains_stay_shared() {
    let d = DesiredTable::new(
        Table::Filter,
        vec![
            chain(
                "cali-pi-a",
                &[
                    "-m set --match-set cali40s:x src -j ACCEPT",
                    "-m set --match-set cali40s:xy dst -j DROP",
                ],
            ),
            chain("cali-pi-b", &["-j RETURN"]),
        ],
        Vec::new(),
    );
    let renamed = d.with_sets_renamed(&[("cali40s:x".into(), "cali40d:z".into())]);
    assert_eq!(
        *renamed.chains[0].rules,
        [
            "-m set --match-set cali40d:z src -j ACCEPT",
            "-m set --match-set cali40s:xy dst -j DROP"
        ]
    );
    assert!(Arc::ptr_eq(&renamed.chains[1].rules, &d.chains[1].rules));
}
