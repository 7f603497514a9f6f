//! The Shell layer (SPEC §6): exchange bookkeeping.
//!
//! Every Ping a star sends is an exchange: the Shell remembers it until its Pong comes back or
//! its wait time passes, and answers 408 itself in the second case, so no caller ever waits
//! forever. A reflection nobody waits for (it came too late, or was never asked for) is dropped
//! and counted, never handed to a particle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cosmic_space::{Ping, Pong, ReflectedCore, WaveId};
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The outstanding exchanges of one star.
#[derive(Debug, Default)]
pub struct Shell {
    exchanges: Mutex<HashMap<WaveId, oneshot::Sender<Answer>>>,
    unsolicited: AtomicU64,
}

/// What ends an exchange: the Pong, or the infrastructure's answer for a Ping that could not
/// be delivered.
type Answer = Result<Pong, ReflectedCore>;

/// A Ping whose Pong the Shell is waiting for.
#[derive(Debug)]
pub struct Exchange {
    ping: Ping,
    pong: oneshot::Receiver<Answer>,
}

impl Shell {
    /// An empty shell.
    pub fn new() -> Shell {
        Shell::default()
    }

    /// Starts an exchange for `ping` (whose id must already be stamped).
    pub fn open(&self, ping: &Ping) -> Exchange {
        let (tx, rx) = oneshot::channel();
        self.exchanges.lock().insert(ping.id, tx);
        Exchange {
            ping: ping.clone(),
            pong: rx,
        }
    }

    /// Hands a Pong to the exchange waiting for it. Returns false, and counts it, when nobody
    /// is waiting.
    pub fn deliver(&self, pong: Pong) -> bool {
        self.end(pong.reflection_of, Ok(pong))
    }

    /// Ends the exchange of the Ping `wave` with `core`, answered for it by the
    /// infrastructure (the fabric found nobody to deliver it to). Returns false, and counts
    /// it, when nobody is waiting any more.
    pub fn fail(&self, wave: WaveId, core: ReflectedCore) -> bool {
        self.end(wave, Err(core))
    }

    /// Ends the exchange of `wave` with `answer`; false, counted, when nobody is waiting.
    fn end(&self, wave: WaveId, answer: Answer) -> bool {
        let waiting = self.exchanges.lock().remove(&wave);
        match waiting {
            Some(tx) => tx.send(answer).is_ok() || self.drop_unsolicited(),
            None => self.drop_unsolicited(),
        }
    }

    /// Counts a reflection that was dropped because nobody waited for it; returns false.
    pub fn drop_unsolicited(&self) -> bool {
        self.unsolicited.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Waits for the exchange's Pong; after the Ping's wait time, gives up and answers 408.
    pub async fn wait(&self, exchange: Exchange) -> Pong {
        let wait = exchange.ping.handling.wait.as_duration();
        match tokio::time::timeout(wait, exchange.pong).await {
            Ok(Ok(Ok(pong))) => pong,
            Ok(Ok(Err(core))) => exchange.ping.pong(core),
            Ok(Err(_)) => {
                // The sender half vanished without an answer: the star is shutting down.
                self.exchanges.lock().remove(&exchange.ping.id);
                exchange.ping.pong(ReflectedCore::unavailable())
            }
            Err(_) => {
                self.exchanges.lock().remove(&exchange.ping.id);
                exchange.ping.pong(ReflectedCore::timeout())
            }
        }
    }

    /// How many exchanges are waiting.
    pub fn outstanding(&self) -> usize {
        self.exchanges.lock().len()
    }

    /// How many reflections were dropped because nobody waited for them.
    pub fn unsolicited(&self) -> u64 {
        self.unsolicited.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use cosmic_space::{Method, Point, StatusCode, WaitTime};

    use super::*;

    fn ping(wait_ms: u64) -> Ping {
        Ping::new(
            Point::hyperuser(),
            Point::global_executor(),
            Method::ext("Hello").expect("camel case"),
            (),
        )
        .with_id(WaveId::new())
        .with_wait(WaitTime::from_millis(wait_ms))
    }

    #[tokio::test]
    async fn a_pong_reaches_its_exchange() {
        let shell = Shell::new();
        let ping = ping(5_000);
        let exchange = shell.open(&ping);
        assert!(shell.deliver(ping.pong(ReflectedCore::ok("hi"))));
        let pong = shell.wait(exchange).await;
        assert_eq!(pong.core.status, StatusCode::OK);
        assert_eq!(shell.outstanding(), 0);
    }

    #[tokio::test]
    async fn a_late_pong_is_dropped_and_counted_after_the_408() {
        let shell = Shell::new();
        let ping = ping(10);
        let exchange = shell.open(&ping);
        let pong = shell.wait(exchange).await;
        assert_eq!(pong.core.status, StatusCode::TIMEOUT);
        assert_eq!(pong.reflection_of, ping.id);
        assert!(!shell.deliver(ping.pong(ReflectedCore::ok("late"))));
        assert_eq!(shell.unsolicited(), 1);
        assert_eq!(shell.outstanding(), 0);
    }

    #[tokio::test]
    async fn an_unasked_pong_is_dropped() {
        let shell = Shell::new();
        assert!(!shell.deliver(ping(10).pong(ReflectedCore::ok(()))));
        assert_eq!(shell.unsolicited(), 1);
    }
}
