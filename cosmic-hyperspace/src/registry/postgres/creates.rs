//! Group commit of creates: the `register`s of new points that wait at the same moment become
//! ONE multi-row `INSERT` — one round trip, one commit, one WAL flush for all of them.
//!
//! Each `register` of a point hands its row to a queue. One task takes every row waiting (at
//! most [`MAX_BATCH`]) and inserts them with a single statement, on a pooled connection, while
//! the next rows queue up; [`IN_FLIGHT`] statements run at once. The statement inserts only
//! the rows whose point is free and whose parent it sees; it returns the points it inserted,
//! so every caller learns its own fate:
//!
//! - **inserted**: committed (the statement is its own transaction, so its answer comes after
//!   its commit) — the caller's `register` succeeds;
//! - **declined**: the point was taken, the parent missing (or registered by the same
//!   statement), the point asked for twice in the batch, or the whole statement refused (a
//!   parent deleted meanwhile fails its key check; a deadlock) — the caller decides alone on
//!   the one-statement path, exactly as without batching, so its answer (`AlreadyExists`,
//!   `NoParent`, the existing record of an `Ensure`, …) is its own and no other caller's;
//! - **failed**: the connection broke before the statement's answer arrived, so it may or may
//!   not have been committed — [`RegistryError::Unavailable`], never a retry.
//!
//! The queue is bounded ([`QUEUE`]); when it is full a caller does not wait for it but inserts
//! on its own (one statement through the pool, whose wait ends in `Unavailable`, 503). A row
//! whose caller has gone before its batch starts is not inserted.

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::failure::Failure;
use super::{ParticleRecord, RegistryError, RegistryResult};
use crate::registry::embedded::store::{encode, storage};

/// How many creates may wait for a batch; past that a caller inserts on its own.
const QUEUE: usize = 4096;

/// The most rows one statement inserts, so that one batch's latency stays bounded.
const MAX_BATCH: usize = 512;

/// How many batch statements run at once: while one is at the server, the next fills up.
const IN_FLIGHT: usize = 2;

/// Inserts the rows whose point is free and whose parent exists; returns the points inserted.
/// The rows arrive sorted by point, so concurrent batches take their locks in one order.
const INSERT_MANY: &str = "INSERT INTO particles (point, parent, depth, kind, base, status, record) \
     SELECT new.point, new.parent, new.depth, new.kind, new.base, new.status, new.record \
     FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::bytea[], \
                 $7::bytea[]) AS new (point, parent, depth, kind, base, status, record) \
     WHERE new.parent IS NULL \
        OR EXISTS (SELECT 1 FROM particles AS above WHERE above.point = new.parent) \
     ON CONFLICT (point) DO NOTHING \
     RETURNING point";

/// A new particle's row, with every column computed from its record.
#[derive(Debug)]
pub(super) struct NewRow {
    pub(super) point: String,
    pub(super) parent: Option<String>,
    pub(super) depth: i32,
    pub(super) kind: String,
    pub(super) base: &'static str,
    pub(super) status: Vec<u8>,
    pub(super) record: Vec<u8>,
}

impl NewRow {
    /// The row of `record`; a record that cannot be encoded is refused here, on its own.
    pub(super) fn of(record: &ParticleRecord) -> RegistryResult<NewRow> {
        Ok(NewRow {
            point: record.point.to_string(),
            parent: record.point.parent().as_ref().map(ToString::to_string),
            depth: i32::try_from(record.point.segments().len())
                .map_err(|_| storage("registering", "a point too deep"))?,
            kind: record.kind.to_string(),
            base: record.kind.base().name(),
            status: encode("a status", &record.status)?,
            record: encode("a particle record", record)?,
        })
    }
}

/// What became of a row handed to the group commit.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Inserted and committed.
    Inserted,
    /// Not inserted; the caller decides alone (the row comes back).
    Declined(NewRow),
    /// The statement's fate is unknown, or no connection could be had.
    Failed(RegistryError),
}

struct Create {
    row: NewRow,
    answer: oneshot::Sender<Outcome>,
}

/// The handle `register` hands its rows to; the task behind it ends once every handle (every
/// clone of the registry) is gone and the batches it started are answered.
#[derive(Debug, Clone)]
pub(super) struct Creates {
    queue: mpsc::Sender<Create>,
}

impl Creates {
    /// Starts the batching task on the current tokio runtime.
    pub(super) fn start(pool: Pool) -> Creates {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, waiting));
        Creates { queue }
    }

    /// Inserts `row` with whatever other rows are waiting. `Err` gives the row back without
    /// trying when the queue is full or its task is gone (its runtime ended): the caller
    /// inserts on its own.
    pub(super) async fn insert(&self, row: NewRow) -> Result<Outcome, NewRow> {
        let (answer, answered) = oneshot::channel();
        if let Err(TrySendError::Full(create) | TrySendError::Closed(create)) =
            self.queue.try_send(Create { row, answer })
        {
            return Err(create.row);
        }
        Ok(answered.await.unwrap_or_else(|_| {
            // The task was stopped (its runtime shut down) while the row was in its hands.
            Outcome::Failed(RegistryError::Unavailable(
                "registering: the batch was interrupted; it may or may not have been committed"
                    .to_string(),
            ))
        }))
    }
}

/// Takes every row waiting, up to [`MAX_BATCH`], whenever fewer than [`IN_FLIGHT`] batches
/// are at the server, and inserts them in a task of their own.
async fn run(pool: Pool, mut waiting: mpsc::Receiver<Create>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let Some(first) = waiting.recv().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(create) => batch.push(create),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            commit(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Inserts one batch and answers each of its callers.
async fn commit(pool: &Pool, mut batch: Vec<Create>) {
    // Work whose caller has gone is not started.
    batch.retain(|create| !create.answer.is_closed());
    if batch.is_empty() {
        return;
    }
    batch.sort_by(|a, b| a.row.point.cmp(&b.row.point));
    // A point asked for twice goes in once; the others decide alone afterwards.
    let mut seen: Option<&str> = None;
    let twice: Vec<bool> = batch
        .iter()
        .map(|create| {
            let repeated = seen == Some(create.row.point.as_str());
            seen = Some(&create.row.point);
            repeated
        })
        .collect();
    let rows = batch
        .iter()
        .zip(&twice)
        .filter(|(_, twice)| !**twice)
        .map(|(create, _)| &create.row);
    let inserted = insert_many(pool, rows).await;
    for (create, twice) in batch.into_iter().zip(twice) {
        let outcome = match &inserted {
            Ok(points) if !twice && points.contains(create.row.point.as_str()) => Outcome::Inserted,
            Ok(_) | Err(Failed::Refused) => Outcome::Declined(create.row),
            Err(Failed::Unknown(error)) => Outcome::Failed(error.clone()),
        };
        // The caller may have gone meanwhile; the row stands all the same.
        let _ = create.answer.send(outcome);
    }
}

/// Why a batch statement inserted nothing.
enum Failed {
    /// Nothing was committed (the server refused the statement, or it was never sent):
    /// every caller may decide alone.
    Refused,
    /// The statement may have been committed (the connection broke before its answer), or
    /// no connection could be had.
    Unknown(RegistryError),
}

/// Runs [`INSERT_MANY`] over `rows`; the points inserted.
async fn insert_many<'a>(
    pool: &Pool,
    rows: impl Iterator<Item = &'a NewRow>,
) -> Result<HashSet<String>, Failed> {
    let mut points = Vec::new();
    let mut parents = Vec::new();
    let mut depths = Vec::new();
    let mut kinds = Vec::new();
    let mut bases = Vec::new();
    let mut statuses = Vec::new();
    let mut records = Vec::new();
    for row in rows {
        points.push(row.point.as_str());
        parents.push(row.parent.as_deref());
        depths.push(row.depth);
        kinds.push(row.kind.as_str());
        bases.push(row.base);
        statuses.push(row.status.as_slice());
        records.push(row.record.as_slice());
    }
    let doing = format!("registering {} particles together", points.len());
    let client = pool
        .get()
        .await
        .map_err(|e| Failed::Unknown(Failure::Pool(e).into_error(&doing)))?;
    let statement = client
        .prepare_cached(INSERT_MANY)
        .await
        .map_err(|_| Failed::Refused)?;
    let inserted = client
        .query(
            &statement,
            &[
                &points, &parents, &depths, &kinds, &bases, &statuses, &records,
            ],
        )
        .await
        .map_err(|error| {
            if error.as_db_error().is_some() {
                // The server answered with an error: the statement's transaction was
                // rolled back.
                Failed::Refused
            } else {
                Failed::Unknown(Failure::Commit(error).into_error(&doing))
            }
        })?;
    inserted
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(|e| Failed::Unknown(Failure::Database(e).into_error(&doing)))
}
