//! Bounded waiting for a condition.

use std::time::{Duration, Instant};

/// Polls `f` every `every` until it returns `Ok` or `limit` passes; then the last error.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        let last = match f() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(every);
    }
}

/// Polls `f` every 100 ms until it returns `Ok` or `t` passes (then panics with `what`
/// and the last error seen).
pub fn wait_for<T>(what: &str, t: Duration, f: impl FnMut() -> Result<T, String>) -> T {
    poll(t, Duration::from_millis(100), f)
        .unwrap_or_else(|last| panic!("timed out waiting for {what}; last seen:\n{last}"))
}

/// Waits until `cmd`'s output contains (or with `absent`, lacks) `needle`.
pub fn wait_output(
    what: &str,
    t: Duration,
    needle: &str,
    absent: bool,
    mut cmd: impl FnMut() -> String,
) {
    wait_for(what, t, || {
        let o = cmd();
        if o.contains(needle) != absent {
            Ok(())
        } else {
            Err(o)
        }
    })
}

/// Polls `cond` every 20 ms (async, for a tokio runtime) until it holds; panics with
/// `what` after `limit`.
pub async fn eventually<F: FnMut() -> bool>(limit: Duration, what: &str, mut cond: F) {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_returns_the_value_or_the_last_error() {
        let mut n = 0;
        let got = poll(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            if n < 3 { Err(format!("n={n}")) } else { Ok(n) }
        });
        assert_eq!(got, Ok(3));
        let never = poll(Duration::from_millis(30), Duration::from_millis(5), || {
            Err::<(), _>("still no".to_string())
        });
        assert_eq!(never, Err("still no".to_string()));
    }
}
