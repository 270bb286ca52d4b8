//! The documented error body, for every 4xx and 5xx.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// An [`Error`] on its way out as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The documented error body: `{"errors":[{"code","name","message","details"}]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorItem {
    /// The sub error code: 11 ALREADY_EXISTS, 18 INVALID_OPERATION, 21 NOT_DELETED, or one of
    /// this server's own (100 and up).
    #[schema(example = 18)]
    pub code: u32,
    #[schema(example = "INVALID_OPERATION")]
    pub name: &'static str,
    #[schema(example = "Call Recording platform does not exist.")]
    pub message: String,
    pub details: ErrorDetails,
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetails {
    /// The offending field of a validation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// How long to wait before trying again: a locked username (429), or every password check
    /// busy (503).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after_seconds: Option<u64>,
}

impl ErrorBody {
    pub fn of(e: &Error) -> ErrorBody {
        let code = e.code();
        let retry_after_seconds = e.retry_after_seconds();
        ErrorBody {
            errors: vec![ErrorItem {
                code: code.number,
                name: code.name,
                message: e.public_message(),
                details: ErrorDetails {
                    field: e.field().map(str::to_owned),
                    retry_after_seconds,
                },
            }],
        }
    }
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
        let mut response = (status, axum::Json(ErrorBody::of(&e))).into_response();
        let headers = response.headers_mut();
        if let Error::Unauthenticated(_) = &e {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = e.retry_after_seconds() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
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
