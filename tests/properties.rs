//! The documented properties operations.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn path() -> String {
    format!("{CALL_RECORDING}/properties/")
}

#[tokio::test]
async fn a_new_store_has_the_documented_values() {
    let app = TestApp::start().await;
    let (status, body) = app.get(&path()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"continueCallAfterRecordingFailure": true, "refreshPeriodSeconds": 60,
               "maxConsecutiveFailures": 1, "maxResponseWaitTimeMilliseconds": 3000,
               "continueCallAfterVideoRecordingFailure": true})
    );
}

#[tokio::test]
async fn modify_is_partial_and_answers_like_get() {
    let app = TestApp::start().await;
    let (status, body) = app
        .admin(
            Method::PUT,
            &path(),
            Some(json!({"continueCallAfterRecordingFailure": false, "refreshPeriodSeconds": 300})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let expected = json!({"continueCallAfterRecordingFailure": false, "refreshPeriodSeconds": 300,
        "maxConsecutiveFailures": 1, "maxResponseWaitTimeMilliseconds": 3000,
        "continueCallAfterVideoRecordingFailure": true});
    assert_eq!(body, expected);
    assert_eq!(app.get(&path()).await.1, expected);
    let (_, body) = app
        .admin(
            Method::PUT,
            &path(),
            Some(
                json!({"maxConsecutiveFailures": 10, "maxResponseWaitTimeMilliseconds": 50,
                        "continueCallAfterVideoRecordingFailure": false}),
            ),
        )
        .await;
    assert_eq!(body["maxConsecutiveFailures"], 10);
    assert_eq!(body["maxResponseWaitTimeMilliseconds"], 50);
    assert_eq!(body["continueCallAfterVideoRecordingFailure"], false);
    assert_eq!(body["refreshPeriodSeconds"], 300);
}

#[tokio::test]
async fn out_of_range_values_are_refused_naming_the_field() {
    let app = TestApp::start().await;
    let before = app.get(&path()).await.1;
    for (field, value) in [
        ("refreshPeriodSeconds", json!(9)),
        ("refreshPeriodSeconds", json!(301)),
        ("maxConsecutiveFailures", json!(0)),
        ("maxConsecutiveFailures", json!(11)),
        ("maxResponseWaitTimeMilliseconds", json!(49)),
        ("maxResponseWaitTimeMilliseconds", json!(10001)),
        ("maxResponseWaitTimeMilliseconds", json!(-1)),
        ("maxResponseWaitTimeMilliseconds", json!(1e30)),
        ("refreshPeriodSeconds", json!("60")),
        ("continueCallAfterRecordingFailure", json!("true")),
        ("continueCallAfterVideoRecordingFailure", json!(1)),
        ("colour", json!("blue")),
    ] {
        // A valid field beside the bad one must not be applied either.
        let mut body = json!({"maxConsecutiveFailures": 5});
        body[field] = value.clone();
        let (status, answer) = app.admin(Method::PUT, &path(), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {answer}");
        assert_eq!(answer["errors"][0]["code"], 100, "{answer}");
        assert_eq!(answer["errors"][0]["details"]["field"], field, "{answer}");
    }
    assert_eq!(app.get(&path()).await.1, before);
}
