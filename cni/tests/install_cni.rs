//! The `install-cni` binary, run as the calico-node pod's init container runs it, with a
//! temporary directory standing for the host's root (`host/opt/cni/bin`,
//! `host/etc/cni/net.d`), one for the image's binaries, and a service-account directory
//! holding a real token of the `calico-cni-plugin` account, minted with the TokenRequest
//! API from a real kube-apiserver (built by scripts/kube-apiserver.sh; RBAC on) after
//! `deploy/rbac.yaml` and `deploy/config.yaml` are applied. Checked: the binaries
//! (byte-identical, mode 0755, rewritten only when changed, skipped ones left out), the
//! conflist rendered from the manifest's own template (one the plugin accepts), the etcd
//! TLS file, and that the written kubeconfig works: the plugin's own pod read succeeds
//! through it, listing secrets and deleting pods are refused.
//!
//! No network namespace: install-cni only writes files and the test only talks to etcd
//! and the API server on 127.0.0.1, so a temporary directory is enough. No root.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cni::netconf::NetConf;
use config::testing::EtcdServer;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use kubetest::KubeApiServer;
use serde_json::{Value, json};

const INSTALL_CNI: &str = env!("CARGO_BIN_EXE_install-cni");
const PLUGINS: [(&str, &str); 2] = [
    ("calico", env!("CARGO_BIN_EXE_calico")),
    ("calico-ipam", env!("CARGO_BIN_EXE_calico-ipam")),
];

fn deploy(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
        .to_str()
        .unwrap()
        .to_string()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn kubectl_ok(api: &KubeApiServer, args: &[&str]) -> String {
    let out = api.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The test's directories, removed on drop, also when the test fails.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root =
            std::env::temp_dir().join(format!("calico-rs-install-cni-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for dir in [
            "host/opt/cni/bin",
            "host/etc/cni/net.d",
            "image/opt/cni/bin",
            "serviceaccount",
            "calico-secrets",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        Dirs { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn host_bin(&self, name: &str) -> PathBuf {
        self.path("host/opt/cni/bin").join(name)
    }

    fn host_net(&self, name: &str) -> PathBuf {
        self.path("host/etc/cni/net.d").join(name)
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Runs install-cni with only the given environment (plus the test's paths).
fn install_cni(dirs: &Dirs, env: &BTreeMap<&str, String>) -> Output {
    Command::new(INSTALL_CNI)
        .env_clear()
        .env("HOST_CNI_BIN_DIR", dirs.path("host/opt/cni/bin"))
        .env("HOST_CNI_NET_DIR", dirs.path("host/etc/cni/net.d"))
        .env("CNI_BINARIES_DIR", dirs.path("image/opt/cni/bin"))
        .env("SERVICEACCOUNT_DIR", dirs.path("serviceaccount"))
        .env("TLS_ASSETS_DIR", dirs.path("calico-secrets"))
        .env("SLEEP", "false")
        .envs(env)
        .output()
        .expect("running install-cni")
}

fn assert_ok(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "install-cni failed: {stderr}");
    stderr
}

/// (inode, mtime in ns): changes whenever a file is replaced.
fn identity(path: &Path) -> (u64, i64) {
    let m = fs::metadata(path).unwrap();
    (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

async fn client_from(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_binaries_conflist_and_a_working_kubeconfig() {
    let etcd = EtcdServer::start().await;
    let api = KubeApiServer::start(&etcd).await;
    let dirs = Dirs::new();

    // The cluster side, from the manifests: the plugin's account and role, and the
    // network config template.
    kubectl_ok(&api, &["apply", "-f", &deploy("rbac.yaml")]);
    kubectl_ok(&api, &["apply", "-f", &deploy("config.yaml")]);
    let template = kubectl_ok(
        &api,
        &[
            "get",
            "configmap/calico-config",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.data.cni_network_config}",
        ],
    );
    assert!(template.contains("__KUBECONFIG_FILEPATH__"), "{template}");
    // The pod's service-account directory, with a token of calico-cni-plugin.
    let token = kubectl_ok(
        &api,
        &[
            "create",
            "token",
            "calico-cni-plugin",
            "-n",
            "kube-system",
            "--duration=10m",
        ],
    );
    fs::write(dirs.path("serviceaccount/token"), &token).unwrap();
    fs::copy(api.ca_cert_path(), dirs.path("serviceaccount/ca.crt")).unwrap();
    // The image's binaries, and one etcd TLS file (a CA but no client certificate).
    for (name, built) in PLUGINS {
        let dst = dirs.path("image/opt/cni/bin").join(name);
        fs::copy(built, &dst).unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o700)).unwrap();
    }
    // A binary the image holds but the host must not get (Calico's SKIP_CNI_BINARIES).
    fs::copy(INSTALL_CNI, dirs.path("image/opt/cni/bin/install-cni")).unwrap();
    fs::write(dirs.path("calico-secrets/etcd-ca"), "etcd CA PEM\n").unwrap();

    let port = api.url().rsplit(':').next().unwrap().to_string();
    let env: BTreeMap<&str, String> = BTreeMap::from([
        ("CNI_NETWORK_CONFIG", template.clone()),
        ("ETCD_ENDPOINTS", etcd.endpoint()),
        ("CNI_MTU", "1440".into()),
        ("KUBERNETES_NODE_NAME", "node-7".into()),
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1".into()),
        ("KUBERNETES_SERVICE_PORT", port),
        ("SKIP_CNI_BINARIES", "install-cni".into()),
    ]);
    let log = assert_ok(&install_cni(&dirs, &env));

    // Binaries: identical to the image's, 0755.
    for (name, built) in PLUGINS {
        let installed = dirs.host_bin(name);
        assert_eq!(
            fs::read(&installed).unwrap(),
            fs::read(built).unwrap(),
            "{name}"
        );
        assert_eq!(mode(&installed), 0o755, "{name}");
    }
    assert!(
        !dirs.host_bin("install-cni").exists(),
        "a skipped binary was installed"
    );
    // The conflist: the manifest's template with this node's values, one the plugin
    // accepts, naming the kubeconfig and TLS file as the host sees them.
    let conflist = dirs.host_net("10-calico.conflist");
    assert_eq!(mode(&conflist), 0o644);
    let v: Value = serde_json::from_str(&fs::read_to_string(&conflist).unwrap()).unwrap();
    let calico = &v["plugins"][0];
    assert_eq!(calico["type"], "calico");
    assert_eq!(calico["nodename"], "node-7");
    assert_eq!(calico["mtu"], 1440);
    assert_eq!(calico["etcd_endpoints"], etcd.endpoint());
    assert_eq!(
        calico["etcd_ca_cert_file"],
        "/etc/cni/net.d/calico-tls/etcd-ca"
    );
    assert_eq!(calico["etcd_cert_file"], "");
    assert_eq!(calico["etcd_key_file"], "");
    assert_eq!(
        calico["kubernetes"]["kubeconfig"],
        "/etc/cni/net.d/calico-kubeconfig"
    );
    let conf = NetConf::parse(calico.to_string().as_bytes()).unwrap();
    assert_eq!(conf.ipam().unwrap().plugin_type, "calico-ipam");
    assert_eq!(
        conf.policy.as_ref().unwrap().policy_type.as_deref(),
        Some("k8s")
    );
    assert_eq!(
        fs::read_to_string(dirs.host_net("calico-tls/etcd-ca")).unwrap(),
        "etcd CA PEM\n"
    );
    assert!(!dirs.host_net("calico-tls/etcd-cert").exists());

    // The kubeconfig: root-only, and it works as the plugin uses it.
    let kubeconfig = dirs.host_net("calico-kubeconfig");
    assert_eq!(mode(&kubeconfig), 0o600);
    let admin = api.client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"serviceAccountName": "api",
                 "containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(admin.clone(), "shop")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let info = cni::k8s::read_pod(kubeconfig.to_str().unwrap(), "shop", "web")
        .await
        .unwrap_or_else(|e| panic!("the plugin's pod read through the kubeconfig: {e}"));
    assert_eq!(info.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(info.service_account.as_deref(), Some("api"));
    let plugin = client_from(&kubeconfig).await;
    match Api::<Secret>::all(plugin.clone())
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("listing secrets as the plugin: {other:?}"),
    }
    match Api::<Pod>::namespaced(plugin, "shop")
        .delete("web", &Default::default())
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("deleting a pod as the plugin: {other:?}"),
    }
    assert!(log.contains("Written"), "{log}");

    // Run again: nothing changed, so no file is replaced.
    let installed: Vec<PathBuf> = [
        dirs.host_bin("calico"),
        dirs.host_bin("calico-ipam"),
        conflist.clone(),
        kubeconfig.clone(),
        dirs.host_net("calico-tls/etcd-ca"),
    ]
    .into();
    let before: Vec<_> = installed.iter().map(|p| identity(p)).collect();
    let log = assert_ok(&install_cni(&dirs, &env));
    let after: Vec<_> = installed.iter().map(|p| identity(p)).collect();
    assert_eq!(before, after, "a file was rewritten: {log}");
    assert!(!log.contains("Written"), "{log}");

    // A new calico binary in the image: only it is replaced.
    let mut newer = fs::read(PLUGINS[0].1).unwrap();
    newer.extend_from_slice(b"\0new build");
    fs::write(dirs.path("image/opt/cni/bin/calico"), &newer).unwrap();
    assert_ok(&install_cni(&dirs, &env));
    assert_eq!(fs::read(dirs.host_bin("calico")).unwrap(), newer);
    assert_ne!(identity(&dirs.host_bin("calico")), before[0]);
    assert_eq!(identity(&dirs.host_bin("calico-ipam")), before[1]);

    // A configuration the plugin would refuse (an MTU below IPv4's minimum) fails the
    // install, naming the problem, and leaves the installed conflist as it was.
    let good = fs::read(&conflist).unwrap();
    let mut bad = env.clone();
    bad.insert("CNI_MTU", "50".into());
    let out = install_cni(&dirs, &bad);
    assert!(!out.status.success(), "an MTU of 50 was installed");
    assert!(
        text(&out.stderr).contains("mtu 50 is outside"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read(&conflist).unwrap(), good);

    // Without a token (not running in a pod) there is no kubeconfig to write, as
    // Calico's; the conflist is still written.
    fs::remove_file(dirs.path("serviceaccount/token")).unwrap();
    fs::remove_file(&kubeconfig).unwrap();
    assert_ok(&install_cni(&dirs, &env));
    assert!(!kubeconfig.exists());
    assert!(conflist.exists());
}
