//! The wasm host: compiling, caching and running mechtron guests in wasmer (SPEC §11.2, §11.3,
//! §15, §16). This module is the only place in the project that knows wasmer.
//!
//! - [`WasmHost`] (one per machine) compiles wasm with cranelift and a fuel-metering pass, and
//!   keeps compiled modules in memory and on disk ([`cache`] decisions: the key is the sha256
//!   of the wasm plus the wasmer version and every compile setting; an entry that fails to
//!   load is a miss, never a crash).
//! - Guests are long-lived: a [`Guest`] is one instance whose linear memory survives between
//!   calls. Guests run on a pool of worker threads, any guest on any worker, one call of a
//!   guest at a time; [`Guest::init`] and [`Guest::handle`] queue a job and await the answer,
//!   so async callers never block. A guest busy for seconds holds one worker while the pool
//!   starts others for the rest (SPEC §15: a busy guest must not hold up its neighbours).
//! - Every call runs under the guest's [`Limits`]: the fuel budget is reset before each call,
//!   the linear memory cannot grow past the cap, and a call still running at its wall-clock
//!   timeout is interrupted. A call that runs out of fuel or time, traps or otherwise does not
//!   return normally fails with a [`WasmError`] and leaves the guest *broken*: later calls
//!   fail fast until [`Guest::restart`]. The host and every other guest keep working.
//! - Every queue is bounded: a guest's mailbox holds [`WasmConfig::queue`] calls, more are
//!   refused at once ([`WasmError::Busy`]); a call whose caller gave up before it started is
//!   not started ([`WasmError::NotStarted`]); one call sends at most a bounded number of waves.
//! - Every frame a guest hands over is validated — pointer and length inside its memory, length
//!   within the frame limit, bytes that decode exactly — and a bad one is a typed error.
//! - `host_send` (a guest sending a wave) goes through a [`GuestOutbox`] the caller provides, so
//!   this module does not depend on the star. While a guest waits for its Pong, the pool keeps
//!   enough other workers free (see `docs/decisions/wasm-host.md`).
//!
//! The ABI, host side (SPEC §11.3):
//!
//! | Guest export | Signature |
//! | --- | --- |
//! | `memory` | the linear memory |
//! | `mechtron_abi_version` | `() -> u32`, must be [`ABI_VERSION`] |
//! | `mechtron_alloc` / `mechtron_dealloc` | `(len) -> ptr` / `(ptr, len)` |
//! | `mechtron_init` | `(ptr, len) -> u64`: a [`Details`] frame in, a [`Status`] frame out |
//! | `mechtron_handle` | `(ptr, len) -> u64`: a [`Ping`] frame in, a [`ReflectedCore`] frame out (0 = absorbed) |
//!
//! | Host import (module `cosmic`) | Signature |
//! | --- | --- |
//! | `host_send` | `(ptr, len) -> u64`: a [`DirectedWave`] frame (Ping or Signal); the Pong frame back for a Ping, 0 for a Signal |
//! | `host_log` | `(ptr, len)`: a frame of a [`LogRecord`] |
//! | `host_now` | `() -> u64`: unix time in nanoseconds |
//! | `host_random` | `(ptr, len)`: fills the buffer with random bytes |
//!
//! Returns pack `(ptr << 32) | len` ([`cosmic_space::wire::pack_ptr_len`]). The host writes an
//! input by calling `mechtron_alloc(len)` and copying; the guest frees input buffers itself;
//! the host reads an output buffer and then calls `mechtron_dealloc(ptr, len)` on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cosmic_space::{
    Details, DirectedWave, Limits, LogLevel, Ping, Point, Pong, ReflectedCore, Status, Substance,
    Surface, Wire, WireError,
};

mod cache;
mod engine;
mod worker;

pub use cache::CacheSource;
pub use engine::{Compiled, GuestModule, WasmHost};
pub use worker::{FloorReport, Guest, PongReply, PoolStats};

/// The version of the ABI this host speaks; a guest's `mechtron_abi_version` must return it.
pub const ABI_VERSION: u32 = 1;

/// The property of the init [`Details`] that names the mechtron type to run (the `name` of the
/// `.mechtron` document, SPEC §8).
pub const MECHTRON_PROPERTY: &str = "mechtron";

/// A log line from a guest: the frame `host_log` reads (`(level, message)` on the wire).
pub type LogRecord = (LogLevel, String);

/// What goes wrong compiling, instantiating or calling a guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasmError {
    /// The bytes are not a valid wasm module (or cranelift refused them).
    #[error("the wasm does not compile: {0}")]
    Compile(String),
    /// The module's exports or imports do not follow the ABI (SPEC §11.3).
    #[error("the guest does not follow the mechtron ABI: {0}")]
    Abi(String),
    /// The module needs more memory than the guest's limit allows.
    #[error("the guest needs {needed} bytes of memory at start, over its limit of {limit} bytes")]
    MemoryLimit {
        /// Bytes the module's memory declares as its minimum.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// Instantiation failed (linking, a trapping start function, no memory left).
    #[error("the guest could not be instantiated: {0}")]
    Instantiate(String),
    /// The call ran past its wall-clock timeout (`Limits::timeout`) and was stopped.
    #[error("the guest ran past its timeout of {timeout:?} in {call}")]
    Timeout {
        /// The export that was running.
        call: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The guest's mailbox is full: the call is refused at once.
    #[error("the guest is busy: {queued} calls are already waiting for it")]
    Busy {
        /// How many calls were waiting.
        queued: usize,
    },
    /// The call was still waiting when its caller gave up, so it was not started.
    #[error("the call was not started: its caller stopped waiting first")]
    NotStarted,
    /// The call used up its fuel (an endless loop, or simply too much work).
    #[error("the guest ran out of fuel ({fuel} instructions) in {call}")]
    FuelExhausted {
        /// The export that was running.
        call: &'static str,
        /// The budget of the call.
        fuel: u64,
    },
    /// The guest trapped: `unreachable` (a Rust panic), an out-of-bounds access, a stack
    /// overflow, or a host import it called failed.
    #[error("the guest trapped in {call}: {reason}")]
    Trap {
        /// The export that was running.
        call: &'static str,
        /// What the runtime or the host import said.
        reason: String,
    },
    /// A previous call failed and left the guest unusable; restart it.
    #[error("the guest is broken ({0}); it must be restarted")]
    Broken(String),
    /// A frame the guest handed over points outside its memory.
    #[error(
        "the guest's {what} frame at {ptr} with length {len} lies outside its memory of {memory} bytes"
    )]
    OutOfBounds {
        /// Which frame.
        what: &'static str,
        /// Its pointer.
        ptr: u32,
        /// Its length.
        len: u32,
        /// The size of the guest's memory.
        memory: u64,
    },
    /// A frame (from or to the guest) is bigger than the frame limit.
    #[error("the {what} frame of {len} bytes exceeds the frame limit of {limit} bytes")]
    FrameTooLarge {
        /// Which frame.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A frame could not be encoded or decoded.
    #[error("bad {what} frame: {source}")]
    Frame {
        /// Which frame.
        what: &'static str,
        /// What the codec said.
        source: WireError,
    },
    /// The guest answered something the ABI does not allow (e.g. no status from init).
    #[error("the guest answered wrongly: {0}")]
    Answer(String),
    /// The worker thread hosting the guest is gone (the host shut down).
    #[error("the wasm host is shut down")]
    Closed,
    /// The host could not start (threads, cache directory).
    #[error("the wasm host could not start: {0}")]
    Setup(String),
}

impl WasmError {
    /// Whether this error leaves the guest broken (the call did not return normally).
    pub fn breaks_guest(&self) -> bool {
        matches!(
            self,
            WasmError::FuelExhausted { .. }
                | WasmError::Timeout { .. }
                | WasmError::Trap { .. }
                | WasmError::Broken(_)
        )
    }

    /// The status a wave gets when its call failed with this error: 503 when the guest could
    /// not take it (busy, or the caller gave up first: SPEC §19), else 500 (SPEC §11.2).
    pub fn status(&self) -> cosmic_space::StatusCode {
        match self {
            WasmError::Busy { .. } | WasmError::NotStarted => cosmic_space::StatusCode::UNAVAILABLE,
            _ => cosmic_space::StatusCode::ERROR,
        }
    }

    /// The reflection a wave gets when its call failed with this error (see
    /// [`WasmError::status`]).
    pub fn to_core(&self) -> ReflectedCore {
        ReflectedCore::error(self.status(), self.to_string())
    }
}

/// How a guest call ended, as reported to a [`CallObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// It returned.
    Ok,
    /// It trapped (or returned a bad frame, or the guest was broken).
    Trap,
    /// It ran out of fuel.
    Fuel,
    /// It ran past its timeout.
    Timeout,
    /// It was refused: the guest's mailbox was full.
    Busy,
    /// It was not started: its caller had given up.
    NotStarted,
}

/// Sees every guest call end (metrics): how, the fuel it burned and how long it ran. Called on
/// the worker (or refusing) thread: must be quick and must not block.
pub trait CallObserver: Send + Sync + std::fmt::Debug + 'static {
    /// One call ended with `outcome`, burning `fuel` in `elapsed`.
    fn observe(&self, outcome: CallOutcome, fuel: u64, elapsed: Duration);
}

/// Where a guest's outgoing waves and log lines go; the mechtron driver implements it on top
/// of the star, so this module does not depend on the star.
pub trait GuestOutbox: Send + Sync + 'static {
    /// Sends `wave` — already stamped with the guest's own point as agent and its surface as
    /// `from`. For a Ping, `reply` is `Some`: answer through it with the Pong (from any thread,
    /// any time); dropping it unanswered answers the guest with a 500, and no answer within the
    /// guest's send timeout answers with a 408. For a Ripple, `reply` is `Some` too: answer
    /// with its Echoes ([`PongReply::send_echoes`]); dropped, the guest gets none. Must not
    /// block.
    fn send(&self, wave: DirectedWave, reply: Option<PongReply>);

    /// Records a guest's log line.
    fn log(&self, point: &Point, level: LogLevel, message: &str);
}

/// How one guest is set up.
#[derive(Clone)]
pub struct GuestSpec {
    /// The mechtron's own point: the agent of every wave it sends.
    pub point: Point,
    /// The surface its waves come from.
    pub surface: Surface,
    /// Fuel per call and the memory cap.
    pub limits: Limits,
    /// Where its waves and log lines go.
    pub outbox: Arc<dyn GuestOutbox>,
    /// How long `host_send` waits for a Pong (the Ping's own wait time is used when shorter).
    pub send_timeout: Duration,
}

impl std::fmt::Debug for GuestSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestSpec")
            .field("point", &self.point)
            .field("surface", &self.surface)
            .field("limits", &self.limits)
            .field("send_timeout", &self.send_timeout)
            .finish_non_exhaustive()
    }
}

impl GuestSpec {
    /// A spec for the guest at `point` (surface: its core) with `limits` and `outbox`, and the
    /// default send timeout of 30 s.
    pub fn new(point: Point, limits: Limits, outbox: Arc<dyn GuestOutbox>) -> GuestSpec {
        GuestSpec {
            surface: Surface::core(point.clone()),
            point,
            limits,
            outbox,
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// Settings of a [`WasmHost`].
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Where compiled modules are cached (e.g. `STARLANE_HOME/cache/wasm`); `None` keeps them
    /// in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How many worker threads are kept free to run guests (0: one per core).
    pub workers: usize,
    /// The most worker threads, when guests are busy for long or wait for answers.
    pub max_workers: usize,
    /// How many calls may wait for one guest before more are refused ([`WasmError::Busy`]).
    pub queue: usize,
    /// The frame codec and its size limit for every frame to and from guests.
    pub wire: Wire,
    /// Sees every call end (metrics).
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl WasmConfig {
    /// The default most worker threads.
    pub const DEFAULT_MAX_WORKERS: usize = 256;
    /// The default calls waiting per guest.
    pub const DEFAULT_QUEUE: usize = 256;
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            cache_dir: None,
            workers: 0,
            max_workers: Self::DEFAULT_MAX_WORKERS,
            queue: Self::DEFAULT_QUEUE,
            wire: Wire::default(),
            observer: None,
        }
    }
}

/// The answer of a guest's `mechtron_init`, decoded.
pub(crate) fn decode_status(wire: &Wire, frame: &[u8]) -> Result<Status, WasmError> {
    wire.decode::<Status>(frame)
        .map_err(|source| WasmError::Frame {
            what: "init status",
            source,
        })
}

/// The answer of a guest's `mechtron_handle`, decoded (`None` = absorbed: 200, empty).
pub(crate) fn decode_reflected(
    wire: &Wire,
    frame: Option<&[u8]>,
) -> Result<ReflectedCore, WasmError> {
    match frame {
        None => Ok(ReflectedCore::ok(Substance::Empty)),
        Some(frame) => wire
            .decode::<ReflectedCore>(frame)
            .map_err(|source| WasmError::Frame {
                what: "reflected core",
                source,
            }),
    }
}

/// Encodes an input frame for a guest.
pub(crate) fn encode_input<T: serde::Serialize>(
    wire: &Wire,
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, WasmError> {
    wire.encode(value)
        .map_err(|source| WasmError::Frame { what, source })
}

/// What this process occupies: resident memory in KiB and the number of memory mappings, read
/// from `/proc/self` (zeros where there is no such file). Guests cost both, so benchmarks and
/// operators watch them to size a machine (SPEC §15: 10k live mechtrons).
pub fn footprint() -> (u64, usize) {
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0);
    let mappings = std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.lines().count())
        .unwrap_or(0);
    (rss_kib, mappings)
}

/// Encodes a Ping for `mechtron_handle` (kept public for benchmarks and tests that want to
/// prepare frames).
pub fn ping_frame(wire: &Wire, ping: &Ping) -> Result<Vec<u8>, WasmError> {
    encode_input(wire, "ping", ping)
}

/// Encodes a Details for `mechtron_init`.
pub fn details_frame(wire: &Wire, details: &Details) -> Result<Vec<u8>, WasmError> {
    encode_input(wire, "details", details)
}

/// A Pong frame for `host_send`'s answer.
pub(crate) fn pong_frame(wire: &Wire, pong: &Pong) -> Result<Vec<u8>, WasmError> {
    encode_input(wire, "pong", pong)
}

#[cfg(test)]
mod tests;
