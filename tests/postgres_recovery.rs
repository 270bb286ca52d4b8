//! A gateway on PostgreSQL finds its way back by itself: while the database does not answer,
//! each request waits at most `--database-timeout-ms` for it (then 503); a gateway whose next
//! log entries were pruned before it read them loads the whole state again instead of
//! answering 503 until restarted.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{Process, call, database_gateway};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = common::ADMIN_PASSWORD;
const TENANTS: &str = "/api/v1/tenants/";

async fn add_tenant(p: &Process, token: &str, id: &str) -> (StatusCode, Value) {
    call(
        p,
        token,
        Method::POST,
        TENANTS,
        Some(json!({"tenantId": id})),
    )
    .await
}

fn tenant_ids(list: &Value) -> Vec<String> {
    list["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| t["tenantId"].as_str().expect("id").to_owned())
        .collect()
}

/// A TCP relay between the gateway and the database that the test can silence: silenced, it
/// cuts every connection it carries and takes new ones without ever answering, as a database
/// host that went away does.
struct Relay {
    addr: SocketAddr,
    silent: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let silent = Arc::new(AtomicBool::new(false));
        let links = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let accepting = {
            let (silent, links, held) = (silent.clone(), links.clone(), held.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if silent.load(Ordering::SeqCst) {
                        held.lock().unwrap().push(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().unwrap().push(link.abort_handle());
                }
            })
        };
        Relay {
            addr,
            silent,
            links,
            held,
            accepting,
        }
    }

    fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn resume(&self) {
        self.silent.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
        self.silence();
    }
}

/// The `host:port` of a PostgreSQL URL (5432 when it names none).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_does_not_answer_a_request_waits_at_most_the_database_timeout() {
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let upstream = host_port(&url);
    let relay = Relay::start(upstream.clone()).await;
    let through = url.replacen(&upstream, &relay.addr.to_string(), 1);
    assert_ne!(through, url, "the URL names {upstream}");
    let g = database_gateway(&through, &["--database-timeout-ms", "300"]).await;
    let token = g.login("admin", PASSWORD).await;
    assert_eq!(add_tenant(&g, &token, "before").await.0, StatusCode::OK);

    relay.silence();
    // A request may find a connection the relay cut and fail at once; the others wait for the
    // database (which proves the bound), and no longer than it, nor the default 2 s.
    let mut waited_out = 0;
    for _ in 0..40 {
        let started = Instant::now();
        let (status, body) = add_tenant(&g, &token, "during").await;
        let waited = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["errors"][0]["code"], 107, "{body}");
        assert!(
            waited < Duration::from_millis(1500),
            "answered 503 after {waited:?} with --database-timeout-ms 300"
        );
        if waited >= Duration::from_millis(250) {
            waited_out += 1;
            if waited_out == 3 {
                break;
            }
        }
    }
    assert_eq!(waited_out, 3, "no request waited for the database");

    relay.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = add_tenant(&g, &token, "after").await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "no recovery within 30 s: {body}");
        tokio::task::yield_now().await;
    }
    let (status, list) = call(&g, &token, Method::GET, TENANTS, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids = tenant_ids(&list);
    assert!(ids.contains(&"before".into()) && ids.contains(&"after".into()));
    assert!(!ids.contains(&"during".into()), "a refused write was made");
}

/// Sends `signal` to the gateway and waits (bounded) until it is stopped or running again.
fn signal(p: &Process, signal: &str) {
    let pid = p.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let stopped = signal == "STOP";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        // The state follows the command name in parentheses.
        let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        if (state == Some("T")) == stopped {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {state:?} after SIG{signal}"
        );
        std::thread::yield_now();
    }
}

#[tokio::test]
async fn a_gateway_whose_next_log_entries_were_pruned_loads_the_state_again() {
    if !common::store::server_reachable() {
        return;
    }
    let url = common::store::fresh_database(&common::store::admin_url());
    let (a, b) = (
        database_gateway(&url, &[]).await,
        database_gateway(&url, &[]).await,
    );
    let token = a.login("admin", PASSWORD).await;
    let (status, _) = call(&b, &token, Method::GET, TENANTS, None).await;
    assert_eq!(status, StatusCode::OK, "B is at the log's head");

    // B reads nothing while A commits, and retention then removes all but the newest entry:
    // what follows B's position is gone from the log.
    signal(&b, "STOP");
    for id in ["T0", "T1", "T2"] {
        assert_eq!(add_tenant(&a, &token, id).await.0, StatusCode::OK);
    }
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let pruned =
        sqlx::query("DELETE FROM change_log WHERE sequence < (SELECT sequence FROM log_head)")
            .execute(&mut conn)
            .await
            .expect("pruned");
    assert!(pruned.rows_affected() >= 2);
    let _ = conn.close().await;
    signal(&b, "CONT");

    let (status, list) = call(&b, &token, Method::GET, TENANTS, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(tenant_ids(&list), ["T0", "T1", "T2"]);
    // And it goes on following the log from there.
    assert_eq!(add_tenant(&a, &token, "T3").await.0, StatusCode::OK);
    let (status, list) = call(&b, &token, Method::GET, TENANTS, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(tenant_ids(&list), ["T0", "T1", "T2", "T3"]);
    let (status, _) = add_tenant(&b, &token, "T4").await;
    assert_eq!(status, StatusCode::OK, "B takes writes");
}
