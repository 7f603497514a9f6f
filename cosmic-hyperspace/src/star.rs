//! Stars: the shards of a cosmos (SPEC §0, §14).
//!
//! A star receives envelopes from the fabric. Reflections go to its [`Shell`], which hands them
//! to the exchange waiting for them. A directed wave is routed: if the registry places its
//! target on another star, the wave goes there; if here, it runs through the layers — Field
//! (security, bind), Shell, Core (the driver) — in a task of its own, and the answer goes back
//! to the star that sent it. `GLOBAL::` services (the executor) run on every star; the star's
//! own point (`<<STAR::…>>::star`, or `LOCAL::star`) answers the infrastructure's `Hyp<…>`
//! waves, such as assigning a particle to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cosmic_space::{
    Agent, CmdMethod, DirectedWave, HypMethod, Method, Ping, Point, Pong, ReflectedCore,
    ReflectedWave, RouteSeg, Signal, StarKey, Status, StatusCode, Substance, Surface, Wave,
};

use crate::driver::{DriverCtx, Drivers};
use crate::executor;
use crate::fabric::{Envelope, Fabric, Inbox};
use crate::field::Field;
use crate::registry::{ParticleRecord, Registry, RegistryError};
use crate::shell::Shell;

/// How many times a wave may be handed from star to star before it is refused (a loop guard).
pub const MAX_HOPS: u16 = 32;

/// A cheap, cloneable handle to a running star.
#[derive(Clone)]
pub struct StarHandle {
    inner: Arc<StarInner>,
}

struct StarInner {
    key: StarKey,
    point: Point,
    registry: Arc<dyn Registry>,
    fabric: Arc<dyn Fabric>,
    drivers: Drivers,
    shell: Shell,
    field: Field,
    received: AtomicU64,
}

impl std::fmt::Debug for StarHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Star")
            .field("key", &self.inner.key)
            .finish()
    }
}

/// Where a directed wave's target lives, seen from this star.
enum Location {
    /// On this star (with its record, for a particle).
    Here(Option<Box<ParticleRecord>>),
    There(StarKey),
    Nowhere(ReflectedCore),
}

impl Inbox for StarHandle {
    fn deliver(&self, envelope: Envelope) {
        self.inner.received.fetch_add(1, Ordering::Relaxed);
        match envelope.wave {
            Wave::Reflected(ReflectedWave::Pong(pong)) => {
                self.inner.shell.deliver(pong);
            }
            Wave::Reflected(ReflectedWave::Echo(_)) => {
                // Ripples are not sent by this star yet: an echo here was never asked for.
                self.inner.shell.drop_unsolicited();
            }
            Wave::Directed(directed) => {
                let star = self.clone();
                let from_star = envelope.from_star;
                // Boxed: the future of a wave's whole handling is kilobytes, and a task copies
                // its future when it is spawned and again as it finishes; a box is copied as
                // a pointer.
                tokio::spawn(Box::pin(async move {
                    star.receive(from_star, directed).await;
                }));
            }
        }
    }
}

impl StarHandle {
    /// A star that will receive what the fabric delivers to its inbox (see [`Inbox`]).
    pub fn new(
        key: StarKey,
        registry: Arc<dyn Registry>,
        fabric: Arc<dyn Fabric>,
        drivers: Drivers,
    ) -> StarHandle {
        StarHandle {
            inner: Arc::new(StarInner {
                point: key.point(),
                key,
                registry,
                fabric,
                drivers,
                shell: Shell::new(),
                field: Field::new(),
                received: AtomicU64::new(0),
            }),
        }
    }

    /// The star's key.
    pub fn key(&self) -> &StarKey {
        &self.inner.key
    }

    /// The star's own point, `<<STAR::…>>::star`.
    pub fn point(&self) -> &Point {
        &self.inner.point
    }

    /// The registry of the cosmos.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.inner.registry
    }

    /// The stars of the cosmos, as the fabric sees them (for placement).
    pub fn stars(&self) -> Vec<StarKey> {
        self.inner.fabric.stars()
    }

    /// The drivers this star runs particles with.
    pub fn drivers(&self) -> &Drivers {
        &self.inner.drivers
    }

    /// The star's Shell (exchange counts).
    pub fn shell(&self) -> &Shell {
        &self.inner.shell
    }

    /// How many envelopes the star has received.
    pub fn received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
    }

    /// Sends `ping` and waits for its Pong — the target's answer, an error from the
    /// infrastructure, or a 408 from the Shell once the wait time has passed. The id is stamped
    /// here if the Ping has none; the agent is taken as given (callers set it).
    pub async fn ping(&self, mut ping: Ping) -> Pong {
        if ping.id.is_nil() {
            ping.id = crate::ids::wave_id();
        }
        let exchange = self.inner.shell.open(&ping);
        let envelope = Envelope {
            from_star: self.inner.key.clone(),
            wave: Wave::from(ping.clone()),
        };
        self.route(envelope, &ping).await;
        self.inner.shell.wait(exchange).await
    }

    /// Sends `signal` toward its target and returns at once: nobody waits for an answer, so a
    /// signal that cannot be delivered is dropped (the id is stamped here if it has none).
    pub async fn signal(&self, mut signal: Signal) {
        if signal.id.is_nil() {
            signal.id = crate::ids::wave_id();
        }
        let Ok(to) = self.host_of(&signal.to.point).await else {
            return;
        };
        let envelope = Envelope {
            from_star: self.inner.key.clone(),
            wave: Wave::from(signal),
        };
        let _ = self.inner.fabric.send(&to, envelope).await;
    }

    /// Routes an envelope carrying `ping` to the star that hosts its target (maybe this one),
    /// or answers it at once when it cannot be delivered.
    async fn route(&self, envelope: Envelope, ping: &Ping) {
        let to = match self.host_of(&ping.to.point).await {
            Ok(star) => star,
            Err(core) => {
                self.reflect(&envelope.from_star, ping, core).await;
                return;
            }
        };
        if let Err(err) = self.inner.fabric.send(&to, envelope).await {
            let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
            self.reflect(&self.inner.key.clone(), ping, core).await;
        }
    }

    async fn receive(&self, from_star: StarKey, directed: DirectedWave) {
        match directed {
            DirectedWave::Ping(ping) => match self.locate(&ping.to.point).await {
                Location::Here(record) => {
                    let core = self.process(&ping, record).await;
                    self.reflect(&from_star, &ping, core).await;
                }
                Location::There(star) if ping.hops < MAX_HOPS => {
                    let mut ping = ping;
                    ping.hops += 1;
                    let envelope = Envelope {
                        from_star: from_star.clone(),
                        wave: Wave::from(ping.clone()),
                    };
                    if let Err(err) = self.inner.fabric.send(&star, envelope).await {
                        let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
                        self.reflect(&from_star, &ping, core).await;
                    }
                }
                Location::There(_) => {
                    let core = ReflectedCore::error(
                        StatusCode::ERROR,
                        format!("{} travelled more than {MAX_HOPS} hops", ping.to),
                    );
                    self.reflect(&from_star, &ping, core).await;
                }
                Location::Nowhere(core) => self.reflect(&from_star, &ping, core).await,
            },
            DirectedWave::Signal(signal) => {
                // Signals are never answered: run them for their effect, drop what they return.
                let ping = Ping {
                    id: signal.id,
                    from: signal.from,
                    to: signal.to,
                    agent: signal.agent,
                    handling: signal.handling,
                    hops: signal.hops,
                    core: signal.core,
                };
                if let Location::Here(record) = self.locate(&ping.to.point).await {
                    let _ = self.process(&ping, record).await;
                }
            }
            DirectedWave::Ripple(_) => {
                // Nothing in this cosmos sends ripples yet; refusing beats half-delivering.
            }
        }
    }

    /// Sends the answer to `ping` back to the star that holds its exchange.
    async fn reflect(&self, to_star: &StarKey, ping: &Ping, core: ReflectedCore) {
        let mut pong = ping.pong(core);
        pong.id = crate::ids::wave_id();
        let envelope = Envelope {
            from_star: self.inner.key.clone(),
            wave: Wave::from(pong),
        };
        if self.inner.fabric.send(to_star, envelope).await.is_err() {
            // The sender's star is gone, and its exchange with it: nobody is waiting.
            self.inner.shell.drop_unsolicited();
        }
    }

    /// The star that hosts `point`, asking the registry only for its placement.
    async fn host_of(&self, point: &Point) -> Result<StarKey, ReflectedCore> {
        match point.route() {
            RouteSeg::This => match self.inner.registry.location(point).await {
                Ok(Some(star)) => Ok(star),
                Ok(None) => Err(ReflectedCore::error(
                    StatusCode::UNAVAILABLE,
                    format!("{point} is not placed on a star yet"),
                )),
                Err(err) => Err(err.into()),
            },
            _ => match self.locate(point).await {
                Location::Here(_) => Ok(self.inner.key.clone()),
                Location::There(star) => Ok(star),
                Location::Nowhere(core) => Err(core),
            },
        }
    }

    async fn locate(&self, point: &Point) -> Location {
        match point.route() {
            RouteSeg::Global | RouteSeg::Local => Location::Here(None),
            RouteSeg::Star(key) if *key == self.inner.key => Location::Here(None),
            RouteSeg::Star(key) => Location::There(key.clone()),
            RouteSeg::Remote | RouteSeg::Tag(_) | RouteSeg::Domain(_) => {
                Location::Nowhere(ReflectedCore::error(
                    StatusCode::NOT_FOUND,
                    format!("{point} is outside this cosmos, and this cosmos has no portals yet"),
                ))
            }
            RouteSeg::This => match self.inner.registry.record(point).await {
                Ok(record) => match &record.location {
                    Some(star) if *star == self.inner.key => Location::Here(Some(Box::new(record))),
                    Some(star) => Location::There(star.clone()),
                    None => Location::Nowhere(ReflectedCore::error(
                        StatusCode::UNAVAILABLE,
                        format!("{point} is not placed on a star yet"),
                    )),
                },
                Err(err) => Location::Nowhere(err.into()),
            },
        }
    }

    /// Runs a Ping addressed to something this star hosts.
    async fn process(&self, ping: &Ping, record: Option<Box<ParticleRecord>>) -> ReflectedCore {
        let point = &ping.to.point;
        match point.route() {
            // Boxed: commands are rare beside waves to particles, and their future is large;
            // inline it would make every wave's task as large (and copied as often).
            RouteSeg::Global if *point == Point::global_executor() => {
                Box::pin(executor::execute(self, ping)).await
            }
            RouteSeg::Global => ReflectedCore::error(
                StatusCode::NOT_FOUND,
                format!("there is no global service {point}"),
            ),
            RouteSeg::Local | RouteSeg::Star(_) => {
                if *point == Point::local_star() || point == self.point() {
                    Box::pin(self.answer_as_star(ping)).await
                } else {
                    ReflectedCore::error(StatusCode::NOT_FOUND, format!("no particle {point}"))
                }
            }
            _ => match record {
                Some(record) => self.inner.field.pass(self, ping, *record).await,
                None => ReflectedCore::error(StatusCode::NOT_FOUND, format!("no particle {point}")),
            },
        }
    }

    /// The star's own Core: infrastructure requests, for HyperUser only.
    async fn answer_as_star(&self, ping: &Ping) -> ReflectedCore {
        if ping.agent != Agent::HyperUser {
            return ReflectedCore::error(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may not send waves to star {}",
                    ping.agent, self.inner.key
                ),
            );
        }
        match (&ping.core.method, &ping.core.body) {
            (Method::Hyp(HypMethod::Assign), Substance::Point(point)) => {
                match self.assign(point).await {
                    Ok(status) => ReflectedCore::ok(Substance::Status(status)),
                    Err(err) => err.into(),
                }
            }
            (Method::Hyp(HypMethod::Delete), Substance::Point(point)) => {
                self.remove(point).await;
                ReflectedCore::ok(())
            }
            (Method::Cmd(CmdMethod::Bounce), _) => ReflectedCore::ok(()),
            (Method::Cmd(CmdMethod::Read), _) => ReflectedCore::ok(Substance::Text(format!(
                "{}: {} envelopes received, {} exchanges waiting, {} unsolicited reflections dropped",
                self.inner.key,
                self.received(),
                self.inner.shell.outstanding(),
                self.inner.shell.unsolicited()
            ))),
            (method, _) => ReflectedCore::error(
                StatusCode::NOT_FOUND,
                format!(
                    "star {} does not answer {method} with that body",
                    self.inner.key
                ),
            ),
        }
    }

    /// Brings a particle placed on this star to life with its driver, and records the status
    /// the driver reports (Init while it works).
    pub async fn assign(&self, point: &Point) -> Result<Status, RegistryError> {
        let registry = &self.inner.registry;
        let record: ParticleRecord = registry.record(point).await?;
        let Some(driver) = self.inner.drivers.get(&record.kind).cloned() else {
            let status = Status::Fatal(format!("no driver for {}", record.kind));
            registry.set_status(point, status.clone()).await?;
            return Ok(status);
        };
        registry.set_status(point, Status::Init).await?;
        let ctx = DriverCtx {
            registry: registry.clone(),
            star: self.clone(),
        };
        let status = match driver.init(&ctx, &record).await {
            Ok(status) => status,
            Err(err) => Status::Fatal(err.message),
        };
        registry.set_status(point, status.clone()).await?;
        Ok(status)
    }

    /// Lets the driver forget a particle that is being deleted.
    async fn remove(&self, point: &Point) {
        if let Ok(record) = self.inner.registry.record(point).await
            && let Some(driver) = self.inner.drivers.get(&record.kind).cloned()
        {
            driver.remove(&record).await;
        }
    }

    /// A Ping from this star's own point, acting as HyperUser (the infrastructure).
    pub fn infrastructure_ping(&self, to: Point, method: Method, body: Substance) -> Ping {
        let mut ping = Ping::new(Surface::core(self.point().clone()), to, method, body);
        ping.agent = Agent::HyperUser;
        ping
    }
}
