//! Login sessions: refresh tokens rotate (with a short grace for parallel refreshes, and a
//! replay after it ends the session), sessions per user are capped, and expired ones are
//! removed while the server runs.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};

const PASSWORD: &str = "a-long-password";

async fn works(app: &TestApp, access: &str) -> bool {
    let (status, body) = app
        .call(Method::GET, &platforms_path(), Some(access), None)
        .await;
    match status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("unexpected {other}: {body}"),
    }
}

#[tokio::test]
async fn each_refresh_rotates_and_an_old_token_replayed_ends_the_session() {
    let app = TestApp::start().await;
    let (access0, r0) = app.login_tokens("admin", ADMIN_PASSWORD).await;
    let (status, body) = app.refresh(&r0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access1, r1) = tokens_of(&body);
    assert_ne!(r1, r0);
    assert!(works(&app, &access1).await);

    // Within the grace the replaced token still answers, handing out the current refresh
    // token again instead of rotating once more.
    let (status, body) = app.refresh(&r0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, r1_again) = tokens_of(&body);
    let id = |token: &str| {
        app.service
            .tokens()
            .verify(token, callrec_gateway::auth::TokenKind::Refresh)
            .expect("a refresh token")
            .jti
    };
    assert_eq!(id(&r1_again), id(&r1));
    let (status, body) = app.refresh(&r1_again).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access2, r2) = tokens_of(&body);
    // r1 was rotated by that call (as r1_again): it is now the previous token, still in grace.
    assert_eq!(app.refresh(&r1).await.0, StatusCode::OK);

    // r0 is two rotations old: taken as stolen, the whole session ends.
    let (status, body) = app.refresh(&r0).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errors"][0]["name"], "UNAUTHENTICATED");
    for access in [&access0, &access1, &access2] {
        assert!(!works(&app, access).await);
    }
    assert_eq!(app.refresh(&r2).await.0, StatusCode::UNAUTHORIZED);
    // Other sessions of the user go on.
    assert!(works(&app, &app.token).await);
}

#[tokio::test]
async fn parallel_refreshes_with_one_token_all_succeed() {
    let app = TestApp::start().await;
    let (_, r0) = app.login_tokens("admin", ADMIN_PASSWORD).await;
    let answers = futures_util::future::join_all((0..8).map(|_| app.refresh(&r0))).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        let (access, _) = tokens_of(body);
        assert!(works(&app, &access).await);
    }
}

#[tokio::test]
async fn a_replaced_token_after_the_grace_ends_the_session() {
    let app = TestApp::start_with(&["--refresh-token-grace", "1"]).await;
    let (access0, r0) = app.login_tokens("admin", ADMIN_PASSWORD).await;
    let (status, body) = app.refresh(&r0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access1, r1) = tokens_of(&body);
    // The grace is a point in time: nothing to wait on but the clock.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(app.refresh(&r0).await.0, StatusCode::UNAUTHORIZED);
    assert!(!works(&app, &access0).await);
    assert!(!works(&app, &access1).await);
    assert_eq!(app.refresh(&r1).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_login_past_the_cap_ends_the_oldest_session() {
    let app = TestApp::start_with(&["--max-sessions-per-user", "3"]).await;
    app.add_user("ops", PASSWORD, 16, None, None).await;
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(app.login_tokens("ops", PASSWORD).await);
    }
    let open: Vec<bool> =
        futures_util::future::join_all(sessions.iter().map(|(access, _)| works(&app, access)))
            .await;
    assert_eq!(open, [false, false, true, true, true]);
    assert_eq!(
        app.refresh(&sessions[0].1).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.refresh(&sessions[4].1).await.0, StatusCode::OK);
    let stored =
        callrec_gateway::store::Read::sessions(&app.service.store().load().await.unwrap().0)
            .unwrap();
    assert_eq!(stored.iter().filter(|s| s.username == "ops").count(), 3);
    // Another user's sessions are not counted.
    assert!(works(&app, &app.token).await);
}

#[tokio::test]
async fn expired_sessions_are_removed_while_running() {
    let app =
        TestApp::start_with(&["--refresh-token-ttl", "1", "--session-prune-interval", "1"]).await;
    for _ in 0..3 {
        app.login_tokens("admin", ADMIN_PASSWORD).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left =
            callrec_gateway::store::Read::sessions(&app.service.store().load().await.unwrap().0)
                .unwrap()
                .len();
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} expired sessions still stored after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Logins still work.
    app.login_tokens("admin", ADMIN_PASSWORD).await;
}
