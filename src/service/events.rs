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

impl super::Service {
    /// Who may follow the event stream: System Admins only, as it carries every platform, the
    /// system properties and every group's assignment.
    pub fn may_watch(&self, who: &crate::model::Principal) -> crate::error::Result<()> {
        who.require(crate::model::Level::SystemAdmin)
    }

    /// The event stream for an authorized caller (see [`Service::subscribe`](super::Service::subscribe)).
    pub fn watch(
        &self,
        who: &crate::model::Principal,
    ) -> crate::error::Result<tokio::sync::broadcast::Receiver<Event>> {
        self.may_watch(who)?;
        Ok(self.subscribe())
    }
}
