//! One look at the head row for many requests: every request must see what any gateway
//! committed before it arrived, and a look started after it arrived shows that. Concurrent
//! requests wait for one look instead of each sending its own, so the database sees at most
//! one of these queries at a time from a gateway, whatever its load.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::store::Sequence;

#[derive(Default)]
pub(super) struct SharedLook {
    /// Looks started so far; a look's number is its place in that count.
    started: AtomicU64,
    /// Held while a look is in flight; holds the number and outcome of the last one done.
    last: tokio::sync::Mutex<(u64, Sequence)>,
}

impl SharedLook {
    /// The head as a look started after this call saw it: a finished one's when it qualifies,
    /// else a new one's.
    pub(super) async fn newest<F, Fut>(&self, look: F) -> Result<Sequence>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Sequence>>,
    {
        let arrived = self.started.load(Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if last.0 > arrived {
            return Ok(last.1);
        }
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let head = look().await?;
        *last = (number, head);
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_look_started_before_the_call_is_not_reused() {
        let shared = SharedLook::default();
        assert_eq!(
            shared.newest(|| async { Ok(Sequence(1)) }).await.unwrap(),
            Sequence(1)
        );
        // The first look finished before this call: a new one is made.
        assert_eq!(
            shared.newest(|| async { Ok(Sequence(2)) }).await.unwrap(),
            Sequence(2)
        );
    }

    #[tokio::test]
    async fn callers_waiting_together_share_a_look_started_after_they_came() {
        let shared = std::sync::Arc::new(SharedLook::default());
        let gate = std::sync::Arc::new(tokio::sync::Notify::new());
        let looks = std::sync::Arc::new(AtomicU64::new(0));
        let first = {
            let (shared, gate, looks) = (shared.clone(), gate.clone(), looks.clone());
            tokio::spawn(async move {
                shared
                    .newest(|| async move {
                        looks.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok(Sequence(5))
                    })
                    .await
            })
        };
        // Wait (bounded) until the first look is in flight.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while looks.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        // Arrived while the first look runs: it started before, so these need a second one,
        // which all of them share.
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let (shared, looks) = (shared.clone(), looks.clone());
                tokio::spawn(async move {
                    shared
                        .newest(|| async move {
                            looks.fetch_add(1, Ordering::SeqCst);
                            Ok(Sequence(7))
                        })
                        .await
                })
            })
            .collect();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), Sequence(5));
        for w in waiters {
            assert_eq!(w.await.unwrap().unwrap(), Sequence(7));
        }
        assert_eq!(looks.load(Ordering::SeqCst), 2);
    }
}
