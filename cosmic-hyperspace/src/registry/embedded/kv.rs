//! The entries of key-value stores in the registry's redb file (tables `kv`, `kv_once`,
//! `kv_once_at`, see `store`), written by a thread of their own that group-commits like the
//! registry's writer: one durable transaction, one fsync, for every write waiting.
//!
//! A write checks in its transaction that the store is still registered; the registry's writer
//! removes a deleted store's entries in the transaction that deletes it. redb runs one write
//! transaction at a time, so an entry can never outlive its store.

use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use cosmic_space::kv::{self, Applied};
use cosmic_space::{KeyPage, KvEntry, KvOp, KvOutcome, ListQuery, Point};
use redb::{Database, ReadableDatabase, ReadableTable, Table};
use tokio::sync::{mpsc, oneshot};

use super::store::{self, KV, KV_ONCE, KV_ONCE_AT, PARTICLES, storage};
use crate::registry::kv::{KeyValues, ONCE_RETENTION_MS, Once, Written};
use crate::registry::{RegistryError, RegistryResult};

/// How many writes may wait for the writer before callers wait to hand theirs over.
const QUEUE: usize = 8192;
/// The most writes one transaction commits.
const MAX_BATCH: usize = 1024;
/// The most remembered answers one transaction forgets once they are old.
const PRUNE: usize = 256;

/// One write handed to the writer thread.
struct Job {
    store: String,
    ops: Vec<KvOp>,
    now: u64,
    once: Option<String>,
    answer: oneshot::Sender<RegistryResult<Written>>,
}

/// The key-value entries of an [`super::EmbeddedRegistry`]'s file.
#[derive(Debug)]
pub struct EmbeddedKeyValues {
    db: Arc<Database>,
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl EmbeddedKeyValues {
    /// The entries kept in `db`, with their writer thread started.
    pub(super) fn start(db: Arc<Database>) -> RegistryResult<EmbeddedKeyValues> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = {
            let db = Arc::clone(&db);
            std::thread::Builder::new()
                .name("kv-writer".to_string())
                .spawn(move || run(&db, queue))
                .map_err(|e| storage("starting the key-value writer thread", e))?
        };
        Ok(EmbeddedKeyValues {
            db,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }
}

impl Drop for EmbeddedKeyValues {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The row key of `key` in `store`: the point, NUL, the key (neither may hold NUL, so a store's
/// rows are the range from `store\0` to `store\x01`).
fn row(store: &str, key: &str) -> String {
    format!("{store}\0{key}")
}

/// The range of every row of `store`.
pub(super) fn rows_of(store: &str) -> (String, String) {
    (format!("{store}\0"), format!("{store}\u{1}"))
}

fn decode_entry(bytes: &[u8]) -> RegistryResult<KvEntry> {
    store::decode("key-value entry", bytes)
}

#[async_trait]
impl KeyValues for EmbeddedKeyValues {
    async fn get(&self, store: &Point, key: &str, now: u64) -> RegistryResult<Option<KvEntry>> {
        let doing = "reading a key-value entry";
        let txn = self.db.begin_read().map_err(|e| storage(doing, e))?;
        let table = txn.open_table(KV).map_err(|e| storage(doing, e))?;
        let found = table
            .get(row(&store.to_string(), key).as_str())
            .map_err(|e| storage(doing, e))?;
        match found {
            Some(bytes) => Ok(Some(decode_entry(bytes.value())?).filter(|e| e.is_live(now))),
            None => Ok(None),
        }
    }

    async fn keys(&self, store: &Point, query: &ListQuery, now: u64) -> RegistryResult<KeyPage> {
        let doing = "listing key-value entries";
        let store = store.to_string();
        let txn = self.db.begin_read().map_err(|e| storage(doing, e))?;
        let table = txn.open_table(KV).map_err(|e| storage(doing, e))?;
        let from = row(&store, &query.prefix);
        let after = query.cursor.as_ref().map(|cursor| row(&store, cursor));
        let start = match &after {
            Some(after) if *after > from => after.as_str(),
            _ => from.as_str(),
        };
        let skip = after.as_deref();
        let mut found = Vec::new();
        for item in table.range(start..).map_err(|e| storage(doing, e))? {
            let (row_key, value) = item.map_err(|e| storage(doing, e))?;
            let row_key = row_key.value();
            if !row_key.starts_with(from.as_str()) {
                break;
            }
            if Some(row_key) == skip {
                continue;
            }
            if !decode_entry(value.value())?.is_live(now) {
                continue;
            }
            found.push(row_key[store.len() + 1..].to_string());
            if found.len() > query.limit {
                break;
            }
        }
        Ok(KeyPage::from_found(found, query.limit))
    }

    async fn write(
        &self,
        store: &Point,
        ops: Vec<KvOp>,
        now: u64,
        once: Option<Once>,
    ) -> RegistryResult<Written> {
        let stopped = || RegistryError::Storage("the key-value writer thread has stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        let (answer, answered) = oneshot::channel();
        let job = Job {
            store: store.to_string(),
            ops,
            now,
            once: once.map(|once| format!("{}\0{}", once.agent, once.wave)),
            answer,
        };
        jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// The writer thread: takes every job waiting, commits them in one transaction, answers them.
fn run(db: &Database, mut jobs: mpsc::Receiver<Job>) {
    while let Some(pending) = super::writer::next_batch(&mut jobs, MAX_BATCH) {
        match commit(db, &pending) {
            Ok(answers) => {
                for (job, answer) in pending.into_iter().zip(answers) {
                    let _ = job.answer.send(answer);
                }
            }
            Err(err) => {
                for job in pending {
                    let _ = job.answer.send(Err(err.clone()));
                }
            }
        }
    }
}

/// Applies every job in one write transaction and commits it durably; each job's answer, or
/// the error that lost them all.
fn commit(db: &Database, jobs: &[Job]) -> RegistryResult<Vec<RegistryResult<Written>>> {
    let doing = "writing key-value entries";
    let txn = db.begin_write().map_err(|e| storage(doing, e))?;
    let mut answers = Vec::with_capacity(jobs.len());
    {
        let particles = txn.open_table(PARTICLES).map_err(|e| storage(doing, e))?;
        let mut entries = txn.open_table(KV).map_err(|e| storage(doing, e))?;
        let mut once = txn.open_table(KV_ONCE).map_err(|e| storage(doing, e))?;
        let mut once_at = txn.open_table(KV_ONCE_AT).map_err(|e| storage(doing, e))?;
        for job in jobs {
            let registered = particles
                .get(job.store.as_str())
                .map_err(|e| storage(doing, e))?
                .is_some();
            if !registered {
                let point = job
                    .store
                    .parse()
                    .map_err(|e| storage("a store's point", e))?;
                answers.push(Err(RegistryError::NotFound(point)));
                continue;
            }
            answers.push(apply_job(job, &mut entries, &mut once, &mut once_at));
        }
        if let Some(now) = jobs.iter().map(|job| job.now).max() {
            prune(
                &mut once,
                &mut once_at,
                now.saturating_sub(ONCE_RETENTION_MS),
            )?;
        }
    }
    txn.commit().map_err(|e| storage(doing, e))?;
    Ok(answers)
}

type Rows<'t> = Table<'t, &'static str, &'static [u8]>;
type Times<'t> = Table<'t, (u64, &'static str), ()>;

/// One job inside the writer's transaction.
fn apply_job(
    job: &Job,
    entries: &mut Rows<'_>,
    once: &mut Rows<'_>,
    once_at: &mut Times<'_>,
) -> RegistryResult<Written> {
    let doing = "writing key-value entries";
    let once_key = job.once.as_ref().map(|id| format!("{}\0{id}", job.store));
    if let Some(once_key) = &once_key
        && let Some(recorded) = once.get(once_key.as_str()).map_err(|e| storage(doing, e))?
    {
        let outcomes: Vec<KvOutcome> =
            store::decode("remembered key-value answer", recorded.value())?;
        return Ok(Ok(outcomes));
    }
    let mut corrupt = None;
    let applied = kv::apply(&job.ops, job.now, |key| {
        let found = entries.get(row(&job.store, key).as_str());
        match found {
            Ok(Some(bytes)) => decode_entry(bytes.value())
                .map_err(|err| corrupt = Some(err))
                .ok(),
            Ok(None) => None,
            Err(err) => {
                corrupt = Some(storage(doing, err));
                None
            }
        }
    });
    if let Some(err) = corrupt {
        return Err(err);
    }
    let Applied { outcomes, writes } = match applied {
        Ok(applied) => applied,
        Err(refused) => return Ok(Err(refused)),
    };
    for (key, entry) in writes {
        let row_key = row(&job.store, &key);
        match entry {
            Some(entry) => {
                let bytes = store::encode("key-value entry", &entry)?;
                entries
                    .insert(row_key.as_str(), bytes.as_slice())
                    .map_err(|e| storage(doing, e))?;
            }
            None => {
                entries
                    .remove(row_key.as_str())
                    .map_err(|e| storage(doing, e))?;
            }
        }
    }
    if let Some(once_key) = &once_key {
        let bytes = store::encode("remembered key-value answer", &outcomes)?;
        once.insert(once_key.as_str(), bytes.as_slice())
            .map_err(|e| storage(doing, e))?;
        once_at
            .insert((job.now, once_key.as_str()), ())
            .map_err(|e| storage(doing, e))?;
    }
    Ok(Ok(outcomes))
}

/// Forgets up to [`PRUNE`] remembered answers recorded before `before`.
fn prune(once: &mut Rows<'_>, once_at: &mut Times<'_>, before: u64) -> RegistryResult<()> {
    let doing = "forgetting old key-value answers";
    let mut old = Vec::new();
    for item in once_at
        .range::<(u64, &str)>(..(before, ""))
        .map_err(|e| storage(doing, e))?
        .take(PRUNE)
    {
        let (key, _) = item.map_err(|e| storage(doing, e))?;
        let (at, once_key) = key.value();
        old.push((at, once_key.to_string()));
    }
    for (at, once_key) in old {
        once_at
            .remove((at, once_key.as_str()))
            .map_err(|e| storage(doing, e))?;
        once.remove(once_key.as_str())
            .map_err(|e| storage(doing, e))?;
    }
    Ok(())
}
