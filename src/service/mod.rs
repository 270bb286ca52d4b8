//! Every rule of the model, every authorization check, and the event stream. REST and GraphQL
//! call these methods and nothing below them.

mod events;
mod org;
mod platforms;
mod properties;
mod reachability;
mod sessions;
mod users;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

pub use self::events::Event;
pub use self::platforms::{PlatformEntry, PlatformList};
pub use self::reachability::{ReachabilityChange, ReachabilityTable};
use self::sessions::KnownToken;
pub use self::sessions::{LoginAnswer, SessionSettings};
use crate::auth::{Throttle, Tokens};
use crate::error::Result;
use crate::store::{Change, Read, Store, Ticket};

const EVENT_BUFFER: usize = 1024;

pub struct Service {
    store: Arc<dyn Store>,
    /// Queues writers so that waiting for the store's writer lock never blocks a runtime thread.
    write_gate: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Event>,
    /// Events of commits not yet known durable, in commit order.
    pending: Mutex<VecDeque<(Ticket, Event)>>,
    tokens: Tokens,
    throttle: Throttle,
    settings: SessionSettings,
    /// The platform list as last read, dropped by every commit (see [`Service::platforms`]).
    platform_list: Mutex<Option<Arc<PlatformList>>>,
    /// Access tokens checked since the last commit (see `authenticate`).
    principals: Mutex<HashMap<String, KnownToken>>,
    /// What this gateway's prober saw of each platform (not stored: each gateway sees for
    /// itself).
    reachability: ReachabilityTable,
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
        let throttle = Throttle::new(settings.max_failed_logins, settings.lockout);
        Ok(Service {
            store,
            write_gate: tokio::sync::Mutex::new(()),
            events,
            pending: Mutex::new(VecDeque::new()),
            tokens,
            throttle,
            settings,
            platform_list: Mutex::new(None),
            principals: Mutex::new(HashMap::new()),
            reachability: ReachabilityTable::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Every committed change from now on, in commit order, each sent once it is durable.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T>) -> Result<T> {
        let view = self.store.read();
        f(&*view)
    }

    /// Runs `decide` under the writer lock, commits what it decided atomically, and answers
    /// once that commit (and every earlier one) is on disk.
    async fn write<T>(&self, decide: impl FnOnce(&dyn Read) -> Result<Decision<T>>) -> Result<T> {
        let _gate = self.write_gate.lock().await;
        let (value, ticket) = {
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
            (decision.value, ticket)
        };
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
    }

    /// Waits until everything committed so far is on disk (used on shutdown).
    pub async fn flush(&self) -> Result<()> {
        let ticket = self.store.last_ticket();
        self.store.durable(ticket).await?;
        self.publish_durable(ticket);
        Ok(())
    }
}
