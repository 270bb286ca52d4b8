//! The authorization matrix of the tenant and group routes — every route × every caller
//! (levels, another tenant's or group's admin, and every bad token state) gets exactly the
//! 401, 403 or success that README's authorization rules name, and a refused request changes nothing —
//! and a damaged data folder, which must stop the server with a clear error, never a panic.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::process::{Process, command};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "a-long-password";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    NoToken,
    Expired,
    Tampered,
    Revoked,
    DeletedUser,
    EndUser,
    GroupAdmin,
    OtherGroupAdmin,
    TenantAdmin,
    OtherTenantAdmin,
    SystemAdmin,
}

const EVERYONE: [Who; 11] = [
    Who::NoToken,
    Who::Expired,
    Who::Tampered,
    Who::Revoked,
    Who::DeletedUser,
    Who::EndUser,
    Who::GroupAdmin,
    Who::OtherGroupAdmin,
    Who::TenantAdmin,
    Who::OtherTenantAdmin,
    Who::SystemAdmin,
];

/// Who may use a route.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// System Admin only.
    System,
    /// System Admin and that tenant's Tenant Admin.
    Tenant(&'static str),
    /// System Admin, the tenant's Tenant Admin and that group's Group Admin.
    Group(&'static str, &'static str),
}

/// Each caller's own tenant and group: the admins of `t1`, `t2`, `t1/g1` and `t1/g2`.
fn expected(who: Who, need: Need, success: StatusCode) -> StatusCode {
    let allowed = match who {
        Who::NoToken | Who::Expired | Who::Tampered | Who::Revoked | Who::DeletedUser => {
            return StatusCode::UNAUTHORIZED;
        }
        Who::SystemAdmin => true,
        Who::EndUser => false,
        Who::TenantAdmin | Who::OtherTenantAdmin => {
            let own = if who == Who::TenantAdmin { "t1" } else { "t2" };
            matches!(need, Need::Tenant(t) | Need::Group(t, _) if t == own)
        }
        Who::GroupAdmin | Who::OtherGroupAdmin => {
            let own = if who == Who::GroupAdmin { "g1" } else { "g2" };
            matches!(need, Need::Group("t1", g) if g == own)
        }
    };
    if allowed {
        success
    } else {
        StatusCode::FORBIDDEN
    }
}

async fn must(app: &TestApp, method: Method, path: &str, body: Value) {
    let (status, answer) = app.admin(method.clone(), path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
}

async fn add_user(
    app: &TestApp,
    username: &str,
    level: u8,
    tenant: Option<&str>,
    group: Option<&str>,
) {
    let mut body = json!({"username": username, "password": PASSWORD, "userLevel": level});
    if let Some(t) = tenant {
        body["tenantId"] = json!(t);
    }
    if let Some(g) = group {
        body["groupId"] = json!(g);
    }
    must(app, Method::POST, "/api/v1/local/users/", body).await;
}

struct Tokens(Vec<(Who, Option<String>)>);

impl Tokens {
    fn of(&self, who: Who) -> Option<&str> {
        self.0
            .iter()
            .find(|(w, _)| *w == who)
            .and_then(|(_, t)| t.as_deref())
    }
}

async fn tokens(app: &TestApp) -> Tokens {
    for t in ["t1", "t2"] {
        must(
            app,
            Method::POST,
            "/api/v1/tenants/",
            json!({"tenantId": t}),
        )
        .await;
        for g in ["g1", "g2"] {
            must(
                app,
                Method::POST,
                &format!("/api/v1/tenants/{t}/groups/"),
                json!({"groupId": g}),
            )
            .await;
        }
    }
    add_user(app, "end", 0, Some("t1"), Some("g1")).await;
    add_user(app, "group", 8, Some("t1"), Some("g1")).await;
    add_user(app, "group2", 8, Some("t1"), Some("g2")).await;
    add_user(app, "tenant", 12, Some("t1"), None).await;
    add_user(app, "tenant2", 12, Some("t2"), None).await;
    add_user(app, "system", 16, None, None).await;
    add_user(app, "gone", 16, None, None).await;
    let system = app.login("system", PASSWORD).await;

    let expired = app.expired_token(&system);
    let tampered = TestApp::tampered_token(&system);
    let revoked = app.revoked_token("system", PASSWORD).await;
    let deleted = app.deleted_user_token("gone", PASSWORD).await;

    Tokens(vec![
        (Who::NoToken, None),
        (Who::Expired, Some(expired)),
        (Who::Tampered, Some(tampered)),
        (Who::Revoked, Some(revoked)),
        (Who::DeletedUser, Some(deleted)),
        (Who::EndUser, Some(app.login("end", PASSWORD).await)),
        (Who::GroupAdmin, Some(app.login("group", PASSWORD).await)),
        (
            Who::OtherGroupAdmin,
            Some(app.login("group2", PASSWORD).await),
        ),
        (Who::TenantAdmin, Some(app.login("tenant", PASSWORD).await)),
        (
            Who::OtherTenantAdmin,
            Some(app.login("tenant2", PASSWORD).await),
        ),
        (Who::SystemAdmin, Some(system)),
    ])
}

#[tokio::test]
async fn tenant_and_group_routes_at_every_level_and_token_state() {
    let app = TestApp::start().await;
    let tokens = tokens(&app).await;
    must(&app, Method::POST, &platforms_path(), platform("P")).await;
    let g1 = "/api/v1/tenants/t1/groups/g1";
    let mut checked = 0;
    for (row, who) in EVERYONE.into_iter().enumerate() {
        // Objects of this row only, so that one row's success cannot change the next's answer.
        let tenant = format!("rt{row}");
        let group = format!("rg{row}");
        must(
            &app,
            Method::POST,
            "/api/v1/tenants/",
            json!({"tenantId": tenant}),
        )
        .await;
        must(
            &app,
            Method::POST,
            "/api/v1/tenants/t1/groups/",
            json!({"groupId": group}),
        )
        .await;
        // A previous row may have deleted it.
        app.admin(
            Method::POST,
            "/api/v1/tenants/t2/groups/",
            Some(json!({"groupId": "g2"})),
        )
        .await;
        let ok = StatusCode::OK;
        let missing = StatusCode::NOT_FOUND;
        let refused = StatusCode::BAD_REQUEST;
        let operations: Vec<(Method, String, Option<Value>, Need, StatusCode)> = vec![
            (
                Method::GET,
                "/api/v1/tenants/".into(),
                None,
                Need::System,
                ok,
            ),
            (
                Method::POST,
                "/api/v1/tenants/".into(),
                Some(json!({"tenantId": format!("new{row}")})),
                Need::System,
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t1/".into(),
                None,
                Need::Tenant("t1"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t2/".into(),
                None,
                Need::Tenant("t2"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/nope/".into(),
                None,
                Need::Tenant("nope"),
                missing,
            ),
            (
                Method::DELETE,
                format!("/api/v1/tenants/{tenant}/"),
                None,
                Need::System,
                ok,
            ),
            (
                Method::DELETE,
                "/api/v1/tenants/t1/".into(),
                None,
                Need::System,
                refused,
            ),
            (
                Method::DELETE,
                "/api/v1/tenants/nope/".into(),
                None,
                Need::System,
                refused,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t1/groups/".into(),
                None,
                Need::Tenant("t1"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t2/groups/".into(),
                None,
                Need::Tenant("t2"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/nope/groups/".into(),
                None,
                Need::Tenant("nope"),
                missing,
            ),
            (
                Method::POST,
                "/api/v1/tenants/t1/groups/".into(),
                Some(json!({"groupId": format!("new{row}")})),
                Need::Tenant("t1"),
                ok,
            ),
            (
                Method::POST,
                "/api/v1/tenants/t2/groups/".into(),
                Some(json!({"groupId": format!("new{row}")})),
                Need::Tenant("t2"),
                ok,
            ),
            (
                Method::POST,
                "/api/v1/tenants/nope/groups/".into(),
                Some(json!({"groupId": "g"})),
                Need::Tenant("nope"),
                refused,
            ),
            (
                Method::GET,
                format!("{g1}/"),
                None,
                Need::Group("t1", "g1"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t1/groups/g2/".into(),
                None,
                Need::Group("t1", "g2"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t2/groups/g1/".into(),
                None,
                Need::Group("t2", "g1"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t1/groups/nope/".into(),
                None,
                Need::Group("t1", "nope"),
                missing,
            ),
            (
                Method::DELETE,
                format!("/api/v1/tenants/t1/groups/{group}/"),
                None,
                Need::Tenant("t1"),
                ok,
            ),
            (
                Method::DELETE,
                format!("{g1}/"),
                None,
                Need::Tenant("t1"),
                refused,
            ),
            (
                Method::DELETE,
                "/api/v1/tenants/t2/groups/g2/".into(),
                None,
                Need::Tenant("t2"),
                ok,
            ),
            (
                Method::GET,
                format!("{g1}/services/call_recording/"),
                None,
                Need::Group("t1", "g1"),
                ok,
            ),
            (
                Method::PUT,
                format!("{g1}/services/call_recording/"),
                Some(json!({"name": "P"})),
                Need::Group("t1", "g1"),
                ok,
            ),
            (
                Method::PUT,
                format!("{g1}/services/call_recording/"),
                Some(json!({"name": null})),
                Need::Group("t1", "g1"),
                ok,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t1/groups/g2/services/call_recording/".into(),
                None,
                Need::Group("t1", "g2"),
                ok,
            ),
            (
                Method::PUT,
                "/api/v1/tenants/t1/groups/g2/services/call_recording/".into(),
                Some(json!({"name": "P"})),
                Need::Group("t1", "g2"),
                ok,
            ),
            (
                Method::PUT,
                "/api/v1/tenants/t2/groups/g1/services/call_recording/".into(),
                Some(json!({"name": "P"})),
                Need::Group("t2", "g1"),
                ok,
            ),
            (
                Method::PUT,
                "/api/v1/tenants/t1/groups/nope/services/call_recording/".into(),
                Some(json!({"name": "P"})),
                Need::Group("t1", "nope"),
                refused,
            ),
            (
                Method::GET,
                "/api/v1/tenants/t1/groups/nope/services/call_recording/".into(),
                None,
                Need::Group("t1", "nope"),
                missing,
            ),
        ];
        for (method, path, body, need, success) in operations {
            let want = expected(who, need, success);
            let before = store_snapshot(&app.service);
            let (status, answer) = app.call(method.clone(), &path, tokens.of(who), body).await;
            assert_eq!(status, want, "{who:?} {method} {path}: {answer}");
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let code = if status == StatusCode::UNAUTHORIZED {
                    102
                } else {
                    103
                };
                assert_eq!(
                    answer["errors"][0]["code"], code,
                    "{who:?} {method} {path}: {answer}"
                );
                assert_eq!(
                    before,
                    store_snapshot(&app.service),
                    "{who:?} {method} {path} changed the store"
                );
            }
            checked += 1;
        }
        // Clear what the row assigned, so that the next row starts alike.
        for path in [
            format!("{g1}/services/call_recording/"),
            "/api/v1/tenants/t1/groups/g2/services/call_recording/".into(),
            "/api/v1/tenants/t2/groups/g1/services/call_recording/".into(),
        ] {
            must(&app, Method::PUT, &path, json!({"name": null})).await;
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
    let login: Value = client
        .post(p.url("/api/v1/login/"))
        .json(&json!({"username": "admin", "password": ADMIN}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let token = login["access_token"].as_str().expect("token");
    for i in 0..20 {
        let status = client
            .post(p.url(&platforms_path()))
            .bearer_auth(token)
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
        ("garbage over the tail of the data file", "db", |mut b| {
            let n = b.len();
            let tail = n.saturating_sub(64);
            b[tail..].copy_from_slice(&garbage(n - tail));
            b
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
