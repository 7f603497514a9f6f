//! The machine's settings (SPEC §13): flags, then environment variables, then `starlane.toml`
//! in the data directory, then defaults.
//!
//! `starlane.toml` is read by a small reader for the part of TOML these settings need:
//! top-level `key = value` lines with a basic (`"…"`) or literal (`'…'`) string or a decimal
//! integer, `#` comments and blank lines. Whatever it accepts is valid TOML meaning the same;
//! anything else (tables, arrays, unknown keys) is an error naming the line.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cosmic_space::{Point, StarKey};

use crate::credentials::redact;
use crate::driver::{SecretKey, SecretKeyError};
use crate::gateway::GatewayConfig;

/// Settings as given by one source (flags or environment); `None` means not given there.
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
    /// Where the metrics are served (`STARLANE_METRICS`); `None`: off.
    pub metrics: Option<SocketAddr>,
    /// What the server logs, and how (`STARLANE_LOG`, `STARLANE_LOG_FORMAT`).
    pub log: LogConfig,
}

/// What the server logs (a `tracing` filter in `RUST_LOG` syntax, `info` by default) and in
/// which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The filter (`STARLANE_LOG`), e.g. `info,starlane::wave=debug`.
    pub filter: String,
    /// The format of the lines (`STARLANE_LOG_FORMAT`).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".to_string(),
            format: LogFormat::default(),
        }
    }
}

/// The format of the server's log lines (on standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line, for machines.
    Json,
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

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither a data directory nor a home directory is known.
    #[error("cannot tell where the data directory is: set STARLANE_HOME (or HOME), or pass --home")]
    NoHome,
    /// An address setting is not `IP:PORT`.
    #[error("{setting} = '{value}' is not a listen address: write IP:PORT, e.g. 127.0.0.1:4343")]
    BadAddress {
        /// Where the value came from (`--control`, `STARLANE_HTTP`, `starlane.toml line 2`).
        setting: String,
        /// The value.
        value: String,
    },
    /// The number of stars is not a whole number in range.
    #[error("{setting} = '{value}' is not a number of stars: write a whole number from 1 to {max}")]
    BadStars {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
        /// The largest number accepted.
        max: usize,
    },
    /// A count (seconds, bytes) is not a positive whole number.
    #[error("{setting} = '{value}' is not a number of {unit}: write a whole number above 0")]
    BadCount {
        /// Where the value came from.
        setting: String,
        /// The value.
        value: String,
        /// What it counts.
        unit: &'static str,
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
    /// A line of `starlane.toml` is not understood.
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
/// The key secrets are sealed with: 64 hexadecimal digits (32 random bytes). Only the
/// environment gives it — a flag would show in the process list, and `starlane.toml` sits
/// beside the data it protects — else the key file in the data directory is used.
pub const ENV_SECRET_KEY: &str = "STARLANE_SECRET_KEY";
/// Where the metrics are served, `IP:PORT` (off when not set).
pub const ENV_METRICS: &str = "STARLANE_METRICS";
/// What the server logs: a filter in `RUST_LOG` syntax (default `info`).
pub const ENV_LOG: &str = "STARLANE_LOG";
/// The format of the server's log lines: `text` (default) or `json`.
pub const ENV_LOG_FORMAT: &str = "STARLANE_LOG_FORMAT";
/// The settings file in the data directory.
pub const SETTINGS_FILE: &str = "starlane.toml";

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

    /// Resolves the settings: `flags` first, then the environment (`env` looks a variable
    /// up, e.g. `|name| std::env::var(name).ok()`), then `starlane.toml` in the data
    /// directory, then the defaults (stars: the number of cores).
    pub fn resolve(
        flags: &Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<MachineConfig, ConfigError> {
        let home = resolve_home(flags.home.as_deref(), &env)?;
        let file = read_settings_file(&home.join(SETTINGS_FILE))?;

        let pick = |flag: &Option<String>, flag_name: &str, var: &str, key: &str| {
            if let Some(value) = flag {
                return Some((flag_name.to_string(), value.clone()));
            }
            if let Some(value) = env(var) {
                return Some((var.to_string(), value));
            }
            file.iter()
                .find(|setting| setting.key == key)
                .map(|setting| (setting.source.clone(), setting.value.clone()))
        };

        let control = match pick(&flags.control, "--control", ENV_CONTROL, "control") {
            Some((setting, value)) => parse_address(setting, value)?,
            None => parse_address("default".into(), MachineConfig::DEFAULT_CONTROL.into())?,
        };
        let http = match pick(&flags.http, "--http", ENV_HTTP, "http") {
            Some((setting, value)) => parse_address(setting, value)?,
            None => parse_address("default".into(), MachineConfig::DEFAULT_HTTP.into())?,
        };
        let stars = match pick(&flags.stars, "--stars", ENV_STARS, "stars") {
            Some((setting, value)) => parse_stars(setting, value)?,
            None => std::thread::available_parallelism()
                .map(|n| n.get().min(MachineConfig::MAX_STARS))
                .unwrap_or(1),
        };
        let machine = match pick(&flags.machine, "--machine", ENV_MACHINE, "machine") {
            Some((setting, value)) => Some(parse_machine(setting, value)?),
            None => None,
        };
        let registry = match pick(&flags.registry, "--registry", ENV_REGISTRY, "registry") {
            Some((setting, value)) => Some(parse_registry(setting, value)?),
            None => None,
        };
        let cluster = match pick(&flags.nats, "--nats", ENV_NATS, "nats") {
            Some((setting, value)) => {
                let nats = parse_nats(setting.clone(), value)?;
                if registry.is_none() {
                    return Err(ConfigError::NatsWithoutRegistry { setting });
                }
                let cosmos = match pick(&flags.cosmos, "--cosmos", ENV_COSMOS, "cosmos") {
                    Some((setting, value)) => parse_cosmos(setting, value)?,
                    None => MachineConfig::DEFAULT_COSMOS.to_string(),
                };
                let lease = match pick(&None, "", ENV_LEASE, "lease") {
                    Some((setting, value)) => {
                        Duration::from_millis(parse_count(setting, value, "milliseconds")?)
                    }
                    None => MachineConfig::DEFAULT_LEASE,
                };
                Some(ClusterConfig {
                    nats,
                    cosmos,
                    lease,
                })
            }
            None => None,
        };
        let mut gateway = GatewayConfig::default();
        if let Some((setting, value)) = pick(&None, "", ENV_DEFAULT_SPACE, "default-space") {
            gateway.default_space = parse_space(setting, value)?;
        }
        if let Some((setting, value)) = pick(&None, "", ENV_HTTP_WAIT, "http-wait") {
            gateway.wait = Duration::from_secs(parse_count(setting, value, "seconds")?);
        }
        if let Some((setting, value)) = pick(&None, "", ENV_HTTP_MAX_BODY, "http-max-body") {
            gateway.max_body =
                usize::try_from(parse_count(setting, value, "bytes")?).unwrap_or(usize::MAX);
        }
        if let Some((setting, value)) = pick(&None, "", ENV_HTTP_READ_TIMEOUT, "http-read-timeout")
        {
            gateway.read_timeout =
                Duration::from_millis(parse_count(setting, value, "milliseconds")?);
        }
        let secret_key = match env(ENV_SECRET_KEY) {
            Some(text) => Some(SecretKey::parse(&text, ENV_SECRET_KEY)?),
            None => None,
        };
        let metrics = match env(ENV_METRICS) {
            Some(value) => Some(parse_address(ENV_METRICS.to_string(), value)?),
            None => None,
        };
        let mut log = LogConfig::default();
        if let Some(filter) = env(ENV_LOG) {
            log.filter = filter;
        }
        if let Some(value) = env(ENV_LOG_FORMAT) {
            log.format = parse_log_format(ENV_LOG_FORMAT.to_string(), value)?;
        }
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

fn parse_address(setting: String, value: String) -> Result<SocketAddr, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::BadAddress { setting, value })
}

fn parse_log_format(setting: String, value: String) -> Result<LogFormat, ConfigError> {
    match value.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::BadLogFormat { setting, value }),
    }
}

fn parse_stars(setting: String, value: String) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MachineConfig::MAX_STARS).contains(&n) => Ok(n),
        _ => Err(ConfigError::BadStars {
            setting,
            value,
            max: MachineConfig::MAX_STARS,
        }),
    }
}

fn parse_count(setting: String, value: String, unit: &'static str) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::BadCount {
            setting,
            value,
            unit,
        }),
    }
}

fn parse_machine(setting: String, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    if StarKey::new(name, "star", 0).is_ok() {
        Ok(name.to_string())
    } else {
        Err(ConfigError::BadMachine { setting, value })
    }
}

fn parse_registry(setting: String, value: String) -> Result<RegistryUrl, ConfigError> {
    RegistryUrl::parse(value.trim()).ok_or_else(|| ConfigError::BadRegistry {
        setting,
        value: redact(&value),
    })
}

fn parse_nats(setting: String, value: String) -> Result<String, ConfigError> {
    let url = value.trim();
    let rest = ["nats://", "tls://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', ':', '@']) => Ok(url.to_string()),
        _ => Err(ConfigError::BadNats {
            setting,
            value: redact(&value),
        }),
    }
}

fn parse_cosmos(setting: String, value: String) -> Result<String, ConfigError> {
    let name = value.trim();
    // A cosmos's name is a subject token and a constellation-like name: skewer case.
    if StarKey::new(name, "star", 0).is_ok() {
        Ok(name.to_string())
    } else {
        Err(ConfigError::BadCosmos { setting, value })
    }
}

fn parse_space(setting: String, value: String) -> Result<Point, ConfigError> {
    match value.trim().parse::<Point>() {
        Ok(point) if point.segments().len() == 1 => Ok(point),
        _ => Err(ConfigError::BadSpace { setting, value }),
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

/// One setting of `starlane.toml`.
#[derive(Debug, PartialEq, Eq)]
struct FileSetting {
    key: String,
    value: String,
    /// `starlane.toml line N`, for messages.
    source: String,
}

/// The settings `starlane.toml` holds; an absent file holds none.
fn read_settings_file(path: &Path) -> Result<Vec<FileSetting>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse_settings(&text).map_err(|(line, message)| ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// The keys `starlane.toml` may hold, and whether each takes a string (or an integer).
const KEYS: [(&str, bool); 12] = [
    ("control", true),
    ("http", true),
    ("stars", false),
    ("machine", true),
    ("registry", true),
    ("nats", true),
    ("cosmos", true),
    ("lease", false),
    ("default-space", true),
    ("http-wait", false),
    ("http-max-body", false),
    ("http-read-timeout", false),
];

/// The settings in `text`, or the line and message of the first error.
fn parse_settings(text: &str) -> Result<Vec<FileSetting>, (usize, String)> {
    let mut settings: Vec<FileSetting> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fail = |message: String| (line, message);
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with('[') {
            return Err(fail(format!(
                "tables are not used: write the settings ({}) at the top level",
                key_list()
            )));
        }
        let Some((key, rest)) = trimmed.split_once('=') else {
            return Err(fail("expected 'key = value'".to_string()));
        };
        let key = key.trim();
        let Some(&(_, wants_string)) = KEYS.iter().find(|(name, _)| *name == key) else {
            return Err(fail(format!(
                "unknown setting '{key}': the settings are {}",
                key_list()
            )));
        };
        if settings.iter().any(|setting| setting.key == key) {
            return Err(fail(format!("'{key}' is set twice")));
        }
        let (value, is_string) = parse_value(rest.trim()).map_err(fail)?;
        if is_string != wants_string {
            return Err(fail(format!(
                "'{key}' takes {}",
                if wants_string {
                    "a quoted string, e.g. \"127.0.0.1:4343\""
                } else {
                    "a whole number, e.g. 4"
                }
            )));
        }
        settings.push(FileSetting {
            key: key.to_string(),
            value,
            source: format!("{SETTINGS_FILE} line {line}"),
        });
    }
    Ok(settings)
}

fn key_list() -> String {
    KEYS.iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value and whether it was a string; what follows it may only be a comment.
fn parse_value(text: &str) -> Result<(String, bool), String> {
    let (value, rest, is_string) = if let Some(body) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("the string has no closing '\"'".to_string()),
                Some((at, '"')) => break at + 1,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '"')) => value.push('"'),
                    Some((_, '\\')) => value.push('\\'),
                    _ => return Err("only \\\" and \\\\ escapes are understood".to_string()),
                },
                Some((_, ch)) => value.push(ch),
            }
        };
        (value, &body[end..], true)
    } else if let Some(body) = text.strip_prefix('\'') {
        let Some(end) = body.find('\'') else {
            return Err("the string has no closing \"'\"".to_string());
        };
        (body[..end].to_string(), &body[end + 1..], true)
    } else {
        let end = text
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(text.len());
        if end == 0 {
            return Err(format!(
                "'{text}' is neither a quoted string nor a whole number"
            ));
        }
        (text[..end].to_string(), &text[end..], false)
    };
    let rest = rest.trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!("unexpected '{rest}' after the value"));
    }
    Ok((value, is_string))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(SETTINGS_FILE),
            "# machine settings\ncontrol = \"127.0.0.1:1001\"\nhttp = '0.0.0.0:1002' # public\n\nstars = 3\ndefault-space = \"example.com\"\n",
        )
        .unwrap();
        let home = dir.path().to_str().unwrap();

        let from_file =
            MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
                .unwrap();
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
                metrics: None,
                log: LogConfig::default(),
            }
        );

        let env = env_of(&[
            ("STARLANE_HOME", home),
            ("STARLANE_CONTROL", "127.0.0.1:2001"),
            ("STARLANE_STARS", "5"),
            ("STARLANE_DEFAULT_SPACE", "starlane.io"),
        ]);
        let from_env = MachineConfig::resolve(&Settings::default(), &env).unwrap();
        assert_eq!(from_env.gateway.default_space.to_string(), "starlane.io");
        let bad = env_of(&[("STARLANE_HOME", home), ("STARLANE_DEFAULT_SPACE", "a:b")]);
        assert!(matches!(
            MachineConfig::resolve(&Settings::default(), bad),
            Err(ConfigError::BadSpace { .. })
        ));
        let limits = env_of(&[
            ("STARLANE_HOME", home),
            ("STARLANE_HTTP_WAIT", "5"),
            ("STARLANE_HTTP_MAX_BODY", "1024"),
            ("STARLANE_HTTP_READ_TIMEOUT", "250"),
        ]);
        let limited = MachineConfig::resolve(&Settings::default(), limits).unwrap();
        assert_eq!(limited.gateway.wait, Duration::from_secs(5));
        assert_eq!(limited.gateway.max_body, 1024);
        assert_eq!(limited.gateway.read_timeout, Duration::from_millis(250));
        let bad = env_of(&[
            ("STARLANE_HOME", home),
            ("STARLANE_HTTP_READ_TIMEOUT", "1.5"),
        ]);
        assert_eq!(
            MachineConfig::resolve(&Settings::default(), bad)
                .unwrap_err()
                .to_string(),
            "STARLANE_HTTP_READ_TIMEOUT = '1.5' is not a number of milliseconds: write a whole number above 0"
        );
        assert_eq!(from_env.control, addr("127.0.0.1:2001"));
        assert_eq!(from_env.http, addr("0.0.0.0:1002"));
        assert_eq!(from_env.stars, 5);

        let flags = Settings {
            control: Some("127.0.0.1:0".into()),
            stars: Some("1".into()),
            ..Settings::default()
        };
        let from_flags = MachineConfig::resolve(&flags, &env).unwrap();
        assert_eq!(from_flags.control, addr("127.0.0.1:0"));
        assert_eq!(from_flags.http, addr("0.0.0.0:1002"));
        assert_eq!(from_flags.stars, 1);
    }

    #[test]
    fn the_machine_name_is_skewer_case_from_any_source() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let config = MachineConfig::resolve(
            &Settings::default(),
            env_of(&[("STARLANE_HOME", home), ("STARLANE_MACHINE", "edge-1")]),
        )
        .unwrap();
        assert_eq!(config.machine.as_deref(), Some("edge-1"));
        let unnamed =
            MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
                .unwrap();
        assert_eq!(unnamed.machine, None);
        let flags = Settings {
            machine: Some("Edge_1".into()),
            ..Settings::default()
        };
        let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", home)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--machine = 'Edge_1' is not a machine name: write it in skewer case ([a-z][a-z0-9-]*), e.g. edge-1"
        );
    }

    #[test]
    fn a_cluster_needs_nats_and_the_registry_and_takes_a_cosmos_and_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let registry = "postgres://scott:tiger@db/cosmos";
        let alone =
            MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
                .unwrap();
        assert_eq!(alone.cluster, None);

        let joined = MachineConfig::resolve(
            &Settings {
                nats: Some("nats://bus:secret@nats-1:4222".into()),
                ..Settings::default()
            },
            env_of(&[
                ("STARLANE_HOME", home),
                ("STARLANE_REGISTRY", registry),
                ("STARLANE_COSMOS", "prod"),
                ("STARLANE_LEASE", "1500"),
            ]),
        )
        .unwrap();
        let cluster = joined.cluster.unwrap();
        assert_eq!(cluster.nats, "nats://bus:secret@nats-1:4222");
        assert_eq!(cluster.cosmos, "prod");
        assert_eq!(cluster.lease, Duration::from_millis(1500));
        assert!(!format!("{cluster:?}").contains("secret"));

        let defaults = MachineConfig::resolve(
            &Settings::default(),
            env_of(&[
                ("STARLANE_HOME", home),
                ("STARLANE_REGISTRY", registry),
                ("STARLANE_NATS", "nats://127.0.0.1:4222"),
            ]),
        )
        .unwrap()
        .cluster
        .unwrap();
        assert_eq!(defaults.cosmos, MachineConfig::DEFAULT_COSMOS);
        assert_eq!(defaults.lease, MachineConfig::DEFAULT_LEASE);

        let refused = |envs: &[(&str, &str)]| {
            let mut all = vec![("STARLANE_HOME", home)];
            all.extend_from_slice(envs);
            MachineConfig::resolve(&Settings::default(), env_of(&all))
                .unwrap_err()
                .to_string()
        };
        assert!(
            refused(&[("STARLANE_NATS", "nats://127.0.0.1:4222")])
                .starts_with("STARLANE_NATS joins a cosmos of several machines"),
        );
        let bad = refused(&[
            ("STARLANE_REGISTRY", registry),
            ("STARLANE_NATS", "http://bus:secret@nats-1"),
        ]);
        assert!(
            bad.starts_with("STARLANE_NATS = 'http://bus:***@nats-1' is not a NATS URL"),
            "{bad}"
        );
        assert!(
            refused(&[
                ("STARLANE_REGISTRY", registry),
                ("STARLANE_NATS", "nats://nats-1"),
                ("STARLANE_COSMOS", "Prod!"),
            ])
            .starts_with("STARLANE_COSMOS = 'Prod!' is not a cosmos name")
        );
    }

    #[test]
    fn the_registry_is_a_postgres_url_from_any_source_in_the_usual_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let embedded =
            MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
                .unwrap();
        assert_eq!(embedded.registry, None);
        assert_eq!(
            embedded.registry_description(),
            format!("embedded, in {home}")
        );

        fs::write(
            dir.path().join(SETTINGS_FILE),
            "registry = \"postgres://file@db-1/cosmos\"\n",
        )
        .unwrap();
        let url = |config: &MachineConfig| config.registry.as_ref().unwrap().secret().to_string();
        let from_file =
            MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
                .unwrap();
        assert_eq!(url(&from_file), "postgres://file@db-1/cosmos");
        let env = env_of(&[
            ("STARLANE_HOME", home),
            (
                "STARLANE_REGISTRY",
                "postgresql://env:s3cret@db-2:5433/cosmos",
            ),
        ]);
        let from_env = MachineConfig::resolve(&Settings::default(), &env).unwrap();
        assert_eq!(url(&from_env), "postgresql://env:s3cret@db-2:5433/cosmos");
        assert_eq!(
            from_env.registry_description(),
            "postgresql://env:***@db-2:5433/cosmos"
        );
        let flags = Settings {
            registry: Some("postgres://flag@db-3/cosmos".into()),
            ..Settings::default()
        };
        assert_eq!(
            url(&MachineConfig::resolve(&flags, &env).unwrap()),
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
            let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", home)]))
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
        fs::write(dir.path().join(SETTINGS_FILE), "\nregistry = 5432\n").unwrap();
        let err = MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("2: 'registry' takes a quoted string, e.g. \"127.0.0.1:4343\""),
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
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SETTINGS_FILE), "stars = 2\n").unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let env = env_of(&[("STARLANE_HOME", home), ("STARLANE_HTTP", "localhost:80")]);
        let err = MachineConfig::resolve(&Settings::default(), &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "STARLANE_HTTP = 'localhost:80' is not a listen address: write IP:PORT, e.g. 127.0.0.1:4343"
        );
        let flags = Settings {
            stars: Some("0".into()),
            ..Settings::default()
        };
        let err = MachineConfig::resolve(&flags, env_of(&[("STARLANE_HOME", home)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--stars = '0' is not a number of stars: write a whole number from 1 to 1024"
        );
        fs::write(dir.path().join(SETTINGS_FILE), "\ncontrol = \"nope\"\n").unwrap();
        let err = MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "starlane.toml line 2 = 'nope' is not a listen address: write IP:PORT, e.g. 127.0.0.1:4343"
        );
        assert!(matches!(
            MachineConfig::resolve(&Settings::default(), env_of(&[])),
            Err(ConfigError::NoHome)
        ));
    }

    #[test]
    fn the_secret_key_comes_from_the_environment_only_and_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let config = MachineConfig::resolve(
            &Settings::default(),
            env_of(&[("STARLANE_HOME", home), ("STARLANE_SECRET_KEY", key)]),
        )
        .unwrap();
        assert_eq!(
            config.secret_key,
            Some(SecretKey::parse(key, "test").unwrap())
        );
        assert!(!format!("{config:?}").contains("00112233"), "{config:?}");
        let unset =
            MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
                .unwrap();
        assert_eq!(unset.secret_key, None);
        for bad in ["", "  ", "00112233", "hunter2-is-not-a-key"] {
            let err = MachineConfig::resolve(
                &Settings::default(),
                env_of(&[("STARLANE_HOME", home), ("STARLANE_SECRET_KEY", bad)]),
            )
            .unwrap_err()
            .to_string();
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
        let err = MachineConfig::resolve(&Settings::default(), env_of(&[("STARLANE_HOME", home)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting 'secret-key'"), "{err}");
    }

    #[test]
    fn the_settings_file_is_strict() {
        for (text, line, message) in [
            (
                "[machine]\n",
                1,
                "tables are not used: write the settings (control, http, stars, machine, registry, nats, cosmos, lease, default-space, http-wait, http-max-body, http-read-timeout) at the top level",
            ),
            (
                "\ncolour = \"red\"\n",
                2,
                "unknown setting 'colour': the settings are control, http, stars, machine, registry, nats, cosmos, lease, default-space, http-wait, http-max-body, http-read-timeout",
            ),
            ("stars = 2\nstars = 3\n", 2, "'stars' is set twice"),
            ("stars = \"2\"\n", 1, "'stars' takes a whole number, e.g. 4"),
            (
                "control = 4343\n",
                1,
                "'control' takes a quoted string, e.g. \"127.0.0.1:4343\"",
            ),
            ("control = \"a\n", 1, "the string has no closing '\"'"),
            (
                "control = \"a\\tb\"\n",
                1,
                "only \\\" and \\\\ escapes are understood",
            ),
            ("stars = 4 5\n", 1, "unexpected '5' after the value"),
            (
                "stars = [1]\n",
                1,
                "'[1]' is neither a quoted string nor a whole number",
            ),
            ("stars\n", 1, "expected 'key = value'"),
        ] {
            assert_eq!(
                parse_settings(text),
                Err((line, message.to_string())),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_settings("control = \"a\\\"b\\\\\" # c\n"),
            Ok(vec![FileSetting {
                key: "control".to_string(),
                value: "a\"b\\".to_string(),
                source: "starlane.toml line 1".to_string()
            }])
        );
    }

    #[test]
    fn metrics_and_logs_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let quiet = MachineConfig::resolve(&Settings::default(), env_of(&[("HOME", home)]));
        let quiet = quiet.unwrap();
        assert_eq!(quiet.metrics, None);
        assert_eq!(quiet.log, LogConfig::default());
        assert_eq!(quiet.log.filter, "info");
        let env = env_of(&[
            ("HOME", home),
            ("STARLANE_METRICS", "127.0.0.1:0"),
            ("STARLANE_LOG", "info,starlane::wave=debug"),
            ("STARLANE_LOG_FORMAT", "json"),
        ]);
        let told = MachineConfig::resolve(&Settings::default(), env).unwrap();
        assert_eq!(told.metrics, Some(addr("127.0.0.1:0")));
        assert_eq!(told.log.filter, "info,starlane::wave=debug");
        assert_eq!(told.log.format, LogFormat::Json);
        for (name, value, message) in [
            (
                "STARLANE_METRICS",
                "9464",
                "STARLANE_METRICS = '9464' is not a listen address: write IP:PORT, e.g. \
                 127.0.0.1:4343",
            ),
            (
                "STARLANE_LOG_FORMAT",
                "yaml",
                "STARLANE_LOG_FORMAT = 'yaml' is not a log format: write text or json",
            ),
        ] {
            let bad = env_of(&[("HOME", home), (name, value)]);
            let err = MachineConfig::resolve(&Settings::default(), bad).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }
}
