//! The Shell layer (SPEC §6): exchange bookkeeping.
//!
//! Every Ping a star sends is an exchange: the Shell remembers it until its Pong comes back or
//! its wait time passes, and answers 408 itself in the second case, so no caller ever waits
//! forever. A reflection nobody waits for (it came too late, or was never asked for) is dropped
//! and counted, never handed to a particle.
//!
//! Exchanges are keyed by wave id, and ids may come from outside (a client retrying a request
//! under the same id, SPEC §17.1): a Ping whose id is already waiting on this star is refused
//! with 409 ([`InFlight`]) rather than taking the first one's answer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};

use cosmic_space::{Ping, Pong, ReflectedCore, StatusCode, WaveId};
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The outstanding exchanges of one star.
#[derive(Debug, Default)]
pub struct Shell {
    exchanges: Mutex<HashMap<WaveId, oneshot::Sender<Answer>>>,
    unsolicited: AtomicU64,
}

/// Why [`Shell::open`] refused a Ping: an exchange under its id is already waiting for its
/// Pong on this star, and a second one would take that answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a wave with id {0} is already in flight")]
pub struct InFlight(pub WaveId);

impl From<InFlight> for ReflectedCore {
    /// 409 Conflict, saying which id: the sender may retry once the first one is answered.
    fn from(refused: InFlight) -> ReflectedCore {
        ReflectedCore::error(StatusCode::CONFLICT, refused.to_string())
    }
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
    ///
    /// # Errors
    /// [`InFlight`] when an exchange under the same id is still waiting; that one is left as
    /// it was. An exchange whose waiter has gone (its caller gave up) does not count: the new
    /// one takes its place.
    pub fn open(&self, ping: &Ping) -> Result<Exchange, InFlight> {
        let (tx, rx) = oneshot::channel();
        match self.exchanges.lock().entry(ping.id) {
            Entry::Vacant(slot) => {
                slot.insert(tx);
            }
            Entry::Occupied(mut abandoned) if abandoned.get().is_closed() => {
                abandoned.insert(tx);
            }
            Entry::Occupied(_) => return Err(InFlight(ping.id)),
        }
        Ok(Exchange {
            ping: ping.clone(),
            pong: rx,
        })
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
        // The receiver is dropped once this returns, so `forget` below knows the entry as ours.
        let answer = tokio::time::timeout(wait, exchange.pong).await;
        match answer {
            Ok(Ok(Ok(pong))) => pong,
            Ok(Ok(Err(core))) => exchange.ping.pong(core),
            Ok(Err(_)) => {
                // The sender half vanished without an answer: the star is shutting down.
                self.forget(exchange.ping.id);
                exchange.ping.pong(ReflectedCore::unavailable())
            }
            Err(_) => {
                self.forget(exchange.ping.id);
                exchange.ping.pong(ReflectedCore::timeout())
            }
        }
    }

    /// Removes the exchange of `wave` if nobody waits for it any more — never one that has
    /// opened under the same id since (a Pong may have ended ours just as it timed out).
    fn forget(&self, wave: WaveId) {
        let mut exchanges = self.exchanges.lock();
        if exchanges.get(&wave).is_some_and(oneshot::Sender::is_closed) {
            exchanges.remove(&wave);
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
        let exchange = shell.open(&ping).expect("a fresh id");
        assert!(shell.deliver(ping.pong(ReflectedCore::ok("hi"))));
        let pong = shell.wait(exchange).await;
        assert_eq!(pong.core.status, StatusCode::OK);
        assert_eq!(shell.outstanding(), 0);
    }

    #[tokio::test]
    async fn a_late_pong_is_dropped_and_counted_after_the_408() {
        let shell = Shell::new();
        let ping = ping(10);
        let exchange = shell.open(&ping).expect("a fresh id");
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

    #[tokio::test]
    async fn a_second_ping_under_an_id_in_flight_is_refused_and_the_first_keeps_its_exchange() {
        let shell = Shell::new();
        let first = ping(5_000);
        let exchange = shell.open(&first).expect("a fresh id");
        let retry = ping(5_000).with_id(first.id).with_body("again");

        let refused = shell.open(&retry).expect_err("the id is in flight");
        assert_eq!(refused, InFlight(first.id));
        let core = ReflectedCore::from(refused);
        assert_eq!(core.status, StatusCode::CONFLICT);
        assert_eq!(
            core.error_message().as_deref(),
            Some(format!("a wave with id {} is already in flight", first.id).as_str())
        );
        assert_eq!(shell.outstanding(), 1);

        // The first exchange still gets its own answer.
        assert!(shell.deliver(first.pong(ReflectedCore::ok("first"))));
        let pong = shell.wait(exchange).await;
        assert_eq!(pong.core.body, "first".into());
        assert_eq!(shell.outstanding(), 0);
        assert_eq!(shell.unsolicited(), 0);
    }

    #[tokio::test]
    async fn an_id_may_be_used_again_once_its_exchange_has_ended() {
        let shell = Shell::new();
        let ping = ping(10);

        // Answered: the id is free again.
        let exchange = shell.open(&ping).expect("a fresh id");
        assert!(shell.deliver(ping.pong(ReflectedCore::ok(()))));
        assert_eq!(shell.wait(exchange).await.core.status, StatusCode::OK);

        // Timed out: free again, and the new exchange is not disturbed by the old one.
        let exchange = shell.open(&ping).expect("answered ids are free");
        assert_eq!(shell.wait(exchange).await.core.status, StatusCode::TIMEOUT);
        let exchange = shell.open(&ping).expect("timed-out ids are free");
        assert!(shell.deliver(ping.pong(ReflectedCore::ok("again"))));
        assert_eq!(shell.wait(exchange).await.core.body, "again".into());

        // Abandoned (the caller stopped waiting): the next exchange takes its place.
        drop(shell.open(&ping).expect("free"));
        let exchange = shell
            .open(&ping)
            .expect("an abandoned exchange does not count");
        assert_eq!(shell.outstanding(), 1);
        assert!(shell.deliver(ping.pong(ReflectedCore::ok("mine"))));
        assert_eq!(shell.wait(exchange).await.core.body, "mine".into());
    }

    #[tokio::test]
    async fn failing_an_id_in_flight_ends_the_first_exchange_once() {
        let shell = Shell::new();
        let first = ping(5_000);
        let exchange = shell.open(&first).expect("a fresh id");
        assert!(shell.open(&first).is_err());
        // The infrastructure failing the wave ends the first exchange, once.
        assert!(shell.fail(first.id, ReflectedCore::unavailable()));
        assert!(!shell.fail(first.id, ReflectedCore::unavailable()));
        let pong = shell.wait(exchange).await;
        assert_eq!(pong.core.status, StatusCode::UNAVAILABLE);
        assert_eq!(pong.reflection_of, first.id);
    }
}
