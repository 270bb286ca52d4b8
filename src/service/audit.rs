//! The audit trail: what each log entry says changed, and reading the log back with filters.
//!
//! An entry names each object a commit changed with its state before and after, as plain
//! JSON. Secrets never enter it: a user shows its name, level, tenant and group, never its
//! password hash; a session its user and expiry, never its id or refresh token id; the token
//! signing key only that it was set.

use serde_json::json;

use super::Service;
use crate::error::{Error, Result};
use crate::model::{Group, Level, Platform, Principal, Properties, Tenant};
use crate::store::records::{PlatformRecord, PropertiesRecord};
use crate::store::{
    AuditChange, AuditValue, Change, Entry, LogRange, Read, Sequence, State, parse_rfc3339,
};

/// The most entries one page may hold.
pub const AUDIT_PAGE_MAX: usize = 500;
/// The most entries one request reads while filtering: past it, the page ends early and its
/// cursor continues from where the reading stopped.
pub const AUDIT_SCAN_MAX: usize = 10_000;

fn platform_json(p: &Platform) -> Option<AuditValue> {
    AuditValue::of(&PlatformRecord::unversioned(p))
}

fn platform_of(r: &State, name: &str) -> Option<AuditValue> {
    platform_json(&r.platform(name).ok().flatten()?)
}

fn properties_json(p: &Properties) -> Option<AuditValue> {
    AuditValue::of(&PropertiesRecord::unversioned(p))
}

fn properties_of(r: &State) -> Option<AuditValue> {
    properties_json(&r.properties().ok()?)
}

fn user_json(user: &crate::model::User) -> Option<AuditValue> {
    AuditValue::of(&json!({
        "username": user.username,
        "level": user.level.number(),
        "tenantId": user.tenant_id,
        "groupId": user.group_id,
    }))
}

fn session_json(session: &crate::store::Session) -> Option<AuditValue> {
    AuditValue::of(&json!({ "username": session.username, "expiresAt": session.expires_at }))
}

fn name_json(name: Option<&str>) -> Option<AuditValue> {
    AuditValue::of(name?)
}

/// What the audit trail shows of a secret: that it is set, never its value.
fn secret_set() -> Option<AuditValue> {
    AuditValue::of(&json!({ "set": true }))
}

/// Before and after of every object `changes` touch, applied in order to `state`; and the
/// state they make.
pub(super) fn describe(mut state: State, changes: &[Change]) -> (Vec<AuditChange>, State) {
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        let (kind, key, old) = match change {
            Change::PutPlatform(p) => ("platform", p.name.clone(), platform_of(&state, &p.name)),
            Change::DeletePlatform(name) => ("platform", name.clone(), platform_of(&state, name)),
            Change::SetDefault(_) => (
                "default",
                String::new(),
                name_json(state.system_default().ok().flatten().as_deref()),
            ),
            Change::PutProperties(_) => ("properties", String::new(), properties_of(&state)),
            Change::PutTenant(t) => (
                "tenant",
                t.tenant_id.clone(),
                tenant_of(&state, &t.tenant_id),
            ),
            Change::DeleteTenant(id) => ("tenant", id.clone(), tenant_of(&state, id)),
            Change::PutGroup(g) => ("group", group_key(&g.key()), group_of(&state, &g.key())),
            Change::DeleteGroup(k) => ("group", group_key(k), group_of(&state, k)),
            Change::PutUser(u) => ("user", u.username.clone(), user_of(&state, &u.username)),
            Change::DeleteUser(name) => ("user", name.clone(), user_of(&state, name)),
            Change::PutSession(s) => ("session", s.username.clone(), session_of(&state, &s.id)),
            Change::DeleteSession(id) => {
                let old = session_of(&state, id);
                let user = state
                    .session(id)
                    .ok()
                    .flatten()
                    .map(|s| s.username)
                    .unwrap_or_default();
                ("session", user, old)
            }
            Change::PutSecret(name, _) => (
                "secret",
                name.clone(),
                state.secret(name).ok().flatten().and_then(|_| secret_set()),
            ),
        };
        state.apply(change);
        // What a change puts is what the state holds after it.
        let new = match change {
            Change::SetDefault(name) => name_json(name.as_deref()),
            Change::PutProperties(p) => properties_json(p),
            Change::PutPlatform(p) => platform_json(p),
            Change::PutTenant(t) => tenant_json(t),
            Change::PutGroup(g) => group_json(g),
            Change::PutUser(u) => user_json(u),
            Change::PutSession(s) => session_json(s),
            Change::PutSecret(..) => secret_set(),
            _ => None,
        };
        out.push(AuditChange {
            kind: kind.into(),
            key,
            before: old,
            after: new,
        });
    }
    (out, state)
}

fn group_key(k: &crate::model::GroupRef) -> String {
    format!("{}/{}", k.tenant_id, k.group_id)
}

fn tenant_json(t: &Tenant) -> Option<AuditValue> {
    AuditValue::of(&json!({ "tenantId": t.tenant_id }))
}

fn tenant_of(r: &State, id: &str) -> Option<AuditValue> {
    tenant_json(&r.tenant(id).ok().flatten()?)
}

fn group_json(g: &Group) -> Option<AuditValue> {
    AuditValue::of(
        &json!({ "tenantId": g.tenant_id, "groupId": g.group_id, "platform": g.platform }),
    )
}

fn group_of(r: &State, k: &crate::model::GroupRef) -> Option<AuditValue> {
    group_json(&r.group(k).ok().flatten()?)
}

fn user_of(r: &State, name: &str) -> Option<AuditValue> {
    user_json(&r.user(name).ok().flatten()?)
}

fn session_of(r: &State, id: &str) -> Option<AuditValue> {
    session_json(&r.session(id).ok().flatten()?)
}

/// What to read of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// At most this many entries (1–[`AUDIT_PAGE_MAX`]).
    pub limit: usize,
    /// Entries after this cursor (oldest first).
    pub after: Option<String>,
    /// Entries before this cursor; with `newest`, the newest of them.
    pub before: Option<String>,
    /// The newest entries matching, instead of the oldest.
    pub newest: bool,
    pub actor: Option<String>,
    pub platform: Option<String>,
    /// RFC 3339; inclusive.
    pub since: Option<String>,
    /// RFC 3339; exclusive.
    pub until: Option<String>,
}

/// One page of the audit trail, oldest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<Entry>,
    /// Where reading stopped, when more entries lie beyond it in the reading direction (newer
    /// ones, or with `newest` older ones): the cursor the next page is read from.
    pub next: Option<String>,
}

fn parse_cursor(field: &str, text: &str) -> Result<Sequence> {
    text.parse::<u64>()
        .map(Sequence)
        .map_err(|_| Error::invalid(field, format!("{field} {text:?} is not an audit cursor")))
}

fn parse_time(field: &str, text: &str) -> Result<i64> {
    parse_rfc3339(text).ok_or_else(|| {
        Error::invalid(
            field,
            format!("{field} must be an RFC 3339 time such as 2026-01-31T12:00:00Z"),
        )
    })
}

/// Log entries removed by one store call while pruning, so that writers are not held up long.
const PRUNE_BATCH: usize = 1_000;

impl Service {
    /// Removes the log entries made before `before`, a batch at a time. Run in the
    /// background, never for a request.
    pub async fn prune_log(&self, before: std::time::SystemTime) -> Result<usize> {
        let before_ms = before
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut removed = 0;
        loop {
            let n = self.spine.store.prune(before_ms, PRUNE_BATCH).await?;
            removed += n;
            if n < PRUNE_BATCH {
                return Ok(removed);
            }
            tokio::task::yield_now().await;
        }
    }

    /// A page of the audit trail (System Admin). Reads at most [`AUDIT_SCAN_MAX`] entries, so
    /// a filter that matches little ends a page early with a cursor to continue from.
    pub async fn audit_log(&self, who: &Principal, query: &AuditQuery) -> Result<AuditPage> {
        who.require(Level::SystemAdmin)?;
        if !(1..=AUDIT_PAGE_MAX).contains(&query.limit) {
            return Err(Error::invalid(
                "limit",
                format!("limit must be between 1 and {AUDIT_PAGE_MAX}"),
            ));
        }
        let after = query
            .after
            .as_deref()
            .map(|c| parse_cursor("after", c))
            .transpose()?;
        let before = query
            .before
            .as_deref()
            .map(|c| parse_cursor("before", c))
            .transpose()?;
        let since = query
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?;
        let until = query
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?;
        let keep = |e: &Entry| {
            query.actor.as_deref().is_none_or(|a| e.actor == a)
                && query
                    .platform
                    .as_deref()
                    .is_none_or(|p| e.touches_platform(p))
                && since.is_none_or(|s| e.at_ms >= s)
                && until.is_none_or(|u| e.at_ms < u)
        };
        // Up to the newest state, as every other read (and the answers kept for it).
        let head = self.position();
        let end = before.map_or(head.next(), |b| b.min(head.next()));
        let mut range = LogRange {
            after: after.unwrap_or_default(),
            before: Some(end),
            limit: 0,
            newest_first: query.newest,
        };
        let mut entries = Vec::new();
        let mut scanned = 0;
        let mut exhausted = false;
        let mut last_read: Option<Sequence> = None;
        while entries.len() < query.limit && scanned < AUDIT_SCAN_MAX {
            range.limit = (AUDIT_SCAN_MAX - scanned).min(256);
            let batch = self.spine.store.entries(range).await?;
            if batch.is_empty() {
                exhausted = true;
                break;
            }
            scanned += batch.len();
            for entry in batch {
                let sequence = entry.sequence();
                if query.newest {
                    range.before = Some(sequence);
                } else {
                    range.after = sequence;
                }
                last_read = Some(sequence);
                if keep(&entry) {
                    entries.push(entry);
                    if entries.len() == query.limit {
                        break;
                    }
                }
            }
        }
        if query.newest {
            entries.reverse();
        }
        // One more look tells whether anything lies beyond the last entry read.
        let more = !exhausted
            && match last_read {
                Some(_) => !self
                    .spine
                    .store
                    .entries(LogRange { limit: 1, ..range })
                    .await?
                    .is_empty(),
                None => false,
            };
        Ok(AuditPage {
            next: last_read.filter(|_| more).map(|s| s.0.to_string()),
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::describe;
    use crate::model::{MediaStream, Platform, Properties, SchemaVersion, TransportProtocol};
    use crate::store::{Change, Entry, Read, Sequence, State};

    fn platform(description: &str) -> Platform {
        Platform {
            name: "P1".into(),
            net_address: "10.0.32.55".into(),
            port: Some(222),
            media_stream: MediaStream::Dual,
            transport_protocol: TransportProtocol::Udp,
            description: Some(description.into()),
            schema_version: SchemaVersion::V1_0,
            support_video_recording: false,
        }
    }

    fn shown(description: &str) -> serde_json::Value {
        json!({
            "name": "P1", "netAddress": "10.0.32.55", "port": 222, "mediaStream": "Dual",
            "transportProtocol": "UDP", "description": description, "schemaVersion": "1.0",
            "supportVideoRecording": false,
        })
    }

    #[test]
    fn objects_are_shown_with_their_fields_and_no_format_version() {
        let mut state = State::default();
        state.apply(&Change::PutPlatform(platform("old")));
        let changes = [
            Change::PutPlatform(platform("new")),
            Change::SetDefault(Some("P1".into())),
            Change::PutProperties(Properties {
                refresh_period_seconds: 90,
                ..Properties::default()
            }),
        ];
        let (described, next) = describe(state, &changes);
        let values: Vec<_> = described
            .iter()
            .map(|c| {
                (
                    c.before.as_ref().map(|v| v.value()),
                    c.after.as_ref().map(|v| v.value()),
                )
            })
            .collect();
        assert_eq!(values[0], (Some(shown("old")), Some(shown("new"))));
        assert_eq!(values[1], (None, Some(json!("P1"))));
        // A new store reads as the default properties.
        let (before, after) = values[2].clone();
        let (before, after) = (before.expect("before"), after.expect("after"));
        assert_eq!(
            before["refreshPeriodSeconds"],
            json!(Properties::default().refresh_period_seconds)
        );
        assert_eq!(after["refreshPeriodSeconds"], json!(90));
        assert!(after.get("v").is_none(), "{after}");
        assert_eq!(next.platform("P1").unwrap(), Some(platform("new")));

        // Stored and read back as the same text.
        let mut entry = Entry::new(Sequence(1), 0, "admin", "modifyPlatform");
        entry.changes = described;
        let stored = serde_json::to_vec(&entry).unwrap();
        let read: Entry = serde_json::from_slice(&stored).unwrap();
        assert_eq!(read, entry);
        let text = String::from_utf8(stored).unwrap();
        let after = format!(r#""after":{}"#, shown("new"));
        assert!(
            text.contains(&after),
            "{text} lists {after} in another order"
        );
    }
}
