//! Which store the tests run on: the data folder by default, PostgreSQL with
//! `CALLREC_TEST_STORE=postgres`. There, each data folder a test makes stands for a database of
//! its own, created on first use (its URL kept in the folder, so that a restart on the folder
//! finds the same database). A database is named after the test process that made it, and
//! dropped by the next test process that creates one once its maker has exited.

use std::path::Path;

/// Where test databases are created: a server that trusts `postgres` on 127.0.0.1:5432, unless
/// `CALLREC_TEST_DATABASE_URL` names another (its database is where they are created from).
const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The file in a data folder that names its database.
const MARKER: &str = "test-database-url";

pub fn postgres() -> bool {
    std::env::var("CALLREC_TEST_STORE").is_ok_and(|v| v == "postgres")
}

pub fn admin_url() -> String {
    std::env::var("CALLREC_TEST_DATABASE_URL").unwrap_or_else(|_| ADMIN_URL.to_owned())
}

/// The `serve` flags naming the store of `data`.
pub fn store_args(data: &Path) -> Vec<String> {
    if !postgres() {
        return vec!["--data".into(), data.display().to_string()];
    }
    vec!["--database-url".into(), database_of(data)]
}

/// The URL of the database that stands for `data`, created on first use.
pub fn database_of(data: &Path) -> String {
    let marker = data.join(MARKER);
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    let url = fresh_database(&admin_url());
    std::fs::write(&marker, &url).expect("database marker written");
    url
}

/// Runs `f` on a runtime of its own, on a thread of its own: callable from sync code and from
/// inside another runtime alike.
fn on_own_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
    .join()
    .expect("database thread")
}

/// Creates an empty database with a random name on the server of `admin_url`; answers its URL.
pub fn fresh_database(admin_url: &str) -> String {
    let name = format!("{PREFIX}{}_{}", std::process::id(), random_suffix());
    let admin = admin_url.to_owned();
    let created = name.clone();
    on_own_runtime(move || {
        Box::pin(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("test database server at {admin}: {e}"));
            drop_orphans(&mut conn).await;
            sqlx::query(&format!("CREATE DATABASE {created}"))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
            let _ = conn.close().await;
        })
    });
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    format!("{base}/{name}")
}

const PREFIX: &str = "callrec_test_";

/// Drops the test databases whose test process has exited.
async fn drop_orphans(conn: &mut sqlx::PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'callrec\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut *conn)
            .await;
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

/// Whether the test database server answers; where it does not, a notice is printed and the
/// caller skips, except under CI (`CI` set), where that is a failure.
pub fn server_reachable() -> bool {
    let admin = admin_url();
    let url = admin.clone();
    let reachable = on_own_runtime(move || {
        Box::pin(async move {
            use sqlx::Connection;
            match sqlx::PgConnection::connect(&url).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    true
                }
                Err(_) => false,
            }
        })
    });
    if !reachable {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs a PostgreSQL server at {admin} (CALLREC_TEST_DATABASE_URL)"
        );
        eprintln!("notice: no PostgreSQL server at {admin}: skipped");
    }
    reachable
}
