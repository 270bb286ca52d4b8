//! What the prober (see `crate::probe`) saw of each platform, kept in memory per gateway:
//! reachability is an observation of this process, not a change anyone made, so it is
//! neither stored nor in the commit event stream. Its changes have a live stream of their
//! own.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::Service;
use crate::error::Result;
use crate::model::{Level, Principal, ProbeOutcome, Reachability, ReachabilityState};
use crate::store::Read;

const CHANGE_BUFFER: usize = 1024;

/// A platform's state changed on this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachabilityChange {
    pub name: String,
    pub state: ReachabilityState,
    pub previous: ReachabilityState,
    pub at: SystemTime,
}

pub struct ReachabilityTable {
    probing: AtomicBool,
    states: Mutex<HashMap<String, Reachability>>,
    changes: broadcast::Sender<ReachabilityChange>,
}

impl Default for ReachabilityTable {
    fn default() -> Self {
        ReachabilityTable {
            probing: AtomicBool::new(false),
            states: Mutex::new(HashMap::new()),
            changes: broadcast::channel(CHANGE_BUFFER).0,
        }
    }
}

impl ReachabilityTable {
    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, Reachability>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Probing is on from now on (until [`ReachabilityTable::stop_probing`]).
    pub fn start_probing(&self) {
        self.probing.store(true, Ordering::SeqCst);
    }

    /// Probing is off: every platform is `NOT_PROBED` again.
    pub fn stop_probing(&self) {
        self.probing.store(false, Ordering::SeqCst);
        self.states().clear();
    }

    pub fn probing(&self) -> bool {
        self.probing.load(Ordering::SeqCst)
    }

    /// Follows exactly these platforms: new ones start `UNKNOWN`, deleted ones are forgotten.
    pub fn follow(&self, names: &HashSet<&str>, now: SystemTime) {
        let mut states = self.states();
        states.retain(|name, _| names.contains(name.as_str()));
        for name in names {
            if !states.contains_key(*name) {
                states.insert((*name).to_owned(), Reachability::unknown(now));
            }
        }
    }

    /// Applies a probe's outcome to a followed platform and announces a change of state.
    pub fn record(&self, name: &str, outcome: &ProbeOutcome, at: SystemTime, failures: u32) {
        let change = {
            let mut states = self.states();
            let Some(entry) = states.get_mut(name) else {
                return;
            };
            entry.record(outcome, at, failures)
        };
        if let Some(change) = change {
            tracing::info!(
                platform = name,
                state = change.state.label(),
                previous = change.previous.label(),
                "platform reachability changed"
            );
            // No subscriber is not an error.
            let _ = self.changes.send(ReachabilityChange {
                name: name.to_owned(),
                state: change.state,
                previous: change.previous,
                at,
            });
        }
    }

    /// A platform's reachability as this gateway sees it.
    pub fn get(&self, name: &str) -> Reachability {
        if !self.probing() {
            return Reachability::not_probed();
        }
        self.states()
            .get(name)
            .cloned()
            .unwrap_or_else(|| Reachability::unknown(SystemTime::now()))
    }

    /// The platforms known up (true) or down (false), by name; the others are left out.
    pub fn up_or_down(&self) -> Vec<(String, bool)> {
        if !self.probing() {
            return Vec::new();
        }
        let mut known: Vec<(String, bool)> = self
            .states()
            .iter()
            .filter_map(|(name, r)| match r.state {
                ReachabilityState::Up => Some((name.clone(), true)),
                ReachabilityState::Down => Some((name.clone(), false)),
                _ => None,
            })
            .collect();
        known.sort();
        known
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ReachabilityChange> {
        self.changes.subscribe()
    }
}

impl Service {
    /// The prober's side: where it records what it sees.
    pub fn reachability_table(&self) -> &ReachabilityTable {
        &self.reachability
    }

    /// The platforms this gateway sees up (true) or down (false), among those that exist now:
    /// one just deleted is left out before the prober has seen its deletion.
    pub fn platforms_up_or_down(&self) -> Vec<(String, bool)> {
        let snapshot = self.snapshot();
        let exists = |name: &str| matches!(snapshot.state.platform(name), Ok(Some(_)));
        self.reachability
            .up_or_down()
            .into_iter()
            .filter(|(name, _)| exists(name))
            .collect()
    }

    /// A platform's reachability as this gateway sees it, or `None` when there is no such
    /// platform (System Admin).
    pub fn reachability(&self, who: &Principal, name: &str) -> Result<Option<Reachability>> {
        who.require(Level::SystemAdmin)?;
        let list = self.platforms(who)?;
        if !list.platforms.iter().any(|p| p.name == name) {
            return Ok(None);
        }
        Ok(Some(self.reachability.get(name)))
    }

    /// The live changes of reachability, for the same callers as the event stream.
    pub fn watch_reachability(
        &self,
        who: &Principal,
    ) -> Result<broadcast::Receiver<ReachabilityChange>> {
        self.may_watch(who)?;
        Ok(self.reachability.subscribe())
    }
}
