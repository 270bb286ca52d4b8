//! Login, access token refresh and logout, shaped like APIO's core.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, JsonBody, bearer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct Ids {
    tenant_id: Option<String>,
    group_id: Option<String>,
    user_id: String,
}

#[derive(Serialize)]
pub struct Profile {
    user_level: u8,
}

#[derive(Serialize)]
pub struct LoginAnswerBody {
    access_token: String,
    refresh_token: String,
    ids: Ids,
    profile: Profile,
}

pub async fn login(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<LoginAnswerBody>, ApiError> {
    let answer = s.service.login(&body.username, &body.password).await?;
    let p = answer.principal;
    Ok(Json(LoginAnswerBody {
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
        ids: Ids {
            tenant_id: p.tenant_id,
            group_id: p.group_id,
            user_id: p.username,
        },
        profile: Profile {
            user_level: p.level.number(),
        },
    }))
}

/// `Authorization: Bearer <refresh_token>` → a new access token.
pub async fn access_token(
    State(s): State<AppState>,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    let refresh_token = bearer(&parts)?;
    Ok(Json(
        json!({"access_token": s.service.refresh(refresh_token)?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    refresh_token: String,
}

pub async fn logout(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<LogoutBody>,
) -> Result<Json<Value>, ApiError> {
    s.service.logout(&who, &body.refresh_token).await?;
    Ok(Json(json!({})))
}
