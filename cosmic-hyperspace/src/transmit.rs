//! The narrow handle for sending waves (SPEC §5.3): what a driver, the Field, the particle
//! lifecycle and a guest's outbox get instead of the whole star, which could also assign
//! particles and act as HyperUser.
//!
//! A star's courier implements it: it stamps ids, holds the exchange in its Shell and routes
//! the wave to the star that hosts the target. Whatever a [`Transmit`] sends carries the agent
//! its caller set; it is checked by the Field at the target like every other wave.

use async_trait::async_trait;
use cosmic_space::{Ping, Pong, Signal};

/// Sends waves into the cosmos.
#[async_trait]
pub trait Transmit: Send + Sync + 'static {
    /// Sends `ping` and waits for its Pong: the target's answer, an error from the
    /// infrastructure, or a 408 once its wait time has passed. The id is stamped if the Ping
    /// has none; a Ping whose id is already waiting for its Pong on the same star is answered
    /// 409 (see [`crate::shell::InFlight`]). The agent is taken as given.
    async fn ping(&self, ping: Ping) -> Pong;

    /// Sends `signal` toward its target and returns at once; nothing ever answers it.
    async fn signal(&self, signal: Signal);
}
