//! Slows password guessing: after a number of consecutive failed logins a username is locked
//! for a while. Other usernames are not affected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many tracked usernames, entries that are not locked are forgotten, so that
/// guesses at random usernames cannot grow the table without bound.
const MAX_TRACKED: usize = 10_000;

pub struct Throttle {
    max_failures: u32,
    lockout: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Default)]
struct Entry {
    failures: u32,
    locked_until: Option<Instant>,
}

impl Throttle {
    pub fn new(max_failures: u32, lockout: Duration) -> Throttle {
        Throttle {
            max_failures: max_failures.max(1),
            lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds left)` while the username is locked.
    pub fn check(&self, username: &str) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(username).and_then(|e| e.locked_until) {
            Some(until) => {
                let now = Instant::now();
                if until > now {
                    Err((until - now).as_secs().max(1))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    pub fn failed(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(username) {
            let now = Instant::now();
            entries.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
        }
        let entry = entries.entry(username.to_owned()).or_default();
        if entry.locked_until.is_some_and(|u| u <= Instant::now()) {
            *entry = Entry::default();
        }
        entry.failures += 1;
        if entry.failures >= self.max_failures {
            entry.locked_until = Some(Instant::now() + self.lockout);
        }
    }

    pub fn succeeded(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_one_username_after_the_limit() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..2 {
            t.failed("alice");
        }
        assert!(t.check("alice").is_ok());
        t.failed("alice");
        assert!(t.check("alice").is_err());
        assert!(t.check("bob").is_ok());
    }

    #[test]
    fn success_resets_and_lock_expires() {
        let t = Throttle::new(2, Duration::ZERO);
        t.failed("alice");
        t.succeeded("alice");
        t.failed("alice");
        assert!(t.check("alice").is_ok());
        t.failed("alice");
        // A zero lockout has already run out.
        assert!(t.check("alice").is_ok());
    }
}
