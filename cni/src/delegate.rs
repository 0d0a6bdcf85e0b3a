//! Running a delegated plugin (the IPAM plugin of `ipam.type`) the way libcni does: found in
//! a `CNI_PATH` directory, run with our environment (`CNI_COMMAND` set to the operation) and
//! the same configuration on stdin; its stdout is a result or an error JSON.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::error::{CniError, INVALID_CONFIG, IO_FAILURE, Result};

/// Finds `plugin` in the `CNI_PATH` directories.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf> {
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return Err(CniError::new(
            INVALID_CONFIG,
            "invalid plugin type",
            format!("{plugin:?} must be a plain file name found in CNI_PATH"),
        ));
    }
    path.iter()
        .map(|dir| dir.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                INVALID_CONFIG,
                format!("plugin {plugin:?} not found"),
                format!(
                    "searched CNI_PATH {}",
                    std::env::join_paths(path)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            )
        })
}

/// Runs `plugin` for `command` with `stdin`; returns its stdout when it succeeds, else the
/// error it reported (or an I/O error naming the plugin when it reported none).
pub async fn exec(plugin: &Path, command: &str, stdin: &[u8]) -> Result<Vec<u8>> {
    let name = plugin.display().to_string();
    let io = |what: &str, e: std::io::Error| {
        CniError::new(IO_FAILURE, format!("{what} {name}"), e.to_string())
    };
    let mut child = tokio::process::Command::new(plugin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io("cannot run", e))?;
    let mut input = child.stdin.take().expect("stdin was piped");
    // A plugin that exits without reading stdin closes the pipe: its exit status tells.
    let write = input.write_all(stdin).await;
    drop(input);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| io("waiting for", e))?;
    if out.status.success() {
        if let Err(e) = write {
            return Err(io("cannot write the configuration to", e));
        }
        return Ok(out.stdout);
    }
    Err(reported_error(&name, command, &out.stdout, out.status))
}

/// The error a failed plugin printed, passed on with its code; else one naming the exit.
fn reported_error(
    name: &str,
    command: &str,
    stdout: &[u8],
    status: std::process::ExitStatus,
) -> CniError {
    #[derive(Deserialize)]
    struct Wire {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<Wire>(stdout) {
        Ok(w) => CniError::new(w.code, format!("{name} {command}: {}", w.msg), w.details),
        Err(_) => CniError::new(
            IO_FAILURE,
            format!("{name} {command} failed ({status})"),
            String::from_utf8_lossy(stdout).into_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_plain_file_names() {
        assert_eq!(
            find("../bin/sh", &[PathBuf::from("/")]).unwrap_err().code,
            INVALID_CONFIG
        );
        let e = find("no-such-plugin", &[PathBuf::from("/nonexistent")]).unwrap_err();
        assert!(e.details.contains("/nonexistent"), "{e}");
    }

    #[tokio::test]
    async fn a_plugin_error_keeps_its_code() {
        let dir = std::env::temp_dir().join(format!("cni-delegate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("failing");
        std::fs::write(
            &script,
            "#!/bin/sh\ncat >/dev/null\necho '{\"code\":11,\"msg\":\"busy\",\"details\":\"d\"}'\nexit 1\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        let found = find("failing", std::slice::from_ref(&dir)).unwrap();
        let e = exec(&found, "ADD", b"{}").await.unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.code, 11);
        assert!(e.msg.contains("busy"), "{e}");
    }
}
