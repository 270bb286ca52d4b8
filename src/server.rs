//! Starting and stopping the server: open the store, make sure an administrator exists, bind,
//! serve until told to stop, then make every acknowledged write durable.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{LogFormat, ServeArgs};
use crate::http::serve::{Draining, ServeOptions, serve};
use crate::http::{self, HttpOptions};
use crate::probe::{ProbeOptions, Prober};
use crate::service::{Service, SessionSettings};
use crate::store::{SledStore, StoreOptions};

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    service: Arc<Service>,
    options: HttpOptions,
    serve_options: ServeOptions,
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

pub fn store_options(data: &crate::config::DataArgs) -> StoreOptions {
    let mut options = StoreOptions::new(&data.data);
    options.cache_capacity = data.cache_mb.saturating_mul(1024 * 1024);
    options
}

impl Server {
    pub async fn start(start: Start) -> anyhow::Result<Server> {
        let args = start.args;
        let mut options = store_options(&args.data);
        options.flush = !args.unsafe_skip_flush;
        let store = tokio::task::spawn_blocking(move || SledStore::open(options)).await??;
        let settings = SessionSettings {
            access_ttl: Duration::from_secs(args.access_token_ttl),
            refresh_ttl: Duration::from_secs(args.refresh_token_ttl),
            max_failed_logins: args.max_failed_logins,
            lockout: Duration::from_secs(args.login_lockout),
        };
        let service = Arc::new(Service::new(Arc::new(store), settings).await?);
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
                graphql_introspection: args.graphql_introspection,
                draining: draining.clone(),
            },
            metrics_listener,
            service,
            serve_options: ServeOptions {
                header_read_timeout: Duration::from_secs(args.header_read_timeout),
                shutdown_grace: Duration::from_secs(args.shutdown_grace),
                draining,
            },
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
        let prober = self
            .probe
            .map(|options| Prober::start(self.service.clone(), options));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.map(|listener| {
            let app = http::metrics_app(self.service.clone(), &self.options);
            let mut stopped = stopped.clone();
            let options = ServeOptions {
                header_read_timeout: self.serve_options.header_read_timeout,
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
        serve(self.listener, router, self.serve_options, async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        if let Some(prober) = prober {
            prober.stop().await;
        }
        self.service.flush().await?;
        Ok(())
    }
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal, never into files or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
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
    init_logging(args.log_format);
    let admin_password = std::env::var("CALLREC_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let server = Server::start(Start {
        args,
        admin_password,
    })
    .await?;
    if let Some(password) = &server.generated_admin_password {
        eprintln!(
            "created user 'admin' (System Admin) with password: {password}\n\
             (shown only now; set CALLREC_ADMIN_PASSWORD before the first start to choose it)"
        );
    }
    let addr = server.local_addr()?;
    let stop = stop_signal()?;
    if let Some(metrics) = server.metrics_addr() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    println!("listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.serve_until(stop).await?;
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}
