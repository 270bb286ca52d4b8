//! Every rule of the model, every authorization check, and the event stream. REST and GraphQL
//! call these methods and nothing below them.

mod audit;
mod events;
mod follow;
#[cfg(test)]
mod held_store;
mod org;
mod pending;
mod platforms;
mod properties;
mod reachability;
mod sessions;
mod sizes;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::{broadcast, oneshot, watch};

pub use self::audit::{AUDIT_PAGE_MAX, AuditPage, AuditQuery};
pub use self::events::{Event, LoggedEvent};
pub use self::follow::EventStream;
use self::pending::{Outcome, Pending};
pub use self::platforms::{PlatformEntry, PlatformList};
pub use self::reachability::{ReachabilityChange, ReachabilityTable};
use self::sessions::KnownToken;
pub use self::sessions::{LoginAnswer, RefreshAnswer, SessionSettings};
pub use self::sizes::ListSizes;
use crate::auth::{LoginThrottle, PasswordChecks, Throttle, Tokens};
use crate::error::{Error, Result};
use crate::store::{CatchUp, Change, Commit, Entry, Read, Sequence, State, Store};

const EVENT_BUFFER: usize = 1024;
/// The actor of what the server does by itself: the bootstrap of a new store, pruning.
pub const SYSTEM_ACTOR: &str = "system";

tokio::task_local! {
    /// The `x-request-id` of the request being served, for the log entries it makes.
    static REQUEST_ID: String;
}

/// Runs `f` as the request `id`: what it commits is logged with that request id.
pub async fn with_request_id<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The model at one log position, with what was computed from it. Everything kept here is
/// dropped with it when the log moves, so no kept answer outlives its position.
pub struct Snapshot {
    pub sequence: Sequence,
    state: State,
    platform_list: OnceLock<Arc<PlatformList>>,
    list_sizes: Mutex<Option<(bool, Arc<ListSizes>)>>,
}

impl Snapshot {
    fn new(sequence: Sequence, state: State) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            sequence,
            state,
            platform_list: OnceLock::new(),
            list_sizes: Mutex::new(None),
        })
    }
}

/// A commit's entry and its events, as published to subscribers once durable.
pub(crate) struct Published {
    entry: Arc<Entry>,
    events: Vec<Event>,
}

/// What the writer, the log follower and the subscribers share.
pub(crate) struct Spine {
    store: Arc<dyn Store>,
    /// The newest state; readers clone the `Arc` and never wait for a writer.
    head: RwLock<Arc<Snapshot>>,
    /// Decisions not yet committed (see [`pending`]).
    pending: Mutex<Pending>,
    /// Orders this process's commits and catching up with other processes' ones.
    write_gate: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Arc<Published>>,
    /// The last log position whose events are published (so also durable).
    published: watch::Sender<Sequence>,
    /// Entries committed here and not yet published: the follower takes them from here
    /// instead of reading them back from the store.
    recent: Mutex<BTreeMap<u64, Arc<Entry>>>,
}

impl Spine {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.head.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `snapshot` the newest state, caught up with other processes' commits
    /// (`foreign`) or made by this one's.
    fn install(&self, snapshot: Arc<Snapshot>, foreign: bool) {
        let at = snapshot.sequence;
        {
            let mut head = self.head.write().unwrap_or_else(|p| p.into_inner());
            if at > head.sequence {
                *head = snapshot;
            }
        }
        self.store.installed(at, foreign);
    }

    /// Applies what other processes committed since our head. Called with the write gate held.
    async fn catch_up(&self) -> Result<()> {
        let snap = self.snapshot();
        let foreign = match self.store.catch_up(snap.sequence).await? {
            CatchUp::Foreign(foreign) => foreign,
            CatchUp::Pruned => return self.reload(snap.sequence).await,
        };
        let Some(last) = foreign.last().map(|f| f.entry.sequence()) else {
            return Ok(());
        };
        let mut state = snap.state.clone();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        for f in foreign {
            for change in &f.changes {
                state.apply(change);
            }
            recent.insert(f.entry.sequence, Arc::new(f.entry));
        }
        drop(recent);
        self.install(Snapshot::new(last, state), true);
        Ok(())
    }

    /// Replaces the state with the store's whole, when what followed `at` is gone from the
    /// log. The events of what is gone are not published (nothing tells of them any more);
    /// subscribers that needed them are told they are lost. Called with the write gate held.
    async fn reload(&self, at: Sequence) -> Result<()> {
        let (state, head) = self.store.load().await?;
        tracing::warn!(
            from = %at,
            to = %head,
            "the change log no longer holds what followed this gateway's position: \
             the whole state was loaded again"
        );
        self.install(Snapshot::new(head, state), true);
        Ok(())
    }
}

pub struct Service {
    spine: Arc<Spine>,
    follower: tokio::task::JoinHandle<()>,
    tokens: Tokens,
    throttle: Arc<dyn LoginThrottle>,
    /// Bounds the memory and CPU that password hashing and checking take.
    password_checks: PasswordChecks,
    settings: SessionSettings,
    /// Access tokens checked at a log position (see `authenticate`).
    principals: Mutex<HashMap<String, KnownToken>>,
    /// What this gateway's prober saw of each platform (not stored: each gateway sees for
    /// itself).
    reachability: ReachabilityTable,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Who made a commit and how: what its log entry says besides the changes.
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a> {
    operation: &'static str,
    actor: &'a str,
}

impl<'a> Origin<'a> {
    fn new(operation: &'static str, actor: &'a str) -> Origin<'a> {
        Origin { operation, actor }
    }

    fn system(operation: &'static str) -> Origin<'static> {
        Origin {
            operation,
            actor: SYSTEM_ACTOR,
        }
    }
}

/// What a decision produces: the answer, the changes to commit, and the events they make.
pub(crate) struct Decision<T> {
    value: T,
    changes: Vec<Change>,
    events: Vec<Event>,
}

/// A decision as [`Service::write`] goes on with it.
enum Decided<T> {
    /// Queued, or made against commits still pending: the answer once the outcome comes.
    Waiting(Result<T>),
    /// Made against the head, changing nothing: the answer once the head is durable.
    Now(Sequence, Result<T>),
}

impl<T> Decision<T> {
    fn new(value: T) -> Self {
        Decision {
            value,
            changes: Vec::new(),
            events: Vec::new(),
        }
    }

    fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }

    fn event(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }
}

impl Service {
    /// Builds the service over an open store: loads what it holds, follows its log, and
    /// creates the token signing key on first use.
    pub async fn new(store: Arc<dyn Store>, settings: SessionSettings) -> Result<Service> {
        let (state, sequence) = store.load().await?;
        store.installed(sequence, false);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let spine = Arc::new(Spine {
            store,
            head: RwLock::new(Snapshot::new(sequence, state)),
            pending: Mutex::new(Pending::default()),
            write_gate: tokio::sync::Mutex::new(()),
            events,
            published: watch::Sender::new(sequence),
            recent: Mutex::new(BTreeMap::new()),
        });
        let follower = tokio::spawn(follow::run(
            Arc::downgrade(&spine),
            spine.store.durable_head(),
        ));
        let throttle = Arc::new(Throttle::new(settings.max_failed_logins, settings.lockout));
        let password_checks =
            PasswordChecks::new(settings.max_password_checks, settings.password_check_wait);
        let mut service = Service {
            spine,
            follower,
            tokens: Tokens::new(&[0; 32], settings.access_ttl, settings.refresh_ttl),
            throttle,
            password_checks,
            settings,
            principals: Mutex::new(HashMap::new()),
            reachability: ReachabilityTable::default(),
        };
        service.tokens = service.load_tokens().await?;
        Ok(service)
    }

    /// Counts failed logins with `throttle` (shared by several processes) instead of in this
    /// process.
    pub fn set_login_throttle(&mut self, throttle: Arc<dyn LoginThrottle>) {
        self.throttle = throttle;
    }

    /// The store under the service, for tests that look at what is stored.
    #[cfg(feature = "test-util")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.spine.store
    }

    /// Commits `changes` as the system would (fixtures of tests and benchmarks).
    #[cfg(feature = "test-util")]
    pub async fn seed(&self, changes: Vec<Change>) -> Result<()> {
        self.write(Origin::system("seed"), |_| {
            let mut d = Decision::new(());
            d.changes = changes.clone();
            Ok(d)
        })
        .await
    }

    /// The log position of the newest state: answers computed at the same position are the
    /// same, in every process.
    pub fn position(&self) -> Sequence {
        self.spine.snapshot().sequence
    }

    /// Brings this process's state up to everything committed to the store before the call,
    /// by any process: what a request then reads or checks (a token's session included) is
    /// at least that new. Nothing to do over a store only this process writes, nor while the
    /// store says this process is already that new (a read lease: commits wait for it).
    pub async fn catch_up_with_store(&self) -> Result<()> {
        let Some(newest) = self.spine.store.newest().await? else {
            return Ok(());
        };
        if newest <= self.position() {
            return Ok(());
        }
        let _gate = self.spine.write_gate.lock().await;
        if newest > self.position() {
            self.spine.catch_up().await?;
        }
        Ok(())
    }

    /// The store is open, has not failed and takes a write (`/readyz`).
    pub async fn check_writable(&self) -> Result<()> {
        self.spine.store.check_writable().await
    }

    /// The last log position published to subscribers, moved by every commit once it is on
    /// disk (sessions ended and users deleted included).
    pub fn durable_commits(&self) -> watch::Receiver<Sequence> {
        self.spine.published.subscribe()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.spine.snapshot()
    }

    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T>) -> Result<T> {
        f(&self.snapshot().state)
    }

    /// Decides against the newest state (with every decision not yet committed applied),
    /// commits what was decided with its log entry as one atomic write, and answers once that
    /// commit (and every earlier one) is on disk. When the decision cannot hold (another
    /// process committed first, or a decision before it failed), decides again: `decide` must
    /// have no effect but its decision. See [`pending`].
    async fn write<T>(
        &self,
        origin: Origin<'_>,
        decide: impl Fn(&dyn Read) -> Result<Decision<T>>,
    ) -> Result<T> {
        let spine = &self.spine;
        loop {
            let (answer, outcome) = oneshot::channel();
            let decided = match self.decide_and_queue(origin, &decide, answer) {
                Decided::Waiting(decided) => decided,
                Decided::Now(at, decided) => {
                    // Nothing to write, but the answer may show an earlier commit: wait for it
                    // too.
                    spine.store.durable(at).await?;
                    return decided;
                }
            };
            match outcome.await {
                Ok(Ok(Outcome::Durable)) => return decided,
                Ok(Ok(Outcome::Again)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Internal("a commit task ended unanswered".into())),
            }
        }
    }

    /// Decides against the tip and queues the commit, or has `answer` wait for the tip when
    /// the decision depends on commits still pending.
    fn decide_and_queue<T>(
        &self,
        origin: Origin<'_>,
        decide: &impl Fn(&dyn Read) -> Result<Decision<T>>,
        answer: pending::Answer,
    ) -> Decided<T> {
        let spine = &self.spine;
        let mut pending = spine.lock_pending();
        let (at, state, pending_tip) = pending.tip(|| spine.snapshot());
        match decide(&state) {
            Ok(decision) if !decision.changes.is_empty() => {
                let mut entry = Entry::new(
                    at.next(),
                    crate::store::now_ms(),
                    origin.actor,
                    origin.operation,
                );
                entry.request_id = request_id();
                let (described, next) = audit::describe(state, &decision.changes);
                entry.changes = described;
                entry.events = decision.events.iter().map(Into::into).collect();
                let commit = Commit {
                    changes: decision.changes,
                    entry,
                };
                if pending.queue(commit, next, answer) {
                    tokio::spawn(pending::commit_queued(spine.clone()));
                }
                Decided::Waiting(Ok(decision.value))
            }
            decided if pending_tip => {
                pending.wait_for_tip(answer);
                Decided::Waiting(decided.map(|d| d.value))
            }
            decided => Decided::Now(at, decided.map(|d| d.value)),
        }
    }

    /// Resolves with the cause once the store has failed (a write or flush could not be done):
    /// it takes no more writes, and only a restart reopens it.
    pub async fn store_failed(&self) -> String {
        let mut failure = self.spine.store.failure();
        let cause = failure
            .wait_for(Option::is_some)
            .await
            .map(|cause| cause.clone().unwrap_or_default());
        match cause {
            Ok(cause) => cause,
            // The store is gone without failing: nothing will ever fail now.
            Err(_) => std::future::pending().await,
        }
    }

    /// Waits until everything committed so far is on disk (used on shutdown).
    pub async fn flush(&self) -> Result<()> {
        self.spine.store.durable(self.position()).await
    }

    /// Gives up what other gateways wait for while this one serves (used on shutdown, once
    /// no request is served any more).
    pub async fn release(&self) -> Result<()> {
        self.spine.store.release().await
    }
}
