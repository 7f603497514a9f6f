//! The life of a particle on the stars (SPEC §3, §14): placing it, bringing it to life on the
//! star that hosts it, placing it again when its star is gone, and letting its driver forget
//! it when it is deleted.
//!
//! Two halves meet through waves:
//! - the asking side, [`Lifecycle`] (used by the executor and by the machine at start), places
//!   a particle by rendezvous hashing over the live stars, records the placement in the
//!   registry and asks the host star, with a `Hyp<Assign>` wave, to start it;
//! - the hosting side, [`init`] and [`remove`], is what that star runs when the request
//!   arrives: the kind's driver brings the particle to life (Init → Ready, or Fatal with the
//!   reason) or forgets it.
//!
//! Asking by wave, rather than calling the driver, is what lets the host be another machine.

use std::sync::Arc;

use cosmic_space::{
    Agent, BaseKind, HypMethod, Method, Ping, Point, Selector, StarKey, Status, StatusCode,
    Substance, Surface,
};

use crate::driver::{DriverCtx, Drivers};
use crate::fabric::Fabric;
use crate::placement;
use crate::registry::{ParticleRecord, Registry, RegistryError};
use crate::transmit::Transmit;

/// Why a particle could not be brought to life: the status to answer with and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    /// 503 when no star could take it, 500 when its driver failed, or what the host answered.
    pub status: StatusCode,
    /// What went wrong, naming the particle.
    pub message: String,
}

/// The asking side of a particle's life, for one star: where requests come from.
pub struct Lifecycle {
    registry: Arc<dyn Registry>,
    fabric: Arc<dyn Fabric>,
    transmit: Arc<dyn Transmit>,
    /// The star's own point: infrastructure requests leave from it, as HyperUser.
    from: Point,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// The lifecycle of particles asked for by the star at `from`, which sends its requests
    /// with `transmit` and places particles over the stars `fabric` has connected.
    pub fn new(
        registry: Arc<dyn Registry>,
        fabric: Arc<dyn Fabric>,
        transmit: Arc<dyn Transmit>,
        from: Point,
    ) -> Lifecycle {
        Lifecycle {
            registry,
            fabric,
            transmit,
            from,
        }
    }

    /// The registry of the cosmos.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The star `point` belongs on among the live stars (`None` only when there are none).
    pub fn place(&self, point: &Point) -> Option<StarKey> {
        placement::place(point, &self.fabric.stars()).cloned()
    }

    /// Places a registered particle on a star, records it, and has that star's driver start
    /// it. If it does not become Ready and `remove_on_failure` is set (a particle the caller
    /// has just registered), it is removed again: a failed create registers nothing.
    pub async fn bring_to_life(
        &self,
        record: &ParticleRecord,
        remove_on_failure: bool,
    ) -> Result<(), StartError> {
        let failure = match self.start(record).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if remove_on_failure {
            let _ = self.registry.delete(&record.point, true).await;
        }
        Err(failure)
    }

    async fn start(&self, record: &ParticleRecord) -> Result<(), StartError> {
        let host = self.place(&record.point).ok_or_else(|| StartError {
            status: StatusCode::UNAVAILABLE,
            message: "this cosmos has no live stars".to_string(),
        })?;
        // Not Ready from before its move: until its new host has started it, waves that
        // reach the new host are answered "not ready", not handed to a driver without it.
        let failed = |err: RegistryError| StartError {
            status: err.status(),
            message: err.to_string(),
        };
        if record.status != Status::Pending {
            self.registry
                .set_status(&record.point, Status::Pending)
                .await
                .map_err(failed)?;
        }
        self.registry
            .set_location(&record.point, host.clone())
            .await
            .map_err(failed)?;
        let pong = self
            .transmit
            .ping(self.request(host.point(), HypMethod::Assign, &record.point))
            .await;
        match (&pong.core.status, &pong.core.body) {
            (status, Substance::Status(Status::Ready)) if status.is_ok() => Ok(()),
            (status, Substance::Status(other)) if status.is_ok() => Err(StartError {
                status: StatusCode::ERROR,
                message: format!("{} could not start: {other}", record.point),
            }),
            _ => Err(StartError {
                status: pong.core.status,
                message: format!(
                    "{} could not be started: {}",
                    record.point,
                    pong.core.error_message().unwrap_or_default()
                ),
            }),
        }
    }

    /// Asks the star hosting `record` to let its driver forget it (before its record goes).
    pub async fn forget(&self, record: &ParticleRecord) {
        if let Some(host) = &record.location {
            self.transmit
                .ping(self.request(host.point(), HypMethod::Delete, &record.point))
                .await;
        }
    }

    /// Brings back every particle whose star is gone (placed again on a live star), and every
    /// particle placed on one of `mine` that is not Ready or whose driver keeps it in memory
    /// (a restarted machine has lost its guests). `mine` is empty when a machine adopts the
    /// particles of a dead one: its own guests are alive and keep their state. Particles on
    /// the live stars of other machines are theirs. Failures are recorded on the particles
    /// (Fatal with the reason); the rest carry on.
    pub async fn reawaken(&self, drivers: &Drivers, mine: &[StarKey]) -> Result<(), RegistryError> {
        let live = self.fabric.stars();
        let everything: Selector = "**"
            .parse()
            .map_err(|e: cosmic_space::ParseError| RegistryError::Storage(e.to_string()))?;
        for stub in self.registry.select(&everything).await? {
            let record = self.registry.record(&stub.point).await?;
            let placed = record.location.as_ref().is_some_and(|l| live.contains(l));
            let here = record.location.as_ref().is_some_and(|l| mine.contains(l));
            let in_memory = drivers
                .get(&record.kind)
                .is_some_and(|driver| driver.keeps_state_in_memory());
            if placed && (!here || (record.status == Status::Ready && !in_memory)) {
                continue;
            }
            if record.location.is_none() && record.kind.base() == BaseKind::File {
                // Written through its store: it lives with the store and is never placed.
                continue;
            }
            let _ = self.bring_to_life(&record, false).await;
        }
        Ok(())
    }

    /// An infrastructure request about `point` to the star at `to`, as HyperUser.
    fn request(&self, to: Point, method: HypMethod, point: &Point) -> Ping {
        let mut ping = Ping::new(
            Surface::core(self.from.clone()),
            to,
            Method::Hyp(method),
            Substance::Point(point.clone()),
        );
        ping.agent = Agent::HyperUser;
        ping
    }
}

/// The hosting side of `Hyp<Assign>`: brings a particle placed on this star to life with its
/// driver, recording `Init` while it works and then the status the driver reports (`Fatal`
/// when there is no driver for its kind).
pub async fn init(
    registry: &Arc<dyn Registry>,
    drivers: &Drivers,
    transmit: &Arc<dyn Transmit>,
    point: &Point,
) -> Result<Status, RegistryError> {
    let record = registry.record(point).await?;
    let Some(driver) = drivers.get(&record.kind).cloned() else {
        let status = Status::Fatal(format!("no driver for {}", record.kind));
        registry.set_status(point, status.clone()).await?;
        return Ok(status);
    };
    registry.set_status(point, Status::Init).await?;
    let ctx = DriverCtx {
        registry: registry.clone(),
        transmit: transmit.clone(),
    };
    let status = match driver.init(&ctx, &record).await {
        Ok(status) => status,
        Err(err) => Status::Fatal(err.message),
    };
    registry.set_status(point, status.clone()).await?;
    Ok(status)
}

/// The hosting side of `Hyp<Delete>`: lets the driver forget a particle that is being deleted.
pub async fn remove(registry: &Arc<dyn Registry>, drivers: &Drivers, point: &Point) {
    if let Ok(record) = registry.record(point).await
        && let Some(driver) = drivers.get(&record.kind).cloned()
    {
        driver.remove(&record).await;
    }
}
