//! What changed in the registry, and the caches that forget by it.
//!
//! A star consults the registry on every wave: where the target is placed, its record, what
//! the agent may do there, the target's bind. Against PostgreSQL each of those is a round
//! trip, so they are cached — and a cache must forget exactly what a write made stale, even
//! when many machines write the same registry:
//!
//! - every write through [`CachedRegistry`] publishes a [`Change`] naming what it touched (a
//!   point's record, a subtree, the owners, the grants) on its [`ChangeFeed`], synchronously,
//!   before the write returns, so the writer's next read sees its own write;
//! - caches ([`CachedRegistry`]'s records, the Field's access decisions and binds) listen on
//!   the feed ([`Forget`]) and drop only the entries the change can affect;
//! - changes made by other machines reach the feed from the fabric that connects them
//!   ([`ChangeFeed::relay`] hears this machine's changes to send them; the others hand what
//!   they receive to [`ChangeFeed::publish_from_elsewhere`]), which is how a cosmos across
//!   machines keeps its caches true — a moment after the write, not before it returns.
//!
//! A read that raced a change must not put back what the change removed: each cache keeps an
//! epoch, bumped by every change it hears, and keeps a value only if the epoch did not move
//! while the value was being read ([`Cache::insert_if`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use cosmic_space::{
    CreateStrategy, Details, Event, Grant, GrantKind, Lineage, Point, PointHierarchy, Properties,
    PropertyChanges, Selector, StarKey, Status, Stub, Subscription, Surface,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{Entry, ParticleRecord, Registration, Registry, RegistryResult};
use crate::metrics::{Metrics, RegistryOp, RegistryOutcome};

/// One change to the registry, as precisely as caches need it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Change {
    /// The particle at this point was registered, or its record (status, properties,
    /// placement) or its content changed.
    Record(Point),
    /// This point and everything under it were deleted.
    Subtree(Point),
    /// The owners of any number of particles changed (`chown`).
    Owners,
    /// A grant was made or revoked.
    Grants,
    /// An access token was stored (made, or made to name another agent).
    Tokens,
    /// A subscription was made or undone (SPEC §18).
    Subscriptions,
    /// Anything may have changed: a machine that was cut off from the others may have missed
    /// their changes, or they its own.
    Anything,
}

impl Change {
    /// Whether what is cached for `point` may be stale after this change, as far as the
    /// point's own record goes (owners, kinds and grants aside).
    pub fn touches(&self, point: &Point) -> bool {
        match self {
            Change::Record(changed) => changed == point,
            Change::Subtree(top) => point.is_within(top),
            Change::Owners | Change::Anything => true,
            Change::Grants | Change::Tokens | Change::Subscriptions => false,
        }
    }
}

/// Something that caches what the registry says and must forget what a [`Change`] made stale.
pub trait Forget: Send + Sync {
    /// Drops whatever `change` may have made stale. Called before the write that made the
    /// change returns, so it must be quick and must not wait on the registry.
    fn forget(&self, change: &Change);
}

/// The changes of one registry, handed to every cache that listens — and, for the changes
/// made on this machine, to the relays that carry them to other machines.
#[derive(Default)]
pub struct ChangeFeed {
    listeners: RwLock<Vec<Weak<dyn Forget>>>,
    relays: RwLock<Vec<Weak<dyn Forget>>>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("listeners", &self.listeners.read().len())
            .field("relays", &self.relays.read().len())
            .finish()
    }
}

impl ChangeFeed {
    /// Adds a listener, held weakly: a cache that is dropped stops listening.
    pub fn listen(&self, listener: Weak<dyn Forget>) {
        add(&self.listeners, listener);
    }

    /// Adds a relay: it hears only the changes made on this machine ([`ChangeFeed::publish`]),
    /// to carry them to the others (which hand them to [`ChangeFeed::publish_from_elsewhere`]).
    pub fn relay(&self, relay: Weak<dyn Forget>) {
        add(&self.relays, relay);
    }

    /// Tells every listener and relay about `change`, a write of this machine's.
    pub fn publish(&self, change: &Change) {
        tell(&self.listeners, change);
        tell(&self.relays, change);
    }

    /// Tells every listener about `change`, made by another machine (relays do not hear it
    /// again, so it does not echo round the cosmos).
    pub fn publish_from_elsewhere(&self, change: &Change) {
        tell(&self.listeners, change);
    }
}

fn add(to: &RwLock<Vec<Weak<dyn Forget>>>, listener: Weak<dyn Forget>) {
    let mut listeners = to.write();
    listeners.retain(|l| l.strong_count() > 0);
    listeners.push(listener);
}

fn tell(listeners: &RwLock<Vec<Weak<dyn Forget>>>, change: &Change) {
    for listener in listeners.read().iter() {
        if let Some(listener) = listener.upgrade() {
            listener.forget(change);
        }
    }
}

/// A bounded map with an epoch that keeps racing reads from re-inserting stale values: take
/// [`Cache::epoch`] before reading what to cache, and [`Cache::insert_if`] keeps the value
/// only if nothing was forgotten meanwhile. Keys are ordered, so that with points for keys a
/// subtree is one range ([`PointCache`]).
#[derive(Debug)]
pub struct Cache<K, V> {
    entries: RwLock<BTreeMap<K, V>>,
    epoch: AtomicU64,
    limit: usize,
}

/// A [`Cache`] by point, which can also drop a whole subtree at once.
pub type PointCache<V> = Cache<Point, V>;

impl<K: Ord, V: Clone> Cache<K, V> {
    /// An empty cache that starts again from empty when it would hold more than `limit`.
    pub fn new(limit: usize) -> Cache<K, V> {
        Cache {
            entries: RwLock::new(BTreeMap::new()),
            epoch: AtomicU64::new(0),
            limit,
        }
    }

    /// The epoch to hand to [`Cache::insert_if`] for a value about to be read.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The value at `key`, if cached.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.read().get(key).cloned()
    }

    /// Looks at the value at `key` without cloning it.
    pub fn with<T>(&self, key: &K, look: impl FnOnce(&V) -> Option<T>) -> Option<T> {
        self.entries.read().get(key).and_then(look)
    }

    /// Keeps `value` at `key` unless something was forgotten since `epoch` was taken (then
    /// the value may already be stale, and the next read fetches it again).
    pub fn insert_if(&self, epoch: u64, key: K, value: V) {
        self.update_if(epoch, key, |slot| *slot = Some(value));
    }

    /// Changes the entry at `key` with `update` (which sees `None` where nothing is cached)
    /// unless something was forgotten since `epoch` was taken.
    pub fn update_if(&self, epoch: u64, key: K, update: impl FnOnce(&mut Option<V>)) {
        let mut entries = self.entries.write();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= self.limit && !entries.contains_key(&key) {
            entries.clear();
        }
        let mut slot = entries.remove(&key);
        update(&mut slot);
        if let Some(value) = slot {
            entries.insert(key, value);
        }
    }

    /// Drops the entry at `key`.
    pub fn forget_key(&self, key: &K) {
        let mut entries = self.entries.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    /// Drops every entry `stale` names — and counts as a forgetting even when it names none,
    /// so that a value read before it is not kept.
    pub fn forget_where(&self, mut stale: impl FnMut(&K, &V) -> bool) {
        let mut entries = self.entries.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|key, value| !stale(key, value));
    }

    /// Drops everything.
    pub fn forget_all(&self) {
        let mut entries = self.entries.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// How many entries are cached.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: Clone> Cache<Point, V> {
    /// Drops `top` and every entry below it.
    pub fn forget_subtree(&self, top: &Point) {
        let mut entries = self.entries.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let below: Vec<Point> = entries
            .range(top.clone()..)
            .map(|(point, _)| point)
            .take_while(|point| point.is_within(top))
            .cloned()
            .collect();
        for point in below {
            entries.remove(&point);
        }
    }
}

/// The most records a [`CachedRegistry`] keeps before it starts again from empty.
const RECORDS: usize = 65_536;

/// A registry with its records cached and its writes published on a [`ChangeFeed`]: what a
/// machine's stars, executor and gateway use, whatever store is underneath.
///
/// Placement and records (what routing reads on every wave) come from the cache once read;
/// everything else goes to the store. Every write publishes its [`Change`] whether or not it
/// succeeded — a write whose answer was lost may still have been committed.
///
/// Every call is counted once in the machine's [`Metrics`]
/// (`starlane_registry_operations_total{op,outcome}`): answered from the cache, or by the
/// store (done, refused or failed), whichever store it is.
pub struct CachedRegistry {
    store: Arc<dyn Registry>,
    feed: Arc<ChangeFeed>,
    records: Arc<RecordCache>,
    tokens: Arc<TokenCache>,
    events: OnceLock<Weak<dyn EventSink>>,
    metrics: Arc<Metrics>,
}

/// Hears the lifecycle events (SPEC §18) of the writes made through a [`CachedRegistry`]:
/// each machine tells of its own writes (a change heard from another machine is that
/// machine's to tell).
pub trait EventSink: Send + Sync {
    /// Whether anybody listens now; when nobody does, the registry does not look up what an
    /// event would carry.
    fn wanted(&self) -> bool;

    /// `event` happened to the particle `details` describes, as it is after the write (a
    /// deleted particle's details have no properties). Called before the write returns: it
    /// must be quick and must not wait.
    fn happened(&self, details: Details, event: Event);
}

/// The most tokens a [`CachedRegistry`] remembers before it starts again from empty.
const TOKENS: usize = 16_384;

/// The agents of tokens seen, by the token's SHA-256 (the token itself is not kept). Unknown
/// tokens are not remembered: a flood of made-up ones must not fill memory.
struct TokenCache(Cache<[u8; 32], Point>);

impl Forget for TokenCache {
    fn forget(&self, change: &Change) {
        if matches!(change, Change::Tokens | Change::Anything) {
            self.0.forget_all();
        }
    }
}

/// The cached records, by point.
struct RecordCache(PointCache<ParticleRecord>);

impl Forget for RecordCache {
    fn forget(&self, change: &Change) {
        match change {
            Change::Record(point) => self.0.forget_key(point),
            Change::Subtree(top) => self.0.forget_subtree(top),
            Change::Owners | Change::Anything => self.0.forget_all(),
            Change::Grants | Change::Tokens | Change::Subscriptions => {}
        }
    }
}

impl std::fmt::Debug for CachedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedRegistry")
            .field("records", &self.records.0.len())
            .field("feed", &self.feed)
            .finish_non_exhaustive()
    }
}

impl CachedRegistry {
    /// `store`, with an empty cache and a feed whose first listener is that cache, counting
    /// its calls in metrics of its own.
    pub fn new(store: Arc<dyn Registry>) -> Arc<CachedRegistry> {
        CachedRegistry::counted_in(store, Arc::new(Metrics::new()))
    }

    /// `store`, with an empty cache and a feed whose first listener is that cache, counting
    /// its calls in `metrics` (the machine's).
    pub fn counted_in(store: Arc<dyn Registry>, metrics: Arc<Metrics>) -> Arc<CachedRegistry> {
        let records = Arc::new(RecordCache(PointCache::new(RECORDS)));
        let tokens = Arc::new(TokenCache(Cache::new(TOKENS)));
        let feed = Arc::new(ChangeFeed::default());
        let listener: Arc<dyn Forget> = records.clone();
        feed.listen(Arc::downgrade(&listener));
        let listener: Arc<dyn Forget> = tokens.clone();
        feed.listen(Arc::downgrade(&listener));
        Arc::new(CachedRegistry {
            store,
            feed,
            records,
            tokens,
            events: OnceLock::new(),
            metrics,
        })
    }

    /// The feed of this registry's changes, for caches to listen on and for changes made
    /// elsewhere to be published on.
    pub fn changes(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    /// Tells `sink` of the lifecycle events of every later write through this registry (one
    /// sink; a second call is ignored).
    pub fn tell_events(&self, sink: Weak<dyn EventSink>) {
        let _ = self.events.set(sink);
    }

    /// The sink, when it is there and somebody listens.
    fn event_sink(&self) -> Option<Arc<dyn EventSink>> {
        self.events
            .get()
            .and_then(Weak::upgrade)
            .filter(|sink| sink.wanted())
    }

    /// Tells the sink (if anyone listens) that `event` happened to `point`, with its record as
    /// it is now.
    async fn tell(&self, point: &Point, event: Event) {
        if let Some(sink) = self.event_sink()
            && let Ok(record) = self.record(point).await
        {
            sink.happened(record.details(), event);
        }
    }

    /// The stubs of `point` and everything under it, as far as they can be read.
    async fn subtree_stubs(&self, point: &Point) -> Vec<Stub> {
        let mut stubs: Vec<Stub> = self
            .record(point)
            .await
            .map(|r| r.stub())
            .into_iter()
            .collect();
        if let Ok(below) = format!("{point}:**").parse::<Selector>()
            && let Ok(found) = self.select(&below).await
        {
            stubs.extend(found.into_iter().filter(|stub| stub.point != *point));
        }
        stubs
    }

    /// How many records are cached.
    pub fn cached_records(&self) -> usize {
        self.records.0.len()
    }

    /// Runs a write, counted as `op`, and publishes `change` after it, whatever its outcome.
    async fn publishing<T>(
        &self,
        op: RegistryOp,
        change: Change,
        write: impl std::future::Future<Output = RegistryResult<T>>,
    ) -> RegistryResult<T> {
        let outcome = self.counted(op, write).await;
        self.feed.publish(&change);
        outcome
    }

    /// Runs a call of the store, counted as `op` with its outcome.
    async fn counted<T>(
        &self,
        op: RegistryOp,
        call: impl std::future::Future<Output = RegistryResult<T>>,
    ) -> RegistryResult<T> {
        let outcome = call.await;
        let counted = match &outcome {
            Ok(_) => RegistryOutcome::Ok,
            Err(err) if err.status().is_server_error() => RegistryOutcome::Failed,
            Err(_) => RegistryOutcome::Refused,
        };
        self.metrics.registry_operation(op, counted);
        outcome
    }

    /// Counts `op` as answered from the cache.
    fn cached(&self, op: RegistryOp) {
        self.metrics.registry_operation(op, RegistryOutcome::Cached);
    }

    /// The record of `point`: from the cache, else read from the store and kept (uncounted:
    /// its callers count themselves).
    async fn load(&self, point: &Point) -> RegistryResult<ParticleRecord> {
        let epoch = self.records.0.epoch();
        let record = self.store.record(point).await?;
        self.records
            .0
            .insert_if(epoch, point.clone(), record.clone());
        Ok(record)
    }
}

#[async_trait]
impl Registry for CachedRegistry {
    async fn register(&self, registration: Registration) -> RegistryResult<ParticleRecord> {
        let change = Change::Record(registration.point.clone());
        let strategy = registration.strategy;
        let status = registration.status.clone();
        let record = self
            .publishing(
                RegistryOp::Register,
                change,
                self.store.register(registration),
            )
            .await?;
        if let Some(sink) = self.event_sink() {
            // A new particle starts in the status it was registered with; one that was
            // already there (`create?`, `create!`) has usually moved on.
            let event = match strategy {
                CreateStrategy::Commit => Some(Event::Created),
                _ if record.status == status => Some(Event::Created),
                CreateStrategy::Override => Some(Event::Properties),
                CreateStrategy::Ensure => None,
            };
            if let Some(event) = event {
                sink.happened(record.details(), event);
            }
        }
        Ok(record)
    }

    async fn register_all(&self, entries: Vec<Entry>) -> RegistryResult<Vec<ParticleRecord>> {
        let points: Vec<Point> = entries
            .iter()
            .map(|entry| entry.registration.point.clone())
            .collect();
        let outcome = self
            .counted(RegistryOp::RegisterAll, self.store.register_all(entries))
            .await;
        for point in points {
            self.feed.publish(&Change::Record(point));
        }
        if let (Ok(records), Some(sink)) = (&outcome, self.event_sink()) {
            for record in records {
                sink.happened(record.details(), Event::Created);
            }
        }
        outcome
    }

    async fn next_sequence(&self, parent: &Point) -> RegistryResult<u64> {
        self.counted(RegistryOp::NextSequence, self.store.next_sequence(parent))
            .await
    }

    async fn record(&self, point: &Point) -> RegistryResult<ParticleRecord> {
        if let Some(record) = self.records.0.get(point) {
            self.cached(RegistryOp::Record);
            return Ok(record);
        }
        self.counted(RegistryOp::Record, self.load(point)).await
    }

    async fn location(&self, point: &Point) -> RegistryResult<Option<StarKey>> {
        if let Some(location) = self
            .records
            .0
            .with(point, |record| Some(record.location.clone()))
        {
            self.cached(RegistryOp::Location);
            return Ok(location);
        }
        let record = self.counted(RegistryOp::Location, self.load(point)).await?;
        Ok(record.location)
    }

    async fn line(&self, point: &Point) -> RegistryResult<Vec<ParticleRecord>> {
        self.counted(RegistryOp::Line, self.store.line(point)).await
    }

    async fn hierarchy(&self, point: &Point) -> RegistryResult<PointHierarchy> {
        self.counted(RegistryOp::Hierarchy, self.store.hierarchy(point))
            .await
    }

    async fn lineage(&self, point: &Point) -> RegistryResult<Lineage> {
        self.counted(RegistryOp::Lineage, self.store.lineage(point))
            .await
    }

    async fn set_status(&self, point: &Point, status: Status) -> RegistryResult<()> {
        let change = Change::Record(point.clone());
        self.publishing(
            RegistryOp::SetStatus,
            change,
            self.store.set_status(point, status.clone()),
        )
        .await?;
        self.tell(point, Event::Status(status)).await;
        Ok(())
    }

    async fn set_location(&self, point: &Point, star: StarKey) -> RegistryResult<()> {
        let change = Change::Record(point.clone());
        self.publishing(
            RegistryOp::SetLocation,
            change,
            self.store.set_location(point, star),
        )
        .await
    }

    async fn set_properties(
        &self,
        point: &Point,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        let change = Change::Record(point.clone());
        let properties = self
            .publishing(
                RegistryOp::SetProperties,
                change,
                self.store.set_properties(point, changes),
            )
            .await?;
        self.tell(point, Event::Properties).await;
        Ok(properties)
    }

    async fn write_content(
        &self,
        point: &Point,
        content: Vec<u8>,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        let change = Change::Record(point.clone());
        let properties = self
            .publishing(
                RegistryOp::WriteContent,
                change,
                self.store.write_content(point, content, changes),
            )
            .await?;
        self.tell(point, Event::Properties).await;
        Ok(properties)
    }

    async fn select(&self, selector: &Selector) -> RegistryResult<Vec<Stub>> {
        self.counted(RegistryOp::Select, self.store.select(selector))
            .await
    }

    async fn children(&self, point: &Point) -> RegistryResult<Vec<Stub>> {
        self.counted(RegistryOp::Children, self.store.children(point))
            .await
    }

    async fn delete(&self, point: &Point, force: bool) -> RegistryResult<Vec<Point>> {
        let change = Change::Subtree(point.clone());
        // What the deleted were, read before they go (only when somebody listens).
        let stubs = match self.event_sink() {
            Some(_) => Some(self.subtree_stubs(point).await),
            None => None,
        };
        let deleted = self
            .publishing(RegistryOp::Delete, change, self.store.delete(point, force))
            .await?;
        if let (Some(stubs), Some(sink)) = (stubs, self.event_sink()) {
            for stub in stubs
                .into_iter()
                .filter(|stub| deleted.contains(&stub.point))
            {
                let details = Details {
                    stub,
                    properties: Properties::default(),
                };
                sink.happened(details, Event::Deleted);
            }
        }
        Ok(deleted)
    }

    async fn content(&self, point: &Point) -> RegistryResult<Option<Vec<u8>>> {
        self.counted(RegistryOp::Content, self.store.content(point))
            .await
    }

    async fn chown(&self, selector: &Selector, owner: &Point) -> RegistryResult<usize> {
        self.publishing(
            RegistryOp::Chown,
            Change::Owners,
            self.store.chown(selector, owner),
        )
        .await
    }

    async fn grant(
        &self,
        kind: GrantKind,
        on: Selector,
        to: Selector,
        by: Point,
    ) -> RegistryResult<Grant> {
        self.publishing(
            RegistryOp::Grant,
            Change::Grants,
            self.store.grant(kind, on, to, by),
        )
        .await
    }

    async fn revoke(&self, id: u64) -> RegistryResult<Grant> {
        self.publishing(RegistryOp::Revoke, Change::Grants, self.store.revoke(id))
            .await
    }

    async fn grants(&self) -> RegistryResult<Vec<Grant>> {
        self.counted(RegistryOp::Grants, self.store.grants()).await
    }

    async fn grants_on(&self, point: &Point) -> RegistryResult<Vec<Grant>> {
        self.counted(RegistryOp::GrantsOn, self.store.grants_on(point))
            .await
    }

    async fn store_token(&self, token: &str, agent: &Point) -> RegistryResult<()> {
        self.publishing(
            RegistryOp::StoreToken,
            Change::Tokens,
            self.store.store_token(token, agent),
        )
        .await
    }

    async fn token_agent(&self, token: &str) -> RegistryResult<Option<Point>> {
        let hash = super::token_hash(token);
        if let Some(agent) = self.tokens.0.get(&hash) {
            self.cached(RegistryOp::TokenAgent);
            return Ok(Some(agent));
        }
        let epoch = self.tokens.0.epoch();
        let agent = self
            .counted(RegistryOp::TokenAgent, self.store.token_agent(token))
            .await?;
        if let Some(agent) = &agent {
            self.tokens.0.insert_if(epoch, hash, agent.clone());
        }
        Ok(agent)
    }

    async fn census(&self) -> RegistryResult<BTreeMap<String, u64>> {
        self.counted(RegistryOp::Census, self.store.census()).await
    }

    async fn subscribe(&self, subscription: &Subscription) -> RegistryResult<()> {
        self.publishing(
            RegistryOp::Subscribe,
            Change::Subscriptions,
            self.store.subscribe(subscription),
        )
        .await
    }

    async fn unsubscribe(&self, subscriber: &Surface, selector: &Selector) -> RegistryResult<bool> {
        self.publishing(
            RegistryOp::Unsubscribe,
            Change::Subscriptions,
            self.store.unsubscribe(subscriber, selector),
        )
        .await
    }

    async fn unsubscribe_all(&self, point: &Point) -> RegistryResult<usize> {
        self.publishing(
            RegistryOp::UnsubscribeAll,
            Change::Subscriptions,
            self.store.unsubscribe_all(point),
        )
        .await
    }

    async fn subscriptions(&self) -> RegistryResult<Vec<Subscription>> {
        self.counted(RegistryOp::Subscriptions, self.store.subscriptions())
            .await
    }

    fn key_values(&self) -> Option<Arc<dyn super::KeyValues>> {
        self.store.key_values()
    }
}
