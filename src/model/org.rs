//! Tenants and the groups inside them, as in BroadWorks (service providers and groups).

use serde::{Deserialize, Serialize};

use super::text;
use crate::error::Result;

/// BroadWorks' length limit for service provider and group ids.
pub const ID_MAX: usize = crate::limit!(ID_MAX);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub tenant_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    pub tenant_id: String,
    pub group_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub tenant_id: String,
    pub group_id: String,
    /// The call recording platform assigned to this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl Group {
    pub fn key(&self) -> GroupRef {
        GroupRef {
            tenant_id: self.tenant_id.clone(),
            group_id: self.group_id.clone(),
        }
    }
}

/// What a missing tenant is called in errors, whether a read (404) or a change (18) missed it.
pub fn tenant_missing(tenant_id: &str) -> String {
    format!("Tenant '{tenant_id}' does not exist.")
}

/// What a missing group is called in errors.
pub fn group_missing(tenant_id: &str, group_id: &str) -> String {
    format!("Group '{group_id}' does not exist in tenant '{tenant_id}'.")
}

pub fn check_tenant_id(id: &str) -> Result<()> {
    text::check_name("tenantId", id, ID_MAX)
}

pub fn check_group_id(id: &str) -> Result<()> {
    text::check_name("groupId", id, ID_MAX)
}
