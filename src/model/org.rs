//! Tenants and the groups inside them, as in BroadWorks (service providers and groups).

use serde::{Deserialize, Serialize};

use super::text;
use crate::error::Result;

/// BroadWorks' length limit for service provider and group ids.
pub const ID_MAX: usize = 30;

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

pub fn check_tenant_id(id: &str) -> Result<()> {
    text::check("tenantId", id, ID_MAX, true)
}

pub fn check_group_id(id: &str) -> Result<()> {
    text::check("groupId", id, ID_MAX, true)
}
