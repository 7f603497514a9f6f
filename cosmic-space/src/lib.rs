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
//! use cosmic_space::{Point, Selector};
//!
//! let scott: Point = "localhost:app:users:scott".parse()?;
//! let users: Selector = "localhost:**:scott".parse()?;
//! assert_eq!(users.to_string(), "localhost:**:scott");
//! assert!(users.matches_point(&scott));
//! assert_eq!(scott.parent().unwrap().to_string(), "localhost:app:users");
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

mod access;
mod bind;
mod command;
mod error;
mod handler;
mod kind;
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
    Access, AccessDenied, Agent, FullAccess, Grant, GrantKind, Lineage, LineageError, MaskKind,
    Permission, Permissions, PermissionsMask, Privilege, Requirement, access,
};
pub use bind::{
    Bind, BlockLine, Destination, Filter, FilterError, PathPart, PathRegex, PathTemplate, Pipeline,
    Route, RouteBody, RouteSelector, Selection, Stop,
};
pub use command::{
    Command, CommandTarget, Create, CreateStrategy, PointTemplate, PropertyChange, PropertyChanges,
    Script, ScriptCommand,
};
pub use error::{Error, Result};
pub use handler::{Ctx, DirectedHandler, LogLevel, Logger, RouteVars, Transmitter};
pub use kind::{
    ArtifactSubKind, BaseKind, DatabaseSubKind, FileSubKind, Kind, KindError, Specific,
    StarSubKind, UserBaseSubKind,
};
pub use mechtron::{LimitError, Limits, MechtronConfig};
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
    BounceBacks, DirectedCore, DirectedWave, Echo, Handling, Headers, Ping, Pong, Priority,
    Recipients, ReflectedCore, ReflectedWave, Ripple, Signal, StatusCode, WaitTime, Wave,
    WaveError, WaveId, WaveKind,
};
pub use wire::{Wire, WireError};
