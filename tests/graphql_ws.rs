//! Subscriptions over a real WebSocket, in both protocols. Every wait is on a message, bounded
//! by a timeout; nothing sleeps.

mod common;

use common::callers::must;
use common::ws::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn rest_and_graphql_changes_arrive_in_commit_order() {
    let app = TestApp::start().await;
    let mut client = subscribed(&app).await;

    // REST add; GraphQL add; GraphQL modify with a new default; REST properties; GraphQL
    // delete; REST modify.
    must(&app, Method::POST, &platforms_path(), platform("A")).await;
    app.gql_add_platform("B").await;
    app.gql_ok(
        "mutation { modifyCallRecordingPlatform(name: \"B\", input: {makeDefault: true, port: null}) { name } }",
        json!({}),
    )
    .await;
    must(
        &app,
        Method::PUT,
        &format!("{CALL_RECORDING}/properties/"),
        json!({"refreshPeriodSeconds": 120}),
    )
    .await;
    app.gql_ok(
        "mutation { deleteCallRecordingPlatform(name: \"A\") { name } }",
        json!({}),
    )
    .await;
    must(
        &app,
        Method::PUT,
        &platform_path("B"),
        json!({"description": ""}),
    )
    .await;

    let expected = [
        json!({"__typename": "CallRecordingPlatformAdded", "platform": {"name": "A", "port": 222, "isDefault": true}}),
        json!({"__typename": "CallRecordingDefaultChanged", "previousDefault": null, "systemDefault": "A"}),
        json!({"__typename": "CallRecordingPlatformAdded", "platform": {"name": "B", "port": 222, "isDefault": false}}),
        json!({"__typename": "CallRecordingPlatformModified", "platform": {"name": "B", "port": null, "description": "test description", "isDefault": true}}),
        json!({"__typename": "CallRecordingDefaultChanged", "previousDefault": "A", "systemDefault": "B"}),
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
                // 4403 Forbidden: the graphql-ws client retries with fresh connectionParams.
                assert_eq!(code, 4403, "{payload}");
                assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
            }
            other => panic!("refusal expected for {payload}, got {other:?}"),
        }
    }
    // graphql-ws says so with connection_error, then closes the socket with a close frame.
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
    match client.receive().await {
        Received::Closed(code, reason) => {
            assert_eq!(code, 4403);
            assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
        }
        other => panic!("a close frame expected, got {other:?}"),
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
    let mut client = accepted(&app, &token).await;
    client.request_events("1").await;
    client.fails("1", "FORBIDDEN", Some(103)).await;
    app.stop().await;
}

#[tokio::test]
async fn the_stream_ends_when_the_subscriber_loses_its_session() {
    let app = TestApp::start().await;
    let token = app.user_token("watcher", 16, None, None).await;
    let mut client = accepted(&app, &token).await;
    client.subscribe_events("1").await;
    // The deletion is the only commit: the stream ends without waiting for another event.
    let (status, _) = app
        .admin(Method::DELETE, "/api/v1/local/users/watcher/", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    client.fails("1", "UNAUTHENTICATED", Some(102)).await;
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
    app.gql_add_platform("A").await;
    app.gql_ok(
        "mutation { addTenant(tenantId: \"t1\") { tenantId } addGroup(tenantId: \"t1\", groupId: \"g1\") { groupId } }",
        json!({}),
    )
    .await;
    let mut client = subscribed(&app).await;

    must(
        &app,
        Method::PUT,
        "/api/v1/tenants/t1/groups/g1/services/call_recording/",
        json!({"name": "A"}),
    )
    .await;
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
                   "previousPlatform": previous, "callRecordingPlatform": platform})
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

/// How long the tests give a connection to send `connection_init`.
const SHORT_INIT: &[&str] = &["--ws-init-timeout", "1"];

#[tokio::test]
async fn a_connection_not_initialised_in_time_is_closed_with_4408() {
    let app = TestApp::start_with(SHORT_INIT).await;
    // Silent.
    let mut silent = Client::connect(&app, "graphql-transport-ws", None).await;
    let (code, reason) = silent.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (4408, "Connection initialisation timeout")
    );

    // Protocol pings and WebSocket pings, but no connection_init: answered, and closed all the
    // same.
    let mut pinging = Client::connect(&app, "graphql-transport-ws", None).await;
    let pings = async {
        loop {
            pinging.send(json!({"type": "ping"})).await;
            let _ = pinging.ws.send(Message::Ping(vec![1].into())).await;
            match pinging.receive().await {
                Received::Json(pong) => assert_eq!(pong["type"], "pong", "{pong}"),
                Received::Closed(code, reason) => return (code, reason),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let (code, _) = tokio::time::timeout(WAIT, pings)
        .await
        .expect("closed in time");
    assert_eq!(code, 4408);

    // The older protocol: connection_error, then a close frame.
    let mut legacy = Client::connect(&app, "graphql-ws", None).await;
    let error = legacy.json().await;
    assert_eq!(error["type"], "connection_error", "{error}");
    assert_eq!(legacy.closed().await.0, 4408);

    // A connection accepted in time stays open past the timeout.
    let mut client = accepted(&app, &app.token).await;
    client.subscribe_events("1").await;
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(1500),
        std::future::pending::<()>(),
    )
    .await;
    app.gql_ok(
        "mutation { modifyCallRecordingProperties(input: {refreshPeriodSeconds: 45}) { refreshPeriodSeconds } }",
        json!({}),
    )
    .await;
    assert_eq!(
        client.event("1").await["__typename"],
        "CallRecordingPropertiesModified"
    );
    app.stop().await;
}

/// Logs in as a new System Admin; returns its access and refresh tokens.
async fn watcher(app: &TestApp, username: &str) -> (String, String) {
    app.add_user(username, "watcher-password", 16, None, None)
        .await;
    app.login_tokens(username, "watcher-password").await
}

/// The subscription ends with UNAUTHENTICATED, then `complete`, with no event in between.
async fn ends_unauthenticated(client: &mut Client) -> String {
    let error = client.fails("1", "UNAUTHENTICATED", Some(102)).await;
    error["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_logout_ends_the_subscription_at_once() {
    let app = TestApp::start().await;
    let (access, refresh) = watcher(&app, "watcher").await;
    let mut client = accepted(&app, &access).await;
    client.subscribe_events("1").await;
    let (status, body) = app.logout(&access, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let message = ends_unauthenticated(&mut client).await;
    assert!(message.contains("session"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_ends_the_subscription_at_once() {
    let app = TestApp::start_with(&["--access-token-ttl", "2"]).await;
    let (access, _) = watcher(&app, "watcher").await;
    let mut client = accepted(&app, &access).await;
    client.subscribe_events("1").await;
    // Nothing is committed: only the expiry can end it (within WAIT).
    let message = ends_unauthenticated(&mut client).await;
    assert!(message.contains("expired"), "{message}");
    app.stop().await;
}

/// The ids of the next `n` events on `client`, each a properties change, sorted (the
/// subscriptions of one socket are served in no particular order).
async fn changed(client: &mut Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let message = client.json().await;
        assert_eq!(
            message["payload"]["data"]["callRecordingEvents"]["__typename"],
            "CallRecordingPropertiesModified",
            "{message}"
        );
        ids.push(message["id"].as_str().unwrap_or_default().to_owned());
    }
    ids.sort();
    ids
}

/// Subscribing as `id` is refused with TOO_MANY_SUBSCRIPTIONS, the message naming `cap`
/// (which cap was reached), then `complete`.
async fn refused(client: &mut Client, id: &str, cap: &str) {
    client.request_events(id).await;
    let error = client.fails(id, "TOO_MANY_SUBSCRIPTIONS", None).await;
    assert!(error["message"].as_str().unwrap().contains(cap), "{error}");
}

#[tokio::test]
async fn subscriptions_are_capped_per_socket_and_in_total() {
    let app = TestApp::start_with(&[
        "--graphql-subscriptions-per-socket",
        "3",
        "--graphql-max-subscriptions",
        "5",
    ])
    .await;
    let token = app.token.clone();
    let mut first = accepted(&app, &token).await;
    for id in ["1", "2", "3"] {
        first.subscribe_events(id).await;
    }
    // A fourth on the same socket is refused; the socket and its subscriptions go on.
    refused(&mut first, "4", "connection").await;

    // The server's cap: two more on another socket, the third refused.
    let mut second = accepted(&app, &token).await;
    for id in ["1", "2"] {
        second.subscribe_events(id).await;
    }
    refused(&mut second, "3", "server").await;

    // Every open subscription still gets the next change.
    app.gql_ok(
        "mutation { modifyCallRecordingProperties(input: {refreshPeriodSeconds: 90}) { refreshPeriodSeconds } }",
        json!({}),
    )
    .await;
    assert_eq!(changed(&mut first, 3).await, ["1", "2", "3"]);
    assert_eq!(changed(&mut second, 2).await, ["1", "2"]);

    // Ending one gives its place back.
    first.send(json!({"id": "1", "type": "complete"})).await;
    drop(first);
    let mut third = accepted(&app, &token).await;
    let subscribed = async {
        loop {
            third.request_events("x").await;
            let payload = third.next_payload("x").await;
            if payload.get("errors").is_none() {
                return;
            }
            assert_eq!(third.json().await, json!({"type": "complete", "id": "x"}));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, subscribed)
        .await
        .expect("a place is given back once a subscription ends");
    app.stop().await;
}
