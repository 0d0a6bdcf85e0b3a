//! The daemons' HTTP endpoints, one copy for all of them (axum, cargo feature
//! `http`):
//!
//! * [`metrics_router`]: `GET /metrics`, the Prometheus text exposition of a
//!   [`Registry`]; [`metrics_router_with`] when the metrics are gathered per
//!   scrape (bgpd asks its owner task for a status report);
//! * [`health_router`]: `GET /liveness` and `GET /readiness`, as Calico serves them
//!   to kubelet probes: 200 `ok` when healthy, 503 `not ok` otherwise;
//! * [`serve`]: runs a router on a bound listener until shutdown.
//!
//! Any other path is 404. Label values are escaped by the `prometheus` encoder.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::proto::MetricFamily;
use prometheus::{Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the health probes ask.
pub trait Probe: Clone + Send + Sync + 'static {
    /// `GET /liveness` answers 200 when true.
    fn live(&self) -> bool;
    /// `GET /readiness` answers 200 when true.
    fn ready(&self) -> bool;
}

/// `GET /liveness` and `GET /readiness`: 200 `ok\n` or 503 `not ok\n`.
pub fn health_router<P: Probe>(probe: P) -> Router {
    Router::new()
        .route(
            "/liveness",
            get(|State(p): State<P>| async move { status(p.live()) }),
        )
        .route(
            "/readiness",
            get(|State(p): State<P>| async move { status(p.ready()) }),
        )
        .with_state(probe)
}

fn status(ok: bool) -> (StatusCode, &'static str) {
    if ok {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ok\n")
    }
}

/// `GET /metrics`: every metric of `registry` in the text format.
pub fn metrics_router(registry: Registry) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(r): State<Registry>| async move { exposition(&r.gather()) }),
        )
        .with_state(registry)
}

/// `GET /metrics` gathered by `gather` at each scrape: 200 with the text format,
/// or 503 with the error when the metrics cannot be had (the daemon is stopping).
pub fn metrics_router_with<F, Fut, E>(gather: F) -> Router
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<MetricFamily>, E>> + Send + 'static,
    E: Display,
{
    let gather = Arc::new(gather);
    Router::new().route(
        "/metrics",
        get(move || {
            let gather = gather.clone();
            async move {
                match gather().await {
                    Ok(families) => exposition(&families),
                    Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
                }
            }
        }),
    )
}

fn exposition(families: &[MetricFamily]) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        render(families),
    )
        .into_response()
}

/// The text exposition (format 0.0.4) of `families`.
pub fn render(families: &[MetricFamily]) -> String {
    TextEncoder::new()
        .encode_to_string(families)
        .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
}

/// Serves `router` on `listener` until `shutdown` completes (then finishes the
/// requests in flight); a server failure is logged.
pub fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let addr = listener.local_addr().ok();
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(?addr, %error, "HTTP server failed");
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use prometheus::{IntCounterVec, Opts};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[derive(Clone, Default)]
    struct Flags(Arc<(AtomicBool, AtomicBool)>);

    impl Probe for Flags {
        fn live(&self) -> bool {
            self.0.0.load(Ordering::Relaxed)
        }
        fn ready(&self) -> bool {
            self.0.1.load(Ordering::Relaxed)
        }
    }

    /// Serves `router` on a free port until the returned sender is dropped or fired.
    async fn start(router: Router) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        serve(l, router, async move {
            let _ = rx.await;
        });
        (addr, tx)
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        resp
    }

    #[tokio::test]
    async fn probes_answer_200_ok_or_503_not_ok_and_404_elsewhere() {
        let flags = Flags::default();
        let (addr, _stop) = start(health_router(flags.clone())).await;
        let r = get(addr, "/liveness").await;
        assert!(
            r.starts_with("HTTP/1.1 503") && r.ends_with("\r\n\r\nnot ok\n"),
            "{r}"
        );
        flags.0.0.store(true, Ordering::Relaxed);
        let r = get(addr, "/liveness").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\nok\n"),
            "{r}"
        );
        assert!(get(addr, "/readiness").await.starts_with("HTTP/1.1 503"));
        flags.0.1.store(true, Ordering::Relaxed);
        assert!(get(addr, "/readiness").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn metrics_are_served_with_escaped_labels_and_only_on_metrics() {
        let registry = Registry::new();
        let c = IntCounterVec::new(Opts::new("t_things", "Things."), &["name"]).unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        c.with_label_values(&["a\"b\\c\nd"]).inc_by(3);
        let (addr, _stop) = start(metrics_router(registry)).await;
        let r = get(addr, "/metrics").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{r}"
        );
        assert!(r.contains("# TYPE t_things counter\n"), "{r}");
        assert!(r.contains("t_things{name=\"a\\\"b\\\\c\\nd\"} 3\n"), "{r}");
        assert!(get(addr, "/liveness").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/metrics/x").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn gathered_metrics_or_503_with_the_error() {
        let fail = Arc::new(AtomicBool::new(false));
        let f = fail.clone();
        let router = metrics_router_with(move || {
            let fail = f.load(Ordering::Relaxed);
            async move {
                if fail {
                    return Err("daemon stopped");
                }
                let r = Registry::new();
                let c = prometheus::IntGauge::new("t_gauge", "A gauge.").unwrap();
                c.set(7);
                r.register(Box::new(c)).unwrap();
                Ok(r.gather())
            }
        });
        let (addr, _stop) = start(router).await;
        let r = get(addr, "/metrics").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("\nt_gauge 7\n"),
            "{r}"
        );
        fail.store(true, Ordering::Relaxed);
        let r = get(addr, "/metrics").await;
        assert!(
            r.starts_with("HTTP/1.1 503") && r.ends_with("daemon stopped\n"),
            "{r}"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_the_server() {
        let (addr, stop) = start(health_router(Flags::default())).await;
        stop.send(()).unwrap();
        // The listener closes once the graceful shutdown ran.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("still accepting after shutdown");
    }
}
