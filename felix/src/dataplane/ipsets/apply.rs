//! Running `ipset`: read back with `ipset save`, write with one
//! `ipset -exist restore` per batch. `-exist` makes add/del/create idempotent,
//! which matters because `ipset restore` is not transactional: commands before
//! a failing line stay applied, and the retry re-reads and re-plans from there.

use std::collections::HashSet;
use std::process::Stdio;

use thiserror::Error;
use tokio::process::Command;
use tracing::{info, warn};

use super::{
    IpSet, IpSetSpecError, IpsetParseError, IpsetPlan, SET_PREFIX, SavedSet, SavedSets, parse_save,
    plan_update, render_remove_stale, render_update, validate_all,
};
use crate::dataplane::iptables::failed_line;
use crate::dataplane::process::output_with_input;

#[derive(Debug, Error)]
pub enum IpsetError {
    #[error(transparent)]
    Invalid(#[from] IpSetSpecError),
    #[error("running ipset {args}: {source}")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ipset {args} failed: {stderr}")]
    Command { args: String, stderr: String },
    #[error(transparent)]
    Parse(#[from] IpsetParseError),
    #[error(
        "ipset restore failed after {attempts} attempt(s){}: {stderr}",
        line.as_ref().map(|(n, text)| format!(" at input line {n} ({text:?})")).unwrap_or_default()
    )]
    Restore {
        attempts: u32,
        line: Option<(usize, String)>,
        stderr: String,
    },
}

/// What [`Ipsets::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsetOutcome {
    pub plan: IpsetPlan,
    pub attempts: u32,
    /// `ipset save` read-backs (0 when the remembered state was used).
    pub reads: u32,
}

/// Runs the `ipset` tool (in the calling thread's network namespace), and
/// remembers what our sets hold after each successful write, so a sync reads
/// the kernel back (`ipset save`, which grows with every member of every set)
/// only at startup, after [`forget`](Self::forget) (the periodic refresh) and
/// after a failure.
#[derive(Clone, Debug)]
pub struct Ipsets {
    program: String,
    max_attempts: u32,
    known: Option<SavedSets>,
}

impl Default for Ipsets {
    fn default() -> Self {
        Self {
            program: "ipset".into(),
            max_attempts: 3,
            known: None,
        }
    }
}

impl Ipsets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Another program taking `ipset`'s arguments (tests).
    pub fn with_program(mut self, program: &str) -> Self {
        self.program = program.into();
        self
    }

    pub fn with_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Forgets what the sets hold: the next sync reads them back and repairs them.
    pub fn forget(&mut self) {
        self.known = None;
    }

    /// What our sets hold: remembered, or read back. Taken out while in use,
    /// so that a failure leaves nothing remembered.
    async fn take_known(&mut self) -> Result<(SavedSets, bool), IpsetError> {
        match self.known.take() {
            Some(known) => Ok((known, false)),
            None => Ok((self.save().await?, true)),
        }
    }

    async fn run(&self, args: &[&str], input: Option<&str>) -> Result<String, IpsetError> {
        let joined = args.join(" ");
        let spawn_err = |source| IpsetError::Spawn {
            args: joined.clone(),
            source,
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        let out = match input {
            Some(input) => output_with_input(cmd, input.as_bytes()).await,
            None => cmd.stdin(Stdio::null()).output().await,
        }
        .map_err(spawn_err)?;
        if !out.status.success() {
            return Err(IpsetError::Command {
                args: joined,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Names of our sets (`ipset list -n`, `cali40` prefix).
    pub async fn list_names(&self) -> Result<Vec<String>, IpsetError> {
        let out = self.run(&["list", "-n"], None).await?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|n| n.starts_with(SET_PREFIX))
            .map(str::to_string)
            .collect())
    }

    /// Our sets with their members (`ipset save`).
    pub async fn save(&self) -> Result<SavedSets, IpsetError> {
        Ok(parse_save(&self.run(&["save"], None).await?)?)
    }

    async fn restore(&self, input: &str) -> Result<(), IpsetError> {
        match self.run(&["-exist", "restore"], Some(input)).await {
            Ok(_) => Ok(()),
            Err(IpsetError::Command { stderr, .. }) => {
                let line = failed_line(&stderr).map(|n| {
                    (
                        n,
                        input
                            .lines()
                            .nth(n.saturating_sub(1))
                            .unwrap_or("")
                            .to_string(),
                    )
                });
                Err(IpsetError::Restore {
                    attempts: 1,
                    line,
                    stderr,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Brings every desired set to its members (creating, swapping or
    /// adding/deleting as [`plan_update`] decides); never destroys a set that
    /// is merely not desired (see [`remove_stale`](Self::remove_stale)).
    pub async fn sync(&mut self, desired: &[IpSet]) -> Result<IpsetOutcome, IpsetError> {
        validate_all(desired)?;
        let mut attempt = 0;
        let mut reads = 0;
        loop {
            let (mut actual, read) = self.take_known().await?;
            reads += u32::from(read);
            let plan = plan_update(desired, &actual);
            if plan.is_empty() {
                self.known = Some(actual);
                return Ok(IpsetOutcome {
                    plan,
                    attempts: attempt,
                    reads,
                });
            }
            attempt += 1;
            match self.restore(&render_update(desired, &actual)).await {
                Ok(()) => {
                    info!(
                        created = plan.create.len(),
                        swapped = plan.swap.len(),
                        updated = plan.delta.len(),
                        recreated = plan.recreate.len(),
                        reads,
                        "ipsets synced"
                    );
                    record_update(&mut actual, desired, &plan);
                    self.known = Some(actual);
                    return Ok(IpsetOutcome {
                        plan,
                        attempts: attempt,
                        reads,
                    });
                }
                Err(IpsetError::Restore { line, stderr, .. }) => {
                    warn!(attempt, ?line, %stderr, "ipset restore failed");
                    if attempt >= self.max_attempts {
                        return Err(IpsetError::Restore {
                            attempts: attempt,
                            line,
                            stderr,
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Desired sets that exist under their name with another type or family
    /// (see [`IpsetPlan::recreate`](super::IpsetPlan::recreate)).
    pub async fn incompatible(&mut self, desired: &[IpSet]) -> Result<Vec<String>, IpsetError> {
        let (actual, _) = self.take_known().await?;
        let names = desired
            .iter()
            .filter(|set| {
                actual
                    .get(&set.name)
                    .is_some_and(|have| !set.compatible_with(have))
            })
            .map(|set| set.name.clone())
            .collect();
        self.known = Some(actual);
        Ok(names)
    }

    /// Destroys our sets that are not desired. Call after the iptables rules
    /// that referenced them are gone: the kernel refuses to destroy a set in use.
    pub async fn remove_stale(&mut self, desired: &[IpSet]) -> Result<Vec<String>, IpsetError> {
        let (mut actual, _) = self.take_known().await?;
        let input = render_remove_stale(desired, &actual);
        if input.is_empty() {
            self.known = Some(actual);
            return Ok(Vec::new());
        }
        self.restore(&input).await?;
        let removed: Vec<String> = input
            .lines()
            .filter_map(|l| l.strip_prefix("destroy "))
            .map(str::to_string)
            .collect();
        for name in &removed {
            actual.remove(name);
        }
        self.known = Some(actual);
        info!(?removed, "stale ipsets destroyed");
        Ok(removed)
    }
}

/// Makes `known` what the kernel holds after `plan` was applied for `desired`.
fn record_update(known: &mut SavedSets, desired: &[IpSet], plan: &IpsetPlan) {
    for name in &plan.destroy_temps {
        known.remove(name);
    }
    let whole: HashSet<&str> = plan
        .create
        .iter()
        .chain(&plan.recreate)
        .chain(&plan.swap)
        .map(String::as_str)
        .collect();
    for set in desired.iter().filter(|s| whole.contains(s.name.as_str())) {
        known.insert(
            set.name.clone(),
            SavedSet {
                name: set.name.clone(),
                kind: Some(set.kind),
                family: Some(set.family),
                members: set.members.clone(),
                has_extras: false,
            },
        );
    }
    for (name, adds, dels) in &plan.delta {
        if let Some(set) = known.get_mut(name) {
            for m in dels {
                set.members.remove(m);
            }
            set.members.extend(adds.iter().copied());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::process::test_support::{is_text_busy, rejecting_tool};

    /// A large restore input whose first line is bad: `ipset` stops reading
    /// early; the error keeps its stderr and names the line.
    #[tokio::test]
    async fn large_input_rejected_early_reports_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = rejecting_tool(dir.path(), "ipset v7.17: Error in line 1: Unknown command");
        let ipsets = Ipsets::new().with_program(&tool);
        let mut input = String::from("bogus cali40x\n");
        while input.len() < 8 << 20 {
            input.push_str("add cali40x 10.0.0.1\n");
        }
        let err = loop {
            match ipsets.restore(&input).await {
                Err(IpsetError::Spawn { source, .. }) if is_text_busy(&source) => continue,
                other => break other.expect_err("the tool rejects line 1"),
            }
        };
        match err {
            IpsetError::Restore { line, stderr, .. } => {
                assert_eq!(line, Some((1, "bogus cali40x".to_string())));
                assert!(stderr.contains("Error in line 1"), "{stderr}");
            }
            other => panic!("expected a restore error, got {other}"),
        }
    }
}
