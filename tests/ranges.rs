//! Each numeric range of the model is stated once: the OpenAPI document, the GraphQL schema's
//! descriptions and the validation messages all say what the model's constants say.

mod common;

use callrec_gateway::model::limits::{Bound, FIELD_RANGES, range_of};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// (schema, property) pairs where `0` or `""` removes the value, so the lower bound is 0.
const ZERO_REMOVES: &[(&str, &str)] = &[
    ("AddPlatformBody", "port"),
    ("ModifyPlatformBody", "port"),
    ("ModifyPlatformBody", "description"),
];

#[tokio::test]
async fn the_openapi_document_states_the_models_ranges() {
    let app = TestApp::start().await;
    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut checked = 0;
    for (schema, body) in doc["components"]["schemas"].as_object().expect("schemas") {
        if ["ErrorItem", "LoginBody"].contains(&schema.as_str()) {
            continue;
        }
        let Some(properties) = body["properties"].as_object() else {
            continue;
        };
        for (name, property) in properties {
            let Some(range) = range_of(name) else {
                continue;
            };
            let min = if ZERO_REMOVES.contains(&(schema.as_str(), name.as_str())) {
                0
            } else {
                range.min
            };
            let (low, high) = match range.bound {
                Bound::Characters => ("minLength", "maxLength"),
                Bound::Value => ("minimum", "maximum"),
            };
            assert_eq!(
                (&property[low], &property[high]),
                (&Value::from(min), &Value::from(range.max)),
                "{schema}.{name}: {property}"
            );
            checked += 1;
        }
    }
    // Every ranged field appears somewhere.
    for range in FIELD_RANGES {
        assert!(
            doc["components"]["schemas"]
                .as_object()
                .unwrap()
                .values()
                .any(|s| s["properties"].get(range.field).is_some()),
            "{} is in no schema",
            range.field
        );
    }
    assert!(checked >= 30, "only {checked} properties checked");
}

#[test]
fn the_graphql_descriptions_state_the_models_ranges() {
    let sdl = callrec_gateway::http::graphql::sdl();
    let range = |field: &str| {
        let r = range_of(field).expect("a ranged field");
        format!("{}-{}", r.min, r.max)
    };
    for expected in [
        format!(
            "{} characters, no leading or trailing space.",
            range("name")
        ),
        format!("{}, or null when unset.", range("port")),
        format!("{} characters.", range("description")),
        format!("{} characters, unique within the tenant.", range("groupId")),
        format!("{} characters.", range("tenantId")),
        format!("{} (deprecated", range("refreshPeriodSeconds")),
        format!("{} (deprecated", range("maxConsecutiveFailures")),
        format!("{}.", range("maxResponseWaitTimeMilliseconds")),
    ] {
        assert!(sdl.contains(&expected), "the SDL does not say {expected:?}");
    }
}

#[tokio::test]
async fn validation_messages_state_the_models_ranges() {
    let app = TestApp::start().await;
    let port = range_of("port").unwrap();
    let mut body = platform("P");
    body["port"] = Value::from(port.max + 1);
    let (status, answer) = app.admin(Method::POST, &platforms_path(), Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer["errors"][0]["message"],
        format!(
            "port must be {}-{} (got {})",
            port.min,
            port.max,
            port.max + 1
        )
    );
}
