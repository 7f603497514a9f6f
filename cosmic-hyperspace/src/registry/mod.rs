//! The registry: the durable record of every particle (SPEC §14) — point, kind, status,
//! properties, owner, placement — plus per-parent sequences, grants, access tokens and the
//! content of artifacts.
//!
//! [`Registry`] is the contract; [`EmbeddedRegistry`] keeps it in a redb file in the data
//! directory (one machine, zero setup), and [`PgRegistry`] keeps it in PostgreSQL for a cosmos
//! across machines. Both must pass the same [`conformance`] suite. SQL lives only in
//! `registry::postgres`. A machine reads either through a [`CachedRegistry`], whose writes
//! publish what they changed ([`Change`]) so that every cache forgets just that.
//!
//! The registry enforces what must hold atomically — a point is registered once, its parent
//! exists, locked properties do not change, a bundle's artifacts appear all together or not at
//! all — and nothing else: kind rules and permissions are the executor's job.

mod cache;
pub mod conformance;
mod embedded;
mod kv;
mod postgres;

pub use cache::{Cache, CachedRegistry, Change, ChangeFeed, EventSink, Forget, PointCache};
pub use embedded::{EmbeddedKeyValues, EmbeddedRegistry};
pub use kv::{KeyValues, ONCE_RETENTION_MS, Once, Written};
pub use postgres::{PgConfig, PgRegistry};

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{
    Agent, CreateStrategy, Details, Grant, GrantKind, Kind, Lineage, Point, PointHierarchy,
    Properties, PropertyChanges, Selector, StarKey, Status, StatusCode, Stub, Subscription,
    Surface,
};
use serde::{Deserialize, Serialize};

/// Everything the registry knows about one particle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticleRecord {
    /// Where it is.
    pub point: Point,
    /// What it is.
    pub kind: Kind,
    /// Where it is in its lifecycle.
    pub status: Status,
    /// The agent that owns it (its creator unless changed by `chown`).
    pub owner: Point,
    /// Its properties (`config`, `bind`, …).
    pub properties: Properties,
    /// The star it is placed on; `None` until placed.
    pub location: Option<StarKey>,
}

impl ParticleRecord {
    /// Point, kind and status.
    pub fn stub(&self) -> Stub {
        Stub {
            point: self.point.clone(),
            kind: self.kind.clone(),
            status: self.status.clone(),
        }
    }

    /// The stub and the properties.
    pub fn details(&self) -> Details {
        Details {
            stub: self.stub(),
            properties: self.properties.clone(),
        }
    }
}

/// A request to register one particle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The particle's point (`ROOT` only at bootstrap; otherwise its parent must exist).
    pub point: Point,
    /// Its kind.
    pub kind: Kind,
    /// Its owner.
    pub owner: Point,
    /// Its initial properties (applied in order; `Remove` of an absent property is a no-op).
    pub properties: PropertyChanges,
    /// What to do if the point is taken: fail (`Commit`), accept an existing particle of the
    /// same kind unchanged (`Ensure`), or replace its unlocked properties (`Override`: the
    /// locked ones stay, every other is replaced by these; owner, status and location stay).
    /// Setting a locked property to the value it already has is no change, so re-running
    /// the same `create!` succeeds; any other change to a locked one is `PropertyLocked`.
    pub strategy: CreateStrategy,
    /// The status it starts in (normally [`Status::Pending`]).
    pub status: Status,
}

/// A particle to register together with others, and the bytes it holds (for artifacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The registration.
    pub registration: Registration,
    /// The content, for particles that hold bytes (artifacts). Stored when the entry
    /// registers its particle, and replaces the old content when an `Override` re-registers
    /// one; an `Ensure` of an existing particle leaves its content as it is.
    pub content: Option<Vec<u8>>,
}

/// Why the registry refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No particle at this point.
    #[error("no particle at {0}")]
    NotFound(Point),
    /// The point is already registered (`create` with the Commit strategy).
    #[error("{0} already exists")]
    AlreadyExists(Point),
    /// The point exists with another kind (`create?` / `create!`).
    #[error("{point} already exists as a {existing}, not a {requested}")]
    KindMismatch {
        /// The point.
        point: Point,
        /// The kind it has.
        existing: Box<Kind>,
        /// The kind that was asked for.
        requested: Box<Kind>,
    },
    /// The parent of the point is not registered.
    #[error("cannot register {point}: its parent {parent} does not exist")]
    NoParent {
        /// The point.
        point: Point,
        /// Its missing parent.
        parent: Point,
    },
    /// `delete` without force on a particle with children.
    #[error("{point} has {children} children; use delete! to delete the whole subtree")]
    HasChildren {
        /// The point.
        point: Point,
        /// How many children it has.
        children: usize,
    },
    /// A change to a locked property.
    #[error("property '{name}' of {point} is locked")]
    PropertyLocked {
        /// The particle.
        point: Point,
        /// The property.
        name: String,
    },
    /// `revoke` of an id that names no grant.
    #[error("no grant with id {0}")]
    NoSuchGrant(u64),
    /// The store failed (I/O, a full disk, a corrupt file).
    #[error("registry storage failed: {0}")]
    Storage(String),
    /// The store cannot be reached for now (a dropped database connection, a pool that had no
    /// connection free in time): the same call may succeed a moment later.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
}

impl RegistryError {
    /// The HTTP-like status a command answers with when it fails this way.
    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::NotFound(_) | RegistryError::NoSuchGrant(_) => StatusCode::NOT_FOUND,
            RegistryError::NoParent { .. } => StatusCode::NOT_FOUND,
            RegistryError::AlreadyExists(_)
            | RegistryError::KindMismatch { .. }
            | RegistryError::HasChildren { .. } => StatusCode::CONFLICT,
            RegistryError::PropertyLocked { .. } => StatusCode::FORBIDDEN,
            RegistryError::Storage(_) => StatusCode::ERROR,
            RegistryError::Unavailable(_) => StatusCode::UNAVAILABLE,
        }
    }
}

/// Whether `grant` may count for access on `point`: every point its `on` selector matches lies
/// within the selector's [`Selector::literal_prefix`], and a grant counts on `point` only where
/// `on` matches `point` or an ancestor of it — so that prefix must contain `point`.
pub fn may_apply(grant: &Grant, point: &Point) -> bool {
    grant
        .on
        .literal_prefix()
        .is_none_or(|prefix| point.is_within(&prefix))
}

/// The SHA-256 of a token: what a registry stores (and a cache remembers) instead of the token.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// A subscription as both stores keep it: printed, so that a row reads the same in any redb
/// or SQL tool and the order of the rows (byte order of the texts) is the order
/// [`Registry::subscriptions`] promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrintedSubscription {
    /// The subscriber, `point@Layer[+Topic]`.
    pub(crate) subscriber: String,
    /// The selector.
    pub(crate) selector: String,
    /// The agent's point (HyperUser and Anonymous as their well-known points).
    pub(crate) agent: String,
}

impl PrintedSubscription {
    /// `subscription`, printed.
    pub(crate) fn of(subscription: &Subscription) -> PrintedSubscription {
        PrintedSubscription {
            subscriber: subscription.subscriber.to_string(),
            selector: subscription.selector.to_string(),
            agent: subscription.agent.to_point().to_string(),
        }
    }

    /// The subscription this row holds; a [`RegistryError::Storage`] naming the row and
    /// `place` (where it was read) if a column does not parse.
    // The trait's error, on a cold path: returned as it is, as the stores do.
    #[allow(clippy::result_large_err)]
    pub(crate) fn read(&self, place: &str) -> RegistryResult<Subscription> {
        let corrupt = |column: &str, error: &dyn std::fmt::Display| {
            RegistryError::Storage(format!(
                "corrupt subscription row (subscriber '{}', selector '{}') in {place}: \
                 the {column} does not parse: {error}",
                self.subscriber, self.selector
            ))
        };
        let subscriber: Surface = self
            .subscriber
            .parse()
            .map_err(|e| corrupt("subscriber", &e))?;
        let selector: Selector = self.selector.parse().map_err(|e| corrupt("selector", &e))?;
        let agent: Point = self
            .agent
            .parse()
            .map_err(|e| corrupt(&format!("agent '{}'", self.agent), &e))?;
        Ok(Subscription {
            subscriber,
            selector,
            agent: Agent::from_point(agent),
        })
    }
}

/// `Result` with [`RegistryError`].
pub type RegistryResult<T> = Result<T, RegistryError>;

/// The durable record of a cosmos. Every method is atomic: it happens entirely or not at all,
/// and once it has returned `Ok` the change survives a crash of the process.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Registers one particle (see [`Registration::strategy`]); returns the record as stored.
    async fn register(&self, registration: Registration) -> RegistryResult<ParticleRecord>;

    /// Registers several particles in one transaction, in order (a parent may precede its
    /// children in the same call), storing each entry's content. All or nothing: any refusal
    /// leaves the registry as it was.
    async fn register_all(&self, entries: Vec<Entry>) -> RegistryResult<Vec<ParticleRecord>>;

    /// The next number of `parent`'s sequence (1, 2, 3 …), for `create …-%`; never the same
    /// twice, even across restarts or after `parent` is deleted and registered again.
    /// `NotFound` if `parent` is not registered.
    async fn next_sequence(&self, parent: &Point) -> RegistryResult<u64>;

    /// The record at `point`.
    async fn record(&self, point: &Point) -> RegistryResult<ParticleRecord>;

    /// The star `point` is placed on (`None` if it is not placed yet) — what routing asks on
    /// every wave, so implementations should answer it without copying the whole record.
    async fn location(&self, point: &Point) -> RegistryResult<Option<StarKey>> {
        Ok(self.record(point).await?.location)
    }

    /// The records of `point` and every ancestor that is registered, from `ROOT` down
    /// (`NotFound` if `point` itself is not).
    async fn line(&self, point: &Point) -> RegistryResult<Vec<ParticleRecord>>;

    /// The point with the kind of each segment: `NotFound` naming `point`, or the first
    /// ancestor below `ROOT`, that is not registered. `ROOT`'s hierarchy has no kinds.
    async fn hierarchy(&self, point: &Point) -> RegistryResult<PointHierarchy>;

    /// What the access algorithm needs about `point`: its hierarchy and every owner on the way,
    /// `ROOT`'s first (so `ROOT` must be registered too).
    async fn lineage(&self, point: &Point) -> RegistryResult<Lineage>;

    /// Sets the status.
    async fn set_status(&self, point: &Point, status: Status) -> RegistryResult<()>;

    /// Records the star a particle is placed on.
    async fn set_location(&self, point: &Point, star: StarKey) -> RegistryResult<()>;

    /// Applies property changes atomically; any change to a locked property (removing it, or
    /// setting another value) refuses them all. `+@name=v` sets and locks. Returns the
    /// properties after the change.
    async fn set_properties(
        &self,
        point: &Point,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties>;

    /// The stubs of every particle the selector matches (kinds included), in point order.
    async fn select(&self, selector: &Selector) -> RegistryResult<Vec<Stub>>;

    /// The stubs of the direct children of `point`, in point order (`NotFound` if `point` is
    /// not registered).
    async fn children(&self, point: &Point) -> RegistryResult<Vec<Stub>>;

    /// Deletes `point`; with `force` its whole subtree, otherwise only if it has no children
    /// (`HasChildren` counts the direct ones). Returns the deleted points, deepest first and,
    /// within one depth, in point order. Their content goes with them, and so do, in the same
    /// transaction, the subscriptions whose subscriber is a surface of one of them. Grants,
    /// sequences and subscriptions whose selector names them are kept (grants and selectors
    /// are patterns that may match a particle registered later; a sequence never repeats).
    async fn delete(&self, point: &Point, force: bool) -> RegistryResult<Vec<Point>>;

    /// The content stored with a particle (an artifact's bytes); `None` if it holds none,
    /// `NotFound` if there is no such particle.
    async fn content(&self, point: &Point) -> RegistryResult<Option<Vec<u8>>>;

    /// Replaces the content held by the existing particle at `point` and applies `changes` to
    /// its properties (as [`Registry::set_properties`] does, locks included), together: a file
    /// written and its `etag` are never seen apart. Returns the properties after the change.
    async fn write_content(
        &self,
        point: &Point,
        content: Vec<u8>,
        changes: &PropertyChanges,
    ) -> RegistryResult<Properties>;

    /// Makes `owner` the owner of every particle the selector matches; returns how many.
    async fn chown(&self, selector: &Selector, owner: &Point) -> RegistryResult<usize>;

    /// Records a grant made by `by` and returns it with its new id (ids are never reused).
    async fn grant(
        &self,
        kind: GrantKind,
        on: Selector,
        to: Selector,
        by: Point,
    ) -> RegistryResult<Grant>;

    /// Removes the grant `id` and returns it.
    async fn revoke(&self, id: u64) -> RegistryResult<Grant>;

    /// Every grant, in id order.
    async fn grants(&self) -> RegistryResult<Vec<Grant>>;

    /// The grants that can count for access on `point`, in id order: those whose `on` may
    /// match `point` or one of its ancestors (see [`may_apply`]). Access is decided on every
    /// wave; this keeps the grants of other Spaces and apps out of that work.
    async fn grants_on(&self, point: &Point) -> RegistryResult<Vec<Grant>>;

    /// Stores an access token that acts as `agent` (a token stored again names the new
    /// agent). Implementations keep a hash of the token, not the token.
    async fn store_token(&self, token: &str, agent: &Point) -> RegistryResult<()>;

    /// The agent a token acts as, if the token is known.
    async fn token_agent(&self, token: &str) -> RegistryResult<Option<Point>>;

    /// How many particles there are of each base kind, by the base's name (`"Mechtron"`), for
    /// `starlane status`; kinds with none are left out.
    async fn census(&self) -> RegistryResult<BTreeMap<String, u64>>;

    /// Keeps `subscription`, replacing one with the same subscriber and selector (its agent
    /// is then the new one) (SPEC §18). The subscriber need not be registered; a particle's
    /// subscriptions are deleted with it (see [`Registry::delete`]).
    async fn subscribe(&self, subscription: &Subscription) -> RegistryResult<()>;

    /// Undoes `subscriber`'s subscription to `selector`; whether there was one.
    async fn unsubscribe(&self, subscriber: &Surface, selector: &Selector) -> RegistryResult<bool>;

    /// Undoes every subscription whose subscriber is a surface of `point` (any layer or
    /// topic); how many there were.
    async fn unsubscribe_all(&self, point: &Point) -> RegistryResult<usize>;

    /// Every subscription in the cosmos, ordered by subscriber and then selector (as text,
    /// byte by byte).
    async fn subscriptions(&self) -> RegistryResult<Vec<Subscription>>;

    /// Where this registry keeps the entries of key-value stores (beside the stores'
    /// records, so that deleting a store deletes its entries with it); `None` for a registry
    /// that keeps no data.
    fn key_values(&self) -> Option<Arc<dyn KeyValues>> {
        None
    }
}
