//! The HTTP surface: one router for REST and GraphQL (and the operational paths).

pub mod error;
pub mod extract;
pub mod graphql;
mod rest;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::service::Service;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
}

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted request body, in bytes (REST and GraphQL alike).
    pub body_limit: usize,
    /// Whether GraphQL answers introspection queries (`__schema`, `__type`).
    pub graphql_introspection: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            body_limit: 64 * 1024,
            graphql_introspection: true,
        }
    }
}

/// The whole application; tests serve the same router.
pub fn app(service: Arc<Service>, options: &HttpOptions) -> Router {
    rest::routes()
        .merge(graphql::routes(service.clone(), options))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(options.body_limit))
        .layer(middleware::from_fn(access_log))
        .with_state(AppState { service })
}

/// One line per request. Only the path is logged: credentials travel in headers and bodies.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        target: "access",
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
    );
    response
}
