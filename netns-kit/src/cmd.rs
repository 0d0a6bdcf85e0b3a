//! Running commands to completion.

use std::fmt;
use std::process::{Command, Output, Stdio};

/// A command that could not run or exited non-zero, with what it printed.
#[derive(Debug)]
pub struct Error(pub(crate) String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs `cmd` to completion with stdin closed; a non-zero exit is an error carrying its
/// stderr and stdout.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(out)
}

/// A command's stdout as text.
pub fn stdout(out: Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn command(argv: &[&str]) -> Command {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// Runs `argv` (in the calling thread's namespace) and returns its stdout; panics with its
/// stderr when it fails.
pub fn sh(argv: &[&str]) -> String {
    run(&mut command(argv))
        .map(stdout)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `argv` and reports only whether it succeeded.
pub fn try_sh(argv: &[&str]) -> bool {
    command(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// stdout then stderr of `argv`, success or not (empty when it cannot run).
pub fn output(argv: &[&str]) -> String {
    command(argv)
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_stderr() {
        assert_eq!(sh(&["echo", "hi"]), "hi\n");
        assert!(try_sh(&["true"]));
        assert!(!try_sh(&["false"]));
        assert!(!try_sh(&["/nonexistent/program"]));
        let e = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        assert!(e.to_string().contains("oops"), "{e}");
        assert_eq!(
            output(&["sh", "-c", "echo a; echo b >&2; exit 1"]),
            "a\nb\n"
        );
    }
}
