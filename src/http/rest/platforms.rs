//! `/api/v1/system/services/call_recording/platforms/...`, exactly as documented.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, JsonBody, Segment, required};
use crate::model::{
    GroupRef, MediaStream, NewPlatform, Platform, PlatformChange, SchemaVersion, TransportProtocol,
};
use crate::service::{PlatformEntry, PlatformList};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    pub system_default: Option<String>,
    pub call_recording_platforms: Vec<Platform>,
}

impl From<PlatformList> for ListBody {
    fn from(list: PlatformList) -> Self {
        ListBody {
            system_default: list.system_default,
            call_recording_platforms: list.platforms,
        }
    }
}

/// The documented single-platform shape: `default` first, no `name`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OneBody {
    pub default: bool,
    pub net_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub media_stream: MediaStream,
    pub transport_protocol: TransportProtocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub schema_version: SchemaVersion,
    pub support_video_recording: bool,
}

impl From<PlatformEntry> for OneBody {
    fn from(e: PlatformEntry) -> Self {
        let p = e.platform;
        OneBody {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddBody {
    name: Option<String>,
    net_address: Option<String>,
    port: Option<i64>,
    media_stream: Option<MediaStream>,
    transport_protocol: Option<TransportProtocol>,
    description: Option<String>,
    schema_version: Option<SchemaVersion>,
    support_video_recording: Option<bool>,
}

impl TryFrom<AddBody> for NewPlatform {
    type Error = Error;
    fn try_from(b: AddBody) -> Result<Self, Error> {
        Ok(NewPlatform {
            name: required(b.name, "name")?,
            net_address: required(b.net_address, "netAddress")?,
            port: b.port,
            media_stream: required(b.media_stream, "mediaStream")?,
            transport_protocol: required(b.transport_protocol, "transportProtocol")?,
            description: b.description,
            schema_version: required(b.schema_version, "schemaVersion")?,
            support_video_recording: required(b.support_video_recording, "supportVideoRecording")?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModifyBody {
    default: Option<bool>,
    net_address: Option<String>,
    /// `0` removes the port.
    port: Option<i64>,
    media_stream: Option<MediaStream>,
    transport_protocol: Option<TransportProtocol>,
    /// `""` removes the description.
    description: Option<String>,
    schema_version: Option<SchemaVersion>,
    support_video_recording: Option<bool>,
}

impl From<ModifyBody> for PlatformChange {
    fn from(b: ModifyBody) -> Self {
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEntry {
    group_id: String,
    tenant_id: String,
}

#[derive(Serialize)]
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

pub async fn list(
    State(s): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<ListBody>, ApiError> {
    Ok(Json(s.service.platforms(&who)?.into()))
}

pub async fn add(
    State(s): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<AddBody>,
) -> Result<Json<ListBody>, ApiError> {
    s.service.add_platform(&who, body.try_into()?).await?;
    Ok(Json(s.service.platforms(&who)?.into()))
}

pub async fn get(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<OneBody>, ApiError> {
    let entry = s.service.platform(&who, &name)?.ok_or_else(|| {
        Error::NotFound(format!("Call Recording platform '{name}' does not exist."))
    })?;
    Ok(Json(entry.into()))
}

pub async fn modify(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
    JsonBody(body): JsonBody<ModifyBody>,
) -> Result<Json<OneBody>, ApiError> {
    Ok(Json(
        s.service
            .modify_platform(&who, &name, body.into())
            .await?
            .into(),
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<Value>, ApiError> {
    s.service.delete_platform(&who, &name).await?;
    Ok(Json(json!({})))
}

pub async fn usage(
    State(s): State<AppState>,
    Caller(who): Caller,
    Segment(name): Segment,
) -> Result<Json<UsageBody>, ApiError> {
    Ok(Json(s.service.usage(&who, &name)?.into()))
}
