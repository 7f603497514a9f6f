//! The narrow handle for sending waves (SPEC §5.3): what a driver, the Field, the particle
//! lifecycle and a guest's outbox get instead of the whole star, which could also assign
//! particles and act as HyperUser.
//!
//! A star's courier implements it: it stamps ids, holds the exchange in its Shell and routes
//! the wave to the star that hosts the target. Whatever a [`Transmit`] sends carries the agent
//! its caller set; it is checked by the Field at the target like every other wave.

use async_trait::async_trait;
use cosmic_space::{Echo, Ping, Pong, Ripple, Signal};

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

    /// Sends `ripple` to its recipients and returns the Echoes its bounce-back rule asks for
    /// (SPEC §5.3): none (at once, after sending), the first, the first `n`, one per
    /// recipient, or what arrived when its timer fires — and never later than its wait time,
    /// when it returns what arrived. It never fails: a recipient that cannot be reached
    /// answers with an error Echo (403, 404, 503 …), and a Ripple the infrastructure refuses
    /// as a whole is answered with one error Echo from its own sender.
    ///
    /// Recipients are a list (`Single`, `Multi`) or a selector (`Select`, resolved here).
    /// `Watchers` and `Stars` are the infrastructure's own deliveries (a channel's, a
    /// machine's), not a sender's: they reach nobody and get no Echoes. The id is stamped if
    /// the Ripple has none; the agent is taken as given.
    async fn ripple(&self, ripple: Ripple) -> Vec<Echo>;
}
