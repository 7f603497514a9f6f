//! Stars: the shards of a cosmos (SPEC §0, §14).
//!
//! A star receives envelopes from the fabric. Reflections go to its [`Shell`], which hands them
//! to the exchange waiting for them. A directed wave is routed: if the registry places its
//! target on another star, the wave goes there; if here, it runs through the layers — Field
//! (security, bind), Shell, Core (the driver) — in a task of its own, and the answer goes back
//! to the star that sent it. `GLOBAL::` services (the executor) run on every star; the star's
//! own point (`<<STAR::…>>::star`, or `LOCAL::star`) answers the infrastructure's `Hyp<…>`
//! waves, such as assigning a particle to it.
//!
//! Every directed wave a star finishes handling — answered, run for its effect, or refused —
//! is one hop: counted in the machine's metrics (kind, status, duration) and told at `debug`
//! under the target [`WAVE_TARGET`] (id, kind, agent, from, to, method, status, µs), before
//! its answer leaves, so whoever has the answer finds the hop counted. A wave passed on to
//! another star is that star's hop; one the sending star's courier cannot send at all (no
//! such particle, no lease, the fabric failed) ends there, a hop of no duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cosmic_space::{
    Agent, CmdMethod, DirectedWave, Echo, HypMethod, Method, Ping, Point, Pong, Recipients,
    ReflectedCore, ReflectedWave, Ripple, RouteSeg, Signal, StarKey, StatusCode, Substance,
    Surface, Wave, WaveId, WaveKind,
};

use crate::channel::{self, Hub};
use crate::driver::Drivers;
use crate::executor;
use crate::fabric::{Envelope, Fabric, Inbox};
use crate::field::Field;
use crate::lifecycle::{self, Lifecycle};
use crate::membership::Gate;
use crate::metrics::{Metrics, NotStarted};
use crate::registry::{CachedRegistry, ParticleRecord, Registry};
use crate::shell::Shell;
use crate::transmit::Transmit;

mod courier;

use courier::{Courier, Location};

/// How many times a wave may be handed from star to star before it is refused (a loop guard).
pub const MAX_HOPS: u16 = 32;

/// How many directed waves a star runs at once unless told otherwise
/// ([`StarHandle::set_capacity`]); one more is answered 503 at once.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The `tracing` target of the line each wave hop is told in, at `debug`: off by default
/// (`STARLANE_LOG=info`), on with `STARLANE_LOG=info,starlane::wave=debug`.
pub const WAVE_TARGET: &str = "starlane::wave";

/// A cheap, cloneable handle to a running star.
#[derive(Clone)]
pub struct StarHandle {
    inner: Arc<StarInner>,
}

struct StarInner {
    point: Point,
    /// The sending half, shared as the [`Transmit`] of everything on this star.
    courier: Arc<Courier>,
    /// `courier`, as the narrow handle the Field, drivers and guests get.
    transmit: Arc<dyn Transmit>,
    field: Field,
    lifecycle: Arc<Lifecycle>,
    /// This machine's channels: publications other machines send here go to it.
    hub: Arc<Hub>,
    received: AtomicU64,
    /// Directed waves being run now, and how many may be.
    in_flight: AtomicUsize,
    capacity: AtomicUsize,
    /// Directed waves refused because the star was full, and those whose wait time had passed
    /// before they could start.
    refused: AtomicU64,
    expired: AtomicU64,
}

/// What a star has refused so far (SPEC §19: every queue bounded, full means 503 at once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Directed waves running now.
    pub in_flight: usize,
    /// Refused at once because the star was full.
    pub refused: u64,
    /// Not started because their wait time had passed before they could.
    pub expired: u64,
}

/// A directed wave admitted to run on a star: holds one of its places until dropped.
struct Admitted(Arc<StarInner>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[async_trait::async_trait]
impl channel::Host for StarInner {
    async fn deliver(&self, signal: Signal, record: ParticleRecord) {
        self.field.deliver(&self.transmit, signal, record).await;
    }
}

impl std::fmt::Debug for StarHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Star")
            .field("key", &self.inner.courier.key)
            .finish()
    }
}

impl Inbox for StarHandle {
    fn deliver(&self, envelope: Envelope) {
        self.inner.received.fetch_add(1, Ordering::Relaxed);
        match envelope.wave {
            Wave::Reflected(ReflectedWave::Pong(pong)) => {
                self.inner.courier.shell.deliver(pong);
            }
            Wave::Reflected(ReflectedWave::Echo(echo)) => {
                // To the Ripple collecting it, or dropped and counted when nobody is.
                self.inner.courier.shell.deliver_echo(echo);
            }
            // A publication from another machine: its hub takes it in order (not in a task
            // of its own, which could overtake the next one).
            Wave::Directed(DirectedWave::Ripple(ripple))
                if matches!(ripple.to, Recipients::Watchers(_)) =>
            {
                self.inner.hub.arrived(ripple);
            }
            Wave::Directed(directed) => {
                let from_star = envelope.from_star;
                let Some(admitted) = self.admit() else {
                    self.refuse(from_star, directed);
                    return;
                };
                let star = self.clone();
                let arrived = Instant::now();
                // Boxed: the future of a wave's whole handling is kilobytes, and a task copies
                // its future when it is spawned and again as it finishes; a box is copied as
                // a pointer.
                tokio::spawn(Box::pin(async move {
                    let _admitted = admitted;
                    // Its sender stops waiting after its wait time: a wave that could not
                    // start by then is not started at all.
                    if arrived.elapsed() >= directed.handling().wait.as_duration() {
                        star.inner.expired.fetch_add(1, Ordering::Relaxed);
                        star.inner.courier.metrics.not_started(NotStarted::Expired);
                        return;
                    }
                    star.receive(from_star, directed).await;
                }));
            }
        }
    }

    fn undeliverable(&self, wave: WaveId, why: String) {
        let core = ReflectedCore::error(StatusCode::UNAVAILABLE, why);
        self.inner.courier.shell.fail(wave, core);
    }
}

impl StarHandle {
    /// A star that will receive what the fabric delivers to its inbox (see [`Inbox`]): its
    /// particles live in the registry behind `cached` (whose caches it shares with the other
    /// stars of its machine), it serves and sends only while `gate` is open (always, alone;
    /// while its machine's lease holds, in a cluster), its waves travel on `fabric`, its
    /// particles' Cores are `drivers`, its hops are counted in `metrics`.
    pub fn new(
        key: StarKey,
        cached: &Arc<CachedRegistry>,
        fabric: Arc<dyn Fabric>,
        drivers: Drivers,
        gate: Arc<Gate>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> StarHandle {
        let point = key.point();
        let registry: Arc<dyn Registry> = cached.clone();
        let courier = Arc::new(Courier {
            key,
            registry: registry.clone(),
            fabric: fabric.clone(),
            shell: Shell::new(),
            gate,
            metrics,
        });
        let transmit: Arc<dyn Transmit> = courier.clone();
        let lifecycle = Arc::new(Lifecycle::new(
            registry.clone(),
            fabric,
            transmit.clone(),
            point.clone(),
        ));
        let inner = Arc::new(StarInner {
            point,
            courier,
            transmit,
            field: Field::new(registry, cached.changes(), drivers),
            lifecycle,
            hub: hub.clone(),
            received: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            capacity: AtomicUsize::new(DEFAULT_CAPACITY),
            refused: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        });
        let host: Arc<dyn channel::Host> = inner.clone();
        hub.attach(inner.courier.key.clone(), Arc::downgrade(&host));
        StarHandle { inner }
    }

    /// The star's key.
    pub fn key(&self) -> &StarKey {
        &self.inner.courier.key
    }

    /// The star's own point, `<<STAR::…>>::star`.
    pub fn point(&self) -> &Point {
        &self.inner.point
    }

    /// The registry of the cosmos.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.inner.courier.registry
    }

    /// The drivers this star runs particles with.
    pub fn drivers(&self) -> &Drivers {
        self.inner.field.drivers()
    }

    /// Places, starts and forgets particles, asking from this star.
    pub fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.inner.lifecycle
    }

    /// The star's Shell (exchange counts).
    pub fn shell(&self) -> &Shell {
        &self.inner.courier.shell
    }

    /// How many envelopes the star has received.
    pub fn received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
    }

    /// Lets at most `capacity` directed waves run on this star at once (at least one); one
    /// more is answered 503 at once.
    pub fn set_capacity(&self, capacity: usize) {
        self.inner
            .capacity
            .store(capacity.max(1), Ordering::Relaxed);
    }

    /// The waves running now, and those refused or not started so far.
    pub fn pressure(&self) -> Pressure {
        Pressure {
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            refused: self.inner.refused.load(Ordering::Relaxed),
            expired: self.inner.expired.load(Ordering::Relaxed),
        }
    }

    /// A place for one more directed wave, if the star has one.
    fn admit(&self) -> Option<Admitted> {
        let running = self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(self.inner.clone());
        if running >= self.inner.capacity.load(Ordering::Relaxed) {
            drop(admitted);
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            self.inner.courier.metrics.not_started(NotStarted::Full);
            return None;
        }
        Some(admitted)
    }

    /// Answers a directed wave the star has no place for: 503 at once (a Signal is dropped,
    /// as nobody waits for it).
    fn refuse(&self, from_star: StarKey, directed: DirectedWave) {
        let why = || {
            ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                format!(
                    "star {} is full: {} waves are running on it",
                    self.key(),
                    self.inner.capacity.load(Ordering::Relaxed)
                ),
            )
        };
        let star = self.clone();
        match directed {
            DirectedWave::Ping(ping) => {
                let core = why();
                tokio::spawn(async move {
                    star.inner.courier.reflect(&from_star, &ping, core).await;
                });
            }
            DirectedWave::Ripple(ripple) => {
                let recipients = match &ripple.to {
                    Recipients::Single(recipient) => vec![recipient.clone()],
                    Recipients::Multi(recipients) => recipients.clone(),
                    Recipients::Watchers(_) | Recipients::Stars | Recipients::Select(_) => {
                        return;
                    }
                };
                let core = why();
                tokio::spawn(async move {
                    for recipient in recipients {
                        let courier = &star.inner.courier;
                        courier
                            .echo(&from_star, &ripple, recipient, core.clone())
                            .await;
                    }
                });
            }
            DirectedWave::Signal(_) => {}
        }
    }

    /// Sends `ping` from this star and waits for its Pong (see [`Transmit::ping`]).
    pub async fn ping(&self, ping: Ping) -> Pong {
        self.inner.courier.ping(ping).await
    }

    /// Sends `signal` from this star (see [`Transmit::signal`]).
    pub async fn signal(&self, signal: Signal) {
        self.inner.courier.signal(signal).await;
    }

    async fn receive(&self, from_star: StarKey, directed: DirectedWave) {
        let started = Instant::now();
        if !self.inner.courier.gate.is_open() {
            // Fenced: this machine may have been declared dead and its particles placed
            // elsewhere, so it serves nothing until it holds a lease again.
            let fenced = StatusCode::UNAVAILABLE;
            match directed {
                DirectedWave::Ping(ping) => {
                    let core = ReflectedCore::error(
                        fenced,
                        format!(
                            "star {} is not serving: its machine does not hold its lease",
                            self.key()
                        ),
                    );
                    self.pinged(&ping, fenced, started);
                    self.inner.courier.reflect(&from_star, &ping, core).await;
                }
                DirectedWave::Signal(signal) => {
                    let hop = Hop::signalled(&signal);
                    self.finished(WaveKind::Signal, hop, fenced, started);
                }
                DirectedWave::Ripple(ripple) => {
                    let hop = Hop::ripple(&ripple);
                    self.finished(WaveKind::Ripple, hop, fenced, started);
                }
            }
            return;
        }
        match directed {
            DirectedWave::Ping(ping) => match self.inner.courier.locate(&ping.to.point).await {
                Location::Here(record) => {
                    let core = self.process(&ping, record).await;
                    self.pinged(&ping, core.status, started);
                    self.inner.courier.reflect(&from_star, &ping, core).await;
                }
                Location::There(star) if ping.hops < MAX_HOPS => {
                    let mut ping = ping;
                    ping.hops += 1;
                    let envelope = Envelope {
                        from_star: from_star.clone(),
                        wave: Wave::from(ping.clone()),
                    };
                    if let Err(err) = self.inner.courier.fabric.send(&star, envelope).await {
                        let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
                        self.pinged(&ping, core.status, started);
                        self.inner.courier.reflect(&from_star, &ping, core).await;
                    }
                }
                Location::There(_) => {
                    let core = ReflectedCore::error(
                        StatusCode::ERROR,
                        format!("{} travelled more than {MAX_HOPS} hops", ping.to),
                    );
                    self.pinged(&ping, core.status, started);
                    self.inner.courier.reflect(&from_star, &ping, core).await;
                }
                Location::Nowhere(core) => {
                    self.pinged(&ping, core.status, started);
                    self.inner.courier.reflect(&from_star, &ping, core).await
                }
            },
            DirectedWave::Signal(signal) => {
                // Signals are never answered: run them for their effect, drop what they return.
                let ping = signal.into_ping();
                let status = match self.inner.courier.locate(&ping.to.point).await {
                    Location::Here(record) => self.process(&ping, record).await.status,
                    Location::Nowhere(core) => core.status,
                    // Placed on another star since it was sent: dropped, as it always was.
                    Location::There(_) => StatusCode::UNAVAILABLE,
                };
                let hop = Hop::of(&ping);
                self.finished(WaveKind::Signal, hop, status, started);
            }
            // A channel's delivery (`Watchers`) is routed before `receive`; `Stars` and
            // `Select` are resolved by the sender's star, so neither arrives here from it.
            DirectedWave::Ripple(ripple) => match &ripple.to {
                Recipients::Single(_) | Recipients::Multi(_) => {
                    self.receive_ripple(from_star, Arc::new(ripple), started)
                        .await;
                }
                Recipients::Watchers(_) | Recipients::Stars | Recipients::Select(_) => {}
            },
        }
    }

    /// Sends `ripple` from this star and collects its Echoes (see [`Transmit::ripple`]).
    pub async fn ripple(&self, ripple: Ripple) -> Vec<Echo> {
        self.inner.courier.ripple(ripple).await
    }

    /// Delivers a Ripple to each of its recipients this star hosts, each in a task of its
    /// own (a slow recipient holds up no other), and sends their Echoes to `from_star`. A
    /// recipient that has moved to another star is passed on there (one envelope per star,
    /// as the sender does); one that is nowhere is answered with the error. Each recipient
    /// answered here is a hop, timed from `started`, when the Ripple arrived.
    async fn receive_ripple(&self, from_star: StarKey, ripple: Arc<Ripple>, started: Instant) {
        let recipients = match &ripple.to {
            Recipients::Single(recipient) => vec![recipient.clone()],
            Recipients::Multi(recipients) => recipients.clone(),
            Recipients::Watchers(_) | Recipients::Stars | Recipients::Select(_) => return,
        };
        let courier = &self.inner.courier;
        let mut elsewhere: Vec<(StarKey, Vec<Surface>)> = Vec::new();
        for recipient in recipients {
            match courier.locate(&recipient.point).await {
                Location::Here(record) => {
                    let (star, from_star, ripple) =
                        (self.clone(), from_star.clone(), ripple.clone());
                    tokio::spawn(Box::pin(async move {
                        let core = star.answer_ripple(&ripple, &recipient, record).await;
                        star.rippled(&ripple, &recipient, core.status, started);
                        star.inner
                            .courier
                            .echo(&from_star, &ripple, recipient, core)
                            .await;
                    }));
                }
                Location::There(star) if ripple.hops < MAX_HOPS => {
                    match elsewhere.iter_mut().find(|(key, _)| *key == star) {
                        Some((_, group)) => group.push(recipient),
                        None => elsewhere.push((star, vec![recipient])),
                    }
                }
                Location::There(_) => {
                    let core = ReflectedCore::error(
                        StatusCode::ERROR,
                        format!("{recipient} travelled more than {MAX_HOPS} hops"),
                    );
                    self.rippled(&ripple, &recipient, core.status, started);
                    courier.echo(&from_star, &ripple, recipient, core).await;
                }
                Location::Nowhere(core) => {
                    self.rippled(&ripple, &recipient, core.status, started);
                    courier.echo(&from_star, &ripple, recipient, core).await;
                }
            }
        }
        for (star, group) in elsewhere {
            let mut passed = Ripple::clone(&ripple);
            passed.to = Recipients::Multi(group.clone());
            passed.hops += 1;
            let envelope = Envelope {
                from_star: from_star.clone(),
                wave: Wave::from(passed),
            };
            if let Err(err) = courier.fabric.send(&star, envelope).await {
                for recipient in group {
                    let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
                    self.rippled(&ripple, &recipient, core.status, started);
                    courier.echo(&from_star, &ripple, recipient, core).await;
                }
            }
        }
    }

    /// A Ping's hop finished here with `status` (see [`finished`]).
    fn pinged(&self, ping: &Ping, status: StatusCode, started: Instant) {
        self.finished(WaveKind::Ping, Hop::of(ping), status, started);
    }

    /// `recipient`'s hop of `ripple` finished here with `status`.
    fn rippled(&self, ripple: &Ripple, recipient: &Surface, status: StatusCode, started: Instant) {
        let hop = Hop::rippled(ripple, recipient);
        self.finished(WaveKind::Ripple, hop, status, started);
    }

    /// A hop that started at `started` finished here (see [`finished`]).
    fn finished(&self, kind: WaveKind, hop: Hop<'_>, status: StatusCode, started: Instant) {
        let metrics = &self.inner.courier.metrics;
        finished(metrics, kind, hop, status, started.elapsed());
    }

    /// How `recipient`, hosted here, answers `ripple`: the Ripple runs like a Ping from its
    /// sender, as its agent, through the Field (so `x` and the wave's effect are checked for
    /// that recipient: one the agent may not reach answers 403) and the recipient's bind,
    /// and its driver is told that the Ping stands for this Ripple (a mechtron's guest gets
    /// the Ripple itself).
    async fn answer_ripple(
        &self,
        ripple: &Ripple,
        recipient: &Surface,
        record: Option<Box<ParticleRecord>>,
    ) -> ReflectedCore {
        let ping = ripple.ping_for(recipient.clone());
        let delivered = ripple.to_recipient(recipient.clone());
        crate::driver::delivering_ripple(delivered, self.process(&ping, record)).await
    }

    /// Runs a Ping addressed to something this star hosts.
    async fn process(&self, ping: &Ping, record: Option<Box<ParticleRecord>>) -> ReflectedCore {
        let point = &ping.to.point;
        match point.route() {
            // Boxed: commands are rare beside waves to particles, and their future is large;
            // inline it would make every wave's task as large (and copied as often).
            RouteSeg::Global if *point == Point::global_executor() => {
                Box::pin(executor::execute(&self.inner.lifecycle, ping)).await
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
                Some(record) => {
                    self.inner
                        .field
                        .pass(&self.inner.transmit, ping, *record)
                        .await
                }
                None => ReflectedCore::error(StatusCode::NOT_FOUND, format!("no particle {point}")),
            },
        }
    }

    /// The star's own Core: infrastructure requests, for HyperUser only.
    async fn answer_as_star(&self, ping: &Ping) -> ReflectedCore {
        if ping.agent != Agent::HyperUser {
            return ReflectedCore::error(
                StatusCode::FORBIDDEN,
                format!("{} may not send waves to star {}", ping.agent, self.key()),
            );
        }
        match (&ping.core.method, &ping.core.body) {
            (Method::Hyp(HypMethod::Assign), Substance::Point(point)) => {
                match lifecycle::init(self.registry(), self.drivers(), &self.inner.transmit, point)
                    .await
                {
                    Ok(status) => ReflectedCore::ok(Substance::Status(status)),
                    Err(err) => err.into(),
                }
            }
            (Method::Hyp(HypMethod::Delete), Substance::Point(point)) => {
                lifecycle::remove(self.registry(), self.drivers(), point).await;
                ReflectedCore::ok(())
            }
            (Method::Cmd(CmdMethod::Bounce), _) => ReflectedCore::ok(()),
            (Method::Cmd(CmdMethod::Read), _) => {
                let pressure = self.pressure();
                ReflectedCore::ok(Substance::Text(format!(
                    "{}: {} envelopes received, {} exchanges waiting, {} unsolicited reflections \
                     dropped, {} waves running, {} refused when full, {} not started in time",
                    self.key(),
                    self.received(),
                    self.shell().outstanding(),
                    self.shell().unsolicited(),
                    pressure.in_flight,
                    pressure.refused,
                    pressure.expired
                )))
            }
            (method, _) => ReflectedCore::error(
                StatusCode::NOT_FOUND,
                format!(
                    "star {} does not answer {method} with that body",
                    self.key()
                ),
            ),
        }
    }
}

/// A hop of `kind` ended with `status` after `elapsed`: counted in `metrics` and told at
/// `debug` under [`WAVE_TARGET`]. Off (the default), the line costs a check of the level: no
/// field is formatted, nothing is allocated.
fn finished(
    metrics: &Metrics,
    kind: WaveKind,
    hop: Hop<'_>,
    status: StatusCode,
    elapsed: Duration,
) {
    metrics.wave(kind, status, elapsed);
    tracing::debug!(
        target: WAVE_TARGET,
        id = %hop.id,
        kind = kind.name(),
        agent = %hop.agent,
        from = %hop.from,
        to = %hop.to,
        method = %hop.method,
        status = status.as_u16(),
        us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "wave"
    );
}

/// What the line of a hop tells of its wave.
struct Hop<'a> {
    id: &'a WaveId,
    agent: &'a Agent,
    from: &'a Surface,
    /// A surface; a Ripple refused as a whole, its recipients.
    to: &'a dyn std::fmt::Display,
    method: &'a Method,
}

/// The [`Hop`] of a Ping, a Signal, or a Ripple as a whole (to its recipients).
macro_rules! hop {
    ($wave:expr) => {
        Hop {
            id: &$wave.id,
            agent: &$wave.agent,
            from: &$wave.from,
            to: &$wave.to,
            method: &$wave.core.method,
        }
    };
}

impl<'a> Hop<'a> {
    /// A Ping's (or a Signal's, as the Ping it runs as).
    fn of(ping: &'a Ping) -> Hop<'a> {
        hop!(ping)
    }

    /// A Signal's.
    fn signalled(signal: &'a Signal) -> Hop<'a> {
        hop!(signal)
    }

    /// A Ripple's as a whole (to its recipients).
    fn ripple(ripple: &'a Ripple) -> Hop<'a> {
        hop!(ripple)
    }

    /// One recipient's of a Ripple.
    fn rippled(ripple: &'a Ripple, recipient: &'a Surface) -> Hop<'a> {
        Hop {
            to: recipient,
            ..hop!(ripple)
        }
    }
}
