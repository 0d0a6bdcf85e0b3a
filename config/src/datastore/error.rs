//! The datastore's error type and the mapping of etcd client failures onto it.

use std::time::Duration;

/// What can go wrong talking to the datastore.
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("key {key} does not exist in the datastore")]
    NotFound { key: String },
    #[error("key {key} already exists in the datastore")]
    AlreadyExists { key: String },
    /// A compare-and-swap guard failed: somebody else wrote first. Re-read and retry.
    #[error("update conflict on {}: the stored revision changed (re-read and retry)", keys.join(", "))]
    Conflict { keys: Vec<String> },
    #[error("cannot reach etcd at {endpoints}: {source}")]
    Unavailable {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("cannot decode the value stored at {key}: {message}")]
    Decode { key: String, message: String },
    #[error("cannot encode the object for the datastore: {message}")]
    Encode { message: String },
    /// The request itself is unusable (missing resourceVersion, bad name ...); retrying will not help.
    #[error("invalid datastore request for {key}: {message}")]
    InvalidRequest { key: String, message: String },
    /// A watch was asked to start at a revision etcd no longer keeps, so the state at that
    /// revision (the consumer's baseline) cannot be reconstructed: the consumer must re-list.
    #[error(
        "cannot watch {prefix} from revision {revision}: etcd compacted history up to revision {compact_revision}; re-list and watch again"
    )]
    Compacted {
        prefix: String,
        revision: i64,
        compact_revision: i64,
    },
    /// The client configuration is unusable (no endpoints, unreadable TLS file ...).
    #[error("invalid etcd client configuration: {message}")]
    Config { message: String },
    #[error(transparent)]
    Etcd(#[from] etcd_client::Error),
}

impl DatastoreError {
    /// True when another writer won a compare-and-swap race (`Conflict` or `AlreadyExists`).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::AlreadyExists { .. })
    }

    /// True for `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True when etcd could not be reached (worth retrying later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// `Result` with a [`DatastoreError`].
pub type Result<T> = std::result::Result<T, DatastoreError>;

// gRPC status codes (grpc/status.proto) that mean "the server could not be reached or did
// not answer in time", as opposed to a request the server refused.
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
pub(crate) const GRPC_UNAVAILABLE: i32 = 14;

/// Classifies an etcd client error: transport failures become `Unavailable` (naming the
/// endpoints), everything else stays an `Etcd` error.
pub(crate) fn classify(endpoints: &str, err: etcd_client::Error) -> DatastoreError {
    let unreachable = match &err {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            matches!(
                i32::from(status.code()),
                GRPC_DEADLINE_EXCEEDED | GRPC_UNAVAILABLE
            ) || from_transport(status)
        }
        _ => false,
    };
    if unreachable {
        DatastoreError::Unavailable {
            endpoints: endpoints.to_string(),
            source: err,
        }
    } else {
        DatastoreError::Etcd(err)
    }
}

/// Whether a status was made up locally from a transport failure rather than returned by
/// etcd: tonic wraps a connection that failed or broke mid-request (refused, reset, TLS
/// handshake rejected) in a status (UNKNOWN, CANCELLED ...) whose source is the transport
/// error; statuses from the server carry no source.
pub(crate) fn from_transport(status: &(dyn std::error::Error + 'static)) -> bool {
    status.source().is_some()
}

/// The error for a request that got no answer within `after`.
pub(crate) fn timed_out(endpoints: &str, what: &str, after: Duration) -> DatastoreError {
    DatastoreError::Unavailable {
        endpoints: endpoints.to_string(),
        source: etcd_client::Error::IoError(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what}: no answer within {} ms", after.as_millis()),
        )),
    }
}
