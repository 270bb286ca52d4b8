//! Prometheus metrics: one process-wide recorder, and the per-request middleware.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: sub-millisecond reads up to slow flushes.
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Installs the recorder on first use; later calls share it (several servers in one test
/// process all report to it).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

pub fn install() {
    let _ = handle();
}

pub fn render() -> String {
    handle().map(|h| h.render()).unwrap_or_default()
}

/// Counts requests by route template (never the raw path, whose names are unbounded), method
/// and status, and records their latency.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("callrec_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("callrec_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// One GraphQL operation ended, `ok` when its response had no errors. `operation` is already
/// bounded (see `graphql::metered::operation_label`).
pub fn graphql_operation(operation: String, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("callrec_graphql_operations_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
}

/// Counts a live GraphQL subscription stream in `callrec_graphql_subscriptions_active` for as
/// long as it exists: dropped with the stream, however it ends (completed by the client,
/// ended by an error, or its connection gone).
pub struct ActiveSubscription(());

impl ActiveSubscription {
    pub fn start() -> ActiveSubscription {
        metrics::gauge!("callrec_graphql_subscriptions_active").increment(1.0);
        ActiveSubscription(())
    }
}

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        metrics::gauge!("callrec_graphql_subscriptions_active").decrement(1.0);
    }
}
