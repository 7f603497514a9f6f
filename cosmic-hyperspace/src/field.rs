//! The Field layer (SPEC §6): security, then routing by the target's bind.
//!
//! Every directed wave to a particle passes here before its driver sees it. The Field checks
//! that the wave's agent may reach the target (`x`) and may have the wave's [`Effect`] on it
//! (`r` to read its details or content, `w` to change it), then asks the target's bind (its `bind`
//! property, else its driver's default) which pipeline the wave takes, and runs it: deliver to
//! the Core, forward to another particle, or call another particle with a new method and path
//! — each hop keeps the agent, so each hop is checked again — with the pipeline's substance
//! filters on the way in and out.
//!
//! A bind's routes match the wave's path without its query (`/app/ann` of `/app/ann?x=1`, the
//! gateway's request target); the query travels on with the wave, and a call that gives a new
//! path without a query of its own keeps the wave's.

use std::sync::Arc;

use cosmic_space::{
    Access, Agent, Bind, Destination, Effect, FullAccess, Permission, Ping, Point, ReflectedCore,
    Selection, Status, StatusCode, Substance, Surface,
};

use crate::driver::{Driver, DriverCtx, Drivers};
use crate::registry::{Cache, Change, ChangeFeed, Forget, ParticleRecord, Registry, RegistryError};
use crate::security::{self, SecurityError};
use crate::transmit::Transmit;

/// The Field of one star: the registry and drivers it consults, its caches of access decisions
/// and parsed binds (both forget what the registry's [`ChangeFeed`] says changed).
pub struct Field {
    registry: Arc<dyn Registry>,
    drivers: Drivers,
    access: Arc<security::AccessCache>,
    binds: Arc<Binds>,
}

/// The most bind documents a Field keeps parsed.
const BINDS: usize = 4096;

/// Parsed bind documents, by the `bind` property that names them, with the point they were
/// read from.
#[derive(Debug)]
struct Binds(Cache<String, (Point, Arc<Bind>)>);

impl Forget for Binds {
    fn forget(&self, change: &Change) {
        self.0.forget_where(|_, (point, _)| change.touches(point));
    }
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
            .field("binds", &self.binds.0.len())
            .finish_non_exhaustive()
    }
}

impl Field {
    /// A Field over `registry` whose particles' Cores are `drivers`, with empty caches that
    /// listen on `changes` (the registry's feed).
    pub fn new(registry: Arc<dyn Registry>, changes: &ChangeFeed, drivers: Drivers) -> Field {
        let access = Arc::new(security::AccessCache::new());
        let binds = Arc::new(Binds(Cache::new(BINDS)));
        let listener: Arc<dyn Forget> = access.clone();
        changes.listen(Arc::downgrade(&listener));
        let listener: Arc<dyn Forget> = binds.clone();
        changes.listen(Arc::downgrade(&listener));
        Field {
            registry,
            drivers,
            access,
            binds,
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
        // The particle that answers: the target, or for a file not yet in a file store, the
        // directory (or store) it would be created in. Access is decided there.
        let point = &record.point;
        let effect = Effect::of_wave(&record.kind, &ping.core.method);
        // HyperUser may do anything but what only a grant gives (revealing a secret): for
        // that, its access too is computed from the grants.
        let access = if ping.agent == Agent::HyperUser && !effect.needs_grant() {
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
        self.serve(transmit, ping, record, effect, &access).await
    }

    /// Hands `signal` to the Core of the particle `record` describes, which asked for it (a
    /// subscriber's delivery, SPEC §18): not checked against the sender — the subscription
    /// was checked as the subscriber — but routed by the particle's bind like any wave. What
    /// the Core answers is dropped, as a Signal's always is.
    pub async fn deliver(
        &self,
        transmit: &Arc<dyn Transmit>,
        signal: cosmic_space::Signal,
        record: ParticleRecord,
    ) {
        let ping = signal.into_ping();
        // Only what the particle itself does: no details or content read on its behalf.
        let access = Access::full(FullAccess::Owner);
        let _ = self
            .serve(transmit, &ping, record, Effect::Execute, &access)
            .await;
    }

    /// Runs `ping`, already admitted with `access` for its `effect`, through `record`'s bind
    /// to its destination.
    async fn serve(
        &self,
        transmit: &Arc<dyn Transmit>,
        ping: &Ping,
        record: ParticleRecord,
        effect: Effect,
        access: &Access,
    ) -> ReflectedCore {
        let registry = &self.registry;
        let point = &record.point;
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
        let selection = bind.select(&ping.core.method, ping.core.route_path());
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
                Substance::from(security::readable(record.details(), access)),
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
        if let Some((_, bind)) = self.binds.0.get(value) {
            return Ok(bind);
        }
        let epoch = self.binds.0.epoch();
        let bind_point: Point = value.parse().map_err(|e| broken(format!("{e}")))?;
        let bytes = match self.registry.content(&bind_point).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(broken("it holds no document".to_string())),
            Err(err) => return Err(broken(err.to_string())),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| broken("it is not UTF-8".into()))?;
        let bind = Arc::new(
            text.parse::<Bind>()
                .map_err(|e| broken(format!("\n{}", e.in_file(bind_point.to_string()))))?,
        );
        self.binds
            .0
            .insert_if(epoch, value.to_string(), (bind_point, bind.clone()));
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
            core.path = call_path(path, ping.core.raw_query());
        }
    }
    let mut relayed = Ping::with_core(ping.to.clone(), Surface::core(target), core);
    relayed.agent = ping.agent.clone();
    relayed.handling = ping.handling;
    relayed.hops = ping.hops.saturating_add(1);
    transmit.ping(relayed).await.core
}

/// The path of a call: the bind's new `path`, which keeps the wave's `query` unless it has a
/// query of its own.
fn call_path(path: String, query: Option<&str>) -> String {
    match query {
        Some(query) if !path.contains('?') => format!("{path}?{query}"),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_keeps_the_query_unless_it_brings_its_own() {
        assert_eq!(call_path("/app/ann".into(), Some("x=1")), "/app/ann?x=1");
        assert_eq!(call_path("/app/ann".into(), None), "/app/ann");
        assert_eq!(call_path("/app?y=2".into(), Some("x=1")), "/app?y=2");
    }
}
