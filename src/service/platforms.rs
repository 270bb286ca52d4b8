//! Platforms and the system default.

use std::sync::Arc;

use super::{Decision, Event, Origin, Service};
use crate::error::{Error, Result};
use crate::model::text;
use crate::model::{GroupRef, Level, NewPlatform, Platform, PlatformChange, Principal};
use crate::store::{Change, Read};

/// The platform list with the system default, as listed by either API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformList {
    pub system_default: Option<String>,
    pub platforms: Vec<Platform>,
}

/// One platform and whether it is the system default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformEntry {
    pub platform: Platform,
    pub is_default: bool,
}

const DEFAULT_NOT_DELETED: &str = "The system default Recording Platform cannot be deleted, unless it is not in use and the unique one defined.";

fn existing(r: &dyn Read, name: &str) -> Result<Platform> {
    r.platform(name)?.ok_or_else(Error::platform_missing)
}

/// No platform has this name, nor one that is the same text in another Unicode normalization
/// (NFC). The other names are scanned (keys only, nothing decoded); the caller holds the writer
/// lock.
fn check_name_free(r: &dyn Read, name: &str) -> Result<()> {
    let taken = |existing: &str| {
        Error::AlreadyExists(format!(
            "Call Recording platform '{existing}' already exists."
        ))
    };
    if r.platform(name)?.is_some() {
        return Err(taken(name));
    }
    let key = text::canonical_key(name);
    match r
        .platform_names()?
        .into_iter()
        // ASCII text is its own NFC form: only other names need normalizing.
        .find(|other| {
            if other.is_ascii() {
                *other == key
            } else {
                text::canonical_key(other) == key
            }
        }) {
        Some(same) => Err(taken(&same)),
        None => Ok(()),
    }
}

impl Service {
    /// The list every portal and dashboard polls, computed once per log position and kept
    /// with it.
    pub fn platforms(&self, who: &Principal) -> Result<Arc<PlatformList>> {
        who.require(Level::GroupAdmin)?;
        let snap = self.snapshot();
        if let Some(list) = snap.platform_list.get() {
            return Ok(list.clone());
        }
        let list = Arc::new(PlatformList {
            system_default: snap.state.system_default()?,
            platforms: snap.state.platforms()?,
        });
        Ok(snap.platform_list.get_or_init(|| list).clone())
    }

    /// One platform, or `None` when there is no such platform.
    pub fn platform(&self, who: &Principal, name: &str) -> Result<Option<PlatformEntry>> {
        who.require(Level::SystemAdmin)?;
        self.read(|r| {
            let Some(platform) = r.platform(name)? else {
                return Ok(None);
            };
            let is_default = r.system_default()?.as_deref() == Some(name);
            Ok(Some(PlatformEntry {
                platform,
                is_default,
            }))
        })
    }

    /// Adds a platform; the first one becomes the system default.
    pub async fn add_platform(&self, who: &Principal, new: NewPlatform) -> Result<PlatformEntry> {
        who.require(Level::SystemAdmin)?;
        let platform = new.validate()?;
        self.write(Origin::new("addPlatform", &who.username), |r| {
            check_name_free(r, &platform.name)?;
            let first = r.system_default()?.is_none();
            let entry = PlatformEntry {
                platform: platform.clone(),
                is_default: first,
            };
            let mut d = Decision::new(entry)
                .change(Change::PutPlatform(platform.clone()))
                .event(Event::PlatformAdded {
                    platform: platform.clone(),
                    is_default: first,
                });
            if first {
                d = d
                    .change(Change::SetDefault(Some(platform.name.clone())))
                    .event(Event::DefaultChanged {
                        previous: None,
                        current: Some(platform.name.clone()),
                    });
            }
            Ok(d)
        })
        .await
    }

    /// Changes the given fields; `make_default: true` moves the system default here.
    pub async fn modify_platform(
        &self,
        who: &Principal,
        name: &str,
        change: PlatformChange,
    ) -> Result<PlatformEntry> {
        who.require(Level::SystemAdmin)?;
        self.write(Origin::new("modifyPlatform", &who.username), |r| {
            let current = existing(r, name)?;
            let next = current.changed(&change)?;
            let previous_default = r.system_default()?;
            let was_default = previous_default.as_deref() == Some(name);
            let is_default = match change.make_default {
                Some(false) if was_default => {
                    return Err(Error::InvalidOperation(
                        "The system default Call Recording platform cannot be unset; make another platform the default instead.".into(),
                    ));
                }
                Some(true) => true,
                _ => was_default,
            };
            let entry = PlatformEntry {
                platform: next.clone(),
                is_default,
            };
            let mut d = Decision::new(entry);
            if next != current {
                d = d
                    .change(Change::PutPlatform(next.clone()))
                    .event(Event::PlatformModified {
                        platform: next,
                        is_default,
                    });
            }
            if is_default && !was_default {
                d = d
                    .change(Change::SetDefault(Some(name.to_owned())))
                    .event(Event::DefaultChanged {
                        previous: previous_default,
                        current: Some(name.to_owned()),
                    });
            }
            Ok(d)
        })
        .await
    }

    /// Deletes a platform that no group uses; the default only when it is the only platform.
    pub async fn delete_platform(&self, who: &Principal, name: &str) -> Result<()> {
        who.require(Level::SystemAdmin)?;
        self.write(Origin::new("deletePlatform", &who.username), |r| {
            existing(r, name)?;
            let in_use = r.usage_count(name, usize::MAX)?;
            let is_default = r.system_default()?.as_deref() == Some(name);
            if is_default {
                let only = r.platforms()?.len() == 1;
                if !only || in_use > 0 {
                    return Err(Error::NotDeleted(DEFAULT_NOT_DELETED.into()));
                }
            } else if in_use > 0 {
                return Err(Error::NotDeleted(format!(
                    "Call Recording platform '{name}' cannot be deleted: {in_use} group{} use{} it.",
                    if in_use == 1 { "" } else { "s" },
                    if in_use == 1 { "s" } else { "" },
                )));
            }
            let mut d = Decision::new(())
                .change(Change::DeletePlatform(name.to_owned()))
                .event(Event::PlatformDeleted {
                    name: name.to_owned(),
                });
            if is_default {
                d = d
                    .change(Change::SetDefault(None))
                    .event(Event::DefaultChanged {
                        previous: Some(name.to_owned()),
                        current: None,
                    });
            }
            Ok(d)
        })
        .await
    }

    /// The groups using a platform.
    pub fn usage(&self, who: &Principal, name: &str) -> Result<Vec<GroupRef>> {
        who.require(Level::SystemAdmin)?;
        self.read(|r| {
            existing(r, name)?;
            r.usage(name)
        })
    }
}
