//! The documented error body, for every 4xx and 5xx.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// An [`Error`] on its way out as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// `{"errors":[{"code","name","message","details"}]}`; `details.field` names the offending
/// field of a validation error.
pub fn error_body(e: &Error) -> serde_json::Value {
    let code = e.code();
    let mut details = serde_json::Map::new();
    if let Some(field) = e.field() {
        details.insert("field".into(), json!(field));
    }
    if let Error::TooManyAttempts {
        retry_after_seconds,
    } = e
    {
        details.insert("retryAfterSeconds".into(), json!(retry_after_seconds));
    }
    json!({"errors": [{
        "code": code.number,
        "name": code.name,
        "message": e.public_message(),
        "details": details,
    }]})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        match &e {
            Error::Internal(cause) | Error::Unavailable(cause) => {
                tracing::error!(error = %cause, "request failed");
            }
            _ => {}
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(error_body(&e))).into_response();
        let headers = response.headers_mut();
        match &e {
            Error::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::TooManyAttempts {
                retry_after_seconds,
            } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such path".into()))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError(Error::MethodNotAllowed(
        "this method is not allowed on this path".into(),
    ))
}
