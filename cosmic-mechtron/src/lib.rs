//! # cosmic-mechtron — the guest SDK for Starlane mechtrons
//!
//! A mechtron author writes an ordinary library crate (`crate-type = ["cdylib", "rlib"]`),
//! depends on this crate alone, and builds for `wasm32-unknown-unknown` (SPEC §11.1):
//!
//! ```
//! use cosmic_mechtron::prelude::*;
//!
//! #[mechtron]                              // registered as "hello"
//! #[derive(Default)]
//! pub struct Hello { greeted: u64 }        // lives as long as the particle
//!
//! #[handlers]
//! impl Hello {
//!     #[route("Ext<Hello>")]
//!     fn hello(&mut self, ctx: &mut Ctx, name: String) -> Result<String, Error> {
//!         self.greeted += 1;
//!         ctx.info(format!("greeting {name}"));
//!         Ok(format!("Goodbye, {name}!"))
//!     }
//!
//!     // Routes match the path; the query is read apart (`/greet/ann?lang=fr`).
//!     #[route("Http<Get>/greet/(?P<who>[^/]+)")]
//!     fn greet(&self, ctx: &mut Ctx, #[var] who: String) -> HttpResponse {
//!         match ctx.query().get("lang") {
//!             Some("fr") => HttpResponse::text(format!("Bonjour, {who} !")),
//!             _ => HttpResponse::text(format!("Hello, {who}!")),
//!         }
//!     }
//!
//!     // A typed route variable: `/items/abc` is answered 400 without calling the handler.
//!     #[route("Http<Get>/items/(?P<id>[^/]+)")]
//!     fn item(&self, #[var] id: u64) -> HttpResponse {
//!         match id {
//!             1 => HttpResponse::json(&("tea", 2)),
//!             _ => HttpResponse::status(404, format!("no item {id}")),
//!         }
//!     }
//! }
//!
//! // The same mechtron, tested natively:
//! let mut hello = cosmic_mechtron::testing::TestMechtron::<Hello>::new()?;
//! assert_eq!(hello.ping("Ext<Hello>", "scott").body, Substance::from("Goodbye, scott!"));
//! assert_eq!(hello.mechtron().greeted, 1);
//! assert_eq!(hello.get("/greet/ann%20lee?lang=fr").body, Substance::Bin("Bonjour, ann lee !".into()));
//! assert_eq!(hello.get("/items/1").body, Substance::Bin(br#"["tea",2]"#.to_vec()));
//! assert_eq!(hello.get("/items/2").status, StatusCode::NOT_FOUND);
//! let bad = hello.get("/items/abc");
//! assert_eq!(bad.status, StatusCode::BAD_REQUEST);
//! assert_eq!(
//!     bad.error_message().as_deref(),
//!     Some(r#"route variable 'id' = "abc" is not a valid u64: invalid digit found in string"#)
//! );
//! # Ok::<(), cosmic_mechtron::Error>(())
//! ```
//!
//! - `#[mechtron]` names the type (skewer case of the struct's name, or `name = "…"`), makes
//!   it from `Default` (or `init = path`), and generates the wasm exports of the ABI
//!   (SPEC §11.3) — once per wasm: further types of the same wasm are listed with
//!   `#[mechtron(with(Other))]` and marked `#[mechtron(export = false)]` themselves.
//! - `#[handlers]` turns the `#[route("…")]` methods of an `impl` into the route table. Route
//!   strings are checked at compile time; so are handler signatures (`&self` or `&mut self`,
//!   optionally `&mut Ctx`, route variables `#[var] name: T` with `T:` [`FromVar`] — each
//!   must be captured by the handler's routes —, at most one input that is [`FromWave`], an
//!   output that is [`IntoReflected`]).
//! - A route's path regex matches the wave's path without its query, whether the wave came
//!   from the gateway or from another particle; [`Ctx::query`] gives the query parsed
//!   ([`Query`]: percent-decoded, repeated names kept).
//! - [`HttpResponse`](cosmic_space::HttpResponse) has `text`, `html`, `json` (a value that
//!   does not serialize is a 500, never a panic) and `status(code, body)`.
//! - [`Ctx`] pings, signals and ripples, logs, reads bundle files, and gives the route
//!   variables, the query, the mechtron's details and the host's clock and randomness.
//! - Channels (SPEC §18): [`Ctx::publish`] on a `Channel`; [`Ctx::subscribe`] to what a
//!   selector publishes (channels' messages, particles' lifecycle events), delivered as
//!   Signals routed like any wave (`#[route("Cmd<Event>")]` for events).
//! - Crates on `getrandom` (`uuid` with `v4`, `rand`) work in a guest with no code of the
//!   author's: the SDK is getrandom's custom backend over the host's randomness, and
//!   `starlane bundle` (and a crate from `starlane new`) build with the flag that selects it,
//!   `--cfg getrandom_backend="custom"`.
//! - [`testing`] runs a mechtron natively.
//!
//! A panic in a handler traps the wasm instance (wasm32 aborts on panic); the host answers
//! that wave with 500. Natively, in tests, it is an ordinary panic.

// The macros name `::cosmic_mechtron`; this makes that path work in the crate's own tests.
#[cfg(test)]
extern crate self as cosmic_mechtron;

pub mod abi;
mod channel;
mod ctx;
mod error;
mod files;
mod kv;
mod mechtron;
mod route;
mod secret;
pub mod testing;
#[cfg(test)]
mod tests;

pub use cosmic_macros::{handlers, mechtron, route};
pub use cosmic_space as space;
pub use cosmic_space::Query;
pub use ctx::{Ctx, Host};
pub use error::{Error, Result};
pub use files::{FileContent, Files};
pub use kv::{Kv, PutOptions, Versioned};
pub use mechtron::{
    Handlers, Instance, MECHTRON_PROPERTY, Mechtron, Registration, create, init_result,
};
pub use route::{
    FromVar, FromWave, HandlerFn, IntoReflected, Json, Route, RouteSelector, RouteTable,
};
pub use secret::Secret;

/// What a mechtron author needs in scope: `use cosmic_mechtron::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Ctx, Error, FromVar, FromWave, IntoReflected, Json, PutOptions, Result, handlers, mechtron,
        route,
    };
    pub use cosmic_space::{
        Agent, BounceBacks, Condition, Details, DirectedCore, EVENT, Echo, Event, HttpMethod,
        HttpRequest, HttpResponse, Kind, KvOp, KvOutcome, LogLevel, Logger, Method, PUBLISHER,
        Point, Pong, Query, Recipients, ReflectedCore, Ripple, Selector, StatusCode, Substance,
        Surface, WaitTime, event_of,
    };
}
