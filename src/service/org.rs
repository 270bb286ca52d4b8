//! Tenants, their groups, and each group's call recording platform.
//!
//! One convention for missing objects, the same as the documented platform paths: reading a
//! missing tenant or group is 404 (`NotFound`); changing one, or creating a group in a missing
//! tenant, is 400 with 18 INVALID_OPERATION.
//!
//! Users belong to a tenant (Tenant Admin) or a group (Group Admin, End User); a tenant or group
//! that still has users, like one that still has groups, cannot be deleted, so no user is ever
//! left pointing at nothing.

use super::{Decision, Event, Origin, Service};
use crate::error::{Error, Result};
use crate::model::org::{self, check_group_id, check_tenant_id, tenant_missing};
use crate::model::{Group, GroupRef, Level, Principal, Tenant};
use crate::store::{Change, Read};

fn group_ref(tenant_id: &str, group_id: &str) -> GroupRef {
    GroupRef {
        tenant_id: tenant_id.to_owned(),
        group_id: group_id.to_owned(),
    }
}

fn check_ref(tenant_id: &str, group_id: &str) -> Result<GroupRef> {
    check_tenant_id(tenant_id)?;
    check_group_id(group_id)?;
    Ok(group_ref(tenant_id, group_id))
}

fn group_missing(g: &GroupRef) -> String {
    org::group_missing(&g.tenant_id, &g.group_id)
}

/// The group, or 18 INVALID_OPERATION: for operations that change it.
fn existing_group(r: &dyn Read, g: &GroupRef) -> Result<Group> {
    r.group(g)?
        .ok_or_else(|| Error::InvalidOperation(group_missing(g)))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many users belong to a tenant (any level) or, with a group, to that group.
fn users_in(r: &dyn Read, tenant_id: &str, group_id: Option<&str>) -> Result<usize> {
    Ok(r.users()?
        .iter()
        .filter(|u| u.tenant_id.as_deref() == Some(tenant_id))
        .filter(|u| group_id.is_none() || u.group_id.as_deref() == group_id)
        .count())
}

/// The tenant and group a new user names must exist. The user service checks this under the
/// writer lock, so that a concurrent delete cannot strand the user.
pub(super) fn check_user_scope(
    r: &dyn Read,
    tenant_id: Option<&str>,
    group_id: Option<&str>,
) -> Result<()> {
    if let Some(t) = tenant_id
        && r.tenant(t)?.is_none()
    {
        return Err(Error::invalid("tenantId", tenant_missing(t)));
    }
    if let (Some(t), Some(g)) = (tenant_id, group_id) {
        let g = group_ref(t, g);
        if r.group(&g)?.is_none() {
            return Err(Error::invalid("groupId", group_missing(&g)));
        }
    }
    Ok(())
}

impl Service {
    /// Every tenant, ordered by id.
    pub fn tenants(&self, who: &Principal) -> Result<Vec<Tenant>> {
        who.require(Level::SystemAdmin)?;
        self.read(|r| r.tenants())
    }

    /// One tenant, or `None`. A Tenant Admin may read its own.
    pub fn tenant(&self, who: &Principal, tenant_id: &str) -> Result<Option<Tenant>> {
        who.require_tenant(tenant_id)?;
        check_tenant_id(tenant_id)?;
        self.read(|r| r.tenant(tenant_id))
    }

    pub async fn add_tenant(&self, who: &Principal, tenant_id: &str) -> Result<Tenant> {
        who.require(Level::SystemAdmin)?;
        check_tenant_id(tenant_id)?;
        let tenant = Tenant {
            tenant_id: tenant_id.to_owned(),
        };
        self.write(Origin::new("addTenant", &who.username), |r| {
            if r.tenant(tenant_id)?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "Tenant '{tenant_id}' already exists."
                )));
            }
            Ok(Decision::new(tenant.clone()).change(Change::PutTenant(tenant.clone())))
        })
        .await
    }

    /// Deletes a tenant that has neither groups nor users.
    pub async fn delete_tenant(&self, who: &Principal, tenant_id: &str) -> Result<()> {
        who.require(Level::SystemAdmin)?;
        check_tenant_id(tenant_id)?;
        self.write(Origin::new("deleteTenant", &who.username), |r| {
            if r.tenant(tenant_id)?.is_none() {
                return Err(Error::InvalidOperation(tenant_missing(tenant_id)));
            }
            let groups = r.groups(tenant_id)?.len();
            if groups > 0 {
                return Err(Error::NotDeleted(format!(
                    "Tenant '{tenant_id}' cannot be deleted: it has {}.",
                    plural(groups, "group", "groups")
                )));
            }
            let users = users_in(r, tenant_id, None)?;
            if users > 0 {
                return Err(Error::NotDeleted(format!(
                    "Tenant '{tenant_id}' cannot be deleted: it has {}.",
                    plural(users, "user", "users")
                )));
            }
            Ok(Decision::new(()).change(Change::DeleteTenant(tenant_id.to_owned())))
        })
        .await
    }

    /// The groups of a tenant, ordered by id; 404 when the tenant does not exist.
    pub fn groups(&self, who: &Principal, tenant_id: &str) -> Result<Vec<Group>> {
        who.require_tenant(tenant_id)?;
        check_tenant_id(tenant_id)?;
        self.read(|r| {
            if r.tenant(tenant_id)?.is_none() {
                return Err(Error::NotFound(tenant_missing(tenant_id)));
            }
            r.groups(tenant_id)
        })
    }

    /// One group, or `None`. A Group Admin may read its own.
    pub fn group(&self, who: &Principal, tenant_id: &str, group_id: &str) -> Result<Option<Group>> {
        who.require_group(tenant_id, group_id)?;
        let g = check_ref(tenant_id, group_id)?;
        self.read(|r| r.group(&g))
    }

    /// Creates a group, without a platform, in an existing tenant.
    pub async fn add_group(
        &self,
        who: &Principal,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<Group> {
        who.require_tenant(tenant_id)?;
        let g = check_ref(tenant_id, group_id)?;
        let group = Group {
            tenant_id: g.tenant_id.clone(),
            group_id: g.group_id.clone(),
            platform: None,
        };
        self.write(Origin::new("addGroup", &who.username), |r| {
            if r.tenant(tenant_id)?.is_none() {
                return Err(Error::InvalidOperation(tenant_missing(tenant_id)));
            }
            if r.group(&g)?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "Group '{group_id}' already exists in tenant '{tenant_id}'."
                )));
            }
            Ok(Decision::new(group.clone()).change(Change::PutGroup(group.clone())))
        })
        .await
    }

    /// Deletes a group that has no users; its platform assignment goes with it.
    pub async fn delete_group(
        &self,
        who: &Principal,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<()> {
        who.require_tenant(tenant_id)?;
        let g = check_ref(tenant_id, group_id)?;
        self.write(Origin::new("deleteGroup", &who.username), |r| {
            let group = existing_group(r, &g)?;
            let users = users_in(r, tenant_id, Some(group_id))?;
            if users > 0 {
                return Err(Error::NotDeleted(format!(
                    "Group '{group_id}' cannot be deleted: it has {}.",
                    plural(users, "user", "users")
                )));
            }
            let mut d = Decision::new(()).change(Change::DeleteGroup(g.clone()));
            if let Some(previous) = group.platform {
                d = d.event(Event::GroupAssigned {
                    group: g.clone(),
                    previous: Some(previous),
                    platform: None,
                });
            }
            Ok(d)
        })
        .await
    }

    /// The call recording platform assigned to a group; 404 when the group does not exist.
    pub fn group_platform(
        &self,
        who: &Principal,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<Option<String>> {
        who.require_group(tenant_id, group_id)?;
        let g = check_ref(tenant_id, group_id)?;
        self.read(|r| {
            r.group(&g)?
                .map(|group| group.platform)
                .ok_or_else(|| Error::NotFound(group_missing(&g)))
        })
    }

    /// Assigns a platform to a group (`Some`) or clears its assignment (`None`), and answers
    /// the assignment now in place. The platform must exist at the moment of the commit, so a
    /// concurrent delete of it either sees this assignment (and is refused) or wins (and this
    /// is refused).
    pub async fn set_group_platform(
        &self,
        who: &Principal,
        tenant_id: &str,
        group_id: &str,
        platform: Option<String>,
    ) -> Result<Option<String>> {
        who.require_group(tenant_id, group_id)?;
        let g = check_ref(tenant_id, group_id)?;
        self.write(Origin::new("assignGroupPlatform", &who.username), |r| {
            let group = existing_group(r, &g)?;
            if let Some(name) = &platform
                && r.platform(name)?.is_none()
            {
                return Err(Error::platform_missing());
            }
            let d = Decision::new(platform.clone());
            if group.platform == platform {
                return Ok(d);
            }
            let previous = group.platform.clone();
            Ok(d.change(Change::PutGroup(Group {
                platform: platform.clone(),
                ..group
            }))
            .event(Event::GroupAssigned {
                group: g.clone(),
                previous,
                platform: platform.clone(),
            }))
        })
        .await
    }
}
