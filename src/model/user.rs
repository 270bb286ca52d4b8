//! Users and APIO's authorization levels.

use serde::{Deserialize, Serialize};

use super::{org, text};
use crate::error::{Error, Result};

pub const USERNAME_MAX: usize = crate::limit!(USERNAME_MAX);
pub const PASSWORD_MIN: usize = crate::limit!(PASSWORD_MIN);
/// Hashing cost grows with the input; longer passwords are refused before hashing.
pub const PASSWORD_MAX: usize = crate::limit!(PASSWORD_MAX);

/// APIO's numbering of user levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Level {
    EndUser = 0,
    GroupAdmin = 8,
    TenantAdmin = 12,
    SystemAdmin = 16,
}

impl Level {
    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn label(self) -> &'static str {
        match self {
            Level::EndUser => "End User",
            Level::GroupAdmin => "Group Admin",
            Level::TenantAdmin => "Tenant Admin",
            Level::SystemAdmin => "System Admin",
        }
    }
}

impl TryFrom<u8> for Level {
    type Error = String;
    fn try_from(n: u8) -> Result<Level, String> {
        match n {
            0 => Ok(Level::EndUser),
            8 => Ok(Level::GroupAdmin),
            12 => Ok(Level::TenantAdmin),
            16 => Ok(Level::SystemAdmin),
            other => Err(format!("user level must be 0, 8, 12 or 16 (got {other})")),
        }
    }
}

impl From<Level> for u8 {
    fn from(level: Level) -> u8 {
        level.number()
    }
}

impl Level {
    pub fn from_number(field: &str, n: i64) -> Result<Level> {
        u8::try_from(n)
            .map_err(|_| format!("user level must be 0, 8, 12 or 16 (got {n})"))
            .and_then(Level::try_from)
            .map_err(|m| Error::invalid(field, m))
    }
}

/// A stored user. The hash is a PHC string (argon2id); the password itself is never kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub username: String,
    pub password_hash: String,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("level", &self.level)
            .field("tenant_id", &self.tenant_id)
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

/// A request to create a user, before its password is hashed.
#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub level: Level,
    pub tenant_id: Option<String>,
    pub group_id: Option<String>,
}

pub fn check_username(username: &str) -> Result<()> {
    text::check_name("username", username, USERNAME_MAX)
}

pub fn check_password(password: &str) -> Result<()> {
    let count = password.chars().count();
    if count < PASSWORD_MIN {
        return Err(Error::invalid(
            "password",
            format!("password must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX {
        return Err(Error::invalid(
            "password",
            format!("password must be at most {PASSWORD_MAX} bytes"),
        ));
    }
    Ok(())
}

impl NewUser {
    /// Checks the fields and that the scope matches the level: a Tenant Admin names its
    /// tenant, a Group Admin or End User its tenant and group, a System Admin neither.
    pub fn check(&self) -> Result<()> {
        check_username(&self.username)?;
        check_password(&self.password)?;
        if let Some(t) = &self.tenant_id {
            org::check_tenant_id(t)?;
        }
        if let Some(g) = &self.group_id {
            org::check_group_id(g)?;
        }
        let (tenant, group) = (self.tenant_id.is_some(), self.group_id.is_some());
        let fits = match self.level {
            Level::SystemAdmin => !tenant && !group,
            Level::TenantAdmin => tenant && !group,
            Level::GroupAdmin | Level::EndUser => tenant && group,
        };
        if !fits {
            return Err(Error::invalid(
                "userLevel",
                format!(
                    "a {} needs {}",
                    self.level.label(),
                    match self.level {
                        Level::SystemAdmin => "neither tenantId nor groupId",
                        Level::TenantAdmin => "tenantId and no groupId",
                        _ => "tenantId and groupId",
                    }
                ),
            ));
        }
        Ok(())
    }
}

/// Who is asking: the user behind a valid access token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub username: String,
    pub level: Level,
    pub tenant_id: Option<String>,
    pub group_id: Option<String>,
}

impl Principal {
    pub fn of(user: &User) -> Principal {
        Principal {
            username: user.username.clone(),
            level: user.level,
            tenant_id: user.tenant_id.clone(),
            group_id: user.group_id.clone(),
        }
    }

    /// At least `level`, or 403.
    pub fn require(&self, level: Level) -> Result<()> {
        if self.level >= level {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this operation needs a {} or above",
                level.label()
            )))
        }
    }

    /// May act on objects of this tenant.
    pub fn require_tenant(&self, tenant_id: &str) -> Result<()> {
        match self.level {
            Level::SystemAdmin => Ok(()),
            Level::TenantAdmin if self.tenant_id.as_deref() == Some(tenant_id) => Ok(()),
            _ => Err(Error::Forbidden(
                "this operation needs an administrator of that tenant".into(),
            )),
        }
    }

    /// May act on this group.
    pub fn require_group(&self, tenant_id: &str, group_id: &str) -> Result<()> {
        match self.level {
            Level::SystemAdmin => Ok(()),
            Level::TenantAdmin if self.tenant_id.as_deref() == Some(tenant_id) => Ok(()),
            Level::GroupAdmin
                if self.tenant_id.as_deref() == Some(tenant_id)
                    && self.group_id.as_deref() == Some(group_id) =>
            {
                Ok(())
            }
            _ => Err(Error::Forbidden(
                "this operation needs an administrator of that group".into(),
            )),
        }
    }
}

impl Principal {
    /// Whoever runs the command line on the data folder: they own it, so a System Admin.
    pub fn console() -> Principal {
        Principal {
            username: "(console)".into(),
            level: Level::SystemAdmin,
            tenant_id: None,
            group_id: None,
        }
    }
}
