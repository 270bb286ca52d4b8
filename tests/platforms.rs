//! The documented platform operations through a real socket.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn first_platform_becomes_default_and_list_has_documented_shape() {
    let app = TestApp::start().await;
    let (status, body) = app.get(&platforms_path()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"systemDefault": null, "callRecordingPlatforms": []})
    );

    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Call Rec Platform 1")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"systemDefault": "Call Rec Platform 1", "callRecordingPlatforms": [platform("Call Rec Platform 1")]})
    );
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Call Rec Platform 2")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["systemDefault"], "Call Rec Platform 1");
    assert_eq!(body["callRecordingPlatforms"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn restart_keeps_every_acknowledged_change() {
    let app = TestApp::start().await;
    app.admin(Method::POST, &platforms_path(), Some(platform("A")))
        .await;
    app.admin(Method::POST, &platforms_path(), Some(platform("B")))
        .await;
    let (s, _) = app
        .admin(
            Method::PUT,
            &platform_path("B"),
            Some(json!({"default": true, "port": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let data = app.stop().await;
    let app = TestApp::start_on(data, &[]).await;
    let (_, body) = app.get(&platform_path("B")).await;
    assert_eq!(body["default"], true);
    assert!(body.get("port").is_none());
    app.stop().await;
}
