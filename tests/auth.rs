//! Login, tokens, user management and the APIO levels on every REST operation.

mod common;

use common::callers::{Callers, EVERYONE, Need, PASSWORD, op};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn add_user(
    app: &TestApp,
    username: &str,
    level: u8,
    tenant: Option<&str>,
    group: Option<&str>,
) {
    app.add_user(username, PASSWORD, level, tenant, group).await;
}

async fn login_body(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/api/v1/login/",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

#[tokio::test]
async fn every_rest_operation_at_every_level_and_token_state() {
    let app = TestApp::start().await;
    let callers = Callers::create(&app).await;
    app.admin(Method::POST, &platforms_path(), Some(platform("Default")))
        .await;
    let props = format!("{CALL_RECORDING}/properties/");
    let (group, system) = (Need::Level(8), Need::Level(16));
    for (row, who) in EVERYONE.into_iter().enumerate() {
        // Each row gets its own objects, so that a 200 of one row cannot fail the next.
        let own = format!("Row {row}");
        app.admin(Method::POST, &platforms_path(), Some(platform(&own)))
            .await;
        let added = platform(&format!("Added {row}"));
        let user = json!({"username": format!("u{row}"), "password": PASSWORD, "userLevel": 0,
            "tenantId": "t1", "groupId": "g1"});
        let operations = [
            op(Method::GET, platforms_path(), None, group),
            op(Method::POST, platforms_path(), Some(added), system),
            op(Method::GET, platform_path(&own), None, system),
            op(
                Method::PUT,
                platform_path(&own),
                Some(json!({"description": "changed"})),
                system,
            ),
            op(
                Method::GET,
                format!("{}usage/", platform_path(&own)),
                None,
                system,
            ),
            op(Method::DELETE, platform_path(&own), None, system),
            op(Method::GET, props.clone(), None, system),
            op(
                Method::PUT,
                props.clone(),
                Some(json!({"refreshPeriodSeconds": 61})),
                system,
            ),
            op(Method::GET, "/api/v1/local/users/", None, system),
            op(Method::POST, "/api/v1/local/users/", Some(user), system),
            op(
                Method::DELETE,
                format!("/api/v1/local/users/u{row}/"),
                None,
                system,
            ),
        ];
        for operation in &operations {
            operation.check(&app, &callers, who).await;
        }
    }
}

#[tokio::test]
async fn login_answers_the_apio_shape_and_refuses_bad_credentials() {
    let app = TestApp::start().await;
    add_user(&app, "grp", 8, Some("t1"), Some("g1")).await;
    let (status, body) = login_body(&app, "grp", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["access_token"].as_str().unwrap().len() > 20);
    assert!(body["refresh_token"].as_str().unwrap().len() > 20);
    assert_eq!(
        body["ids"],
        json!({"tenant_id": "t1", "group_id": "g1", "user_id": "grp"})
    );
    assert_eq!(body["profile"], json!({"user_level": 8}));

    for (user, password) in [("grp", "wrong-password"), ("nobody", PASSWORD), ("grp", "")] {
        let (status, body) = login_body(&app, user, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(body["errors"][0]["name"], "UNAUTHENTICATED");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/login/",
            None,
            Some(json!({"username": "grp"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["name"], "INVALID_VALUE");
}

#[tokio::test]
async fn malformed_authorization_headers_are_401() {
    let app = TestApp::start().await;
    for header in [
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46eA==",
        "Bearer not.a.jwt",
        "token",
    ] {
        let response = app
            .client
            .get(app.url(&platforms_path()))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

/// The status of listing the platforms with `token`.
async fn platforms_status(app: &TestApp, token: &str) -> StatusCode {
    app.call(Method::GET, &platforms_path(), Some(token), None)
        .await
        .0
}

#[tokio::test]
async fn refresh_gives_a_working_access_token_and_logout_ends_it() {
    let app = TestApp::start().await;
    let (access, refresh) = app.login_tokens("admin", ADMIN_PASSWORD).await;
    let (status, fresh) = app.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK);
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(platforms_status(&app, &fresh).await, StatusCode::OK);

    // An access token is not a refresh token, nor the other way round.
    assert_eq!(app.refresh(&access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        platforms_status(&app, &refresh).await,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(app.logout(&access, &refresh).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::UNAUTHORIZED);
    for token in [&access, &fresh] {
        assert_eq!(
            platforms_status(&app, token).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Other sessions of the same user go on.
    assert_eq!(app.get(&platforms_path()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn logout_needs_the_callers_own_valid_refresh_token() {
    let app = TestApp::start().await;
    add_user(&app, "other", 16, None, None).await;
    let (_, other) = app.login_tokens("other", PASSWORD).await;
    let (status, body) = app.logout(&app.token, &other).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.logout(&app.token, "garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["details"]["field"], "refresh_token");
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let app = TestApp::start().await;
    let (access, refresh) = app.login_tokens("admin", ADMIN_PASSWORD).await;
    let data = app.stop().await;
    let app = TestApp::start_on(data, &[]).await;
    assert_eq!(platforms_status(&app, &access).await, StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.0, StatusCode::OK);
}

#[tokio::test]
async fn repeated_failures_lock_one_username_only() {
    let app = TestApp::start_with(&["--max-failed-logins", "3", "--login-lockout", "600"]).await;
    add_user(&app, "victim", 16, None, None).await;
    for _ in 0..3 {
        assert_eq!(
            login_body(&app, "victim", "guess-guess").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused while locked.
    let (status, body) = login_body(&app, "victim", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["errors"][0]["name"], "TOO_MANY_ATTEMPTS");
    assert!(
        body["errors"][0]["details"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Other users are not affected.
    let (status, _) = login_body(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn user_management_rules() {
    let app = TestApp::start().await;
    add_user(&app, "ops", 12, Some("t1"), None).await;
    let (status, body) = app
        .admin(
            Method::POST,
            "/api/v1/local/users/",
            Some(json!({"username": "ops", "password": PASSWORD, "userLevel": 16})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 11);

    for (body, field) in [
        (
            json!({"username": "x", "password": PASSWORD, "userLevel": 7}),
            "userLevel",
        ),
        (
            json!({"username": "x", "password": PASSWORD, "userLevel": 12}),
            "userLevel",
        ),
        (
            json!({"username": "x", "password": PASSWORD, "userLevel": 16, "tenantId": "t"}),
            "userLevel",
        ),
        (
            json!({"username": "x", "password": "short", "userLevel": 16}),
            "password",
        ),
        (
            json!({"username": "", "password": PASSWORD, "userLevel": 16}),
            "username",
        ),
        (
            json!({"username": "x", "password": PASSWORD, "userLevel": 16, "admin": true}),
            "admin",
        ),
    ] {
        let (status, answer) = app
            .admin(Method::POST, "/api/v1/local/users/", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["errors"][0]["details"]["field"], field, "{answer}");
    }

    let (status, body) = app.get("/api/v1/local/users/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"users": [
            {"username": "admin", "userLevel": 16},
            {"username": "ops", "userLevel": 12, "tenantId": "t1"}
        ]})
    );
    assert_eq!(
        app.admin(Method::DELETE, "/api/v1/local/users/nobody/", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = app
        .admin(Method::DELETE, "/api/v1/local/users/admin/", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 18, "the last System Admin stays");
    assert_eq!(
        app.admin(Method::DELETE, "/api/v1/local/users/ops", None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn passwords_never_appear_in_responses() {
    let app = TestApp::start().await;
    let secret = "very-secret-password-123";
    let mut seen = String::new();
    for body in [
        json!({"username": "u1", "password": secret, "userLevel": 16}),
        json!({"username": "u1", "password": secret, "userLevel": 16}),
        json!({"username": "u2", "password": secret, "userLevel": 3}),
    ] {
        seen += &app
            .admin(Method::POST, "/api/v1/local/users/", Some(body))
            .await
            .1
            .to_string();
    }
    seen += &app.get("/api/v1/local/users/").await.1.to_string();
    seen += &login_body(&app, "u1", secret).await.1.to_string();
    seen += &login_body(&app, "u1", "wrong-but-secret")
        .await
        .1
        .to_string();
    assert!(
        !seen.contains(secret) && !seen.contains("wrong-but-secret"),
        "{seen}"
    );
    assert!(!seen.contains("argon2"), "no hash either: {seen}");
}

#[tokio::test]
async fn bootstrap_generates_a_password_when_none_is_given() {
    let data = tempfile::tempdir().unwrap();
    let server = callrec_gateway::server::Server::start(callrec_gateway::server::Start {
        args: serve_args(data.path(), &[]),
        admin_password: None,
    })
    .await
    .unwrap();
    let password = server.generated_admin_password.clone().expect("generated");
    assert!(password.len() >= 20);
    let answer = server
        .service()
        .login("admin", &password)
        .await
        .expect("login");
    assert_eq!(answer.principal.level.number(), 16);
    drop(server);
    // A second start on the same store creates nothing and shows nothing.
    let server = callrec_gateway::server::Server::start(callrec_gateway::server::Start {
        args: serve_args(data.path(), &[]),
        admin_password: Some("ignored-now".into()),
    })
    .await
    .unwrap();
    assert!(server.generated_admin_password.is_none());
    assert!(
        server
            .service()
            .login("admin", "ignored-now")
            .await
            .is_err()
    );
}
