//! Every kind of caller a protected route must tell apart — no token, each bad token state,
//! each level, and admins of another tenant or group — with a token for each, and what each
//! may do. The authorization tables of the REST and GraphQL tests run against these.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

/// The password of every user made here.
pub const PASSWORD: &str = "a-long-password";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Who {
    NoToken,
    Expired,
    Tampered,
    Revoked,
    DeletedUser,
    /// End User of t1/g1.
    EndUser,
    /// Group Admin of t1/g1.
    GroupAdmin,
    /// Group Admin of t1/g2.
    OtherGroupAdmin,
    /// Tenant Admin of t1.
    TenantAdmin,
    /// Tenant Admin of t2.
    OtherTenantAdmin,
    SystemAdmin,
}

pub const EVERYONE: [Who; 11] = [
    Who::NoToken,
    Who::Expired,
    Who::Tampered,
    Who::Revoked,
    Who::DeletedUser,
    Who::EndUser,
    Who::GroupAdmin,
    Who::OtherGroupAdmin,
    Who::TenantAdmin,
    Who::OtherTenantAdmin,
    Who::SystemAdmin,
];

/// Who may use a route.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// This level or above, wherever the caller belongs (16 System, 12 Tenant, 8 Group Admin).
    Level(u8),
    /// System Admin and that tenant's Tenant Admin.
    Tenant(&'static str),
    /// System Admin, the tenant's Tenant Admin and that group's Group Admin.
    Group(&'static str, &'static str),
}

impl Who {
    /// The level of a valid caller; `None` for the token states that are 401.
    pub fn level(self) -> Option<u8> {
        Some(match self {
            Who::NoToken | Who::Expired | Who::Tampered | Who::Revoked | Who::DeletedUser => {
                return None;
            }
            Who::EndUser => 0,
            Who::GroupAdmin | Who::OtherGroupAdmin => 8,
            Who::TenantAdmin | Who::OtherTenantAdmin => 12,
            Who::SystemAdmin => 16,
        })
    }

    /// The status this caller gets from a route that answers `success` to those it allows.
    pub fn expected(self, need: Need, success: StatusCode) -> StatusCode {
        let Some(level) = self.level() else {
            return StatusCode::UNAUTHORIZED;
        };
        let allowed = match (self, need) {
            (_, Need::Level(minimum)) => level >= minimum,
            (Who::SystemAdmin, _) => true,
            (Who::TenantAdmin, Need::Tenant(t) | Need::Group(t, _)) => t == "t1",
            (Who::OtherTenantAdmin, Need::Tenant(t) | Need::Group(t, _)) => t == "t2",
            (Who::GroupAdmin, Need::Group(t, g)) => (t, g) == ("t1", "g1"),
            (Who::OtherGroupAdmin, Need::Group(t, g)) => (t, g) == ("t1", "g2"),
            _ => false,
        };
        if allowed {
            success
        } else {
            StatusCode::FORBIDDEN
        }
    }
}

/// A token for each [`Who`].
pub struct Callers(Vec<(Who, Option<String>)>);

impl Callers {
    /// Makes tenants t1 and t2 with groups g1 and g2 each, and the users behind each caller.
    pub async fn create(app: &TestApp) -> Callers {
        for t in ["t1", "t2"] {
            must(
                app,
                Method::POST,
                "/api/v1/tenants/",
                json!({"tenantId": t}),
            )
            .await;
            for g in ["g1", "g2"] {
                let groups = format!("/api/v1/tenants/{t}/groups/");
                must(app, Method::POST, &groups, json!({"groupId": g})).await;
            }
        }
        let users = [
            ("end", 0, Some("t1"), Some("g1")),
            ("group", 8, Some("t1"), Some("g1")),
            ("group2", 8, Some("t1"), Some("g2")),
            ("tenant", 12, Some("t1"), None),
            ("tenant2", 12, Some("t2"), None),
            ("system", 16, None, None),
            ("gone", 16, None, None),
        ];
        for (username, level, tenant, group) in users {
            app.add_user(username, PASSWORD, level, tenant, group).await;
        }
        let system = app.login("system", PASSWORD).await;
        Callers(vec![
            (Who::NoToken, None),
            (Who::Expired, Some(app.expired_token(&system))),
            (Who::Tampered, Some(TestApp::tampered_token(&system))),
            (
                Who::Revoked,
                Some(app.revoked_token("system", PASSWORD).await),
            ),
            (
                Who::DeletedUser,
                Some(app.deleted_user_token("gone", PASSWORD).await),
            ),
            (Who::EndUser, Some(app.login("end", PASSWORD).await)),
            (Who::GroupAdmin, Some(app.login("group", PASSWORD).await)),
            (
                Who::OtherGroupAdmin,
                Some(app.login("group2", PASSWORD).await),
            ),
            (Who::TenantAdmin, Some(app.login("tenant", PASSWORD).await)),
            (
                Who::OtherTenantAdmin,
                Some(app.login("tenant2", PASSWORD).await),
            ),
            (Who::SystemAdmin, Some(system)),
        ])
    }

    pub fn token(&self, who: Who) -> Option<&str> {
        self.0
            .iter()
            .find(|(w, _)| *w == who)
            .and_then(|(_, t)| t.as_deref())
    }
}

/// One row of an authorization table: a request, who may make it, and what it answers them.
pub struct Op {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub need: Need,
    pub success: StatusCode,
}

pub fn op(method: Method, path: impl Into<String>, body: Option<Value>, need: Need) -> Op {
    Op {
        method,
        path: path.into(),
        body,
        need,
        success: StatusCode::OK,
    }
}

impl Op {
    /// The same request, answered `success` (e.g. 404 or 400) to those it allows.
    pub fn answering(self, success: StatusCode) -> Op {
        Op { success, ..self }
    }

    /// Sends it as `who`, checks the status and, for a refusal, the error's name; returns the
    /// status.
    pub async fn check(&self, app: &TestApp, callers: &Callers, who: Who) -> StatusCode {
        let (status, answer) = app
            .call(
                self.method.clone(),
                &self.path,
                callers.token(who),
                self.body.clone(),
            )
            .await;
        let want = who.expected(self.need, self.success);
        let (method, path) = (&self.method, &self.path);
        assert_eq!(status, want, "{who:?} {method} {path}: {answer}");
        let refusal = match want {
            StatusCode::UNAUTHORIZED => Some("UNAUTHENTICATED"),
            StatusCode::FORBIDDEN => Some("FORBIDDEN"),
            _ => None,
        };
        if let Some(name) = refusal {
            assert_eq!(answer["errors"][0]["name"], name, "{who:?} {method} {path}");
        }
        status
    }
}

/// As the admin; panics unless the answer is 200.
pub async fn must(app: &TestApp, method: Method, path: &str, body: Value) {
    let (status, answer) = app.admin(method.clone(), path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
}
