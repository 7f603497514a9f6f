//! The tables of the PostgreSQL registry and the versioned migrations that make them.
//!
//! Each migration runs once, in order, recorded in `schema_migrations`. They run in one
//! transaction under a transaction-scoped advisory lock, so two machines starting at once
//! apply each migration exactly once (the second waits, then finds it applied), and a failed
//! migration leaves nothing behind. A migration is SQL, then, where a new column holds what
//! only Rust can read out of a record (SQL cannot read the wire encoding), a fill in Rust.

use tokio_postgres::{Client, Transaction};

use super::failure::Failure;
use super::{encode, record_of};

/// The advisory lock key that serializes migrations (any constant unique to Starlane).
const MIGRATION_LOCK: i64 = 0x5354_4152_4c41_4e45; // "STARLANE"

/// What a migration does after its SQL, in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Nothing.
    Nothing,
    /// `particles.status` of every row from its record, then the column is required.
    Status,
}

/// Every migration, by version; a released one is never edited, only followed by another.
const MIGRATIONS: &[(i32, &str, Fill)] = &[
    (
        1,
        r#"
    -- Every particle. Points are compared byte by byte (COLLATE "C"), so the subtree of a
    -- printed prefix is one index range scan; `record` is the wire-encoded ParticleRecord.
    -- The parent must be registered (the key check locks it against a concurrent delete).
    CREATE TABLE particles (
        point  text COLLATE "C" PRIMARY KEY,
        parent text COLLATE "C" REFERENCES particles (point),
        depth  integer NOT NULL,
        kind   text NOT NULL,
        base   text NOT NULL,
        record bytea NOT NULL
    );
    CREATE INDEX particles_by_parent ON particles (parent, point);

    -- Content of artifacts: a header (to tell no content from empty content) and chunks.
    CREATE TABLE contents (
        point text COLLATE "C" PRIMARY KEY REFERENCES particles (point) ON DELETE CASCADE,
        size  bigint NOT NULL
    );
    CREATE TABLE content_chunks (
        point text COLLATE "C" NOT NULL REFERENCES contents (point) ON DELETE CASCADE,
        chunk integer NOT NULL,
        bytes bytea NOT NULL,
        PRIMARY KEY (point, chunk)
    );

    -- The last number handed out under each parent; kept when the parent is deleted.
    CREATE TABLE sequences (
        parent text COLLATE "C" PRIMARY KEY,
        last   bigint NOT NULL
    );

    -- Grants; ids come from a sequence, so they are never reused.
    CREATE SEQUENCE grant_ids START 1;
    CREATE TABLE grants (
        id    bigint PRIMARY KEY,
        grant_record bytea NOT NULL
    );

    -- Tokens by their SHA-256; the agent as a printed point.
    CREATE TABLE tokens (
        hash  bytea PRIMARY KEY,
        agent text NOT NULL
    );
    "#,
        Fill::Nothing,
    ),
    (
        2,
        r#"
    -- The literal prefix of each grant's `on` selector (Selector::literal_prefix, '' when it
    -- has none), so the grants that can apply to a point are an index lookup of its ancestors.
    -- Rows from before this column stay NULL and are read as "may apply anywhere".
    ALTER TABLE grants ADD COLUMN on_prefix text COLLATE "C";
    CREATE INDEX grants_by_prefix ON grants (on_prefix);
    "#,
        Fill::Nothing,
    ),
    (
        3,
        r#"
    -- What a stub needs beside the point and the kind: the status, wire-encoded like the
    -- record (a reason may hold any character, NUL included, which text cannot), so that
    -- selects and children read three short columns and decode no record. Every write of a
    -- record writes it too. Rows from before are filled from their records (Fill::Status),
    -- then the column is required.
    ALTER TABLE particles ADD COLUMN status bytea;
    "#,
        Fill::Status,
    ),
    (
        4,
        r#"
    -- The leases of a cosmos's machines (membership): the epoch is bumped each time a machine
    -- takes its lease anew; times are the database's, so machines' clocks need not agree.
    CREATE TABLE leases (
        machine    text COLLATE "C" PRIMARY KEY,
        epoch      bigint NOT NULL,
        stars      integer NOT NULL,
        expires_at timestamptz NOT NULL,
        buried     boolean NOT NULL
    );
    "#,
        Fill::Nothing,
    ),
    (
        5,
        r#"
    -- Who holds each lease (a number the holding process drew), so a lease is taken only from
    -- nobody, or again by its own holder after a lost answer; and who buried it, so a burier
    -- whose answer was lost still adopts. Rows from before hold 0 and nobody.
    ALTER TABLE leases ADD COLUMN holder bigint NOT NULL DEFAULT 0;
    ALTER TABLE leases ADD COLUMN buried_by text;
    "#,
        Fill::Nothing,
    ),
    (
        6,
        r#"
    -- The entries of key-value stores (SPEC §17.1), deleted with their store. `entry` is the
    -- wire-encoded KvEntry; `expires_at` (unix ms) is beside it so listings skip the expired.
    CREATE TABLE kv (
        store      text COLLATE "C" NOT NULL REFERENCES particles (point) ON DELETE CASCADE,
        key        text COLLATE "C" NOT NULL,
        entry      bytea NOT NULL,
        expires_at bigint,
        PRIMARY KEY (store, key)
    );
    -- The answers to waves applied once (increments), by store, agent and wave id, for a day.
    CREATE TABLE kv_once (
        store    text COLLATE "C" NOT NULL REFERENCES particles (point) ON DELETE CASCADE,
        agent    text NOT NULL,
        wave     bytea NOT NULL,
        at       bigint NOT NULL,
        outcomes bytea NOT NULL,
        PRIMARY KEY (store, agent, wave)
    );
    CREATE INDEX kv_once_by_age ON kv_once (at);
    "#,
        Fill::Nothing,
    ),
    (
        7,
        r#"
    -- Channel subscriptions (SPEC §18), one per subscriber and selector, each printed (the
    -- rows' order is the order they are listed in). The subscriber's point is beside them, so
    -- that its subscriptions go with it when it is deleted, or all at once. No foreign key: a
    -- subscriber need not be registered, and `delete` removes the rows itself. The agent is
    -- its printed point (HyperUser and Anonymous as their well-known points).
    CREATE TABLE subscriptions (
        subscriber       text COLLATE "C" NOT NULL,
        selector         text COLLATE "C" NOT NULL,
        subscriber_point text COLLATE "C" NOT NULL,
        agent            text NOT NULL,
        PRIMARY KEY (subscriber, selector)
    );
    CREATE INDEX subscriptions_by_point ON subscriptions (subscriber_point);
    "#,
        Fill::Nothing,
    ),
];

/// How many rows one statement of a fill updates.
const FILL_CHUNK: usize = 10_000;

/// Applies every migration not applied yet; returns the schema version now in force.
pub(super) async fn migrate(client: &mut Client) -> Result<i32, Failure> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let mut version = applied;
    for (number, sql, fill) in MIGRATIONS.iter().filter(|(number, ..)| *number > applied) {
        tx.batch_execute(sql).await?;
        if *fill == Fill::Status {
            fill_status(&tx).await?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[number],
        )
        .await?;
        version = *number;
    }
    tx.commit().await?;
    Ok(version)
}

/// Fills `particles.status` of every row from its record, then requires it.
async fn fill_status(tx: &Transaction<'_>) -> Result<(), Failure> {
    let rows = tx
        .query(
            "SELECT record, point FROM particles WHERE status IS NULL",
            &[],
        )
        .await?;
    for chunk in rows.chunks(FILL_CHUNK) {
        let mut points = Vec::with_capacity(chunk.len());
        let mut statuses = Vec::with_capacity(chunk.len());
        for row in chunk {
            statuses.push(encode("a status", &record_of(row)?.status)?);
            points.push(row.try_get::<_, &str>(1)?);
        }
        tx.execute(
            "UPDATE particles SET status = filled.status \
             FROM unnest($1::text[], $2::bytea[]) AS filled (point, status) \
             WHERE particles.point = filled.point",
            &[&points, &statuses],
        )
        .await?;
    }
    tx.batch_execute("ALTER TABLE particles ALTER COLUMN status SET NOT NULL")
        .await?;
    Ok(())
}
