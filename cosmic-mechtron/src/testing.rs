//! Native tests of a mechtron, without wasm (SPEC §11.1): [`TestMechtron`] builds one and
//! sends it waves through a [`TestHost`] that records logs and outgoing waves and answers
//! outgoing Pings and Ripples with closures.
//!
//! ```
//! use cosmic_mechtron::prelude::*;
//! use cosmic_mechtron::testing::TestMechtron;
//!
//! #[mechtron]
//! #[derive(Default)]
//! pub struct Hello;
//!
//! #[handlers]
//! impl Hello {
//!     #[route("Ext<Hello>")]
//!     fn hello(&mut self, ctx: &mut Ctx, name: String) -> String {
//!         ctx.info(format!("greeting {name}"));
//!         format!("Goodbye, {name}!")
//!     }
//! }
//!
//! let mut hello = TestMechtron::<Hello>::new()?;
//! let answer = hello.ping("Ext<Hello>", "scott");
//! assert_eq!(answer.body, Substance::from("Goodbye, scott!"));
//! assert_eq!(hello.logs(), [(LogLevel::Info, "greeting scott".to_string())]);
//! # Ok::<(), cosmic_mechtron::Error>(())
//! ```

mod channels;
mod secrets;
mod stores;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use cosmic_space::{
    Agent, BounceBacks, Details, DirectedCore, DirectedWave, Echo, HttpMethod, Kind, LogLevel,
    Logger, Method, Ping, Point, Pong, Properties, ReflectedCore, Ripple, Signal, Status, Stub,
    Substance, Surface, Transmitter,
};

use self::channels::MemoryChannels;
use self::secrets::MemorySecrets;
use self::stores::{MemoryFiles, MemoryStores};
use crate::ctx::{Ctx, Host};
use crate::error::Error;
use crate::mechtron::{MECHTRON_PROPERTY, Mechtron};

/// Answers a Ping a mechtron sends during a test.
type Responder = Box<dyn FnMut(&Ping) -> ReflectedCore>;

/// Scripts the Echoes of a Ripple a mechtron sends during a test.
type RippleResponder = Box<dyn FnMut(&Ripple) -> Vec<Echo>>;

/// A [`Host`] for tests: records what the mechtron logs and sends, answers its Pings with a
/// closure (404 by default) and its Ripples with scripted Echoes (none by default), keeps a
/// settable clock and gives deterministic "random" bytes.
pub struct TestHost {
    logs: RefCell<Vec<(LogLevel, String)>>,
    sent: RefCell<Vec<DirectedWave>>,
    responder: RefCell<Responder>,
    ripples: RefCell<RippleResponder>,
    stores: RefCell<MemoryStores>,
    files: RefCell<MemoryFiles>,
    secrets: RefCell<MemorySecrets>,
    channels: RefCell<MemoryChannels>,
    now: Cell<u64>,
    seed: Cell<u64>,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("logs", &self.logs)
            .field("sent", &self.sent)
            .field("now", &self.now)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost {
            logs: RefCell::default(),
            sent: RefCell::default(),
            responder: RefCell::new(Box::new(|_: &Ping| ReflectedCore::not_found())),
            ripples: RefCell::new(Box::new(|_: &Ripple| Vec::new())),
            stores: RefCell::default(),
            files: RefCell::default(),
            secrets: RefCell::default(),
            channels: RefCell::default(),
            now: Cell::new(0),
            seed: Cell::new(0x5eed),
        }
    }
}

impl TestHost {
    /// Answers the Pings the mechtron sends with `responder`.
    pub fn answer_pings(&self, responder: impl FnMut(&Ping) -> ReflectedCore + 'static) {
        *self.responder.borrow_mut() = Box::new(responder);
    }

    /// Scripts the Echoes of the Ripples the mechtron sends: `responder` gets each Ripple (as
    /// sent: its recipients, method, body, bounce-back rule) and returns the Echoes that
    /// arrive, in order — `ripple.echo(recipient, core)` makes one. The mechtron then gets
    /// what its rule keeps of them, as in the cosmos: nothing for `None`, the first for
    /// `Single`, the first `n` for `Count(n)`, all for `All` and `Timer` (a test's script
    /// says what arrived in time).
    pub fn answer_ripples(&self, responder: impl FnMut(&Ripple) -> Vec<Echo> + 'static) {
        *self.ripples.borrow_mut() = Box::new(responder);
    }

    /// Every Ripple sent so far, oldest first.
    pub fn ripples(&self) -> Vec<Ripple> {
        self.sent
            .borrow()
            .iter()
            .filter_map(|wave| match wave {
                DirectedWave::Ripple(ripple) => Some(ripple.clone()),
                _ => None,
            })
            .collect()
    }

    /// Answers the waves sent to `store` as an empty key-value store kept in memory would
    /// (SPEC §17.1), before the responder sees them; its entries expire by the test's clock.
    pub fn key_value_store(&self, store: Point) {
        self.stores.borrow_mut().add(store);
    }

    /// Makes `channel` a channel the mechtron may publish on (SPEC §18): what it publishes
    /// there is answered 200 and kept, before the responder sees it.
    pub fn channel(&self, channel: Point) {
        self.channels.borrow_mut().add(channel);
    }

    /// What the mechtron published on `channel` (one given with [`TestHost::channel`]), in
    /// order.
    pub fn published(&self, channel: &Point) -> Vec<DirectedCore> {
        self.channels.borrow().published(channel)
    }

    /// The selectors the mechtron is subscribed to (its `ctx.subscribe`s less its
    /// `ctx.unsubscribe`s), as written canonically.
    pub fn subscriptions(&self) -> Vec<String> {
        self.channels.borrow().subscriptions()
    }

    /// The value of `key` in the in-memory store at `store` now.
    pub fn stored(&self, store: &Point, key: &str) -> Option<Vec<u8>> {
        self.stores.borrow().value(store, key, self.now_ms())
    }

    /// Answers the waves sent to points in `store`'s file system as an empty file store kept
    /// in memory would (SPEC §17.2), before the responder sees them.
    pub fn file_store(&self, store: Point) {
        self.files.borrow_mut().add(store);
    }

    /// The bytes of the file at `file` in an in-memory file store now.
    pub fn file(&self, file: &Point) -> Option<Vec<u8>> {
        self.files.borrow().bytes(file)
    }

    /// Answers the waves sent to the secret at `point` as a Secret holding `value` would
    /// (SPEC §17.3), before the responder sees them: revealed, replaced and cleared in memory.
    pub fn set_secret(&self, point: Point, value: impl Into<Vec<u8>>) {
        self.secrets.borrow_mut().set(point, value.into());
    }

    /// The value the in-memory secret at `point` holds now (what the mechtron set, say).
    pub fn secret(&self, point: &Point) -> Option<Vec<u8>> {
        self.secrets.borrow().value(point)
    }

    fn now_ms(&self) -> u64 {
        self.now.get() / 1_000_000
    }

    /// Sets the clock ([`Ctx::now`]) to `nanos` since the Unix epoch.
    pub fn set_now(&self, nanos: u64) {
        self.now.set(nanos);
    }

    /// Every line logged so far, oldest first.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }

    /// Every wave sent so far, oldest first.
    pub fn sent(&self) -> Vec<DirectedWave> {
        self.sent.borrow().clone()
    }
}

impl Transmitter for TestHost {
    fn ping(&self, ping: Ping) -> Pong {
        self.sent
            .borrow_mut()
            .push(DirectedWave::Ping(ping.clone()));
        let stored = self.stores.borrow_mut().answer(&ping, self.now_ms());
        let filed = || self.files.borrow_mut().answer(&ping);
        let sealed = || self.secrets.borrow_mut().answer(&ping);
        let channelled = || self.channels.borrow_mut().answer(&ping);
        let core = match stored.or_else(filed).or_else(sealed).or_else(channelled) {
            Some(core) => core,
            None => (self.responder.borrow_mut())(&ping),
        };
        ping.pong(core)
    }

    fn signal(&self, signal: Signal) {
        self.sent.borrow_mut().push(DirectedWave::Signal(signal));
    }

    fn ripple(&self, ripple: Ripple) -> Vec<Echo> {
        self.sent
            .borrow_mut()
            .push(DirectedWave::Ripple(ripple.clone()));
        let mut echoes = (self.ripples.borrow_mut())(&ripple);
        let kept = match ripple.bounce_backs {
            BounceBacks::None => 0,
            BounceBacks::Single => 1,
            BounceBacks::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            BounceBacks::All | BounceBacks::Timer(_) => echoes.len(),
        };
        echoes.truncate(kept);
        echoes
    }
}

impl Logger for TestHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
}

impl Host for TestHost {
    fn now(&self) -> u64 {
        self.now.get()
    }

    fn random(&self, buf: &mut [u8]) {
        // splitmix64: deterministic, so tests that print ids stay stable.
        for chunk in buf.chunks_mut(8) {
            let mut z = self.seed.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            self.seed.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A mechtron of type `M` under test: send it waves, inspect its state, its logs and the
/// waves it sent.
pub struct TestMechtron<M> {
    mechtron: M,
    details: Rc<Details>,
    host: Rc<TestHost>,
    from: Surface,
    agent: Agent,
}

impl<M: std::fmt::Debug> std::fmt::Debug for TestMechtron<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestMechtron")
            .field("mechtron", &self.mechtron)
            .field("details", &self.details)
            .finish_non_exhaustive()
    }
}

impl<M: Mechtron> TestMechtron<M> {
    /// A mechtron at `localhost:test:NAME`, created as `mechtron_init` would create it.
    pub fn new() -> Result<TestMechtron<M>, Error> {
        let point: Point = format!("localhost:test:{}", M::NAME).parse()?;
        let mut properties = Properties::new();
        properties.set(MECHTRON_PROPERTY, M::NAME);
        TestMechtron::with_details(Details {
            stub: Stub {
                point,
                kind: Kind::Mechtron,
                status: Status::Ready,
            },
            properties,
        })
    }

    /// A mechtron created from `details` (its point, its properties).
    pub fn with_details(details: Details) -> Result<TestMechtron<M>, Error> {
        let mechtron = M::create(&details)?;
        let from = "localhost:tester".parse::<Surface>()?;
        Ok(TestMechtron {
            mechtron,
            details: Rc::new(details),
            host: Rc::new(TestHost::default()),
            from,
            agent: Agent::Anonymous,
        })
    }

    /// Sends the waves of this test as `agent` (Anonymous by default).
    pub fn with_agent(mut self, agent: Agent) -> TestMechtron<M> {
        self.agent = agent;
        self
    }

    /// Answers the Pings the mechtron sends with `responder` (404 by default).
    pub fn answer_pings(
        self,
        responder: impl FnMut(&Ping) -> ReflectedCore + 'static,
    ) -> TestMechtron<M> {
        self.host.answer_pings(responder);
        self
    }

    /// Scripts the Echoes of the Ripples the mechtron sends ([`TestHost::answer_ripples`]).
    pub fn answer_ripples(
        self,
        responder: impl FnMut(&Ripple) -> Vec<Echo> + 'static,
    ) -> TestMechtron<M> {
        self.host.answer_ripples(responder);
        self
    }

    /// Gives the mechtron an empty in-memory key-value store at `store`
    /// ([`TestHost::key_value_store`]).
    pub fn with_key_value_store(self, store: &str) -> Result<TestMechtron<M>, Error> {
        self.host.key_value_store(store.parse()?);
        Ok(self)
    }

    /// Gives the mechtron an empty in-memory file store at `store`
    /// ([`TestHost::file_store`]).
    pub fn with_file_store(self, store: &str) -> Result<TestMechtron<M>, Error> {
        self.host.file_store(store.parse()?);
        Ok(self)
    }

    /// Gives the mechtron an in-memory secret at `secret` holding `value`
    /// ([`TestHost::set_secret`]).
    pub fn with_secret(
        self,
        secret: &str,
        value: impl Into<Vec<u8>>,
    ) -> Result<TestMechtron<M>, Error> {
        self.host.set_secret(secret.parse()?, value);
        Ok(self)
    }

    /// Gives the mechtron a channel at `channel` to publish on ([`TestHost::channel`]).
    pub fn with_channel(self, channel: &str) -> Result<TestMechtron<M>, Error> {
        self.host.channel(channel.parse()?);
        Ok(self)
    }

    /// Delivers to the mechtron what a subscription to `channel` delivers when `publisher`
    /// publishes `core` there (SPEC §18): a Signal from the channel, acting as the channel,
    /// the publisher in the `publisher` header.
    pub fn publication(
        &mut self,
        channel: &str,
        publisher: &str,
        core: DirectedCore,
    ) -> Result<(), Error> {
        let channel: Point = channel.parse()?;
        let core = core.with_header(cosmic_space::PUBLISHER, publisher);
        let mut signal = Signal::new(channel.clone(), self.surface(), core.method.clone(), ());
        signal.core = core;
        let _ = self.deliver(DirectedWave::Signal(
            signal.with_agent(Agent::Point(channel)),
        ));
        Ok(())
    }

    /// The host the mechtron talks to.
    pub fn host(&self) -> &TestHost {
        &self.host
    }

    /// The mechtron's state.
    pub fn mechtron(&self) -> &M {
        &self.mechtron
    }

    /// The mechtron's state, to change.
    pub fn mechtron_mut(&mut self) -> &mut M {
        &mut self.mechtron
    }

    /// Pings the mechtron with `method` (e.g. `"Ext<Hello>"`) and `body` on path `/`.
    ///
    /// # Panics
    /// When `method` is not a method: it is written in the test, so that is the test's bug.
    pub fn ping(&mut self, method: &str, body: impl Into<Substance>) -> ReflectedCore {
        let method = match method.parse::<Method>() {
            Ok(method) => method,
            Err(error) => panic!("the test pings with a bad method: {error}"),
        };
        self.request(DirectedCore::new(method).with_body(body))
    }

    /// Sends `Http<Get>` on `path`.
    pub fn get(&mut self, path: &str) -> ReflectedCore {
        self.request(DirectedCore::new(Method::Http(HttpMethod::Get)).with_path(path))
    }

    /// Pings the mechtron with `core` (method, path, headers, body) and returns its answer.
    pub fn request(&mut self, core: DirectedCore) -> ReflectedCore {
        let ping =
            Ping::with_core(self.from.clone(), self.surface(), core).with_agent(self.agent.clone());
        self.deliver(DirectedWave::Ping(ping))
    }

    /// Ripples `core` to the mechtron (as one recipient of a Ripple wanting every Echo) and
    /// returns its answer: what its Echo would carry.
    pub fn ripple(&mut self, core: DirectedCore) -> ReflectedCore {
        let mut ripple = Ripple::new(self.from.clone(), self.surface(), core.method.clone(), ())
            .with_bounce_backs(BounceBacks::All)
            .with_agent(self.agent.clone());
        ripple.core = core;
        self.deliver(DirectedWave::Ripple(ripple))
    }

    /// Signals the mechtron with `core` (its answer is dropped, as in the cosmos).
    pub fn signal(&mut self, core: DirectedCore) {
        let mut signal = Signal::new(self.from.clone(), self.surface(), core.method.clone(), ());
        signal.core = core;
        let _ = self.deliver(DirectedWave::Signal(signal.with_agent(self.agent.clone())));
    }

    /// Every line the mechtron logged so far.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.host.logs()
    }

    /// Every wave the mechtron sent so far.
    pub fn sent(&self) -> Vec<DirectedWave> {
        self.host.sent()
    }

    fn surface(&self) -> Surface {
        Surface::core(self.details.stub.point.clone())
    }

    fn deliver(&mut self, wave: DirectedWave) -> ReflectedCore {
        let host: Rc<dyn Host> = self.host.clone();
        let mut ctx = Ctx::new(wave, self.details.clone(), host);
        Mechtron::handle(&mut self.mechtron, &mut ctx)
    }
}
