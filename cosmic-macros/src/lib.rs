//! # cosmic-macros — handler and ABI glue for Starlane
//!
//! The attribute macros a mechtron author writes (`#[mechtron]`, `#[handlers]`, `#[route]`)
//! expand here into route tables and the host ⇄ guest ABI of SPEC §11.3, so an author never
//! writes `extern "C"`. Route strings are checked at compile time.
//!
//! The macros arrive with the guest SDK; this crate exists now so the workspace has its final
//! shape.
