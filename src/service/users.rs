//! Local users, managed by System Admins (and by the command line while the server is stopped).

use super::org::check_user_scope;
use super::sessions::random_password;
use super::{Decision, Origin, Service};
use crate::error::{Error, Result};
use crate::model::text;
use crate::model::user::{check_password, check_username};
use crate::model::{Level, NewUser, Principal, User};
use crate::store::{Change, Read};

/// The username created in an empty store.
pub const BOOTSTRAP_ADMIN: &str = "admin";

fn sessions_of(r: &dyn Read, username: &str) -> Result<Vec<Change>> {
    Ok(r.sessions()?
        .into_iter()
        .filter(|s| s.username == username)
        .map(|s| Change::DeleteSession(s.id))
        .collect())
}

/// The username is free (also in its caseless form), and the tenant and group the user belongs to exist.
fn check_addable(
    r: &dyn Read,
    username: &str,
    tenant_id: Option<&str>,
    group_id: Option<&str>,
) -> Result<()> {
    let taken = |existing: &str| Error::AlreadyExists(format!("user '{existing}' already exists"));
    if r.user(username)?.is_some() {
        return Err(taken(username));
    }
    // Users are few: the others are scanned for one that differs only in case, width or
    // normalization.
    let key = text::caseless_key(username);
    if let Some(same) = r
        .users()?
        .into_iter()
        .find(|u| text::caseless_key(&u.username) == key)
    {
        return Err(taken(&same.username));
    }
    check_user_scope(r, tenant_id, group_id)
}

impl Service {
    pub async fn add_user(&self, who: &Principal, new: NewUser) -> Result<User> {
        who.require(Level::SystemAdmin)?;
        new.check()?;
        // Checked before the (deliberately slow) hashing to fail fast, and again below.
        self.read(|r| {
            check_addable(
                r,
                &new.username,
                new.tenant_id.as_deref(),
                new.group_id.as_deref(),
            )
        })?;
        let user = User {
            username: new.username,
            password_hash: self.password_checks.hash(new.password).await?,
            level: new.level,
            tenant_id: new.tenant_id,
            group_id: new.group_id,
        };
        self.write(Origin::new("addUser", &who.username), |r| {
            // Checked again under the writer lock: another request may have added the user,
            // or deleted its tenant or group, meanwhile.
            check_addable(
                r,
                &user.username,
                user.tenant_id.as_deref(),
                user.group_id.as_deref(),
            )?;
            Ok(Decision::new(user.clone()).change(Change::PutUser(user.clone())))
        })
        .await
    }

    pub fn users(&self, who: &Principal) -> Result<Vec<User>> {
        who.require(Level::SystemAdmin)?;
        self.read(|r| r.users())
    }

    /// Deletes a user and ends its sessions. The last System Admin cannot be deleted.
    pub async fn delete_user(&self, who: &Principal, username: &str) -> Result<()> {
        who.require(Level::SystemAdmin)?;
        self.write(Origin::new("deleteUser", &who.username), |r| {
            let user = r
                .user(username)?
                .ok_or_else(|| Error::NotFound(format!("user '{username}' does not exist")))?;
            if user.level == Level::SystemAdmin {
                let admins = r
                    .users()?
                    .iter()
                    .filter(|u| u.level == Level::SystemAdmin)
                    .count();
                if admins == 1 {
                    return Err(Error::InvalidOperation(
                        "the last System Admin cannot be deleted".into(),
                    ));
                }
            }
            let mut d = Decision::new(()).change(Change::DeleteUser(username.to_owned()));
            d.changes.extend(sessions_of(r, username)?);
            Ok(d)
        })
        .await
    }

    /// Sets a user's password (a System Admin for anyone, others for themselves) and ends the
    /// user's sessions.
    pub async fn set_password(
        &self,
        who: &Principal,
        username: &str,
        password: &str,
    ) -> Result<()> {
        if who.username != username {
            who.require(Level::SystemAdmin)?;
        }
        check_username(username)?;
        check_password(password)?;
        let password_hash = self.password_checks.hash(password.to_owned()).await?;
        self.write(Origin::new("setPassword", &who.username), |r| {
            let mut user = r
                .user(username)?
                .ok_or_else(|| Error::NotFound(format!("user '{username}' does not exist")))?;
            user.password_hash = password_hash.clone();
            let mut d = Decision::new(()).change(Change::PutUser(user));
            d.changes.extend(sessions_of(r, username)?);
            Ok(d)
        })
        .await
    }

    /// In a store without users, creates `admin` (System Admin) with the given password, or a
    /// generated one that is returned so that it can be shown once.
    pub async fn bootstrap_admin(&self, password: Option<String>) -> Result<Option<String>> {
        if !self.read(|r| r.users())?.is_empty() {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p, false),
            None => (random_password(), true),
        };
        // The bootstrap of a new store is the system's doing, not a user's.
        let system = Principal {
            username: super::SYSTEM_ACTOR.into(),
            ..Principal::console()
        };
        let added = self
            .add_user(
                &system,
                NewUser {
                    username: BOOTSTRAP_ADMIN.into(),
                    password: password.clone(),
                    level: Level::SystemAdmin,
                    tenant_id: None,
                    group_id: None,
                },
            )
            .await;
        match added {
            Ok(_) => Ok(generated.then_some(password)),
            // Another gateway on the same database made the first user meanwhile.
            Err(_) if !self.read(|r| r.users())?.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
