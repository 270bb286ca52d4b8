//! `/api/v1/tenants/...`: tenants, their groups, and a group's call recording platform.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, JsonBody, Segment, Segments, required};
use crate::model::org::{group_missing, tenant_missing};
use crate::model::{Group, Tenant};

/// `{tenant_id}` and `{group_id}`.
type GroupPath = Segments<(String, String)>;

#[derive(Serialize)]
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

#[derive(Serialize)]
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
#[derive(Serialize)]
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

#[derive(Serialize)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddTenantBody {
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddGroupBody {
    group_id: Option<String>,
}

/// `{"name": "<platform>"}` assigns, `{"name": null}` clears; `name` must be present.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A group's assignment; `null` when it has none.
#[derive(Serialize)]
pub struct AssignmentBody {
    name: Option<String>,
}

pub async fn list_tenants(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<TenantList>, ApiError> {
    Ok(Json(s.service.tenants(&who)?.into()))
}

pub async fn add_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<AddTenantBody>,
) -> Result<Json<TenantList>, ApiError> {
    let tenant_id = required(body.tenant_id, "tenantId")?;
    s.service.add_tenant(&who, &tenant_id).await?;
    Ok(Json(s.service.tenants(&who)?.into()))
}

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

pub async fn delete_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(tenant_id): Segment,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_tenant(&who, &tenant_id).await?;
    Ok(Json(json!({})))
}

pub async fn list_groups(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(tenant_id): Segment,
) -> Result<Json<GroupList>, ApiError> {
    Ok(Json(s.service.groups(&who, &tenant_id)?.into()))
}

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

pub async fn delete_group(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_group(&who, &tenant_id, &group_id).await?;
    Ok(Json(json!({})))
}

pub async fn get_platform(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
) -> Result<Json<AssignmentBody>, ApiError> {
    let name = s.service.group_platform(&who, &tenant_id, &group_id)?;
    Ok(Json(AssignmentBody { name }))
}

pub async fn set_platform(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segments((tenant_id, group_id)): GroupPath,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Json<AssignmentBody>, ApiError> {
    let platform = body.name.ok_or_else(|| {
        Error::invalid(
            "name",
            "name is required: a platform name, or null to clear the assignment",
        )
    })?;
    let name = s
        .service
        .set_group_platform(&who, &tenant_id, &group_id, platform)
        .await?;
    Ok(Json(AssignmentBody { name }))
}
