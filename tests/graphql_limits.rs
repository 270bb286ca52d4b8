//! Hostile GraphQL requests are refused by the limits, and an ordinary client (GraphiQL's
//! introspection query) fits within them.

mod common;

use std::time::Duration;

use common::graphql::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// graphql-js's introspection query, as GraphiQL sends it.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations isRepeatable args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

fn messages(body: &Value) -> String {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors expected: {body}"))
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn graphiql_introspection_fits_the_limits() {
    let app = TestApp::start().await;
    let data = app.gql_ok(INTROSPECTION, json!({})).await;
    let types = data["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "CallRecordingPlatform"));
    assert_eq!(data["__schema"]["subscriptionType"]["name"], "Subscription");
    app.stop().await;
}

#[tokio::test]
async fn too_deep_is_refused() {
    let app = TestApp::start().await;
    // Recursive introspection: 20 levels of ofType.
    let query = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(20),
        "} ".repeat(20)
    );
    let body = app.gql(&query, json!({})).await;
    assert!(messages(&body).contains("nested too deep"), "{body}");
    assert!(body["data"].is_null(), "{body}");
    app.stop().await;
}

/// A query of `2^levels * 5` fields once expanded, few as written and without aliases.
fn doubling(levels: usize) -> String {
    let mut query = format!(
        "query {{ ...F{levels} }} fragment F0 on Query {{ me {{ username level tenantId groupId }} }}"
    );
    for i in 1..=levels {
        query.push_str(&format!(
            " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
            p = i - 1
        ));
    }
    query
}

/// `copies` aliases of the platform list, each with `fields`.
fn lists(copies: usize, fields: &str) -> String {
    let lists: Vec<String> = (0..copies)
        .map(|i| format!("l{i}: callRecordingPlatforms {{ platforms {{ {fields} }} }}"))
        .collect();
    format!("{{ {} }}", lists.join(" "))
}

#[tokio::test]
async fn lists_count_their_items_in_the_complexity() {
    let app = TestApp::start_with(&["--graphql-max-complexity", "5000"]).await;
    add_platforms(&app.service, 100).await;
    // One list: 1 + 1 + 100 * 2 = 202.
    let data = app.gql_ok(&lists(1, "name port"), json!({})).await;
    assert_eq!(data["l0"]["platforms"].as_array().map(Vec::len), Some(100));
    // 30 copies (6060) is over the budget, though only 90 fields are written.
    let body = app.gql(&lists(30, "name port"), json!({})).await;
    let error = assert_error(&body, "QUERY_TOO_LARGE", None);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("complexity is 6060"),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");

    // A batch is one budget: 10 operations of 3 copies (10 * 606) are all refused, though
    // each alone fits.
    let batch: Vec<Value> = (0..10)
        .map(|_| json!({"query": lists(3, "name port")}))
        .collect();
    let (status, body) = app.gql_body(Some(&app.token), json!(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers = body.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 10);
    for answer in answers {
        assert_error(answer, "QUERY_TOO_LARGE", None);
    }
    // 8 of them fit (4848).
    let (_, body) = app.gql_body(Some(&app.token), json!(&batch[..8])).await;
    for answer in body.as_array().expect("a batch answer") {
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    app.stop().await;
}

#[tokio::test]
async fn answers_over_the_byte_cap_are_refused() {
    let app = TestApp::start_with(&["--max-response-bytes", "3000"]).await;
    add_platforms(&app.service, 100).await;
    // About 19 bytes a platform: 1.9 KB.
    let data = app.gql_ok(&lists(1, "name"), json!({})).await;
    assert_eq!(data["l0"]["platforms"].as_array().map(Vec::len), Some(100));
    // Every field: well over 3 KB.
    let body = app.gql(&lists(1, PLATFORM_FIELDS), json!({})).await;
    let error = assert_error(&body, "RESPONSE_TOO_LARGE", None);
    assert!(
        error["message"].as_str().unwrap().contains("at most 3000"),
        "{body}"
    );
    // In a batch, the cap is for the whole answer: the second list is refused.
    let batch = json!([{"query": lists(1, "name")}, {"query": lists(1, "name")}]);
    let (status, body) = app.gql_body(Some(&app.token), batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body[0].get("errors").is_none(), "{body}");
    assert_error(&body[1], "RESPONSE_TOO_LARGE", None);
    // Over the WebSocket, per message.
    let mut client = common::ws::accepted(&app, &app.token).await;
    client
        .send(json!({"id": "q", "type": "subscribe",
                     "payload": {"query": lists(1, PLATFORM_FIELDS)}}))
        .await;
    let payload = client.next_payload("q").await;
    assert_error(&payload, "RESPONSE_TOO_LARGE", None);
    app.stop().await;
}

#[tokio::test]
async fn fields_once_expanded_are_capped() {
    let app = TestApp::start().await;
    // 2^4 * 5 = 80 fields: fine.
    let data = app.gql_ok(&doubling(4), json!({})).await;
    assert_eq!(data["me"]["username"], "admin");
    // 2^8 * 5 = 1280 fields once expanded, 7 written: refused.
    let body = app.gql(&doubling(8), json!({})).await;
    assert_error(&body, "QUERY_TOO_LARGE", None);
    assert!(messages(&body).contains("expanded"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn fragment_bombs_are_refused_quickly() {
    let app = TestApp::start().await;
    // 2^40 * 5 fields once expanded.
    let body = tokio::time::timeout(Duration::from_secs(10), app.gql(&doubling(40), json!({})))
        .await
        .expect("refused without expanding the fragments");
    assert_error(&body, "QUERY_TOO_LARGE", None);
    // A cycle.
    let body = app
        .gql(
            "{ ...A } fragment A on Query { ...B } fragment B on Query { me { username } ...A }",
            json!({}),
        )
        .await;
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn too_many_aliases_are_refused() {
    let app = TestApp::start().await;
    let aliases = |n: usize| {
        format!(
            "{{ {} }}",
            (0..n)
                .map(|i| format!("a{i}: me {{ username }}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let data = app.gql_ok(&aliases(30), json!({})).await;
    assert_eq!(data["a29"]["username"], "admin");
    let body = app.gql(&aliases(31), json!({})).await;
    let error = assert_error(&body, "QUERY_TOO_LARGE", None);
    assert!(
        error["message"].as_str().unwrap().contains("aliases"),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn too_many_fields_are_refused() {
    let app = TestApp::start().await;
    let query = format!("{{ me {{ {} }} }}", "username ".repeat(600));
    let body = app.gql(&query, json!({})).await;
    assert_error(&body, "QUERY_TOO_LARGE", None);
    app.stop().await;
}

#[tokio::test]
async fn batches_are_capped() {
    let app = TestApp::start().await;
    let token = app.token.clone();
    let op = json!({"query": "{ me { username } }"});
    let (status, body) = app
        .gql_body(Some(&token), json!(vec![op.clone(); 10]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers = body.as_array().expect("a batch answers with an array");
    assert_eq!(answers.len(), 10);
    assert!(
        answers
            .iter()
            .all(|a| a["data"]["me"]["username"] == "admin")
    );

    let (status, body) = app
        .gql_body(Some(&token), json!(vec![op.clone(); 11]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = assert_error(&body, "BATCH_TOO_LARGE", None);
    assert!(error["message"].as_str().unwrap().contains("11"));

    let (status, body) = app.gql_body(Some(&token), json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "BATCH_TOO_LARGE", None);
    app.stop().await;
}

#[tokio::test]
async fn deep_nesting_in_the_text_is_an_error_not_a_crash() {
    let app = TestApp::start().await;
    let selections = format!("{}{}", "{ a ".repeat(5000), "}".repeat(5000));
    let body = app.gql(&selections, json!({})).await;
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    let values = format!(
        "{{ callRecordingPlatform(name: {}\"x\"{}) {{ name }} }}",
        "[".repeat(10000),
        "]".repeat(10000)
    );
    let body = app.gql(&values, json!({})).await;
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    // The server is still there.
    app.gql_ok("{ me { username } }", json!({})).await;
    app.stop().await;
}
