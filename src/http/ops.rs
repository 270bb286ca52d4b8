//! What operators' tooling probes: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::bearer;
use super::state::AppState;
use crate::error::Error;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is alive.
#[utoipa::path(operation_id = "healthz", get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The store is open and takes writes.
#[utoipa::path(operation_id = "readyz", get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    match s.service.check_writable().await {
        Ok(()) => Json(Health { status: "ready" }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                }),
            )
                .into_response()
        }
    }
}

/// Prometheus text format. With a metrics token configured, it must be presented as a bearer
/// token.
#[utoipa::path(operation_id = "metrics", get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, body = super::error::ErrorBody)))]
pub async fn metrics(State(s): State<AppState>, parts: axum::http::request::Parts) -> Response {
    if let Some(expected) = &s.metrics_token {
        let given = bearer(&parts).ok();
        if given != Some(&**expected) {
            return ApiError(Error::Unauthenticated(
                "the metrics token is missing or wrong".into(),
            ))
            .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::metrics::render() + &super::metrics::platform_up(s.service.platforms_up_or_down()),
    )
        .into_response()
}
