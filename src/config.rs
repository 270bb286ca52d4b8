//! The command line. Every flag of `serve` can also be given as an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "callrec-gateway",
    version,
    about = "Provisioning gateway for the system call recording service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once at start, so the size of `serve`'s arguments beside the others costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage local users: in the data folder while the server is stopped, or in the database
    /// at any time.
    User(UserArgs),
    /// Write everything the store holds (records, users with their password hashes, the
    /// token signing key, the change log) to standard output as JSON.
    Export(DataArgs),
    /// Read an export from standard input into a store that is new (never used).
    Import(DataArgs),
    /// Print the GraphQL schema (SDL), as kept in schema.graphql.
    Schema,
}

#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Folder holding the embedded store; created if missing [default: callrec-data].
    /// Not with --database-url.
    #[arg(long, env = "CALLREC_DATA")]
    pub data: Option<PathBuf>,
    /// Page cache of the embedded store, in MiB. Reads are answered from memory, not from
    /// the store: the cache only spares writes and log reads going to disk.
    #[arg(long, env = "CALLREC_CACHE_MB", default_value_t = 16)]
    pub cache_mb: u64,
    /// Keep everything in PostgreSQL instead of a data folder, e.g.
    /// postgres://callrec:secret@db.example.com/callrec?sslmode=verify-full; several gateways
    /// may share one database. Not with --data.
    #[arg(long, env = "CALLREC_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections to PostgreSQL this process keeps at most (one more follows the log).
    #[arg(long, env = "CALLREC_DATABASE_POOL", default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool: u32,
    /// How long a request waits for a connection to PostgreSQL, in milliseconds, before it is
    /// answered 503: while the database is unreachable, what every request waits at most.
    #[arg(long, env = "CALLREC_DATABASE_TIMEOUT_MS", default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub database_timeout_ms: u64,
}

/// The data folder used when neither --data nor --database-url is given.
pub const DEFAULT_DATA: &str = "callrec-data";

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Folder(PathBuf),
    Database(String),
}

impl DataArgs {
    /// The one store the flags name; both a folder and a database is refused.
    pub fn location(&self) -> anyhow::Result<StoreLocation> {
        match (&self.data, &self.database_url) {
            (Some(data), Some(_)) => anyhow::bail!(
                "both --data ({}) and --database-url are given: a gateway keeps its data in one \
                 store; give only one (CALLREC_DATA and CALLREC_DATABASE_URL count as given)",
                data.display()
            ),
            (None, Some(url)) => Ok(StoreLocation::Database(url.clone())),
            (Some(data), None) => Ok(StoreLocation::Folder(data.clone())),
            (None, None) => Ok(StoreLocation::Folder(PathBuf::from(DEFAULT_DATA))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the `listening on` line tells which).
    #[arg(long, env = "CALLREC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "CALLREC_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,
    /// Lifetime of refresh tokens (and of a login session), in seconds.
    #[arg(long, env = "CALLREC_REFRESH_TOKEN_TTL", default_value_t = 86_400)]
    pub refresh_token_ttl: u64,
    /// Consecutive failed logins after which a username is locked.
    #[arg(long, env = "CALLREC_MAX_FAILED_LOGINS", default_value_t = 5)]
    pub max_failed_logins: u32,
    /// How long a username stays locked after too many failed logins, in seconds.
    #[arg(long, env = "CALLREC_LOGIN_LOCKOUT", default_value_t = 60)]
    pub login_lockout: u64,
    /// How long a refresh token that has been used (and so replaced) is still accepted, in
    /// seconds; presented later, it ends its session.
    #[arg(long, env = "CALLREC_REFRESH_TOKEN_GRACE", default_value_t = 30)]
    pub refresh_token_grace: u64,
    /// Login sessions one user may hold; a new login past it ends the user's oldest session.
    #[arg(long, env = "CALLREC_MAX_SESSIONS_PER_USER", default_value_t = 20)]
    pub max_sessions_per_user: usize,
    /// How long the change log keeps its entries (the audit trail, and how far back a
    /// subscription can resume), in days; 0 keeps everything. Pruned in the background.
    #[arg(long, env = "CALLREC_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u64,
    /// How often expired sessions and log entries past retention are removed, in seconds.
    #[arg(long, env = "CALLREC_SESSION_PRUNE_INTERVAL", default_value_t = 60)]
    pub session_prune_interval: u64,
    /// Password checks and hashes run at once (each takes 19 MiB); default twice the cores.
    #[arg(long, env = "CALLREC_MAX_PASSWORD_CHECKS")]
    pub max_password_checks: Option<usize>,
    /// How long a login waits for a free password check before it is answered 503, in
    /// milliseconds.
    #[arg(long, env = "CALLREC_PASSWORD_CHECK_WAIT_MS", default_value_t = 2000)]
    pub password_check_wait_ms: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CALLREC_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// Longest a request may take before it is answered 408, in seconds.
    #[arg(long, env = "CALLREC_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Longest a client may take to send a request's headers, in seconds.
    #[arg(long, env = "CALLREC_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Longest a connection may stay open without a request in flight (HTTP/1.1 keep-alive
    /// between requests, HTTP/2 with no stream open), in seconds. A new connection must send
    /// its first bytes within --header-read-timeout.
    #[arg(long, env = "CALLREC_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Most connections open at once (WebSockets included); past it a new connection gets
    /// 503 and is closed, except /healthz, which is still answered. Default: the process's
    /// open-file limit less 160 (the store's files, 32 connections kept for those answers),
    /// at most 4096.
    #[arg(long, env = "CALLREC_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// After refusing a request whose body was not read (413 and the like), how long the
    /// connection keeps reading and discarding what the client still sends before closing,
    /// so the client sees the answer instead of a reset, in seconds.
    #[arg(long, env = "CALLREC_LINGER_TIMEOUT", default_value_t = 5)]
    pub linger_timeout: u64,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "CALLREC_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// Browser origins allowed to call the API (CORS), e.g. https://portal.example.com;
    /// repeat the flag or separate with commas. None: no CORS headers.
    #[arg(
        long = "cors-origin",
        env = "CALLREC_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Bearer token that GET /metrics requires; without it /metrics is open (bind it to a
    /// separate address with --metrics-listen to keep it off the public port).
    #[arg(long, env = "CALLREC_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve /metrics on this address instead of the main one.
    #[arg(long, env = "CALLREC_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub graphql: GraphqlArgs,
    /// Log line format (the level is set by RUST_LOG, default info).
    #[arg(long, env = "CALLREC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// After the store fails (a full disk, an I/O error: it then takes no write, and /readyz
    /// answers 503), how long the server goes on serving reads before it stops with exit code
    /// 75, so that a supervisor restarts it and the restart reopens the store; in seconds.
    #[arg(long, env = "CALLREC_STORE_FAILURE_EXIT", default_value_t = 10)]
    pub store_failure_exit: u64,
    /// Probe each platform's address with SIP OPTIONS and show whether it answers
    /// (`reachability`); off, the gateway sends nothing to the platforms.
    #[arg(long, env = "CALLREC_PROBE_PLATFORMS")]
    pub probe_platforms: bool,
    /// Seconds from the end of one probe of a platform to the start of the next; fractions
    /// allowed (e.g. 0.5).
    #[arg(long, env = "CALLREC_PROBE_INTERVAL", default_value = "30", value_parser = parse_probe_interval)]
    pub probe_interval: Duration,
    /// Consecutive failed probes after which a platform is DOWN.
    #[arg(long, env = "CALLREC_PROBE_FAILURES", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=100))]
    pub probe_failures: u32,
    /// Probes in flight at once, over all platforms.
    #[arg(long, env = "CALLREC_PROBE_CONCURRENCY", default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub probe_concurrency: u32,
    /// With --database-url: how long a read lease lasts, in milliseconds. While it holds, API
    /// requests are answered from memory instead of each first looking at the database's log
    /// head; commits are acknowledged once every gateway holding one has them. A gateway that
    /// dies holds up the others' commits this long at most. 0: no lease, every request looks.
    #[arg(long, env = "CALLREC_READ_LEASE_MS", default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub read_lease_ms: u64,
    /// Benchmarks only: acknowledge writes before they reach the disk.
    #[arg(long, hide = true)]
    pub unsafe_skip_flush: bool,
}

/// Who may run an introspection query (`__schema`, `__type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Introspection {
    /// Anyone.
    True,
    /// Nobody.
    False,
    /// Callers with a valid access token (GraphiQL sends the one in its Headers tab).
    Authenticated,
}

/// The GraphQL API's bounds.
#[derive(Debug, Clone, Args)]
pub struct GraphqlArgs {
    /// Who may run GraphQL introspection queries (GraphiQL needs them).
    #[arg(
        long,
        env = "CALLREC_GRAPHQL_INTROSPECTION",
        value_enum,
        default_value_t = Introspection::Authenticated
    )]
    pub graphql_introspection: Introspection,
    /// Complexity budget of one GraphQL request (a whole batch together): each field counts
    /// 1, and a list field counts its items (e.g. `platforms` the number of platforms).
    #[arg(
        long,
        env = "CALLREC_GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 500_000
    )]
    pub graphql_max_complexity: u64,
    /// Largest answer to one GraphQL request or WebSocket message, in bytes.
    #[arg(long, env = "CALLREC_MAX_RESPONSE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_response_bytes: usize,
    /// Memory for answers to repeated GraphQL queries kept until the next commit, in MiB
    /// (questions included); 0 keeps none.
    #[arg(long, env = "CALLREC_GRAPHQL_ANSWER_CACHE_MB", default_value_t = 8)]
    pub graphql_answer_cache_mb: usize,
    /// Subscriptions open at once on one WebSocket.
    #[arg(
        long,
        env = "CALLREC_GRAPHQL_SUBSCRIPTIONS_PER_SOCKET",
        default_value_t = 100
    )]
    pub graphql_subscriptions_per_socket: usize,
    /// Subscriptions open at once on the whole server.
    #[arg(
        long,
        env = "CALLREC_GRAPHQL_MAX_SUBSCRIPTIONS",
        default_value_t = 10_000
    )]
    pub graphql_max_subscriptions: usize,
    /// How long a new GraphQL WebSocket may take to be accepted (`connection_init`), in
    /// seconds.
    #[arg(long, env = "CALLREC_WS_INIT_TIMEOUT", default_value_t = 10)]
    pub ws_init_timeout: u64,
}

/// Shortest and longest probe interval, in seconds.
pub const PROBE_INTERVAL: (f64, f64) = (0.01, 86_400.0);

fn parse_probe_interval(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number of seconds"))?;
    let (min, max) = PROBE_INTERVAL;
    if !(min..=max).contains(&seconds) {
        return Err(format!("the probe interval must be {min}-{max} seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        username: String,
        /// 16 System Admin, 12 Tenant Admin, 8 Group Admin, 0 End User.
        #[arg(long)]
        level: i64,
        /// The tenant of a Tenant Admin, Group Admin or End User.
        #[arg(long)]
        tenant: Option<String>,
        /// The group of a Group Admin or End User.
        #[arg(long)]
        group: Option<String>,
    },
    /// List users (never their passwords).
    List,
    /// Delete a user and end its sessions.
    Delete { username: String },
    /// Set a user's password, read from the first line of standard input; ends its sessions.
    Passwd { username: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(extra: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["callrec-gateway", "serve"].iter().chain(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(args) => Ok(args),
            _ => unreachable!("serve was asked for"),
        }
    }

    #[test]
    fn one_store_only_a_folder_or_a_database() {
        let url = "postgres://u@db/callrec";
        assert_eq!(
            serve(&[]).unwrap().data.location().unwrap(),
            StoreLocation::Folder(PathBuf::from(DEFAULT_DATA))
        );
        assert_eq!(
            serve(&["--database-url", url])
                .unwrap()
                .data
                .location()
                .unwrap(),
            StoreLocation::Database(url.into())
        );
        let both = serve(&["--data", "d", "--database-url", url]).unwrap();
        let refused = both.data.location().unwrap_err().to_string();
        assert!(
            refused.contains("--data") && refused.contains("--database-url"),
            "{refused}"
        );
        assert_eq!(
            serve(&["--database-url", url]).unwrap().data.database_pool,
            16
        );
        for bad in ["0", "1001", "many"] {
            assert!(serve(&["--database-pool", bad]).is_err(), "{bad} accepted");
        }
        assert_eq!(serve(&[]).unwrap().data.database_timeout_ms, 2000);
        assert_eq!(
            serve(&["--database-timeout-ms", "250"])
                .unwrap()
                .data
                .database_timeout_ms,
            250
        );
        for bad in ["0", "600001", "-1", "soon"] {
            assert!(
                serve(&["--database-timeout-ms", bad]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn probing_is_off_by_default_and_its_flags_are_bounded() {
        let args = serve(&[]).expect("defaults");
        assert!(!args.probe_platforms);
        assert_eq!(args.probe_interval, Duration::from_secs(30));
        assert_eq!((args.probe_failures, args.probe_concurrency), (3, 64));
        let args = serve(&["--probe-platforms", "--probe-interval", "0.25"]).expect("valid");
        assert!(args.probe_platforms);
        assert_eq!(args.probe_interval, Duration::from_millis(250));
        for bad in [
            &["--probe-interval", "0"][..],
            &["--probe-interval", "-1"],
            &["--probe-interval", "NaN"],
            &["--probe-interval", "soon"],
            &["--probe-interval", "86401"],
            &["--probe-failures", "0"],
            &["--probe-concurrency", "0"],
            &["--probe-concurrency", "1025"],
        ] {
            assert!(serve(bad).is_err(), "{bad:?} accepted");
        }
    }
}
