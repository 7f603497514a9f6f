//! A star's courier: the sending half of a star, and the [`Transmit`] that its Field, drivers,
//! lifecycle and guests get.
//!
//! It stamps ids on waves that have none, opens each Ping's exchange in the star's Shell (409
//! when its id is already in flight there), and routes waves: a target's placement comes from
//! the registry, and the envelope goes over the fabric to the star that hosts it (maybe this
//! one). Answers go back to the star that holds the exchange.
//!
//! A Ripple is resolved to its recipients here (a selector through the registry), grouped by
//! the star that hosts each, and sent as one envelope per star; its Echoes are collected in
//! the Shell by its bounce-back rule (`docs/decisions/ripples.md`).
//!
//! A wave it cannot send at all (no lease, an id in flight, no such target, the fabric
//! failed) ends here: a hop counted and told like a star's (see the star's module), of no
//! duration.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cosmic_space::{
    BounceBacks, Echo, Kind, Ping, Point, Pong, Recipients, ReflectedCore, Ripple, RouteSeg,
    Signal, StarKey, StatusCode, Surface, Wave, WaveKind,
};

use crate::fabric::{Envelope, Fabric};
use crate::membership::Gate;
use crate::metrics::Metrics;
use crate::registry::{ParticleRecord, Registry, RegistryError, RegistryResult};
use crate::shell::Shell;
use crate::transmit::Transmit;

use super::{Hop, finished};

/// The most recipients one Ripple may have: a selector matching more is refused (413) rather
/// than flooding the cosmos and the sender's Shell.
pub const MAX_RECIPIENTS: usize = 10_000;

/// Where a directed wave's target lives, seen from this star.
pub(super) enum Location {
    /// On this star (with its record, for a particle).
    Here(Option<Box<ParticleRecord>>),
    There(StarKey),
    Nowhere(ReflectedCore),
}

/// Sends and routes the waves of one star.
pub(super) struct Courier {
    pub(super) key: StarKey,
    pub(super) registry: Arc<dyn Registry>,
    pub(super) fabric: Arc<dyn Fabric>,
    pub(super) shell: Shell,
    /// Closed while the machine does not hold its lease: then it sends nothing either (work
    /// it had taken in before it was paused must not act on particles that have moved).
    pub(super) gate: Arc<Gate>,
    /// Where the star's hops are counted (the machine's metrics).
    pub(super) metrics: Arc<Metrics>,
}

#[async_trait]
impl Transmit for Courier {
    async fn ping(&self, mut ping: Ping) -> Pong {
        if ping.id.is_nil() {
            ping.id = crate::ids::wave_id();
        }
        if !self.gate.is_open() {
            let core = ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                format!(
                    "star {} sends nothing: its machine does not hold its lease",
                    self.key
                ),
            );
            self.unsent(WaveKind::Ping, Hop::of(&ping), core.status);
            return ping.pong(core);
        }
        let exchange = match self.shell.open(&ping) {
            Ok(exchange) => exchange,
            // Another Ping under this id is waiting on this star: it keeps its exchange.
            Err(in_flight) => {
                let core = ReflectedCore::from(in_flight);
                self.unsent(WaveKind::Ping, Hop::of(&ping), core.status);
                return ping.pong(core);
            }
        };
        let envelope = Envelope {
            from_star: self.key.clone(),
            wave: Wave::from(ping.clone()),
        };
        self.route(envelope, &ping).await;
        self.shell.wait(exchange).await
    }

    /// A signal that cannot be delivered is dropped: nobody waits for an answer.
    async fn signal(&self, mut signal: Signal) {
        if signal.id.is_nil() {
            signal.id = crate::ids::wave_id();
        }
        if !self.gate.is_open() {
            let hop = Hop::signalled(&signal);
            return self.unsent(WaveKind::Signal, hop, StatusCode::UNAVAILABLE);
        }
        let to = match self.host_of(&signal.to.point).await {
            Ok(to) => to,
            Err(core) => {
                return self.unsent(WaveKind::Signal, Hop::signalled(&signal), core.status);
            }
        };
        let id = signal.id;
        let envelope = Envelope {
            from_star: self.key.clone(),
            wave: Wave::from(signal),
        };
        if self.fabric.send(&to, envelope).await.is_err() {
            // The Signal went with the envelope: its line tells its id alone.
            let unavailable = StatusCode::UNAVAILABLE;
            self.metrics
                .wave(WaveKind::Signal, unavailable, Duration::ZERO);
            tracing::debug!(
                target: super::WAVE_TARGET,
                %id,
                kind = WaveKind::Signal.name(),
                status = unavailable.as_u16(),
                us = 0u64,
                "wave"
            );
        }
    }

    async fn ripple(&self, mut ripple: Ripple) -> Vec<Echo> {
        if ripple.id.is_nil() {
            ripple.id = crate::ids::wave_id();
        }
        if !self.gate.is_open() {
            let core = ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                format!(
                    "star {} sends nothing: its machine does not hold its lease",
                    self.key
                ),
            );
            return self.refused(&ripple, core);
        }
        let recipients = match self.recipients(&ripple).await {
            Ok(recipients) => recipients,
            Err(core) => return self.refused(&ripple, core),
        };
        if ripple.bounce_backs == BounceBacks::None {
            self.spread(&ripple, recipients).await;
            return Vec::new();
        }
        let exchange = match self.shell.open_ripple(&ripple, recipients.len()) {
            Ok(exchange) => exchange,
            // Another Ripple under this id is collecting on this star: it keeps its Echoes.
            Err(in_flight) => return self.refused(&ripple, in_flight.into()),
        };
        self.spread(&ripple, recipients).await;
        self.shell.collect(exchange).await
    }
}

impl Courier {
    /// The answer to a Ripple the infrastructure refuses as a whole (one hop, to its whole
    /// recipient set): one error Echo from its own sender (none when it asked for none).
    fn refused(&self, ripple: &Ripple, core: ReflectedCore) -> Vec<Echo> {
        self.unsent(WaveKind::Ripple, Hop::ripple(ripple), core.status);
        if ripple.bounce_backs == BounceBacks::None {
            return Vec::new();
        }
        let mut echo = ripple.echo(ripple.from.clone(), core);
        echo.id = crate::ids::wave_id();
        vec![echo]
    }

    /// A wave of `kind` this star could not send ended here with `status` (see the module).
    fn unsent(&self, kind: WaveKind, hop: Hop<'_>, status: StatusCode) {
        finished(&self.metrics, kind, hop, status, Duration::ZERO);
    }

    /// Routes an envelope carrying `ping` to the star that hosts its target (maybe this one),
    /// or answers it at once when it cannot be delivered.
    async fn route(&self, envelope: Envelope, ping: &Ping) {
        let to = match self.host_of(&ping.to.point).await {
            Ok(star) => star,
            Err(core) => {
                self.unsent(WaveKind::Ping, Hop::of(ping), core.status);
                self.reflect(&envelope.from_star, ping, core).await;
                return;
            }
        };
        if let Err(err) = self.fabric.send(&to, envelope).await {
            let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
            self.unsent(WaveKind::Ping, Hop::of(ping), core.status);
            self.reflect(&self.key, ping, core).await;
        }
    }

    /// The surfaces a Ripple goes to: its list (each once, in order), or what its selector
    /// matches now. `Watchers` and `Stars` are not a sender's to use: nobody.
    ///
    /// # Errors
    /// The reflection that refuses the whole Ripple: the registry failed to select, or there
    /// are more than [`MAX_RECIPIENTS`].
    async fn recipients(&self, ripple: &Ripple) -> Result<Vec<Surface>, ReflectedCore> {
        let recipients = match &ripple.to {
            Recipients::Single(surface) => vec![surface.clone()],
            Recipients::Multi(surfaces) => {
                let mut seen = std::collections::HashSet::with_capacity(surfaces.len());
                surfaces
                    .iter()
                    .filter(|surface| seen.insert(*surface))
                    .cloned()
                    .collect()
            }
            Recipients::Select(selector) => self
                .registry
                .select(selector)
                .await
                .map_err(ReflectedCore::from)?
                .into_iter()
                .map(|stub| Surface::core(stub.point))
                .collect(),
            Recipients::Watchers(_) | Recipients::Stars => Vec::new(),
        };
        if recipients.len() > MAX_RECIPIENTS {
            return Err(ReflectedCore::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{} reaches {} recipients; a Ripple may have at most {MAX_RECIPIENTS}",
                    ripple.to,
                    recipients.len()
                ),
            ));
        }
        Ok(recipients)
    }

    /// Sends `ripple` to `recipients`: one envelope per star that hosts some of them, carrying
    /// the Ripple addressed to those (`Recipients::Multi`). A recipient that cannot be located,
    /// or whose star the fabric cannot reach, is answered here with an error Echo, so that a
    /// Ripple waiting for every Echo still completes.
    async fn spread(&self, ripple: &Ripple, recipients: Vec<Surface>) {
        let mut stars: Vec<(StarKey, Vec<Surface>)> = Vec::new();
        for recipient in recipients {
            match self.host_of(&recipient.point).await {
                Ok(star) => match stars.iter_mut().find(|(key, _)| *key == star) {
                    Some((_, group)) => group.push(recipient),
                    None => stars.push((star, vec![recipient])),
                },
                Err(core) => self.echo_here(ripple, recipient, core),
            }
        }
        for (star, group) in stars {
            let mut wave = ripple.clone();
            wave.to = Recipients::Multi(group.clone());
            let envelope = Envelope {
                from_star: self.key.clone(),
                wave: Wave::from(wave),
            };
            if let Err(err) = self.fabric.send(&star, envelope).await {
                for recipient in group {
                    let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
                    self.echo_here(ripple, recipient, core);
                }
            }
        }
    }

    /// Answers `recipient` of `ripple` on the sender's own star (it could not be reached):
    /// its Echo goes straight to the Ripple's exchange. Nothing when no Echo is wanted.
    fn echo_here(&self, ripple: &Ripple, recipient: Surface, core: ReflectedCore) {
        let hop = Hop::rippled(ripple, &recipient);
        self.unsent(WaveKind::Ripple, hop, core.status);
        if ripple.bounce_backs == BounceBacks::None {
            return;
        }
        let mut echo = ripple.echo(recipient, core);
        echo.id = crate::ids::wave_id();
        self.shell.deliver_echo(echo);
    }

    /// Sends the Echo with which `recipient` answers `ripple` back to the star that collects
    /// them (none when the Ripple wants none).
    pub(super) async fn echo(
        &self,
        to_star: &StarKey,
        ripple: &Ripple,
        recipient: Surface,
        core: ReflectedCore,
    ) {
        if ripple.bounce_backs == BounceBacks::None {
            return;
        }
        let mut echo = ripple.echo(recipient, core);
        echo.id = crate::ids::wave_id();
        let envelope = Envelope {
            from_star: self.key.clone(),
            wave: Wave::from(echo),
        };
        if self.fabric.send(to_star, envelope).await.is_err() {
            // The sender's star is gone, and its exchange with it: nobody is collecting.
            self.shell.drop_unsolicited();
        }
    }

    /// Sends the answer to `ping` back to the star that holds its exchange.
    pub(super) async fn reflect(&self, to_star: &StarKey, ping: &Ping, core: ReflectedCore) {
        let mut pong = ping.pong(core);
        pong.id = crate::ids::wave_id();
        let envelope = Envelope {
            from_star: self.key.clone(),
            wave: Wave::from(pong),
        };
        if self.fabric.send(to_star, envelope).await.is_err() {
            // The sender's star is gone, and its exchange with it: nobody is waiting.
            self.shell.drop_unsolicited();
        }
    }

    /// The star that hosts `point`, asking the registry only for its placement.
    async fn host_of(&self, point: &Point) -> Result<StarKey, ReflectedCore> {
        match point.route() {
            RouteSeg::This => {
                let placed = self.registry.location(point).await;
                if matches!(placed, Ok(None) | Err(RegistryError::NotFound(_)))
                    && let Some(store) = self.file_store_of(point).await
                {
                    return match store {
                        Ok(store) => placed_on(&store).map_err(|core| *core),
                        Err(err) => Err(err.into()),
                    };
                }
                match placed {
                    Ok(Some(star)) => Ok(star),
                    Ok(None) => Err(not_placed(point)),
                    Err(err) => Err(err.into()),
                }
            }
            _ => match self.locate(point).await {
                Location::Here(_) => Ok(self.key.clone()),
                Location::There(star) => Ok(star),
                Location::Nowhere(core) => Err(core),
            },
        }
    }

    /// The `FileStore` whose file system holds `point`, if it is in one: files are not placed
    /// on stars of their own (unless created by command) but live with their store, so that a
    /// file that does not exist yet can be written through it (SPEC §17.2).
    async fn file_store_of(&self, point: &Point) -> Option<RegistryResult<ParticleRecord>> {
        let owner = point.filesystem_owner()?;
        match self.registry.record(&owner).await {
            Ok(store) if store.kind == Kind::FileStore => Some(Ok(store)),
            Ok(_) | Err(RegistryError::NotFound(_)) => None,
            Err(err) => Some(Err(err)),
        }
    }

    /// Where a point inside a file store lives: on its store's star, with its own record if
    /// it is registered, else the record of its nearest registered directory (or the store),
    /// which answers for it (a `PUT` creates it; anything else finds nothing).
    async fn in_file_store(
        &self,
        point: &Point,
        store: ParticleRecord,
        own: Option<ParticleRecord>,
    ) -> Location {
        let star = match placed_on(&store) {
            Ok(star) => star,
            Err(core) => return Location::Nowhere(*core),
        };
        if star != self.key {
            return Location::There(star);
        }
        if let Some(own) = own {
            return Location::Here(Some(Box::new(own)));
        }
        let above: Vec<Point> = point
            .ancestors()
            .filter(|ancestor| ancestor.is_within(&store.point) && *ancestor != store.point)
            .collect();
        for ancestor in above.iter().rev() {
            match self.registry.record(ancestor).await {
                Ok(record) => return Location::Here(Some(Box::new(record))),
                Err(RegistryError::NotFound(_)) => continue,
                Err(err) => return Location::Nowhere(err.into()),
            }
        }
        Location::Here(Some(Box::new(store)))
    }

    /// Where `point` lives: on this star (with its record), on another, or nowhere.
    pub(super) async fn locate(&self, point: &Point) -> Location {
        match point.route() {
            RouteSeg::Global | RouteSeg::Local => Location::Here(None),
            RouteSeg::Star(key) if *key == self.key => Location::Here(None),
            RouteSeg::Star(key) => Location::There(key.clone()),
            RouteSeg::Remote | RouteSeg::Tag(_) | RouteSeg::Domain(_) => {
                Location::Nowhere(ReflectedCore::error(
                    StatusCode::NOT_FOUND,
                    format!("{point} is outside this cosmos, and this cosmos has no portals yet"),
                ))
            }
            RouteSeg::This => match self.registry.record(point).await {
                Ok(record) if record.location.is_none() && point.is_filesystem() => {
                    match self.file_store_of(point).await {
                        Some(Ok(store)) => self.in_file_store(point, store, Some(record)).await,
                        Some(Err(err)) => Location::Nowhere(err.into()),
                        None => Location::Nowhere(not_placed(point)),
                    }
                }
                Err(RegistryError::NotFound(missing)) if point.is_filesystem() => {
                    match self.file_store_of(point).await {
                        Some(Ok(store)) => self.in_file_store(point, store, None).await,
                        Some(Err(err)) => Location::Nowhere(err.into()),
                        None => Location::Nowhere(RegistryError::NotFound(missing).into()),
                    }
                }
                Ok(record) => match &record.location {
                    Some(star) if *star == self.key => Location::Here(Some(Box::new(record))),
                    Some(star) => Location::There(star.clone()),
                    None => Location::Nowhere(not_placed(point)),
                },
                Err(err) => Location::Nowhere(err.into()),
            },
        }
    }
}

/// 503: `point` has no star yet (it is being created, or its star is being replaced).
fn not_placed(point: &Point) -> ReflectedCore {
    ReflectedCore::error(
        StatusCode::UNAVAILABLE,
        format!("{point} is not placed on a star yet"),
    )
}

/// The star `record` is placed on, or 503.
fn placed_on(record: &ParticleRecord) -> Result<StarKey, Box<ReflectedCore>> {
    record
        .location
        .clone()
        .ok_or_else(|| Box::new(not_placed(&record.point)))
}
