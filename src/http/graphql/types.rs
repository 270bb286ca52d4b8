//! The GraphQL shapes of the model: objects rendered from service answers, enums mirrored
//! from the model's, and the input objects that mutations parse into model requests.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, SimpleObject, Union};

use super::context::caller;
use super::error::GqlResult;
use super::reachability::{self, CallRecordingPlatformReachabilityChanged, PlatformReachability};
use crate::model::{self, NewPlatform, PlatformChange, PropertiesChange};
use crate::service::{Event, LoggedEvent, PlatformEntry, PlatformList};

/// How the media of a recorded call is sent: both directions in one stream or in two.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::MediaStream")]
pub enum MediaStream {
    Dual,
    Single,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::TransportProtocol")]
pub enum TransportProtocol {
    #[graphql(name = "UDP")]
    Udp,
    #[graphql(name = "TCP")]
    Tcp,
    #[graphql(name = "UNSPECIFIED")]
    Unspecified,
}

/// The recording interface version the platform speaks.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::SchemaVersion")]
pub enum SchemaVersion {
    #[graphql(name = "V1_0")]
    V1_0,
    #[graphql(name = "V2_0")]
    V2_0,
    #[graphql(name = "V3_0")]
    V3_0,
}

/// APIO's user levels.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::Level")]
pub enum UserLevel {
    EndUser,
    GroupAdmin,
    TenantAdmin,
    SystemAdmin,
}

/// A group, inside its tenant.
#[derive(SimpleObject, Clone, Debug)]
pub struct GroupRef {
    pub tenant_id: String,
    pub group_id: String,
}

impl From<model::GroupRef> for GroupRef {
    fn from(g: model::GroupRef) -> Self {
        GroupRef {
            tenant_id: g.tenant_id,
            group_id: g.group_id,
        }
    }
}

/// A tenant (service provider), which contains groups.
pub struct Tenant(pub model::Tenant);

/// A tenant (service provider), which contains groups.
#[Object]
impl Tenant {
    #[doc = concat!("1-", crate::limit!(ID_MAX), " characters.")]
    async fn tenant_id(&self) -> &str {
        &self.0.tenant_id
    }

    /// The tenant's groups, ordered by id.
    async fn groups(&self, ctx: &Context<'_>) -> GqlResult<Vec<Group>> {
        let (service, who) = caller(ctx)?;
        Ok(service
            .groups(&who, &self.0.tenant_id)?
            .into_iter()
            .map(Group)
            .collect())
    }
}

/// A group, inside its tenant, with its call recording platform.
pub struct Group(pub model::Group);

/// A group, inside its tenant, with its call recording platform.
#[Object]
impl Group {
    async fn tenant_id(&self) -> &str {
        &self.0.tenant_id
    }

    #[doc = concat!("1-", crate::limit!(ID_MAX), " characters, unique within the tenant.")]
    async fn group_id(&self) -> &str {
        &self.0.group_id
    }

    /// The name of the call recording platform assigned to this group, or null when none is.
    async fn call_recording_platform(&self) -> Option<&str> {
        self.0.platform.as_deref()
    }
}

/// What `deleteTenant` answers.
#[derive(SimpleObject)]
pub struct DeleteTenantPayload {
    /// The id of the deleted tenant.
    pub tenant_id: String,
}

/// What `deleteGroup` answers.
#[derive(SimpleObject)]
pub struct DeleteGroupPayload {
    pub tenant_id: String,
    /// The id of the deleted group.
    pub group_id: String,
}

/// A recording server that calls are forked to.
pub struct CallRecordingPlatform(pub PlatformEntry);

/// A recording server that calls are forked to.
#[Object]
impl CallRecordingPlatform {
    /// The key; cannot be changed.
    async fn name(&self) -> &str {
        &self.0.platform.name
    }

    /// An IPv4/IPv6 literal or a host name.
    async fn net_address(&self) -> &str {
        &self.0.platform.net_address
    }

    #[doc = concat!(crate::limit!(PORT_MIN), "-", crate::limit!(PORT_MAX), ", or null when unset.")]
    async fn port(&self) -> Option<i32> {
        self.0.platform.port.map(i32::from)
    }

    async fn media_stream(&self) -> MediaStream {
        self.0.platform.media_stream.into()
    }

    async fn transport_protocol(&self) -> TransportProtocol {
        self.0.platform.transport_protocol.into()
    }

    /// Null when unset.
    async fn description(&self) -> Option<&str> {
        self.0.platform.description.as_deref()
    }

    async fn schema_version(&self) -> SchemaVersion {
        self.0.platform.schema_version.into()
    }

    async fn support_video_recording(&self) -> bool {
        self.0.platform.support_video_recording
    }

    /// Whether this is the system default platform.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }

    /// Whether the platform answers SIP OPTIONS, as this gateway sees it (System Admin
    /// only; null with FORBIDDEN for other callers).
    async fn reachability(&self, ctx: &Context<'_>) -> GqlResult<Option<PlatformReachability>> {
        reachability::of_platform(ctx, &self.0.platform.name)
    }

    /// The groups assigned to this platform (System Admin only).
    async fn usage(&self, ctx: &Context<'_>) -> GqlResult<Vec<GroupRef>> {
        let (service, who) = caller(ctx)?;
        Ok(service
            .usage(&who, &self.0.platform.name)?
            .into_iter()
            .map(GroupRef::from)
            .collect())
    }
}

/// Every platform, and which one is the system default.
pub struct CallRecordingPlatformList(pub std::sync::Arc<PlatformList>);

/// Every platform, and which one is the system default.
#[Object]
impl CallRecordingPlatformList {
    /// The name of the system default platform; null only when there are no platforms.
    async fn system_default(&self) -> Option<&str> {
        self.0.system_default.as_deref()
    }

    async fn platforms(&self) -> Vec<CallRecordingPlatform> {
        let default = self.0.system_default.as_deref();
        self.0
            .platforms
            .iter()
            .map(|p| {
                CallRecordingPlatform(PlatformEntry {
                    is_default: default == Some(p.name.as_str()),
                    platform: p.clone(),
                })
            })
            .collect()
    }
}

/// The system-wide call recording properties.
pub struct CallRecordingProperties(pub model::Properties);

/// The system-wide call recording properties.
#[Object]
impl CallRecordingProperties {
    async fn continue_call_after_recording_failure(&self) -> bool {
        self.0.continue_call_after_recording_failure
    }

    #[doc = concat!(
        crate::limit!(REFRESH_PERIOD_SECONDS_MIN),
        "-",
        crate::limit!(REFRESH_PERIOD_SECONDS_MAX),
        " (deprecated by the platform, still served)."
    )]
    async fn refresh_period_seconds(&self) -> u32 {
        self.0.refresh_period_seconds
    }

    #[doc = concat!(
        crate::limit!(MAX_CONSECUTIVE_FAILURES_MIN),
        "-",
        crate::limit!(MAX_CONSECUTIVE_FAILURES_MAX),
        " (deprecated by the platform, still served)."
    )]
    async fn max_consecutive_failures(&self) -> u32 {
        self.0.max_consecutive_failures
    }

    #[doc = concat!(
        crate::limit!(MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MIN),
        "-",
        crate::limit!(MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MAX),
        "."
    )]
    async fn max_response_wait_time_milliseconds(&self) -> u32 {
        self.0.max_response_wait_time_milliseconds
    }

    async fn continue_call_after_video_recording_failure(&self) -> bool {
        self.0.continue_call_after_video_recording_failure
    }
}

/// The caller.
pub struct Me(pub model::Principal);

/// The caller.
#[Object]
impl Me {
    async fn username(&self) -> &str {
        &self.0.username
    }

    async fn level(&self) -> UserLevel {
        self.0.level.into()
    }

    /// The tenant of a Tenant Admin, Group Admin or End User.
    async fn tenant_id(&self) -> Option<&str> {
        self.0.tenant_id.as_deref()
    }

    /// The group of a Group Admin or End User.
    async fn group_id(&self) -> Option<&str> {
        self.0.group_id.as_deref()
    }
}

/// A new platform. The first platform added becomes the system default.
#[derive(InputObject)]
pub struct AddCallRecordingPlatformInput {
    #[doc = concat!("1-", crate::limit!(NAME_MAX), " characters, no leading or trailing space.")]
    pub name: String,
    pub net_address: String,
    #[doc = concat!(crate::limit!(PORT_MIN), "-", crate::limit!(PORT_MAX), ".")]
    pub port: Option<i64>,
    pub media_stream: MediaStream,
    pub transport_protocol: TransportProtocol,
    #[doc = concat!("1-", crate::limit!(DESCRIPTION_MAX), " characters.")]
    pub description: Option<String>,
    pub schema_version: SchemaVersion,
    pub support_video_recording: bool,
}

impl From<AddCallRecordingPlatformInput> for NewPlatform {
    fn from(i: AddCallRecordingPlatformInput) -> Self {
        NewPlatform {
            name: i.name,
            net_address: i.net_address,
            port: i.port,
            media_stream: i.media_stream.into(),
            transport_protocol: i.transport_protocol.into(),
            description: i.description,
            schema_version: i.schema_version.into(),
            support_video_recording: i.support_video_recording,
        }
    }
}

/// A change to a platform: fields left out (or null, for the required ones) are unchanged.
#[derive(InputObject)]
pub struct ModifyCallRecordingPlatformInput {
    /// `true` makes this platform the system default. `false` on the default is refused
    /// (INVALID_OPERATION): make another platform the default instead.
    pub make_default: Option<bool>,
    pub net_address: Option<String>,
    /// `null` removes the port.
    pub port: MaybeUndefined<i64>,
    pub media_stream: Option<MediaStream>,
    pub transport_protocol: Option<TransportProtocol>,
    /// `null` removes the description.
    pub description: MaybeUndefined<String>,
    pub schema_version: Option<SchemaVersion>,
    pub support_video_recording: Option<bool>,
}

impl From<ModifyCallRecordingPlatformInput> for PlatformChange {
    fn from(i: ModifyCallRecordingPlatformInput) -> Self {
        PlatformChange {
            make_default: i.make_default,
            net_address: i.net_address,
            port: i.port.into(),
            media_stream: i.media_stream.map(Into::into),
            transport_protocol: i.transport_protocol.map(Into::into),
            description: i.description.into(),
            schema_version: i.schema_version.map(Into::into),
            support_video_recording: i.support_video_recording,
        }
    }
}

/// A change to the properties: fields left out (or null) are unchanged.
#[derive(InputObject)]
pub struct ModifyCallRecordingPropertiesInput {
    pub continue_call_after_recording_failure: Option<bool>,
    #[doc = concat!(
        crate::limit!(REFRESH_PERIOD_SECONDS_MIN),
        "-",
        crate::limit!(REFRESH_PERIOD_SECONDS_MAX),
        "."
    )]
    pub refresh_period_seconds: Option<i64>,
    #[doc = concat!(
        crate::limit!(MAX_CONSECUTIVE_FAILURES_MIN),
        "-",
        crate::limit!(MAX_CONSECUTIVE_FAILURES_MAX),
        "."
    )]
    pub max_consecutive_failures: Option<i64>,
    #[doc = concat!(
        crate::limit!(MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MIN),
        "-",
        crate::limit!(MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MAX),
        "."
    )]
    pub max_response_wait_time_milliseconds: Option<i64>,
    pub continue_call_after_video_recording_failure: Option<bool>,
}

impl From<ModifyCallRecordingPropertiesInput> for PropertiesChange {
    fn from(i: ModifyCallRecordingPropertiesInput) -> Self {
        PropertiesChange {
            continue_call_after_recording_failure: i.continue_call_after_recording_failure,
            refresh_period_seconds: i.refresh_period_seconds,
            max_consecutive_failures: i.max_consecutive_failures,
            max_response_wait_time_milliseconds: i.max_response_wait_time_milliseconds,
            continue_call_after_video_recording_failure: i
                .continue_call_after_video_recording_failure,
        }
    }
}

/// What `deleteCallRecordingPlatform` answers.
#[derive(SimpleObject)]
pub struct DeleteCallRecordingPlatformPayload {
    /// The name of the deleted platform.
    pub name: String,
}

/// Where an event is in the change log, when it happened and who made it. Every event from the
/// log has these fields; pass `cursor` as `after` to resume the stream right after the event.
#[derive(SimpleObject, Clone)]
pub struct LogMark {
    /// Resume after this event with `callRecordingEvents(after: cursor)`.
    pub cursor: String,
    /// When the change was committed (RFC 3339, UTC).
    pub at: String,
    /// Who made the change (`system` for what the server does by itself).
    pub actor: String,
}

/// A platform was added (`platform.isDefault` tells whether it became the default).
pub struct CallRecordingPlatformAdded(PlatformEntry, LogMark);

/// A platform was added (`platform.isDefault` tells whether it became the default).
#[Object]
impl CallRecordingPlatformAdded {
    async fn platform(&self) -> CallRecordingPlatform {
        CallRecordingPlatform(self.0.clone())
    }

    #[graphql(flatten)]
    async fn mark(&self) -> LogMark {
        self.1.clone()
    }
}

/// A platform was changed; `platform` is the whole platform as it is now.
pub struct CallRecordingPlatformModified(PlatformEntry, LogMark);

/// A platform was changed; `platform` is the whole platform as it is now.
#[Object]
impl CallRecordingPlatformModified {
    async fn platform(&self) -> CallRecordingPlatform {
        CallRecordingPlatform(self.0.clone())
    }

    #[graphql(flatten)]
    async fn mark(&self) -> LogMark {
        self.1.clone()
    }
}

/// A platform was deleted.
#[derive(SimpleObject)]
pub struct CallRecordingPlatformDeleted {
    pub name: String,
    #[graphql(flatten)]
    pub mark: LogMark,
}

/// The system default moved from `previousDefault` to `systemDefault`. `systemDefault` is
/// null only after the only platform was deleted; `previousDefault` is null when the first
/// platform was added.
#[derive(SimpleObject)]
pub struct CallRecordingDefaultChanged {
    pub previous_default: Option<String>,
    pub system_default: Option<String>,
    #[graphql(flatten)]
    pub mark: LogMark,
}

/// The system properties changed; `properties` are all of them as they are now.
pub struct CallRecordingPropertiesModified(model::Properties, LogMark);

/// The system properties changed; `properties` are all of them as they are now.
#[Object]
impl CallRecordingPropertiesModified {
    async fn properties(&self) -> CallRecordingProperties {
        CallRecordingProperties(self.0)
    }

    #[graphql(flatten)]
    async fn mark(&self) -> LogMark {
        self.1.clone()
    }
}

/// A group's call recording platform was assigned (`callRecordingPlatform`) or removed
/// (`callRecordingPlatform` null); `previousPlatform` is the platform it had before, if any.
#[derive(SimpleObject)]
pub struct GroupCallRecordingPlatformAssigned {
    pub group: GroupRef,
    pub previous_platform: Option<String>,
    pub call_recording_platform: Option<String>,
    #[graphql(flatten)]
    pub mark: LogMark,
}

/// The first message of every `callRecordingEvents` subscription: from here on, every
/// committed change is delivered. A dashboard fetches the state it shows after receiving this
/// message, then applies the events that follow, and misses nothing.
#[derive(SimpleObject)]
pub struct CallRecordingSubscriptionStarted {
    /// Always true.
    pub live: bool,
}

/// A committed change, as streamed by `callRecordingEvents` (or the first message, which
/// says the subscription is live).
#[derive(Union)]
pub enum CallRecordingEvent {
    SubscriptionStarted(CallRecordingSubscriptionStarted),
    PlatformAdded(CallRecordingPlatformAdded),
    PlatformModified(CallRecordingPlatformModified),
    PlatformDeleted(CallRecordingPlatformDeleted),
    DefaultChanged(CallRecordingDefaultChanged),
    PropertiesModified(CallRecordingPropertiesModified),
    GroupAssigned(GroupCallRecordingPlatformAssigned),
    ReachabilityChanged(CallRecordingPlatformReachabilityChanged),
}

impl From<LoggedEvent> for CallRecordingEvent {
    fn from(logged: LoggedEvent) -> Self {
        let mark = LogMark {
            cursor: logged.cursor,
            at: logged.at,
            actor: logged.actor,
        };
        match logged.event {
            Event::PlatformAdded {
                platform,
                is_default,
            } => CallRecordingEvent::PlatformAdded(CallRecordingPlatformAdded(
                PlatformEntry {
                    platform,
                    is_default,
                },
                mark,
            )),
            Event::PlatformModified {
                platform,
                is_default,
            } => CallRecordingEvent::PlatformModified(CallRecordingPlatformModified(
                PlatformEntry {
                    platform,
                    is_default,
                },
                mark,
            )),
            Event::PlatformDeleted { name } => {
                CallRecordingEvent::PlatformDeleted(CallRecordingPlatformDeleted { name, mark })
            }
            Event::DefaultChanged { previous, current } => {
                CallRecordingEvent::DefaultChanged(CallRecordingDefaultChanged {
                    previous_default: previous,
                    system_default: current,
                    mark,
                })
            }
            Event::PropertiesModified { properties } => CallRecordingEvent::PropertiesModified(
                CallRecordingPropertiesModified(properties, mark),
            ),
            Event::GroupAssigned {
                group,
                previous,
                platform,
            } => CallRecordingEvent::GroupAssigned(GroupCallRecordingPlatformAssigned {
                group: group.into(),
                previous_platform: previous,
                call_recording_platform: platform,
                mark,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Schema};
    use serde_json::json;

    use super::*;

    /// Renders one event as GraphQL would send it.
    async fn render(event: Event) -> serde_json::Value {
        let event = LoggedEvent {
            cursor: "7:0".into(),
            at: "2026-01-01T00:00:00.000Z".into(),
            actor: "admin".into(),
            event,
        };
        struct Query(std::sync::Mutex<Option<LoggedEvent>>);

        #[Object]
        impl Query {
            async fn event(&self) -> Option<CallRecordingEvent> {
                self.0
                    .lock()
                    .ok()
                    .and_then(|mut e| e.take())
                    .map(Into::into)
            }
        }

        let schema = Schema::new(
            Query(std::sync::Mutex::new(Some(event))),
            EmptyMutation,
            EmptySubscription,
        );
        let response = schema
            .execute(
                "{ event { __typename
                   ... on GroupCallRecordingPlatformAssigned { group { tenantId groupId } previousPlatform callRecordingPlatform }
                   ... on CallRecordingDefaultChanged { previousDefault systemDefault }
                   ... on CallRecordingPlatformDeleted { name cursor at actor } } }",
            )
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response.data.into_json().expect("JSON")["event"].clone()
    }

    #[tokio::test]
    async fn group_assignments_are_rendered() {
        let group = model::GroupRef {
            tenant_id: "t1".into(),
            group_id: "g1".into(),
        };
        let event = Event::GroupAssigned {
            group: group.clone(),
            previous: None,
            platform: Some("A".into()),
        };
        assert_eq!(
            render(event).await,
            json!({"__typename": "GroupCallRecordingPlatformAssigned",
                   "group": {"tenantId": "t1", "groupId": "g1"}, "previousPlatform": null,
                   "callRecordingPlatform": "A"})
        );
        let removed = Event::GroupAssigned {
            group,
            previous: Some("A".into()),
            platform: None,
        };
        assert_eq!(
            render(removed).await["callRecordingPlatform"],
            serde_json::Value::Null
        );
    }

    #[tokio::test]
    async fn the_end_of_the_default_is_rendered() {
        let event = Event::DefaultChanged {
            previous: Some("A".into()),
            current: None,
        };
        assert_eq!(
            render(event).await,
            json!({"__typename": "CallRecordingDefaultChanged", "previousDefault": "A",
                   "systemDefault": null})
        );
    }
}
