//! What a handler sees while it answers one wave ([`Ctx`]), and the [`Host`] it reaches the
//! cosmos through (SPEC §11.1): the `host_*` imports inside wasm, a recording fake in
//! [`crate::testing`].

use std::fmt;
use std::rc::Rc;

use cosmic_space::{
    Agent, CmdMethod, Details, DirectedCore, DirectedWave, Echo, Headers, LogLevel, Logger, Method,
    Ping, Point, Pong, Ripple, RouteVars, Signal, Substance, Surface, Transmitter, WaveId,
};

use crate::error::Result;

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

    /// The wave's path (`/` unless the sender chose one).
    pub fn path(&self) -> &str {
        self.wave.path()
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

    /// The route variable `name` (`(?P<who>.*)` in the route captures `who`).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
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

    /// Sends `ripple` from this mechtron and returns its Echoes.
    pub fn ripple(&self, ripple: Ripple) -> Vec<Echo> {
        let mut ripple = ripple.with_id(self.new_wave_id());
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
