//! What operators run it with: the OpenAPI document, health, readiness, metrics, request ids,
//! CORS, timeouts, JSON logs and a graceful stop.

mod common;

use std::time::Duration;

use common::process::Process;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every operation this server is meant to have, as (method, path).
const EXPECTED: [(&str, &str); 29] = [
    ("get", "/api/v1/tenants/"),
    ("post", "/api/v1/tenants/"),
    ("get", "/api/v1/tenants/{tenant_id}/"),
    ("delete", "/api/v1/tenants/{tenant_id}/"),
    ("get", "/api/v1/tenants/{tenant_id}/groups/"),
    ("post", "/api/v1/tenants/{tenant_id}/groups/"),
    ("get", "/api/v1/tenants/{tenant_id}/groups/{group_id}/"),
    ("delete", "/api/v1/tenants/{tenant_id}/groups/{group_id}/"),
    (
        "get",
        "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/call_recording/",
    ),
    (
        "put",
        "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/call_recording/",
    ),
    ("get", "/api/v1/system/services/call_recording/platforms/"),
    ("post", "/api/v1/system/services/call_recording/platforms/"),
    (
        "get",
        "/api/v1/system/services/call_recording/platforms/{name}/",
    ),
    (
        "put",
        "/api/v1/system/services/call_recording/platforms/{name}/",
    ),
    (
        "delete",
        "/api/v1/system/services/call_recording/platforms/{name}/",
    ),
    (
        "get",
        "/api/v1/system/services/call_recording/platforms/{name}/usage/",
    ),
    (
        "get",
        "/api/v1/system/services/call_recording/platforms/{name}/reachability/",
    ),
    ("get", "/api/v1/system/services/call_recording/properties/"),
    ("put", "/api/v1/system/services/call_recording/properties/"),
    ("post", "/api/v1/login/"),
    ("get", "/api/v1/auth/access_token/"),
    ("post", "/api/v1/logout/"),
    ("get", "/api/v1/local/users/"),
    ("post", "/api/v1/local/users/"),
    ("delete", "/api/v1/local/users/{username}/"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/audit/"),
];

#[tokio::test]
async fn openapi_covers_every_route_and_every_documented_route_answers() {
    let app = TestApp::start().await;
    let doc = openapi(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in EXPECTED {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path
                .replace("{name}", "X")
                .replace("{username}", "x")
                .replace("{tenant_id}", "t")
                .replace("{group_id}", "g");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            // Routed: whatever the answer, it is not the router's 404 or 405.
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED
                    && !(status == StatusCode::NOT_FOUND
                        && body["errors"][0]["message"] == "no such path"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    assert_eq!(
        operations,
        EXPECTED.len(),
        "the document has operations not in the list"
    );
}

#[tokio::test]
async fn openapi_schemas_carry_enums_ranges_limits_and_the_error_body() {
    let app = TestApp::start().await;
    let doc = openapi(&app).await;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["MediaStream"]["enum"], json!(["Dual", "Single"]));
    assert_eq!(
        schemas["TransportProtocol"]["enum"],
        json!(["UDP", "TCP", "Unspecified"])
    );
    assert_eq!(
        schemas["SchemaVersion"]["enum"],
        json!(["1.0", "2.0", "3.0"])
    );
    let add = &schemas["AddPlatformBody"];
    assert_eq!(add["properties"]["name"]["maxLength"], 80);
    assert_eq!(add["properties"]["port"]["maximum"], 65535);
    assert_eq!(add["additionalProperties"], false);
    let props = &schemas["Properties"]["properties"];
    assert_eq!(props["maxResponseWaitTimeMilliseconds"]["minimum"], 50);
    assert_eq!(props["maxResponseWaitTimeMilliseconds"]["maximum"], 10000);
    assert!(schemas["ErrorBody"]["properties"]["errors"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn openapi_is_valid_openapi_3_1() {
    let app = TestApp::start().await;
    let doc = openapi(&app).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file.path())
        .output();
    match output {
        Ok(out) if out.status.success() => {}
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            // .ci/run installs the validator; elsewhere say how to get it.
            assert!(
                std::env::var_os("CI").is_none(),
                "openapi-spec-validator is missing in CI"
            );
            eprintln!("skipped: pip install openapi-spec-validator to run this check");
        }
        Ok(out) => panic!(
            "invalid OpenAPI document:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => assert!(std::env::var_os("CI").is_none(), "python3: {e}"),
    }
}

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = TestApp::start().await;
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
}

/// The value of `series` (a name with its labels) in a `/metrics` text; 0 when absent.
fn sample<T: std::str::FromStr + Default>(metrics: &str, series: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_default()
}

fn counter(metrics: &str, route: &str, method: &str, status: &str) -> u64 {
    sample(
        metrics,
        &format!(
            "callrec_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
        ),
    )
}

async fn metrics_text(
    app: &TestApp,
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = app.client.get(format!("http://{addr}/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_move_after_requests() {
    let app = TestApp::start().await;
    let route = "/api/v1/system/services/call_recording/platforms/";
    let (status, before) = metrics_text(&app, app.addr, None).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..3 {
        app.get(&platforms_path()).await;
    }
    app.admin(Method::POST, &platforms_path(), Some(platform("M")))
        .await;
    let (_, after) = metrics_text(&app, app.addr, None).await;
    // Other tests in this process add to the same counters, so compare at least.
    assert!(counter(&after, route, "GET", "200") >= counter(&before, route, "GET", "200") + 3);
    assert!(counter(&after, route, "POST", "200") > counter(&before, route, "POST", "200"));
    assert!(after.contains("callrec_http_request_duration_seconds_bucket"));
    assert!(
        after.contains("callrec_store_flush_duration_seconds"),
        "{after}"
    );
    // Route templates, never raw names.
    assert!(!after.contains("route=\"/api/v1/system/services/call_recording/platforms/M/\""));
}

#[tokio::test]
async fn metrics_can_require_a_token_or_live_on_their_own_address() {
    let app = TestApp::start_with(&["--metrics-token", "scrape-me"]).await;
    assert_eq!(
        metrics_text(&app, app.addr, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics_text(&app, app.addr, Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics_text(&app, app.addr, Some("scrape-me")).await.0,
        StatusCode::OK
    );

    let app = TestApp::start_with(&["--metrics-listen", "127.0.0.1:0"]).await;
    let separate = app.metrics_addr.expect("metrics listener");
    assert_eq!(metrics_text(&app, separate, None).await.0, StatusCode::OK);
    assert_eq!(
        metrics_text(&app, app.addr, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn request_ids_are_returned_or_generated() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "portal-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "portal-42");
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 36, "{generated}");
    // Errors carry it too.
    let response = app
        .client
        .get(app.url(&platforms_path()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::start_with(&[
        "--cors-origin",
        "https://portal.example,https://ops.example",
    ])
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url(&platforms_path()))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://ops.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn a_client_slow_to_send_headers_is_disconnected() {
    let app = TestApp::start_with(&["--header-read-timeout", "1"]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server gives up on the headers and closes; bounded so a hang fails the test.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 20 s");
    // A complete request on a fresh connection is still served.
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let data = tempfile::tempdir().unwrap();
    let p = Process::serve_with_args(
        data.path(),
        &[("CALLREC_ADMIN_PASSWORD", "json-log-password")],
        &["--log-format", "json"],
    )
    .await;
    reqwest::Client::new()
        .get(p.url("/healthz"))
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .unwrap();
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0));
    let access = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["request_id"] == "trace-me-7")
        .unwrap_or_else(|| panic!("no JSON access line with the request id:\n{stderr}"));
    assert_eq!(access["fields"]["path"], "/healthz");
    assert_eq!(access["fields"]["status"], 200);
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let envs = [("CALLREC_ADMIN_PASSWORD", "graceful-password")];
    let p = Process::serve(data.path(), &envs).await;
    let client = reqwest::Client::new();
    let token = p.login("admin", "graceful-password").await;
    // Eight writers add platforms one after another until the server stops answering; the
    // stop comes once some of their writes have been acknowledged, so that others are on their
    // way or in flight when SIGTERM arrives.
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, token, answered) = (client.clone(), token.clone(), answered.clone());
            let url = p.url(&platforms_path());
            tokio::spawn(async move {
                for i in 0..1000 {
                    let name = format!("G{w}-{i:03}");
                    let sent = client.post(&url).bearer_auth(&token).json(&platform(&name));
                    match sent.send().await {
                        Ok(response) => {
                            // An accepted request must have been answered fully.
                            assert_eq!(response.status(), StatusCode::OK, "{name}");
                            let _ = answered.send(name);
                        }
                        // Refused or cut connections once the server is stopping are fine.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    drop(answered);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 20 {
        let name = tokio::time::timeout(Duration::from_secs(30), answers.recv())
            .await
            .expect("writes are acknowledged")
            .expect("writers running");
        acknowledged.push(name);
    }
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
    for writer in writers {
        writer
            .await
            .expect("a writer saw a request answered with an error");
    }
    while let Ok(name) = answers.try_recv() {
        acknowledged.push(name);
    }

    let p = Process::serve(data.path(), &envs).await;
    let token = p.login("admin", "graceful-password").await;
    let list = p.get(&platforms_path(), &token).await;
    let stored: Vec<&str> = list["callRecordingPlatforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in &acknowledged {
        assert!(
            stored.contains(&name.as_str()),
            "{name} acknowledged but lost"
        );
    }
    p.terminate().await;
}

fn graphql_operations(metrics: &str, operation: &str, outcome: &str) -> u64 {
    sample(
        metrics,
        &format!(
            "callrec_graphql_operations_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}"
        ),
    )
}

fn subscriptions_active(metrics: &str) -> f64 {
    sample(metrics, "callrec_graphql_subscriptions_active")
}

#[tokio::test]
async fn graphql_operations_and_live_subscriptions_are_counted() {
    let app = TestApp::start().await;
    let token = app.token.clone();
    let (_, before) = metrics_text(&app, app.addr, None).await;

    for _ in 0..2 {
        let body = app
            .gql_as(
                Some(&token),
                "query MetricsList { callRecordingPlatforms { systemDefault } }",
                json!({}),
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    // Refused: no token; named by operationName (a name never seen succeeding: `other`), and
    // anonymous.
    let (status, _) = app
        .gql_body(
            None,
            json!({"query": "query A { me { username } } query MetricsMe { me { username } }",
                   "operationName": "MetricsMe"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.gql_as(None, "{ me { username } }", json!({})).await;
    // A name that names no operation of the document: `other`.
    app.gql_body(
        Some(&token),
        json!({"query": "{ me { username } }", "operationName": "Metrics Odd\"}"}),
    )
    .await;

    // A subscription over the WebSocket: live while it runs, counted once.
    let mut ws = ws::accepted(&app, &token).await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription MetricsWatch { callRecordingEvents { __typename } }"}}))
        .await;
    let started = ws.json().await;
    assert_eq!(
        started["payload"]["data"]["callRecordingEvents"]["__typename"],
        "CallRecordingSubscriptionStarted"
    );
    let (_, during) = metrics_text(&app, app.addr, None).await;
    assert_eq!(
        subscriptions_active(&during),
        subscriptions_active(&before) + 1.0,
        "{during}"
    );

    // complete ends it; a query answered afterwards on the same socket proves it is gone
    // (messages are handled in order).
    ws.send(json!({"id": "1", "type": "complete"})).await;
    ws.send(json!({"id": "2", "type": "subscribe",
                   "payload": {"query": "query MetricsOverWs { me { username } }"}}))
        .await;
    loop {
        let message = ws.json().await;
        if message["id"] == "2" {
            assert_eq!(message["type"], "next", "{message}");
            break;
        }
    }
    let (_, after) = metrics_text(&app, app.addr, None).await;
    assert_eq!(
        subscriptions_active(&after),
        subscriptions_active(&before),
        "{after}"
    );

    for (operation, outcome, more) in [
        ("MetricsList", "ok", 2),
        ("MetricsMe", "error", 0),
        ("other", "error", 2),
        ("anonymous", "error", 1),
        ("MetricsWatch", "ok", 1),
        ("MetricsOverWs", "ok", 1),
    ] {
        assert_eq!(
            graphql_operations(&after, operation, outcome),
            graphql_operations(&before, operation, outcome) + more,
            "{operation} {outcome}: {after}"
        );
    }
    app.stop().await;
}
