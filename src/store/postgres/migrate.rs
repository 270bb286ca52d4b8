//! The schema: versioned SQL files in `migrations/`, applied at start. sqlx's migrator holds a
//! PostgreSQL advisory lock while it applies them, so gateways starting together apply each
//! once, the others waiting; a database migrated by a newer release is refused before any
//! change.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The newest schema version this binary knows.
pub fn latest() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

pub(super) async fn run(options: &PgConnectOptions) -> anyhow::Result<()> {
    let mut conn: PgConnection = options
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
    let outcome = MIGRATOR.run(&mut conn).await;
    // Closing ends the session, and the advisory lock with it, whatever happened.
    let _ = conn.close().await;
    match outcome {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(version)) => anyhow::bail!(
            "the database's schema is at version {version}, newer than this release of \
             callrec-gateway knows (up to {}): upgrade callrec-gateway, or use another database",
            latest()
        ),
        Err(e) => Err(anyhow::anyhow!(
            "cannot bring the database's schema up to date: {e}"
        )),
    }
}
