//! NEEDS ROOT. Every golden file of `calc_golden` is loaded into the kernel, in a
//! throwaway network namespace (`unshare -n`, gone when the shell exits): ipsets
//! first, then the raw, mangle, filter and nat `iptables-restore --noflush` input. This proves
//! the calculated text is input the kernel accepts, which a golden alone cannot.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let to = text[from..].find(end).map_or(text.len(), |i| from + i);
    &text[from..to]
}

#[test]
fn goldens_load_into_the_kernel() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/calc");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let ipsets = section(&text, "# ipset restore\n", "# routes");
        let raw = section(
            &text,
            "# iptables-restore --noflush (raw)\n",
            "# iptables-restore",
        );
        let mangle = section(
            &text,
            "# iptables-restore --noflush (mangle)\n",
            "# iptables-restore",
        );
        let filter = section(
            &text,
            "# iptables-restore --noflush (filter)\n",
            "# iptables-restore",
        );
        let nat = section(
            &text,
            "# iptables-restore --noflush (nat)\n",
            "# ipset restore",
        );
        // One shell per file; each step's stdin comes from its own file descriptor.
        let dirtmp = tempfile::tempdir().unwrap();
        let tables = [
            ("ipsets", ipsets),
            ("raw", raw),
            ("mangle", mangle),
            ("filter", filter),
            ("nat", nat),
        ];
        for (name, body) in tables {
            std::fs::write(dirtmp.path().join(name), body).unwrap();
        }
        let script = "set -e; ipset restore < ipsets; iptables-restore --noflush < raw; \
                      iptables-restore --noflush < mangle; iptables-restore --noflush < filter; \
                      iptables-restore --noflush < nat; iptables-save | grep -c -- '-A cali-'";
        let child = Command::new("unshare")
            .args(["-n", "sh", "-c", script])
            .current_dir(dirtmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare runs (needs root)");
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: kernel refused it: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let rules: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let want = text.lines().filter(|l| l.starts_with("-A cali-")).count();
        assert_eq!(rules, want, "{}: rules in the kernel", path.display());
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} golden files found");
}
