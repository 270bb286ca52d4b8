//! Answers kept between commits: an identical query of the same caller is answered from
//! memory, and never after anything changed or for anyone else.

mod common;

use common::graphql::*;
use common::*;
use reqwest::Method;
use serde_json::json;

const LIST: &str = "{ callRecordingPlatforms { systemDefault platforms { name port } } }";

#[tokio::test]
async fn a_commit_ends_every_kept_answer() {
    let app = TestApp::start().await;
    app.admin(Method::POST, &platforms_path(), Some(platform("First")))
        .await;
    let first = app.gql_ok(LIST, json!({})).await;
    assert_eq!(first, app.gql_ok(LIST, json!({})).await);
    assert_eq!(
        first["callRecordingPlatforms"]["platforms"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Changed through REST: the next identical query sees it.
    app.admin(
        Method::PUT,
        &platform_path("First"),
        Some(json!({"port": 5060})),
    )
    .await;
    let after = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        after["callRecordingPlatforms"]["platforms"][0]["port"],
        5060
    );
    app.admin(Method::POST, &platforms_path(), Some(platform("Second")))
        .await;
    let after = app.gql_ok(LIST, json!({})).await;
    assert_eq!(
        after["callRecordingPlatforms"]["platforms"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_kept_answer_serves_only_its_own_caller() {
    let app = TestApp::start().await;
    let query = "{ callRecordingProperties { refreshPeriodSeconds } me { username } }";
    let admin = app.gql_ok(query, json!({})).await;
    assert_eq!(admin["me"]["username"], "admin");
    let group_admin = app.group_admin_token().await;
    let body = app.gql_as(Some(&group_admin), query, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert_eq!(body["data"]["me"]["username"], "groupadmin", "{body}");
    // No token at all: refused, not served from memory.
    let body = app.gql_as(None, query, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
}

#[tokio::test]
async fn an_ended_session_gets_no_kept_answer() {
    let app = TestApp::start().await;
    let (_, login) = app
        .call(
            Method::POST,
            "/api/v1/login/",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let ok = app.gql_as(Some(&token), LIST, json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok}");
    app.call(
        Method::POST,
        "/api/v1/logout/",
        Some(&token),
        Some(json!({"refresh_token": login["refresh_token"]})),
    )
    .await;
    let body = app.gql_as(Some(&token), LIST, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
}

#[tokio::test]
async fn variables_and_mutations_are_told_apart() {
    let app = TestApp::start().await;
    app.admin(Method::POST, &platforms_path(), Some(platform("A")))
        .await;
    app.admin(Method::POST, &platforms_path(), Some(platform("B")))
        .await;
    let one = "query One($name: String!) { callRecordingPlatform(name: $name) { name } }";
    let a = app.gql_ok(one, json!({"name": "A"})).await;
    let b = app.gql_ok(one, json!({"name": "B"})).await;
    assert_eq!(a["callRecordingPlatform"]["name"], "A");
    assert_eq!(b["callRecordingPlatform"]["name"], "B");
    // The same mutation twice runs twice: the second is refused as a duplicate.
    let add = "mutation Add($input: AddCallRecordingPlatformInput!) { addCallRecordingPlatform(input: $input) { name } }";
    let vars = json!({"input": platform_input("C")});
    let first = app.gql(add, vars.clone()).await;
    assert!(first.get("errors").is_none(), "{first}");
    let second = app.gql(add, vars).await;
    assert_eq!(
        second["errors"][0]["extensions"]["subErrorCode"], 11,
        "{second}"
    );
}
