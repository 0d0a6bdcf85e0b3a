//! The connection to etcd: options (timeouts, TLS, credentials) and the fail-fast connect.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::EtcdConfig;
use super::error::{DatastoreError, Result, classify, timed_out};
use super::failover::Failover;

/// How long `connect` may take before it reports `Unavailable`.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may wait for etcd. The balanced gRPC channel queues requests while
/// no endpoint is connected, so without this a dead etcd would hang callers forever.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
// HTTP/2 pings on open streams detect a silently dead peer (a watch would otherwise wait
// forever). etcd's server refuses pings more often than every 5 s (--grpc-keepalive-min-time)
// and pings without streams, hence 10 s and no idle pings.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on etcd. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Datastore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) config: EtcdConfig,
    /// `config.endpoints` joined with `,`, for error messages.
    pub(crate) endpoints: String,
    pub(crate) counts: Counts,
}

/// Requests sent to etcd by this handle and its clones, by kind (attempts, so a retried
/// request counts twice): what a caller's round trips cost, measured rather than guessed.
#[derive(Default)]
pub(crate) struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
}

/// A snapshot of [`Datastore::request_counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Gets, range listings and read-only transactions (one each, however many keys).
    pub reads: u64,
    /// Transactions that write (guarded or not).
    pub writes: u64,
}

impl Datastore {
    /// Connects to etcd and checks that it answers. Fails within about five seconds with
    /// [`DatastoreError::Unavailable`] (naming the endpoints) when it does not.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Datastore> {
        let endpoints = cfg.endpoints.join(",");
        if cfg.endpoints.is_empty() {
            return Err(DatastoreError::Config {
                message: "no etcd endpoints configured".into(),
            });
        }
        let options = connect_options(cfg)?;
        let mut failover = Failover::new(cfg.endpoints.len());
        let client = loop {
            let attempt = async {
                let client = Client::connect(&cfg.endpoints, Some(options.clone())).await?;
                // The channel connects lazily: one round trip proves that etcd is there (and,
                // with credentials, that they were accepted). With several members it may pick
                // a dead one: that fails over like any request.
                client.maintenance_client().status().await?;
                Ok::<_, etcd_client::Error>(client)
            };
            let err = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok(client)) => break client,
                Ok(Err(err)) => classify(&endpoints, err),
                Err(_) => timed_out(&endpoints, "connect", CONNECT_TIMEOUT),
            };
            if !failover.retry("connect", &err).await {
                return Err(err);
            }
        };
        tracing::debug!(%endpoints, "connected to etcd");
        Ok(Datastore {
            inner: Arc::new(Inner {
                client,
                config: cfg.clone(),
                endpoints,
                counts: Counts::default(),
            }),
        })
    }

    /// Requests sent so far by this handle and its clones (watches not included).
    pub fn request_counts(&self) -> RequestCounts {
        RequestCounts {
            reads: self.inner.counts.reads.load(Ordering::Relaxed),
            writes: self.inner.counts.writes.load(Ordering::Relaxed),
        }
    }

    /// The configuration this handle was connected with.
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.config
    }

    /// The underlying etcd client, for operations this API does not cover (tests compact
    /// through it, for instance).
    pub fn etcd_client(&self) -> Client {
        self.inner.client.clone()
    }

    /// Runs an idempotent etcd request (a read), failing over between members (see
    /// [`Failover`]).
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, mut request: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut failover = self.failover();
        loop {
            match self.call_once(what, request()).await {
                Err(err) if failover.retry(what, &err).await => {}
                other => return other,
            }
        }
    }

    pub(crate) fn failover(&self) -> Failover {
        Failover::new(self.inner.config.endpoints.len())
    }

    /// Runs one etcd request with the request timeout, mapping failures.
    pub(crate) async fn call_once<T>(
        &self,
        what: &str,
        request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        let counter = match what {
            "txn" => Some(&self.inner.counts.writes),
            "watch" => None,
            _ => Some(&self.inner.counts.reads),
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(classify(&self.inner.endpoints, err)),
            Err(_) => Err(timed_out(&self.inner.endpoints, what, REQUEST_TIMEOUT)),
        }
    }
}

fn connect_options(cfg: &EtcdConfig) -> Result<ConnectOptions> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
        .with_keep_alive_while_idle(false)
        .with_tcp_keepalive(KEEPALIVE_INTERVAL);
    if let Some(user) = &cfg.username {
        let password = cfg.password.clone().unwrap_or_default();
        options = options
            .with_user(user.clone(), password)
            .with_auto_token_refresh(true);
    }
    let uses_tls = cfg.ca_cert_file.is_some() || cfg.cert_file.is_some() || cfg.key_file.is_some();
    if uses_tls {
        // etcd-client refuses TLS options for http:// URLs with a terse message; say which
        // endpoint is wrong instead.
        if let Some(plain) = cfg.endpoints.iter().find(|e| !e.starts_with("https://")) {
            return Err(DatastoreError::Config {
                message: format!(
                    "etcd TLS files are configured but endpoint {plain} is not an https:// URL"
                ),
            });
        }
        options = options.with_tls(tls_options(cfg)?);
    }
    Ok(options)
}

fn tls_options(cfg: &EtcdConfig) -> Result<TlsOptions> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|err| DatastoreError::Config {
            message: format!("cannot read etcd {what} file {}: {err}", path.display()),
        })
    };
    let mut tls = TlsOptions::new();
    if let Some(ca) = &cfg.ca_cert_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
    }
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(DatastoreError::Config {
                message: "etcd client certificate and key must be given together".into(),
            });
        }
    }
    Ok(tls)
}
