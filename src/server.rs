//! Starting and stopping the server: open the store, make sure an administrator exists, bind,
//! serve until told to stop, then make every acknowledged write durable.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::{LoginThrottle, PasswordChecks};
use crate::config::{DataArgs, LogFormat, ServeArgs, StoreLocation};
use crate::http::serve::{Draining, ServeOptions, default_max_connections, serve};
use crate::http::{self, HttpOptions};
use crate::probe::{ProbeOptions, Prober};
use crate::service::{Service, SessionSettings};
use crate::store::{PgOptions, PgStore, PgThrottle, SledStore, Store, StoreOptions};

/// The server stopped because its store could not write (a full disk, an I/O error): the
/// exit code is [`StoreFailed::EXIT_CODE`] so that a supervisor restarts it.
#[derive(Debug, thiserror::Error)]
#[error("the store failed and could not take writes: {0}")]
pub struct StoreFailed(pub String);

impl StoreFailed {
    /// EX_TEMPFAIL: try again later (the restart reopens the store once it can write).
    pub const EXIT_CODE: u8 = 75;
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    service: Arc<Service>,
    options: HttpOptions,
    serve_options: ServeOptions,
    /// How long the server goes on (reads only) after its store failed, before it stops.
    store_failure_exit: Duration,
    session_prune_interval: Duration,
    /// How long log entries are kept; `None` keeps them all.
    audit_retention: Option<Duration>,
    /// How to probe the platforms, when asked to.
    probe: Option<ProbeOptions>,
    /// The password of the `admin` user created in an empty store, when none was given.
    pub generated_admin_password: Option<String>,
}

/// What `serve` needs beyond the command line: the bootstrap password comes from the
/// environment only, never from a flag that `ps` would show.
pub struct Start {
    pub args: ServeArgs,
    pub admin_password: Option<String>,
}

/// An open store, of either kind.
pub enum OpenStore {
    Folder(Arc<SledStore>),
    Database(Arc<PgStore>),
}

impl OpenStore {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            OpenStore::Folder(s) => s.clone(),
            OpenStore::Database(s) => s.clone(),
        }
    }

    /// The failed-login counts shared by every gateway on the database; `None` keeps them in
    /// this process.
    pub fn shared_login_throttle(
        &self,
        max_failures: u32,
        lockout: Duration,
    ) -> Option<Arc<dyn LoginThrottle>> {
        match self {
            OpenStore::Folder(_) => None,
            OpenStore::Database(s) => Some(Arc::new(PgThrottle::new(s, max_failures, lockout))),
        }
    }
}

/// Opens the store the flags name: the data folder, or the database. `flush` off only for
/// benchmarks (it does nothing to a database, whose commits are always durable).
pub async fn open_store(data: &DataArgs, flush: bool) -> anyhow::Result<OpenStore> {
    match data.location()? {
        StoreLocation::Folder(path) => {
            let mut options = StoreOptions::new(path);
            options.cache_capacity = data.cache_mb.saturating_mul(1024 * 1024);
            options.flush = flush;
            let store = tokio::task::spawn_blocking(move || SledStore::open(options)).await??;
            Ok(OpenStore::Folder(Arc::new(store)))
        }
        StoreLocation::Database(url) => {
            let mut options = PgOptions::new(url);
            options.pool = data.database_pool;
            options.acquire_timeout = Duration::from_millis(data.database_timeout_ms);
            Ok(OpenStore::Database(Arc::new(
                PgStore::connect(options).await?,
            )))
        }
    }
}

impl Server {
    pub async fn start(start: Start) -> anyhow::Result<Server> {
        let args = start.args;
        let store = open_store(&args.data, !args.unsafe_skip_flush).await?;
        let settings = SessionSettings {
            access_ttl: Duration::from_secs(args.access_token_ttl),
            refresh_ttl: Duration::from_secs(args.refresh_token_ttl),
            max_failed_logins: args.max_failed_logins,
            lockout: Duration::from_secs(args.login_lockout),
            refresh_grace: Duration::from_secs(args.refresh_token_grace),
            max_sessions_per_user: args.max_sessions_per_user,
            max_password_checks: args
                .max_password_checks
                .unwrap_or_else(PasswordChecks::default_slots),
            password_check_wait: Duration::from_millis(args.password_check_wait_ms),
        };
        let throttle = store.shared_login_throttle(settings.max_failed_logins, settings.lockout);
        let mut service = Service::new(store.store(), settings).await?;
        if let OpenStore::Database(store) = &store {
            // Once the state is loaded: the lease is trusted only from its position on.
            store.hold_read_leases(Duration::from_millis(args.read_lease_ms));
        }
        if let Some(throttle) = throttle {
            service.set_login_throttle(throttle);
        }
        let service = Arc::new(service);
        let generated_admin_password = service
            .bootstrap_admin(start.admin_password)
            .await
            .context("cannot create the admin user")?;
        service.prune_sessions().await?;
        let listener = TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let metrics_listener = match &args.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for metrics"))?,
            ),
            None => None,
        };
        // One drain shared by the application, whose WebSockets it follows, and the listener,
        // which closes and awaits them on stop.
        let draining = Draining::default();
        Ok(Server {
            listener,
            options: HttpOptions {
                body_limit: args.body_limit,
                request_timeout: Duration::from_secs(args.request_timeout),
                cors_origins: args.cors_origins.clone(),
                metrics_token: args.metrics_token.clone(),
                metrics_here: metrics_listener.is_none(),
                graphql: http::graphql::GraphqlOptions::from(&args.graphql),
                draining: draining.clone(),
            },
            metrics_listener,
            service,
            serve_options: ServeOptions {
                header_read_timeout: Duration::from_secs(args.header_read_timeout),
                idle_timeout: Duration::from_secs(args.idle_timeout),
                linger_timeout: Duration::from_secs(args.linger_timeout),
                max_connections: args
                    .max_connections
                    .map_or_else(default_max_connections, |n| n as usize),
                shutdown_grace: Duration::from_secs(args.shutdown_grace),
                draining,
            },
            store_failure_exit: Duration::from_secs(args.store_failure_exit),
            session_prune_interval: Duration::from_secs(args.session_prune_interval.max(1)),
            audit_retention: (args.audit_retention_days > 0)
                .then(|| Duration::from_secs(args.audit_retention_days.saturating_mul(24 * 3600))),
            probe: args.probe_platforms.then_some(ProbeOptions {
                interval: args.probe_interval,
                failures: args.probe_failures,
                concurrency: args.probe_concurrency as usize,
            }),
            generated_admin_password,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the separate metrics listener, if one was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Serves until `shutdown` resolves, lets requests in flight finish, then flushes.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = http::app(self.service.clone(), &self.options);
        let pruning = tokio::spawn(prune(
            self.service.clone(),
            self.session_prune_interval,
            self.audit_retention,
        ));
        let prober = self
            .probe
            .map(|options| Prober::start(self.service.clone(), options));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.map(|listener| {
            let app = http::metrics_app(self.service.clone(), &self.options);
            let mut stopped = stopped.clone();
            let options = ServeOptions {
                header_read_timeout: self.serve_options.header_read_timeout,
                idle_timeout: self.serve_options.idle_timeout,
                linger_timeout: self.serve_options.linger_timeout,
                max_connections: self.serve_options.max_connections,
                shutdown_grace: Duration::from_secs(1),
                draining: Draining::default(),
            };
            tokio::spawn(async move {
                serve(listener, app, options, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
            })
        });
        let grace = self.serve_options.shutdown_grace;
        let failure_exit = self.store_failure_exit;
        let service = self.service.clone();
        let (failed_tx, mut failed_rx) = tokio::sync::oneshot::channel();
        serve(self.listener, router, self.serve_options, async move {
            tokio::pin!(shutdown);
            tokio::select! {
                () = &mut shutdown => {}
                cause = service.store_failed() => {
                    tracing::error!(
                        error = %cause,
                        "the store failed: writes answer 503 and /readyz is not ready; stopping in {} s so that a restart reopens it",
                        failure_exit.as_secs_f64()
                    );
                    let _ = failed_tx.send(cause);
                    tokio::select! {
                        () = &mut shutdown => {}
                        () = tokio::time::sleep(failure_exit) => {}
                    }
                }
            }
            let _ = stop.send(true);
        })
        .await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        if let Some(prober) = prober {
            prober.stop().await;
        }
        // Awaited so that its handle on the service (and so the store) is gone on return.
        pruning.abort();
        let _ = pruning.await;
        // The final flush has a time limit too: a store that cannot write must not hold the
        // process past its grace period.
        let flushed = match tokio::time::timeout(grace, self.service.flush()).await {
            Ok(flushed) => flushed.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!(
                "the final flush did not finish within {} s",
                grace.as_secs_f64()
            )),
        };
        // Other gateways' commits no longer wait for this one's.
        if let Ok(Err(e)) = tokio::time::timeout(grace, self.service.release()).await {
            tracing::warn!(error = %e, "cannot give up the read lease; it ends by itself");
        }
        let failed = failed_rx.try_recv().ok();
        match (flushed, failed) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(cause)) | (Err(_), Some(cause)) => Err(StoreFailed(cause).into()),
            (Err(e), None) => Err(StoreFailed(format!("{e:#}")).into()),
        }
    }
}

/// Removes expired sessions, and log entries older than `retention`, every `interval` while
/// the server runs (sessions also once at start, in [`Server::start`]), so that the store
/// does not keep every session ever opened nor a log without end.
async fn prune(service: Arc<Service>, interval: Duration, retention: Option<Duration>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match service.prune_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "expired sessions could not be removed"),
        }
        let Some(retention) = retention else {
            continue;
        };
        let before = std::time::SystemTime::now() - retention;
        match service.prune_log(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "log entries past retention removed"),
            Err(e) => tracing::warn!(error = %e, "log entries could not be removed"),
        }
    }
}

/// Lines the log writer may hold while stderr is slow; past that, lines are dropped.
const LOG_BUFFER_LINES: usize = 16_384;

/// Logs to stderr through a writer thread of its own: a request only queues its line, so a
/// stderr that blocks (a pipe nobody reads) or fails (a full disk) never stalls or breaks a
/// request; lines that cannot be written are dropped. Keep the guard until exit: dropping it
/// writes out what is queued.
pub fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("log-writer")
        // Buffered: the writer thread writes out what is queued in one call, and flushes each
        // time the queue is empty, instead of one system call per line.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    // Colour codes only for a person at a terminal, never into files or log collectors.
    // A line that cannot be written is not reported on stderr either (that would fail too).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}

/// SIGINT or SIGTERM. The handlers are installed on the call, before the `listening on` line
/// is printed, so that a signal sent as soon as the server is ready stops it cleanly instead of
/// killing it.
#[cfg(unix)]
fn stop_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("stopping: finishing requests in flight");
    })
}

#[cfg(not(unix))]
fn stop_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping: finishing requests in flight");
    })
}

/// `callrec-gateway serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _log = init_logging(args.log_format);
    let admin_password = std::env::var("CALLREC_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let server = Server::start(Start {
        args,
        admin_password,
    })
    .await?;
    use std::io::Write;
    if let Some(password) = &server.generated_admin_password {
        // Outside the log, which must never carry it; not eprintln!, which panics when stderr
        // cannot be written.
        let _ = writeln!(
            std::io::stderr(),
            "created user 'admin' (System Admin) with password: {password}\n\
             (shown only now; set CALLREC_ADMIN_PASSWORD before the first start to choose it)"
        );
    }
    let addr = server.local_addr()?;
    let stop = stop_signal()?;
    if let Some(metrics) = server.metrics_addr() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on http://{addr}").and_then(|()| stdout.flush());
    server.serve_until(stop).await?;
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}
