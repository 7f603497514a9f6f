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
//!
//! A Ripple the star sends is a [`RippleExchange`]: it collects the Echoes its bounce-back
//! rule asks for ([`BounceBacks`]) and returns them — never an error, never later than the
//! Ripple's wait time (or its timer). Echoes beyond what it waits for, or after it has
//! returned, are dropped and counted like unsolicited Pongs.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use cosmic_space::{BounceBacks, Echo, Ping, Pong, ReflectedCore, Ripple, StatusCode, WaveId};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

/// The outstanding exchanges of one star.
#[derive(Debug, Default)]
pub struct Shell {
    exchanges: Mutex<HashMap<WaveId, oneshot::Sender<Answer>>>,
    /// Ripples waiting for Echoes. Each channel holds at most one Echo per recipient: more
    /// than that cannot be asked for, so the surplus is dropped and counted.
    ripples: Mutex<HashMap<WaveId, mpsc::Sender<Echo>>>,
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

/// A Ripple whose Echoes the Shell is collecting (see [`Shell::collect`]).
#[derive(Debug)]
pub struct RippleExchange {
    ripple: WaveId,
    /// How many Echoes end the exchange early.
    wanted: usize,
    /// How long it collects at most.
    limit: Duration,
    echoes: mpsc::Receiver<Echo>,
}

/// How many Echoes a Ripple to `recipients` recipients waits for under `rule`: none, the
/// first, the first `n`, or one per recipient (`All`, and `Timer`: nothing more can arrive
/// once every recipient has answered, so a timer need not run out).
pub fn wanted(rule: BounceBacks, recipients: usize) -> usize {
    match rule {
        BounceBacks::None => 0,
        BounceBacks::Single => recipients.min(1),
        BounceBacks::Count(n) => recipients.min(usize::try_from(n).unwrap_or(usize::MAX)),
        BounceBacks::All | BounceBacks::Timer(_) => recipients,
    }
}

/// How long a Ripple collects Echoes at most: its wait time, or its timer when that is
/// shorter. Every rule is bounded by the wait time, so no sender waits forever.
pub fn limit(ripple: &Ripple) -> Duration {
    let wait = ripple.handling.wait.as_duration();
    match ripple.bounce_backs {
        BounceBacks::Timer(timer) => timer.as_duration().min(wait),
        _ => wait,
    }
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

    /// Starts collecting the Echoes of `ripple` (whose id must already be stamped), sent to
    /// `recipients` recipients.
    ///
    /// # Errors
    /// [`InFlight`] when a Ripple under the same id is still collecting on this star; that one
    /// is left as it was. One whose collector has gone does not count.
    pub fn open_ripple(
        &self,
        ripple: &Ripple,
        recipients: usize,
    ) -> Result<RippleExchange, InFlight> {
        let (tx, rx) = mpsc::channel(recipients.max(1));
        match self.ripples.lock().entry(ripple.id) {
            Entry::Vacant(slot) => {
                slot.insert(tx);
            }
            Entry::Occupied(mut abandoned) if abandoned.get().is_closed() => {
                abandoned.insert(tx);
            }
            Entry::Occupied(_) => return Err(InFlight(ripple.id)),
        }
        Ok(RippleExchange {
            ripple: ripple.id,
            wanted: wanted(ripple.bounce_backs, recipients),
            limit: limit(ripple),
            echoes: rx,
        })
    }

    /// Hands an Echo to the Ripple collecting it. Returns false, and counts it, when nobody is
    /// collecting (it came late, or was never asked for) or the Ripple already holds one Echo
    /// per recipient.
    pub fn deliver_echo(&self, echo: Echo) -> bool {
        let mut ripples = self.ripples.lock();
        let Some(tx) = ripples.get(&echo.reflection_of) else {
            drop(ripples);
            return self.drop_unsolicited();
        };
        match tx.try_send(echo) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                drop(ripples);
                self.drop_unsolicited()
            }
            Err(mpsc::error::TrySendError::Closed(echo)) => {
                ripples.remove(&echo.reflection_of);
                drop(ripples);
                self.drop_unsolicited()
            }
        }
    }

    /// Collects the exchange's Echoes, in the order they arrive, until it has as many as its
    /// rule wants or its time is up (the Ripple's wait time, or its timer); then returns what
    /// arrived. Echoes that come afterwards are dropped and counted.
    pub async fn collect(&self, exchange: RippleExchange) -> Vec<Echo> {
        let RippleExchange {
            ripple,
            wanted,
            limit,
            mut echoes,
        } = exchange;
        let mut got = Vec::with_capacity(wanted.min(1024));
        let deadline = tokio::time::Instant::now() + limit;
        while got.len() < wanted {
            match tokio::time::timeout_at(deadline, echoes.recv()).await {
                Ok(Some(echo)) => got.push(echo),
                // Timed out, or the shell is going away: what arrived is the answer.
                Ok(None) | Err(_) => break,
            }
        }
        // Echoes already queued beyond what the rule wants were not asked for either.
        echoes.close();
        while echoes.try_recv().is_ok() {
            self.drop_unsolicited();
        }
        drop(echoes);
        let mut ripples = self.ripples.lock();
        if ripples.get(&ripple).is_some_and(mpsc::Sender::is_closed) {
            ripples.remove(&ripple);
        }
        got
    }

    /// How many exchanges (Pings and Ripples) are waiting.
    pub fn outstanding(&self) -> usize {
        self.exchanges.lock().len() + self.ripples.lock().len()
    }

    /// How many reflections were dropped because nobody waited for them.
    pub fn unsolicited(&self) -> u64 {
        self.unsolicited.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use cosmic_space::{Method, Point, StatusCode, Substance, Surface, WaitTime};

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

    fn ripple(rule: BounceBacks, wait_ms: u64) -> Ripple {
        Ripple::new(
            Point::hyperuser(),
            Vec::<Surface>::new(),
            Method::ext("Hello").expect("camel case"),
            (),
        )
        .with_id(WaveId::new())
        .with_bounce_backs(rule)
        .with_wait(WaitTime::from_millis(wait_ms))
    }

    fn echo(ripple: &Ripple, n: usize) -> Echo {
        let from: Surface = format!("localhost:r{n}").parse().expect("a point");
        ripple.echo(from, ReflectedCore::ok(n as i64))
    }

    #[test]
    fn the_rules_say_how_many_echoes_end_a_ripple() {
        let timer = BounceBacks::Timer(WaitTime::from_millis(5));
        assert_eq!(wanted(BounceBacks::None, 10), 0);
        assert_eq!(wanted(BounceBacks::Single, 10), 1);
        assert_eq!(wanted(BounceBacks::Single, 0), 0);
        assert_eq!(wanted(BounceBacks::Count(3), 10), 3);
        assert_eq!(wanted(BounceBacks::Count(30), 10), 10);
        assert_eq!(wanted(BounceBacks::All, 10), 10);
        assert_eq!(wanted(timer, 10), 10);

        let wait = Duration::from_millis(1_000);
        assert_eq!(limit(&ripple(BounceBacks::All, 1_000)), wait);
        assert_eq!(limit(&ripple(BounceBacks::Single, 1_000)), wait);
        assert_eq!(limit(&ripple(timer, 1_000)), Duration::from_millis(5));
        // A timer longer than the wait time is cut to the wait time.
        let long = BounceBacks::Timer(WaitTime::from_millis(60_000));
        assert_eq!(limit(&ripple(long, 1_000)), wait);
    }

    #[tokio::test(start_paused = true)]
    async fn all_collects_one_echo_per_recipient_and_returns_at_once() {
        let shell = Shell::new();
        let ripple = ripple(BounceBacks::All, 30_000);
        let exchange = shell.open_ripple(&ripple, 3).expect("a fresh id");
        assert_eq!(shell.outstanding(), 1);
        for n in 0..3 {
            assert!(shell.deliver_echo(echo(&ripple, n)));
        }
        let start = tokio::time::Instant::now();
        let echoes = shell.collect(exchange).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "nothing more could come");
        assert_eq!(echoes.len(), 3);
        assert_eq!(echoes[2].core.body, Substance::Int(2));
        assert_eq!(shell.outstanding(), 0);
        // A fourth Echo (a recipient answering twice, or late) is dropped and counted.
        assert!(!shell.deliver_echo(echo(&ripple, 3)));
        assert_eq!(shell.unsolicited(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn single_and_count_take_the_first_and_count_the_rest() {
        let shell = Shell::new();
        let first = ripple(BounceBacks::Single, 30_000);
        let exchange = shell.open_ripple(&first, 4).expect("a fresh id");
        for n in 0..3 {
            assert!(shell.deliver_echo(echo(&first, n)));
        }
        let echoes = shell.collect(exchange).await;
        assert_eq!(echoes.len(), 1);
        assert_eq!(
            echoes[0].core.body,
            Substance::Int(0),
            "the first to arrive"
        );
        // The two queued beyond the first were not asked for.
        assert_eq!(shell.unsolicited(), 2);

        // Count(3) of ten: returns as the third arrives, long before its wait time.
        let shell = std::sync::Arc::new(shell);
        let three = ripple(BounceBacks::Count(3), 30_000);
        let exchange = shell.open_ripple(&three, 10).expect("a fresh id");
        let start = tokio::time::Instant::now();
        let collecting = tokio::spawn({
            let shell = shell.clone();
            async move { shell.collect(exchange).await }
        });
        for n in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(shell.deliver_echo(echo(&three, n)));
        }
        let echoes = collecting.await.expect("the collector runs");
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(echoes.len(), 3);
        assert_eq!(shell.outstanding(), 0);
        assert!(
            !shell.deliver_echo(echo(&three, 3)),
            "a fourth was not asked for"
        );
        assert_eq!(shell.unsolicited(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_time_bounds_every_rule_and_returns_what_arrived() {
        let shell = Shell::new();
        let ripple = ripple(BounceBacks::All, 2_000);
        let exchange = shell.open_ripple(&ripple, 10).expect("a fresh id");
        for n in 0..4 {
            assert!(shell.deliver_echo(echo(&ripple, n)));
        }
        let start = tokio::time::Instant::now();
        let echoes = shell.collect(exchange).await;
        assert_eq!(start.elapsed(), Duration::from_millis(2_000));
        assert_eq!(echoes.len(), 4);
        assert_eq!(shell.outstanding(), 0);
        assert!(!shell.deliver_echo(echo(&ripple, 5)), "too late");
        assert_eq!(shell.unsolicited(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_returns_what_arrived_when_it_fires() {
        let shell = Shell::new();
        let timer = BounceBacks::Timer(WaitTime::from_millis(500));
        let ripple = ripple(timer, 30_000);
        let exchange = shell.open_ripple(&ripple, 10).expect("a fresh id");
        for n in 0..7 {
            assert!(shell.deliver_echo(echo(&ripple, n)));
        }
        let start = tokio::time::Instant::now();
        let echoes = shell.collect(exchange).await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert_eq!(echoes.len(), 7);

        // Every recipient answered before the timer: nothing more can come, so it returns.
        let ripple = self::ripple(timer, 30_000);
        let exchange = shell.open_ripple(&ripple, 2).expect("a fresh id");
        assert!(shell.deliver_echo(echo(&ripple, 0)));
        assert!(shell.deliver_echo(echo(&ripple, 1)));
        let start = tokio::time::Instant::now();
        assert_eq!(shell.collect(exchange).await.len(), 2);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ripple_with_no_recipients_or_no_bounce_backs_returns_empty_at_once() {
        let shell = Shell::new();
        for (rule, recipients) in [(BounceBacks::All, 0), (BounceBacks::None, 5)] {
            let ripple = ripple(rule, 30_000);
            let exchange = shell.open_ripple(&ripple, recipients).expect("a fresh id");
            let start = tokio::time::Instant::now();
            assert!(shell.collect(exchange).await.is_empty());
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
        assert_eq!(shell.outstanding(), 0);
    }

    #[tokio::test]
    async fn echoes_nobody_collects_are_dropped_and_counted() {
        let shell = Shell::new();
        let ripple = ripple(BounceBacks::All, 30_000);
        assert!(!shell.deliver_echo(echo(&ripple, 0)), "never asked for");
        assert_eq!(shell.unsolicited(), 1);

        // An Echo for a Ping's exchange is not taken by it, nor the other way round.
        let ping = ping(5_000).with_id(ripple.id);
        let _exchange = shell.open(&ping).expect("a fresh id");
        assert!(!shell.deliver_echo(echo(&ripple, 0)));
        assert_eq!(shell.unsolicited(), 2);

        // The collector went away (its caller gave up): the next Echo removes the exchange.
        drop(shell.open_ripple(&ripple, 3).expect("a fresh id"));
        assert_eq!(shell.outstanding(), 2);
        assert!(!shell.deliver_echo(echo(&ripple, 0)));
        assert_eq!(shell.outstanding(), 1);
        assert_eq!(shell.unsolicited(), 3);
    }

    #[tokio::test]
    async fn a_second_ripple_under_an_id_in_flight_is_refused() {
        let shell = Shell::new();
        let ripple = ripple(BounceBacks::Single, 5_000);
        let exchange = shell.open_ripple(&ripple, 2).expect("a fresh id");
        assert_eq!(
            shell.open_ripple(&ripple, 2).expect_err("in flight"),
            InFlight(ripple.id)
        );
        assert!(shell.deliver_echo(echo(&ripple, 1)));
        assert_eq!(shell.collect(exchange).await.len(), 1);
        // Ended: the id is free again.
        assert!(shell.open_ripple(&ripple, 2).is_ok());
    }
}
