//! Every rule of the model, every authorization check, and the event stream. REST and GraphQL
//! call these methods and nothing below them.

mod events;
mod org;
mod platforms;
mod properties;
mod reachability;
mod sessions;
mod sizes;
mod users;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

pub use self::events::Event;
pub use self::platforms::{PlatformEntry, PlatformList};
pub use self::reachability::{ReachabilityChange, ReachabilityTable};
use self::sessions::KnownToken;
pub use self::sessions::{LoginAnswer, RefreshAnswer, SessionSettings};
pub use self::sizes::ListSizes;
use crate::auth::{LoginThrottle, PasswordChecks, Throttle, Tokens};
use crate::error::Result;
use crate::store::{Change, Read, Store, Ticket};

const EVENT_BUFFER: usize = 1024;

/// Runs a call into the store. sled can block inside a call (a full disk, a slow device, its
/// global lock held by a blocked batch); on a multi-threaded runtime the calling worker first
/// hands its other tasks to another thread, so requests that do not need the store (health
/// checks, answers kept in memory) keep being served.
fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    /// Queues writers so that waiting for the store's writer lock never blocks a runtime thread.
    write_gate: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Event>,
    /// The last commit known durable, for whoever must re-check something after any commit.
    durable: watch::Sender<Ticket>,
    /// Events of commits not yet known durable, in commit order.
    pending: Mutex<VecDeque<(Ticket, Event)>>,
    tokens: Tokens,
    throttle: Arc<dyn LoginThrottle>,
    /// Bounds the memory and CPU that password hashing and checking take.
    password_checks: PasswordChecks,
    settings: SessionSettings,
    /// The platform list as last read, dropped by every commit (see [`Service::platforms`]).
    platform_list: Mutex<Option<Arc<PlatformList>>>,
    /// Access tokens checked since the last commit (see `authenticate`).
    principals: Mutex<HashMap<String, KnownToken>>,
    /// What this gateway's prober saw of each platform (not stored: each gateway sees for
    /// itself).
    reachability: ReachabilityTable,
    /// The lists' lengths at the last commit they were asked for (see [`Service::list_sizes`]).
    list_sizes: sizes::SizesAt,
}

/// What a decision produces: the answer, the changes to commit, and the events they make.
pub(crate) struct Decision<T> {
    value: T,
    changes: Vec<Change>,
    events: Vec<Event>,
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
    /// Builds the service over an open store, creating the token signing key on first use.
    pub async fn new(store: Arc<dyn Store>, settings: SessionSettings) -> Result<Service> {
        let tokens = sessions::load_tokens(&*store, &settings).await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let last = store.last_ticket();
        let throttle = Arc::new(Throttle::new(settings.max_failed_logins, settings.lockout));
        let password_checks =
            PasswordChecks::new(settings.max_password_checks, settings.password_check_wait);
        Ok(Service {
            store,
            write_gate: tokio::sync::Mutex::new(()),
            events,
            durable: watch::Sender::new(last),
            pending: Mutex::new(VecDeque::new()),
            tokens,
            throttle,
            password_checks,
            settings,
            platform_list: Mutex::new(None),
            principals: Mutex::new(HashMap::new()),
            reachability: ReachabilityTable::default(),
            list_sizes: sizes::SizesAt::default(),
        })
    }

    /// The store under the service, for tests that look at what is stored.
    #[cfg(feature = "test-util")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The position of the last commit: answers computed at the same position are the same.
    pub fn position(&self) -> Ticket {
        self.store.last_ticket()
    }

    /// The store is open, has not failed and takes a write (`/readyz`); run off the runtime,
    /// as it writes.
    pub async fn check_writable(&self) -> Result<()> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.check_writable())
            .await
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?
    }

    /// Every committed change from now on, in commit order, each sent once it is durable.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The last durable commit, changed by every commit once it is on disk (sessions ended
    /// and users deleted included).
    pub fn durable_commits(&self) -> watch::Receiver<Ticket> {
        self.durable.subscribe()
    }

    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T>) -> Result<T> {
        off_runtime(|| {
            let view = self.store.read();
            f(&*view)
        })
    }

    /// Runs `decide` under the writer lock, commits what it decided atomically, and answers
    /// once that commit (and every earlier one) is on disk.
    async fn write<T>(&self, decide: impl FnOnce(&dyn Read) -> Result<Decision<T>>) -> Result<T> {
        let _gate = self.write_gate.lock().await;
        let (value, ticket) = off_runtime(|| {
            let writer = self.store.write();
            let decision = decide(&*writer)?;
            let ticket = if decision.changes.is_empty() {
                // Nothing to write, but the answer may show an earlier commit: wait for it too.
                self.store.last_ticket()
            } else {
                let ticket = writer.commit(decision.changes)?;
                // Still under the writer lock: no reader can refill it with the old state.
                *self.platform_list.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.extend(decision.events.into_iter().map(|e| (ticket, e)));
                ticket
            };
            Ok::<_, crate::error::Error>((decision.value, ticket))
        })?;
        drop(_gate);
        self.store.durable(ticket).await?;
        self.publish_durable(ticket);
        Ok(value)
    }

    fn publish_durable(&self, durable: Ticket) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while pending.front().is_some_and(|(t, _)| *t <= durable) {
            if let Some((_, event)) = pending.pop_front() {
                // No subscriber is not an error.
                let _ = self.events.send(event);
            }
        }
        drop(pending);
        self.durable.send_if_modified(|last| {
            let newer = durable > *last;
            if newer {
                *last = durable;
            }
            newer
        });
    }

    /// Resolves with the cause once the store has failed (a write or flush could not be done):
    /// it takes no more writes, and only a restart reopens it.
    pub async fn store_failed(&self) -> String {
        let mut failure = self.store.failure();
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
        let ticket = self.store.last_ticket();
        self.store.durable(ticket).await?;
        self.publish_durable(ticket);
        Ok(())
    }
}
