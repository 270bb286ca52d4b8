//! `/api/v1/local/users/`: local users, for System Admins. Passwords never leave the server.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, JsonBody, Segment};
use crate::http::state::AppState;
use crate::model::{Level, NewUser, User};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddUserBody {
    username: String,
    password: String,
    /// 16 System Admin, 12 Tenant Admin, 8 Group Admin, 0 End User.
    #[schema(example = 12)]
    user_level: i64,
    tenant_id: Option<String>,
    group_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
pub struct UserListBody {
    users: Vec<UserBody>,
}

/// Adds a local user (System Admin).
#[utoipa::path(operation_id = "addUser", post, path = "/api/v1/local/users/", tag = "users", security(("bearer" = [])),
    request_body = AddUserBody,
    responses((status = 200, body = UserBody), (status = 400, description = "invalid data; 11 ALREADY_EXISTS", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, description = "every password check is busy; `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<AddUserBody>,
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

/// The local users, without their passwords (System Admin).
#[utoipa::path(operation_id = "listUsers", get, path = "/api/v1/local/users/", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserListBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<UserListBody>, ApiError> {
    let users = s
        .service
        .users(&who)?
        .into_iter()
        .map(UserBody::from)
        .collect();
    Ok(Json(UserListBody { users }))
}

/// Deletes a local user and ends its sessions (System Admin).
#[utoipa::path(operation_id = "deleteUser", delete, path = "/api/v1/local/users/{username}/", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path, description = "The username, percent-encoded")),
    responses((status = 200, description = "`{}`", body = Object),
        (status = 400, description = "18 INVALID_OPERATION: the last System Admin", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(username): Segment,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_user(&who, &username).await?;
    Ok(Json(json!({})))
}
