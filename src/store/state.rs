//! Everything stored, held in memory as persistent maps: a commit makes a new state that shares
//! all it did not change with the one before, so a snapshot costs one reference count and readers
//! never wait for writers.
//!
//! A map copies the node it changes, every key and value in it (up to 64): so keys and values
//! are shared (`Arc`), and a commit copies pointers, not platforms, users or sessions with
//! their strings. Groups are by far the most numerous objects (100,000 and more), so they are
//! kept small: a shared key, and the platform name shared with the usage index.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};

use super::{Change, Read, Session};
use crate::error::Result;
use crate::model::{Group, GroupRef, Platform, Properties, Tenant, User};

#[derive(Clone, Default)]
pub struct State {
    platforms: OrdMap<Arc<str>, Arc<Platform>>,
    system_default: Option<String>,
    properties: Option<Properties>,
    tenants: OrdMap<Arc<str>, Arc<Tenant>>,
    /// Each group and the platform assigned to it.
    groups: OrdMap<Arc<GroupRef>, Option<Arc<str>>>,
    /// Which groups each platform is assigned to: the usage index.
    usage: OrdMap<Arc<str>, OrdSet<Arc<GroupRef>>>,
    users: OrdMap<Arc<str>, Arc<User>>,
    sessions: OrdMap<Arc<str>, Arc<Session>>,
    secrets: OrdMap<Arc<str>, Arc<Vec<u8>>>,
}

impl State {
    /// Applies one change; a commit's changes are applied in order.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::PutPlatform(p) => {
                let name = self.platform_name(&p.name);
                self.platforms.insert(name, Arc::new(p.clone()));
            }
            Change::DeletePlatform(name) => {
                self.platforms.remove(name.as_str());
            }
            Change::SetDefault(name) => self.system_default = name.clone(),
            Change::PutProperties(p) => self.properties = Some(*p),
            Change::PutTenant(t) => {
                self.tenants
                    .insert(t.tenant_id.as_str().into(), Arc::new(t.clone()));
            }
            Change::DeleteTenant(id) => {
                self.tenants.remove(id.as_str());
            }
            Change::PutGroup(g) => {
                let key = match self.groups.get_key_value(&g.key()) {
                    Some((key, _)) => key.clone(),
                    None => Arc::new(g.key()),
                };
                let platform = g.platform.as_deref().map(|name| self.platform_name(name));
                let old = self.groups.insert(key.clone(), platform.clone());
                self.unassign(old.flatten(), &key);
                if let Some(platform) = platform {
                    self.usage.entry(platform).or_default().insert(key);
                }
            }
            Change::DeleteGroup(key) => {
                let old = self.groups.remove(key);
                self.unassign(old.flatten(), key);
            }
            Change::PutUser(u) => {
                self.users
                    .insert(u.username.as_str().into(), Arc::new(u.clone()));
            }
            Change::DeleteUser(name) => {
                self.users.remove(name.as_str());
            }
            Change::PutSession(s) => {
                self.sessions
                    .insert(s.id.as_str().into(), Arc::new(s.clone()));
            }
            Change::DeleteSession(id) => {
                self.sessions.remove(id.as_str());
            }
            Change::PutSecret(name, value) => {
                self.secrets
                    .insert(name.as_str().into(), Arc::new(value.clone()));
            }
        }
    }

    fn unassign(&mut self, old: Option<Arc<str>>, key: &GroupRef) {
        let Some(platform) = old else {
            return;
        };
        if let Some(set) = self.usage.get_mut(&*platform) {
            set.remove(key);
            if set.is_empty() {
                self.usage.remove(&*platform);
            }
        }
    }

    /// The platform name as the platforms or the usage index already hold it, so that they and
    /// the groups share one copy (and a PUT of a platform allocates no new name).
    fn platform_name(&self, name: &str) -> Arc<str> {
        let held = match self.platforms.get_key_value(name) {
            Some((key, _)) => Some(key),
            None => self.usage.get_key_value(name).map(|(key, _)| key),
        };
        held.map_or_else(|| Arc::from(name), Arc::clone)
    }

    /// The names of the stored secrets, ordered (for exports).
    pub fn secret_names(&self) -> Vec<String> {
        self.secrets.keys().map(|k| k.to_string()).collect()
    }

    /// How many groups there are, for sizing decisions that need no walk.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
}

fn group_of(key: &GroupRef, platform: &Option<Arc<str>>) -> Group {
    Group {
        tenant_id: key.tenant_id.clone(),
        group_id: key.group_id.clone(),
        platform: platform.as_deref().map(str::to_owned),
    }
}

impl Read for State {
    fn platform(&self, name: &str) -> Result<Option<Platform>> {
        Ok(self.platforms.get(name).map(|v| (**v).clone()))
    }

    fn platforms(&self) -> Result<Vec<Platform>> {
        Ok(self.platforms.values().map(|v| (**v).clone()).collect())
    }

    fn platform_names(&self) -> Result<Vec<String>> {
        Ok(self.platforms.keys().map(|k| k.to_string()).collect())
    }

    fn system_default(&self) -> Result<Option<String>> {
        Ok(self.system_default.clone())
    }

    fn properties(&self) -> Result<Properties> {
        Ok(self.properties.unwrap_or_default())
    }

    fn usage(&self, platform: &str) -> Result<Vec<GroupRef>> {
        Ok(self
            .usage
            .get(platform)
            .map(|set| set.iter().map(|k| GroupRef::clone(k)).collect())
            .unwrap_or_default())
    }

    fn usage_count(&self, platform: &str, limit: usize) -> Result<usize> {
        Ok(self.usage.get(platform).map_or(0, |s| s.len().min(limit)))
    }

    fn tenant(&self, tenant_id: &str) -> Result<Option<Tenant>> {
        Ok(self.tenants.get(tenant_id).map(|v| (**v).clone()))
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        Ok(self.tenants.values().map(|v| (**v).clone()).collect())
    }

    fn group(&self, group: &GroupRef) -> Result<Option<Group>> {
        Ok(self
            .groups
            .get_key_value(group)
            .map(|(key, platform)| group_of(key, platform)))
    }

    fn groups(&self, tenant_id: &str) -> Result<Vec<Group>> {
        let from = GroupRef {
            tenant_id: tenant_id.to_owned(),
            group_id: String::new(),
        };
        Ok(self
            .groups
            .range::<_, GroupRef>(from..)
            .take_while(|(k, _)| k.tenant_id == tenant_id)
            .map(|(key, platform)| group_of(key, platform))
            .collect())
    }

    fn user(&self, username: &str) -> Result<Option<User>> {
        Ok(self.users.get(username).map(|v| (**v).clone()))
    }

    fn users(&self) -> Result<Vec<User>> {
        Ok(self.users.values().map(|v| (**v).clone()).collect())
    }

    fn session(&self, id: &str) -> Result<Option<Session>> {
        Ok(self.sessions.get(id).map(|v| (**v).clone()))
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        Ok(self.sessions.values().map(|v| (**v).clone()).collect())
    }

    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.secrets.get(name).map(|v| (**v).clone()))
    }
}
