//! Slows password guessing: at most `max_failures` wrong passwords are checked per username
//! in a lockout window; then the username is locked for the lockout. Other usernames are not
//! affected.
//!
//! An attempt is counted when it starts, before its (slow) password check: a burst of parallel
//! guesses can never get more checks than the limit, and while the checks in flight could
//! still reach the limit, further attempts are refused. A correct password releases only its
//! own attempt; the failures counted before it stay counted until their window ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Beyond this many tracked usernames, entries that are neither locked nor in flight are
/// forgotten, so that guesses at random usernames cannot grow the table without bound.
const MAX_TRACKED: usize = 10_000;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    /// The password was never checked (no capacity, or the caller went away first).
    NotChecked,
}

/// The counts behind the lockout. Kept behind this interface so that they can live somewhere
/// shared by several processes (see `store::PgThrottle`).
#[async_trait::async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Counts an attempt for `username` that is about to be checked; refused with
    /// `TooManyAttempts` when the username is locked or its remaining attempts are all in
    /// flight (or `Unavailable` when the counts cannot be reached).
    async fn begin(&self, username: &str) -> crate::error::Result<()>;
    /// Ends an attempt that [`LoginThrottle::begin`] counted. Called from the thread that
    /// checked the password: an implementation that must wait for something records the
    /// outcome in the background, after the call returns.
    fn end(&self, username: &str, outcome: Outcome);
}

fn too_many(retry_after_seconds: u64) -> crate::error::Error {
    crate::error::Error::TooManyAttempts {
        retry_after_seconds,
    }
}

/// An attempt counted by a throttle; ends as [`Outcome::NotChecked`] unless finished.
pub struct Attempt {
    throttle: Arc<dyn LoginThrottle>,
    username: String,
    ended: bool,
}

impl Attempt {
    pub async fn begin(
        throttle: Arc<dyn LoginThrottle>,
        username: &str,
    ) -> crate::error::Result<Attempt> {
        throttle.begin(username).await?;
        Ok(Attempt {
            throttle,
            username: username.to_owned(),
            ended: false,
        })
    }

    pub fn finish(mut self, outcome: Outcome) {
        self.ended = true;
        self.throttle.end(&self.username, outcome);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.ended {
            self.throttle.end(&self.username, Outcome::NotChecked);
        }
    }
}

/// The counts of this process, in memory.
pub struct Throttle {
    max_failures: u32,
    lockout: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Default)]
struct Entry {
    /// Wrong passwords checked in the window that began at `window_start`.
    failures: u32,
    window_start: Option<Instant>,
    /// Attempts begun and not yet ended.
    in_flight: u32,
    locked_until: Option<Instant>,
}

impl Entry {
    /// Forgets a lock or window that has run out.
    fn expire(&mut self, now: Instant, lockout: Duration) {
        let lock_over = self.locked_until.is_some_and(|u| u <= now);
        let window_over = self.window_start.is_some_and(|s| s + lockout <= now);
        if lock_over || (self.locked_until.is_none() && window_over) {
            self.failures = 0;
            self.window_start = None;
            self.locked_until = None;
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0 && self.locked_until.is_none_or(|u| u <= now)
    }
}

impl Throttle {
    pub fn new(max_failures: u32, lockout: Duration) -> Throttle {
        Throttle {
            max_failures: max_failures.max(1),
            lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn seconds_left(until: Instant, now: Instant) -> u64 {
        (until - now).as_secs_f64().ceil().max(1.0) as u64
    }
}

#[async_trait::async_trait]
impl LoginThrottle for Throttle {
    async fn begin(&self, username: &str) -> crate::error::Result<()> {
        self.begin_now(username).map_err(too_many)
    }

    fn end(&self, username: &str, outcome: Outcome) {
        self.end_now(username, outcome);
    }
}

impl Throttle {
    fn begin_now(&self, username: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(username) {
            entries.retain(|_, e| !e.idle(now));
        }
        let entry = entries.entry(username.to_owned()).or_default();
        entry.expire(now, self.lockout);
        if let Some(until) = entry.locked_until {
            return Err(Self::seconds_left(until, now));
        }
        if entry.failures + entry.in_flight >= self.max_failures {
            // Checks in flight may still use up the attempts left: ask again once they end.
            return Err(1);
        }
        entry.in_flight += 1;
        Ok(())
    }

    fn end_now(&self, username: &str, outcome: Outcome) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = entries.get_mut(username) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if outcome == Outcome::Failed {
            entry.expire(now, self.lockout);
            entry.failures += 1;
            entry.window_start.get_or_insert(now);
            if entry.failures >= self.max_failures && entry.locked_until.is_none() {
                entry.locked_until = Some(now + self.lockout);
            }
        }
        if entry.idle(now) && entry.failures == 0 {
            entries.remove(username);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(t: &Throttle, user: &str, outcome: Outcome) -> Result<(), u64> {
        t.begin_now(user)?;
        t.end_now(user, outcome);
        Ok(())
    }

    #[test]
    fn locks_one_username_after_the_limit() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            attempt(&t, "alice", Outcome::Failed).unwrap();
        }
        assert!(t.begin_now("alice").unwrap_err() >= 59);
        assert!(attempt(&t, "bob", Outcome::Succeeded).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_before_their_check() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            t.begin_now("alice").unwrap();
        }
        assert_eq!(t.begin_now("alice"), Err(1));
        // One turns out right: its place is free again, the others still count.
        t.end_now("alice", Outcome::Succeeded);
        t.begin_now("alice").unwrap();
        for _ in 0..3 {
            t.end_now("alice", Outcome::Failed);
        }
        assert!(t.begin_now("alice").unwrap_err() > 1);
    }

    #[test]
    fn success_keeps_earlier_failures_and_unchecked_attempts_are_released() {
        let t = Throttle::new(2, Duration::from_secs(60));
        attempt(&t, "alice", Outcome::Failed).unwrap();
        attempt(&t, "alice", Outcome::Succeeded).unwrap();
        attempt(&t, "alice", Outcome::NotChecked).unwrap();
        attempt(&t, "alice", Outcome::Failed).unwrap();
        assert!(t.begin_now("alice").is_err());
    }

    #[test]
    fn lock_and_window_expire() {
        let t = Throttle::new(2, Duration::ZERO);
        attempt(&t, "alice", Outcome::Failed).unwrap();
        attempt(&t, "alice", Outcome::Failed).unwrap();
        // A zero lockout has already run out.
        assert!(t.begin_now("alice").is_ok());
    }

    #[tokio::test]
    async fn an_attempt_dropped_unfinished_is_not_a_failure() {
        let t: Arc<dyn LoginThrottle> = Arc::new(Throttle::new(1, Duration::from_secs(60)));
        drop(Attempt::begin(t.clone(), "alice").await.unwrap());
        Attempt::begin(t.clone(), "alice")
            .await
            .unwrap()
            .finish(Outcome::Failed);
        assert!(Attempt::begin(t, "alice").await.is_err());
    }
}
