//! The driver of `Mechtron` particles: WebAssembly guests run by the wasm host (SPEC §8,
//! §11.2).
//!
//! Creating a mechtron reads the `.mechtron` document its `config` property names, reads the
//! wasm that document names (`${bundle}` is the bundle holding the document), compiles it (or
//! loads it from the module cache), instantiates it and runs the guest's init with the
//! particle's details plus the property `mechtron` = the document's `+name`. The guest then
//! lives as long as the particle; its state survives between waves.
//!
//! Both files must be readable by the particle's owner: a mechtron cannot be made from a
//! bundle its creator may not read.
//!
//! A wave whose call fails (fuel used up, a trap or panic, memory exhausted, a malformed
//! frame) is answered 500 and nothing else is affected. A call that leaves the guest broken
//! restarts it — fresh state, init run again — in the background, per [`RestartPolicy`]: when
//! a guest breaks too often, the particle is marked `Panic` instead and refuses waves until it
//! is created again.
//!
//! Waves a guest sends leave from the mechtron's point, as the mechtron (the wasm host stamps
//! agent and `from`; this driver gives them fresh ids), and pass the Field like any other.
//! A Ripple a guest sends returns its Echoes to the guest; a Ripple delivered to a mechtron
//! reaches its guest as the Ripple (the SDK answers it like a Ping), and the answer becomes
//! that recipient's Echo.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cosmic_space::{
    Agent, BaseKind, Bind, CmdMethod, Details, DirectedWave, Effect, Kind, LogLevel,
    MechtronConfig, Method, Ping, Point, ReflectedCore, Status, StatusCode,
};
use parking_lot::{Mutex, RwLock};

use super::{Driver, DriverCtx, DriverError};
use crate::channel;
use crate::registry::{ParticleRecord, Registry};
use crate::security;
use crate::transmit::Transmit;
use crate::wasm::{
    CacheSource, Guest, GuestOutbox, GuestSpec, MECHTRON_PROPERTY, PongReply, WasmError, WasmHost,
};

/// The property of a Mechtron particle that names its `.mechtron` document.
pub const CONFIG_PROPERTY: &str = "config";

/// Where guests' log lines go: `(mechtron, level, message)`.
pub type GuestLog = Arc<dyn Fn(&Point, LogLevel, &str) + Send + Sync>;

/// The `tracing` target of guests' log lines.
pub const GUEST_TARGET: &str = "starlane::guest";

/// A [`GuestLog`] that emits each line as a `tracing` event under [`GUEST_TARGET`], at the
/// guest's level, with the mechtron's point as the field `mechtron` (what `starlane serve`
/// does: its subscriber filters and writes them with every other line).
pub fn traced_log() -> GuestLog {
    Arc::new(
        |point: &Point, level: LogLevel, message: &str| match level {
            LogLevel::Trace => {
                tracing::trace!(target: GUEST_TARGET, mechtron = %point, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: GUEST_TARGET, mechtron = %point, "{message}")
            }
            LogLevel::Info => tracing::info!(target: GUEST_TARGET, mechtron = %point, "{message}"),
            LogLevel::Warn => tracing::warn!(target: GUEST_TARGET, mechtron = %point, "{message}"),
            LogLevel::Error => {
                tracing::error!(target: GUEST_TARGET, mechtron = %point, "{message}")
            }
        },
    )
}

/// A [`GuestLog`] that drops every line (benchmarks, tests).
pub fn quiet_log() -> GuestLog {
    Arc::new(|_: &Point, _: LogLevel, _: &str| {})
}

/// When a broken guest is restarted and when it is given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// How many restarts are allowed within `window`; one more marks the particle `Panic`.
    pub max_restarts: usize,
    /// The window the restarts are counted in.
    pub window: Duration,
}

impl Default for RestartPolicy {
    /// Five restarts a minute: a guest that breaks on one kind of wave keeps serving the
    /// others, a guest that breaks on everything stops costing the machine.
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Runs Mechtron particles in a [`WasmHost`].
pub struct MechtronDriver {
    host: WasmHost,
    bind: Arc<Bind>,
    policy: RestartPolicy,
    send_timeout: Duration,
    log: GuestLog,
    live: RwLock<HashMap<Point, Arc<Live>>>,
}

impl std::fmt::Debug for MechtronDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MechtronDriver")
            .field("host", &self.host)
            .field("policy", &self.policy)
            .field("live", &self.live.read().len())
            .finish_non_exhaustive()
    }
}

/// One running mechtron.
struct Live {
    guest: Guest,
    /// What its init was given (again after a restart).
    details: Details,
    /// When it broke recently (for the restart policy).
    breaks: Mutex<VecDeque<Instant>>,
    /// Whether a restart is under way.
    restarting: AtomicBool,
}

impl MechtronDriver {
    /// A driver running guests in `host`, with the default restart policy and a 30 s wait for
    /// the Pongs of the Pings guests send; guests' log lines go through `tracing`
    /// ([`traced_log`]).
    pub fn new(host: WasmHost) -> MechtronDriver {
        let bind: Bind =
            "Bind(version=1.0.0) { Route<Ext<*>> -> (()) => &; Route<Http<*>> -> (()) => &; }"
                .parse()
                .unwrap_or_default();
        MechtronDriver {
            host,
            bind: Arc::new(bind),
            policy: RestartPolicy::default(),
            send_timeout: Duration::from_secs(30),
            log: traced_log(),
            live: RwLock::new(HashMap::new()),
        }
    }

    /// The same driver with `policy`.
    pub fn with_policy(mut self, policy: RestartPolicy) -> MechtronDriver {
        self.policy = policy;
        self
    }

    /// The same driver sending guests' log lines to `log`.
    pub fn with_log(mut self, log: GuestLog) -> MechtronDriver {
        self.log = log;
        self
    }

    /// The same driver waiting at most `timeout` for the Pong of a Ping a guest sends.
    pub fn with_send_timeout(mut self, timeout: Duration) -> MechtronDriver {
        self.send_timeout = timeout;
        self
    }

    /// The wasm host the guests run in.
    pub fn host(&self) -> &WasmHost {
        &self.host
    }

    /// How many mechtrons are running.
    pub fn running(&self) -> usize {
        self.live.read().len()
    }

    /// Loads, compiles, instantiates and initialises the guest of `record`.
    async fn start(&self, ctx: &DriverCtx, record: &ParticleRecord) -> Result<Status, String> {
        let registry = ctx.registry.as_ref();
        let owner = Agent::from_point(record.owner.clone());
        let config_value = record.properties.value(CONFIG_PROPERTY).ok_or_else(|| {
            format!(
                "a Mechtron needs a '{CONFIG_PROPERTY}' property naming its .mechtron document, \
                 e.g. +{CONFIG_PROPERTY}=localhost:repo:app:1.0.0:/config/app.mechtron"
            )
        })?;
        let config_point: Point = config_value
            .parse()
            .map_err(|e| format!("+{CONFIG_PROPERTY}={config_value} is not a point: {e}"))?;
        let text = read_file(registry, &owner, &config_point).await?;
        let text = String::from_utf8(text)
            .map_err(|_| format!("the mechtron document {config_point} is not UTF-8"))?;
        let config: MechtronConfig = text.parse().map_err(|e: cosmic_space::ParseError| {
            format!(
                "the mechtron document is invalid:\n{}",
                e.in_file(config_point.to_string())
            )
        })?;
        let bundle = bundle_of(registry, &config_point).await?;
        let wasm_point = config
            .wasm_point(&bundle)
            .map_err(|e| format!("+bin of {config_point} does not name a point: {e}"))?;
        let wasm = read_file(registry, &owner, &wasm_point).await?;
        let host = self.host.clone();
        let compiled = tokio::task::spawn_blocking(move || host.compile(&wasm))
            .await
            .map_err(|e| format!("compiling {wasm_point} was interrupted: {e}"))?
            .map_err(|e| format!("{wasm_point}: {e}"))?;
        let source = match compiled.source {
            CacheSource::Memory => "already loaded",
            CacheSource::Disk => "loaded from the disk cache",
            CacheSource::Compiled => "compiled (not cached yet)",
        };
        (self.log)(
            &record.point,
            LogLevel::Info,
            &format!("module of {wasm_point} {source}"),
        );
        if let Some(error) = &compiled.cache_error {
            (self.log)(
                &record.point,
                LogLevel::Warn,
                &format!("the compiled module could not be cached: {error}"),
            );
        }
        let outbox = Arc::new(StarOutbox {
            transmit: ctx.transmit.clone(),
            runtime: tokio::runtime::Handle::current(),
            log: self.log.clone(),
        });
        let mut spec = GuestSpec::new(record.point.clone(), config.limits, outbox);
        spec.send_timeout = self.send_timeout;
        let guest = self
            .host
            .instantiate(&compiled.module, spec)
            .await
            .map_err(|e| format!("{wasm_point}: {e}"))?;
        let mut details = record.details();
        details.stub.status = Status::Init;
        details
            .properties
            .set(MECHTRON_PROPERTY, config.name.clone());
        let status = guest
            .init(&details)
            .await
            .map_err(|e| format!("the init of mechtron '{}' failed: {e}", config.name))?;
        if status.is_ready() {
            let live = Arc::new(Live {
                guest,
                details,
                breaks: Mutex::new(VecDeque::new()),
                restarting: AtomicBool::new(false),
            });
            self.live.write().insert(record.point.clone(), live);
            // What its document subscribes it to (SPEC §18), as itself: kept in the registry
            // (again at every start: a subscription undone by hand comes back with the next).
            for selector in &config.subscribe {
                channel::subscribe(registry, &record.point, selector.clone())
                    .await
                    .map_err(|e| format!("{config_point} subscribes to {selector}: {e}"))?;
            }
        }
        Ok(status)
    }

    /// Restarts the broken guest of `point` in the background, or marks the particle `Panic`
    /// when it broke more often than the policy allows.
    fn recover(
        &self,
        registry: Arc<dyn Registry>,
        point: &Point,
        live: Arc<Live>,
        why: &WasmError,
    ) {
        if live.restarting.swap(true, Ordering::AcqRel) {
            return;
        }
        let now = Instant::now();
        let too_often = {
            let mut breaks = live.breaks.lock();
            while breaks
                .front()
                .is_some_and(|at| now.duration_since(*at) > self.policy.window)
            {
                breaks.pop_front();
            }
            breaks.push_back(now);
            breaks.len() > self.policy.max_restarts
        };
        let point = point.clone();
        if too_often {
            self.live.write().remove(&point);
            let status = Status::Panic(format!(
                "the guest broke {} times within {:?}, last: {why}",
                self.policy.max_restarts + 1,
                self.policy.window
            ));
            tokio::spawn(async move {
                let _ = registry.set_status(&point, status).await;
            });
            return;
        }
        let log = self.log.clone();
        tokio::spawn(async move {
            let restarted = match live.guest.restart().await {
                Ok(()) => live.guest.init(&live.details).await.map(|_| ()),
                Err(err) => Err(err),
            };
            if let Err(err) = restarted {
                log(&point, LogLevel::Error, &format!("restart failed: {err}"));
                let _ = registry
                    .set_status(&point, Status::Panic(format!("restart failed: {err}")))
                    .await;
            }
            live.restarting.store(false, Ordering::Release);
        });
    }
}

#[async_trait]
impl Driver for MechtronDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Mechtron
    }

    fn bind(&self) -> Arc<Bind> {
        self.bind.clone()
    }

    fn keeps_state_in_memory(&self) -> bool {
        true
    }

    async fn init(&self, ctx: &DriverCtx, record: &ParticleRecord) -> Result<Status, DriverError> {
        self.start(ctx, record)
            .await
            .map_err(|message| DriverError {
                kind: Kind::Mechtron,
                message,
            })
    }

    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        if ping.core.method == Method::Cmd(CmdMethod::Bounce) {
            return ReflectedCore::ok(());
        }
        let live = self.live.read().get(&record.point).cloned();
        let Some(live) = live else {
            return ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                format!("mechtron {} is not running on this machine", record.point),
            );
        };
        let answered = match super::ripple_of(ping) {
            Some(ripple) => live.guest.handle_ripple(&ripple).await,
            None => live.guest.handle(ping).await,
        };
        match answered {
            Ok(core) => core,
            // Busy or given up on: the guest is fine, the wave simply was not run (503).
            Err(err @ (WasmError::Busy { .. } | WasmError::NotStarted)) => ReflectedCore::error(
                err.status(),
                format!("mechtron {} did not take the wave: {err}", record.point),
            ),
            Err(err) => {
                if err.breaks_guest() {
                    self.recover(ctx.registry.clone(), &record.point, live, &err);
                }
                (self.log)(&record.point, LogLevel::Warn, &err.to_string());
                ReflectedCore::error(
                    err.status(),
                    format!("mechtron {} failed: {err}", record.point),
                )
            }
        }
    }

    async fn remove(&self, record: &ParticleRecord) {
        // Dropping the guest frees its instance on its worker.
        self.live.write().remove(&record.point);
    }
}

/// The content of the file at `point`, which `owner` must be allowed to read.
async fn read_file(
    registry: &dyn Registry,
    owner: &Agent,
    point: &Point,
) -> Result<Vec<u8>, String> {
    security::require_effect(registry, owner, point, Effect::ReadContent)
        .await
        .map_err(|e| format!("cannot read {point}: {e}"))?;
    match registry.content(point).await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("{point} is not a file")),
        Err(e) => Err(format!("cannot read {point}: {e}")),
    }
}

/// The bundle that holds `file`: its nearest ancestor of kind Bundle.
async fn bundle_of(registry: &dyn Registry, file: &Point) -> Result<Point, String> {
    let mut at = file.parent();
    while let Some(point) = at {
        if let Ok(record) = registry.record(&point).await
            && record.kind.base() == BaseKind::Bundle
        {
            return Ok(point);
        }
        at = point.parent();
    }
    Err(format!(
        "{file} is not inside a bundle, so its ${{bundle}} means nothing"
    ))
}

/// A guest's way out: its waves go into the cosmos through the star it lives on.
struct StarOutbox {
    transmit: Arc<dyn Transmit>,
    runtime: tokio::runtime::Handle,
    log: GuestLog,
}

impl GuestOutbox for StarOutbox {
    fn send(&self, wave: DirectedWave, reply: Option<PongReply>) {
        let transmit = self.transmit.clone();
        match wave {
            // A guest's ids are kept (the SDK draws them from the host's random source; a nil
            // one is stamped by the courier): a guest may retry under the same id, and a Ping
            // under an id still in flight is refused there with 409, never merged.
            DirectedWave::Ping(ping) => {
                self.runtime.spawn(async move {
                    let pong = transmit.ping(ping).await;
                    if let Some(reply) = reply {
                        reply.send(pong);
                    }
                });
            }
            DirectedWave::Signal(signal) => {
                self.runtime
                    .spawn(async move { transmit.signal(signal).await });
            }
            // The Echoes go back to the guest, which waits for them in `host_send`.
            DirectedWave::Ripple(ripple) => {
                self.runtime.spawn(async move {
                    let echoes = transmit.ripple(ripple).await;
                    if let Some(reply) = reply {
                        reply.send_echoes(echoes);
                    }
                });
            }
        }
    }

    fn log(&self, point: &Point, level: LogLevel, message: &str) {
        (self.log)(point, level, message);
    }
}
