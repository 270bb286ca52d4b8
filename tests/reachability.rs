//! SIP OPTIONS reachability of the platforms, against real peers on loopback: `sipp` (a real
//! SIP stack, over UDP and TCP) and the tests' own small responders (`tests/common/sip.rs`: a
//! chosen status, silence, a refused TCP port). Intervals are short; every wait polls a state or an event,
//! bounded by a timeout.
//!
//! `.ci/run` installs sipp (Debian's `sip-tester`); elsewhere its tests say so and pass.

mod common;

use std::process::Stdio;
use std::time::Duration;

use callrec_gateway::model::{Principal, PropertiesChange, ReachabilityState};
use callrec_gateway::probe::{ProbeOptions, Prober};
use callrec_gateway::service::ReachabilityChange;
use common::graphql::*;
use common::sip::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// The longest any awaited state may take to show.
const WAIT: Duration = Duration::from_secs(15);
const FAILURES: u32 = 3;
const FLAGS: &[&str] = &[
    "--probe-platforms",
    "--probe-interval",
    "0.1",
    "--probe-failures",
    "3",
];

/// A server probing every 100 ms, waiting `wait_ms` for answers.
async fn probing_app(wait_ms: i64) -> TestApp {
    let app = TestApp::start_with(FLAGS).await;
    set_wait(&app, wait_ms).await;
    app
}

async fn set_wait(app: &TestApp, wait_ms: i64) {
    app.service
        .modify_properties(
            &Principal::console(),
            PropertiesChange {
                max_response_wait_time_milliseconds: Some(wait_ms),
                ..Default::default()
            },
        )
        .await
        .expect("properties set");
}

fn reachability_path(name: &str) -> String {
    format!("{CALL_RECORDING}/platforms/{}/reachability/", encode(name))
}

async fn add_platform(app: &TestApp, name: &str, port: u16, transport: &str) {
    let mut body = platform(name);
    body["netAddress"] = json!("127.0.0.1");
    body["port"] = json!(port);
    body["transportProtocol"] = json!(transport);
    let (status, answer) = app.admin(Method::POST, &platforms_path(), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn move_platform(app: &TestApp, name: &str, port: u16, transport: &str) {
    let (status, answer) = app
        .admin(
            Method::PUT,
            &platform_path(name),
            Some(json!({"port": port, "transportProtocol": transport})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn reachability(app: &TestApp, name: &str) -> Value {
    let (status, body) = app.get(&reachability_path(name)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls the REST reachability until `done` holds; every answer seen on the way must keep
/// the rule that a platform is DOWN exactly when it has failed `FAILURES` times in a row
/// (when it was not UP or UNKNOWN before, see `down_rule`).
async fn wait_for(app: &TestApp, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = reachability(app, name).await;
        down_rule(&r);
        if done(&r) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never got there; last seen {r}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn down_rule(r: &Value) {
    let failures = r["consecutiveFailures"]
        .as_u64()
        .expect("consecutiveFailures");
    match r["state"].as_str() {
        Some("DOWN") => assert!(failures >= u64::from(FAILURES), "down too early: {r}"),
        Some("UP" | "UNKNOWN") => assert!(failures < u64::from(FAILURES), "not down: {r}"),
        _ => {}
    }
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |r| r["state"] == state
}

/// The next reachability change of `name`, within [`WAIT`].
async fn next_change(
    changes: &mut broadcast::Receiver<ReachabilityChange>,
    name: &str,
) -> ReachabilityChange {
    loop {
        let change = tokio::time::timeout(WAIT, changes.recv())
            .await
            .expect("a change in time")
            .expect("the change stream is open");
        if change.name == name {
            return change;
        }
    }
}

fn no_change_of(changes: &mut broadcast::Receiver<ReachabilityChange>, name: &str) {
    while let Ok(change) = changes.try_recv() {
        assert_ne!(change.name, name, "an unexpected change: {change:?}");
    }
}

fn watch(app: &TestApp) -> broadcast::Receiver<ReachabilityChange> {
    app.service
        .watch_reachability(&Principal::console())
        .expect("console may watch")
}

// ---- peers ----

/// sipp as a UAS that answers every OPTIONS with 200, from a scenario written here.
struct Sipp {
    child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

const SCENARIO: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer OPTIONS">
  <recv request="OPTIONS" />
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

fn sipp_installed() -> bool {
    let found = std::process::Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "sipp is missing in CI (.ci/run installs sip-tester)"
        );
        eprintln!("sipp not found: skipping (install Debian's sip-tester to run this test)");
    }
    found
}

impl Sipp {
    /// Starts sipp on `port` over `transport` ("u1" UDP, "t1" TCP).
    fn start(port: u16, transport: &str) -> Sipp {
        let dir = tempfile::tempdir().expect("temp dir");
        let scenario = dir.path().join("options.xml");
        std::fs::write(&scenario, SCENARIO).expect("scenario written");
        let child = tokio::process::Command::new("sipp")
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", transport])
            .arg("-nostdin")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Sipp {
            child,
            port,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

// ---- tests ----

#[tokio::test]
async fn sipp_over_udp_up_then_down_after_exactly_the_failures_then_up_again() {
    if !sipp_installed() {
        return;
    }
    let app = probing_app(200).await;
    let mut changes = watch(&app);
    let port = dead_port().await;
    let sipp = Sipp::start(port, "u1");
    add_platform(&app, "rec", port, "UDP").await;

    let up = wait_for(&app, "rec", state_is("UP")).await;
    assert!(up["lastLatencyMs"].as_f64().expect("latency") > 0.0, "{up}");
    assert_eq!(up["consecutiveFailures"], 0);
    assert!(
        up.get("lastError").is_none(),
        "unset fields are absent: {up}"
    );
    assert!(up["since"].as_str().expect("since").ends_with('Z'), "{up}");
    assert!(up["lastCheckedAt"].is_string(), "{up}");
    let first = next_change(&mut changes, "rec").await;
    assert_eq!(
        (first.previous, first.state),
        (ReachabilityState::Unknown, ReachabilityState::Up)
    );

    sipp.stop().await;
    let went_down = next_change(&mut changes, "rec").await;
    assert_eq!(
        (went_down.previous, went_down.state),
        (ReachabilityState::Up, ReachabilityState::Down)
    );
    let down = wait_for(&app, "rec", |r| {
        r["consecutiveFailures"].as_u64() >= Some(u64::from(FAILURES) + 2)
    })
    .await;
    assert_eq!(down["state"], "DOWN");
    assert!(down["lastError"].is_string(), "{down}");
    assert!(
        down["lastLatencyMs"].is_number(),
        "the last answer's latency stays: {down}"
    );
    no_change_of(&mut changes, "rec");

    let sipp = Sipp::start(port, "u1");
    let back = next_change(&mut changes, "rec").await;
    assert_eq!(
        (back.previous, back.state),
        (ReachabilityState::Down, ReachabilityState::Up)
    );
    let up = wait_for(&app, "rec", state_is("UP")).await;
    assert!(up.get("lastError").is_none(), "{up}");
    sipp.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn sipp_over_tcp_is_up_and_a_refused_connection_is_a_failure() {
    if !sipp_installed() {
        return;
    }
    let app = probing_app(500).await;
    let port = dead_port().await;
    let sipp = Sipp::start(port, "t1");
    add_platform(&app, "rec-tcp", port, "TCP").await;
    let up = wait_for(&app, "rec-tcp", state_is("UP")).await;
    assert!(up["lastLatencyMs"].as_f64().expect("latency") > 0.0, "{up}");
    assert_eq!(sipp.port, port);

    sipp.stop().await;
    let down = wait_for(&app, "rec-tcp", state_is("DOWN")).await;
    assert_eq!(down["lastError"], "connection refused", "{down}");
    app.stop().await;
}

#[tokio::test]
async fn a_503_is_a_failure_and_a_404_is_an_answer() {
    let app = probing_app(500).await;
    let unavailable = Responder::udp(Some("503 Service Unavailable"), Duration::ZERO).await;
    let not_found = Responder::udp(Some("404 Not Found"), Duration::ZERO).await;
    add_platform(&app, "busy", unavailable.port, "UDP").await;
    add_platform(&app, "picky", not_found.port, "Unspecified").await;
    let down = wait_for(&app, "busy", state_is("DOWN")).await;
    assert_eq!(down["lastError"], "503 Service Unavailable", "{down}");
    assert!(
        down.get("lastLatencyMs").is_none(),
        "never answered: {down}"
    );
    let up = wait_for(&app, "picky", state_is("UP")).await;
    assert!(up.get("lastError").is_none(), "{up}");
    app.stop().await;
}

#[tokio::test]
async fn silence_is_a_timeout_and_the_request_is_rfc_3261_options() {
    let app = probing_app(100).await;
    let silent = Responder::udp(None, Duration::ZERO).await;
    add_platform(&app, "quiet", silent.port, "UDP").await;
    let down = wait_for(&app, "quiet", state_is("DOWN")).await;
    assert_eq!(down["lastError"], "timeout", "{down}");

    let received = silent.received.lock().unwrap().clone();
    assert!(received.len() >= FAILURES as usize);
    let mut branches = std::collections::HashSet::new();
    for (from, text) in &received {
        let request = rsip::Request::try_from(text.as_str()).expect("a SIP request");
        assert_eq!(request.method, rsip::Method::Options);
        assert_eq!(
            request.uri.to_string(),
            format!("sip:127.0.0.1:{}", silent.port)
        );
        let via = text
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Via: "))
            .expect("Via");
        // The answer is read on the socket the request came from, which the Via names.
        assert!(
            via.starts_with(&format!(
                "SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK",
                from.port()
            )),
            "{via}"
        );
        assert!(branches.insert(via.to_owned()), "a new branch per probe");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_address_moved_to_a_dead_port_goes_down_and_back_up() {
    let app = probing_app(300).await;
    let mut changes = watch(&app);
    let peer = Responder::udp(Some("200 OK"), Duration::ZERO).await;
    add_platform(&app, "mover", peer.port, "UDP").await;
    wait_for(&app, "mover", state_is("UP")).await;

    let dead = dead_port().await;
    move_platform(&app, "mover", dead, "TCP").await;
    let down = wait_for(&app, "mover", state_is("DOWN")).await;
    assert_eq!(down["lastError"], "connection refused", "{down}");

    move_platform(&app, "mover", peer.port, "UDP").await;
    wait_for(&app, "mover", state_is("UP")).await;
    let seen: Vec<_> = [(); 3]
        .iter()
        .map(|_| changes.try_recv().map(|c| (c.previous, c.state)))
        .collect();
    assert_eq!(
        seen,
        [
            Ok((ReachabilityState::Unknown, ReachabilityState::Up)),
            Ok((ReachabilityState::Up, ReachabilityState::Down)),
            Ok((ReachabilityState::Down, ReachabilityState::Up)),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_changed_wait_time_takes_effect_at_the_next_probe() {
    let app = probing_app(100).await;
    let slow = Responder::udp(Some("200 OK"), Duration::from_millis(400)).await;
    add_platform(&app, "slow", slow.port, "UDP").await;
    let down = wait_for(&app, "slow", state_is("DOWN")).await;
    assert_eq!(down["lastError"], "timeout");
    set_wait(&app, 5000).await;
    let up = wait_for(&app, "slow", state_is("UP")).await;
    assert!(
        up["lastLatencyMs"].as_f64().expect("latency") >= 400.0,
        "{up}"
    );
    app.stop().await;
}

#[tokio::test]
async fn probing_off_shows_not_probed_and_sends_nothing() {
    let app = TestApp::start_with(&["--probe-interval", "0.05"]).await;
    let silent = Responder::udp(None, Duration::ZERO).await;
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let tcp_port = tcp.local_addr().expect("addr").port();
    add_platform(&app, "udp", silent.port, "UDP").await;
    add_platform(&app, "tcp", tcp_port, "TCP").await;

    let r = reachability(&app, "udp").await;
    assert_eq!(r, json!({"state": "NOT_PROBED", "consecutiveFailures": 0}));
    let data = app
        .gql_ok(
            "{ callRecordingPlatforms { platforms { name reachability { state since lastCheckedAt } } } }",
            json!({}),
        )
        .await;
    for p in data["callRecordingPlatforms"]["platforms"]
        .as_array()
        .expect("list")
    {
        assert_eq!(
            p["reachability"],
            json!({"state": "NOT_PROBED", "since": null, "lastCheckedAt": null})
        );
    }
    // Twenty intervals of the flag given: nothing arrives, neither datagram nor connection.
    let accepted = tokio::time::timeout(Duration::from_secs(1), tcp.accept()).await;
    assert!(accepted.is_err(), "a connection arrived");
    assert_eq!(silent.count(), 0, "a datagram arrived");
    let (_, text) = app.metrics().await;
    assert!(!text.contains("callrec_platform_up{"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn rest_refuses_other_levels_and_unknown_platforms() {
    let app = probing_app(100).await;
    let (status, body) = app.get(&reachability_path("nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["errors"][0]["name"], "NOT_FOUND", "{body}");
    add_platform(&app, "rec", dead_port().await, "TCP").await;
    let group_admin = app.group_admin_token().await;
    let (status, body) = app
        .call(
            Method::GET,
            &reachability_path("rec"),
            Some(&group_admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app
        .call(Method::GET, &reachability_path("rec"), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

const REACHABILITY_QUERY: &str = "{ callRecordingPlatforms { platforms { name
    reachability { state since lastCheckedAt lastLatencyMs consecutiveFailures lastError } } } }";

#[tokio::test]
async fn graphql_shows_reachability_live_to_system_admins_only() {
    let app = probing_app(200).await;
    let mut peer = Some(Responder::udp(Some("200 OK"), Duration::ZERO).await);
    let port = peer.as_ref().map(|p| p.port).unwrap_or_default();
    add_platform(&app, "rec", port, "UDP").await;
    wait_for(&app, "rec", state_is("UP")).await;

    let data = app.gql_ok(REACHABILITY_QUERY, json!({})).await;
    let r = &data["callRecordingPlatforms"]["platforms"][0]["reachability"];
    assert_eq!(r["state"], "UP", "{data}");
    assert!(r["lastLatencyMs"].as_f64().expect("latency") > 0.0);
    assert_eq!(r["lastError"], Value::Null);

    // The same query after the state changed, with no commit in between: not a kept answer.
    peer.take();
    wait_for(&app, "rec", state_is("DOWN")).await;
    let data = app.gql_ok(REACHABILITY_QUERY, json!({})).await;
    let r = &data["callRecordingPlatforms"]["platforms"][0]["reachability"];
    assert_eq!(r["state"], "DOWN", "{data}");
    assert!(r["lastError"].is_string(), "{data}");

    let group_admin = app.group_admin_token().await;
    let answer = app
        .gql_as(Some(&group_admin), REACHABILITY_QUERY, json!({}))
        .await;
    let listed = &answer["data"]["callRecordingPlatforms"]["platforms"][0];
    assert_eq!(listed["name"], "rec", "the list still comes: {answer}");
    assert!(listed["reachability"].is_null(), "{answer}");
    let error = assert_error(&answer, "FORBIDDEN", Some(103));
    assert_eq!(
        error["path"],
        json!(["callRecordingPlatforms", "platforms", 0, "reachability"])
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_up_and_down_platforms_only_while_they_exist() {
    let app = probing_app(100).await;
    let peer = Responder::udp(Some("200 OK"), Duration::ZERO).await;
    let silent = Responder::udp(None, Duration::ZERO).await;
    add_platform(&app, "alive", peer.port, "UDP").await;
    add_platform(&app, "gone", silent.port, "UDP").await;
    wait_for(&app, "alive", state_is("UP")).await;
    wait_for(&app, "gone", state_is("DOWN")).await;
    let metrics = async || app.metrics().await.1;
    let text = metrics().await;
    assert!(
        text.contains("callrec_platform_up{platform=\"alive\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("callrec_platform_up{platform=\"gone\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("callrec_platform_probe_duration_seconds_count"),
        "{text}"
    );
    let (status, body) = app
        .admin(Method::DELETE, &platform_path("gone"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = metrics().await;
    assert!(!text.contains("platform=\"gone\""), "{text}");
    assert!(
        text.contains("callrec_platform_up{platform=\"alive\"} 1\n"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn probes_in_flight_never_exceed_the_concurrency() {
    // Started by hand on a server that does not probe, to see the prober's own count.
    let app = TestApp::start().await;
    set_wait(&app, 300).await;
    let peers =
        futures_util::future::join_all((0..5).map(|_| Responder::udp(None, Duration::ZERO))).await;
    for (i, peer) in peers.iter().enumerate() {
        add_platform(&app, &format!("p{i}"), peer.port, "UDP").await;
    }
    let prober = Prober::start(
        app.service.clone(),
        ProbeOptions {
            interval: Duration::from_millis(50),
            failures: 1,
            concurrency: 2,
        },
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while peers.iter().any(|p| p.count() == 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every platform was probed: {:?}, peak {}",
            peers.iter().map(Responder::count).collect::<Vec<_>>(),
            prober.peak_in_flight()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(prober.peak_in_flight(), 2);
    prober.stop().await;
    let r = reachability(&app, "p0").await;
    assert_eq!(
        r["state"], "NOT_PROBED",
        "a stopped prober shows nothing: {r}"
    );
    app.stop().await;
}

/// The next `next` message of a graphql-transport-ws subscription, within [`WAIT`].
async fn next_event(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a valid message");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] == "next" {
                assert!(value["payload"].get("errors").is_none(), "{value}");
                return value["payload"]["data"]["callRecordingEvents"].clone();
            }
        }
    }
}

#[tokio::test]
async fn subscribers_get_each_change_of_state_live() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let app = probing_app(100).await;
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connected in time")
        .expect("connected");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init",
        "payload": {"Authorization": format!("Bearer {}", app.token)}})))
        .await
        .expect("sent");
    ws.send(send(
        json!({"id": "1", "type": "subscribe", "payload": {"query":
        "subscription { callRecordingEvents { __typename
           ... on CallRecordingPlatformReachabilityChanged { name state previous at } } }"}}),
    ))
    .await
    .expect("sent");
    assert_eq!(
        next_event(&mut ws).await["__typename"],
        "CallRecordingSubscriptionStarted"
    );

    let silent = Responder::udp(None, Duration::ZERO).await;
    add_platform(&app, "watched", silent.port, "UDP").await;
    // The commits (platform added, default set) come first, then the probes' change.
    let mut commits = Vec::new();
    let went_down = loop {
        let event = next_event(&mut ws).await;
        if event["__typename"] == "CallRecordingPlatformReachabilityChanged" {
            break event;
        }
        commits.push(event["__typename"].clone());
    };
    assert_eq!(
        commits,
        ["CallRecordingPlatformAdded", "CallRecordingDefaultChanged"]
    );
    assert_eq!(went_down["name"], "watched");
    assert_eq!(went_down["state"], "DOWN");
    assert_eq!(went_down["previous"], "UNKNOWN");
    assert!(
        went_down["at"].as_str().expect("at").ends_with('Z'),
        "{went_down}"
    );
    app.stop().await;
}
