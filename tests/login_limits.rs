//! Logins under abuse, against the real binary: parallel password checks are bounded in number
//! (and so in memory, which goes back to the system afterwards), and parallel guesses cannot
//! get past the failed-login lockout.

mod common;

use std::time::Duration;

use common::process::Process;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "login-limits-password";

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc readable");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn login(
    client: &reqwest::Client,
    p: &Process,
    user: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let response = client
        .post(p.url("/api/v1/login/"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("answered");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.expect("JSON body");
    (status, retry_after, body)
}

async fn start(extra: &[&str]) -> (Process, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let p =
        Process::serve_with_args(data.path(), &[("CALLREC_ADMIN_PASSWORD", PASSWORD)], extra).await;
    (p, data)
}

/// The bound this test holds the burst to; 200 unbounded checks would take about 3.8 GB.
const PEAK_LIMIT_KIB: u64 = 200 * 1024;
/// How far above its idle size the process may stay once the burst is over.
const SETTLED_ABOVE_IDLE_KIB: u64 = 48 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_are_bounded_and_memory_returns() {
    let (p, _data) = start(&[
        "--max-password-checks",
        "2",
        "--password-check-wait-ms",
        "300",
    ])
    .await;
    let pid = p.child.id().expect("running");
    let client = reqwest::Client::new();
    // One check first, so that idle includes what every check leaves for good (the throwaway
    // hash for unknown users, the blocking pool's threads).
    assert_eq!(
        login(&client, &p, "ghost", "wrong-password").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (idle, _) = memory_kib(pid);

    let sampler = tokio::spawn(async move {
        let mut highest = 0;
        loop {
            match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                Ok(_) => highest = highest.max(memory_kib(pid).0),
                Err(_) => return highest,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let burst = (0..200).map(|i| {
        let (client, p) = (client.clone(), &p);
        async move { login(&client, p, &format!("unknown-{i}"), "wrong-password").await }
    });
    let answers = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(burst),
    )
    .await
    .expect("every login answered within 120 s");
    let (_, peak) = memory_kib(pid);
    sampler.abort();

    let mut busy = 0;
    for (status, retry_after, body) in &answers {
        match *status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(body["errors"][0]["code"], 107, "{body}");
                assert_eq!(body["errors"][0]["name"], "UNAVAILABLE", "{body}");
                let seconds: u64 = retry_after
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .expect("Retry-After in seconds");
                assert!(seconds >= 1);
                assert_eq!(body["errors"][0]["details"]["retryAfterSeconds"], seconds);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(busy > 0, "no login was answered 503");
    assert!(
        peak < PEAK_LIMIT_KIB,
        "peak RSS {peak} KiB (idle {idle} KiB)"
    );

    // Freed check buffers go back to the system.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (now, _) = memory_kib(pid);
        if now <= idle + SETTLED_ABOVE_IDLE_KIB {
            eprintln!(
                "idle {idle} KiB, peak {peak} KiB, after {now} KiB, {busy} of 200 answered 503"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "RSS stayed at {now} KiB after the burst (idle {idle} KiB, peak {peak} KiB)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still serving logins.
    assert_eq!(
        login(&client, &p, "admin", PASSWORD).await.0,
        StatusCode::OK
    );
    let (code, _) = p.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_are_checked_at_most_the_limit() {
    let (p, _data) = start(&["--max-failed-logins", "5", "--login-lockout", "20"]).await;
    let client = reqwest::Client::new();
    // 50 wrong passwords with the right one in the middle of the burst.
    let burst = (0..51).map(|i| {
        let (client, p) = (client.clone(), &p);
        let password = if i == 25 {
            PASSWORD.to_owned()
        } else {
            format!("guess-number-{i}")
        };
        async move { (i, login(&client, p, "admin", &password).await) }
    });
    let answers = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(burst),
    )
    .await
    .expect("every login answered within 120 s");
    let mut wrong_checked = 0;
    for (i, (status, retry_after, body)) in &answers {
        match *status {
            StatusCode::UNAUTHORIZED => wrong_checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["errors"][0]["name"], "TOO_MANY_ATTEMPTS", "{body}");
                assert!(retry_after.is_some(), "429 without Retry-After");
            }
            StatusCode::OK => assert_eq!(*i, 25, "a wrong password was accepted"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        (1..=5).contains(&wrong_checked),
        "{wrong_checked} wrong passwords were checked"
    );
    // Unless the burst left attempts unused, the username is locked now; top it up so that it
    // is locked whatever the order was.
    let mut locked = false;
    for _ in 0..5 {
        let (status, _, _) = login(&client, &p, "admin", "one-more-guess").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            locked = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        wrong_checked += 1;
    }
    assert!(locked && wrong_checked <= 5, "{wrong_checked} checked");
    // The right password is refused until the lockout ends, then accepted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut refused = 0;
    loop {
        let (status, _, body) = login(&client, &p, "admin", PASSWORD).await;
        match status {
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            StatusCode::OK => break,
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still locked after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused > 0, "the right password was never refused");
    let (code, _) = p.terminate().await;
    assert_eq!(code, Some(0));
}
