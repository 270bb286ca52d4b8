//! The abuse bounds against the real binary on 127.0.0.1, for those whose other tests run the
//! router in the test process: look-alike names, a declared oversized body (with and without
//! `Expect: 100-continue`), refresh token rotation and replay, introspection without a token,
//! a silent connection, a WebSocket that only pings, and the subscriptions one socket may hold.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use common::process::Process;
use common::{platform, platforms_path};

const PASSWORD: &str = "abuse-test-password";
const WAIT: Duration = Duration::from_secs(10);

async fn serve(extra: &[&str]) -> (tempfile::TempDir, Process) {
    let data = tempfile::tempdir().expect("temp dir");
    let p =
        Process::serve_with_args(data.path(), &[("CALLREC_ADMIN_PASSWORD", PASSWORD)], extra).await;
    (data, p)
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error_code(body: &Value) -> (u64, &str) {
    let e = &body["errors"][0];
    (
        e["code"].as_u64().unwrap_or(0),
        e["name"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn names_that_look_the_same_are_one_name() {
    let (_data, p) = serve(&[]).await;
    let token = p.login("admin", PASSWORD).await;
    let http = reqwest::Client::new();
    let add = |name: &str| {
        http.post(p.url(&platforms_path()))
            .bearer_auth(&token)
            .json(&platform(name))
    };
    assert_eq!(send(add("Caf\u{e9} Rec")).await.0, StatusCode::OK);
    let (status, body) = send(add("Cafe\u{301} Rec")).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, (11, "ALREADY_EXISTS"))
    );
    for hidden in ["Rec\u{200b}1", "Rec\u{202e}1"] {
        let (status, body) = send(add(hidden)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["details"]["field"], "name", "{body}");
    }
    for username in ["Admin", "\u{ff41}\u{ff44}\u{ff4d}\u{ff49}\u{ff4e}"] {
        let user = json!({"username": username, "password": "another-password", "userLevel": 16});
        let request = http.post(p.url("/api/v1/local/users/")).bearer_auth(&token);
        let (status, body) = send(request.json(&user)).await;
        assert_eq!(
            (status, error_code(&body).0),
            (StatusCode::BAD_REQUEST, 11),
            "{body}"
        );
    }
    let list = p.get(&platforms_path(), &token).await;
    assert_eq!(
        list["callRecordingPlatforms"].as_array().map(Vec::len),
        Some(1)
    );
    let users = p.get("/api/v1/local/users/", &token).await;
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
}

/// The status line and headers of the first answer on `stream`.
async fn answer_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("an answer in time")
            .expect("readable");
        assert_eq!(
            n,
            1,
            "closed before an answer: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_at_once() {
    let (_data, p) = serve(&[]).await;
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut stream = TcpStream::connect(&p.addr).await.expect("connected");
        let request = format!(
            "POST /api/v1/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 1000000000\r\n{expect}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("sent");
        // Not one byte of the body is sent: the answer must come anyway, and not be a 100.
        let head = answer_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{expect:?}: {head}");
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_after_the_grace_ends_the_session() {
    let (_data, p) = serve(&["--refresh-token-grace", "1"]).await;
    let http = reqwest::Client::new();
    let login = json!({"username": "admin", "password": PASSWORD});
    let (_, first) = send(http.post(p.url("/api/v1/login/")).json(&login)).await;
    let refresh = |token: &str| {
        http.get(p.url("/api/v1/auth/access_token/"))
            .bearer_auth(token.to_owned())
    };
    let old = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (status, rotated) = send(refresh(&old)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_owned();
    assert_ne!(new, old);
    let access = rotated["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    // Within the grace the old one still answers; once it has run out, using it is a replay.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = send(refresh(&old)).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grace never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The replay ended the whole session: the new refresh token and its access token too.
    assert_eq!(send(refresh(&new)).await.0, StatusCode::UNAUTHORIZED);
    let list = http.get(p.url(&platforms_path())).bearer_auth(&access);
    assert_eq!(send(list).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn introspection_needs_a_token() {
    let (_data, p) = serve(&[]).await;
    let http = reqwest::Client::new();
    let query = json!({"query": "{ __schema { queryType { name } } }"});
    let (_, refused) = send(http.post(p.url("/graphql")).json(&query)).await;
    assert!(refused["data"]["__schema"].is_null(), "{refused}");
    assert!(refused["errors"].is_array(), "{refused}");
    let token = p.login("admin", PASSWORD).await;
    let (_, answered) = send(
        http.post(p.url("/graphql"))
            .bearer_auth(&token)
            .json(&query),
    )
    .await;
    assert_eq!(
        answered["data"]["__schema"]["queryType"]["name"], "Query",
        "{answered}"
    );
}

/// A WebSocket to the server speaking `graphql-transport-ws`.
async fn websocket(
    p: &Process,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut request = format!("ws://{}/graphql/ws", p.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connected in time")
        .expect("connected");
    ws
}

#[tokio::test]
async fn silent_connections_and_websockets_that_only_ping_are_closed() {
    let (_data, p) = serve(&["--header-read-timeout", "1", "--ws-init-timeout", "1"]).await;
    let mut silent = TcpStream::connect(&p.addr).await.expect("connected");
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(WAIT, silent.read(&mut buffer))
        .await
        .expect("closed within the timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    let mut ws = websocket(&p).await;
    let closed = tokio::time::timeout(WAIT, async {
        let mut pings = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = pings.tick() => {
                    let _ = ws.send(Message::Text(json!({"type": "ping"}).to_string().into())).await;
                }
                message = ws.next() => match message {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    _ => return None,
                },
            }
        }
    })
    .await
    .expect("closed within the init timeout");
    assert_eq!(closed, Some(4408));
}

#[tokio::test]
async fn a_socket_holds_at_most_its_subscriptions() {
    let (_data, p) = serve(&["--graphql-subscriptions-per-socket", "2"]).await;
    let token = p.login("admin", PASSWORD).await;
    let mut ws = websocket(&p).await;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .expect("sent");
    let mut answers = std::collections::HashMap::new();
    let subscribe = |id: &str| {
        json!({"id": id, "type": "subscribe", "payload": {"query":
            "subscription { callRecordingEvents { __typename } }"}})
    };
    for id in ["1", "2", "3"] {
        ws.send(Message::Text(subscribe(id).to_string().into()))
            .await
            .expect("sent");
    }
    // The first message of each: the two first start, the third is refused.
    while answers.len() < 3 {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("a message");
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).expect("JSON");
        if let Some(id) = value["id"].as_str() {
            answers.entry(id.to_owned()).or_insert(value);
        }
    }
    for id in ["1", "2"] {
        let started = &answers[id]["payload"]["data"]["callRecordingEvents"]["__typename"];
        assert_eq!(
            started, "CallRecordingSubscriptionStarted",
            "{:?}",
            answers[id]
        );
    }
    let refused = &answers["3"];
    let errors = match refused["type"].as_str() {
        Some("error") => &refused["payload"],
        _ => &refused["payload"]["errors"],
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
        "{refused}"
    );
    assert!(refused["payload"]["data"].is_null(), "{refused}");
}
