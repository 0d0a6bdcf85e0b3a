//! Per-run names, and removing what a killed run left.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::netns::remove_netns;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `<tag><pid>x<n>`: unique to this process and call. The pid is whole, so that
/// [`sweep_stale`] can tell whether the run that made a name still runs (pids are below
/// 2^22: 7 digits).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}

/// `<tag><pid mod 100000><n in base 36>`: unique to this process and call, short enough
/// that an interface name (15 bytes) holds it and a few more characters.
pub fn short_unique(tag: &str) -> String {
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut counter = String::new();
    loop {
        counter.insert(0, char::from_digit(n % 36, 36).expect("digit below 36"));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    format!("{tag}{}{counter}", std::process::id() % 100_000)
}

/// Removes namespaces named `<tag><pid>x<n>` (see [`unique`]) for any of `tags` whose
/// creating process no longer runs: left by a run that was SIGKILLed, where no handler
/// could clean up. Returns the names removed.
pub fn sweep_stale(tags: &[&str]) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return removed;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = tags.iter().find_map(|t| owner_pid(&name, t)) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_netns(&name);
            removed.push(name);
        }
    }
    removed
}

/// The pid in `<tag><pid>x<n>`, if `name` has that form.
fn owner_pid(name: &str, tag: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(tag)?.split_once('x')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_carry_the_pid() {
        let (a, b) = (unique("t"), unique("t"));
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a, "t"), Some(std::process::id()));
        assert_eq!(owner_pid("t12x", "t"), None);
        assert_eq!(owner_pid("u12x3", "t"), None);
    }

    #[test]
    fn short_names_never_repeat_and_stay_short() {
        let all: std::collections::BTreeSet<String> =
            (0..2000).map(|_| short_unique("tn")).collect();
        assert_eq!(all.len(), 2000);
        // Room for `<prefix>v<n>` in IFNAMSIZ - 1 = 15 bytes.
        assert!(
            all.iter().all(|p| p.len() + 3 <= 15),
            "{:?}",
            all.iter().max_by_key(|p| p.len())
        );
    }
}
