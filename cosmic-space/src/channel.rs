//! Channels and events (SPEC §18): who subscribed to what, and how a channel's messages and a
//! particle's lifecycle events look when they arrive.
//!
//! A **subscription** names a subscriber (the surface deliveries go to), a selector (the
//! channels whose messages and the particles whose events it receives) and the agent it acts
//! as: every delivery is checked as that agent (`r` on the channel or particle it comes from).
//!
//! A channel's message arrives as a [`Signal`] with the method, path, headers and body it was
//! published with, `from` the channel, and the publisher's agent in the [`PUBLISHER`] header.
//! A lifecycle event arrives as a `Cmd<Event>` Signal `from` the particle, its [`Event`] named
//! in the [`EVENT`] header, and the particle's [`Stub`] (its [`Details`] for a change of
//! properties) as the body.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::access::Agent;
use crate::method::{CmdMethod, Method};
use crate::particle::{Details, Status, Stub};
use crate::point::Point;
use crate::selector::Selector;
use crate::substance::Substance;
use crate::surface::Surface;
use crate::wave::{DirectedCore, Signal};

/// The header that names the agent who published a channel's message.
pub const PUBLISHER: &str = "publisher";

/// The header that names a lifecycle event (`created`, `status`, `properties`, `deleted`,
/// `online`, `offline`).
pub const EVENT: &str = "event";

/// One subscriber's interest in what a selector matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subscription {
    /// Where deliveries go.
    pub subscriber: Surface,
    /// The channels (messages) and particles (lifecycle events) it hears from.
    pub selector: Selector,
    /// Who it listens as: each delivery needs `r` for this agent on its source.
    pub agent: Agent,
}

/// What happened to a particle (or a machine), as its subscribers hear it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// It was registered.
    Created,
    /// Its status changed (Ready, Panic, Fatal …).
    Status(Status),
    /// Its properties (or content) changed.
    Properties,
    /// It was deleted.
    Deleted,
    /// A machine started serving (published from its star's point).
    Online,
    /// A machine stopped serving or was declared dead.
    Offline,
}

impl Event {
    /// The event's name, as the [`EVENT`] header carries it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::Status(_) => "status",
            Event::Properties => "properties",
            Event::Deleted => "deleted",
            Event::Online => "online",
            Event::Offline => "offline",
        }
    }

    /// What a subscriber of this event receives (from the particle, as the particle): a
    /// `Cmd<Event>` naming it in the [`EVENT`] header, with the particle's `stub` as the body
    /// (its `details` when given, for a change of properties).
    pub fn core(&self, stub: Stub, details: Option<Details>) -> DirectedCore {
        let body = match details {
            Some(details) => Substance::Details(Box::new(details)),
            None => Substance::Stub(Box::new(stub)),
        };
        DirectedCore::new(Method::Cmd(CmdMethod::Event))
            .with_header(EVENT, self.name())
            .with_body(body)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Status(status) => write!(f, "status {status}"),
            other => f.write_str(other.name()),
        }
    }
}

/// The event a lifecycle Signal carries, read back from its [`EVENT`] header and body.
pub fn event_of(signal: &Signal) -> Option<(Point, Event)> {
    if signal.core.method != Method::Cmd(CmdMethod::Event) {
        return None;
    }
    let name = signal.core.headers.get(EVENT)?;
    let (point, status) = match &signal.core.body {
        Substance::Stub(stub) => (stub.point.clone(), stub.status.clone()),
        Substance::Details(details) => (details.stub.point.clone(), details.stub.status.clone()),
        _ => (signal.from.point.clone(), Status::Unknown),
    };
    let event = match name {
        "created" => Event::Created,
        "status" => Event::Status(status),
        "properties" => Event::Properties,
        "deleted" => Event::Deleted,
        "online" => Event::Online,
        "offline" => Event::Offline,
        _ => return None,
    };
    Some((point, event))
}
