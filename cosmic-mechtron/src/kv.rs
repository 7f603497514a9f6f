//! [`Kv`]: a key-value store (SPEC §17.1) as a mechtron uses it — `ctx.kv(store)` — a typed
//! client over the store's waves, so every call is checked in the Field like any wave the
//! mechtron sends (it acts as itself: the store must grant it `r`/`w`).

use cosmic_space::kv::{self, KvRequest};
use cosmic_space::{
    Condition, DirectedCore, KeyPage, KvEntry, KvOp, KvOutcome, ListQuery, ReflectedCore,
    StatusCode, Substance, Surface,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Ctx, Error, Result};

/// How often an increment is sent again, with the same wave id, when the store did not answer
/// (408) or was unavailable (503): the store applies it once however often it arrives.
const INCREMENT_TRIES: usize = 3;

/// A value read with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The bytes.
    pub value: Vec<u8>,
    /// The content type it was stored with.
    pub content_type: Option<String>,
    /// Its `etag`, for a conditional write ([`Condition::IfMatch`]).
    pub etag: String,
}

/// How a value is stored: on which condition, for how long, with which content type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// When the value may replace what is there (a failed condition is a 412 error).
    pub condition: Condition,
    /// Milliseconds the value lives; `None` keeps it.
    pub ttl_ms: Option<u64>,
    /// The content type stored with it (and answered with it through a bind).
    pub content_type: Option<String>,
}

/// A key-value store seen from a mechtron.
#[derive(Debug)]
pub struct Kv<'c> {
    ctx: &'c Ctx,
    store: Surface,
}

impl<'c> Kv<'c> {
    pub(crate) fn new(ctx: &'c Ctx, store: Surface) -> Kv<'c> {
        Kv { ctx, store }
    }

    /// The store's answer to `core`: the reflection, or an [`Error`] with its status.
    fn ask(&self, core: DirectedCore) -> Result<ReflectedCore> {
        let core = self.ctx.ping_core(self.store.clone(), core).core;
        if core.is_ok() || core.status == StatusCode::NOT_FOUND {
            Ok(core)
        } else {
            Err(failed(core))
        }
    }

    /// The value of `key`, if it has one.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.entry(key)?.map(|versioned| versioned.value))
    }

    /// The value of `key` as text (an error if it is not UTF-8).
    pub fn get_text(&self, key: &str) -> Result<Option<String>> {
        self.get(key)?
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    Error::status(
                        StatusCode::ERROR,
                        format!("the value of '{key}' is not UTF-8"),
                    )
                })
            })
            .transpose()
    }

    /// The value of `key` as JSON read into `T`.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(text) = self.get_text(key)? else {
            return Ok(None);
        };
        let json = cosmic_space::Json::new(&text)?;
        Ok(Some(json.to_value()?))
    }

    /// The value of `key` with its content type and etag.
    pub fn entry(&self, key: &str) -> Result<Option<Versioned>> {
        let core = self.ask(KvRequest::Op(KvOp::Get { key: key.into() }).to_core())?;
        if core.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let etag = core.headers.get("etag").unwrap_or_default().to_string();
        let content_type = core.headers.get("content-type").map(str::to_string);
        let value = bytes_of(core.body)?;
        Ok(Some(Versioned {
            value,
            content_type,
            etag,
        }))
    }

    /// Stores `value` at `key`; returns its etag.
    pub fn put(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<String> {
        self.put_with(key, value, PutOptions::default())
    }

    /// Stores `value` serialized as JSON (content type `application/json`); returns its etag.
    pub fn put_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<String> {
        let json = cosmic_space::Json::from_value(value)?;
        self.put_with(
            key,
            json.as_str().as_bytes().to_vec(),
            PutOptions {
                content_type: Some("application/json".into()),
                ..PutOptions::default()
            },
        )
    }

    /// Stores `value` at `key` if `condition` holds (412 otherwise); returns its etag.
    pub fn put_if(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        condition: Condition,
    ) -> Result<String> {
        self.put_with(
            key,
            value,
            PutOptions {
                condition,
                ..PutOptions::default()
            },
        )
    }

    /// Stores `value` at `key` as `options` say; returns its etag.
    pub fn put_with(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        options: PutOptions,
    ) -> Result<String> {
        let op = KvOp::Put {
            key: key.into(),
            entry: KvEntry::new(value, options.content_type),
            condition: options.condition,
            ttl_ms: options.ttl_ms,
        };
        let core = self.ask(KvRequest::Op(op).to_core())?;
        if core.status == StatusCode::NOT_FOUND {
            return Err(failed(core));
        }
        Ok(core.headers.get("etag").unwrap_or_default().to_string())
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.delete_if(key, Condition::Always)
    }

    /// Removes `key` if `condition` holds (412 otherwise); whether it was there.
    pub fn delete_if(&self, key: &str, condition: Condition) -> Result<bool> {
        let op = KvOp::Delete {
            key: key.into(),
            condition,
        };
        let core = self.ask(KvRequest::Op(op).to_core())?;
        Ok(core.status != StatusCode::NOT_FOUND)
    }

    /// Adds `by` to the integer at `key` (absent counts as 0) and returns the sum. Sent again
    /// with the same wave id if the store does not answer, and counted once however often.
    pub fn increment(&self, key: &str, by: i64) -> Result<i64> {
        let core = KvRequest::Op(KvOp::Increment {
            key: key.into(),
            by,
        })
        .to_core();
        let id = self.ctx.new_wave_id();
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            let answer = self.ctx.ping_as(id, self.store.clone(), core.clone()).core;
            let again = matches!(answer.status, StatusCode::TIMEOUT | StatusCode::UNAVAILABLE);
            if !again || tries == INCREMENT_TRIES {
                break answer;
            }
        };
        if !answer.is_ok() {
            return Err(failed(answer));
        }
        match answer.body {
            Substance::Int(sum) => Ok(sum),
            other => Err(Error::status(
                StatusCode::ERROR,
                format!(
                    "the store answered an increment with {}, not an Int",
                    other.kind()
                ),
            )),
        }
    }

    /// A page of the keys that start with `prefix`, after `cursor`, at most `limit` (1–1,000).
    pub fn list(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<KeyPage> {
        let query = ListQuery {
            prefix: prefix.into(),
            cursor: cursor.map(str::to_string),
            limit: limit.clamp(1, kv::MAX_PAGE),
        };
        let core = self.ask(KvRequest::List(query).to_core())?;
        if core.status == StatusCode::NOT_FOUND {
            return Err(failed(core));
        }
        match core.body {
            Substance::Json(json) => Ok(json.to_value()?),
            other => Err(Error::status(
                StatusCode::ERROR,
                format!(
                    "the store answered a listing with {}, not Json",
                    other.kind()
                ),
            )),
        }
    }

    /// Every key that starts with `prefix`, in order (page after page).
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list(prefix, cursor.as_deref(), kv::MAX_PAGE)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Runs `ops` as one transaction: all of them, or (on a failed condition, 412) none.
    pub fn batch(&self, ops: Vec<KvOp>) -> Result<Vec<KvOutcome>> {
        let core = self.ask(KvRequest::Batch(ops).to_core())?;
        if core.status == StatusCode::NOT_FOUND {
            return Err(failed(core));
        }
        kv::outcomes_of(&core.body).map_err(|err| Error::status(err.status, err.message))
    }
}

/// A failed answer as an [`Error`] with its status and message.
pub(crate) fn failed(core: ReflectedCore) -> Error {
    let status = core.status;
    let message = core
        .error_message()
        .unwrap_or_else(|| status.reason().to_string());
    Error::status(status, message)
}

/// The bytes of a value's (or file's) body.
pub(crate) fn bytes_of(body: Substance) -> Result<Vec<u8>> {
    match body {
        Substance::Bin(bytes) => Ok(bytes),
        Substance::Text(text) => Ok(text.into_bytes()),
        Substance::Empty => Ok(Vec::new()),
        other => Err(Error::status(
            StatusCode::ERROR,
            format!("the store answered a read with {}, not bytes", other.kind()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::TestMechtron;

    const STORE: &str = "localhost:app:data";

    #[mechtron]
    #[derive(Debug, Default)]
    pub struct Counter;

    #[handlers]
    impl Counter {
        #[route("Ext<Visit>")]
        fn visit(&self, ctx: &mut Ctx) -> Result<String> {
            let store = ctx.kv(STORE.parse::<Point>()?);
            let visits = store.increment("visits", 1)?;
            let etag = store.put("last", format!("visit {visits}"))?;
            let stale = store.put_if("last", "lost", Condition::IfMatch("\"0\"".into()));
            if stale.as_ref().map_err(Error::status_code) != Err(StatusCode::PRECONDITION_FAILED) {
                return Err(Error::msg(format!("a stale put answered {stale:?}")));
            }
            store.put_if("last", format!("visit {visits}!"), Condition::IfMatch(etag))?;
            Ok(format!("{visits}"))
        }

        #[route("Ext<Summary>")]
        fn summary(&self, ctx: &mut Ctx) -> Result<String> {
            let store = ctx.kv(STORE.parse::<Point>()?);
            store.put_json("user:ann", &[1, 2, 3])?;
            store.put("user:bob", "b")?;
            let keys = store.keys("user:")?;
            let ann: Option<Vec<u8>> = store.get_json("user:ann")?;
            let outcomes = store.batch(vec![
                KvOp::Increment {
                    key: "visits".into(),
                    by: 10,
                },
                KvOp::Get {
                    key: "nobody".into(),
                },
            ])?;
            let removed = store.delete("user:bob")?;
            let again = store.delete("user:bob")?;
            Ok(format!(
                "{keys:?} {ann:?} {:?} {removed} {again} {:?}",
                outcomes.len(),
                store.get_text("last")?
            ))
        }
    }

    #[test]
    fn a_mechtron_keeps_counts_and_values_in_an_in_memory_store() {
        let mut counter = TestMechtron::<Counter>::new()
            .unwrap()
            .with_key_value_store(STORE)
            .unwrap();
        assert_eq!(counter.ping("Ext<Visit>", ()).body, Substance::from("1"));
        assert_eq!(counter.ping("Ext<Visit>", ()).body, Substance::from("2"));
        let summary = counter.ping("Ext<Summary>", ());
        assert_eq!(
            summary.body,
            Substance::from(
                "[\"user:ann\", \"user:bob\"] Some([1, 2, 3]) 2 true false Some(\"visit 2!\")"
            ),
            "{summary:?}"
        );
        let store: Point = STORE.parse().unwrap();
        assert_eq!(
            counter.host().stored(&store, "visits"),
            Some(b"12".to_vec())
        );
    }

    #[test]
    fn a_store_that_is_not_there_is_an_error_with_its_status() {
        let mut counter = TestMechtron::<Counter>::new().unwrap();
        let answer = counter.ping("Ext<Visit>", ());
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{answer:?}");
    }
}
