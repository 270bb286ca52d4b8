//! Subscriptions over a real WebSocket, in both protocols. Every wait is on a message, bounded
//! by a timeout; nothing sleeps.

mod common;

use std::time::Duration;

use common::graphql::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);

const EVENTS: &str = "subscription { callRecordingEvents { __typename
  ... on CallRecordingSubscriptionStarted { live }
  ... on CallRecordingPlatformAdded { platform { name port isDefault } }
  ... on CallRecordingPlatformModified { platform { name port description isDefault } }
  ... on CallRecordingPlatformDeleted { name }
  ... on CallRecordingDefaultChanged { previous current }
  ... on CallRecordingPropertiesModified { properties { refreshPeriodSeconds } }
  ... on GroupCallRecordingPlatformAssigned { group { tenantId groupId } previous platform } } }";

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent: a JSON text message, or a close frame (code, reason).
#[derive(Debug)]
enum Received {
    Json(Value),
    Closed(u16, String),
}

impl Client {
    async fn connect(app: &TestApp, protocol: &str, authorization: Option<&str>) -> Client {
        let mut request = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .expect("request");
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
        if let Some(value) = authorization {
            headers.insert("Authorization", HeaderValue::from_str(value).unwrap());
        }
        let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connected in time")
            .expect("connected");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            protocol,
            "the server speaks the protocol asked for"
        );
        Client { ws }
    }

    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    async fn receive(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("a valid message");
            match message {
                Message::Text(text) => {
                    return Received::Json(serde_json::from_str(&text).expect("JSON"));
                }
                Message::Close(frame) => {
                    return match frame {
                        Some(f) => Received::Closed(f.code.into(), f.reason.to_string()),
                        None => Received::Closed(1005, String::new()),
                    };
                }
                _ => continue,
            }
        }
    }

    async fn json(&mut self) -> Value {
        match self.receive().await {
            Received::Json(v) => v,
            other => panic!("a JSON message expected, got {other:?}"),
        }
    }

    /// connection_init with this payload; returns the answer.
    async fn init(&mut self, payload: Value) -> Received {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        self.receive().await
    }

    /// The payload of the next `next` (graphql-transport-ws) or `data` (graphql-ws) message.
    async fn next_payload(&mut self, id: &str) -> Value {
        let message = self.json().await;
        assert!(
            message["type"] == "next" || message["type"] == "data",
            "a result expected: {message}"
        );
        assert_eq!(message["id"], id);
        message["payload"].clone()
    }

    /// The next event of subscription `id`, with no errors.
    async fn event(&mut self, id: &str) -> Value {
        let payload = self.next_payload(id).await;
        assert!(payload.get("errors").is_none(), "{payload}");
        payload["data"]["callRecordingEvents"].clone()
    }
}

async fn subscribed(app: &TestApp) -> Client {
    let mut client = Client::connect(app, "graphql-transport-ws", None).await;
    let token = app.token.clone();
    match client
        .init(json!({"Authorization": format!("Bearer {token}")}))
        .await
    {
        Received::Json(ack) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
        other => panic!("connection_ack expected, got {other:?}"),
    }
    client
        .send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    let started = client.event("1").await;
    assert_eq!(
        started,
        json!({"__typename": "CallRecordingSubscriptionStarted", "live": true})
    );
    client
}

#[tokio::test]
async fn rest_and_graphql_changes_arrive_in_commit_order() {
    let app = TestApp::start().await;
    let mut client = subscribed(&app).await;

    // REST add; GraphQL add; GraphQL modify with a new default; REST properties; GraphQL
    // delete; REST modify.
    let (status, _) = app
        .admin(Method::POST, &platforms_path(), Some(platform("A")))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.gql_ok(
        "mutation($i: AddCallRecordingPlatformInput!) { addCallRecordingPlatform(input: $i) { name } }",
        json!({"i": platform_input("B")}),
    )
    .await;
    app.gql_ok(
        "mutation { modifyCallRecordingPlatform(name: \"B\", input: {makeDefault: true, port: null}) { name } }",
        json!({}),
    )
    .await;
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("{CALL_RECORDING}/properties/"),
            Some(json!({"refreshPeriodSeconds": 120})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.gql_ok(
        "mutation { deleteCallRecordingPlatform(name: \"A\") { name } }",
        json!({}),
    )
    .await;
    let (status, _) = app
        .admin(
            Method::PUT,
            &platform_path("B"),
            Some(json!({"description": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let expected = [
        json!({"__typename": "CallRecordingPlatformAdded", "platform": {"name": "A", "port": 222, "isDefault": true}}),
        json!({"__typename": "CallRecordingDefaultChanged", "previous": null, "current": "A"}),
        json!({"__typename": "CallRecordingPlatformAdded", "platform": {"name": "B", "port": 222, "isDefault": false}}),
        json!({"__typename": "CallRecordingPlatformModified", "platform": {"name": "B", "port": null, "description": "test description", "isDefault": true}}),
        json!({"__typename": "CallRecordingDefaultChanged", "previous": "A", "current": "B"}),
        json!({"__typename": "CallRecordingPropertiesModified", "properties": {"refreshPeriodSeconds": 120}}),
        json!({"__typename": "CallRecordingPlatformDeleted", "name": "A"}),
        json!({"__typename": "CallRecordingPlatformModified", "platform": {"name": "B", "port": null, "description": null, "isDefault": true}}),
    ];
    for want in expected {
        assert_eq!(client.event("1").await, want);
    }

    // complete ends the subscription; the server acknowledges nothing more for it.
    client.send(json!({"id": "1", "type": "complete"})).await;
    app.stop().await;
}

#[tokio::test]
async fn the_legacy_protocol_and_a_header_token_work_too() {
    let app = TestApp::start().await;
    let token = app.token.clone();
    let mut client = Client::connect(&app, "graphql-ws", Some(&format!("Bearer {token}"))).await;
    match client.init(json!({})).await {
        Received::Json(ack) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
        other => panic!("connection_ack expected, got {other:?}"),
    }
    client
        .send(json!({"id": "7", "type": "start", "payload": {"query": EVENTS}}))
        .await;
    assert_eq!(
        client.event("7").await["__typename"],
        "CallRecordingSubscriptionStarted"
    );
    app.gql_ok(
        "mutation { modifyCallRecordingProperties(input: {maxConsecutiveFailures: 3}) { maxConsecutiveFailures } }",
        json!({}),
    )
    .await;
    assert_eq!(
        client.event("7").await,
        json!({"__typename": "CallRecordingPropertiesModified", "properties": {"refreshPeriodSeconds": 60}})
    );
    app.stop().await;
}

#[tokio::test]
async fn queries_work_over_the_socket_too() {
    let app = TestApp::start().await;
    let mut client = subscribed(&app).await;
    client
        .send(json!({"id": "q", "type": "subscribe", "payload": {"query": "{ me { username } }"}}))
        .await;
    let payload = client.next_payload("q").await;
    assert_eq!(payload["data"]["me"]["username"], "admin");
    let complete = client.json().await;
    assert_eq!(complete, json!({"type": "complete", "id": "q"}));
    app.stop().await;
}

#[tokio::test]
async fn a_connection_without_valid_credentials_is_refused() {
    let app = TestApp::start().await;
    for payload in [
        json!({}),
        json!({"Authorization": "Bearer not-a-token"}),
        json!({"authorization": "Basic YWRtaW46YWRtaW4="}),
    ] {
        let mut client = Client::connect(&app, "graphql-transport-ws", None).await;
        match client.init(payload.clone()).await {
            Received::Closed(code, reason) => {
                assert_eq!(code, 1002, "{payload}");
                assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
            }
            other => panic!("refusal expected for {payload}, got {other:?}"),
        }
    }
    // graphql-ws says so with connection_error.
    let mut client = Client::connect(&app, "graphql-ws", None).await;
    match client.init(json!({"authorization": "Bearer nope"})).await {
        Received::Json(error) => {
            assert_eq!(error["type"], "connection_error", "{error}");
            assert!(
                error["payload"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("UNAUTHENTICATED"))
            );
        }
        other => panic!("connection_error expected, got {other:?}"),
    }
    // The payload's token wins over a bad header, lowercase key accepted.
    let token = app.token.clone();
    let mut client = Client::connect(&app, "graphql-transport-ws", Some("Bearer stale")).await;
    match client
        .init(json!({"authorization": format!("Bearer {token}")}))
        .await
    {
        Received::Json(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("connection_ack expected, got {other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn a_group_admin_may_not_subscribe() {
    let app = TestApp::start().await;
    let token = app.group_admin_token().await;
    let mut client = Client::connect(&app, "graphql-transport-ws", None).await;
    match client
        .init(json!({"Authorization": format!("Bearer {token}")}))
        .await
    {
        Received::Json(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("connection_ack expected, got {other:?}"),
    }
    client
        .send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    let payload = client.next_payload("1").await;
    assert_error(&payload, "FORBIDDEN", Some(103));
    assert_eq!(client.json().await, json!({"type": "complete", "id": "1"}));
    app.stop().await;
}

#[tokio::test]
async fn the_stream_ends_when_the_subscriber_loses_its_session() {
    let app = TestApp::start().await;
    let token = app.user_token("watcher", 16, None, None).await;
    let mut client = Client::connect(&app, "graphql-transport-ws", None).await;
    match client
        .init(json!({"Authorization": format!("Bearer {token}")}))
        .await
    {
        Received::Json(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("connection_ack expected, got {other:?}"),
    }
    client
        .send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    assert_eq!(
        client.event("1").await["__typename"],
        "CallRecordingSubscriptionStarted"
    );
    let (status, _) = app
        .admin(Method::DELETE, "/api/v1/local/users/watcher/", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    app.gql_ok(
        "mutation { modifyCallRecordingProperties(input: {refreshPeriodSeconds: 30}) { refreshPeriodSeconds } }",
        json!({}),
    )
    .await;
    let payload = client.next_payload("1").await;
    assert_error(&payload, "UNAUTHENTICATED", Some(102));
    assert_eq!(client.json().await, json!({"type": "complete", "id": "1"}));
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_message_ends_the_connection() {
    let app = TestApp::start().await;
    let mut client = subscribed(&app).await;
    let huge = json!({"id": "2", "type": "subscribe",
                      "payload": {"query": format!("{{ me {{ username }} }} #{}", "x".repeat(70 * 1024))}});
    // The server may already be gone while the message is still being written.
    let _ = client.ws.send(Message::Text(huge.to_string().into())).await;
    let ended = tokio::time::timeout(WAIT, client.ws.next())
        .await
        .expect("the connection ends in time");
    match ended {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {}
        Some(Ok(other)) => panic!("no answer expected, got {other:?}"),
    }
    // The server is fine.
    app.gql_ok("{ me { username } }", json!({})).await;
    app.stop().await;
}

#[tokio::test]
async fn group_assignments_from_rest_and_graphql_arrive() {
    let app = TestApp::start().await;
    app.gql_ok(
        "mutation($i: AddCallRecordingPlatformInput!) { addCallRecordingPlatform(input: $i) { name } }",
        json!({"i": platform_input("A")}),
    )
    .await;
    app.gql_ok(
        "mutation { addTenant(tenantId: \"t1\") { tenantId } addGroup(tenantId: \"t1\", groupId: \"g1\") { groupId } }",
        json!({}),
    )
    .await;
    let mut client = subscribed(&app).await;

    let (status, _) = app
        .admin(
            Method::PUT,
            "/api/v1/tenants/t1/groups/g1/services/call_recording/",
            Some(json!({"name": "A"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.gql_ok(
        "mutation { setGroupCallRecordingPlatform(tenantId: \"t1\", groupId: \"g1\", name: null) { groupId } }",
        json!({}),
    )
    .await;
    app.gql_ok(
        "mutation { setGroupCallRecordingPlatform(tenantId: \"t1\", groupId: \"g1\", name: \"A\") { groupId } }",
        json!({}),
    )
    .await;
    let group = json!({"tenantId": "t1", "groupId": "g1"});
    for (previous, platform) in [
        (Value::Null, json!("A")),
        (json!("A"), Value::Null),
        (Value::Null, json!("A")),
    ] {
        assert_eq!(
            client.event("1").await,
            json!({"__typename": "GroupCallRecordingPlatformAssigned", "group": group,
                   "previous": previous, "platform": platform})
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_subscriptions_with_going_away() {
    let app = TestApp::start().await;
    let mut first = subscribed(&app).await;
    // A connection that has not even sent connection_init is closed too.
    let mut silent = Client::connect(&app, "graphql-transport-ws", None).await;

    // Stopping waits for the sockets to close (well within the grace period), then returns.
    tokio::time::timeout(WAIT, app.stop())
        .await
        .expect("the server stops in time");

    for client in [&mut first, &mut silent] {
        match client.receive().await {
            Received::Closed(code, reason) => {
                assert_eq!(code, 1001);
                assert_eq!(reason, "the server is stopping");
            }
            other => panic!("a close frame expected, got {other:?}"),
        }
    }
    // Nothing follows the close frame.
    let after = tokio::time::timeout(WAIT, first.ws.next())
        .await
        .expect("the connection ends in time");
    assert!(!matches!(after, Some(Ok(Message::Text(_)))), "{after:?}");
}
