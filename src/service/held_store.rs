//! A store for the service's own tests: its commits wait for the test once armed, and it can
//! show a commit at its head before the service installs it, as a look at a shared database's
//! head can.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, Semaphore, watch};

use crate::error::{Error, Result};
use crate::store::{
    CatchUp, Commit, Committed, Entry, LogRange, Sequence, SledStore, State, Store, StoreOptions,
};

/// Once armed, each commit records its batch's size, signals `entered` and waits for a
/// permit of `release`; the first one held fails when `fail_first`.
pub(super) struct HeldStore {
    pub(super) inner: SledStore,
    pub(super) armed: Mutex<bool>,
    pub(super) fail_first: bool,
    pub(super) entered: Notify,
    pub(super) release: Semaphore,
    pub(super) batches: Mutex<Vec<usize>>,
    /// When set, the durable head: raised as a commit reaches the store, before it is held.
    pub(super) seen_early: Option<watch::Sender<Sequence>>,
    /// How often the service asked to catch up with the store.
    pub(super) catch_ups: AtomicUsize,
}

impl HeldStore {
    pub(super) fn open(dir: &Path) -> HeldStore {
        HeldStore {
            inner: SledStore::open(StoreOptions::new(dir)).unwrap(),
            armed: Mutex::new(false),
            fail_first: false,
            entered: Notify::new(),
            release: Semaphore::new(0),
            batches: Mutex::new(Vec::new()),
            seen_early: None,
            catch_ups: AtomicUsize::new(0),
        }
    }

    pub(super) fn arm(&self) {
        *self.armed.lock().unwrap() = true;
    }
}

#[async_trait::async_trait]
impl Store for HeldStore {
    async fn load(&self) -> Result<(State, Sequence)> {
        self.inner.load().await
    }
    async fn commit(&self, expected: Sequence, commits: &[Commit]) -> Result<Committed> {
        if let (Some(seen), Some(last)) = (&self.seen_early, commits.last()) {
            seen.send_replace(last.entry.sequence());
        }
        if *self.armed.lock().unwrap() {
            let first = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(commits.len());
                batches.len() == 1
            };
            self.entered.notify_one();
            self.release.acquire().await.unwrap().forget();
            if first && self.fail_first {
                return Err(Error::Unavailable("held and failed".into()));
            }
        }
        self.inner.commit(expected, commits).await
    }
    async fn durable(&self, sequence: Sequence) -> Result<()> {
        self.inner.durable(sequence).await
    }
    fn durable_head(&self) -> watch::Receiver<Sequence> {
        match &self.seen_early {
            Some(seen) => seen.subscribe(),
            None => self.inner.durable_head(),
        }
    }
    async fn entries(&self, range: LogRange) -> Result<Vec<Entry>> {
        self.inner.entries(range).await
    }
    async fn first_retained(&self) -> Result<Sequence> {
        self.inner.first_retained().await
    }
    async fn prune(&self, before_ms: i64, max: usize) -> Result<usize> {
        self.inner.prune(before_ms, max).await
    }
    async fn catch_up(&self, after: Sequence) -> Result<CatchUp> {
        self.catch_ups.fetch_add(1, Ordering::SeqCst);
        self.inner.catch_up(after).await
    }
    async fn check_writable(&self) -> Result<()> {
        self.inner.check_writable().await
    }
    fn failure(&self) -> watch::Receiver<Option<String>> {
        self.inner.failure()
    }
}
