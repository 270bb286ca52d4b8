//! Where the model is kept. The service holds everything in memory as a [`State`] at a log
//! [`Sequence`], reads through [`Read`], and decides each write against the newest state; the
//! decision's [`Change`]s and its log [`Entry`] then go to the [`Store`] as one atomic commit,
//! which succeeds only if the log still ends where the decision was made (so a backend shared
//! by several processes can refuse it, and the service decides again). [`Store::durable`]
//! waits until a commit is on disk; several writers' commits share one flush (group commit).
//!
//! What is on disk is the store's own serde types ([`records`]), never the wire format.
//! Only `store::sled` names sled, only `store::postgres` PostgreSQL; both implement the same
//! trait.

pub mod dump;
mod log;
mod postgres;
pub mod records;
mod sled;
mod state;

use tokio::sync::watch;

pub use self::log::{
    AuditChange, AuditValue, Entry, EventRecord, LogRange, Sequence, now_ms, parse_rfc3339,
    rfc3339_millis,
};
pub use self::postgres::{PgOptions, PgStore, PgThrottle};
pub use self::sled::{SledStore, StoreOptions};
pub use self::state::State;
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

/// A consistent view of the model at one log position.
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

/// What a commit attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Applied and appended at this sequence; durable once [`Store::durable`] resolves.
    At(Sequence),
    /// The log no longer ends where the decision was made: another process committed first.
    /// Catch up (see [`Store::catch_up`]) and decide again.
    Conflict,
}

/// One decision to commit: its changes and the log entry that records them.
#[derive(Debug, Clone)]
pub struct Commit {
    pub changes: Vec<Change>,
    pub entry: Entry,
}

/// What another process committed: its entry, and the changes that bring a state up to it.
pub struct Foreign {
    pub entry: Entry,
    pub changes: Vec<Change>,
}

/// What catching up with other processes' commits came to.
pub enum CatchUp {
    /// Their commits after the position asked, in log order (none when there is nothing new).
    Foreign(Vec<Foreign>),
    /// What followed the position is no longer in the log (pruned past retention): only the
    /// whole state, loaded again, brings this process up to date.
    Pruned,
}

/// A backend of the service. Async where a store on a network must wait; the embedded one
/// answers at once. The service holds the state in memory (see [`State`]), decides against
/// it, and hands the store each commit's changes with its log entry.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Everything stored, and the log position it includes.
    async fn load(&self) -> Result<(State, Sequence)>;
    /// Applies each commit's changes and appends its entry (numbered from `expected + 1` on,
    /// in order) as one atomic write, if the log still ends at `expected`; answers the last
    /// one's position. All or none of them are committed.
    async fn commit(&self, expected: Sequence, commits: &[Commit]) -> Result<Committed>;
    /// Resolves once every commit up to `sequence` is on disk.
    async fn durable(&self, sequence: Sequence) -> Result<()>;
    /// The last durable log position, moved by every commit once it is on disk (from
    /// whichever process it came). Needs a runtime.
    fn durable_head(&self) -> watch::Receiver<Sequence>;
    /// Log entries in a range (see [`LogRange`]).
    async fn entries(&self, range: LogRange) -> Result<Vec<Entry>>;
    /// The sequence of the oldest retained entry; one past the last when the log is empty.
    async fn first_retained(&self) -> Result<Sequence>;
    /// Removes up to `max` of the oldest entries made before `before_ms` (Unix
    /// milliseconds); answers how many went.
    async fn prune(&self, before_ms: i64, max: usize) -> Result<usize>;
    /// What other processes committed after `after`, in log order. A store only one process
    /// can open has none.
    async fn catch_up(&self, after: Sequence) -> Result<CatchUp>;
    /// The newest log position of the store, whoever committed it, when other processes may
    /// commit to it (`None`: only this process does, or no commit can be acknowledged before
    /// this process has it, so its own position is new enough). Concurrent callers may share
    /// one look, as long as it was taken after they called.
    async fn newest(&self) -> Result<Option<Sequence>> {
        Ok(None)
    }
    /// Writes a probe: the store is open and can take writes (and has not failed).
    async fn check_writable(&self) -> Result<()>;
    /// The cause, once a write or flush has failed: from then on the store takes no write
    /// (see `SledStore`), and the process should be restarted to reopen it. Needs a runtime.
    fn failure(&self) -> watch::Receiver<Option<String>>;
    /// The service now answers with the state at `at`: caught up with other processes'
    /// commits (`foreign`), or with its own.
    fn installed(&self, _at: Sequence, _foreign: bool) {}
    /// Gives up what other processes wait for while this one serves (its read lease), before
    /// it stops.
    async fn release(&self) -> Result<()> {
        Ok(())
    }
}
