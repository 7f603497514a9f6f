//! # cosmic-hyperspace — the Hyperversal layer of Starlane
//!
//! Everything a particle should not have to think about: placing particles on stars, routing
//! waves between them, checking on the way that the sender may reach the target, persistence in
//! the registry, running mechtrons in wasmer, and the HTTP gateway. Particles never see this
//! crate; they see [`cosmic_space`].
//!
//! | Module | Owns |
//! | --- | --- |
//! | [`control`] | the protocol the CLI speaks to a machine, and its settings |
//! | [`bundle`] | reading and checking bundle zips |
//! | [`machine`] | one `starlane serve` process: registry, stars, control |
//! | [`star`] | a shard: routing, and the layers a wave passes (Field → Shell → Core) |
//! | [`fabric`] | how stars exchange envelopes (in-process now, NATS later) |
//! | [`ids`] | fresh wave ids |
//! | [`placement`] | which star hosts a particle (rendezvous hashing) |
//! | [`field`] | security and bind routing of every directed wave |
//! | [`gateway`] | the HTTP gateway: requests in as `Http<…>` waves, reflections out as responses; the metrics endpoint |
//! | [`metrics`] | what a machine counts (waves, requests, guest calls, registry, channels), in Prometheus's text format |
//! | [`channel`] | channels and lifecycle events: subscriptions matched, publications sent once per machine, delivered to particles and watchers |
//! | [`shell`] | exchanges: waiting for Pongs, 408s, dropping unsolicited reflections |
//! | [`driver`] | the behaviour of each kind |
//! | [`executor`] | the command language, run for an agent |
//! | [`lifecycle`] | placing particles on stars and bringing them to life there |
//! | [`transmit`] | the narrow handle for sending waves that drivers, the Field and guests get |
//! | [`security`] | what an agent may do on a point, from the registry |
//! | [`registry`] | the durable record of the cosmos |
//! | [`wasm`] | compiling, caching and running mechtron guests in wasmer |

pub mod bundle;
pub mod channel;
pub mod control;
pub mod credentials;
pub mod driver;
pub mod executor;
pub mod fabric;
pub mod field;
pub mod gateway;
mod home;
pub mod ids;
pub mod lifecycle;
pub mod machine;
pub mod membership;
pub mod metrics;
pub mod placement;
pub mod registry;
pub mod security;
pub mod shell;
pub mod star;
pub mod transmit;
pub mod wasm;

pub use bundle::{Bundle, BundleEntry, BundleError, BundleFile, BundleLimits};
pub use control::{ControlError, ControlService, MachineConfig};
pub use cosmic_space as space;
pub use metrics::Metrics;
pub use registry::{
    EmbeddedRegistry, Entry, ParticleRecord, PgConfig, PgRegistry, Registration, Registry,
    RegistryError, RegistryResult,
};
