//! [`PgRegistry`]: the registry of a cosmos across machines, in PostgreSQL (SPEC §14.2).
//!
//! - **Schema** (`schema`): versioned migrations applied at connect under an advisory lock.
//!   Points are `text COLLATE "C"` keys in their printed form, so a subtree is one index
//!   range scan over its printed prefix; each row keeps the wire-encoded record, so a read
//!   decodes exactly what the embedded store holds.
//! - **Statements** are prepared once per pooled connection (deadpool's statement cache), so
//!   each is one round trip.
//! - **Reads** take a pooled connection and run one statement (two, pipelined on the same
//!   connection, where a read needs both). Selections and children read the stub columns
//!   (point, kind, status), not records (`select`); lines, hierarchies and selections are
//!   matched in Rust by the same walks the embedded store uses (`embedded::state`), over the
//!   rows of the selector's literal-prefix range: no selector logic lives in SQL.
//! - **Creates** of new points that arrive together are one multi-row `INSERT` (group commit,
//!   `creates`); a point the batch could not insert is decided alone: one `INSERT` without a
//!   transaction (the parent's foreign key refuses a missing parent and locks it), and for a
//!   taken point a transaction.
//! - **Writes** are READ COMMITTED transactions that lock the rows they decide on
//!   (`FOR UPDATE` on the particle, `FOR KEY SHARE` on a parent a child is registered under,
//!   so a concurrent `delete` of the parent waits or wins cleanly). A lost insert race, a
//!   serialization failure or a deadlock rolls back and runs the whole operation again, a
//!   bounded number of times.
//! - **Content** is stored in 256 KiB chunks and read back chunk by chunk into one buffer of
//!   the recorded size.
//! - **Errors**: a dropped connection or an exhausted pool is [`RegistryError::Unavailable`]
//!   (503); anything else the database says is [`RegistryError::Storage`].

// `RegistryError` is the trait's error; it travels on cold paths only (see `embedded`).
#![allow(clippy::result_large_err)]

mod creates;
mod failure;
mod schema;
mod select;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use cosmic_space::{
    CreateStrategy, Grant, GrantKind, Lineage, Point, PointHierarchy, Properties, PropertyChanges,
    Selector, StarKey, Status, Stub, Subscription, Surface, Wire,
};
use deadpool_postgres::{
    GenericClient, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
};
use serde::de::DeserializeOwned;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};

use self::creates::{Creates, NewRow, Outcome};
use self::failure::Failure;
use self::select::{BY_STUB, STUBS};
use super::embedded::state::{self, Records};
use super::embedded::store::{encode, storage};
use super::embedded::writer::{apply_changes, new_record, over_existing};
use super::{
    Entry, ParticleRecord, PrintedSubscription, Registration, Registry, RegistryError,
    RegistryResult, token_hash,
};

/// The size of one stored chunk of content.
const CHUNK: usize = 256 * 1024;

/// How many times an operation runs before a lost race or serialization failure is given up.
const ATTEMPTS: u32 = 16;

/// How every pooled session is set up. Statements are prepared once per connection, and a
/// prepared statement's plan is made for the values it runs with each time: PostgreSQL would
/// otherwise settle on a generic plan after five runs and keep it for the connection's life —
/// planned while `particles` held a few rows, it scans the table (a create took 3 ms instead
/// of 0.1 once 13k particles were registered). Planning a statement costs far less than the
/// round trip that preparing saves.
const SESSION: &str = "SET plan_cache_mode = force_custom_plan";

/// The codec for stored values (the wire's ceiling, as in the embedded store).
const WIRE: Wire = Wire::new(Wire::CEILING);

/// How a [`PgRegistry`] connects.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// How many connections the pool keeps at most.
    pub pool_size: usize,
    /// How long an operation waits for a free connection (or a new one) before it fails with
    /// [`RegistryError::Unavailable`].
    pub wait: Duration,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            pool_size: 16,
            wait: Duration::from_secs(5),
        }
    }
}

/// The registry in PostgreSQL: a pool of connections to one database, whose schema it
/// migrates at connect. Several machines may share the database.
#[derive(Debug, Clone)]
pub struct PgRegistry {
    pool: Pool,
    creates: Creates,
    /// The membership's own connections (`leases`).
    leases_pool: Pool,
    /// The entries of key-value stores, on the registry's pool.
    key_values: std::sync::Arc<kv::PgKeyValues>,
}

/// Runs `$body` in a transaction (bound to `$tx`) and commits it, running the whole again
/// when a race, a serialization failure or a connection that broke before `COMMIT` makes
/// that worthwhile (a broken `COMMIT` is not retried); the error says `$doing`.
macro_rules! transaction {
    ($self:ident, $doing:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome: Result<_, Failure> = async {
                let mut client = $self.pool.get().await?;
                let $tx = client.transaction().await?;
                let value = $body;
                $tx.commit().await.map_err(Failure::Commit)?;
                Ok(value)
            }
            .await;
            match outcome {
                Ok(value) => break Ok(value),
                Err(failure)
                    if attempt < ATTEMPTS
                        && (failure.is_retryable() || failure.is_broken_connection()) =>
                {
                    continue;
                }
                Err(failure) => break Err(failure.into_error(&$doing)),
            }
        }
    }};
}

/// Runs the read `$body` on a pooled connection (bound to `$client`); a read that met a
/// broken connection is tried again on another (the pool may hold several broken ones).
macro_rules! read {
    ($self:ident, $doing:expr, |$client:ident| $body:block) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome: Result<_, Failure> = async {
                let $client = $self.pool.get().await?;
                Ok($body)
            }
            .await;
            match outcome {
                Ok(value) => break Ok(value),
                Err(failure) if attempt < ATTEMPTS && failure.is_broken_connection() => continue,
                Err(failure) => break Err(failure.into_error(&$doing)),
            }
        }
    }};
}

// After the macros, which it uses.
mod kv;

impl PgRegistry {
    /// Locks the record at `point`, applies `change` to it and writes it back, in one
    /// transaction (run again on a race); `what` names what changes, for the error.
    async fn modify(
        &self,
        point: &Point,
        what: &str,
        change: impl Fn(&mut ParticleRecord) + Send + Sync,
    ) -> RegistryResult<()> {
        transaction!(self, format!("setting {what} of {point}"), |tx| {
            let mut record = locked(&tx, point).await?;
            change(&mut record);
            update(&tx, &record).await?
        })
    }

    /// Connects to the database at `url` (`postgres://user:pass@host:port/db`) with the
    /// default [`PgConfig`], and migrates its schema.
    pub async fn connect(url: &str) -> RegistryResult<PgRegistry> {
        PgRegistry::connect_with(url, PgConfig::default()).await
    }

    /// Connects to the database at `url` and migrates its schema. Fails with
    /// [`RegistryError::Storage`] if the URL is malformed or a migration fails, and with
    /// [`RegistryError::Unavailable`] if the server cannot be reached.
    pub async fn connect_with(url: &str, config: PgConfig) -> RegistryResult<PgRegistry> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| storage("reading the PostgreSQL URL", e))?;
        let pool = pool(pg.clone(), config.pool_size, config.wait)?;
        let registry = PgRegistry {
            key_values: std::sync::Arc::new(kv::PgKeyValues::new(pool.clone())),
            creates: Creates::start(pool.clone()),
            pool,
            leases_pool: self::pool(pg, LEASES_POOL_SIZE, config.wait)?,
        };
        let migrated: Result<i32, Failure> = async {
            let mut client = registry.pool.get().await?;
            schema::migrate(&mut client).await
        }
        .await;
        migrated.map_err(|f| f.into_error("migrating the registry schema"))?;
        Ok(registry)
    }
}

/// How many connections the leases keep (one machine renews, reads and buries in turn; a
/// second covers a connection being replaced).
const LEASES_POOL_SIZE: usize = 2;

/// A pool of at most `size` connections to `pg`, each set up with [`SESSION`], that waits
/// `wait` at most for a connection.
fn pool(pg: tokio_postgres::Config, size: usize, wait: Duration) -> RegistryResult<Pool> {
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .post_create(Hook::async_fn(|client, _| {
            Box::pin(async move {
                client
                    .batch_execute(SESSION)
                    .await
                    .map_err(HookError::Backend)
            })
        }))
        .build()
        .map_err(|e| storage("building the PostgreSQL pool", e))
}

/// A stored value, or a storage error naming what is corrupt.
fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> RegistryResult<T> {
    WIRE.decode(bytes)
        .map_err(|e| storage(&format!("corrupt {what} in PostgreSQL"), e))
}

/// `sql` as a statement prepared on this connection once (deadpool's statement cache), so
/// that every use after the first is one round trip (bind and execute) instead of two.
async fn prepared(client: &impl GenericClient, sql: &str) -> Result<Statement, Failure> {
    Ok(client.prepare_cached(sql).await?)
}

/// The record in a row whose first column is `record`.
fn record_of(row: &Row) -> Result<ParticleRecord, Failure> {
    let bytes: &[u8] = row.try_get(0)?;
    Ok(decode("particle record", bytes)?)
}

fn records_of(rows: &[Row]) -> Result<Vec<ParticleRecord>, Failure> {
    rows.iter().map(record_of).collect()
}

fn parse_point(text: &str) -> Result<Point, Failure> {
    text.parse()
        .map_err(|e| Failure::Refused(storage(&format!("corrupt point '{text}' in PostgreSQL"), e)))
}

/// The range `[low, high)` of printed points that starts with `top`'s printed form: every
/// descendant of `top` is in it (along with points that merely share the prefix, which the
/// walks filter out by `Point::is_within`).
fn prefix_range(top: &Point) -> (String, String) {
    let low = top.to_string();
    let mut high = low.clone();
    match high
        .pop()
        .and_then(|last| char::from_u32(u32::from(last) + 1))
    {
        Some(next) => high.push(next),
        None => {
            // No next character (or an empty prefix): everything that starts with `low`.
            high = low.clone();
            high.push(char::MAX);
        }
    }
    (low, high)
}

/// Fetched records in point order, seen through the same [`Records`] interface as the
/// embedded store's index, so the same walks serve both.
#[derive(Debug)]
struct Fetched(Vec<ParticleRecord>);

impl Fetched {
    fn new(mut records: Vec<ParticleRecord>) -> Fetched {
        records.sort_unstable_by(|a, b| a.point.cmp(&b.point));
        Fetched(records)
    }
}

impl Records for Fetched {
    fn get(&self, point: &Point) -> Option<&ParticleRecord> {
        self.0
            .binary_search_by(|record| record.point.cmp(point))
            .ok()
            .map(|at| &self.0[at])
    }

    fn scan<'a>(
        &'a self,
        within: Option<&Point>,
    ) -> Box<dyn Iterator<Item = &'a ParticleRecord> + 'a> {
        let start = match within {
            Some(top) => self.0.partition_point(|record| record.point < *top),
            None => {
                let root = Point::root();
                self.0.partition_point(|record| record.point < root)
            }
        };
        state::take_within(self.0[start..].iter(), within)
    }
}

/// The grants in `rows`' first column.
fn grants_of(rows: &[tokio_postgres::Row]) -> Result<Vec<Grant>, Failure> {
    rows.iter()
        .map(|row| Ok(decode::<Grant>("grant", row.try_get(0)?)?))
        .collect()
}

/// The subscriptions in `rows` (columns subscriber, selector, agent); a row that does not
/// parse is a storage error naming it.
fn subscriptions_of(rows: &[Row]) -> Result<Vec<Subscription>, Failure> {
    rows.iter()
        .map(|row| {
            let printed = PrintedSubscription {
                subscriber: row.try_get(0)?,
                selector: row.try_get(1)?,
                agent: row.try_get(2)?,
            };
            Ok(printed.read("PostgreSQL")?)
        })
        .collect()
}

/// `point` and its ancestors, printed: what a line, hierarchy or lineage needs.
fn with_ancestors(point: &Point) -> Vec<String> {
    point
        .ancestors()
        .chain(std::iter::once(point.clone()))
        .map(|p| p.to_string())
        .collect()
}

/// Which rows a selector may match, as a `WHERE` clause and its parameters: the subtree of
/// its literal prefix and, for the walk, the prefix's ancestors (whose kinds the matching
/// needs) — or every particle; only those of one base kind if given.
struct Candidates {
    conditions: Vec<String>,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Candidates {
    fn of(selector: &Selector, ancestors: bool, base: Option<&'static str>) -> Candidates {
        let mut candidates = Candidates {
            conditions: Vec::new(),
            values: Vec::new(),
        };
        if let Some(top) = selector.literal_prefix().filter(|top| !top.is_root()) {
            let (low, high) = prefix_range(&top);
            candidates.values.push(Box::new(low));
            candidates.values.push(Box::new(high));
            if ancestors {
                candidates.values.push(Box::new(with_ancestors(&top)));
                candidates
                    .conditions
                    .push("((point >= $1 AND point < $2) OR point = ANY($3))".to_string());
            } else {
                candidates
                    .conditions
                    .push("point >= $1 AND point < $2".to_string());
            }
        }
        if let Some(base) = base {
            candidates.values.push(Box::new(base));
            candidates
                .conditions
                .push(format!("base = ${}", candidates.values.len()));
        }
        candidates
    }

    /// `WHERE …`, or nothing for every particle.
    fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|value| &**value as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The records `selector` may match and the ancestors of its literal prefix, locked with
/// `lock`.
async fn candidates(
    client: &impl GenericClient,
    selector: &Selector,
    lock: &str,
) -> Result<Fetched, Failure> {
    let candidates = Candidates::of(selector, true, None);
    let sql = format!(
        "SELECT record FROM particles {} {lock}",
        candidates.clause()
    );
    let rows = client
        .query(&prepared(client, &sql).await?, &candidates.params())
        .await?;
    Ok(Fetched::new(records_of(&rows)?))
}

/// The line of `point`: its record and its ancestors'.
async fn fetch_line(client: &impl GenericClient, point: &Point) -> Result<Fetched, Failure> {
    let statement = prepared(client, "SELECT record FROM particles WHERE point = ANY($1)").await?;
    let rows = client.query(&statement, &[&with_ancestors(point)]).await?;
    Ok(Fetched::new(records_of(&rows)?))
}

/// The record at `point`, locked for update, or `NotFound`.
async fn locked(client: &impl GenericClient, point: &Point) -> Result<ParticleRecord, Failure> {
    let statement = prepared(
        client,
        "SELECT record FROM particles WHERE point = $1 FOR NO KEY UPDATE",
    )
    .await?;
    let row = client
        .query_opt(&statement, &[&point.to_string()])
        .await?
        .ok_or_else(|| RegistryError::NotFound(point.clone()))?;
    record_of(&row)
}

/// Writes a changed record back (its point, parent and kind unchanged), with its status.
async fn update(client: &impl GenericClient, record: &ParticleRecord) -> Result<(), Failure> {
    let bytes = encode("a particle record", record)?;
    let status = encode("a status", &record.status)?;
    let statement = prepared(
        client,
        "UPDATE particles SET record = $2, status = $3 WHERE point = $1",
    )
    .await?;
    client
        .execute(&statement, &[&record.point.to_string(), &bytes, &status])
        .await?;
    Ok(())
}

/// Replaces the content of `point` (which must be registered) with `content`, chunk by
/// chunk, borrowing the caller's buffer.
async fn put_content(
    client: &impl GenericClient,
    point: &str,
    content: &[u8],
) -> Result<(), Failure> {
    let delete = prepared(client, "DELETE FROM contents WHERE point = $1").await?;
    client.execute(&delete, &[&point]).await?;
    let size = i64::try_from(content.len())
        .map_err(|_| storage("storing content", "larger than PostgreSQL can count"))?;
    let header = prepared(client, "INSERT INTO contents (point, size) VALUES ($1, $2)").await?;
    client.execute(&header, &[&point, &size]).await?;
    let insert = prepared(
        client,
        "INSERT INTO content_chunks (point, chunk, bytes) VALUES ($1, $2, $3)",
    )
    .await?;
    for (n, chunk) in content.chunks(CHUNK).enumerate() {
        let n = i32::try_from(n).map_err(|_| storage("storing content", "too many chunks"))?;
        client.execute(&insert, &[&point, &n, &chunk]).await?;
    }
    Ok(())
}

/// Inserts `row`, the row of the new particle `record`; `false` if the point is taken. A
/// parent that is not registered fails the key check (`NoParent`).
async fn insert(
    client: &impl GenericClient,
    record: &ParticleRecord,
    row: &NewRow,
) -> Result<bool, Failure> {
    let statement = prepared(
        client,
        "INSERT INTO particles (point, parent, depth, kind, base, status, record) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (point) DO NOTHING",
    )
    .await?;
    let inserted = client
        .execute(
            &statement,
            &[
                &row.point,
                &row.parent,
                &row.depth,
                &row.kind,
                &row.base,
                &row.status,
                &row.record,
            ],
        )
        .await;
    match inserted {
        Ok(count) => Ok(count > 0),
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => match record.point.parent()
        {
            Some(parent) => Err(RegistryError::NoParent {
                point: record.point.clone(),
                parent,
            }
            .into()),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Registers one particle inside a transaction (the rules of [`Registry::register`]).
async fn register_in(
    client: &impl GenericClient,
    registration: Registration,
    content: Option<Vec<u8>>,
) -> Result<ParticleRecord, Failure> {
    let printed = registration.point.to_string();
    let parent = registration.point.parent();
    let parent_printed = parent.as_ref().map(Point::to_string);
    // The particle and its parent, pipelined on the one connection.
    let own: [&(dyn ToSql + Sync); 1] = [&printed];
    let above: [&(dyn ToSql + Sync); 1] = [&parent_printed];
    let lock_own = prepared(
        client,
        "SELECT record FROM particles WHERE point = $1 FOR UPDATE",
    )
    .await?;
    let lock_parent = prepared(
        client,
        "SELECT 1 FROM particles WHERE point = $1 FOR KEY SHARE",
    )
    .await?;
    let (existing, parent_row) = tokio::join!(
        client.query_opt(&lock_own, &own),
        client.query_opt(&lock_parent, &above),
    );
    let record = match existing? {
        Some(row) => {
            let existing = record_of(&row)?;
            let Some(record) = over_existing(&existing, registration)? else {
                return Ok(existing);
            };
            update(client, &record).await?;
            record
        }
        None => {
            if let Some(parent) = parent
                && parent_row?.is_none()
            {
                return Err(RegistryError::NoParent {
                    point: registration.point,
                    parent,
                }
                .into());
            }
            let record = new_record(registration)?;
            if !insert(client, &record, &NewRow::of(&record)?).await? {
                // Another transaction registered the point since we looked: decide again.
                return Err(Failure::Raced);
            }
            record
        }
    };
    if let Some(content) = content {
        put_content(client, &printed, &content).await?;
    }
    Ok(record)
}

#[async_trait]
impl Registry for PgRegistry {
    async fn register(&self, registration: Registration) -> RegistryResult<ParticleRecord> {
        // A point not taken yet is one row of a batch insert, or alone one statement without
        // a transaction: the insert is atomic, and its key check locks the parent. Properties
        // of a new particle start empty, so no lock can refuse them beyond what
        // `apply_changes` checks here.
        let mut properties = Properties::new();
        apply_changes(
            &registration.point,
            &mut properties,
            &registration.properties,
        )?;
        let record = ParticleRecord {
            point: registration.point.clone(),
            kind: registration.kind.clone(),
            status: registration.status.clone(),
            owner: registration.owner.clone(),
            properties,
            location: None,
        };
        let row = match self.creates.insert(NewRow::of(&record)?).await {
            Ok(Outcome::Inserted) => return Ok(record),
            Ok(Outcome::Failed(error)) => return Err(error),
            Ok(Outcome::Declined(row)) | Err(row) => row,
        };
        let doing = format!("registering {}", registration.point);
        // Alone. Not retried: had the insert committed before the connection dropped, a
        // second try would wrongly find the point taken.
        let fresh: Result<bool, Failure> = async {
            let client = self.pool.get().await?;
            insert(&client, &record, &row).await
        }
        .await;
        if fresh.map_err(|failure| failure.into_error(&doing))? {
            return Ok(record);
        }
        if registration.strategy == CreateStrategy::Commit {
            return Err(RegistryError::AlreadyExists(registration.point));
        }
        transaction!(self, doing, |tx| {
            register_in(&tx, registration.clone(), None).await?
        })
    }

    async fn register_all(&self, entries: Vec<Entry>) -> RegistryResult<Vec<ParticleRecord>> {
        let doing = format!("registering {} particles", entries.len());
        transaction!(self, doing, |tx| {
            let mut records = Vec::with_capacity(entries.len());
            for entry in &entries {
                records.push(
                    register_in(&tx, entry.registration.clone(), entry.content.clone()).await?,
                );
            }
            records
        })
    }

    async fn next_sequence(&self, parent: &Point) -> RegistryResult<u64> {
        let printed = parent.to_string();
        transaction!(self, format!("the next sequence of {parent}"), |tx| {
            let lock_parent = prepared(
                &tx,
                "SELECT 1 FROM particles WHERE point = $1 FOR KEY SHARE",
            )
            .await?;
            let exists = tx.query_opt(&lock_parent, &[&printed]).await?;
            if exists.is_none() {
                return Err(RegistryError::NotFound(parent.clone()).into());
            }
            let next = prepared(
                &tx,
                "INSERT INTO sequences (parent, last) VALUES ($1, 1) \
                 ON CONFLICT (parent) DO UPDATE SET last = sequences.last + 1 \
                 RETURNING last",
            )
            .await?;
            let last: i64 = tx.query_one(&next, &[&printed]).await?.try_get(0)?;
            u64::try_from(last).map_err(|_| storage("a sequence", "negative in the database"))?
        })
    }

    async fn record(&self, point: &Point) -> RegistryResult<ParticleRecord> {
        let printed = point.to_string();
        read!(self, format!("reading {point}"), |client| {
            let statement =
                prepared(&client, "SELECT record FROM particles WHERE point = $1").await?;
            let row = client
                .query_opt(&statement, &[&printed])
                .await?
                .ok_or_else(|| RegistryError::NotFound(point.clone()))?;
            record_of(&row)?
        })
    }

    async fn line(&self, point: &Point) -> RegistryResult<Vec<ParticleRecord>> {
        read!(self, format!("the line of {point}"), |client| {
            state::line(&fetch_line(&client, point).await?, point)?
        })
    }

    async fn hierarchy(&self, point: &Point) -> RegistryResult<PointHierarchy> {
        read!(self, format!("the hierarchy of {point}"), |client| {
            state::hierarchy(&fetch_line(&client, point).await?, point)?
        })
    }

    async fn lineage(&self, point: &Point) -> RegistryResult<Lineage> {
        read!(self, format!("the lineage of {point}"), |client| {
            state::lineage(&fetch_line(&client, point).await?, point)?
        })
    }

    async fn set_status(&self, point: &Point, status: Status) -> RegistryResult<()> {
        self.modify(point, "the status", |record| record.status = status.clone())
            .await
    }

    async fn set_location(&self, point: &Point, star: StarKey) -> RegistryResult<()> {
        self.modify(point, "the location", |record| {
            record.location = Some(star.clone())
        })
        .await
    }

    async fn set_properties(
        &self,
        point: &Point,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        transaction!(self, format!("setting properties of {point}"), |tx| {
            let mut record = locked(&tx, point).await?;
            apply_changes(point, &mut record.properties, changes)?;
            update(&tx, &record).await?;
            record.properties
        })
    }

    async fn write_content(
        &self,
        point: &Point,
        content: Vec<u8>,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties> {
        transaction!(self, format!("writing the content of {point}"), |tx| {
            let mut record = locked(&tx, point).await?;
            apply_changes(point, &mut record.properties, changes)?;
            update(&tx, &record).await?;
            put_content(&tx, &point.to_string(), &content).await?;
            record.properties
        })
    }

    async fn select(&self, selector: &Selector) -> RegistryResult<Vec<Stub>> {
        read!(self, format!("selecting {selector}"), |client| {
            select::select(&client, selector).await?
        })
    }

    async fn children(&self, point: &Point) -> RegistryResult<Vec<Stub>> {
        let printed = point.to_string();
        read!(self, format!("the children of {point}"), |client| {
            let params: [&(dyn ToSql + Sync); 1] = [&printed];
            let exists = prepared(&client, "SELECT 1 FROM particles WHERE point = $1").await?;
            let below = prepared(
                &client,
                &format!("SELECT {STUBS} FROM particles WHERE parent = $1 {BY_STUB}"),
            )
            .await?;
            let (own, children) = select::unsorted(&client, async {
                Ok(tokio::join!(
                    client.query_opt(&exists, &params),
                    client.query(&below, &params),
                ))
            })
            .await?;
            if own?.is_none() {
                return Err(RegistryError::NotFound(point.clone()).into());
            }
            select::stubs_of(&children?, |_| true, |_| true)?
        })
    }

    async fn delete(&self, point: &Point, force: bool) -> RegistryResult<Vec<Point>> {
        transaction!(self, format!("deleting {point}"), |tx| {
            let own = tx
                .query_opt(
                    &prepared(&tx, "SELECT 1 FROM particles WHERE point = $1 FOR UPDATE").await?,
                    &[&point.to_string()],
                )
                .await?;
            if own.is_none() {
                return Err(RegistryError::NotFound(point.clone()).into());
            }
            let (low, high) = prefix_range(point);
            let rows = tx
                .query(
                    &prepared(
                        &tx,
                        "SELECT point FROM particles WHERE point >= $1 AND point < $2 FOR UPDATE",
                    )
                    .await?,
                    &[&low, &high],
                )
                .await?;
            let mut subtree = Vec::with_capacity(rows.len());
            for row in &rows {
                let candidate = parse_point(row.try_get(0)?)?;
                if candidate.is_within(point) {
                    subtree.push(candidate);
                }
            }
            let doomed = state::doomed(point, subtree, force)?;
            let printed: Vec<String> = doomed.iter().map(Point::to_string).collect();
            let particles = prepared(&tx, "DELETE FROM particles WHERE point = ANY($1)").await?;
            let subscriptions = prepared(
                &tx,
                "DELETE FROM subscriptions WHERE subscriber_point = ANY($1)",
            )
            .await?;
            // Both in one round trip (pipelined on the transaction's connection).
            let params: [&(dyn ToSql + Sync); 1] = [&printed];
            let (particles, subscriptions) = tokio::join!(
                tx.execute(&particles, &params),
                tx.execute(&subscriptions, &params),
            );
            particles?;
            subscriptions?;
            doomed
        })
    }

    async fn content(&self, point: &Point) -> RegistryResult<Option<Vec<u8>>> {
        let printed = point.to_string();
        transaction!(self, format!("reading the content of {point}"), |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            let params: [&(dyn ToSql + Sync); 1] = [&printed];
            let exists = prepared(&tx, "SELECT 1 FROM particles WHERE point = $1").await?;
            let size = prepared(&tx, "SELECT size FROM contents WHERE point = $1").await?;
            let (own, header) =
                tokio::join!(tx.query_opt(&exists, &params), tx.query_opt(&size, &params),);
            if own?.is_none() {
                return Err(RegistryError::NotFound(point.clone()).into());
            }
            match header? {
                None => None,
                Some(row) => {
                    let size: i64 = row.try_get(0)?;
                    let size = usize::try_from(size)
                        .map_err(|_| storage("reading content", "a negative size"))?;
                    // One chunk at a time into one buffer of the final size: the bundle is
                    // never held twice.
                    let mut bytes = Vec::with_capacity(size);
                    let chunk = prepared(
                        &tx,
                        "SELECT bytes FROM content_chunks WHERE point = $1 AND chunk = $2",
                    )
                    .await?;
                    let mut n: i32 = 0;
                    while bytes.len() < size {
                        let row =
                            tx.query_opt(&chunk, &[&printed, &n])
                                .await?
                                .ok_or_else(|| {
                                    storage(
                                        "reading content",
                                        format!("chunk {n} of {point} is missing"),
                                    )
                                })?;
                        bytes.extend_from_slice(row.try_get::<_, &[u8]>(0)?);
                        n += 1;
                    }
                    Some(bytes)
                }
            }
        })
    }

    async fn chown(&self, selector: &Selector, owner: &Point) -> RegistryResult<usize> {
        transaction!(self, format!("chown of {selector}"), |tx| {
            let fetched = candidates(&tx, selector, "FOR NO KEY UPDATE").await?;
            let mut points = Vec::new();
            let mut bytes = Vec::new();
            let mut failed = None;
            state::select_each(&fetched, selector, |record| {
                let mut changed = record.clone();
                changed.owner = owner.clone();
                match encode("a particle record", &changed) {
                    Ok(encoded) => {
                        points.push(changed.point.to_string());
                        bytes.push(encoded);
                    }
                    Err(e) => failed = Some(e),
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
            tx.execute(
                &prepared(
                    &tx,
                    "UPDATE particles SET record = changed.record \
                 FROM unnest($1::text[], $2::bytea[]) AS changed (point, record) \
                 WHERE particles.point = changed.point",
                )
                .await?,
                &[&points, &bytes],
            )
            .await?;
            points.len()
        })
    }

    async fn grant(
        &self,
        kind: GrantKind,
        on: Selector,
        to: Selector,
        by: Point,
    ) -> RegistryResult<Grant> {
        transaction!(self, "recording a grant", |tx| {
            let id: i64 = tx
                .query_one(&prepared(&tx, "SELECT nextval('grant_ids')").await?, &[])
                .await?
                .try_get(0)?;
            let grant = Grant {
                id: u64::try_from(id).map_err(|_| storage("a grant id", "negative"))?,
                kind: kind.clone(),
                on: on.clone(),
                to: to.clone(),
                by: by.clone(),
            };
            let bytes = encode("a grant", &grant)?;
            let prefix = on
                .literal_prefix()
                .map_or_else(String::new, |p| p.to_string());
            tx.execute(
                &prepared(
                    &tx,
                    "INSERT INTO grants (id, grant_record, on_prefix) VALUES ($1, $2, $3)",
                )
                .await?,
                &[&id, &bytes, &prefix],
            )
            .await?;
            grant
        })
    }

    async fn revoke(&self, id: u64) -> RegistryResult<Grant> {
        transaction!(self, format!("revoking grant {id}"), |tx| {
            let key = i64::try_from(id).map_err(|_| RegistryError::NoSuchGrant(id))?;
            let row = tx
                .query_opt(
                    &prepared(
                        &tx,
                        "DELETE FROM grants WHERE id = $1 RETURNING grant_record",
                    )
                    .await?,
                    &[&key],
                )
                .await?
                .ok_or(RegistryError::NoSuchGrant(id))?;
            decode::<Grant>("grant", row.try_get(0)?)?
        })
    }

    async fn grants(&self) -> RegistryResult<Vec<Grant>> {
        read!(self, "reading the grants", |client| {
            let rows = client
                .query(
                    &prepared(&client, "SELECT grant_record FROM grants ORDER BY id").await?,
                    &[],
                )
                .await?;
            grants_of(&rows)?
        })
    }

    async fn grants_on(&self, point: &Point) -> RegistryResult<Vec<Grant>> {
        let mut prefixes = with_ancestors(point);
        prefixes.push(String::new());
        read!(self, format!("reading the grants on {point}"), |client| {
            let rows = client
                .query(
                    &prepared(
                        &client,
                        "SELECT grant_record FROM grants \
                     WHERE on_prefix = ANY($1) OR on_prefix IS NULL ORDER BY id",
                    )
                    .await?,
                    &[&prefixes],
                )
                .await?;
            grants_of(&rows)?
        })
    }

    async fn store_token(&self, token: &str, agent: &Point) -> RegistryResult<()> {
        let hash = token_hash(token).to_vec();
        let agent = agent.to_string();
        transaction!(self, "storing a token", |tx| {
            tx.execute(
                &prepared(
                    &tx,
                    "INSERT INTO tokens (hash, agent) VALUES ($1, $2) \
                 ON CONFLICT (hash) DO UPDATE SET agent = excluded.agent",
                )
                .await?,
                &[&hash, &agent],
            )
            .await?;
        })
    }

    async fn token_agent(&self, token: &str) -> RegistryResult<Option<Point>> {
        let hash = token_hash(token).to_vec();
        read!(self, "looking a token up", |client| {
            match client
                .query_opt(
                    &prepared(&client, "SELECT agent FROM tokens WHERE hash = $1").await?,
                    &[&hash],
                )
                .await?
            {
                Some(row) => Some(parse_point(row.try_get(0)?)?),
                None => None,
            }
        })
    }

    async fn census(&self) -> RegistryResult<BTreeMap<String, u64>> {
        read!(self, "counting particles", |client| {
            let rows = client
                .query(
                    &prepared(
                        &client,
                        "SELECT base, count(*) FROM particles GROUP BY base",
                    )
                    .await?,
                    &[],
                )
                .await?;
            let mut counts = BTreeMap::new();
            for row in &rows {
                let count: i64 = row.try_get(1)?;
                counts.insert(
                    row.try_get::<_, String>(0)?,
                    u64::try_from(count).unwrap_or_default(),
                );
            }
            counts
        })
    }

    async fn subscribe(&self, subscription: &Subscription) -> RegistryResult<()> {
        let printed = PrintedSubscription::of(subscription);
        let point = subscription.subscriber.point.to_string();
        let doing = format!("subscribing {} to {}", printed.subscriber, printed.selector);
        transaction!(self, doing, |tx| {
            tx.execute(
                &prepared(
                    &tx,
                    "INSERT INTO subscriptions (subscriber, selector, subscriber_point, agent) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (subscriber, selector) \
                     DO UPDATE SET agent = excluded.agent",
                )
                .await?,
                &[
                    &printed.subscriber,
                    &printed.selector,
                    &point,
                    &printed.agent,
                ],
            )
            .await?;
        })
    }

    async fn unsubscribe(&self, subscriber: &Surface, selector: &Selector) -> RegistryResult<bool> {
        let subscriber = subscriber.to_string();
        let selector = selector.to_string();
        let doing = format!("unsubscribing {subscriber} from {selector}");
        transaction!(self, doing, |tx| {
            let removed = tx
                .execute(
                    &prepared(
                        &tx,
                        "DELETE FROM subscriptions WHERE subscriber = $1 AND selector = $2",
                    )
                    .await?,
                    &[&subscriber, &selector],
                )
                .await?;
            removed > 0
        })
    }

    async fn unsubscribe_all(&self, point: &Point) -> RegistryResult<usize> {
        let printed = point.to_string();
        transaction!(
            self,
            format!("unsubscribing {point} from everything"),
            |tx| {
                let removed = tx
                    .execute(
                        &prepared(&tx, "DELETE FROM subscriptions WHERE subscriber_point = $1")
                            .await?,
                        &[&printed],
                    )
                    .await?;
                usize::try_from(removed).map_err(|_| {
                    storage("unsubscribing", "more rows than this machine can count")
                })?
            }
        )
    }

    async fn subscriptions(&self) -> RegistryResult<Vec<Subscription>> {
        read!(self, "reading the subscriptions", |client| {
            let rows = client
                .query(
                    &prepared(
                        &client,
                        "SELECT subscriber, selector, agent FROM subscriptions \
                         ORDER BY subscriber, selector",
                    )
                    .await?,
                    &[],
                )
                .await?;
            subscriptions_of(&rows)?
        })
    }

    fn key_values(&self) -> Option<std::sync::Arc<dyn super::KeyValues>> {
        Some(self.key_values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_holds_every_descendant() {
        let top: Point = "localhost:app".parse().unwrap();
        let (low, high) = prefix_range(&top);
        for inside in [
            "localhost:app",
            "localhost:app:echo",
            "localhost:app:echo:/log.txt",
        ] {
            assert!(low.as_str() <= inside && inside < high.as_str(), "{inside}");
        }
        for outside in ["localhost:aoo", "localhost:apq", "localhost"] {
            assert!(
                !(low.as_str() <= outside && outside < high.as_str()),
                "{outside}"
            );
        }
    }
}

mod leases;
