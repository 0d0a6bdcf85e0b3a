//! Runs the real calicoctl binary against a real etcd (config::testing::EtcdServer).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use config::datastore::Kv;
use config::testing::EtcdServer;

pub struct Ctl {
    pub etcd: EtcdServer,
    config_file: tempfile::NamedTempFile,
}

pub struct Run {
    pub stdout: String,
    pub success: bool,
}

impl Ctl {
    pub async fn start() -> Ctl {
        let etcd = EtcdServer::start().await;
        let mut config_file = tempfile::NamedTempFile::new().unwrap();
        write!(
            config_file,
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: {}\n",
            etcd.endpoint()
        )
        .unwrap();
        Ctl { etcd, config_file }
    }

    /// Runs `calicoctl -c <cfg> ARGS`, feeding `stdin` when given.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
        cmd.arg("-c")
            .arg(self.config_file.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn calicoctl");
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        Run {
            stdout: String::from_utf8(out.stdout).unwrap(),
            success: out.status.success(),
        }
    }

    /// Every key and value in etcd, to prove a refused command wrote nothing.
    pub async fn dump(&self) -> Vec<Kv> {
        let ds = self.etcd.datastore().await;
        ds.list_raw("/").await.unwrap().0
    }
}

pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    path.to_str().unwrap().to_string()
}

/// Compares with `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites the file instead.
pub fn assert_golden(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {}: {e} (run with UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

/// The cells of a bordered table, row by row (header included).
pub fn table_rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}
