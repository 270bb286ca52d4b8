//! Where the model is kept. The service reads through [`Read`] and writes through [`Write`]:
//! a write holds the store's writer lock while the service checks its rules and commits the
//! resulting [`Change`]s as one atomic step; [`Store::durable`] then waits until that commit is
//! on disk. Several writers' commits share one flush (group commit).
//!
//! Only `store::sled` names sled; another backend implements the same traits.

mod sled;

use std::future::Future;
use std::pin::Pin;

pub use self::sled::{SledStore, StoreOptions};
use crate::error::Result;
use crate::model::{Group, GroupRef, Platform, Properties, Tenant, User};

/// A login session: what a refresh token names, and what logout removes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub id: String,
    pub username: String,
    /// Unix seconds after which the session's refresh token is refused.
    pub expires_at: u64,
    /// Unix milliseconds of the login; past a user's session cap the oldest are ended first.
    /// The fields below are absent from sessions stored before they existed.
    #[serde(default)]
    pub created_at_ms: u64,
    /// The id of the one refresh token the session accepts now (empty for sessions whose
    /// refresh token predates rotation and carries no id).
    #[serde(default)]
    pub refresh_id: String,
    /// The refresh token replaced last, still accepted until `previous_until_ms` (Unix
    /// milliseconds) for clients that refresh from several requests at once.
    #[serde(default)]
    pub previous_refresh_id: Option<String>,
    #[serde(default)]
    pub previous_until_ms: u64,
}

/// The position of a commit in the store's commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// One change of a commit. A commit names each key at most once.
#[derive(Debug, Clone)]
pub enum Change {
    PutPlatform(Platform),
    DeletePlatform(String),
    SetDefault(Option<String>),
    PutProperties(Properties),
    PutTenant(Tenant),
    DeleteTenant(String),
    /// Stores the group and moves it in the usage index to its (new) platform.
    PutGroup(Group),
    /// Removes the group and its entry in the usage index.
    DeleteGroup(GroupRef),
    PutUser(User),
    DeleteUser(String),
    PutSession(Session),
    DeleteSession(String),
    PutSecret(String, Vec<u8>),
}

/// A consistent view: no commit lands while one is held.
pub trait Read {
    fn platform(&self, name: &str) -> Result<Option<Platform>>;
    /// Every platform, ordered by name.
    fn platforms(&self) -> Result<Vec<Platform>>;
    /// Every platform's name, ordered; cheaper than [`Read::platforms`].
    fn platform_names(&self) -> Result<Vec<String>>;
    fn system_default(&self) -> Result<Option<String>>;
    /// The stored properties, or the values of a new store.
    fn properties(&self) -> Result<Properties>;
    /// The groups assigned to a platform, from the usage index.
    fn usage(&self, platform: &str) -> Result<Vec<GroupRef>>;
    /// How many groups are assigned to a platform; stops at `limit`.
    fn usage_count(&self, platform: &str, limit: usize) -> Result<usize>;
    fn tenant(&self, tenant_id: &str) -> Result<Option<Tenant>>;
    fn tenants(&self) -> Result<Vec<Tenant>>;
    fn group(&self, group: &GroupRef) -> Result<Option<Group>>;
    fn groups(&self, tenant_id: &str) -> Result<Vec<Group>>;
    fn user(&self, username: &str) -> Result<Option<User>>;
    fn users(&self) -> Result<Vec<User>>;
    fn session(&self, id: &str) -> Result<Option<Session>>;
    fn sessions(&self) -> Result<Vec<Session>>;
    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>>;
}

/// The exclusive writer: read, decide, then commit once.
pub trait Write: Read {
    /// Applies every change atomically. Visible to readers at once; durable when
    /// [`Store::durable`] for the returned ticket resolves.
    fn commit(self: Box<Self>, changes: Vec<Change>) -> Result<Ticket>;
}

pub type DurableFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

pub trait Store: Send + Sync + 'static {
    fn read(&self) -> Box<dyn Read + '_>;
    /// Waits for (blocks on) the writer lock. Hold it only to decide, never across an await.
    fn write(&self) -> Box<dyn Write + '_>;
    /// Resolves once every commit up to `ticket` is on disk.
    fn durable(&self, ticket: Ticket) -> DurableFuture<'_>;
    /// The newest commit; `durable(last_ticket())` makes everything so far durable.
    fn last_ticket(&self) -> Ticket;
    /// Writes a probe: the store is open and can take writes (and has not failed).
    fn check_writable(&self) -> Result<()>;
    /// The cause, once a write or flush has failed: from then on the store takes no write
    /// (see `SledStore`), and the process should be restarted to reopen it. Needs a runtime.
    fn failure(&self) -> tokio::sync::watch::Receiver<Option<String>>;
}
