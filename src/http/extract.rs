//! Request extractors whose rejections are the documented error body: the caller's identity,
//! JSON bodies, and names in paths.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;
use crate::error::Error;
use crate::model::Principal;

/// The bearer token of the `Authorization` header.
pub fn bearer(parts: &Parts) -> Result<&str, Error> {
    bearer_of(&parts.headers)
}

/// The bearer token of the `Authorization` header of these headers.
pub fn bearer_of(headers: &HeaderMap) -> Result<&str, Error> {
    let header = headers.get(AUTHORIZATION).ok_or_else(|| {
        Error::Unauthenticated("missing Authorization: Bearer <access_token>".into())
    })?;
    let value = header
        .to_str()
        .map_err(|_| Error::Unauthenticated("malformed Authorization header".into()))?;
    bearer_value(value)
}

/// The token of an `Authorization` value, `Bearer <access_token>`.
pub fn bearer_value(value: &str) -> Result<&str, Error> {
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Error::Unauthenticated("malformed Authorization header".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::Unauthenticated(
            "the Authorization header must be 'Bearer <access_token>'".into(),
        ));
    }
    Ok(token.trim())
}

/// The authenticated caller. Every protected handler takes it, so a request without a valid
/// access token never reaches a handler.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        Ok(Caller(state.service.authenticate(token)?))
    }
}

/// A JSON body parsed strictly: bad JSON, wrong types and unknown fields are 400 with the
/// field named; an oversized body is 413. The Content-Type is not required, as older portals
/// do not always send it.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("the request body is too large".into())
            } else {
                Error::invalid_body(format!("the request body could not be read: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(JsonBody).map_err(ApiError)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid_body(
            "the request body is empty; a JSON object is expected",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let known = path != "." && !path.contains('?');
        let field = unknown_field(&message).or_else(|| known.then_some(path));
        match field {
            Some(field) => Error::invalid(field.clone(), format!("{field}: {message}")),
            None => Error::invalid_body(format!("the request body is not valid: {message}")),
        }
    })?;
    de.end()
        .map_err(|e| Error::invalid_body(format!("the request body is not valid: {e}")))?;
    Ok(value)
}

/// serde names an unknown field only in its message: "unknown field `x`, expected ...".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// A required field of a parsed body, refused naming the field when absent.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid(field, format!("{field} is required")))
}

/// One percent-decoded path segment (a platform name, a username).
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Segments(value) = Segments::from_request_parts(parts, state).await?;
        Ok(Segment(value))
    }
}

/// Several percent-decoded path segments, e.g. `(tenant_id, group_id)`.
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::invalid_body(format!("the path is not valid: {e}")))?;
        Ok(Segments(value))
    }
}

/// Query parameters parsed strictly: unknown parameters and wrong types are 400 with the
/// documented error body.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|rejection| {
                ApiError(Error::invalid_body(format!(
                    "the query string is not valid: {}",
                    rejection.body_text()
                )))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        port: Option<i64>,
        net_address: Option<String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"port": "x"}"#).unwrap_err();
        assert_eq!(e.field(), Some("port"));
        let e = parse_json::<Body>(br#"{"colour": 1}"#).unwrap_err();
        assert_eq!(e.field(), Some("colour"));
        let e = parse_json::<Body>(br#"{"port": 1"#).unwrap_err();
        assert_eq!(e.field(), None);
        let e = parse_json::<Body>(b"  ").unwrap_err();
        assert!(e.to_string().contains("empty"));
        let e = parse_json::<Body>(br#"{} {}"#).unwrap_err();
        assert_eq!(e.field(), None);
        assert!(parse_json::<Body>(br#"{"port": 5}"#).is_ok());
    }
}
