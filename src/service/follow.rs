//! Following the log: one task per process publishes each entry's events once it is durable,
//! in log order, whoever committed it and whether or not its request is still waiting; each
//! subscriber reads the published entries, and reads the log itself to resume after a cursor
//! or to make up what it fell behind on.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use futures_util::stream::BoxStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::events::{Event, LoggedEvent};
use super::{Published, Service, Spine};
use crate::error::{Error, Result};
use crate::model::Principal;
use crate::store::{Entry, LogRange, Sequence};

/// Entries read from the log at a time, by the follower and by each subscriber catching up.
const READ_BATCH: usize = 256;

/// A subscriber's events in log order; an `Err` ends it (`EventsLost`, or the store failing).
pub type EventStream = BoxStream<'static, Result<LoggedEvent>>;

/// Publishes every durable entry in log order, for as long as the service lives. Holds the
/// service only while publishing, so that dropping the service closes its store at once.
pub(super) async fn run(spine: Weak<Spine>, mut durable: watch::Receiver<Sequence>) {
    loop {
        let target = *durable.borrow_and_update();
        let Some(spine) = spine.upgrade() else {
            return;
        };
        let published = *spine.published.borrow();
        if target > published
            && let Err(e) = publish_up_to(&spine, published, target).await
        {
            tracing::warn!(error = %e, "cannot read the change log; retrying");
            drop(spine);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        drop(spine);
        if durable.changed().await.is_err() {
            return;
        }
    }
}

async fn publish_up_to(spine: &Spine, mut published: Sequence, target: Sequence) -> Result<()> {
    if target > spine.snapshot().sequence {
        // Committed by another process, or by this one and not yet installed: a look at the
        // head can see a commit of ours before its committer, which holds the gate, installs
        // it. Reading the log for that would only hold up the next commit.
        let _gate = spine.write_gate.lock().await;
        if target > spine.snapshot().sequence {
            spine.catch_up().await?;
        }
    }
    while published < target {
        let next = published.next();
        let kept = spine
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&next.0)
            .cloned();
        let entries = match kept {
            Some(entry) => vec![entry],
            None => spine
                .store
                .entries(LogRange {
                    before: Some(target.next()),
                    ..LogRange::after(published, READ_BATCH)
                })
                .await?
                .into_iter()
                .map(Arc::new)
                .collect(),
        };
        if entries.is_empty() {
            // Pruned before it was published (or never there): nothing to tell of it.
            published = target;
        }
        for entry in entries {
            published = entry.sequence();
            spine
                .recent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&entry.sequence);
            if spine.events.receiver_count() > 0 {
                let events = entry.events.iter().cloned().map(Event::from).collect();
                // A subscriber gone meanwhile is not an error.
                let _ = spine.events.send(Arc::new(Published { entry, events }));
            }
            spine.published.send_replace(published);
        }
    }
    spine.published.send_replace(published);
    Ok(())
}

/// Where a subscriber is: every event up to `delivered` (a sequence and the index of the
/// event within its entry) has been passed on, or none of `sequence` when `index` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    sequence: u64,
    /// Events of `sequence` already delivered; `usize::MAX` when all of them were.
    delivered: usize,
}

impl Position {
    fn after_entry(sequence: Sequence) -> Position {
        Position {
            sequence: sequence.0,
            delivered: usize::MAX,
        }
    }

    /// A cursor as given back by a client: an event's (`"12:0"`) or an entry's (`"12"`).
    fn parse(cursor: &str) -> Option<Position> {
        match cursor.split_once(':') {
            Some((sequence, index)) => Some(Position {
                sequence: sequence.parse().ok()?,
                delivered: index.parse::<usize>().ok()?.checked_add(1)?,
            }),
            None => cursor
                .parse()
                .ok()
                .map(|s| Position::after_entry(Sequence(s))),
        }
    }
}

fn cursor(sequence: u64, index: usize) -> String {
    format!("{sequence}:{index}")
}

struct Follower {
    /// Weak, so that a subscription left open does not keep the store open.
    spine: Weak<Spine>,
    live: tokio::sync::broadcast::Receiver<Arc<Published>>,
    at: Position,
    /// Read from the log, not yet passed on.
    backlog: VecDeque<LoggedEvent>,
    /// The live stream may have skipped entries: read the log up to what is published.
    catching_up: bool,
}

impl Follower {
    /// Queues the events of `entry` past the position, and moves the position past it.
    fn take(&mut self, entry: &Entry, events: impl Iterator<Item = Event>) {
        if entry.sequence < self.at.sequence
            || (entry.sequence == self.at.sequence && self.at.delivered == usize::MAX)
        {
            return;
        }
        let skip = if entry.sequence == self.at.sequence {
            self.at.delivered
        } else {
            0
        };
        for (index, event) in events.enumerate().skip(skip) {
            self.backlog.push_back(LoggedEvent {
                cursor: cursor(entry.sequence, index),
                at: entry.at.clone(),
                actor: entry.actor.clone(),
                event,
            });
        }
        self.at = Position::after_entry(entry.sequence());
    }

    async fn read_log(&mut self) -> Result<()> {
        let Some(spine) = self.spine.upgrade() else {
            return Err(Error::Unavailable("the service has stopped".into()));
        };
        let published = *spine.published.borrow();
        let after = match self.at.delivered {
            usize::MAX => Sequence(self.at.sequence),
            _ => Sequence(self.at.sequence.saturating_sub(1)),
        };
        if after >= published {
            self.catching_up = false;
            return Ok(());
        }
        let oldest = spine.store.first_retained().await?;
        if oldest > after.next() {
            return Err(Error::EventsLost(format!(
                "the events after cursor {} are no longer in the log (it starts at {}); \
                 refetch and subscribe again",
                self.at.sequence, oldest
            )));
        }
        let entries = spine
            .store
            .entries(LogRange {
                before: Some(published.next()),
                ..LogRange::after(after, READ_BATCH)
            })
            .await?;
        if entries.is_empty() {
            self.catching_up = false;
        }
        for entry in &entries {
            self.take(entry, entry.events.iter().cloned().map(Event::from));
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<LoggedEvent>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(Ok(event));
            }
            if self.catching_up {
                if let Err(e) = self.read_log().await {
                    return Some(Err(e));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(published) => {
                    let entry = &published.entry;
                    let expected = match self.at.delivered {
                        usize::MAX => self.at.sequence + 1,
                        _ => self.at.sequence,
                    };
                    if entry.sequence > expected {
                        // Something between was missed: the log has it.
                        self.catching_up = true;
                        continue;
                    }
                    self.take(entry, published.events.iter().cloned());
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a subscriber fell behind; serving it from the log");
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Service {
    /// The committed events for an authorized caller: after `after` (an event's or an
    /// entry's cursor) from the log and then live, or from now on without it.
    pub fn watch(&self, who: &Principal, after: Option<&str>) -> Result<EventStream> {
        self.may_watch(who)?;
        // Subscribed before the position is taken, so nothing published in between is missed.
        let live = self.spine.events.subscribe();
        let published = *self.spine.published.borrow();
        let at = match after {
            // From the newest state, which the caller may already have read or been answered
            // from: a commit in it whose events are not yet published is no news to it.
            None => Position::after_entry(published.max(self.position())),
            Some(text) => {
                let at = Position::parse(text).ok_or_else(|| {
                    Error::invalid("after", format!("{text:?} is not an event cursor"))
                })?;
                if at.sequence > published.0 {
                    return Err(Error::invalid(
                        "after",
                        format!("cursor {text:?} is ahead of the log"),
                    ));
                }
                at
            }
        };
        let follower = Follower {
            spine: Arc::downgrade(&self.spine),
            live,
            at,
            backlog: VecDeque::new(),
            catching_up: after.is_some(),
        };
        let stream = futures_util::stream::unfold(Some(follower), |follower| async move {
            let mut follower = follower?;
            let item = follower.next().await?;
            // The stream ends after an error.
            let next = item.is_ok().then_some(follower);
            Some((item, next))
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_of_events_and_entries() {
        assert_eq!(
            Position::parse("12:0"),
            Some(Position {
                sequence: 12,
                delivered: 1
            })
        );
        assert_eq!(
            Position::parse("12"),
            Some(Position::after_entry(Sequence(12)))
        );
        for bad in ["", "x", "1:x", "-1", "1:2:3", ":1"] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_commit_of_this_process_seen_before_it_is_installed_is_not_caught_up_with() {
        use super::super::held_store::HeldStore;
        use super::super::{Decision, Origin, SessionSettings};
        use crate::store::Change;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("a folder");
        // Its head moves as a commit reaches it, before the service installs the commit.
        let store = Arc::new(HeldStore {
            seen_early: Some(watch::Sender::new(Sequence(0))),
            ..HeldStore::open(dir.path())
        });
        let service = Service::new(store.clone(), SessionSettings::default())
            .await
            .expect("service");
        store.arm();
        let before = service.position();
        let mut published = service.durable_commits();
        let write = service.write(Origin::system("test"), |_| {
            Ok(Decision::new(()).change(Change::PutSecret("k".into(), vec![1])))
        });
        let released = async {
            // Give the follower every chance to act on the moved head before the commit goes
            // on.
            store.entered.notified().await;
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            store.release.add_permits(1);
        };
        let within = std::time::Duration::from_secs(20);
        let (written, ()) = tokio::time::timeout(within, async { tokio::join!(write, released) })
            .await
            .expect("written in time");
        written.expect("written");
        let at = service.position();
        assert!(at > before);
        tokio::time::timeout(within, published.wait_for(|p| *p >= at))
            .await
            .expect("published in time")
            .expect("publishing");
        assert_eq!(
            store.catch_ups.load(Ordering::SeqCst),
            0,
            "the follower read the log for a commit of its own"
        );
    }
}
