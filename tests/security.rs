//! The authorization matrix of the tenant and group routes — every route × every caller
//! (levels, another tenant's or group's admin, and every bad token state) gets exactly the
//! 401, 403 or success that README's authorization rules name, and a refused request changes nothing —
//! and a damaged data folder, which must stop the server with a clear error, never a panic.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::callers::{Callers, EVERYONE, Need, must, op};
use common::process::{Process, command};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn tenant_and_group_routes_at_every_level_and_token_state() {
    let app = TestApp::start().await;
    let callers = Callers::create(&app).await;
    must(&app, Method::POST, &platforms_path(), platform("P")).await;
    let g1 = "/api/v1/tenants/t1/groups/g1";
    let g1_platform = format!("{g1}/services/call_recording/");
    let g2_platform = "/api/v1/tenants/t1/groups/g2/services/call_recording/";
    let t2_g1_platform = "/api/v1/tenants/t2/groups/g1/services/call_recording/";
    let nope_platform = "/api/v1/tenants/t1/groups/nope/services/call_recording/";
    let (system, t1, t2, nope) = (
        Need::Level(16),
        Need::Tenant("t1"),
        Need::Tenant("t2"),
        Need::Tenant("nope"),
    );
    let (missing, refused) = (StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST);
    let assign = |name: Value| Some(json!({ "name": name }));
    let mut checked = 0;
    for (row, who) in EVERYONE.into_iter().enumerate() {
        // Objects of this row only, so that one row's success cannot change the next's answer.
        let tenant = format!("rt{row}");
        let group = format!("rg{row}");
        let new_tenant = Some(json!({"tenantId": format!("new{row}")}));
        let new_group = Some(json!({"groupId": format!("new{row}")}));
        must(
            &app,
            Method::POST,
            "/api/v1/tenants/",
            json!({"tenantId": tenant}),
        )
        .await;
        let t1_groups = "/api/v1/tenants/t1/groups/";
        must(&app, Method::POST, t1_groups, json!({"groupId": group})).await;
        // A previous row may have deleted it.
        app.admin(
            Method::POST,
            "/api/v1/tenants/t2/groups/",
            Some(json!({"groupId": "g2"})),
        )
        .await;
        let operations = [
            op(Method::GET, "/api/v1/tenants/", None, system),
            op(Method::POST, "/api/v1/tenants/", new_tenant, system),
            op(Method::GET, "/api/v1/tenants/t1/", None, t1),
            op(Method::GET, "/api/v1/tenants/t2/", None, t2),
            op(Method::GET, "/api/v1/tenants/nope/", None, nope).answering(missing),
            op(
                Method::DELETE,
                format!("/api/v1/tenants/{tenant}/"),
                None,
                system,
            ),
            op(Method::DELETE, "/api/v1/tenants/t1/", None, system).answering(refused),
            op(Method::DELETE, "/api/v1/tenants/nope/", None, system).answering(refused),
            op(Method::GET, t1_groups, None, t1),
            op(Method::GET, "/api/v1/tenants/t2/groups/", None, t2),
            op(Method::GET, "/api/v1/tenants/nope/groups/", None, nope).answering(missing),
            op(Method::POST, t1_groups, new_group.clone(), t1),
            op(Method::POST, "/api/v1/tenants/t2/groups/", new_group, t2),
            op(
                Method::POST,
                "/api/v1/tenants/nope/groups/",
                Some(json!({"groupId": "g"})),
                nope,
            )
            .answering(refused),
            op(Method::GET, format!("{g1}/"), None, Need::Group("t1", "g1")),
            op(
                Method::GET,
                "/api/v1/tenants/t1/groups/g2/",
                None,
                Need::Group("t1", "g2"),
            ),
            op(
                Method::GET,
                "/api/v1/tenants/t2/groups/g1/",
                None,
                Need::Group("t2", "g1"),
            ),
            op(
                Method::GET,
                "/api/v1/tenants/t1/groups/nope/",
                None,
                Need::Group("t1", "nope"),
            )
            .answering(missing),
            op(Method::DELETE, format!("{t1_groups}{group}/"), None, t1),
            op(Method::DELETE, format!("{g1}/"), None, t1).answering(refused),
            op(Method::DELETE, "/api/v1/tenants/t2/groups/g2/", None, t2),
            op(
                Method::GET,
                g1_platform.clone(),
                None,
                Need::Group("t1", "g1"),
            ),
            op(
                Method::PUT,
                g1_platform.clone(),
                assign(json!("P")),
                Need::Group("t1", "g1"),
            ),
            op(
                Method::PUT,
                g1_platform.clone(),
                assign(Value::Null),
                Need::Group("t1", "g1"),
            ),
            op(Method::GET, g2_platform, None, Need::Group("t1", "g2")),
            op(
                Method::PUT,
                g2_platform,
                assign(json!("P")),
                Need::Group("t1", "g2"),
            ),
            op(
                Method::PUT,
                t2_g1_platform,
                assign(json!("P")),
                Need::Group("t2", "g1"),
            ),
            op(
                Method::PUT,
                nope_platform,
                assign(json!("P")),
                Need::Group("t1", "nope"),
            )
            .answering(refused),
            op(Method::GET, nope_platform, None, Need::Group("t1", "nope")).answering(missing),
        ];
        for operation in &operations {
            let before = store_snapshot(&app.service);
            let status = operation.check(&app, &callers, who).await;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let (method, path) = (&operation.method, &operation.path);
                assert_eq!(
                    before,
                    store_snapshot(&app.service),
                    "{who:?} {method} {path} changed the store"
                );
            }
            checked += 1;
        }
        // Clear what the row assigned, so that the next row starts alike.
        for path in [g1_platform.as_str(), g2_platform, t2_g1_platform] {
            must(&app, Method::PUT, path, json!({"name": null})).await;
        }
    }
    assert_eq!(checked, 29 * EVERYONE.len());
}

// ---------------------------------------------------------------------------------------------
// A damaged data folder.

const ADMIN: &str = "corrupt-test-password";

/// A data folder with a few acknowledged writes, cleanly stopped.
async fn used_folder() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("temp dir");
    let p = Process::serve(data.path(), &[("CALLREC_ADMIN_PASSWORD", ADMIN)]).await;
    let client = reqwest::Client::new();
    let token = p.login("admin", ADMIN).await;
    for i in 0..20 {
        let status = client
            .post(p.url(&platforms_path()))
            .bearer_auth(&token)
            .json(&platform(&format!("P{i}")))
            .send()
            .await
            .expect("add")
            .status();
        assert_eq!(status, 200);
    }
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
    data
}

/// Starts `serve` on the folder; it must exit on its own with a clear error.
async fn start_fails(data: &std::path::Path, what: &str) {
    let folder = data.display().to_string();
    let mut cmd = command(&["serve", "--listen", "127.0.0.1:0", "--data", &folder]);
    cmd.env("CALLREC_ADMIN_PASSWORD", ADMIN)
        .stdin(Stdio::null());
    let child = cmd.spawn().expect("binary starts");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: the server started on a damaged folder"))
        .expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{what}: {stdout}{stderr}");
    assert!(
        out.status.code().is_some(),
        "{what}: killed by a signal: {stderr}"
    );
    assert!(
        !stdout.contains("listening on"),
        "{what}: served a damaged store: {stdout}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: ") && last.contains(&folder),
        "{what}: unclear error: {stderr}"
    );
}

fn damage(data: &std::path::Path, file: &str, how: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let path = data.join(file);
    let bytes = std::fs::read(&path).unwrap_or_default();
    std::fs::write(&path, how(bytes)).expect("write");
}

/// Deterministic noise.
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn a_damaged_data_folder_is_a_clear_startup_error() {
    if common::store::postgres() {
        // A data folder's damage is the folder store's; PostgreSQL keeps its own files.
        return;
    }
    type Damage = fn(Vec<u8>) -> Vec<u8>;
    let cases: [(&str, &str, Damage); 6] = [
        ("junk conf", "conf", |_| {
            b"this is not a sled config\n\x00\xff".to_vec()
        }),
        ("garbage over the data file", "db", |b| {
            garbage(b.len().max(4096))
        }),
        ("data file cut in half", "db", |b| b[..b.len() / 2].to_vec()),
        ("empty data file", "db", |_| Vec::new()),
        // 4 KiB reaches back into the last group's record of its keys (64 bytes do not: see
        // the next test).
        ("garbage over the tail of the data file", "db", |b| {
            garbage_over_tail(b, 4096)
        }),
        ("junk commit record", "durable-commits", |_| {
            b"twelve".to_vec()
        }),
    ];
    for (what, file, how) in cases {
        let data = used_folder().await;
        damage(data.path(), file, how);
        start_fails(data.path(), what).await;
    }
}

fn garbage_over_tail(mut b: Vec<u8>, len: usize) -> Vec<u8> {
    let n = b.len();
    let tail = n.saturating_sub(len);
    b[tail..].copy_from_slice(&garbage(n - tail));
    b
}

#[tokio::test]
async fn a_torn_tail_within_the_last_group_is_completed_from_its_record() {
    if common::store::postgres() {
        return;
    }
    // The last 64 bytes hold the last group's last keys (its commit count), not the record of
    // them written before: the store writes the group again and has every platform.
    let data = used_folder().await;
    damage(data.path(), "db", |b| garbage_over_tail(b, 64));
    let p = Process::serve(data.path(), &[]).await;
    let token = p.login("admin", ADMIN).await;
    let list = p.get(&platforms_path(), &token).await;
    let names: Vec<&str> = list["callRecordingPlatforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names.len(), 20, "{names:?}");
    assert!(names.contains(&"P19"), "{names:?}");
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn an_undamaged_folder_still_starts_after_kill_9() {
    // The commit record must never run ahead of the store after a crash.
    let data = used_folder().await;
    for _ in 0..3 {
        let p = Process::serve(data.path(), &[]).await;
        p.kill().await;
    }
    let p = Process::serve(data.path(), &[]).await;
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
}
