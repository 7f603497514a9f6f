//! The machine's settings (SPEC §13, §16, §19): flags, then environment variables, then
//! `starlane.toml` in the data directory, then defaults.
//!
//! Every setting has the three names [`Setting`] lists — a flag of `starlane serve`, an
//! environment variable and a key of `starlane.toml` — and one check, whichever source gave
//! it, whose errors name that source: `--http`, `STARLANE_HTTP`, or
//! `starlane.toml line 3 ([http] listen)`.
//!
//! `starlane.toml` is TOML ([`file`] reads it with the `toml` crate), in tables:
//!
//! ```toml
//! machine = "edge-1"
//! stars = 4
//!
//! [control]
//! listen = "127.0.0.1:4343"
//!
//! [http]
//! listen = "127.0.0.1:8080"
//! wait = 30               # seconds
//! max-body = 16777216     # bytes
//! read-timeout = 10000    # milliseconds
//! default-space = "localhost"
//!
//! [registry]
//! url = "postgres://starlane@db:5432/cosmos"
//!
//! [cluster]
//! nats = "nats://nats-1:4222"
//! cosmos = "prod"
//! lease = 2000            # milliseconds
//!
//! [log]
//! filter = "info"         # RUST_LOG syntax
//! format = "text"         # or "json"
//!
//! [metrics]
//! listen = "127.0.0.1:9100"
//!
//! [shutdown]
//! grace = 10              # seconds
//!
//! [host]
//! star-capacity = 4096
//! wasm-workers = 0        # 0: one per core
//! wasm-max-workers = 256
//! guest-queue = 256
//! ```
//!
//! The flat keys of the first `starlane.toml` (`control`, `http`, `registry` as strings,
//! `nats`, `cosmos`, `lease`, `default-space`, `http-wait`, `http-max-body`,
//! `http-read-timeout`) are still read, as what their table's key now says.

mod file;

use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cosmic_space::{Point, StarKey};

use crate::credentials::redact;
use crate::driver::{SecretKey, SecretKeyError};
use crate::gateway::GatewayConfig;

/// Settings as given by one source (flags or environment); `None` means not given there.
/// Values are the text as given: [`MachineConfig::resolve`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The data directory (`--home`, `STARLANE_HOME`).
    pub home: Option<PathBuf>,
    /// The control listen address (`--control`, `STARLANE_CONTROL`).
    pub control: Option<String>,
    /// The HTTP listen address (`--http`, `STARLANE_HTTP`).
    pub http: Option<String>,
    /// The number of stars (`--stars`, `STARLANE_STARS`).
    pub stars: Option<String>,
    /// This machine's name in the cosmos (`--machine`, `STARLANE_MACHINE`).
    pub machine: Option<String>,
    /// Where the registry lives (`--registry`, `STARLANE_REGISTRY`): a PostgreSQL URL.
    pub registry: Option<String>,
    /// The NATS the cosmos's machines meet on (`--nats`, `STARLANE_NATS`).
    pub nats: Option<String>,
    /// The cosmos's name (`--cosmos`, `STARLANE_COSMOS`).
    pub cosmos: Option<String>,
    /// A machine's lease, in milliseconds (`--lease`, `STARLANE_LEASE`).
    pub lease: Option<String>,
    /// The gateway's default Space (`--default-space`, `STARLANE_DEFAULT_SPACE`).
    pub default_space: Option<String>,
    /// An HTTP request's wait for its answer, in seconds (`--http-wait`,
    /// `STARLANE_HTTP_WAIT`).
    pub http_wait: Option<String>,
    /// The largest HTTP request body, in bytes (`--http-max-body`,
    /// `STARLANE_HTTP_MAX_BODY`).
    pub http_max_body: Option<String>,
    /// An HTTP request's time to arrive, in milliseconds
    /// (`--http-read-timeout`, `STARLANE_HTTP_READ_TIMEOUT`).
    pub http_read_timeout: Option<String>,
    /// The log filter, RUST_LOG syntax (`--log`, `STARLANE_LOG`).
    pub log: Option<String>,
    /// The log format, `text` or `json` (`--log-format`, `STARLANE_LOG_FORMAT`).
    pub log_format: Option<String>,
    /// The Prometheus endpoint's address, or `off` (`--metrics`, `STARLANE_METRICS`).
    pub metrics: Option<String>,
    /// Shutdown's grace period, in seconds (`--grace`, `STARLANE_GRACE`).
    pub grace: Option<String>,
    /// Waves in flight on one star (`--star-capacity`, `STARLANE_STAR_CAPACITY`).
    pub star_capacity: Option<String>,
    /// Wasm worker threads kept warm (`--wasm-workers`, `STARLANE_WASM_WORKERS`).
    pub wasm_workers: Option<String>,
    /// Most wasm worker threads (`--wasm-max-workers`, `STARLANE_WASM_MAX_WORKERS`).
    pub wasm_max_workers: Option<String>,
    /// Calls waiting for one guest (`--guest-queue`, `STARLANE_GUEST_QUEUE`).
    pub guest_queue: Option<String>,
}

impl Settings {
    /// Where the value of `setting` goes (`None` for a setting that is not one of
    /// [`Setting::ALL`]).
    pub fn slot_mut(&mut self, setting: &Setting) -> Option<&mut Option<String>> {
        Some(match setting.env {
            ENV_CONTROL => &mut self.control,
            ENV_HTTP => &mut self.http,
            ENV_STARS => &mut self.stars,
            ENV_MACHINE => &mut self.machine,
            ENV_REGISTRY => &mut self.registry,
            ENV_NATS => &mut self.nats,
            ENV_COSMOS => &mut self.cosmos,
            ENV_LEASE => &mut self.lease,
            ENV_DEFAULT_SPACE => &mut self.default_space,
            ENV_HTTP_WAIT => &mut self.http_wait,
            ENV_HTTP_MAX_BODY => &mut self.http_max_body,
            ENV_HTTP_READ_TIMEOUT => &mut self.http_read_timeout,
            ENV_LOG => &mut self.log,
            ENV_LOG_FORMAT => &mut self.log_format,
            ENV_METRICS => &mut self.metrics,
            ENV_GRACE => &mut self.grace,
            ENV_STAR_CAPACITY => &mut self.star_capacity,
            ENV_WASM_WORKERS => &mut self.wasm_workers,
            ENV_WASM_MAX_WORKERS => &mut self.wasm_max_workers,
            ENV_GUEST_QUEUE => &mut self.guest_queue,
            _ => return None,
        })
    }
}

/// The resolved settings a machine starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// The data directory: registry, artifacts, caches, endpoint files.
    pub home: PathBuf,
    /// Where the control protocol listens (port 0 picks a free port).
    pub control: SocketAddr,
    /// Where the HTTP gateway listens (port 0 picks a free port).
    pub http: SocketAddr,
    /// How many stars to run.
    pub stars: usize,
    /// This machine's name, unique in the cosmos and part of its stars' keys
    /// (`STAR::NAME:star[i]`); `None`: the one generated once and kept in the data directory.
    pub machine: Option<String>,
    /// The registry's database (SPEC §14.2); `None`: the embedded store in the data directory.
    pub registry: Option<RegistryUrl>,
    /// The cluster this machine joins, if it is one of several (SPEC §14.2).
    pub cluster: Option<ClusterConfig>,
    /// The HTTP gateway's settings beyond its address.
    pub gateway: GatewayConfig,
    /// The key secrets are sealed with (`STARLANE_SECRET_KEY`, never a flag or
    /// `starlane.toml`); `None`: the key file in the data directory, created on first start.
    pub secret_key: Option<SecretKey>,
    /// Where the Prometheus endpoint listens (`--metrics`, STARLANE_METRICS, [metrics] listen); None: off (the default).
    pub metrics: Option<SocketAddr>,
    /// Logging: filter (STARLANE_LOG, RUST_LOG syntax, default "info") and format (`--log-format`, STARLANE_LOG_FORMAT, text|json, default text).
    pub log: LogConfig,
    /// How long shutdown waits for in-flight HTTP requests, control requests and waves (`--grace`, STARLANE_GRACE, seconds, default 10).
    pub grace: Duration,
    /// Limits of the host.
    pub host: HostConfig,
}

/// How the machine logs (SPEC §19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Which events are written, in `RUST_LOG` syntax (`info`, `warn,cosmic_hyperspace=debug`).
    pub filter: String,
    /// How each event is written.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text each, for people.
    #[default]
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// The limits of the host: every queue is bounded and answers 503 when full (SPEC §16, §19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConfig {
    /// Waves in flight on one star before it answers 503 at once (`--star-capacity`, STARLANE_STAR_CAPACITY, default 4096).
    pub star_capacity: usize,
    /// Wasm worker threads kept warm (`--wasm-workers`, STARLANE_WASM_WORKERS, 0 = one per core; default 0).
    pub wasm_workers: usize,
    /// Most wasm worker threads when guests are busy or waiting (`--wasm-max-workers`, STARLANE_WASM_MAX_WORKERS, default 256).
    pub wasm_max_workers: usize,
    /// Calls waiting for one guest before it answers 503 (`--guest-queue`, STARLANE_GUEST_QUEUE, default 256).
    pub guest_queue: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            star_capacity: 4096,
            wasm_workers: 0,
            wasm_max_workers: 256,
            guest_queue: 256,
        }
    }
}

/// How a machine joins a cosmos of several: the bus, the cosmos's name, the leases.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The NATS URL, as written (credentials included: for connecting only).
    pub nats: String,
    /// The cosmos's name: the prefix of its subjects.
    pub cosmos: String,
    /// How long a machine's lease lasts (`STARLANE_LEASE`, milliseconds): a machine that stops
    /// renewing is declared dead that long after its last renewal.
    pub lease: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("nats", &redact(&self.nats))
            .field("cosmos", &self.cosmos)
            .field("lease", &self.lease)
            .finish()
    }
}

/// Why the settings could not be resolved. Every variant about a value names where it came
/// from: a flag (`--stars`), a variable (`STARLANE_HTTP`) or a line of `starlane.toml`
/// (`starlane.toml line 3 ([http] listen)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a data directory nor a home directory is known.
    #[error("cannot tell where the data directory is: set STARLANE_HOME (or HOME), or pass --home")]
    NoHome,
    /// An address setting is not `IP:PORT`.
    #[error("{setting} = '{value}' is not a listen address: write IP:PORT, e.g. {example}")]
    BadAddress {
        /// Where the value came from (`--control`, `STARLANE_HTTP`, `starlane.toml line 2 …`).
        setting: String,
        /// The value.
        value: String,
        /// What the setting takes, e.g. `127.0.0.1:4343` (or `127.0.0.1:9100, or off`).
        example: &'static str,
    },
    /// A number (of stars, seconds, bytes …) is not a whole number in range.
    #[error(
        "{setting} = '{value}' is not a number of {unit}: write a whole number from {} to {}",
        range.start(),
        range.end()
    )]
    BadNumber {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
        /// What it counts (`stars`, `seconds`, `bytes` …).
        unit: &'static str,
        /// What is accepted.
        range: RangeInclusive<u64>,
    },
    /// Two settings that must agree do not.
    #[error("{setting} = {value} is below {other} = {other_value}: {why}")]
    Conflict {
        /// Where the first value came from.
        setting: String,
        /// The first value.
        value: u64,
        /// Where the second value came from.
        other: String,
        /// The second value.
        other_value: u64,
        /// What to do.
        why: &'static str,
    },
    /// The machine's name is not skewer case.
    #[error(
        "{setting} = '{value}' is not a machine name: write it in skewer case ([a-z][a-z0-9-]*), e.g. edge-1"
    )]
    BadMachine {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
    },
    /// The registry is not a PostgreSQL URL (the value is shown with any password hidden).
    #[error(
        "{setting} = '{value}' is not a registry: write a PostgreSQL URL, \
         postgres://USER:PASSWORD@HOST:PORT/DATABASE (or leave it out for the embedded store \
         in the data directory)"
    )]
    BadRegistry {
        /// Where the value came from.
        setting: String,
        /// The value, its password hidden.
        value: String,
    },
    /// The NATS setting is not a NATS URL (the value is shown with any password hidden).
    #[error(
        "{setting} = '{value}' is not a NATS URL: write nats://HOST:PORT, with USER:PASSWORD@ \
         before the host if the server asks for credentials (or tls://… for TLS)"
    )]
    BadNats {
        /// Where the value came from.
        setting: String,
        /// The value, its password hidden.
        value: String,
    },
    /// The cosmos's name is not skewer case.
    #[error(
        "{setting} = '{value}' is not a cosmos name: write it in skewer case ([a-z][a-z0-9-]*), e.g. prod"
    )]
    BadCosmos {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
    },
    /// NATS without PostgreSQL: machines of one cosmos must share its registry.
    #[error(
        "{setting} joins a cosmos of several machines, which share one registry: set the \
         registry too (--registry / STARLANE_REGISTRY postgres://…)"
    )]
    NatsWithoutRegistry {
        /// Where the NATS setting came from.
        setting: String,
    },
    /// The default Space is not a domain point.
    #[error("{setting} = '{value}' is not a Space: write a domain, e.g. localhost or example.com")]
    BadSpace {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
    },
    /// The log filter is not in `RUST_LOG` syntax.
    #[error(
        "{setting} = '{value}' is not a log filter: {why}; write RUST_LOG syntax, e.g. info or \
         warn,cosmic_hyperspace=debug"
    )]
    BadLogFilter {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The log format is neither `text` nor `json`.
    #[error("{setting} = '{value}' is not a log format: write text or json")]
    BadLogFormat {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
    },
    /// The secret key setting is malformed (its value is never shown).
    #[error(transparent)]
    SecretKey(#[from] SecretKeyError),
    /// `starlane.toml` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `starlane.toml` is not TOML, or holds something that is not a setting.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The variables a machine reads from the environment.
pub const ENV_HOME: &str = "STARLANE_HOME";
/// The control listen address variable.
pub const ENV_CONTROL: &str = "STARLANE_CONTROL";
/// The HTTP listen address variable.
pub const ENV_HTTP: &str = "STARLANE_HTTP";
/// The number of stars variable.
pub const ENV_STARS: &str = "STARLANE_STARS";
/// The machine's name variable.
pub const ENV_MACHINE: &str = "STARLANE_MACHINE";
/// The registry's PostgreSQL URL variable.
pub const ENV_REGISTRY: &str = "STARLANE_REGISTRY";
/// The NATS URL variable.
pub const ENV_NATS: &str = "STARLANE_NATS";
/// The cosmos's name variable.
pub const ENV_COSMOS: &str = "STARLANE_COSMOS";
/// How long a machine's lease lasts, in milliseconds.
pub const ENV_LEASE: &str = "STARLANE_LEASE";
/// The Space the HTTP gateway sends requests to when their host is not a Space.
pub const ENV_DEFAULT_SPACE: &str = "STARLANE_DEFAULT_SPACE";
/// How many seconds an HTTP request waits for the cosmos to answer (then 504).
pub const ENV_HTTP_WAIT: &str = "STARLANE_HTTP_WAIT";
/// The largest HTTP request body, in bytes (then 413).
pub const ENV_HTTP_MAX_BODY: &str = "STARLANE_HTTP_MAX_BODY";
/// How many milliseconds an HTTP request's headers, and then its body, may take to arrive
/// (also how long an idle keep-alive connection stays open).
pub const ENV_HTTP_READ_TIMEOUT: &str = "STARLANE_HTTP_READ_TIMEOUT";
/// The log filter, in `RUST_LOG` syntax.
pub const ENV_LOG: &str = "STARLANE_LOG";
/// The log format: `text` or `json`.
pub const ENV_LOG_FORMAT: &str = "STARLANE_LOG_FORMAT";
/// Where the Prometheus endpoint listens (`IP:PORT`, or `off`).
pub const ENV_METRICS: &str = "STARLANE_METRICS";
/// How many seconds shutdown waits for what is under way.
pub const ENV_GRACE: &str = "STARLANE_GRACE";
/// Waves in flight on one star before it answers 503.
pub const ENV_STAR_CAPACITY: &str = "STARLANE_STAR_CAPACITY";
/// Wasm worker threads kept warm (0: one per core).
pub const ENV_WASM_WORKERS: &str = "STARLANE_WASM_WORKERS";
/// Most wasm worker threads.
pub const ENV_WASM_MAX_WORKERS: &str = "STARLANE_WASM_MAX_WORKERS";
/// Calls waiting for one guest before it answers 503.
pub const ENV_GUEST_QUEUE: &str = "STARLANE_GUEST_QUEUE";
/// The key secrets are sealed with: 64 hexadecimal digits (32 random bytes). Only the
/// environment gives it — a flag would show in the process list, and `starlane.toml` sits
/// beside the data it protects — else the key file in the data directory is used.
pub const ENV_SECRET_KEY: &str = "STARLANE_SECRET_KEY";
/// The settings file in the data directory.
pub const SETTINGS_FILE: &str = "starlane.toml";

/// What a setting takes in `starlane.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    /// A string (`listen = "127.0.0.1:8080"`).
    Text,
    /// An integer (`wait = 30`).
    Whole,
}

/// The names of one machine setting: its flag, its environment variable and its place in
/// `starlane.toml` (the data directory, `--home` / `STARLANE_HOME`, and the environment-only
/// `STARLANE_SECRET_KEY` are not among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The flag of `starlane serve` (`--http`).
    pub flag: &'static str,
    /// The environment variable (`STARLANE_HTTP`).
    pub env: &'static str,
    /// Its table in `starlane.toml` (`http`); `None`: the top level.
    pub table: Option<&'static str>,
    /// Its key in that table (`listen`).
    pub key: &'static str,
    /// What it takes there.
    pub kind: SettingType,
    /// A value as `starlane.toml` writes it (`"127.0.0.1:8080"`, `30`), for messages.
    pub example: &'static str,
    /// The top-level key it had before `starlane.toml` had tables (`http-wait`), still read.
    pub legacy: Option<&'static str>,
}

impl Setting {
    const fn new(
        flag: &'static str,
        env: &'static str,
        place: (Option<&'static str>, &'static str),
        kind: SettingType,
        example: &'static str,
        legacy: Option<&'static str>,
    ) -> Setting {
        Setting {
            flag,
            env,
            table: place.0,
            key: place.1,
            kind,
            example,
            legacy,
        }
    }

    /// `--control`, `STARLANE_CONTROL`, `[control] listen`.
    pub const CONTROL: Setting = Setting::new(
        "--control",
        ENV_CONTROL,
        (Some("control"), "listen"),
        SettingType::Text,
        "\"127.0.0.1:4343\"",
        Some("control"),
    );
    /// `--http`, `STARLANE_HTTP`, `[http] listen`.
    pub const HTTP: Setting = Setting::new(
        "--http",
        ENV_HTTP,
        (Some("http"), "listen"),
        SettingType::Text,
        "\"127.0.0.1:8080\"",
        Some("http"),
    );
    /// `--http-wait`, `STARLANE_HTTP_WAIT`, `[http] wait` (seconds).
    pub const HTTP_WAIT: Setting = Setting::new(
        "--http-wait",
        ENV_HTTP_WAIT,
        (Some("http"), "wait"),
        SettingType::Whole,
        "30",
        Some("http-wait"),
    );
    /// `--http-max-body`, `STARLANE_HTTP_MAX_BODY`, `[http] max-body` (bytes).
    pub const HTTP_MAX_BODY: Setting = Setting::new(
        "--http-max-body",
        ENV_HTTP_MAX_BODY,
        (Some("http"), "max-body"),
        SettingType::Whole,
        "16777216",
        Some("http-max-body"),
    );
    /// `--http-read-timeout`, `STARLANE_HTTP_READ_TIMEOUT`, `[http] read-timeout`
    /// (milliseconds).
    pub const HTTP_READ_TIMEOUT: Setting = Setting::new(
        "--http-read-timeout",
        ENV_HTTP_READ_TIMEOUT,
        (Some("http"), "read-timeout"),
        SettingType::Whole,
        "10000",
        Some("http-read-timeout"),
    );
    /// `--default-space`, `STARLANE_DEFAULT_SPACE`, `[http] default-space`.
    pub const DEFAULT_SPACE: Setting = Setting::new(
        "--default-space",
        ENV_DEFAULT_SPACE,
        (Some("http"), "default-space"),
        SettingType::Text,
        "\"localhost\"",
        Some("default-space"),
    );
    /// `--stars`, `STARLANE_STARS`, `stars` at the top level.
    pub const STARS: Setting = Setting::new(
        "--stars",
        ENV_STARS,
        (None, "stars"),
        SettingType::Whole,
        "4",
        None,
    );
    /// `--machine`, `STARLANE_MACHINE`, `machine` at the top level.
    pub const MACHINE: Setting = Setting::new(
        "--machine",
        ENV_MACHINE,
        (None, "machine"),
        SettingType::Text,
        "\"edge-1\"",
        None,
    );
    /// `--registry`, `STARLANE_REGISTRY`, `[registry] url`.
    pub const REGISTRY: Setting = Setting::new(
        "--registry",
        ENV_REGISTRY,
        (Some("registry"), "url"),
        SettingType::Text,
        "\"postgres://USER:PASSWORD@HOST:5432/DATABASE\"",
        Some("registry"),
    );
    /// `--nats`, `STARLANE_NATS`, `[cluster] nats`.
    pub const NATS: Setting = Setting::new(
        "--nats",
        ENV_NATS,
        (Some("cluster"), "nats"),
        SettingType::Text,
        "\"nats://HOST:4222\"",
        Some("nats"),
    );
    /// `--cosmos`, `STARLANE_COSMOS`, `[cluster] cosmos`.
    pub const COSMOS: Setting = Setting::new(
        "--cosmos",
        ENV_COSMOS,
        (Some("cluster"), "cosmos"),
        SettingType::Text,
        "\"prod\"",
        Some("cosmos"),
    );
    /// `--lease`, `STARLANE_LEASE`, `[cluster] lease` (milliseconds).
    pub const LEASE: Setting = Setting::new(
        "--lease",
        ENV_LEASE,
        (Some("cluster"), "lease"),
        SettingType::Whole,
        "2000",
        Some("lease"),
    );
    /// `--log`, `STARLANE_LOG`, `[log] filter`.
    pub const LOG: Setting = Setting::new(
        "--log",
        ENV_LOG,
        (Some("log"), "filter"),
        SettingType::Text,
        "\"info\"",
        None,
    );
    /// `--log-format`, `STARLANE_LOG_FORMAT`, `[log] format`.
    pub const LOG_FORMAT: Setting = Setting::new(
        "--log-format",
        ENV_LOG_FORMAT,
        (Some("log"), "format"),
        SettingType::Text,
        "\"json\"",
        None,
    );
    /// `--metrics`, `STARLANE_METRICS`, `[metrics] listen`.
    pub const METRICS: Setting = Setting::new(
        "--metrics",
        ENV_METRICS,
        (Some("metrics"), "listen"),
        SettingType::Text,
        "\"127.0.0.1:9100\"",
        None,
    );
    /// `--grace`, `STARLANE_GRACE`, `[shutdown] grace` (seconds).
    pub const GRACE: Setting = Setting::new(
        "--grace",
        ENV_GRACE,
        (Some("shutdown"), "grace"),
        SettingType::Whole,
        "10",
        None,
    );
    /// `--star-capacity`, `STARLANE_STAR_CAPACITY`, `[host] star-capacity`.
    pub const STAR_CAPACITY: Setting = Setting::new(
        "--star-capacity",
        ENV_STAR_CAPACITY,
        (Some("host"), "star-capacity"),
        SettingType::Whole,
        "4096",
        None,
    );
    /// `--wasm-workers`, `STARLANE_WASM_WORKERS`, `[host] wasm-workers`.
    pub const WASM_WORKERS: Setting = Setting::new(
        "--wasm-workers",
        ENV_WASM_WORKERS,
        (Some("host"), "wasm-workers"),
        SettingType::Whole,
        "0",
        None,
    );
    /// `--wasm-max-workers`, `STARLANE_WASM_MAX_WORKERS`, `[host] wasm-max-workers`.
    pub const WASM_MAX_WORKERS: Setting = Setting::new(
        "--wasm-max-workers",
        ENV_WASM_MAX_WORKERS,
        (Some("host"), "wasm-max-workers"),
        SettingType::Whole,
        "256",
        None,
    );
    /// `--guest-queue`, `STARLANE_GUEST_QUEUE`, `[host] guest-queue`.
    pub const GUEST_QUEUE: Setting = Setting::new(
        "--guest-queue",
        ENV_GUEST_QUEUE,
        (Some("host"), "guest-queue"),
        SettingType::Whole,
        "256",
        None,
    );

    /// Every setting, in the order `starlane.toml` is documented.
    pub const ALL: [Setting; 20] = [
        Setting::MACHINE,
        Setting::STARS,
        Setting::CONTROL,
        Setting::HTTP,
        Setting::HTTP_WAIT,
        Setting::HTTP_MAX_BODY,
        Setting::HTTP_READ_TIMEOUT,
        Setting::DEFAULT_SPACE,
        Setting::REGISTRY,
        Setting::NATS,
        Setting::COSMOS,
        Setting::LEASE,
        Setting::LOG,
        Setting::LOG_FORMAT,
        Setting::METRICS,
        Setting::GRACE,
        Setting::STAR_CAPACITY,
        Setting::WASM_WORKERS,
        Setting::WASM_MAX_WORKERS,
        Setting::GUEST_QUEUE,
    ];

    /// How `starlane.toml` names it: `[http] listen`, or `stars` at the top level.
    pub fn file_name(&self) -> String {
        match self.table {
            Some(table) => format!("[{table}] {}", self.key),
            None => self.key.to_string(),
        }
    }
}

/// One value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Given {
    /// `--http`, `STARLANE_HTTP`, `starlane.toml line 3 ([http] listen)`, or `default`.
    source: String,
    value: String,
}

impl Given {
    fn default(value: &str) -> Given {
        Given {
            source: "default".to_string(),
            value: value.to_string(),
        }
    }
}

/// The three sources, consulted in order.
struct Sources<E> {
    flags: Settings,
    env: E,
    file: Vec<file::FileValue>,
}

impl<E: Fn(&str) -> Option<String>> Sources<E> {
    /// `setting` from its flag, else its variable, else `starlane.toml` (each setting is
    /// picked once: the flag's value is taken).
    fn pick(&mut self, setting: &Setting) -> Option<Given> {
        if let Some(value) = self.flags.slot_mut(setting).and_then(Option::take) {
            return Some(Given {
                source: setting.flag.to_string(),
                value,
            });
        }
        if let Some(value) = (self.env)(setting.env) {
            return Some(Given {
                source: setting.env.to_string(),
                value,
            });
        }
        self.file
            .iter()
            .find(|given| given.setting == *setting)
            .map(|given| Given {
                source: given.source.clone(),
                value: given.value.clone(),
            })
    }
}

/// The accepted ranges of the numbers.
const STARS: RangeInclusive<u64> = 1..=MachineConfig::MAX_STARS as u64;
/// Seconds an HTTP request may wait for its answer: up to an hour.
const HTTP_WAIT: RangeInclusive<u64> = 1..=3600;
/// Bytes of an HTTP request body: up to 1 GiB.
const HTTP_MAX_BODY: RangeInclusive<u64> = 1..=1 << 30;
/// Milliseconds for a request to arrive: up to an hour.
const HTTP_READ_TIMEOUT: RangeInclusive<u64> = 1..=3_600_000;
/// Milliseconds of a lease: from a tenth of a second (renewals take round trips to the
/// registry) to an hour.
const LEASE: RangeInclusive<u64> = 100..=3_600_000;
/// Seconds of shutdown's grace: none (cut off at once) to an hour.
const GRACE: RangeInclusive<u64> = 0..=3600;
/// Waves in flight on one star.
const STAR_CAPACITY: RangeInclusive<u64> = 1..=1 << 20;
/// Wasm worker threads kept warm (0: one per core).
const WASM_WORKERS: RangeInclusive<u64> = 0..=1024;
/// Most wasm worker threads.
const WASM_MAX_WORKERS: RangeInclusive<u64> = 1..=4096;
/// Calls queued for one guest.
const GUEST_QUEUE: RangeInclusive<u64> = 1..=65_536;

impl MachineConfig {
    /// The default control listen address.
    pub const DEFAULT_CONTROL: &str = "127.0.0.1:4343";
    /// The default HTTP listen address.
    pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
    /// The most stars one machine runs.
    pub const MAX_STARS: usize = 1024;
    /// The cosmos's name when none is given.
    pub const DEFAULT_COSMOS: &str = "default";
    /// How long a lease lasts when not set: a dead machine's particles answer again from the
    /// others about this long after it stopped (SPEC §15: ≤ 3 s p50).
    pub const DEFAULT_LEASE: Duration = Duration::from_millis(2000);
    /// How long shutdown waits for what is under way when not set.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

    /// Resolves the settings: `flags` first, then the environment (`env` looks a variable
    /// up, e.g. `|name| std::env::var(name).ok()`), then `starlane.toml` in the data
    /// directory, then the defaults (stars: the number of cores). Every value is checked,
    /// whether it is used or not (a lease without NATS too).
    pub fn resolve(
        flags: &Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<MachineConfig, ConfigError> {
        let home = resolve_home(flags.home.as_deref(), &env)?;
        let file = file::read(&home.join(SETTINGS_FILE))?;
        let mut sources = Sources {
            flags: flags.clone(),
            env,
            file,
        };

        let control = sources
            .pick(&Setting::CONTROL)
            .unwrap_or_else(|| Given::default(MachineConfig::DEFAULT_CONTROL));
        let control = parse_address(control, "127.0.0.1:4343")?;
        let http = sources
            .pick(&Setting::HTTP)
            .unwrap_or_else(|| Given::default(MachineConfig::DEFAULT_HTTP));
        let http = parse_address(http, "127.0.0.1:8080")?;
        let stars = match sources.pick(&Setting::STARS) {
            Some(given) => count(given, "stars", STARS)?,
            None => std::thread::available_parallelism()
                .map(|n| n.get().min(MachineConfig::MAX_STARS))
                .unwrap_or(1),
        };
        let machine = sources
            .pick(&Setting::MACHINE)
            .map(parse_machine)
            .transpose()?;
        let registry = sources
            .pick(&Setting::REGISTRY)
            .map(parse_registry)
            .transpose()?;
        let cosmos = match sources.pick(&Setting::COSMOS) {
            Some(given) => parse_cosmos(given)?,
            None => MachineConfig::DEFAULT_COSMOS.to_string(),
        };
        let lease = match sources.pick(&Setting::LEASE) {
            Some(given) => Duration::from_millis(whole(given, "milliseconds", LEASE)?),
            None => MachineConfig::DEFAULT_LEASE,
        };
        let cluster = match sources.pick(&Setting::NATS) {
            Some(given) => {
                let source = given.source.clone();
                let nats = parse_nats(given)?;
                if registry.is_none() {
                    return Err(ConfigError::NatsWithoutRegistry { setting: source });
                }
                Some(ClusterConfig {
                    nats,
                    cosmos,
                    lease,
                })
            }
            None => None,
        };

        let mut gateway = GatewayConfig::default();
        if let Some(given) = sources.pick(&Setting::DEFAULT_SPACE) {
            gateway.default_space = parse_space(given)?;
        }
        if let Some(given) = sources.pick(&Setting::HTTP_WAIT) {
            gateway.wait = Duration::from_secs(whole(given, "seconds", HTTP_WAIT)?);
        }
        if let Some(given) = sources.pick(&Setting::HTTP_MAX_BODY) {
            gateway.max_body = count(given, "bytes", HTTP_MAX_BODY)?;
        }
        if let Some(given) = sources.pick(&Setting::HTTP_READ_TIMEOUT) {
            gateway.read_timeout =
                Duration::from_millis(whole(given, "milliseconds", HTTP_READ_TIMEOUT)?);
        }

        let mut log = LogConfig::default();
        if let Some(given) = sources.pick(&Setting::LOG) {
            log.filter = parse_log_filter(given)?;
        }
        if let Some(given) = sources.pick(&Setting::LOG_FORMAT) {
            log.format = parse_log_format(given)?;
        }
        let metrics = match sources.pick(&Setting::METRICS) {
            Some(given) if given.value.trim() == "off" => None,
            Some(given) => Some(parse_address(given, "127.0.0.1:9100, or off")?),
            None => None,
        };
        let grace = match sources.pick(&Setting::GRACE) {
            Some(given) => Duration::from_secs(whole(given, "seconds", GRACE)?),
            None => MachineConfig::DEFAULT_GRACE,
        };
        let host = resolve_host(&mut sources)?;

        let secret_key = match (sources.env)(ENV_SECRET_KEY) {
            Some(text) => Some(SecretKey::parse(&text, ENV_SECRET_KEY)?),
            None => None,
        };
        Ok(MachineConfig {
            home,
            control,
            http,
            stars,
            machine,
            registry,
            cluster,
            gateway,
            secret_key,
            metrics,
            log,
            grace,
            host,
        })
    }

    /// Where the registry lives, for people: the PostgreSQL URL with its password hidden, or
    /// `embedded, in HOME`.
    pub fn registry_description(&self) -> String {
        match &self.registry {
            Some(url) => url.to_string(),
            None => format!("embedded, in {}", self.home.display()),
        }
    }
}

/// The host's limits; the warm wasm workers may not outnumber the most there may be.
fn resolve_host<E: Fn(&str) -> Option<String>>(
    sources: &mut Sources<E>,
) -> Result<HostConfig, ConfigError> {
    let mut host = HostConfig::default();
    if let Some(given) = sources.pick(&Setting::STAR_CAPACITY) {
        host.star_capacity = count(given, "waves", STAR_CAPACITY)?;
    }
    if let Some(given) = sources.pick(&Setting::GUEST_QUEUE) {
        host.guest_queue = count(given, "calls", GUEST_QUEUE)?;
    }
    let workers = sources.pick(&Setting::WASM_WORKERS);
    let workers_source = workers.as_ref().map(|given| given.source.clone());
    if let Some(given) = workers {
        host.wasm_workers = count(given, "threads", WASM_WORKERS)?;
    }
    let most = sources.pick(&Setting::WASM_MAX_WORKERS);
    let most_source = most.as_ref().map(|given| given.source.clone());
    if let Some(given) = most {
        host.wasm_max_workers = count(given, "threads", WASM_MAX_WORKERS)?;
    }
    if host.wasm_workers > 0 && host.wasm_max_workers < host.wasm_workers {
        return Err(ConfigError::Conflict {
            setting: most_source.unwrap_or_else(|| "the default wasm-max-workers".to_string()),
            value: host.wasm_max_workers as u64,
            other: workers_source.unwrap_or_else(|| "wasm-workers".to_string()),
            other_value: host.wasm_workers as u64,
            why: "the most wasm workers cannot be fewer than the workers kept warm",
        });
    }
    Ok(host)
}

/// The data directory: `flag`, else `STARLANE_HOME`, else `~/.starlane` (`HOME`, or
/// `USERPROFILE` on Windows).
pub fn resolve_home(
    flag: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    if let Some(home) = flag {
        return Ok(home.to_path_buf());
    }
    if let Some(home) = env(ENV_HOME).filter(|home| !home.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    env("HOME")
        .or_else(|| env("USERPROFILE"))
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".starlane"))
        .ok_or(ConfigError::NoHome)
}

/// `IP:PORT`; `example` is what the error suggests.
fn parse_address(given: Given, example: &'static str) -> Result<SocketAddr, ConfigError> {
    given
        .value
        .trim()
        .parse()
        .map_err(|_| ConfigError::BadAddress {
            setting: given.source,
            value: given.value,
            example,
        })
}

/// A whole number of `unit` within `range`.
fn whole(given: Given, unit: &'static str, range: RangeInclusive<u64>) -> Result<u64, ConfigError> {
    match given.value.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::BadNumber {
            setting: given.source,
            value: given.value,
            unit,
            range,
        }),
    }
}

/// A whole number of `unit` within `range` (which fits a `usize`) as a `usize`.
fn count(
    given: Given,
    unit: &'static str,
    range: RangeInclusive<u64>,
) -> Result<usize, ConfigError> {
    let n = whole(given, unit, range)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn parse_machine(given: Given) -> Result<String, ConfigError> {
    let name = given.value.trim();
    if StarKey::new(name, "star", 0).is_ok() {
        Ok(name.to_string())
    } else {
        Err(ConfigError::BadMachine {
            setting: given.source,
            value: given.value,
        })
    }
}

fn parse_registry(given: Given) -> Result<RegistryUrl, ConfigError> {
    RegistryUrl::parse(given.value.trim()).ok_or_else(|| ConfigError::BadRegistry {
        setting: given.source,
        value: redact(&given.value),
    })
}

fn parse_nats(given: Given) -> Result<String, ConfigError> {
    let url = given.value.trim();
    let rest = ["nats://", "tls://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', ':', '@']) => Ok(url.to_string()),
        _ => Err(ConfigError::BadNats {
            setting: given.source,
            value: redact(&given.value),
        }),
    }
}

fn parse_cosmos(given: Given) -> Result<String, ConfigError> {
    let name = given.value.trim();
    // A cosmos's name is a subject token and a constellation-like name: skewer case.
    if StarKey::new(name, "star", 0).is_ok() {
        Ok(name.to_string())
    } else {
        Err(ConfigError::BadCosmos {
            setting: given.source,
            value: given.value,
        })
    }
}

fn parse_space(given: Given) -> Result<Point, ConfigError> {
    match given.value.trim().parse::<Point>() {
        Ok(point) if point.segments().len() == 1 => Ok(point),
        _ => Err(ConfigError::BadSpace {
            setting: given.source,
            value: given.value,
        }),
    }
}

/// The levels a `RUST_LOG` directive may name (case does not matter).
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A filter in `RUST_LOG` syntax: directives separated by commas, each a level, a target,
/// or `target=level` (a target may carry a span filter, `target[span{field=value}]=level`).
/// What is checked is what a typo breaks: an empty filter, an empty directive, a level that
/// is not one, whitespace or control characters.
fn parse_log_filter(given: Given) -> Result<String, ConfigError> {
    let filter = given.value.trim();
    let why = if filter.is_empty() {
        Some("it is empty".to_string())
    } else if let Some(bad) = filter
        .chars()
        .find(|ch| ch.is_whitespace() || ch.is_control())
    {
        Some(format!("{bad:?} cannot be part of it"))
    } else {
        filter.split(',').find_map(|directive| {
            if directive.is_empty() {
                return Some("a directive between two commas is empty".to_string());
            }
            // A span filter's fields may hold `=`; the level follows the last `]` or `}`.
            let tail = directive
                .rfind([']', '}'])
                .map_or(directive, |at| &directive[at + 1..]);
            let (_, level) = tail.rsplit_once('=')?;
            let known = LEVELS.iter().any(|name| name.eq_ignore_ascii_case(level))
                || matches!(level, "0" | "1" | "2" | "3" | "4" | "5");
            (!known).then(|| {
                format!("'{level}' is not a level (off, error, warn, info, debug or trace)")
            })
        })
    };
    match why {
        None => Ok(filter.to_string()),
        Some(why) => Err(ConfigError::BadLogFilter {
            setting: given.source,
            value: given.value,
            why,
        }),
    }
}

fn parse_log_format(given: Given) -> Result<LogFormat, ConfigError> {
    match given.value.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::BadLogFormat {
            setting: given.source,
            value: given.value,
        }),
    }
}

/// The PostgreSQL URL of the registry (SPEC §14.2): `postgres://USER:PASSWORD@HOST:PORT/DB`
/// or `postgresql://…`, with libpq's query parameters (`?host=…&port=…&password=…`).
///
/// It prints and debugs with its password hidden (`postgres://scott:***@db:5432/cosmos`);
/// only [`RegistryUrl::secret`] gives the URL as written, for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryUrl(String);

/// What a [`RegistryUrl`] names, read as tokio-postgres and libpq read it.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlParts {
    user: Option<String>,
    hosts: Vec<String>,
    ports: Vec<String>,
    database: Option<String>,
}

impl RegistryUrl {
    /// The schemes PostgreSQL URLs are written with.
    pub const SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

    /// `text` as a registry URL, if it is a PostgreSQL URL that names a host.
    pub fn parse(text: &str) -> Option<RegistryUrl> {
        let url = RegistryUrl(text.to_string());
        (!url.parts()?.hosts.is_empty()).then_some(url)
    }

    /// The URL as written, password included: for connecting, never for printing.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Where it points, for messages: `host H, port P, database D, user U` (the defaults
    /// PostgreSQL applies filled in: port 5432, the user's name as the database).
    pub fn target(&self) -> String {
        let parts = self.parts().unwrap_or_default();
        let ports = if parts.ports.is_empty() {
            "5432".to_string()
        } else {
            parts.ports.join(",")
        };
        let user = parts.user.as_deref().unwrap_or("(default)");
        let database = parts.database.as_deref().unwrap_or(user);
        format!(
            "host {}, port {ports}, database {database}, user {user}",
            parts.hosts.join(",")
        )
    }

    /// The parts, or `None` if the scheme is not PostgreSQL's. The reading follows
    /// tokio-postgres's (itself libpq's) — credentials before an `@`, hosts up to `/` or `?`,
    /// the database up to `?`, then `key=value` pairs joined by `&` — but for the
    /// credentials, which end at the *last* `@`, as in [`redact`]: a password with an `@` it
    /// should have percent-encoded is then not shown as part of a host.
    fn parts(&self) -> Option<UrlParts> {
        let rest = RegistryUrl::SCHEMES
            .iter()
            .find_map(|scheme| self.0.strip_prefix(scheme))?;
        let mut parts = UrlParts::default();
        let rest = match rest.rsplit_once('@') {
            Some((credentials, rest)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                parts.user = Some(user.to_string());
                rest
            }
            None => rest,
        };
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (hosts, rest) = rest.split_at(host_end);
        for host in hosts.split(',').filter(|host| !host.is_empty()) {
            let (name, port) = match host.strip_prefix('[') {
                Some(v6) => match v6.split_once(']') {
                    Some((name, port)) => (name, port.strip_prefix(':')),
                    None => (v6, None),
                },
                None => match host.split_once(':') {
                    Some((name, port)) => (name, Some(port)),
                    None => (host, None),
                },
            };
            parts.hosts.push(name.to_string());
            parts.ports.push(port.unwrap_or("5432").to_string());
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if let Some(database) = path.strip_prefix('/').filter(|db| !db.is_empty()) {
            parts.database = Some(database.to_string());
        }
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            match key {
                "host" => parts.hosts.extend(value.split(',').map(str::to_string)),
                "port" => parts.ports = value.split(',').map(str::to_string).collect(),
                "dbname" => parts.database = Some(value.to_string()),
                "user" => parts.user = Some(value.to_string()),
                _ => {}
            }
        }
        Some(parts)
    }
}

impl std::fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl std::fmt::Debug for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RegistryUrl")
            .field(&redact(&self.0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A data directory holding `starlane.toml` = `text` (none if empty), and its path.
    fn home_with(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        if !text.is_empty() {
            fs::write(dir.path().join(SETTINGS_FILE), text).unwrap();
        }
        let home = dir.path().to_str().unwrap().to_string();
        (dir, home)
    }

    /// `resolve` with no flags, `STARLANE_HOME` = `home` and the variables `envs`.
    fn resolved(home: &str, envs: &[(&str, &str)]) -> Result<MachineConfig, ConfigError> {
        let mut all = vec![("STARLANE_HOME", home)];
        all.extend_from_slice(envs);
        MachineConfig::resolve(&Settings::default(), env_of(&all))
    }

    fn refused(home: &str, envs: &[(&str, &str)]) -> String {
        resolved(home, envs).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let config =
            MachineConfig::resolve(&Settings::default(), env_of(&[("HOME", home)])).unwrap();
        assert_eq!(config.home, dir.path().join(".starlane"));
        assert_eq!(config.control, addr("127.0.0.1:4343"));
        assert_eq!(config.http, addr("127.0.0.1:8080"));
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(config.stars, cores);
        assert_eq!(config.gateway, GatewayConfig::default());
        assert_eq!(config.metrics, None);
        assert_eq!(
            config.log,
            LogConfig {
                filter: "info".to_string(),
                format: LogFormat::Text
            }
        );
        assert_eq!(config.grace, Duration::from_secs(10));
        assert_eq!(
            config.host,
            HostConfig {
                star_capacity: 4096,
                wasm_workers: 0,
                wasm_max_workers: 256,
                guest_queue: 256,
            }
        );
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let (dir, home) = home_with(
            "# machine settings\nstars = 3\n\n[control]\nlisten = \"127.0.0.1:1001\"\n\
             [http]\nlisten = '0.0.0.0:1002' # public\ndefault-space = \"example.com\"\n\
             [metrics]\nlisten = \"127.0.0.1:9100\"\n[shutdown]\ngrace = 0\n",
        );
        let from_file = resolved(&home, &[]).unwrap();
        assert_eq!(
            from_file,
            MachineConfig {
                home: dir.path().to_path_buf(),
                control: addr("127.0.0.1:1001"),
                http: addr("0.0.0.0:1002"),
                stars: 3,
                machine: None,
                registry: None,
                cluster: None,
                gateway: GatewayConfig {
                    default_space: "example.com".parse().unwrap(),
                    ..GatewayConfig::default()
                },
                secret_key: None,
                metrics: Some(addr("127.0.0.1:9100")),
                log: LogConfig::default(),
                grace: Duration::ZERO,
                host: HostConfig::default(),
            }
        );

        let env = [
            ("STARLANE_CONTROL", "127.0.0.1:2001"),
            ("STARLANE_STARS", "5"),
            ("STARLANE_DEFAULT_SPACE", "starlane.io"),
            ("STARLANE_METRICS", "off"),
            ("STARLANE_GRACE", "30"),
        ];
        let from_env = resolved(&home, &env).unwrap();
        assert_eq!(from_env.control, addr("127.0.0.1:2001"));
        assert_eq!(from_env.http, addr("0.0.0.0:1002"));
        assert_eq!(from_env.stars, 5);
        assert_eq!(from_env.gateway.default_space.to_string(), "starlane.io");
        assert_eq!(from_env.metrics, None);
        assert_eq!(from_env.grace, Duration::from_secs(30));

        let flags = Settings {
            control: Some("127.0.0.1:0".into()),
            stars: Some("1".into()),
            metrics: Some("0.0.0.0:9200".into()),
            grace: Some("2".into()),
            ..Settings::default()
        };
        let mut all = vec![("STARLANE_HOME", home.as_str())];
        all.extend_from_slice(&env);
        let from_flags = MachineConfig::resolve(&flags, env_of(&all)).unwrap();
        assert_eq!(from_flags.control, addr("127.0.0.1:0"));
        assert_eq!(from_flags.http, addr("0.0.0.0:1002"));
        assert_eq!(from_flags.stars, 1);
        assert_eq!(from_flags.metrics, Some(addr("0.0.0.0:9200")));
        assert_eq!(from_flags.grace, Duration::from_secs(2));
    }

    #[test]
    fn the_gateway_limits_come_from_any_source() {
        let (_dir, home) = home_with("[http]\nwait = 7\nmax-body = 2048\nread-timeout = 900\n");
        let from_file = resolved(&home, &[]).unwrap().gateway;
        assert_eq!(from_file.wait, Duration::from_secs(7));
        assert_eq!(from_file.max_body, 2048);
        assert_eq!(from_file.read_timeout, Duration::from_millis(900));
        let limits = [
            ("STARLANE_HTTP_WAIT", "5"),
            ("STARLANE_HTTP_MAX_BODY", "1024"),
            ("STARLANE_HTTP_READ_TIMEOUT", "250"),
        ];
        let from_env = resolved(&home, &limits).unwrap().gateway;
        assert_eq!(from_env.wait, Duration::from_secs(5));
        assert_eq!(from_env.max_body, 1024);
        assert_eq!(from_env.read_timeout, Duration::from_millis(250));
        let flags = Settings {
            http_wait: Some("3".into()),
            http_max_body: Some("512".into()),
            http_read_timeout: Some("100".into()),
            default_space: Some("flag.example".into()),
            ..Settings::default()
        };
        let from_flags = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", &home)]))
            .unwrap()
            .gateway;
        assert_eq!(from_flags.wait, Duration::from_secs(3));
        assert_eq!(from_flags.max_body, 512);
        assert_eq!(from_flags.read_timeout, Duration::from_millis(100));
        assert_eq!(from_flags.default_space.to_string(), "flag.example");

        assert_eq!(
            refused(&home, &[("STARLANE_HTTP_READ_TIMEOUT", "1.5")]),
            "STARLANE_HTTP_READ_TIMEOUT = '1.5' is not a number of milliseconds: write a whole \
             number from 1 to 3600000"
        );
        assert_eq!(
            refused(&home, &[("STARLANE_HTTP_MAX_BODY", "2147483648")]),
            "STARLANE_HTTP_MAX_BODY = '2147483648' is not a number of bytes: write a whole number \
             from 1 to 1073741824"
        );
        assert!(matches!(
            resolved(&home, &[("STARLANE_DEFAULT_SPACE", "a:b")]),
            Err(ConfigError::BadSpace { .. })
        ));
    }

    #[test]
    fn the_old_flat_keys_are_still_read() {
        let (_dir, home) = home_with(
            "control = \"127.0.0.1:1001\"\nhttp = '0.0.0.0:1002'\nstars = 3\n\
             default-space = \"example.com\"\nhttp-wait = 4\nhttp-max-body = 100\n\
             http-read-timeout = 200\nregistry = \"postgres://file@db-1/cosmos\"\n\
             nats = \"nats://nats-1\"\ncosmos = \"prod\"\nlease = 1500\n",
        );
        let config = resolved(&home, &[]).unwrap();
        assert_eq!(config.control, addr("127.0.0.1:1001"));
        assert_eq!(config.http, addr("0.0.0.0:1002"));
        assert_eq!(config.stars, 3);
        assert_eq!(config.gateway.default_space.to_string(), "example.com");
        assert_eq!(config.gateway.wait, Duration::from_secs(4));
        assert_eq!(config.gateway.max_body, 100);
        assert_eq!(config.gateway.read_timeout, Duration::from_millis(200));
        assert_eq!(
            config.registry.unwrap().secret(),
            "postgres://file@db-1/cosmos"
        );
        let cluster = config.cluster.unwrap();
        assert_eq!(
            (
                cluster.nats.as_str(),
                cluster.cosmos.as_str(),
                cluster.lease
            ),
            ("nats://nats-1", "prod", Duration::from_millis(1500))
        );
        // Errors name the key as the file spells it.
        let (_dir, home) = home_with("\nhttp-wait = 0\n");
        assert_eq!(
            refused(&home, &[]),
            "starlane.toml line 2 (http-wait) = '0' is not a number of seconds: write a whole \
             number from 1 to 3600"
        );
    }

    #[test]
    fn the_machine_name_is_skewer_case_from_any_source() {
        let (_dir, home) = home_with("");
        let config = resolved(&home, &[("STARLANE_MACHINE", "edge-1")]).unwrap();
        assert_eq!(config.machine.as_deref(), Some("edge-1"));
        assert_eq!(resolved(&home, &[]).unwrap().machine, None);
        let flags = Settings {
            machine: Some("Edge_1".into()),
            ..Settings::default()
        };
        let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", &home)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--machine = 'Edge_1' is not a machine name: write it in skewer case ([a-z][a-z0-9-]*), e.g. edge-1"
        );
    }

    #[test]
    fn a_cluster_needs_nats_and_the_registry_and_takes_a_cosmos_and_a_lease() {
        let (_dir, home) = home_with("");
        let registry = "postgres://scott:tiger@db/cosmos";
        assert_eq!(resolved(&home, &[]).unwrap().cluster, None);

        let joined = MachineConfig::resolve(
            &Settings {
                nats: Some("nats://bus:secret@nats-1:4222".into()),
                lease: Some("1500".into()),
                ..Settings::default()
            },
            env_of(&[
                ("STARLANE_HOME", &home),
                ("STARLANE_REGISTRY", registry),
                ("STARLANE_COSMOS", "prod"),
                ("STARLANE_LEASE", "9000"),
            ]),
        )
        .unwrap();
        let cluster = joined.cluster.unwrap();
        assert_eq!(cluster.nats, "nats://bus:secret@nats-1:4222");
        assert_eq!(cluster.cosmos, "prod");
        assert_eq!(cluster.lease, Duration::from_millis(1500));
        assert!(!format!("{cluster:?}").contains("secret"));

        let defaults = resolved(
            &home,
            &[
                ("STARLANE_REGISTRY", registry),
                ("STARLANE_NATS", "nats://127.0.0.1:4222"),
            ],
        )
        .unwrap()
        .cluster
        .unwrap();
        assert_eq!(defaults.cosmos, MachineConfig::DEFAULT_COSMOS);
        assert_eq!(defaults.lease, MachineConfig::DEFAULT_LEASE);

        assert!(
            refused(&home, &[("STARLANE_NATS", "nats://127.0.0.1:4222")])
                .starts_with("STARLANE_NATS joins a cosmos of several machines"),
        );
        let bad = refused(
            &home,
            &[
                ("STARLANE_REGISTRY", registry),
                ("STARLANE_NATS", "http://bus:secret@nats-1"),
            ],
        );
        assert!(
            bad.starts_with("STARLANE_NATS = 'http://bus:***@nats-1' is not a NATS URL"),
            "{bad}"
        );
        assert!(
            refused(
                &home,
                &[
                    ("STARLANE_REGISTRY", registry),
                    ("STARLANE_NATS", "nats://nats-1"),
                    ("STARLANE_COSMOS", "Prod!"),
                ]
            )
            .starts_with("STARLANE_COSMOS = 'Prod!' is not a cosmos name")
        );
        // A lease is checked even where no cluster uses it.
        assert_eq!(
            refused(&home, &[("STARLANE_LEASE", "50")]),
            "STARLANE_LEASE = '50' is not a number of milliseconds: write a whole number from \
             100 to 3600000"
        );
    }

    #[test]
    fn the_registry_is_a_postgres_url_from_any_source_in_the_usual_order() {
        let (dir, home) = home_with("");
        let embedded = resolved(&home, &[]).unwrap();
        assert_eq!(embedded.registry, None);
        assert_eq!(
            embedded.registry_description(),
            format!("embedded, in {home}")
        );

        fs::write(
            dir.path().join(SETTINGS_FILE),
            "[registry]\nurl = \"postgres://file@db-1/cosmos\"\n",
        )
        .unwrap();
        let url = |config: &MachineConfig| config.registry.as_ref().unwrap().secret().to_string();
        assert_eq!(
            url(&resolved(&home, &[]).unwrap()),
            "postgres://file@db-1/cosmos"
        );
        let env = [(
            "STARLANE_REGISTRY",
            "postgresql://env:s3cret@db-2:5433/cosmos",
        )];
        let from_env = resolved(&home, &env).unwrap();
        assert_eq!(url(&from_env), "postgresql://env:s3cret@db-2:5433/cosmos");
        assert_eq!(
            from_env.registry_description(),
            "postgresql://env:***@db-2:5433/cosmos"
        );
        let flags = Settings {
            registry: Some("postgres://flag@db-3/cosmos".into()),
            ..Settings::default()
        };
        let mut all = vec![("STARLANE_HOME", home.as_str())];
        all.extend_from_slice(&env);
        assert_eq!(
            url(&MachineConfig::resolve(&flags, env_of(&all)).unwrap()),
            "postgres://flag@db-3/cosmos"
        );

        // Anything else names its source and says what to write, never showing a password.
        for (value, shown) in [
            (
                "mysql://root:hunter2@db/cosmos",
                "mysql://root:***@db/cosmos",
            ),
            ("/var/lib/starlane", "/var/lib/starlane"),
            ("embedded", "embedded"),
            ("", ""),
            ("postgres:///cosmos", "postgres:///cosmos"),
            ("postgres://u:pw@/cosmos", "postgres://u:***@/cosmos"),
        ] {
            let flags = Settings {
                registry: Some(value.into()),
                ..Settings::default()
            };
            let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", &home)]))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "--registry = '{shown}' is not a registry: write a PostgreSQL URL, \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE (or leave it out for the \
                     embedded store in the data directory)"
                )
            );
        }
        fs::write(
            dir.path().join(SETTINGS_FILE),
            "[registry]\nurl = \"mysql://root:hunter2@db/x\"\n",
        )
        .unwrap();
        assert!(refused(&home, &[]).starts_with(
            "starlane.toml line 2 ([registry] url) = 'mysql://root:***@db/x' is not a registry"
        ));
        fs::write(dir.path().join(SETTINGS_FILE), "\nregistry = 5432\n").unwrap();
        let err = refused(&home, &[]);
        assert!(
            err.ends_with(
                "starlane.toml:2: registry takes a quoted string, e.g. \
                 \"postgres://USER:PASSWORD@HOST:5432/DATABASE\""
            ),
            "{err}"
        );
    }

    #[test]
    fn a_registry_url_hides_its_password_and_names_its_target() {
        for (text, shown, target) in [
            (
                "postgres://scott:tiger@db.example:5433/cosmos",
                "postgres://scott:***@db.example:5433/cosmos",
                "host db.example, port 5433, database cosmos, user scott",
            ),
            (
                "postgresql://scott@db.example",
                "postgresql://scott@db.example",
                "host db.example, port 5432, database scott, user scott",
            ),
            (
                "postgres://[::1]:6000,other/cosmos?user=ann&password=pw&pass%77ord=pw2",
                "postgres://[::1]:6000,other/cosmos?user=ann&password=***&pass%77ord=***",
                "host ::1,other, port 6000,5432, database cosmos, user ann",
            ),
            (
                "postgres:///cosmos?host=/run/postgresql&port=5555&dbname=other",
                "postgres:///cosmos?host=/run/postgresql&port=5555&dbname=other",
                "host /run/postgresql, port 5555, database other, user (default)",
            ),
            (
                "postgres://u:p@ss@db/x",
                "postgres://u:***@db/x",
                "host db, port 5432, database x, user u",
            ),
        ] {
            let url = RegistryUrl::parse(text).unwrap();
            assert_eq!(url.secret(), text);
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("RegistryUrl({shown:?})"));
            assert_eq!(url.target(), target, "{text}");
        }
    }

    #[test]
    fn the_home_flag_chooses_which_file_is_read() {
        let (dir, _) = home_with("stars = 2\n");
        let flags = Settings {
            home: Some(dir.path().to_path_buf()),
            ..Settings::default()
        };
        let config =
            MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", "/nowhere")])).unwrap();
        assert_eq!(config.home, dir.path());
        assert_eq!(config.stars, 2);
    }

    #[test]
    fn bad_values_name_their_source() {
        let (dir, home) = home_with("");
        assert_eq!(
            refused(&home, &[("STARLANE_HTTP", "localhost:80")]),
            "STARLANE_HTTP = 'localhost:80' is not a listen address: write IP:PORT, e.g. 127.0.0.1:8080"
        );
        let flags = Settings {
            stars: Some("0".into()),
            ..Settings::default()
        };
        let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", &home)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--stars = '0' is not a number of stars: write a whole number from 1 to 1024"
        );
        fs::write(
            dir.path().join(SETTINGS_FILE),
            "\n[control]\nlisten = \"nope\"\n",
        )
        .unwrap();
        assert_eq!(
            refused(&home, &[]),
            "starlane.toml line 3 ([control] listen) = 'nope' is not a listen address: write \
             IP:PORT, e.g. 127.0.0.1:4343"
        );
        assert!(matches!(
            MachineConfig::resolve(&Settings::default(), env_of(&[])),
            Err(ConfigError::NoHome)
        ));
    }

    /// A value no setting takes: not an address, a number, a URL, a name, a Space, a filter
    /// or a format.
    const BAD: &str = "a b=?";

    #[test]
    fn every_setting_names_its_flag_its_variable_and_its_line() {
        let (dir, home) = home_with("");
        for setting in Setting::ALL {
            let mut flags = Settings::default();
            *flags.slot_mut(&setting).unwrap() = Some(BAD.to_string());
            let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", &home)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("{} = '{BAD}' is not", setting.flag)),
                "{err}"
            );
            let err = refused(&home, &[(setting.env, BAD)]);
            assert!(
                err.starts_with(&format!("{} = '{BAD}' is not", setting.env)),
                "{err}"
            );
            let (value, shown) = match setting.kind {
                SettingType::Text => (format!("{BAD:?}"), BAD.to_string()),
                SettingType::Whole => ("99999999999".to_string(), "99999999999".to_string()),
            };
            let table = setting
                .table
                .map(|t| format!("[{t}]\n"))
                .unwrap_or_default();
            fs::write(
                dir.path().join(SETTINGS_FILE),
                format!("# comment\n{table}{} = {value}\n", setting.key),
            )
            .unwrap();
            let line = if setting.table.is_some() { 3 } else { 2 };
            let err = refused(&home, &[]);
            assert!(
                err.starts_with(&format!(
                    "starlane.toml line {line} ({}) = '{shown}' is not",
                    setting.file_name()
                )),
                "{err}"
            );
            fs::remove_file(dir.path().join(SETTINGS_FILE)).unwrap();
        }
    }

    #[test]
    fn every_setting_has_a_slot_and_its_own_names() {
        let mut flags = Settings::default();
        for (at, setting) in Setting::ALL.iter().enumerate() {
            assert!(flags.slot_mut(setting).is_some(), "{setting:?}");
            for other in &Setting::ALL[..at] {
                assert_ne!(setting.flag, other.flag);
                assert_ne!(setting.env, other.env);
                assert_ne!(
                    (setting.table, setting.key),
                    (other.table, other.key),
                    "{setting:?}"
                );
            }
        }
    }

    #[test]
    fn metrics_listen_on_an_address_or_are_off() {
        let (_dir, home) = home_with("[metrics]\nlisten = \"127.0.0.1:9100\"\n");
        assert_eq!(
            resolved(&home, &[]).unwrap().metrics,
            Some(addr("127.0.0.1:9100"))
        );
        assert_eq!(
            resolved(&home, &[("STARLANE_METRICS", "off")])
                .unwrap()
                .metrics,
            None
        );
        assert_eq!(
            refused(&home, &[("STARLANE_METRICS", "9100")]),
            "STARLANE_METRICS = '9100' is not a listen address: write IP:PORT, e.g. \
             127.0.0.1:9100, or off"
        );
    }

    #[test]
    fn the_log_takes_a_rust_log_filter_and_a_format() {
        let (_dir, home) = home_with("[log]\nfilter = \"warn\"\nformat = \"json\"\n");
        assert_eq!(
            resolved(&home, &[]).unwrap().log,
            LogConfig {
                filter: "warn".to_string(),
                format: LogFormat::Json
            }
        );
        for filter in [
            "debug",
            "INFO",
            "warn,cosmic_hyperspace=debug",
            "cosmic_hyperspace::gateway=trace,tokio=off",
            "cosmic_hyperspace",
            "cosmic_hyperspace[wave{to=localhost:app}]=debug",
            "3",
        ] {
            let config = resolved(&home, &[("STARLANE_LOG", filter)]).unwrap();
            assert_eq!(config.log.filter, filter);
            assert_eq!(config.log.format, LogFormat::Json);
        }
        for (filter, why) in [
            ("", "it is empty"),
            ("info, debug", "' ' cannot be part of it"),
            ("info,,debug", "a directive between two commas is empty"),
            (
                "app=loud",
                "'loud' is not a level (off, error, warn, info, debug or trace)",
            ),
        ] {
            assert_eq!(
                refused(&home, &[("STARLANE_LOG", filter)]),
                format!(
                    "STARLANE_LOG = '{filter}' is not a log filter: {why}; write RUST_LOG \
                     syntax, e.g. info or warn,cosmic_hyperspace=debug"
                )
            );
        }
        let flags = Settings {
            log_format: Some("xml".into()),
            ..Settings::default()
        };
        assert_eq!(
            MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", &home)]))
                .unwrap_err()
                .to_string(),
            "--log-format = 'xml' is not a log format: write text or json"
        );
    }

    #[test]
    fn the_grace_is_seconds_from_none_to_an_hour() {
        let (_dir, home) = home_with("[shutdown]\ngrace = 3\n");
        assert_eq!(resolved(&home, &[]).unwrap().grace, Duration::from_secs(3));
        assert_eq!(
            resolved(&home, &[("STARLANE_GRACE", "0")]).unwrap().grace,
            Duration::ZERO
        );
        assert_eq!(
            refused(&home, &[("STARLANE_GRACE", "3601")]),
            "STARLANE_GRACE = '3601' is not a number of seconds: write a whole number from 0 to 3600"
        );
        assert_eq!(
            refused(&home, &[("STARLANE_GRACE", "-1")]),
            "STARLANE_GRACE = '-1' is not a number of seconds: write a whole number from 0 to 3600"
        );
    }

    #[test]
    fn the_host_limits_are_bounded_and_agree() {
        let (_dir, home) = home_with(
            "[host]\nstar-capacity = 100\nwasm-workers = 4\nwasm-max-workers = 8\n\
             guest-queue = 16\n",
        );
        assert_eq!(
            resolved(&home, &[]).unwrap().host,
            HostConfig {
                star_capacity: 100,
                wasm_workers: 4,
                wasm_max_workers: 8,
                guest_queue: 16,
            }
        );
        let env = [
            ("STARLANE_STAR_CAPACITY", "1"),
            ("STARLANE_WASM_WORKERS", "0"),
            ("STARLANE_WASM_MAX_WORKERS", "1"),
            ("STARLANE_GUEST_QUEUE", "65536"),
        ];
        assert_eq!(
            resolved(&home, &env).unwrap().host,
            HostConfig {
                star_capacity: 1,
                wasm_workers: 0,
                wasm_max_workers: 1,
                guest_queue: 65536,
            }
        );
        for (var, value, message) in [
            (
                "STARLANE_STAR_CAPACITY",
                "0",
                "is not a number of waves: write a whole number from 1 to 1048576",
            ),
            (
                "STARLANE_WASM_WORKERS",
                "1025",
                "is not a number of threads: write a whole number from 0 to 1024",
            ),
            (
                "STARLANE_WASM_MAX_WORKERS",
                "0",
                "is not a number of threads: write a whole number from 1 to 4096",
            ),
            (
                "STARLANE_GUEST_QUEUE",
                "65537",
                "is not a number of calls: write a whole number from 1 to 65536",
            ),
        ] {
            assert_eq!(
                refused(&home, &[(var, value)]),
                format!("{var} = '{value}' {message}")
            );
        }
        assert_eq!(
            refused(&home, &[("STARLANE_WASM_WORKERS", "16")]),
            "starlane.toml line 4 ([host] wasm-max-workers) = 8 is below STARLANE_WASM_WORKERS \
             = 16: the most wasm workers cannot be fewer than the workers kept warm"
        );
        let (_dir, home) = home_with("");
        assert_eq!(
            refused(&home, &[("STARLANE_WASM_WORKERS", "300")]),
            "the default wasm-max-workers = 256 is below STARLANE_WASM_WORKERS = 300: the most \
             wasm workers cannot be fewer than the workers kept warm"
        );
    }

    #[test]
    fn the_secret_key_comes_from_the_environment_only_and_is_never_shown() {
        let (dir, home) = home_with("");
        let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let config = resolved(&home, &[("STARLANE_SECRET_KEY", key)]).unwrap();
        assert_eq!(
            config.secret_key,
            Some(SecretKey::parse(key, "test").unwrap())
        );
        assert!(!format!("{config:?}").contains("00112233"), "{config:?}");
        assert_eq!(resolved(&home, &[]).unwrap().secret_key, None);
        for bad in ["", "  ", "00112233", "hunter2-is-not-a-key"] {
            let err = refused(&home, &[("STARLANE_SECRET_KEY", bad)]);
            assert!(
                err.starts_with("STARLANE_SECRET_KEY is not a secret key: write 64 hexadecimal"),
                "{bad:?}: {err}"
            );
            assert!(bad.trim().is_empty() || !err.contains(bad), "{err}");
        }
        // Not a setting of the file: the key does not sit beside the data it protects.
        fs::write(
            dir.path().join(SETTINGS_FILE),
            format!("secret-key = \"{key}\"\n"),
        )
        .unwrap();
        let err = refused(&home, &[]);
        assert!(err.contains("unknown setting 'secret-key'"), "{err}");
        assert!(!err.contains(key), "{err}");
    }
}
