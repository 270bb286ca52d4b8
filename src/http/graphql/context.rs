//! Who is asking. Each request (or WebSocket connection) carries its [`Credentials`]; resolvers
//! turn them into a [`Principal`] through the service on every use, so a session that ended
//! (logout, deleted user, new password) stops working at once, even on a long-lived connection.

use std::sync::Arc;

use async_graphql::Context;
use axum::http::HeaderMap;

use super::error::GqlResult;
use crate::error::Error;
use crate::http::extract::{bearer_of, bearer_value};
use crate::model::Principal;
use crate::service::Service;

/// The bearer token a request came with, or why there is none.
#[derive(Debug, Clone)]
pub enum Credentials {
    Missing,
    Malformed(Error),
    Token(String),
}

impl Credentials {
    /// From the `Authorization` header.
    pub fn from_headers(headers: &HeaderMap) -> Credentials {
        if !headers.contains_key(axum::http::header::AUTHORIZATION) {
            return Credentials::Missing;
        }
        match bearer_of(headers) {
            Ok(token) => Credentials::Token(token.to_owned()),
            Err(e) => Credentials::Malformed(e),
        }
    }

    /// From a WebSocket `connection_init` payload, `{"Authorization": "Bearer ..."}` (or
    /// `authorization`); `None` when the payload names no token.
    pub fn from_init_payload(payload: &serde_json::Value) -> Option<Credentials> {
        let value = payload
            .get("Authorization")
            .or_else(|| payload.get("authorization"))?;
        Some(match value.as_str() {
            Some(v) => match bearer_value(v) {
                Ok(token) => Credentials::Token(token.to_owned()),
                Err(e) => Credentials::Malformed(e),
            },
            None => Credentials::Malformed(Error::Unauthenticated(
                "Authorization must be a string, 'Bearer <access_token>'".into(),
            )),
        })
    }

    /// The principal behind these credentials, checked now.
    pub fn principal(&self, service: &Service) -> Result<Principal, Error> {
        match self {
            Credentials::Missing => Err(Error::Unauthenticated(
                "missing Authorization: Bearer <access_token>".into(),
            )),
            Credentials::Malformed(e) => Err(e.clone()),
            Credentials::Token(token) => service.authenticate(token),
        }
    }
}

/// The service, from the schema's data.
pub fn service<'a>(ctx: &Context<'a>) -> GqlResult<&'a Arc<Service>> {
    ctx.data::<Arc<Service>>()
        .map_err(|_| Error::Internal("the schema was built without a service".into()).into())
}

/// The request's credentials (none when the transport gave none).
pub fn credentials(ctx: &Context<'_>) -> Credentials {
    ctx.data_opt::<Credentials>()
        .cloned()
        .unwrap_or(Credentials::Missing)
}

/// The service and the authenticated caller, or UNAUTHENTICATED.
pub fn caller<'a>(ctx: &Context<'a>) -> GqlResult<(&'a Arc<Service>, Principal)> {
    let service = service(ctx)?;
    let who = credentials(ctx).principal(service)?;
    Ok((service, who))
}
