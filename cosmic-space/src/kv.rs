//! The key-value store's waves (SPEC §17.1): what a `Database<KeyValue>` particle is asked, how
//! it answers, and the rules of every write ([`apply`]).
//!
//! The rules live here, once, as a pure function over the entries a write touches: the embedded
//! store, PostgreSQL, the SDK's in-memory fake and the tests' model all call [`apply`], so they
//! agree by construction and differ only in how they read and keep entries.
//!
//! | Wave (path on the store) | [`KvRequest`] |
//! | --- | --- |
//! | `Http<Get>` `/k/KEY` | [`KvOp::Get`] |
//! | `Http<Put>` `/k/KEY` + body (`if-match`, `if-none-match: *`, `ttl-ms`, `content-type`) | [`KvOp::Put`] |
//! | `Http<Delete>` `/k/KEY` (`if-match`) | [`KvOp::Delete`] |
//! | `Http<Post>` `/k/KEY/increment` + Int body | [`KvOp::Increment`] |
//! | `Http<Get>` `/k/?prefix=P&cursor=C&limit=N` | [`KvRequest::List`] |
//! | `Http<Post>` `/batch` + Json list | [`KvRequest::Batch`] |
//!
//! Values are bytes with an optional content type. Keys are UTF-8, 1–1,024 bytes, without NUL;
//! in paths they are percent-encoded. An `etag` is a hash of the value and its content type, so
//! writing the same value again keeps it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DirectedCore, HttpMethod, Json, Method, ReflectedCore, StatusCode, Substance, wire};

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// The largest value, in bytes (larger: 413; a FileStore holds large things).
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// The most keys a listing answers at once.
pub const MAX_PAGE: usize = 1000;
/// The most operations in one batch.
pub const MAX_BATCH: usize = 1000;

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    /// The bytes.
    pub value: Vec<u8>,
    /// The media type it was stored with, if any.
    pub content_type: Option<String>,
    /// Unix milliseconds after which it is gone; `None` keeps it.
    pub expires: Option<u64>,
}

impl KvEntry {
    /// An entry that never expires.
    pub fn new(value: impl Into<Vec<u8>>, content_type: Option<String>) -> KvEntry {
        KvEntry {
            value: value.into(),
            content_type,
            expires: None,
        }
    }

    /// Whether it still exists at `now` (unix milliseconds).
    pub fn is_live(&self, now: u64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }

    /// Its `etag`: a quoted hash of the value and content type.
    pub fn etag(&self) -> String {
        etag(&self.value, self.content_type.as_deref())
    }
}

/// The quoted `etag` of `value` stored with `content_type` (64-bit FNV-1a, [`wire::fnv1a`]:
/// an etag tells versions of one key apart, it is not a signature).
pub fn etag(value: &[u8], content_type: Option<&str>) -> String {
    let bytes = value
        .iter()
        .copied()
        .chain([0xff])
        .chain(content_type.unwrap_or_default().bytes());
    format!("\"{:016x}\"", wire::fnv1a(bytes))
}

/// A write's condition on the entry it replaces (RFC 9110 §13.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// Whatever is there.
    #[default]
    Always,
    /// Only if the entry exists with this etag (`if-match`; `*`: if it exists at all).
    IfMatch(String),
    /// Only if there is no entry (`if-none-match: *`).
    IfNoneMatch,
}

impl Condition {
    /// Whether `current` meets the condition.
    fn holds(&self, current: Option<&KvEntry>) -> bool {
        self.holds_for(current.map(KvEntry::etag).as_deref())
    }

    /// The condition a request's `if-match` / `if-none-match: *` headers state.
    pub fn from_headers(headers: &crate::Headers) -> Result<Condition, KvError> {
        condition_of(headers.get("if-match"), headers.get("if-none-match"))
    }

    /// Whether an entry whose etag is `current` (`None`: no entry) meets the condition.
    pub fn holds_for(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (Condition::Always, _) => true,
            (Condition::IfMatch(tag), Some(etag)) => tag == "*" || tag == etag,
            (Condition::IfMatch(_), None) => false,
            (Condition::IfNoneMatch, current) => current.is_none(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Always => f.write_str("no condition"),
            Condition::IfMatch(tag) => write!(f, "if-match {tag}"),
            Condition::IfNoneMatch => f.write_str("if-none-match *"),
        }
    }
}

/// One operation on one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Read the value.
    Get {
        /// The key.
        key: String,
    },
    /// Store a value.
    Put {
        /// The key.
        key: String,
        /// The value and its content type.
        entry: KvEntry,
        /// When it may replace what is there.
        condition: Condition,
        /// Milliseconds it lives, from the write; `None` forever.
        ttl_ms: Option<u64>,
    },
    /// Remove the value.
    Delete {
        /// The key.
        key: String,
        /// When it may be removed.
        condition: Condition,
    },
    /// Add to an integer value (absent counts as 0).
    Increment {
        /// The key.
        key: String,
        /// What to add.
        by: i64,
    },
}

impl KvOp {
    /// The key it touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Get { key }
            | KvOp::Put { key, .. }
            | KvOp::Delete { key, .. }
            | KvOp::Increment { key, .. } => key,
        }
    }

    /// Whether it changes anything when it succeeds.
    pub fn writes(&self) -> bool {
        !matches!(self, KvOp::Get { .. })
    }
}

/// What one operation found or did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    /// The entry (a get).
    Found(KvEntry),
    /// No such key (a get, or a delete without condition).
    Missing,
    /// Stored with this etag (a put).
    Stored {
        /// The new etag.
        etag: String,
    },
    /// Removed (a delete).
    Deleted,
    /// The new value (an increment).
    Counted {
        /// The sum.
        value: i64,
        /// Its etag.
        etag: String,
    },
}

/// A refusal, with the status a store answers it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct KvError {
    /// 400, 404, 405, 409, 412, 413 or 415.
    pub status: StatusCode,
    /// What was wrong, naming the key or header.
    pub message: String,
}

impl KvError {
    fn new(status: StatusCode, message: impl Into<String>) -> KvError {
        KvError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> KvError {
        KvError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<KvError> for ReflectedCore {
    fn from(err: KvError) -> ReflectedCore {
        ReflectedCore::error(err.status, err.message)
    }
}

/// What an [`apply`] decided: an outcome per operation, and the entries to keep (`None`:
/// remove) — to be written all together, or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// One per operation, in order.
    pub outcomes: Vec<KvOutcome>,
    /// The final entry of every key the operations changed (or found expired).
    pub writes: BTreeMap<String, Option<KvEntry>>,
}

/// Applies `ops` in order, as one transaction, at `now` (unix milliseconds), reading each
/// key's stored entry with `read` (at most once per key; expired entries count as absent and are
/// removed). The first condition that fails, increment that overflows or bad counter refuses
/// the whole transaction: nothing is to be written.
pub fn apply(
    ops: &[KvOp],
    now: u64,
    mut read: impl FnMut(&str) -> Option<KvEntry>,
) -> Result<Applied, KvError> {
    let mut seen: BTreeMap<String, Option<KvEntry>> = BTreeMap::new();
    let mut applied = Applied::default();
    let batch = ops.len() > 1;
    for (index, op) in ops.iter().enumerate() {
        let key = op.key();
        let current = match seen.get(key) {
            Some(current) => current.clone(),
            None => {
                let stored = read(key);
                let live = stored.clone().filter(|entry| entry.is_live(now));
                if stored.is_some() && live.is_none() {
                    applied.writes.insert(key.to_string(), None);
                }
                seen.insert(key.to_string(), live.clone());
                live
            }
        };
        let at = |message: String| {
            if batch {
                format!("operation {index} of the batch: {message}")
            } else {
                message
            }
        };
        let (outcome, next) = match op {
            KvOp::Get { .. } => match current {
                Some(entry) => (KvOutcome::Found(entry), None),
                None => (KvOutcome::Missing, None),
            },
            KvOp::Put {
                entry,
                condition,
                ttl_ms,
                ..
            } => {
                if !condition.holds(current.as_ref()) {
                    return Err(KvError::new(
                        StatusCode::PRECONDITION_FAILED,
                        at(format!("key '{key}' does not meet {condition}")),
                    ));
                }
                let mut entry = entry.clone();
                entry.expires = ttl_ms.map(|ttl| now.saturating_add(ttl));
                let etag = entry.etag();
                (KvOutcome::Stored { etag }, Some(Some(entry)))
            }
            KvOp::Delete { condition, .. } => {
                if !condition.holds(current.as_ref()) {
                    return Err(KvError::new(
                        StatusCode::PRECONDITION_FAILED,
                        at(format!("key '{key}' does not meet {condition}")),
                    ));
                }
                match current {
                    Some(_) => (KvOutcome::Deleted, Some(None)),
                    None => (KvOutcome::Missing, None),
                }
            }
            KvOp::Increment { by, .. } => {
                let before = match &current {
                    None => 0,
                    Some(entry) => counter(&entry.value).ok_or_else(|| {
                        KvError::new(
                            StatusCode::CONFLICT,
                            at(format!("key '{key}' does not hold an integer")),
                        )
                    })?,
                };
                let value = before.checked_add(*by).ok_or_else(|| {
                    KvError::bad(at(format!(
                        "incrementing key '{key}' ({before}) by {by} overflows a 64-bit integer"
                    )))
                })?;
                let mut entry = KvEntry::new(value.to_string(), Some(TEXT.to_string()));
                entry.expires = current.and_then(|entry| entry.expires);
                let etag = entry.etag();
                (KvOutcome::Counted { value, etag }, Some(Some(entry)))
            }
        };
        if let Some(next) = next {
            seen.insert(key.to_string(), next.clone());
            applied.writes.insert(key.to_string(), next);
        }
        applied.outcomes.push(outcome);
    }
    Ok(applied)
}

/// The content type of counters and text values.
const TEXT: &str = "text/plain; charset=utf-8";

/// The integer a counter's bytes spell.
fn counter(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// A listing: keys that start with `prefix`, after `cursor`, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Every key listed starts with this.
    pub prefix: String,
    /// Only keys after this one (the cursor of the previous page).
    pub cursor: Option<String>,
    /// At most this many (1–[`MAX_PAGE`]).
    pub limit: usize,
}

/// A page of keys, and the cursor of the next page if there may be one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPage {
    /// The keys, in byte order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

impl KeyPage {
    /// The page from up to `limit + 1` keys found after the cursor: the extra key, if found,
    /// says another page follows.
    pub fn from_found(mut keys: Vec<String>, limit: usize) -> KeyPage {
        let more = keys.len() > limit;
        keys.truncate(limit);
        let cursor = more.then(|| keys.last().cloned()).flatten();
        KeyPage { keys, cursor }
    }
}

/// A wave a key-value store answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvRequest {
    /// One operation on one key.
    Op(KvOp),
    /// A page of keys.
    List(ListQuery),
    /// Several operations in one transaction.
    Batch(Vec<KvOp>),
}

impl KvRequest {
    /// The request `core` makes of a store, or why it makes none.
    pub fn parse(core: &DirectedCore) -> Result<KvRequest, KvError> {
        let Method::Http(method) = &core.method else {
            return Err(KvError::new(
                StatusCode::NOT_FOUND,
                format!("a key-value store answers Http waves, not {}", core.method),
            ));
        };
        let (path, query) = match core.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (core.path.as_str(), None),
        };
        if path == "/batch" {
            return match method {
                HttpMethod::Post => parse_batch(&core.body).map(KvRequest::Batch),
                other => Err(not_allowed(*other, "/batch", "Post")),
            };
        }
        let Some(rest) = path.strip_prefix("/k") else {
            return Err(KvError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no path {path} on a key-value store: keys are under /k/, batches at /batch"
                ),
            ));
        };
        if rest.is_empty() || rest == "/" {
            return match method {
                HttpMethod::Get => parse_list(query.unwrap_or_default()).map(KvRequest::List),
                other => Err(not_allowed(*other, "/k/", "Get")),
            };
        }
        let Some(encoded) = rest.strip_prefix('/') else {
            return Err(KvError::new(
                StatusCode::NOT_FOUND,
                format!("no path {path} on a key-value store: keys are under /k/"),
            ));
        };
        let headers = &core.headers;
        let op = match method {
            HttpMethod::Get | HttpMethod::Head => KvOp::Get {
                key: key_of(encoded)?,
            },
            HttpMethod::Put => {
                let (value, given) = value_of(&core.body)?;
                let content_type = headers
                    .get("content-type")
                    .map(str::to_string)
                    .or(given.map(str::to_string));
                KvOp::Put {
                    key: key_of(encoded)?,
                    entry: KvEntry::new(value, content_type),
                    condition: condition_of(headers.get("if-match"), headers.get("if-none-match"))?,
                    ttl_ms: headers
                        .get("ttl-ms")
                        .map(|ttl| {
                            ttl.trim().parse::<u64>().map_err(|_| {
                                KvError::bad(format!(
                                    "header ttl-ms must be a number of milliseconds, not '{ttl}'"
                                ))
                            })
                        })
                        .transpose()?,
                }
            }
            HttpMethod::Delete => KvOp::Delete {
                key: key_of(encoded)?,
                condition: condition_of(headers.get("if-match"), headers.get("if-none-match"))?,
            },
            HttpMethod::Post => match encoded.strip_suffix("/increment") {
                Some(encoded) => KvOp::Increment {
                    key: key_of(encoded)?,
                    by: int_of(&core.body)?,
                },
                None => return Err(not_allowed(*method, path, "Post to KEY/increment")),
            },
            other => return Err(not_allowed(*other, path, "Get, Put, Delete")),
        };
        Ok(KvRequest::Op(op))
    }

    /// The wave that asks this of a store (what the SDK's client sends).
    pub fn to_core(&self) -> DirectedCore {
        match self {
            KvRequest::Op(op) => op_core(op),
            KvRequest::List(query) => {
                let mut path =
                    format!("/k/?prefix={}&limit={}", encode(&query.prefix), query.limit);
                if let Some(cursor) = &query.cursor {
                    path.push_str("&cursor=");
                    path.push_str(&encode(cursor));
                }
                DirectedCore::new(Method::Http(HttpMethod::Get)).with_path(path)
            }
            KvRequest::Batch(ops) => {
                let items: Vec<BatchItem> = ops.iter().map(BatchItem::from_op).collect();
                let body = Json::from_value(&items).map_or(Substance::Empty, Substance::Json);
                DirectedCore::new(Method::Http(HttpMethod::Post))
                    .with_path("/batch")
                    .with_body(body)
            }
        }
    }
}

fn op_core(op: &KvOp) -> DirectedCore {
    let path = format!("/k/{}", encode(op.key()));
    match op {
        KvOp::Get { .. } => DirectedCore::new(Method::Http(HttpMethod::Get)).with_path(path),
        KvOp::Put {
            entry,
            condition,
            ttl_ms,
            ..
        } => {
            let mut core = DirectedCore::new(Method::Http(HttpMethod::Put))
                .with_path(path)
                .with_body(Substance::Bin(entry.value.clone()));
            if let Some(content_type) = &entry.content_type {
                core = core.with_header("content-type", content_type.clone());
            }
            if let Some(ttl) = ttl_ms {
                core = core.with_header("ttl-ms", ttl.to_string());
            }
            with_condition(core, condition)
        }
        KvOp::Delete { condition, .. } => with_condition(
            DirectedCore::new(Method::Http(HttpMethod::Delete)).with_path(path),
            condition,
        ),
        KvOp::Increment { by, .. } => DirectedCore::new(Method::Http(HttpMethod::Post))
            .with_path(format!("{path}/increment"))
            .with_body(Substance::Int(*by)),
    }
}

fn with_condition(core: DirectedCore, condition: &Condition) -> DirectedCore {
    match condition {
        Condition::Always => core,
        Condition::IfMatch(tag) => core.with_header("if-match", tag.clone()),
        Condition::IfNoneMatch => core.with_header("if-none-match", "*"),
    }
}

fn not_allowed(method: HttpMethod, path: &str, allowed: &str) -> KvError {
    KvError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{path} on a key-value store answers {allowed}, not {method}"),
    )
}

/// A key, checked: percent-decoded UTF-8, 1–[`MAX_KEY_LEN`] bytes, no NUL.
fn key_of(encoded: &str) -> Result<String, KvError> {
    let key = decode(encoded)
        .ok_or_else(|| KvError::bad(format!("the key '{encoded}' is not percent-encoded UTF-8")))?;
    check_key(&key)?;
    Ok(key)
}

/// Whether `key` may be a key: 1–[`MAX_KEY_LEN`] bytes of UTF-8 without NUL.
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::bad("a key must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KvError::bad(format!(
            "a key is at most {MAX_KEY_LEN} bytes; this one has {}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(KvError::bad("a key must not contain NUL"));
    }
    Ok(())
}

/// The bytes a body stores, and the content type its substance implies.
fn value_of(body: &Substance) -> Result<(Vec<u8>, Option<&'static str>), KvError> {
    let (bytes, content_type) = match body {
        Substance::Empty => (Vec::new(), None),
        Substance::Bin(bytes) => (bytes.clone(), None),
        Substance::Text(text) => (text.clone().into_bytes(), Some(TEXT)),
        Substance::Int(value) => (value.to_string().into_bytes(), Some(TEXT)),
        Substance::Json(json) => (json.as_str().as_bytes().to_vec(), Some("application/json")),
        other => {
            return Err(KvError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "a key-value store keeps bytes, text, integers or Json, not {}",
                    other.kind()
                ),
            ));
        }
    };
    if bytes.len() > MAX_VALUE_LEN {
        return Err(KvError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a value is at most {MAX_VALUE_LEN} bytes (1 MiB); this one has {} — keep large things in a FileStore",
                bytes.len()
            ),
        ));
    }
    Ok((bytes, content_type))
}

/// An increment's amount: an Int, or text that spells one.
fn int_of(body: &Substance) -> Result<i64, KvError> {
    let text = match body {
        Substance::Int(value) => return Ok(*value),
        Substance::Text(text) => text.as_str(),
        Substance::Bin(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
        Substance::Empty => return Ok(1),
        _ => "",
    };
    text.trim().parse().map_err(|_| {
        KvError::bad(format!(
            "an increment's body is a 64-bit integer, not '{}'",
            text.chars().take(40).collect::<String>()
        ))
    })
}

fn condition_of(if_match: Option<&str>, if_none_match: Option<&str>) -> Result<Condition, KvError> {
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(KvError::bad("give if-match or if-none-match, not both")),
        (Some(tag), None) => Ok(Condition::IfMatch(tag.trim().to_string())),
        (None, Some(tag)) if tag.trim() == "*" => Ok(Condition::IfNoneMatch),
        (None, Some(tag)) => Err(KvError::bad(format!(
            "a store understands if-none-match: * only, not '{tag}'"
        ))),
        (None, None) => Ok(Condition::Always),
    }
}

fn parse_list(query: &str) -> Result<ListQuery, KvError> {
    let mut list = ListQuery {
        prefix: String::new(),
        cursor: None,
        limit: MAX_PAGE,
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value).ok_or_else(|| {
            KvError::bad(format!(
                "the query parameter '{name}' is not percent-encoded UTF-8"
            ))
        })?;
        match name {
            "prefix" => list.prefix = value,
            "cursor" => list.cursor = Some(value).filter(|c| !c.is_empty()),
            "limit" => {
                list.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| (1..=MAX_PAGE).contains(limit))
                    .ok_or_else(|| {
                        KvError::bad(format!(
                            "limit is a number from 1 to {MAX_PAGE}, not '{value}'"
                        ))
                    })?;
            }
            other => {
                return Err(KvError::bad(format!(
                    "a listing takes prefix, cursor and limit, not '{other}'"
                )));
            }
        }
    }
    Ok(list)
}

/// One operation of a batch as Json: `{"op": "put", "key": "a", "value": "text",
/// "if-match": "\"…\"", "ttl-ms": 1000, "content-type": "…"}`, `{"op": "increment", "key": "n",
/// "by": 2}`, `{"op": "get" | "delete", "key": …}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct BatchItem {
    op: String,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    if_match: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    if_none_match: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
}

impl BatchItem {
    fn from_op(op: &KvOp) -> BatchItem {
        let mut item = BatchItem {
            op: String::new(),
            key: op.key().to_string(),
            value: None,
            by: None,
            if_match: None,
            if_none_match: None,
            ttl_ms: None,
            content_type: None,
        };
        let condition = match op {
            KvOp::Get { .. } => {
                item.op = "get".into();
                &Condition::Always
            }
            KvOp::Put {
                entry,
                condition,
                ttl_ms,
                ..
            } => {
                item.op = "put".into();
                item.value = Some(String::from_utf8_lossy(&entry.value).into_owned());
                item.content_type = entry.content_type.clone();
                item.ttl_ms = *ttl_ms;
                condition
            }
            KvOp::Delete { condition, .. } => {
                item.op = "delete".into();
                condition
            }
            KvOp::Increment { by, .. } => {
                item.op = "increment".into();
                item.by = Some(*by);
                &Condition::Always
            }
        };
        match condition {
            Condition::Always => {}
            Condition::IfMatch(tag) => item.if_match = Some(tag.clone()),
            Condition::IfNoneMatch => item.if_none_match = Some("*".into()),
        }
        item
    }

    fn into_op(self, index: usize) -> Result<KvOp, KvError> {
        let at =
            |message: String| KvError::bad(format!("operation {index} of the batch: {message}"));
        check_key(&self.key).map_err(|err| at(err.message))?;
        let condition = condition_of(self.if_match.as_deref(), self.if_none_match.as_deref())
            .map_err(|err| at(err.message))?;
        let key = self.key;
        Ok(match self.op.as_str() {
            "get" => KvOp::Get { key },
            "delete" => KvOp::Delete { key, condition },
            "increment" => KvOp::Increment {
                key,
                by: self.by.unwrap_or(1),
            },
            "put" => {
                let value = self
                    .value
                    .ok_or_else(|| at("a put needs a \"value\"".to_string()))?;
                if value.len() > MAX_VALUE_LEN {
                    return Err(KvError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "operation {index} of the batch: a value is at most {MAX_VALUE_LEN} bytes"
                        ),
                    ));
                }
                KvOp::Put {
                    key,
                    entry: KvEntry::new(value, self.content_type),
                    condition,
                    ttl_ms: self.ttl_ms,
                }
            }
            other => {
                return Err(at(format!(
                    "op is get, put, delete or increment, not '{other}'"
                )));
            }
        })
    }
}

fn parse_batch(body: &Substance) -> Result<Vec<KvOp>, KvError> {
    let text = match body {
        Substance::Json(json) => json.as_str().to_string(),
        Substance::Text(text) => text.clone(),
        Substance::Bin(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| KvError::bad("a batch is a Json list; this body is not UTF-8"))?,
        other => {
            return Err(KvError::bad(format!(
                "a batch is a Json list of operations, not {}",
                other.kind()
            )));
        }
    };
    let items: Vec<BatchItem> = serde_json::from_str(&text)
        .map_err(|err| KvError::bad(format!("a batch is a Json list of operations: {err}")))?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(KvError::bad(format!(
            "a batch has 1 to {MAX_BATCH} operations, not {}",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| item.into_op(index))
        .collect()
}

/// The answer to one operation.
pub fn answer(outcome: KvOutcome, key: &str) -> ReflectedCore {
    match outcome {
        KvOutcome::Found(entry) => {
            let etag = entry.etag();
            let core = ReflectedCore::ok(Substance::Bin(entry.value)).with_header("etag", etag);
            match entry.content_type {
                Some(content_type) => core.with_header("content-type", content_type),
                None => core,
            }
        }
        KvOutcome::Missing => ReflectedCore::error(
            StatusCode::NOT_FOUND,
            format!("no key '{key}' in this store"),
        ),
        KvOutcome::Stored { etag } => ReflectedCore::ok(()).with_header("etag", etag),
        KvOutcome::Deleted => ReflectedCore::ok(()),
        KvOutcome::Counted { value, etag } => {
            ReflectedCore::ok(Substance::Int(value)).with_header("etag", etag)
        }
    }
}

/// The answer to a listing: `{"keys": […], "cursor": "…" | null}`.
pub fn answer_page(page: &KeyPage) -> ReflectedCore {
    match Json::from_value(page) {
        Ok(json) => ReflectedCore::ok(Substance::Json(json)),
        Err(err) => ReflectedCore::error(StatusCode::ERROR, err.to_string()),
    }
}

/// The answer to a batch: a Json list with one object per operation, `{"status": 200,
/// "etag": …, "value": …}` (a value as text when it is UTF-8, else a list of byte values).
pub fn answer_batch(outcomes: &[KvOutcome]) -> ReflectedCore {
    let items: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|outcome| match outcome {
            KvOutcome::Found(entry) => serde_json::json!({
                "status": 200,
                "etag": entry.etag(),
                "value": match std::str::from_utf8(&entry.value) {
                    Ok(text) => serde_json::Value::from(text),
                    Err(_) => serde_json::Value::from(entry.value.clone()),
                },
                "content-type": entry.content_type,
            }),
            KvOutcome::Missing => serde_json::json!({ "status": 404 }),
            KvOutcome::Stored { etag } => serde_json::json!({ "status": 200, "etag": etag }),
            KvOutcome::Deleted => serde_json::json!({ "status": 200 }),
            KvOutcome::Counted { value, etag } => {
                serde_json::json!({ "status": 200, "etag": etag, "value": value })
            }
        })
        .collect();
    match Json::from_value(&items) {
        Ok(json) => ReflectedCore::ok(Substance::Json(json)),
        Err(err) => ReflectedCore::error(StatusCode::ERROR, err.to_string()),
    }
}

/// The outcomes a batch's answer ([`answer_batch`]) reports, read back (what the SDK's client
/// returns); a body that is not such a list is a 500-class [`KvError`].
pub fn outcomes_of(body: &Substance) -> Result<Vec<KvOutcome>, KvError> {
    let malformed = |what: &str| {
        KvError::new(
            StatusCode::ERROR,
            format!("a batch's answer is a Json list of outcomes: {what}"),
        )
    };
    let Substance::Json(json) = body else {
        return Err(malformed(&format!("got {}", body.kind())));
    };
    let items: Vec<serde_json::Value> = json.to_value().map_err(|e| malformed(&e.to_string()))?;
    items
        .into_iter()
        .map(|item| {
            let status = item.get("status").and_then(serde_json::Value::as_u64);
            let etag = item
                .get("etag")
                .and_then(|e| e.as_str())
                .map(str::to_string);
            let content_type = item
                .get("content-type")
                .and_then(|c| c.as_str())
                .map(str::to_string);
            match (status, etag, item.get("value")) {
                (Some(404), _, _) => Ok(KvOutcome::Missing),
                (Some(200), None, None) => Ok(KvOutcome::Deleted),
                (Some(200), Some(etag), None) => Ok(KvOutcome::Stored { etag }),
                (Some(200), Some(etag), Some(serde_json::Value::Number(n))) => {
                    let value = n
                        .as_i64()
                        .ok_or_else(|| malformed("a count that is not an i64"))?;
                    Ok(KvOutcome::Counted { value, etag })
                }
                (Some(200), Some(_), Some(value)) => {
                    let bytes = match value {
                        serde_json::Value::String(text) => text.clone().into_bytes(),
                        serde_json::Value::Array(bytes) => bytes
                            .iter()
                            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                            .collect::<Option<Vec<u8>>>()
                            .ok_or_else(|| malformed("a value that is not bytes"))?,
                        _ => return Err(malformed("a value that is not text or bytes")),
                    };
                    Ok(KvOutcome::Found(KvEntry::new(bytes, content_type)))
                }
                _ => Err(malformed(&format!("an item it does not know: {item}"))),
            }
        })
        .collect()
}

/// `text` percent-encoded for a path segment or query value (unreserved characters and `/`
/// stay as they are).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` with its percent-escapes decoded (`+` stays `+`); `None` if an escape is malformed
/// or the bytes are not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, condition: Condition) -> KvOp {
        KvOp::Put {
            key: key.into(),
            entry: KvEntry::new(value, None),
            condition,
            ttl_ms: None,
        }
    }

    fn run(
        store: &mut BTreeMap<String, KvEntry>,
        ops: &[KvOp],
        now: u64,
    ) -> Result<Vec<KvOutcome>, KvError> {
        let applied = apply(ops, now, |key| store.get(key).cloned())?;
        for (key, entry) in applied.writes {
            match entry {
                Some(entry) => store.insert(key, entry),
                None => store.remove(&key),
            };
        }
        Ok(applied.outcomes)
    }

    #[test]
    fn conditions_follow_http() {
        let mut store = BTreeMap::new();
        let stored = run(&mut store, &[put("a", "1", Condition::IfNoneMatch)], 0).unwrap();
        let KvOutcome::Stored { etag } = &stored[0] else {
            panic!("{stored:?}")
        };
        let again = run(&mut store, &[put("a", "2", Condition::IfNoneMatch)], 0).unwrap_err();
        assert_eq!(again.status, StatusCode::PRECONDITION_FAILED);
        let stale = run(
            &mut store,
            &[put("a", "2", Condition::IfMatch("\"0\"".into()))],
            0,
        );
        assert_eq!(stale.unwrap_err().status, StatusCode::PRECONDITION_FAILED);
        run(
            &mut store,
            &[put("a", "2", Condition::IfMatch(etag.clone()))],
            0,
        )
        .unwrap();
        assert_eq!(store["a"].value, b"2");
    }

    #[test]
    fn a_batch_that_fails_writes_nothing() {
        let mut store = BTreeMap::new();
        let ops = [
            put("a", "1", Condition::Always),
            KvOp::Increment {
                key: "n".into(),
                by: 5,
            },
            KvOp::Delete {
                key: "zz".into(),
                condition: Condition::IfMatch("*".into()),
            },
        ];
        let err = run(&mut store, &ops, 0).unwrap_err();
        assert_eq!(err.status, StatusCode::PRECONDITION_FAILED);
        assert!(err.message.contains("operation 2"), "{err}");
        assert!(store.is_empty());
    }

    #[test]
    fn increments_add_and_refuse_overflow() {
        let mut store = BTreeMap::new();
        let inc = |by| KvOp::Increment {
            key: "n".into(),
            by,
        };
        let out = run(&mut store, &[inc(2), inc(3)], 0).unwrap();
        assert!(matches!(out[1], KvOutcome::Counted { value: 5, .. }));
        let err = run(&mut store, &[inc(i64::MAX)], 0).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        run(&mut store, &[put("t", "text", Condition::Always)], 0).unwrap();
        let err = run(
            &mut store,
            &[KvOp::Increment {
                key: "t".into(),
                by: 1,
            }],
            0,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
    }

    #[test]
    fn expired_entries_are_absent_and_removed() {
        let mut store = BTreeMap::new();
        let op = KvOp::Put {
            key: "a".into(),
            entry: KvEntry::new("x", None),
            condition: Condition::Always,
            ttl_ms: Some(10),
        };
        run(&mut store, &[op], 100).unwrap();
        let get = [KvOp::Get { key: "a".into() }];
        assert!(matches!(
            run(&mut store, &get, 109).unwrap()[0],
            KvOutcome::Found(_)
        ));
        assert_eq!(run(&mut store, &get, 110).unwrap()[0], KvOutcome::Missing);
        assert!(
            store.is_empty(),
            "the expired entry is removed when touched"
        );
    }

    #[test]
    fn requests_parse_from_waves_and_back() {
        let requests = [
            KvRequest::Op(put("a b/ü", "v", Condition::IfNoneMatch)),
            KvRequest::Op(KvOp::Get { key: "k".into() }),
            KvRequest::Op(KvOp::Delete {
                key: "k".into(),
                condition: Condition::IfMatch("\"1\"".into()),
            }),
            KvRequest::Op(KvOp::Increment {
                key: "count/increment".into(),
                by: -3,
            }),
            KvRequest::List(ListQuery {
                prefix: "user:&=".into(),
                cursor: Some("user:9".into()),
                limit: 10,
            }),
            KvRequest::Batch(vec![
                put("a", "1", Condition::Always),
                KvOp::Increment {
                    key: "n".into(),
                    by: 1,
                },
            ]),
        ];
        for request in requests {
            let core = request.to_core();
            assert_eq!(KvRequest::parse(&core), Ok(request), "{core:?}");
        }
    }

    #[test]
    fn bad_requests_name_what_was_wrong() {
        let core = |method, path: &str| {
            DirectedCore::new(Method::Http(method)).with_path(path.to_string())
        };
        let err = |core: DirectedCore| KvRequest::parse(&core).unwrap_err();
        let long = format!("/k/{}", "x".repeat(MAX_KEY_LEN + 1));
        assert_eq!(
            err(core(HttpMethod::Get, &long)).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(core(HttpMethod::Get, "/k/%zz")).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(core(HttpMethod::Get, "/k/a%00")).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(core(HttpMethod::Get, "/nope")).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            err(core(HttpMethod::Post, "/k/a")).status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let big =
            core(HttpMethod::Put, "/k/a").with_body(Substance::Bin(vec![0; MAX_VALUE_LEN + 1]));
        assert_eq!(err(big).status, StatusCode::PAYLOAD_TOO_LARGE);
        let exact = core(HttpMethod::Put, "/k/a").with_body(Substance::Bin(vec![0; MAX_VALUE_LEN]));
        assert!(KvRequest::parse(&exact).is_ok());
        let limit = core(HttpMethod::Get, "/k/?limit=1001");
        assert!(err(limit).message.contains("limit"));
        let batch = core(HttpMethod::Post, "/batch").with_body("[{\"op\":\"frob\",\"key\":\"a\"}]");
        assert!(err(batch).message.contains("operation 0"));
    }

    #[test]
    fn batch_answers_read_back() {
        let outcomes = vec![
            KvOutcome::Found(KvEntry::new("text", Some(TEXT.into()))),
            KvOutcome::Found(KvEntry::new(vec![0xff, 0], None)),
            KvOutcome::Missing,
            KvOutcome::Stored {
                etag: "\"1\"".into(),
            },
            KvOutcome::Deleted,
            KvOutcome::Counted {
                value: -4,
                etag: "\"2\"".into(),
            },
        ];
        let answer = answer_batch(&outcomes);
        assert_eq!(outcomes_of(&answer.body), Ok(outcomes));
    }

    #[test]
    fn pages_say_whether_more_follow() {
        let page = KeyPage::from_found(vec!["a".into(), "b".into(), "c".into()], 2);
        assert_eq!(page.keys, ["a", "b"]);
        assert_eq!(page.cursor.as_deref(), Some("b"));
        let last = KeyPage::from_found(vec!["a".into()], 2);
        assert_eq!(last.cursor, None);
    }
}
