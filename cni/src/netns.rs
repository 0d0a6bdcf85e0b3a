//! Work inside the container's network namespace.
//!
//! `setns(2)` switches only the calling thread, and a tokio worker must never change
//! namespace (other tasks would run in it), so each visit gets a dedicated OS thread that
//! enters the namespace, runs its own current-thread runtime with its own rtnetlink
//! connection (a netlink socket talks to the namespace it was created in), and exits. The
//! caller awaits the answer on a channel, so its runtime keeps serving etcd meanwhile.

use std::fs::File;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};
use rtnetlink::Handle;

use crate::error::{CniError, INVALID_ENV, NETLINK_FAILURE, Result};

/// Why a namespace could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot open network namespace {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot enter {path} (is it a network namespace?): {errno}")]
    Enter { path: PathBuf, errno: nix::Error },
    #[error("cannot open an rtnetlink socket in {path}: {source}")]
    Netlink { path: PathBuf, source: io::Error },
    #[error("the thread working in {path} died: {message}")]
    Thread { path: PathBuf, message: String },
}

impl From<NetnsError> for CniError {
    fn from(e: NetnsError) -> CniError {
        let code = match e {
            NetnsError::Missing { .. } | NetnsError::Open { .. } | NetnsError::Enter { .. } => {
                INVALID_ENV
            }
            _ => NETLINK_FAILURE,
        };
        CniError::new(
            code,
            "cannot work in the container's network namespace",
            e.to_string(),
        )
    }
}

/// Opens a namespace file, telling "gone" apart from other failures.
pub fn open(path: &Path) -> std::result::Result<File, NetnsError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            NetnsError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            NetnsError::Open {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Runs `work` with an rtnetlink handle inside the namespace at `path` and returns what it
/// returns. The namespace is opened before the thread starts, so a missing one is reported
/// as [`NetnsError::Missing`].
pub async fn run_in<F, Fut, T>(path: &Path, work: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
    T: Send + 'static,
{
    let file = open(path)?;
    let path = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("cni-netns".into())
        .spawn(move || {
            let _ = tx.send(enter_and_run(&thread_path, file, work));
        })
        .map_err(|e| NetnsError::Thread {
            path: path.clone(),
            message: e.to_string(),
        })?;
    rx.await.map_err(|_| NetnsError::Thread {
        path,
        message: "it panicked".into(),
    })?
}

fn enter_and_run<F, Fut, T>(path: &Path, file: File, work: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Enter {
        path: path.to_path_buf(),
        errno,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| NetnsError::Netlink {
            path: path.to_path_buf(),
            source,
        })?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetnsError::Netlink {
                path: path.to_path_buf(),
                source,
            })?;
        let task = tokio::spawn(connection);
        let out = work(handle).await;
        task.abort();
        out
    })
}

/// An rtnetlink handle in the calling thread's namespace, with its connection task spawned
/// on the current runtime.
pub fn connect_here() -> Result<(Handle, tokio::task::JoinHandle<()>)> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| {
        CniError::new(
            NETLINK_FAILURE,
            "cannot open an rtnetlink socket",
            e.to_string(),
        )
    })?;
    Ok((handle, tokio::spawn(connection)))
}
