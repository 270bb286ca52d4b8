//! PostgreSQL beside sled, in the same rounds as the other measurements: the REST list and
//! durable writes on a gateway over a database of its own, each measured right after the same
//! on the sled gateway; two gateways on that database against one; and the time from a
//! commit on gateway A to its event on a subscriber of gateway B.
//!
//! Durable writes on one gateway are measured with A alone: B is stopped (giving its read lease
//! up) and started again after. While B holds a lease, each of A's commits is acknowledged
//! only once B has caught up with it, which is what a second gateway costs, not what
//! PostgreSQL does: that is measured as a figure of its own, A loaded while B follows.
//!
//! The database is created for the run on the server at `CALLREC_TEST_DATABASE_URL` (or
//! `postgres@127.0.0.1:5432`), filled with the sled fixture through `export` and `import`,
//! and dropped at the end. Without a server the smoke run prints a note and skips this part;
//! the full run refuses to start.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::load::Load;
use super::wrk::{Ask, Wrk};
use super::{LIST, Measure, Row, SERVER, Server, Settings, median, put_of, row};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The platform whose changes are followed from commit to subscriber.
const FOLLOWED: &str = "P099";
const EVENTS: &str = "subscription { callRecordingEvents { __typename \
    ... on CallRecordingPlatformModified { platform { name description } } } }";

/// A database of this run, dropped with it (also when the run fails).
struct Database {
    admin: String,
    name: String,
    url: String,
}

/// Runs `f` on a runtime of its own on a thread of its own: usable from `Drop`.
fn on_own_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f()))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the database thread panicked"))?
    .map_err(Into::into)
}

impl Database {
    /// `None` when no server answers at the admin URL.
    async fn create() -> anyhow::Result<Option<Database>> {
        use sqlx::Connection;
        let admin = std::env::var("CALLREC_TEST_DATABASE_URL").unwrap_or_else(|_| ADMIN_URL.into());
        let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await else {
            return Ok(None);
        };
        let suffix: String = {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..12)
                .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
                .collect()
        };
        let name = format!("callrec_bench_{}_{suffix}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .context("CREATE DATABASE")?;
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Ok(Some(Database { admin, name, url }))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = on_own_runtime(move || {
            Box::pin(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        });
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the benchmark's database {}", self.name);
        }
    }
}

/// What one round measured: each PostgreSQL figure with its baseline beside it.
struct Round {
    sled_list: Load,
    pg_list: Load,
    two_list: Load,
    sled_one: Load,
    sled_many: Load,
    pg_one: Load,
    pg_many: Load,
    /// A loaded while B follows: each commit waits until B has it too.
    followed_many: Load,
    two_many: Load,
}

/// Two gateways, A and B, on one fresh database holding the sled fixture.
pub struct Gateways {
    a: Server,
    /// Stopped while A is measured alone.
    b: Option<Server>,
    /// What the gateways are started with.
    args: Vec<String>,
    token: String,
    /// One per gateway, so that the two can run wrk at the same time.
    measures: [Measure; 2],
    connections: usize,
    commits: usize,
    rounds: Vec<Round>,
    /// Delays from sending a change (on A, or on the sled gateway) to its event (on B, or on
    /// the sled gateway itself), and to the writer's answer, in microseconds.
    pg_events: Histogram<u64>,
    pg_answers: Histogram<u64>,
    sled_events: Histogram<u64>,
    sled_answers: Histogram<u64>,
    scratch: tempfile::TempDir,
    database: Database,
}

/// `export` of `data`, `import` into `url`: the same records, users and log on both stores.
async fn copy_store(data: &Path, url: &str, scratch: &Path) -> anyhow::Result<()> {
    let dump = scratch.join("dump.json");
    let exported = tokio::process::Command::new(SERVER)
        .args(["export", "--data"])
        .arg(data)
        .stdout(std::fs::File::create(&dump)?)
        .stderr(Stdio::inherit())
        .status()
        .await?;
    ensure!(exported.success(), "export of {} failed", data.display());
    let imported = tokio::process::Command::new(SERVER)
        .args(["import", "--database-url", url])
        .stdin(std::fs::File::open(&dump)?)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .await?;
    ensure!(
        imported.success(),
        "import into the benchmark's database failed"
    );
    Ok(())
}

impl Gateways {
    /// Creates the database from the store in `data` (not open by a server yet) and starts two
    /// gateways on it; `None`, with a note, when no PostgreSQL server answers in a smoke run.
    pub async fn start(data: &Path, s: &Settings) -> anyhow::Result<Option<Gateways>> {
        let Some(database) = Database::create().await? else {
            ensure!(
                !s.full,
                "no PostgreSQL server at {} (CALLREC_TEST_DATABASE_URL)",
                std::env::var("CALLREC_TEST_DATABASE_URL").unwrap_or_else(|_| ADMIN_URL.into())
            );
            eprintln!("notice: no PostgreSQL server answers: the PostgreSQL figures are skipped");
            return Ok(None);
        };
        let scratch = tempfile::tempdir()?;
        copy_store(data, &database.url, scratch.path()).await?;
        let args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--database-url"]
            .into_iter()
            .map(String::from)
            .chain([database.url.clone()])
            .collect();
        let a = start_gateway(&args).await?;
        let b = Some(start_gateway(&args).await?);
        let token = a.token().await?;
        let measure = |dir: &str| -> anyhow::Result<Measure> {
            let dir = scratch.path().join(dir);
            std::fs::create_dir(&dir)?;
            Ok(Measure {
                warm_up: s.warm_up,
                duration: s.duration,
                wrk: Wrk::find(&dir),
            })
        };
        let measures = [measure("a")?, measure("b")?];
        let micros = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
        Ok(Some(Gateways {
            a,
            b,
            args,
            token,
            measures,
            connections: s.connections,
            commits: if s.full { 300 } else { 20 },
            rounds: Vec::new(),
            pg_events: micros()?,
            pg_answers: micros()?,
            sled_events: micros()?,
            sled_answers: micros()?,
            scratch,
            database,
        }))
    }

    /// One round: each PostgreSQL measurement right after its baseline on the sled gateway
    /// `sled` (whose admin's token is `sled_token`).
    pub async fn round(&mut self, sled: &Server, sled_token: &str) -> anyhow::Result<()> {
        let c = self.connections;
        let list = |token: &str| Ask::Get {
            path: LIST.to_owned(),
            token: token.to_owned(),
        };
        let a = self.a.addr;
        let b = self.b.as_ref().context("gateway B is not running")?.addr;
        let [ma, mb] = &mut self.measures;
        let sled_list = ma.run(sled.addr, c, &list(sled_token)).await?;
        let pg_list = ma.run(a, c, &list(&self.token)).await?;
        let ask = list(&self.token);
        let (on_a, on_b) = tokio::join!(ma.run(a, c / 2, &ask), mb.run(b, c - c / 2, &ask));
        let two_list = together(on_a?, on_b?);

        // A alone: B stops and gives its read lease up, so that A's commits wait for no other
        // gateway. While B holds a lease, each of A's commits waits until B has it too.
        if let Some(b) = self.b.take() {
            b.stop().await?;
        }
        let (sled_put, pg_put) = (put_of(sled_token), put_of(&self.token));
        let sled_one = ma.run(sled.addr, 1, &sled_put).await?;
        let sled_many = ma.run(sled.addr, c, &sled_put).await?;
        let pg_one = ma.run(a, 1, &pg_put).await?;
        let pg_many = ma.run(a, c, &pg_put).await?;
        let b = start_gateway(&self.args).await?;
        let b = self.b.insert(b).addr;
        let followed_many = ma.run(a, c, &pg_put).await?;
        let (on_a, on_b) = tokio::join!(ma.run(a, c / 2, &pg_put), mb.run(b, c - c / 2, &pg_put));
        let two_many = together(on_a?, on_b?);
        self.rounds.push(Round {
            sled_list,
            pg_list,
            two_list,
            sled_one,
            sled_many,
            pg_one,
            pg_many,
            followed_many,
            two_many,
        });

        let tag = self.rounds.len();
        follow_commits(
            sled.addr,
            sled.addr,
            sled_token,
            self.commits,
            tag,
            (&mut self.sled_events, &mut self.sled_answers),
        )
        .await?;
        follow_commits(
            a,
            b,
            &self.token,
            self.commits,
            tag,
            (&mut self.pg_events, &mut self.pg_answers),
        )
        .await?;
        Ok(())
    }

    /// Stops the gateways, drops the database, and answers the rows and the targets.
    pub async fn finish(
        self,
        of_rounds: &str,
    ) -> anyhow::Result<(Vec<Row>, Vec<(&'static str, bool)>)> {
        let Gateways {
            a,
            b,
            rounds,
            connections: c,
            commits,
            pg_events,
            pg_answers,
            sled_events,
            sled_answers,
            scratch,
            database,
            ..
        } = self;
        a.stop().await?;
        if let Some(b) = b {
            b.stop().await?;
        }
        drop(database);
        drop(scratch);

        let by = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        let (i_list, list_ratio) = by(|r| r.pg_list.per_second() / r.sled_list.per_second());
        let (i_two_list, two_list_ratio) = by(|r| r.two_list.per_second() / r.pg_list.per_second());
        let (i_one, one_ratio) = by(|r| r.pg_one.per_second() / r.sled_one.per_second());
        let (i_many, many_ratio) = by(|r| r.pg_many.per_second() / r.sled_many.per_second());
        let (i_followed, followed_ratio) =
            by(|r| r.followed_many.per_second() / r.pg_many.per_second());
        let (i_two_many, two_many_ratio) = by(|r| r.two_many.per_second() / r.pg_many.per_second());
        let pg_p99 = pg_events.value_at_quantile(0.99) as f64 / 1000.0;
        let propagation = |events: &Histogram<u64>| Load {
            requests: events.len(),
            failures: 0,
            elapsed: Duration::from_micros(events.mean() as u64 * events.len()),
            p50_ms: events.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: events.value_at_quantile(0.99) as f64 / 1000.0,
        };
        let (pg_propagation, sled_propagation) =
            (propagation(&pg_events), propagation(&sled_events));
        let all = commits * rounds.len();

        let rows = vec![
            row(
                format!(
                    "REST list, 100 platforms, authenticated, {c} conns, sled (beside the next)"
                ),
                &rounds[i_list].sled_list,
                None,
            )?,
            row(
                format!("REST list, the same on PostgreSQL, {c} conns"),
                &rounds[i_list].pg_list,
                Some((list_ratio, format!("× sled{of_rounds}"))),
            )?,
            row(
                format!("REST list, two gateways on one database, {c} conns split over both"),
                &rounds[i_two_list].two_list,
                Some((two_list_ratio, format!("two ÷ one gateway{of_rounds}"))),
            )?,
            row(
                "durable PUT, 1 client, sled (beside the next)",
                &rounds[i_one].sled_one,
                None,
            )?,
            row(
                "durable PUT, 1 client, PostgreSQL",
                &rounds[i_one].pg_one,
                Some((one_ratio, format!("× sled{of_rounds}"))),
            )?,
            row(
                format!("durable PUT, {c} clients, sled (beside the next)"),
                &rounds[i_many].sled_many,
                None,
            )?,
            row(
                format!("durable PUT, {c} clients, PostgreSQL"),
                &rounds[i_many].pg_many,
                Some((many_ratio, format!("× sled{of_rounds}"))),
            )?,
            row(
                format!(
                    "durable PUT, {c} clients, PostgreSQL, while a second gateway follows (each \
                     commit waits until it has it)"
                ),
                &rounds[i_followed].followed_many,
                Some((followed_ratio, format!("× one gateway alone{of_rounds}"))),
            )?,
            row(
                format!("durable PUT, two gateways on one database, {c} clients split over both"),
                &rounds[i_two_many].two_many,
                Some((two_many_ratio, format!("two ÷ one gateway{of_rounds}"))),
            )?,
            row(
                format!(
                    "sled: PUT sent to its event on a subscriber of the same gateway, {all} \
                     commits one after another"
                ),
                &sled_propagation,
                None,
            )?,
            row(
                format!(
                    "PostgreSQL: PUT sent to gateway A to its event on a subscriber of gateway \
                     B, {all} commits one after another (A answered after p50 {:.2} ms, p99 \
                     {:.2} ms)",
                    pg_answers.value_at_quantile(0.5) as f64 / 1000.0,
                    pg_answers.value_at_quantile(0.99) as f64 / 1000.0,
                ),
                &pg_propagation,
                Some((
                    pg_propagation.p50_ms / sled_propagation.p50_ms,
                    format!(
                        "p50 ÷ sled's (sled's writer answered after p50 {:.2} ms)",
                        sled_answers.value_at_quantile(0.5) as f64 / 1000.0
                    ),
                )),
            )?,
        ];
        let targets = vec![
            ("REST list on PostgreSQL ≥ 0.9× sled", list_ratio >= 0.9),
            (
                "durable writes, 64 clients, on PostgreSQL ≥ 0.5× sled",
                many_ratio >= 0.5,
            ),
            (
                "commit on gateway A to the event on a subscriber of B, p99 < 50 ms",
                pg_p99 < 50.0,
            ),
        ];
        Ok((rows, targets))
    }
}

/// A gateway on the benchmark's database.
async fn start_gateway(args: &[String]) -> anyhow::Result<Server> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(Path::new(SERVER), &args).await
}

/// Two loads run at the same time, as one.
fn together(a: Load, b: Load) -> Load {
    Load {
        requests: a.requests + b.requests,
        failures: a.failures + b.failures,
        elapsed: a.elapsed.max(b.elapsed),
        p50_ms: a.p50_ms.max(b.p50_ms),
        p99_ms: a.p99_ms.max(b.p99_ms),
    }
}

/// Commits `commits` changes of `FOLLOWED` on `writer`, one after another, each once the one
/// before has both been answered and reached the subscriber on `reader`; records, from the
/// moment each PUT is sent, when its event arrived and when the writer answered.
async fn follow_commits(
    writer: SocketAddr,
    reader: SocketAddr,
    token: &str,
    commits: usize,
    tag: usize,
    (events, answers): (&mut Histogram<u64>, &mut Histogram<u64>),
) -> anyhow::Result<()> {
    let wait = Duration::from_secs(10);
    let mut request = format!("ws://{reader}/graphql/ws").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio::time::timeout(wait, tokio_tungstenite::connect_async(request))
        .await
        .context("no WebSocket in time")??;
    let init = serde_json::json!({
        "type": "connection_init",
        "payload": { "Authorization": format!("Bearer {token}") },
    });
    ws.send(Message::Text(init.to_string().into())).await?;
    let subscribe = serde_json::json!({
        "id": "1", "type": "subscribe", "payload": { "query": EVENTS },
    });
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    let mut next = async || -> anyhow::Result<serde_json::Value> {
        loop {
            let message = tokio::time::timeout(wait, ws.next())
                .await
                .context("no message in time")?
                .context("the WebSocket closed")??;
            if let Message::Text(text) = message {
                let value: serde_json::Value = serde_json::from_str(&text)?;
                match value["type"].as_str() {
                    Some("connection_ack") => continue,
                    Some("next") => {
                        return Ok(value["payload"]["data"]["callRecordingEvents"].clone());
                    }
                    _ => anyhow::bail!("unexpected message: {value}"),
                }
            }
        }
    };
    let started = next().await?;
    ensure!(
        started["__typename"] == "CallRecordingSubscriptionStarted",
        "the subscription did not start: {started}"
    );
    let client = reqwest::Client::new();
    let url = format!("http://{writer}{LIST}{FOLLOWED}/");
    for i in 0..commits {
        let description = format!("followed {tag}.{i}");
        let put = client
            .put(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "description": description }));
        let sent = Instant::now();
        let answered = async {
            let answer = put.send().await?;
            ensure!(answer.status().is_success(), "a write failed: {answer:?}");
            anyhow::Ok(sent.elapsed())
        };
        let seen = async {
            loop {
                let event = next().await?;
                if event["platform"]["description"] == description.as_str() {
                    return anyhow::Ok(sent.elapsed());
                }
            }
        };
        let (answered, seen) = tokio::join!(answered, seen);
        answers.saturating_record(answered?.as_micros() as u64);
        events.saturating_record(seen?.as_micros() as u64);
    }
    Ok(())
}
