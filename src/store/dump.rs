//! Moving between stores: everything a store holds (the records in their stored form, users'
//! password hashes and the token signing key included, and the change log) as one JSON
//! document, written the same from either kind of store.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::records::{
    GroupRecord, PlatformRecord, PropertiesRecord, SessionRecord, TenantRecord, UserRecord,
};
use super::{Change, Entry, LogRange, Read, Sequence, Store};
use crate::error::{Error, Result};
use crate::model::{Group, Platform, Properties, Tenant, User};

const FORMAT: &str = "callrec-gateway export";
const VERSION: u32 = 1;
/// Log entries read at a time while exporting.
const LOG_PAGE: usize = 10_000;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dump {
    pub format: String,
    pub version: u32,
    /// The log position everything below is at.
    pub sequence: u64,
    pub platforms: Vec<PlatformRecord>,
    pub system_default: Option<String>,
    pub properties: PropertiesRecord,
    pub tenants: Vec<TenantRecord>,
    pub groups: Vec<GroupRecord>,
    pub users: Vec<UserRecord>,
    pub sessions: Vec<SessionRecord>,
    pub secrets: Vec<SecretRecord>,
    /// The retained log entries, oldest first.
    pub log: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRecord {
    pub name: String,
    /// Base64 (standard, padded).
    pub value: String,
}

impl Dump {
    /// Everything `store` holds at one log position.
    pub async fn of(store: &dyn Store) -> Result<Dump> {
        let (state, sequence) = store.load().await?;
        let mut groups = Vec::new();
        let tenants = state.tenants()?;
        for t in &tenants {
            groups.extend(state.groups(&t.tenant_id)?.iter().map(GroupRecord::from));
        }
        let mut secrets = Vec::new();
        for s in state.secret_names() {
            if let Some(value) = state.secret(&s)? {
                secrets.push(SecretRecord {
                    name: s,
                    value: base64::engine::general_purpose::STANDARD.encode(value),
                });
            }
        }
        let mut log = Vec::new();
        let mut after = Sequence(0);
        loop {
            let page = store
                .entries(LogRange {
                    before: Some(sequence.next()),
                    ..LogRange::after(after, LOG_PAGE)
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = last.sequence();
            log.extend(page);
        }
        Ok(Dump {
            format: FORMAT.into(),
            version: VERSION,
            sequence: sequence.0,
            platforms: state
                .platforms()?
                .iter()
                .map(PlatformRecord::from)
                .collect(),
            system_default: state.system_default()?,
            properties: PropertiesRecord::from(&state.properties()?),
            tenants: tenants.iter().map(TenantRecord::from).collect(),
            groups,
            users: state.users()?.iter().map(UserRecord::from).collect(),
            sessions: state.sessions()?.iter().map(SessionRecord::from).collect(),
            secrets,
            log,
        })
    }

    /// Reads a dump, refusing one of another format or version.
    pub fn parse(text: &str) -> anyhow::Result<Dump> {
        let dump: Dump = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the input is not a callrec-gateway export: {e}"))?;
        anyhow::ensure!(
            dump.format == FORMAT && dump.version == VERSION,
            "the input is a {:?} of version {}; this release reads {FORMAT:?} of version {VERSION}",
            dump.format,
            dump.version
        );
        let ordered = dump.log.windows(2).all(|w| w[0].sequence < w[1].sequence);
        let within = dump.log.last().is_none_or(|e| e.sequence <= dump.sequence);
        anyhow::ensure!(
            ordered && within,
            "the export's log is out of order or past its position {}",
            dump.sequence
        );
        Ok(dump)
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))
    }

    /// The records as the changes that store them.
    pub fn changes(&self) -> anyhow::Result<Vec<Change>> {
        let mut out = Vec::new();
        out.extend(
            self.platforms
                .iter()
                .map(|p| Change::PutPlatform(Platform::from(p.clone()))),
        );
        out.push(Change::SetDefault(self.system_default.clone()));
        out.push(Change::PutProperties(Properties::from(self.properties)));
        out.extend(
            self.tenants
                .iter()
                .map(|t| Change::PutTenant(Tenant::from(t.clone()))),
        );
        out.extend(
            self.groups
                .iter()
                .map(|g| Change::PutGroup(Group::from(g.clone()))),
        );
        for u in &self.users {
            out.push(Change::PutUser(User::try_from(u.clone())?));
        }
        out.extend(
            self.sessions
                .iter()
                .map(|s| Change::PutSession(s.clone().into())),
        );
        for s in &self.secrets {
            let value = base64::engine::general_purpose::STANDARD
                .decode(&s.value)
                .map_err(|e| anyhow::anyhow!("secret {:?} is not base64: {e}", s.name))?;
            out.push(Change::PutSecret(s.name.clone(), value));
        }
        Ok(out)
    }
}
