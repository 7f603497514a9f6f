//! The machine: one `starlane serve` process (SPEC §0, §13, §14).
//!
//! A machine is assembled from parts ([`MachineBuilder`]): a registry (`Arc<dyn Registry>`,
//! the embedded store in its data directory by default), a fabric (`Arc<dyn Fabric>`, the
//! in-process one by default), its drivers and its name, which goes into its stars' keys
//! (`STAR::NAME:star[i]`). Nothing inside asks which backend it runs on.
//!
//! Built, it makes sure the hyperspace's own particles exist (ROOT, the `hyperspace` space,
//! the HyperUser and Anonymous users), connects its stars to the fabric, brings back to life
//! every particle that was not Ready on a live star, and serves the control protocol the CLI
//! speaks. Waves from the CLI enter through one of its stars, stamped with the agent their
//! session's token stands for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use cosmic_space::{
    Agent, CreateStrategy, Event, Kind, Layer, Ping, Point, Pong, PropertyChanges, Selector,
    StarKey, StarSubKind, Status, Surface, Topic, UserBaseSubKind, WaveId,
};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::channel::{Hub, Watch, WatchError};
use crate::control::{
    self, ControlError, ControlLimits, ControlService, MachineConfig, MachineReport, StarReport,
    StatusReport,
};
use crate::driver::{
    ChannelDriver, Drivers, GuestLog, KeySource, MechtronDriver, SecretKey, SecretKeyError,
    traced_log,
};
use crate::fabric::{Fabric, FabricError, LocalFabric, NatsFabric, NatsSettings};
use crate::gateway;
use crate::membership::{Gate, JoinError, Lease, LeaseTiming, Leases, Member, Membership};
use crate::metrics::Metrics;
use crate::registry::{
    CachedRegistry, Change, EmbeddedRegistry, EventSink, PgRegistry, Registration, Registry,
    RegistryError,
};
use crate::star::StarHandle;
use crate::wasm::{WasmConfig, WasmError, WasmHost};

/// Why a machine could not start.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The data directory could not be created or written.
    #[error("data directory {path}: {source}")]
    Home {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The registry could not be opened or bootstrapped.
    #[error("registry: {0}")]
    Registry(Box<RegistryError>),
    /// The registry's PostgreSQL database could not be reached or opened.
    #[error("cannot open the registry in PostgreSQL ({target}): {error}")]
    Database {
        /// Where it was looked for: host, port, database, user (never the password).
        target: String,
        /// Why (in the message, as for [`MachineError::Registry`], not as a source: the CLI
        /// prints sources too, and would print it twice).
        error: Box<RegistryError>,
    },
    /// The endpoint files could not be written.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The wasm host could not start (its cache directory, its worker threads).
    #[error(transparent)]
    Wasm(#[from] WasmError),
    /// The key secrets are sealed with could not be read or created.
    #[error(transparent)]
    SecretKey(#[from] SecretKeyError),
    /// A star could not be connected to the fabric.
    #[error("fabric: {0}")]
    Fabric(#[from] FabricError),
    /// The machine could not join its cosmos.
    #[error(transparent)]
    Cosmos(Box<JoinError>),
    /// The machine's name cannot be part of a star key.
    #[error("'{0}' is not a machine name: write it in skewer case ([a-z][a-z0-9-]*), e.g. edge-1")]
    Name(String),
    /// A listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

impl From<RegistryError> for MachineError {
    fn from(err: RegistryError) -> MachineError {
        MachineError::Registry(Box::new(err))
    }
}

impl From<JoinError> for MachineError {
    fn from(err: JoinError) -> MachineError {
        match err {
            JoinError::Registry(err) => MachineError::from(err),
            JoinError::NameTaken { .. } => MachineError::Cosmos(Box::new(err)),
        }
    }
}

/// A running machine.
#[derive(Debug)]
pub struct Machine {
    inner: Arc<MachineInner>,
    control: Option<Serving>,
    /// The task that keeps its lease, in a cosmos of several machines.
    membership: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

/// The control server of a machine started with [`Machine::start`].
#[derive(Debug)]
struct Serving {
    control_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    stop_http: oneshot::Sender<()>,
    http_task: JoinHandle<()>,
    /// The metrics endpoint, when `STARLANE_METRICS` asks for one: its address, and its stop.
    metrics: Option<(SocketAddr, oneshot::Sender<()>, JoinHandle<()>)>,
}

/// What the control protocol talks to: the machine and the HyperUser's token.
struct Controller {
    inner: Arc<MachineInner>,
    hyperuser_token: String,
    control_addr: SocketAddr,
    http_addr: SocketAddr,
    /// Where the registry lives, for `starlane status` (no password).
    registry: String,
}

struct MachineInner {
    home: PathBuf,
    name: String,
    registry: Arc<dyn Registry>,
    cached: Arc<CachedRegistry>,
    fabric: Arc<dyn Fabric>,
    membership: Option<Arc<Membership>>,
    stars: Vec<StarHandle>,
    /// Its channels (SPEC §18).
    hub: Arc<Hub>,
    next_star: AtomicUsize,
    started: Instant,
    /// What it counts (SPEC §19).
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MachineInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("name", &self.name)
            .field("home", &self.home)
            .field("stars", &self.stars)
            .finish_non_exhaustive()
    }
}

/// The key of star `index` of the machine called `machine` (`STAR::machine:star[index]`), or
/// `None` when the name is not skewer case.
pub fn star_key(machine: &str, index: u16) -> Option<StarKey> {
    StarKey::new(machine, "star", index).ok()
}

/// The key the machine seals secrets with: `STARLANE_SECRET_KEY` if set, else the key file
/// in its data directory — created on first start, which is logged (a warning) with what
/// every other machine of the cosmos then needs.
fn machine_secret_key(config: &MachineConfig) -> Result<SecretKey, SecretKeyError> {
    if let Some(key) = &config.secret_key {
        return Ok(key.clone());
    }
    let (key, source) = SecretKey::load_or_create(&config.home)?;
    if let KeySource::File {
        path,
        created: true,
    } = source
    {
        tracing::warn!(
            target: "starlane::secret",
            path = %path.display(),
            key = %key.id(),
            "created a new secret key; every machine of this cosmos needs the same key: copy \
             the file into their data directories, or set STARLANE_SECRET_KEY to its content"
        );
    }
    Ok(key)
}

/// The file in the data directory that keeps the machine's generated name.
pub const MACHINE_NAME_FILE: &str = "machine";

/// Assembles a [`Machine`] from its parts; what is not given has a default.
#[must_use = "a builder does nothing until it is built"]
pub struct MachineBuilder {
    home: PathBuf,
    name: Option<String>,
    stars: usize,
    registry: Option<Arc<dyn Registry>>,
    fabric: Option<Arc<dyn Fabric>>,
    drivers: Option<Drivers>,
    leases: Option<(Arc<dyn Leases>, LeaseTiming)>,
    star_capacity: usize,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for MachineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineBuilder")
            .field("home", &self.home)
            .field("name", &self.name)
            .field("stars", &self.stars)
            .finish_non_exhaustive()
    }
}

impl MachineBuilder {
    /// The machine's name in the cosmos (default: the one kept in the data directory,
    /// generated the first time).
    pub fn name(mut self, name: impl Into<String>) -> MachineBuilder {
        self.name = Some(name.into());
        self
    }

    /// How many stars it runs (default 1; at most 1,024).
    pub fn stars(mut self, stars: usize) -> MachineBuilder {
        self.stars = stars;
        self
    }

    /// How many directed waves each star runs at once; one more is answered 503 at once
    /// (default [`crate::star::DEFAULT_CAPACITY`]).
    pub fn star_capacity(mut self, capacity: usize) -> MachineBuilder {
        self.star_capacity = capacity;
        self
    }

    /// The registry of the cosmos (default: the embedded store in the data directory).
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> MachineBuilder {
        self.registry = Some(registry);
        self
    }

    /// The fabric its stars exchange waves on (default: in-process, this machine alone).
    pub fn fabric(mut self, fabric: Arc<dyn Fabric>) -> MachineBuilder {
        self.fabric = Some(fabric);
        self
    }

    /// The drivers of its particles (default: the built-in ones, without mechtrons, sealing
    /// secrets with the key file in the data directory, created on first use).
    pub fn drivers(mut self, drivers: Drivers) -> MachineBuilder {
        self.drivers = Some(drivers);
        self
    }

    /// Where it counts what it does (default: metrics of its own, read with
    /// [`Machine::metrics`]).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> MachineBuilder {
        self.metrics = Some(metrics);
        self
    }

    /// Makes it one machine of a cosmos: it holds a lease in `leases` (see `membership`),
    /// serves only while it does, and takes over the particles of machines whose leases
    /// expire (default: a machine alone, always serving).
    pub fn membership(mut self, leases: Arc<dyn Leases>, timing: LeaseTiming) -> MachineBuilder {
        self.leases = Some((leases, timing));
        self
    }

    /// Opens the parts, connects the stars, bootstraps the hyperspace's particles and brings
    /// back every particle that needs it.
    pub async fn build(self) -> Result<Machine, MachineError> {
        let home = self.home;
        let name = machine_name(&home, self.name)?;
        let store: Arc<dyn Registry> = match self.registry {
            Some(registry) => registry,
            None => Arc::new(EmbeddedRegistry::open(&home.join("registry.redb"))?),
        };
        let metrics = self.metrics.unwrap_or_default();
        let cached = CachedRegistry::counted_in(store, metrics.clone());
        let registry: Arc<dyn Registry> = cached.clone();
        let fabric: Arc<dyn Fabric> = match self.fabric {
            Some(fabric) => fabric,
            None => Arc::new(LocalFabric::new()),
        };
        fabric.carry_changes(cached.changes().clone()).await?;
        let mut drivers = match self.drivers {
            Some(drivers) => drivers,
            None => Drivers::builtin(SecretKey::load_or_create(&home)?.0),
        };
        let count = u16::try_from(self.stars.clamp(1, 1024)).unwrap_or(1);
        let keys = (0..count)
            .map(|index| star_key(&name, index).ok_or_else(|| MachineError::Name(name.clone())))
            .collect::<Result<Vec<StarKey>, MachineError>>()?;
        let hub = Hub::new(
            &name,
            &keys,
            registry.clone(),
            cached.changes(),
            fabric.clone(),
            metrics.clone(),
        )
        .ok_or_else(|| MachineError::Name(name.clone()))?;
        let sink: Arc<dyn EventSink> = hub.clone();
        cached.tell_events(Arc::downgrade(&sink));
        drivers.insert(Arc::new(ChannelDriver::new(hub.clone())));
        let gate = Arc::new(match self.leases {
            Some(_) => Gate::closed(),
            None => Gate::open(),
        });
        let mut stars = Vec::with_capacity(usize::from(count));
        for key in &keys {
            let star = StarHandle::new(
                key.clone(),
                &cached,
                fabric.clone(),
                drivers.clone(),
                gate.clone(),
                hub.clone(),
                metrics.clone(),
            );
            star.set_capacity(self.star_capacity);
            fabric.connect(key.clone(), Arc::new(star.clone())).await?;
            stars.push(star);
        }
        let membership = match &self.leases {
            Some((leases, timing)) => Some(
                Membership::join(
                    &name,
                    count,
                    *timing,
                    leases.clone(),
                    gate.clone(),
                    fabric.clone(),
                    metrics.clone(),
                )
                .await?,
            ),
            // A machine alone is the cosmos's one machine alive.
            None => {
                metrics.set_machines_alive(1);
                None
            }
        };
        let inner = Arc::new(MachineInner {
            home,
            name,
            registry,
            cached,
            fabric,
            membership,
            stars,
            hub,
            next_star: AtomicUsize::new(0),
            started: Instant::now(),
            metrics,
        });
        let mut machine = Machine {
            inner,
            control: None,
            membership: None,
        };
        machine.bootstrap().await?;
        if let Err(err) = machine.inner.hub.sweep().await {
            tracing::warn!(
                target: "starlane::machine",
                "could not forget the watchers of this machine's last run: {err}"
            );
        }
        let star = machine.star();
        star.lifecycle().reawaken(star.drivers(), &keys).await?;
        if let Some(membership) = &machine.inner.membership {
            let member: Arc<dyn Member> = machine.inner.clone();
            machine.membership = Some(membership.spawn(member));
        }
        let inner = &machine.inner;
        inner.hub.announce(&inner.name, Event::Online).await;
        Ok(machine)
    }
}

#[async_trait]
impl Member for MachineInner {
    async fn adopt(&self, dead: &Lease) {
        // The dead machine's particles only: this machine's guests are alive (restarting
        // them would lose their state and answer 503 while they start).
        self.hub.announce(&dead.machine, Event::Offline).await;
        let doing = format!("placing the particles of machine {} again", dead.machine);
        self.reawaken(&doing, false).await;
    }

    fn forget(&self) {
        self.cached.changes().publish(&Change::Anything);
    }

    async fn rejoined(&self) {
        self.hub.announce(&self.name, Event::Online).await;
        self.reawaken("starting this machine's particles again", true)
            .await;
    }
}

impl MachineInner {
    /// Brings back the particles of dead stars and this machine's own (see
    /// [`Lifecycle::reawaken`](crate::lifecycle::Lifecycle::reawaken)); a failure is logged as
    /// `doing`.
    /// Brings back the particles whose stars are gone and, when this machine's own guests
    /// may be `lost`, its own.
    async fn reawaken(&self, doing: &str, lost: bool) {
        let star = self.star();
        let mine: Vec<StarKey> = match lost {
            true => self.stars.iter().map(|s| s.key().clone()).collect(),
            false => Vec::new(),
        };
        if let Err(err) = star.lifecycle().reawaken(star.drivers(), &mine).await {
            tracing::error!(target: "starlane::membership", "{doing}: {err}");
        }
    }
}

/// Makes sure the data directory `home` exists; the machine's name is `configured`, else the
/// one kept in `home`.
fn machine_name(home: &Path, configured: Option<String>) -> Result<String, MachineError> {
    std::fs::create_dir_all(home).map_err(|source| MachineError::Home {
        path: home.to_path_buf(),
        source,
    })?;
    match configured {
        Some(name) => Ok(name),
        None => kept_name(home),
    }
}

/// The name kept in `home`, or a new one (`machine-` and 8 random hex digits) written there.
fn kept_name(home: &Path) -> Result<String, MachineError> {
    let path = home.join(MACHINE_NAME_FILE);
    read_or_make_name(&path).map_err(|source| MachineError::Home { path, source })
}

fn read_or_make_name(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let name = text.trim().to_string();
            return match star_key(&name, 0) {
                Some(_) => Ok(name),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("'{name}' is not a machine name (skewer case, e.g. edge-1)"),
                )),
            };
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    let name = format!("machine-{:08x}", u32::from_be_bytes(bytes));
    std::fs::write(path, format!("{name}\n"))?;
    Ok(name)
}

impl Machine {
    /// A builder for a machine whose data directory is `home`.
    pub fn builder(home: &Path) -> MachineBuilder {
        MachineBuilder {
            home: home.to_path_buf(),
            name: None,
            stars: 1,
            registry: None,
            fabric: None,
            drivers: None,
            leases: None,
            star_capacity: crate::star::DEFAULT_CAPACITY,
            metrics: None,
        }
    }

    /// Starts a machine alone on its own fabric with `stars` stars, whose registry lives in
    /// `home` (the builder with its defaults).
    pub async fn open(
        home: &Path,
        stars: usize,
        drivers: Drivers,
    ) -> Result<Machine, MachineError> {
        Machine::builder(home)
            .stars(stars)
            .drivers(drivers)
            .build()
            .await
    }

    /// Makes sure the hyperspace's own particles exist and are Ready on a star.
    async fn bootstrap(&self) -> Result<(), RegistryError> {
        let hyperuser = Point::hyperuser();
        let users = hyperuser.parent().unwrap_or_else(Point::root);
        let space = users.parent().unwrap_or_else(Point::root);
        for (point, kind) in [
            (Point::root(), Kind::Root),
            (space, Kind::Space),
            (users, Kind::UserBase(None::<UserBaseSubKind>)),
            (hyperuser.clone(), Kind::User),
            (Point::anonymous(), Kind::User),
        ] {
            let record = self
                .inner
                .registry
                .register(Registration {
                    point: point.clone(),
                    kind,
                    owner: hyperuser.clone(),
                    properties: PropertyChanges::new(),
                    strategy: CreateStrategy::Ensure,
                    status: Status::Ready,
                })
                .await?;
            if record.location.is_none()
                && let Some(star) = self.star().lifecycle().place(&point)
            {
                self.inner.registry.set_location(&point, star).await?;
            }
        }
        Ok(())
    }

    /// The next star to let a wave in through (round robin).
    fn star(&self) -> StarHandle {
        self.inner.star()
    }

    /// The stars of this machine.
    pub fn stars(&self) -> &[StarHandle] {
        &self.inner.stars
    }

    /// The stars of the cosmos this machine counts as live: its own and, in a cosmos of
    /// several machines, those of the machines whose leases hold.
    pub fn live_stars(&self) -> Vec<StarKey> {
        self.inner.fabric.stars()
    }

    /// This machine's channels: watch what a selector publishes (SPEC §18).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.inner.registry
    }

    /// The data directory.
    pub fn home(&self) -> &Path {
        &self.inner.home
    }

    /// The machine's name in the cosmos (its stars are `STAR::NAME:star[i]`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How long the machine has been running.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// What the machine counts: waves, requests, guest calls, registry calls, deliveries.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Sends a Ping into the cosmos as `agent` and waits for its Pong. Its agent, `from` and
    /// hops are stamped here, whatever it carried; its id is kept unless it is nil.
    pub async fn ping(&self, agent: Agent, ping: Ping) -> Pong {
        self.inner.ping(agent, ping).await
    }

    /// The drivers `starlane serve` runs with: the built-in ones, sealing secrets with
    /// `secret_key`, and mechtrons, run by a wasm host set up by `wasm` (its compiled modules
    /// cached in `home/cache/wasm`) and whose log lines go to `log`
    /// (`starlane serve`: [`traced_log`], through `tracing`).
    pub fn standard_drivers(
        home: &Path,
        log: GuestLog,
        secret_key: SecretKey,
        wasm: WasmConfig,
    ) -> Result<Drivers, WasmError> {
        let host = WasmHost::new(WasmConfig {
            cache_dir: Some(home.join("cache").join("wasm")),
            ..wasm
        })?;
        let mut drivers = Drivers::builtin(secret_key);
        drivers.insert(Arc::new(MechtronDriver::new(host).with_log(log)));
        Ok(drivers)
    }

    /// Starts a machine as `starlane serve` does: opens it in `config.home` with the standard
    /// drivers and the registry `config` names (the embedded store in the data directory, or
    /// PostgreSQL), listens for the control protocol and writes the endpoint files (control
    /// address, HTTP address, the HyperUser's token) into the data directory. With
    /// `config.metrics`, it serves its metrics there too (`GET /metrics`).
    ///
    /// A PostgreSQL registry that cannot be reached fails at once, or after the pool's
    /// connect timeout (5 s) for a host that does not answer, with
    /// [`MachineError::Database`] naming host, port, database and user.
    pub async fn start(config: MachineConfig) -> Result<Machine, MachineError> {
        let name = machine_name(&config.home, config.machine.clone())?;
        let metrics = Arc::new(Metrics::new());
        let mut builder = Machine::builder(&config.home)
            .stars(config.stars)
            .star_capacity(config.host.star_capacity)
            .name(name.clone())
            .metrics(metrics.clone());
        let mut postgres = None;
        if let Some(url) = &config.registry {
            let registry = PgRegistry::connect(url.secret()).await.map_err(|error| {
                MachineError::Database {
                    target: url.target(),
                    error: Box::new(error),
                }
            })?;
            let registry = Arc::new(registry);
            builder = builder.registry(registry.clone());
            postgres = Some(registry);
        }
        let wasm = WasmConfig {
            workers: config.host.wasm_workers,
            max_workers: config.host.wasm_max_workers,
            queue: config.host.guest_queue,
            observer: Some(metrics.clone()),
            ..WasmConfig::default()
        };
        let drivers = Machine::standard_drivers(
            &config.home,
            traced_log(),
            machine_secret_key(&config)?,
            wasm,
        )?;
        builder = builder.drivers(drivers);
        if let (Some(cluster), Some(registry)) = (&config.cluster, postgres) {
            let settings = NatsSettings::new(&cluster.nats, &cluster.cosmos, &name);
            let fabric = NatsFabric::connect(&settings).await?;
            builder = builder
                .fabric(fabric)
                .membership(registry, LeaseTiming::with_ttl(cluster.lease));
        }
        let mut machine = builder.build().await?;
        let listener =
            TcpListener::bind(config.control)
                .await
                .map_err(|source| MachineError::Listen {
                    addr: config.control,
                    source,
                })?;
        let control_addr = listener
            .local_addr()
            .map_err(|source| MachineError::Listen {
                addr: config.control,
                source,
            })?;
        let http = TcpListener::bind(config.http)
            .await
            .map_err(|source| MachineError::Listen {
                addr: config.http,
                source,
            })?;
        let http_addr = http.local_addr().map_err(|source| MachineError::Listen {
            addr: config.http,
            source,
        })?;
        let metrics_listener = match config.metrics {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| MachineError::Listen { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| MachineError::Listen { addr, source })?;
                Some((listener, bound))
            }
            None => None,
        };
        let hyperuser_token = control::generate_token()?;
        let controller = Controller {
            inner: machine.inner.clone(),
            hyperuser_token: hyperuser_token.clone(),
            control_addr,
            http_addr,
            registry: config.registry_description(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (stop_http, http_stopped) = oneshot::channel::<()>();
        let limits = ControlLimits {
            grace: config.grace,
            ..ControlLimits::default()
        };
        let task = tokio::spawn(control::serve_with(
            listener,
            Arc::new(controller),
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        let entry: Arc<dyn gateway::Entry> = machine.inner.clone();
        let http_task = tokio::spawn(gateway::serve(
            http,
            entry,
            config.gateway.clone(),
            config.grace,
            metrics.clone(),
            async move {
                let _ = http_stopped.await;
            },
        ));
        let metrics = metrics_listener.map(|(listener, addr)| {
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(gateway::serve_metrics(listener, metrics, async move {
                let _ = stopped.await;
            }));
            (addr, stop, task)
        });
        control::write_endpoint(&config.home, control_addr, http_addr, &hyperuser_token)?;
        machine.control = Some(Serving {
            control_addr,
            http_addr,
            stop,
            task,
            stop_http,
            http_task,
            metrics,
        });
        Ok(machine)
    }

    /// Where the control protocol listens (after [`Machine::start`]).
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(|c| c.control_addr)
    }

    /// Where the HTTP gateway listens (after [`Machine::start`]).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(|c| c.http_addr)
    }

    /// Where the metrics are served (after [`Machine::start`] with `metrics` set).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.control
            .as_ref()
            .and_then(|c| c.metrics.as_ref().map(|(addr, _, _)| *addr))
    }

    /// Stops the machine (SPEC §19): says it goes offline, then stops the control server and
    /// the HTTP gateway together — both refuse new connections at once and give what is
    /// under way (requests, streams, watches) the configured grace period to finish, cutting
    /// off the rest — removes the endpoint files, gives up its lease and disconnects every
    /// star from the fabric.
    pub async fn shutdown(mut self) {
        self.inner
            .hub
            .announce(&self.inner.name, Event::Offline)
            .await;
        if let Some(serving) = self.control.take() {
            let _ = serving.stop.send(());
            let _ = serving.stop_http.send(());
            let _ = serving.task.await;
            let _ = serving.http_task.await;
            if let Some((_, stop, task)) = serving.metrics {
                let _ = stop.send(());
                let _ = task.await;
            }
            let _ = control::clear_endpoint(&self.inner.home);
        }
        if let Some((stop, task)) = self.membership.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        for star in &self.inner.stars {
            self.inner.fabric.disconnect(star.key()).await;
        }
    }
}

impl Drop for Machine {
    /// A machine dropped without [`Machine::shutdown`] still stops keeping its lease (the
    /// task gives it up), so the others take its particles over.
    fn drop(&mut self) {
        if let Some((stop, _)) = self.membership.take() {
            let _ = stop.send(());
        }
    }
}

#[async_trait]
impl gateway::Entry for MachineInner {
    fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    async fn ping(&self, agent: Agent, ping: Ping) -> cosmic_space::ReflectedCore {
        MachineInner::ping(self, agent, ping).await.core
    }
}

impl MachineInner {
    fn star(&self) -> StarHandle {
        let n = self.next_star.fetch_add(1, Ordering::Relaxed);
        self.stars[n % self.stars.len()].clone()
    }

    /// Sends `ping` from one of the stars: the next in turn, or, for an id the sender chose,
    /// always the same star for that id, whose Shell then refuses a second Ping under it while
    /// the first is in flight (409) whichever star a retry would otherwise have taken.
    async fn ping(&self, agent: Agent, mut ping: Ping) -> Pong {
        let star = if ping.id.is_nil() {
            ping.id = crate::ids::wave_id();
            self.star()
        } else {
            self.star_for(ping.id)
        };
        ping.from = Surface {
            point: agent.to_point(),
            layer: Layer::Shell,
            topic: Some(Topic::Cli),
        };
        ping.agent = agent;
        ping.hops = 0;
        star.ping(ping).await
    }

    /// The star that takes every Ping with the id `wave`.
    fn star_for(&self, wave: WaveId) -> StarHandle {
        let hash = wave.as_bytes().iter().fold(0usize, |hash, byte| {
            hash.wrapping_mul(31) ^ usize::from(*byte)
        });
        self.stars[hash % self.stars.len()].clone()
    }
}

/// Compares two secrets in time that depends only on their lengths (`subtle`, so the
/// optimiser cannot turn it back into an early exit).
fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[async_trait]
impl ControlService for Controller {
    async fn authenticate(&self, token: &str) -> Option<Agent> {
        if same_secret(token, &self.hyperuser_token) {
            return Some(Agent::HyperUser);
        }
        match self.inner.registry.token_agent(token).await {
            Ok(Some(point)) => Some(Agent::from_point(point)),
            _ => None,
        }
    }

    async fn ping(&self, agent: Agent, ping: Ping) -> Pong {
        self.inner.ping(agent, ping).await
    }

    async fn status(&self) -> StatusReport {
        let registry = &self.inner.registry;
        let particles = registry.census().await.unwrap_or_default();
        let mut hosted: BTreeMap<StarKey, u64> = BTreeMap::new();
        if let Ok(everything) = "**".parse::<cosmic_space::Selector>()
            && let Ok(stubs) = registry.select(&everything).await
        {
            for stub in stubs {
                if let Ok(record) = registry.record(&stub.point).await
                    && let Some(star) = record.location
                {
                    *hosted.entry(star).or_default() += 1;
                }
            }
        }
        let mut machines = Vec::new();
        if let Some(membership) = &self.inner.membership
            && let Ok(leases) = membership.leases().await
        {
            for lease in leases {
                let particles = lease
                    .star_keys()
                    .iter()
                    .map(|star| hosted.get(star).copied().unwrap_or(0))
                    .sum();
                machines.push(MachineReport {
                    alive: lease.is_live(),
                    name: lease.machine,
                    stars: lease.stars,
                    particles,
                });
            }
        }
        StatusReport {
            machine: self.inner.name.clone(),
            uptime: self.inner.started.elapsed(),
            stars: self
                .inner
                .stars
                .iter()
                .map(|star| StarReport {
                    key: star.key().clone(),
                    kind: Kind::Star(StarSubKind::Fold),
                    particles: hosted.get(star.key()).copied().unwrap_or(0),
                })
                .collect(),
            particles,
            control: Some(self.control_addr),
            http: Some(self.http_addr),
            registry: self.registry.clone(),
            machines,
        }
    }

    async fn watch(&self, agent: Agent, selector: Selector) -> Result<Watch, WatchError> {
        self.inner.hub.watch(agent, selector).await
    }

    async fn issue_token(&self, by: &Agent, agent: Point) -> Result<String, ControlError> {
        if *by != Agent::HyperUser {
            return Err(ControlError::Denied(format!(
                "{by} may not issue tokens: only HyperUser may"
            )));
        }
        let token = control::generate_token()?;
        self.inner
            .registry
            .store_token(&token, &agent)
            .await
            .map_err(|err| ControlError::Io(std::io::Error::other(err.to_string())))?;
        Ok(token)
    }
}
