//! The system-wide call recording properties.

use super::{Decision, Event, Origin, Service};
use crate::error::Result;
use crate::model::{Level, Principal, Properties, PropertiesChange};
use crate::store::Change;

impl Service {
    pub fn properties(&self, who: &Principal) -> Result<Properties> {
        who.require(Level::SystemAdmin)?;
        self.read(|r| r.properties())
    }

    pub async fn modify_properties(
        &self,
        who: &Principal,
        change: PropertiesChange,
    ) -> Result<Properties> {
        who.require(Level::SystemAdmin)?;
        self.write(Origin::new("modifyProperties", &who.username), |r| {
            let current = r.properties()?;
            let next = current.changed(&change)?;
            let d = Decision::new(next);
            Ok(if next == current {
                d
            } else {
                d.change(Change::PutProperties(next))
                    .event(Event::PropertiesModified { properties: next })
            })
        })
        .await
    }
}
