//! Bad input gets a clear 400 (413 for size) with the documented error body naming the field,
//! never a panic or a 5xx, and changes nothing.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server holding platform `name`, and its snapshot.
async fn with_platform(name: &str) -> (TestApp, (Value, Value)) {
    let app = TestApp::start().await;
    let (status, body) = app
        .admin(Method::POST, &platforms_path(), Some(platform(name)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = snapshot(&app).await;
    (app, before)
}

async fn snapshot(app: &TestApp) -> (Value, Value) {
    (
        app.get(&platforms_path()).await.1,
        app.get(&format!("{CALL_RECORDING}/properties/")).await.1,
    )
}

fn with(field: &str, value: Value) -> Value {
    let mut p = platform("New");
    if value.is_null() && field != "name" {
        p.as_object_mut().unwrap().remove(field);
    } else {
        p[field] = value;
    }
    p
}

async fn send_raw(app: &TestApp, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answered");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body)
}

#[tokio::test]
async fn every_invalid_field_of_an_add_is_named() {
    let (app, before) = with_platform("Existing").await;
    let cases: Vec<(&str, Value)> = vec![
        ("name", json!("x".repeat(81))),
        ("name", json!("")),
        ("name", json!(" padded")),
        ("name", json!("tab\there")),
        ("name", json!(42)),
        ("netAddress", json!("not an address!")),
        ("netAddress", json!("10.0.0.300")),
        ("netAddress", json!("h".repeat(81))),
        ("netAddress", Value::Null),
        ("port", json!(65536)),
        ("port", json!(-5)),
        ("port", json!(1.5)),
        ("port", json!("222")),
        ("port", json!(99999999999999999999999999999_f64)),
        ("mediaStream", json!("Triple")),
        ("mediaStream", json!("dual")),
        ("mediaStream", Value::Null),
        ("transportProtocol", json!("SCTP")),
        ("transportProtocol", json!("udp")),
        ("description", json!("d".repeat(81))),
        ("description", json!("")),
        ("description", json!("bell\u{7}")),
        ("schemaVersion", json!("4.0")),
        ("schemaVersion", json!(1.0)),
        ("supportVideoRecording", json!("false")),
        ("supportVideoRecording", Value::Null),
        ("colour", json!("blue")),
    ];
    for (field, value) in cases {
        let body = with(field, value.clone());
        let (status, answer) = app.admin(Method::POST, &platforms_path(), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {answer}");
        let e = &answer["errors"][0];
        assert_eq!(e["code"], 100, "{answer}");
        assert_eq!(e["name"], "INVALID_VALUE");
        assert_eq!(e["details"]["field"], field, "{field}={value}: {answer}");
        assert!(e["message"].as_str().unwrap().contains(field), "{answer}");
    }
    // 80 characters is fine.
    let (status, _) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform(&"n".repeat(80))),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.admin(Method::DELETE, &platform_path(&"n".repeat(80)), None)
        .await;
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn every_invalid_field_of_a_modify_is_named_and_nothing_changes() {
    let (app, before) = with_platform("P").await;
    for (field, value) in [
        ("default", json!("yes")),
        ("netAddress", json!("")),
        ("port", json!(70000)),
        ("port", json!(-1)),
        ("description", json!("d".repeat(81))),
        ("mediaStream", json!(1)),
        ("name", json!("Renamed")),
        ("supportVideoRecording", json!("no")),
    ] {
        // Valid changes beside the bad one must not be applied.
        let body = json!({"netAddress": "192.168.1.1", field: value});
        let (status, answer) = app
            .admin(Method::PUT, &platform_path("P"), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["errors"][0]["details"]["field"], field, "{answer}");
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn malformed_bodies_are_400_with_the_error_body() {
    let (app, before) = with_platform("P").await;
    let bodies: Vec<&[u8]> = vec![
        b"",
        b"   ",
        b"{",
        b"{\"name\": \"x\",}",
        b"[]",
        b"null",
        b"\"text\"",
        b"42",
        b"{} {}",
        b"\xff\xfe",
        b"{\"name\": \"\\ud800\"}",
    ];
    let targets = [
        (Method::POST, platforms_path()),
        (Method::PUT, platform_path("P")),
        (Method::PUT, format!("{CALL_RECORDING}/properties/")),
    ];
    for body in bodies {
        for (method, path) in &targets {
            let (status, answer) = send_raw(&app, method.clone(), path, body.to_vec()).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{method} {path} {:?}: {answer}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(answer["errors"][0]["name"], "INVALID_VALUE", "{answer}");
        }
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::start_with(&["--body-limit", "4096"]).await;
    let mut huge = platform("Huge");
    huge["description"] = json!("x".repeat(10_000));
    let (status, answer) = send_raw(
        &app,
        Method::POST,
        &platforms_path(),
        serde_json::to_vec(&huge).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["errors"][0]["name"], "PAYLOAD_TOO_LARGE");
    assert_eq!(
        app.get(&platforms_path()).await.1["callRecordingPlatforms"],
        json!([])
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_the_error_body() {
    let app = TestApp::start().await;
    let (status, body) = app
        .get("/api/v1/system/services/call_recording/nothing/")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["name"], "NOT_FOUND");
    let (status, body) = app
        .admin(Method::PATCH, &platforms_path(), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["errors"][0]["name"], "METHOD_NOT_ALLOWED");
    let (status, _) = app
        .admin(
            Method::DELETE,
            &format!("{CALL_RECORDING}/properties/"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_body_without_content_type_is_still_read() {
    let app = TestApp::start().await;
    let response = app
        .client
        .post(app.url(&platforms_path()))
        .bearer_auth(&app.token)
        .body(platform("Plain").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
