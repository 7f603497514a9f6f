//! [`EmbeddedRegistry`]: the registry of a single machine, in one redb file in the data
//! directory (SPEC §14: zero setup, and a restart — even after `kill -9` — finds everything
//! whose command had been answered).
//!
//! - **Writes** go to one writer thread that commits everything waiting in one durable
//!   transaction (group commit, see `writer`): a method returns `Ok` only once its change is
//!   fsync'd, and one fsync serves every write that arrived during the previous one.
//! - **Reads** never touch the file (but for artifact content): every record, sequence, grant,
//!   token and subscription is kept in memory, loaded at open and updated by the writer after
//!   each commit, so the star can consult the registry on every wave. Reads see committed
//!   changes only.
//! - **Selects** range-scan the subtree of the selector's literal prefix and match kinds
//!   without building a hierarchy per candidate (see `state`).
//! - **Tokens** are stored as their SHA-256, never as themselves: the file does not hold
//!   credentials.

// `RegistryError` is the trait's error, two points wide at most (`NoParent`); it travels on
// cold paths only, so it is returned as it is rather than boxed here.
#![allow(clippy::result_large_err)]

pub(super) mod kv;
pub(super) mod state;
pub(super) mod store;
pub(super) mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use cosmic_space::{
    Grant, GrantKind, Lineage, Point, PointHierarchy, Properties, PropertyChanges, Selector,
    StarKey, Status, Stub, Subscription, Surface,
};
use parking_lot::RwLock;
use redb::Database;
use tokio::sync::{mpsc, oneshot};

pub use self::kv::EmbeddedKeyValues;
use self::state::{Records, State};
use self::writer::{Batch, Job};
use super::{
    Entry, KeyValues, ParticleRecord, Registration, Registry, RegistryError, RegistryResult,
    token_hash,
};

/// How many writes may wait for the writer thread before callers wait to hand theirs over.
const QUEUE: usize = 8192;

/// The registry of a single machine: one redb file, an in-memory index for reads, and a
/// writer thread that group-commits writes durably.
///
/// Dropping it lets the writer finish the writes already handed to it, then closes the file.
#[derive(Debug)]
pub struct EmbeddedRegistry {
    path: PathBuf,
    db: Arc<Database>,
    state: Arc<RwLock<State>>,
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    key_values: Arc<EmbeddedKeyValues>,
}

impl EmbeddedRegistry {
    /// Opens the registry kept in the file at `path`, creating the file (and its directory)
    /// if there is none, and loads it into memory. Fails with [`RegistryError::Storage`] if
    /// the file cannot be opened, is held by another process, or is corrupt.
    pub fn open(path: &Path) -> RegistryResult<EmbeddedRegistry> {
        let db = Arc::new(store::open(path)?);
        let state = Arc::new(RwLock::new(store::load(&db)?));
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = {
            let db = Arc::clone(&db);
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("registry-writer".to_string())
                .spawn(move || writer::run(db, state, queue))
                .map_err(|e| store::storage("starting the registry writer thread", e))?
        };
        let key_values = Arc::new(EmbeddedKeyValues::start(Arc::clone(&db))?);
        Ok(EmbeddedRegistry {
            key_values,
            path: path.to_path_buf(),
            db,
            state,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    /// The file the registry lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands `op` to the writer thread and waits until its batch is committed.
    async fn write<T, F>(&self, op: F) -> RegistryResult<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&mut Batch<'a>) -> RegistryResult<T> + Send + 'static,
    {
        let stopped =
            || RegistryError::Storage("the registry writer thread has stopped".to_string());
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        let (answer, answered) = oneshot::channel();
        jobs.send(writer::job(op, answer))
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has committed what it holds; waiting
        // for it means the file is closed when `drop` returns, so it can be opened again.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl Registry for EmbeddedRegistry {
    async fn register(&self, registration: Registration) -> RegistryResult<ParticleRecord> {
        self.write(move |batch| batch.register(registration, None))
            .await
    }

    async fn register_all(&self, entries: Vec<Entry>) -> RegistryResult<Vec<ParticleRecord>> {
        self.write(move |batch| batch.register_all(entries)).await
    }

    async fn next_sequence(&self, parent: &Point) -> RegistryResult<u64> {
        let parent = parent.clone();
        self.write(move |batch| batch.next_sequence(&parent)).await
    }

    async fn record(&self, point: &Point) -> RegistryResult<ParticleRecord> {
        self.state
            .read()
            .get(point)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(point.clone()))
    }

    async fn location(&self, point: &Point) -> RegistryResult<Option<StarKey>> {
        self.state
            .read()
            .get(point)
            .map(|record| record.location.clone())
            .ok_or_else(|| RegistryError::NotFound(point.clone()))
    }

    async fn line(&self, point: &Point) -> RegistryResult<Vec<ParticleRecord>> {
        state::line(&*self.state.read(), point)
    }

    async fn hierarchy(&self, point: &Point) -> RegistryResult<PointHierarchy> {
        state::hierarchy(&*self.state.read(), point)
    }

    async fn lineage(&self, point: &Point) -> RegistryResult<Lineage> {
        state::lineage(&*self.state.read(), point)
    }

    async fn set_status(&self, point: &Point, status: Status) -> RegistryResult<()> {
        let point = point.clone();
        self.write(move |batch| batch.set_status(&point, status))
            .await
    }

    async fn set_location(&self, point: &Point, star: StarKey) -> RegistryResult<()> {
        let point = point.clone();
        self.write(move |batch| batch.set_location(&point, star))
            .await
    }

    async fn set_properties(
        &self,
        point: &Point,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        let point = point.clone();
        let changes = changes.clone();
        self.write(move |batch| batch.set_properties(&point, &changes))
            .await
    }

    async fn write_content(
        &self,
        point: &Point,
        content: Vec<u8>,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        let point = point.clone();
        let changes = changes.clone();
        self.write(move |batch| batch.write_content(&point, content, &changes))
            .await
    }

    async fn select(&self, selector: &Selector) -> RegistryResult<Vec<Stub>> {
        let state = self.state.read();
        // Matches first, then the stubs in one allocation of the exact size: growing a
        // vector of 100k stubs by doubling costs more than the matching.
        let mut matched: Vec<&ParticleRecord> = Vec::new();
        state::select_each(&*state, selector, |record| matched.push(record));
        Ok(matched.into_iter().map(ParticleRecord::stub).collect())
    }

    async fn children(&self, point: &Point) -> RegistryResult<Vec<Stub>> {
        let state = self.state.read();
        if state.get(point).is_none() {
            return Err(RegistryError::NotFound(point.clone()));
        }
        Ok(state::children(&*state, point)
            .into_iter()
            .map(ParticleRecord::stub)
            .collect())
    }

    async fn delete(&self, point: &Point, force: bool) -> RegistryResult<Vec<Point>> {
        let point = point.clone();
        self.write(move |batch| batch.delete(&point, force)).await
    }

    async fn content(&self, point: &Point) -> RegistryResult<Option<Vec<u8>>> {
        if self.state.read().get(point).is_none() {
            return Err(RegistryError::NotFound(point.clone()));
        }
        store::content(&self.db, point)
    }

    async fn chown(&self, selector: &Selector, owner: &Point) -> RegistryResult<usize> {
        let selector = selector.clone();
        let owner = owner.clone();
        self.write(move |batch| batch.chown(&selector, &owner))
            .await
    }

    async fn grant(
        &self,
        kind: GrantKind,
        on: Selector,
        to: Selector,
        by: Point,
    ) -> RegistryResult<Grant> {
        self.write(move |batch| batch.grant(kind, on, to, by)).await
    }

    async fn revoke(&self, id: u64) -> RegistryResult<Grant> {
        self.write(move |batch| batch.revoke(id)).await
    }

    async fn grants(&self) -> RegistryResult<Vec<Grant>> {
        Ok(self.state.read().grants.values().cloned().collect())
    }

    async fn grants_on(&self, point: &Point) -> RegistryResult<Vec<Grant>> {
        Ok(self
            .state
            .read()
            .grants
            .values()
            .filter(|grant| super::may_apply(grant, point))
            .cloned()
            .collect())
    }

    async fn store_token(&self, token: &str, agent: &Point) -> RegistryResult<()> {
        let hash = token_hash(token);
        let agent = agent.clone();
        self.write(move |batch| batch.store_token(hash, agent))
            .await
    }

    async fn token_agent(&self, token: &str) -> RegistryResult<Option<Point>> {
        Ok(self.state.read().tokens.get(&token_hash(token)).cloned())
    }

    async fn census(&self) -> RegistryResult<BTreeMap<String, u64>> {
        Ok(self.state.read().census())
    }

    async fn subscribe(&self, subscription: &Subscription) -> RegistryResult<()> {
        let subscription = subscription.clone();
        self.write(move |batch| batch.subscribe(subscription)).await
    }

    async fn unsubscribe(&self, subscriber: &Surface, selector: &Selector) -> RegistryResult<bool> {
        let subscriber = subscriber.clone();
        let selector = selector.clone();
        self.write(move |batch| batch.unsubscribe(&subscriber, &selector))
            .await
    }

    async fn unsubscribe_all(&self, point: &Point) -> RegistryResult<usize> {
        let point = point.clone();
        self.write(move |batch| batch.unsubscribe_all(&point)).await
    }

    async fn subscriptions(&self) -> RegistryResult<Vec<Subscription>> {
        Ok(self.state.read().subscriptions.values().cloned().collect())
    }

    fn key_values(&self) -> Option<Arc<dyn KeyValues>> {
        Some(self.key_values.clone())
    }
}
