//! A connection kept for one kind of query that runs one at a time (the commits and catch-ups
//! under the write gate, the shared looks at the head, the checks of the others' positions,
//! the reports of this gateway's).
//!
//! sqlx's pool checks a connection with a round trip before lending it and again once it is
//! back, so a query through the pool costs the database three round trips; these queries run
//! thousands of times a second under load. A kept connection is checked only after it has
//! been idle a while; one that failed (or could not be made in time) is dropped, and the next
//! use makes a new one, so that a database that went away and came back is reached again.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::db_error;
use crate::error::{Error, Result};

/// A connection idle this long is checked with a round trip before it is used again.
const CHECKED_AFTER_IDLE: Duration = Duration::from_secs(1);

pub(super) struct Kept {
    /// The connection and when it was last used.
    connection: tokio::sync::Mutex<Option<(PgConnection, Instant)>>,
    connect: PgConnectOptions,
    /// How long each use may take, making the connection included: past it the use fails
    /// (503, as when the pool has no connection to lend) and the connection is dropped. A
    /// commit cut off this way may still have committed: the log's follower brings it in.
    timeout: Duration,
}

impl Kept {
    pub(super) fn new(connect: PgConnectOptions, timeout: Duration) -> Kept {
        Kept {
            connection: tokio::sync::Mutex::new(None),
            connect,
            timeout,
        }
    }

    /// Runs `work` on the connection, made first if there is none; a failure drops it.
    pub(super) async fn with<T, F>(&self, work: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>>,
    {
        let mut kept = self.connection.lock().await;
        match tokio::time::timeout(self.timeout, self.once(&mut kept, work)).await {
            Ok((done, _)) => done,
            Err(_) => {
                *kept = None;
                Err(self.too_slow())
            }
        }
    }

    /// Runs `work`, which may run twice (it reads, or it writes what it would write again),
    /// as [`Kept::with`] does; when it fails on a connection made before, it runs once more on
    /// a new one: a connection the database dropped (a restart) fails only once used.
    pub(super) async fn again<T, F>(&self, work: F) -> Result<T>
    where
        F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T>>,
    {
        let mut kept = self.connection.lock().await;
        let twice = async {
            match self.once(&mut kept, &work).await {
                (Err(_), false) => self.once(&mut kept, &work).await.0,
                (done, _) => done,
            }
        };
        match tokio::time::timeout(self.timeout, twice).await {
            Ok(done) => done,
            Err(_) => {
                *kept = None;
                Err(self.too_slow())
            }
        }
    }

    /// One use; answers too whether the connection was made for it.
    async fn once<T, F>(
        &self,
        kept: &mut Option<(PgConnection, Instant)>,
        work: F,
    ) -> (Result<T>, bool)
    where
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>>,
    {
        if let Some((connection, used)) = kept.as_mut()
            && used.elapsed() >= CHECKED_AFTER_IDLE
        {
            // Made before the database last restarted, maybe: checked as the pool would.
            if connection.ping().await.is_err() {
                *kept = None;
            }
        }
        let made = kept.is_none();
        let connection = match kept.as_mut() {
            Some((connection, used)) => {
                *used = Instant::now();
                connection
            }
            None => match self.open().await {
                Ok(connection) => &mut kept.insert((connection, Instant::now())).0,
                Err(e) => return (Err(e), true),
            },
        };
        let done = work(connection).await;
        if done.is_err() {
            // Possibly broken, or in the middle of a transaction: a new one is made next time.
            *kept = None;
        }
        (done, made)
    }

    fn too_slow(&self) -> Error {
        Error::Unavailable(format!(
            "the database did not answer within {} ms",
            self.timeout.as_millis()
        ))
    }

    async fn open(&self) -> Result<PgConnection> {
        let mut connection = PgConnection::connect_with(&self.connect)
            .await
            .map_err(db_error)?;
        super::durable_commits(&mut connection)
            .await
            .map_err(db_error)?;
        Ok(connection)
    }
}
