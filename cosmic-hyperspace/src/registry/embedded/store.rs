//! The file: redb tables, how values are encoded in them, loading them at open and writing one
//! batch of changes in one transaction.
//!
//! | Table | Key | Value |
//! | --- | --- | --- |
//! | `particles` | the point, printed | the [`ParticleRecord`], wire-encoded |
//! | `content` | the point, printed | the bytes the particle holds, as they are |
//! | `sequences` | the parent point, printed | the last number handed out |
//! | `grants` | the grant id | the [`Grant`], wire-encoded |
//! | `tokens` | SHA-256 of the token | the agent point, wire-encoded |
//! | `meta` | a name (`schema`, `next-grant`) | a number |
//! | `kv` | a key-value store's point, NUL, the key | the `KvEntry`, wire-encoded |
//! | `kv_once` | the store's point, NUL, agent, NUL, wave id | the outcomes answered, wire-encoded |
//! | `kv_once_at` | (unix ms, the `kv_once` key) | nothing: remembered answers by age |
//! | `subscriptions` | (the subscriber, the selector), printed | the agent's point, printed |
//!
//! Points are keys in their canonical printed form (readable with any redb tool); every
//! structured value goes through [`cosmic_space::wire`], the one module that knows bytes —
//! but for subscriptions, which are printed whole (as the PostgreSQL registry keeps them).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use cosmic_space::{Grant, Point, Wire};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::state::{Indexed, State};
use super::writer::Overlay;
use crate::registry::{ParticleRecord, PrintedSubscription, RegistryError, RegistryResult};

pub(super) const PARTICLES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("particles");
pub(super) const CONTENT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("content");
pub(super) const SEQUENCES: TableDefinition<'_, &str, u64> = TableDefinition::new("sequences");
pub(super) const GRANTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("grants");
pub(super) const TOKENS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("tokens");
pub(super) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
pub(super) const KV: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("kv");
pub(super) const KV_ONCE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("kv_once");
pub(super) const KV_ONCE_AT: TableDefinition<'_, (u64, &str), ()> =
    TableDefinition::new("kv_once_at");
pub(super) const SUBSCRIPTIONS: TableDefinition<'_, (&str, &str), &str> =
    TableDefinition::new("subscriptions");

/// The layout version this code reads and writes; a file with another refuses to open. A
/// table added to it (`subscriptions`) is created empty in a file that lacks it, so it does not
/// change the version.
const SCHEMA: u64 = 1;
const SCHEMA_KEY: &str = "schema";
/// The id the next grant gets.
pub(super) const NEXT_GRANT_KEY: &str = "next-grant";

/// How much of the file redb keeps cached in memory. Reads of records are served from the
/// in-memory index, so the cache mostly serves artifact content and the B-tree pages a write
/// touches.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The codec for stored values: records may carry large properties, so the frame limit is the
/// wire's ceiling rather than the default wave limit.
const WIRE: Wire = Wire::new(Wire::CEILING);

/// `error` as a storage failure, saying what was being done.
pub(crate) fn storage(doing: &str, error: impl std::fmt::Display) -> RegistryError {
    RegistryError::Storage(format!("{doing}: {error}"))
}

/// A value as stored.
pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> RegistryResult<Vec<u8>> {
    WIRE.encode(value)
        .map_err(|e| storage(&format!("encoding {what}"), e))
}

/// A stored value, or a storage error naming the row if the bytes are corrupt.
pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> RegistryResult<T> {
    WIRE.decode(bytes)
        .map_err(|e| storage(&format!("corrupt {what} in the registry file"), e))
}

/// Opens (creating if needed) the file and makes sure every table exists and the layout is
/// the one this code knows.
pub(super) fn open(path: &Path) -> RegistryResult<Database> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| storage(&format!("creating {}", dir.display()), e))?;
    }
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| storage(&format!("opening {}", path.display()), e))?;
    let txn = db
        .begin_write()
        .map_err(|e| storage("beginning the opening transaction", e))?;
    {
        let doing = "creating the registry tables";
        txn.open_table(PARTICLES).map_err(|e| storage(doing, e))?;
        txn.open_table(CONTENT).map_err(|e| storage(doing, e))?;
        txn.open_table(SEQUENCES).map_err(|e| storage(doing, e))?;
        txn.open_table(GRANTS).map_err(|e| storage(doing, e))?;
        txn.open_table(TOKENS).map_err(|e| storage(doing, e))?;
        txn.open_table(KV).map_err(|e| storage(doing, e))?;
        txn.open_table(KV_ONCE).map_err(|e| storage(doing, e))?;
        txn.open_table(KV_ONCE_AT).map_err(|e| storage(doing, e))?;
        txn.open_table(SUBSCRIPTIONS)
            .map_err(|e| storage(doing, e))?;
        let mut meta = txn.open_table(META).map_err(|e| storage(doing, e))?;
        let schema = meta
            .get(SCHEMA_KEY)
            .map_err(|e| storage("reading the schema version", e))?
            .map(|v| v.value());
        match schema {
            None => {
                meta.insert(SCHEMA_KEY, SCHEMA)
                    .map_err(|e| storage("writing the schema version", e))?;
            }
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(RegistryError::Storage(format!(
                    "{} has registry layout version {other}; this build reads version {SCHEMA}",
                    path.display()
                )));
            }
        }
    }
    txn.commit()
        .map_err(|e| storage("committing the opening transaction", e))?;
    Ok(db)
}

/// Everything in the file, as the in-memory [`State`]. Checks that each record sits under its
/// own point and that every particle's parent is registered: a file that breaks either is
/// corrupt.
pub(super) fn load(db: &Database) -> RegistryResult<State> {
    let doing = "loading the registry";
    let txn = db.begin_read().map_err(|e| storage(doing, e))?;
    let mut state = State::default();

    let particles = txn.open_table(PARTICLES).map_err(|e| storage(doing, e))?;
    for row in particles.iter().map_err(|e| storage(doing, e))? {
        let (key, value) = row.map_err(|e| storage(doing, e))?;
        let record: ParticleRecord = decode("particle record", value.value())?;
        if record.point.to_string() != key.value() {
            return Err(RegistryError::Storage(format!(
                "corrupt registry file: the row '{}' holds the record of {}",
                key.value(),
                record.point
            )));
        }
        state.records.insert(Indexed(record));
    }
    for Indexed(ParticleRecord { point, .. }) in &state.records {
        if let Some(parent) = point.parent()
            && !state.records.contains(&parent)
        {
            return Err(RegistryError::Storage(format!(
                "corrupt registry file: {point} is registered but its parent {parent} is not"
            )));
        }
    }

    let sequences = txn.open_table(SEQUENCES).map_err(|e| storage(doing, e))?;
    for row in sequences.iter().map_err(|e| storage(doing, e))? {
        let (key, value) = row.map_err(|e| storage(doing, e))?;
        let parent: Point = key.value().parse().map_err(|e| {
            storage(
                "corrupt registry file: a sequence is keyed by a bad point",
                e,
            )
        })?;
        state.sequences.insert(parent, value.value());
    }

    let grants = txn.open_table(GRANTS).map_err(|e| storage(doing, e))?;
    let mut loaded: BTreeMap<u64, Grant> = BTreeMap::new();
    for row in grants.iter().map_err(|e| storage(doing, e))? {
        let (key, value) = row.map_err(|e| storage(doing, e))?;
        let grant: Grant = decode("grant", value.value())?;
        if grant.id != key.value() {
            return Err(RegistryError::Storage(format!(
                "corrupt registry file: the grant row {} holds grant {}",
                key.value(),
                grant.id
            )));
        }
        loaded.insert(grant.id, grant);
    }
    state.grants = loaded;

    let tokens = txn.open_table(TOKENS).map_err(|e| storage(doing, e))?;
    let mut agents: HashMap<[u8; 32], Point> = HashMap::new();
    for row in tokens.iter().map_err(|e| storage(doing, e))? {
        let (key, value) = row.map_err(|e| storage(doing, e))?;
        agents.insert(key.value(), decode("token agent", value.value())?);
    }
    state.tokens = agents;

    let subscriptions = txn
        .open_table(SUBSCRIPTIONS)
        .map_err(|e| storage(doing, e))?;
    for row in subscriptions.iter().map_err(|e| storage(doing, e))? {
        let (key, value) = row.map_err(|e| storage(doing, e))?;
        let (subscriber, selector) = key.value();
        let printed = PrintedSubscription {
            subscriber: subscriber.to_string(),
            selector: selector.to_string(),
            agent: value.value().to_string(),
        };
        let subscription = printed.read("the registry file")?;
        // Rows are found by their key: one that is not the subscription's printed form could
        // never be unsubscribed.
        if subscription.subscriber.to_string() != printed.subscriber
            || subscription.selector.to_string() != printed.selector
        {
            return Err(RegistryError::Storage(format!(
                "corrupt registry file: the subscription row (subscriber '{}', selector '{}') \
                 is not keyed by its printed form ({}, {})",
                printed.subscriber,
                printed.selector,
                subscription.subscriber,
                subscription.selector
            )));
        }
        state
            .subscriptions
            .insert((printed.subscriber, printed.selector), subscription);
    }

    let meta = txn.open_table(META).map_err(|e| storage(doing, e))?;
    let next_grant = meta
        .get(NEXT_GRANT_KEY)
        .map_err(|e| storage(doing, e))?
        .map(|v| v.value())
        .unwrap_or(1);
    let after_last = state.grants.keys().next_back().map_or(1, |id| id + 1);
    state.next_grant = next_grant.max(after_last);
    Ok(state)
}

/// The content stored with `point`, read from the file.
pub(super) fn content(db: &Database, point: &Point) -> RegistryResult<Option<Vec<u8>>> {
    let doing = "reading content";
    let txn = db.begin_read().map_err(|e| storage(doing, e))?;
    let table = txn.open_table(CONTENT).map_err(|e| storage(doing, e))?;
    let bytes = table
        .get(point.to_string().as_str())
        .map_err(|e| storage(doing, e))?
        .map(|v| v.value().to_vec());
    Ok(bytes)
}

/// Writes a batch's changes in one write transaction and commits it durably (redb's default
/// immediate durability: when this returns `Ok` the changes are on disk).
pub(super) fn commit(db: &Database, overlay: &Overlay) -> RegistryResult<()> {
    let doing = "writing to the registry file";
    let txn = db.begin_write().map_err(|e| storage(doing, e))?;
    {
        let mut particles = txn.open_table(PARTICLES).map_err(|e| storage(doing, e))?;
        for (point, change) in overlay.records.changes() {
            let key = point.to_string();
            match change {
                Some(stored) => {
                    particles
                        .insert(key.as_str(), stored.bytes.as_slice())
                        .map_err(|e| storage(doing, e))?;
                }
                None => {
                    particles
                        .remove(key.as_str())
                        .map_err(|e| storage(doing, e))?;
                }
            }
        }
        let mut content = txn.open_table(CONTENT).map_err(|e| storage(doing, e))?;
        for (point, change) in overlay.content.changes() {
            let key = point.to_string();
            match change {
                Some(bytes) => {
                    content
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(|e| storage(doing, e))?;
                }
                None => {
                    content
                        .remove(key.as_str())
                        .map_err(|e| storage(doing, e))?;
                }
            }
        }
        let mut kv = txn.open_table(KV).map_err(|e| storage(doing, e))?;
        let mut kv_once = txn.open_table(KV_ONCE).map_err(|e| storage(doing, e))?;
        for (point, _) in overlay.purged.changes() {
            let (from, to) = super::kv::rows_of(&point.to_string());
            kv.retain_in(from.as_str()..to.as_str(), |_, _| false)
                .map_err(|e| storage(doing, e))?;
            kv_once
                .retain_in(from.as_str()..to.as_str(), |_, _| false)
                .map_err(|e| storage(doing, e))?;
        }
        let mut sequences = txn.open_table(SEQUENCES).map_err(|e| storage(doing, e))?;
        for (parent, last) in overlay.sequences.changes() {
            if let Some(last) = last {
                sequences
                    .insert(parent.to_string().as_str(), *last)
                    .map_err(|e| storage(doing, e))?;
            }
        }
        let mut grants = txn.open_table(GRANTS).map_err(|e| storage(doing, e))?;
        for (id, change) in overlay.grants.changes() {
            match change {
                Some(stored) => {
                    grants
                        .insert(*id, stored.bytes.as_slice())
                        .map_err(|e| storage(doing, e))?;
                }
                None => {
                    grants.remove(*id).map_err(|e| storage(doing, e))?;
                }
            }
        }
        let mut tokens = txn.open_table(TOKENS).map_err(|e| storage(doing, e))?;
        for (hash, change) in overlay.tokens.changes() {
            if let Some(stored) = change {
                tokens
                    .insert(*hash, stored.bytes.as_slice())
                    .map_err(|e| storage(doing, e))?;
            }
        }
        let mut subscriptions = txn
            .open_table(SUBSCRIPTIONS)
            .map_err(|e| storage(doing, e))?;
        for ((subscriber, selector), change) in overlay.subscriptions.changes() {
            let key = (subscriber.as_str(), selector.as_str());
            match change {
                Some(subscription) => {
                    let agent = subscription.agent.to_point().to_string();
                    subscriptions
                        .insert(key, agent.as_str())
                        .map_err(|e| storage(doing, e))?;
                }
                None => {
                    subscriptions.remove(key).map_err(|e| storage(doing, e))?;
                }
            }
        }
        let mut meta = txn.open_table(META).map_err(|e| storage(doing, e))?;
        if let Some(next) = overlay.next_grant.changes().find_map(|(_, v)| *v) {
            meta.insert(NEXT_GRANT_KEY, next)
                .map_err(|e| storage(doing, e))?;
        }
    }
    txn.commit().map_err(|e| storage(doing, e))
}
