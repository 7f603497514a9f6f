//! # cosmic-hyperspace — the Hyperversal layer of Starlane
//!
//! Everything a particle should not have to think about: placing particles on stars, routing
//! waves between them, checking on the way that the sender may reach the target, persistence in
//! the registry, running mechtrons in wasmer, and the HTTP gateway. Particles never see this
//! crate; they see [`cosmic_space`].

pub mod bundle;
pub mod control;
pub mod registry;

pub use bundle::{Bundle, BundleEntry, BundleError, BundleFile, BundleLimits};
pub use control::{ControlError, ControlService, MachineConfig};
pub use cosmic_space as space;
pub use registry::{
    EmbeddedRegistry, Entry, ParticleRecord, Registration, Registry, RegistryError, RegistryResult,
};
