//! A process's CPU time, memory and liveness, from /proc (the benches' own
//! measurements of the daemons they run), and the ratio cells of their tables.

use std::time::Duration;

/// Peak resident set (VmHWM) of `pid` in KiB; 0 when it is gone.
pub fn vm_hwm_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:")
}

/// Resident set (VmRSS) of `pid` in KiB now; 0 when it is gone.
#[allow(dead_code)] // the fan-out bench uses it, the receive bench not
pub fn vm_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether `pid` runs (exited and not yet reaped counts as not running).
#[allow(dead_code)] // the fan-out bench uses it, the receive bench not
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// `a / b` as a table cell (`1.25x`), `-` without a positive `b`.
pub fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    }
}

/// utime + stime of `pid` (all its threads), from /proc/<pid>/stat.
pub fn cpu_time(pid: u32) -> Duration {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

/// utime + stime of the calling thread alone.
#[allow(dead_code)] // the fan-out bench's load generator uses it, the receive bench not
pub fn thread_cpu_time() -> Duration {
    stat_cpu_time("/proc/thread-self/stat")
}

fn stat_cpu_time(path: &str) -> Duration {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised comm: state is field 3, utime 14,
    // stime 15 (proc(5)), i.e. indices 11 and 12 after ") ".
    let rest = s.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks: u64 = f.iter().sum();
    // USER_HZ is 100 on every Linux ABI this runs on.
    Duration::from_millis(ticks * 10)
}
