//! Several real `serve` processes on one PostgreSQL database behave as one server: what one
//! commits, the others answer at once; writes through all of them keep every rule; events,
//! logouts and the lockout cross over; a process killed mid-write loses nothing acknowledged.
//! Each test has a database of its own on the server of `common::store::admin_url()`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{Process, call, database_gateway};
use common::{check_assignments, platform, platform_path, platforms_path};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = common::ADMIN_PASSWORD;

/// `count` gateways on a fresh database, with `extra` flags.
async fn gateways(count: usize, extra: &[&str]) -> (String, Vec<Process>) {
    let url = common::store::fresh_database(&common::store::admin_url());
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(database_gateway(&url, extra).await);
    }
    (url, out)
}

async fn gql(p: &Process, token: &str, query: &str) -> Value {
    let (status, body) = call(
        p,
        token,
        Method::POST,
        "/graphql",
        Some(json!({"query": query})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn names(list: &Value) -> Vec<String> {
    list["callRecordingPlatforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn a_change_on_one_gateway_is_read_on_the_next_request_to_another() {
    if !common::store::server_reachable() {
        return;
    }
    let (_, g) = gateways(2, &[]).await;
    let (a, b) = (&g[0], &g[1]);
    let token = a.login("admin", PASSWORD).await;
    for i in 0..20 {
        let name = format!("P{i}");
        let (status, _) = call(
            a,
            &token,
            Method::POST,
            &platforms_path(),
            Some(platform(&name)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, list) = call(b, &token, Method::GET, &platforms_path(), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            names(&list).contains(&name),
            "B's REST list misses {name}: {list}"
        );
        let (status, _) = call(
            a,
            &token,
            Method::PUT,
            &platform_path(&name),
            Some(json!({"port": 1000 + i})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let data = gql(
            b,
            &token,
            &format!(r#"{{ callRecordingPlatform(name: "{name}") {{ port }} }}"#),
        )
        .await;
        assert_eq!(
            data["callRecordingPlatform"]["port"],
            1000 + i,
            "B's GraphQL read is stale"
        );
    }
}

/// A random mutation or read of the shared few objects (as in tests/concurrency.rs).
fn pick(rng: &mut impl rand::Rng) -> (Method, String, Option<Value>) {
    let p = format!("P{}", rng.gen_range(0..6));
    let (t, gr) = (rng.gen_range(0..3), rng.gen_range(0..4));
    let group = format!("/api/v1/tenants/T{t}/groups/G{gr}/");
    match rng.gen_range(0..12) {
        0 => (Method::POST, platforms_path(), Some(platform(&p))),
        1 => (
            Method::PUT,
            platform_path(&p),
            Some(json!({"default": true})),
        ),
        2 => (Method::DELETE, platform_path(&p), None),
        3 => (
            Method::POST,
            "/api/v1/tenants/".into(),
            Some(json!({"tenantId": format!("T{t}")})),
        ),
        4 => (Method::DELETE, format!("/api/v1/tenants/T{t}/"), None),
        5 => (
            Method::POST,
            format!("/api/v1/tenants/T{t}/groups/"),
            Some(json!({"groupId": format!("G{gr}")})),
        ),
        6 => (Method::DELETE, group.clone(), None),
        7..=9 => (
            Method::PUT,
            format!("{group}services/call_recording/"),
            Some(json!({"name": p})),
        ),
        10 => (
            Method::PUT,
            format!("{group}services/call_recording/"),
            Some(json!({"name": null})),
        ),
        _ => (Method::GET, platforms_path(), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_writing_through_three_gateways_keep_every_invariant() {
    if !common::store::server_reachable() {
        return;
    }
    use rand::{Rng, SeedableRng};
    let seed = common::seed_from_env("CALLREC_CONCURRENCY_SEED");
    eprintln!("postgres concurrency: seed {seed}");
    let (_, g) = gateways(3, &[]).await;
    let g = Arc::new(g);
    let token = Arc::new(g[0].login("admin", PASSWORD).await);
    let deadline = Instant::now() + Duration::from_secs(4);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (g, token) = (g.clone(), token.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(i));
                let mut ok = 0;
                while Instant::now() < deadline {
                    let (method, path, body) = pick(&mut rng);
                    let p = &g[rng.gen_range(0..g.len())];
                    let (status, answer) = call(p, &token, method.clone(), &path, body).await;
                    assert!(
                        [
                            StatusCode::OK,
                            StatusCode::BAD_REQUEST,
                            StatusCode::NOT_FOUND
                        ]
                        .contains(&status),
                        "{method} {path}: {status} {answer}"
                    );
                    ok += usize::from(status == StatusCode::OK);
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += task.await.expect("client");
    }
    assert!(
        ok > 64,
        "too few successful requests to prove anything: {ok}"
    );
    // Every gateway answers the same, and it keeps the rules.
    let mut lists = Vec::new();
    for p in g.iter() {
        let (_, list) = call(p, &token, Method::GET, &platforms_path(), None).await;
        let names: BTreeSet<String> = names(&list).into_iter().collect();
        match list["systemDefault"].as_str() {
            None => assert!(names.is_empty(), "platforms and no default: {list}"),
            Some(d) => assert!(names.contains(d), "the default {d} does not exist: {list}"),
        }
        check_assignments(
            async |path: &str| call(p, &token, Method::GET, path, None).await.1,
            &names,
            "after writes through three gateways",
        )
        .await;
        lists.push(list);
    }
    assert!(
        lists.windows(2).all(|w| w[0] == w[1]),
        "gateways disagree: {lists:?}"
    );
    eprintln!("postgres concurrency: {ok} successful requests through 3 gateways");
}

#[tokio::test]
async fn a_subscriber_on_one_gateway_gets_the_events_of_another_in_order_once() {
    if !common::store::server_reachable() {
        return;
    }
    let (_, g) = gateways(2, &[]).await;
    let (a, b) = (&g[0], &g[1]);
    let token = a.login("admin", PASSWORD).await;
    let mut on_a = common::ws::accepted_at(&a.addr, &token).await;
    let mut on_b = common::ws::accepted_at(&b.addr, &token).await;
    on_a.subscribe_events("1").await;
    on_b.subscribe_events("1").await;
    for i in 0..10 {
        let (status, _) = call(
            a,
            &token,
            Method::POST,
            &platforms_path(),
            Some(platform(&format!("P{i}"))),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Made on B last: anything after A's events (a repeat) would come before it.
    let (status, _) = call(
        b,
        &token,
        Method::POST,
        &platforms_path(),
        Some(platform("last")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = [Vec::new(), Vec::new()];
    for (client, seen) in [&mut on_a, &mut on_b].into_iter().zip(seen.iter_mut()) {
        loop {
            let event = client.event("1").await;
            let done = event["platform"]["name"] == "last";
            seen.push(event);
            if done {
                break;
            }
        }
    }
    let added: Vec<String> = seen[1]
        .iter()
        .filter(|e| e["__typename"] == "CallRecordingPlatformAdded")
        .map(|e| e["platform"]["name"].as_str().expect("name").to_owned())
        .collect();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("P{i}"))
        .chain(["last".into()])
        .collect();
    assert_eq!(added, expected, "B's events: {:?}", seen[1]);
    assert_eq!(
        seen[0], seen[1],
        "both gateways tell the same events in the same order"
    );
}

#[tokio::test]
async fn a_logout_on_one_gateway_refuses_the_token_on_the_next_request_to_another() {
    if !common::store::server_reachable() {
        return;
    }
    let (_, g) = gateways(2, &[]).await;
    let (a, b) = (&g[0], &g[1]);
    for _ in 0..5 {
        let login: Value = reqwest::Client::new()
            .post(a.url("/api/v1/login/"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("JSON");
        let (access, refresh) = common::tokens_of(&login);
        // Known to B (and remembered by it) before the logout.
        assert_eq!(
            call(b, &access, Method::GET, &platforms_path(), None)
                .await
                .0,
            StatusCode::OK
        );
        let (status, body) = call(
            a,
            &access,
            Method::POST,
            "/api/v1/logout/",
            Some(json!({"refresh_token": refresh})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(b, &access, Method::GET, &platforms_path(), None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "B still takes a token logged out on A: {body}"
        );
    }
}

#[tokio::test]
async fn failed_logins_are_counted_across_gateways() {
    if !common::store::server_reachable() {
        return;
    }
    let (_, g) = gateways(2, &["--max-failed-logins", "3", "--login-lockout", "600"]).await;
    let attempt = async |p: &Process, password: &str| {
        reqwest::Client::new()
            .post(p.url("/api/v1/login/"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .await
            .expect("login answered")
            .status()
    };
    // Three wrong passwords, spread over both gateways.
    for p in [&g[0], &g[1], &g[0]] {
        assert_eq!(attempt(p, "wrong-password").await, StatusCode::UNAUTHORIZED);
    }
    // Locked on both, even with the right password.
    assert_eq!(
        attempt(&g[1], PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt(&g[0], PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_mid_write_loses_nothing_acknowledged_and_the_others_serve_on() {
    if !common::store::server_reachable() {
        return;
    }
    let (_, mut g) = gateways(2, &[]).await;
    let token = Arc::new(g[0].login("admin", PASSWORD).await);
    let victim = g.remove(0);
    let survivor = g.remove(0);
    let target = Arc::new(victim.url("/api/v1/tenants/"));
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (target, token, acked) = (target.clone(), token.clone(), acked_tx.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("T{w}x{i}");
                    let sent = reqwest::Client::new()
                        .post(target.as_str())
                        .bearer_auth(token.as_str())
                        .json(&json!({"tenantId": id}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::OK => {
                            if acked.send(id).is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);
    // Kill it once a good number of writes were acknowledged, with the writers still going.
    let mut acknowledged = BTreeSet::new();
    while acknowledged.len() < 200 {
        let id = tokio::time::timeout(Duration::from_secs(30), acked_rx.recv())
            .await
            .expect("writes acknowledged in time")
            .expect("writers running");
        acknowledged.insert(id);
    }
    let _ = victim.kill().await;
    for w in writers {
        let _ = w.await;
    }
    while let Ok(id) = acked_rx.try_recv() {
        acknowledged.insert(id);
    }
    let (status, tenants) = call(&survivor, &token, Method::GET, "/api/v1/tenants/", None).await;
    assert_eq!(status, StatusCode::OK);
    let stored: BTreeSet<String> = tenants["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| t["tenantId"].as_str().expect("id").to_owned())
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    let (status, _) = call(
        &survivor,
        &token,
        Method::POST,
        "/api/v1/tenants/",
        Some(json!({"tenantId": "after"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the survivor takes writes");
}

/// Connections the gateway holds on the database at this moment.
async fn connections_of_gateways(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("test connection");
    let database = url.rsplit('/').next().expect("database name").to_owned();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = 'callrec-gateway'",
    )
    .bind(database)
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_activity");
    let _ = conn.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_bounds_a_gateways_connections_and_requests_past_it_wait_their_turn() {
    if !common::store::server_reachable() {
        return;
    }
    let (url, g) = gateways(1, &["--database-pool", "2"]).await;
    let g = Arc::new(g);
    let token = Arc::new(g[0].login("admin", PASSWORD).await);
    let writers: Vec<_> = (0..48)
        .map(|i| {
            let (g, token) = (g.clone(), token.clone());
            tokio::spawn(async move {
                let body = json!({"tenantId": format!("T{i}")});
                call(&g[0], &token, Method::POST, "/api/v1/tenants/", Some(body))
                    .await
                    .0
            })
        })
        .collect();
    let mut most = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        most = most.max(connections_of_gateways(&url).await);
    }
    for w in writers {
        assert_eq!(
            w.await.expect("writer"),
            StatusCode::OK,
            "a request past the pool waits, it is not refused"
        );
    }
    // Two in the pool, and five kept: following the log, looking at its head, committing,
    // checking the others' read leases, reporting its own.
    assert!(most <= 7, "{most} connections with --database-pool 2");
    assert!(most >= 1, "the gateway was never seen on the database");
}

/// A PostgreSQL server of the test's own (Debian's `initdb` and `pg_ctl`, run as the
/// `postgres` user), in a temp folder on a free port: stopping it disturbs nobody else.
struct OwnServer {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl OwnServer {
    /// `None` (with a notice) where the server cannot be made: not root, or no PostgreSQL 15.
    fn create() -> Option<OwnServer> {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root || !Path::new(PG_BIN).join("initdb").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs root and {PG_BIN} for the database restart test"
            );
            eprintln!("notice: not root or no {PG_BIN}: the database restart test is skipped");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("port")
            .port();
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status()
            .expect("chown");
        assert!(status.success());
        let server = OwnServer { dir, port };
        server.run(&[
            "initdb",
            "-D",
            &server.data(),
            "-U",
            "postgres",
            "--auth=trust",
        ]);
        server.start();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, args: &[&str]) {
        let program = format!("{PG_BIN}/{}", args[0]);
        let output = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &program])
            .args(&args[1..])
            .output()
            .expect("runuser runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-o",
            &options,
            "-l",
            &log,
            "-w",
            "start",
        ]);
    }

    fn stop(&self) {
        self.run(&["pg_ctl", "-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl")])
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

use std::path::Path;

#[tokio::test]
async fn the_database_stopped_and_started_again_gives_503s_then_recovery_losing_nothing() {
    let Some(server) = OwnServer::create() else {
        return;
    };
    let g = database_gateway(&server.url(), &[]).await;
    let token = g.login("admin", PASSWORD).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let id = format!("before{i}");
        let (status, _) = call(
            &g,
            &token,
            Method::POST,
            "/api/v1/tenants/",
            Some(json!({"tenantId": id})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        acknowledged.push(id);
    }
    server.stop();
    let (status, body) = call(
        &g,
        &token,
        Method::POST,
        "/api/v1/tenants/",
        Some(json!({"tenantId": "during"})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 107, "{body}");
    // Reads are answered from memory while the read lease lasts (no commit can be made
    // meanwhile), then need the database: bounded wait for the first 503.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(&g, &token, Method::GET, "/api/v1/tenants/", None).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["tenants"].as_array().map(Vec::len), Some(20), "{body}");
        assert!(
            Instant::now() < deadline,
            "reads still answered after 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = reqwest::get(g.url("/readyz"))
        .await
        .expect("readyz answered");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.start();
    // Recovers by itself: bounded wait for the first accepted write.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(
            &g,
            &token,
            Method::POST,
            "/api/v1/tenants/",
            Some(json!({"tenantId": "after"})),
        )
        .await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "no recovery within 30 s: {body}");
        tokio::task::yield_now().await;
    }
    acknowledged.push("after".into());
    let ready = reqwest::get(g.url("/readyz"))
        .await
        .expect("readyz answered");
    assert_eq!(ready.status(), StatusCode::OK);
    let (status, tenants) = call(&g, &token, Method::GET, "/api/v1/tenants/", None).await;
    assert_eq!(status, StatusCode::OK);
    let stored: BTreeSet<&str> = tenants["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| t["tenantId"].as_str().expect("id"))
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id.as_str()), "{id} acknowledged and lost");
    }
    assert!(!stored.contains("during"), "a refused write was made");
}

/// Runs `callrec-gateway ARGS` with `input` on stdin; its exit success, stdout and stderr.
async fn run(args: &[&str], input: &str) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = common::process::command(args);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("binary starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("stdin written");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("done within 60 s")
        .expect("ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn export(store: &[&str]) -> String {
    let mut args = vec!["export"];
    args.extend_from_slice(store);
    let (ok, out, err) = run(&args, "").await;
    assert!(ok, "export failed: {err}");
    out
}

async fn import(store: &[&str], dump: &str) {
    let mut args = vec!["import"];
    args.extend_from_slice(store);
    let (ok, _, err) = run(&args, dump).await;
    assert!(ok, "import failed: {err}");
}

#[tokio::test]
async fn exports_move_between_stores_unchanged() {
    if !common::store::server_reachable() {
        return;
    }
    // Something of everything in a data folder: platforms, the default, properties, a tenant
    // and its group assigned, a second user, sessions, the log.
    let folder = tempfile::tempdir().expect("temp dir");
    let dir = folder.path().display().to_string();
    let p = Process::serve_on(
        &["--data", &dir],
        &[("CALLREC_ADMIN_PASSWORD", PASSWORD)],
        &[],
        None,
    )
    .await;
    let token = p.login("admin", PASSWORD).await;
    for (path, body) in [
        (platforms_path(), platform("P1")),
        (platforms_path(), platform("P2")),
        ("/api/v1/tenants/".into(), json!({"tenantId": "T"})),
        ("/api/v1/tenants/T/groups/".into(), json!({"groupId": "G"})),
        (
            "/api/v1/local/users/".into(),
            json!({"username": "operator", "password": "operator-password", "userLevel": 16}),
        ),
    ] {
        assert_eq!(
            call(&p, &token, Method::POST, &path, Some(body)).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
    let assign = "/api/v1/tenants/T/groups/G/services/call_recording/";
    assert_eq!(
        call(&p, &token, Method::PUT, assign, Some(json!({"name": "P2"})))
            .await
            .0,
        StatusCode::OK
    );
    let (code, _) = p.terminate().await;
    assert_eq!(code, Some(0));

    let from_sled = export(&["--data", &dir]).await;
    assert!(
        from_sled.contains("\"passwordHash\""),
        "users keep their hashes"
    );
    let db = common::store::fresh_database(&common::store::admin_url());
    import(&["--database-url", &db], &from_sled).await;
    let from_pg = export(&["--database-url", &db]).await;
    assert_eq!(from_pg, from_sled, "sled → PostgreSQL changed the export");
    let folder2 = tempfile::tempdir().expect("temp dir");
    let dir2 = folder2.path().join("store").display().to_string();
    import(&["--data", &dir2], &from_pg).await;
    assert_eq!(
        export(&["--data", &dir2]).await,
        from_sled,
        "PostgreSQL → sled changed the export"
    );
    let db2 = common::store::fresh_database(&common::store::admin_url());
    import(&["--database-url", &db2], &export(&["--data", &dir2]).await).await;
    assert_eq!(
        export(&["--database-url", &db2]).await,
        from_pg,
        "PostgreSQL → sled → PostgreSQL"
    );

    // Only into an empty store.
    for store in [["--database-url", db.as_str()], ["--data", dir2.as_str()]] {
        let mut args = vec!["import"];
        args.extend_from_slice(&store);
        let (ok, _, err) = run(&args, &from_sled).await;
        assert!(!ok && err.contains("not empty"), "{store:?}: {err}");
    }

    // The imported database serves: the same users (their passwords), records and log.
    let g = database_gateway(&db, &[]).await;
    let token = g.login("operator", "operator-password").await;
    let (_, usage) = call(
        &g,
        &token,
        Method::GET,
        &format!("{}usage/", platform_path("P2")),
        None,
    )
    .await;
    assert_eq!(usage.to_string().matches("\"G\"").count(), 1, "{usage}");
    let (status, audit) = call(&g, &token, Method::GET, "/api/v1/audit/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        audit["entries"].as_array().is_some_and(|e| !e.is_empty()),
        "{audit}"
    );
}

#[tokio::test]
async fn gateways_starting_together_apply_the_schema_once_and_a_newer_one_is_refused() {
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let started = futures_util::future::join_all((0..3).map(|_| database_gateway(&url, &[]))).await;
    assert_eq!(started.len(), 3);
    let token = started[2].login("admin", PASSWORD).await;
    assert_eq!(
        call(&started[0], &token, Method::GET, &platforms_path(), None)
            .await
            .0,
        StatusCode::OK
    );
    drop(started);
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("migrations table");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations folder")
        .count();
    assert_eq!(
        applied.len(),
        files,
        "each migration applied once: {applied:?}"
    );
    // As a later release would leave it.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99991231000000, 'later', true, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("a later migration recorded");
    let _ = conn.close().await;
    let (ok, _, err) = run(
        &["serve", "--listen", "127.0.0.1:0", "--database-url", &url],
        "",
    )
    .await;
    assert!(!ok, "started on a newer schema");
    assert!(
        err.contains("99991231000000") && err.contains("newer"),
        "{err}"
    );
}

/// A session of `admin` that has not expired, for the store-level tests below.
fn session(id: &str) -> callrec_gateway::store::Session {
    callrec_gateway::store::Session {
        id: id.into(),
        username: "admin".into(),
        expires_at: u64::MAX / 2,
        created_at_ms: 0,
        refresh_id: String::new(),
        previous_refresh_id: None,
        previous_until_ms: 0,
    }
}

/// A Tenant Admin of tenant `T`, as the store keeps users.
fn user(name: &str) -> callrec_gateway::model::User {
    callrec_gateway::model::User {
        username: name.into(),
        password_hash: "not a hash".into(),
        level: callrec_gateway::model::Level::TenantAdmin,
        tenant_id: Some("T".into()),
        group_id: None,
    }
}

/// A commit at log position `at` made of `changes`, as the service would hand it over.
fn commit(at: u64, changes: Vec<callrec_gateway::store::Change>) -> callrec_gateway::store::Commit {
    use callrec_gateway::store::{Entry, Sequence};
    callrec_gateway::store::Commit {
        changes,
        entry: Entry::new(Sequence(at), 0, "system", "test"),
    }
}

/// A batch of commits (what group commit hands the store) is one transaction: every entry is
/// logged, each row ends as the last change of its object in the batch left it, and a batch
/// decided against an old position changes nothing.
#[tokio::test]
async fn a_batch_of_commits_leaves_each_row_as_its_last_change_did() {
    use callrec_gateway::store::{
        Change, Committed, LogRange, PgOptions, PgStore, Read, Sequence, Store,
    };
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let store = PgStore::connect(PgOptions::new(&url)).await.expect("store");
    let batch = [
        commit(
            1,
            vec![
                Change::PutSecret("k".into(), vec![1]),
                Change::PutSession(session("gone")),
                Change::SetDefault(Some("P".into())),
            ],
        ),
        commit(
            2,
            vec![
                Change::PutSecret("k".into(), vec![2]),
                Change::DeleteSession("gone".into()),
                Change::DeleteSession("back".into()),
            ],
        ),
        commit(
            3,
            vec![
                Change::PutSession(session("back")),
                Change::SetDefault(None),
            ],
        ),
    ];
    let committed = store.commit(Sequence(0), &batch).await.expect("commit");
    assert_eq!(committed, Committed::At(Sequence(3)));
    let stale = [commit(3, vec![Change::PutSecret("k".into(), vec![9])])];
    let refused = store.commit(Sequence(2), &stale).await.expect("commit");
    assert_eq!(refused, Committed::Conflict);

    let (state, at) = store.load().await.expect("load");
    assert_eq!(at, Sequence(3));
    assert_eq!(state.secret("k").unwrap(), Some(vec![2]));
    assert_eq!(state.session("gone").unwrap(), None);
    assert_eq!(state.session("back").unwrap(), Some(session("back")));
    assert_eq!(state.system_default().unwrap(), None);
    let logged: Vec<u64> = store
        .entries(LogRange::after(Sequence(0), 10))
        .await
        .expect("entries")
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(logged, vec![1, 2, 3]);
}

/// The gateway's connections run without PostgreSQL's JIT: the generic plan of its log read
/// is estimated at the whole table, and compiling it on every catch-up cost the database more
/// than the writes did.
#[tokio::test]
async fn the_gateways_connections_run_without_jit() {
    use callrec_gateway::store::{PgOptions, PgStore};
    use sqlx::Connection;
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let mut plain = sqlx::PgConnection::connect(&url).await.expect("connect");
    let default: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&mut plain)
        .await
        .expect("SHOW jit");
    let store = PgStore::connect(PgOptions::new(&url)).await.expect("store");
    let setting: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(store.pool())
        .await
        .expect("SHOW jit");
    assert_eq!(setting, "off", "the server's default is {default}");
    let _ = plain.close().await;
}

/// A gateway catching up reads the current row of every object the entries after its
/// position name, of every kind and however many (one read per kind): applied to what it
/// held, they give what the writer holds.
#[tokio::test]
async fn catching_up_reads_the_current_row_of_every_object_touched() {
    use callrec_gateway::model::{Group, GroupRef, Platform, Properties, Tenant};
    use callrec_gateway::store::{
        CatchUp, Change, PgOptions, PgStore, Read, Sequence, State, Store,
    };
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let writer = PgStore::connect(PgOptions::new(&url)).await.expect("store");
    let follower = PgStore::connect(PgOptions::new(&url)).await.expect("store");
    let platform = |i: usize| -> Platform {
        serde_json::from_value(serde_json::json!({
            "name": format!("P{i:02}"), "netAddress": format!("10.0.0.{i}"),
            "mediaStream": "Dual", "transportProtocol": "UDP", "schemaVersion": "1.0",
            "supportVideoRecording": false, "description": format!("platform {i}")
        }))
        .expect("a platform")
    };
    let group = |id: &str, platform: Option<&str>| Group {
        tenant_id: "T".into(),
        group_id: id.into(),
        platform: platform.map(Into::into),
    };
    let properties = Properties {
        refresh_period_seconds: 7,
        ..Properties::default()
    };
    let mut first: Vec<Change> = (0..64).map(|i| Change::PutPlatform(platform(i))).collect();
    first.extend([
        Change::PutProperties(properties),
        Change::PutUser(user("u1")),
        Change::PutUser(user("u2")),
        Change::SetDefault(Some("P00".into())),
        Change::PutTenant(Tenant {
            tenant_id: "T".into(),
        }),
        Change::PutGroup(group("G1", Some("P01"))),
        Change::PutGroup(group("G2", None)),
        Change::PutSession(session("s1")),
        Change::PutSecret("k".into(), vec![1, 2, 3]),
    ]);
    let batch = [
        commit(1, first),
        commit(
            2,
            vec![
                Change::DeletePlatform("P63".into()),
                Change::PutPlatform(Platform {
                    description: None,
                    ..platform(5)
                }),
                Change::DeleteGroup(GroupRef {
                    tenant_id: "T".into(),
                    group_id: "G2".into(),
                }),
                Change::DeleteSession("s1".into()),
                Change::PutSession(session("s2")),
                Change::DeleteUser("u2".into()),
            ],
        ),
    ];
    writer.commit(Sequence(0), &batch).await.expect("commit");

    let CatchUp::Foreign(foreign) = follower.catch_up(Sequence(0)).await.expect("catch up") else {
        panic!("the log after 0 was pruned");
    };
    assert_eq!(foreign.len(), 2);
    let mut caught_up = State::default();
    for change in foreign.iter().flat_map(|f| &f.changes) {
        caught_up.apply(change);
    }
    let (written, _) = writer.load().await.expect("load");
    let platforms = caught_up.platforms().unwrap();
    assert_eq!(platforms.len(), 63);
    assert_eq!(platforms, written.platforms().unwrap());
    assert_eq!(
        caught_up.platform("P05").unwrap().unwrap().description,
        None
    );
    assert_eq!(caught_up.system_default().unwrap(), Some("P00".into()));
    assert!(caught_up.tenant("T").unwrap().is_some());
    let g = |id: &str| GroupRef {
        tenant_id: "T".into(),
        group_id: id.into(),
    };
    assert_eq!(
        caught_up.group(&g("G1")).unwrap(),
        Some(group("G1", Some("P01")))
    );
    assert_eq!(caught_up.group(&g("G2")).unwrap(), None);
    assert_eq!(caught_up.session("s1").unwrap(), None);
    assert_eq!(caught_up.session("s2").unwrap(), Some(session("s2")));
    assert_eq!(caught_up.secret("k").unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(caught_up.properties().unwrap(), properties);
    assert_eq!(caught_up.user("u1").unwrap(), Some(user("u1")));
    assert_eq!(caught_up.user("u2").unwrap(), None);
}

/// Every stored row and the log's position and length, as text, straight from the database.
async fn stored_rows(url: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let mut out = String::new();
    for sql in [
        "SELECT 'head ' || sequence FROM log_head",
        "SELECT 'entries ' || count(*) FROM change_log",
        "SELECT name || ' ' || record::text FROM platforms ORDER BY name",
        "SELECT name || ' ' || record::text FROM settings ORDER BY name",
        "SELECT tenant_id || ' ' || record::text FROM tenants ORDER BY tenant_id",
        "SELECT tenant_id || '/' || group_id || ' ' || record::text FROM groups ORDER BY 1",
        "SELECT username || ' ' || record::text FROM users ORDER BY username",
        "SELECT id || ' ' || record::text FROM sessions ORDER BY id",
        "SELECT name || ' ' || encode(value, 'hex') FROM secrets ORDER BY name",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .expect(sql);
        out += &rows.join("\n");
        out += "\n--\n";
    }
    let _ = conn.close().await;
    out
}

/// A commit is one statement whose every write joins the moved head: a batch decided against
/// an old position writes no row of any kind, put or removed, and one at the head removes
/// rows of every kind.
#[tokio::test]
async fn a_refused_batch_writes_no_row_of_any_kind() {
    use callrec_gateway::model::{Group, GroupRef, Platform, Properties, Tenant};
    use callrec_gateway::store::{Change, Committed, PgOptions, PgStore, Sequence, Store};
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let store = PgStore::connect(PgOptions::new(&url)).await.expect("store");
    let platform = |name: &str, description: &str| -> Platform {
        serde_json::from_value(serde_json::json!({
            "name": name, "netAddress": "10.0.0.1", "mediaStream": "Dual",
            "transportProtocol": "UDP", "schemaVersion": "1.0",
            "supportVideoRecording": false, "description": description
        }))
        .expect("a platform")
    };
    let group = |id: &str| Group {
        tenant_id: "T".into(),
        group_id: id.into(),
        platform: Some("P".into()),
    };
    let every_kind = |description: &str| {
        vec![
            Change::PutPlatform(platform("P", description)),
            Change::SetDefault(Some("P".into())),
            Change::PutProperties(Properties {
                refresh_period_seconds: description.len() as u32,
                ..Properties::default()
            }),
            Change::PutTenant(Tenant {
                tenant_id: "T".into(),
            }),
            Change::PutGroup(group("G")),
            Change::PutUser(user("u")),
            Change::PutSession(session("s")),
            Change::PutSecret("k".into(), description.as_bytes().to_vec()),
        ]
    };
    let first = [commit(1, every_kind("first"))];
    assert_eq!(
        store.commit(Sequence(0), &first).await.expect("commit"),
        Committed::At(Sequence(1))
    );
    let before = stored_rows(&url).await;
    assert!(
        before.contains("head 1") && before.contains("first"),
        "{before}"
    );

    let mut stale = every_kind("stale");
    stale.extend([
        Change::PutPlatform(platform("Q", "stale")),
        Change::PutGroup(group("H")),
    ]);
    let refused = [commit(1, stale)];
    assert_eq!(
        store.commit(Sequence(0), &refused).await.expect("commit"),
        Committed::Conflict
    );
    let removing = |at: u64| {
        commit(
            at,
            vec![
                Change::SetDefault(None),
                Change::DeleteGroup(GroupRef {
                    tenant_id: "T".into(),
                    group_id: "G".into(),
                }),
                Change::DeletePlatform("P".into()),
                Change::DeleteTenant("T".into()),
                Change::DeleteUser("u".into()),
                Change::DeleteSession("s".into()),
            ],
        )
    };
    assert_eq!(
        store
            .commit(Sequence(0), &[removing(1)])
            .await
            .expect("commit"),
        Committed::Conflict
    );
    assert_eq!(stored_rows(&url).await, before, "a refused batch wrote");

    assert_eq!(
        store
            .commit(Sequence(1), &[removing(2)])
            .await
            .expect("commit"),
        Committed::At(Sequence(2))
    );
    let after = stored_rows(&url).await;
    for gone in ["P ", "T ", "T/G ", "u ", "s ", "default "] {
        assert!(
            !after.lines().any(|row| row.starts_with(gone)),
            "{gone}is still stored:\n{after}"
        );
    }
    assert!(
        after.contains("head 2") && after.contains("entries 2"),
        "{after}"
    );
}
