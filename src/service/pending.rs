//! Decisions made and not yet committed: group commit.
//!
//! A write decides against the newest state with every pending decision applied (the tip),
//! queues what it decided and waits. One committer task at a time hands everything queued to
//! the store as one commit (one transaction, one flush), then installs the new state; each
//! waiting write is answered once the commit is durable. While it waits on the store, the
//! next writes decide against the tip and queue behind it, so a store that takes a round trip
//! per commit (PostgreSQL) commits as many decisions in each as arrive meanwhile.
//!
//! A decision holds only if everything before it is committed. When a commit is refused
//! (another process committed first) or fails, every decision queued behind it is dropped and
//! decided again against the newest state. A decision that changes nothing, or refuses the
//! request, was made against the tip too: it is answered only once the tip it saw is
//! committed, and decided again if that tip is dropped.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Snapshot, Spine};
use crate::error::{Error, Result};
use crate::store::{Commit, Committed, Sequence, State};

/// What a queued decision came to.
pub(super) enum Outcome {
    /// Committed and durable (or, for a decision that changed nothing, everything it saw is).
    Durable,
    /// Dropped with what it was decided against: decide again.
    Again,
}

pub(super) type Answer = oneshot::Sender<Result<Outcome>>;

/// A decision waiting for its commit.
struct Queued {
    commit: Commit,
    /// The state with this commit applied.
    state: State,
    /// The write that made it, and the decisions that changed nothing made right after it.
    answers: Vec<Answer>,
}

#[derive(Default)]
pub(super) struct Pending {
    /// The newest state with every pending decision applied; `None` when nothing is pending
    /// (the head is the tip).
    tip: Option<(Sequence, State)>,
    /// Decided and not yet handed to the store, in log order.
    queued: Vec<Queued>,
    /// Decisions that changed nothing, made against the commit in flight.
    behind_flight: Vec<Answer>,
    /// Whether a committer task runs.
    committing: bool,
}

impl Pending {
    /// The state to decide against and its position.
    pub(super) fn tip(&self, head: impl FnOnce() -> Arc<Snapshot>) -> (Sequence, State, bool) {
        match &self.tip {
            Some((at, state)) => (*at, state.clone(), true),
            None => {
                let head = head();
                (head.sequence, head.state.clone(), false)
            }
        }
    }

    /// Queues a decision made against the tip; answers whether a committer must be started.
    pub(super) fn queue(&mut self, commit: Commit, state: State, answer: Answer) -> bool {
        self.tip = Some((commit.entry.sequence(), state.clone()));
        self.queued.push(Queued {
            commit,
            state,
            answers: vec![answer],
        });
        !std::mem::replace(&mut self.committing, true)
    }

    /// Answers a decision that changed nothing, made against a pending tip, with that tip's
    /// fate.
    pub(super) fn wait_for_tip(&mut self, answer: Answer) {
        match self.queued.last_mut() {
            Some(last) => last.answers.push(answer),
            None => self.behind_flight.push(answer),
        }
    }
}

/// Commits what is queued, batch after batch, until nothing is; runs as a task of its own so
/// that a commit once begun is carried through whether or not its requests still wait.
pub(super) async fn commit_queued(spine: Arc<Spine>) {
    loop {
        {
            let mut pending = spine.lock_pending();
            if pending.queued.is_empty() {
                // Ends at once, not after a yield: a handle on the store that outlives the
                // answers to its writers would keep a closed server's data folder locked.
                pending.committing = false;
                return;
            }
        }
        // Lets the writes already running on this thread decide and queue first. A store that
        // queues a commit without waiting (sled) would otherwise take each write as a batch
        // of its own: 1.5 writes a batch under 64 writing clients, 10–17 with this, and every
        // batch costs a task, the write gate and a new snapshot. Only this task takes from the
        // queue, so it is not empty after the yield either.
        tokio::task::yield_now().await;
        let batch = std::mem::take(&mut spine.lock_pending().queued);
        let mut commits = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        let mut last_state = None;
        for queued in batch {
            answers.push(queued.answers);
            commits.push(queued.commit);
            last_state = Some(queued.state);
        }
        let Some(last_state) = last_state else {
            continue;
        };
        let committed = commit_batch(&spine, commits, last_state).await;
        // The batch's last position when it was committed.
        let last = committed.as_ref().ok().copied().flatten();
        let (behind, dropped) = {
            let mut pending = spine.lock_pending();
            let behind = std::mem::take(&mut pending.behind_flight);
            let dropped = if last.is_some() {
                Vec::new()
            } else {
                std::mem::take(&mut pending.queued)
            };
            if pending.queued.is_empty() {
                // The head is the tip again, or the tip was dropped with the batch.
                pending.tip = None;
            }
            (behind, dropped)
        };
        match last {
            Some(last) => {
                // Answered once durable, by a task of the batch's own: each write then wakes
                // once, not once for its commit and again for the disk, and the next batch is
                // not held up by this one's flush.
                let store = spine.store.clone();
                tokio::spawn(async move {
                    let durable = store.durable(last).await;
                    // Let go before answering, as the committer does (above).
                    drop(store);
                    let answers = answers.into_iter().flatten();
                    for answer in answers.chain(behind) {
                        let _ = answer.send(durable.clone().map(|()| Outcome::Durable));
                    }
                });
            }
            None => {
                for answer in answers.into_iter().flatten() {
                    let _ = answer.send(match &committed {
                        Err(e) => Err(e.clone()),
                        Ok(_) => Ok(Outcome::Again),
                    });
                }
                for answer in behind {
                    let _ = answer.send(Ok(Outcome::Again));
                }
            }
        }
        // Decided against a batch that was not committed.
        for answer in dropped.into_iter().flat_map(|q| q.answers) {
            let _ = answer.send(Ok(Outcome::Again));
        }
    }
}

/// Commits one batch and installs its state: `Some(last position)`, or `None` when another
/// process committed first (caught up with, so the batch's writes can decide again).
async fn commit_batch(
    spine: &Spine,
    commits: Vec<Commit>,
    state: State,
) -> Result<Option<Sequence>> {
    // Ordered with catching up, which installs other processes' commits.
    let _gate = spine.write_gate.lock().await;
    let Some(first) = commits.first() else {
        return Err(Error::Internal("an empty batch of commits".into()));
    };
    let expected = Sequence(first.entry.sequence - 1);
    match spine.store.commit(expected, &commits).await? {
        Committed::At(at) => {
            let mut recent = spine.recent.lock().unwrap_or_else(|p| p.into_inner());
            for commit in commits {
                recent.insert(commit.entry.sequence, Arc::new(commit.entry));
            }
            drop(recent);
            spine.install(Snapshot::new(at, state), false);
            Ok(Some(at))
        }
        Committed::Conflict => {
            spine.catch_up().await?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;

    use futures_util::poll;

    use super::super::held_store::HeldStore;
    use super::super::{Decision, Origin, Service, SessionSettings};
    use crate::error::{Error, Result};
    use crate::store::{Change, Read, Store};

    async fn service(dir: &std::path::Path, fail_first: bool) -> (Service, Arc<HeldStore>) {
        let store = Arc::new(HeldStore {
            fail_first,
            ..HeldStore::open(dir)
        });
        let service = Service::new(store.clone(), SessionSettings::default())
            .await
            .unwrap();
        put(&service, "x", 1).await.unwrap();
        store.arm();
        (service, store)
    }

    async fn put(service: &Service, name: &str, value: u8) -> Result<()> {
        service
            .write(Origin::system("test"), |_| {
                Ok(Decision::new(()).change(Change::PutSecret(name.into(), vec![value])))
            })
            .await
    }

    /// Answers within a generous bound, or fails the test instead of hanging it.
    async fn within<T>(answer: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(20), answer)
            .await
            .expect("an answer in time")
    }

    fn secret(r: &dyn Read, name: &str) -> Option<Vec<u8>> {
        r.secret(name).unwrap()
    }

    #[tokio::test]
    async fn writes_that_come_while_a_commit_is_on_its_way_go_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (service, store) = service(dir.path(), false).await;
        let mut first = pin!(put(&service, "x", 2));
        assert!(poll!(&mut first).is_pending());
        store.entered.notified().await;
        let mut more: Vec<_> = (10..20u8)
            .map(|v| Box::pin(put(&service, "x", v)))
            .collect();
        for write in &mut more {
            assert!(poll!(write).is_pending(), "answered before its commit");
        }
        store.release.add_permits(2);
        within(first).await.unwrap();
        for write in more {
            within(write).await.unwrap();
        }
        assert_eq!(*store.batches.lock().unwrap(), vec![1, 10]);
        assert_eq!(
            service.read(|r| Ok(secret(r, "x"))).unwrap(),
            Some(vec![19])
        );
        let (stored, _) = store.load().await.unwrap();
        assert_eq!(secret(&stored, "x"), Some(vec![19]));
    }

    #[tokio::test]
    async fn what_was_decided_against_a_commit_that_failed_is_decided_again() {
        let dir = tempfile::tempdir().unwrap();
        let (service, store) = service(dir.path(), true).await;
        let mut failing = pin!(put(&service, "x", 2));
        assert!(poll!(&mut failing).is_pending());
        store.entered.notified().await;
        // Made while x = 2 is on its way: a refusal that holds only if it is committed...
        let mut refusal = pin!(service.write(Origin::system("test"), |r| {
            match secret(r, "x") {
                Some(v) if v == [2] => Err(Error::InvalidOperation("x is 2".into())),
                _ => Ok(Decision::new(())),
            }
        }));
        assert!(
            poll!(&mut refusal).is_pending(),
            "answered before the commit it saw"
        );
        // ...and a copy of it, queued behind it.
        let mut copy = pin!(service.write(Origin::system("test"), |r| {
            let x = secret(r, "x").unwrap_or_default();
            Ok(Decision::new(()).change(Change::PutSecret("y".into(), x)))
        }));
        assert!(poll!(&mut copy).is_pending());
        store.release.add_permits(2);
        assert!(matches!(within(failing).await, Err(Error::Unavailable(_))));
        within(refusal).await.expect("decided again against x = 1");
        within(copy).await.unwrap();
        let (stored, _) = store.load().await.unwrap();
        assert_eq!(secret(&stored, "x"), Some(vec![1]));
        assert_eq!(secret(&stored, "y"), Some(vec![1]));
        assert_eq!(service.read(|r| Ok(secret(r, "y"))).unwrap(), Some(vec![1]));
    }
}
