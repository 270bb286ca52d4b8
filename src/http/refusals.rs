//! Answers given before a request reaches its handler: a body declared over the limit, and
//! every request on a connection past `--max-connections`.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{error, graphql, ops};
use crate::error::Error;

/// What answers connections past `--max-connections`: `/healthz` as usual (liveness probes
/// must not fail because clients are many), everything else 503 with `Connection: close`.
pub fn at_capacity_app() -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .fallback(at_capacity)
}

async fn at_capacity() -> Response {
    // Not through `ApiError`, which logs every 503 as a failure (the accept loop logs the
    // full house once a second) and words it as the store's.
    let mut body = error::ErrorBody::of(&Error::Unavailable(String::new()));
    for item in &mut body.errors {
        item.message =
            "the server has as many connections open as it allows; try again shortly".into();
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A request whose `Content-Length` is over the body limit is answered 413 before anything
/// reads its body, so the client is not left sending it (nor told `100 Continue`). `POST
/// /graphql` gets the GraphQL error shape it uses for every refusal.
pub async fn declared_oversize(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(declared) = declared.filter(|d| *d > limit as u64) else {
        return next.run(request).await;
    };
    let e = Error::PayloadTooLarge(format!(
        "the request body is too large: {declared} bytes declared, at most {limit} accepted"
    ));
    if request.uri().path() == graphql::PATH {
        let body = serde_json::json!({
            "errors": [graphql::error::GqlError::from(e).into_server_error()]
        });
        (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
    } else {
        error::ApiError(e).into_response()
    }
}
