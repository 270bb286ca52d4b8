//! A full disk, with the data folder and the log on a 2 MB filesystem: the store's first failed
//! write or flush ends its writes (503, nothing acknowledged), `/readyz` turns 503, reads and
//! `/healthz` go on, SIGTERM exits within the grace with the store-failure exit code (75), a
//! server left alone stops by itself with that code, and once space is back a restart has
//! every acknowledged write. Log lines that cannot be written must not break a request.
//!
//! Needs `mount -t tmpfs` (root); where mounting is not permitted the tests say so and pass.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::process::Process;
use common::{ADMIN_PASSWORD, encode, platforms_path};

const EXIT_STORE_FAILED: i32 = 75;

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("notice: cannot mount a tmpfs here (not root?); full-disk test skipped");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.path())
            .status();
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(p: &Process) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            base: p.url(""),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn login(&self) -> (StatusCode, Value) {
        let body = json!({"username": "admin", "password": ADMIN_PASSWORD});
        self.send(
            self.http
                .post(format!("{}/api/v1/login/", self.base))
                .json(&body),
        )
        .await
    }

    async fn token(&self) -> String {
        let (status, body) = self.login().await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    async fn add(&self, token: &str, name: &str) -> (StatusCode, Value) {
        let body = json!({"name": name, "netAddress": "10.0.0.1", "mediaStream": "Dual",
            "transportProtocol": "UDP", "schemaVersion": "1.0", "supportVideoRecording": false,
            "description": "d".repeat(80)});
        let url = format!("{}{}", self.base, platforms_path());
        self.send(self.http.post(url).bearer_auth(token).json(&body))
            .await
    }

    /// Adds platforms until the store refuses one with 503; returns the acknowledged names.
    async fn fill(&self, token: &str) -> Vec<String> {
        let mut acknowledged = Vec::new();
        for i in 0..20_000 {
            let name = format!("p{i:05}-{}", "x".repeat(60));
            let (status, body) = self.add(token, &name).await;
            match status {
                StatusCode::OK => acknowledged.push(name),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(body["errors"][0]["name"], "UNAVAILABLE", "{body}");
                    assert!(acknowledged.len() > 10, "the disk filled too early");
                    return acknowledged;
                }
                other => panic!("add #{i}: {other} {body}"),
            }
        }
        panic!("the filesystem never filled up");
    }
}

fn envs() -> [(&'static str, &'static str); 1] {
    [("CALLREC_ADMIN_PASSWORD", ADMIN_PASSWORD)]
}

fn data_in(fs: &Tmpfs) -> PathBuf {
    fs.path().join("data")
}

#[tokio::test]
async fn a_full_disk_answers_503_stops_cleanly_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let log = std::fs::File::create(fs.path().join("gateway.log")).expect("log file");
    let args = ["--store-failure-exit", "600", "--shutdown-grace", "5"];
    let p = Process::serve_logging_to(&data_in(&fs), &envs(), &args, Some(log)).await;
    let client = Client::new(&p);
    let token = client.token().await;
    let acknowledged = client.fill(&token).await;

    // From the first failure on: writes and logins (a login writes its session) are refused
    // at once, readiness says so, liveness and reads go on.
    for i in 0..3 {
        let (status, body) = client.add(&token, &format!("after-{i}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let (status, _) = client.login().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    for (probe, expected) in [
        ("/readyz", StatusCode::SERVICE_UNAVAILABLE),
        ("/healthz", StatusCode::OK),
    ] {
        let response = client.http.get(p.url(probe)).send().await.expect(probe);
        assert_eq!(response.status(), expected, "{probe}");
    }
    let (status, list) = client.get(&platforms_path(), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list["callRecordingPlatforms"]
            .as_array()
            .expect("list")
            .len()
            >= acknowledged.len()
    );

    let (code, _) = p.terminate().await;
    assert_eq!(
        code,
        Some(EXIT_STORE_FAILED),
        "SIGTERM after a store failure"
    );

    // Space is back: the restart reopens the store, with every acknowledged platform.
    fs.resize("32m");
    let p = Process::serve(&data_in(&fs), &envs()).await;
    let client = Client::new(&p);
    let token = client.token().await;
    for name in &acknowledged {
        let path = format!("{}{}/", platforms_path(), encode(name));
        let (status, body) = client.get(&path, &token).await;
        assert_eq!(status, StatusCode::OK, "acknowledged {name} lost: {body}");
    }
    let (status, body) = client.add(&token, "after the restart").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, _) = p.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn a_failed_store_stops_the_server_by_itself() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let args = ["--store-failure-exit", "1"];
    let mut p = Process::serve_with_args(&data_in(&fs), &envs(), &args).await;
    let client = Client::new(&p);
    let token = client.token().await;
    client.fill(&token).await;
    let exit = tokio::time::timeout(Duration::from_secs(30), p.child.wait())
        .await
        .expect("stops by itself within 30 s")
        .expect("wait");
    assert_eq!(exit.code(), Some(EXIT_STORE_FAILED));
}
