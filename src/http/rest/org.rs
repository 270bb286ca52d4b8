//! `/api/v1/tenants/...`: tenants, their groups, and a group's call recording platform.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, JsonBody, Segment, Segments, required};
use crate::http::state::AppState;
use crate::model::org::{group_missing, tenant_missing};
use crate::model::{Group, Tenant};

/// `{tenant_id}` and `{group_id}`.
type GroupPath = Segments<(String, String)>;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantBody {
    tenant_id: String,
}

impl From<Tenant> for TenantBody {
    fn from(t: Tenant) -> Self {
        TenantBody {
            tenant_id: t.tenant_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    tenants: Vec<TenantBody>,
}

impl From<Vec<Tenant>> for TenantList {
    fn from(tenants: Vec<Tenant>) -> Self {
        TenantList {
            tenants: tenants.into_iter().map(TenantBody::from).collect(),
        }
    }
}

/// The same entry as in a platform's usage list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupBody {
    group_id: String,
    tenant_id: String,
}

impl From<Group> for GroupBody {
    fn from(g: Group) -> Self {
        GroupBody {
            group_id: g.group_id,
            tenant_id: g.tenant_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupList {
    groups: Vec<GroupBody>,
}

impl From<Vec<Group>> for GroupList {
    fn from(groups: Vec<Group>) -> Self {
        GroupList {
            groups: groups.into_iter().map(GroupBody::from).collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddTenantBody {
    #[schema(required, nullable = false)]
    tenant_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddGroupBody {
    #[schema(required, nullable = false)]
    group_id: Option<String>,
}

/// `{"name": "<platform>"}` assigns, `{"name": null}` clears; `name` must be present.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required)]
    name: Option<Option<String>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A group's assignment; `null` when it has none.
#[derive(Serialize, ToSchema)]
pub struct AssignmentBody {
    name: Option<String>,
}

/// The tenants (System Admin).
#[utoipa::path(operation_id = "listTenants", get, path = "/api/v1/tenants/", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = TenantList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_tenants(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<TenantList>, ApiError> {
    Ok(Json(s.service.tenants(&who)?.into()))
}

/// Adds a tenant (System Admin); answers the tenant list.
#[utoipa::path(operation_id = "addTenant", post, path = "/api/v1/tenants/", tag = "tenants", security(("bearer" = [])),
    request_body = AddTenantBody,
    responses((status = 200, body = TenantList), (status = 400, description = "invalid data; 11 ALREADY_EXISTS", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn add_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<AddTenantBody>,
) -> Result<Json<TenantList>, ApiError> {
    let tenant_id = required(body.tenant_id, "tenantId")?;
    s.service.add_tenant(&who, &tenant_id).await?;
    Ok(Json(s.service.tenants(&who)?.into()))
}

/// One tenant.
#[utoipa::path(operation_id = "getTenant", get, path = "/api/v1/tenants/{tenant_id}/", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded")),
    responses((status = 200, body = TenantBody), (status = 400, description = "invalid tenant or group id", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(tenant_id): Segment,
) -> Result<Json<TenantBody>, ApiError> {
    let tenant = s
        .service
        .tenant(&who, &tenant_id)?
        .ok_or_else(|| Error::NotFound(tenant_missing(&tenant_id)))?;
    Ok(Json(tenant.into()))
}

/// Deletes a tenant without groups or users (System Admin).
#[utoipa::path(operation_id = "deleteTenant", delete, path = "/api/v1/tenants/{tenant_id}/", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded")),
    responses((status = 200, description = "`{}`", body = Object), (status = 400, description = "18 INVALID_OPERATION, 21 NOT_DELETED", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(tenant_id): Segment,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_tenant(&who, &tenant_id).await?;
    Ok(Json(json!({})))
}

/// The groups of a tenant.
#[utoipa::path(operation_id = "listGroups", get, path = "/api/v1/tenants/{tenant_id}/groups/", tag = "groups", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded")),
    responses((status = 200, body = GroupList), (status = 400, description = "invalid tenant or group id", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_groups(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(tenant_id): Segment,
) -> Result<Json<GroupList>, ApiError> {
    Ok(Json(s.service.groups(&who, &tenant_id)?.into()))
}

/// Adds a group to a tenant (System Admin, or that tenant's admin); answers the group list.
#[utoipa::path(operation_id = "addGroup", post, path = "/api/v1/tenants/{tenant_id}/groups/", tag = "groups", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded")), request_body = AddGroupBody,
    responses((status = 200, body = GroupList), (status = 400, description = "invalid data; 11 ALREADY_EXISTS; 18 INVALID_OPERATION", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn add_group(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(tenant_id): Segment,
    JsonBody(body): JsonBody<AddGroupBody>,
) -> Result<Json<GroupList>, ApiError> {
    let group_id = required(body.group_id, "groupId")?;
    s.service.add_group(&who, &tenant_id, &group_id).await?;
    Ok(Json(s.service.groups(&who, &tenant_id)?.into()))
}

/// One group.
#[utoipa::path(operation_id = "getGroup", get, path = "/api/v1/tenants/{tenant_id}/groups/{group_id}/", tag = "groups", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded"), ("group_id" = String, Path, description = "The group id, percent-encoded")),
    responses((status = 200, body = GroupBody), (status = 400, description = "invalid tenant or group id", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_group(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
) -> Result<Json<GroupBody>, ApiError> {
    let group = s
        .service
        .group(&who, &tenant_id, &group_id)?
        .ok_or_else(|| Error::NotFound(group_missing(&tenant_id, &group_id)))?;
    Ok(Json(group.into()))
}

/// Deletes a group without users; its assignment goes with it.
#[utoipa::path(operation_id = "deleteGroup", delete, path = "/api/v1/tenants/{tenant_id}/groups/{group_id}/", tag = "groups", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded"), ("group_id" = String, Path, description = "The group id, percent-encoded")),
    responses((status = 200, description = "`{}`", body = Object), (status = 400, description = "18 INVALID_OPERATION, 21 NOT_DELETED", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete_group(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_group(&who, &tenant_id, &group_id).await?;
    Ok(Json(json!({})))
}

/// The group's call recording platform (`null` when none).
#[utoipa::path(operation_id = "getGroupPlatform", get, path = "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/call_recording/", tag = "groups", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded"), ("group_id" = String, Path, description = "The group id, percent-encoded")),
    responses((status = 200, body = AssignmentBody), (status = 400, description = "invalid tenant or group id", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_platform(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
) -> Result<Json<AssignmentBody>, ApiError> {
    let name = s.service.group_platform(&who, &tenant_id, &group_id)?;
    Ok(Json(AssignmentBody { name }))
}

/// Assigns a call recording platform to the group (`{"name": null}` clears it).
#[utoipa::path(operation_id = "setGroupPlatform", put, path = "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/call_recording/", tag = "groups", security(("bearer" = [])),
    params(("tenant_id" = String, Path, description = "The tenant id, percent-encoded"), ("group_id" = String, Path, description = "The group id, percent-encoded")), request_body = AssignBody,
    responses((status = 200, body = AssignmentBody), (status = 400, description = "invalid data; 18 INVALID_OPERATION", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn set_platform(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Json<AssignmentBody>, ApiError> {
    let platform = body.name.ok_or_else(Error::assignment_name_required)?;
    let name = s
        .service
        .set_group_platform(&who, &tenant_id, &group_id, platform)
        .await?;
    Ok(Json(AssignmentBody { name }))
}
