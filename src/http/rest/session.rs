//! Login, access token refresh and logout, shaped like APIO's core.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, JsonBody, bearer};
use crate::http::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginIds {
    tenant_id: Option<String>,
    group_id: Option<String>,
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginProfile {
    user_level: u8,
}

#[derive(Serialize, ToSchema)]
pub struct LoginAnswerBody {
    access_token: String,
    refresh_token: String,
    ids: LoginIds,
    profile: LoginProfile,
}

/// Logs in with a username and password.
#[utoipa::path(operation_id = "login", post, path = "/api/v1/login/", tag = "session", request_body = LoginBody,
    responses((status = 200, body = LoginAnswerBody), (status = 400, body = ErrorBody),
        (status = 401, description = "bad credentials", body = ErrorBody),
        (status = 429, description = "too many failed logins for this username", body = ErrorBody),
        (status = 503, description = "every password check is busy; `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<LoginAnswerBody>, ApiError> {
    let answer = s.service.login(&body.username, &body.password).await?;
    let p = answer.principal;
    Ok(Json(LoginAnswerBody {
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
        ids: LoginIds {
            tenant_id: p.tenant_id,
            group_id: p.group_id,
            user_id: p.username,
        },
        profile: LoginProfile {
            user_level: p.level.number(),
        },
    }))
}

/// `Authorization: Bearer <refresh_token>` → a new access token and the refresh token to use
/// next. The one presented stays valid for a short grace, then ends the session if used again.
#[utoipa::path(operation_id = "refreshAccessToken", get, path = "/api/v1/auth/access_token/", tag = "session",
    security(("bearer" = [])),
    responses((status = 200, body = AccessTokenBody),
        (status = 401, body = ErrorBody)))]
pub async fn access_token(
    State(s): State<AppState>,
    parts: Parts,
) -> Result<Json<AccessTokenBody>, ApiError> {
    let answer = s.service.refresh(bearer(&parts)?).await?;
    Ok(Json(AccessTokenBody {
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AccessTokenBody {
    access_token: String,
    /// The refresh token to use next time.
    refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    refresh_token: String,
}

/// Ends the login session of a refresh token, and every access token issued in it.
#[utoipa::path(operation_id = "logout", post, path = "/api/v1/logout/", tag = "session", security(("bearer" = [])),
    request_body = LogoutBody,
    responses((status = 200, description = "`{}`", body = Object), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "another user's refresh token", body = ErrorBody)))]
pub async fn logout(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<LogoutBody>,
) -> Result<Json<Value>, ApiError> {
    s.service.logout(&who, &body.refresh_token).await?;
    Ok(Json(json!({})))
}
