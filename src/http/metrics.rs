//! Prometheus metrics: one process-wide recorder, and the per-request middleware.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: sub-millisecond reads up to slow flushes.
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Probe durations, in seconds: loopback answers up to the longest wait (10 s).
const PROBE_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder on first use; later calls share it (several servers in one test
/// process all report to it).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("callrec_platform_probe_duration_seconds".into()),
                    &PROBE_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// HELP text for every family the crate emits (the store's flush histogram included), so
/// that `# HELP` stands before each one.
fn describe() {
    use metrics::Unit;
    metrics::describe_counter!(
        "callrec_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    metrics::describe_histogram!(
        "callrec_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's head to its response, by route template and method"
    );
    metrics::describe_counter!(
        "callrec_graphql_operations_total",
        "GraphQL operations run, by operation name and outcome (ok or error)"
    );
    metrics::describe_counter!(
        "callrec_graphql_answers_total",
        "GraphQL answers over HTTP by source: kept (since the last commit), shared (another \
         request's), planned (written from the document's plan) or executed (async-graphql)"
    );
    metrics::describe_gauge!(
        "callrec_graphql_subscriptions_active",
        "GraphQL subscription streams open now"
    );
    metrics::describe_histogram!(
        "callrec_store_flush_duration_seconds",
        Unit::Seconds,
        "Duration of the store's durable flushes (several writes may share one)"
    );
    metrics::describe_gauge!(
        "callrec_http_connections_open",
        "Client connections open now (WebSockets and lingering closes included)"
    );
    metrics::describe_counter!(
        "callrec_http_connections_refused_total",
        "Connections refused because --max-connections were open"
    );
    metrics::describe_counter!(
        "callrec_http_accept_errors_total",
        "Failures to accept a connection (such as running out of file descriptors)"
    );
    metrics::describe_histogram!(
        "callrec_platform_probe_duration_seconds",
        Unit::Seconds,
        "Duration of SIP OPTIONS probes of the platforms, answered or not"
    );
}

pub fn install() {
    let _ = handle();
}

pub fn render() -> String {
    handle().map(|h| h.render()).unwrap_or_default()
}

/// `callrec_platform_up{platform}`: 1 for each platform this gateway sees up, 0 down, no
/// series for the others. Rendered at each scrape from `known` (see
/// `Service::platforms_up_or_down`), so that the label set is exactly the platforms that exist
/// and are known up or down.
pub fn platform_up(known: Vec<(String, bool)>) -> String {
    if known.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "# HELP callrec_platform_up Whether the platform answers SIP OPTIONS (1) or is down (0), as this gateway sees it.\n# TYPE callrec_platform_up gauge\n",
    );
    for (name, up) in known {
        out.push_str(&format!(
            "callrec_platform_up{{platform=\"{}\"}} {}\n",
            label_value(&name),
            u8::from(up)
        ));
    }
    out
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Route templates as `&'static str`, so that labelling a request allocates nothing: there
/// are only as many as the router has routes (and "unmatched").
fn interned(route: &str) -> &'static str {
    static ROUTES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut routes = ROUTES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(known) = routes.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts one request by route template (never the raw path, whose names are unbounded),
/// method and status, and records its latency.
pub fn http_request(
    route: Option<&MatchedPath>,
    method: &Method,
    status: StatusCode,
    took: Duration,
) {
    let route = interned(route.map_or("unmatched", |r| r.as_str()));
    let method = method_label(method);
    metrics::counter!("callrec_http_requests_total", "route" => route, "method" => method, "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!("callrec_http_request_duration_seconds", "route" => route, "method" => method)
        .record(took.as_secs_f64());
}

/// One GraphQL operation ended, `ok` when its response had no errors. `operation` is already
/// bounded (see `graphql::labels`).
pub fn graphql_operation(operation: String, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("callrec_graphql_operations_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
}

/// Where a GraphQL answer over HTTP came from.
#[derive(Debug, Clone, Copy)]
pub enum AnswerSource {
    /// Kept since the last commit.
    Kept,
    /// Another request's execution of the same question, waited for.
    Shared,
    /// Written from the document's plan.
    Planned,
    /// Executed by async-graphql.
    Executed,
}

pub fn graphql_answer(source: AnswerSource) {
    let source = match source {
        AnswerSource::Kept => "kept",
        AnswerSource::Shared => "shared",
        AnswerSource::Planned => "planned",
        AnswerSource::Executed => "executed",
    };
    metrics::counter!("callrec_graphql_answers_total", "source" => source).increment(1);
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

/// A connection took a slot under `--max-connections`.
pub fn connection_opened() {
    metrics::gauge!("callrec_http_connections_open").increment(1.0);
}

/// A connection gave its slot back.
pub fn connection_closed() {
    metrics::gauge!("callrec_http_connections_open").decrement(1.0);
}

/// A connection arrived with every slot taken.
pub fn connection_refused() {
    metrics::counter!("callrec_http_connections_refused_total").increment(1);
}

pub fn accept_error() {
    metrics::counter!("callrec_http_accept_errors_total").increment(1);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::ProbeOutcome;
    use crate::service::ReachabilityTable;

    #[test]
    fn platform_up_has_a_series_only_for_platforms_known_up_or_down() {
        let table = ReachabilityTable::default();
        assert_eq!(
            platform_up(table.up_or_down()),
            "",
            "nothing while not probing"
        );
        table.start_probing();
        let now = SystemTime::now();
        table.follow(&HashSet::from(["up \"1\"", "down", "unknown"]), now);
        let answered = ProbeOutcome::Answered {
            latency: Duration::from_millis(1),
        };
        let failed = ProbeOutcome::Failed {
            reason: "timeout".into(),
        };
        table.record("up \"1\"", &answered, now, 1);
        table.record("down", &failed, now, 1);
        let text = platform_up(table.up_or_down());
        assert!(
            text.contains("# TYPE callrec_platform_up gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("callrec_platform_up{platform=\"up \\\"1\\\"\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("callrec_platform_up{platform=\"down\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("unknown"), "{text}");
        // A deleted platform loses its series.
        table.follow(&HashSet::from(["up \"1\""]), now);
        assert!(!platform_up(table.up_or_down()).contains("platform=\"down\""));
    }
}
