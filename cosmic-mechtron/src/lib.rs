//! # cosmic-mechtron — the guest SDK for Starlane mechtrons
//!
//! A mechtron author depends on this crate alone, writes `use cosmic_mechtron::prelude::*;`,
//! and builds for `wasm32-unknown-unknown`. It re-exports the Universal API a guest needs and,
//! as the SDK grows, the context handlers receive and the macros that generate the ABI.

pub use cosmic_space as space;

/// What a mechtron author needs in scope.
pub mod prelude {
    pub use cosmic_space::{Kind, Point};
}
