//! What operators' tools say of the served documents: Redocly's linter of
//! `/api/v1/openapi.json` (with the repository's `redocly.yaml`) and `promtool check metrics`
//! of `/metrics` after traffic of every kind.
//!
//! `.ci/run` installs both tools; elsewhere a test without its tool says how to get it and
//! passes.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// Where `.ci/run` installs `@redocly/cli`.
fn redocly() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/node/node_modules/.bin/redocly")
}

fn missing(tool: &str, how: &str) {
    assert!(std::env::var_os("CI").is_none(), "{tool} is missing in CI");
    eprintln!("skipped: {how} to run this check");
}

#[tokio::test]
async fn public_operations_say_so_and_the_document_names_its_server() {
    let app = TestApp::start().await;
    let doc = openapi(&app).await;
    assert_eq!(doc["servers"][0]["url"], "/", "{}", doc["servers"]);
    for (path, method) in [
        ("/api/v1/login/", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert_eq!(doc["paths"][path][method]["security"], json!([]), "{path}");
    }
    let bearer = json!([{"bearer": []}]);
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let security = &operation["security"];
            assert!(
                *security == json!([]) || *security == bearer,
                "{method} {path}: {security}"
            );
        }
    }
    let guarded = TestApp::start_with(&["--metrics-token", "scrape-token"]).await;
    let doc = openapi(&guarded).await;
    assert_eq!(doc["paths"]["/metrics"]["get"]["security"], bearer);
}

#[tokio::test]
async fn redocly_lint_finds_no_error_in_the_openapi_document() {
    if !redocly().exists() {
        return missing(
            "@redocly/cli",
            "npm install --no-save --prefix target/node @redocly/cli@2.77.0",
        );
    }
    for extra in [&[][..], &["--metrics-token", "scrape-token"][..]] {
        let app = TestApp::start_with(extra).await;
        let doc = openapi(&app).await;
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("openapi.json");
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("redocly.yaml");
        let run = tokio::process::Command::new(redocly())
            .arg("lint")
            .arg(&file)
            .arg("--config")
            .arg(&config)
            .args(["--format", "json"])
            .env("REDOCLY_TELEMETRY", "off")
            .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
            .current_dir(folder.path())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("redocly finishes within 120 s")
            .expect("redocly runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let problems: Vec<String> = report["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|p| format!("{} {} {}", p["severity"], p["ruleId"], p["message"]))
            .collect();
        assert_eq!(report["totals"]["errors"], 0, "{extra:?}: {problems:#?}");
        assert!(out.status.success(), "{extra:?}: {problems:#?}");
    }
}

/// A WebSocket with a live `callRecordingEvents` subscription (its first message arrived).
async fn subscribed(app: &TestApp) -> ws::Client {
    let mut ws = ws::accepted(app, &app.token).await;
    ws.send(json!({"id": "1", "type": "subscribe",
                   "payload": {"query": "subscription { callRecordingEvents { __typename } }"}}))
        .await;
    let started = ws.json().await;
    assert_eq!(started["type"], "next", "{started}");
    ws
}

fn promtool_installed() -> bool {
    std::process::Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn promtool_finds_every_metric_family_described() {
    if !promtool_installed() {
        return missing("promtool", "apt-get install prometheus");
    }
    let app = TestApp::start().await;
    // Traffic that makes every family appear: REST reads and writes (and so a store flush),
    // a 404, GraphQL operations, a live subscription, and connections.
    let platforms = "/api/v1/system/services/call_recording/platforms/";
    let (status, _) = app
        .admin(Method::POST, platforms, Some(platform("P")))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.get(platforms).await;
    app.call(Method::GET, "/no/such/path", None, None).await;
    app.gql_ok(
        "query Dashboard { callRecordingPlatforms { systemDefault } }",
        json!({}),
    )
    .await;
    let subscription = subscribed(&app).await;
    let (status, text) = app.metrics().await;
    drop(subscription);
    assert_eq!(status, StatusCode::OK);
    for family in [
        "callrec_http_requests_total",
        "callrec_http_request_duration_seconds",
        "callrec_graphql_operations_total",
        "callrec_graphql_subscriptions_active",
        "callrec_store_flush_duration_seconds",
        "callrec_http_connections_open",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP:\n{text}"
        );
    }
    let mut check = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("promtool runs");
    let mut stdin = check.stdin.take().expect("stdin");
    stdin
        .write_all(text.as_bytes())
        .await
        .expect("metrics sent");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), check.wait_with_output())
        .await
        .expect("promtool finishes within 60 s")
        .expect("promtool output");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
