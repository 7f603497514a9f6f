//! In-memory key-value stores for native tests: a [`super::TestHost`] answers the waves a
//! mechtron sends to a store it was given ([`super::TestHost::key_value_store`]) as the cosmos
//! would — the same request parsing and write rules ([`cosmic_space::kv`]), kept in a map.

use std::collections::{BTreeMap, HashMap};

use cosmic_space::kv::{self, KvRequest};
use cosmic_space::{
    Agent, KeyPage, KvEntry, KvError, KvOp, KvOutcome, Ping, Point, ReflectedCore, StatusCode,
    WaveId,
};

/// One store: its entries and the answers to waves applied once.
#[derive(Debug, Default)]
pub(super) struct MemoryStore {
    entries: BTreeMap<String, KvEntry>,
    once: HashMap<(Agent, WaveId), Vec<KvOutcome>>,
}

/// The stores of a test, by point.
#[derive(Debug, Default)]
pub(super) struct MemoryStores(HashMap<Point, MemoryStore>);

impl MemoryStores {
    /// Adds an empty store at `point` (a store already there is kept).
    pub(super) fn add(&mut self, point: Point) {
        self.0.entry(point).or_default();
    }

    /// The value of `key` in the store at `point`, as the test sees it now.
    pub(super) fn value(&self, point: &Point, key: &str, now: u64) -> Option<Vec<u8>> {
        let entry = self.0.get(point)?.entries.get(key)?;
        entry.is_live(now).then(|| entry.value.clone())
    }

    /// The answer to `ping` if it is for a store, at `now` (unix milliseconds).
    pub(super) fn answer(&mut self, ping: &Ping, now: u64) -> Option<ReflectedCore> {
        let store = self.0.get_mut(&ping.to.point)?;
        let request = match KvRequest::parse(&ping.core) {
            Ok(request) => request,
            Err(err) => return Some(err.into()),
        };
        Some(store.answer(request, ping, now))
    }
}

impl MemoryStore {
    fn answer(&mut self, request: KvRequest, ping: &Ping, now: u64) -> ReflectedCore {
        match request {
            KvRequest::Op(op) => {
                let key = op.key().to_string();
                match self.write(vec![op], ping, now) {
                    Ok(mut outcomes) => match outcomes.pop() {
                        Some(outcome) => kv::answer(outcome, &key),
                        None => ReflectedCore::error(StatusCode::ERROR, "no outcome"),
                    },
                    Err(refusal) => refusal.into(),
                }
            }
            KvRequest::Batch(ops) => match self.write(ops, ping, now) {
                Ok(outcomes) => kv::answer_batch(&outcomes),
                Err(refusal) => refusal.into(),
            },
            KvRequest::List(query) => {
                let keys = self
                    .entries
                    .range(query.prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(&query.prefix))
                    .filter(|(key, entry)| {
                        entry.is_live(now) && query.cursor.as_ref().is_none_or(|c| *key > c)
                    })
                    .map(|(key, _)| key.clone())
                    .take(query.limit + 1)
                    .collect();
                kv::answer_page(&KeyPage::from_found(keys, query.limit))
            }
        }
    }

    fn write(&mut self, ops: Vec<KvOp>, ping: &Ping, now: u64) -> Result<Vec<KvOutcome>, KvError> {
        let counts = ops.iter().any(|op| matches!(op, KvOp::Increment { .. }));
        let once = (counts && !ping.id.is_nil()).then(|| (ping.agent.clone(), ping.id));
        if let Some(recorded) = once.as_ref().and_then(|once| self.once.get(once)) {
            return Ok(recorded.clone());
        }
        let applied = kv::apply(&ops, now, |key| self.entries.get(key).cloned())?;
        for (key, entry) in applied.writes {
            match entry {
                Some(entry) => self.entries.insert(key, entry),
                None => self.entries.remove(&key),
            };
        }
        if let Some(once) = once {
            self.once.insert(once, applied.outcomes.clone());
        }
        Ok(applied.outcomes)
    }
}
