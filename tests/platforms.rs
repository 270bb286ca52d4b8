//! The documented platform operations through a real socket: shapes, status codes, sub error
//! codes and every rule of the system default.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn add(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.admin(Method::POST, &platforms_path(), Some(body)).await
}

async fn modify(app: &TestApp, name: &str, body: Value) -> (StatusCode, Value) {
    app.admin(Method::PUT, &platform_path(name), Some(body))
        .await
}

async fn delete(app: &TestApp, name: &str) -> (StatusCode, Value) {
    app.admin(Method::DELETE, &platform_path(name), None).await
}

/// Asserts the documented error body with this sub error code (and message, when given).
pub fn assert_error(body: &Value, code: u64, name: &str, message: Option<&str>) {
    let e = &body["errors"][0];
    assert_eq!(e["code"], code, "{body}");
    assert_eq!(e["name"], name, "{body}");
    assert!(e["details"].is_object(), "{body}");
    if let Some(m) = message {
        assert_eq!(e["message"], m, "{body}");
    }
}

const MISSING: &str = "Call Recording platform does not exist.";
const DEFAULT_NOT_DELETED: &str = "The system default Recording Platform cannot be deleted, unless it is not in use and the unique one defined.";

#[tokio::test]
async fn first_platform_becomes_default_and_list_has_documented_shape() {
    let app = TestApp::start().await;
    let (status, body) = app.get(&platforms_path()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"systemDefault": null, "callRecordingPlatforms": []})
    );

    let (status, body) = add(&app, platform("Call Rec Platform 1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"systemDefault": "Call Rec Platform 1", "callRecordingPlatforms": [platform("Call Rec Platform 1")]})
    );
    let (status, body) = add(&app, platform("Call Rec Platform 2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["systemDefault"], "Call Rec Platform 1");
    assert_eq!(
        body["callRecordingPlatforms"],
        json!([
            platform("Call Rec Platform 1"),
            platform("Call Rec Platform 2")
        ])
    );
    // The GET of the list is the same document.
    assert_eq!(app.get(&platforms_path()).await.1, body);
}

#[tokio::test]
async fn optional_fields_are_absent_when_unset() {
    let app = TestApp::start().await;
    let mut p = platform("Bare");
    p.as_object_mut().unwrap().remove("port");
    p.as_object_mut().unwrap().remove("description");
    let (status, body) = add(&app, p.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["callRecordingPlatforms"][0], p);
    let (_, one) = app.get(&platform_path("Bare")).await;
    assert!(
        one.get("port").is_none() && one.get("description").is_none(),
        "{one}"
    );
}

#[tokio::test]
async fn port_zero_on_add_means_no_port() {
    let app = TestApp::start().await;
    let mut p = platform("Portal Form");
    p["port"] = json!(0);
    let (status, body) = add(&app, p).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, one) = app.get(&platform_path("Portal Form")).await;
    assert!(one.get("port").is_none(), "{one}");
    assert_eq!(one["netAddress"], "10.0.32.55");
    // GraphQL says "no port" with null; 0 stays out of range there.
    let mut input = common::graphql::platform_input("GraphQL Zero");
    input["port"] = json!(0);
    let answer = app
        .gql(
            "mutation($input: AddCallRecordingPlatformInput!) { addCallRecordingPlatform(input: $input) { name } }",
            json!({"input": input}),
        )
        .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["field"], "port",
        "{answer}"
    );
    assert_eq!(
        app.get(&platform_path("GraphQL Zero")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn get_one_has_documented_shape_and_404_when_missing() {
    let app = TestApp::start().await;
    add(&app, platform("Call Rec Platform 1")).await;
    add(&app, platform("Call Rec Platform 2")).await;
    let (status, body) = app.get(&platform_path("Call Rec Platform 1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"default": true, "netAddress": "10.0.32.55", "port": 222, "mediaStream": "Dual",
               "transportProtocol": "UDP", "description": "test description",
               "schemaVersion": "1.0", "supportVideoRecording": false})
    );
    // Keys in the documented order, `default` first.
    let text = app
        .client
        .get(app.url(&platform_path("Call Rec Platform 2")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with(r#"{"default":false,"netAddress":"10.0.32.55","port":222,"#),
        "{text}"
    );

    let (status, body) = app.get(&platform_path("Nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 101, "NOT_FOUND", None);
}

#[tokio::test]
async fn paths_work_with_and_without_trailing_slash_and_decode_names() {
    let app = TestApp::start().await;
    for name in ["Call Rec Platform 1", "a/b", "Ünïcödé €", "50%"] {
        let (s, b) = add(&app, platform(name)).await;
        assert_eq!(s, StatusCode::OK, "{name}: {b}");
        let (s, _) = app.get(&platform_path(name)).await;
        assert_eq!(s, StatusCode::OK, "{name}");
        let bare = platform_path(name);
        let (s, _) = app.get(bare.trim_end_matches('/')).await;
        assert_eq!(s, StatusCode::OK, "{name} without slash");
        let (s, b) = app.get(&format!("{}usage/", platform_path(name))).await;
        assert_eq!((s, b), (StatusCode::OK, json!({"groups": []})));
    }
    let (s, _) = app.get(platforms_path().trim_end_matches('/')).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get(&format!("{CALL_RECORDING}/properties")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn duplicate_add_is_11_already_exists_and_changes_nothing() {
    let app = TestApp::start().await;
    add(&app, platform("P")).await;
    let mut again = platform("P");
    again["netAddress"] = json!("10.9.9.9");
    let (status, body) = add(&app, again).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 11, "ALREADY_EXISTS", None);
    assert_eq!(
        app.get(&platform_path("P")).await.1["netAddress"],
        "10.0.32.55"
    );
}

#[tokio::test]
async fn modify_changes_given_fields_and_answers_like_get() {
    let app = TestApp::start().await;
    add(&app, platform("P")).await;
    let (status, body) = modify(
        &app,
        "P",
        json!({"netAddress": "rec.example.com", "mediaStream": "Single", "transportProtocol": "TCP",
               "schemaVersion": "3.0", "supportVideoRecording": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = json!({"default": true, "netAddress": "rec.example.com", "port": 222,
        "mediaStream": "Single", "transportProtocol": "TCP", "description": "test description",
        "schemaVersion": "3.0", "supportVideoRecording": true});
    assert_eq!(body, expected);
    assert_eq!(app.get(&platform_path("P")).await.1, expected);

    // An empty object changes nothing and answers the current state.
    assert_eq!(
        modify(&app, "P", json!({})).await,
        (StatusCode::OK, expected)
    );
}

#[tokio::test]
async fn port_zero_and_empty_description_remove_the_fields() {
    let app = TestApp::start().await;
    add(&app, platform("P")).await;
    let (status, body) = modify(&app, "P", json!({"port": 0, "description": ""})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("port").is_none() && body.get("description").is_none(),
        "{body}"
    );
    let (_, list) = app.get(&platforms_path()).await;
    let entry = &list["callRecordingPlatforms"][0];
    assert!(entry.get("port").is_none() && entry.get("description").is_none());
    let (_, body) = modify(&app, "P", json!({"port": 5060, "description": "back"})).await;
    assert_eq!(
        (body["port"].clone(), body["description"].clone()),
        (json!(5060), json!("back"))
    );
}

#[tokio::test]
async fn default_true_moves_the_default() {
    let app = TestApp::start().await;
    for n in ["A", "B", "C"] {
        add(&app, platform(n)).await;
    }
    let (status, body) = modify(&app, "B", json!({"default": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["default"], true);
    assert_eq!(app.get(&platform_path("A")).await.1["default"], false);
    assert_eq!(app.get(&platforms_path()).await.1["systemDefault"], "B");
    // Setting it again is harmless.
    assert_eq!(
        modify(&app, "B", json!({"default": true})).await.0,
        StatusCode::OK
    );
    assert_eq!(app.get(&platforms_path()).await.1["systemDefault"], "B");
}

#[tokio::test]
async fn default_false_is_refused_on_the_default_and_ignored_elsewhere() {
    let app = TestApp::start().await;
    add(&app, platform("A")).await;
    add(&app, platform("B")).await;
    let (status, body) = modify(&app, "A", json!({"default": false, "port": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 18, "INVALID_OPERATION", None);
    // Refused as a whole: the port did not change either.
    assert_eq!(app.get(&platform_path("A")).await.1["port"], 222);

    let (status, body) = modify(&app, "B", json!({"default": false})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["default"], false);
    assert_eq!(app.get(&platforms_path()).await.1["systemDefault"], "A");
}

#[tokio::test]
async fn missing_platform_is_400_18_for_modify_delete_and_usage() {
    let app = TestApp::start().await;
    add(&app, platform("A")).await;
    let (s, b) = modify(&app, "Nope", json!({"default": true})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&b, 18, "INVALID_OPERATION", Some(MISSING));
    let (s, b) = delete(&app, "Nope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&b, 18, "INVALID_OPERATION", Some(MISSING));
    let (s, b) = app.get(&format!("{}usage/", platform_path("Nope"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&b, 18, "INVALID_OPERATION", Some(MISSING));
}

#[tokio::test]
async fn delete_rules_for_the_default() {
    let app = TestApp::start().await;
    add(&app, platform("A")).await;
    add(&app, platform("B")).await;
    let (s, b) = delete(&app, "A").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&b, 21, "NOT_DELETED", Some(DEFAULT_NOT_DELETED));

    let (s, b) = delete(&app, "B").await;
    assert_eq!((s, b), (StatusCode::OK, json!({})));
    assert_eq!(app.get(&platform_path("B")).await.0, StatusCode::NOT_FOUND);

    // The only platform, unused: its deletion empties the default too.
    let (s, b) = delete(&app, "A").await;
    assert_eq!((s, b), (StatusCode::OK, json!({})));
    assert_eq!(
        app.get(&platforms_path()).await.1,
        json!({"systemDefault": null, "callRecordingPlatforms": []})
    );
    // And the next platform added becomes the default again.
    let (_, b) = add(&app, platform("C")).await;
    assert_eq!(b["systemDefault"], "C");
}

#[tokio::test]
async fn fifty_concurrent_default_changes_and_deletes_leave_one_existing_default() {
    let app = TestApp::start().await;
    let names: Vec<String> = (0..50).map(|i| format!("P{i:02}")).collect();
    for n in &names {
        assert_eq!(add(&app, platform(n)).await.0, StatusCode::OK);
    }
    // Each platform is made the default while another is deleted: a delete racing with the
    // default's move onto its platform must lose (21) or win (then the move is 18), never
    // leave the default naming a deleted platform.
    // The first 25 are never deleted, so platforms remain.
    let requests = names.iter().enumerate().flat_map(|(i, n)| {
        let make_default = app
            .client
            .put(app.url(&platform_path(n)))
            .bearer_auth(&app.token)
            .json(&json!({"default": true}))
            .send();
        let other = &names[25 + i % 25];
        let delete = app
            .client
            .delete(app.url(&platform_path(other)))
            .bearer_auth(&app.token)
            .send();
        [Box::pin(make_default), Box::pin(delete)]
    });
    for response in futures_util::future::join_all(requests).await {
        let response = response.expect("answered");
        let status = response.status();
        if status != StatusCode::OK {
            let body: Value = response.json().await.expect("error body");
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let code = &body["errors"][0]["code"];
            assert!(code == 18 || code == 21, "{body}");
        }
    }
    let list = app.get(&platforms_path()).await.1;
    let listed: Vec<&str> = list["callRecordingPlatforms"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    let default = list["systemDefault"].as_str().expect("a default");
    assert!(
        listed.contains(&default),
        "{default} is not a platform: {list}"
    );
    // Every read agrees: each platform's own answer, and GraphQL's.
    for name in &listed {
        let (status, one) = app.get(&platform_path(name)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["default"], *name == default, "{name}: {one}");
    }
    for name in names.iter().filter(|n| !listed.contains(&n.as_str())) {
        assert_eq!(app.get(&platform_path(name)).await.0, StatusCode::NOT_FOUND);
    }
    let body: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.token)
        .json(&json!({"query": "{ callRecordingPlatforms { systemDefault platforms { name isDefault } } }"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let gql = &body["data"]["callRecordingPlatforms"];
    assert_eq!(gql["systemDefault"], default, "{body}");
    let gql_defaults: Vec<&Value> = gql["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .filter(|p| p["isDefault"] == true)
        .map(|p| &p["name"])
        .collect();
    assert_eq!(gql_defaults, [default], "{body}");
}

#[tokio::test]
async fn restart_keeps_every_acknowledged_change() {
    let app = TestApp::start().await;
    add(&app, platform("A")).await;
    add(&app, platform("B")).await;
    add(&app, platform("C")).await;
    modify(
        &app,
        "B",
        json!({"default": true, "port": 0, "description": ""}),
    )
    .await;
    delete(&app, "C").await;
    app.admin(
        Method::PUT,
        &format!("{CALL_RECORDING}/properties/"),
        Some(json!({"maxResponseWaitTimeMilliseconds": 9000})),
    )
    .await;
    let before = app.get(&platforms_path()).await.1;
    let data = app.stop().await;

    let app = TestApp::start_on(data, &[]).await;
    assert_eq!(app.get(&platforms_path()).await.1, before);
    assert_eq!(before["systemDefault"], "B");
    assert_eq!(
        before["callRecordingPlatforms"].as_array().unwrap().len(),
        2
    );
    let (_, props) = app.get(&format!("{CALL_RECORDING}/properties/")).await;
    assert_eq!(props["maxResponseWaitTimeMilliseconds"], 9000);
}
