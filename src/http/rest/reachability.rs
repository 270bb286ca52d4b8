//! `/api/v1/system/services/call_recording/platforms/{name}/reachability/`: what this gateway
//! saw when it last probed the platform (see `crate::probe`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, Segment};
use crate::model::reachability::{millis, rfc3339};
use crate::model::{Reachability, ReachabilityState};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReachabilityStateBody {
    Up,
    Down,
    Unknown,
    NotProbed,
}

impl From<ReachabilityState> for ReachabilityStateBody {
    fn from(s: ReachabilityState) -> Self {
        match s {
            ReachabilityState::Up => ReachabilityStateBody::Up,
            ReachabilityState::Down => ReachabilityStateBody::Down,
            ReachabilityState::Unknown => ReachabilityStateBody::Unknown,
            ReachabilityState::NotProbed => ReachabilityStateBody::NotProbed,
        }
    }
}

/// As GraphQL's `PlatformReachability`; unset fields are left out.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReachabilityBody {
    /// `NOT_PROBED` when this gateway does not probe.
    state: ReachabilityStateBody,
    /// When the current state began (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    since: Option<String>,
    /// When the last probe ended (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    last_checked_at: Option<String>,
    /// The round trip of the last answered probe, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    last_latency_ms: Option<f64>,
    consecutive_failures: u32,
    /// Why the last probe failed (`timeout`, `connection refused`, `503 Service Unavailable`,
    /// ...); absent after an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    last_error: Option<String>,
}

impl From<Reachability> for ReachabilityBody {
    fn from(r: Reachability) -> Self {
        ReachabilityBody {
            state: r.state.into(),
            since: r.since.map(rfc3339),
            last_checked_at: r.last_checked_at.map(rfc3339),
            last_latency_ms: r.last_latency.map(millis),
            consecutive_failures: r.consecutive_failures,
            last_error: r.last_error,
        }
    }
}

/// Whether the platform answers SIP OPTIONS, as this gateway sees it (System Admin). Each
/// gateway probes for itself.
#[utoipa::path(operation_id = "getPlatformReachability", get, path = "/api/v1/system/services/call_recording/platforms/{name}/reachability/", tag = "platforms",
    security(("bearer" = [])), params(("name" = String, Path, description = "The platform name, percent-encoded")),
    responses((status = 200, body = ReachabilityBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "instance not found", body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<ReachabilityBody>, ApiError> {
    let reachability = s
        .service
        .reachability(&who, &name)?
        .ok_or_else(|| Error::platform_not_found(&name))?;
    Ok(Json(reachability.into()))
}
