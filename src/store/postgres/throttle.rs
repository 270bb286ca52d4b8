//! The failed-login lockout counted in the database, so that every gateway on it counts the
//! same attempts: the rules of `auth::Throttle`, one row per username, updated under its row
//! lock. An attempt is counted when it starts; its end is recorded in the background (the
//! password check calls from its own thread), and until then it still counts, so a late
//! record can only refuse more, never less. Attempts whose gateway died before ending them
//! are forgotten with their window.

use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::db_error;
use crate::auth::{LoginThrottle, Outcome};
use crate::error::{Error, Result};
use crate::store::now_ms;

pub struct PgThrottle {
    pool: PgPool,
    max_failures: i32,
    lockout_ms: i64,
    runtime: tokio::runtime::Handle,
}

impl PgThrottle {
    /// Needs a runtime (ends are recorded on it).
    pub fn new(store: &super::PgStore, max_failures: u32, lockout: Duration) -> PgThrottle {
        PgThrottle {
            pool: store.pool().clone(),
            max_failures: i32::try_from(max_failures.max(1)).unwrap_or(i32::MAX),
            lockout_ms: i64::try_from(lockout.as_millis()).unwrap_or(i64::MAX),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Forgets a lock or window that has run out (and the attempts counted in it).
    const EXPIRE: &'static str = "UPDATE login_failures SET failures = 0, in_flight = 0, \
        window_start_ms = NULL, locked_until_ms = NULL \
        WHERE username = $1 AND (locked_until_ms <= $2 \
          OR (locked_until_ms IS NULL AND window_start_ms + $3 <= $2))";

    async fn begin_now(&self, username: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // One statement that always answers the row, locked: with an insert that does
        // nothing on a conflict and a select after it, the row could be deleted in between
        // (an attempt of the same user ending) and the select find nothing.
        let row = sqlx::query(
            "INSERT INTO login_failures (username, window_start_ms) VALUES ($1, $2) \
             ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username \
             RETURNING failures, in_flight, window_start_ms, locked_until_ms",
        )
        .bind(username)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let (mut failures, mut in_flight): (i32, i32) = (row.get(0), row.get(1));
        let (window_start, locked_until): (Option<i64>, Option<i64>) = (row.get(2), row.get(3));
        let lock_over = locked_until.is_some_and(|u| u <= now);
        let window_over = window_start.is_some_and(|s| s.saturating_add(self.lockout_ms) <= now);
        if lock_over || (locked_until.is_none() && window_over) {
            sqlx::query(Self::EXPIRE)
                .bind(username)
                .bind(now)
                .bind(self.lockout_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            (failures, in_flight) = (0, 0);
        } else if let Some(until) = locked_until {
            tx.commit().await.map_err(db_error)?;
            let seconds = ((until - now) as f64 / 1000.0).ceil().max(1.0) as u64;
            return Err(Error::TooManyAttempts {
                retry_after_seconds: seconds,
            });
        }
        if failures.saturating_add(in_flight) >= self.max_failures {
            tx.commit().await.map_err(db_error)?;
            // Checks in flight may still use up the attempts left: ask again once they end.
            return Err(Error::TooManyAttempts {
                retry_after_seconds: 1,
            });
        }
        sqlx::query(
            "UPDATE login_failures SET in_flight = in_flight + 1, \
             window_start_ms = COALESCE(window_start_ms, $2) WHERE username = $1",
        )
        .bind(username)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn end_now(&self, username: &str, outcome: Outcome) -> Result<()> {
        let now = now_ms();
        let failed = outcome == Outcome::Failed;
        sqlx::query(
            "UPDATE login_failures SET \
               in_flight = GREATEST(in_flight - 1, 0), \
               failures = failures + CASE WHEN $2 THEN 1 ELSE 0 END, \
               locked_until_ms = CASE \
                 WHEN $2 AND locked_until_ms IS NULL AND failures + 1 >= $3 THEN $4 + $5 \
                 ELSE locked_until_ms END \
             WHERE username = $1",
        )
        .bind(username)
        .bind(failed)
        .bind(self.max_failures)
        .bind(now)
        .bind(self.lockout_ms)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        // Rows left with nothing counted are not kept.
        sqlx::query(
            "DELETE FROM login_failures WHERE username = $1 AND failures = 0 AND in_flight = 0 \
             AND locked_until_ms IS NULL",
        )
        .bind(username)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl LoginThrottle for PgThrottle {
    async fn begin(&self, username: &str) -> Result<()> {
        self.begin_now(username).await
    }

    fn end(&self, username: &str, outcome: Outcome) {
        let this = PgThrottle {
            pool: self.pool.clone(),
            max_failures: self.max_failures,
            lockout_ms: self.lockout_ms,
            runtime: self.runtime.clone(),
        };
        let username = username.to_owned();
        self.runtime.spawn(async move {
            if let Err(e) = this.end_now(&username, outcome).await {
                // The attempt stays counted until its window ends.
                tracing::warn!(error = %e, "cannot record the end of a login attempt");
            }
        });
    }
}
