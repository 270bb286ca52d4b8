//! Abusive GraphQL traffic against the real binary, measuring what matters: the server's
//! resident memory (`VmRSS` in `/proc/PID/status`), the series `/metrics` holds, and that
//! honest requests are still answered.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::graphql::*;
use common::process::Process;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

const MB: u64 = 1024 * 1024;

/// The resident memory of `process`, in bytes.
fn rss(process: &Process) -> u64 {
    let pid = process.child.id().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// A data folder holding `platforms` more platforms (added through the service) than
/// `data` held, or a fresh one.
async fn seeded(data: Option<Arc<TempDir>>, platforms: usize) -> Arc<TempDir> {
    let data = data.unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
    let app = TestApp::start_on(data, &[]).await;
    let before = app
        .gql_ok(
            "{ callRecordingPlatforms { platforms { name } } }",
            json!({}),
        )
        .await["callRecordingPlatforms"]["platforms"]
        .as_array()
        .map_or(0, Vec::len);
    add_platforms_from(&app.service, before, platforms).await;
    app.stop().await
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn of(process: &Process) -> Client {
        let http = reqwest::Client::new();
        let base = process.url("");
        let login: Value = http
            .post(format!("{base}/api/v1/login/"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login sent")
            .json()
            .await
            .expect("login answer");
        let token = login["access_token"].as_str().expect("token").to_owned();
        Client { http, base, token }
    }

    async fn graphql(&self, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/graphql", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = tokio::time::timeout(Duration::from_secs(60), request.send())
            .await
            .expect("answered in time")
            .expect("sent");
        let status = response.status();
        (status, response.json().await.expect("JSON"))
    }

    async fn metrics(&self) -> String {
        common::metrics_at(&self.http, &self.base).await.1
    }
}

async fn serve(data: &Path, extra: &[&str]) -> Process {
    Process::serve_with_args(data, &[("CALLREC_ADMIN_PASSWORD", ADMIN_PASSWORD)], extra).await
}

/// 10 operations of 30 aliases of the whole platform list, every field: about 50 KB.
fn batch_bomb() -> Value {
    let aliases: Vec<String> = (0..30)
        .map(|i| format!("a{i}: callRecordingPlatforms {{ platforms {{ {PLATFORM_FIELDS} }} }}"))
        .collect();
    let operation = json!({"query": format!("{{ {} }}", aliases.join(" "))});
    json!(vec![operation; 10])
}

#[tokio::test]
async fn a_batch_of_alias_bombs_is_refused_before_it_runs_and_a_full_list_is_answered() {
    let data = seeded(None, 2_500).await;
    let server = serve(data.path(), &[]).await;
    let client = Client::of(&server).await;
    let bomb = batch_bomb();
    assert!(bomb.to_string().len() > 40_000);
    let before = rss(&server);
    for _ in 0..3 {
        let (s1, s2, s3) = tokio::join!(
            client.graphql(Some(&client.token), &bomb),
            client.graphql(Some(&client.token), &bomb),
            client.graphql(Some(&client.token), &bomb),
        );
        for (status, body) in [s1, s2, s3] {
            assert_eq!(status, StatusCode::OK, "{body}");
            let answers = body.as_array().expect("a batch answer");
            assert_eq!(answers.len(), 10);
            for answer in answers {
                let error = assert_error(answer, "QUERY_TOO_LARGE", None);
                assert!(
                    error["message"].as_str().unwrap().contains("complexity"),
                    "{error}"
                );
                assert!(answer["data"].is_null(), "nothing ran: {answer}");
            }
        }
    }
    let grown = rss(&server).saturating_sub(before);
    eprintln!(
        "9 batch bombs: RSS {} MB, grew {} KB",
        before / MB,
        grown / 1024
    );
    assert!(grown < 50 * MB, "RSS grew by {} MB", grown / MB);
    let healthz = client
        .http
        .get(format!("{}/healthz", client.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), StatusCode::OK);
    server.terminate().await;

    // The honest dashboard: every platform of 10,000, every field, in one answer.
    let data = seeded(Some(data), 7_500).await;
    let server = serve(data.path(), &[]).await;
    let client = Client::of(&server).await;
    let query = format!(
        "{{ callRecordingPlatforms {{ systemDefault platforms {{ {PLATFORM_FIELDS} }} }} }}"
    );
    let (status, body) = client
        .graphql(Some(&client.token), &json!({"query": query}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{}", &body.to_string()[..500]);
    let platforms = body["data"]["callRecordingPlatforms"]["platforms"]
        .as_array()
        .expect("platforms");
    assert_eq!(platforms.len(), 10_000);
    assert_eq!(platforms[9_999]["name"], "P09999");
    server.terminate().await;
}

/// The series of `callrec_graphql_operations_total`.
fn operation_series(metrics: &str) -> Vec<String> {
    let mut series: Vec<String> = metrics
        .lines()
        .filter(|l| l.starts_with("callrec_graphql_operations_total{"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_owned()
        })
        .collect();
    series.sort();
    series
}

#[tokio::test]
async fn random_operation_names_add_no_series() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = serve(data.path(), &[]).await;
    let client = Client::of(&server).await;
    // The labels any stranger can reach exist from the first request of each kind.
    let warm = json!([
        {"query": "query Warm1 { me { username } }"},
        {"query": "query Warm2 { __typename }"},
        {"query": "{ __typename }"},
        {"query": "{ me { username } }"},
    ]);
    client.graphql(None, &warm).await;
    client
        .graphql(
            Some(&client.token),
            &json!({"query": "query Bad { me { nope } }"}),
        )
        .await;
    let before = operation_series(&client.metrics().await);
    assert!(!before.is_empty());

    // 10,000 names: without a token (answered, or refused), and with one but failing.
    let mut sent = 0;
    let mut batches = Vec::new();
    for i in 0..1_000 {
        let with_token = i % 5 == 4;
        let operations: Vec<Value> = (0..10)
            .map(|j| {
                let n = i * 10 + j;
                let query = match n % 3 {
                    _ if with_token => format!("query Random{n}t {{ me {{ nope }} }}"),
                    0 => format!("query Random{n}x{} {{ __typename }}", n * 7919),
                    1 => format!("query Random{n}y {{ me {{ username }} }}"),
                    _ => format!("query Random{n}z {{ me {{ nope }} }}"),
                };
                json!({"query": query})
            })
            .collect();
        sent += operations.len();
        batches.push((with_token, json!(operations)));
    }
    for chunk in batches.chunks(8) {
        let calls = chunk.iter().map(|(with_token, body)| {
            let token = with_token.then_some(client.token.as_str());
            client.graphql(token, body)
        });
        for (status, _) in futures_util::future::join_all(calls).await {
            assert_eq!(status, StatusCode::OK);
        }
    }
    assert_eq!(sent, 10_000);
    let after = operation_series(&client.metrics().await);
    assert_eq!(after, before, "no new series");
    // Successes of an authenticated caller are labelled by name: the first 100 names only.
    for chunk in (0..150).collect::<Vec<_>>().chunks(10) {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"query": format!("query Dashboard{n} {{ me {{ username }} }}")}))
            .collect();
        let (status, _) = client
            .graphql(Some(&client.token), &json!(operations))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let after = operation_series(&client.metrics().await);
    let named = after.iter().filter(|s| s.contains("Dashboard")).count();
    assert_eq!(named, 100, "{after:?}");
    assert_eq!(after.len(), before.len() + 100);
    server.terminate().await;
}

/// Grows the kept answers with `count` distinct padded queries of `padding` bytes each;
/// returns by how much the server's RSS grew.
async fn kept_answers_growth(cache_mb: &str, count: usize, padding: usize) -> u64 {
    let data = seeded(None, 100).await;
    let server = serve(
        data.path(),
        &[
            "--graphql-answer-cache-mb",
            cache_mb,
            "--body-limit",
            "1000000",
        ],
    )
    .await;
    let client = Client::of(&server).await;
    let query = format!("{{ callRecordingPlatforms {{ platforms {{ {PLATFORM_FIELDS} }} }} }}");
    // Warm up the allocator with one of them first.
    let pad = "x".repeat(padding);
    client
        .graphql(
            Some(&client.token),
            &json!({"query": format!("{query} # warm {pad}")}),
        )
        .await;
    let before = rss(&server);
    for i in 0..count {
        let body = json!({"query": format!("{query} # {i} {pad}")});
        let (status, body) = client.graphql(Some(&client.token), &body).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("errors").is_none(), "{body}");
    }
    let grown = rss(&server).saturating_sub(before);
    eprintln!(
        "{count} padded queries, cache {cache_mb} MB: RSS grew {} KB",
        grown / 1024
    );
    server.terminate().await;
    grown
}

#[tokio::test]
async fn kept_answers_are_bounded_in_bytes_questions_included() {
    // 120 distinct questions of 500 KB each (60 MB): with room for them they stay...
    let unbounded = kept_answers_growth("512", 120, 500_000).await;
    assert!(
        unbounded > 40 * MB,
        "kept when there is room: {} MB",
        unbounded / MB
    );
    // ...with 4 MB, they do not.
    let bounded = kept_answers_growth("4", 120, 500_000).await;
    assert!(bounded < 25 * MB, "RSS grew by {} MB", bounded / MB);
}
