//! The real binary as a child process, for what only a process shows: the `listening on`
//! line, signals, `kill -9`, a second process on the same data folder.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_callrec-gateway");

pub struct Process {
    pub child: Child,
    pub addr: String,
    /// Drains stderr all along, so that a chatty log never fills the pipe and stalls the
    /// server; yields everything it read once the process has exited.
    stderr: Option<tokio::task::JoinHandle<String>>,
}

/// `serve` on the PostgreSQL database at `url`, its first System Admin's password
/// [`super::ADMIN_PASSWORD`].
pub async fn database_gateway(url: &str, extra: &[&str]) -> Process {
    Process::serve_on(
        &["--database-url", url],
        &[("CALLREC_ADMIN_PASSWORD", super::ADMIN_PASSWORD)],
        extra,
        None,
    )
    .await
}

/// A request to `p` with a bearer token and an optional JSON body: its status and its JSON
/// answer (null when there is none). Panics unless answered within 30 s.
pub async fn call(
    p: &Process,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method, p.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .expect("answered within 30 s")
        .expect("answered");
    let status = response.status();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

fn drain(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let mut err = child.stderr.take().expect("stderr piped");
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = err.read_to_end(&mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CALLREC_LISTEN")
        .env_remove("CALLREC_DATA")
        .env_remove("CALLREC_DATABASE_URL")
        .env_remove("CALLREC_ADMIN_PASSWORD")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

impl Process {
    /// Starts `serve` on 127.0.0.1:0 and waits (bounded) for its `listening on` line.
    pub async fn serve(data: &Path, envs: &[(&str, &str)]) -> Process {
        Self::serve_with_args(data, envs, &[]).await
    }

    pub async fn serve_with_args(data: &Path, envs: &[(&str, &str)], extra: &[&str]) -> Process {
        Self::serve_logging_to(data, envs, extra, None).await
    }

    /// As [`Process::serve_with_args`], with stderr (the log) written to `log` when given.
    pub async fn serve_logging_to(
        data: &Path,
        envs: &[(&str, &str)],
        extra: &[&str],
        log: Option<std::fs::File>,
    ) -> Process {
        let store = super::store::store_args(data);
        let store: Vec<&str> = store.iter().map(String::as_str).collect();
        Self::serve_on(&store, envs, extra, log).await
    }

    /// Starts `serve` on the store `store` names (`--data DIR` or `--database-url URL`).
    pub async fn serve_on(
        store: &[&str],
        envs: &[(&str, &str)],
        extra: &[&str],
        log: Option<std::fs::File>,
    ) -> Process {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(store);
        args.extend_from_slice(extra);
        let mut cmd = command(&args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let to_file = log.is_some();
        if let Some(file) = log {
            cmd.stderr(file);
        }
        let mut child = cmd.spawn().expect("binary starts");
        let stderr = (!to_file).then(|| drain(&mut child));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("listening line within 30 s")
            .expect("stdout readable")
            .expect("a line before exit");
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Process {
            child,
            addr,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GETs `path` with a bearer token; panics unless the answer is 200 with JSON.
    pub async fn get(&self, path: &str, token: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }

    /// Logs in and returns the access token; panics unless the login succeeds.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let body: serde_json::Value = reqwest::Client::new()
            .post(self.url("/api/v1/login/"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login answered")
            .json()
            .await
            .expect("login JSON");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("login of {username} failed: {body}"))
            .to_owned()
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit code and stderr.
    pub async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("running") as i32;
        // kill(1) keeps the tests free of unsafe libc calls.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits within 30 s after SIGTERM")
            .expect("wait");
        (exit.code(), self.stderr().await)
    }

    /// `kill -9`: no chance to flush anything.
    pub async fn kill(mut self) -> String {
        self.child.start_kill().expect("SIGKILL sent");
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("dies");
        self.stderr().await
    }

    async fn stderr(&mut self) -> String {
        match self.stderr.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("stderr closes after exit")
                .expect("stderr task"),
            None => String::new(),
        }
    }
}
