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
//!     #[route("Http<Get>/greet/(?P<who>.*)")]
//!     fn greet(&self, ctx: &mut Ctx) -> HttpResponse {
//!         let who = ctx.var("who").unwrap_or("stranger");
//!         HttpResponse::ok(format!("Hello, {who}!")).with_header("Content-Type", "text/plain")
//!     }
//! }
//!
//! // The same mechtron, tested natively:
//! let mut hello = cosmic_mechtron::testing::TestMechtron::<Hello>::new()?;
//! assert_eq!(hello.ping("Ext<Hello>", "scott").body, Substance::from("Goodbye, scott!"));
//! assert_eq!(hello.get("/greet/ann").body, Substance::Bin(b"Hello, ann!".to_vec()));
//! assert_eq!(hello.mechtron().greeted, 1);
//! # Ok::<(), cosmic_mechtron::Error>(())
//! ```
//!
//! - `#[mechtron]` names the type (skewer case of the struct's name, or `name = "…"`), makes
//!   it from `Default` (or `init = path`), and generates the wasm exports of the ABI
//!   (SPEC §11.3) — once per wasm: further types of the same wasm are listed with
//!   `#[mechtron(with(Other))]` and marked `#[mechtron(export = false)]` themselves.
//! - `#[handlers]` turns the `#[route("…")]` methods of an `impl` into the route table. Route
//!   strings are checked at compile time; so are handler signatures (`&self` or `&mut self`,
//!   optionally `&mut Ctx`, at most one input that is [`FromWave`], an output that is
//!   [`IntoReflected`]).
//! - [`Ctx`] pings, signals and ripples, logs, reads bundle files, and gives the route
//!   variables, the mechtron's details and the host's clock.
//! - [`testing`] runs a mechtron natively.
//!
//! A panic in a handler traps the wasm instance (wasm32 aborts on panic); the host answers
//! that wave with 500. Natively, in tests, it is an ordinary panic.

// The macros name `::cosmic_mechtron`; this makes that path work in the crate's own tests.
#[cfg(test)]
extern crate self as cosmic_mechtron;

pub mod abi;
mod ctx;
mod error;
mod kv;
mod mechtron;
mod route;
mod secret;
pub mod testing;
#[cfg(test)]
mod tests;

pub use cosmic_macros::{handlers, mechtron, route};
pub use cosmic_space as space;
pub use ctx::{Ctx, Host};
pub use error::{Error, Result};
pub use kv::{Kv, PutOptions, Versioned};
pub use mechtron::{
    Handlers, Instance, MECHTRON_PROPERTY, Mechtron, Registration, create, init_result,
};
pub use route::{FromWave, HandlerFn, IntoReflected, Json, Route, RouteSelector, RouteTable};
pub use secret::Secret;

/// What a mechtron author needs in scope: `use cosmic_mechtron::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Ctx, Error, FromWave, IntoReflected, Json, PutOptions, Result, handlers, mechtron, route,
    };
    pub use cosmic_space::{
        Agent, Condition, Details, DirectedCore, HttpMethod, HttpRequest, HttpResponse, Kind, KvOp,
        KvOutcome, LogLevel, Logger, Method, Point, Pong, ReflectedCore, StatusCode, Substance,
        Surface,
    };
}
