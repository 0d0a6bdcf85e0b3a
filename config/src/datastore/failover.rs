//! Riding through the loss of an etcd member. Given several endpoints (one cluster), a
//! request that finds its member gone, or the cluster mid-election ("leader changed", "no
//! leader"), is sent again after a short jittered pause until it succeeds or a window
//! passes. A single unreachable endpoint still fails at once: there is nothing to fail over
//! to, and callers (calicoctl, the CNI plugin) should say so promptly.
//!
//! A transaction that failed that way may still have been applied (the member committed it,
//! then died before answering). Sending it again would apply it twice when its guards no
//! longer hold against our own write, so `raw` first reads back what it wrote: see
//! [`Expect`].

use std::time::Duration;

use daemon_kit::backoff::Backoff;
use tokio::time::Instant;

use super::error::{DatastoreError, GRPC_UNAVAILABLE, from_transport};

/// How long one request keeps failing over before its last error is returned: several
/// elections' worth (etcd's default election timeout is 1 s).
pub(crate) const FAILOVER_WINDOW: Duration = Duration::from_secs(15);

/// What a transaction's write leaves behind, to tell afterwards whether it was applied.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// The key holds exactly this value.
    Value(String, Vec<u8>),
    /// The key is gone.
    Absent(String),
}

impl Expect {
    pub(crate) fn key(&self) -> &str {
        match self {
            Expect::Value(k, _) | Expect::Absent(k) => k,
        }
    }
}

/// The retry budget of one request.
pub(crate) struct Failover {
    several_endpoints: bool,
    started: Instant,
    backoff: Backoff,
}

impl Failover {
    pub(crate) fn new(endpoints: usize) -> Failover {
        Failover {
            several_endpoints: endpoints > 1,
            started: Instant::now(),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(500))
                .jitter(0.5),
        }
    }

    /// Whether to send the request again after `err`; pauses first when so.
    pub(crate) async fn retry(&mut self, what: &str, err: &DatastoreError) -> bool {
        let retryable = match err {
            DatastoreError::Unavailable { source, .. } => {
                self.several_endpoints || server_mid_election(source)
            }
            _ => false,
        };
        if !retryable || self.started.elapsed() >= FAILOVER_WINDOW {
            return false;
        }
        tracing::debug!(request = what, error = %err, "etcd request failed; trying again");
        tokio::time::sleep(self.backoff.next_delay()).await;
        true
    }
}

/// The request never left this process: its connection was refused, so etcd cannot
/// have applied it (a connection that broke mid-request, or a server-side timeout, may
/// have). Saves the read-back of a transaction that went to a member already dead.
pub(crate) fn never_sent(err: &DatastoreError) -> bool {
    let DatastoreError::Unavailable { source, .. } = err else {
        return false;
    };
    // etcd_client::Error has no `source()`: start from the error it wraps.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match source {
        etcd_client::Error::IoError(e) => Some(e),
        etcd_client::Error::GRpcStatus(e) => Some(e),
        etcd_client::Error::TransportError(e) => Some(e),
        _ => None,
    };
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// etcd itself answered UNAVAILABLE (no transport failure underneath): the cluster is
/// electing a leader, and the same member will serve the request once it has one.
fn server_mid_election(err: &etcd_client::Error) -> bool {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            i32::from(status.code()) == GRPC_UNAVAILABLE && !from_transport(status)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(source: etcd_client::Error) -> DatastoreError {
        DatastoreError::Unavailable {
            endpoints: "e".into(),
            source,
        }
    }

    fn io_error() -> etcd_client::Error {
        etcd_client::Error::IoError(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    #[tokio::test(start_paused = true)]
    async fn one_endpoint_fails_fast_unless_etcd_is_electing() {
        let mut f = Failover::new(1);
        assert!(!f.retry("get", &unavailable(io_error())).await);
        let electing = etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
            "etcdserver: leader changed",
        ));
        assert!(f.retry("get", &unavailable(electing)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn several_endpoints_fail_over_within_the_window() {
        let mut f = Failover::new(3);
        let mut tries = 0;
        while f.retry("txn", &unavailable(io_error())).await {
            tries += 1;
        }
        assert!(tries > 10, "{tries}");
        assert!(f.started.elapsed() >= FAILOVER_WINDOW);
        // Errors etcd gave on purpose are never retried here.
        let mut f = Failover::new(3);
        let refused = DatastoreError::Conflict { keys: vec![] };
        assert!(!f.retry("txn", &refused).await);
    }

    #[test]
    fn only_a_refused_connection_proves_a_request_unsent() {
        assert!(never_sent(&unavailable(io_error())));
        let no_answer = super::super::error::timed_out("e", "txn", Duration::from_secs(5));
        assert!(!never_sent(&no_answer));
        let server_timeout = etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
            "etcdserver: request timed out, possibly due to previous leader failure",
        ));
        assert!(!never_sent(&unavailable(server_timeout)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!never_sent(&unavailable(etcd_client::Error::IoError(
            reset
        ))));
    }
}
