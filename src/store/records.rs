//! The stored form of each kind of object: serde types of the store's own, so that the REST
//! and GraphQL wire formats can change without touching what is on disk. Each record carries
//! the format version `v` it was written in; records written before versions existed read as 1
//! (their fields are the same).

use serde::{Deserialize, Serialize};

use super::Session;
use crate::error::{Error, Result};
use crate::model::{
    Group, GroupRef, Level, MediaStream, Platform, Properties, SchemaVersion, Tenant,
    TransportProtocol, User,
};

/// The version every record is written in now.
pub const RECORD_VERSION: u32 = 2;

fn first_version() -> u32 {
    1
}

/// The `v` of a record shown as plain JSON (the audit trail's before and after), which carries
/// no format version.
const UNVERSIONED: u32 = 0;

fn is_unversioned(v: &u32) -> bool {
    *v == UNVERSIONED
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformRecord {
    #[serde(default = "first_version", skip_serializing_if = "is_unversioned")]
    pub v: u32,
    pub name: String,
    pub net_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub media_stream: MediaStreamRecord,
    pub transport_protocol: TransportRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub schema_version: SchemaVersionRecord,
    pub support_video_recording: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaStreamRecord {
    Dual,
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransportRecord {
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "TCP")]
    Tcp,
    Unspecified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaVersionRecord {
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "2.0")]
    V2_0,
    #[serde(rename = "3.0")]
    V3_0,
}

impl PlatformRecord {
    /// The platform as the audit trail shows it: its fields without a format version.
    pub fn unversioned(p: &Platform) -> PlatformRecord {
        PlatformRecord {
            v: UNVERSIONED,
            ..p.into()
        }
    }
}

impl From<&Platform> for PlatformRecord {
    fn from(p: &Platform) -> Self {
        PlatformRecord {
            v: RECORD_VERSION,
            name: p.name.clone(),
            net_address: p.net_address.clone(),
            port: p.port,
            media_stream: match p.media_stream {
                MediaStream::Dual => MediaStreamRecord::Dual,
                MediaStream::Single => MediaStreamRecord::Single,
            },
            transport_protocol: match p.transport_protocol {
                TransportProtocol::Udp => TransportRecord::Udp,
                TransportProtocol::Tcp => TransportRecord::Tcp,
                TransportProtocol::Unspecified => TransportRecord::Unspecified,
            },
            description: p.description.clone(),
            schema_version: match p.schema_version {
                SchemaVersion::V1_0 => SchemaVersionRecord::V1_0,
                SchemaVersion::V2_0 => SchemaVersionRecord::V2_0,
                SchemaVersion::V3_0 => SchemaVersionRecord::V3_0,
            },
            support_video_recording: p.support_video_recording,
        }
    }
}

impl From<PlatformRecord> for Platform {
    fn from(r: PlatformRecord) -> Self {
        Platform {
            name: r.name,
            net_address: r.net_address,
            port: r.port,
            media_stream: match r.media_stream {
                MediaStreamRecord::Dual => MediaStream::Dual,
                MediaStreamRecord::Single => MediaStream::Single,
            },
            transport_protocol: match r.transport_protocol {
                TransportRecord::Udp => TransportProtocol::Udp,
                TransportRecord::Tcp => TransportProtocol::Tcp,
                TransportRecord::Unspecified => TransportProtocol::Unspecified,
            },
            description: r.description,
            schema_version: match r.schema_version {
                SchemaVersionRecord::V1_0 => SchemaVersion::V1_0,
                SchemaVersionRecord::V2_0 => SchemaVersion::V2_0,
                SchemaVersionRecord::V3_0 => SchemaVersion::V3_0,
            },
            support_video_recording: r.support_video_recording,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertiesRecord {
    #[serde(default = "first_version", skip_serializing_if = "is_unversioned")]
    pub v: u32,
    pub continue_call_after_recording_failure: bool,
    pub refresh_period_seconds: u32,
    pub max_consecutive_failures: u32,
    pub max_response_wait_time_milliseconds: u32,
    pub continue_call_after_video_recording_failure: bool,
}

impl PropertiesRecord {
    /// The properties as the audit trail shows them: their fields without a format version.
    pub fn unversioned(p: &Properties) -> PropertiesRecord {
        PropertiesRecord {
            v: UNVERSIONED,
            ..p.into()
        }
    }
}

impl From<&Properties> for PropertiesRecord {
    fn from(p: &Properties) -> Self {
        PropertiesRecord {
            v: RECORD_VERSION,
            continue_call_after_recording_failure: p.continue_call_after_recording_failure,
            refresh_period_seconds: p.refresh_period_seconds,
            max_consecutive_failures: p.max_consecutive_failures,
            max_response_wait_time_milliseconds: p.max_response_wait_time_milliseconds,
            continue_call_after_video_recording_failure: p
                .continue_call_after_video_recording_failure,
        }
    }
}

impl From<PropertiesRecord> for Properties {
    fn from(r: PropertiesRecord) -> Self {
        Properties {
            continue_call_after_recording_failure: r.continue_call_after_recording_failure,
            refresh_period_seconds: r.refresh_period_seconds,
            max_consecutive_failures: r.max_consecutive_failures,
            max_response_wait_time_milliseconds: r.max_response_wait_time_milliseconds,
            continue_call_after_video_recording_failure: r
                .continue_call_after_video_recording_failure,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    #[serde(default = "first_version")]
    pub v: u32,
    pub tenant_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    #[serde(default = "first_version")]
    pub v: u32,
    pub tenant_id: String,
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    #[serde(default = "first_version")]
    pub v: u32,
    pub username: String,
    pub password_hash: String,
    pub level: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct SessionRecord {
    #[serde(default = "first_version")]
    pub v: u32,
    pub id: String,
    pub username: String,
    pub expires_at: u64,
    #[serde(default)]
    pub created_at_ms: u64,
    #[serde(default)]
    pub refresh_id: String,
    #[serde(default)]
    pub previous_refresh_id: Option<String>,
    #[serde(default)]
    pub previous_until_ms: u64,
}

impl From<&Tenant> for TenantRecord {
    fn from(t: &Tenant) -> Self {
        TenantRecord {
            v: RECORD_VERSION,
            tenant_id: t.tenant_id.clone(),
        }
    }
}

impl From<TenantRecord> for Tenant {
    fn from(r: TenantRecord) -> Self {
        Tenant {
            tenant_id: r.tenant_id,
        }
    }
}

impl From<&Group> for GroupRecord {
    fn from(g: &Group) -> Self {
        GroupRecord {
            v: RECORD_VERSION,
            tenant_id: g.tenant_id.clone(),
            group_id: g.group_id.clone(),
            platform: g.platform.clone(),
        }
    }
}

impl From<GroupRecord> for Group {
    fn from(r: GroupRecord) -> Self {
        Group {
            tenant_id: r.tenant_id,
            group_id: r.group_id,
            platform: r.platform,
        }
    }
}

impl From<&User> for UserRecord {
    fn from(u: &User) -> Self {
        UserRecord {
            v: RECORD_VERSION,
            username: u.username.clone(),
            password_hash: u.password_hash.clone(),
            level: u.level.number(),
            tenant_id: u.tenant_id.clone(),
            group_id: u.group_id.clone(),
        }
    }
}

impl TryFrom<UserRecord> for User {
    type Error = Error;
    fn try_from(r: UserRecord) -> Result<Self> {
        Ok(User {
            level: Level::try_from(r.level)
                .map_err(|e| Error::Internal(format!("stored user is unreadable: {e}")))?,
            username: r.username,
            password_hash: r.password_hash,
            tenant_id: r.tenant_id,
            group_id: r.group_id,
        })
    }
}

impl From<&Session> for SessionRecord {
    fn from(s: &Session) -> Self {
        SessionRecord {
            v: RECORD_VERSION,
            id: s.id.clone(),
            username: s.username.clone(),
            expires_at: s.expires_at,
            created_at_ms: s.created_at_ms,
            refresh_id: s.refresh_id.clone(),
            previous_refresh_id: s.previous_refresh_id.clone(),
            previous_until_ms: s.previous_until_ms,
        }
    }
}

impl From<SessionRecord> for Session {
    fn from(r: SessionRecord) -> Self {
        Session {
            id: r.id,
            username: r.username,
            expires_at: r.expires_at,
            created_at_ms: r.created_at_ms,
            refresh_id: r.refresh_id,
            previous_refresh_id: r.previous_refresh_id,
            previous_until_ms: r.previous_until_ms,
        }
    }
}

/// A group's key as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupKeyRecord {
    pub tenant_id: String,
    pub group_id: String,
}

impl From<&GroupRef> for GroupKeyRecord {
    fn from(g: &GroupRef) -> Self {
        GroupKeyRecord {
            tenant_id: g.tenant_id.clone(),
            group_id: g.group_id.clone(),
        }
    }
}

impl From<GroupKeyRecord> for GroupRef {
    fn from(g: GroupKeyRecord) -> Self {
        GroupRef {
            tenant_id: g.tenant_id,
            group_id: g.group_id,
        }
    }
}
