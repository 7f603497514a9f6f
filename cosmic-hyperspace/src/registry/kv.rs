//! [`KeyValues`]: where the entries of key-value stores are kept (SPEC §17.1), beside the
//! registry that records the stores themselves, so that deleting a store deletes its entries in
//! the same transaction.
//!
//! A backend only reads and keeps entries: the rules of a write (conditions, expiry,
//! increments, batches) are [`cosmic_space::kv::apply`], the same for every backend.

use async_trait::async_trait;
use cosmic_space::{KeyPage, KvEntry, KvError, KvOp, KvOutcome, ListQuery, Point, WaveId};

use super::RegistryResult;

/// How long a store remembers the answer to a wave it must apply once (an increment, or a batch
/// holding one), so that the same wave sent again is answered the same without counting twice.
pub const ONCE_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// Who sent a wave that must be applied once: the same id from another agent is another wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    /// The sending agent, as a point.
    pub agent: String,
    /// The wave's id.
    pub wave: WaveId,
}

/// The outcome of a write: the store's answer per operation, or its refusal (412, 409, …)
/// with nothing changed.
pub type Written = Result<Vec<KvOutcome>, KvError>;

/// The entries of every key-value store of a cosmos. Reads see every write that was answered
/// before them; a write is durable when it is answered.
#[async_trait]
pub trait KeyValues: Send + Sync + 'static {
    /// The live entry of `key` in `store` at `now` (unix milliseconds).
    async fn get(&self, store: &Point, key: &str, now: u64) -> RegistryResult<Option<KvEntry>>;

    /// A page of `store`'s live keys at `now`.
    async fn keys(&self, store: &Point, query: &ListQuery, now: u64) -> RegistryResult<KeyPage>;

    /// Applies `ops` to `store` as one transaction at `now` ([`cosmic_space::kv::apply`]). With
    /// `once`, the outcome is remembered for [`ONCE_RETENTION_MS`] and the same wave is answered
    /// with it again instead of being applied twice. `NotFound` if `store` is not registered.
    async fn write(
        &self,
        store: &Point,
        ops: Vec<KvOp>,
        now: u64,
        once: Option<Once>,
    ) -> RegistryResult<Written>;
}
