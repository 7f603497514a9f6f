//! The Field layer (SPEC §6): security, then routing by the target's bind.
//!
//! Every directed wave to a particle passes here before its driver sees it. The Field checks
//! that the wave's agent may reach the target (`x`) and may have the wave's [`Effect`] on it
//! (`r` to read its details or content, `w` to change it), then asks the target's bind (its `bind`
//! property, else its driver's default) which pipeline the wave takes, and runs it: deliver to
//! the Core, forward to another particle, or call another particle with a new method and path
//! — each hop keeps the agent, so each hop is checked again — with the pipeline's substance
//! filters on the way in and out.

use std::collections::HashMap;
use std::sync::Arc;

use cosmic_space::{
    Access, Agent, Bind, Destination, Effect, FullAccess, Permission, Ping, Point, ReflectedCore,
    Selection, Status, StatusCode, Substance, Surface,
};
use parking_lot::RwLock;

use crate::driver::{Driver, DriverCtx, Drivers};
use crate::registry::{ParticleRecord, Registry, RegistryError};
use crate::security::{self, SecurityError};
use crate::transmit::Transmit;

/// The Field of one star: the registry and drivers it consults, its caches of access decisions
/// and parsed binds.
pub struct Field {
    registry: Arc<dyn Registry>,
    drivers: Drivers,
    /// Access decisions, while the registry is unchanged.
    access: security::AccessCache,
    /// Parsed bind documents, by the `bind` property that names them.
    binds: RwLock<HashMap<String, CachedBind>>,
}

/// A parsed bind and what it was read from. While the registry's generation is unchanged the
/// document cannot have changed, so the hot path neither reads nor hashes it; after a change
/// the bytes are read again and reparsed only if their fingerprint differs (artifacts are
/// immutable, but a deleted bundle may be published again).
#[derive(Debug)]
struct CachedBind {
    generation: Option<u64>,
    fingerprint: u64,
    bind: Arc<Bind>,
}

impl From<SecurityError> for ReflectedCore {
    fn from(err: SecurityError) -> ReflectedCore {
        match err {
            SecurityError::Denied(denied) => {
                ReflectedCore::error(StatusCode::FORBIDDEN, denied.to_string())
            }
            SecurityError::Registry(err) => err.into(),
        }
    }
}

impl From<RegistryError> for ReflectedCore {
    fn from(err: RegistryError) -> ReflectedCore {
        ReflectedCore::error(err.status(), err.to_string())
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field")
            .field("drivers", &self.drivers)
            .field("binds", &self.binds.read().len())
            .finish_non_exhaustive()
    }
}

impl Field {
    /// A Field over `registry` whose particles' Cores are `drivers`, with empty caches.
    pub fn new(registry: Arc<dyn Registry>, drivers: Drivers) -> Field {
        Field {
            registry,
            drivers,
            access: security::AccessCache::new(),
            binds: RwLock::new(HashMap::new()),
        }
    }

    /// The drivers the Field hands waves to.
    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    /// Runs `ping` through security and the target's bind and returns the answer; `record`
    /// is the target's, as routing found it. Forwards, calls and drivers send their waves
    /// with `transmit`.
    pub async fn pass(
        &self,
        transmit: &Arc<dyn Transmit>,
        ping: &Ping,
        record: ParticleRecord,
    ) -> ReflectedCore {
        let registry = &self.registry;
        let point = &ping.to.point;
        let effect = Effect::of_wave(&record.kind, &ping.core.method);
        let access = if ping.agent == Agent::HyperUser {
            Access::full(FullAccess::HyperUser)
        } else {
            let access = match self
                .access
                .access_on(registry.as_ref(), &ping.agent, point)
                .await
            {
                Ok(access) => access,
                Err(err) => return err.into(),
            };
            let checked = access
                .check(Permission::Execute, &ping.agent, point)
                .and_then(|()| access.check_effect(effect, &ping.agent, point));
            if let Err(denied) = checked {
                return SecurityError::Denied(denied).into();
            }
            access
        };
        if let Some(refusal) = not_ready(&record) {
            return refusal;
        }
        let Some(driver) = self.drivers.get(&record.kind).cloned() else {
            return ReflectedCore::error(
                StatusCode::ERROR,
                format!("this machine has no driver for {}", record.kind),
            );
        };
        let bind = match self.bind_of(&record, driver.as_ref()).await {
            Ok(bind) => bind,
            Err(core) => return core,
        };
        let selection = bind.select(&ping.core.method, &ping.core.path);
        let (pipeline, mut env) = match selection {
            Selection::NoRoute => {
                return ReflectedCore::error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no route for {} {} in the bind of {point}",
                        ping.core.method, ping.core.path
                    ),
                );
            }
            Selection::Default => (
                cosmic_space::Pipeline::default_pipeline(),
                cosmic_space::Env::new(),
            ),
            Selection::Route { pipeline, vars } => (pipeline, vars),
        };
        if let Err(err) = pipeline.check_request(ping.core.body.kind()) {
            return ReflectedCore::error(StatusCode::BAD_REQUEST, err.to_string());
        }
        env = env.with_working(point.clone());
        let destination = match pipeline.stop.resolve(&env) {
            Ok(destination) => destination,
            Err(err) => {
                return ReflectedCore::error(
                    StatusCode::BAD_REQUEST,
                    format!("the bind of {point} could not route this wave: {err}"),
                );
            }
        };
        let core = match destination {
            // A particle's details are the registry's, as they are now, for every kind: the
            // Core answers them without its driver (a guest knows only its init's snapshot).
            Destination::Core if effect == Effect::ReadDetails => ReflectedCore::ok(
                Substance::from(security::readable(record.details(), &access)),
            ),
            Destination::Core => {
                let ctx = DriverCtx {
                    registry: registry.clone(),
                    transmit: transmit.clone(),
                };
                driver.handle(&ctx, &record, ping).await
            }
            Destination::Forward(target) => relay(transmit.as_ref(), ping, target, None).await,
            Destination::Call {
                point: target,
                method,
                path,
            } => relay(transmit.as_ref(), ping, target, Some((method, path))).await,
        };
        if let Err(err) = pipeline.check_reflection(core.body.kind()) {
            return ReflectedCore::error(
                StatusCode::ERROR,
                format!("{point} answered with a body its bind does not allow: {err}"),
            );
        }
        core
    }

    /// The bind that routes waves to `record`: its `bind` property (a bind artifact), else its
    /// driver's default.
    async fn bind_of(
        &self,
        record: &ParticleRecord,
        driver: &dyn Driver,
    ) -> Result<Arc<Bind>, ReflectedCore> {
        let Some(value) = record.properties.value("bind") else {
            return Ok(driver.bind());
        };
        let broken = |why: String| {
            ReflectedCore::error(
                StatusCode::ERROR,
                format!("the bind of {} ({value}) is unusable: {why}", record.point),
            )
        };
        let generation = self.registry.generation();
        if let Some(cached) = self.binds.read().get(value)
            && generation.is_some()
            && cached.generation == generation
        {
            return Ok(cached.bind.clone());
        }
        let bind_point: Point = value.parse().map_err(|e| broken(format!("{e}")))?;
        let bytes = match self.registry.content(&bind_point).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(broken("it holds no document".to_string())),
            Err(err) => return Err(broken(err.to_string())),
        };
        let fingerprint = fingerprint(&bytes);
        let known = self
            .binds
            .read()
            .get(value)
            .filter(|cached| cached.fingerprint == fingerprint)
            .map(|cached| cached.bind.clone());
        let bind = match known {
            Some(bind) => bind,
            None => {
                let text =
                    std::str::from_utf8(&bytes).map_err(|_| broken("it is not UTF-8".into()))?;
                Arc::new(
                    text.parse::<Bind>()
                        .map_err(|e| broken(format!("\n{}", e.in_file(bind_point.to_string()))))?,
                )
            }
        };
        self.binds.write().insert(
            value.to_string(),
            CachedBind {
                generation,
                fingerprint,
                bind: bind.clone(),
            },
        );
        Ok(bind)
    }
}

/// Answers for a particle that cannot take waves yet (or any more).
fn not_ready(record: &ParticleRecord) -> Option<ReflectedCore> {
    let why = match &record.status {
        Status::Ready => return None,
        Status::Panic(reason) | Status::Fatal(reason) => {
            format!("{} is {}: {reason}", record.point, record.status)
        }
        other => format!("{} is not ready ({other})", record.point),
    };
    Some(ReflectedCore::error(StatusCode::UNAVAILABLE, why))
}

/// Sends `ping` on to `target` (with a new method and path for a call) as the same agent, and
/// adopts the answer.
async fn relay(
    transmit: &dyn Transmit,
    ping: &Ping,
    target: Point,
    call: Option<(cosmic_space::Method, Option<String>)>,
) -> ReflectedCore {
    let mut core = ping.core.clone();
    if let Some((method, path)) = call {
        core.method = method;
        if let Some(path) = path {
            core.path = path;
        }
    }
    let mut relayed = Ping::with_core(ping.to.clone(), Surface::core(target), core);
    relayed.agent = ping.agent.clone();
    relayed.handling = ping.handling;
    relayed.hops = ping.hops.saturating_add(1);
    transmit.ping(relayed).await.core
}

/// FNV-1a of the bytes: cheap, and enough to notice a replaced document.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
