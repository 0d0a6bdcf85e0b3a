//! iptables sync against the real tools (nft backend), each test in its own
//! network namespace. NEEDS ROOT (see `support`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use felix::calc::desired::Family;
use felix::calc::desired::iptables::{Chain, DesiredTable, Table, standard_jumps};
use felix::dataplane::iptables::{Backend, Iptables, IptablesError, detect_backend};
use support::{in_netns, run};

fn chain(name: &str, rules: &[&str]) -> Chain {
    Chain {
        name: name.into(),
        rules: Arc::new(rules.iter().map(|r| r.to_string()).collect()),
    }
}

fn filter(fw_rules: &[&str]) -> DesiredTable {
    DesiredTable::new(
        Table::Filter,
        vec![
            chain("cali-INPUT", &["-i cali+ -j ACCEPT"]),
            chain("cali-FORWARD", &["-i cali+ -j cali-fw-caliaaaa"]),
            chain("cali-fw-caliaaaa", fw_rules),
            chain("cali-OUTPUT", &[]),
        ],
        standard_jumps(Table::Filter),
    )
}

fn ipt() -> Iptables {
    Iptables::new(Backend::Nft, Family::V4).with_retry(2, Duration::from_millis(10))
}

fn save(table: &str) -> String {
    run("iptables-nft-save", &["-t", table])
}

/// Rules of `chain` in save output, in order.
fn rules_of(save: &str, chain: &str) -> Vec<String> {
    let prefix = format!("-A {chain} ");
    save.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

/// Save output without the `# Generated/Completed on <time>` lines.
fn without_comments(save: &str) -> Vec<&str> {
    save.lines().filter(|l| !l.starts_with('#')).collect()
}

fn foreign_setup() {
    run("iptables-nft", &["-N", "FOREIGN"]);
    run(
        "iptables-nft",
        &["-A", "FOREIGN", "-s", "192.0.2.0/24", "-j", "ACCEPT"],
    );
    run("iptables-nft", &["-A", "FORWARD", "-j", "FOREIGN"]);
    run(
        "iptables-nft",
        &["-A", "FORWARD", "-o", "eth9", "-j", "DROP"],
    );
}

#[test]
fn first_sync_then_no_op_then_only_changed_chain() {
    in_netns(|| async {
        assert_eq!(
            detect_backend().await,
            Backend::Nft,
            "empty namespace defaults to nft"
        );
        foreign_setup();
        let mut ipt = ipt();
        let desired = filter(&[
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-j DROP",
        ]);
        let out = ipt.sync_table(&desired).await.unwrap();
        assert_eq!(out.attempts, 1);
        assert_eq!(out.plan.write_chains.len(), 4);
        let s = save("filter");
        assert_eq!(rules_of(&s, "FOREIGN"), ["-s 192.0.2.0/24 -j ACCEPT"]);
        let fwd = rules_of(&s, "FORWARD");
        assert_eq!(fwd.len(), 3, "{fwd:?}");
        assert!(
            fwd[0].ends_with("-j cali-FORWARD"),
            "our jump first: {fwd:?}"
        );
        assert_eq!(&fwd[1..], ["-j FOREIGN", "-o eth9 -j DROP"]);
        for base in ["INPUT", "OUTPUT"] {
            let r = rules_of(&s, base);
            assert_eq!(r.len(), 1, "{base}: {r:?}");
            assert!(r[0].ends_with(&format!("-j cali-{base}")));
        }
        assert_eq!(rules_of(&s, "cali-fw-caliaaaa").len(), 2);

        // Second apply: planned from memory, no read-back, no restore.
        let out = ipt.sync_table(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (0, 0), "{out:?}");
        // After forgetting (the refresh), read back: equals desired, no restore.
        ipt.forget();
        let out = ipt.sync_table(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (0, 1), "{out:?}");
        assert_eq!(
            without_comments(&save("filter")),
            without_comments(&s),
            "nothing changed"
        );
        for base in ["INPUT", "FORWARD", "OUTPUT"] {
            let jumps = rules_of(&save("filter"), base)
                .iter()
                .filter(|r| r.contains("-j cali-"))
                .count();
            assert_eq!(jumps, 1, "{base} jump exactly once after two applies");
        }

        // Change one chain: only it is rewritten.
        let changed = filter(&["-m conntrack --ctstate INVALID -j DROP", "-j DROP"]);
        let out = ipt.sync_table(&changed).await.unwrap();
        assert_eq!(out.plan.write_chains, ["cali-fw-caliaaaa"]);
        assert!(out.plan.fix_base_chains.is_empty() && out.plan.delete_chains.is_empty());
        let s2 = save("filter");
        assert!(rules_of(&s2, "cali-fw-caliaaaa")[0].contains("INVALID"));
        assert_eq!(rules_of(&s2, "FOREIGN"), rules_of(&s, "FOREIGN"));
        assert_eq!(rules_of(&s2, "FORWARD"), rules_of(&s, "FORWARD"));
        assert_eq!(rules_of(&s2, "cali-FORWARD"), rules_of(&s, "cali-FORWARD"));
    });
}

#[test]
fn tampering_is_repaired_and_stale_chains_removed() {
    in_netns(|| async {
        foreign_setup();
        let mut ipt = ipt();
        let mut desired = filter(&["-j DROP"]);
        desired.chains.push(chain("cali-old", &["-j RETURN"]));
        Arc::make_mut(&mut desired.chains[1].rules).push("-j cali-old".into());
        ipt.sync_table(&desired).await.unwrap();

        // Someone deletes our INPUT jump, appends to our chain, and inserts a
        // rule above our FORWARD jump.
        let s = save("filter");
        let input_jump = rules_of(&s, "INPUT").remove(0);
        let mut args = vec!["-D", "INPUT"];
        args.extend(input_jump.split_whitespace().map(|w| w.trim_matches('"')));
        run("iptables-nft", &args);
        run("iptables-nft", &["-A", "cali-fw-caliaaaa", "-j", "ACCEPT"]);
        run("iptables-nft", &["-I", "FORWARD", "1", "-j", "FOREIGN"]);

        // Between refreshes felix trusts what it wrote: no read, no write.
        let out = ipt.sync_table(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (0, 0), "{out:?}");

        // The refresh reads back and repairs, while the desired state drops cali-old.
        ipt.forget();
        let desired = filter(&["-j DROP"]);
        let out = ipt.sync_table(&desired).await.unwrap();
        assert_eq!(out.reads, 1);
        assert_eq!(out.plan.delete_chains, ["cali-old"]);
        assert_eq!(out.plan.write_chains, ["cali-FORWARD", "cali-fw-caliaaaa"]);
        assert_eq!(out.plan.fix_base_chains, ["FORWARD", "INPUT"]);
        let s = save("filter");
        assert!(!s.contains("cali-old"), "{s}");
        assert_eq!(rules_of(&s, "cali-fw-caliaaaa").len(), 1);
        let fwd = rules_of(&s, "FORWARD");
        assert!(fwd[0].ends_with("-j cali-FORWARD"), "{fwd:?}");
        assert_eq!(
            &fwd[1..],
            ["-j FOREIGN", "-j FOREIGN", "-o eth9 -j DROP"],
            "foreign rules kept"
        );
        assert!(rules_of(&s, "INPUT")[0].ends_with("-j cali-INPUT"));
        assert_eq!(ipt.sync_table(&desired).await.unwrap().attempts, 0);
    });
}

#[test]
fn nat_jump_is_appended_once_into_a_fresh_table() {
    in_netns(|| async {
        let mut ipt = ipt();
        let desired = DesiredTable::new(
            Table::Nat,
            vec![
                chain("cali-POSTROUTING", &["-j cali-nat-outgoing"]),
                chain(
                    "cali-nat-outgoing",
                    &["-s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE"],
                ),
            ],
            standard_jumps(Table::Nat),
        );
        ipt.sync_table(&desired).await.unwrap();
        run(
            "iptables-nft",
            &["-t", "nat", "-A", "POSTROUTING", "-j", "ACCEPT"],
        );
        ipt.forget();
        let out = ipt.sync_table(&desired).await.unwrap();
        assert_eq!((out.attempts, out.reads), (0, 1), "{out:?}");
        let post = rules_of(&save("nat"), "POSTROUTING");
        assert_eq!(post.len(), 2, "{post:?}");
        assert!(post[0].ends_with("-j cali-POSTROUTING"));
    });
}

/// Both ways of running the tool: the long-lived process and one process
/// per change.
#[test]
fn restore_error_names_the_line_after_bounded_retries() {
    for persistent in [true, false] {
        in_netns(move || async move {
            let mut ipt = ipt().with_persistent(persistent);
            let desired = filter(&["-j ACCEPT", "-p tcp --dport 80 -j NOSUCHTARGET"]);
            let err = ipt.sync_table(&desired).await.unwrap_err();
            let IptablesError::Restore { attempts, line, .. } = &err else {
                panic!("expected a restore error, got {err}");
            };
            assert_eq!(*attempts, 2);
            let (n, text) = line.as_ref().expect("the failing line is named");
            assert!(text.contains("NOSUCHTARGET"), "line {n}: {text}");
            assert!(err.to_string().contains("NOSUCHTARGET"), "{err}");
            // Nothing was committed: the transaction is all or nothing.
            assert!(!save("filter").contains("cali-"));
            // A good change then goes through.
            ipt.sync_table(&filter(&["-j ACCEPT"])).await.unwrap();
            assert_eq!(rules_of(&save("filter"), "cali-fw-caliaaaa").len(), 1);
        });
    }
}

/// The long-lived restore process (nft): changes after someone else edited
/// the table land as desired, a failing change names its own line although
/// the process had been given many lines before, and the next change after
/// the failure goes through a new process.
#[test]
fn long_lived_restore_survives_foreign_edits_and_failures() {
    in_netns(|| async {
        let mut ipt = ipt().with_retry(1, Duration::from_millis(10));
        for port in 1..=5 {
            let rule = format!("-p tcp --dport {port} -j ACCEPT");
            ipt.sync_table(&filter(&[&rule])).await.unwrap();
        }
        // Behind felix's back: our chain emptied, a foreign chain added.
        run("iptables-nft", &["-F", "cali-fw-caliaaaa"]);
        run("iptables-nft", &["-N", "FOREIGN"]);
        ipt.sync_table(&filter(&["-p tcp --dport 6 -j ACCEPT", "-j DROP"]))
            .await
            .unwrap();
        let s = save("filter");
        let rules = rules_of(&s, "cali-fw-caliaaaa");
        assert_eq!(rules.len(), 2, "{s}");
        assert!(
            rules[0].contains("--dport 6 ") && rules[0].ends_with("-j ACCEPT"),
            "{s}"
        );
        assert!(rules[1].ends_with("-j DROP"), "{s}");

        let err = ipt
            .sync_table(&filter(&["-j ACCEPT", "-p tcp --dportx 80 -j ACCEPT"]))
            .await
            .unwrap_err();
        let IptablesError::Restore { line, .. } = &err else {
            panic!("expected a restore error, got {err}");
        };
        let (n, text) = line.as_ref().expect("the failing line is named");
        // The tool names the line by its running count over everything it
        // was given; felix maps it into this change's input.
        assert!(text.contains("--dportx"), "line {n}: {text}");

        ipt.sync_table(&filter(&["-p tcp --dport 7 -j ACCEPT"]))
            .await
            .unwrap();
        let s = save("filter");
        let rules = rules_of(&s, "cali-fw-caliaaaa");
        assert_eq!(rules.len(), 1, "{s}");
        assert!(rules[0].contains("--dport 7 "), "{s}");
        assert!(s.contains(":FOREIGN"), "foreign chain kept: {s}");
    });
}
