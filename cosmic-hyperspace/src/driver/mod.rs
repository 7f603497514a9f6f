//! Drivers: the host-side behaviour of each kind (SPEC §0, §6 Core layer).
//!
//! A [`Driver`] says what creating a particle of its kind does ([`Driver::init`]), how such a
//! particle answers waves that reach its Core ([`Driver::handle`]) and which bind applies when
//! the particle has no `bind` property of its own ([`Driver::bind`]). [`Drivers`] maps base
//! kinds to drivers; a machine starts with the built-in ones and may be given others.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{BaseKind, Bind, Kind, Ping, ReflectedCore, Ripple, Status};

use crate::registry::{ParticleRecord, Registry};
use crate::transmit::Transmit;

mod artifact;
mod basic;
mod channel;
mod database;
mod file;
mod mechtron;
mod secret;

pub use artifact::{ArtifactDriver, content_type};
pub use basic::BasicDriver;
pub use channel::{ChannelDriver, STREAM};
pub use database::DatabaseDriver;
pub use file::FileDriver;
pub use mechtron::{
    CONFIG_PROPERTY, GUEST_TARGET, GuestLog, MechtronDriver, RestartPolicy, quiet_log, traced_log,
};
pub use secret::{
    KeySource, SECRET_KEY_FILE, SealError, SecretDriver, SecretKey, SecretKeyError,
    UPDATED_PROPERTY,
};

/// What a driver may use while it works: the registry, and a way to send waves (through the
/// star the particle lives on; they are checked at their targets like any other).
#[derive(Clone)]
pub struct DriverCtx {
    /// The registry of the cosmos.
    pub registry: Arc<dyn Registry>,
    /// Sends waves into the cosmos.
    pub transmit: Arc<dyn Transmit>,
}

impl std::fmt::Debug for DriverCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverCtx").finish_non_exhaustive()
    }
}

/// Unix milliseconds now, as stores stamp what they keep (expiry, `updated`); 0 if the clock
/// is before 1970.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

tokio::task_local! {
    /// The Ripple that the Ping being answered in this task stands for (see
    /// [`delivering_ripple`]).
    static RIPPLE: Arc<Ripple>;
}

/// Runs `answer` — the Field and Core answering, as a Ping, one recipient's delivery of
/// `ripple` (addressed to that recipient alone) — so that a driver that cares can tell
/// ([`ripple_of`]): a mechtron's guest is handed the Ripple itself. Kept beside the Ping
/// rather than in it so that nothing a sender writes (a header, say) can make a Ping pass
/// for a Ripple.
pub(crate) async fn delivering_ripple<F: std::future::Future>(
    ripple: Ripple,
    answer: F,
) -> F::Output {
    RIPPLE.scope(Arc::new(ripple), answer).await
}

/// The Ripple `ping` stands for, when it is the delivery [`delivering_ripple`] is running
/// (same id, same recipient); `None` for a plain Ping, including those a bind's forward or
/// call sends on.
pub(crate) fn ripple_of(ping: &Ping) -> Option<Arc<Ripple>> {
    RIPPLE
        .try_with(|ripple| {
            (ripple.id == ping.id && ripple.to.single() == Some(&ping.to)).then(|| ripple.clone())
        })
        .ok()
        .flatten()
}

/// Why a driver could not bring a particle to life.
#[derive(Debug, thiserror::Error)]
#[error("the {kind} driver failed: {message}")]
pub struct DriverError {
    /// The kind whose driver failed.
    pub kind: Kind,
    /// What went wrong.
    pub message: String,
}

/// The behaviour of one base kind.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The base kind this driver serves.
    fn kind(&self) -> BaseKind;

    /// The bind used for particles of this kind that have no `bind` property.
    fn bind(&self) -> Arc<Bind>;

    /// Brings a newly created (or, after a restart, reloaded) particle to life; the status it
    /// returns is recorded (normally [`Status::Ready`]).
    async fn init(
        &self,
        _ctx: &DriverCtx,
        _record: &ParticleRecord,
    ) -> Result<Status, DriverError> {
        Ok(Status::Ready)
    }

    /// Whether particles of this kind live partly in this process's memory (a running
    /// guest), so that a restarted machine must bring them to life again even though the
    /// registry records them Ready.
    fn keeps_state_in_memory(&self) -> bool {
        false
    }

    /// Answers a Ping that the Field let through to the particle's Core.
    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore;

    /// Forgets whatever the driver keeps for a particle that was deleted.
    async fn remove(&self, _record: &ParticleRecord) {}
}

/// The drivers of a machine, by base kind.
#[derive(Clone, Default)]
pub struct Drivers {
    by_kind: HashMap<BaseKind, Arc<dyn Driver>>,
}

impl std::fmt::Debug for Drivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_kind.keys()).finish()
    }
}

impl Drivers {
    /// The built-in drivers: artifacts, key-value stores (Database), file stores and their
    /// files, secrets (sealing with `secret_key`, the machine's — the one place it goes), and
    /// the plain containers and records (Root, Space, Base, App, Repo, BundleSeries, Bundle,
    /// UserBase, User).
    pub fn builtin(secret_key: SecretKey) -> Drivers {
        let mut drivers = Drivers::default();
        for kind in [
            BaseKind::Root,
            BaseKind::Space,
            BaseKind::Base,
            BaseKind::App,
            BaseKind::Repo,
            BaseKind::BundleSeries,
            BaseKind::Bundle,
            BaseKind::UserBase,
            BaseKind::User,
        ] {
            drivers.insert(Arc::new(BasicDriver::new(kind)));
        }
        drivers.insert(Arc::new(ArtifactDriver::new()));
        drivers.insert(Arc::new(DatabaseDriver::new()));
        drivers.insert(Arc::new(FileDriver::stores()));
        drivers.insert(Arc::new(FileDriver::files()));
        drivers.insert(Arc::new(SecretDriver::new(secret_key)));
        drivers
    }

    /// Adds (or replaces) the driver for its kind.
    pub fn insert(&mut self, driver: Arc<dyn Driver>) {
        self.by_kind.insert(driver.kind(), driver);
    }

    /// The driver for `kind`, if the machine has one.
    pub fn get(&self, kind: &Kind) -> Option<&Arc<dyn Driver>> {
        self.by_kind.get(&kind.base())
    }
}
