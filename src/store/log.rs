//! The change log: one entry per commit, appended in the same atomic write as its changes.
//! Its sequence numbers are gap-free and give the order of commits; they are the only position
//! the service knows (caches, event cursors and audit cursors are all sequences).

use serde::{Deserialize, Serialize};

use super::records::{GroupKeyRecord, PlatformRecord, PropertiesRecord, RECORD_VERSION};

/// A position in the log: the sequence of the last entry included (0 before the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sequence(pub u64);

impl Sequence {
    pub fn next(self) -> Sequence {
        Sequence(self.0 + 1)
    }
}

impl std::fmt::Display for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn first_version() -> u32 {
    1
}

/// One commit as the log keeps it. Never holds a password, hash, token or secret: what is
/// secret is left out of `changes` when the entry is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(default = "first_version")]
    pub v: u32,
    pub sequence: u64,
    /// Server time of the commit, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// The same instant in Unix milliseconds, for time filters and retention.
    pub at_ms: i64,
    pub actor: String,
    pub request_id: Option<String>,
    pub operation: String,
    pub changes: Vec<AuditChange>,
    /// What subscribers are told of this commit, in order.
    pub events: Vec<EventRecord>,
}

impl Entry {
    pub fn new(sequence: Sequence, at_ms: i64, actor: &str, operation: &str) -> Entry {
        Entry {
            v: RECORD_VERSION,
            sequence: sequence.0,
            at: rfc3339_millis(at_ms),
            at_ms,
            actor: actor.to_owned(),
            request_id: None,
            operation: operation.to_owned(),
            changes: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn sequence(&self) -> Sequence {
        Sequence(self.sequence)
    }

    /// Whether this commit touched the platform: added, modified or deleted it, made it or
    /// unmade it the default, or assigned a group to or from it.
    pub fn touches_platform(&self, name: &str) -> bool {
        self.changes.iter().any(|c| c.names_platform(name))
    }
}

/// One object a commit changed: its kind, its key, and its state before and after (absent
/// when it did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditChange {
    pub kind: String,
    pub key: String,
    pub before: Option<AuditValue>,
    pub after: Option<AuditValue>,
}

/// An object's state in an audit change: JSON text, written once when the entry is made and
/// copied as it is into what is stored and what is read back, so that a write never builds a
/// JSON tree for its audit entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuditValue(Box<serde_json::value::RawValue>);

impl AuditValue {
    /// `value` as JSON; `None` only for what JSON cannot hold (a map with keys that are not
    /// strings), which no audited object has.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Option<AuditValue> {
        serde_json::value::to_raw_value(value).ok().map(AuditValue)
    }

    /// The JSON as a tree, for what looks into it (filters, GraphQL's `JSON`).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

/// Equal when the text is: entries read back are compared with what was written.
impl PartialEq for AuditValue {
    fn eq(&self, other: &AuditValue) -> bool {
        self.0.get() == other.0.get()
    }
}

impl AuditChange {
    fn names_platform(&self, name: &str) -> bool {
        // Whether `v`, or its `field`, is the string `name`.
        let names = |v: &Option<AuditValue>, field: Option<&str>| {
            v.as_ref().is_some_and(|v| {
                let v = v.value();
                let v = field.map_or(&v, |f| &v[f]);
                v.as_str() == Some(name)
            })
        };
        match self.kind.as_str() {
            "platform" => self.key == name,
            "default" => names(&self.before, None) || names(&self.after, None),
            "group" => {
                names(&self.before, Some("platform")) || names(&self.after, Some("platform"))
            }
            _ => false,
        }
    }
}

/// An event as the log keeps it (the service turns it into what subscribers see).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum EventRecord {
    #[serde(rename_all = "camelCase")]
    PlatformAdded {
        platform: PlatformRecord,
        is_default: bool,
    },
    #[serde(rename_all = "camelCase")]
    PlatformModified {
        platform: PlatformRecord,
        is_default: bool,
    },
    PlatformDeleted {
        name: String,
    },
    DefaultChanged {
        previous: Option<String>,
        current: Option<String>,
    },
    PropertiesModified {
        properties: PropertiesRecord,
    },
    GroupAssigned {
        group: GroupKeyRecord,
        previous: Option<String>,
        platform: Option<String>,
    },
}

/// Which entries to read: those after `after` and before `before`, oldest first, or the
/// newest of them first with `newest_first`.
#[derive(Debug, Clone, Copy)]
pub struct LogRange {
    pub after: Sequence,
    pub before: Option<Sequence>,
    pub limit: usize,
    pub newest_first: bool,
}

impl LogRange {
    pub fn after(after: Sequence, limit: usize) -> LogRange {
        LogRange {
            after,
            before: None,
            limit,
            newest_first: false,
        }
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-30T12:00:00.000Z`.
pub fn rfc3339_millis(at_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap_or_default()
}

/// Parses an RFC 3339 time (any offset) into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
