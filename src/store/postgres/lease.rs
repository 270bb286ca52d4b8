//! Read leases: how a gateway answers reads from memory and still shows every change any
//! gateway acknowledged before the request arrived.
//!
//! Without a lease, each API request first looks at the log's head (see [`super::look`]). A
//! gateway that holds a lease skips that look. The two sides of the rule:
//! - **the holder** keeps a row in `read_leases` with the time its lease ends (the database's
//!   clock) and the last position it has installed, reported after each catch-up. It trusts its
//!   memory only until the renewal's send time plus [`TRUSTED_PART`] of the lease, by its own
//!   clock, so that it stops before the database takes the lease for ended. A lease taken
//!   anew (first, or after it lapsed) is trusted only once the gateway has caught up with a
//!   look at the head made after the lease row was committed: a commit that did not wait for
//!   this gateway was committed before that look.
//! - **a committing gateway** acknowledges its commit only once every other gateway whose
//!   lease has not ended has reported a position at or past it (see [`Leases::seen_by_peers`]).
//!   A holder that dies is waited for until its lease ends, at most.
//!
//! A holder stops renewing when it has not installed the head it saw at its previous renewal
//! (its follower is stuck or cut off): its lease then lapses and the others stop waiting for
//! it. What a gateway reads before a change is acknowledged (its own commit on its way, or
//! another's it has caught up with) may show there a moment before it shows elsewhere, as on
//! one gateway a change shows before it is on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;
use tokio::sync::{Notify, watch};

use super::kept::Kept;
use super::{db_error, head, read_head, sequence, signed};
use crate::error::Result;
use crate::store::Sequence;

/// The channel a holder notifies when it reports a position.
pub(super) const SEEN_CHANNEL: &str = "callrec_seen";
/// The part of a lease its holder trusts, by its own clock: the rest covers the holder's clock
/// running slower than the database's.
const TRUSTED_PART: f64 = 0.9;
/// Rows of leases that ended this long ago are removed by the next renewal of any gateway.
const FORGOTTEN_AFTER_S: i64 = 3600;

/// This gateway's lease, and what it knows of the others'.
pub(super) struct Leases {
    /// This gateway's row in `read_leases`.
    id: String,
    /// The origin of the instants below, kept as nanoseconds since it.
    origin: Instant,
    /// Until when this gateway trusts its memory (nanoseconds since `origin`; 0: not at all).
    trusted_until: AtomicU64,
    /// The position this gateway must have installed before its memory is trusted.
    trusted_from: AtomicU64,
    /// The last position the service installed.
    installed: AtomicU64,
    /// Set once the lease is given up, for good.
    given_up: AtomicBool,
    /// The last position every other gateway holding a lease was known to have installed.
    cleared: AtomicU64,
    /// Wakes the reporter after a catch-up.
    report: Notify,
    /// The last position each other gateway reported, from the notifications.
    reports: Mutex<HashMap<String, i64>>,
    /// Counts the reports received, and the reconnections of the listener (which may have
    /// missed some).
    woken: watch::Sender<(u64, u64)>,
    /// The last check of the others' leases, shared by the commits it covers; held while a
    /// check is made.
    check: tokio::sync::Mutex<Check>,
    /// The connection those checks go over.
    check_connection: Kept,
}

impl Leases {
    pub(super) fn new(check_connection: Kept) -> Leases {
        Leases {
            id: uuid::Uuid::new_v4().to_string(),
            origin: Instant::now(),
            trusted_until: AtomicU64::new(0),
            trusted_from: AtomicU64::new(u64::MAX),
            installed: AtomicU64::new(0),
            given_up: AtomicBool::new(false),
            cleared: AtomicU64::new(0),
            report: Notify::new(),
            reports: Mutex::new(HashMap::new()),
            woken: watch::Sender::new((0, 0)),
            check: tokio::sync::Mutex::new(Check::default()),
            check_connection,
        }
    }

    /// Gives the lease up: from now on this gateway looks at the head, and the others no
    /// longer wait for it.
    pub(super) async fn release(&self, pool: &PgPool) -> Result<()> {
        self.given_up.store(true, Ordering::SeqCst);
        sqlx::query("DELETE FROM read_leases WHERE gateway = $1")
            .bind(&self.id)
            .execute(pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a request may be answered from memory: the lease holds, and the state has
    /// reached the position it was taken at.
    pub(super) fn holds(&self) -> bool {
        self.now() < self.trusted_until.load(Ordering::SeqCst)
            && !self.given_up.load(Ordering::SeqCst)
            && self.installed.load(Ordering::SeqCst) >= self.trusted_from.load(Ordering::SeqCst)
    }

    /// The service installed the state at `at`; after a catch-up (`foreign`), the others are
    /// told.
    pub(super) fn installed(&self, at: Sequence, foreign: bool) {
        self.installed.fetch_max(at.0, Ordering::SeqCst);
        if foreign {
            self.report.notify_one();
        }
    }

    /// Waits until every other gateway holding a lease has installed `at`, or its lease has
    /// ended; `committed` is the last position this gateway committed.
    pub(super) async fn seen_by_peers(&self, at: Sequence, committed: &AtomicU64) -> Result<()> {
        if at.0 <= self.cleared.load(Ordering::SeqCst) {
            // A later position was: a lease taken since is trusted only past it.
            return Ok(());
        }
        let at = signed(at)?;
        let mut after = 0;
        loop {
            let mut woken = self.woken.subscribe();
            let lost = woken.borrow_and_update().1;
            let check = self.check(at, after, committed).await?;
            after = check.number;
            let lagging: Vec<&Peer> = check.peers.iter().filter(|p| p.seen < at).collect();
            let Some(soonest) = lagging.iter().map(|p| p.ends_in_ms).min() else {
                return self.clear(at);
            };
            // The first of these leases may have been renewed when it was to end: checked
            // again then.
            let check_again = tokio::time::Instant::now()
                + Duration::from_millis(u64::try_from(soonest.max(1)).unwrap_or(u64::MAX));
            loop {
                if self.all_reported(&lagging, at) {
                    return self.clear(at);
                }
                tokio::select! {
                    changed = woken.changed() => {
                        // Reports may have been missed while the listener reconnected.
                        if changed.is_err() || woken.borrow_and_update().1 != lost {
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(check_again) => break,
                }
            }
        }
    }

    /// Every gateway holding a lease has `at`: so has every one that takes a lease later.
    fn clear(&self, at: i64) -> Result<()> {
        self.cleared
            .fetch_max(u64::try_from(at).unwrap_or(0), Ordering::SeqCst);
        Ok(())
    }

    /// A check of the others' leases started after `at` was committed and after check number
    /// `after`: the last one made when it qualifies, else a new one. A lease taken after such
    /// a check started was taken after the commit, and is trusted only once its holder has
    /// caught up with it.
    async fn check(&self, at: i64, after: u64, committed: &AtomicU64) -> Result<Check> {
        let mut last = self.check.lock().await;
        if last.number > after && last.covers >= at {
            return Ok(last.clone());
        }
        let covers = i64::try_from(committed.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
        let peers = self.check_peers().await?;
        *last = Check {
            number: last.number + 1,
            covers,
            peers,
        };
        Ok(last.clone())
    }

    /// Whether each of `peers` has reported `at` or a later position since it was checked.
    fn all_reported(&self, peers: &[&Peer], at: i64) -> bool {
        let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .iter()
            .all(|p| reports.get(&p.gateway).is_some_and(|&seen| seen >= at))
    }

    /// The other gateways whose leases have not ended. The reports of the others are
    /// forgotten, so that they are kept for live gateways only.
    async fn check_peers(&self) -> Result<Arc<Vec<Peer>>> {
        let id = self.id.clone();
        let peers: Arc<Vec<Peer>> = self
            .check_connection
            .again(|connection| {
                let id = id.clone();
                Box::pin(async move {
                    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                        "SELECT gateway, seen, \
                           ceil(extract(epoch FROM until - now()) * 1000)::bigint \
                         FROM read_leases WHERE gateway <> $1 AND until > now()",
                    )
                    .bind(id)
                    .fetch_all(connection)
                    .await
                    .map_err(db_error)?;
                    Ok(Arc::new(
                        rows.into_iter()
                            .map(|(gateway, seen, ends_in_ms)| Peer {
                                gateway,
                                seen,
                                ends_in_ms,
                            })
                            .collect(),
                    ))
                })
            })
            .await?;
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|gateway, _| peers.iter().any(|p| &p.gateway == gateway));
        Ok(peers)
    }

    /// Another gateway reported (a notification's payload: its id and position).
    pub(super) fn reported(&self, payload: &str) {
        let Some((gateway, seen)) = payload.split_once(' ') else {
            return;
        };
        let Ok(seen) = seen.parse::<i64>() else {
            return;
        };
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        let known = reports.entry(gateway.to_owned()).or_insert(seen);
        *known = (*known).max(seen);
        drop(reports);
        self.woken.send_modify(|w| w.0 += 1);
    }

    /// Reports may have been missed (the listener reconnected): the waiting commits check
    /// again.
    pub(super) fn reports_lost(&self) {
        self.woken.send_modify(|w| w.1 += 1);
    }
}

/// The others' leases, as a check saw them.
#[derive(Debug, Clone, Default)]
struct Check {
    /// Its place among the checks made.
    number: u64,
    /// The last position this gateway had committed when the check started.
    covers: i64,
    peers: Arc<Vec<Peer>>,
}

/// Another gateway's lease, as a check saw it.
#[derive(Debug, Clone)]
struct Peer {
    gateway: String,
    seen: i64,
    ends_in_ms: i64,
}

/// Keeps this gateway's lease for as long as the store lives: renews it every quarter of its
/// length, and lets it lapse while the gateway lags behind the head.
pub(super) async fn hold(
    pool: PgPool,
    leases: Arc<Leases>,
    head: watch::Sender<Sequence>,
    length: Duration,
) {
    let mut ticks = tokio::time::interval(length / 4);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The head seen at the previous renewal: not installed by the next one means lagging.
    let mut seen_head = 0;
    loop {
        ticks.tick().await;
        let installed = leases.installed.load(Ordering::SeqCst);
        if installed < seen_head {
            // Still behind what the last renewal saw: no renewal until caught up.
            tracing::debug!(
                installed,
                head = seen_head,
                "behind the head: lease left to lapse"
            );
            continue;
        }
        match renew(&pool, &leases, &head, length, installed).await {
            Ok(at) => seen_head = at.0,
            Err(e) => tracing::debug!(error = %e, "read lease not renewed"),
        }
    }
}

/// One renewal: the row, then (for a lease taken anew) the look that makes memory trusted.
/// Answers the head the renewal saw.
async fn renew(
    pool: &PgPool,
    leases: &Leases,
    head: &watch::Sender<Sequence>,
    length: Duration,
    installed: u64,
) -> Result<Sequence> {
    let sent = leases.now();
    let length_ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
    let at: i64 = sqlx::query_scalar(
        "WITH renewed AS ( \
           INSERT INTO read_leases (gateway, seen, until) \
           VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
           ON CONFLICT (gateway) DO UPDATE \
             SET seen = greatest(read_leases.seen, excluded.seen), until = excluded.until), \
         forgotten AS ( \
           DELETE FROM read_leases WHERE until < now() - $4 * interval '1 second') \
         SELECT sequence FROM log_head",
    )
    .bind(&leases.id)
    .bind(i64::try_from(installed).unwrap_or(i64::MAX))
    .bind(length_ms)
    .bind(FORGOTTEN_AFTER_S)
    .fetch_one(pool)
    .await
    .map_err(db_error)?;
    let at = sequence(at)?;
    head::raise(head, at);
    let until = sent.saturating_add((length.as_nanos() as f64 * TRUSTED_PART) as u64);
    if leases.now() >= leases.trusted_until.load(Ordering::SeqCst) {
        // Taken anew: commits made while no lease was on record did not wait for this gateway.
        // They were all committed before a look made now, after the row is.
        let looked = read_head(pool).await?;
        head::raise(head, looked);
        leases.trusted_from.store(looked.0, Ordering::SeqCst);
    }
    leases.trusted_until.fetch_max(until, Ordering::SeqCst);
    Ok(at)
}

/// Reports the position installed after each catch-up, so that the commits waiting for this
/// gateway are acknowledged. The report does not wait for the disk (`synchronous_commit` off
/// for its transaction alone): what it tells is what this process holds in memory, and a
/// report lost in a crash of the database only makes commits wait for the next one.
pub(super) async fn report(connection: Kept, leases: Arc<Leases>) {
    let mut reported = 0;
    loop {
        leases.report.notified().await;
        let installed = leases.installed.load(Ordering::SeqCst);
        if installed <= reported {
            continue;
        }
        let sent = connection
            .again(|connection| {
                let id = leases.id.clone();
                Box::pin(async move {
                    sqlx::query(
                        "WITH reported AS ( \
                           UPDATE read_leases SET seen = $2 \
                           WHERE gateway = $1 AND seen < $2 RETURNING 1) \
                         SELECT pg_notify($3, $1 || ' ' || $2), \
                           set_config('synchronous_commit', 'off', true) FROM reported",
                    )
                    .bind(id)
                    .bind(i64::try_from(installed).unwrap_or(i64::MAX))
                    .bind(SEEN_CHANNEL)
                    .execute(connection)
                    .await
                    .map_err(db_error)
                })
            })
            .await;
        match sent {
            Ok(_) => reported = installed,
            // The next renewal reports it too; until then, the commits waiting for it wait.
            Err(e) => tracing::debug!(error = %e, "position not reported"),
        }
    }
}
