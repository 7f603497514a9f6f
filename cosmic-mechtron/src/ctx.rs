//! What a handler sees while it answers one wave ([`Ctx`]), and the [`Host`] it reaches the
//! cosmos through (SPEC §11.1): the `host_*` imports inside wasm, a recording fake in
//! [`crate::testing`].

use std::fmt;
use std::rc::Rc;

use cosmic_space::{
    Agent, BounceBacks, CmdMethod, Details, DirectedCore, DirectedWave, Echo, Headers, LogLevel,
    Logger, Method, Ping, Point, Pong, Query, Recipients, Ripple, RouteVars, Signal, Substance,
    Surface, Transmitter, WaveId, percent_decode,
};

use crate::error::{Error, Result};
use crate::route::{FromVar, var_type_name};

/// The services a guest takes from its host: sending waves ([`Transmitter`], the Universal
/// API's contract), logging ([`Logger`]), the clock and random bytes. Inside wasm this is the
/// `cosmic` import module (SPEC §11.3); natively, [`crate::testing`]'s recording fake.
pub trait Host: Transmitter + Logger {
    /// The wall clock: nanoseconds since the Unix epoch.
    fn now(&self) -> u64;
    /// Fills `buf` with random bytes.
    fn random(&self, buf: &mut [u8]);
}

/// What a handler sees while it answers one wave: the wave, the variables its route captured,
/// the mechtron's own details, and the means to send waves, log, read the clock and files.
///
/// Waves a handler sends leave from the mechtron's point; the host stamps their id, `from`
/// and agent (a guest never chooses them, SPEC §11.2).
pub struct Ctx {
    wave: DirectedWave,
    vars: RouteVars,
    details: Rc<Details>,
    host: Rc<dyn Host>,
}

impl Logger for Ctx {
    fn log(&self, level: LogLevel, message: &str) {
        self.host.log(level, message);
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("wave", &self.wave)
            .field("vars", &self.vars)
            .field("point", &self.details.stub.point)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// A context for answering `wave` as the particle `details` describes, through `host`.
    pub fn new(wave: DirectedWave, details: Rc<Details>, host: Rc<dyn Host>) -> Ctx {
        Ctx {
            wave,
            vars: RouteVars::new(),
            details,
            host,
        }
    }

    /// Replaces the route variables (the route table sets them before calling a handler).
    pub fn set_vars(&mut self, vars: RouteVars) {
        self.vars = vars;
    }

    /// The wave being answered.
    pub fn wave(&self) -> &DirectedWave {
        &self.wave
    }

    /// The wave's method.
    pub fn method(&self) -> &Method {
        self.wave.method()
    }

    /// The wave's path without its query (`/greet/ann` of `/greet/ann?x=1`): what routes
    /// match. The path as sent, query and all, is `ctx.wave().path()`.
    pub fn path(&self) -> &str {
        self.wave.core().route_path()
    }

    /// The query of the wave's path, parsed: `ctx.query().get("x")` is `Some("1")` for
    /// `/greet/ann?x=1`. Names and values are percent-decoded; repeated names are kept
    /// ([`Query::get_all`]).
    pub fn query(&self) -> Query {
        self.wave.core().query()
    }

    /// The wave's headers.
    pub fn headers(&self) -> &Headers {
        &self.wave.core().headers
    }

    /// The wave's body.
    pub fn body(&self) -> &Substance {
        self.wave.body()
    }

    /// Who the wave acts for (set by the hyperspace, never by the sender).
    pub fn agent(&self) -> &Agent {
        self.wave.agent()
    }

    /// Who sent the wave.
    pub fn from(&self) -> &Surface {
        self.wave.sender()
    }

    /// The route variable `name` (`(?P<who>.*)` in the route captures `who`), as the path
    /// carries it (percent-escapes and all).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The route variable `name`, percent-decoded and converted: `ctx.var_as::<u64>("id")`.
    /// Text that does not convert is [`Error::Var`] (answered 400, naming the variable and
    /// its value); a variable the route does not capture is [`Error::NoVar`] (500). A
    /// handler argument `#[var] id: u64` does the same, checked at compile time.
    pub fn var_as<T: FromVar>(&self, name: &str) -> Result<T> {
        let raw = self.var(name).ok_or_else(|| Error::NoVar {
            name: name.to_string(),
        })?;
        let text = percent_decode(raw);
        T::from_var(&text).map_err(|reason| Error::Var {
            name: name.to_string(),
            value: text.into_owned(),
            expected: var_type_name::<T>(),
            reason: reason.to_string(),
        })
    }

    /// Every route variable.
    pub fn vars(&self) -> &RouteVars {
        &self.vars
    }

    /// This mechtron's point.
    pub fn point(&self) -> &Point {
        &self.details.stub.point
    }

    /// This mechtron's details as `mechtron_init` received them.
    pub fn details(&self) -> &Details {
        &self.details
    }

    /// The value of this mechtron's property `name` (as of init).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.details.properties.value(name)
    }

    /// Pings `to` with `method` and `body` and returns the Pong (every Ping gets one: the
    /// target's answer, or an error reflection such as 403, 404 or 408).
    pub fn ping(&self, to: impl Into<Surface>, method: Method, body: impl Into<Substance>) -> Pong {
        self.ping_core(to, DirectedCore::new(method).with_body(body))
    }

    /// Pings `to` with `core` (method, path, headers, body) and returns the Pong.
    pub fn ping_core(&self, to: impl Into<Surface>, core: DirectedCore) -> Pong {
        let ping = Ping::with_core(self.surface(), to, core).with_id(self.new_wave_id());
        self.host.ping(ping)
    }

    /// Pings `to` with `core` as the wave `id`: sending a wave again with the id it was first
    /// sent with lets its target apply it once (a key-value store's increment, SPEC §17.1).
    pub fn ping_as(&self, id: WaveId, to: impl Into<Surface>, core: DirectedCore) -> Pong {
        let ping = Ping::with_core(self.surface(), to, core).with_id(id);
        self.host.ping(ping)
    }

    /// The key-value store at `store` (a `Database<KeyValue>`), reached by waves this
    /// mechtron sends as itself.
    pub fn kv(&self, store: impl Into<Surface>) -> crate::kv::Kv<'_> {
        crate::kv::Kv::new(self, store.into())
    }

    /// The file store at `store` (a `FileStore`), reached by waves this mechtron sends as
    /// itself.
    pub fn files(&self, store: Point) -> crate::files::Files<'_> {
        crate::files::Files::new(self, store)
    }

    /// The secret at `secret` (a `Secret`), revealed and set by waves this mechtron sends as
    /// itself: revealing needs a grant of `secret:reveal` to the mechtron.
    pub fn secret(&self, secret: impl Into<Surface>) -> crate::secret::Secret<'_> {
        crate::secret::Secret::new(self, secret.into())
    }

    /// Signals `to` with `method` and `body`; nothing comes back.
    pub fn signal(&self, to: impl Into<Surface>, method: Method, body: impl Into<Substance>) {
        let signal = Signal::new(self.surface(), to, method, body).with_id(self.new_wave_id());
        self.host.signal(signal);
    }

    /// Ripples `method` and `body` to `recipients` — a list of points or surfaces, or a
    /// [`Selector`](cosmic_space::Selector) of particles — and returns the Echoes `bounce`
    /// asks for (SPEC §18): none ([`BounceBacks::None`], at once), the first, the first `n`,
    /// one per recipient, or what arrived when a timer fires. Never later than the Ripple's
    /// wait time (30 s), when it returns what arrived. Each recipient checks this mechtron's
    /// access like a Ping's: one it may not reach answers with a 403 Echo.
    ///
    /// ```no_run
    /// # use cosmic_mechtron::prelude::*;
    /// # fn demo(ctx: &Ctx) -> Result<()> {
    /// let workers: Selector = "localhost:workers:*<Mechtron>".parse()?;
    /// let echoes = ctx.ripple(workers, Method::ext("Work")?, "job 7", BounceBacks::All);
    /// let done = echoes.iter().filter(|echo| echo.is_ok()).count();
    /// # Ok(()) }
    /// ```
    pub fn ripple(
        &self,
        recipients: impl Into<Recipients>,
        method: Method,
        body: impl Into<Substance>,
        bounce: BounceBacks,
    ) -> Vec<Echo> {
        let ripple =
            Ripple::new(self.surface(), recipients, method, body).with_bounce_backs(bounce);
        self.ripple_wave(ripple)
    }

    /// Sends a whole `ripple` (a path, headers, a wait time of its own …) from this mechtron
    /// and returns its Echoes, as [`Ctx::ripple`] does. Its id is drawn fresh unless it has
    /// one (a retry under the same id); its `from` and agent are the host's to set.
    pub fn ripple_wave(&self, mut ripple: Ripple) -> Vec<Echo> {
        if ripple.id.is_nil() {
            ripple.id = self.new_wave_id();
        }
        ripple.from = self.surface();
        self.host.ripple(ripple)
    }

    /// The content of the particle at `point` (e.g. a file of this mechtron's bundle), read
    /// with `Cmd<Read>`; a failure answer becomes an [`crate::Error`] with its status.
    pub fn read(&self, point: impl Into<Surface>) -> Result<Substance> {
        let pong = self.ping(point, Method::Cmd(CmdMethod::Read), ());
        Ok(pong.core.into_result()?)
    }

    /// The host's wall clock in nanoseconds since the Unix epoch (a guest has no clock of its
    /// own: `std::time::SystemTime::now` traps on `wasm32-unknown-unknown`).
    pub fn now(&self) -> u64 {
        self.host.now()
    }

    /// Fills `buf` with random bytes from the host.
    pub fn random(&self, buf: &mut [u8]) {
        self.host.random(buf);
    }

    /// A fresh random wave id.
    pub fn new_wave_id(&self) -> WaveId {
        let mut bytes = [0u8; 16];
        self.host.random(&mut bytes);
        WaveId::from_random_bytes(bytes)
    }

    fn surface(&self) -> Surface {
        Surface::core(self.details.stub.point.clone())
    }
}
