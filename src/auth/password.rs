//! argon2id password hashes in PHC string form, and the bound on how many are computed at once.
//!
//! Each check takes 19 MiB (argon2's default memory cost) for its duration, so an unbounded
//! number of parallel logins is an unbounded amount of memory. [`PasswordChecks`] runs at most
//! a fixed number at once; a caller that cannot get a slot within a short queueing time gets
//! [`Error::Busy`] (503 with `Retry-After`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored hash. With no hash (unknown user) it checks against a
/// throwaway hash, so that the answer takes as long whether or not the user exists.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DECOY: OnceLock<String> = OnceLock::new();
    let decoy =
        DECOY.get_or_init(|| hash_password("decoy password never issued").unwrap_or_default());
    let stored = hash.unwrap_or(decoy);
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && hash.is_some()
}

/// At most `slots` password hashes or checks at once, on the blocking pool.
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    queue_wait: Duration,
}

impl PasswordChecks {
    /// `slots` is at least 1.
    pub fn new(slots: usize, queue_wait: Duration) -> PasswordChecks {
        PasswordChecks {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            queue_wait,
        }
    }

    /// Twice the cores: enough to keep every core busy while one check waits to be scheduled.
    pub fn default_slots() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
    }

    /// Runs `work` once a slot is free. The slot is held until `work` has finished, even when
    /// the caller stops waiting for the answer, so the bound holds for memory too.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let slot = tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy {
                retry_after_seconds: self.queue_wait.as_secs().max(1),
            })?
            .map_err(|_| Error::Internal("the password check slots are closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| Error::Internal(format!("password check failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || hash_password(&password)).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&a)));
        assert!(!verify_password("wrong horse", Some(&a)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a hash")));
    }

    #[tokio::test]
    async fn a_full_bound_answers_busy_after_the_queueing_time() {
        let checks = Arc::new(PasswordChecks::new(1, Duration::from_millis(50)));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = {
            let checks = checks.clone();
            tokio::spawn(async move {
                checks
                    .run(move || {
                        let _ = hold.recv();
                    })
                    .await
            })
        };
        // Wait until the first job holds the only slot.
        while checks.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = checks.run(|| ()).await.unwrap_err();
        assert_eq!(
            refused,
            Error::Busy {
                retry_after_seconds: 1
            }
        );
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(checks.run(|| 7).await.unwrap(), 7);
    }
}
