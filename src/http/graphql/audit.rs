//! `auditLog`: the change log as a cursor connection.

use async_graphql::{Json, SimpleObject};

use crate::service::AuditPage;
use crate::store::Entry;

/// One object a commit changed, with its state before and after.
#[derive(SimpleObject)]
pub struct AuditChange {
    /// `platform`, `default`, `properties`, `tenant`, `group`, `user`, `session` or `secret`.
    pub kind: String,
    /// The object's key (a group's is `tenantId/groupId`; the default's and the properties'
    /// are empty).
    pub key: String,
    /// The object before the commit; null when it did not exist.
    pub before: Option<Json<serde_json::Value>>,
    /// The object after the commit; null when it no longer exists.
    pub after: Option<Json<serde_json::Value>>,
}

/// One commit of the change log.
#[derive(SimpleObject)]
pub struct AuditEntry {
    /// The commit's place in the log: gap-free and increasing.
    pub sequence: u64,
    /// When it was committed, RFC 3339 UTC.
    pub at: String,
    pub actor: String,
    /// The `x-request-id` of the request that made it.
    pub request_id: Option<String>,
    /// What was asked, e.g. `modifyPlatform`, `assignGroupPlatform`, `login`.
    pub operation: String,
    pub changes: Vec<AuditChange>,
}

#[derive(SimpleObject)]
pub struct AuditLogEdge {
    pub cursor: String,
    pub node: AuditEntry,
}

/// Where a page of a connection is.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More entries follow (reading forward with `first`).
    pub has_next_page: bool,
    /// More entries precede (reading backward with `last`).
    pub has_previous_page: bool,
    /// Read the previous page with `last` and `before: startCursor`.
    pub start_cursor: Option<String>,
    /// Read the next page with `first` and `after: endCursor`.
    pub end_cursor: Option<String>,
}

/// A page of the change log, oldest first.
#[derive(SimpleObject)]
pub struct AuditLogConnection {
    pub edges: Vec<AuditLogEdge>,
    pub page_info: PageInfo,
}

fn edge(e: Entry) -> AuditLogEdge {
    AuditLogEdge {
        cursor: e.sequence.to_string(),
        node: AuditEntry {
            sequence: e.sequence,
            at: e.at,
            actor: e.actor,
            request_id: e.request_id,
            operation: e.operation,
            changes: e
                .changes
                .into_iter()
                .map(|c| AuditChange {
                    kind: c.kind,
                    key: c.key,
                    before: c.before.map(|v| Json(v.value())),
                    after: c.after.map(|v| Json(v.value())),
                })
                .collect(),
        },
    }
}

impl AuditLogConnection {
    /// A page read forward (`backward` false) or from the newest end (`backward` true). The
    /// cursor on the side reading continues from is where reading stopped, which a filter may
    /// have taken past the last edge.
    pub fn of(page: AuditPage, backward: bool) -> AuditLogConnection {
        let edges: Vec<AuditLogEdge> = page.entries.into_iter().map(edge).collect();
        let first = edges.first().map(|e| e.cursor.clone());
        let last = edges.last().map(|e| e.cursor.clone());
        let more = page.next.is_some();
        let page_info = if backward {
            PageInfo {
                has_next_page: false,
                has_previous_page: more,
                start_cursor: page.next.or(first),
                end_cursor: last,
            }
        } else {
            PageInfo {
                has_next_page: more,
                has_previous_page: false,
                start_cursor: first,
                end_cursor: page.next.or(last),
            }
        };
        AuditLogConnection { edges, page_info }
    }
}
