//! 64 clients for a few seconds on the same few platforms, tenants and groups, mixing reads
//! with every mutation. No request may get a 5xx, every list read must show a consistent
//! default, and afterwards the invariants must hold: exactly one default when platforms exist,
//! no assignment to a missing platform, usage equal to the groups assigned.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{CALL_RECORDING, TestApp, check_assignments, platform, platform_path, platforms_path};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CLIENTS: usize = 64;
const RUN_FOR: Duration = Duration::from_secs(4);
const PLATFORMS: usize = 6;
const TENANTS: usize = 3;
const GROUPS: usize = 4;

fn group_path(t: usize, g: usize) -> String {
    format!("/api/v1/tenants/T{t}/groups/G{g}/")
}

fn pick(rng: &mut StdRng) -> (Method, String, Option<Value>) {
    let p = rng.gen_range(0..PLATFORMS);
    let (t, g) = (rng.gen_range(0..TENANTS), rng.gen_range(0..GROUPS));
    match rng.gen_range(0..16) {
        0 => (
            Method::POST,
            platforms_path(),
            Some(platform(&format!("P{p}"))),
        ),
        1 => (
            Method::PUT,
            platform_path(&format!("P{p}")),
            Some(json!({"default": true})),
        ),
        2 => (
            Method::PUT,
            platform_path(&format!("P{p}")),
            Some(json!({"port": rng.gen_range(0..3), "description": ""})),
        ),
        3 => (Method::DELETE, platform_path(&format!("P{p}")), None),
        4 => (
            Method::PUT,
            format!("{CALL_RECORDING}/properties/"),
            Some(json!({"maxResponseWaitTimeMilliseconds": rng.gen_range(0..12_000)})),
        ),
        5 => (
            Method::POST,
            "/api/v1/tenants/".into(),
            Some(json!({"tenantId": format!("T{t}")})),
        ),
        6 => (Method::DELETE, format!("/api/v1/tenants/T{t}/"), None),
        7 => (
            Method::POST,
            format!("/api/v1/tenants/T{t}/groups/"),
            Some(json!({"groupId": format!("G{g}")})),
        ),
        8 => (Method::DELETE, group_path(t, g), None),
        9 | 10 => (
            Method::PUT,
            format!("{}services/call_recording/", group_path(t, g)),
            Some(json!({"name": format!("P{p}")})),
        ),
        11 => (
            Method::PUT,
            format!("{}services/call_recording/", group_path(t, g)),
            Some(json!({"name": null})),
        ),
        12 | 13 => (Method::GET, platforms_path(), None),
        14 => (
            Method::GET,
            format!("{}usage/", platform_path(&format!("P{p}"))),
            None,
        ),
        _ => (
            Method::GET,
            format!("{}services/call_recording/", group_path(t, g)),
            None,
        ),
    }
}

/// The list's own consistency: a default exactly when there are platforms, and it is listed.
fn check_list(list: &Value) {
    let names: Vec<&str> = list["callRecordingPlatforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    match list["systemDefault"].as_str() {
        None => assert!(names.is_empty(), "platforms without a default: {list}"),
        Some(d) => assert!(names.contains(&d), "default {d} not listed: {list}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_keep_the_invariants() {
    let seed = common::seed_from_env("CALLREC_CONCURRENCY_SEED");
    eprintln!("concurrency: seed {seed}");
    let app = Arc::new(TestApp::start().await);
    let requests = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + RUN_FOR;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (app, requests, ok) = (app.clone(), requests.clone(), ok.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
                while Instant::now() < deadline {
                    let (method, path, body) = pick(&mut rng);
                    let (status, answer) = tokio::time::timeout(
                        Duration::from_secs(30),
                        app.admin(method.clone(), &path, body),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"));
                    requests.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        [
                            StatusCode::OK,
                            StatusCode::BAD_REQUEST,
                            StatusCode::NOT_FOUND
                        ]
                        .contains(&status),
                        "{method} {path}: {status} {answer}"
                    );
                    if status == StatusCode::OK {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if method == Method::GET && path == platforms_path() {
                            check_list(&answer);
                        }
                    } else {
                        assert!(
                            answer["errors"][0]["code"].is_u64(),
                            "{method} {path}: {answer}"
                        );
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }

    // The invariants, read back over REST.
    let (_, list) = app.get(&platforms_path()).await;
    check_list(&list);
    let names: BTreeSet<String> = list["callRecordingPlatforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    let mut defaults = 0;
    for name in &names {
        let (status, one) = app.get(&platform_path(name)).await;
        assert_eq!(status, StatusCode::OK);
        defaults += usize::from(one["default"] == json!(true));
    }
    assert_eq!(defaults, usize::from(!names.is_empty()), "{list}");
    check_assignments(
        async |path: &str| app.get(path).await.1,
        &names,
        "after the concurrent run",
    )
    .await;
    let total = requests.load(Ordering::Relaxed);
    eprintln!(
        "concurrency: {CLIENTS} clients, {total} requests in {} s ({} succeeded), no 5xx, invariants hold",
        RUN_FOR.as_secs(),
        ok.load(Ordering::Relaxed)
    );
    assert!(
        total > CLIENTS,
        "too few requests to prove anything: {total}"
    );
}
