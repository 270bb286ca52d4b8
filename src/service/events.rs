//! Committed changes, published in log order once they are durable.

use serde::Serialize;

use crate::model::{GroupRef, Platform, Properties};
use crate::store::EventRecord;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Event {
    PlatformAdded {
        platform: Platform,
        is_default: bool,
    },
    PlatformModified {
        platform: Platform,
        is_default: bool,
    },
    PlatformDeleted {
        name: String,
    },
    /// The system default moved (`previous` stops being it) or, on the deletion of the only
    /// platform, ended (`current` is none).
    DefaultChanged {
        previous: Option<String>,
        current: Option<String>,
    },
    PropertiesModified {
        properties: Properties,
    },
    GroupAssigned {
        group: GroupRef,
        previous: Option<String>,
        platform: Option<String>,
    },
}

/// An event with where it is in the log: its cursor (resume after it), the time of its commit
/// and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub cursor: String,
    pub at: String,
    pub actor: String,
    pub event: Event,
}

impl From<&Event> for EventRecord {
    fn from(event: &Event) -> Self {
        match event {
            Event::PlatformAdded {
                platform,
                is_default,
            } => EventRecord::PlatformAdded {
                platform: platform.into(),
                is_default: *is_default,
            },
            Event::PlatformModified {
                platform,
                is_default,
            } => EventRecord::PlatformModified {
                platform: platform.into(),
                is_default: *is_default,
            },
            Event::PlatformDeleted { name } => EventRecord::PlatformDeleted { name: name.clone() },
            Event::DefaultChanged { previous, current } => EventRecord::DefaultChanged {
                previous: previous.clone(),
                current: current.clone(),
            },
            Event::PropertiesModified { properties } => EventRecord::PropertiesModified {
                properties: properties.into(),
            },
            Event::GroupAssigned {
                group,
                previous,
                platform,
            } => EventRecord::GroupAssigned {
                group: group.into(),
                previous: previous.clone(),
                platform: platform.clone(),
            },
        }
    }
}

impl From<EventRecord> for Event {
    fn from(record: EventRecord) -> Self {
        match record {
            EventRecord::PlatformAdded {
                platform,
                is_default,
            } => Event::PlatformAdded {
                platform: platform.into(),
                is_default,
            },
            EventRecord::PlatformModified {
                platform,
                is_default,
            } => Event::PlatformModified {
                platform: platform.into(),
                is_default,
            },
            EventRecord::PlatformDeleted { name } => Event::PlatformDeleted { name },
            EventRecord::DefaultChanged { previous, current } => {
                Event::DefaultChanged { previous, current }
            }
            EventRecord::PropertiesModified { properties } => Event::PropertiesModified {
                properties: properties.into(),
            },
            EventRecord::GroupAssigned {
                group,
                previous,
                platform,
            } => Event::GroupAssigned {
                group: group.into(),
                previous,
                platform,
            },
        }
    }
}

impl super::Service {
    /// Who may follow the event stream: System Admins only, as it carries every platform, the
    /// system properties and every group's assignment.
    pub fn may_watch(&self, who: &crate::model::Principal) -> crate::error::Result<()> {
        who.require(crate::model::Level::SystemAdmin)
    }
}
