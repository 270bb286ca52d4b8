//! End-to-end figures of the real server, driven from outside its process by `wrk`, each as
//! a ratio to a baseline measured in the same run, so that they hold on shared, noisy
//! machines:
//!
//! 1. the ceilings: nginx serving the very same pre-rendered bytes (the REST list and the
//!    GraphQL answer) as static files, and a bare axum handler serving the REST list;
//! 2. REST list of 100 platforms, authenticated, 64 connections, against nginx;
//! 3. the same list through GraphQL, the same query repeated, against nginx;
//! 4. the GraphQL list with every query text new (a counter in a comment), so that each one is
//!    parsed, validated and executed, against the REST list;
//! 5. 64 GraphQL readers while one client commits 100 changes a second, against the same
//!    readers without writes;
//! 6. durable writes (REST PUT, each request a different change) with 1 and 64 clients, and
//!    64 clients with flushing off, against the REST list of the same gateway measured right
//!    before them;
//! 7. usage of a platform used by 10 groups in stores of 1,000 and 100,000 groups;
//! 8. start-up time to "listening" with 100,000 groups, and the server's peak RSS once its
//!    kept GraphQL answers are full;
//! 9. REST list p50 with 200 platforms whose peers never answer, probing on versus off;
//! 10. PostgreSQL beside sled: the REST list, durable writes, two gateways on one database
//!     against one, and a commit's way to a subscriber of another gateway (see
//!     `support/postgres.rs`).
//!
//! `cargo bench --bench http` runs it in full (wrk and nginx required) and writes
//! BENCHMARKS.md; without `--bench` (`cargo test --bench http`) it runs a short smoke version
//! that only checks it all works, with the in-process generator instead of wrk and without
//! nginx when they are not installed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::body::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use callrec_gateway::store::{Change, SledStore, StoreOptions};

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/load.rs"]
mod load;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/wrk.rs"]
mod wrk;
use fixtures::{MEASURED, load_groups, platform};
use load::Load;
use nginx::{Nginx, Served};
use wrk::{Ask, Wrk};

const SERVER: &str = env!("CARGO_BIN_EXE_callrec-gateway");
const PASSWORD: &str = "benchmark-password";
const LIST: &str = "/api/v1/system/services/call_recording/platforms/";
const PLATFORMS: usize = 100;
/// Platforms whose peers never answer, for the probing measurement.
const SILENT_PLATFORMS: usize = 200;
const GRAPHQL_LIST: &str = "{ callRecordingPlatforms { systemDefault platforms { name netAddress port \
    mediaStream transportProtocol description schemaVersion supportVideoRecording } } }";
/// Changes committed per second while the GraphQL readers read.
const WRITES_PER_SECOND: u64 = 100;

struct Settings {
    full: bool,
    warm_up: Duration,
    duration: Duration,
    connections: usize,
    /// Each measurement runs once per round; ratios are the median of the rounds'.
    rounds: usize,
    small_store: usize,
    large_store: usize,
    /// `--graphql-answer-cache-mb` of the large store's server.
    answer_cache_mb: usize,
}

impl Settings {
    fn new(full: bool) -> Settings {
        if full {
            Settings {
                full,
                warm_up: Duration::from_secs(1),
                duration: Duration::from_secs(3),
                connections: 64,
                rounds: 3,
                small_store: 1_000,
                large_store: 100_000,
                answer_cache_mb: 8,
            }
        } else {
            Settings {
                full,
                warm_up: Duration::from_millis(50),
                duration: Duration::from_millis(300),
                connections: 4,
                rounds: 1,
                small_store: 200,
                large_store: 2_000,
                answer_cache_mb: 1,
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--ceiling") {
        let file = args.get(i + 1).context("--ceiling needs a file")?;
        return ceiling_server(Path::new(file));
    }
    let settings = Settings::new(args.iter().any(|a| a == "--bench"));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(settings))
}

/// The ceiling: the HTTP stack's best, serving fixed bytes with no work behind them.
fn ceiling_server(file: &Path) -> anyhow::Result<()> {
    let body = Bytes::from(std::fs::read(file)?);
    tokio::runtime::Runtime::new()?.block_on(async move {
        let app = axum::Router::new().route(
            LIST,
            axum::routing::get(move || {
                let body = body.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// A server process and how long it took to say it was listening.
struct Server {
    child: Child,
    addr: SocketAddr,
    startup: Duration,
}

impl Server {
    async fn start(program: &Path, args: &[&str]) -> anyhow::Result<Server> {
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .env("CALLREC_ADMIN_PASSWORD", PASSWORD)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let line = tokio::time::timeout(
            Duration::from_secs(120),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .context("no listening line within 120 s")??
        .context("exited before listening")?;
        let startup = started.elapsed();
        let addr = line
            .strip_prefix("listening on http://")
            .with_context(|| format!("unexpected line {line:?}"))?
            .parse()?;
        Ok(Server {
            child,
            addr,
            startup,
        })
    }

    async fn gateway(data: &Path, extra: &[&str]) -> anyhow::Result<Server> {
        let folder = data.display().to_string();
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data", &folder];
        args.extend_from_slice(extra);
        Server::start(Path::new(SERVER), &args).await
    }

    /// Peak resident set size so far, from the kernel's high-water mark.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
        }
        tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        Ok(())
    }

    async fn token(&self) -> anyhow::Result<String> {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/api/v1/login/", self.addr))
            .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        Ok(answer["access_token"]
            .as_str()
            .context("login failed")?
            .to_owned())
    }
}

type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Keeps `connections` HTTP/1.1 connections busy, one request in flight each, for
/// `warm_up + duration`; only the last `duration` is counted. For what wrk cannot do (every
/// request a different change), and in place of wrk when it is missing.
async fn drive(
    addr: SocketAddr,
    connections: usize,
    warm_up: Duration,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<Load> {
    let start = Instant::now() + warm_up;
    let end = start + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut micros = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let (mut requests, mut failures) = (0u64, 0u64);
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                sender.ready().await?;
                let response = sender.send_request(make(c, i)).await?;
                let ok = response.status().is_success();
                response.into_body().collect().await?;
                i += 1;
                if now >= start {
                    requests += 1;
                    if !ok {
                        failures += 1;
                    }
                    micros.saturating_record(now.elapsed().as_micros() as u64);
                }
            }
            anyhow::Ok((requests, failures, micros))
        }));
    }
    let (mut requests, mut failures) = (0, 0);
    let mut micros = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        let (r, f, m) = task.await??;
        requests += r;
        failures += f;
        micros.add(m)?;
    }
    Ok(Load {
        requests,
        failures,
        elapsed: duration,
        p50_ms: micros.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: micros.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

/// `ask` as requests of the in-process generator.
fn requests_of(addr: SocketAddr, ask: &Ask) -> MakeRequest {
    let host = addr.to_string();
    match ask {
        Ask::Get { path, token } => {
            let (path, auth) = (path.clone(), format!("Bearer {token}"));
            Arc::new(move |_, _| {
                Request::get(path.as_str())
                    .header("host", host.as_str())
                    .header("authorization", auth.as_str())
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request")
            })
        }
        Ask::Graphql { token, query } | Ask::GraphqlCounted { token, query } => {
            let counted = matches!(ask, Ask::GraphqlCounted { .. });
            let same = Bytes::from(serde_json::json!({ "query": query }).to_string());
            let (auth, query) = (format!("Bearer {token}"), query.clone());
            Arc::new(move |c, i| {
                let body = if counted {
                    let query = format!("# {c}.{i}\n{query}");
                    Bytes::from(serde_json::json!({ "query": query }).to_string())
                } else {
                    same.clone()
                };
                Request::post("/graphql")
                    .header("host", host.as_str())
                    .header("authorization", auth.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("a valid request")
            })
        }
        Ask::Put {
            token,
            list,
            platforms,
        } => {
            // Each connection modifies its own platform; runs at once send different values.
            let (auth, list, platforms) = (format!("Bearer {token}"), list.clone(), *platforms);
            let run = wrk::run_tag();
            Arc::new(move |c, i| {
                let path = format!("{list}P{:03}/", c % platforms);
                let body = format!(r#"{{"description": "revision {run}.{c}.{i}"}}"#);
                Request::put(path)
                    .header("host", host.as_str())
                    .header("authorization", auth.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .expect("a valid request")
            })
        }
    }
}

/// PUTs of the fixture's platforms, every request a real change.
fn put_of(token: &str) -> Ask {
    Ask::Put {
        token: token.to_owned(),
        list: LIST.to_owned(),
        platforms: PLATFORMS,
    }
}

/// Commits `WRITES_PER_SECOND` changes a second through the REST API until `stop` is set,
/// each change sent on its tick whether or not the one before was answered (a write waits
/// for the disk); answers how many it committed and in how long.
async fn commit_steadily(
    addr: SocketAddr,
    token: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(u64, Duration)> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / WRITES_PER_SECOND));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut writes = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    while !*stop.borrow() {
        ticks.tick().await;
        let put = client
            .put(format!("http://{addr}{LIST}P099/"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "description": format!("steady {sent}") }))
            .send();
        writes.spawn(async move {
            let answer = put.await?;
            ensure!(answer.status().is_success(), "a write failed: {answer:?}");
            anyhow::Ok(())
        });
        sent += 1;
        while let Some(done) = writes.try_join_next() {
            done??;
        }
    }
    let elapsed = started.elapsed();
    while let Some(done) = writes.join_next().await {
        done??;
    }
    Ok((sent, elapsed))
}

/// Fills the kept GraphQL answers of `server` (whose tenants hold 100 groups each) with
/// distinct questions whose answers add up to `bytes`: each a tenant's groups, the query
/// text made new by a counter in a comment.
async fn fill_answers(
    server: &Server,
    token: &str,
    tenants: usize,
    bytes: usize,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, asked, counter) = (client.clone(), asked.clone(), counter.clone());
        let url = format!("http://{}/graphql", server.addr);
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            while asked.load(Ordering::Relaxed) < bytes {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let query = format!(
                    "# {i}\n{{ groups(tenantId: \"tenant-{:05}\") {{ tenantId groupId callRecordingPlatform }} }}",
                    i as usize % tenants
                );
                let answer = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "query": query }))
                    .send()
                    .await?
                    .bytes()
                    .await?;
                let groups = serde_json::from_slice::<serde_json::Value>(&answer)?["data"]["groups"]
                    .as_array()
                    .map(Vec::len);
                ensure!(groups == Some(100), "no groups: {}", String::from_utf8_lossy(&answer));
                asked.fetch_add(answer.len() + query.len() + 256, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// A data folder with 100 platforms, `P000` the default.
fn platforms_store(folder: &Path) -> anyhow::Result<()> {
    let mut options = StoreOptions::new(folder);
    options.flush = false;
    let store = SledStore::open(options)?;
    let mut changes: Vec<Change> = (0..PLATFORMS)
        .map(|i| Change::PutPlatform(platform(&format!("P{i:03}"))))
        .collect();
    changes.push(Change::SetDefault(Some("P000".into())));
    store.seed(&changes)?;
    Ok(())
}

/// A data folder with one UDP platform on 127.0.0.1 per port, `S000` the default.
fn silent_platforms_store(folder: &Path, ports: &[u16]) -> anyhow::Result<()> {
    let mut options = StoreOptions::new(folder);
    options.flush = false;
    let store = SledStore::open(options)?;
    let mut changes: Vec<Change> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut p = platform(&format!("S{i:03}"));
            p.net_address = "127.0.0.1".into();
            p.port = Some(*port);
            Change::PutPlatform(p)
        })
        .collect();
    changes.push(Change::SetDefault(Some("S000".into())));
    store.seed(&changes)?;
    Ok(())
}

/// Waits until the prober of `server` has seen `platform` time out, so that the measurement
/// runs with probes in flight.
async fn wait_for_timeouts(server: &Server, token: &str, platform: &str) -> anyhow::Result<()> {
    let url = format!("http://{}{LIST}{platform}/reachability/", server.addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: serde_json::Value = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if seen["lastError"] == "timeout" {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "never probed: {seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn groups_store(folder: &Path, groups: usize) -> anyhow::Result<()> {
    let mut options = StoreOptions::new(folder);
    options.flush = false;
    let store = SledStore::open(options)?;
    load_groups(&store, groups)
}

struct Row {
    name: String,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    ratio: Option<(f64, String)>,
}

fn row(name: impl Into<String>, load: &Load, ratio: Option<(f64, String)>) -> anyhow::Result<Row> {
    let name = name.into();
    ensure!(load.requests > 0, "{name}: no request completed");
    ensure!(
        load.failures == 0,
        "{name}: {} of {} requests failed",
        load.failures,
        load.requests
    );
    Ok(Row {
        name,
        per_second: load.per_second(),
        p50_ms: load.p50_ms,
        p99_ms: load.p99_ms,
        ratio,
    })
}

/// The round whose ratio is the median of the rounds', and that ratio.
fn median(ratios: Vec<f64>) -> (usize, f64) {
    let mut order: Vec<usize> = (0..ratios.len()).collect();
    order.sort_by(|a, b| ratios[*a].total_cmp(&ratios[*b]));
    let i = order[order.len() / 2];
    (i, ratios[i])
}

/// Runs each measurement with wrk, or with the in-process generator when wrk is missing.
struct Measure {
    warm_up: Duration,
    duration: Duration,
    wrk: Option<Wrk>,
}

impl Measure {
    async fn run(
        &mut self,
        addr: SocketAddr,
        connections: usize,
        ask: &Ask,
    ) -> anyhow::Result<Load> {
        match &mut self.wrk {
            Some(wrk) => {
                wrk.run(addr, connections, self.warm_up, self.duration, ask)
                    .await
            }
            None => {
                let make = requests_of(addr, ask);
                drive(addr, connections, self.warm_up, self.duration, make).await
            }
        }
    }
}

/// What one round measured.
struct Reads {
    nginx_list: Option<Load>,
    axum_list: Load,
    rest: Load,
    nginx_graphql: Option<Load>,
    graphql: Load,
    graphql_new: Load,
    under_writes: Load,
    /// Commits per second while `under_writes` ran.
    commit_rate: f64,
}

/// The writes of one round.
struct Writes {
    /// Durable, 1 client and `connections` clients.
    one: Load,
    many: Load,
    /// The REST list on the gateway with flushing off, right before its PUTs.
    unflushed_list: Load,
    unflushed: Load,
}

async fn run(s: Settings) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let folder = |name: &str| -> PathBuf { scratch.path().join(name) };
    let c = s.connections;
    let mut measure = Measure {
        warm_up: s.warm_up,
        duration: s.duration,
        wrk: Wrk::find(scratch.path()),
    };
    ensure!(
        measure.wrk.is_some() || !s.full,
        "wrk is not installed (Debian: apt-get install wrk)"
    );
    eprintln!("loading fixtures…");
    platforms_store(&folder("platforms"))?;
    platforms_store(&folder("unflushed"))?;
    groups_store(&folder("small"), s.small_store)?;
    // Peers that never answer: bound, never read.
    let mut silent_peers = Vec::new();
    for _ in 0..SILENT_PLATFORMS {
        silent_peers.push(std::net::UdpSocket::bind("127.0.0.1:0")?);
    }
    let silent_ports: Vec<u16> = silent_peers
        .iter()
        .map(|p| p.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    silent_platforms_store(&folder("probed"), &silent_ports)?;
    silent_platforms_store(&folder("unprobed"), &silent_ports)?;
    let loading = Instant::now();
    groups_store(&folder("large"), s.large_store)?;
    eprintln!(
        "{} groups loaded in {:.1?}",
        s.large_store,
        loading.elapsed()
    );

    let mut pg = postgres::Gateways::start(&folder("platforms"), &s).await?;
    // The gateway with 100 platforms: reads, then durable writes.
    let server = Server::gateway(&folder("platforms"), &[]).await?;
    let token = server.token().await?;
    let list = reqwest::Client::new()
        .get(format!("http://{}{LIST}", server.addr))
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    let listed: serde_json::Value = serde_json::from_slice(&list)?;
    ensure!(
        listed["callRecordingPlatforms"].as_array().map(Vec::len) == Some(PLATFORMS),
        "fixture: {listed}"
    );
    let ceiling_file = folder("ceiling.json");
    std::fs::write(&ceiling_file, &list)?;

    let graphql_answer = |query: String| {
        let (addr, token) = (server.addr, token.clone());
        async move {
            let answer = reqwest::Client::new()
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "query": query }))
                .send()
                .await?;
            ensure!(answer.status().is_success(), "GraphQL: {answer:?}");
            let bytes = answer.bytes().await?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)?;
            ensure!(
                value["data"]["callRecordingPlatforms"]["platforms"]
                    .as_array()
                    .map(Vec::len)
                    == Some(PLATFORMS),
                "the GraphQL list does not answer the 100 platforms: {value}"
            );
            anyhow::Ok(bytes)
        }
    };
    let graphql_bytes = graphql_answer(GRAPHQL_LIST.to_owned()).await?;
    // A comment makes the text new, not the answer.
    let counted = graphql_answer(format!("# 0.0\n{GRAPHQL_LIST}")).await?;
    ensure!(counted == graphql_bytes, "a comment changed the answer");

    let nginx = Nginx::start(&[
        Served {
            path: LIST,
            body: &list,
        },
        Served {
            path: "/graphql",
            body: &graphql_bytes,
        },
    ])
    .await?;
    ensure!(
        nginx.is_some() || !s.full,
        "nginx is not installed (Debian: apt-get install nginx-light)"
    );
    if let Some(nginx) = &nginx {
        let served = reqwest::Client::new()
            .post(format!("http://{}/graphql", nginx.addr))
            .json(&serde_json::json!({ "query": GRAPHQL_LIST }))
            .send()
            .await?
            .bytes()
            .await?;
        ensure!(served == graphql_bytes, "nginx serves other bytes");
    }
    let me = std::env::current_exe()?;
    let ceiling_server =
        Server::start(&me, &["--ceiling", &ceiling_file.display().to_string()]).await?;
    let unflushed = Server::gateway(&folder("unflushed"), &["--unsafe-skip-flush"]).await?;
    let token_u = unflushed.token().await?;
    let usage_path = format!("{LIST}{MEASURED}/usage/");
    let small = Server::gateway(&folder("small"), &[]).await?;
    let token_s = small.token().await?;
    let cache_mb = s.answer_cache_mb.to_string();
    let large =
        Server::gateway(&folder("large"), &["--graphql-answer-cache-mb", &cache_mb]).await?;
    let token_l = large.token().await?;
    // Every platform probed every second, each probe waiting the longest the properties
    // allow by default (3 s): the prober's concurrency is full all the time.
    let probed = Server::gateway(
        &folder("probed"),
        &["--probe-platforms", "--probe-interval", "1"],
    )
    .await?;
    let token_p = probed.token().await?;
    let unprobed = Server::gateway(&folder("unprobed"), &[]).await?;
    let token_n = unprobed.token().await?;
    wait_for_timeouts(&probed, &token_p, "S000").await?;

    let list_of = |token: &str| Ask::Get {
        path: LIST.to_owned(),
        token: token.to_owned(),
    };
    let same_query = Ask::Graphql {
        token: token.clone(),
        query: GRAPHQL_LIST.to_owned(),
    };
    let new_query = Ask::GraphqlCounted {
        token: token.clone(),
        query: GRAPHQL_LIST.to_owned(),
    };
    // Every server is up, only one under load at a time. Each round runs every measurement
    // once, in turn, so that a machine whose speed drifts slows a figure and its baseline
    // alike; each ratio is the median of the rounds' ratios.
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    let mut usages = Vec::new();
    let mut probing = Vec::new();
    for round in 1..=s.rounds {
        eprintln!("round {round} of {}: reads…", s.rounds);
        let nginx_list = match &nginx {
            Some(n) => Some(measure.run(n.addr, c, &list_of(&token)).await?),
            None => None,
        };
        let axum_list = measure
            .run(ceiling_server.addr, c, &list_of(&token))
            .await?;
        let rest = measure.run(server.addr, c, &list_of(&token)).await?;
        let nginx_graphql = match &nginx {
            Some(n) => Some(measure.run(n.addr, c, &same_query).await?),
            None => None,
        };
        let graphql = measure.run(server.addr, c, &same_query).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = tokio::spawn(commit_steadily(server.addr, token.clone(), stopped));
        let under_writes = measure.run(server.addr, c, &same_query).await;
        stop.send(true)?;
        let (commits, writing) = writer.await??;
        let under_writes = under_writes?;
        let graphql_new = measure.run(server.addr, c, &new_query).await?;
        reads.push(Reads {
            nginx_list,
            axum_list,
            rest,
            nginx_graphql,
            graphql,
            graphql_new,
            under_writes,
            commit_rate: commits as f64 / writing.as_secs_f64(),
        });
        eprintln!("round {round}: writes…");
        let one = measure.run(server.addr, 1, &put_of(&token)).await?;
        let many = measure.run(server.addr, c, &put_of(&token)).await?;
        // The baseline of writes with flushing off is the REST list of the same gateway,
        // measured right before them (the reads above run a minute earlier).
        let unflushed_list = measure.run(unflushed.addr, c, &list_of(&token_u)).await?;
        let unflushed_many = measure.run(unflushed.addr, c, &put_of(&token_u)).await?;
        writes.push(Writes {
            one,
            many,
            unflushed_list,
            unflushed: unflushed_many,
        });
        if let Some(pg) = &mut pg {
            eprintln!("round {round}: PostgreSQL beside sled…");
            pg.round(&server, &token).await?;
        }
        eprintln!("round {round}: usage…");
        let usage_of = |token: &str| Ask::Get {
            path: usage_path.clone(),
            token: token.to_owned(),
        };
        let in_small = measure.run(small.addr, c, &usage_of(&token_s)).await?;
        let in_large = measure.run(large.addr, c, &usage_of(&token_l)).await?;
        usages.push((in_small, in_large));
        eprintln!("round {round}: REST list with silent peers probed…");
        let off = measure.run(unprobed.addr, c, &list_of(&token_n)).await?;
        let on = measure.run(probed.addr, c, &list_of(&token_p)).await?;
        probing.push((off, on));
    }

    eprintln!("filling the kept answers of the large store…");
    let cache_bytes = s.answer_cache_mb * 1024 * 1024;
    let tenants = s.large_store.div_ceil(100);
    let rss_before_filling = large.peak_rss_mib().unwrap_or(0.0);
    fill_answers(&large, &token_l, tenants, 2 * cache_bytes).await?;

    let peak_rss = large.peak_rss_mib().unwrap_or(0.0);
    let of_rounds = if s.rounds > 1 {
        format!(", median of {} rounds", s.rounds)
    } else {
        String::new()
    };
    let (pg_rows, pg_targets) = match pg {
        Some(pg) => pg.finish(&of_rounds).await?,
        None => (Vec::new(), Vec::new()),
    };
    let (startup_small, startup_large) = (small.startup, large.startup);
    for server in [
        server,
        ceiling_server,
        unflushed,
        small,
        large,
        probed,
        unprobed,
    ] {
        server.stop().await?;
    }
    if let Some(nginx) = nginx {
        nginx.stop().await?;
    }
    drop(silent_peers);

    let rate = |l: &Load| l.per_second();
    let by_nginx = |pick: fn(&Reads) -> (&Option<Load>, &Load)| {
        let ratios: Option<Vec<f64>> = reads
            .iter()
            .map(|r| {
                let (n, l) = pick(r);
                n.as_ref().map(|n| rate(l) / rate(n))
            })
            .collect();
        ratios.map(median)
    };
    let rest_nginx = by_nginx(|r| (&r.nginx_list, &r.rest));
    let graphql_nginx = by_nginx(|r| (&r.nginx_graphql, &r.graphql));
    let (i_axum, rest_axum) = median(
        reads
            .iter()
            .map(|r| rate(&r.rest) / rate(&r.axum_list))
            .collect(),
    );
    let (i_new, new_ratio) = median(
        reads
            .iter()
            .map(|r| rate(&r.graphql_new) / rate(&r.rest))
            .collect(),
    );
    let (i_writes, writes_ratio) = median(
        reads
            .iter()
            .map(|r| rate(&r.under_writes) / rate(&r.graphql))
            .collect(),
    );
    let (i_scale, scale_ratio) = median(
        writes
            .iter()
            .map(|w| rate(&w.many) / rate(&w.one))
            .collect(),
    );
    let (i_flush, flush_ratio) = median(
        writes
            .iter()
            .map(|w| rate(&w.many) / rate(&w.unflushed))
            .collect(),
    );
    let (i_unflushed, unflushed_ratio) = median(
        writes
            .iter()
            .map(|w| rate(&w.unflushed) / rate(&w.unflushed_list))
            .collect(),
    );
    let (i_usage, usage_ratio) = median(
        usages
            .iter()
            .map(|(sm, lg)| lg.p50_ms / sm.p50_ms)
            .collect(),
    );
    let (i_probing, probing_ratio) = median(
        probing
            .iter()
            .map(|(off, on)| on.p50_ms / off.p50_ms)
            .collect(),
    );
    let i_rest = rest_nginx.map_or(i_axum, |(i, _)| i);
    let i_gql = graphql_nginx.map_or(i_writes, |(i, _)| i);
    let mut rows = Vec::new();
    if let Some(nginx_list) = &reads[i_rest].nginx_list {
        rows.push(row(
            format!("ceiling: nginx, REST list bytes, {c} conns"),
            nginx_list,
            None,
        )?);
    }
    rows.push(row(
        format!("second ceiling: bare axum, REST list bytes, {c} conns"),
        &reads[i_axum].axum_list,
        None,
    )?);
    rows.push(row(
        format!("REST list, 100 platforms, authenticated, {c} conns"),
        &reads[i_rest].rest,
        rest_nginx.map(|(_, r)| (r, format!("of nginx{of_rounds}"))),
    )?);
    rows.push(row(
        "REST list (the same runs as above)",
        &reads[i_axum].rest,
        Some((rest_axum, format!("of bare axum{of_rounds}"))),
    )?);
    if let Some(nginx_graphql) = &reads[i_gql].nginx_graphql {
        rows.push(row(
            format!("ceiling: nginx, GraphQL answer bytes, {c} conns"),
            nginx_graphql,
            None,
        )?);
    }
    rows.push(row(
        format!("GraphQL list, the same query repeated, {c} conns"),
        &reads[i_gql].graphql,
        graphql_nginx.map(|(_, r)| (r, format!("of nginx{of_rounds}"))),
    )?);
    rows.push(row(
        format!("GraphQL list, every query text new (executed), {c} conns"),
        &reads[i_new].graphql_new,
        Some((new_ratio, format!("of the REST list{of_rounds}"))),
    )?);
    rows.push(row(
        format!(
            "GraphQL list, same query, {c} readers while {:.0} commits/s land",
            reads[i_writes].commit_rate
        ),
        &reads[i_writes].under_writes,
        Some((
            writes_ratio,
            format!("of the same readers without writes{of_rounds}"),
        )),
    )?);
    rows.push(row("durable PUT, 1 client", &writes[i_scale].one, None)?);
    rows.push(row(
        format!("durable PUT, {c} clients"),
        &writes[i_scale].many,
        Some((scale_ratio, format!("× 1 client{of_rounds}"))),
    )?);
    rows.push(row(
        format!("PUT with flushing off, {c} clients"),
        &writes[i_flush].unflushed,
        Some((flush_ratio, format!("durable ÷ this{of_rounds}"))),
    )?);
    rows.push(row(
        format!("REST list on the gateway with flushing off, {c} conns (beside the next)"),
        &writes[i_unflushed].unflushed_list,
        None,
    )?);
    rows.push(row(
        format!("PUT with flushing off, {c} clients (the same gateway)"),
        &writes[i_unflushed].unflushed,
        Some((
            unflushed_ratio,
            format!("of the REST list beside it{of_rounds}"),
        )),
    )?);
    rows.push(row(
        format!("usage, 10 of {} groups", s.small_store),
        &usages[i_usage].0,
        None,
    )?);
    rows.push(row(
        format!("usage, 10 of {} groups", s.large_store),
        &usages[i_usage].1,
        Some((usage_ratio, format!("p50 ÷ small store{of_rounds}"))),
    )?);
    rows.push(row(
        format!("REST list, {SILENT_PLATFORMS} platforms, probing off, {c} conns"),
        &probing[i_probing].0,
        None,
    )?);
    rows.push(row(
        format!(
            "REST list, {SILENT_PLATFORMS} platforms with silent peers probed every 1 s, {c} conns"
        ),
        &probing[i_probing].1,
        Some((probing_ratio, format!("p50 ÷ probing off{of_rounds}"))),
    )?);
    rows.extend(pg_rows);

    let mut table = String::new();
    table += "| measurement | requests/s | p50 ms | p99 ms | ratio |\n|---|---:|---:|---:|---|\n";
    for r in &rows {
        let ratio = r
            .ratio
            .as_ref()
            .map(|(v, what)| format!("{v:.2} {what}"))
            .unwrap_or_default();
        table += &format!(
            "| {} | {:.0} | {:.2} | {:.2} | {} |\n",
            r.name, r.per_second, r.p50_ms, r.p99_ms, ratio
        );
    }
    table += &format!(
        "\nStart-up to `listening`: {:.0} ms with {} groups, {:.0} ms with {} ({:.2}×).  \n\
         Peak RSS of the server with {} groups, after every measurement above and its kept \
         GraphQL answers filled twice over ({} MiB each time): {peak_rss:.1} MiB \
         ({rss_before_filling:.1} MiB before they were filled).\n",
        startup_large.as_secs_f64() * 1000.0,
        s.large_store,
        startup_small.as_secs_f64() * 1000.0,
        s.small_store,
        startup_large.as_secs_f64() / startup_small.as_secs_f64(),
        s.large_store,
        s.answer_cache_mb,
    );

    let mut targets = Vec::new();
    if let Some((_, r)) = rest_nginx {
        targets.push(("REST list ≥ 0.70 of nginx", r >= 0.70));
    }
    if let Some((_, r)) = graphql_nginx {
        targets.push(("GraphQL list, same query ≥ 0.60 of nginx", r >= 0.60));
    }
    targets.extend([
        (
            "GraphQL list, every query new ≥ 0.30 of the REST list",
            new_ratio >= 0.30,
        ),
        (
            "GraphQL readers under 100 commits/s ≥ 0.5 of the same without writes",
            writes_ratio >= 0.5,
        ),
        (
            "PUT with flushing off, 64 clients ≥ 0.5 of the REST list",
            unflushed_ratio >= 0.5,
        ),
        (
            "durable writes, 64 clients ≥ 0.7× flushing off",
            flush_ratio >= 0.7,
        ),
        (
            "usage p50 at 100,000 groups ≤ 1.5× at 1,000",
            usage_ratio <= 1.5,
        ),
        (
            "peak RSS, 100,000 groups and full kept answers < 100 MiB",
            peak_rss > 0.0 && peak_rss < 100.0,
        ),
        (
            "REST list p50 with 200 silent peers probed ≤ 1.25× probing off",
            probing_ratio <= 1.25,
        ),
    ]);
    targets.extend(pg_targets);
    let mut verdicts = String::from("\n| target | met |\n|---|---|\n");
    for (target, met) in targets {
        verdicts += &format!("| {target} | {} |\n", if met { "yes" } else { "**no**" });
    }
    println!("\n{table}{verdicts}");

    if s.full {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let text = format!(
            "# Benchmarks\n\n\
             Measured by `cargo bench --bench http` (Debian's `wrk` and `nginx-light` \
             installed), which starts the release server itself on 127.0.0.1 with fresh data \
             folders, loads the fixtures, drives it from outside its process with `wrk -t2` \
             ({:.0} s per measurement after {:.0} s of warm-up) and rewrites this file. The \
             ceiling is nginx serving the very same bytes as static files, started by the \
             benchmark from a generated configuration; a bare axum handler is a second \
             baseline. nginx logs every request, buffered, to the same place as the \
             gateway's access log (`/dev/null`). Writes are PUTs from a wrk script whose \
             every request is a different change. Every figure is compared with a baseline of \
             the same run, because absolute numbers on a shared machine mean little.\n\n\
             Machine: {cores} cores, {cpu}. wrk shares those cores with the server it \
             measures, and with nginx's two workers when nginx is measured.\n\n{table}{verdicts}",
            s.duration.as_secs_f64(),
            s.warm_up.as_secs_f64(),
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        let notes_marker = "\n## Notes\n";
        let notes = std::fs::read_to_string(&path)
            .ok()
            .and_then(|old| old.find(notes_marker).map(|i| old[i..].to_owned()))
            .unwrap_or_default();
        std::fs::write(&path, text + &notes)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
