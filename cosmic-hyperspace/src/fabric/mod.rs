//! The fabric: how stars exchange waves (SPEC §14).
//!
//! Stars never share memory with each other; everything one star tells another goes through
//! [`Fabric::send`] as an [`Envelope`]. [`LocalFabric`] connects the stars of one machine with
//! in-process calls; [`NatsFabric`] connects machines, carrying envelopes as `wire` frames on
//! one subject per star (and keeps the calls between stars of one machine in-process).

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{StarKey, Wave, WaveId};
use serde::{Deserialize, Serialize};

use crate::registry::ChangeFeed;

mod local;
mod nats;

pub use local::LocalFabric;
pub use nats::{CHUNK_PATIENCE, NatsFabric, NatsSettings};

/// A wave on its way between stars, with the star that put it on the fabric (reflections go
/// back there: it holds the exchange waiting for them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The star that sent the wave.
    pub from_star: StarKey,
    /// The wave.
    pub wave: Wave,
}

/// Why the fabric could not carry an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FabricError {
    /// No star with that key is connected.
    #[error("no star {0} on the fabric")]
    UnknownStar(StarKey),
    /// The star is connected but no longer receiving (it is shutting down).
    #[error("star {0} is not receiving")]
    Closed(StarKey),
    /// The bus cannot carry it now (not connected, or the server refused it); the same send
    /// may succeed a moment later.
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    /// The envelope could not be made into a frame (over the frame limit).
    #[error("cannot frame the wave: {0}")]
    Frame(String),
}

/// What receives the envelopes addressed to one star. A star's inbox must not block: it hands
/// reflections to the waiting exchange and starts a task for each directed wave.
pub trait Inbox: Send + Sync + 'static {
    /// Takes one envelope addressed to this star.
    fn deliver(&self, envelope: Envelope);

    /// The Ping `wave` this star sent could not be delivered after [`Fabric::send`] had taken
    /// it (a networked fabric learns later that nobody serves the target star): its exchange
    /// ends now with 503 and `why`, rather than at its wait time.
    fn undeliverable(&self, wave: WaveId, why: String);
}

/// Carries envelopes between stars.
#[async_trait]
pub trait Fabric: Send + Sync + 'static {
    /// Starts delivering the envelopes addressed to `star` to `inbox` (a machine connects each
    /// of its stars when it starts).
    async fn connect(&self, star: StarKey, inbox: Arc<dyn Inbox>) -> Result<(), FabricError>;

    /// Stops delivering to `star`; envelopes sent to it afterwards are refused.
    async fn disconnect(&self, star: &StarKey);

    /// Puts `envelope` on its way to star `to`. Returns once the fabric has taken it; delivery
    /// is in order per sender and receiver.
    async fn send(&self, to: &StarKey, envelope: Envelope) -> Result<(), FabricError>;

    /// The stars currently connected, in a stable order.
    fn stars(&self) -> Vec<StarKey>;

    /// Whether the fabric reaches the other machines now (a fabric of one machine always does).
    fn on_bus(&self) -> bool {
        true
    }

    /// The live stars of the other machines, as membership says (a fabric of one machine has
    /// none to hear of).
    fn set_remote_stars(&self, stars: Vec<StarKey>) {
        let _ = stars;
    }

    /// Carries the registry's changes between machines: those made here (heard as a relay on
    /// `feed`) go to the other machines, and theirs are published on `feed`. A fabric of one
    /// machine has nobody to tell.
    async fn carry_changes(&self, feed: Arc<ChangeFeed>) -> Result<(), FabricError> {
        let _ = feed;
        Ok(())
    }
}
