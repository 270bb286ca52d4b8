//! The embedded store: one sled tree with a key prefix per kind of record, so that every
//! commit is a single atomic `apply_batch`. A dedicated flusher thread makes commits durable;
//! it is the only caller of `flush` (sled 0.34's concurrent flushes deadlock) and covers every
//! commit made before each flush started, so concurrent writers share one fsync.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::{Change, DurableFuture, Read, Session, Store, Ticket, Write};
use crate::error::{Error, Result};
use crate::model::{Group, GroupRef, Platform, Properties, Tenant, User};

const PLATFORM: &[u8] = b"p:";
const TENANT: &[u8] = b"t:";
const GROUP: &[u8] = b"g:";
const USAGE: &[u8] = b"u:";
const USER: &[u8] = b"a:";
const SESSION: &[u8] = b"x:";
const SECRET: &[u8] = b"k:";
const DEFAULT: &[u8] = b"s:default";
const PROPERTIES: &[u8] = b"s:properties";
const FORMAT: &[u8] = b"s:format";
const PROBE: &[u8] = b"s:probe";
/// How many commits the store has taken, over its whole life; written by every commit.
const COMMITS: &[u8] = b"s:commits";
/// Beside sled's files: the commit count last known on disk, written after each flush. A
/// store holding fewer commits than this has lost acknowledged writes.
const DURABLE_FILE: &str = "durable-commits";
/// While flushes follow each other, the durable commit count is written out at most this often.
const RECORD_EVERY: Duration = Duration::from_millis(100);
const FORMAT_VERSION: &[u8] = b"1";
/// Separates the parts of a composite key; no id or name may hold a control character.
const SEP: u8 = 0;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
    /// Off only for benchmarks measuring what durability costs: commits are then
    /// acknowledged before they reach the disk. The flusher still runs behind them: sled 0.34
    /// hangs every writer when its log is written fast and never flushed.
    pub flush: bool,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            path: path.into(),
            cache_capacity: 64 * 1024 * 1024,
            flush: true,
        }
    }
}

pub struct SledStore {
    db: sled::Db,
    /// The lifetime commit count when this process opened the store.
    base: u64,
    lock: RwLock<()>,
    committed: AtomicU64,
    flusher: Arc<Flusher>,
    flusher_thread: Option<JoinHandle<()>>,
    flush: bool,
}

#[derive(Debug, Clone, Default)]
struct DurableState {
    seq: u64,
    /// Why the store stopped taking writes. sled 0.34 keeps an I/O error for good (every later
    /// write and flush fails with it, even once space is back), so the first failed write or
    /// flush ends this process's writes; reopening the folder is what recovers.
    failed: Option<String>,
}

struct Flusher {
    /// Where the durable commit count is recorded, and the count the tickets start from.
    marker: Option<(PathBuf, u64)>,
    /// The count last written out, and when.
    recorded: Mutex<(u64, Option<std::time::Instant>)>,
    wanted: Mutex<(u64, bool)>,
    wake: Condvar,
    durable: watch::Sender<DurableState>,
}

fn storage(e: sled::Error) -> Error {
    Error::Unavailable(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} is unreadable: {e}"))
}

fn key(prefix: &[u8], parts: &[&str]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            k.push(SEP);
        }
        k.extend_from_slice(part.as_bytes());
    }
    k
}

fn prefix_of(prefix: &[u8], parts: &[&str]) -> Vec<u8> {
    let mut k = key(prefix, parts);
    k.push(SEP);
    k
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

impl SledStore {
    /// Opens (or creates) the store in `options.path`. Fails with a clear message when the
    /// folder is in use by another process or is not a store.
    pub fn open(options: StoreOptions) -> anyhow::Result<SledStore> {
        let path = &options.path;
        std::fs::create_dir_all(path)
            .map_err(|e| anyhow::anyhow!("cannot create data folder {}: {e}", path.display()))?;
        // sled takes an unreadable log for the end of the log: over a data file full of
        // garbage it opens an empty store. A folder that held data must still hold the format
        // marker written (and flushed) before anything else, or it is not started over.
        let held_data = std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0);
        let marker_path = path.join(DURABLE_FILE);
        let acknowledged = match std::fs::read_to_string(&marker_path) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                anyhow::anyhow!(
                    "data folder {}: {} is damaged ({:?})",
                    path.display(),
                    DURABLE_FILE,
                    text.chars().take(40).collect::<String>()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!(
                "data folder {}: cannot read {DURABLE_FILE}: {e}",
                path.display()
            ),
        };
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_error(path, e))?;
        match db.get(FORMAT).map_err(|e| open_error(path, e))? {
            Some(v) if v.as_ref() == FORMAT_VERSION => {}
            Some(v) => anyhow::bail!(
                "data folder {} holds store format {:?}, this version reads {:?}",
                path.display(),
                String::from_utf8_lossy(&v),
                String::from_utf8_lossy(FORMAT_VERSION)
            ),
            None if held_data => anyhow::bail!(
                "data folder {} holds a store that cannot be read (its data file is damaged); \
                 restore the folder from a backup, or move it away to start with an empty store",
                path.display()
            ),
            None => {
                db.insert(FORMAT, FORMAT_VERSION)
                    .map_err(|e| open_error(path, e))?;
                db.flush().map_err(|e| open_error(path, e))?;
            }
        }
        let base = match db.get(COMMITS).map_err(|e| open_error(path, e))? {
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "data folder {} holds a damaged commit count",
                        path.display()
                    )
                })?,
            None => 0,
        };
        if let Some(acknowledged) = acknowledged
            && acknowledged > base
        {
            anyhow::bail!(
                "data folder {} holds {base} commits but {acknowledged} were on disk before: its \
                 data file is damaged or was replaced; restore the folder from a backup, or move \
                 it away to start with an empty store",
                path.display()
            );
        }
        let (durable, _) = watch::channel(DurableState::default());
        let flusher = Arc::new(Flusher {
            marker: Some((marker_path, base)),
            recorded: Mutex::new((0, None)),
            wanted: Mutex::new((0, false)),
            wake: Condvar::new(),
            durable,
        });
        let flusher_thread = {
            let (db, flusher) = (db.clone(), flusher.clone());
            Some(
                std::thread::Builder::new()
                    .name("store-flusher".into())
                    .spawn(move || flusher.run(&db))?,
            )
        };
        Ok(SledStore {
            db,
            base,
            lock: RwLock::new(()),
            committed: AtomicU64::new(0),
            flusher,
            flusher_thread,
            flush: options.flush,
        })
    }

    fn get<T: DeserializeOwned>(&self, what: &str, key: &[u8]) -> Result<Option<T>> {
        match self.db.get(key).map_err(storage)? {
            Some(bytes) => decode(what, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn scan<T: DeserializeOwned>(&self, what: &str, prefix: &[u8]) -> Result<Vec<T>> {
        self.db
            .scan_prefix(prefix)
            .map(|item| {
                let (_, v) = item.map_err(storage)?;
                decode(what, &v)
            })
            .collect()
    }

    fn apply(&self, changes: Vec<Change>, commits: u64) -> Result<()> {
        let mut batch = sled::Batch::default();
        batch.insert(COMMITS, &commits.to_be_bytes());
        for change in changes {
            match change {
                Change::PutPlatform(p) => batch.insert(key(PLATFORM, &[&p.name]), encode(&p)?),
                Change::DeletePlatform(name) => batch.remove(key(PLATFORM, &[&name])),
                Change::SetDefault(Some(name)) => batch.insert(DEFAULT, name.as_bytes()),
                Change::SetDefault(None) => batch.remove(DEFAULT),
                Change::PutProperties(p) => batch.insert(PROPERTIES, encode(&p)?),
                Change::PutTenant(t) => batch.insert(key(TENANT, &[&t.tenant_id]), encode(&t)?),
                Change::DeleteTenant(id) => batch.remove(key(TENANT, &[&id])),
                Change::PutGroup(g) => {
                    let r = g.key();
                    let old = self.group_record(&r)?.and_then(|old| old.platform);
                    if old != g.platform {
                        if let Some(old) = old {
                            batch.remove(usage_key(&old, &r));
                        }
                        if let Some(new) = &g.platform {
                            batch.insert(usage_key(new, &r), &[]);
                        }
                    }
                    batch.insert(key(GROUP, &[&r.tenant_id, &r.group_id]), encode(&g)?);
                }
                Change::DeleteGroup(r) => {
                    if let Some(old) = self.group_record(&r)?.and_then(|old| old.platform) {
                        batch.remove(usage_key(&old, &r));
                    }
                    batch.remove(key(GROUP, &[&r.tenant_id, &r.group_id]));
                }
                Change::PutUser(u) => batch.insert(key(USER, &[&u.username]), encode(&u)?),
                Change::DeleteUser(name) => batch.remove(key(USER, &[&name])),
                Change::PutSession(s) => batch.insert(key(SESSION, &[&s.id]), encode(&s)?),
                Change::DeleteSession(id) => batch.remove(key(SESSION, &[&id])),
                Change::PutSecret(name, value) => batch.insert(key(SECRET, &[&name]), value),
            }
        }
        self.db.apply_batch(batch).map_err(storage)
    }

    /// `Err(Unavailable)` once a write or flush has failed.
    fn writable(&self) -> Result<()> {
        match &self.flusher.durable.borrow().failed {
            Some(cause) => Err(Error::Unavailable(cause.clone())),
            None => Ok(()),
        }
    }

    fn group_record(&self, r: &GroupRef) -> Result<Option<Group>> {
        self.get("group", &key(GROUP, &[&r.tenant_id, &r.group_id]))
    }
}

fn usage_key(platform: &str, r: &GroupRef) -> Vec<u8> {
    key(USAGE, &[platform, &r.tenant_id, &r.group_id])
}

fn open_error(path: &Path, e: sled::Error) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("could not acquire lock") {
        anyhow::anyhow!(
            "data folder {} is in use by another process (is another callrec-gateway running on it?)",
            path.display()
        )
    } else {
        anyhow::anyhow!(
            "cannot open the store in data folder {}: {text}",
            path.display()
        )
    }
}

/// What the flusher does next.
enum Next {
    Flush(u64),
    Record(u64),
}

impl Flusher {
    fn run(&self, db: &sled::Db) {
        loop {
            let next = {
                let Ok(mut wanted) = self.wanted.lock() else {
                    return;
                };
                loop {
                    let (seq, stopping) = *wanted;
                    let (durable, failed) = {
                        let state = self.durable.borrow();
                        (state.seq, state.failed.is_some())
                    };
                    if failed {
                        // Nothing more can become durable; the store's drop tries once more.
                        return;
                    }
                    if seq > durable {
                        break Next::Flush(seq);
                    }
                    if stopping {
                        // The store's drop records the final count.
                        return;
                    }
                    if self.recorded_below(durable) {
                        // Record the last flushes once the writes pause.
                        let Ok((w, waited)) = self.wake.wait_timeout(wanted, RECORD_EVERY) else {
                            return;
                        };
                        wanted = w;
                        if waited.timed_out() {
                            break Next::Record(durable);
                        }
                    } else {
                        wanted = match self.wake.wait(wanted) {
                            Ok(w) => w,
                            Err(_) => return,
                        };
                    }
                }
            };
            let target = match next {
                Next::Record(seq) => {
                    self.record_durable(seq, true);
                    continue;
                }
                Next::Flush(target) => target,
            };
            let started = std::time::Instant::now();
            let flushed = db.flush();
            metrics::histogram!("callrec_store_flush_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            match flushed {
                Ok(_) => {
                    self.durable.send_modify(|d| d.seq = d.seq.max(target));
                    self.record_durable(target, false);
                }
                Err(e) => {
                    tracing::error!(error = %e, "store flush failed; no further write is taken");
                    self.fail(e.to_string());
                    return;
                }
            }
        }
    }

    /// Marks the store failed (see [`DurableState::failed`]) and wakes every waiter.
    fn fail(&self, cause: String) {
        self.durable.send_modify(|d| {
            d.failed.get_or_insert(cause);
        });
    }

    fn recorded_below(&self, seq: u64) -> bool {
        self.recorded.lock().map(|r| r.0 < seq).unwrap_or(false)
    }

    /// Records that the first `seq` commits of this process are on disk: at most every
    /// [`RECORD_EVERY`] while flushes follow each other (unless `now`), so the file costs
    /// nothing per write. Written without fsync: the record may lag behind the store (after a
    /// busy moment, or a power loss), never run ahead of it.
    fn record_durable(&self, seq: u64, now: bool) {
        let Some((path, base)) = &self.marker else {
            return;
        };
        let Ok(mut recorded) = self.recorded.lock() else {
            return;
        };
        if !now && recorded.1.is_some_and(|at| at.elapsed() < RECORD_EVERY) {
            return;
        }
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, (base + seq).to_string())
            .and_then(|_| std::fs::rename(&tmp, path));
        match written {
            Ok(()) => *recorded = (seq, Some(std::time::Instant::now())),
            Err(e) => tracing::warn!(error = %e, "cannot record the durable commit count"),
        }
    }

    fn want(&self, seq: u64) {
        if let Ok(mut wanted) = self.wanted.lock() {
            wanted.0 = wanted.0.max(seq);
            self.wake.notify_one();
        }
    }

    fn stop(&self) {
        if let Ok(mut wanted) = self.wanted.lock() {
            wanted.1 = true;
            self.wake.notify_one();
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.flusher.stop();
        if let Some(thread) = self.flusher_thread.take() {
            let _ = thread.join();
        }
        if let Some(cause) = &self.flusher.durable.borrow().failed {
            tracing::error!(error = %cause, "the store failed earlier; not flushed at close");
            return;
        }
        match self.db.flush() {
            Ok(_) => self
                .flusher
                .record_durable(self.committed.load(Ordering::SeqCst), true),
            Err(e) => tracing::error!(error = %e, "final store flush failed"),
        }
    }
}

/// A view holding the store's lock (shared for reads, exclusive for the writer).
struct Locked<'a, G> {
    store: &'a SledStore,
    _guard: G,
}

impl<G> Read for Locked<'_, G> {
    fn platform(&self, name: &str) -> Result<Option<Platform>> {
        self.store.get("platform", &key(PLATFORM, &[name]))
    }

    fn platforms(&self) -> Result<Vec<Platform>> {
        self.store.scan("platform", PLATFORM)
    }

    fn platform_names(&self) -> Result<Vec<String>> {
        self.store
            .db
            .scan_prefix(PLATFORM)
            .keys()
            .map(|k| {
                let k = k.map_err(storage)?;
                String::from_utf8(k[PLATFORM.len()..].to_vec()).map_err(|e| corrupt("platform", e))
            })
            .collect()
    }

    fn system_default(&self) -> Result<Option<String>> {
        match self.store.db.get(DEFAULT).map_err(storage)? {
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|e| corrupt("default", e)),
            None => Ok(None),
        }
    }

    fn properties(&self) -> Result<Properties> {
        Ok(self
            .store
            .get("properties", PROPERTIES)?
            .unwrap_or_default())
    }

    fn usage(&self, platform: &str) -> Result<Vec<GroupRef>> {
        let prefix = prefix_of(USAGE, &[platform]);
        self.store
            .db
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k.map_err(storage)?;
                let rest = &k[prefix.len()..];
                let mut parts = rest.splitn(2, |b| *b == SEP);
                let (Some(t), Some(g)) = (parts.next(), parts.next()) else {
                    return Err(corrupt("usage", "malformed key"));
                };
                let text =
                    |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| corrupt("usage", e));
                Ok(GroupRef {
                    tenant_id: text(t)?,
                    group_id: text(g)?,
                })
            })
            .collect()
    }

    fn usage_count(&self, platform: &str, limit: usize) -> Result<usize> {
        let mut n = 0;
        for k in self
            .store
            .db
            .scan_prefix(prefix_of(USAGE, &[platform]))
            .keys()
        {
            k.map_err(storage)?;
            n += 1;
            if n >= limit {
                break;
            }
        }
        Ok(n)
    }

    fn tenant(&self, tenant_id: &str) -> Result<Option<Tenant>> {
        self.store.get("tenant", &key(TENANT, &[tenant_id]))
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.store.scan("tenant", TENANT)
    }

    fn group(&self, group: &GroupRef) -> Result<Option<Group>> {
        self.store.group_record(group)
    }

    fn groups(&self, tenant_id: &str) -> Result<Vec<Group>> {
        self.store.scan("group", &prefix_of(GROUP, &[tenant_id]))
    }

    fn user(&self, username: &str) -> Result<Option<User>> {
        self.store.get("user", &key(USER, &[username]))
    }

    fn users(&self) -> Result<Vec<User>> {
        self.store.scan("user", USER)
    }

    fn session(&self, id: &str) -> Result<Option<Session>> {
        self.store.get("session", &key(SESSION, &[id]))
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        self.store.scan("session", SESSION)
    }

    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .store
            .db
            .get(key(SECRET, &[name]))
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }
}

impl Write for Locked<'_, RwLockWriteGuard<'_, ()>> {
    fn commit(self: Box<Self>, changes: Vec<Change>) -> Result<Ticket> {
        self.store.writable()?;
        // Numbered while the writer lock is still held, so ticket order is commit order.
        let seq = self.store.committed.load(Ordering::SeqCst) + 1;
        if let Err(e) = self.store.apply(changes, self.store.base + seq) {
            if let Error::Unavailable(cause) = &e {
                tracing::error!(error = %cause, "store write failed; no further write is taken");
                self.store.flusher.fail(cause.clone());
            }
            return Err(e);
        }
        self.store.committed.store(seq, Ordering::SeqCst);
        self.store.flusher.want(seq);
        Ok(Ticket(seq))
    }
}

fn lock_read(lock: &RwLock<()>) -> RwLockReadGuard<'_, ()> {
    // The lock guards no data, so a panic elsewhere cannot have left anything half-done.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_write(lock: &RwLock<()>) -> RwLockWriteGuard<'_, ()> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store for SledStore {
    fn read(&self) -> Box<dyn Read + '_> {
        Box::new(Locked {
            store: self,
            _guard: lock_read(&self.lock),
        })
    }

    fn write(&self) -> Box<dyn Write + '_> {
        Box::new(Locked {
            store: self,
            _guard: lock_write(&self.lock),
        })
    }

    fn durable(&self, ticket: Ticket) -> DurableFuture<'_> {
        let mut rx = self.flusher.durable.subscribe();
        let flush = self.flush;
        Box::pin(async move {
            if !flush {
                return Ok(());
            }
            let state = rx
                .wait_for(|d| d.seq >= ticket.0 || d.failed.is_some())
                .await
                .map_err(|_| Error::Unavailable("the store is closed".into()))?
                .clone();
            match state.failed {
                // A flush failure may leave earlier commits undurable too: acknowledge nothing.
                Some(cause) => Err(Error::Unavailable(format!(
                    "the store could not flush: {cause}"
                ))),
                None => Ok(()),
            }
        })
    }

    fn last_ticket(&self) -> Ticket {
        Ticket(self.committed.load(Ordering::SeqCst))
    }

    fn check_writable(&self) -> Result<()> {
        self.writable()?;
        let _guard = lock_write(&self.lock);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Err(e) = self.db.insert(PROBE, now.to_string().as_bytes()) {
            self.flusher.fail(e.to_string());
            return Err(storage(e));
        }
        Ok(())
    }

    fn failure(&self) -> watch::Receiver<Option<String>> {
        let mut durable = self.flusher.durable.subscribe();
        let (tx, rx) = watch::channel(durable.borrow().failed.clone());
        if rx.borrow().is_none() {
            tokio::spawn(async move {
                if let Ok(state) = durable.wait_for(|d| d.failed.is_some()).await {
                    let _ = tx.send(state.failed.clone());
                }
            });
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(dir: &Path) -> u64 {
        std::fs::read_to_string(dir.join(DURABLE_FILE))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn the_durable_count_is_recorded_once_writes_pause() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        for i in 0..5 {
            let change = Change::PutSecret(format!("k{i}"), vec![1]);
            let ticket = store.write().commit(vec![change]).unwrap();
            store.durable(ticket).await.unwrap();
        }
        // Written within RECORD_EVERY of the pause, without closing the store.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while marker(dir.path()) < 5 {
            assert!(std::time::Instant::now() < deadline, "never recorded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(marker(dir.path()), 5);
        drop(store);
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        let ticket = store
            .write()
            .commit(vec![Change::PutSecret("k".into(), vec![2])])
            .unwrap();
        store.durable(ticket).await.unwrap();
        drop(store);
        // Counted over the store's life, across restarts.
        assert_eq!(marker(dir.path()), 6);
    }
}
