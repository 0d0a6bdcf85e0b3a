//! The kit against the kernel. NEEDS ROOT.

use std::time::Duration;

use netns_kit::{Netns, in_new_netns, in_ns, sh, unique, wait_output};

fn exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

#[test]
fn veth_pair_carries_traffic_and_drop_removes_both_namespaces() {
    let (a, b) = (Netns::new("nka"), Netns::new("nkb"));
    a.veth_to("va", &b, "vb").unwrap();
    a.addr_up("va", "10.9.0.1/24").unwrap();
    b.addr_up("vb", "10.9.0.2/24").unwrap();
    assert!(a.try_exec(&["ping", "-c", "1", "-W", "2", "10.9.0.2"]));
    assert!(a.ip(&["addr", "show", "dev", "va"]).contains("10.9.0.1/24"));
    assert!(!a.try_exec(&["false"]));
    assert!(
        a.output(&["sh", "-c", "echo out; echo err >&2"])
            .contains("err")
    );
    let names = (a.name.clone(), b.name.clone());
    // A process left running inside must not keep the namespace alive.
    let _sleeper = b.spawn(
        &["sleep", "60"],
        &std::env::temp_dir().join(unique("nk-log")),
    );
    drop((a, b));
    assert!(!exists(&names.0) && !exists(&names.1), "{names:?}");
}

#[test]
fn a_panicking_test_still_removes_its_namespace() {
    let name = std::thread::spawn(|| {
        let ns = Netns::new("nkp");
        let name = ns.name.clone();
        std::panic::catch_unwind(move || {
            let _ns = ns;
            panic!("test failure");
        })
        .unwrap_err();
        name
    })
    .join()
    .unwrap();
    assert!(!exists(&name), "{name}");
}

#[test]
fn creating_an_existing_name_fails_and_leaves_it_alone() {
    let ns = Netns::new("nke");
    assert!(Netns::create(&ns.name).is_err());
    assert!(exists(&ns.name));
    assert!(ns.try_exec(&["true"]));
}

#[test]
fn threads_enter_a_named_or_a_new_namespace() {
    let ns = Netns::new("nkt");
    ns.ip(&["addr", "add", "10.9.1.1/32", "dev", "lo"]);
    let seen = in_ns(&ns, || async { sh(&["ip", "addr", "show", "dev", "lo"]) });
    assert!(seen.contains("10.9.1.1/32"));
    let fresh = in_new_netns(|| async { sh(&["ip", "-o", "link", "show"]) });
    assert_eq!(fresh.lines().count(), 1, "only lo: {fresh}");
    wait_output("sysctl", Duration::from_secs(5), "= 1", false, || {
        ns.sysctl("net.ipv4.ip_forward", "1").unwrap();
        ns.exec(&["sysctl", "net.ipv4.ip_forward"])
    });
}
