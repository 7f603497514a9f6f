//! The entries of key-value stores in PostgreSQL (tables `kv` and `kv_once`, migration 6):
//! deleted with their store by the foreign key, written in one transaction per write that
//! locks the rows it reads, so conditions and increments hold however many machines write.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cosmic_space::kv::{self, Applied};
use cosmic_space::{Condition, KeyPage, KvEntry, KvOp, KvOutcome, ListQuery, Point};
use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

use super::failure::Failure;
use super::{ATTEMPTS, decode, encode, prepared};
use crate::registry::kv::{KeyValues, ONCE_RETENTION_MS, Once, Written};
use crate::registry::{RegistryError, RegistryResult};

/// Every this many writes, one forgets remembered answers older than a day.
const PRUNE_EVERY: u64 = 1024;

/// The key-value entries of a [`super::PgRegistry`]'s database.
#[derive(Debug)]
pub(super) struct PgKeyValues {
    pub(super) pool: Pool,
    writes: AtomicU64,
}

impl PgKeyValues {
    pub(super) fn new(pool: Pool) -> PgKeyValues {
        PgKeyValues {
            pool,
            writes: AtomicU64::new(0),
        }
    }

    /// Forgets remembered answers recorded before `before` (at most a thousand at a time).
    async fn prune(&self, before: u64) -> RegistryResult<()> {
        let before = as_sql(before);
        read!(self, "forgetting old key-value answers", |client| {
            client
                .execute(
                    "DELETE FROM kv_once WHERE ctid IN \
                     (SELECT ctid FROM kv_once WHERE at < $1 LIMIT 1000)",
                    &[&before],
                )
                .await?
        })
        .map(|_| ())
    }
}

impl PgKeyValues {
    /// A put without a condition: what was there does not matter, so it is one statement (an
    /// upsert, whose foreign key makes a store that is gone `NotFound`) instead of a
    /// transaction that reads first. The outcome is still [`kv::apply`]'s.
    async fn replace(&self, store: &Point, op: &KvOp, now: u64) -> RegistryResult<Written> {
        let Applied { outcomes, writes } = match kv::apply(std::slice::from_ref(op), now, |_| None)
        {
            Ok(applied) => applied,
            Err(refused) => return Ok(Err(refused)),
        };
        let printed = store.to_string();
        for (key, entry) in &writes {
            let Some(entry) = entry else { continue };
            let bytes = encode("key-value entry", entry)?;
            let expires = entry.expires.map(as_sql);
            let stored = read!(
                self,
                format!("writing key '{key}' of {printed}"),
                |client| {
                    let statement = prepared(
                        &client,
                        "INSERT INTO kv (store, key, entry, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (store, key) \
                     DO UPDATE SET entry = excluded.entry, expires_at = excluded.expires_at",
                    )
                    .await?;
                    client
                        .execute(&statement, &[&printed, key, &bytes, &expires])
                        .await
                }
            );
            match stored {
                Ok(Ok(_)) => {}
                Ok(Err(err)) if err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    return Err(RegistryError::NotFound(store.clone()));
                }
                Ok(Err(err)) => {
                    return Err(Failure::from(err).into_error(&format!("writing to {printed}")));
                }
                Err(err) => return Err(err),
            }
        }
        Ok(Ok(outcomes))
    }
}

/// Unix milliseconds as PostgreSQL's bigint (saturating: a time past 2262 is far enough).
fn as_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The least string greater than every string that starts with `prefix` (byte order), or
/// `None` when there is none (an empty prefix, or one of only the last character).
fn past_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[async_trait]
impl KeyValues for PgKeyValues {
    async fn get(&self, store: &Point, key: &str, now: u64) -> RegistryResult<Option<KvEntry>> {
        let store = store.to_string();
        let row = read!(self, format!("reading key '{key}' of {store}"), |client| {
            let statement = prepared(
                &client,
                "SELECT entry FROM kv WHERE store = $1 AND key = $2",
            )
            .await?;
            client.query_opt(&statement, &[&store, &key]).await?
        })?;
        let Some(row) = row else { return Ok(None) };
        let bytes: &[u8] = row
            .try_get(0)
            .map_err(|e| Failure::from(e).into_error("reading a key-value entry"))?;
        let entry: KvEntry = decode("key-value entry", bytes)?;
        Ok(Some(entry).filter(|entry| entry.is_live(now)))
    }

    async fn keys(&self, store: &Point, query: &ListQuery, now: u64) -> RegistryResult<KeyPage> {
        let store = store.to_string();
        let from = match &query.cursor {
            Some(cursor) if *cursor >= query.prefix => cursor.clone(),
            _ => query.prefix.clone(),
        };
        let inclusive = query
            .cursor
            .as_ref()
            .is_none_or(|cursor| *cursor < query.prefix);
        let past = past_prefix(&query.prefix);
        let limit = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
        let now = as_sql(now);
        let rows = read!(self, format!("listing the keys of {store}"), |client| {
            let statement = prepared(
                &client,
                "SELECT key FROM kv WHERE store = $1 \
                 AND (key > $2 OR ($3 AND key = $2)) \
                 AND ($4::text IS NULL OR key < $4) \
                 AND (expires_at IS NULL OR expires_at > $5) \
                 ORDER BY key LIMIT $6",
            )
            .await?;
            client
                .query(
                    &statement,
                    &[&store, &from, &inclusive, &past, &now, &limit],
                )
                .await?
        })?;
        let keys = rows
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| Failure::from(e).into_error("listing keys"))?;
        Ok(KeyPage::from_found(keys, query.limit))
    }

    async fn write(
        &self,
        store: &Point,
        ops: Vec<KvOp>,
        now: u64,
        once: Option<Once>,
    ) -> RegistryResult<Written> {
        if once.is_none()
            && let [
                op @ KvOp::Put {
                    condition: Condition::Always,
                    ..
                },
            ] = ops.as_slice()
        {
            return self.replace(store, op, now).await;
        }
        let printed = store.to_string();
        let keys: Vec<String> = ops.iter().map(|op| op.key().to_string()).collect();
        let once = once.map(|once| (once.agent, once.wave.as_bytes().to_vec()));
        let written = transaction!(self, format!("writing to {printed}"), |tx| {
            if let Some((agent, wave)) = &once {
                let recorded = tx
                    .query_opt(
                        &prepared(
                            &tx,
                            "SELECT outcomes FROM kv_once \
                             WHERE store = $1 AND agent = $2 AND wave = $3",
                        )
                        .await?,
                        &[&printed, agent, wave],
                    )
                    .await?;
                if let Some(row) = recorded {
                    let outcomes: Vec<KvOutcome> =
                        decode("remembered key-value answer", row.try_get::<_, &[u8]>(0)?)?;
                    return Ok(Ok(outcomes));
                }
            }
            let registered = tx
                .query_opt(
                    &prepared(
                        &tx,
                        "SELECT 1 FROM particles WHERE point = $1 FOR KEY SHARE",
                    )
                    .await?,
                    &[&printed],
                )
                .await?;
            if registered.is_none() {
                return Err(RegistryError::NotFound(store.clone()).into());
            }
            let rows = tx
                .query(
                    &prepared(
                        &tx,
                        "SELECT key, entry FROM kv WHERE store = $1 AND key = ANY($2) FOR UPDATE",
                    )
                    .await?,
                    &[&printed, &keys],
                )
                .await?;
            let mut stored = std::collections::BTreeMap::new();
            for row in &rows {
                let key: String = row.try_get(0)?;
                let entry: KvEntry = decode("key-value entry", row.try_get::<_, &[u8]>(1)?)?;
                stored.insert(key, entry);
            }
            let Applied { outcomes, writes } =
                match kv::apply(&ops, now, |key| stored.get(key).cloned()) {
                    Ok(applied) => applied,
                    Err(refused) => return Ok(Err(refused)),
                };
            for (key, entry) in &writes {
                match entry {
                    Some(entry) => {
                        let bytes = encode("key-value entry", entry)?;
                        let expires = entry.expires.map(as_sql);
                        let sql = if stored.contains_key(key) {
                            "UPDATE kv SET entry = $3, expires_at = $4 WHERE store = $1 AND key = $2"
                        } else {
                            "INSERT INTO kv (store, key, entry, expires_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT DO NOTHING"
                        };
                        let changed = tx
                            .execute(
                                &prepared(&tx, sql).await?,
                                &[&printed, key, &bytes, &expires],
                            )
                            .await?;
                        if changed == 0 {
                            // Another write inserted the key after we found it absent.
                            return Err(Failure::Raced);
                        }
                    }
                    None => {
                        tx.execute(
                            &prepared(&tx, "DELETE FROM kv WHERE store = $1 AND key = $2").await?,
                            &[&printed, key],
                        )
                        .await?;
                    }
                }
            }
            if let Some((agent, wave)) = &once {
                let bytes = encode("remembered key-value answer", &outcomes)?;
                let recorded = tx
                    .execute(
                        &prepared(
                            &tx,
                            "INSERT INTO kv_once (store, agent, wave, at, outcomes) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        )
                        .await?,
                        &[&printed, agent, wave, &as_sql(now), &bytes],
                    )
                    .await?;
                if recorded == 0 {
                    // The same wave, sent again, was applied meanwhile: answer as it was.
                    return Err(Failure::Raced);
                }
            }
            Ok(outcomes)
        })?;
        if self.writes.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            // Best effort: a failed prune is tried again a thousand writes later.
            let _ = self.prune(now.saturating_sub(ONCE_RETENTION_MS)).await;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::past_prefix;

    #[test]
    fn past_a_prefix_is_after_everything_that_starts_with_it() {
        assert_eq!(past_prefix("user:"), Some("user;".to_string()));
        assert_eq!(past_prefix(""), None);
        assert_eq!(past_prefix("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(past_prefix("\u{D7FF}"), Some("\u{E000}".to_string()));
    }
}
