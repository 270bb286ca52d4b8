//! Signed bearer tokens (JWT, HS256). The signing key lives in the store, so tokens stay
//! valid across restarts until they expire or their session is ended.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The session the token belongs to.
    pub sid: String,
    pub typ: TokenKind,
    /// A refresh token's own id: the session accepts only its current one (and, for a short
    /// grace, the one before). Empty in access tokens and in refresh tokens issued before
    /// refresh tokens rotated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl Claims {
    pub fn now() -> u64 {
        now_seconds()
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    pub fn new(key: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn issue_access(&self, username: &str, session: &str) -> Result<String> {
        self.issue(TokenKind::Access, username, session, "")
    }

    /// A refresh token of a session, with the id the session keeps as its current one.
    pub fn issue_refresh(&self, username: &str, session: &str, id: &str) -> Result<String> {
        self.issue(TokenKind::Refresh, username, session, id)
    }

    fn issue(&self, kind: TokenKind, username: &str, session: &str, id: &str) -> Result<String> {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let iat = now_seconds();
        self.sign(&Claims {
            sub: username.to_owned(),
            sid: session.to_owned(),
            typ: kind,
            jti: id.to_owned(),
            iat,
            exp: iat + ttl.as_secs(),
        })
    }

    /// Signs any claims, including already expired ones (tests need those).
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("token signing failed: {e}")))
    }

    /// The claims of a token of this kind with a good signature that has not expired.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::Unauthenticated("the token has expired".into())
                }
                _ => Error::Unauthenticated("the token is not valid".into()),
            },
        )?;
        if data.claims.typ != kind {
            return Err(Error::Unauthenticated(format!(
                "this is not {} token",
                match kind {
                    TokenKind::Access => "an access",
                    TokenKind::Refresh => "a refresh",
                }
            )));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&[7; 32], Duration::from_secs(60), Duration::from_secs(600))
    }

    #[test]
    fn round_trip_and_kind_check() {
        let t = tokens();
        let access = t.issue_access("admin", "s1").unwrap();
        let claims = t.verify(&access, TokenKind::Access).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("admin", "s1"));
        assert!(t.verify(&access, TokenKind::Refresh).is_err());
        let refresh = t.issue_refresh("admin", "s1", "r1").unwrap();
        assert_eq!(t.verify(&refresh, TokenKind::Refresh).unwrap().jti, "r1");
    }

    #[test]
    fn refuses_tampered_foreign_and_expired_tokens() {
        let t = tokens();
        let access = t.issue_access("admin", "s1").unwrap();
        let mut tampered = access.clone().into_bytes();
        let i = tampered.len() - 3;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(
            t.verify(std::str::from_utf8(&tampered).unwrap(), TokenKind::Access)
                .is_err()
        );
        let other = Tokens::new(&[8; 32], Duration::from_secs(60), Duration::from_secs(60));
        assert!(other.verify(&access, TokenKind::Access).is_err());
        let expired = t
            .sign(&Claims {
                sub: "admin".into(),
                sid: "s1".into(),
                typ: TokenKind::Access,
                jti: String::new(),
                iat: 1,
                exp: 2,
            })
            .unwrap();
        assert_eq!(
            t.verify(&expired, TokenKind::Access).unwrap_err(),
            Error::Unauthenticated("the token has expired".into())
        );
    }
}
