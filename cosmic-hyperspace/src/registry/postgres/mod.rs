//! [`PgRegistry`]: the registry of a cosmos across machines, in PostgreSQL (SPEC §14.2).
//!
//! - **Schema** (`schema`): versioned migrations applied at connect under an advisory lock.
//!   Points are `text COLLATE "C"` keys in their printed form, so a subtree is one index
//!   range scan over its printed prefix; each row keeps the wire-encoded record, so a read
//!   decodes exactly what the embedded store holds.
//! - **Reads** take a pooled connection and run one statement (two, pipelined on the same
//!   connection, where a read needs both). Selections, lines, hierarchies and children are
//!   matched in Rust by the same walks the embedded store uses (`embedded::state`), over the
//!   rows of the selector's literal-prefix range: no selector logic lives in SQL.
//! - **Creates** of a new point are one `INSERT` without a transaction (the parent's foreign
//!   key refuses a missing parent and locks it); a taken point falls back to a transaction.
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

mod failure;
mod schema;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use cosmic_space::{
    CreateStrategy, Grant, GrantKind, Lineage, Point, PointHierarchy, Properties, PropertyChanges,
    Selector, StarKey, Status, Stub, Wire,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::de::DeserializeOwned;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};

use self::failure::Failure;
use super::embedded::state::{self, Records};
use super::embedded::store::{encode, storage};
use super::embedded::writer::{apply_changes, new_record, over_existing};
use super::{
    Entry, ParticleRecord, Registration, Registry, RegistryError, RegistryResult, token_hash,
};

/// The size of one stored chunk of content.
const CHUNK: usize = 256 * 1024;

/// How many times an operation runs before a lost race or serialization failure is given up.
const ATTEMPTS: u32 = 16;

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
                let $tx = (&mut **client).transaction().await?;
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
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.wait))
            .create_timeout(Some(config.wait))
            .build()
            .map_err(|e| storage("building the PostgreSQL pool", e))?;
        let registry = PgRegistry { pool };
        let migrated: Result<i32, Failure> = async {
            let mut client = registry.pool.get().await?;
            Ok(schema::migrate(&mut client).await?)
        }
        .await;
        migrated.map_err(|f| f.into_error("migrating the registry schema"))?;
        Ok(registry)
    }
}

/// A stored value, or a storage error naming what is corrupt.
fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> RegistryResult<T> {
    WIRE.decode(bytes)
        .map_err(|e| storage(&format!("corrupt {what} in PostgreSQL"), e))
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

/// `point` and its ancestors, printed: what a line, hierarchy or lineage needs.
fn with_ancestors(point: &Point) -> Vec<String> {
    point
        .ancestors()
        .chain(std::iter::once(point.clone()))
        .map(|p| p.to_string())
        .collect()
}

/// The rows `selector` may match: the subtree of its literal prefix and the prefix's
/// ancestors (whose kinds the matching needs), or every particle.
async fn candidates(
    client: &impl GenericClient,
    selector: &Selector,
    lock: &str,
) -> Result<Fetched, Failure> {
    let rows = match selector.literal_prefix().filter(|top| !top.is_root()) {
        Some(top) => {
            let (low, high) = prefix_range(&top);
            let ancestors = with_ancestors(&top);
            client
                .query(
                    &format!(
                        "SELECT record FROM particles \
                         WHERE (point >= $1 AND point < $2) OR point = ANY($3) {lock}"
                    ),
                    &[&low, &high, &ancestors],
                )
                .await?
        }
        None => {
            client
                .query(&format!("SELECT record FROM particles {lock}"), &[])
                .await?
        }
    };
    Ok(Fetched::new(records_of(&rows)?))
}

/// The line of `point`: its record and its ancestors'.
async fn fetch_line(client: &impl GenericClient, point: &Point) -> Result<Fetched, Failure> {
    let rows = client
        .query(
            "SELECT record FROM particles WHERE point = ANY($1)",
            &[&with_ancestors(point)],
        )
        .await?;
    Ok(Fetched::new(records_of(&rows)?))
}

/// The record at `point`, locked for update, or `NotFound`.
async fn locked(client: &impl GenericClient, point: &Point) -> Result<ParticleRecord, Failure> {
    let row = client
        .query_opt(
            "SELECT record FROM particles WHERE point = $1 FOR NO KEY UPDATE",
            &[&point.to_string()],
        )
        .await?
        .ok_or_else(|| RegistryError::NotFound(point.clone()))?;
    record_of(&row)
}

/// Writes a changed record back (its point, parent and kind unchanged).
async fn update(client: &impl GenericClient, record: &ParticleRecord) -> Result<(), Failure> {
    let bytes = encode("a particle record", record)?;
    client
        .execute(
            "UPDATE particles SET record = $2 WHERE point = $1",
            &[&record.point.to_string(), &bytes],
        )
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
    client
        .execute("DELETE FROM contents WHERE point = $1", &[&point])
        .await?;
    let size = i64::try_from(content.len())
        .map_err(|_| storage("storing content", "larger than PostgreSQL can count"))?;
    client
        .execute(
            "INSERT INTO contents (point, size) VALUES ($1, $2)",
            &[&point, &size],
        )
        .await?;
    let insert = client
        .prepare("INSERT INTO content_chunks (point, chunk, bytes) VALUES ($1, $2, $3)")
        .await?;
    for (n, chunk) in content.chunks(CHUNK).enumerate() {
        let n = i32::try_from(n).map_err(|_| storage("storing content", "too many chunks"))?;
        client.execute(&insert, &[&point, &n, &chunk]).await?;
    }
    Ok(())
}

/// Inserts a new particle's row; `false` if the point is taken. A parent that is not
/// registered fails the key check (`NoParent`).
async fn insert(client: &impl GenericClient, record: &ParticleRecord) -> Result<bool, Failure> {
    let bytes = encode("a particle record", record)?;
    let depth = i32::try_from(record.point.segments().len())
        .map_err(|_| storage("registering", "a point too deep"))?;
    let parent = record.point.parent();
    let inserted = client
        .execute(
            "INSERT INTO particles (point, parent, depth, kind, base, record) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (point) DO NOTHING",
            &[
                &record.point.to_string(),
                &parent.as_ref().map(Point::to_string),
                &depth,
                &record.kind.to_string(),
                &record.kind.base().name(),
                &bytes,
            ],
        )
        .await;
    match inserted {
        Ok(count) => Ok(count > 0),
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => match parent {
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
    let (existing, parent_row) = tokio::join!(
        client.query_opt(
            "SELECT record FROM particles WHERE point = $1 FOR UPDATE",
            &own,
        ),
        client.query_opt(
            "SELECT 1 FROM particles WHERE point = $1 FOR KEY SHARE",
            &above,
        ),
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
            if !insert(client, &record).await? {
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
        let doing = format!("registering {}", registration.point);
        // A point not taken yet is one statement, without a transaction: the insert is atomic,
        // and its key check locks the parent. Properties of a new particle start empty, so no
        // lock can refuse them beyond what `apply_changes` checks here.
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
        // Not retried: had the insert committed before the connection dropped, a second try
        // would wrongly find the point taken.
        let fresh: Result<bool, Failure> = async {
            let client = self.pool.get().await?;
            insert(&**client, &record).await
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
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM particles WHERE point = $1 FOR KEY SHARE",
                    &[&printed],
                )
                .await?;
            if exists.is_none() {
                return Err(RegistryError::NotFound(parent.clone()).into());
            }
            let last: i64 = tx
                .query_one(
                    "INSERT INTO sequences (parent, last) VALUES ($1, 1) \
                     ON CONFLICT (parent) DO UPDATE SET last = sequences.last + 1 \
                     RETURNING last",
                    &[&printed],
                )
                .await?
                .try_get(0)?;
            u64::try_from(last).map_err(|_| storage("a sequence", "negative in the database"))?
        })
    }

    async fn record(&self, point: &Point) -> RegistryResult<ParticleRecord> {
        let printed = point.to_string();
        read!(self, format!("reading {point}"), |client| {
            let row = client
                .query_opt("SELECT record FROM particles WHERE point = $1", &[&printed])
                .await?
                .ok_or_else(|| RegistryError::NotFound(point.clone()))?;
            record_of(&row)?
        })
    }

    async fn line(&self, point: &Point) -> RegistryResult<Vec<ParticleRecord>> {
        read!(self, format!("the line of {point}"), |client| {
            state::line(&fetch_line(&**client, point).await?, point)?
        })
    }

    async fn hierarchy(&self, point: &Point) -> RegistryResult<PointHierarchy> {
        read!(self, format!("the hierarchy of {point}"), |client| {
            state::hierarchy(&fetch_line(&**client, point).await?, point)?
        })
    }

    async fn lineage(&self, point: &Point) -> RegistryResult<Lineage> {
        read!(self, format!("the lineage of {point}"), |client| {
            state::lineage(&fetch_line(&**client, point).await?, point)?
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

    async fn select(&self, selector: &Selector) -> RegistryResult<Vec<Stub>> {
        read!(self, format!("selecting {selector}"), |client| {
            let fetched = candidates(&**client, selector, "").await?;
            let mut matched: Vec<&ParticleRecord> = Vec::new();
            state::select_each(&fetched, selector, |record| matched.push(record));
            matched
                .into_iter()
                .map(ParticleRecord::stub)
                .collect::<Vec<_>>()
        })
    }

    async fn children(&self, point: &Point) -> RegistryResult<Vec<Stub>> {
        let printed = point.to_string();
        read!(self, format!("the children of {point}"), |client| {
            let params: [&(dyn ToSql + Sync); 1] = [&printed];
            let (own, children) = tokio::join!(
                client.query_opt("SELECT 1 FROM particles WHERE point = $1", &params),
                client.query("SELECT record FROM particles WHERE parent = $1", &params),
            );
            if own?.is_none() {
                return Err(RegistryError::NotFound(point.clone()).into());
            }
            let fetched = Fetched::new(records_of(&children?)?);
            fetched
                .0
                .iter()
                .map(ParticleRecord::stub)
                .collect::<Vec<_>>()
        })
    }

    async fn delete(&self, point: &Point, force: bool) -> RegistryResult<Vec<Point>> {
        transaction!(self, format!("deleting {point}"), |tx| {
            let own = tx
                .query_opt(
                    "SELECT 1 FROM particles WHERE point = $1 FOR UPDATE",
                    &[&point.to_string()],
                )
                .await?;
            if own.is_none() {
                return Err(RegistryError::NotFound(point.clone()).into());
            }
            let (low, high) = prefix_range(point);
            let rows = tx
                .query(
                    "SELECT point FROM particles WHERE point >= $1 AND point < $2 FOR UPDATE",
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
            tx.execute("DELETE FROM particles WHERE point = ANY($1)", &[&printed])
                .await?;
            doomed
        })
    }

    async fn content(&self, point: &Point) -> RegistryResult<Option<Vec<u8>>> {
        let printed = point.to_string();
        transaction!(self, format!("reading the content of {point}"), |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            let params: [&(dyn ToSql + Sync); 1] = [&printed];
            let (own, header) = tokio::join!(
                tx.query_opt("SELECT 1 FROM particles WHERE point = $1", &params),
                tx.query_opt("SELECT size FROM contents WHERE point = $1", &params),
            );
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
                    let chunk = tx
                        .prepare("SELECT bytes FROM content_chunks WHERE point = $1 AND chunk = $2")
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
                "UPDATE particles SET record = changed.record \
                 FROM unnest($1::text[], $2::bytea[]) AS changed (point, record) \
                 WHERE particles.point = changed.point",
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
                .query_one("SELECT nextval('grant_ids')", &[])
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
                "INSERT INTO grants (id, grant_record, on_prefix) VALUES ($1, $2, $3)",
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
                    "DELETE FROM grants WHERE id = $1 RETURNING grant_record",
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
                .query("SELECT grant_record FROM grants ORDER BY id", &[])
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
                    "SELECT grant_record FROM grants \
                     WHERE on_prefix = ANY($1) OR on_prefix IS NULL ORDER BY id",
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
                "INSERT INTO tokens (hash, agent) VALUES ($1, $2) \
                 ON CONFLICT (hash) DO UPDATE SET agent = excluded.agent",
                &[&hash, &agent],
            )
            .await?;
        })
    }

    async fn token_agent(&self, token: &str) -> RegistryResult<Option<Point>> {
        let hash = token_hash(token).to_vec();
        read!(self, "looking a token up", |client| {
            match client
                .query_opt("SELECT agent FROM tokens WHERE hash = $1", &[&hash])
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
                .query("SELECT base, count(*) FROM particles GROUP BY base", &[])
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
