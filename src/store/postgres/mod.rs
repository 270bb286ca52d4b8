//! The shared store: PostgreSQL, for several gateways on one database. The only module that
//! names PostgreSQL.
//!
//! Every commit is one statement, its own transaction, that first moves the log's head row from
//! the position its decision was made at (which locks the row until the transaction ends), so
//! commits of all gateways are serialized and each is decided against the newest state: a
//! head that moved since the decision answers [`Committed::Conflict`] and writes nothing, since
//! the statement's other terms (the entries, the rows of [`rows::Writes`], the notification)
//! join the moved head. Once the statement returns (with `synchronous_commit` on) the commit
//! is durable.
//!
//! Each gateway follows the head with `LISTEN` (see [`head`]), and catches up by reading the
//! entries after its position and the current records of the objects they name (see
//! [`rows::Touched`]), all in one statement: one snapshot, one round trip.
//!
//! A change acknowledged by any gateway is in every gateway's next answer: a gateway holding a
//! read lease answers from memory, and commits wait for it to install them (see [`lease`]);
//! one without a lease looks at the head for each request (see [`look`]).

mod head;
mod kept;
mod lease;
mod look;
mod migrate;
mod rows;
mod throttle;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{QueryBuilder, Row};
use tokio::sync::watch;

use self::rows::Touched;
pub use self::throttle::PgThrottle;

use super::{CatchUp, Change, Commit, Committed, Entry, Foreign, LogRange, Sequence, State, Store};
use crate::error::{Error, Result};

/// The channel every commit notifies, its payload the new head.
const CHANNEL: &str = "callrec_log";

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?sslmode=...`
    pub url: String,
    /// Connections the pool keeps at most (five more are kept: the LISTEN connection, the
    /// look at the head, commits, lease checks and reports; see [`kept`]).
    pub pool: u32,
    /// How long a request waits for a connection, or for a kept connection's answer, before
    /// it is answered 503.
    pub acquire_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            pool: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

pub struct PgStore {
    pool: PgPool,
    head: watch::Sender<Sequence>,
    /// The last sequence this gateway committed.
    committed: AtomicU64,
    /// Looks at the head row shared by the requests that wait for one together.
    look: look::SharedLook,
    /// The connection those looks go over.
    look_connection: kept::Kept,
    /// The connection of the commits and catch-ups, which run one at a time under the
    /// service's write gate.
    gate_connection: kept::Kept,
    connect: PgConnectOptions,
    /// How long a look or a pooled connection may take before the request is answered 503.
    timeout: Duration,
    follower: tokio::task::JoinHandle<()>,
    /// This gateway's read lease and the others' (see [`lease`]).
    leases: Arc<lease::Leases>,
    /// The tasks that keep and report this gateway's lease, while it holds one.
    lease_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Never set: a database that went away comes back, and each request finds out for
    /// itself (503) until it does.
    failure: watch::Sender<Option<String>>,
}

/// Whether an error means the database cannot be reached or cannot take the request now
/// (503, retry later), as opposed to a fault of this program or of the stored data.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // Connection exceptions, insufficient resources, operator intervention (shutdown),
            // transaction rollbacks (serialization, deadlock), read-only transaction (a
            // standby).
            ["08", "53", "57", "40", "25006"]
                .iter()
                .any(|prefix| code.starts_with(prefix))
        }
        _ => false,
    }
}

pub(crate) fn db_error(e: sqlx::Error) -> Error {
    if transient(&e) {
        Error::Unavailable(format!("the database is unavailable: {e}"))
    } else {
        Error::Internal(format!("database: {e}"))
    }
}

fn sequence(value: i64) -> Result<Sequence> {
    u64::try_from(value)
        .map(Sequence)
        .map_err(|_| Error::Internal(format!("stored sequence {value} is negative")))
}

fn signed(sequence: Sequence) -> Result<i64> {
    i64::try_from(sequence.0)
        .map_err(|_| Error::Internal(format!("sequence {sequence} is out of range")))
}

fn parse_entry(text: &str) -> Result<Entry> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("stored log entry is unreadable: {e}")))
}

impl PgStore {
    /// Connects, brings the schema up to this version (refusing a database newer than it),
    /// and starts following the log's head.
    pub async fn connect(options: PgOptions) -> anyhow::Result<PgStore> {
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| anyhow::anyhow!("--database-url is not a PostgreSQL URL: {e}"))?
            .application_name("callrec-gateway")
            // Every query here reads or writes a few rows by key, but the generic plan of a
            // prepared range read (the log after a position) is estimated at the whole table,
            // and past PostgreSQL's `jit_above_cost` each run paid milliseconds compiling it:
            // with a second gateway following a busy one, that took more of the database than
            // the writes did.
            .options([("jit", "off")]);
        migrate::run(&connect).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool.max(1))
            .acquire_timeout(options.acquire_timeout)
            .after_connect(|conn, _| Box::pin(durable_commits(conn)))
            .connect_with(connect.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        let at = read_head(&pool).await.map_err(anyhow::Error::from)?;
        let head = watch::Sender::new(at);
        let leases = Arc::new(lease::Leases::new(kept::Kept::new(
            connect.clone(),
            options.acquire_timeout,
        )));
        let follower = tokio::spawn(head::follow(pool.clone(), head.clone(), leases.clone()));
        Ok(PgStore {
            pool,
            head,
            committed: AtomicU64::new(0),
            look: look::SharedLook::default(),
            look_connection: kept::Kept::new(connect.clone(), options.acquire_timeout),
            gate_connection: kept::Kept::new(connect.clone(), options.acquire_timeout),
            connect,
            timeout: options.acquire_timeout,
            follower,
            leases,
            lease_tasks: std::sync::Mutex::new(Vec::new()),
            failure: watch::Sender::new(None),
        })
    }

    /// Answers API requests from memory while a read lease of `length` holds, instead of
    /// looking at the head for each (see [`lease`]). For serving gateways only: a process that
    /// takes a lease and stops following the log holds up the others' commits until it ends.
    pub fn hold_read_leases(&self, length: Duration) {
        if length.is_zero() {
            return;
        }
        let mut tasks = self.lease_tasks.lock().unwrap_or_else(|p| p.into_inner());
        if !tasks.is_empty() {
            return;
        }
        tasks.push(tokio::spawn(lease::hold(
            self.pool.clone(),
            self.leases.clone(),
            self.head.clone(),
            length,
        )));
        tasks.push(tokio::spawn(lease::report(
            kept::Kept::new(self.connect.clone(), self.timeout),
            self.leases.clone(),
        )));
    }

    /// The connection pool, for what else lives in the database (the login lockout).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Writes what an export holds into this database, which must be empty (no commit ever):
    /// the records, the log entries as they were, and the log position, in one transaction.
    pub async fn import(
        &self,
        changes: &[Change],
        log: &[Entry],
        sequence: Sequence,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        if head != 0 || users != 0 {
            anyhow::bail!("the database is not empty: import only into a new one");
        }
        rows::apply_all(&mut tx, changes).await?;
        for entry in log {
            let text = serde_json::to_string(entry)?;
            sqlx::query(
                "INSERT INTO change_log (sequence, at_ms, entry) VALUES ($1, $2, $3::json)",
            )
            .bind(signed(entry.sequence())?)
            .bind(entry.at_ms)
            .bind(&text)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        sqlx::query("UPDATE log_head SET sequence = $1")
            .bind(signed(sequence)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.raise_head(sequence);
        Ok(())
    }

    /// Reads the head row over a connection kept for this alone: one round trip, where a
    /// pooled connection would take three (see [`kept`]).
    async fn look_at_head(&self) -> Result<Sequence> {
        self.look_connection
            .again(|connection| {
                Box::pin(async move {
                    let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head")
                        .fetch_one(connection)
                        .await
                        .map_err(db_error)?;
                    sequence(head)
                })
            })
            .await
    }

    fn raise_head(&self, to: Sequence) {
        head::raise(&self.head, to);
    }

    async fn catch_up_now(&self, after: Sequence) -> Result<CatchUp> {
        self.gate_connection
            .again(|connection| Box::pin(catch_up_on(connection, after)))
            .await
    }
}

/// What was committed after `after`, read in one statement on `connection` (see
/// [`rows::CATCH_UP`]).
async fn catch_up_on(connection: &mut PgConnection, after: Sequence) -> Result<CatchUp> {
    let read = sqlx::query(rows::CATCH_UP)
        .bind(signed(after)?)
        .fetch_all(&mut *connection)
        .await
        .map_err(db_error)?;
    let mut head = None;
    let mut found = Vec::new();
    let mut current = rows::Current::default();
    for row in &read {
        match current.take(row)? {
            rows::Part::Head(at) => head = Some(sequence(at)?),
            rows::Part::Entry(at, text, touched) => found.push((at, text, touched)),
            rows::Part::Object => {}
        }
    }
    let Some(head) = head else {
        return Err(Error::Internal("the log's head row is missing".into()));
    };
    if head <= after {
        return Ok(CatchUp::Foreign(Vec::new()));
    }
    found.sort_unstable_by_key(|(at, _, _)| *at);
    let mut entries = Vec::with_capacity(found.len());
    let mut touched = BTreeSet::new();
    for (_, text, names) in found {
        let names: Vec<Touched> = rows::parse("log entry", &names)?;
        touched.extend(names);
        entries.push(parse_entry(&text)?);
    }
    let gap_free = entries
        .iter()
        .zip(after.0 + 1..)
        .all(|(e, expected)| e.sequence == expected);
    if !gap_free || entries.last().map(Entry::sequence) != Some(head) {
        // What changed in between is no longer in the log (pruned past retention).
        return Ok(CatchUp::Pruned);
    }
    let changes = rows::current(&touched, current)?;
    let last = entries.len() - 1;
    // The changes bring a state from `after` to the head in one go: they go with the last
    // entry, the others only carry their events.
    let mut changes = Some(changes);
    Ok(CatchUp::Foreign(
        entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Foreign {
                entry,
                changes: if i == last {
                    changes.take().unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect(),
    ))
}

/// A commit is acknowledged once on disk: never let a server default of `off` acknowledge it
/// earlier. Run on every connection made.
async fn durable_commits(conn: &mut PgConnection) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'on', false) \
         WHERE current_setting('synchronous_commit') = 'off'",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Begins a transaction that reads one snapshot: what it reads is at one log position.
const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// Reads the log head in a transaction begun with [`SNAPSHOT`].
async fn snapshot_head(conn: &mut PgConnection) -> Result<Sequence> {
    let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
    sequence(head)
}

async fn read_head(pool: &PgPool) -> Result<Sequence> {
    let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head")
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
    sequence(head)
}

impl PgStore {
    fn stop_lease_tasks(&self) {
        let tasks =
            std::mem::take(&mut *self.lease_tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.follower.abort();
        self.stop_lease_tasks();
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn load(&self) -> Result<(State, Sequence)> {
        let mut tx = self.pool.begin_with(SNAPSHOT).await.map_err(db_error)?;
        let head = snapshot_head(&mut tx).await?;
        let mut state = State::default();
        for change in rows::everything(&mut tx).await? {
            state.apply(&change);
        }
        tx.commit().await.map_err(db_error)?;
        self.raise_head(head);
        Ok((state, head))
    }

    async fn commit(&self, expected: Sequence, commits: &[Commit]) -> Result<Committed> {
        let Some(last) = commits.last().map(|c| c.entry.sequence()) else {
            return Ok(Committed::At(expected));
        };
        let numbered = commits
            .iter()
            .zip(expected.0 + 1..)
            .all(|(c, at)| c.entry.sequence == at);
        if !numbered {
            return Ok(Committed::Conflict);
        }
        let mut sequences = Vec::with_capacity(commits.len());
        let mut made_ms = Vec::with_capacity(commits.len());
        let mut texts = Vec::with_capacity(commits.len());
        let mut touched = Vec::with_capacity(commits.len());
        for commit in commits {
            sequences.push(signed(commit.entry.sequence())?);
            made_ms.push(commit.entry.at_ms);
            texts.push(
                serde_json::to_string(&commit.entry).map_err(|e| Error::Internal(e.to_string()))?,
            );
            let names: BTreeSet<Touched> = commit.changes.iter().map(Touched::of).collect();
            touched.push(serde_json::to_value(&names).map_err(|e| Error::Internal(e.to_string()))?);
        }
        // Every commit waits for the previous one at the head row, so its round trips are
        // what bounds the writes of all gateways: the whole commit is one statement, its own
        // transaction. Moving the head locks its row (and re-reads it once a commit ahead has
        // ended); every other term joins the moved head, so a head that moved since the
        // decision writes nothing. The notification leaves at commit.
        let mut statement = QueryBuilder::new("WITH head AS (UPDATE log_head SET sequence = ");
        statement.push_bind(signed(last)?);
        statement.push(" WHERE sequence = ");
        statement.push_bind(signed(expected)?);
        statement.push(
            " RETURNING sequence), \
             entry AS (INSERT INTO change_log (sequence, at_ms, entry, touched) \
               SELECT e.sequence, e.at_ms, e.entry::json, e.touched FROM head, unnest(",
        );
        statement.push_bind(sequences);
        statement.push("::bigint[], ");
        statement.push_bind(made_ms);
        statement.push("::bigint[], ");
        statement.push_bind(texts);
        statement.push("::text[], ");
        statement.push_bind(touched);
        statement.push("::jsonb[]) AS e(sequence, at_ms, entry, touched))");
        rows::Writes::of(commits.iter().flat_map(|c| &c.changes))?.push_terms(&mut statement);
        statement.push(" SELECT count(*) FROM (SELECT pg_notify(");
        statement.push_bind(CHANNEL);
        statement.push(", sequence::text) FROM head) notified");
        // An error leaves the outcome unknown to this gateway: nothing is acknowledged, and if
        // the commit did happen the head's follower brings it in like another's.
        let moved: i64 = self
            .gate_connection
            .with(|connection| {
                Box::pin(async move {
                    statement
                        .build_query_scalar()
                        .fetch_one(connection)
                        .await
                        .map_err(db_error)
                })
            })
            .await?;
        if moved != 1 {
            // Another gateway committed first. The head moves our watch too, in case its
            // notification is still on its way.
            self.raise_head(read_head(&self.pool).await?);
            return Ok(Committed::Conflict);
        }
        // The head moves in `durable`, once the service holds the new state (or with the
        // notification): moved here, the log's follower would race the service to catch up
        // with a commit of its own.
        self.committed.fetch_max(last.0, Ordering::SeqCst);
        Ok(Committed::At(last))
    }

    async fn durable(&self, sequence: Sequence) -> Result<()> {
        // A commit is durable when its transaction has committed, and it commits only after
        // every earlier one did (the head row's lock): a sequence this gateway knows of is
        // durable. One it does not know is checked against the database.
        if sequence.0 <= self.committed.load(Ordering::SeqCst) {
            self.raise_head(sequence);
            // Acknowledged only once the gateways answering from memory hold it too.
            return self.leases.seen_by_peers(sequence, &self.committed).await;
        }
        if sequence <= *self.head.borrow() {
            return Ok(());
        }
        let head = read_head(&self.pool).await?;
        self.raise_head(head);
        if sequence <= head {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "log position {sequence} is past the database's head {head}"
            )))
        }
    }

    fn durable_head(&self) -> watch::Receiver<Sequence> {
        self.head.subscribe()
    }

    async fn entries(&self, range: LogRange) -> Result<Vec<Entry>> {
        let before = match range.before {
            Some(b) => signed(b)?,
            None => i64::MAX,
        };
        let sql = if range.newest_first {
            "SELECT entry::text FROM change_log WHERE sequence > $1 AND sequence < $2 \
             ORDER BY sequence DESC LIMIT $3"
        } else {
            "SELECT entry::text FROM change_log WHERE sequence > $1 AND sequence < $2 \
             ORDER BY sequence LIMIT $3"
        };
        let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
        let texts: Vec<String> = sqlx::query_scalar(sql)
            .bind(signed(range.after)?)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        texts.iter().map(|t| parse_entry(t)).collect()
    }

    async fn first_retained(&self) -> Result<Sequence> {
        let row = sqlx::query(
            "SELECT (SELECT min(sequence) FROM change_log), (SELECT sequence FROM log_head)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        let oldest: Option<i64> = row.get(0);
        match oldest {
            Some(s) => sequence(s),
            None => Ok(sequence(row.get(1))?.next()),
        }
    }

    async fn prune(&self, before_ms: i64, max: usize) -> Result<usize> {
        // The oldest entries, up to the first one made at or after `before_ms`.
        let removed = sqlx::query(
            "DELETE FROM change_log WHERE sequence IN ( \
               SELECT sequence FROM change_log \
               WHERE sequence < COALESCE( \
                 (SELECT min(sequence) FROM change_log WHERE at_ms >= $1), \
                 9223372036854775807) \
               ORDER BY sequence LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(usize::try_from(removed.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn catch_up(&self, after: Sequence) -> Result<CatchUp> {
        self.catch_up_now(after).await
    }

    async fn newest(&self) -> Result<Option<Sequence>> {
        if self.leases.holds() {
            // Every commit acknowledged anywhere has waited for this gateway to install it.
            return Ok(None);
        }
        let head = self.look.newest(|| self.look_at_head()).await?;
        self.raise_head(head);
        Ok(Some(head))
    }

    async fn check_writable(&self) -> Result<()> {
        // A standby (or a database set read-only) refuses writes.
        let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        if read_only == "on" {
            return Err(Error::Unavailable(
                "the database takes no writes (read-only)".into(),
            ));
        }
        Ok(())
    }

    fn failure(&self) -> watch::Receiver<Option<String>> {
        self.failure.subscribe()
    }

    fn installed(&self, at: Sequence, foreign: bool) {
        self.leases.installed(at, foreign);
    }

    async fn release(&self) -> Result<()> {
        self.stop_lease_tasks();
        self.leases.release(&self.pool).await
    }
}
