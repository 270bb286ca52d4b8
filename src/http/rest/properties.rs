//! `/api/v1/system/services/call_recording/properties/`, exactly as documented.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, JsonBody};
use crate::model::{Properties, PropertiesChange};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModifyBody {
    continue_call_after_recording_failure: Option<bool>,
    refresh_period_seconds: Option<i64>,
    max_consecutive_failures: Option<i64>,
    max_response_wait_time_milliseconds: Option<i64>,
    continue_call_after_video_recording_failure: Option<bool>,
}

impl From<ModifyBody> for PropertiesChange {
    fn from(b: ModifyBody) -> Self {
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

pub async fn get(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Properties>, ApiError> {
    Ok(Json(s.service.properties(&who)?))
}

pub async fn modify(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<ModifyBody>,
) -> Result<Json<Properties>, ApiError> {
    Ok(Json(s.service.modify_properties(&who, body.into()).await?))
}
