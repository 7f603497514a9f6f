//! # cosmic-space — the Universal API of Starlane
//!
//! Everything a particle sees: [`Point`]s that address particles, [`Kind`]s that type them,
//! [`Selector`]s that match them, [`Wave`]s that carry [`Substance`] between them, the command
//! language operators speak, bind and mechtron documents, the security data model, and the
//! [`wire`] format waves cross process and guest boundaries in.
//!
//! The crate builds for `wasm32-unknown-unknown` with its default features: it uses no OS
//! services. Random wave ids and the clock come from the host (feature `os` turns on the
//! host's own).
//!
//! ```
//! use cosmic_space::prelude::*;
//!
//! let scott: Point = "localhost:app:users:scott".parse()?;
//! let users: Selector = "localhost:**:scott".parse()?;
//! assert!(users.matches_point(&scott));
//! assert_eq!(scott.parent().unwrap().to_string(), "localhost:app:users");
//!
//! let ping = Ping::new(
//!     Surface::core("localhost:cli".parse()?),
//!     Surface::core(scott),
//!     "Ext<Hello>".parse()?,
//!     Substance::from("world"),
//! );
//! let frame = cosmic_space::wire::encode(&Wave::from(ping.clone()))?;
//! assert_eq!(cosmic_space::wire::decode::<Wave>(&frame)?, Wave::from(ping));
//! # Ok::<(), cosmic_space::Error>(())
//! ```
//!
//! ## Map of the crate
//!
//! | Concept | Types | SPEC |
//! | --- | --- | --- |
//! | addresses | [`Point`], [`PointVar`], [`Surface`], [`Layer`], [`Topic`] | §2 |
//! | types of particles | [`Kind`], [`BaseKind`], [`Specific`] | §3 |
//! | patterns | [`Selector`], [`KindSelector`], [`PointHierarchy`] | §4 |
//! | messages | [`Wave`], [`Ping`], [`Pong`], [`Ripple`], [`Echo`], [`Signal`], [`Method`], [`StatusCode`], [`Query`] | §5 |
//! | channels | [`Subscription`], [`Event`], [`PUBLISHER`], [`EVENT`] | §18 |
//! | bodies | [`Substance`], [`SubstanceKind`] | §5.2 |
//! | particle data | [`Stub`], [`Details`], [`Status`], [`Properties`] | §3, §9 |
//! | handling waves | [`DirectedHandler`], [`Ctx`], [`Transmitter`] | §6, §11 |
//! | routing documents | [`Bind`], [`Pipeline`], [`Selection`] | §7 |
//! | mechtron documents | [`MechtronConfig`], [`Limits`] | §8 |
//! | security | [`Agent`], [`Permissions`], [`GrantKind`], [`Grant`], [`access()`] | §9 |
//! | operator language | [`Command`], [`Script`] | §10 |
//! | bytes | [`wire`] | §5.4 |
//! | diagnostics | [`ParseError`] (rendered like rustc), [`Error`] | §16 |

mod access;
mod bind;
mod channel;
mod command;
mod error;
pub mod file;
mod handler;
mod kind;
pub mod kv;
mod mechtron;
mod method;
mod particle;
mod point;
mod selector;
mod substance;
mod surface;
mod syntax;
mod wave;
pub mod wire;

pub use access::{
    Access, AccessDenied, Agent, Effect, FullAccess, Grant, GrantKind, Lineage, LineageError,
    MaskKind, Permission, Permissions, PermissionsMask, Privilege, Requirement, access,
};
pub use bind::{
    Bind, BlockLine, Destination, Filter, FilterError, PathPart, PathRegex, PathTemplate, Pipeline,
    Route, RouteBody, RouteSelector, Selection, Stop,
};
pub use channel::{EVENT, Event, PUBLISHER, Subscription, event_of};
pub use command::{
    Command, CommandTarget, Create, CreateStrategy, PointTemplate, PropertyChange, PropertyChanges,
    Script, ScriptCommand,
};
pub use error::{Error, Result};
pub use file::{DirEntry, Listing, RangeAsk};
pub use handler::{Ctx, DirectedHandler, LogLevel, Logger, RouteVars, Transmitter};
pub use kind::{
    ArtifactSubKind, BaseKind, DatabaseSubKind, FileSubKind, Kind, KindError, Specific,
    StarSubKind, UserBaseSubKind,
};
pub use kv::{Condition, KeyPage, KvEntry, KvError, KvOp, KvOutcome, KvRequest, ListQuery};
pub use mechtron::{LimitError, Limits, MechtronConfig, mechtron_type_name};
pub use method::{CmdMethod, HttpMethod, HypMethod, Method, MethodKind, MethodPattern};
pub use particle::{Details, Properties, Property, Status, Stub};
pub use point::{Env, Lead, Point, PointError, PointSeg, PointVar, RouteSeg, StarKey, VarSeg};
pub use selector::{
    HierarchyError, Hop, KindSelector, Pattern, PointHierarchy, SegmentPattern, Selector,
    SpecificSelector, VersionPattern,
};
pub use substance::{
    Errors, HttpRequest, HttpResponse, Json, RawCommand, Substance, SubstanceError, SubstanceKind,
    Token, Transfer,
};
pub use surface::{Layer, Surface, Topic};
pub use syntax::{Cursor, ParseError, Span};
pub use wave::{
    BounceBacks, DirectedCore, DirectedWave, Echo, Handling, Headers, Ping, Pong, Priority, Query,
    Recipients, ReflectedCore, ReflectedWave, Ripple, Signal, StatusCode, WaitTime, Wave,
    WaveError, WaveId, WaveKind, percent_decode, split_target,
};
pub use wire::{Wire, WireError};

/// The types most code that sends, routes or answers waves needs.
pub mod prelude {
    pub use crate::{
        Agent, Details, DirectedCore, DirectedHandler, DirectedWave, Kind, Logger, Method, Ping,
        Point, Pong, ReflectedCore, ReflectedWave, Selector, Signal, Status, StatusCode, Stub,
        Substance, Surface, Wave,
    };
}
