//! `/api/v1/system/services/call_recording/platforms/...`, exactly as documented.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, JsonBody, Segment, required};
use crate::http::openapi::schemas;
use crate::http::state::AppState;
use crate::model::{
    GroupRef, MediaStream, NewPlatform, Platform, PlatformChange, SchemaVersion, TransportProtocol,
};
use crate::service::{PlatformEntry, PlatformList};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformListBody<'a> {
    /// The system default platform's name; null when there are no platforms.
    pub system_default: Option<&'a str>,
    #[schema(value_type = Vec<schemas::Platform>)]
    pub call_recording_platforms: &'a [Platform],
}

/// The rendered list, kept until the service hands out another one: portals poll the list
/// far more often than anyone changes it.
#[derive(Default)]
pub struct RenderedList(Mutex<Option<(Arc<PlatformList>, Bytes)>>);

impl RenderedList {
    fn render(&self, list: Arc<PlatformList>) -> Result<Bytes, Error> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((for_list, bytes)) = kept.as_ref()
            && Arc::ptr_eq(for_list, &list)
        {
            return Ok(bytes.clone());
        }
        let body = PlatformListBody {
            system_default: list.system_default.as_deref(),
            call_recording_platforms: &list.platforms,
        };
        let bytes =
            Bytes::from(serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?);
        *kept = Some((list, bytes.clone()));
        Ok(bytes)
    }

    fn response(&self, list: Arc<PlatformList>) -> Result<Response, ApiError> {
        let bytes = self.render(list)?;
        Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
    }
}

/// The documented single-platform shape: `default` first, no `name`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformBody {
    /// Whether this is the system default platform.
    pub default: bool,
    pub net_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub port: Option<u16>,
    #[schema(value_type = schemas::MediaStream)]
    pub media_stream: MediaStream,
    #[schema(value_type = schemas::TransportProtocol)]
    pub transport_protocol: TransportProtocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[schema(value_type = schemas::SchemaVersion)]
    pub schema_version: SchemaVersion,
    pub support_video_recording: bool,
}

impl From<PlatformEntry> for PlatformBody {
    fn from(e: PlatformEntry) -> Self {
        let p = e.platform;
        PlatformBody {
            default: e.is_default,
            net_address: p.net_address,
            port: p.port,
            media_stream: p.media_stream,
            transport_protocol: p.transport_protocol,
            description: p.description,
            schema_version: p.schema_version,
            support_video_recording: p.support_video_recording,
        }
    }
}

/// Fields are parsed as optional so that a missing one is reported by name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddPlatformBody {
    #[schema(required, nullable = false)]
    name: Option<String>,
    /// An IPv4 or IPv6 address, a host name or a domain.
    #[schema(required, nullable = false)]
    net_address: Option<String>,
    /// `0` means no port, as an empty field in APIO's portal sends it.
    #[schema(nullable = false)]
    port: Option<i64>,
    #[schema(value_type = Option<schemas::MediaStream>)]
    #[schema(required, nullable = false)]
    media_stream: Option<MediaStream>,
    #[schema(value_type = Option<schemas::TransportProtocol>)]
    #[schema(required, nullable = false)]
    transport_protocol: Option<TransportProtocol>,
    #[schema(nullable = false)]
    description: Option<String>,
    #[schema(value_type = Option<schemas::SchemaVersion>)]
    #[schema(required, nullable = false)]
    schema_version: Option<SchemaVersion>,
    #[schema(required, nullable = false)]
    support_video_recording: Option<bool>,
}

impl TryFrom<AddPlatformBody> for NewPlatform {
    type Error = Error;
    fn try_from(b: AddPlatformBody) -> Result<Self, Error> {
        Ok(NewPlatform {
            name: required(b.name, "name")?,
            net_address: required(b.net_address, "netAddress")?,
            port: b.port.filter(|p| *p != 0),
            media_stream: required(b.media_stream, "mediaStream")?,
            transport_protocol: required(b.transport_protocol, "transportProtocol")?,
            description: b.description,
            schema_version: required(b.schema_version, "schemaVersion")?,
            support_video_recording: required(b.support_video_recording, "supportVideoRecording")?,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModifyPlatformBody {
    /// `true` makes this platform the system default; `false` is refused on the default.
    default: Option<bool>,
    net_address: Option<String>,
    /// `0` removes the port.
    port: Option<i64>,
    #[schema(value_type = Option<schemas::MediaStream>)]
    media_stream: Option<MediaStream>,
    #[schema(value_type = Option<schemas::TransportProtocol>)]
    transport_protocol: Option<TransportProtocol>,
    /// `""` removes the description.
    description: Option<String>,
    #[schema(value_type = Option<schemas::SchemaVersion>)]
    schema_version: Option<SchemaVersion>,
    support_video_recording: Option<bool>,
}

impl From<ModifyPlatformBody> for PlatformChange {
    fn from(b: ModifyPlatformBody) -> Self {
        PlatformChange {
            make_default: b.default,
            net_address: b.net_address,
            port: b.port.map(|p| (p != 0).then_some(p)),
            media_stream: b.media_stream,
            transport_protocol: b.transport_protocol,
            description: b.description.map(|d| (!d.is_empty()).then_some(d)),
            schema_version: b.schema_version,
            support_video_recording: b.support_video_recording,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageEntry {
    group_id: String,
    tenant_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct UsageBody {
    groups: Vec<UsageEntry>,
}

impl From<Vec<GroupRef>> for UsageBody {
    fn from(groups: Vec<GroupRef>) -> Self {
        UsageBody {
            groups: groups
                .into_iter()
                .map(|g| UsageEntry {
                    group_id: g.group_id,
                    tenant_id: g.tenant_id,
                })
                .collect(),
        }
    }
}

/// The system's call recording platforms (Group Admin or above).
#[utoipa::path(operation_id = "listPlatforms", get, path = "/api/v1/system/services/call_recording/platforms/", tag = "platforms",
    security(("bearer" = [])),
    responses((status = 200, body = PlatformListBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, Caller(who): Caller) -> Result<Response, ApiError> {
    s.rendered_list.response(s.service.platforms(&who)?)
}

/// Adds a platform; the first one becomes the system default. Answers like the list.
#[utoipa::path(operation_id = "addPlatform", post, path = "/api/v1/system/services/call_recording/platforms/", tag = "platforms",
    security(("bearer" = [])), request_body = AddPlatformBody,
    responses((status = 200, body = PlatformListBody), (status = 400, description = "invalid data; 11 ALREADY_EXISTS", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<AddPlatformBody>,
) -> Result<Response, ApiError> {
    s.service.add_platform(&who, body.try_into()?).await?;
    s.rendered_list.response(s.service.platforms(&who)?)
}

/// One platform.
#[utoipa::path(operation_id = "getPlatform", get, path = "/api/v1/system/services/call_recording/platforms/{name}/", tag = "platforms",
    security(("bearer" = [])), params(("name" = String, Path, description = "The platform name, percent-encoded")),
    responses((status = 200, body = PlatformBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "instance not found", body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<PlatformBody>, ApiError> {
    let entry = s
        .service
        .platform(&who, &name)?
        .ok_or_else(|| Error::platform_not_found(&name))?;
    Ok(Json(entry.into()))
}

/// Modifies a platform; `default: true` moves the system default here.
#[utoipa::path(operation_id = "modifyPlatform", put, path = "/api/v1/system/services/call_recording/platforms/{name}/", tag = "platforms",
    security(("bearer" = [])), params(("name" = String, Path, description = "The platform name, percent-encoded")), request_body = ModifyPlatformBody,
    responses((status = 200, body = PlatformBody), (status = 400, description = "invalid data; 18 INVALID_OPERATION", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn modify(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
    JsonBody(body): JsonBody<ModifyPlatformBody>,
) -> Result<Json<PlatformBody>, ApiError> {
    Ok(Json(
        s.service
            .modify_platform(&who, &name, body.into())
            .await?
            .into(),
    ))
}

/// Deletes a platform.
#[utoipa::path(operation_id = "deletePlatform", delete, path = "/api/v1/system/services/call_recording/platforms/{name}/", tag = "platforms",
    security(("bearer" = [])), params(("name" = String, Path, description = "The platform name, percent-encoded")),
    responses((status = 200, description = "deleted: `{}`", body = Object),
        (status = 400, description = "18 INVALID_OPERATION, 21 NOT_DELETED", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_platform(&who, &name).await?;
    Ok(Json(json!({})))
}

/// The groups using a platform.
#[utoipa::path(operation_id = "getPlatformUsage", get, path = "/api/v1/system/services/call_recording/platforms/{name}/usage/", tag = "platforms",
    security(("bearer" = [])), params(("name" = String, Path, description = "The platform name, percent-encoded")),
    responses((status = 200, body = UsageBody), (status = 400, description = "18 INVALID_OPERATION", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn usage(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<UsageBody>, ApiError> {
    Ok(Json(s.service.usage(&who, &name)?.into()))
}
