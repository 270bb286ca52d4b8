//! Committed changes, published in commit order once they are durable.

use serde::Serialize;

use crate::model::{GroupRef, Platform, Properties};

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
