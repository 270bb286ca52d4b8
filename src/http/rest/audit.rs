//! `/api/v1/audit/`: the change log read back, oldest first, a page at a time.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Caller, QueryParams};
use crate::http::state::AppState;
use crate::service::AuditQuery;
use crate::store::{AuditValue, Entry};

const DEFAULT_LIMIT: usize = 50;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries per page, 1–500 (50 when absent).
    limit: Option<i64>,
    /// The `next` of the previous page, or the `cursor` of an entry: entries after it.
    after: Option<String>,
    /// Only entries made by this user (`system` for the server's own).
    actor: Option<String>,
    /// Only entries that changed this platform: added, modified, deleted, made or unmade
    /// default, groups assigned to or from it.
    platform: Option<String>,
    /// Only entries made at or after this time (RFC 3339).
    since: Option<String>,
    /// Only entries made before this time (RFC 3339).
    until: Option<String>,
}

/// One object a commit changed.
#[derive(Serialize, ToSchema)]
pub struct AuditChangeBody {
    /// `platform`, `default`, `properties`, `tenant`, `group`, `user`, `session` or `secret`.
    kind: String,
    /// The object's key (a group's is `tenantId/groupId`; the default's and the
    /// properties' are empty).
    key: String,
    /// The object before the commit (the default: its platform name); null when it did not
    /// exist.
    #[schema(value_type = Option<serde_json::Value>)]
    before: Option<AuditValue>,
    /// The object after the commit (the default: its platform name); null when it no longer
    /// exists.
    #[schema(value_type = Option<serde_json::Value>)]
    after: Option<AuditValue>,
}

/// One commit.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryBody {
    /// Pass as `after` to read the entries after this one.
    cursor: String,
    /// The commit's place in the log: gap-free and increasing.
    sequence: u64,
    /// When it was committed, RFC 3339 UTC.
    at: String,
    actor: String,
    /// The `x-request-id` of the request that made it.
    request_id: Option<String>,
    /// What was asked, e.g. `modifyPlatform`, `assignGroupPlatform`, `login`.
    operation: String,
    changes: Vec<AuditChangeBody>,
}

impl From<Entry> for AuditEntryBody {
    fn from(e: Entry) -> Self {
        AuditEntryBody {
            cursor: e.sequence.to_string(),
            sequence: e.sequence,
            at: e.at,
            actor: e.actor,
            request_id: e.request_id,
            operation: e.operation,
            changes: e
                .changes
                .into_iter()
                .map(|c| AuditChangeBody {
                    kind: c.kind,
                    key: c.key,
                    before: c.before,
                    after: c.after,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPageBody {
    entries: Vec<AuditEntryBody>,
    /// The cursor of the next page; null at the end of the log.
    next: Option<String>,
}

/// The audit trail: every commit, oldest first, starting at the oldest retained entry (System
/// Admin).
#[utoipa::path(operation_id = "getAuditLog", get, path = "/api/v1/audit/", tag = "audit",
    security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = AuditPageBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(who): Caller,
    QueryParams(params): QueryParams<AuditParams>,
) -> Result<Json<AuditPageBody>, ApiError> {
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        // Out of range values are refused by the service with the range in the message.
        Some(n) => usize::try_from(n).unwrap_or(0),
    };
    let query = AuditQuery {
        limit,
        after: params.after,
        actor: params.actor,
        platform: params.platform,
        since: params.since,
        until: params.until,
        ..AuditQuery::default()
    };
    let page = s.service.audit_log(&who, &query).await?;
    Ok(Json(AuditPageBody {
        entries: page.entries.into_iter().map(Into::into).collect(),
        next: page.next,
    }))
}
