//! The checks of [`KeyValues`](crate::registry::KeyValues), the data a registry keeps for
//! key-value stores: kept with their store, listed in pages, applied once per wave, and
//! conditions that hold when writes race.

use std::sync::Arc;

use cosmic_space::{
    Condition, KeyPage, KvEntry, KvError, KvOp, KvOutcome, ListQuery, Point, StatusCode, WaveId,
};

use super::{Outcome, cosmos, ok, point, refused, register_each};
use crate::registry::{KeyValues, Once, Registry, RegistryError};

/// The store every check writes to.
const STORE: &str = "localhost:app:data";

async fn store_in<R: Registry>(registry: &R) -> Result<(Arc<dyn KeyValues>, Point), String> {
    cosmos(registry).await?;
    register_each(registry, &[(STORE, "Database<KeyValue>")]).await?;
    let key_values = registry
        .key_values()
        .ok_or("the registry keeps no key-value data (key_values() is None)")?;
    Ok((key_values, point(STORE)?))
}

fn put(key: &str, value: &str) -> KvOp {
    KvOp::Put {
        key: key.to_string(),
        entry: KvEntry::new(value, None),
        condition: Condition::Always,
        ttl_ms: None,
    }
}

async fn written(
    store: &dyn KeyValues,
    at: &Point,
    ops: Vec<KvOp>,
    once: Option<Once>,
) -> Result<Result<Vec<KvOutcome>, KvError>, String> {
    ok(store.write(at, ops, 1_000, once).await, "write")
}

/// Entries are read back as written; they go when their store is deleted (a store registered
/// again at the same point starts empty); a write to a store that is not registered is
/// `NotFound`.
pub async fn key_values_are_kept_with_their_store<R: Registry>(registry: Arc<R>) -> Outcome {
    let (kv, at) = store_in(registry.as_ref()).await?;
    let stored = written(kv.as_ref(), &at, vec![put("greeting", "hello")], None).await?;
    check_eq!(
        stored,
        Ok(vec![KvOutcome::Stored {
            etag: KvEntry::new("hello", None).etag()
        }]),
        "a put's outcome"
    );
    check_eq!(
        ok(kv.get(&at, "greeting", 1_000).await, "get")?,
        Some(KvEntry::new("hello", None)),
        "the entry read back"
    );
    ok(registry.delete(&at, false).await, "deleting the store")?;
    register_each(registry.as_ref(), &[(STORE, "Database<KeyValue>")]).await?;
    check_eq!(
        ok(kv.get(&at, "greeting", 1_000).await, "get")?,
        None,
        "an entry of a deleted store, after a store is registered again at its point"
    );
    let nowhere = point("localhost:app:nowhere")?;
    refused(
        kv.write(&nowhere, vec![put("a", "b")], 1_000, None).await,
        RegistryError::NotFound(nowhere.clone()),
        "a write to a store that is not registered",
    )?;
    Ok(())
}

/// Listings give live keys with the prefix in byte order, a page at a time, with a cursor that
/// leads through every key exactly once.
pub async fn key_values_list_in_pages<R: Registry>(registry: Arc<R>) -> Outcome {
    let (kv, at) = store_in(registry.as_ref()).await?;
    let mut ops: Vec<KvOp> = (0..25).map(|n| put(&format!("user:{n:02}"), "u")).collect();
    ops.push(put("user", "not under user:"));
    ops.push(put("users", "not under user:"));
    ops.push(put("other", "o"));
    ops.push(KvOp::Put {
        key: "user:gone".into(),
        entry: KvEntry::new("expired", None),
        condition: Condition::Always,
        ttl_ms: Some(1),
    });
    written(kv.as_ref(), &at, ops, None)
        .await?
        .map_err(|e| e.to_string())?;
    let mut listed = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let query = ListQuery {
            prefix: "user:".into(),
            cursor: cursor.clone(),
            limit: 10,
        };
        let KeyPage { keys, cursor: next } = ok(kv.keys(&at, &query, 5_000).await, "keys")?;
        pages += 1;
        listed.extend(keys);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        if pages > 10 {
            return Err("the listing's cursor never ends".into());
        }
    }
    let want: Vec<String> = (0..25).map(|n| format!("user:{n:02}")).collect();
    check_eq!(listed, want, "every live key under user:, once, in order");
    check_eq!(pages, 3, "pages of 10 for 25 keys");
    Ok(())
}

/// A write that counts, sent again with the same agent and wave id, is answered as the first
/// time and counted once; the same id from another agent is another wave.
pub async fn key_values_apply_once_per_wave<R: Registry>(registry: Arc<R>) -> Outcome {
    let (kv, at) = store_in(registry.as_ref()).await?;
    let wave = WaveId::from_random_bytes([9; 16]);
    let once = |agent: &str| Once {
        agent: agent.to_string(),
        wave,
    };
    let increment = || {
        vec![KvOp::Increment {
            key: "visits".into(),
            by: 5,
        }]
    };
    let first = written(kv.as_ref(), &at, increment(), Some(once("scott"))).await?;
    let again = written(kv.as_ref(), &at, increment(), Some(once("scott"))).await?;
    check_eq!(again, first, "the same wave's answer, sent again");
    let other = written(kv.as_ref(), &at, increment(), Some(once("ann"))).await?;
    check_eq!(
        other.map_err(|e| e.to_string())?.first().cloned(),
        Some(KvOutcome::Counted {
            value: 10,
            etag: KvEntry::new("10", Some("text/plain; charset=utf-8".into())).etag()
        }),
        "another agent's wave with the same id"
    );
    Ok(())
}

/// Writes that race keep their conditions: of 16 concurrent `if-none-match: *` puts exactly one
/// is stored, and 32 concurrent increments add up.
pub async fn key_values_hold_conditions_when_writes_race<R: Registry>(registry: Arc<R>) -> Outcome {
    let (kv, at) = store_in(registry.as_ref()).await?;
    let mut puts = Vec::new();
    for n in 0..16 {
        let kv = kv.clone();
        let at = at.clone();
        puts.push(tokio::spawn(async move {
            let op = KvOp::Put {
                key: "first".into(),
                entry: KvEntry::new(format!("writer {n}"), None),
                condition: Condition::IfNoneMatch,
                ttl_ms: None,
            };
            kv.write(&at, vec![op], 1_000, None).await
        }));
    }
    let mut stored = 0;
    for put in puts {
        match put.await.map_err(|e| e.to_string())? {
            Ok(Ok(_)) => stored += 1,
            Ok(Err(refusal)) if refusal.status == StatusCode::PRECONDITION_FAILED => {}
            other => return Err(format!("a racing conditional put answered {other:?}")),
        }
    }
    check_eq!(stored, 1, "conditional puts stored");
    let mut increments = Vec::new();
    for _ in 0..32 {
        let kv = kv.clone();
        let at = at.clone();
        increments.push(tokio::spawn(async move {
            let op = KvOp::Increment {
                key: "count".into(),
                by: 1,
            };
            kv.write(&at, vec![op], 1_000, None).await
        }));
    }
    for increment in increments {
        increment
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("a racing increment failed: {e}"))?
            .map_err(|e| format!("a racing increment was refused: {e}"))?;
    }
    check_eq!(
        ok(kv.get(&at, "count", 1_000).await, "get")?.map(|entry| entry.value),
        Some(b"32".to_vec()),
        "the sum of 32 racing increments"
    );
    Ok(())
}
