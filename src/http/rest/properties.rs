//! `/api/v1/system/services/call_recording/properties/`, exactly as documented.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, JsonBody};
use crate::http::openapi::schemas;
use crate::http::state::AppState;
use crate::model::{Properties, PropertiesChange};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModifyPropertiesBody {
    continue_call_after_recording_failure: Option<bool>,
    /// Deprecated, still served.
    refresh_period_seconds: Option<i64>,
    /// Deprecated, still served.
    max_consecutive_failures: Option<i64>,
    max_response_wait_time_milliseconds: Option<i64>,
    continue_call_after_video_recording_failure: Option<bool>,
}

impl From<ModifyPropertiesBody> for PropertiesChange {
    fn from(b: ModifyPropertiesBody) -> Self {
        PropertiesChange {
            continue_call_after_recording_failure: b.continue_call_after_recording_failure,
            refresh_period_seconds: b.refresh_period_seconds,
            max_consecutive_failures: b.max_consecutive_failures,
            max_response_wait_time_milliseconds: b.max_response_wait_time_milliseconds,
            continue_call_after_video_recording_failure: b
                .continue_call_after_video_recording_failure,
        }
    }
}

/// The system's call recording properties.
#[utoipa::path(operation_id = "getProperties", get, path = "/api/v1/system/services/call_recording/properties/", tag = "properties",
    security(("bearer" = [])),
    responses((status = 200, body = schemas::Properties), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Properties>, ApiError> {
    Ok(Json(s.service.properties(&who)?))
}

/// Modifies the given properties.
#[utoipa::path(operation_id = "modifyProperties", put, path = "/api/v1/system/services/call_recording/properties/", tag = "properties",
    security(("bearer" = [])), request_body = ModifyPropertiesBody,
    responses((status = 200, body = schemas::Properties), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn modify(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<ModifyPropertiesBody>,
) -> Result<Json<Properties>, ApiError> {
    Ok(Json(s.service.modify_properties(&who, body.into()).await?))
}
