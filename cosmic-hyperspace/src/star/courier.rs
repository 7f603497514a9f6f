//! A star's courier: the sending half of a star, and the [`Transmit`] that its Field, drivers,
//! lifecycle and guests get.
//!
//! It stamps ids on waves that have none, opens each Ping's exchange in the star's Shell (409
//! when its id is already in flight there), and routes waves: a target's placement comes from
//! the registry, and the envelope goes over the fabric to the star that hosts it (maybe this
//! one). Answers go back to the star that holds the exchange.

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{Ping, Point, Pong, ReflectedCore, RouteSeg, Signal, StarKey, StatusCode, Wave};

use crate::fabric::{Envelope, Fabric};
use crate::membership::Gate;
use crate::registry::{ParticleRecord, Registry};
use crate::shell::Shell;
use crate::transmit::Transmit;

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
}

#[async_trait]
impl Transmit for Courier {
    async fn ping(&self, mut ping: Ping) -> Pong {
        if ping.id.is_nil() {
            ping.id = crate::ids::wave_id();
        }
        if !self.gate.is_open() {
            return ping.pong(ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                format!(
                    "star {} sends nothing: its machine does not hold its lease",
                    self.key
                ),
            ));
        }
        let exchange = match self.shell.open(&ping) {
            Ok(exchange) => exchange,
            // Another Ping under this id is waiting on this star: it keeps its exchange.
            Err(in_flight) => return ping.pong(in_flight.into()),
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
            return;
        }
        let Ok(to) = self.host_of(&signal.to.point).await else {
            return;
        };
        let envelope = Envelope {
            from_star: self.key.clone(),
            wave: Wave::from(signal),
        };
        let _ = self.fabric.send(&to, envelope).await;
    }
}

impl Courier {
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
        if let Err(err) = self.fabric.send(&to, envelope).await {
            let core = ReflectedCore::error(StatusCode::UNAVAILABLE, err.to_string());
            self.reflect(&self.key, ping, core).await;
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
            RouteSeg::This => match self.registry.location(point).await {
                Ok(Some(star)) => Ok(star),
                Ok(None) => Err(ReflectedCore::error(
                    StatusCode::UNAVAILABLE,
                    format!("{point} is not placed on a star yet"),
                )),
                Err(err) => Err(err.into()),
            },
            _ => match self.locate(point).await {
                Location::Here(_) => Ok(self.key.clone()),
                Location::There(star) => Ok(star),
                Location::Nowhere(core) => Err(core),
            },
        }
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
                Ok(record) => match &record.location {
                    Some(star) if *star == self.key => Location::Here(Some(Box::new(record))),
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
}
