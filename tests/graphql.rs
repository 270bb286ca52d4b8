//! Every GraphQL query and mutation over HTTP through a real socket, with their error paths.

mod common;

use common::graphql::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADD: &str = "mutation($input: AddCallRecordingPlatformInput!) {
    addCallRecordingPlatform(input: $input) { name netAddress port mediaStream transportProtocol
      description schemaVersion supportVideoRecording isDefault usage { tenantId groupId } } }";
const MODIFY: &str = "mutation($name: String!, $input: ModifyCallRecordingPlatformInput!) {
    modifyCallRecordingPlatform(name: $name, input: $input) { name netAddress port mediaStream
      transportProtocol description schemaVersion supportVideoRecording isDefault } }";
const DELETE: &str =
    "mutation($name: String!) { deleteCallRecordingPlatform(name: $name) { name } }";
const LIST: &str = "{ callRecordingPlatforms { systemDefault platforms { name isDefault } } }";
const ONE: &str = "query($name: String!) { callRecordingPlatform(name: $name) { name netAddress
    port mediaStream transportProtocol description schemaVersion supportVideoRecording isDefault
    usage { tenantId groupId } } }";
const PROPERTIES: &str = "{ callRecordingProperties { continueCallAfterRecordingFailure
    refreshPeriodSeconds maxConsecutiveFailures maxResponseWaitTimeMilliseconds
    continueCallAfterVideoRecordingFailure } }";
const MODIFY_PROPERTIES: &str = "mutation($input: ModifyCallRecordingPropertiesInput!) {
    modifyCallRecordingProperties(input: $input) { continueCallAfterRecordingFailure
      refreshPeriodSeconds maxConsecutiveFailures maxResponseWaitTimeMilliseconds
      continueCallAfterVideoRecordingFailure } }";

async fn add(app: &TestApp, name: &str) -> Value {
    app.gql_ok(ADD, json!({"input": platform_input(name)}))
        .await["addCallRecordingPlatform"]
        .clone()
}

/// Modifies platform `name` with `input`; the whole answer (data or errors).
async fn modify(app: &TestApp, name: &str, input: Value) -> Value {
    app.gql(MODIFY, json!({"name": name, "input": input})).await
}

/// Modifies platform `name` with `input`, which must succeed; the platform answered.
async fn modified(app: &TestApp, name: &str, input: Value) -> Value {
    app.gql_ok(MODIFY, json!({"name": name, "input": input}))
        .await["modifyCallRecordingPlatform"]
        .clone()
}

#[tokio::test]
async fn platforms_are_added_listed_and_read() {
    let app = TestApp::start().await;
    let data = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        data,
        json!({"callRecordingPlatforms": {"systemDefault": null, "platforms": []}})
    );

    assert_eq!(
        add(&app, "Call Rec Platform 1").await,
        platform_output("Call Rec Platform 1", true)
    );
    assert_eq!(
        add(&app, "Call Rec Platform 2").await,
        platform_output("Call Rec Platform 2", false)
    );

    let data = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        data["callRecordingPlatforms"],
        json!({"systemDefault": "Call Rec Platform 1", "platforms": [
            {"name": "Call Rec Platform 1", "isDefault": true},
            {"name": "Call Rec Platform 2", "isDefault": false},
        ]})
    );

    let data = app
        .gql_ok(ONE, json!({"name": "Call Rec Platform 2"}))
        .await;
    assert_eq!(
        data["callRecordingPlatform"],
        platform_output("Call Rec Platform 2", false)
    );
    // Absent: null, not an error.
    let data = app.gql_ok(ONE, json!({"name": "nope"})).await;
    assert_eq!(data, json!({"callRecordingPlatform": null}));
    app.stop().await;
}

#[tokio::test]
async fn optional_fields_left_out_are_null() {
    let app = TestApp::start().await;
    let mut input = platform_input("bare");
    input.as_object_mut().unwrap().remove("port");
    input.as_object_mut().unwrap().remove("description");
    let data = app.gql_ok(ADD, json!({"input": input})).await;
    assert_eq!(data["addCallRecordingPlatform"]["port"], Value::Null);
    assert_eq!(data["addCallRecordingPlatform"]["description"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn add_errors_carry_code_number_and_field() {
    let app = TestApp::start().await;
    add(&app, "A").await;

    // 11 ALREADY_EXISTS
    let body = app.gql(ADD, json!({"input": platform_input("A")})).await;
    let error = assert_error(&body, "ALREADY_EXISTS", Some(11));
    assert_eq!(
        error["message"],
        "Call Recording platform 'A' already exists."
    );
    assert_eq!(body["data"], Value::Null);

    // An out-of-range Int is passed on wide and refused by the model, naming the field.
    let mut input = platform_input("B");
    input["port"] = json!(70000);
    let body = app.gql(ADD, json!({"input": input})).await;
    let error = assert_error(&body, "INVALID_VALUE", Some(100));
    assert_eq!(error["extensions"]["field"], "port");
    assert_eq!(error["message"], "port must be 1-65535 (got 70000)");

    let mut input = platform_input("B");
    input["netAddress"] = json!("10.0.0.256");
    let body = app.gql(ADD, json!({"input": input})).await;
    let error = assert_error(&body, "INVALID_VALUE", Some(100));
    assert_eq!(error["extensions"]["field"], "netAddress");

    let body = app
        .gql(ADD, json!({"input": platform_input(&"n".repeat(81))}))
        .await;
    let error = assert_error(&body, "INVALID_VALUE", Some(100));
    assert_eq!(error["extensions"]["field"], "name");

    // Nothing of the refused adds was kept.
    let data = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        data["callRecordingPlatforms"]["platforms"],
        json!([{"name": "A", "isDefault": true}])
    );
    app.stop().await;
}

#[tokio::test]
async fn modify_changes_only_given_fields_and_null_removes() {
    let app = TestApp::start().await;
    add(&app, "A").await;
    add(&app, "B").await;

    let b = modified(
        &app,
        "B",
        json!({"netAddress": "rec.example.com", "mediaStream": "SINGLE", "transportProtocol": "TCP",
               "schemaVersion": "V3_0", "supportVideoRecording": true}),
    )
    .await;
    assert_eq!(
        b,
        json!({"name": "B", "netAddress": "rec.example.com", "port": 222, "mediaStream": "SINGLE",
               "transportProtocol": "TCP", "description": "test description",
               "schemaVersion": "V3_0", "supportVideoRecording": true, "isDefault": false})
    );

    // null removes the optional fields; the rest stays.
    let b = modified(&app, "B", json!({"port": null, "description": null})).await;
    assert_eq!(b["port"], Value::Null);
    assert_eq!(b["description"], Value::Null);
    assert_eq!(b["netAddress"], "rec.example.com");

    // Left out: unchanged (still removed), and set again.
    let b = modified(&app, "B", json!({"port": 5060})).await;
    assert_eq!(b["port"], 5060);
    assert_eq!(b["description"], Value::Null);

    // The stored platform is what the mutation answered.
    let data = app.gql_ok(ONE, json!({"name": "B"})).await;
    assert_eq!(data["callRecordingPlatform"]["port"], 5060);
    assert_eq!(data["callRecordingPlatform"]["mediaStream"], "SINGLE");
    app.stop().await;
}

#[tokio::test]
async fn make_default_moves_the_default_and_the_default_cannot_be_unset() {
    let app = TestApp::start().await;
    add(&app, "A").await;
    add(&app, "B").await;

    let b = modified(&app, "B", json!({"makeDefault": true})).await;
    assert_eq!(b["isDefault"], true);
    let data = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        data["callRecordingPlatforms"],
        json!({"systemDefault": "B", "platforms": [
            {"name": "A", "isDefault": false}, {"name": "B", "isDefault": true}]})
    );

    // 18: the default cannot be unset.
    let body = modify(&app, "B", json!({"makeDefault": false})).await;
    assert_error(&body, "INVALID_OPERATION", Some(18));
    // false on another platform changes nothing.
    let a = modified(&app, "A", json!({"makeDefault": false})).await;
    assert_eq!(a["isDefault"], false);

    // 18: modify a missing platform.
    let body = modify(&app, "nope", json!({"port": 1})).await;
    let error = assert_error(&body, "INVALID_OPERATION", Some(18));
    assert_eq!(error["message"], "Call Recording platform does not exist.");

    // A refused value names its field and changes nothing.
    let body = modify(&app, "A", json!({"port": 0, "description": ""})).await;
    let error = assert_error(&body, "INVALID_VALUE", Some(100));
    assert_eq!(error["extensions"]["field"], "port");
    let data = app.gql_ok(ONE, json!({"name": "A"})).await;
    assert_eq!(data["callRecordingPlatform"]["port"], 222);
    app.stop().await;
}

#[tokio::test]
async fn delete_rules() {
    let app = TestApp::start().await;
    add(&app, "A").await;
    add(&app, "B").await;

    // 21: the default while others exist.
    let body = app.gql(DELETE, json!({"name": "A"})).await;
    assert_error(&body, "NOT_DELETED", Some(21));
    // 18: missing.
    let body = app.gql(DELETE, json!({"name": "nope"})).await;
    assert_error(&body, "INVALID_OPERATION", Some(18));

    let data = app.gql_ok(DELETE, json!({"name": "B"})).await;
    assert_eq!(data, json!({"deleteCallRecordingPlatform": {"name": "B"}}));
    // The default, now the only one and unused, can go: no default remains.
    let data = app.gql_ok(DELETE, json!({"name": "A"})).await;
    assert_eq!(data["deleteCallRecordingPlatform"]["name"], "A");
    let data = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        data["callRecordingPlatforms"],
        json!({"systemDefault": null, "platforms": []})
    );
    app.stop().await;
}

/// The properties as GraphQL reads them.
async fn properties(app: &TestApp) -> Value {
    app.gql_ok(PROPERTIES, json!({})).await["callRecordingProperties"].clone()
}

#[tokio::test]
async fn properties_are_read_and_modified() {
    let app = TestApp::start().await;
    assert_eq!(
        properties(&app).await,
        json!({"continueCallAfterRecordingFailure": true, "refreshPeriodSeconds": 60,
               "maxConsecutiveFailures": 1, "maxResponseWaitTimeMilliseconds": 3000,
               "continueCallAfterVideoRecordingFailure": true})
    );
    let data = app
        .gql_ok(
            MODIFY_PROPERTIES,
            json!({"input": {"maxResponseWaitTimeMilliseconds": 50, "continueCallAfterRecordingFailure": false}}),
        )
        .await;
    assert_eq!(
        data["modifyCallRecordingProperties"],
        json!({"continueCallAfterRecordingFailure": false, "refreshPeriodSeconds": 60,
               "maxConsecutiveFailures": 1, "maxResponseWaitTimeMilliseconds": 50,
               "continueCallAfterVideoRecordingFailure": true})
    );
    let body = app
        .gql(
            MODIFY_PROPERTIES,
            json!({"input": {"maxResponseWaitTimeMilliseconds": 10001}}),
        )
        .await;
    let error = assert_error(&body, "INVALID_VALUE", Some(100));
    assert_eq!(
        error["extensions"]["field"],
        "maxResponseWaitTimeMilliseconds"
    );
    assert_eq!(
        properties(&app).await["maxResponseWaitTimeMilliseconds"],
        50
    );
    app.stop().await;
}

#[tokio::test]
async fn me_tells_who_is_asking() {
    let app = TestApp::start().await;
    let data = app
        .gql_ok("{ me { username level tenantId groupId } }", json!({}))
        .await;
    assert_eq!(
        data,
        json!({"me": {"username": "admin", "level": "SYSTEM_ADMIN", "tenantId": null, "groupId": null}})
    );
    let token = app.group_admin_token().await;
    let body = app
        .gql_as(
            Some(&token),
            "{ me { username level tenantId groupId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"],
        json!({"me": {"username": "groupadmin", "level": "GROUP_ADMIN", "tenantId": "t1", "groupId": "g1"}})
    );
    app.stop().await;
}

#[tokio::test]
async fn without_valid_credentials_everything_is_unauthenticated() {
    let app = TestApp::start().await;
    for token in [None, Some("not-a-token")] {
        for query in [LIST, PROPERTIES, "{ me { username } }"] {
            let body = app.gql_as(token, query, json!({})).await;
            let error = assert_error(&body, "UNAUTHENTICATED", Some(102));
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let body = app
            .gql_as(token, ADD, json!({"input": platform_input("A")}))
            .await;
        assert_error(&body, "UNAUTHENTICATED", Some(102));
    }
    // Nothing was added.
    assert_eq!(
        app.service
            .platforms(&callrec_gateway::model::Principal::console())
            .unwrap()
            .platforms
            .len(),
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_group_admin_lists_but_may_change_nothing() {
    let app = TestApp::start().await;
    add(&app, "A").await;
    let token = app.group_admin_token().await;

    // Listing is allowed to Group Admins...
    let body = app.gql_as(Some(&token), LIST, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["callRecordingPlatforms"]["systemDefault"], "A");

    // ...usage, one platform, properties and every mutation are not.
    let forbidden = [
        (
            "{ callRecordingPlatforms { platforms { usage { groupId } } } }",
            json!({}),
        ),
        (ONE, json!({"name": "A"})),
        (PROPERTIES, json!({})),
        (ADD, json!({"input": platform_input("B")})),
        (MODIFY, json!({"name": "A", "input": {"port": 1}})),
        (DELETE, json!({"name": "A"})),
        (
            MODIFY_PROPERTIES,
            json!({"input": {"refreshPeriodSeconds": 20}}),
        ),
    ];
    for (query, variables) in forbidden {
        let body = app.gql_as(Some(&token), query, variables).await;
        let error = assert_error(&body, "FORBIDDEN", Some(103));
        assert!(
            error["message"].as_str().unwrap().contains("System Admin"),
            "{body}"
        );
    }
    // Nothing changed.
    let data = app.gql_ok(ONE, json!({"name": "A"})).await;
    assert_eq!(data["callRecordingPlatform"], platform_output("A", true));
    app.stop().await;
}

#[tokio::test]
async fn rest_and_graphql_share_one_service() {
    let app = TestApp::start().await;
    // Added through REST, seen and refused again through GraphQL.
    let (status, _) = app
        .admin(Method::POST, &platforms_path(), Some(platform("Shared")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let body = app
        .gql(ADD, json!({"input": platform_input("Shared")}))
        .await;
    let error = assert_error(&body, "ALREADY_EXISTS", Some(11));

    // The same refusal through REST has the same code, name and message.
    let (status, rest) = app
        .admin(Method::POST, &platforms_path(), Some(platform("Shared")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(rest["errors"][0]["code"], 11);
    assert_eq!(rest["errors"][0]["name"], "ALREADY_EXISTS");
    assert_eq!(rest["errors"][0]["message"], error["message"]);

    // Added through GraphQL and made the default, seen through REST.
    add(&app, "Second").await;
    app.gql_ok(
        MODIFY,
        json!({"name": "Second", "input": {"makeDefault": true, "port": null}}),
    )
    .await;
    let (status, one) = app.get(&platform_path("Second")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["default"], true);
    assert!(one.get("port").is_none(), "{one}");

    // The default refuses deletion the same way on both.
    let (status, rest) = app
        .admin(Method::DELETE, &platform_path("Second"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = app.gql(DELETE, json!({"name": "Second"})).await;
    let error = assert_error(&body, "NOT_DELETED", Some(21));
    assert_eq!(rest["errors"][0]["code"], 21);
    assert_eq!(rest["errors"][0]["message"], error["message"]);
    app.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_with_codes() {
    let app = TestApp::start().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_error(&body, "INVALID_VALUE", Some(100));

    let huge = format!("{{ me {{ username }} }} #{}", "x".repeat(70 * 1024));
    let (status, body) = app
        .gql_body(Some(&app.token.clone()), json!({"query": huge}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "PAYLOAD_TOO_LARGE", Some(104));

    // A GraphQL-level mistake is a GraphQL error, not a crash.
    let body = app
        .gql(
            ADD,
            json!({"input": {"name": "x", "mediaStream": "TRIPLE"}}),
        )
        .await;
    assert_error(&body, "GRAPHQL_VALIDATION_FAILED", None);
    let body = app
        .gql("{ callRecordingPlatformz { systemDefault } }", json!({}))
        .await;
    assert_error(&body, "GRAPHQL_VALIDATION_FAILED", None);
    let body = app.gql("{ me { username ", json!({})).await;
    assert_error(&body, "GRAPHQL_PARSE_FAILED", None);
    app.stop().await;
}

const INTROSPECT: &str = "{ __schema { queryType { name } } }";

#[tokio::test]
async fn introspection_needs_a_token_unless_configured_otherwise() {
    // By default, a valid token is needed.
    let app = TestApp::start().await;
    let data = app.gql_ok(INTROSPECT, json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    let body = app.gql_as(None, INTROSPECT, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", Some(102));
    assert!(body["data"].is_null(), "{body}");
    let expired = app.expired_token(&app.token);
    let body = app.gql_as(Some(&expired), INTROSPECT, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", Some(102));
    // Other operations without a token fail as before, field by field.
    let body = app.gql_as(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    app.stop().await;

    // `true`: anyone.
    let app = TestApp::start_with(&["--graphql-introspection", "true"]).await;
    let data = app.gql_as(None, INTROSPECT, json!({})).await;
    assert_eq!(
        data["data"]["__schema"]["queryType"]["name"], "Query",
        "{data}"
    );
    app.stop().await;

    let app = TestApp::start_with(&["--graphql-introspection", "false"]).await;
    let body = app.gql(INTROSPECT, json!({})).await;
    assert_error(&body, "INTROSPECTION_DISABLED", None);
    assert!(body["data"].is_null(), "{body}");
    let body = app
        .gql(
            "{ ...F } fragment F on Query { __type(name: \"Query\") { name } }",
            json!({}),
        )
        .await;
    assert_error(&body, "INTROSPECTION_DISABLED", None);
    // Not even with a token; ordinary operations still work.
    app.gql_ok("{ me { username } }", json!({})).await;
    app.stop().await;
}
