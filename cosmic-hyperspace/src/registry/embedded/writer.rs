//! The writer thread: group commit, and the rules every write enforces.
//!
//! Every write is a [`Job`] sent over a channel to one thread (redb is synchronous and takes
//! one write transaction at a time). The thread takes every job that is waiting, runs each
//! against a [`Batch`] — the committed [`State`] plus an [`Overlay`] of the changes made by
//! the jobs before it — then writes the overlay in ONE transaction, commits it durably, takes
//! it into the in-memory state and only then answers each job. One fsync thus serves as many
//! writes as arrived during the previous one.
//!
//! A job that is refused leaves no trace: the overlay journals every change, and a refusal
//! rolls back to the mark taken before the job ran, so the other jobs of the batch are
//! unaffected.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use cosmic_space::{
    CreateStrategy, Grant, GrantKind, Point, Properties, Property, PropertyChange, PropertyChanges,
    Selector, StarKey, Status, Subscription, Surface,
};
use parking_lot::RwLock;
use redb::Database;
use tokio::sync::mpsc;

use super::state::{self, Records, State, SubscriptionKey};
use super::store::{self, encode};
use crate::registry::{Entry, ParticleRecord, Registration, RegistryError, RegistryResult};

/// The most jobs one transaction takes, so that one commit's latency stays bounded.
const MAX_BATCH: usize = 4096;

/// What a job leaves to do once its batch is committed (or has failed): answer its caller.
pub(super) type Reply = Box<dyn FnOnce(Result<(), &RegistryError>) + Send>;

/// One write: runs against the batch, and returns how to answer once the batch is committed.
pub(super) type Job = Box<dyn for<'a> FnOnce(&mut Batch<'a>) -> Reply + Send>;

/// A value together with its encoding, made when the change is made so that a value that
/// cannot be encoded refuses its own job, not the whole batch.
#[derive(Debug)]
pub(super) struct Stored<T> {
    pub(super) value: T,
    pub(super) bytes: Vec<u8>,
}

/// Changes to one table: `Some` puts, `None` removes; journalled so a refused job can be
/// rolled back.
#[derive(Debug)]
pub(super) struct Layer<K, V> {
    changes: BTreeMap<K, Option<V>>,
    /// Each change's key and what the layer held for it before (`None`: nothing).
    journal: Vec<(K, Option<Option<V>>)>,
}

impl<K, V> Default for Layer<K, V> {
    fn default() -> Self {
        Layer {
            changes: BTreeMap::new(),
            journal: Vec::new(),
        }
    }
}

impl<K: Ord + Clone, V> Layer<K, V> {
    /// The change to `key`, if any: `Some(None)` means removed.
    fn get(&self, key: &K) -> Option<Option<&V>> {
        self.changes.get(key).map(Option::as_ref)
    }

    fn set(&mut self, key: K, value: Option<V>) {
        let before = self.changes.insert(key.clone(), value);
        self.journal.push((key, before));
    }

    fn mark(&self) -> usize {
        self.journal.len()
    }

    fn rollback(&mut self, mark: usize) {
        while self.journal.len() > mark {
            let Some((key, before)) = self.journal.pop() else {
                break;
            };
            match before {
                Some(value) => {
                    self.changes.insert(key, value);
                }
                None => {
                    self.changes.remove(&key);
                }
            }
        }
    }

    /// Every change, in key order.
    pub(super) fn changes(&self) -> impl Iterator<Item = (&K, &Option<V>)> + '_ {
        self.changes.iter()
    }

    /// Every change, in key order, by value.
    pub(super) fn into_changes(self) -> BTreeMap<K, Option<V>> {
        self.changes
    }

    fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The changes a batch makes, table by table.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    pub(super) records: Layer<Point, Stored<ParticleRecord>>,
    pub(super) content: Layer<Point, Vec<u8>>,
    pub(super) sequences: Layer<Point, u64>,
    pub(super) grants: Layer<u64, Stored<Grant>>,
    pub(super) tokens: Layer<[u8; 32], Stored<Point>>,
    pub(super) next_grant: Layer<(), u64>,
    /// Points deleted in this batch (even if registered again after): their key-value entries
    /// go with them.
    pub(super) purged: Layer<Point, ()>,
    /// Subscriptions kept (`Some`) or undone (`None`), by printed subscriber and selector.
    pub(super) subscriptions: Layer<SubscriptionKey, Subscription>,
}

/// Where the overlay stood before a job ran.
#[derive(Debug, Clone, Copy)]
struct Mark([usize; 8]);

impl Overlay {
    fn mark(&self) -> Mark {
        Mark([
            self.records.mark(),
            self.content.mark(),
            self.sequences.mark(),
            self.grants.mark(),
            self.tokens.mark(),
            self.next_grant.mark(),
            self.purged.mark(),
            self.subscriptions.mark(),
        ])
    }

    fn rollback(&mut self, Mark(marks): Mark) {
        let [
            records,
            content,
            sequences,
            grants,
            tokens,
            next_grant,
            purged,
            subscriptions,
        ] = marks;
        self.records.rollback(records);
        self.content.rollback(content);
        self.sequences.rollback(sequences);
        self.grants.rollback(grants);
        self.tokens.rollback(tokens);
        self.next_grant.rollback(next_grant);
        self.purged.rollback(purged);
        self.subscriptions.rollback(subscriptions);
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.content.is_empty()
            && self.sequences.is_empty()
            && self.grants.is_empty()
            && self.tokens.is_empty()
            && self.next_grant.is_empty()
            && self.purged.is_empty()
            && self.subscriptions.is_empty()
    }
}

/// The committed state as the batch so far has changed it.
#[derive(Debug)]
pub(super) struct Batch<'a> {
    state: &'a State,
    overlay: Overlay,
}

/// The records as a batch sees them.
struct View<'b> {
    state: &'b State,
    records: &'b Layer<Point, Stored<ParticleRecord>>,
}

impl Records for View<'_> {
    fn get(&self, point: &Point) -> Option<&ParticleRecord> {
        match self.records.get(point) {
            Some(change) => change.map(|stored| &stored.value),
            None => self.state.get(point),
        }
    }

    fn scan<'a>(
        &'a self,
        within: Option<&Point>,
    ) -> Box<dyn Iterator<Item = &'a ParticleRecord> + 'a> {
        let mut merged: BTreeMap<&Point, &ParticleRecord> = self
            .state
            .scan(within)
            .map(|record| (&record.point, record))
            .collect();
        let start = within.cloned().unwrap_or_else(Point::root);
        for (point, change) in self.records.changes.range(start..) {
            let inside = match within {
                Some(top) => point.is_within(top),
                None => *point.route() == cosmic_space::RouteSeg::This,
            };
            if !inside {
                break;
            }
            match change {
                Some(stored) => {
                    merged.insert(point, &stored.value);
                }
                None => {
                    merged.remove(point);
                }
            }
        }
        Box::new(merged.into_values())
    }
}

impl Batch<'_> {
    fn view(&self) -> View<'_> {
        View {
            state: self.state,
            records: &self.overlay.records,
        }
    }

    fn record(&self, point: &Point) -> Option<&ParticleRecord> {
        match self.overlay.records.get(point) {
            Some(change) => change.map(|stored| &stored.value),
            None => self.state.get(point),
        }
    }

    fn existing(&self, point: &Point) -> RegistryResult<&ParticleRecord> {
        self.record(point)
            .ok_or_else(|| RegistryError::NotFound(point.clone()))
    }

    /// Stores `record` and returns a copy for the caller (the index keeps the original).
    fn put(&mut self, record: ParticleRecord) -> RegistryResult<ParticleRecord> {
        let bytes = encode("a particle record", &record)?;
        let copy = record.clone();
        self.overlay.records.set(
            copy.point.clone(),
            Some(Stored {
                value: record,
                bytes,
            }),
        );
        Ok(copy)
    }

    /// Registers one particle (the rules of [`crate::registry::Registry::register`]); `content`
    /// is stored when the particle is registered or overridden.
    pub(super) fn register(
        &mut self,
        registration: Registration,
        content: Option<Vec<u8>>,
    ) -> RegistryResult<ParticleRecord> {
        let record = match self.record(&registration.point) {
            Some(existing) => match over_existing(existing, registration)? {
                Some(record) => record,
                None => return Ok(existing.clone()),
            },
            None => {
                if let Some(parent) = registration.point.parent()
                    && self.record(&parent).is_none()
                {
                    return Err(RegistryError::NoParent {
                        point: registration.point,
                        parent,
                    });
                }
                new_record(registration)?
            }
        };
        if let Some(content) = content {
            self.overlay
                .content
                .set(record.point.clone(), Some(content));
        }
        self.put(record)
    }

    /// Registers the entries in order; the caller's rollback undoes them all on a refusal.
    pub(super) fn register_all(
        &mut self,
        entries: Vec<Entry>,
    ) -> RegistryResult<Vec<ParticleRecord>> {
        entries
            .into_iter()
            .map(|entry| self.register(entry.registration, entry.content))
            .collect()
    }

    /// The next number of `parent`'s sequence.
    pub(super) fn next_sequence(&mut self, parent: &Point) -> RegistryResult<u64> {
        self.existing(parent)?;
        let last = match self.overlay.sequences.get(parent) {
            Some(last) => last.copied().unwrap_or(0),
            None => self.state.sequences.get(parent).copied().unwrap_or(0),
        };
        let next = last
            .checked_add(1)
            .ok_or_else(|| RegistryError::Storage(format!("the sequence of {parent} is spent")))?;
        self.overlay.sequences.set(parent.clone(), Some(next));
        Ok(next)
    }

    pub(super) fn set_status(&mut self, point: &Point, status: Status) -> RegistryResult<()> {
        let mut record = self.existing(point)?.clone();
        record.status = status;
        self.put(record).map(drop)
    }

    pub(super) fn set_location(&mut self, point: &Point, star: StarKey) -> RegistryResult<()> {
        let mut record = self.existing(point)?.clone();
        record.location = Some(star);
        self.put(record).map(drop)
    }

    pub(super) fn set_properties(
        &mut self,
        point: &Point,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        let mut record = self.existing(point)?.clone();
        apply_changes(point, &mut record.properties, changes)?;
        self.put(record).map(|record| record.properties)
    }

    pub(super) fn write_content(
        &mut self,
        point: &Point,
        content: Vec<u8>,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        let properties = self.set_properties(point, changes)?;
        self.overlay.content.set(point.clone(), Some(content));
        Ok(properties)
    }

    /// Deletes `point` (and with `force` its subtree), deepest first.
    pub(super) fn delete(&mut self, point: &Point, force: bool) -> RegistryResult<Vec<Point>> {
        self.existing(point)?;
        let view = self.view();
        let subtree: Vec<Point> = view
            .scan(Some(point))
            .map(|record| record.point.clone())
            .collect();
        let doomed = state::doomed(point, subtree, force)?;
        let subscriptions = {
            let gone: HashSet<&Point> = doomed.iter().collect();
            self.subscriptions_of(point, |subscriber| gone.contains(subscriber))
        };
        for key in subscriptions {
            self.overlay.subscriptions.set(key, None);
        }
        for gone in &doomed {
            self.overlay.records.set(gone.clone(), None);
            self.overlay.content.set(gone.clone(), None);
            self.overlay.purged.set(gone.clone(), Some(()));
        }
        Ok(doomed)
    }

    /// The keys of the subscriptions, as the batch sees them, whose subscriber is a surface of
    /// a point at or below `top` that `doomed` accepts.
    fn subscriptions_of(
        &self,
        top: &Point,
        doomed: impl Fn(&Point) -> bool,
    ) -> Vec<SubscriptionKey> {
        let changes = &self.overlay.subscriptions;
        let mut keys: BTreeSet<SubscriptionKey> =
            state::subscriptions_of(&self.state.subscriptions, top, &doomed)
                .filter(|key| changes.get(key).is_none())
                .cloned()
                .collect();
        for (key, change) in changes.changes() {
            if let Some(subscription) = change
                && doomed(&subscription.subscriber.point)
            {
                keys.insert(key.clone());
            }
        }
        keys.into_iter().collect()
    }

    /// Keeps `subscription`, replacing the one with its subscriber and selector.
    pub(super) fn subscribe(&mut self, subscription: Subscription) -> RegistryResult<()> {
        let key = (
            subscription.subscriber.to_string(),
            subscription.selector.to_string(),
        );
        self.overlay.subscriptions.set(key, Some(subscription));
        Ok(())
    }

    /// Removes `subscriber`'s subscription to `selector`; whether there was one.
    pub(super) fn unsubscribe(
        &mut self,
        subscriber: &Surface,
        selector: &Selector,
    ) -> RegistryResult<bool> {
        let key = (subscriber.to_string(), selector.to_string());
        let existed = match self.overlay.subscriptions.get(&key) {
            Some(change) => change.is_some(),
            None => self.state.subscriptions.contains_key(&key),
        };
        if existed {
            self.overlay.subscriptions.set(key, None);
        }
        Ok(existed)
    }

    /// Removes every subscription of a surface of `point`; how many there were.
    pub(super) fn unsubscribe_all(&mut self, point: &Point) -> RegistryResult<usize> {
        let keys = self.subscriptions_of(point, |subscriber| subscriber == point);
        let count = keys.len();
        for key in keys {
            self.overlay.subscriptions.set(key, None);
        }
        Ok(count)
    }

    pub(super) fn chown(&mut self, selector: &Selector, owner: &Point) -> RegistryResult<usize> {
        let mut matched = Vec::new();
        state::select_each(&self.view(), selector, |record| {
            matched.push(record.clone())
        });
        let count = matched.len();
        for mut record in matched {
            record.owner = owner.clone();
            self.put(record)?;
        }
        Ok(count)
    }

    pub(super) fn grant(
        &mut self,
        kind: GrantKind,
        on: Selector,
        to: Selector,
        by: Point,
    ) -> RegistryResult<Grant> {
        let id = match self.overlay.next_grant.get(&()) {
            Some(next) => next.copied().unwrap_or(self.state.next_grant),
            None => self.state.next_grant,
        };
        let next = id
            .checked_add(1)
            .ok_or_else(|| RegistryError::Storage("grant ids are spent".to_string()))?;
        let grant = Grant {
            id,
            kind,
            on,
            to,
            by,
        };
        let bytes = encode("a grant", &grant)?;
        self.overlay.grants.set(
            id,
            Some(Stored {
                value: grant.clone(),
                bytes,
            }),
        );
        self.overlay.next_grant.set((), Some(next));
        Ok(grant)
    }

    pub(super) fn revoke(&mut self, id: u64) -> RegistryResult<Grant> {
        let grant = match self.overlay.grants.get(&id) {
            Some(change) => change.map(|stored| stored.value.clone()),
            None => self.state.grants.get(&id).cloned(),
        }
        .ok_or(RegistryError::NoSuchGrant(id))?;
        self.overlay.grants.set(id, None);
        Ok(grant)
    }

    pub(super) fn store_token(&mut self, hash: [u8; 32], agent: Point) -> RegistryResult<()> {
        let bytes = encode("a token's agent", &agent)?;
        self.overlay.tokens.set(
            hash,
            Some(Stored {
                value: agent,
                bytes,
            }),
        );
        Ok(())
    }
}

/// What registering `registration` over the `existing` particle at its point does (the
/// rules of [`Registration::strategy`]): `Ok(None)` keeps it unchanged (`Ensure`),
/// `Ok(Some(record))` is the record to store (`Override`), or the refusal. Shared by every
/// registry.
pub(crate) fn over_existing(
    existing: &ParticleRecord,
    registration: Registration,
) -> RegistryResult<Option<ParticleRecord>> {
    let Registration {
        point,
        kind,
        properties: changes,
        strategy,
        ..
    } = registration;
    if strategy == CreateStrategy::Commit {
        return Err(RegistryError::AlreadyExists(point));
    }
    if existing.kind != kind {
        return Err(RegistryError::KindMismatch {
            point,
            existing: Box::new(existing.kind.clone()),
            requested: Box::new(kind),
        });
    }
    if strategy == CreateStrategy::Ensure {
        return Ok(None);
    }
    // Override: the locked properties stay, the rest are replaced.
    let mut record = existing.clone();
    record.properties = existing
        .properties
        .iter()
        .filter(|(_, property)| property.locked)
        .map(|(name, property)| (name, property.clone()))
        .collect();
    apply_changes(&point, &mut record.properties, &changes)?;
    Ok(Some(record))
}

/// The record of a particle `registration` registers where nothing is (the caller checks
/// that its parent exists). Shared by every registry.
pub(crate) fn new_record(registration: Registration) -> RegistryResult<ParticleRecord> {
    let Registration {
        point,
        kind,
        owner,
        properties: changes,
        status,
        ..
    } = registration;
    let mut properties = Properties::new();
    apply_changes(&point, &mut properties, &changes)?;
    Ok(ParticleRecord {
        point,
        kind,
        status,
        owner,
        properties,
        location: None,
    })
}

/// Applies `changes` to `properties` of the particle at `point`, all or none: a change to a
/// locked property (removing it, or setting another value) refuses them all. Setting a locked
/// property to the value it has is no change, and leaves it locked.
pub(crate) fn apply_changes(
    point: &Point,
    properties: &mut Properties,
    changes: &PropertyChanges,
) -> RegistryResult<()> {
    for change in changes {
        if let Some(existing) = properties.get(change.name())
            && existing.locked
        {
            let unchanged =
                matches!(change, PropertyChange::Set { value, .. } if *value == existing.value);
            if !unchanged {
                return Err(RegistryError::PropertyLocked {
                    point: point.clone(),
                    name: change.name().to_string(),
                });
            }
        }
    }
    for change in changes {
        match change {
            PropertyChange::Set { name, value, lock } => {
                let locked = *lock || properties.get(name).is_some_and(|p| p.locked);
                properties.insert(
                    name.clone(),
                    Property {
                        value: value.clone(),
                        locked,
                    },
                );
            }
            PropertyChange::Remove { name } => {
                properties.remove(name);
            }
        }
    }
    Ok(())
}

/// Wraps a write so that the writer thread can run it: a refusal rolls the batch back to
/// where it stood before, and the caller gets its answer through `answer` once the batch is
/// committed (or the commit's error if it was not).
pub(super) fn job<T, F>(op: F, answer: tokio::sync::oneshot::Sender<RegistryResult<T>>) -> Job
where
    T: Send + 'static,
    F: for<'a> FnOnce(&mut Batch<'a>) -> RegistryResult<T> + Send + 'static,
{
    Box::new(move |batch: &mut Batch<'_>| -> Reply {
        let mark = batch.overlay.mark();
        let result = op(batch);
        if result.is_err() {
            batch.overlay.rollback(mark);
        }
        Box::new(move |committed: Result<(), &RegistryError>| {
            let result = match (result, committed) {
                (Ok(_), Err(failed)) => Err(failed.clone()),
                (result, _) => result,
            };
            // The caller may have gone; the write stands all the same.
            let _ = answer.send(result);
        })
    })
}

/// The next batch of a group-committing writer thread: waits for one job, then takes every job
/// already waiting, up to `max`; `None` once every sender is gone and the queue is drained.
pub(super) fn next_batch<T>(jobs: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = jobs.blocking_recv()?;
    let mut pending = vec![first];
    while pending.len() < max {
        match jobs.try_recv() {
            Ok(job) => pending.push(job),
            Err(_) => break,
        }
    }
    Some(pending)
}

/// The writer thread's loop: runs until every sender of `jobs` is gone and the queue is
/// drained.
pub(super) fn run(db: Arc<Database>, state: Arc<RwLock<State>>, mut jobs: mpsc::Receiver<Job>) {
    while let Some(pending) = next_batch(&mut jobs, MAX_BATCH) {
        let (replies, overlay) = {
            let committed = state.read();
            let mut batch = Batch {
                state: &committed,
                overlay: Overlay::default(),
            };
            let replies: Vec<Reply> = pending.into_iter().map(|job| job(&mut batch)).collect();
            (replies, batch.overlay)
        };
        let outcome = if overlay.is_empty() {
            Ok(())
        } else {
            store::commit(&db, &overlay)
        };
        if outcome.is_ok() {
            state.write().apply(overlay);
        }
        for reply in replies {
            reply(outcome.as_ref().map(|_| ()));
        }
    }
}
