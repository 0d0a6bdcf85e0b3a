//! ADD as a sequence of steps, each pushing what reverses it, so that an ADD that fails at
//! any point leaves nothing behind (spec: a failed ADD must not leak addresses or links).

use std::path::PathBuf;

use config::datastore::Datastore;

use crate::error::{CniError, Result};
use crate::wep::Identity;

/// One completed step, described by how to reverse it.
#[derive(Clone)]
pub enum Undo {
    /// Run the IPAM plugin's DEL with the same configuration.
    IpamDel { plugin: PathBuf, stdin: Vec<u8> },
    /// Delete the host end of the veth (the pod end goes with it).
    HostLink { name: String },
    /// Delete the WorkloadEndpoint if it is still this container's.
    Wep { ds: Datastore, id: Identity },
}

impl std::fmt::Debug for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undo::IpamDel { plugin, .. } => write!(f, "IPAM DEL via {}", plugin.display()),
            Undo::HostLink { name } => write!(f, "delete interface {name}"),
            Undo::Wep { id, .. } => write!(f, "delete WorkloadEndpoint {}", id.wep_name()),
        }
    }
}

/// The steps done so far, reversed last-first by [`UndoStack::unwind`].
#[derive(Default)]
pub struct UndoStack {
    steps: Vec<Undo>,
}

impl UndoStack {
    pub fn push(&mut self, undo: Undo) {
        self.steps.push(undo);
    }

    /// Reverses every step, newest first. Keeps going when one fails (logging it), so that
    /// as much as possible is cleaned up; the caller reports the original error.
    pub async fn unwind(self, cause: &CniError) {
        for step in self.steps.into_iter().rev() {
            let what = format!("{step:?}");
            if let Err(e) = reverse(step).await {
                tracing::error!(step = %what, error = %e, cause = %cause, "cleanup after a failed ADD failed");
            } else {
                tracing::info!(step = %what, "reversed after a failed ADD");
            }
        }
    }
}

async fn reverse(step: Undo) -> Result<()> {
    match step {
        Undo::IpamDel { plugin, stdin } => {
            crate::delegate::exec(&plugin, "DEL", &stdin).await?;
        }
        Undo::HostLink { name } => {
            let (h, task) = crate::netns::connect_here()?;
            let out = crate::link::delete_by_name(&h, &name).await;
            task.abort();
            out?;
        }
        Undo::Wep { ds, id } => {
            crate::wep::delete_if_owned(&ds, &id).await?;
        }
    }
    Ok(())
}

/// Environment variable naming a step after which ADD fails on purpose, so tests can prove
/// that every step is reversed. Values: `after-ipam`, `after-veth`, `after-pod`, `after-route`,
/// `after-wep`.
pub const FAILPOINT_ENV: &str = "CALICO_CNI_FAILPOINT";

/// The (plugin-specific) code of a failpoint's error.
pub const FAILPOINT_CODE: u32 = 199;

/// Fails with a plugin error when [`FAILPOINT_ENV`] names `step`.
pub fn failpoint(step: &str) -> Result<()> {
    if std::env::var(FAILPOINT_ENV).ok().as_deref() == Some(step) {
        return Err(CniError::new(
            FAILPOINT_CODE,
            format!("failpoint {step} reached"),
            format!("{FAILPOINT_ENV}={step} is set"),
        ));
    }
    Ok(())
}
