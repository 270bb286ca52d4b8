//! A commit's changes as rows, and the objects a log entry names so that another gateway can
//! read them back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::db_error;
use crate::error::{Error, Result};
use crate::model::{Group, GroupRef, Platform, Properties, Tenant, User};
use crate::store::records::{
    GroupRecord, PlatformRecord, PropertiesRecord, SessionRecord, TenantRecord, UserRecord,
};
use crate::store::{Change, Session};

const DEFAULT: &str = "default";
const PROPERTIES: &str = "properties";

/// One object a commit changed, by its key (the log entry's own description leaves secrets
/// and session ids out, so it cannot serve to find them). Stored as JSON in
/// `change_log.touched`, where [`CATCH_UP`] reads `kind` and the key fields by these names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(super) enum Touched {
    Platform {
        name: String,
    },
    Default,
    Properties,
    #[serde(rename_all = "camelCase")]
    Tenant {
        tenant_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Group {
        tenant_id: String,
        group_id: String,
    },
    User {
        username: String,
    },
    Session {
        id: String,
    },
    Secret {
        name: String,
    },
}

impl Touched {
    pub(super) fn of(change: &Change) -> Touched {
        match change {
            Change::PutPlatform(p) => Touched::Platform {
                name: p.name.clone(),
            },
            Change::DeletePlatform(name) => Touched::Platform { name: name.clone() },
            Change::SetDefault(_) => Touched::Default,
            Change::PutProperties(_) => Touched::Properties,
            Change::PutTenant(t) => Touched::Tenant {
                tenant_id: t.tenant_id.clone(),
            },
            Change::DeleteTenant(id) => Touched::Tenant {
                tenant_id: id.clone(),
            },
            Change::PutGroup(g) => Touched::Group {
                tenant_id: g.tenant_id.clone(),
                group_id: g.group_id.clone(),
            },
            Change::DeleteGroup(k) => Touched::Group {
                tenant_id: k.tenant_id.clone(),
                group_id: k.group_id.clone(),
            },
            Change::PutUser(u) => Touched::User {
                username: u.username.clone(),
            },
            Change::DeleteUser(name) => Touched::User {
                username: name.clone(),
            },
            Change::PutSession(s) => Touched::Session { id: s.id.clone() },
            Change::DeleteSession(id) => Touched::Session { id: id.clone() },
            Change::PutSecret(name, _) => Touched::Secret { name: name.clone() },
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} is unreadable: {e}"))
}

/// A record from its JSON text.
pub(super) fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(super) fn record<T: serde::de::DeserializeOwned>(
    what: &str,
    value: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(value).map_err(|e| corrupt(what, e))
}

/// The rows of one table keyed by one text column: what to write and what to remove.
#[derive(Default)]
struct Keyed<V> {
    keys: Vec<String>,
    values: Vec<V>,
    removed: Vec<String>,
}

impl<V> Keyed<V> {
    fn put(&mut self, key: &str, value: V) {
        self.keys.push(key.to_owned());
        self.values.push(value);
    }

    fn remove(&mut self, key: &str) {
        self.removed.push(key.to_owned());
    }
}

impl<V> Keyed<V>
where
    V: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    V: sqlx::postgres::PgHasArrayType + Send + 'static,
{
    /// At most two terms: one upsert of every row written, one delete of every row removed.
    /// `table`, `key` and `value` are this module's constants.
    fn push_terms(
        self,
        statement: &mut QueryBuilder<'static, Postgres>,
        table: &str,
        key: &str,
        value: &str,
        sql_type: &str,
    ) {
        if !self.keys.is_empty() {
            statement.push(format!(
                ", {table}_put AS (INSERT INTO {table} ({key}, {value}) \
                 SELECT r.k, r.v FROM head, unnest("
            ));
            statement.push_bind(self.keys);
            statement.push("::text[], ");
            statement.push_bind(self.values);
            statement.push(format!(
                "::{sql_type}[]) AS r(k, v) \
                 ON CONFLICT ({key}) DO UPDATE SET {value} = EXCLUDED.{value})"
            ));
        }
        if !self.removed.is_empty() {
            statement.push(format!(
                ", {table}_gone AS (DELETE FROM {table} WHERE {key} = ANY("
            ));
            statement.push_bind(self.removed);
            statement.push(") AND EXISTS (SELECT FROM head))");
        }
    }
}

/// Groups, keyed by two columns.
#[derive(Default)]
struct Groups {
    tenants: Vec<String>,
    groups: Vec<String>,
    records: Vec<serde_json::Value>,
    removed_tenants: Vec<String>,
    removed_groups: Vec<String>,
}

impl Groups {
    fn push_terms(self, statement: &mut QueryBuilder<'static, Postgres>) {
        if !self.records.is_empty() {
            statement.push(
                ", groups_put AS (INSERT INTO groups (tenant_id, group_id, record) \
                 SELECT r.t, r.g, r.v FROM head, unnest(",
            );
            statement.push_bind(self.tenants);
            statement.push("::text[], ");
            statement.push_bind(self.groups);
            statement.push("::text[], ");
            statement.push_bind(self.records);
            statement.push(
                "::jsonb[]) AS r(t, g, v) \
                 ON CONFLICT (tenant_id, group_id) DO UPDATE SET record = EXCLUDED.record)",
            );
        }
        if !self.removed_groups.is_empty() {
            statement.push(", groups_gone AS (DELETE FROM groups USING head, unnest(");
            statement.push_bind(self.removed_tenants);
            statement.push("::text[], ");
            statement.push_bind(self.removed_groups);
            statement
                .push("::text[]) AS gone(t, g) WHERE tenant_id = gone.t AND group_id = gone.g)");
        }
    }
}

/// The rows that changes leave, in order: a commit's, a batch of commits', or an import's.
/// Each row ends as the last change of its object leaves it, so they are written by one
/// term per table and kind, whatever their number.
#[derive(Default)]
pub(super) struct Writes {
    platforms: Keyed<serde_json::Value>,
    settings: Keyed<serde_json::Value>,
    tenants: Keyed<serde_json::Value>,
    groups: Groups,
    users: Keyed<serde_json::Value>,
    sessions: Keyed<serde_json::Value>,
    secrets: Keyed<Vec<u8>>,
}

impl Writes {
    pub(super) fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Result<Writes> {
        let mut last = BTreeMap::new();
        for change in changes {
            last.insert(Touched::of(change), change);
        }
        let mut w = Writes::default();
        for change in last.into_values() {
            match change {
                Change::PutPlatform(p) => w.platforms.put(&p.name, json(&PlatformRecord::from(p))?),
                Change::DeletePlatform(name) => w.platforms.remove(name),
                Change::SetDefault(Some(name)) => w
                    .settings
                    .put(DEFAULT, serde_json::Value::from(name.as_str())),
                Change::SetDefault(None) => w.settings.remove(DEFAULT),
                Change::PutProperties(p) => w
                    .settings
                    .put(PROPERTIES, json(&PropertiesRecord::from(p))?),
                Change::PutTenant(t) => w.tenants.put(&t.tenant_id, json(&TenantRecord::from(t))?),
                Change::DeleteTenant(id) => w.tenants.remove(id),
                Change::PutGroup(g) => {
                    w.groups.tenants.push(g.tenant_id.clone());
                    w.groups.groups.push(g.group_id.clone());
                    w.groups.records.push(json(&GroupRecord::from(g))?);
                }
                Change::DeleteGroup(k) => {
                    w.groups.removed_tenants.push(k.tenant_id.clone());
                    w.groups.removed_groups.push(k.group_id.clone());
                }
                Change::PutUser(u) => w.users.put(&u.username, json(&UserRecord::from(u))?),
                Change::DeleteUser(name) => w.users.remove(name),
                Change::PutSession(s) => w.sessions.put(&s.id, json(&SessionRecord::from(s))?),
                Change::DeleteSession(id) => w.sessions.remove(id),
                Change::PutSecret(name, value) => w.secrets.put(name, value.clone()),
            }
        }
        Ok(w)
    }

    /// Appends the writes to a statement begun with a `head` term: one data-modifying term per
    /// table and kind with rows to write, each joined with `head`, so that nothing is written
    /// when `head` has no row. Terms on different tables never touch the same row, and a row
    /// is written once, so they do not see each other.
    pub(super) fn push_terms(self, statement: &mut QueryBuilder<'static, Postgres>) {
        self.platforms
            .push_terms(statement, "platforms", "name", "record", "jsonb");
        self.settings
            .push_terms(statement, "settings", "name", "record", "jsonb");
        self.tenants
            .push_terms(statement, "tenants", "tenant_id", "record", "jsonb");
        self.groups.push_terms(statement);
        self.users
            .push_terms(statement, "users", "username", "record", "jsonb");
        self.sessions
            .push_terms(statement, "sessions", "id", "record", "jsonb");
        self.secrets
            .push_terms(statement, "secrets", "name", "value", "bytea");
    }
}

/// Applies changes (an import's) as one statement, in the caller's transaction: its `head`
/// always has a row, as the import has checked the log is empty.
pub(super) async fn apply_all<'a>(
    conn: &mut PgConnection,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<()> {
    let mut statement = QueryBuilder::new("WITH head AS (SELECT 1)");
    Writes::of(changes)?.push_terms(&mut statement);
    statement.push(" SELECT 1");
    statement.build().execute(conn).await.map_err(db_error)?;
    Ok(())
}

/// Every object stored, as the changes that make a state of them (in one transaction).
pub(super) async fn everything(conn: &mut PgConnection) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for row in fetch(conn, "SELECT record FROM platforms ORDER BY name").await? {
        let p: PlatformRecord = record("platform", row.get(0))?;
        out.push(Change::PutPlatform(Platform::from(p)));
    }
    for row in fetch(conn, "SELECT name, record FROM settings ORDER BY name").await? {
        out.extend(setting(row.get(0), row.get(1))?);
    }
    for row in fetch(conn, "SELECT record FROM tenants ORDER BY tenant_id").await? {
        let t: TenantRecord = record("tenant", row.get(0))?;
        out.push(Change::PutTenant(Tenant::from(t)));
    }
    for row in fetch(
        conn,
        "SELECT record FROM groups ORDER BY tenant_id, group_id",
    )
    .await?
    {
        let g: GroupRecord = record("group", row.get(0))?;
        out.push(Change::PutGroup(Group::from(g)));
    }
    for row in fetch(conn, "SELECT record FROM users ORDER BY username").await? {
        let u: UserRecord = record("user", row.get(0))?;
        out.push(Change::PutUser(User::try_from(u)?));
    }
    for row in fetch(conn, "SELECT record FROM sessions ORDER BY id").await? {
        let s: SessionRecord = record("session", row.get(0))?;
        out.push(Change::PutSession(Session::from(s)));
    }
    for row in fetch(conn, "SELECT name, value FROM secrets ORDER BY name").await? {
        out.push(Change::PutSecret(row.get(0), row.get(1)));
    }
    Ok(out)
}

async fn fetch(conn: &mut PgConnection, sql: &str) -> Result<Vec<sqlx::postgres::PgRow>> {
    sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)
}

fn setting(name: String, value: serde_json::Value) -> Result<Option<Change>> {
    Ok(match name.as_str() {
        DEFAULT => Some(Change::SetDefault(Some(record("default", value)?))),
        PROPERTIES => {
            let p: PropertiesRecord = record("properties", value)?;
            Some(Change::PutProperties(Properties::from(p)))
        }
        _ => None,
    })
}

/// What a catch-up reads, as one statement: one snapshot, so all of it is at one log
/// position, and one round trip, which every gateway that follows another's commits waits
/// for before the commit can be acknowledged. Its rows, by `part`: the head (`sequence`); each
/// entry after `$1` up to the head (`sequence`, `entry`, `record` = its touched objects); the
/// current row of each object those entries touched, found by its key (`k1`, and `k2` for a
/// group), whatever their number (a batch of writes to 64 platforms is one index probe each,
/// not a round trip each).
pub(super) const CATCH_UP: &str = "\
    WITH head AS (SELECT sequence FROM log_head), \
    entries AS MATERIALIZED ( \
      SELECT sequence, entry, touched FROM change_log \
      WHERE sequence > $1 AND sequence <= (SELECT sequence FROM head)), \
    keys AS MATERIALIZED ( \
      SELECT DISTINCT t->>'kind' AS kind, \
        coalesce(t->>'name', t->>'tenantId', t->>'username', t->>'id', t->>'kind') AS k1, \
        t->>'groupId' AS k2 \
      FROM entries, jsonb_array_elements(entries.touched) AS t) \
    SELECT 0 AS part, sequence, NULL::text AS k1, NULL::text AS k2, NULL::text AS entry, \
      NULL::text AS record, NULL::bytea AS value FROM head \
    UNION ALL SELECT 1, sequence, NULL, NULL, entry::text, touched::text, NULL FROM entries \
    UNION ALL SELECT 2, NULL, r.name, NULL, NULL, r.record::text, NULL \
      FROM keys k JOIN platforms r ON r.name = k.k1 WHERE k.kind = 'platform' \
    UNION ALL SELECT 3, NULL, r.name, NULL, NULL, r.record::text, NULL \
      FROM keys k JOIN settings r ON r.name = k.k1 WHERE k.kind IN ('default', 'properties') \
    UNION ALL SELECT 4, NULL, r.tenant_id, NULL, NULL, r.record::text, NULL \
      FROM keys k JOIN tenants r ON r.tenant_id = k.k1 WHERE k.kind = 'tenant' \
    UNION ALL SELECT 5, NULL, r.tenant_id, r.group_id, NULL, r.record::text, NULL \
      FROM keys k JOIN groups r ON r.tenant_id = k.k1 AND r.group_id = k.k2 \
      WHERE k.kind = 'group' \
    UNION ALL SELECT 6, NULL, r.username, NULL, NULL, r.record::text, NULL \
      FROM keys k JOIN users r ON r.username = k.k1 WHERE k.kind = 'user' \
    UNION ALL SELECT 7, NULL, r.id, NULL, NULL, r.record::text, NULL \
      FROM keys k JOIN sessions r ON r.id = k.k1 WHERE k.kind = 'session' \
    UNION ALL SELECT 8, NULL, r.name, NULL, NULL, NULL, r.value \
      FROM keys k JOIN secrets r ON r.name = k.k1 WHERE k.kind = 'secret'";

/// The `part` of a [`CATCH_UP`] row.
pub(super) enum Part {
    Head(i64),
    /// An entry's sequence, text and touched objects.
    Entry(i64, String, String),
    /// An object's current row, kept in [`Current`].
    Object,
}

/// The current rows of the touched objects, as a catch-up found them.
#[derive(Default)]
pub(super) struct Current {
    rows: BTreeMap<(&'static str, String), String>,
    groups: BTreeMap<(String, String), String>,
    secrets: BTreeMap<String, Vec<u8>>,
}

impl Current {
    /// Takes one row of [`CATCH_UP`].
    pub(super) fn take(&mut self, row: &sqlx::postgres::PgRow) -> Result<Part> {
        let part: i32 = row.try_get(0).map_err(db_error)?;
        let text = |i| row.try_get::<Option<String>, _>(i).map_err(db_error);
        let key = || text(2)?.ok_or_else(|| corrupt("catch-up row", "no key"));
        let record = || text(5)?.ok_or_else(|| corrupt("catch-up row", "no record"));
        let table = match part {
            0 => return Ok(Part::Head(row.try_get(1).map_err(db_error)?)),
            1 => {
                let entry = text(4)?.ok_or_else(|| corrupt("log entry", "no text"))?;
                return Ok(Part::Entry(
                    row.try_get(1).map_err(db_error)?,
                    entry,
                    record()?,
                ));
            }
            2 => PLATFORMS,
            3 => SETTINGS,
            4 => TENANTS,
            5 => {
                let group = text(3)?.ok_or_else(|| corrupt("catch-up row", "no group id"))?;
                self.groups.insert((key()?, group), record()?);
                return Ok(Part::Object);
            }
            6 => USERS,
            7 => SESSIONS,
            8 => {
                let value: Option<Vec<u8>> = row.try_get(6).map_err(db_error)?;
                let value = value.ok_or_else(|| corrupt("catch-up row", "no secret"))?;
                self.secrets.insert(key()?, value);
                return Ok(Part::Object);
            }
            _ => return Err(corrupt("catch-up row", format!("part {part}"))),
        };
        self.rows.insert((table, key()?), record()?);
        Ok(Part::Object)
    }
}

/// The current state of each touched object, as the change that puts it (or deletes it when
/// it is gone).
pub(super) fn current(touched: &BTreeSet<Touched>, found: Current) -> Result<Vec<Change>> {
    let Current {
        mut rows,
        mut groups,
        mut secrets,
    } = found;
    let mut take = |kind: &'static str, key: &str| rows.remove(&(kind, key.to_owned()));
    let mut out = Vec::with_capacity(touched.len());
    for t in touched {
        let change = match t {
            Touched::Platform { name } => match take(PLATFORMS, name) {
                Some(v) => {
                    Change::PutPlatform(Platform::from(parse::<PlatformRecord>("platform", &v)?))
                }
                None => Change::DeletePlatform(name.clone()),
            },
            Touched::Default => Change::SetDefault(
                take(SETTINGS, DEFAULT)
                    .map(|v| parse("default", &v))
                    .transpose()?,
            ),
            Touched::Properties => match take(SETTINGS, PROPERTIES) {
                Some(v) => Change::PutProperties(Properties::from(parse::<PropertiesRecord>(
                    "properties",
                    &v,
                )?)),
                // Properties are never removed.
                None => continue,
            },
            Touched::Tenant { tenant_id } => match take(TENANTS, tenant_id) {
                Some(v) => Change::PutTenant(Tenant::from(parse::<TenantRecord>("tenant", &v)?)),
                None => Change::DeleteTenant(tenant_id.clone()),
            },
            Touched::Group {
                tenant_id,
                group_id,
            } => match groups.remove(&(tenant_id.clone(), group_id.clone())) {
                Some(v) => Change::PutGroup(Group::from(parse::<GroupRecord>("group", &v)?)),
                None => Change::DeleteGroup(GroupRef {
                    tenant_id: tenant_id.clone(),
                    group_id: group_id.clone(),
                }),
            },
            Touched::User { username } => match take(USERS, username) {
                Some(v) => Change::PutUser(User::try_from(parse::<UserRecord>("user", &v)?)?),
                None => Change::DeleteUser(username.clone()),
            },
            Touched::Session { id } => match take(SESSIONS, id) {
                Some(v) => {
                    Change::PutSession(Session::from(parse::<SessionRecord>("session", &v)?))
                }
                None => Change::DeleteSession(id.clone()),
            },
            Touched::Secret { name } => match secrets.remove(name) {
                Some(v) => Change::PutSecret(name.clone(), v),
                // Secrets are never removed.
                None => continue,
            },
        };
        out.push(change);
    }
    Ok(out)
}

/// The kinds of object [`Current`] keeps by one text key.
const PLATFORMS: &str = "platforms";
const SETTINGS: &str = "settings";
const TENANTS: &str = "tenants";
const USERS: &str = "users";
const SESSIONS: &str = "sessions";
