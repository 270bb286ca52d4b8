//! End-to-end figures of the real server, each as a ratio to a baseline measured in the same
//! run, so that they hold on shared, noisy machines:
//!
//! 1. the ceiling: a bare axum handler answering the same pre-rendered platform list;
//! 2. REST list of 100 platforms, authenticated, 64 connections;
//! 3. the same list through GraphQL;
//! 4. durable writes (REST PUT) with 1 and 64 clients, and 64 clients with flushing off;
//! 5. usage of a platform used by 10 groups in stores of 1,000 and 100,000 groups;
//! 6. start-up time to "listening" with 100,000 groups, and the server's peak RSS;
//! 7. REST list p50 with 200 platforms whose peers never answer, probing on versus off.
//!
//! `cargo bench --bench http` runs it in full and writes BENCHMARKS.md; without `--bench`
//! (`cargo test --bench http`) it runs a short smoke version that only checks it all works.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
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
use fixtures::{MEASURED, load_groups, platform};

const SERVER: &str = env!("CARGO_BIN_EXE_callrec-gateway");
const PASSWORD: &str = "benchmark-password";
const LIST: &str = "/api/v1/system/services/call_recording/platforms/";
const PLATFORMS: usize = 100;
/// Platforms whose peers never answer, for the probing measurement.
const SILENT_PLATFORMS: usize = 200;
const GRAPHQL_LIST: &str = "{ callRecordingPlatforms { systemDefault platforms { name netAddress port \
    mediaStream transportProtocol description schemaVersion supportVideoRecording } } }";

struct Settings {
    full: bool,
    warm_up: Duration,
    duration: Duration,
    connections: usize,
    /// Each measurement runs once per round; ratios are the median of the rounds'.
    rounds: usize,
    small_store: usize,
    large_store: usize,
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

/// What one load run measured.
struct Load {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    micros: Histogram<u64>,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn p50_ms(&self) -> f64 {
        self.micros.value_at_quantile(0.5) as f64 / 1000.0
    }

    fn p99_ms(&self) -> f64 {
        self.micros.value_at_quantile(0.99) as f64 / 1000.0
    }
}

type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Keeps `connections` HTTP/1.1 connections busy, one request in flight each, for
/// `warm_up + duration`; only the last `duration` is counted.
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
    let mut load = Load {
        requests: 0,
        failures: 0,
        elapsed: duration,
        micros: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    for task in tasks {
        let (requests, failures, micros) = task.await??;
        load.requests += requests;
        load.failures += failures;
        load.micros.add(micros)?;
    }
    Ok(load)
}

fn get(addr: SocketAddr, path: &str, token: &str) -> MakeRequest {
    let (path, auth, host) = (path.to_owned(), format!("Bearer {token}"), addr.to_string());
    Arc::new(move |_, _| {
        Request::get(path.as_str())
            .header("host", host.as_str())
            .header("authorization", auth.as_str())
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

/// The GraphQL list; with `distinct`, every request names its own alias, so that none can be
/// answered from the answers kept since the last commit and each one is executed.
fn graphql(addr: SocketAddr, token: &str, distinct: bool) -> MakeRequest {
    let same = Bytes::from(serde_json::json!({"query": GRAPHQL_LIST}).to_string());
    let (auth, host) = (format!("Bearer {token}"), addr.to_string());
    Arc::new(move |c, i| {
        let body = if distinct {
            let query = GRAPHQL_LIST.replacen(
                "callRecordingPlatforms",
                &format!("c{c}r{i}: callRecordingPlatforms"),
                1,
            );
            Bytes::from(serde_json::json!({"query": query}).to_string())
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

/// Each connection modifies its own platform, every request a real change.
fn modify(addr: SocketAddr, token: &str) -> MakeRequest {
    let (auth, host) = (format!("Bearer {token}"), addr.to_string());
    Arc::new(move |c, i| {
        let path = format!("{LIST}P{:03}/", c % PLATFORMS);
        let body = format!(r#"{{"description": "revision {i}"}}"#);
        Request::put(path)
            .header("host", host.as_str())
            .header("authorization", auth.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request")
    })
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
        p50_ms: load.p50_ms(),
        p99_ms: load.p99_ms(),
        ratio,
    })
}

async fn run(s: Settings) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let folder = |name: &str| -> PathBuf { scratch.path().join(name) };
    let c = s.connections;
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

    let probe = reqwest::Client::new()
        .post(format!("http://{}/graphql", server.addr))
        .bearer_auth(&token)
        .json(&serde_json::json!({"query": GRAPHQL_LIST}))
        .send()
        .await?;
    let graphql_works = probe.status().is_success()
        && probe.json::<serde_json::Value>().await?["data"]["callRecordingPlatforms"]["platforms"]
            .as_array()
            .map(Vec::len)
            == Some(PLATFORMS);
    ensure!(
        graphql_works,
        "the GraphQL list does not answer the 100 platforms"
    );
    let me = std::env::current_exe()?;
    let ceiling_server =
        Server::start(&me, &["--ceiling", &ceiling_file.display().to_string()]).await?;
    let unflushed = Server::gateway(&folder("unflushed"), &["--unsafe-skip-flush"]).await?;
    let token_u = unflushed.token().await?;
    let usage_path = format!("{LIST}{MEASURED}/usage/");
    let small = Server::gateway(&folder("small"), &[]).await?;
    let token_s = small.token().await?;
    let large = Server::gateway(&folder("large"), &[]).await?;
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

    // Every server is up, only one under load at a time. Each round runs every measurement
    // once, in turn, so that a machine whose speed drifts slows a figure and its baseline
    // alike; each ratio is the median of the rounds' ratios.
    let run = |addr: SocketAddr, connections: usize, make: MakeRequest| {
        drive(addr, connections, s.warm_up, s.duration, make)
    };
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    let mut usages = Vec::new();
    let mut probing = Vec::new();
    for round in 1..=s.rounds {
        eprintln!("round {round} of {}: reads…", s.rounds);
        let ceiling = run(
            ceiling_server.addr,
            c,
            get(ceiling_server.addr, LIST, &token),
        )
        .await?;
        let rest = run(server.addr, c, get(server.addr, LIST, &token)).await?;
        let gql = run(server.addr, c, graphql(server.addr, &token, false)).await?;
        reads.push((ceiling, rest, gql));
        eprintln!("round {round}: writes…");
        let one = run(server.addr, 1, modify(server.addr, &token)).await?;
        let many = run(server.addr, c, modify(server.addr, &token)).await?;
        let unsafe_many = run(unflushed.addr, c, modify(unflushed.addr, &token_u)).await?;
        writes.push((one, many, unsafe_many));
        eprintln!("round {round}: usage…");
        let in_small = run(small.addr, c, get(small.addr, &usage_path, &token_s)).await?;
        let in_large = run(large.addr, c, get(large.addr, &usage_path, &token_l)).await?;
        usages.push((in_small, in_large));
        eprintln!("round {round}: REST list with silent peers probed…");
        let off = run(unprobed.addr, c, get(unprobed.addr, LIST, &token_n)).await?;
        let on = run(probed.addr, c, get(probed.addr, LIST, &token_p)).await?;
        probing.push((off, on));
    }
    eprintln!("GraphQL list, every query distinct…");
    let gql_executed = run(server.addr, c, graphql(server.addr, &token, true)).await?;
    let ceiling_after = run(
        ceiling_server.addr,
        c,
        get(ceiling_server.addr, LIST, &token),
    )
    .await?;

    let rss_platforms = server.peak_rss_mib();
    let rss_large = large.peak_rss_mib();
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

    let median = |ratios: Vec<f64>| -> (usize, f64) {
        let mut order: Vec<usize> = (0..ratios.len()).collect();
        order.sort_by(|a, b| ratios[*a].total_cmp(&ratios[*b]));
        let i = order[order.len() / 2];
        (i, ratios[i])
    };
    let rate = |l: &Load| l.per_second();
    let (i_rest, rest_ratio) = median(reads.iter().map(|(c, r, _)| rate(r) / rate(c)).collect());
    let (i_gql, gql_ratio) = median(reads.iter().map(|(c, _, g)| rate(g) / rate(c)).collect());
    let (i_scale, scale_ratio) = median(writes.iter().map(|(o, m, _)| rate(m) / rate(o)).collect());
    let (i_flush, flush_ratio) = median(writes.iter().map(|(_, m, u)| rate(m) / rate(u)).collect());
    let (i_usage, usage_ratio) = median(
        usages
            .iter()
            .map(|(sm, lg)| lg.p50_ms() / sm.p50_ms())
            .collect(),
    );
    let (i_probing, probing_ratio) = median(
        probing
            .iter()
            .map(|(off, on)| on.p50_ms() / off.p50_ms())
            .collect(),
    );
    drop(silent_peers);
    let executed_ratio = rate(&gql_executed) / rate(&ceiling_after);
    let ratio_note = if s.rounds > 1 {
        format!(", median of {} rounds", s.rounds)
    } else {
        String::new()
    };
    let rows = vec![
        row(
            format!("ceiling: bare axum, same JSON, {c} conns"),
            &reads[i_rest].0,
            None,
        )?,
        row(
            format!("REST list, 100 platforms, {c} conns"),
            &reads[i_rest].1,
            Some((rest_ratio, format!("of ceiling{ratio_note}"))),
        )?,
        row(
            format!("GraphQL list, 100 platforms, {c} conns"),
            &reads[i_gql].2,
            Some((gql_ratio, format!("of ceiling{ratio_note}"))),
        )?,
        row(
            format!("GraphQL list, every query distinct (executed), {c} conns"),
            &gql_executed,
            Some((executed_ratio, "of ceiling measured next to it".into())),
        )?,
        row("durable PUT, 1 client", &writes[i_scale].0, None)?,
        row(
            format!("durable PUT, {c} clients"),
            &writes[i_scale].1,
            Some((scale_ratio, format!("× 1 client{ratio_note}"))),
        )?,
        row(
            format!("PUT with flushing off, {c} clients"),
            &writes[i_flush].2,
            Some((flush_ratio, format!("durable ÷ this{ratio_note}"))),
        )?,
        row(
            format!("usage, 10 of {} groups", s.small_store),
            &usages[i_usage].0,
            None,
        )?,
        row(
            format!("usage, 10 of {} groups", s.large_store),
            &usages[i_usage].1,
            Some((usage_ratio, format!("p50 ÷ small store{ratio_note}"))),
        )?,
        row(
            format!("REST list, {SILENT_PLATFORMS} platforms, probing off, {c} conns"),
            &probing[i_probing].0,
            None,
        )?,
        row(
            format!(
                "REST list, {SILENT_PLATFORMS} platforms with silent peers probed every 1 s, {c} conns"
            ),
            &probing[i_probing].1,
            Some((probing_ratio, format!("p50 ÷ probing off{ratio_note}"))),
        )?,
    ];

    let peak_rss = [rss_platforms, rss_large]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
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
         Peak RSS of the server: {peak_rss:.1} MiB.\n",
        startup_large.as_secs_f64() * 1000.0,
        s.large_store,
        startup_small.as_secs_f64() * 1000.0,
        s.small_store,
        startup_large.as_secs_f64() / startup_small.as_secs_f64(),
    );

    let targets = [
        ("REST list ≥ 0.70 of ceiling", rest_ratio >= 0.70),
        ("GraphQL list ≥ 0.40 of ceiling", gql_ratio >= 0.40),
        (
            "durable writes, 64 clients ≥ 0.5× flushing off",
            flush_ratio >= 0.5,
        ),
        (
            "durable writes, 64 clients ≥ 3× 1 client",
            scale_ratio >= 3.0,
        ),
        (
            "usage p50 at 100,000 groups ≤ 1.5× at 1,000",
            usage_ratio <= 1.5,
        ),
        ("peak RSS < 100 MiB", peak_rss > 0.0 && peak_rss < 100.0),
        (
            "REST list p50 with 200 silent peers probed ≤ 1.25× probing off",
            probing_ratio <= 1.25,
        ),
    ];
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
             Measured by `cargo bench --bench http`, which starts the release server itself on \
             127.0.0.1 with fresh data folders, loads the fixtures, drives it with its own \
             HTTP/1.1 load generator (one request in flight per connection, {:.0} s per \
             measurement after {:.0} s of warm-up) and rewrites this file. Every figure is \
             compared with a baseline of the same run, because absolute numbers on a shared \
             machine mean little.\n\n\
             Machine: {cores} cores, {cpu}. The load generator shares those cores with the \
             server.\n\n{table}{verdicts}",
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
