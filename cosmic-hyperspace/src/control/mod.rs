//! The control protocol (SPEC §13): how the `starlane` CLI drives a running `starlane serve`.
//!
//! The CLI connects over TCP (default `127.0.0.1:4343`) and exchanges frames: a 4-byte
//! length prefix and a [`cosmic_space::wire`] frame ([`Wire::encode_framed`]). The client
//! first sends [`ClientMessage::Hello`] with its token; the server answers
//! [`ServerMessage::Welcome`] with the agent the token stands for, or
//! [`ServerMessage::Denied`] and closes — an unauthenticated connection gets nothing else.
//! After that the client sends numbered [`Request`]s and the server answers each with an
//! [`Answer`] carrying the same number (answers may come in any order; the server works on
//! several requests of one connection at once, up to a limit).
//!
//! A directed [`Request::Ping`] is stamped by the server — the session's agent, zero hops, a
//! wait time within [`ControlLimits::max_wait`] — whatever the client put there, and a fresh
//! id unless the client chose one (a client retrying a request sends it again under the same
//! id, so the target can recognise it); then it is handed to the [`ControlService`] (the
//! machine), which routes it and returns the Pong.
//!
//! This module owns the messages, the server loop ([`serve`]), the client ([`Client`]), the
//! data-directory layout that lets the CLI find a server ([`write_endpoint`],
//! [`read_endpoint`]) and the machine's settings ([`MachineConfig`]). It knows nothing of
//! stars or particles: the [`ControlService`] does.
//!
//! ```
//! use std::sync::Arc;
//! use cosmic_hyperspace::channel::{Watch, WatchError};
//! use cosmic_hyperspace::control::{self, Client, ControlError, ControlService, StatusReport};
//! use cosmic_space::{Agent, Ping, Point, Pong, ReflectedCore, Selector};
//!
//! struct Echo;
//!
//! #[async_trait::async_trait]
//! impl ControlService for Echo {
//!     async fn authenticate(&self, token: &str) -> Option<Agent> {
//!         (token == "secret").then_some(Agent::HyperUser)
//!     }
//!     async fn ping(&self, _agent: Agent, ping: Ping) -> Pong {
//!         ping.pong(ReflectedCore::ok(ping.core.body.clone()))
//!     }
//!     async fn status(&self) -> StatusReport {
//!         StatusReport::default()
//!     }
//!     async fn issue_token(&self, _by: &Agent, _agent: Point) -> Result<String, ControlError> {
//!         control::generate_token()
//!     }
//!     async fn watch(&self, _agent: Agent, _selector: Selector) -> Result<Watch, WatchError> {
//!         Err(WatchError::Unavailable("an echo".into()))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(control::serve(listener, Arc::new(Echo), async move {
//!     let _ = stopped.await;
//! }));
//!
//! let mut client = Client::connect(addr, "secret").await?;
//! assert_eq!(client.agent(), &Agent::HyperUser);
//! let ping = Ping::new(
//!     client.agent().to_point(),
//!     Point::global_executor(),
//!     "Ext<Hello>".parse()?,
//!     "world",
//! );
//! let pong = client.ping(ping).await?;
//! assert_eq!(pong.core.body.as_text(), Some("world"));
//!
//! assert!(matches!(Client::connect(addr, "wrong").await, Err(ControlError::Denied(_))));
//! let _ = stop.send(());
//! server.await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use cosmic_space::{
    Agent, Kind, Ping, Point, Pong, Selector, Signal, StarKey, StatusCode, Token, WaitTime, Wire,
    WireError,
};
use serde::{Deserialize, Serialize};

use crate::channel::{Watch, WatchError};

mod client;
mod config;
mod endpoint;
mod frame;
mod server;
#[cfg(test)]
mod tests;

pub use client::{Client, Progress, Watching};
pub use config::{
    ClusterConfig, ConfigError, ENV_CONTROL, ENV_COSMOS, ENV_HOME, ENV_HTTP, ENV_LEASE, ENV_LOG,
    ENV_LOG_FORMAT, ENV_METRICS, ENV_NATS, ENV_REGISTRY, ENV_STARS, LogConfig, LogFormat,
    MachineConfig, RegistryUrl, SETTINGS_FILE, Settings, resolve_home,
};
pub use endpoint::{
    CONTROL_ADDR_FILE, Endpoint, HTTP_ADDR_FILE, TOKEN_FILE, clear_endpoint, generate_token,
    read_endpoint, write_endpoint,
};
pub use server::{serve, serve_with};

/// What the machine does for control connections; the server loop calls it, the machine
/// implements it.
#[async_trait]
pub trait ControlService: Send + Sync + 'static {
    /// The agent a token stands for, or `None` if the token is not valid. (Compare secrets in
    /// constant time.)
    async fn authenticate(&self, token: &str) -> Option<Agent>;

    /// Routes `ping` — already stamped with `agent`, an id (the client's, or a fresh one), zero
    /// hops and a bounded wait time — into the cosmos and returns its Pong (an error Pong,
    /// never nothing: SPEC §5.3).
    async fn ping(&self, agent: Agent, ping: Ping) -> Pong;

    /// The machine's status for `starlane status`.
    async fn status(&self) -> StatusReport;

    /// Issues a token that acts as `agent`; `by` is the session's agent, which the server has
    /// already checked is HyperUser.
    async fn issue_token(&self, by: &Agent, agent: Point) -> Result<String, ControlError>;

    /// Starts watching `selector` as `agent` (see [`Request::Watch`]).
    async fn watch(&self, agent: Agent, selector: Selector) -> Result<Watch, WatchError>;
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// The first message of every connection: the token that says who the client is.
    Hello {
        /// The secret.
        token: Token,
    },
    /// A request, numbered by the client; the answer carries the same number.
    Request {
        /// The client's number for it.
        number: u64,
        /// What it asks.
        request: Request,
    },
}

/// What an authenticated client may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Send a Ping into the cosmos and return its Pong (the server stamps the agent, and an id
    /// when the Ping has none).
    Ping(Box<Ping>),
    /// The machine's status.
    Status,
    /// Issue a token acting as `agent` (HyperUser sessions only).
    IssueToken {
        /// The agent the token will act as.
        agent: Point,
    },
    /// Watch what `selector` publishes — channels' messages and particles' lifecycle events
    /// the session's agent may read (SPEC §18) — until the connection closes: answered
    /// [`Answer::Watching`], then one [`ServerMessage::Delivery`] per wave. A connection
    /// watches once, and asks nothing else meanwhile.
    Watch {
        /// What to watch.
        selector: Selector,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The token is valid: the session acts as `agent`.
    Welcome {
        /// Who the session acts as.
        agent: Agent,
    },
    /// The token is not valid (or the first message was not a Hello); the server closes.
    Denied {
        /// Why.
        message: String,
    },
    /// The answer to request `number`.
    Answer {
        /// The request's number.
        number: u64,
        /// The answer.
        answer: Answer,
    },
    /// One wave a watch delivers (see [`Request::Watch`]).
    Delivery {
        /// The number of the Watch request.
        number: u64,
        /// The wave: a channel's message, or a lifecycle event.
        wave: Box<Signal>,
    },
    /// The server could not take a frame (malformed, too large, a second Hello) and closes.
    Refused {
        /// Why.
        message: String,
    },
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The Pong that answers a [`Request::Ping`].
    Pong(Box<Pong>),
    /// The answer to [`Request::Status`].
    Status(Box<StatusReport>),
    /// The answer to [`Request::IssueToken`].
    Token(Token),
    /// The answer to [`Request::Watch`]: deliveries follow.
    Watching,
    /// The request failed.
    Failed {
        /// How, as an HTTP-like status.
        status: StatusCode,
        /// Why.
        message: String,
    },
}

/// A machine's status, as `starlane status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusReport {
    /// The machine's name.
    pub machine: String,
    /// How long it has been serving.
    pub uptime: Duration,
    /// Its stars.
    pub stars: Vec<StarReport>,
    /// How many particles there are of each base kind (`Space`, `Artifact`, …).
    pub particles: BTreeMap<String, u64>,
    /// Where the control protocol listens.
    pub control: Option<SocketAddr>,
    /// Where the HTTP gateway listens.
    pub http: Option<SocketAddr>,
    /// Where the registry lives: `embedded, in HOME`, or the PostgreSQL URL with its password
    /// hidden.
    pub registry: String,
    /// Every machine of the cosmos, this one included, when it is one of several (empty for a
    /// machine alone).
    pub machines: Vec<MachineReport>,
}

/// One machine of a cosmos in a [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineReport {
    /// Its name.
    pub name: String,
    /// Whether its lease holds (alive) or it has been declared dead.
    pub alive: bool,
    /// How many stars it runs.
    pub stars: u16,
    /// How many particles are placed on its stars.
    pub particles: u64,
}

/// One star in a [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarReport {
    /// The star's key.
    pub key: StarKey,
    /// Its kind (`Star<Central>`, `Star<Machine>` …).
    pub kind: Kind,
    /// How many particles it hosts.
    pub particles: u64,
}

/// The limits of a control connection, on both sides; every one is configurable (SPEC §16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlLimits {
    /// The largest frame after the Hello (a request with a bundle, an answer with a file).
    pub max_frame: usize,
    /// The largest Hello frame (before the client is known, frames stay small).
    pub hello_frame: usize,
    /// How long a new connection has to deliver its whole Hello (and a client to connect).
    pub handshake: Duration,
    /// How long a session may sit without starting a new request before the server closes it.
    pub idle: Duration,
    /// How long a frame that has begun may stall between two reads or writes.
    pub stall: Duration,
    /// How many connections the server holds at once; more are closed at once.
    pub max_connections: usize,
    /// How many requests of one connection the server works on at once; it reads no more
    /// until one is answered.
    pub max_in_flight: usize,
    /// The longest wait time a Ping may ask for; longer ones are cut to this.
    pub max_wait: WaitTime,
    /// On shutdown, how long requests already under way have to be answered.
    pub grace: Duration,
}

impl ControlLimits {
    /// The default frame limit: a 256 MiB bundle plus 1 MiB for the rest of the request.
    pub const DEFAULT_MAX_FRAME: usize = 257 * 1024 * 1024;
}

impl Default for ControlLimits {
    fn default() -> Self {
        ControlLimits {
            max_frame: ControlLimits::DEFAULT_MAX_FRAME,
            hello_frame: 64 * 1024,
            handshake: Duration::from_secs(10),
            idle: Duration::from_secs(600),
            stall: Duration::from_secs(30),
            max_connections: 256,
            max_in_flight: 32,
            max_wait: WaitTime::from_secs(300),
            grace: Duration::from_secs(10),
        }
    }
}

impl ControlLimits {
    fn wire(&self) -> Wire {
        Wire::new(self.max_frame)
    }

    fn hello_wire(&self) -> Wire {
        Wire::new(self.hello_frame)
    }
}

/// Why a control operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No server answered at the address.
    #[error("cannot connect to the control address {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The connection broke.
    #[error("the control connection failed: {0}")]
    Io(#[from] io::Error),
    /// The other side did not answer or send in time.
    #[error("the control connection timed out {0}")]
    Timeout(&'static str),
    /// A frame could not be made or read (for example a request over the frame limit).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The server refused the token.
    #[error("the server refused the token: {0}")]
    Denied(String),
    /// The server closed the connection.
    #[error("the server closed the control connection{0}")]
    Closed(&'static str),
    /// The server could not take a frame and closed the connection.
    #[error("the server refused the request: {0}")]
    Refused(String),
    /// The other side broke the protocol.
    #[error("control protocol error: {0}")]
    Protocol(String),
    /// A request failed with a status, e.g. 403 for a token asked by someone not HyperUser.
    #[error("{status}: {message}")]
    Failed {
        /// How.
        status: StatusCode,
        /// Why.
        message: String,
    },
    /// The data directory names no running server.
    #[error("no running server found in {}: start one with `starlane serve`", home.display())]
    NoServer {
        /// The data directory.
        home: PathBuf,
    },
    /// A file of the data directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done: `read`, `write`, `remove`, `create`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file of the data directory holds something unexpected.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ControlError {
    /// The status a failed request answers with: the one a [`ControlError::Failed`] carries,
    /// 401 for [`ControlError::Denied`], 500 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            ControlError::Failed { status, .. } => *status,
            ControlError::Denied(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::ERROR,
        }
    }
}
