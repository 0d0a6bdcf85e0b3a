//! Every refusal prints one line naming the problem, exits non-zero and leaves etcd as it
//! was; a failure partway through a file reports Calico's "Partial success".

mod common;

use common::{Ctl, example};

const POOL_OK: &str = "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.10.0.0/16
";

/// (what, input, expected fragment of the one-line message)
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "broken YAML",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: [name: x\n",
        "error parsing",
    ),
    (
        "unknown kind",
        "apiVersion: projectcalico.org/v3\nkind: Widget\nmetadata: {name: x}\nspec: {}\n",
        "Widget",
    ),
    (
        "unknown field",
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumbr: 64512}\n",
        "spec.asNumbr",
    ),
    (
        "invalid value",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/33}\n",
        "spec.cidr",
    ),
    (
        "pool smaller than a block",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/28}\n",
        "spec.cidr",
    ),
    (
        "bad name",
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: Node_1}\nspec: {}\n",
        "metadata.name",
    ),
    (
        "overlapping pools in one file",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p1}\nspec: {cidr: 10.1.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p2}\nspec: {cidr: 10.1.128.0/18}\n",
        "overlap",
    ),
    (
        "link-local pool",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 169.254.0.0/16}\n",
        "spec.cidr",
    ),
    (
        "one bad object among good ones",
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: good}\nspec: {}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 300.1.1.1, asNumber: 1}\n",
        "spec.peerIP",
    ),
];

#[tokio::test]
async fn refused_input_writes_nothing() {
    let ctl = Ctl::start().await;
    assert!(
        ctl.run(&["apply", "-f", &example("cluster.yaml")], None)
            .success
    );
    let before = ctl.dump().await;
    for verb in ["apply", "create", "replace"] {
        for (what, input, fragment) in REFUSED {
            let run = ctl.run(&[verb, "-f", "-"], Some(input));
            assert!(!run.success, "{verb} {what}: accepted:\n{}", run.stdout);
            assert_eq!(
                run.stdout.lines().count(),
                1,
                "{verb} {what}: not one line:\n{}",
                run.stdout
            );
            assert!(
                run.stdout.contains(fragment),
                "{verb} {what}: message lacks {fragment:?}: {}",
                run.stdout
            );
        }
    }
    let example_bad = ctl.run(&["apply", "-f", &example("bad-pool.yaml")], None);
    assert_eq!(
        example_bad.stdout,
        "Failed to execute command: IPPool(broken-pool) is invalid: spec.cidr: invalid CIDR \"10.300.0.0/16\"\n"
    );
    assert_eq!(ctl.dump().await, before, "a refused command changed etcd");
}

#[tokio::test]
async fn pool_overlapping_a_stored_pool_is_refused() {
    let ctl = Ctl::start().await;
    assert!(ctl.run(&["apply", "-f", "-"], Some(POOL_OK)).success);
    let before = ctl.dump().await;
    let overlapping = POOL_OK
        .replace("pool-a", "pool-b")
        .replace("10.10.0.0/16", "10.10.4.0/24");
    let run = ctl.run(&["create", "-f", "-"], Some(&overlapping));
    assert!(!run.success);
    assert!(run.stdout.contains("overlap"), "{}", run.stdout);
    assert_eq!(ctl.dump().await, before);
    // Re-applying the same pool is not an overlap with itself.
    assert!(ctl.run(&["apply", "-f", "-"], Some(POOL_OK)).success);
}

#[tokio::test]
async fn partial_success_is_reported_like_calico() {
    let ctl = Ctl::start().await;
    assert!(ctl.run(&["create", "-f", "-"], Some(POOL_OK)).success);
    let three = format!(
        "{}---\n{}---\n{}",
        POOL_OK
            .replace("pool-a", "pool-b")
            .replace("10.10.0.0/16", "10.20.0.0/16"),
        POOL_OK
            .replace("pool-a", "pool-c")
            .replace("10.10.0.0/16", "10.30.0.0/16"),
        POOL_OK
    );
    let run = ctl.run(&["create", "-f", "-"], Some(&three));
    assert!(!run.success);
    assert_eq!(
        run.stdout,
        "Partial success: created the first 2 out of 3 'IPPool' resources:\n\
         Hit error: resource already exists: IPPool(pool-a)\n"
    );
    let skip = ctl.run(&["create", "--skip-exists", "-f", "-"], Some(&three));
    assert_eq!(skip.stdout, "Successfully created 3 'IPPool' resource(s)\n");
}

#[tokio::test]
async fn replace_of_missing_and_empty_input() {
    let ctl = Ctl::start().await;
    let run = ctl.run(&["replace", "-f", "-"], Some(POOL_OK));
    assert!(!run.success);
    assert_eq!(
        run.stdout,
        "Failed to replace 'IPPool' resource: resource does not exist: IPPool(pool-a)\n"
    );
    let empty = ctl.run(&["apply", "-f", "-"], Some("# nothing here\n"));
    assert!(!empty.success);
    assert_eq!(empty.stdout, "No resources specified\n");
    let unknown_kind = ctl.run(&["get", "widgets"], None);
    assert_eq!(
        unknown_kind.stdout,
        "Failed to get resources: resource type 'widgets' is not supported\n"
    );
}

#[tokio::test]
async fn unreachable_etcd_is_one_line() {
    let mut ctl = Ctl::start().await;
    ctl.etcd.stop();
    let started = std::time::Instant::now();
    let run = ctl.run(&["apply", "-f", "-"], Some(POOL_OK));
    assert!(!run.success);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains(&ctl.etcd.endpoint()), "{}", run.stdout);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let get = ctl.run(&["get", "nodes"], None);
    assert!(!get.success);
    assert!(
        get.stdout.starts_with("Failed to get resources: "),
        "{}",
        get.stdout
    );
}

#[tokio::test]
async fn validate_needs_no_datastore() {
    let ctl = Ctl::start().await;
    let ok = ctl.run(&["validate", "-f", &example("policy.yaml")], None);
    assert_eq!(ok.stdout, "Successfully validated 2 resource(s)\n");
    let bad = ctl.run(&["validate", "-f", &example("bad-pool.yaml")], None);
    assert!(!bad.success);
    assert!(bad.stdout.contains("spec.cidr"), "{}", bad.stdout);
}
