//! Following the log's head across gateways: `LISTEN` wakes this gateway at each commit of any
//! gateway, and the head is read again after every (re)connection, so that a notification
//! sent while the connection was down is never missed.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use super::lease::{Leases, SEEN_CHANNEL};
use super::{CHANNEL, read_head};
use crate::store::Sequence;

/// Waits between attempts to reach a database that is down, at most.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Moves `head` forward to `to` (never back).
pub(super) fn raise(head: &watch::Sender<Sequence>, to: Sequence) {
    head.send_if_modified(|h| {
        let newer = to > *h;
        if newer {
            *h = to;
        }
        newer
    });
}

/// Feeds `head`, and hands the positions other gateways report to `leases`, for as long as
/// the store lives.
pub(super) async fn follow(pool: PgPool, head: watch::Sender<Sequence>, leases: Arc<Leases>) {
    let mut wait = Duration::from_millis(50);
    loop {
        match listen(&pool, &head, &leases).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "lost the database's log notifications; reconnecting")
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Listens until the connection fails for good (and cannot be made again at once).
async fn listen(
    pool: &PgPool,
    head: &watch::Sender<Sequence>,
    leases: &Leases,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, SEEN_CHANNEL]).await?;
    // Listening from here on: whatever was committed before is in the head row, and whatever
    // was reported in `read_leases`.
    catch_up(pool, head).await?;
    leases.reports_lost();
    loop {
        match listener.try_recv().await? {
            Some(notification) if notification.channel() == SEEN_CHANNEL => {
                leases.reported(notification.payload())
            }
            Some(notification) => match notification.payload().parse::<u64>() {
                Ok(at) => raise(head, Sequence(at)),
                Err(_) => catch_up(pool, head).await?,
            },
            // The connection was lost and made again (listening again): what was notified in
            // between is lost, the head row and the reports are not.
            None => {
                catch_up(pool, head).await?;
                leases.reports_lost();
            }
        }
    }
}

async fn catch_up(pool: &PgPool, head: &watch::Sender<Sequence>) -> Result<(), sqlx::Error> {
    match read_head(pool).await {
        Ok(at) => {
            raise(head, at);
            Ok(())
        }
        Err(e) => Err(sqlx::Error::Protocol(e.to_string())),
    }
}
