//! The accept loop: hyper with a header read timeout, WebSocket upgrades, and a graceful stop
//! that lets requests in flight finish within a grace period.
//!
//! Hyper's graceful shutdown does not reach upgraded connections: once a WebSocket is handed
//! over, hyper forgets it, and dropping it at exit would end it without a close frame. Those
//! connections are followed by a [`Draining`] instead: on stop each is told to close itself
//! (1001 "going away"), and the stop waits for them within the same grace period.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};

pub struct ServeOptions {
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    /// The long-lived connections (WebSockets) of this listener's application.
    pub draining: Draining,
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
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    options.draining.begin();
    let finished = async {
        tokio::join!(graceful.shutdown(), options.draining.finished());
    };
    if tokio::time::timeout(options.shutdown_grace, finished)
        .await
        .is_err()
    {
        tracing::warn!("requests or WebSockets still open after the grace period were cut");
    }
}
