//! Running the iptables tools: backend detection, `iptables-save` read-back
//! (when nothing is remembered) and restores with bounded retries: for nft,
//! one long-lived `iptables-restore` that commits each change
//! ([`RestoreSession`]); for legacy, or where that does not work, one
//! `iptables-restore --noflush --wait` process per change. Processes are
//! spawned from the calling thread, so they run in its network namespace.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;
use tracing::{debug, info, warn};

use super::kernel::KernelTable;
use super::parse::{ParseError, SavedTable, parse_save};
use super::render::TablePlan;
use super::session::{RestoreSession, SessionError};
use super::{DesiredTable, DesiredTableError, Table};
use crate::calc::desired::Family;
use crate::dataplane::process::output_with_input;

/// Which netfilter API the iptables tools drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `iptables-nft-*` (nf_tables kernel API; Debian's default).
    Nft,
    /// `iptables-legacy-*` (x_tables).
    Legacy,
}

impl Backend {
    fn tool(self, family: Family, what: &str) -> String {
        let base = match family {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        };
        let kind = match self {
            Backend::Nft => "nft",
            Backend::Legacy => "legacy",
        };
        format!("{base}-{kind}-{what}")
    }

    pub fn save_program(self, family: Family) -> String {
        self.tool(family, "save")
    }

    pub fn restore_program(self, family: Family) -> String {
        self.tool(family, "restore")
    }
}

/// Picks the backend the way Calico's `FELIX_IPTABLESBACKEND=Auto` does: the
/// one whose tables already hold rules (kube-proxy or the distribution put them
/// there, and mixing both breaks packet paths), legacy only when it has more
/// rules than nft, nft otherwise.
pub fn choose_backend(nft_save: &str, legacy_save: &str) -> Backend {
    let count = |s: &str| s.lines().filter(|l| l.starts_with("-A ")).count();
    if count(legacy_save) > count(nft_save) {
        Backend::Legacy
    } else {
        Backend::Nft
    }
}

/// Runs both `iptables-*-save` tools and applies [`choose_backend`]. A tool
/// that is missing or fails counts as "no rules".
pub async fn detect_backend() -> Backend {
    async fn save(program: &str) -> String {
        match Command::new(program).stdin(Stdio::null()).output().await {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => String::new(),
        }
    }
    let nft = save("iptables-nft-save").await;
    let legacy = save("iptables-legacy-save").await;
    let backend = choose_backend(&nft, &legacy);
    info!(?backend, "iptables backend detected");
    backend
}

#[derive(Debug, Error)]
pub enum IptablesError {
    #[error("table {table}: desired state is invalid: {0}", table = .0.table())]
    Invalid(#[from] DesiredTableError),
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} -t {table} failed: {stderr}")]
    Save {
        program: String,
        table: Table,
        stderr: String,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(
        "{program} (table {table}) failed after {attempts} attempt(s){}: {stderr}",
        line.as_ref().map(|(n, text)| format!(" at input line {n} ({text:?})")).unwrap_or_default()
    )]
    Restore {
        program: String,
        table: Table,
        attempts: u32,
        /// The failing input line number (1-based) and its text, when the
        /// tool said which line it was.
        line: Option<(usize, String)>,
        stderr: String,
    },
}

impl DesiredTableError {
    fn table(&self) -> Table {
        match self {
            DesiredTableError::NotOurChain { table, .. }
            | DesiredTableError::ChainNameTooLong { table, .. }
            | DesiredTableError::DuplicateChain { table, .. }
            | DesiredTableError::BadRule { table, .. }
            | DesiredTableError::DanglingJump { table, .. }
            | DesiredTableError::NotBaseChain { table, .. } => *table,
        }
    }
}

/// The input line an `iptables-restore` error names. Formats seen:
/// legacy `iptables-restore: line 3 failed`, nft `Error occurred at line: 3`,
/// nft commit errors `line 3: CHAIN_DEL failed (Device or resource busy)`.
pub fn failed_line(stderr: &str) -> Option<usize> {
    let mut rest = stderr;
    while let Some(pos) = rest.find("line") {
        let after = rest[pos + 4..].trim_start_matches([':', ' ']);
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
        rest = &rest[pos + 4..];
    }
    None
}

/// The input line (number, text) a restore failure is about. iptables-nft
/// checks chain references only at COMMIT and then names the COMMIT line
/// (`Chain 'X' does not exist ... line: 6`); in that case the first line that
/// mentions the chain is the one to blame.
pub fn offending_line(stderr: &str, input: &str) -> Option<(usize, String)> {
    blame(failed_line(stderr), stderr, input)
}

/// [`offending_line`] where the tool named line `named` of `input`.
fn blame(named: Option<usize>, stderr: &str, input: &str) -> Option<(usize, String)> {
    let text_of = |n: usize| {
        input
            .lines()
            .nth(n.saturating_sub(1))
            .unwrap_or("")
            .to_string()
    };
    if let Some(n) = named
        && text_of(n) != "COMMIT"
    {
        return Some((n, text_of(n)));
    }
    let chain = stderr
        .split_once("Chain '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(name, _)| name)
        .or_else(|| {
            stderr
                .split_once("chain ")
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(""))
        })
        .filter(|name| !name.is_empty());
    if let Some(chain) = chain {
        let found = input.lines().enumerate().find(|(_, l)| {
            let mut words = l.split_whitespace().skip(1);
            words.any(|w| w == chain)
        });
        if let Some((i, l)) = found {
            return Some((i + 1, l.to_string()));
        }
    }
    named.map(|n| (n, text_of(n)))
}

/// What [`Iptables::sync_table`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The plan that was applied (empty when the table was already in sync).
    pub plan: TablePlan,
    /// Restore runs (0 when nothing had to change).
    pub attempts: u32,
    /// `iptables-save` read-backs (0 when the remembered state was used).
    pub reads: u32,
}

/// Runs the iptables tools of one backend and IP family, and remembers what
/// each table holds (see [`KernelTable`]): a sync reads the kernel back only
/// when nothing is remembered, which is at startup, after
/// [`forget`](Self::forget) (the periodic refresh) and after a failure.
#[derive(Debug)]
pub struct Iptables {
    backend: Backend,
    family: Family,
    save_program: String,
    restore_program: String,
    max_attempts: u32,
    first_backoff: Duration,
    tables: HashMap<Table, KernelTable>,
    /// Whether restores go through a long-lived [`RestoreSession`]; turned
    /// off for good when the tool cannot do that.
    persistent: bool,
    session: Option<RestoreSession>,
}

impl Iptables {
    pub fn new(backend: Backend, family: Family) -> Self {
        Self {
            backend,
            family,
            save_program: backend.save_program(family),
            restore_program: backend.restore_program(family),
            max_attempts: 3,
            first_backoff: Duration::from_millis(100),
            tables: HashMap::new(),
            persistent: backend == Backend::Nft,
            session: None,
        }
    }

    /// One long-lived restore process (nft only; the default there) or one
    /// process per change.
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent && self.backend == Backend::Nft;
        self.session = None;
        self
    }

    /// Bounded retry: `attempts` restore runs at most, waiting `first_backoff`,
    /// then doubling, between them.
    pub fn with_retry(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.max_attempts = attempts.max(1);
        self.first_backoff = first_backoff;
        self
    }

    /// Other `save`/`restore` programs taking the same arguments (tests wrap
    /// the real tools to see every run).
    pub fn with_programs(mut self, save: &str, restore: &str) -> Self {
        self.save_program = save.into();
        self.restore_program = restore.into();
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Forgets what every table holds: the next sync of each reads it back
    /// and repairs whatever someone else changed (the periodic refresh).
    pub fn forget(&mut self) {
        self.tables.clear();
    }

    /// `iptables-save -t <table>`, parsed.
    pub async fn save(&self, table: Table) -> Result<SavedTable, IptablesError> {
        let program = self.save_program.clone();
        let out = Command::new(&program)
            .args(["-t", table.name()])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| IptablesError::Spawn {
                program: program.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(IptablesError::Save {
                program,
                table,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(parse_save(table, &String::from_utf8_lossy(&out.stdout))?)
    }

    /// Commits `input`: in the long-lived restore process when there is
    /// one, else in one `iptables-restore --noflush --wait` process.
    /// On failure returns the stderr and the failing line, if named.
    pub async fn restore(&mut self, table: Table, input: &str) -> Result<(), IptablesError> {
        if self.persistent
            && let Some(result) = self.restore_in_session(table, input).await
        {
            return result;
        }
        self.restore_once(table, input).await
    }

    /// [`restore`](Self::restore) through the session, started when there is
    /// none; `None` when the tool cannot keep one open (persistent mode is
    /// then off). A failed session is dropped: the next restore starts anew.
    async fn restore_in_session(
        &mut self,
        table: Table,
        input: &str,
    ) -> Option<Result<(), IptablesError>> {
        let mut session = match self.session.take() {
            Some(session) => session,
            None => match RestoreSession::start(&self.restore_program).await {
                Ok(session) => session,
                Err(error) => {
                    warn!(
                        program = %self.restore_program,
                        ?error,
                        "iptables-restore does not confirm commits; one process per change from now on"
                    );
                    self.persistent = false;
                    return None;
                }
            },
        };
        let failure = |named: Option<usize>, stderr: String| IptablesError::Restore {
            program: self.restore_program.clone(),
            table,
            attempts: 1,
            line: blame(named, &stderr, input),
            stderr,
        };
        Some(match session.apply(input).await {
            Ok(()) => {
                self.session = Some(session);
                Ok(())
            }
            Err(SessionError::Exited { stderr, line, .. }) => Err(failure(line, stderr)),
            Err(SessionError::Io(e)) => Err(failure(None, e.to_string())),
            Err(SessionError::TimedOut) => Err(failure(
                None,
                "no commit confirmation in time; the process was killed".into(),
            )),
        })
    }

    /// Feeds `input` to one `iptables-restore --noflush --wait` process.
    async fn restore_once(&self, table: Table, input: &str) -> Result<(), IptablesError> {
        let program = self.restore_program.clone();
        let spawn_err = |source| IptablesError::Spawn {
            program: program.clone(),
            source,
        };
        let mut cmd = Command::new(&program);
        cmd.args(["--noflush", "--wait"]);
        let out = output_with_input(cmd, input.as_bytes())
            .await
            .map_err(spawn_err)?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let line = offending_line(&stderr, input);
        Err(IptablesError::Restore {
            program,
            table,
            attempts: 1,
            line,
            stderr,
        })
    }

    /// Makes the table match `desired`, writing only what differs (first
    /// sync, a change, or, after a read-back, someone else's tampering) in one
    /// restore. Plans against the remembered table when there is one, else
    /// reads the kernel back first. On a restore failure, logs the offending
    /// line, forgets the table and retries from a fresh read with exponential
    /// backoff, up to the attempt bound.
    pub async fn sync_table(
        &mut self,
        desired: &DesiredTable,
    ) -> Result<SyncOutcome, IptablesError> {
        let table = desired.table;
        // Uncapped doubling: the attempt bound ends it.
        let mut backoff = daemon_kit::backoff::Backoff::new(self.first_backoff, Duration::MAX);
        let mut attempt = 0;
        let mut reads = 0;
        loop {
            // Taken out while in use: a failure leaves nothing remembered.
            let kernel = match self.tables.remove(&table) {
                Some(kernel) => kernel,
                None => {
                    desired.validate()?;
                    reads += 1;
                    KernelTable::from_saved(&self.save(table).await?)
                }
            };
            let todo = kernel.plan(desired);
            if reads == 0 {
                // Unchanged chains were checked when they were written.
                let written: HashSet<&str> = todo.write_chains.iter().map(String::as_str).collect();
                desired.validate_chains(|c| written.contains(c.name.as_str()))?;
            }
            let mut kernel = kernel;
            if todo.is_empty() {
                kernel.record(desired, &todo);
                self.tables.insert(table, kernel);
                debug!(%table, attempts = attempt, reads, "iptables table in sync");
                return Ok(SyncOutcome {
                    plan: todo,
                    attempts: attempt,
                    reads,
                });
            }
            attempt += 1;
            let input = kernel.render(desired, &todo);
            let restore_started = std::time::Instant::now();
            match self.restore(table, &input).await {
                Ok(()) => {
                    kernel.record(desired, &todo);
                    self.tables.insert(table, kernel);
                    info!(
                        %table,
                        written = todo.write_chains.len(),
                        deleted = todo.delete_chains.len(),
                        base_chains_fixed = todo.fix_base_chains.len(),
                        reads,
                        restore = ?restore_started.elapsed(),
                        "iptables table synced"
                    );
                    return Ok(SyncOutcome {
                        plan: todo,
                        attempts: attempt,
                        reads,
                    });
                }
                Err(IptablesError::Restore {
                    program,
                    line,
                    stderr,
                    ..
                }) => {
                    warn!(%table, attempt, ?line, %stderr, "iptables-restore failed");
                    if attempt >= self.max_attempts {
                        return Err(IptablesError::Restore {
                            program,
                            table,
                            attempts: attempt,
                            line,
                            stderr,
                        });
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::process::test_support::{is_text_busy, rejecting_tool};

    #[test]
    fn failed_line_formats() {
        assert_eq!(failed_line("iptables-restore: line 3 failed"), Some(3));
        assert_eq!(
            failed_line(
                "iptables-nft-restore v1.8.9 (nf_tables): Chain 'nosuch' does not exist\nError occurred at line: 12\nTry `iptables-nft-restore -h'"
            ),
            Some(12)
        );
        assert_eq!(
            failed_line(
                "iptables-nft-restore v1.8.9 (nf_tables): \nline 7: CHAIN_DEL failed (Device or resource busy): chain cali-x"
            ),
            Some(7)
        );
        assert_eq!(
            failed_line("Another app is currently holding the xtables lock"),
            None
        );
        assert_eq!(
            failed_line("multiline comment, then line 4 failed"),
            Some(4)
        );
    }

    #[test]
    fn offending_line_blames_the_reference_not_commit() {
        let input =
            "*filter\n:cali-x - [0:0]\n-A cali-x -j ACCEPT\n-A cali-x -p tcp -j NOSUCH\nCOMMIT\n";
        let stderr = "iptables-nft-restore v1.8.9 (nf_tables): Chain 'NOSUCH' does not exist\nError occurred at line: 5\n";
        assert_eq!(
            offending_line(stderr, input),
            Some((4, "-A cali-x -p tcp -j NOSUCH".to_string()))
        );
        let stderr = "unknown option \"--dpxort\"\nError occurred at line: 3\n";
        assert_eq!(
            offending_line(stderr, input),
            Some((3, "-A cali-x -j ACCEPT".to_string()))
        );
        let input = "*filter\n-F cali-y\n-X cali-y\nCOMMIT\n";
        let stderr = "line 3: CHAIN_DEL failed (Device or resource busy): chain cali-y";
        assert_eq!(
            offending_line(stderr, input),
            Some((3, "-X cali-y".to_string()))
        );
        assert_eq!(offending_line("lock held", input), None);
    }

    /// A large input whose first line is bad: the tool exits before reading
    /// the rest; the error still carries its stderr and the offending line.
    #[tokio::test]
    async fn large_input_rejected_early_reports_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = rejecting_tool(dir.path(), "iptables-restore: line 1 failed");
        let mut ipt = Iptables::new(Backend::Nft, Family::V4).with_programs("true", &tool);
        let mut input = String::from("*filter-bad\n");
        while input.len() < 8 << 20 {
            input.push_str("-A cali-x -m comment --comment \"cali:padpadpad\" -j ACCEPT\n");
        }
        input.push_str("COMMIT\n");
        let err = loop {
            match ipt.restore(Table::Filter, &input).await {
                Err(IptablesError::Spawn { source, .. }) if is_text_busy(&source) => continue,
                other => break other.expect_err("the tool rejects line 1"),
            }
        };
        match err {
            IptablesError::Restore { line, stderr, .. } => {
                assert_eq!(line, Some((1, "*filter-bad".to_string())));
                assert_eq!(stderr, "iptables-restore: line 1 failed");
            }
            other => panic!("expected a restore error, got {other}"),
        }
    }

    /// A restore tool that cannot confirm commits (here: exits when asked
    /// for --verbose) is used one process per change instead.
    #[tokio::test]
    async fn falls_back_to_one_process_per_change() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let tool = dir.path().join("restore");
        let body = format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$*\" in *--verbose*) exit 0 ;; esac\ncat >> {log}\n",
            log = log.display()
        );
        std::fs::write(&tool, body).expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut ipt =
            Iptables::new(Backend::Nft, Family::V4).with_programs("true", &tool.to_string_lossy());
        for input in ["*filter\nCOMMIT\n", "*nat\nCOMMIT\n"] {
            loop {
                match ipt.restore(Table::Filter, input).await {
                    Err(IptablesError::Spawn { source, .. }) if is_text_busy(&source) => continue,
                    other => break other.expect("one-shot restore"),
                }
            }
        }
        assert_eq!(
            std::fs::read_to_string(&log).expect("log"),
            "--noflush --verbose\n--noflush --wait\n*filter\nCOMMIT\n--noflush --wait\n*nat\nCOMMIT\n",
            "one session attempt, then one process per change"
        );
    }

    #[test]
    fn backend_choice() {
        let rules = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n";
        let empty = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(choose_backend(empty, rules), Backend::Legacy);
        assert_eq!(choose_backend(rules, empty), Backend::Nft);
        assert_eq!(choose_backend(empty, empty), Backend::Nft, "default is nft");
        assert_eq!(choose_backend(rules, rules), Backend::Nft);
        assert_eq!(
            Backend::Legacy.restore_program(Family::V6),
            "ip6tables-legacy-restore"
        );
        assert_eq!(Backend::Nft.save_program(Family::V4), "iptables-nft-save");
    }
}
