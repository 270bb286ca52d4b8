//! Names that look the same are one name: invisible format and bidi characters are refused,
//! platform names are unique after NFC normalization and user names after compatibility case
//! folding. Stored names stay exactly as given.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "a-long-password";
const NFC: &str = "Caf\u{e9} Rec";
const NFD: &str = "Cafe\u{301} Rec";

/// Asserts a 400 with the given sub code (and field, for INVALID_VALUE).
fn refused(answer: &(StatusCode, Value), code: u32, field: Option<&str>) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    if let Some(field) = field {
        assert_eq!(body["errors"][0]["details"]["field"], field, "{body}");
    }
}

async fn platform_names(app: &TestApp) -> Vec<String> {
    let (status, list) = app.get(&platforms_path()).await;
    assert_eq!(status, StatusCode::OK);
    list["callRecordingPlatforms"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn platform_names_equal_after_nfc_are_one_name() {
    for (first, second) in [(NFC, NFD), (NFD, NFC)] {
        let app = TestApp::start().await;
        let (status, body) = app
            .admin(Method::POST, &platforms_path(), Some(platform(first)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = app
            .admin(Method::POST, &platforms_path(), Some(platform(second)))
            .await;
        refused(&answer, 11, None);
        assert_eq!(answer.1["errors"][0]["name"], "ALREADY_EXISTS");
        // Stored as given, found by the exact name only.
        assert_eq!(platform_names(&app).await, [first]);
        assert_eq!(app.get(&platform_path(first)).await.0, StatusCode::OK);
        assert_eq!(
            app.get(&platform_path(second)).await.0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn invisible_characters_are_refused_in_every_name() {
    let app = TestApp::start().await;
    let sneaky = [
        "Call\u{200B}Rec",
        "\u{202E}ceR llaC",
        "\u{FEFF}Rec",
        "Rec \u{2066}1\u{2069}",
    ];
    let (_, before) = app.get(&platforms_path()).await;
    for name in sneaky {
        refused(
            &app.admin(Method::POST, &platforms_path(), Some(platform(name)))
                .await,
            100,
            Some("name"),
        );
        refused(
            &app.admin(
                Method::POST,
                "/api/v1/tenants/",
                Some(json!({"tenantId": name})),
            )
            .await,
            100,
            Some("tenantId"),
        );
    }
    assert_eq!(app.get(&platforms_path()).await.1, before);
    let (_, tenants) = app.get("/api/v1/tenants/").await;
    assert_eq!(tenants["tenants"], json!([]));

    app.admin(
        Method::POST,
        "/api/v1/tenants/",
        Some(json!({"tenantId": "T1"})),
    )
    .await;
    refused(
        &app.admin(
            Method::POST,
            "/api/v1/tenants/T1/groups/",
            Some(json!({"groupId": "G\u{200B}1"})),
        )
        .await,
        100,
        Some("groupId"),
    );
    let (_, groups) = app.get("/api/v1/tenants/T1/groups/").await;
    assert_eq!(groups["groups"], json!([]));
}

#[tokio::test]
async fn user_names_equal_after_case_folding_are_one_name() {
    let app = TestApp::start().await;
    let (_, before) = app.get("/api/v1/local/users/").await;
    let add = |username: &'static str| {
        app.admin(
            Method::POST,
            "/api/v1/local/users/",
            Some(json!({"username": username, "password": PASSWORD, "userLevel": 16})),
        )
    };
    for look_alike in ["Admin", "ADMIN", "\u{ff41}\u{ff44}\u{ff4d}\u{ff49}\u{ff4e}"] {
        let answer = add(look_alike).await;
        refused(&answer, 11, None);
        assert!(
            answer.1["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("'admin'"),
            "{}",
            answer.1
        );
    }
    refused(&add("admin\u{200B}").await, 100, Some("username"));
    refused(&add("\u{202E}nimda").await, 100, Some("username"));
    assert_eq!(app.get("/api/v1/local/users/").await.1, before);

    // A different name is still welcome, and kept as typed; logins use the exact name.
    let (status, body) = add("Operator").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "Operator");
    refused(&add("operator").await, 11, None);
    app.login("Operator", PASSWORD).await;
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/login/",
            None,
            Some(json!({"username": "operator", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
