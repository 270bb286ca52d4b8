//! A running server for integration tests: the real router on 127.0.0.1:0 with a fresh data
//! folder, plus a client that speaks to it like a portal would.
#![allow(dead_code)]

pub mod browser;
pub mod callers;
pub mod graphql;
pub mod process;
pub mod sip;
pub mod store;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use callrec_gateway::config::{Cli, Command, ServeArgs};
use callrec_gateway::server::{Server, Start};
use callrec_gateway::service::Service;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "admin-password";
pub const CALL_RECORDING: &str = "/api/v1/system/services/call_recording";
pub const REFRESH: &str = "/api/v1/auth/access_token/";

/// The access and refresh tokens of a login or refresh answer.
pub fn tokens_of(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().expect("access_token").into(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .into(),
    )
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The separate metrics listener, when `--metrics-listen` was given.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub service: Arc<Service>,
    /// A System Admin's access token (user `admin`).
    pub token: String,
    pub data: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// `serve` arguments as the command line would give them, plus `extra` flags.
pub fn serve_args(data: &std::path::Path, extra: &[&str]) -> ServeArgs {
    let mut argv = vec![
        "callrec-gateway".to_owned(),
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    argv.extend(store::store_args(data));
    argv.extend(extra.iter().map(|s| s.to_string()));
    match <Cli as clap::Parser>::parse_from(argv).command {
        Command::Serve(args) => args,
        _ => unreachable!("serve was asked for"),
    }
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(&[]).await
    }

    /// Starts with extra `serve` flags.
    pub async fn start_with(extra: &[&str]) -> TestApp {
        let data = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start_on(data, extra).await
    }

    /// Starts on an existing data folder (a restart).
    pub async fn start_on(data: Arc<TempDir>, extra: &[&str]) -> TestApp {
        let args = serve_args(data.path(), extra);
        Self::start_from(data, args).await
    }

    /// Starts on an existing data folder at the address a stopped server had, as a restarted
    /// server would come back where its clients reconnect.
    pub async fn restart_at(data: Arc<TempDir>, addr: SocketAddr, extra: &[&str]) -> TestApp {
        let mut args = serve_args(data.path(), extra);
        args.listen = addr.to_string();
        Self::start_from(data, args).await
    }

    async fn start_from(data: Arc<TempDir>, args: ServeArgs) -> TestApp {
        let server = Server::start(Start {
            args,
            admin_password: Some(ADMIN_PASSWORD.into()),
        })
        .await
        .expect("server starts");
        let addr = server.local_addr().expect("bound");
        let metrics_addr = server.metrics_addr();
        let service = server.service().clone();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.serve_until(async {
            let _ = rx.await;
        }));
        let mut app = TestApp {
            addr,
            metrics_addr,
            client: reqwest::Client::new(),
            service,
            token: String::new(),
            data,
            shutdown: Some(tx),
            handle: Some(handle),
        };
        app.token = app.login("admin", ADMIN_PASSWORD).await;
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Logs in and returns the access token; panics unless the login succeeds.
    pub async fn login(&self, username: &str, password: &str) -> String {
        self.login_answer(username, password).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The whole answer of a successful login (tokens, ids, profile).
    pub async fn login_answer(&self, username: &str, password: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/login/",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body
    }

    /// `/metrics`: the status and the text.
    pub async fn metrics(&self) -> (StatusCode, String) {
        metrics_at(&self.client, &self.url("")).await
    }

    /// Logs in; the access and refresh tokens.
    pub async fn login_tokens(&self, username: &str, password: &str) -> (String, String) {
        tokens_of(&self.login_answer(username, password).await)
    }

    /// Asks for a fresh access token with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, REFRESH, Some(refresh_token), None)
            .await
    }

    /// Logs the session of `refresh_token` out, as the holder of `access`.
    pub async fn logout(&self, access: &str, refresh_token: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/logout/",
            Some(access),
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and body
    /// (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let bytes = response.bytes().await.expect("body read");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }

    /// Adds a local user through REST, creating its tenant and group first when they do not
    /// exist yet; panics unless the user is added.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        level: u8,
        tenant: Option<&str>,
        group: Option<&str>,
    ) {
        let mut body = json!({"username": username, "password": password, "userLevel": level});
        if let Some(t) = tenant {
            let tenants = "/api/v1/tenants/";
            self.admin(Method::POST, tenants, Some(json!({"tenantId": t})))
                .await;
            body["tenantId"] = json!(t);
            if let Some(g) = group {
                let groups = format!("/api/v1/tenants/{}/groups/", encode(t));
                self.admin(Method::POST, &groups, Some(json!({"groupId": g})))
                    .await;
                body["groupId"] = json!(g);
            }
        }
        let (status, answer) = self
            .admin(Method::POST, "/api/v1/local/users/", Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    /// As the admin.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.token.clone()), body)
            .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(Method::GET, path, None).await
    }

    /// Stops the server (graceful shutdown, store flushed and closed).
    /// The service, and with it the store, is dropped on return, so the folder can be
    /// reopened.
    pub async fn stop(mut self) -> Arc<TempDir> {
        self.shutdown_and_wait().await;
        self.data.clone()
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server ran");
        }
    }
}

/// A documented example platform with the given name.
pub fn platform(name: &str) -> Value {
    json!({
        "name": name,
        "netAddress": "10.0.32.55",
        "port": 222,
        "mediaStream": "Dual",
        "transportProtocol": "UDP",
        "description": "test description",
        "schemaVersion": "1.0",
        "supportVideoRecording": false
    })
}

/// `/metrics` of the server at `base` (`http://host:port`): the status and the text.
pub async fn metrics_at(http: &reqwest::Client, base: &str) -> (StatusCode, String) {
    let response = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    (response.status(), response.text().await.expect("text"))
}

/// The number in the environment variable `name`, or `default` when it is unset or not one.
pub fn from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The seed in the environment variable `name` (to replay a run), or a fresh random one.
pub fn seed_from_env(name: &str) -> u64 {
    use rand::Rng;
    from_env(name, rand::thread_rng().r#gen())
}

/// The served OpenAPI document.
pub async fn openapi(app: &TestApp) -> Value {
    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    doc
}

pub fn platforms_path() -> String {
    format!("{CALL_RECORDING}/platforms/")
}

/// The path of one platform, percent-encoded.
pub fn platform_path(name: &str) -> String {
    format!("{CALL_RECORDING}/platforms/{}/", encode(name))
}

pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Walks every tenant's groups with `get` (a GET returning the body) and checks the
/// assignments against the platforms `names`: each group's assignment names one of them, and
/// each platform's usage lists exactly the groups assigned to it. `ctx` starts every failure.
/// Returns each tenant's groups with their assignment answers.
pub async fn check_assignments(
    get: impl AsyncFn(&str) -> Value,
    names: &std::collections::BTreeSet<String>,
    ctx: &str,
) -> std::collections::BTreeMap<String, Vec<(String, Value)>> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut tenancy: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut assigned: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let tenants = get("/api/v1/tenants/").await;
    for t in tenants["tenants"].as_array().expect("tenants") {
        let t = t["tenantId"].as_str().expect("tenantId").to_owned();
        let groups = get(&format!("/api/v1/tenants/{}/groups/", encode(&t))).await;
        let mut answers = Vec::new();
        for g in groups["groups"].as_array().expect("groups") {
            let g = g["groupId"].as_str().expect("groupId").to_owned();
            let a = get(&format!(
                "/api/v1/tenants/{}/groups/{}/services/call_recording/",
                encode(&t),
                encode(&g)
            ))
            .await;
            if let Some(p) = a["name"].as_str() {
                assert!(
                    names.contains(p),
                    "{ctx}: {t}/{g} assigned to missing platform {p}"
                );
                assigned
                    .entry(p.to_owned())
                    .or_default()
                    .insert((t.clone(), g.clone()));
            }
            answers.push((g, a));
        }
        tenancy.insert(t, answers);
    }
    for name in names {
        let usage = get(&format!("{}usage/", platform_path(name))).await;
        assert_eq!(
            usage_groups(&usage),
            assigned.remove(name).unwrap_or_default(),
            "{ctx}: usage of {name} differs from the groups assigned to it"
        );
    }
    tenancy
}

/// The `(tenantId, groupId)` pairs of a usage answer.
pub fn usage_groups(usage: &Value) -> std::collections::BTreeSet<(String, String)> {
    usage["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["tenantId"].as_str().expect("tenantId").to_owned(),
                g["groupId"].as_str().expect("groupId").to_owned(),
            )
        })
        .collect()
}

/// Access tokens in the states every protected route must refuse with 401.
impl TestApp {
    /// `token`'s user and live session, but past its expiry, signed with the server's own key.
    pub fn expired_token(&self, token: &str) -> String {
        use callrec_gateway::auth::{Claims, TokenKind};
        let claims = self
            .service
            .tokens()
            .verify(token, TokenKind::Access)
            .expect("a valid access token");
        self.service
            .tokens()
            .sign(&Claims {
                iat: claims.iat - 3600,
                exp: claims.iat - 1,
                ..claims
            })
            .expect("signed")
    }

    /// `token` with the last character of its payload changed: the signature no longer
    /// matches.
    pub fn tampered_token(token: &str) -> String {
        let mut bytes = token.as_bytes().to_vec();
        let dot = token.rfind('.').expect("a JWT");
        bytes[dot - 1] = if bytes[dot - 1] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ASCII")
    }

    /// An access token of a session ended by logout.
    pub async fn revoked_token(&self, username: &str, password: &str) -> String {
        let login = self.login_answer(username, password).await;
        let token = login["access_token"].as_str().expect("token").to_owned();
        let (status, _) = self
            .call(
                Method::POST,
                "/api/v1/logout/",
                Some(&token),
                Some(json!({"refresh_token": login["refresh_token"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        token
    }

    /// An access token of a user deleted since.
    pub async fn deleted_user_token(&self, username: &str, password: &str) -> String {
        let token = self.login(username, password).await;
        let path = format!("/api/v1/local/users/{}/", encode(username));
        let (status, _) = self.admin(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::OK);
        token
    }
}

/// Everything a refused request must leave as it was: platforms and the default, usage,
/// properties, tenants, groups and users, read through the service.
pub fn store_snapshot(service: &Service) -> String {
    use callrec_gateway::model::Principal;
    let who = Principal::console();
    let list = service.platforms(&who).expect("platforms");
    let usage: Vec<_> = list
        .platforms
        .iter()
        .map(|p| service.usage(&who, &p.name).expect("usage"))
        .collect();
    let tenants = service.tenants(&who).expect("tenants");
    let groups: Vec<_> = tenants
        .iter()
        .map(|t| service.groups(&who, &t.tenant_id).expect("groups"))
        .collect();
    let users: Vec<_> = service
        .users(&who)
        .expect("users")
        .iter()
        .map(|u| format!("{u:?}"))
        .collect();
    format!(
        "{list:?}\n{usage:?}\n{:?}\n{tenants:?}\n{groups:?}\n{users:?}",
        service.properties(&who).expect("properties")
    )
}
