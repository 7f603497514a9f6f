//! Waves: the messages particles exchange (SPEC §5).
//!
//! A **directed** wave asks ([`Ping`] to one surface, [`Ripple`] to many, [`Signal`] with no
//! answer); a **reflected** wave answers ([`Pong`] for a Ping, [`Echo`] for each recipient of a
//! Ripple). Every wave has an id, a `from` and a `to`, the [`Agent`] it acts for, its
//! [`Handling`], a hop count and a core ([`DirectedCore`] or [`ReflectedCore`]).
//!
//! Builders leave three things for the infrastructure to stamp: the id (a nil [`WaveId`]
//! until the sender assigns one — this crate has no randomness), the agent (Anonymous until the
//! hyperspace sets who the wave acts for) and the hop count.
//!
//! ```
//! use cosmic_space::{Method, Ping, ReflectedCore, Substance, Surface, StatusCode, WaveId};
//!
//! let from: Surface = "localhost:app:client".parse()?;
//! let to: Surface = "localhost:app:hello".parse()?;
//! let ping = Ping::new(from, to, Method::ext("Hello")?, "world")
//!     .with_id(WaveId::from_random_bytes([7; 16]))
//!     .with_path("/greet");
//!
//! let pong = ping.pong(ReflectedCore::ok("Goodbye, world!"));
//! assert_eq!(pong.reflection_of, ping.id);
//! assert_eq!(pong.to, ping.from);
//! assert_eq!(pong.core.status, StatusCode::OK);
//! assert_eq!(pong.core.body, Substance::Text("Goodbye, world!".into()));
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::access::Agent;
use crate::method::{CmdMethod, Method};
use crate::point::Point;
use crate::selector::Selector;
use crate::substance::{RawCommand, Substance};
use crate::surface::Surface;
use crate::syntax::{Cursor, ParseError, Span};

mod core;
mod query;

pub use self::core::{
    DirectedCore, Handling, Headers, Priority, ReflectedCore, StatusCode, WaitTime,
};
pub use self::query::{Query, percent_decode, split_target};

/// Why a wave operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveError {
    /// A status code outside 100–599.
    #[error("invalid status code {0}: a status code is 100-599")]
    InvalidStatus(u16),
    /// Signals are never answered (SPEC §5.3).
    #[error("a Signal cannot be reflected: signals are never answered")]
    SignalNotReflectable,
    /// A Ripple addressed to many recipients must be answered by one of them, named
    /// explicitly (`Ripple::echo`).
    #[error("this Ripple is addressed to {0}: name the recipient that answers")]
    UnresolvedRecipient(String),
    /// A wave was not of the kind asked for.
    #[error("expected {expected}, found a {found}")]
    WrongKind {
        /// What was wanted (`"Ping"`, `"a directed wave"` …).
        expected: &'static str,
        /// What it was.
        found: WaveKind,
    },
    /// A reflection carried a failure status.
    #[error("{status}: {message}")]
    Failed {
        /// The status of the reflection.
        status: StatusCode,
        /// Its error message (or the status's reason phrase).
        message: String,
    },
}

/// The id of a wave: a uuid. Reflections name the wave they answer by it.
///
/// The crate draws no random numbers: the host or guest SDK supplies random bytes
/// ([`WaveId::from_random_bytes`]), or, with the `os` feature, `WaveId::new()` does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct WaveId(Uuid);

impl WaveId {
    /// The nil id: "not assigned yet". Builders start with it; senders stamp a real one.
    pub const fn nil() -> WaveId {
        WaveId(Uuid::nil())
    }

    /// The id with exactly these 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> WaveId {
        WaveId(Uuid::from_bytes(bytes))
    }

    /// A version-4 (random) id made from 16 random bytes (the version bits are set).
    pub const fn from_random_bytes(bytes: [u8; 16]) -> WaveId {
        WaveId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// A fresh random id from the operating system (feature `os`).
    #[cfg(feature = "os")]
    #[allow(clippy::new_without_default)]
    pub fn new() -> WaveId {
        WaveId(Uuid::new_v4())
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id as a [`Uuid`].
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// Whether this is the nil ("not assigned yet") id.
    pub const fn is_nil(&self) -> bool {
        self.0.is_nil()
    }

    /// Parses a hyphenated uuid at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<WaveId, ParseError> {
        let at = c.pos();
        let text = c.take_while(|ch| ch.is_ascii_hexdigit() || ch == '-');
        Uuid::parse_str(text).map(WaveId).map_err(|e| {
            c.error_span(
                Span::new(at, c.pos()),
                format!("expected a wave id (a uuid): {e}"),
            )
        })
    }
}

impl From<Uuid> for WaveId {
    fn from(uuid: Uuid) -> Self {
        WaveId(uuid)
    }
}

impl fmt::Display for WaveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for WaveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaveId({})", self.0.hyphenated())
    }
}

impl FromStr for WaveId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("wave id", s, WaveId::parse)
    }
}

impl Serialize for WaveId {
    /// Sixteen bytes in binary formats, the hyphenated text in human-readable ones.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&self.0.hyphenated())
        } else {
            serializer.serialize_bytes(self.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for WaveId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Uuid::parse_str(&text).map(WaveId).map_err(D::Error::custom)
        } else {
            deserializer.deserialize_bytes(IdBytes)
        }
    }
}

/// Reads the sixteen bytes of a [`WaveId`], as one byte string or (from formats that write
/// bytes as arrays) a sequence.
struct IdBytes;

impl<'de> Visitor<'de> for IdBytes {
    type Value = WaveId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the 16 bytes of a wave id")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<WaveId, E> {
        <[u8; 16]>::try_from(bytes)
            .map(WaveId::from_bytes)
            .map_err(|_| E::invalid_length(bytes.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WaveId, A::Error> {
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seq
                .next_element()?
                .ok_or_else(|| A::Error::invalid_length(i, &self))?;
        }
        match seq.next_element::<u8>()? {
            None => Ok(WaveId::from_bytes(bytes)),
            Some(_) => Err(A::Error::invalid_length(17, &self)),
        }
    }
}

/// The five kinds of wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WaveKind {
    /// A request to one surface; answered by exactly one Pong.
    Ping,
    /// The answer to a Ping.
    Pong,
    /// A broadcast; answered by Echoes per its bounce-back rule.
    Ripple,
    /// One recipient's answer to a Ripple.
    Echo,
    /// A notification; never answered.
    Signal,
}

impl WaveKind {
    /// The name (`"Ping"`).
    pub fn name(self) -> &'static str {
        match self {
            WaveKind::Ping => "Ping",
            WaveKind::Pong => "Pong",
            WaveKind::Ripple => "Ripple",
            WaveKind::Echo => "Echo",
            WaveKind::Signal => "Signal",
        }
    }

    /// Whether waves of this kind ask (Ping, Ripple, Signal) rather than answer.
    pub fn is_directed(self) -> bool {
        matches!(self, WaveKind::Ping | WaveKind::Ripple | WaveKind::Signal)
    }
}

impl fmt::Display for WaveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a Ripple goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recipients {
    /// One surface. A Ripple delivered to one recipient of a larger set carries `Single` of
    /// that recipient.
    Single(Surface),
    /// A list of surfaces.
    Multi(Vec<Surface>),
    /// Every particle watching a point.
    Watchers(Point),
    /// Every star of the cosmos.
    Stars,
    /// Every particle the selector matches (resolved by the sender's star).
    Select(Selector),
}

impl Recipients {
    /// The surface, when there is exactly one.
    pub fn single(&self) -> Option<&Surface> {
        match self {
            Recipients::Single(surface) => Some(surface),
            _ => None,
        }
    }
}

impl From<Surface> for Recipients {
    fn from(surface: Surface) -> Self {
        Recipients::Single(surface)
    }
}

impl From<Vec<Surface>> for Recipients {
    fn from(surfaces: Vec<Surface>) -> Self {
        Recipients::Multi(surfaces)
    }
}

impl From<Point> for Recipients {
    /// The point's Core.
    fn from(point: Point) -> Self {
        Recipients::Single(Surface::core(point))
    }
}

impl From<Vec<Point>> for Recipients {
    /// The points' Cores.
    fn from(points: Vec<Point>) -> Self {
        Recipients::Multi(points.into_iter().map(Surface::core).collect())
    }
}

impl From<Selector> for Recipients {
    fn from(selector: Selector) -> Self {
        Recipients::Select(selector)
    }
}

impl fmt::Display for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipients::Single(surface) => write!(f, "{surface}"),
            Recipients::Multi(surfaces) => {
                f.write_str("[")?;
                for (i, surface) in surfaces.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{surface}")?;
                }
                f.write_str("]")
            }
            Recipients::Watchers(point) => write!(f, "watchers of {point}"),
            Recipients::Stars => f.write_str("every star"),
            Recipients::Select(selector) => write!(f, "{selector}"),
        }
    }
}

/// Which Echoes the sender of a Ripple waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum BounceBacks {
    /// None: the Ripple is fire-and-forget.
    #[default]
    None,
    /// The first Echo.
    Single,
    /// The first `n` Echoes.
    Count(u32),
    /// Every Echo that arrives until the timer runs out.
    Timer(WaitTime),
    /// An Echo from every recipient (or what arrived when the Ripple's wait time runs out).
    All,
}

/// Builder and accessor methods shared by the three directed wave structs.
macro_rules! directed_methods {
    ($name:ident) => {
        impl $name {
            /// The same wave with `id`.
            pub fn with_id(mut self, id: WaveId) -> Self {
                self.id = id;
                self
            }

            /// The same wave with the URI path `path`.
            pub fn with_path(mut self, path: impl Into<String>) -> Self {
                self.core.path = path.into();
                self
            }

            /// The same wave with header `name` set to `value`.
            pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
                self.core.headers.insert(name, value);
                self
            }

            /// The same wave with `body`.
            pub fn with_body(mut self, body: impl Into<Substance>) -> Self {
                self.core.body = body.into();
                self
            }

            /// The same wave acting for `agent` (the hyperspace overrides what a guest sets).
            pub fn with_agent(mut self, agent: Agent) -> Self {
                self.agent = agent;
                self
            }

            /// The same wave with its wait time set to `wait`.
            pub fn with_wait(mut self, wait: WaitTime) -> Self {
                self.handling.wait = wait;
                self
            }

            /// The same wave with `priority`.
            pub fn with_priority(mut self, priority: Priority) -> Self {
                self.handling.priority = priority;
                self
            }

            /// The same wave with `handling`.
            pub fn with_handling(mut self, handling: Handling) -> Self {
                self.handling = handling;
                self
            }

            /// The method.
            pub fn method(&self) -> &Method {
                &self.core.method
            }

            /// The body.
            pub fn body(&self) -> &Substance {
                &self.core.body
            }
        }
    };
}

/// Builder and accessor methods shared by the two reflected wave structs.
macro_rules! reflected_methods {
    ($name:ident) => {
        impl $name {
            /// The same wave with `id`.
            pub fn with_id(mut self, id: WaveId) -> Self {
                self.id = id;
                self
            }

            /// The same wave with header `name` set to `value`.
            pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
                self.core.headers.insert(name, value);
                self
            }

            /// The same wave acting for `agent`.
            pub fn with_agent(mut self, agent: Agent) -> Self {
                self.agent = agent;
                self
            }

            /// The status.
            pub fn status(&self) -> StatusCode {
                self.core.status
            }

            /// The body.
            pub fn body(&self) -> &Substance {
                &self.core.body
            }

            /// Whether the status is 2xx.
            pub fn is_ok(&self) -> bool {
                self.core.is_ok()
            }
        }
    };
}

/// A request to one surface; answered by exactly one [`Pong`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// This wave's id.
    pub id: WaveId,
    /// The sender.
    pub from: Surface,
    /// The target.
    pub to: Surface,
    /// Who the wave acts for.
    pub agent: Agent,
    /// Priority and wait time.
    pub handling: Handling,
    /// How many times the wave has been forwarded.
    pub hops: u16,
    /// What it asks.
    pub core: DirectedCore,
}

impl Ping {
    /// A Ping from `from` to `to` with `method` and `body` on path `/`; id nil, agent
    /// Anonymous, default handling.
    pub fn new(
        from: impl Into<Surface>,
        to: impl Into<Surface>,
        method: Method,
        body: impl Into<Substance>,
    ) -> Ping {
        Ping::with_core(from, to, DirectedCore::new(method).with_body(body))
    }

    /// A Ping from `from` asking `GLOBAL::executor` to run `command` (`Cmd<RawCommand>`): how
    /// every client — the CLI, tests, benchmarks — runs operator commands.
    pub fn command(from: impl Into<Surface>, command: RawCommand) -> Ping {
        Ping::new(
            from,
            Point::global_executor(),
            Method::Cmd(CmdMethod::RawCommand),
            Substance::RawCommand(command),
        )
    }

    /// A Ping carrying `core`.
    pub fn with_core(from: impl Into<Surface>, to: impl Into<Surface>, core: DirectedCore) -> Ping {
        Ping {
            id: WaveId::nil(),
            from: from.into(),
            to: to.into(),
            agent: Agent::Anonymous,
            handling: Handling::default(),
            hops: 0,
            core,
        }
    }

    /// The Pong that answers this Ping with `core`: from the Ping's target back to its sender,
    /// for the same agent, with a nil id for the sender to stamp.
    pub fn pong(&self, core: ReflectedCore) -> Pong {
        Pong {
            id: WaveId::nil(),
            from: self.to.clone(),
            to: self.from.clone(),
            intended: self.to.clone(),
            agent: self.agent.clone(),
            handling: self.handling,
            hops: 0,
            core,
            reflection_of: self.id,
        }
    }
}

directed_methods!(Ping);

/// A broadcast to many recipients; answered by [`Echo`]es per its [`BounceBacks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ripple {
    /// This wave's id.
    pub id: WaveId,
    /// The sender.
    pub from: Surface,
    /// Who it goes to.
    pub to: Recipients,
    /// Who the wave acts for.
    pub agent: Agent,
    /// Priority and wait time.
    pub handling: Handling,
    /// How many times the wave has been forwarded.
    pub hops: u16,
    /// Which Echoes the sender waits for.
    pub bounce_backs: BounceBacks,
    /// What it asks.
    pub core: DirectedCore,
}

impl Ripple {
    /// A Ripple from `from` to `to` with `method` and `body`; no bounce-backs (see
    /// [`Ripple::with_bounce_backs`]), id nil, agent Anonymous, default handling.
    pub fn new(
        from: impl Into<Surface>,
        to: impl Into<Recipients>,
        method: Method,
        body: impl Into<Substance>,
    ) -> Ripple {
        Ripple {
            id: WaveId::nil(),
            from: from.into(),
            to: to.into(),
            agent: Agent::Anonymous,
            handling: Handling::default(),
            hops: 0,
            bounce_backs: BounceBacks::None,
            core: DirectedCore::new(method).with_body(body),
        }
    }

    /// The same Ripple waiting for `bounce_backs`.
    pub fn with_bounce_backs(mut self, bounce_backs: BounceBacks) -> Ripple {
        self.bounce_backs = bounce_backs;
        self
    }

    /// The same Ripple as delivered to one of its recipients (`to` becomes
    /// `Recipients::Single(recipient)`), which is what a recipient's handler sees.
    pub fn to_recipient(&self, recipient: Surface) -> Ripple {
        Ripple {
            to: Recipients::Single(recipient),
            ..self.clone()
        }
    }

    /// The Ping `recipient`'s handler runs for this Ripple (same id, sender, agent and core);
    /// what it answers becomes the recipient's Echo.
    pub fn ping_for(&self, recipient: Surface) -> Ping {
        Ping {
            id: self.id,
            from: self.from.clone(),
            to: recipient,
            agent: self.agent.clone(),
            handling: self.handling,
            hops: self.hops,
            core: self.core.clone(),
        }
    }

    /// The Echo with which `responder` answers this Ripple.
    pub fn echo(&self, responder: Surface, core: ReflectedCore) -> Echo {
        Echo {
            id: WaveId::nil(),
            to: self.from.clone(),
            intended: responder.clone(),
            from: responder,
            agent: self.agent.clone(),
            handling: self.handling,
            hops: 0,
            core,
            reflection_of: self.id,
        }
    }
}

directed_methods!(Ripple);

/// A notification to one surface; never answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// This wave's id.
    pub id: WaveId,
    /// The sender.
    pub from: Surface,
    /// The target.
    pub to: Surface,
    /// Who the wave acts for.
    pub agent: Agent,
    /// Priority (the wait time is unused: nobody waits).
    pub handling: Handling,
    /// How many times the wave has been forwarded.
    pub hops: u16,
    /// What it says.
    pub core: DirectedCore,
}

impl Signal {
    /// A Signal from `from` to `to` with `method` and `body`; id nil, agent Anonymous.
    pub fn new(
        from: impl Into<Surface>,
        to: impl Into<Surface>,
        method: Method,
        body: impl Into<Substance>,
    ) -> Signal {
        Signal {
            id: WaveId::nil(),
            from: from.into(),
            to: to.into(),
            agent: Agent::Anonymous,
            handling: Handling::default(),
            hops: 0,
            core: DirectedCore::new(method).with_body(body),
        }
    }

    /// The same wave as a Ping, which is how a handler runs it (whatever it answers is
    /// dropped: nobody waits for a Signal).
    pub fn into_ping(self) -> Ping {
        Ping {
            id: self.id,
            from: self.from,
            to: self.to,
            agent: self.agent,
            handling: self.handling,
            hops: self.hops,
            core: self.core,
        }
    }
}

directed_methods!(Signal);

/// The answer to a [`Ping`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// This wave's id.
    pub id: WaveId,
    /// Who answered (the target, or the infrastructure answering for it).
    pub from: Surface,
    /// The Ping's sender.
    pub to: Surface,
    /// The surface the Ping was addressed to: the one this Pong answers for.
    pub intended: Surface,
    /// Who the wave acts for (the Ping's agent).
    pub agent: Agent,
    /// The Ping's handling.
    pub handling: Handling,
    /// How many times the wave has been forwarded.
    pub hops: u16,
    /// The answer.
    pub core: ReflectedCore,
    /// The id of the Ping answered.
    pub reflection_of: WaveId,
}

reflected_methods!(Pong);

/// One recipient's answer to a [`Ripple`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// This wave's id.
    pub id: WaveId,
    /// Who answered.
    pub from: Surface,
    /// The Ripple's sender.
    pub to: Surface,
    /// The recipient this Echo answers for.
    pub intended: Surface,
    /// Who the wave acts for (the Ripple's agent).
    pub agent: Agent,
    /// The Ripple's handling.
    pub handling: Handling,
    /// How many times the wave has been forwarded.
    pub hops: u16,
    /// The answer.
    pub core: ReflectedCore,
    /// The id of the Ripple answered.
    pub reflection_of: WaveId,
}

reflected_methods!(Echo);

/// A wave that asks: Ping, Ripple or Signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectedWave {
    /// A request to one surface.
    Ping(Ping),
    /// A broadcast.
    Ripple(Ripple),
    /// A notification.
    Signal(Signal),
}

/// A wave that answers: Pong or Echo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReflectedWave {
    /// The answer to a Ping.
    Pong(Pong),
    /// One answer to a Ripple.
    Echo(Echo),
}

/// Any wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wave {
    /// A wave that asks.
    Directed(DirectedWave),
    /// A wave that answers.
    Reflected(ReflectedWave),
}

/// Expands to `$body` with `$w` bound to the inner struct of a directed wave.
macro_rules! each_directed {
    ($wave:expr, $w:ident => $body:expr) => {
        match $wave {
            DirectedWave::Ping($w) => $body,
            DirectedWave::Ripple($w) => $body,
            DirectedWave::Signal($w) => $body,
        }
    };
}

/// Expands to `$body` with `$w` bound to the inner struct of a reflected wave.
macro_rules! each_reflected {
    ($wave:expr, $w:ident => $body:expr) => {
        match $wave {
            ReflectedWave::Pong($w) => $body,
            ReflectedWave::Echo($w) => $body,
        }
    };
}

impl DirectedWave {
    /// The kind: Ping, Ripple or Signal.
    pub fn kind(&self) -> WaveKind {
        match self {
            DirectedWave::Ping(_) => WaveKind::Ping,
            DirectedWave::Ripple(_) => WaveKind::Ripple,
            DirectedWave::Signal(_) => WaveKind::Signal,
        }
    }

    /// The id.
    pub fn id(&self) -> WaveId {
        each_directed!(self, w => w.id)
    }

    /// The sender.
    pub fn sender(&self) -> &Surface {
        each_directed!(self, w => &w.from)
    }

    /// Who it goes to (a Ping or Signal: `Single`).
    pub fn to(&self) -> Recipients {
        match self {
            DirectedWave::Ping(w) => Recipients::Single(w.to.clone()),
            DirectedWave::Ripple(w) => w.to.clone(),
            DirectedWave::Signal(w) => Recipients::Single(w.to.clone()),
        }
    }

    /// The one surface it goes to, if it goes to exactly one.
    pub fn to_single(&self) -> Option<&Surface> {
        match self {
            DirectedWave::Ping(w) => Some(&w.to),
            DirectedWave::Ripple(w) => w.to.single(),
            DirectedWave::Signal(w) => Some(&w.to),
        }
    }

    /// Who it acts for.
    pub fn agent(&self) -> &Agent {
        each_directed!(self, w => &w.agent)
    }

    /// Its priority and wait time.
    pub fn handling(&self) -> &Handling {
        each_directed!(self, w => &w.handling)
    }

    /// How many times it has been forwarded.
    pub fn hops(&self) -> u16 {
        each_directed!(self, w => w.hops)
    }

    /// What it asks.
    pub fn core(&self) -> &DirectedCore {
        each_directed!(self, w => &w.core)
    }

    /// What it asks, to change (a bind's pipeline may rewrite path or headers).
    pub fn core_mut(&mut self) -> &mut DirectedCore {
        each_directed!(self, w => &mut w.core)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.core().method
    }

    /// The URI path.
    pub fn path(&self) -> &str {
        &self.core().path
    }

    /// The body.
    pub fn body(&self) -> &Substance {
        &self.core().body
    }

    /// Stamps the id (the sender does this).
    pub fn set_id(&mut self, id: WaveId) {
        each_directed!(self, w => w.id = id)
    }

    /// Stamps the sender (the infrastructure does this for guests).
    pub fn set_from(&mut self, from: Surface) {
        each_directed!(self, w => w.from = from)
    }

    /// Stamps who the wave acts for (only the hyperspace does this).
    pub fn set_agent(&mut self, agent: Agent) {
        each_directed!(self, w => w.agent = agent)
    }

    /// Counts one more hop (saturating) and returns the new count.
    pub fn add_hop(&mut self) -> u16 {
        each_directed!(self, w => {
            w.hops = w.hops.saturating_add(1);
            w.hops
        })
    }

    /// The reflection that answers this wave with `core`: a Pong for a Ping, an Echo for a
    /// Ripple delivered to one recipient. Signals are never answered.
    pub fn reflect(&self, core: ReflectedCore) -> Result<ReflectedWave, WaveError> {
        match self {
            DirectedWave::Ping(ping) => Ok(ReflectedWave::Pong(ping.pong(core))),
            DirectedWave::Ripple(ripple) => match &ripple.to {
                Recipients::Single(responder) => {
                    Ok(ReflectedWave::Echo(ripple.echo(responder.clone(), core)))
                }
                other => Err(WaveError::UnresolvedRecipient(other.to_string())),
            },
            DirectedWave::Signal(_) => Err(WaveError::SignalNotReflectable),
        }
    }

    /// The reflection with which `responder` answers this wave (for a Ping, `responder`
    /// becomes the Pong's `from`; its `intended` stays the Ping's target).
    pub fn reflect_from(
        &self,
        responder: Surface,
        core: ReflectedCore,
    ) -> Result<ReflectedWave, WaveError> {
        match self {
            DirectedWave::Ping(ping) => {
                let mut pong = ping.pong(core);
                pong.from = responder;
                Ok(ReflectedWave::Pong(pong))
            }
            DirectedWave::Ripple(ripple) => Ok(ReflectedWave::Echo(ripple.echo(responder, core))),
            DirectedWave::Signal(_) => Err(WaveError::SignalNotReflectable),
        }
    }
}

impl ReflectedWave {
    /// The kind: Pong or Echo.
    pub fn kind(&self) -> WaveKind {
        match self {
            ReflectedWave::Pong(_) => WaveKind::Pong,
            ReflectedWave::Echo(_) => WaveKind::Echo,
        }
    }

    /// The id.
    pub fn id(&self) -> WaveId {
        each_reflected!(self, w => w.id)
    }

    /// Who answered.
    pub fn sender(&self) -> &Surface {
        each_reflected!(self, w => &w.from)
    }

    /// The sender of the directed wave answered.
    pub fn to(&self) -> &Surface {
        each_reflected!(self, w => &w.to)
    }

    /// The surface the directed wave was addressed to.
    pub fn intended(&self) -> &Surface {
        each_reflected!(self, w => &w.intended)
    }

    /// Who it acts for.
    pub fn agent(&self) -> &Agent {
        each_reflected!(self, w => &w.agent)
    }

    /// Its priority and wait time.
    pub fn handling(&self) -> &Handling {
        each_reflected!(self, w => &w.handling)
    }

    /// How many times it has been forwarded.
    pub fn hops(&self) -> u16 {
        each_reflected!(self, w => w.hops)
    }

    /// The answer.
    pub fn core(&self) -> &ReflectedCore {
        each_reflected!(self, w => &w.core)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.core().status
    }

    /// The body.
    pub fn body(&self) -> &Substance {
        &self.core().body
    }

    /// The id of the directed wave answered.
    pub fn reflection_of(&self) -> WaveId {
        each_reflected!(self, w => w.reflection_of)
    }

    /// Stamps the id (the sender does this).
    pub fn set_id(&mut self, id: WaveId) {
        each_reflected!(self, w => w.id = id)
    }

    /// Stamps who answered (the infrastructure does this for guests).
    pub fn set_from(&mut self, from: Surface) {
        each_reflected!(self, w => w.from = from)
    }

    /// Stamps who the wave acts for (only the hyperspace does this).
    pub fn set_agent(&mut self, agent: Agent) {
        each_reflected!(self, w => w.agent = agent)
    }

    /// Counts one more hop (saturating) and returns the new count.
    pub fn add_hop(&mut self) -> u16 {
        each_reflected!(self, w => {
            w.hops = w.hops.saturating_add(1);
            w.hops
        })
    }
}

impl Wave {
    /// The kind.
    pub fn kind(&self) -> WaveKind {
        match self {
            Wave::Directed(w) => w.kind(),
            Wave::Reflected(w) => w.kind(),
        }
    }

    /// Whether it asks.
    pub fn is_directed(&self) -> bool {
        matches!(self, Wave::Directed(_))
    }

    /// Whether it answers.
    pub fn is_reflected(&self) -> bool {
        matches!(self, Wave::Reflected(_))
    }

    /// The id.
    pub fn id(&self) -> WaveId {
        match self {
            Wave::Directed(w) => w.id(),
            Wave::Reflected(w) => w.id(),
        }
    }

    /// The sender.
    pub fn sender(&self) -> &Surface {
        match self {
            Wave::Directed(w) => w.sender(),
            Wave::Reflected(w) => w.sender(),
        }
    }

    /// Who it goes to.
    pub fn to(&self) -> Recipients {
        match self {
            Wave::Directed(w) => w.to(),
            Wave::Reflected(w) => Recipients::Single(w.to().clone()),
        }
    }

    /// Who it acts for.
    pub fn agent(&self) -> &Agent {
        match self {
            Wave::Directed(w) => w.agent(),
            Wave::Reflected(w) => w.agent(),
        }
    }

    /// Its priority and wait time.
    pub fn handling(&self) -> &Handling {
        match self {
            Wave::Directed(w) => w.handling(),
            Wave::Reflected(w) => w.handling(),
        }
    }

    /// How many times it has been forwarded.
    pub fn hops(&self) -> u16 {
        match self {
            Wave::Directed(w) => w.hops(),
            Wave::Reflected(w) => w.hops(),
        }
    }

    /// Stamps the id.
    pub fn set_id(&mut self, id: WaveId) {
        match self {
            Wave::Directed(w) => w.set_id(id),
            Wave::Reflected(w) => w.set_id(id),
        }
    }

    /// Stamps who the wave acts for.
    pub fn set_agent(&mut self, agent: Agent) {
        match self {
            Wave::Directed(w) => w.set_agent(agent),
            Wave::Reflected(w) => w.set_agent(agent),
        }
    }

    /// Counts one more hop (saturating) and returns the new count.
    pub fn add_hop(&mut self) -> u16 {
        match self {
            Wave::Directed(w) => w.add_hop(),
            Wave::Reflected(w) => w.add_hop(),
        }
    }
}

/// `From` each wave struct into its family enum and into [`Wave`], and `TryFrom` back.
macro_rules! wave_conversions {
    ($family:ident :: $variant:ident ($ty:ident), $outer:ident) => {
        impl From<$ty> for $family {
            fn from(wave: $ty) -> Self {
                $family::$variant(wave)
            }
        }

        impl From<$ty> for Wave {
            fn from(wave: $ty) -> Self {
                Wave::$outer($family::$variant(wave))
            }
        }

        impl TryFrom<$family> for $ty {
            type Error = WaveError;
            fn try_from(wave: $family) -> Result<Self, WaveError> {
                match wave {
                    $family::$variant(w) => Ok(w),
                    #[allow(unreachable_patterns)]
                    other => Err(WaveError::WrongKind {
                        expected: stringify!($ty),
                        found: other.kind(),
                    }),
                }
            }
        }

        impl TryFrom<Wave> for $ty {
            type Error = WaveError;
            fn try_from(wave: Wave) -> Result<Self, WaveError> {
                match wave {
                    Wave::$outer($family::$variant(w)) => Ok(w),
                    other => Err(WaveError::WrongKind {
                        expected: stringify!($ty),
                        found: other.kind(),
                    }),
                }
            }
        }
    };
}

wave_conversions!(DirectedWave::Ping(Ping), Directed);
wave_conversions!(DirectedWave::Ripple(Ripple), Directed);
wave_conversions!(DirectedWave::Signal(Signal), Directed);
wave_conversions!(ReflectedWave::Pong(Pong), Reflected);
wave_conversions!(ReflectedWave::Echo(Echo), Reflected);

impl From<DirectedWave> for Wave {
    fn from(wave: DirectedWave) -> Self {
        Wave::Directed(wave)
    }
}

impl From<ReflectedWave> for Wave {
    fn from(wave: ReflectedWave) -> Self {
        Wave::Reflected(wave)
    }
}

impl TryFrom<Wave> for DirectedWave {
    type Error = WaveError;
    fn try_from(wave: Wave) -> Result<Self, WaveError> {
        match wave {
            Wave::Directed(w) => Ok(w),
            Wave::Reflected(w) => Err(WaveError::WrongKind {
                expected: "a directed wave",
                found: w.kind(),
            }),
        }
    }
}

impl TryFrom<Wave> for ReflectedWave {
    type Error = WaveError;
    fn try_from(wave: Wave) -> Result<Self, WaveError> {
        match wave {
            Wave::Reflected(w) => Ok(w),
            Wave::Directed(w) => Err(WaveError::WrongKind {
                expected: "a reflected wave",
                found: w.kind(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::Layer;

    fn surface(s: &str) -> Surface {
        s.parse().unwrap()
    }

    fn hello() -> Method {
        Method::ext("Hello").unwrap()
    }

    fn ping() -> Ping {
        Ping::new(
            surface("localhost:app:client"),
            surface("localhost:app:hello"),
            hello(),
            "world",
        )
        .with_id(WaveId::from_bytes([1; 16]))
    }

    #[test]
    fn ping_builder_defaults() {
        let ping = Ping::new(
            surface("localhost:a"),
            "localhost:b".parse::<Point>().unwrap(),
            hello(),
            "x",
        );
        assert!(ping.id.is_nil());
        assert_eq!(ping.to, surface("localhost:b@Core"));
        assert_eq!(ping.agent, Agent::Anonymous);
        assert_eq!(ping.handling, Handling::default());
        assert_eq!(ping.handling.wait.as_millis(), 30_000);
        assert_eq!(ping.hops, 0);
        assert_eq!(ping.core.path, "/");
        assert_eq!(ping.body(), &Substance::Text("x".into()));
        assert_eq!(ping.method(), &hello());
    }

    #[test]
    fn ping_builders_set_what_they_say() {
        let ping = ping()
            .with_path("/greet/scott")
            .with_header("X-Trace", "abc")
            .with_agent(Agent::HyperUser)
            .with_wait(WaitTime::from_secs(5))
            .with_priority(Priority::High)
            .with_body(42i64);
        assert_eq!(ping.core.path, "/greet/scott");
        assert_eq!(ping.core.headers.get("x-trace"), Some("abc"));
        assert_eq!(ping.agent, Agent::HyperUser);
        assert_eq!(ping.handling.wait, WaitTime::from_millis(5000));
        assert_eq!(ping.handling.priority, Priority::High);
        assert_eq!(ping.core.body, Substance::Int(42));
    }

    #[test]
    fn pong_swaps_from_and_to_and_names_the_ping() {
        let ping = ping().with_agent(Agent::HyperUser);
        let pong = ping.pong(ReflectedCore::ok("bye"));
        assert!(pong.id.is_nil());
        assert_eq!(pong.from, ping.to);
        assert_eq!(pong.to, ping.from);
        assert_eq!(pong.intended, ping.to);
        assert_eq!(pong.reflection_of, WaveId::from_bytes([1; 16]));
        assert_eq!(pong.agent, Agent::HyperUser);
        assert_eq!(pong.status(), StatusCode::OK);
        assert!(pong.is_ok());
        assert_eq!(pong.body(), &Substance::Text("bye".into()));
    }

    #[test]
    fn directed_reflect() {
        let wave = DirectedWave::from(ping());
        let reflected = wave.reflect(ReflectedCore::not_found()).unwrap();
        assert_eq!(reflected.kind(), WaveKind::Pong);
        assert_eq!(reflected.reflection_of(), wave.id());
        assert_eq!(reflected.to(), wave.sender());
        assert_eq!(reflected.status(), StatusCode::NOT_FOUND);

        let field = surface("localhost:app:hello@Field");
        let reflected = wave
            .reflect_from(field.clone(), ReflectedCore::forbidden())
            .unwrap();
        assert_eq!(reflected.sender(), &field);
        assert_eq!(reflected.intended(), &surface("localhost:app:hello"));

        let signal = DirectedWave::from(Signal::new(
            surface("localhost:a"),
            surface("localhost:b"),
            hello(),
            (),
        ));
        assert_eq!(
            signal.reflect(ReflectedCore::ok(())),
            Err(WaveError::SignalNotReflectable)
        );
        assert_eq!(
            signal.reflect_from(surface("localhost:b"), ReflectedCore::ok(())),
            Err(WaveError::SignalNotReflectable)
        );
    }

    #[test]
    fn ripples_echo_per_recipient() {
        let a = surface("localhost:a");
        let b = surface("localhost:b");
        let ripple = Ripple::new(
            surface("localhost:src"),
            vec![a.clone(), b.clone()],
            hello(),
            (),
        )
        .with_id(WaveId::from_bytes([9; 16]))
        .with_bounce_backs(BounceBacks::Count(2));
        assert_eq!(ripple.bounce_backs, BounceBacks::Count(2));

        let wave = DirectedWave::from(ripple.clone());
        assert_eq!(wave.to_single(), None);
        assert_eq!(
            wave.reflect(ReflectedCore::ok(())),
            Err(WaveError::UnresolvedRecipient(
                "[localhost:a@Core, localhost:b@Core]".into()
            ))
        );

        let delivered = DirectedWave::from(ripple.to_recipient(b.clone()));
        let echo = delivered.reflect(ReflectedCore::ok(true)).unwrap();
        assert_eq!(echo.kind(), WaveKind::Echo);
        assert_eq!(echo.sender(), &b);
        assert_eq!(echo.to(), &surface("localhost:src"));
        assert_eq!(echo.reflection_of(), WaveId::from_bytes([9; 16]));

        let echo = ripple.echo(a.clone(), ReflectedCore::ok(()));
        assert_eq!(echo.from, a);
        assert_eq!(echo.intended, a);
        assert_eq!(BounceBacks::default(), BounceBacks::None);
    }

    #[test]
    fn accessors_agree_across_families() {
        let mut wave = Wave::from(ping());
        assert_eq!(wave.kind(), WaveKind::Ping);
        assert!(wave.is_directed() && !wave.is_reflected());
        assert_eq!(wave.id(), WaveId::from_bytes([1; 16]));
        assert_eq!(wave.sender(), &surface("localhost:app:client"));
        assert_eq!(
            wave.to(),
            Recipients::Single(surface("localhost:app:hello"))
        );
        assert_eq!(wave.agent(), &Agent::Anonymous);
        assert_eq!(wave.add_hop(), 1);
        assert_eq!(wave.hops(), 1);
        wave.set_agent(Agent::HyperUser);
        wave.set_id(WaveId::from_bytes([2; 16]));
        assert_eq!(wave.agent(), &Agent::HyperUser);
        assert_eq!(wave.id(), WaveId::from_bytes([2; 16]));
        assert_eq!(wave.handling().priority, Priority::Normal);

        let mut directed = DirectedWave::try_from(wave).unwrap();
        directed.set_from(surface("localhost:other@Shell"));
        directed.core_mut().path = "/x".into();
        assert_eq!(directed.sender().layer, Layer::Shell);
        assert_eq!(directed.path(), "/x");
        assert_eq!(directed.method(), &hello());
        assert_eq!(directed.body(), &Substance::Text("world".into()));

        let mut reflected = directed.reflect(ReflectedCore::ok(1i64)).unwrap();
        reflected.set_id(WaveId::from_bytes([3; 16]));
        reflected.set_from(surface("localhost:x"));
        reflected.set_agent(Agent::HyperUser);
        assert_eq!(reflected.add_hop(), 1);
        assert_eq!(reflected.hops(), 1);
        assert_eq!(reflected.body(), &Substance::Int(1));
        assert_eq!(reflected.handling().priority, Priority::Normal);
        assert_eq!(reflected.agent(), &Agent::HyperUser);
        let wave = Wave::from(reflected);
        assert_eq!(wave.kind(), WaveKind::Pong);
        assert_eq!(wave.id(), WaveId::from_bytes([3; 16]));
        assert_eq!(wave.sender(), &surface("localhost:x"));
    }

    #[test]
    fn hops_saturate() {
        let mut ping = DirectedWave::from(ping());
        if let DirectedWave::Ping(p) = &mut ping {
            p.hops = u16::MAX;
        }
        assert_eq!(ping.add_hop(), u16::MAX);
    }

    #[test]
    fn conversions_check_the_kind() {
        let wave = Wave::from(ping());
        assert_eq!(Ping::try_from(wave.clone()).map(|p| p.id), Ok(ping().id));
        assert_eq!(
            Signal::try_from(wave.clone()),
            Err(WaveError::WrongKind {
                expected: "Signal",
                found: WaveKind::Ping
            })
        );
        assert_eq!(
            ReflectedWave::try_from(wave.clone()),
            Err(WaveError::WrongKind {
                expected: "a reflected wave",
                found: WaveKind::Ping
            })
        );
        let pong = ping().pong(ReflectedCore::ok(()));
        assert_eq!(
            Echo::try_from(ReflectedWave::from(pong.clone()))
                .unwrap_err()
                .to_string(),
            "expected Echo, found a Pong"
        );
        assert_eq!(Pong::try_from(Wave::from(pong.clone())), Ok(pong));
    }

    #[test]
    fn wave_ids() {
        let id = WaveId::from_random_bytes([0xff; 16]);
        assert_eq!(id.as_uuid().get_version_num(), 4);
        assert_eq!(WaveId::from_bytes([0xab; 16]).as_bytes(), &[0xab; 16]);
        let text = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let parsed: WaveId = text.parse().unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(format!("{parsed:?}"), format!("WaveId({text})"));
        assert!(WaveId::nil().is_nil() && !parsed.is_nil());
        let err = "67e55044-nope".parse::<WaveId>().unwrap_err();
        assert_eq!(err.line_col(), (1, 1));
        assert!(
            "67e55044-10b1-426f-9247-bb680e5fe0c8 x"
                .parse::<WaveId>()
                .is_err()
        );
    }

    #[test]
    fn wave_ids_are_text_in_json() {
        let id = WaveId::from_bytes([0x11; 16]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"11111111-1111-1111-1111-111111111111\"");
        assert_eq!(serde_json::from_str::<WaveId>(&json).unwrap(), id);
    }

    #[cfg(feature = "os")]
    #[test]
    fn random_wave_ids_differ() {
        assert_ne!(WaveId::new(), WaveId::new());
    }

    #[test]
    fn recipients_display() {
        assert_eq!(
            Recipients::Watchers("localhost:a".parse().unwrap()).to_string(),
            "watchers of localhost:a"
        );
        assert_eq!(Recipients::Stars.to_string(), "every star");
        assert_eq!(
            Recipients::from(surface("localhost")).to_string(),
            "localhost@Core"
        );
        assert_eq!(WaveKind::Echo.to_string(), "Echo");
        assert!(WaveKind::Signal.is_directed() && !WaveKind::Pong.is_directed());
    }
}
