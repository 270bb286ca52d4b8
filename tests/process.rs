//! The binary itself: its command line, the `listening on` line, signals, `kill -9`, a second
//! process on the same folder, user management offline, and what it logs.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::process::{Process, command};
use common::*;
use serde_json::json;
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "process-test-password";

async fn run(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = command(args);
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        let mut input = child.stdin.take().unwrap();
        input.write_all(text.as_bytes()).await.unwrap();
        drop(input);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("finishes")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn help_explains_every_flag() {
    let (code, out, _) = run(&["serve", "--help"], None).await;
    assert_eq!(code, Some(0));
    for flag in [
        "--listen",
        "--data",
        "--cache-mb",
        "--access-token-ttl",
        "--refresh-token-ttl",
        "--max-failed-logins",
        "--login-lockout",
        "--max-password-checks",
        "--password-check-wait-ms",
        "--refresh-token-grace",
        "--max-sessions-per-user",
        "--session-prune-interval",
        "--body-limit",
        "--log-format",
        "CALLREC_LISTEN",
        "CALLREC_DATA",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
    let (code, out, _) = run(&["--help"], None).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("serve") && out.contains("user"), "{out}");
}

#[tokio::test]
async fn serves_then_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let p = Process::serve(data.path(), &[("CALLREC_ADMIN_PASSWORD", PASSWORD)]).await;
    assert!(
        p.addr.starts_with("127.0.0.1:") && !p.addr.ends_with(":0"),
        "{}",
        p.addr
    );
    let token = p.login("admin", PASSWORD).await;
    let status = reqwest::Client::new()
        .get(p.url(&platforms_path()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_write() {
    let data = tempfile::tempdir().unwrap();
    let envs = [("CALLREC_ADMIN_PASSWORD", PASSWORD)];
    let p = Process::serve(data.path(), &envs).await;
    let token = p.login("admin", PASSWORD).await;
    let client = reqwest::Client::new();
    // Concurrent adds, each acknowledged before the kill.
    let adds = (0..40).map(|i| {
        client
            .post(p.url(&platforms_path()))
            .bearer_auth(&token)
            .json(&platform(&format!("P{i:02}")))
            .send()
    });
    for r in futures_util::future::join_all(adds).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    let moves = (0..40).map(|i| {
        let mut change = json!({"port": 1000 + i});
        if i == 17 {
            change["default"] = json!(true);
        }
        client
            .put(p.url(&platform_path(&format!("P{i:02}"))))
            .bearer_auth(&token)
            .json(&change)
            .send()
    });
    for r in futures_util::future::join_all(moves).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    p.kill().await;

    let p = Process::serve(data.path(), &envs).await;
    let token = p.login("admin", PASSWORD).await;
    let list = p.get(&platforms_path(), &token).await;
    assert_eq!(list["systemDefault"], "P17");
    let platforms = list["callRecordingPlatforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 40);
    for (i, p) in platforms.iter().enumerate() {
        assert_eq!(p["port"], 1000 + i, "{p}");
    }
    p.terminate().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_folder_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let p = Process::serve(data.path(), &[("CALLREC_ADMIN_PASSWORD", PASSWORD)]).await;
    let folder = data.path().display().to_string();
    let (code, _, stderr) = run(
        &["serve", "--listen", "127.0.0.1:0", "--data", &folder],
        None,
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("in use by another process"), "{stderr}");
    let (code, _, stderr) = run(&["user", "--data", &folder, "list"], None).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("in use by another process"), "{stderr}");
    p.terminate().await;
}

#[tokio::test]
async fn an_unreadable_data_folder_is_a_clear_startup_error() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("not-a-folder");
    std::fs::write(&file, b"plain file").unwrap();
    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            &file.display().to_string(),
        ],
        None,
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(
        stderr.starts_with("error: ") && stderr.contains("not-a-folder"),
        "{stderr}"
    );
}

#[tokio::test]
async fn first_start_without_a_password_prints_a_generated_one_once() {
    let data = tempfile::tempdir().unwrap();
    let p = Process::serve(data.path(), &[]).await;
    let (_, stderr) = p.terminate().await;
    let password = stderr
        .lines()
        .find_map(|l| l.strip_prefix("created user 'admin' (System Admin) with password: "))
        .unwrap_or_else(|| panic!("no password line in:\n{stderr}"))
        .trim()
        .to_owned();
    let p = Process::serve(data.path(), &[]).await;
    p.login("admin", &password).await;
    let (_, stderr) = p.terminate().await;
    assert!(!stderr.contains(&password), "shown only once");
}

#[tokio::test]
async fn user_commands_work_on_a_stopped_server_folder() {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().display().to_string();
    let p = Process::serve(data.path(), &[("CALLREC_ADMIN_PASSWORD", PASSWORD)]).await;
    // A Tenant Admin's tenant must exist.
    let token = p.login("admin", PASSWORD).await;
    let status = reqwest::Client::new()
        .post(p.url("/api/v1/tenants/"))
        .bearer_auth(&token)
        .json(&json!({"tenantId": "t1"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    p.terminate().await;

    let (code, _, err) = run(
        &[
            "user", "--data", &folder, "add", "lost", "--level", "12", "--tenant", "t2",
        ],
        Some("lost-password\n"),
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("t2"), "{err}");
    let (code, out, err) = run(
        &[
            "user", "--data", &folder, "add", "ops", "--level", "12", "--tenant", "t1",
        ],
        Some("ops-password-1\n"),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ops"));
    let (code, out, _) = run(&["user", "--data", &folder, "list"], None).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains("admin\t16") && out.contains("ops\t12\tTenant Admin\tt1"),
        "{out}"
    );
    assert!(!out.contains("ops-password-1"));
    let (code, _, err) = run(
        &["user", "--data", &folder, "add", "bad", "--level", "7"],
        Some("whatever-pw\n"),
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("user level"), "{err}");
    let (code, _, err) = run(
        &["user", "--data", &folder, "passwd", "ops"],
        Some("ops-password-2\n"),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");

    let p = Process::serve(data.path(), &[]).await;
    p.login("ops", "ops-password-2").await;
    p.terminate().await;

    let (code, _, _) = run(&["user", "--data", &folder, "delete", "ops"], None).await;
    assert_eq!(code, Some(0));
    let (_, out, _) = run(&["user", "--data", &folder, "list"], None).await;
    assert!(!out.contains("ops"), "{out}");
}

#[tokio::test]
async fn logs_carry_no_password_or_token() {
    let data = tempfile::tempdir().unwrap();
    let p = Process::serve(
        data.path(),
        &[("CALLREC_ADMIN_PASSWORD", PASSWORD), ("RUST_LOG", "trace")],
    )
    .await;
    let client = reqwest::Client::new();
    let token = p.login("admin", PASSWORD).await;
    let user_password = "user-password-in-body";
    client
        .post(p.url("/api/v1/local/users/"))
        .bearer_auth(&token)
        .json(&json!({"username": "u", "password": user_password, "userLevel": 16}))
        .send()
        .await
        .unwrap();
    client
        .post(p.url("/api/v1/login/"))
        .json(&json!({"username": "u", "password": "wrong-password-in-body"}))
        .send()
        .await
        .unwrap();
    let (_, stderr) = p.terminate().await;
    assert!(
        stderr.contains("/api/v1/local/users/"),
        "requests are logged:\n{stderr}"
    );
    for secret in [PASSWORD, user_password, "wrong-password-in-body", &token] {
        assert!(!stderr.contains(secret), "{secret} appears in the log");
    }
}

#[tokio::test]
async fn sigterm_right_after_the_ready_line_stops_cleanly() {
    // The signal handlers are in place before the line is printed: no window in which
    // SIGTERM kills the process without its final flush.
    let data = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let p = Process::serve(data.path(), &[("CALLREC_ADMIN_PASSWORD", PASSWORD)]).await;
        let (code, stderr) = p.terminate().await;
        assert_eq!(code, Some(0), "{stderr}");
    }
}
