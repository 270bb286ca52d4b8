//! The embedded store: one sled tree with a key prefix per kind of record and one for the log,
//! so that a commit (its changes and its log entry) is a set of keys written all or none.
//!
//! The log is kept in chunks: consecutive entries of the commits the writer applies as one
//! group are one value (up to [`CHUNK_BYTES_MAX`]), under the first one's sequence. An insert
//! into sled costs about the same whatever its size, and the log's keys are all appended at
//! one end of the tree, whose leaf splits every eight or so keys: one key per commit made the
//! log's inserts a third of what a write cost the server with flushing off. Chunks are
//! compressed: the entries of a group repeat the same names and values, and every byte of
//! the log is written by sled three to four times (the insert, the group's record, the leaf's
//! rewrites as it fills and splits).
//!
//! Two threads of the store's own do the writing, so that a writer never waits inside sled
//! while it holds the service's turn to write:
//! - the **writer** applies commits in log order, each group of queued commits at once
//!   (several commits' keys, the log entries included), recorded before it is written so that
//!   a group cut short by a crash is completed when the store opens ([`batch`]);
//! - the **flusher** makes them durable. It is the only caller of `flush` (sled 0.34's
//!   concurrent flushes deadlock) and covers every commit applied before each flush started,
//!   so concurrent writers share one fsync.
//!
//! A commit is queued in order under the store's commit lock and answered `At` at once (this
//! process alone has the folder, so none can conflict); [`Store::durable`] resolves once the
//! writer has applied it and, with flushing on, the flusher has flushed it. A write that sled
//! refuses fails the store: nothing queued after it is applied, and nothing is acknowledged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};

use super::records::{
    GroupRecord, PlatformRecord, PropertiesRecord, SessionRecord, TenantRecord, UserRecord,
};
use super::{CatchUp, Change, Commit, Committed, Entry, LogRange, Sequence, State, Store};
use crate::error::{Error, Result};
use crate::model::{Group, Platform, Properties, Tenant, User};
use batch::Ops;

mod batch;

const PLATFORM: &[u8] = b"p:";
const TENANT: &[u8] = b"t:";
const GROUP: &[u8] = b"g:";
const USAGE: &[u8] = b"u:";
const USER: &[u8] = b"a:";
const SESSION: &[u8] = b"x:";
const SECRET: &[u8] = b"k:";
/// The log: chunks of entries under their first entry's sequence, big-endian so that key order
/// is log order. A chunk is one entry's JSON, or a JSON array of two or more in order,
/// compressed (see [`LZ4`]); the format before stored each entry's JSON as it is, which reads
/// as a chunk of one.
const LOG: &[u8] = b"l:";
const DEFAULT: &[u8] = b"s:default";
const PROPERTIES: &[u8] = b"s:properties";
const FORMAT: &[u8] = b"s:format";
const PROBE: &[u8] = b"s:probe";
/// The sequence of the last log entry: how many commits the store has taken over its whole
/// life (a store of format 1 counted them before it kept a log); written by every commit.
const COMMITS: &[u8] = b"s:commits";
/// Beside sled's files: the commit count last known on disk, written after each flush. A
/// store holding fewer commits than this has lost acknowledged writes.
const DURABLE_FILE: &str = "durable-commits";
/// While flushes follow each other, the durable commit count is written out at most this often.
const RECORD_EVERY: Duration = Duration::from_millis(100);
/// With flushing off, how often the flusher flushes: nobody waits for it, so flushing behind
/// every batch would only spend what flushing off is there to leave out.
const UNWAITED_FLUSH_EVERY: Duration = Duration::from_millis(100);
const FORMAT_VERSION: &[u8] = b"3";
/// The format that kept one log entry per key: read as it is (each entry a chunk of one), and
/// marked as the current one when opened so that a release that reads it no more refuses it.
const FORMAT_ONE_ENTRY_PER_KEY: &[u8] = b"2";
/// The format before the log: the same records without versions, plus a usage index on disk
/// (now built in memory). Opened by upgrading: its history starts empty.
const FORMAT_BEFORE_LOG: &[u8] = b"1";
/// Separates the parts of a composite key; no id or name may hold a control character.
const SEP: u8 = 0;
/// Most bytes of JSON in a chunk of the log made of two entries or more (compressed, at most a
/// few bytes more in the worst case). sled writes a node bigger than
/// a quarter of its 512 KiB segment into a file of its own, which its flush does not sync; a
/// leaf holds up to 17 keys before it is split, so 17 chunks must stay well under 128 KiB.
const CHUNK_BYTES_MAX: usize = 6 * 1024;
/// Marks a chunk compressed with LZ4 (its JSON's length, 4 bytes little-endian, then the
/// block), as the writer stores them; a chunk of one uncompressed entry starts with `{`.
const LZ4: u8 = 1;
/// The longest JSON a compressed chunk may claim to hold: more is taken for damage rather
/// than allocated (a chunk holds one entry, or several within [`CHUNK_BYTES_MAX`]).
const CHUNK_JSON_MAX: usize = 64 * 1024 * 1024;
/// Most commits the writer applies as one group (and [`batch::BYTES_MAX`] its bytes): bounds
/// its memory and how long it holds sled.
const GROUP_MAX: usize = 256;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
    /// Off only for benchmarks measuring what durability costs: commits are then
    /// acknowledged before they reach the disk. The flusher still flushes every
    /// [`UNWAITED_FLUSH_EVERY`]: sled 0.34 hangs every writer when its log is written fast and
    /// never flushed.
    pub flush: bool,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            path: path.into(),
            cache_capacity: 16 * 1024 * 1024,
            flush: true,
        }
    }
}

pub struct SledStore {
    db: sled::Db,
    /// The sequence of the last log entry queued, and the queue to the writer (`None` once the
    /// store is closing). One lock, so that commits reach the writer in log order.
    committed: Mutex<(u64, Option<mpsc::Sender<Queued>>)>,
    flusher: Arc<Flusher>,
    writer_thread: Option<JoinHandle<()>>,
    flusher_thread: Option<JoinHandle<()>>,
}

/// A commit on its way to the writer: its log entry and its records' keys, already encoded.
struct Queued {
    sequence: u64,
    entry: Vec<u8>,
    ops: Ops,
}

impl Queued {
    fn size(&self) -> usize {
        self.entry.len() + self.ops.size()
    }
}

/// A group's keys, in the order they are written: its commits' entries in chunks of the log
/// (each under [`CHUNK_BYTES_MAX`] unless one entry is more), their records, and the commit
/// count last (see [`batch`]).
fn group_ops(group: Vec<Queued>) -> Ops {
    let Some(last) = group.last().map(|q| q.sequence) else {
        return Ops::default();
    };
    let mut ops = Ops::default();
    let mut records = Vec::new();
    let mut open: Option<(u64, Vec<Vec<u8>>, usize)> = None;
    for queued in group {
        let len = queued.entry.len();
        match &mut open {
            Some((_, entries, bytes)) if *bytes + 1 + len <= CHUNK_BYTES_MAX => {
                *bytes += 1 + len;
                entries.push(queued.entry);
            }
            _ => {
                let next = (queued.sequence, vec![queued.entry], len + 2);
                if let Some((first, entries, _)) = open.replace(next) {
                    ops.insert(log_key(first), chunk(entries));
                }
            }
        }
        records.extend(queued.ops.0);
    }
    if let Some((first, entries, _)) = open {
        ops.insert(log_key(first), chunk(entries));
    }
    ops.0.extend(records);
    ops.insert(COMMITS, last.to_be_bytes());
    ops
}

/// One chunk of the log from its entries' JSON (see [`LOG`]).
fn chunk(mut entries: Vec<Vec<u8>>) -> Vec<u8> {
    let json = if entries.len() == 1 {
        entries.pop().unwrap_or_default()
    } else {
        crate::json::array_of(&entries)
    };
    let mut out = vec![LZ4];
    out.extend(lz4_flex::block::compress_prepend_size(&json));
    out
}

/// The entries of one chunk of the log, in order.
fn entries_of(chunk: &[u8]) -> Result<Vec<Entry>> {
    let json;
    let chunk = match chunk.split_first() {
        Some((&LZ4, rest)) => {
            let damaged = |e: &dyn std::fmt::Display| corrupt("log chunk", e);
            let (size, block) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| damaged(&"cut short"))?;
            let size = u32::from_le_bytes(*size) as usize;
            if size > CHUNK_JSON_MAX {
                return Err(damaged(&format!("{size} bytes")));
            }
            json = lz4_flex::block::decompress(block, size).map_err(|e| damaged(&e))?;
            &json[..]
        }
        _ => chunk,
    };
    match chunk.first() {
        Some(b'[') => decode("log chunk", chunk),
        _ => Ok(vec![decode("log entry", chunk)?]),
    }
}

/// A chunk holding `entries`, which are already stored (a chunk partly pruned).
fn encode_chunk(entries: &[Entry]) -> Result<Vec<u8>> {
    Ok(chunk(entries.iter().map(encode).collect::<Result<_>>()?))
}

#[derive(Debug, Clone, Default)]
struct DurableState {
    /// The last sequence on disk.
    seq: u64,
    /// The last sequence the writer applied (readable from sled, durable once flushed).
    applied: u64,
    /// Why the store stopped taking writes. sled 0.34 keeps an I/O error for good (every later
    /// write and flush fails with it, even once space is back), so the first failed write or
    /// flush ends this process's writes; reopening the folder is what recovers.
    failed: Option<String>,
}

struct Flusher {
    /// Where the last durable sequence is recorded.
    marker: PathBuf,
    /// The count last written out, and when.
    recorded: Mutex<(u64, Option<std::time::Instant>)>,
    wanted: Mutex<(u64, bool)>,
    wake: Condvar,
    /// Changed in place; its receivers are told only of a failure (see [`Waiting`]).
    durable: watch::Sender<DurableState>,
    /// Whether a commit is acknowledged once flushed (or once applied).
    flush: bool,
    waiting: Mutex<Waiting>,
    /// The last durable log position, for followers of the log.
    head: watch::Sender<Sequence>,
}

/// Who waits for which position, woken only once it is reached or the store fails: under 64
/// writing clients a watch would wake every waiting request at every batch and every flush,
/// most of them to wait again.
#[derive(Default)]
struct Waiting {
    /// For a position to be applied (readable from sled).
    applied: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
    /// For a position to be acknowledged (see [`Flusher::acknowledged`]).
    acknowledged: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
}

/// Takes out the waiters of every position up to `reached` (all of them once `failed`).
fn reached(
    waiting: &mut BTreeMap<u64, Vec<oneshot::Sender<()>>>,
    reached: u64,
    failed: bool,
) -> Vec<oneshot::Sender<()>> {
    let later = if failed {
        BTreeMap::new()
    } else {
        waiting.split_off(&reached.saturating_add(1))
    };
    std::mem::replace(waiting, later)
        .into_values()
        .flatten()
        .collect()
}

fn closed() -> Error {
    Error::Unavailable("the store is closed".into())
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

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

fn log_key(sequence: u64) -> Vec<u8> {
    let mut k = LOG.to_vec();
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

fn count(what: &str, bytes: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(what, "not an 8-byte count"))
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
            Some(v) if v.as_ref() == FORMAT_ONE_ENTRY_PER_KEY => {
                db.insert(FORMAT, FORMAT_VERSION)
                    .and_then(|_| db.flush())
                    .map_err(|e| open_error(path, e))?;
            }
            Some(v) if v.as_ref() == FORMAT_BEFORE_LOG => {
                upgrade_from_format_1(&db).map_err(|e| open_error(path, e))?;
                tracing::info!(data = %path.display(), "store upgraded to format 3; the change log starts now");
            }
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
        let record = db.open_tree(batch::TREE).map_err(|e| open_error(path, e))?;
        finish_interrupted_group(&db, &record).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the store in data folder {}: {e}",
                path.display()
            )
        })?;
        let base = match db.get(COMMITS).map_err(|e| open_error(path, e))? {
            Some(v) => count("commit count", &v).map_err(|_| {
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
        let (durable, _) = watch::channel(DurableState {
            seq: base,
            applied: base,
            failed: None,
        });
        let flusher = Arc::new(Flusher {
            marker: marker_path,
            recorded: Mutex::new((base, None)),
            wanted: Mutex::new((base, false)),
            wake: Condvar::new(),
            durable,
            flush: options.flush,
            waiting: Mutex::new(Waiting::default()),
            head: watch::Sender::new(Sequence(base)),
        });
        let flusher_thread = {
            let (db, flusher) = (db.clone(), flusher.clone());
            Some(
                std::thread::Builder::new()
                    .name("store-flusher".into())
                    .spawn(move || flusher.run(&db))?,
            )
        };
        let (queue, queued) = mpsc::channel();
        let writer_thread = {
            let (db, flusher) = (db.clone(), flusher.clone());
            Some(
                std::thread::Builder::new()
                    .name("store-writer".into())
                    .spawn(move || write_queued(&db, &record, &flusher, &queued))?,
            )
        };
        Ok(SledStore {
            db,
            committed: Mutex::new((base, Some(queue))),
            flusher,
            writer_thread,
            flusher_thread,
        })
    }

    /// Applies every record under `prefix` to `state`, one at a time (never all of them in
    /// memory at once besides the state).
    fn load_each<T: DeserializeOwned>(
        &self,
        state: &mut State,
        what: &str,
        prefix: &[u8],
        change: impl Fn(T) -> Result<Change>,
    ) -> Result<()> {
        for item in self.db.scan_prefix(prefix) {
            let (_, v) = item.map_err(storage)?;
            state.apply(&change(decode(what, &v)?)?);
        }
        Ok(())
    }

    fn load_state(&self) -> Result<(State, Sequence)> {
        let mut state = State::default();
        let s = &mut state;
        self.load_each(s, "platform", PLATFORM, |p: PlatformRecord| {
            Ok(Change::PutPlatform(Platform::from(p)))
        })?;
        if let Some(name) = self.db.get(DEFAULT).map_err(storage)? {
            let name = String::from_utf8(name.to_vec()).map_err(|e| corrupt("default", e))?;
            s.apply(&Change::SetDefault(Some(name)));
        }
        if let Some(p) = self.db.get(PROPERTIES).map_err(storage)? {
            let p: PropertiesRecord = decode("properties", &p)?;
            s.apply(&Change::PutProperties(Properties::from(p)));
        }
        self.load_each(s, "tenant", TENANT, |t: TenantRecord| {
            Ok(Change::PutTenant(Tenant::from(t)))
        })?;
        self.load_each(s, "group", GROUP, |g: GroupRecord| {
            Ok(Change::PutGroup(Group::from(g)))
        })?;
        self.load_each(s, "user", USER, |u: UserRecord| {
            Ok(Change::PutUser(User::try_from(u)?))
        })?;
        self.load_each(s, "session", SESSION, |r: SessionRecord| {
            Ok(Change::PutSession(r.into()))
        })?;
        for item in self.db.scan_prefix(SECRET) {
            let (k, v) = item.map_err(storage)?;
            let name =
                String::from_utf8(k[SECRET.len()..].to_vec()).map_err(|e| corrupt("secret", e))?;
            s.apply(&Change::PutSecret(name, v.to_vec()));
        }
        Ok((state, Sequence(self.last())))
    }

    fn last(&self) -> u64 {
        self.committed.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// A commit as the writer takes it.
    fn queued(changes: &[Change], entry: &Entry) -> Result<Queued> {
        let mut ops = Ops::default();
        put_changes(&mut ops, changes)?;
        Ok(Queued {
            sequence: entry.sequence,
            entry: encode(entry)?,
            ops,
        })
    }

    /// Waits until the writer has applied every commit queued before the call, so that what
    /// is read from sled includes them.
    async fn applied(&self) -> Result<()> {
        if !self.flusher.until(self.last(), false).await {
            return Err(closed());
        }
        self.writable()
    }

    /// Writes what an export holds into this store, which must be empty: the records, the log
    /// entries as they were, and the log position; then flushes.
    pub fn import(
        &self,
        changes: &[Change],
        log: &[Entry],
        sequence: Sequence,
    ) -> anyhow::Result<()> {
        self.writable()?;
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        if committed.0 != 0 || self.db.scan_prefix(USER).next().is_some() {
            anyhow::bail!("the data folder is not empty: import only into a new store");
        }
        let mut ops = Ops::default();
        ops.insert(COMMITS, sequence.0.to_be_bytes());
        for entry in log {
            ops.insert(log_key(entry.sequence), encode(entry)?);
        }
        put_changes(&mut ops, changes)?;
        let mut batch = sled::Batch::default();
        ops.add_to(&mut batch);
        blocking(|| self.db.apply_batch(batch).and_then(|_| self.db.flush()))?;
        committed.0 = sequence.0;
        self.flusher.applied(sequence.0);
        Ok(())
    }
}

fn put_changes(ops: &mut Ops, changes: &[Change]) -> Result<()> {
    {
        for change in changes {
            match change {
                Change::PutPlatform(p) => {
                    ops.insert(key(PLATFORM, &[&p.name]), encode(&PlatformRecord::from(p))?)
                }
                Change::DeletePlatform(name) => ops.remove(key(PLATFORM, &[name])),
                Change::SetDefault(Some(name)) => ops.insert(DEFAULT, name.as_bytes()),
                Change::SetDefault(None) => ops.remove(DEFAULT),
                Change::PutProperties(p) => {
                    ops.insert(PROPERTIES, encode(&PropertiesRecord::from(p))?)
                }
                Change::PutTenant(t) => ops.insert(
                    key(TENANT, &[&t.tenant_id]),
                    encode(&TenantRecord::from(t))?,
                ),
                Change::DeleteTenant(id) => ops.remove(key(TENANT, &[id])),
                Change::PutGroup(g) => ops.insert(
                    key(GROUP, &[&g.tenant_id, &g.group_id]),
                    encode(&GroupRecord::from(g))?,
                ),
                Change::DeleteGroup(r) => ops.remove(key(GROUP, &[&r.tenant_id, &r.group_id])),
                Change::PutUser(u) => {
                    ops.insert(key(USER, &[&u.username]), encode(&UserRecord::from(u))?)
                }
                Change::DeleteUser(name) => ops.remove(key(USER, &[name])),
                Change::PutSession(s) => {
                    ops.insert(key(SESSION, &[&s.id]), encode(&SessionRecord::from(s))?)
                }
                Change::DeleteSession(id) => ops.remove(key(SESSION, &[id])),
                Change::PutSecret(name, value) => {
                    ops.insert(key(SECRET, &[name]), value.as_slice())
                }
            }
        }
    }
    Ok(())
}

impl SledStore {
    fn queue_commit(
        &self,
        expected: Sequence,
        changes: &[Change],
        entry: &Entry,
    ) -> Result<Committed> {
        self.writable()?;
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        if committed.0 != expected.0 || entry.sequence != expected.0 + 1 {
            return Ok(Committed::Conflict);
        }
        let queued = Self::queued(changes, entry)?;
        let sent = committed.1.as_ref().map(|queue| queue.send(queued));
        if !matches!(sent, Some(Ok(()))) {
            return Err(closed());
        }
        committed.0 = entry.sequence;
        Ok(Committed::At(entry.sequence()))
    }

    /// Commits `changes` as the system would, without a service (fixtures of tests and
    /// benchmarks).
    #[cfg(feature = "test-util")]
    pub fn seed(&self, changes: &[Change]) -> Result<Sequence> {
        let last = Sequence(self.last());
        let entry = Entry::new(last.next(), super::now_ms(), "system", "seed");
        match self.queue_commit(last, changes, &entry)? {
            Committed::At(at) => Ok(at),
            Committed::Conflict => Err(Error::Internal("a seed raced another commit".into())),
        }
    }

    fn read_entries(&self, range: LogRange) -> Result<Vec<Entry>> {
        let after = range.after.0;
        let before = range.before.map_or(u64::MAX, |b| b.0);
        let from = log_key(after.saturating_add(1));
        let to = log_key(before);
        if from >= to {
            return Ok(Vec::new());
        }
        // The chunk holding the first entry wanted may begin before it.
        let start = match self.db.range(LOG.to_vec()..from.clone()).next_back() {
            Some(item) => item.map_err(storage)?.0.to_vec(),
            None => from,
        };
        let mut chunks = self.db.range(start..to);
        let mut out = Vec::new();
        while out.len() < range.limit {
            let item = if range.newest_first {
                chunks.next_back()
            } else {
                chunks.next()
            };
            let Some(item) = item else { break };
            let (_, v) = item.map_err(storage)?;
            let mut entries = entries_of(&v)?;
            if range.newest_first {
                entries.reverse();
            }
            let room = range.limit - out.len();
            out.extend(
                entries
                    .into_iter()
                    .filter(|e| e.sequence > after && e.sequence < before)
                    .take(room),
            );
        }
        Ok(out)
    }

    fn oldest(&self) -> Result<Sequence> {
        match self.db.scan_prefix(LOG).keys().next() {
            Some(k) => {
                let k = k.map_err(storage)?;
                Ok(Sequence(count("log key", &k[LOG.len()..])?))
            }
            None => Ok(Sequence(self.last() + 1)),
        }
    }

    fn prune_now(&self, before_ms: i64, max: usize) -> Result<usize> {
        self.writable()?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.db.scan_prefix(LOG) {
            if n >= max {
                break;
            }
            let (k, v) = item.map_err(storage)?;
            let entries = entries_of(&v)?;
            let old = entries
                .iter()
                .take_while(|e| e.at_ms < before_ms)
                .count()
                .min(max - n);
            if old == 0 {
                break;
            }
            batch.remove(k);
            n += old;
            if let Some(kept) = entries.get(old..).filter(|rest| !rest.is_empty()) {
                // The rest of the chunk stays, under its first entry's sequence.
                batch.insert(log_key(kept[0].sequence), encode_chunk(kept)?);
                break;
            }
        }
        if n > 0 {
            if let Err(e) = self.db.apply_batch(batch) {
                self.flusher.fail(e.to_string());
                return Err(storage(e));
            }
            let applied = self.flusher.durable.borrow().applied;
            self.flusher.want(applied);
        }
        Ok(n)
    }

    /// `Err(Unavailable)` once a write or flush has failed.
    fn writable(&self) -> Result<()> {
        match &self.flusher.durable.borrow().failed {
            Some(cause) => Err(Error::Unavailable(cause.clone())),
            None => Ok(()),
        }
    }
}

/// Format 1 kept a usage index on disk; the state builds it in memory now. The records read
/// as they are. Flushed before anything else is written in the new format.
fn upgrade_from_format_1(db: &sled::Db) -> sled::Result<()> {
    let mut batch = sled::Batch::default();
    for k in db.scan_prefix(USAGE).keys() {
        batch.remove(k?);
    }
    batch.insert(FORMAT, FORMAT_VERSION);
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}

/// Runs a call into sled, which can block inside it (a full disk, a slow device, its global
/// lock held by a blocked batch): on a multi-threaded runtime the calling worker first hands
/// its other tasks to another thread, so requests that need no store keep being served.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
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

/// The writer thread: applies the queued commits in log order, as many as are waiting (within
/// bounds) as one group, recorded first (see [`batch`]), until the store closes (its queue is
/// dropped, then drained).
fn write_queued(
    db: &sled::Db,
    record: &sled::Tree,
    flusher: &Flusher,
    queued: &mpsc::Receiver<Queued>,
) {
    let _failed_if_it_panics = FailOnPanic(flusher);
    while let Ok(first) = queued.recv() {
        let mut bytes = first.size();
        let mut group = vec![first];
        while group.len() < GROUP_MAX && bytes < batch::BYTES_MAX {
            let Ok(next) = queued.try_recv() else { break };
            bytes += next.size();
            group.push(next);
        }
        let last = group.last().map_or(0, |q| q.sequence);
        if flusher.durable.borrow().failed.is_some() {
            // Applied after a write that failed, these would leave a gap in the log.
            continue;
        }
        let ops = group_ops(group);
        let written = record
            .insert(batch::KEY, ops.record())
            .and_then(|_| ops.write(db));
        match written {
            Ok(()) => flusher.applied(last),
            Err(e) => {
                tracing::error!(error = %e, "store write failed; no further write is taken");
                flusher.fail(e.to_string());
            }
        }
    }
}

/// Applies again the group the writer was applying when the process ended, if the commit count
/// it ends with did not make it to disk (see [`batch`]).
fn finish_interrupted_group(db: &sled::Db, record: &sled::Tree) -> anyhow::Result<()> {
    let Some(bytes) = record.get(batch::KEY)? else {
        return Ok(());
    };
    let damaged = || anyhow::anyhow!("its record of the last writes is damaged");
    let ops = Ops::from_record(&bytes).ok_or_else(damaged)?;
    let recorded = match ops.0.last() {
        Some((k, Some(v))) if k.as_slice() == COMMITS => count("commit count", v)?,
        _ => return Err(damaged()),
    };
    let stored = match db.get(COMMITS)? {
        Some(v) => count("commit count", &v)?,
        None => 0,
    };
    // Only a group ahead of the stored count was cut short; one behind it (never written
    // after it) must not take the count back.
    if recorded <= stored {
        return Ok(());
    }
    tracing::warn!(
        "the last group of commits was cut short when the process ended; applying it again"
    );
    ops.write(db)?;
    db.flush()?;
    Ok(())
}

/// Fails the store when the writer thread ends in a panic: the requests waiting for their
/// commits to be applied are answered 503, not left waiting.
struct FailOnPanic<'a>(&'a Flusher);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail("the store's writer thread panicked".into());
        }
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
            if !self.flush {
                // Nothing waits for these flushes: one now and then keeps sled going.
                std::thread::sleep(UNWAITED_FLUSH_EVERY);
            }
            let started = std::time::Instant::now();
            let flushed = db.flush();
            metrics::histogram!("callrec_store_flush_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            match flushed {
                Ok(_) => {
                    self.durable.send_if_modified(|d| {
                        d.seq = d.seq.max(target);
                        false
                    });
                    self.wake_waiting();
                    self.head.send_if_modified(|h| {
                        let newer = target > h.0;
                        if newer {
                            h.0 = target;
                        }
                        newer
                    });
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

    /// The writer applied every commit up to `seq`: the flusher may make them durable. With
    /// flushing off they are acknowledged now, so followers of the log need not wait either.
    fn applied(&self, seq: u64) {
        self.durable.send_if_modified(|d| {
            d.applied = d.applied.max(seq);
            false
        });
        self.wake_waiting();
        if !self.flush {
            self.head.send_replace(Sequence(seq));
        }
        self.want(seq);
    }

    /// Marks the store failed (see [`DurableState::failed`]) and wakes every waiter.
    fn fail(&self, cause: String) {
        self.durable.send_modify(|d| {
            d.failed.get_or_insert(cause);
        });
        self.wake_waiting();
    }

    /// The last position acknowledged: durable, or with flushing off applied.
    fn acknowledged(&self, d: &DurableState) -> u64 {
        if self.flush { d.seq } else { d.applied }
    }

    /// Resolves once `seq` is acknowledged (or only applied, unless `acknowledged`), or the
    /// store has failed: `false` only if the store went away first.
    async fn until(&self, seq: u64, acknowledged: bool) -> bool {
        let wait = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let d = self.durable.borrow();
            let at = if acknowledged {
                self.acknowledged(&d)
            } else {
                d.applied
            };
            if at >= seq || d.failed.is_some() {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            let waiting = if acknowledged {
                &mut waiting.acknowledged
            } else {
                &mut waiting.applied
            };
            waiting.entry(seq).or_default().push(tx);
            rx
        };
        wait.await.is_ok()
    }

    /// Answers the waiters of what the durable state now holds. Called after each change to
    /// it, which [`Flusher::until`] reads under the same lock as it registers.
    fn wake_waiting(&self) {
        let (applied, acknowledged, failed) = {
            let d = self.durable.borrow();
            (d.applied, self.acknowledged(&d), d.failed.is_some())
        };
        let woken = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let mut woken = reached(&mut waiting.applied, applied, failed);
            woken.extend(reached(&mut waiting.acknowledged, acknowledged, failed));
            woken
        };
        for tx in woken {
            let _ = tx.send(());
        }
    }

    fn recorded_below(&self, seq: u64) -> bool {
        self.recorded.lock().map(|r| r.0 < seq).unwrap_or(false)
    }

    /// Records that the log up to `seq` is on disk: at most every
    /// [`RECORD_EVERY`] while flushes follow each other (unless `now`), so the file costs
    /// nothing per write. Written without fsync: the record may lag behind the store (after a
    /// busy moment, or a power loss), never run ahead of it.
    fn record_durable(&self, seq: u64, now: bool) {
        let path = &self.marker;
        let Ok(mut recorded) = self.recorded.lock() else {
            return;
        };
        if !now && recorded.1.is_some_and(|at| at.elapsed() < RECORD_EVERY) {
            return;
        }
        let tmp = path.with_extension("tmp");
        let written =
            std::fs::write(&tmp, seq.to_string()).and_then(|_| std::fs::rename(&tmp, path));
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
        // Closing the queue lets the writer apply what is queued, then end.
        self.committed.lock().unwrap_or_else(|p| p.into_inner()).1 = None;
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
        self.flusher.stop();
        if let Some(thread) = self.flusher_thread.take() {
            let _ = thread.join();
        }
        if let Some(cause) = &self.flusher.durable.borrow().failed {
            tracing::error!(error = %cause, "the store failed earlier; not flushed at close");
            return;
        }
        match self.db.flush() {
            Ok(_) => self.flusher.record_durable(self.last(), true),
            Err(e) => tracing::error!(error = %e, "final store flush failed"),
        }
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn load(&self) -> Result<(State, Sequence)> {
        // Commits queued before (fixtures seeded just now) are part of what is loaded.
        self.applied().await?;
        blocking(|| self.load_state())
    }

    async fn commit(&self, expected: Sequence, commits: &[Commit]) -> Result<Committed> {
        // Encodes and queues: nothing here waits for sled. Only this process writes, so a
        // batch that starts at the log's end goes in whole.
        let mut at = expected;
        for commit in commits {
            match self.queue_commit(at, &commit.changes, &commit.entry)? {
                Committed::At(next) => at = next,
                Committed::Conflict => return Ok(Committed::Conflict),
            }
        }
        Ok(Committed::At(at))
    }

    async fn durable(&self, sequence: Sequence) -> Result<()> {
        if !self.flusher.until(sequence.0, true).await {
            return Err(closed());
        }
        let failed = self.flusher.durable.borrow().failed.clone();
        match failed {
            // A flush failure may leave earlier commits undurable too: acknowledge nothing.
            Some(cause) => Err(Error::Unavailable(format!(
                "the store could not flush: {cause}"
            ))),
            None => Ok(()),
        }
    }

    fn durable_head(&self) -> watch::Receiver<Sequence> {
        self.flusher.head.subscribe()
    }

    async fn entries(&self, range: LogRange) -> Result<Vec<Entry>> {
        self.applied().await?;
        blocking(|| self.read_entries(range))
    }

    async fn first_retained(&self) -> Result<Sequence> {
        self.applied().await?;
        blocking(|| self.oldest())
    }

    async fn prune(&self, before_ms: i64, max: usize) -> Result<usize> {
        blocking(|| self.prune_now(before_ms, max))
    }

    async fn catch_up(&self, _after: Sequence) -> Result<CatchUp> {
        // The folder's lock keeps every other process out: nothing is foreign.
        Ok(CatchUp::Foreign(Vec::new()))
    }

    async fn check_writable(&self) -> Result<()> {
        self.writable()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let written = blocking(|| self.db.insert(PROBE, now.to_string().as_bytes()));
        if let Err(e) = written {
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

    /// Waits, within a bound, for the durable count recorded beside the store to reach `count`.
    async fn until_recorded(dir: &Path, count: u64, failure: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while marker(dir) < count {
            assert!(std::time::Instant::now() < deadline, "{failure}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens a folder whose store was just dropped: sled's I/O threads may still be writing
    /// out its last buffer, holding the folder's lock, for a moment after.
    fn reopen<T, E: std::fmt::Display>(
        open: impl Fn() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match open() {
                Err(e)
                    if (e.to_string().contains("could not acquire lock")
                        || e.to_string().contains("in use by another process"))
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                opened => return opened,
            }
        }
    }

    fn commit(change: Change, entry: Entry) -> Commit {
        Commit {
            changes: vec![change],
            entry,
        }
    }

    async fn put_secret(store: &SledStore, name: &str) -> Sequence {
        let last = store.durable_head().borrow().0.max(store.last());
        let entry = Entry::new(Sequence(last + 1), 0, "system", "test");
        let change = Change::PutSecret(name.into(), vec![1]);
        let Committed::At(at) = store
            .commit(Sequence(last), &[commit(change, entry)])
            .await
            .unwrap()
        else {
            panic!("conflict in a store of one writer");
        };
        store.durable(at).await.unwrap();
        at
    }

    #[test]
    fn a_waiter_is_woken_only_once_its_position_is_reached() {
        let mut waiting = BTreeMap::new();
        let mut answers = Vec::new();
        for at in [3, 5, 5, 7] {
            let (tx, rx) = oneshot::channel();
            waiting.entry(at).or_insert_with(Vec::new).push(tx);
            answers.push(rx);
        }
        assert!(reached(&mut waiting, 2, false).is_empty());
        assert_eq!(reached(&mut waiting, 5, false).len(), 3);
        assert_eq!(waiting.keys().copied().collect::<Vec<_>>(), vec![7]);
        assert_eq!(
            reached(&mut waiting, 6, true).len(),
            1,
            "a failure wakes everyone"
        );
        assert!(waiting.is_empty());
        assert!(reached(&mut waiting, u64::MAX, false).is_empty());
    }

    #[tokio::test]
    async fn waiters_for_a_commit_are_answered_once_it_is_durable_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        let at = put_secret(&store, "a").await;
        let later = Sequence(at.0 + 1);
        let mut waiting = std::pin::pin!(store.durable(later));
        assert!(futures_util::poll!(&mut waiting).is_pending());
        assert_eq!(put_secret(&store, "b").await, later);
        tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("answered once durable")
            .unwrap();
        // Already durable: answered at once.
        assert!(futures_util::poll!(std::pin::pin!(store.durable(at))).is_ready());
    }

    #[tokio::test]
    async fn with_flushing_off_commits_are_still_flushed_now_and_then() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = StoreOptions::new(dir.path());
        options.flush = false;
        let store = SledStore::open(options).unwrap();
        for i in 0..3 {
            put_secret(&store, &format!("k{i}")).await;
        }
        // Acknowledged once applied; on disk at the flusher's next round, without closing.
        until_recorded(dir.path(), 3, "never flushed").await;
    }

    #[tokio::test]
    async fn the_durable_count_is_recorded_once_writes_pause() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        for i in 0..5 {
            put_secret(&store, &format!("k{i}")).await;
        }
        // Written within RECORD_EVERY of the pause, without closing the store.
        until_recorded(dir.path(), 5, "never recorded").await;
        assert_eq!(marker(dir.path()), 5);
        drop(store);
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        assert_eq!(put_secret(&store, "k").await, Sequence(6));
        drop(store);
        // Counted over the store's life, across restarts.
        assert_eq!(marker(dir.path()), 6);
    }

    #[tokio::test]
    async fn load_and_log_reads_include_commits_still_queued() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = StoreOptions::new(dir.path());
        options.flush = false;
        let store = SledStore::open(options).unwrap();
        for i in 1..=50u64 {
            let entry = Entry::new(Sequence(i), 0, "system", "test");
            let change = Change::PutSecret(format!("k{i}"), vec![1]);
            let committed = store
                .commit(Sequence(i - 1), &[commit(change, entry)])
                .await;
            assert_eq!(committed.unwrap(), Committed::At(Sequence(i)));
        }
        // Not waited for: read at once, every queued commit must be there.
        let (state, at) = store.load().await.unwrap();
        assert_eq!(at, Sequence(50));
        assert!(crate::store::Read::secret(&state, "k50").unwrap().is_some());
        let log = store
            .entries(LogRange::after(Sequence(0), 100))
            .await
            .unwrap();
        assert_eq!(log.len(), 50);
    }

    #[tokio::test]
    async fn a_commit_made_against_an_old_position_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        put_secret(&store, "a").await;
        let stale = Entry::new(Sequence(1), 0, "system", "test");
        let outcome = store
            .commit(
                Sequence(0),
                &[commit(Change::PutSecret("b".into(), vec![2]), stale)],
            )
            .await
            .unwrap();
        assert_eq!(outcome, Committed::Conflict);
        let (state, at) = store.load().await.unwrap();
        assert_eq!(at, Sequence(1));
        assert_eq!(crate::store::Read::secret(&state, "b").unwrap(), None);
        assert_eq!(
            store
                .entries(LogRange::after(Sequence(0), 10))
                .await
                .unwrap()
                .len(),
            1
        );
    }

    /// Writes commits `1..=sizes.sum()` straight into the store's tree, as groups of `sizes`
    /// commits by `actor`; commit `n` was made at `n * 10` ms.
    fn written_in_groups(store: &SledStore, sizes: &[usize], actor: &str) -> u64 {
        let mut next = 1u64;
        for &size in sizes {
            let group = (next..next + size as u64)
                .map(|n| {
                    let entry = Entry::new(Sequence(n), n as i64 * 10, actor, "test");
                    SledStore::queued(&[Change::PutSecret(format!("s{n}"), vec![1])], &entry)
                        .unwrap()
                })
                .collect();
            group_ops(group).write(&store.db).unwrap();
            next += size as u64;
        }
        next - 1
    }

    fn sequences(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.sequence).collect()
    }

    #[tokio::test]
    async fn log_reads_find_each_entry_whatever_chunk_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        let last = written_in_groups(&store, &[1, 3, 5, 1, 2, 4], "system");
        assert_eq!(store.db.scan_prefix(LOG).count(), 6, "one key per group");
        let befores = std::iter::once(None).chain((0..=last + 1).map(|b| Some(Sequence(b))));
        for before in befores {
            for after in 0..=last + 1 {
                for limit in [1, 2, 4, 100] {
                    for newest_first in [false, true] {
                        let range = LogRange {
                            after: Sequence(after),
                            before,
                            limit,
                            newest_first,
                        };
                        let end = before.map_or(u64::MAX, |b| b.0);
                        let mut want: Vec<u64> =
                            (1..=last).filter(|&n| n > after && n < end).collect();
                        if newest_first {
                            want.reverse();
                        }
                        want.truncate(limit);
                        let got = store.read_entries(range).unwrap();
                        assert_eq!(sequences(&got), want, "{range:?}");
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn big_groups_of_big_entries_leave_no_log_node_in_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        let last = written_in_groups(&store, &[GROUP_MAX; 8], &"x".repeat(1000));
        // sled writes a node of more than 128 KiB to a file of its own (which it never
        // syncs): a leaf of the log full of chunks must stay under that.
        let blobs = std::fs::read_dir(dir.path().join("blobs")).map_or(0, |d| d.count());
        assert_eq!(blobs, 0, "nodes written as files of their own");
        let chunks = store.db.scan_prefix(LOG).count();
        assert!(
            chunks > 8 * 2,
            "{chunks} chunks for 8 groups of 1 KiB entries"
        );
        let all = store
            .read_entries(LogRange::after(Sequence(0), usize::MAX))
            .unwrap();
        assert_eq!(sequences(&all), (1..=last).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn pruning_takes_entries_out_of_a_chunk_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        let last = written_in_groups(&store, &[1, 5, 3], "system");
        // Commits 1..=4 were made before 45 ms: the first chunk and three of the second.
        assert_eq!(store.prune_now(45, 100).unwrap(), 4);
        assert_eq!(store.oldest().unwrap(), Sequence(5));
        let left = store
            .read_entries(LogRange::after(Sequence(0), 100))
            .unwrap();
        assert_eq!(sequences(&left), (5..=last).collect::<Vec<_>>());
        // At most `max` entries a call, also from the middle of a chunk.
        assert_eq!(store.prune_now(i64::MAX, 1).unwrap(), 1);
        assert_eq!(store.oldest().unwrap(), Sequence(6));
        assert_eq!(store.prune_now(i64::MAX, 100).unwrap(), 4);
        assert!(
            store
                .read_entries(LogRange::after(Sequence(0), 100))
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_folder_of_one_entry_per_key_opens_with_its_log_and_is_marked_the_current_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        put_secret(&store, "a").await;
        put_secret(&store, "b").await;
        // As that format wrote them: each entry's JSON under its own sequence.
        for n in 1..=2u64 {
            let entry = Entry::new(Sequence(n), 0, "system", "test");
            store
                .db
                .insert(log_key(n), serde_json::to_vec(&entry).unwrap())
                .unwrap();
        }
        store.db.insert(FORMAT, FORMAT_ONE_ENTRY_PER_KEY).unwrap();
        drop(store);
        let (_, at, log) = reopened(dir.path()).await;
        assert_eq!((at, log), (Sequence(2), vec![1, 2]));
        let db = reopen(|| sled::open(dir.path())).unwrap();
        assert_eq!(db.get(FORMAT).unwrap().as_deref(), Some(FORMAT_VERSION));
        assert_eq!(
            db.get(log_key(1)).unwrap().unwrap()[0],
            b'{',
            "left as it was"
        );
    }

    #[test]
    fn a_damaged_chunk_of_the_log_is_refused_not_misread() {
        let entries: Vec<Vec<u8>> = (1..=3u64)
            .map(|n| encode(&Entry::new(Sequence(n), 0, "system", "test")).unwrap())
            .collect();
        let good = chunk(entries);
        assert_eq!(good[0], LZ4);
        assert_eq!(sequences(&entries_of(&good).unwrap()), [1, 2, 3]);
        let mut too_big = good.clone();
        too_big[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut altered = good.clone();
        let last = altered.len() - 1;
        altered[last] ^= 0xff;
        for damaged in [&good[..3], &good[..good.len() - 2], &too_big, &altered] {
            assert!(
                matches!(entries_of(damaged), Err(Error::Internal(_))),
                "{damaged:?}"
            );
        }
    }

    /// A folder as the release before the log wrote it: records without versions, a usage
    /// index on disk, the commit count, no log.
    fn format_1_folder(dir: &Path) {
        let db = sled::open(dir).unwrap();
        db.insert(FORMAT, FORMAT_BEFORE_LOG).unwrap();
        let platform = serde_json::json!({"name": "A", "netAddress": "10.0.0.1", "port": 5060,
            "mediaStream": "Dual", "transportProtocol": "UDP", "schemaVersion": "1.0",
            "supportVideoRecording": false});
        db.insert(
            key(PLATFORM, &["A"]),
            serde_json::to_vec(&platform).unwrap(),
        )
        .unwrap();
        db.insert(DEFAULT, "A").unwrap();
        db.insert(key(TENANT, &["T"]), br#"{"tenantId":"T"}"#.to_vec())
            .unwrap();
        db.insert(
            key(GROUP, &["T", "G"]),
            br#"{"tenantId":"T","groupId":"G","platform":"A"}"#.to_vec(),
        )
        .unwrap();
        db.insert(key(USAGE, &["A", "T", "G"]), b"".to_vec())
            .unwrap();
        let user = serde_json::json!({"username": "admin", "passwordHash": "$argon2id$x",
            "level": 16});
        db.insert(key(USER, &["admin"]), serde_json::to_vec(&user).unwrap())
            .unwrap();
        db.insert(
            key(SESSION, &["s1"]),
            br#"{"id":"s1","username":"admin","expires_at":99}"#.to_vec(),
        )
        .unwrap();
        db.insert(COMMITS, &41u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
        drop(db);
        std::fs::write(dir.join(DURABLE_FILE), "41").unwrap();
    }

    #[tokio::test]
    async fn a_folder_of_the_release_before_the_log_opens_with_its_history_starting_empty() {
        use crate::store::Read;
        let dir = tempfile::tempdir().unwrap();
        format_1_folder(dir.path());
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        let (state, at) = store.load().await.unwrap();
        assert_eq!(at, Sequence(41));
        let platform = state.platform("A").unwrap().expect("platform kept");
        assert_eq!(platform.port, Some(5060));
        assert_eq!(state.system_default().unwrap().as_deref(), Some("A"));
        assert_eq!(state.usage_count("A", 10).unwrap(), 1, "usage rebuilt");
        assert_eq!(
            state.user("admin").unwrap().map(|u| u.level.number()),
            Some(16)
        );
        assert_eq!(state.session("s1").unwrap().map(|s| s.expires_at), Some(99));
        assert!(
            store
                .entries(LogRange::after(Sequence(0), 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.first_retained().await.unwrap(), Sequence(42));
        // The log goes on from the old commit count.
        assert_eq!(put_secret(&store, "k").await, Sequence(42));
        drop(store);
        let store = reopen(|| SledStore::open(StoreOptions::new(dir.path()))).unwrap();
        let log = store
            .entries(LogRange::after(Sequence(0), 10))
            .await
            .unwrap();
        assert_eq!(log.iter().map(|e| e.sequence).collect::<Vec<_>>(), [42]);
        assert_eq!(
            store.db.scan_prefix(USAGE).count(),
            0,
            "the old index is gone"
        );
    }

    /// A store with two secrets committed, closed; and a group made of a third secret and its
    /// log entry, recorded as the writer records it, not yet written.
    async fn closed_store_and_next_group(dir: &Path) -> Ops {
        let store = SledStore::open(StoreOptions::new(dir)).unwrap();
        put_secret(&store, "a").await;
        put_secret(&store, "b").await;
        let entry = Entry::new(Sequence(3), 0, "system", "test");
        let queued = SledStore::queued(&[Change::PutSecret("c".into(), vec![3])], &entry).unwrap();
        drop(store);
        group_ops(vec![queued])
    }

    /// Leaves `record` as the writer's record of its last group in the closed store at `dir`,
    /// and the keys `written` beside it, as a crash would have left them.
    fn leave_on_disk(dir: &Path, record: Vec<u8>, written: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let db = reopen(|| sled::open(dir)).unwrap();
        db.open_tree(batch::TREE)
            .unwrap()
            .insert(batch::KEY, record)
            .unwrap();
        for (key, value) in written {
            db.insert(key, value.clone().unwrap()).unwrap();
        }
        db.flush().unwrap();
    }

    async fn reopened(dir: &Path) -> (State, Sequence, Vec<u64>) {
        let store = reopen(|| SledStore::open(StoreOptions::new(dir))).unwrap();
        let (state, at) = store.load().await.unwrap();
        let log = store
            .entries(LogRange::after(Sequence(0), 10))
            .await
            .unwrap();
        (state, at, log.iter().map(|e| e.sequence).collect())
    }

    #[tokio::test]
    async fn a_group_cut_short_by_a_crash_is_completed_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let ops = closed_store_and_next_group(dir.path()).await;
        // As a crash leaves it: the record and the group's first key (its log entry) on disk,
        // its secret and the commit count not.
        assert!(ops.0[0].0.starts_with(LOG));
        leave_on_disk(dir.path(), ops.record(), &ops.0[..1]);
        let (state, at, log) = reopened(dir.path()).await;
        assert_eq!(at, Sequence(3), "the commit count is the group's");
        assert_eq!(log, [1, 2, 3]);
        assert_eq!(
            crate::store::Read::secret(&state, "c").unwrap(),
            Some(vec![3])
        );
    }

    #[tokio::test]
    async fn a_group_written_whole_is_not_applied_again() {
        // A record whose commit count is the stored one (2) was written whole, and one behind
        // it cannot be the last group: the secret they hold must not come back over what is
        // stored, nor the count go back.
        for count in [2u64, 1] {
            a_group_at_or_behind_the_stored_count_is_left_alone(count).await;
        }
    }

    async fn a_group_at_or_behind_the_stored_count_is_left_alone(count: u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut ops = closed_store_and_next_group(dir.path()).await;
        ops.0.pop();
        ops.insert(COMMITS, count.to_be_bytes());
        leave_on_disk(dir.path(), ops.record(), &[]);
        let (state, at, log) = reopened(dir.path()).await;
        assert_eq!(at, Sequence(2));
        assert_eq!(log, [1, 2]);
        assert_eq!(crate::store::Read::secret(&state, "c").unwrap(), None);
    }

    #[tokio::test]
    async fn the_writer_records_each_group_ending_with_its_commit_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(StoreOptions::new(dir.path())).unwrap();
        put_secret(&store, "a").await;
        let at = put_secret(&store, "b").await;
        let bytes = store
            .db
            .open_tree(batch::TREE)
            .unwrap()
            .get(batch::KEY)
            .unwrap()
            .expect("a record");
        let ops = Ops::from_record(&bytes).expect("readable");
        let (last_key, value) = ops.0.last().unwrap();
        assert_eq!(last_key.as_slice(), COMMITS);
        assert_eq!(value.as_deref(), Some(&at.0.to_be_bytes()[..]));
        assert!(ops.0.iter().any(|(k, _)| *k == key(SECRET, &["b"])));
    }

    #[tokio::test]
    async fn a_damaged_record_of_the_last_group_stops_the_store_from_opening() {
        let dir = tempfile::tempdir().unwrap();
        closed_store_and_next_group(dir.path()).await;
        leave_on_disk(dir.path(), b"\x01\xff".to_vec(), &[]);
        let Err(e) = reopen(|| SledStore::open(StoreOptions::new(dir.path()))) else {
            panic!("opened over a damaged record");
        };
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
