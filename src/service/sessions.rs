//! Login, token refresh, logout, and turning an access token into a [`Principal`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;

use super::{Decision, Origin, Service};
use crate::auth::{Attempt, Claims, Outcome, PasswordChecks, TokenKind, Tokens, verify_password};
use crate::error::{Error, Result};
use crate::model::Principal;
use crate::store::{Change, Read, Sequence, Session};

const TOKEN_KEY: &str = "token-signing-key";
/// Tokens remembered between commits; past this many the memory starts over.
const KNOWN_TOKENS: usize = 4096;

/// An access token found valid at a commit, with its user's principal at that commit; good
/// until its token or session expires. Its signature and claims stay checked once the log
/// moves on: only its session and user are looked at again.
pub(super) struct KnownToken {
    commit: Sequence,
    principal: Principal,
    expires_at: u64,
    claims: Arc<Claims>,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Consecutive failed logins after which a username is locked.
    pub max_failed_logins: u32,
    pub lockout: Duration,
    /// How long a refresh token that has been used once is still accepted.
    pub refresh_grace: Duration,
    /// Sessions one user may hold; a login past it ends the oldest.
    pub max_sessions_per_user: usize,
    /// Password hashes and checks computed at once.
    pub max_password_checks: usize,
    /// How long a password check waits for a free slot before the answer is 503.
    pub password_check_wait: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(24 * 3600),
            max_failed_logins: 5,
            lockout: Duration::from_secs(60),
            refresh_grace: Duration::from_secs(30),
            max_sessions_per_user: 20,
            max_password_checks: PasswordChecks::default_slots(),
            password_check_wait: Duration::from_secs(2),
        }
    }
}

/// A successful login.
pub struct LoginAnswer {
    pub access_token: String,
    pub refresh_token: String,
    pub principal: Principal,
}

/// A used refresh token's answer: a new access token and the refresh token to use next.
pub struct RefreshAnswer {
    pub access_token: String,
    pub refresh_token: String,
}

fn now() -> u64 {
    crate::auth::Claims::now()
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn random_password() -> String {
    Alphanumeric.sample_string(&mut OsRng, 24)
}

impl Service {
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Loads the signing key, creating and storing it on first start (the bootstrap of a new
    /// store).
    pub(super) async fn load_tokens(&self) -> Result<Tokens> {
        let mut fresh = vec![0u8; 32];
        OsRng.fill_bytes(&mut fresh);
        let key = self
            .write(Origin::system("bootstrap"), |r| {
                Ok(match r.secret(TOKEN_KEY)? {
                    Some(key) => Decision::new(key),
                    None => Decision::new(fresh.clone())
                        .change(Change::PutSecret(TOKEN_KEY.into(), fresh.clone())),
                })
            })
            .await?;
        let settings = &self.settings;
        Ok(Tokens::new(&key, settings.access_ttl, settings.refresh_ttl))
    }

    /// Checks the password and opens a session. The attempt is counted by the throttle
    /// before its password is checked (see `auth::throttle`).
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginAnswer> {
        let attempt = Attempt::begin(self.throttle.clone(), username).await?;
        let user = self.read(|r| r.user(username))?;
        let (hash, typed) = (
            user.as_ref().map(|u| u.password_hash.clone()),
            password.to_owned(),
        );
        // The outcome is recorded where the check runs, so a caller that goes away mid-check
        // is still counted; one refused for lack of a slot drops `attempt` unchecked.
        let ok = self
            .password_checks
            .run(move || {
                let ok = verify_password(&typed, hash.as_deref());
                attempt.finish(if ok {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                });
                ok
            })
            .await?;
        let user = match user {
            Some(user) if ok => user,
            _ => {
                return Err(Error::Unauthenticated(
                    "invalid username or password".into(),
                ));
            }
        };
        let now = now();
        let session = Session {
            id: random_id(),
            username: user.username.clone(),
            expires_at: now + self.tokens.refresh_ttl.as_secs(),
            created_at_ms: now_millis(),
            refresh_id: random_id(),
            previous_refresh_id: None,
            previous_until_ms: 0,
        };
        let access_token = self.tokens.issue_access(&user.username, &session.id)?;
        let refresh_token =
            self.tokens
                .issue_refresh(&user.username, &session.id, &session.refresh_id)?;
        let cap = self.settings.max_sessions_per_user.max(1);
        self.write(Origin::new("login", &user.username), |r| {
            let mut d = Decision::new(());
            let mut open: Vec<Session> = r
                .sessions()?
                .into_iter()
                .filter(|s| s.username == session.username)
                .collect();
            if open.len() >= cap {
                open.sort_by_key(|s| (s.created_at_ms, s.expires_at));
                for oldest in &open[..=open.len() - cap] {
                    d = d.change(Change::DeleteSession(oldest.id.clone()));
                }
            }
            Ok(d.change(Change::PutSession(session.clone())))
        })
        .await?;
        Ok(LoginAnswer {
            access_token,
            refresh_token,
            principal: Principal::of(&user),
        })
    }

    /// The principal of a valid access token whose session and user still exist. Every
    /// request asks this, so a token checked since the last commit is answered from memory
    /// (its signature was verified then, and the same text cannot say anything else); any
    /// commit (a logout, a deleted user, a new level) makes every remembered answer stale.
    /// Expiry is checked on every use.
    pub fn authenticate(&self, access_token: &str) -> Result<Principal> {
        let now = now();
        let known = {
            let known = self.principals.lock().unwrap_or_else(|p| p.into_inner());
            match known.get(access_token) {
                Some(k) if k.commit == self.position() && k.expires_at > now => {
                    return Ok(k.principal.clone());
                }
                Some(k) if k.claims.exp > now => Some(k.claims.clone()),
                _ => None,
            }
        };
        let claims = match known {
            Some(claims) => claims,
            None => Arc::new(self.tokens.verify(access_token, TokenKind::Access)?),
        };
        let (principal, session_expires_at, commit) =
            self.principal_of_session(&claims.sid, &claims.sub)?;
        let mut known = self.principals.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_TOKENS {
            known.clear();
        }
        known.insert(
            access_token.to_owned(),
            KnownToken {
                commit,
                principal: principal.clone(),
                expires_at: claims.exp.min(session_expires_at),
                claims,
            },
        );
        Ok(principal)
    }

    /// The principal of a live session, when its session ends, and the commit this was read
    /// at.
    fn principal_of_session(
        &self,
        session: &str,
        username: &str,
    ) -> Result<(Principal, u64, Sequence)> {
        let now = now();
        let snap = self.snapshot();
        let commit = snap.sequence;
        let r = &snap.state;
        {
            let record = r
                .session(session)?
                .filter(|s| s.username == username && s.expires_at > now)
                .ok_or_else(|| Error::Unauthenticated("the session has ended".into()))?;
            let user = r
                .user(username)?
                .ok_or_else(|| Error::Unauthenticated("the user no longer exists".into()))?;
            Ok((Principal::of(&user), record.expires_at, commit))
        }
    }

    /// A new access token and a new refresh token for the session's current refresh token.
    /// The one it replaces is still accepted for `refresh_grace` (answered with the current
    /// one, not rotated again); presented after that, or any older one, it is taken as stolen
    /// and the session ends.
    pub async fn refresh(&self, refresh_token: &str) -> Result<RefreshAnswer> {
        let claims = self.tokens.verify(refresh_token, TokenKind::Refresh)?;
        let (now, now_ms) = (now(), now_millis());
        let grace_ms = u64::try_from(self.settings.refresh_grace.as_millis()).unwrap_or(u64::MAX);
        let next_id = random_id();
        let current_id = self
            .write(Origin::new("refresh", &claims.sub), |r| {
                let session = r
                    .session(&claims.sid)?
                    .filter(|s| s.username == claims.sub && s.expires_at > now)
                    .ok_or_else(|| Error::Unauthenticated("the session has ended".into()))?;
                if r.user(&claims.sub)?.is_none() {
                    return Err(Error::Unauthenticated("the user no longer exists".into()));
                }
                if claims.jti == session.refresh_id {
                    let rotated = Session {
                        previous_refresh_id: Some(session.refresh_id.clone()),
                        previous_until_ms: now_ms.saturating_add(grace_ms),
                        refresh_id: next_id.clone(),
                        ..session
                    };
                    return Ok(
                        Decision::new(Ok(next_id.clone())).change(Change::PutSession(rotated))
                    );
                }
                if session.previous_refresh_id.as_deref() == Some(claims.jti.as_str())
                    && now_ms < session.previous_until_ms
                {
                    return Ok(Decision::new(Ok(session.refresh_id)));
                }
                Ok(Decision::new(Err(Error::Unauthenticated(
                    "the refresh token was already used; the session has ended".into(),
                )))
                .change(Change::DeleteSession(session.id)))
            })
            .await??;
        Ok(RefreshAnswer {
            access_token: self.tokens.issue_access(&claims.sub, &claims.sid)?,
            refresh_token: self
                .tokens
                .issue_refresh(&claims.sub, &claims.sid, &current_id)?,
        })
    }

    /// Ends the session of a refresh token; its access tokens stop working too.
    pub async fn logout(&self, who: &Principal, refresh_token: &str) -> Result<()> {
        let claims = self
            .tokens
            .verify(refresh_token, TokenKind::Refresh)
            .map_err(|_| {
                Error::invalid(
                    "refresh_token",
                    "refresh_token is not a valid refresh token",
                )
            })?;
        if claims.sub != who.username {
            return Err(Error::Forbidden(
                "the refresh token belongs to another user".into(),
            ));
        }
        self.write(Origin::new("logout", &who.username), |r| {
            let d = Decision::new(());
            Ok(if r.session(&claims.sid)?.is_some() {
                d.change(Change::DeleteSession(claims.sid.clone()))
            } else {
                d
            })
        })
        .await
    }

    /// Forgets sessions whose refresh tokens have expired.
    pub async fn prune_sessions(&self) -> Result<usize> {
        let now = now();
        self.write(Origin::system("pruneSessions"), |r| {
            let expired: Vec<Change> = r
                .sessions()?
                .into_iter()
                .filter(|s| s.expires_at <= now)
                .map(|s| Change::DeleteSession(s.id))
                .collect();
            let mut d = Decision::new(expired.len());
            d.changes = expired;
            Ok(d)
        })
        .await
    }
}
