//! The change log: one entry per commit with who, when, which request and what changed; the
//! audit trail over REST and GraphQL with its filters and pages; events published from the log
//! whether or not their request is still there; subscriptions resumed from a cursor.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::callers::PASSWORD;
use common::graphql::assert_error;
use common::ws::{Client, Received, WAIT, accepted};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const AUDIT: &str = "/api/v1/audit/";

/// Every entry of the audit trail, read page by page.
async fn all_entries(app: &TestApp, query: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let path = match &after {
            Some(c) => format!("{AUDIT}?limit=7&after={c}{query}"),
            None => format!("{AUDIT}?limit=7{query}"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return entries,
        }
    }
    panic!("the audit trail never ended");
}

/// Sends a REST request as `token` with `x-request-id: id`.
async fn with_id(
    app: &TestApp,
    id: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("x-request-id", id);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn gql_with_id(app: &TestApp, id: &str, query: &str) -> Value {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.token)
        .header("x-request-id", id)
        .json(&json!({"query": query, "variables": {"input": graphql::platform_input("C")}}))
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("JSON");
    assert!(body.get("errors").is_none(), "{body}");
    body
}

fn last_sequence(entries: &[Value]) -> u64 {
    entries
        .last()
        .and_then(|e| e["sequence"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_mutation_over_rest_and_graphql_makes_one_entry_with_actor_and_request_id() {
    let app = TestApp::start().await;
    let admin = app.token.clone();
    let start = all_entries(&app, "").await;
    // The bootstrap of the new store is the system's.
    assert_eq!(start[0]["actor"], "system", "{start:?}");
    assert_eq!(start[0]["operation"], "bootstrap");
    assert!(
        start
            .iter()
            .any(|e| e["operation"] == "addUser" && e["actor"] == "system")
    );
    let sequences: Vec<u64> = start
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=sequences.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );

    let platforms = format!("{CALL_RECORDING}/platforms/");
    let rest: Vec<(&str, Method, String, Option<Value>, &str)> = vec![
        (
            "r1",
            Method::POST,
            platforms.clone(),
            Some(platform("A")),
            "addPlatform",
        ),
        (
            "r2",
            Method::POST,
            platforms.clone(),
            Some(platform("B")),
            "addPlatform",
        ),
        (
            "r3",
            Method::PUT,
            platform_path("B"),
            Some(json!({"default": true})),
            "modifyPlatform",
        ),
        (
            "r4",
            Method::PUT,
            format!("{CALL_RECORDING}/properties/"),
            Some(json!({"refreshPeriodSeconds": 90})),
            "modifyProperties",
        ),
        (
            "r5",
            Method::POST,
            "/api/v1/tenants/".into(),
            Some(json!({"tenantId": "T"})),
            "addTenant",
        ),
        (
            "r6",
            Method::POST,
            "/api/v1/tenants/T/groups/".into(),
            Some(json!({"groupId": "G"})),
            "addGroup",
        ),
        (
            "r7",
            Method::PUT,
            "/api/v1/tenants/T/groups/G/services/call_recording/".into(),
            Some(json!({"name": "A"})),
            "assignGroupPlatform",
        ),
        (
            "r8",
            Method::POST,
            "/api/v1/local/users/".into(),
            Some(json!({"username": "ops", "password": PASSWORD, "userLevel": 16})),
            "addUser",
        ),
        (
            "r9",
            Method::DELETE,
            "/api/v1/tenants/T/groups/G/".into(),
            None,
            "deleteGroup",
        ),
        (
            "r10",
            Method::DELETE,
            "/api/v1/tenants/T/".into(),
            None,
            "deleteTenant",
        ),
        (
            "r11",
            Method::DELETE,
            platform_path("A"),
            None,
            "deletePlatform",
        ),
        (
            "r12",
            Method::DELETE,
            "/api/v1/local/users/ops/".into(),
            None,
            "deleteUser",
        ),
    ];
    for (id, method, path, body, _) in &rest {
        let (status, answer) = with_id(&app, id, method.clone(), path, &admin, body.clone()).await;
        assert!(status.is_success(), "{id}: {status} {answer}");
    }
    // Refused requests make no entry.
    let (status, _) = with_id(
        &app,
        "refused",
        Method::PUT,
        &platform_path("B"),
        &admin,
        Some(json!({"default": false})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = with_id(
        &app,
        "refused",
        Method::POST,
        &platforms,
        &admin,
        Some(platform("B")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let graphql = [
        (
            "g1",
            "mutation($input: AddCallRecordingPlatformInput!) { addCallRecordingPlatform(input: $input) { name } }",
            "addPlatform",
        ),
        (
            "g2",
            "mutation { modifyCallRecordingPlatform(name: \"C\", input: {port: 5060}) { name } }",
            "modifyPlatform",
        ),
        (
            "g3",
            "mutation { modifyCallRecordingProperties(input: {maxConsecutiveFailures: 3}) { maxConsecutiveFailures } }",
            "modifyProperties",
        ),
        (
            "g4",
            "mutation { addTenant(tenantId: \"U\") { tenantId } }",
            "addTenant",
        ),
        (
            "g5",
            "mutation { addGroup(tenantId: \"U\", groupId: \"H\") { groupId } }",
            "addGroup",
        ),
        (
            "g6",
            "mutation { setGroupCallRecordingPlatform(tenantId: \"U\", groupId: \"H\", name: \"C\") { groupId } }",
            "assignGroupPlatform",
        ),
    ];
    for (id, query, _) in &graphql {
        gql_with_id(&app, id, query).await;
    }
    // A login and a logout are entries too, by the user.
    let (access, refresh) = app.login_tokens("admin", ADMIN_PASSWORD).await;
    let (status, _) = with_id(
        &app,
        "lo",
        Method::POST,
        "/api/v1/logout/",
        &access,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let entries = all_entries(&app, "").await;
    let new = &entries[start.len()..];
    let mut expected: Vec<(String, &str)> = rest
        .iter()
        .map(|(id, _, _, _, op)| (id.to_string(), *op))
        .collect();
    expected.extend(graphql.iter().map(|(id, _, op)| (id.to_string(), *op)));
    let seen: Vec<(String, String)> = new
        .iter()
        .filter(|e| e["operation"] != "login" && e["operation"] != "logout")
        .map(|e| {
            (
                e["requestId"].as_str().unwrap_or("").to_owned(),
                e["operation"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(i, o)| (i, o.to_owned()))
        .collect();
    assert_eq!(seen, expected);
    for entry in new {
        assert_eq!(entry["actor"], "admin", "{entry}");
        assert_eq!(entry["cursor"], entry["sequence"].to_string().as_str());
        assert!(
            entry["at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{entry}"
        );
    }
    let logout = new
        .iter()
        .find(|e| e["operation"] == "logout")
        .expect("logout entry");
    assert_eq!(logout["requestId"], "lo");
    assert!(new.iter().any(|e| e["operation"] == "login"));
    assert_eq!(
        new.iter()
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (start.len() as u64 + 1..=last_sequence(&entries)).collect::<Vec<_>>(),
        "one entry per commit, gap-free"
    );
    // What changed, before and after: the default moved from A to B.
    let moved = &new[2];
    let default = moved["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "default")
        .expect("a default change");
    assert_eq!(
        (&default["before"], &default["after"]),
        (&json!("A"), &json!("B"))
    );
    let assigned = &new[6]["changes"][0];
    assert_eq!(assigned["kind"], "group");
    assert_eq!(assigned["key"], "T/G");
    assert_eq!(assigned["before"]["platform"], Value::Null);
    assert_eq!(assigned["after"]["platform"], "A");
    app.stop().await;
}

#[tokio::test]
async fn no_entry_holds_a_password_hash_or_token() {
    let app = TestApp::start().await;
    app.add_user("ops", PASSWORD, 16, None, None).await;
    let (access, refresh) = app.login_tokens("ops", PASSWORD).await;
    let (_, refreshed) = app.refresh(&refresh).await;
    let (access2, refresh2) = tokens_of(&refreshed);
    app.logout(&access2, &refresh2).await;
    let console = callrec_gateway::model::Principal::console();
    app.service
        .set_password(&console, "ops", "another-long-password")
        .await
        .expect("password set");
    let entries = all_entries(&app, "").await;
    let text = serde_json::to_string(&entries).unwrap();
    let service = app.service.clone();
    let hashes: Vec<String> = service
        .users(&callrec_gateway::model::Principal::console())
        .unwrap()
        .into_iter()
        .map(|u| u.password_hash)
        .collect();
    for secret in [
        PASSWORD,
        ADMIN_PASSWORD,
        "another-long-password",
        &access,
        &refresh,
        &access2,
        &refresh2,
        &app.token,
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(hashes)
    {
        assert!(!text.contains(&secret), "an entry holds a secret: {secret}");
    }
    assert!(!text.contains("$argon2"));
    assert!(
        entries
            .iter()
            .any(|e| e["operation"] == "login" && e["actor"] == "ops")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["operation"] == "refresh" && e["actor"] == "ops")
    );
    assert!(entries.iter().any(|e| e["operation"] == "setPassword"));
    app.stop().await;
}

#[tokio::test]
async fn filters_pages_and_bounds() {
    let app = TestApp::start().await;
    app.add_user("ops", PASSWORD, 16, None, None).await;
    let ops = app.login("ops", PASSWORD).await;
    let platforms = format!("{CALL_RECORDING}/platforms/");
    app.admin(Method::POST, &platforms, Some(platform("A")))
        .await;
    app.call(Method::POST, &platforms, Some(&ops), Some(platform("B")))
        .await;
    app.admin(
        Method::POST,
        "/api/v1/tenants/",
        Some(json!({"tenantId": "T"})),
    )
    .await;
    app.admin(
        Method::POST,
        "/api/v1/tenants/T/groups/",
        Some(json!({"groupId": "G"})),
    )
    .await;
    app.call(
        Method::PUT,
        "/api/v1/tenants/T/groups/G/services/call_recording/",
        Some(&ops),
        Some(json!({"name": "B"})),
    )
    .await;
    app.call(
        Method::PUT,
        &platform_path("B"),
        Some(&ops),
        Some(json!({"default": true})),
    )
    .await;
    app.admin(
        Method::PUT,
        &platform_path("A"),
        Some(json!({"port": 5070})),
    )
    .await;

    let by_ops = all_entries(&app, "&actor=ops").await;
    assert!(!by_ops.is_empty());
    assert!(by_ops.iter().all(|e| e["actor"] == "ops"));
    let ops_ops: BTreeSet<&str> = by_ops
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops_ops,
        BTreeSet::from([
            "login",
            "addPlatform",
            "assignGroupPlatform",
            "modifyPlatform"
        ])
    );

    let on_a: Vec<String> = all_entries(&app, "&platform=A")
        .await
        .iter()
        .map(|e| e["operation"].as_str().unwrap().to_owned())
        .collect();
    // Added, made default (first), unmade default, modified.
    assert_eq!(on_a, ["addPlatform", "modifyPlatform", "modifyPlatform"]);
    let on_b: Vec<String> = all_entries(&app, "&platform=B")
        .await
        .iter()
        .map(|e| e["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        on_b,
        ["addPlatform", "assignGroupPlatform", "modifyPlatform"]
    );

    let everything = all_entries(&app, "").await;
    let middle = &everything[everything.len() / 2]["at"];
    let since = all_entries(&app, &format!("&since={}", middle.as_str().unwrap())).await;
    let until = all_entries(&app, &format!("&until={}", middle.as_str().unwrap())).await;
    assert_eq!(
        since.len() + until.len(),
        everything.len(),
        "since inclusive, until exclusive"
    );
    assert!(since.iter().all(|e| e["at"].as_str() >= middle.as_str()));
    // Other offsets than Z are understood.
    let (status, _) = app
        .get(&format!("{AUDIT}?since=2000-01-01T01:00:00%2B01:00"))
        .await;
    assert_eq!(status, StatusCode::OK);

    for bad in [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=x",
        "after=x",
        "since=yesterday",
        "until=2020-13-01T00:00:00Z",
        "colour=blue",
    ] {
        let (status, body) = app.get(&format!("{AUDIT}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errors"][0]["code"], 100, "{bad}: {body}");
    }
    let (status, _) = app
        .call(
            Method::GET,
            AUDIT,
            Some(&app.group_admin_token().await),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.call(Method::GET, AUDIT, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A cursor stays valid while entries are added: the next page starts right after it.
    let (_, first) = app.get(&format!("{AUDIT}?limit=3")).await;
    let next = first["next"].as_str().expect("more").to_owned();
    for name in ["X", "Y"] {
        app.admin(Method::POST, &platforms, Some(platform(name)))
            .await;
    }
    let (_, second) = app.get(&format!("{AUDIT}?limit=3&after={next}")).await;
    assert_eq!(
        second["entries"][0]["sequence"].as_u64(),
        first["entries"][2]["sequence"].as_u64().map(|s| s + 1)
    );
    let (_, end) = app.get(&format!("{AUDIT}?limit=500")).await;
    assert_eq!(end["next"], Value::Null);

    // The same through GraphQL: a connection, read from either end.
    let page = app
        .gql_ok(
            "query($after: String) { auditLog(first: 2, after: $after, actor: \"ops\") {
                edges { cursor node { sequence at actor requestId operation changes { kind key before after } } }
                pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
            json!({"after": null}),
        )
        .await;
    let log = &page["auditLog"];
    assert_eq!(log["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(log["pageInfo"]["hasNextPage"], true);
    assert_eq!(log["edges"][0]["node"]["operation"], by_ops[0]["operation"]);
    let newest = app
        .gql_ok(
            "{ auditLog(last: 2) { edges { cursor node { sequence operation } } pageInfo { hasPreviousPage startCursor } } }",
            json!({}),
        )
        .await;
    let edges = newest["auditLog"]["edges"].as_array().unwrap().clone();
    let all = all_entries(&app, "").await;
    assert_eq!(edges.len(), 2);
    assert_eq!(
        edges[1]["node"]["sequence"].as_u64(),
        Some(last_sequence(&all))
    );
    assert!(edges[0]["node"]["sequence"].as_u64() < edges[1]["node"]["sequence"].as_u64());
    assert_eq!(newest["auditLog"]["pageInfo"]["hasPreviousPage"], true);
    let refused = app
        .gql("{ auditLog(first: 501) { edges { cursor } } }", json!({}))
        .await;
    assert_error(&refused, "INVALID_VALUE", Some(100));
    app.stop().await;
}

/// Subscribes to every event after `after` (or from now).
async fn subscribe_after(client: &mut Client, id: &str, after: Option<&str>) {
    let query = "subscription($after: String) { callRecordingEvents(after: $after) { __typename
        ... on CallRecordingPlatformAdded { cursor at actor platform { name } }
        ... on CallRecordingPlatformDeleted { cursor name }
        ... on CallRecordingDefaultChanged { cursor systemDefault } } }";
    client
        .send(json!({"id": id, "type": "subscribe",
            "payload": {"query": query, "variables": {"after": after}}}))
        .await;
}

/// The next `n` events of subscription `id` other than the started message.
async fn events(client: &mut Client, id: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = client.event(id).await;
        if event["__typename"] != "CallRecordingSubscriptionStarted" {
            out.push(event);
        }
    }
    out
}

fn added(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["__typename"] == "CallRecordingPlatformAdded")
        .map(|e| e["platform"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn add(app: &TestApp, name: &str) {
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("{CALL_RECORDING}/platforms/"),
            Some(platform(name)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_subscriber_resumes_from_a_cursor_with_no_gap_and_no_duplicate() {
    let app = TestApp::start().await;
    let mut client = accepted(&app, &app.token).await;
    subscribe_after(&mut client, "1", None).await;
    let started = client.event("1").await;
    assert_eq!(started["__typename"], "CallRecordingSubscriptionStarted");
    add(&app, "A").await;
    add(&app, "B").await;
    // A: added and made default; B: added.
    let seen = events(&mut client, "1", 3).await;
    assert_eq!(added(&seen), ["A", "B"]);
    assert_eq!(seen[0]["actor"], "admin");
    let cursor_after_a = seen[1]["cursor"].as_str().expect("cursor").to_owned();
    assert_ne!(
        seen[0]["cursor"], seen[1]["cursor"],
        "each event has its own cursor"
    );
    drop(client);

    // Missed while away, then live.
    add(&app, "C").await;
    add(&app, "D").await;
    let mut client = accepted(&app, &app.token).await;
    subscribe_after(&mut client, "2", Some(&cursor_after_a)).await;
    let replayed = events(&mut client, "2", 3).await;
    assert_eq!(added(&replayed), ["B", "C", "D"]);
    add(&app, "E").await;
    let live = events(&mut client, "2", 1).await;
    assert_eq!(added(&live), ["E"]);
    // Nothing else was pending: the next event is the next commit's.
    add(&app, "F").await;
    assert_eq!(added(&events(&mut client, "2", 1).await), ["F"]);

    // Resuming in the middle of one commit's events gives the rest of that commit.
    let first = seen[0]["cursor"].as_str().unwrap();
    let mut client = accepted(&app, &app.token).await;
    subscribe_after(&mut client, "3", Some(first)).await;
    let rest = events(&mut client, "3", 1).await;
    assert_eq!(rest[0]["__typename"], "CallRecordingDefaultChanged");
    assert_eq!(rest[0]["systemDefault"], "A");

    // A cursor the log has not reached, or that is no cursor, is refused.
    for bad in ["999999", "x"] {
        let mut client = accepted(&app, &app.token).await;
        subscribe_after(&mut client, bad, Some(bad)).await;
        client.fails(bad, "INVALID_VALUE", Some(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_cursor_older_than_retention_ends_the_stream_with_events_lost() {
    let app = TestApp::start().await;
    let mut client = accepted(&app, &app.token).await;
    subscribe_after(&mut client, "1", None).await;
    client.event("1").await;
    add(&app, "A").await;
    let seen = events(&mut client, "1", 2).await;
    let old = seen[0]["cursor"].as_str().unwrap().to_owned();
    add(&app, "B").await;
    // Everything made until now is past retention.
    let removed = app
        .service
        .prune_log(std::time::SystemTime::now() + Duration::from_secs(1))
        .await
        .expect("pruned");
    assert!(removed > 2, "{removed}");
    drop(client);
    let mut client = accepted(&app, &app.token).await;
    subscribe_after(&mut client, "2", Some(&old)).await;
    client.event("2").await;
    let error = client.fails("2", "EVENTS_LOST", Some(110)).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no longer in the log"),
        "{error}"
    );
    // The newest position is still good: nothing after it was removed.
    let (_, page) = app.get(AUDIT).await;
    assert_eq!(page["entries"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn events_of_requests_whose_clients_left_still_arrive() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::start().await;
    let mut client = accepted(&app, &app.token).await;
    subscribe_after(&mut client, "1", None).await;
    client.event("1").await;
    let path = format!("{CALL_RECORDING}/platforms/");
    let mut senders = Vec::new();
    for i in 0..20 {
        let body = platform(&format!("P{i:02}")).to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            app.token,
            body.len()
        );
        let addr = app.addr;
        senders.push(tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connected");
            socket.write_all(request.as_bytes()).await.expect("sent");
            // Gone before any answer.
            drop(socket);
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    // Every platform that was committed has its event, with no further write.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut names = BTreeSet::new();
    loop {
        let (_, list) = app.get(&path).await;
        let stored: BTreeSet<String> = list["callRecordingPlatforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        // Over PostgreSQL a request whose client left before its commit started may commit
        // nothing at all; what was committed must still have its events.
        let none_committed = stored.is_empty() && common::store::postgres();
        if (!stored.is_empty() || none_committed) && stored.is_subset(&names) {
            assert_eq!(stored, names, "no event for a platform that does not exist");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events missing: {stored:?} vs {names:?}"
        );
        let next = tokio::time::timeout(Duration::from_millis(300), client.receive()).await;
        if let Ok(Received::Json(message)) = next {
            let event = &message["payload"]["data"]["callRecordingEvents"];
            if event["__typename"] == "CallRecordingPlatformAdded" {
                names.insert(event["platform"]["name"].as_str().unwrap().to_owned());
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_event_stream_needs_a_system_admin() {
    let app = TestApp::start().await;
    app.add_user("gadmin", PASSWORD, 8, Some("T"), Some("G"))
        .await;
    let answer = app.service.login("gadmin", PASSWORD).await.expect("login");
    let refused = app.service.watch(&answer.principal, None);
    assert!(
        matches!(refused, Err(callrec_gateway::error::Error::Forbidden(_))),
        "a Group Admin was given the stream"
    );
    let allowed = app
        .service
        .watch(&callrec_gateway::model::Principal::console(), None);
    assert!(allowed.is_ok());
    app.stop().await;
}

#[tokio::test]
async fn a_subscriber_far_behind_is_served_from_the_log() {
    use callrec_gateway::model::{Principal, PropertiesChange};
    use callrec_gateway::service::Event;
    use futures_util::StreamExt;
    let app = TestApp::start().await;
    let console = Principal::console();
    let mut stream = app.service.watch(&console, None).expect("watch");
    // More commits than the live buffer holds, none read meanwhile.
    let commits = 1_100;
    for i in 0..commits {
        let change = PropertiesChange {
            refresh_period_seconds: Some(10 + (i % 290) as i64),
            ..PropertiesChange::default()
        };
        app.service
            .modify_properties(&console, change)
            .await
            .expect("modified");
    }
    let mut seen = Vec::new();
    while seen.len() < commits {
        let next = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("no error: the log has every event");
        let Event::PropertiesModified { properties } = next.event else {
            panic!("unexpected {:?}", next.event);
        };
        seen.push((next.cursor, properties.refresh_period_seconds));
    }
    let expected: Vec<u32> = (0..commits).map(|i| 10 + (i % 290) as u32).collect();
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), expected);
    let cursors: BTreeSet<&String> = seen.iter().map(|s| &s.0).collect();
    assert_eq!(cursors.len(), commits, "no duplicate");
    app.stop().await;
}
