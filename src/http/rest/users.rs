//! `/api/v1/local/users/`: local users, for System Admins. Passwords never leave the server.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, JsonBody, Segment};
use crate::model::{Level, NewUser, User};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddBody {
    username: String,
    password: String,
    user_level: i64,
    tenant_id: Option<String>,
    group_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    username: String,
    user_level: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<String>,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        UserBody {
            username: u.username,
            user_level: u.level.number(),
            tenant_id: u.tenant_id,
            group_id: u.group_id,
        }
    }
}

#[derive(Serialize)]
pub struct ListBody {
    users: Vec<UserBody>,
}

pub async fn add(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<AddBody>,
) -> Result<Json<UserBody>, ApiError> {
    let new = NewUser {
        level: Level::from_number("userLevel", body.user_level)?,
        username: body.username,
        password: body.password,
        tenant_id: body.tenant_id,
        group_id: body.group_id,
    };
    Ok(Json(s.service.add_user(&who, new).await?.into()))
}

pub async fn list(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<ListBody>, ApiError> {
    let users = s
        .service
        .users(&who)?
        .into_iter()
        .map(UserBody::from)
        .collect();
    Ok(Json(ListBody { users }))
}

pub async fn delete(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(username): Segment,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_user(&who, &username).await?;
    Ok(Json(json!({})))
}
