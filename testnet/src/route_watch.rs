//! Routes as a node's kernel takes them: an `ip monitor route` per node namespace, read
//! by a thread that stamps every line on arrival. A latency measured with it is the time
//! from an action to the route, to within the pipe's delay, not a polling period.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns_kit::Netns;

use crate::daemon::wait_until;

/// What a node's monitor has seen.
#[derive(Default)]
pub struct Seen {
    /// When each route was first added: `10.244.0.2/31` (BGP), `10.244.0.3` (a pod's
    /// route to its cali interface), `blackhole 10.244.0.2/31`.
    pub first: HashMap<String, Instant>,
    /// The routes there now.
    pub present: HashSet<String>,
    /// BGP routes deleted since [`RouteWatch::reset_deleted`].
    pub bgp_deleted: usize,
}

/// The monitor of one namespace; stopped on drop.
pub struct RouteWatch {
    child: Child,
    seen: Arc<Mutex<Seen>>,
}

impl RouteWatch {
    /// Starts the monitor in `ns` and returns once it reports routes (a marker route
    /// added and removed there has been seen).
    pub fn start(ns: &Netns) -> Result<RouteWatch> {
        let mut child = Command::new("ip")
            .args(["-n", ns.name(), "-4", "monitor", "route"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run ip monitor")?;
        let out = child.stdout.take().context("ip monitor: no stdout")?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let at = Instant::now();
                record(&mut lock(&state), &line, at);
            }
        });
        let watch = RouteWatch { child, seen };
        // TEST-NET-1 (RFC 5737): never a pod's or a node's address.
        let marker = "blackhole 192.0.2.1";
        // Added again at every poll: the monitor may subscribe after an addition.
        let mut added = Ok(String::new());
        wait_until(
            "ip monitor to report routes",
            Duration::from_secs(10),
            || {
                let _ = ns.try_ip(&["route", "del", "blackhole", "192.0.2.1"]);
                added = ns.try_ip(&["route", "add", "blackhole", "192.0.2.1"]);
                watch.seen().first.contains_key(marker)
            },
        )
        .with_context(|| format!("in {}: marker route: {added:?}", ns.name()))?;
        ns.try_ip(&["route", "del", "blackhole", "192.0.2.1"])?;
        Ok(watch)
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    pub fn reset_deleted(&self) {
        self.seen().bgp_deleted = 0;
    }
}

impl Drop for RouteWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock(m: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One line of `ip monitor route`: `[Deleted ]<dst> ... proto bgp ...`, `<addr> dev
/// caliXXXX ...`, `blackhole <dst> ...`; other routes are not tracked.
fn record(seen: &mut Seen, line: &str, at: Instant) {
    let (deleted, rest) = match line.strip_prefix("Deleted ") {
        Some(r) => (true, r),
        None => (false, line),
    };
    let mut words = rest.split_whitespace();
    let key = match words.next() {
        Some("blackhole") => match words.next() {
            Some(dst) => format!("blackhole {dst}"),
            None => return,
        },
        Some(dst) if rest.contains(" proto bgp") || rest.contains(" dev cali") => dst.to_string(),
        _ => return,
    };
    if deleted {
        if rest.contains(" proto bgp") {
            seen.bgp_deleted += 1;
        }
        seen.present.remove(&key);
    } else {
        seen.first.entry(key.clone()).or_insert(at);
        seen.present.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_ip_monitor_are_tracked_by_destination() {
        let mut s = Seen::default();
        let t = Instant::now();
        for l in [
            "10.244.0.2/31 via 172.18.0.12 dev eth0 proto bgp metric 20",
            "10.244.0.5 dev cali1234567890a scope link",
            "blackhole 10.244.0.4/31 proto static",
            "local 10.244.0.9 dev lo table local proto kernel scope host",
            "172.18.0.0/16 dev eth0 proto kernel scope link src 172.18.0.11",
        ] {
            record(&mut s, l, t);
        }
        let mut keys: Vec<_> = s.present.iter().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["10.244.0.2/31", "10.244.0.5", "blackhole 10.244.0.4/31"]
        );
        record(
            &mut s,
            "Deleted 10.244.0.2/31 via 172.18.0.12 dev eth0 proto bgp metric 20",
            t,
        );
        assert_eq!(s.bgp_deleted, 1);
        assert!(!s.present.contains("10.244.0.2/31"));
        assert!(s.first.contains_key("10.244.0.2/31"));
    }
}
