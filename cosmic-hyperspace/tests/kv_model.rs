//! Key-value stores against a model (SPEC §17.1): arbitrary sequences of gets, puts, deletes,
//! increments (some sent twice with one wave id), batches and listings, with time passing so
//! entries expire, give the same answers from the embedded store and from PostgreSQL as from a
//! model written here, apart from `cosmic_space::kv::apply`, from the SPEC's words.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use cosmic_hyperspace::registry::{
    EmbeddedRegistry, Once, PgConfig, PgRegistry, Registration, Registry,
};
use cosmic_space::{
    Condition, CreateStrategy, KeyPage, KvEntry, KvOp, KvOutcome, ListQuery, Point,
    PropertyChanges, Status, StatusCode, WaveId,
};
use proptest::prelude::*;
use tests::postgres::PrivatePostgres;

/// The model: live entries by key, and the answers to waves applied once.
#[derive(Debug, Default)]
struct Model {
    entries: BTreeMap<String, KvEntry>,
    once: HashMap<(String, WaveId), Vec<KvOutcome>>,
}

type Answer = Result<Vec<KvOutcome>, StatusCode>;

impl Model {
    fn live(&self, key: &str, now: u64) -> Option<&KvEntry> {
        self.entries
            .get(key)
            .filter(|e| e.expires.is_none_or(|at| at > now))
    }

    /// One operation on `entries` as the SPEC says; `Err` refuses the whole transaction.
    fn step(
        entries: &mut BTreeMap<String, KvEntry>,
        op: &KvOp,
        now: u64,
    ) -> Result<KvOutcome, StatusCode> {
        entries.retain(|_, e| e.expires.is_none_or(|at| at > now));
        let holds = |condition: &Condition, current: Option<&KvEntry>| match condition {
            Condition::Always => true,
            Condition::IfMatch(tag) => current.is_some_and(|e| tag == "*" || *tag == e.etag()),
            Condition::IfNoneMatch => current.is_none(),
        };
        match op {
            KvOp::Get { key } => Ok(entries
                .get(key)
                .cloned()
                .map_or(KvOutcome::Missing, KvOutcome::Found)),
            KvOp::Put {
                key,
                entry,
                condition,
                ttl_ms,
            } => {
                if !holds(condition, entries.get(key)) {
                    return Err(StatusCode::PRECONDITION_FAILED);
                }
                let mut entry = entry.clone();
                entry.expires = ttl_ms.map(|ttl| now + ttl);
                let etag = entry.etag();
                entries.insert(key.clone(), entry);
                Ok(KvOutcome::Stored { etag })
            }
            KvOp::Delete { key, condition } => {
                if !holds(condition, entries.get(key)) {
                    return Err(StatusCode::PRECONDITION_FAILED);
                }
                Ok(match entries.remove(key) {
                    Some(_) => KvOutcome::Deleted,
                    None => KvOutcome::Missing,
                })
            }
            KvOp::Increment { key, by } => {
                let (before, expires) = match entries.get(key) {
                    None => (0, None),
                    Some(e) => {
                        let text = String::from_utf8(e.value.clone()).unwrap_or_default();
                        let n: i64 = text.trim().parse().map_err(|_| StatusCode::CONFLICT)?;
                        (n, e.expires)
                    }
                };
                let value = before.checked_add(*by).ok_or(StatusCode::BAD_REQUEST)?;
                let mut entry =
                    KvEntry::new(value.to_string(), Some("text/plain; charset=utf-8".into()));
                entry.expires = expires;
                let etag = entry.etag();
                entries.insert(key.clone(), entry);
                Ok(KvOutcome::Counted { value, etag })
            }
        }
    }

    fn write(&mut self, ops: &[KvOp], now: u64, once: Option<&(String, WaveId)>) -> Answer {
        if let Some(once) = once
            && let Some(recorded) = self.once.get(once)
        {
            return Ok(recorded.clone());
        }
        let mut entries = self.entries.clone();
        let outcomes = ops
            .iter()
            .map(|op| Model::step(&mut entries, op, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.entries = entries;
        if let Some(once) = once {
            self.once.insert(once.clone(), outcomes.clone());
        }
        Ok(outcomes)
    }

    fn list(&self, prefix: &str, limit: usize, now: u64) -> Vec<Vec<String>> {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix) && self.live(k, now).is_some())
            .cloned()
            .collect();
        let pages: Vec<Vec<String>> = keys.chunks(limit).map(<[String]>::to_vec).collect();
        if pages.is_empty() {
            vec![vec![]]
        } else {
            pages
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write(Vec<KvOp>, Option<(usize, usize)>),
    Get(String),
    List(String, usize),
    Wait(u64),
}

const KEYS: &[&str] = &["a", "b", "ab", "a/b", "é", "n"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(str::to_string)
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        3 => Just(Condition::Always),
        1 => Just(Condition::IfNoneMatch),
        1 => Just(Condition::IfMatch("*".into())),
        1 => prop::sample::select(&["1", "2", "x"][..])
            .prop_map(|v| Condition::IfMatch(KvEntry::new(v, None).etag())),
    ]
}

fn op() -> impl Strategy<Value = KvOp> {
    prop_oneof![
        key().prop_map(|key| KvOp::Get { key }),
        (
            key(),
            prop::sample::select(&["1", "2", "x", ""][..]),
            condition(),
            prop::option::of(1..40u64)
        )
            .prop_map(|(key, value, condition, ttl_ms)| KvOp::Put {
                key,
                entry: KvEntry::new(value, None),
                condition,
                ttl_ms,
            }),
        (key(), condition()).prop_map(|(key, condition)| KvOp::Delete { key, condition }),
        (key(), prop_oneof![4 => -3..4i64, 1 => Just(i64::MAX)])
            .prop_map(|(key, by)| KvOp::Increment { key, by }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (prop::collection::vec(op(), 1..4), prop::option::of((0..2usize, 0..3usize)))
            .prop_map(|(ops, once)| Step::Write(ops, once)),
        2 => key().prop_map(Step::Get),
        1 => (prop::sample::select(&["", "a", "a/", "n"][..]), 1..4usize)
            .prop_map(|(prefix, limit)| Step::List(prefix.to_string(), limit)),
        1 => (0..30u64).prop_map(Step::Wait),
    ]
}

/// Runs `steps` on a fresh store of `registry` and on the model; the first difference fails.
async fn agree(registry: &dyn Registry, store: Point, steps: &[Step]) -> Result<(), String> {
    registry
        .register(Registration {
            point: store.clone(),
            kind: "Database<KeyValue>".parse().unwrap(),
            owner: Point::hyperuser(),
            properties: PropertyChanges::new(),
            strategy: CreateStrategy::Commit,
            status: Status::Ready,
        })
        .await
        .map_err(|e| e.to_string())?;
    let kv = registry.key_values().ok_or("no key-value data")?;
    let mut model = Model::default();
    let mut now = 1_000;
    let waves: Vec<WaveId> = (0..3u8)
        .map(|n| WaveId::from_random_bytes([n + 1; 16]))
        .collect();
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Write(ops, once) => {
                let counts = ops.iter().any(|op| matches!(op, KvOp::Increment { .. }));
                let once = once
                    .filter(|_| counts)
                    .map(|(agent, wave)| (format!("agent-{agent}"), waves[wave]));
                let want = model.write(ops, now, once.as_ref());
                let got = kv
                    .write(
                        &store,
                        ops.clone(),
                        now,
                        once.map(|(agent, wave)| Once { agent, wave }),
                    )
                    .await
                    .map_err(|e| format!("step {index}: {e}"))?
                    .map_err(|refusal| refusal.status);
                if got != want {
                    return Err(format!(
                        "step {index}, {step:?}:\n  model {want:?}\n  store {got:?}"
                    ));
                }
            }
            Step::Get(key) => {
                let want = model.live(key, now).cloned();
                let got = kv.get(&store, key, now).await.map_err(|e| e.to_string())?;
                if got != want {
                    return Err(format!(
                        "step {index}, get {key}:\n  model {want:?}\n  store {got:?}"
                    ));
                }
            }
            Step::List(prefix, limit) => {
                let want = model.list(prefix, *limit, now);
                let mut got = Vec::new();
                let mut cursor = None;
                loop {
                    let query = ListQuery {
                        prefix: prefix.clone(),
                        cursor: cursor.take(),
                        limit: *limit,
                    };
                    let KeyPage { keys, cursor: next } = kv
                        .keys(&store, &query, now)
                        .await
                        .map_err(|e| e.to_string())?;
                    got.push(keys);
                    match next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                // A cursor may promise a page that turns out empty (the last key filled the
                // page exactly): that page is not a difference.
                if got.len() > 1 && got.last().is_some_and(Vec::is_empty) {
                    got.pop();
                }
                if got != want {
                    return Err(format!(
                        "step {index}, list '{prefix}' by {limit}:\n  model {want:?}\n  store {got:?}"
                    ));
                }
            }
            Step::Wait(ms) => now += ms,
        }
    }
    Ok(())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A fresh store point for each case.
fn next_store() -> Point {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("s{}", N.fetch_add(1, Ordering::Relaxed))
        .parse()
        .unwrap()
}

fn embedded() -> Arc<dyn Registry> {
    static REGISTRY: OnceLock<(tempfile::TempDir, Arc<dyn Registry>)> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let registry = EmbeddedRegistry::open(&dir.path().join("registry.redb")).unwrap();
            (dir, Arc::new(registry) as Arc<dyn Registry>)
        })
        .1
        .clone()
}

fn postgres() -> Arc<dyn Registry> {
    static SERVER: OnceLock<PrivatePostgres> = OnceLock::new();
    static REGISTRY: OnceLock<Arc<dyn Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let url = SERVER.get_or_init(PrivatePostgres::start).database();
            let registry = runtime()
                .block_on(PgRegistry::connect_with(&url, PgConfig::default()))
                .unwrap();
            Arc::new(registry)
        })
        .clone()
}

fn check(registry: Arc<dyn Registry>, steps: &[Step]) -> Result<(), TestCaseError> {
    runtime()
        .block_on(async {
            registry
                .register(Registration {
                    point: Point::root(),
                    kind: "Root".parse().unwrap(),
                    owner: Point::hyperuser(),
                    properties: PropertyChanges::new(),
                    strategy: CreateStrategy::Ensure,
                    status: Status::Ready,
                })
                .await
                .map_err(|e| e.to_string())?;
            agree(registry.as_ref(), next_store(), steps).await
        })
        .map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_embedded_store_answers_as_the_model(steps in prop::collection::vec(step(), 1..40)) {
        check(embedded(), &steps)?;
    }

    #[test]
    fn postgresql_answers_as_the_model(steps in prop::collection::vec(step(), 1..40)) {
        check(postgres(), &steps)?;
    }
}
