//! The accept loop: hyper with a header read timeout, idle connections closed (see
//! [`super::connection`]), a cap on open connections, WebSocket upgrades, and a graceful stop
//! that lets requests in flight finish within a grace period.
//!
//! Hyper's graceful shutdown does not reach upgraded connections: once a WebSocket is handed
//! over, hyper forgets it, and dropping it at exit would end it without a close frame. Those
//! connections are followed by a [`Draining`] instead: on stop each is told to close itself
//! (1001 "going away"), and the stop waits for them within the same grace period.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::{Builder, UpgradeableConnection};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};

use super::connection::{Activity, Slot, Tracked, Watched};

pub struct ServeOptions {
    /// Longest a client may take to send its first bytes, and then a request's headers.
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// How long a connection that refused a request with an unread body keeps reading it.
    pub linger_timeout: Duration,
    /// Most connections open at once; past it see [`serve`].
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// The long-lived connections (WebSockets) of this listener's application.
    pub draining: Draining,
}

/// Connections beyond `--max-connections` taken in anyway to answer them: `/healthz`, or 503
/// and close. A newcomer past these ends the oldest of them, so that clients which open
/// connections and send nothing cannot keep a liveness probe out.
pub const AT_CAPACITY_RESERVE: usize = 32;

/// The connections answered past the cap, oldest first. Those ended but not yet closed are
/// bounded too (twice the reserve): past that a newcomer is closed at once.
struct Reserve {
    slots: Arc<Semaphore>,
    open: VecDeque<CancellationToken>,
}

impl Reserve {
    fn new() -> Reserve {
        Reserve {
            slots: Arc::new(Semaphore::new(2 * AT_CAPACITY_RESERVE)),
            open: VecDeque::new(),
        }
    }

    /// A slot for one more connection and the token that ends it, making room by ending the
    /// oldest one when the reserve is full.
    ///
    /// A connection ended here gives its slot back only once its task runs, and the accept
    /// loop keeps its worker busy while a backlog of newcomers is ready: so a newcomer waits
    /// up to [`RESERVE_CLOSING`] for a slot instead of being closed for want of a yield.
    async fn admit(&mut self) -> Option<(OwnedSemaphorePermit, CancellationToken)> {
        self.open.retain(|c| !c.is_cancelled());
        if self.open.len() >= AT_CAPACITY_RESERVE
            && let Some(oldest) = self.open.pop_front()
        {
            oldest.cancel();
        }
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(RESERVE_CLOSING, self.slots.clone().acquire_owned())
                .await
                .ok()?
                .ok()?,
        };
        let end = CancellationToken::new();
        self.open.push_back(end.clone());
        Some((permit, end))
    }
}

/// How long a connection past the cap waits for a reserve slot that an ended connection is
/// about to give back; past it, the newcomer is closed.
const RESERVE_CLOSING: Duration = Duration::from_millis(250);

/// Files the process keeps open beside its connections (the store's, the log, listeners).
const OTHER_FILES: u64 = 96;

/// The default of `--max-connections`: what the open-file limit leaves after the store's
/// files and the over-capacity reserve, at most 4096.
pub fn default_max_connections() -> usize {
    let files = open_file_limit().unwrap_or(1024);
    let left = files.saturating_sub(OTHER_FILES + 2 * AT_CAPACITY_RESERVE as u64);
    usize::try_from(left.clamp(1, 4096)).unwrap_or(4096)
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// At most one log line a second for an event that can repeat many times a second (a
/// failing `accept`, a full house), counting the ones left out.
#[derive(Debug, Default)]
pub struct LogThrottle {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// `Some(left out since the last line)` when a line may be written now.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < Duration::from_secs(1) => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Long-lived connections that outlive hyper's view of them (upgraded WebSockets): each holds
/// a [`Draining::track`] token while it runs and ends itself once [`Draining::stopping`]
/// resolves; [`serve`] begins the drain on stop and waits for them.
#[derive(Debug, Clone, Default)]
pub struct Draining {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Draining {
    /// Counts a connection as running until the token is dropped.
    pub fn track(&self) -> TaskTrackerToken {
        self.tracker.token()
    }

    /// Resolves once the server is stopping (at once if it already is).
    pub async fn stopping(&self) {
        self.stop.cancelled().await
    }

    /// Tells every connection to end; no new one is expected.
    pub fn begin(&self) {
        self.stop.cancel();
        self.tracker.close();
    }

    /// Resolves when every tracked connection has ended, after [`Draining::begin`].
    pub async fn finished(&self) {
        self.tracker.wait().await
    }
}

/// Accepts connections until `shutdown` resolves, then lets requests in flight and
/// WebSockets finish within the grace period.
///
/// Each connection holds a slot under `max_connections`; past it, up to
/// [`AT_CAPACITY_RESERVE`] more are answered by [`super::refusals::at_capacity_app`] (so
/// `/healthz` still answers) with one request each.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let mut at_capacity = Builder::new(TokioExecutor::new());
    at_capacity
        .http1()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let at_capacity_app = super::refusals::at_capacity_app();
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut reserve = Reserve::new();
    let limits = Limits {
        first_bytes: options.header_read_timeout,
        idle: options.idle_timeout,
        linger: options.linger_timeout,
    };
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut accept_errors = LogThrottle::default();
    let mut refusals = LogThrottle::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        super::metrics::accept_error();
                        if let Some(suppressed) = accept_errors.admit(Instant::now()) {
                            tracing::warn!(error = %e, suppressed, "accept failed");
                        }
                        // Out of file descriptors and the like: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if let Ok(permit) = slots.clone().try_acquire_owned() {
                    let connection = open(&builder, stream, Slot::new(permit), &app, &limits);
                    connections.spawn(connection.run(limits, stop.clone()));
                    continue;
                }
                super::metrics::connection_refused();
                if let Some(suppressed) = refusals.admit(Instant::now()) {
                    tracing::warn!(
                        max_connections = options.max_connections,
                        suppressed,
                        "connection limit reached: new connections get 503"
                    );
                }
                // Without a reserve slot the stream is dropped here: closed at once.
                if let Some((permit, end)) = reserve.admit().await {
                    let connection =
                        open(&at_capacity, stream, Slot::new(permit), &at_capacity_app, &limits);
                    let life = limits.first_bytes;
                    let stop = stop.clone();
                    connections.spawn(async move {
                        let _ended = end.clone().drop_guard();
                        tokio::select! {
                            _ = tokio::time::timeout(life, connection.run(limits, stop)) => {}
                            _ = end.cancelled() => {}
                        }
                    });
                }
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    stop.cancel();
    connections.close();
    options.draining.begin();
    let finished = async {
        tokio::join!(connections.wait(), options.draining.finished());
    };
    if tokio::time::timeout(options.shutdown_grace, finished)
        .await
        .is_err()
    {
        tracing::warn!("requests or WebSockets still open after the grace period were cut");
    }
}

/// How long a connection closed for idleness may take to say goodbye.
const GOODBYE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Limits {
    first_bytes: Duration,
    idle: Duration,
    linger: Duration,
}

type Connection =
    UpgradeableConnection<'static, TokioIo<Watched>, TowerToHyperService<Tracked>, TokioExecutor>;

struct Open {
    connection: Connection,
    activity: Arc<Activity>,
}

fn open(
    builder: &Builder<TokioExecutor>,
    stream: TcpStream,
    slot: Slot,
    app: &Router,
    limits: &Limits,
) -> Open {
    let activity = Arc::new(Activity::default());
    let io = Watched::new(stream, activity.clone(), slot, limits.linger);
    let service = TowerToHyperService::new(Tracked::new(app.clone(), activity.clone()));
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    Open {
        connection,
        activity,
    }
}

impl Open {
    /// Serves the connection until it ends, is idle past its limit, or the server stops; the
    /// last two end it gracefully (HTTP/2 gets a GOAWAY, requests in flight finish).
    async fn run(self, limits: Limits, stop: CancellationToken) {
        let Open {
            connection,
            activity,
        } = self;
        tokio::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => Some(ended),
            _ = activity.idle(limits.first_bytes, limits.idle) => None,
            _ = stop.cancelled() => None,
        };
        let ended = if let Some(ended) = ended {
            ended
        } else {
            connection.as_mut().graceful_shutdown();
            // Requests in flight finish (a stop bounds them by its grace period); past them the
            // goodbye is bounded, as HTTP/2 waits for the client to acknowledge its GOAWAY,
            // which a silent client never does.
            tokio::select! {
                ended = connection.as_mut() => ended,
                _ = activity.quiet_for(GOODBYE) => return,
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_log_line_is_written_at_most_once_a_second_and_counts_the_rest() {
        let mut throttle = LogThrottle::default();
        let start = Instant::now();
        assert_eq!(throttle.admit(start), Some(0));
        for i in 1..=20 {
            assert_eq!(throttle.admit(start + Duration::from_millis(i * 45)), None);
        }
        assert_eq!(
            throttle.admit(start + Duration::from_millis(1000)),
            Some(20)
        );
        assert_eq!(throttle.admit(start + Duration::from_millis(1500)), None);
        assert_eq!(throttle.admit(start + Duration::from_millis(2500)), Some(1));
    }

    #[tokio::test]
    async fn a_full_reserve_ends_its_oldest_connection_for_a_newcomer() {
        let mut reserve = Reserve::new();
        let mut admitted = Vec::new();
        for _ in 0..AT_CAPACITY_RESERVE {
            admitted.push(reserve.admit().await.expect("room"));
        }
        assert!(admitted.iter().all(|(_, end)| !end.is_cancelled()));
        let newcomer = reserve.admit().await.expect("room made");
        assert!(admitted[0].1.is_cancelled());
        assert!(admitted[1..].iter().all(|(_, end)| !end.is_cancelled()));
        // Ended connections whose sockets are not closed yet still count, up to a bound.
        let mut more = vec![newcomer];
        while let Some(admitted) = reserve.admit().await {
            more.push(admitted);
            assert!(more.len() <= 2 * AT_CAPACITY_RESERVE, "unbounded");
        }
        drop(admitted);
        assert!(
            reserve.admit().await.is_some(),
            "closed sockets free their slots"
        );
    }

    #[tokio::test]
    async fn a_newcomer_waits_for_the_slot_an_ended_connection_is_giving_back() {
        let mut reserve = Reserve::new();
        let mut admitted = Vec::new();
        while let Some(one) = reserve.admit().await {
            admitted.push(one);
        }
        // The oldest ended connection's task runs only after the newcomer has asked.
        let (oldest, _) = admitted.remove(0);
        let closing = tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(oldest);
        });
        assert!(
            reserve.admit().await.is_some(),
            "refused while a slot was coming back"
        );
        closing.await.unwrap();
    }

    #[test]
    fn the_default_connection_cap_stays_under_the_open_file_limit() {
        let max = default_max_connections();
        assert!((1..=4096).contains(&max), "{max}");
        let kept = OTHER_FILES + 2 * AT_CAPACITY_RESERVE as u64;
        if let Some(files) = open_file_limit().filter(|f| *f > kept) {
            assert!(
                max as u64 + kept <= files,
                "{max} connections for {files} files"
            );
        }
    }
}
