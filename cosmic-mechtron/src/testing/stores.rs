//! In-memory key-value and file stores for native tests: a [`super::TestHost`] answers the
//! waves a mechtron sends to a store it was given ([`super::TestHost::key_value_store`],
//! [`super::TestHost::file_store`]) as the cosmos would — the same request parsing and write
//! rules ([`cosmic_space::kv`], [`cosmic_space::file`]), kept in maps.

use std::collections::{BTreeMap, HashMap};

use cosmic_space::kv::{self, KvRequest};
use cosmic_space::{
    Agent, Condition, DirEntry, HttpMethod, Json, KeyPage, KvEntry, KvError, KvOp, KvOutcome,
    Listing, Method, Ping, Point, PointSeg, RangeAsk, ReflectedCore, StatusCode, Substance, WaveId,
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

/// One file in an in-memory file store.
#[derive(Debug, Clone)]
struct MemoryFile {
    bytes: Vec<u8>,
    content_type: String,
    etag: String,
}

/// The in-memory file stores of a test, by store point: files by their points (directories
/// are implied by the files in them).
#[derive(Debug, Default)]
pub(super) struct MemoryFiles(HashMap<Point, BTreeMap<Point, MemoryFile>>);

impl MemoryFiles {
    /// Adds an empty file store at `point` (one already there is kept).
    pub(super) fn add(&mut self, point: Point) {
        self.0.entry(point).or_default();
    }

    /// The bytes of the file at `file`, as the test sees them now.
    pub(super) fn bytes(&self, file: &Point) -> Option<Vec<u8>> {
        let store = self.0.get(&file.filesystem_owner()?)?;
        store.get(file).map(|f| f.bytes.clone())
    }

    /// The answer to `ping` if it is for a point in one of the stores.
    pub(super) fn answer(&mut self, ping: &Ping) -> Option<ReflectedCore> {
        let target = &ping.to.point;
        let files = self.0.get_mut(&target.filesystem_owner()?)?;
        let is_dir = !matches!(target.last_segment(), Some(PointSeg::File(_)));
        let method = match &ping.core.method {
            Method::Http(method) => *method,
            other => {
                return Some(ReflectedCore::error(
                    StatusCode::NOT_FOUND,
                    format!("a file answers Http waves, not {other}"),
                ));
            }
        };
        let condition = match Condition::from_headers(&ping.core.headers) {
            Ok(condition) => condition,
            Err(err) => return Some(err.into()),
        };
        let current = files.get(target).map(|f| f.etag.clone());
        Some(match (method, is_dir) {
            (HttpMethod::Get | HttpMethod::Head, true) => {
                let mut entries: BTreeMap<String, DirEntry> = BTreeMap::new();
                for (point, file) in files.range(target.clone()..) {
                    if !point.is_within(target) {
                        break;
                    }
                    let rest = &point.segments()[target.segments().len()..];
                    let Some(first) = rest.first() else { continue };
                    let name = first.as_text();
                    let entry = if rest.len() == 1 {
                        DirEntry {
                            name: name.clone(),
                            kind: "File".into(),
                            size: Some(file.bytes.len() as u64),
                            content_type: Some(file.content_type.clone()),
                        }
                    } else {
                        DirEntry {
                            name: name.clone(),
                            kind: "Dir".into(),
                            size: None,
                            content_type: None,
                        }
                    };
                    entries.insert(name, entry);
                }
                let listing = Listing {
                    entries: entries.into_values().collect(),
                };
                match Json::from_value(&listing) {
                    Ok(json) => ReflectedCore::ok(Substance::Json(json)),
                    Err(err) => ReflectedCore::error(StatusCode::ERROR, err.to_string()),
                }
            }
            (HttpMethod::Get | HttpMethod::Head, false) => match files.get(target) {
                None => ReflectedCore::error(StatusCode::NOT_FOUND, format!("no file {target}")),
                Some(file) => {
                    let len = file.bytes.len() as u64;
                    let core = match RangeAsk::of(ping.core.headers.get("range"), len) {
                        RangeAsk::Whole => ReflectedCore::ok(Substance::Bin(file.bytes.clone())),
                        RangeAsk::Part { start, end } => {
                            ReflectedCore::status(StatusCode::PARTIAL_CONTENT).with_body(
                                Substance::Bin(file.bytes[start as usize..=end as usize].to_vec()),
                            )
                        }
                        RangeAsk::Unsatisfiable => ReflectedCore::error(
                            StatusCode::RANGE_NOT_SATISFIABLE,
                            format!("{target} has {len} bytes"),
                        ),
                    };
                    core.with_header("etag", file.etag.clone())
                        .with_header("content-type", file.content_type.clone())
                }
            },
            (HttpMethod::Put, false) => {
                if !condition.holds_for(current.as_deref()) {
                    return Some(ReflectedCore::error(
                        StatusCode::PRECONDITION_FAILED,
                        format!("{target} does not meet {condition}"),
                    ));
                }
                let bytes = match &ping.core.body {
                    Substance::Bin(bytes) => bytes.clone(),
                    Substance::Text(text) => text.clone().into_bytes(),
                    Substance::Empty => Vec::new(),
                    other => {
                        return Some(ReflectedCore::error(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            format!("a file holds bytes, not {}", other.kind()),
                        ));
                    }
                };
                let content_type = ping
                    .core
                    .headers
                    .get("content-type")
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let etag = kv::etag(&bytes, Some(&content_type));
                files.insert(
                    target.clone(),
                    MemoryFile {
                        bytes,
                        content_type,
                        etag: etag.clone(),
                    },
                );
                ReflectedCore::ok(()).with_header("etag", etag)
            }
            (HttpMethod::Delete, false) => {
                if !condition.holds_for(current.as_deref()) {
                    return Some(ReflectedCore::error(
                        StatusCode::PRECONDITION_FAILED,
                        format!("{target} does not meet {condition}"),
                    ));
                }
                match files.remove(target) {
                    Some(_) => ReflectedCore::ok(()),
                    None => {
                        ReflectedCore::error(StatusCode::NOT_FOUND, format!("no file {target}"))
                    }
                }
            }
            (HttpMethod::Delete, true) => {
                if files.keys().any(|point| point.is_within(target)) {
                    ReflectedCore::error(StatusCode::CONFLICT, format!("{target} is not empty"))
                } else {
                    ReflectedCore::ok(())
                }
            }
            (method, _) => ReflectedCore::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{target} does not answer {method}"),
            ),
        })
    }
}
