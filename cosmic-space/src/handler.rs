//! The Universal-side handler contract (SPEC §11.1): what a particle implements to answer
//! waves, and the [`Ctx`] it answers with.
//!
//! Everything here is synchronous so it works inside a wasm guest (no async runtime, no
//! threads). The guest SDK and the host each provide a [`Transmitter`] (how waves leave the
//! particle) and a [`Logger`]; the host side drives handlers through its own async layer.
//!
//! ```
//! use cosmic_space::{
//!     Ctx, DirectedHandler, DirectedWave, Echo, LogLevel, Logger, Method, Ping, Pong,
//!     ReflectedCore, Ripple, Signal, Substance,
//! };
//!
//! struct Hello;
//! impl DirectedHandler for Hello {
//!     fn handle(&mut self, ctx: &mut Ctx<'_>) -> ReflectedCore {
//!         let name = ctx.body().as_text().unwrap_or("stranger").to_string();
//!         ctx.info(format!("greeting {name}"));
//!         ReflectedCore::ok(format!("Goodbye, {name}!"))
//!     }
//! }
//!
//! struct Nowhere;
//! impl cosmic_space::Transmitter for Nowhere {
//!     fn ping(&self, ping: Ping) -> Pong { ping.pong(ReflectedCore::not_found()) }
//!     fn signal(&self, _: Signal) {}
//!     fn ripple(&self, _: Ripple) -> Vec<Echo> { Vec::new() }
//! }
//! struct Quiet;
//! impl Logger for Quiet { fn log(&self, _: LogLevel, _: &str) {} }
//!
//! let wave = DirectedWave::from(Ping::new(
//!     "localhost:client".parse::<cosmic_space::Point>()?,
//!     "localhost:hello".parse::<cosmic_space::Point>()?,
//!     Method::ext("Hello")?,
//!     "scott",
//! ));
//! let mut ctx = Ctx::new(&wave, &Nowhere, &Quiet);
//! let answer = Hello.handle(&mut ctx);
//! assert_eq!(answer.body, Substance::Text("Goodbye, scott!".into()));
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::access::Agent;
use crate::method::Method;
use crate::point::Point;
use crate::substance::Substance;
use crate::surface::Surface;
use crate::wave::{
    DirectedCore, DirectedWave, Echo, Headers, Ping, Pong, ReflectedCore, Ripple, Signal,
};

/// Something that answers directed waves: a mechtron, or a host-side driver's particle.
///
/// For a Signal the returned core is dropped: signals are never answered.
pub trait DirectedHandler {
    /// Answers the wave `ctx` holds.
    fn handle(&mut self, ctx: &mut Ctx<'_>) -> ReflectedCore;
}

impl<F> DirectedHandler for F
where
    F: FnMut(&mut Ctx<'_>) -> ReflectedCore,
{
    fn handle(&mut self, ctx: &mut Ctx<'_>) -> ReflectedCore {
        self(ctx)
    }
}

/// How waves leave a particle. The infrastructure stamps the id, the agent and (for guests)
/// `from` on the way out; a Ping always gets exactly one Pong back (408 on timeout).
pub trait Transmitter {
    /// Sends `ping` and waits for its Pong.
    fn ping(&self, ping: Ping) -> Pong;
    /// Sends `signal`; nothing comes back.
    fn signal(&self, signal: Signal);
    /// Sends `ripple` and returns the Echoes its bounce-back rule asks for.
    fn ripple(&self, ripple: Ripple) -> Vec<Echo>;
}

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    /// Fine-grained tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// The name in lower case (`"info"`).
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a particle's log lines go (the host's log, through `host_log` for a guest). Handler
/// contexts implement it too, so `ctx.info(…)` reads the same everywhere.
pub trait Logger {
    /// Records `message` at `level`.
    fn log(&self, level: LogLevel, message: &str);

    /// Logs at trace level.
    fn trace(&self, message: impl AsRef<str>)
    where
        Self: Sized,
    {
        self.log(LogLevel::Trace, message.as_ref());
    }

    /// Logs at debug level.
    fn debug(&self, message: impl AsRef<str>)
    where
        Self: Sized,
    {
        self.log(LogLevel::Debug, message.as_ref());
    }

    /// Logs at info level.
    fn info(&self, message: impl AsRef<str>)
    where
        Self: Sized,
    {
        self.log(LogLevel::Info, message.as_ref());
    }

    /// Logs at warn level.
    fn warn(&self, message: impl AsRef<str>)
    where
        Self: Sized,
    {
        self.log(LogLevel::Warn, message.as_ref());
    }

    /// Logs at error level.
    fn error(&self, message: impl AsRef<str>)
    where
        Self: Sized,
    {
        self.log(LogLevel::Error, message.as_ref());
    }
}

/// Values a route captured from the wave's path (`(?P<who>.*)` captures `who`).
pub type RouteVars = BTreeMap<String, String>;

/// What a handler sees while it answers one wave: the wave, route variables, and the means
/// to send waves and log.
pub struct Ctx<'a> {
    wave: &'a DirectedWave,
    transmitter: &'a dyn Transmitter,
    logger: &'a dyn Logger,
    vars: RouteVars,
    surface: Option<Surface>,
}

impl Logger for Ctx<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        self.logger.log(level, message);
    }
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("wave", &self.wave)
            .field("vars", &self.vars)
            .field("surface", &self.surface)
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    /// A context for answering `wave`, sending through `transmitter`, logging to `logger`.
    pub fn new(
        wave: &'a DirectedWave,
        transmitter: &'a dyn Transmitter,
        logger: &'a dyn Logger,
    ) -> Ctx<'a> {
        Ctx {
            wave,
            transmitter,
            logger,
            vars: RouteVars::new(),
            surface: None,
        }
    }

    /// The same context answering as `surface` (for a wave that does not name exactly one
    /// recipient, such as a Ripple not yet resolved to one).
    pub fn with_surface(mut self, surface: Surface) -> Ctx<'a> {
        self.surface = Some(surface);
        self
    }

    /// The same context with the variables a route captured.
    pub fn with_vars(mut self, vars: RouteVars) -> Ctx<'a> {
        self.vars = vars;
        self
    }

    /// The wave being answered.
    pub fn wave(&self) -> &'a DirectedWave {
        self.wave
    }

    /// The surface answering: the one set by [`Ctx::with_surface`], else where the wave was
    /// delivered. For a wave with no single recipient and no surface set, the wave's sender
    /// stands in (the infrastructure stamps the real `from` on everything a guest sends).
    pub fn surface(&self) -> &Surface {
        self.surface
            .as_ref()
            .or(self.wave.to_single())
            .unwrap_or(self.wave.sender())
    }

    /// The point of the particle answering.
    pub fn point(&self) -> &Point {
        &self.surface().point
    }

    /// Who the wave acts for.
    pub fn agent(&self) -> &'a Agent {
        self.wave.agent()
    }

    /// The wave's method.
    pub fn method(&self) -> &'a Method {
        self.wave.method()
    }

    /// The wave's path.
    pub fn path(&self) -> &'a str {
        self.wave.path()
    }

    /// The wave's headers.
    pub fn headers(&self) -> &'a Headers {
        &self.wave.core().headers
    }

    /// The wave's body.
    pub fn body(&self) -> &'a Substance {
        self.wave.body()
    }

    /// The route variable `name`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every route variable.
    pub fn vars(&self) -> &RouteVars {
        &self.vars
    }

    /// Pings `to` with `method` and `body` and returns the Pong. The Ping comes from this
    /// particle and carries the agent of the wave being answered (the hyperspace decides
    /// what a guest may act as).
    pub fn ping(&self, to: impl Into<Surface>, method: Method, body: impl Into<Substance>) -> Pong {
        self.send_ping(Ping::new(self.surface().clone(), to, method, body))
    }

    /// Sends a Ping built in full, stamping this wave's agent on it, and returns the Pong.
    pub fn send_ping(&self, ping: Ping) -> Pong {
        self.transmitter.ping(ping.with_agent(self.agent().clone()))
    }

    /// Pings `to` with `core` (a method, path, headers and body) and returns the Pong.
    pub fn ping_core(&self, to: impl Into<Surface>, core: DirectedCore) -> Pong {
        self.send_ping(Ping::with_core(self.surface().clone(), to, core))
    }

    /// Signals `to` with `method` and `body`; nothing comes back.
    pub fn signal(&self, to: impl Into<Surface>, method: Method, body: impl Into<Substance>) {
        let signal =
            Signal::new(self.surface().clone(), to, method, body).with_agent(self.agent().clone());
        self.transmitter.signal(signal);
    }

    /// Sends `ripple` (from this particle, with this wave's agent) and returns its Echoes.
    pub fn ripple(&self, ripple: Ripple) -> Vec<Echo> {
        let mut ripple = ripple.with_agent(self.agent().clone());
        ripple.from = self.surface().clone();
        self.transmitter.ripple(ripple)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::wave::{BounceBacks, Recipients, StatusCode, WaveId};

    /// Records what is sent; answers every Ping with its body echoed back.
    #[derive(Default)]
    struct Recorder {
        sent: RefCell<Vec<String>>,
    }

    impl Transmitter for Recorder {
        fn ping(&self, ping: Ping) -> Pong {
            self.sent.borrow_mut().push(format!(
                "ping {} as {} to {}",
                ping.from, ping.agent, ping.to
            ));
            let body = ping.core.body.clone();
            ping.pong(ReflectedCore::ok(body))
        }

        fn signal(&self, signal: Signal) {
            self.sent
                .borrow_mut()
                .push(format!("signal {} to {}", signal.from, signal.to));
        }

        fn ripple(&self, ripple: Ripple) -> Vec<Echo> {
            self.sent
                .borrow_mut()
                .push(format!("ripple {} to {}", ripple.from, ripple.to));
            match &ripple.to {
                Recipients::Multi(all) => all
                    .iter()
                    .map(|to| ripple.echo(to.clone(), ReflectedCore::ok(())))
                    .collect(),
                _ => Vec::new(),
            }
        }
    }

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl Logger for Lines {
        fn log(&self, level: LogLevel, message: &str) {
            self.0.borrow_mut().push(format!("{level}: {message}"));
        }
    }

    fn s(text: &str) -> Surface {
        text.parse().unwrap()
    }

    fn incoming() -> DirectedWave {
        Ping::new(
            s("localhost:client"),
            s("localhost:hello"),
            "Http<Get>".parse().unwrap(),
            (),
        )
        .with_path("/greet/scott")
        .with_header("Accept", "text/plain")
        .with_agent(Agent::Point("localhost:users:scott".parse().unwrap()))
        .with_id(WaveId::from_bytes([4; 16]))
        .into()
    }

    #[test]
    fn ctx_exposes_the_wave() {
        let wave = incoming();
        let (tx, log) = (Recorder::default(), Lines::default());
        let mut vars = RouteVars::new();
        vars.insert("who".into(), "scott".into());
        let ctx = Ctx::new(&wave, &tx, &log).with_vars(vars);
        assert_eq!(ctx.surface(), &s("localhost:hello"));
        assert_eq!(ctx.point().to_string(), "localhost:hello");
        assert_eq!(ctx.path(), "/greet/scott");
        assert_eq!(ctx.method().to_string(), "Http<Get>");
        assert_eq!(ctx.headers().get("accept"), Some("text/plain"));
        assert_eq!(ctx.body(), &Substance::Empty);
        assert_eq!(ctx.var("who"), Some("scott"));
        assert_eq!(ctx.var("nope"), None);
        assert_eq!(ctx.vars().len(), 1);
        assert_eq!(ctx.wave().id(), WaveId::from_bytes([4; 16]));
        assert!(format!("{ctx:?}").starts_with("Ctx { wave: Ping("));
        let ctx = ctx.with_surface(s("localhost:hello@Shell"));
        assert_eq!(ctx.surface(), &s("localhost:hello@Shell"));
    }

    #[test]
    fn ctx_sends_from_the_particle_with_the_callers_agent() {
        let wave = incoming();
        let (tx, log) = (Recorder::default(), Lines::default());
        let ctx = Ctx::new(&wave, &tx, &log);
        let ext = Method::ext("Count").unwrap();

        let pong = ctx.ping(s("localhost:counter"), ext.clone(), 3i64);
        assert_eq!(pong.core.status, StatusCode::OK);
        assert_eq!(pong.core.body, Substance::Int(3));
        assert_eq!(pong.to, s("localhost:hello"));

        let pong = ctx.ping_core(
            s("localhost:counter"),
            DirectedCore::new(ext.clone()).with_body("x"),
        );
        assert_eq!(pong.core.body, Substance::Text("x".into()));

        ctx.signal(s("localhost:audit"), ext.clone(), ());
        let echoes = ctx.ripple(
            Ripple::new(
                s("localhost:ignored"),
                vec![s("localhost:a"), s("localhost:b")],
                ext,
                (),
            )
            .with_bounce_backs(BounceBacks::Count(2)),
        );
        assert_eq!(echoes.len(), 2);
        assert_eq!(echoes[1].from, s("localhost:b"));

        assert_eq!(
            *tx.sent.borrow(),
            [
                "ping localhost:hello@Core as localhost:users:scott to localhost:counter@Core",
                "ping localhost:hello@Core as localhost:users:scott to localhost:counter@Core",
                "signal localhost:hello@Core to localhost:audit@Core",
                "ripple localhost:hello@Core to [localhost:a@Core, localhost:b@Core]",
            ]
        );
    }

    #[test]
    fn ctx_logs_at_every_level() {
        let wave = incoming();
        let (tx, log) = (Recorder::default(), Lines::default());
        let ctx = Ctx::new(&wave, &tx, &log);
        ctx.trace("t");
        ctx.debug("d");
        ctx.info(format!("greeting {}", "scott"));
        ctx.warn("w");
        ctx.error("e");
        assert_eq!(
            *log.0.borrow(),
            [
                "trace: t",
                "debug: d",
                "info: greeting scott",
                "warn: w",
                "error: e"
            ]
        );
    }

    #[test]
    fn handlers_answer_and_closures_are_handlers() {
        struct Counter(u64);
        impl DirectedHandler for Counter {
            fn handle(&mut self, ctx: &mut Ctx<'_>) -> ReflectedCore {
                self.0 += 1;
                match ctx.var("who") {
                    Some(who) => ReflectedCore::ok(format!("{who} #{}", self.0)),
                    None => ReflectedCore::bad_request("no one to greet"),
                }
            }
        }
        let wave = incoming();
        let (tx, log) = (Recorder::default(), Lines::default());
        let mut handler = Counter(0);
        let mut vars = RouteVars::new();
        vars.insert("who".into(), "scott".into());
        let mut ctx = Ctx::new(&wave, &tx, &log).with_vars(vars);
        assert_eq!(handler.handle(&mut ctx).body, Substance::from("scott #1"));
        assert_eq!(handler.handle(&mut ctx).body, Substance::from("scott #2"));
        let mut bare = Ctx::new(&wave, &tx, &log);
        assert_eq!(handler.handle(&mut bare).status, StatusCode::BAD_REQUEST);

        let mut closure = |ctx: &mut Ctx<'_>| ReflectedCore::ok(ctx.path().to_string());
        let answer = closure.handle(&mut bare);
        assert_eq!(answer.body, Substance::from("/greet/scott"));
        let reflected = wave.reflect(answer).unwrap();
        assert_eq!(reflected.reflection_of(), WaveId::from_bytes([4; 16]));
    }

    #[test]
    fn log_levels_order_and_print() {
        assert!(LogLevel::Error > LogLevel::Warn && LogLevel::Debug > LogLevel::Trace);
        assert_eq!(LogLevel::Info.to_string(), "info");
    }
}
