//! The manifests under `deploy/` against a real kube-apiserver (built by
//! scripts/kube-apiserver.sh; RBAC on) over a test etcd:
//!
//! * `kubectl apply --dry-run=server -f deploy/` accepts every object (schema, strict
//!   field validation, admission, priority classes) and persists none; broken copies
//!   are refused, so the check bites;
//! * after `deploy/rbac.yaml` is applied for real, `kubectl auth can-i --as=<service
//!   account>` answers yes for every request each component's code makes ([`USED`], the
//!   one list) and no for a sample of others ([`REFUSED`]), and `can-i --list` shows each
//!   account holds nothing beyond [`USED`] and what every account has.
//!
//! No root, no network namespace: etcd and the API server listen on 127.0.0.1 only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use config::testing::EtcdServer;
use kubetest::KubeApiServer;

const NAMESPACE: &str = "kube-system";
const CALICO_NODE: &str = "calico-node";
const CNI_PLUGIN: &str = "calico-cni-plugin";
const KUBE_CONTROLLERS: &str = "calico-kube-controllers";

/// Where a request applies: every namespace (or a cluster-scoped kind), or `kube-system`.
#[derive(Clone, Copy, Debug)]
enum Scope {
    Cluster,
    KubeSystem,
}

/// One kind of request a service account makes (or must not be able to make).
#[derive(Clone, Copy, Debug)]
struct Access {
    account: &'static str,
    verb: &'static str,
    /// `resource[.group]`, as kubectl names it.
    resource: &'static str,
    /// A single object, when the grant is limited to it.
    name: Option<&'static str>,
    scope: Scope,
}

const fn access(
    account: &'static str,
    verb: &'static str,
    resource: &'static str,
    scope: Scope,
) -> Access {
    Access {
        account,
        verb,
        resource,
        name: None,
        scope,
    }
}

const fn named(account: &'static str, verb: &'static str, resource: &'static str) -> Access {
    Access {
        account,
        verb,
        resource,
        name: Some("calico-kube-controllers"),
        scope: Scope::KubeSystem,
    }
}

/// Every Kubernetes API request the components make, by service account. felix and bgpd
/// (calico-node) make none: they read etcd only (`grep -rn kube felix/src bgpd/src`
/// finds no client).
const USED: &[Access] = &[
    // cni/src/k8s/client.rs read_pod: Api::<Pod>::namespaced(ns).get(name), any namespace.
    access(CNI_PLUGIN, "get", "pods", Scope::Cluster),
    // cni/src/k8s/client.rs read_pod: Api::<Namespace>::all().get(namespace).
    access(CNI_PLUGIN, "get", "namespaces", Scope::Cluster),
    // kube-controllers/src/run.rs events::<Namespace>: watcher = list, then watch.
    access(KUBE_CONTROLLERS, "list", "namespaces", Scope::Cluster),
    access(KUBE_CONTROLLERS, "watch", "namespaces", Scope::Cluster),
    // kube-controllers/src/run.rs events::<ServiceAccount>.
    access(KUBE_CONTROLLERS, "list", "serviceaccounts", Scope::Cluster),
    access(KUBE_CONTROLLERS, "watch", "serviceaccounts", Scope::Cluster),
    // kube-controllers/src/run.rs events::<Pod>; controllers/nodes.rs collect_garbage
    // lists pods too.
    access(KUBE_CONTROLLERS, "list", "pods", Scope::Cluster),
    access(KUBE_CONTROLLERS, "watch", "pods", Scope::Cluster),
    // kube-controllers/src/run.rs events::<NetworkPolicy>.
    access(
        KUBE_CONTROLLERS,
        "list",
        "networkpolicies.networking.k8s.io",
        Scope::Cluster,
    ),
    access(
        KUBE_CONTROLLERS,
        "watch",
        "networkpolicies.networking.k8s.io",
        Scope::Cluster,
    ),
    // kube-controllers/src/run.rs events::<Node>; controllers/nodes.rs collect_garbage
    // list_metadata.
    access(KUBE_CONTROLLERS, "list", "nodes", Scope::Cluster),
    access(KUBE_CONTROLLERS, "watch", "nodes", Scope::Cluster),
    // kube-controllers/src/controllers/nodes.rs cleanup: get_opt confirms a node is gone.
    access(KUBE_CONTROLLERS, "get", "nodes", Scope::Cluster),
    // kube-controllers/src/leader/lease.rs step: get_opt reads the Lease ...
    named(KUBE_CONTROLLERS, "get", "leases.coordination.k8s.io"),
    // ... create makes it the first time (RBAC cannot limit create to a name) ...
    access(
        KUBE_CONTROLLERS,
        "create",
        "leases.coordination.k8s.io",
        Scope::KubeSystem,
    ),
    // ... replace renews or takes it over; release (on stop) replaces it too.
    named(KUBE_CONTROLLERS, "update", "leases.coordination.k8s.io"),
];

/// Requests that must be refused: more than each component needs.
const REFUSED: &[Access] = &[
    access(CALICO_NODE, "get", "pods", Scope::Cluster),
    access(CALICO_NODE, "list", "nodes", Scope::Cluster),
    access(CALICO_NODE, "get", "namespaces", Scope::Cluster),
    access(CALICO_NODE, "get", "secrets", Scope::KubeSystem),
    access(CNI_PLUGIN, "list", "pods", Scope::Cluster),
    access(CNI_PLUGIN, "watch", "pods", Scope::Cluster),
    access(CNI_PLUGIN, "update", "pods", Scope::Cluster),
    access(CNI_PLUGIN, "delete", "pods", Scope::Cluster),
    access(CNI_PLUGIN, "list", "namespaces", Scope::Cluster),
    access(CNI_PLUGIN, "list", "secrets", Scope::Cluster),
    access(CNI_PLUGIN, "get", "secrets", Scope::KubeSystem),
    access(CNI_PLUGIN, "get", "nodes", Scope::Cluster),
    access(KUBE_CONTROLLERS, "get", "pods", Scope::Cluster),
    access(KUBE_CONTROLLERS, "delete", "pods", Scope::Cluster),
    access(KUBE_CONTROLLERS, "list", "secrets", Scope::Cluster),
    access(KUBE_CONTROLLERS, "create", "nodes", Scope::Cluster),
    access(KUBE_CONTROLLERS, "delete", "nodes", Scope::Cluster),
    access(KUBE_CONTROLLERS, "update", "namespaces", Scope::Cluster),
    access(
        KUBE_CONTROLLERS,
        "create",
        "networkpolicies.networking.k8s.io",
        Scope::Cluster,
    ),
    named(KUBE_CONTROLLERS, "delete", "leases.coordination.k8s.io"),
    // Only its own Lease: not another component's, not in another namespace.
    Access {
        account: KUBE_CONTROLLERS,
        verb: "update",
        resource: "leases.coordination.k8s.io",
        name: Some("kube-scheduler"),
        scope: Scope::KubeSystem,
    },
    access(
        KUBE_CONTROLLERS,
        "create",
        "leases.coordination.k8s.io",
        Scope::Cluster,
    ),
    access(
        KUBE_CONTROLLERS,
        "list",
        "leases.coordination.k8s.io",
        Scope::KubeSystem,
    ),
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn user(account: &str) -> String {
    format!("--as=system:serviceaccount:{NAMESPACE}:{account}")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Runs kubectl (admin) and panics with its output unless it succeeds.
fn kubectl_ok(api: &KubeApiServer, args: &[&str]) -> String {
    let out = api.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A directory removed on drop, also when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("calico-rs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every object of the manifests, as `kind/name` the way kubectl reports it.
const OBJECTS: &[&str] = &[
    "serviceaccount/calico-node",
    "serviceaccount/calico-cni-plugin",
    "secret/calico-cni-plugin-token",
    "clusterrole.rbac.authorization.k8s.io/calico-cni-plugin",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-cni-plugin",
    "serviceaccount/calico-kube-controllers",
    "clusterrole.rbac.authorization.k8s.io/calico-kube-controllers",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-kube-controllers",
    "role.rbac.authorization.k8s.io/calico-kube-controllers",
    "rolebinding.rbac.authorization.k8s.io/calico-kube-controllers",
    "secret/calico-etcd-secrets",
    "configmap/calico-config",
    "daemonset.apps/calico-node",
    "deployment.apps/calico-kube-controllers",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_dry_run_accepts_the_manifests_and_refuses_broken_ones() {
    let etcd = EtcdServer::start().await;
    let api = KubeApiServer::start(&etcd).await;
    let deploy = deploy_dir();
    let deploy = deploy.to_str().unwrap();

    let out = kubectl_ok(&api, &["apply", "--dry-run=server", "-f", deploy]);
    let reported: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_suffix(" created (server dry run)"))
        .collect();
    let want: BTreeSet<&str> = OBJECTS.iter().copied().collect();
    assert_eq!(reported, want, "dry run output:\n{out}");
    // A dry run persists nothing.
    let out = api.kubectl(&["get", "daemonset/calico-node", "-n", NAMESPACE]);
    assert!(!out.status.success(), "the dry run created the DaemonSet");
    assert!(
        text(&out.stderr).contains("NotFound"),
        "{}",
        text(&out.stderr)
    );

    // Each broken copy differs from the real manifests by one edit that only the server
    // can judge; each must be refused, naming what is wrong.
    let broken = TempDir::new("deploy-broken");
    for (file, from, to, expect) in [
        // The selector no longer matches the pod template's labels.
        (
            "calico-node.yaml",
            "    matchLabels:\n      k8s-app: calico-node\n",
            "    matchLabels:\n      k8s-app: calico-nodes\n",
            "selector` does not match template `labels`",
        ),
        // A misspelt field: strict field validation.
        (
            "calico-node.yaml",
            "      hostNetwork: true\n",
            "      hostNetwrok: true\n",
            "unknown field \"spec.template.spec.hostNetwrok\"",
        ),
        // A rolling update that could never make progress.
        (
            "calico-node.yaml",
            "      maxUnavailable: 1\n",
            "      maxUnavailable: 0\n",
            "maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
        ),
        // An RBAC verb list that names no verb.
        (
            "rbac.yaml",
            "    verbs: [\"create\"]\n",
            "    verbs: []\n",
            "verbs: Required value",
        ),
    ] {
        for entry in std::fs::read_dir(deploy).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, broken.0.join(path.file_name().unwrap())).unwrap();
            }
        }
        let path = broken.0.join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        assert_eq!(original.matches(from).count(), 1, "{file}: {from:?}");
        std::fs::write(&path, original.replace(from, to)).unwrap();
        let out = api.kubectl(&[
            "apply",
            "--dry-run=server",
            "-f",
            broken.0.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{file} with {to:?} was accepted");
        assert!(stderr.contains(expect), "{file} with {to:?}: {stderr}");
    }
}

fn can_i(api: &KubeApiServer, a: &Access) -> bool {
    let target = match a.name {
        Some(name) => format!("{}/{name}", a.resource),
        None => a.resource.to_string(),
    };
    let scope = match a.scope {
        Scope::Cluster => "--all-namespaces".to_string(),
        Scope::KubeSystem => format!("--namespace={NAMESPACE}"),
    };
    let out = api.kubectl(&["auth", "can-i", a.verb, &target, &scope, &user(a.account)]);
    let answer = text(&out.stdout);
    match (out.status.code(), answer.trim()) {
        (Some(0), "yes") => true,
        (Some(1), no) if no.starts_with("no") => false,
        _ => panic!(
            "kubectl auth can-i {} {target} for {}: {:?} {answer} {}",
            a.verb,
            a.account,
            out.status,
            text(&out.stderr)
        ),
    }
}

/// `(resource, resource names, verb)` rows of `kubectl auth can-i --list` in kube-system.
fn granted(api: &KubeApiServer, as_user: &str) -> BTreeSet<(String, String, String)> {
    let out = kubectl_ok(
        api,
        &[
            "auth",
            "can-i",
            "--list",
            &format!("--namespace={NAMESPACE}"),
            as_user,
        ],
    );
    let mut rows = BTreeSet::new();
    for line in out.lines().skip(1) {
        // Resources   Non-Resource URLs   Resource Names   Verbs, where every column but
        // the first is a bracketed list and the first is empty for URL rows.
        let resource = match line.split_whitespace().next() {
            Some(first) if !first.starts_with('[') => first.to_string(),
            _ => String::new(),
        };
        let lists: Vec<&str> = line
            .split('[')
            .skip(1)
            .map(|s| s.split(']').next().unwrap_or(""))
            .collect();
        let [urls, names, verbs] = lists[..] else {
            panic!("unexpected can-i --list row: {line:?}\n{out}");
        };
        for verb in verbs.split_whitespace() {
            rows.insert((format!("{resource}{urls}"), names.to_string(), verb.into()));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_account_may_do_exactly_what_its_component_does() {
    let etcd = EtcdServer::start().await;
    let api = KubeApiServer::start(&etcd).await;
    let rbac = deploy_dir().join("rbac.yaml");
    kubectl_ok(&api, &["apply", "-f", rbac.to_str().unwrap()]);

    let mut wrong = Vec::new();
    for a in USED {
        if !can_i(&api, a) {
            wrong.push(format!("refused but used: {a:?}"));
        }
    }
    for a in REFUSED {
        if can_i(&api, a) {
            wrong.push(format!("allowed but not used: {a:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Nothing beyond USED: each account's grants, less those of an account that has no
    // binding at all (discovery, self reviews: what every authenticated user holds).
    let baseline = granted(&api, &user("no-such-account"));
    for account in [CALICO_NODE, CNI_PLUGIN, KUBE_CONTROLLERS] {
        let extra: BTreeSet<_> = granted(&api, &user(account))
            .difference(&baseline)
            .cloned()
            .collect();
        let want: BTreeSet<_> = USED
            .iter()
            .filter(|a| a.account == account)
            .map(|a| {
                let names = a.name.unwrap_or("").to_string();
                (a.resource.to_string(), names, a.verb.to_string())
            })
            .collect();
        assert_eq!(
            extra, want,
            "{account}: grants differ from what its code uses"
        );
    }
}
