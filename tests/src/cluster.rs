//! A cosmos across machines on one computer (SPEC §14.2), for the end-to-end tests and the
//! failover benchmark: three `starlane serve` processes, `m-a`, `m-b` and `m-c`, of cosmos
//! `test`, on one private NATS server ([`PrivateNats`]) and one fresh database of the shared
//! private PostgreSQL ([`crate::postgres::shared`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use tests::cluster::Cluster;
//!
//! let cluster = Cluster::start(Some(Duration::from_millis(1000)));
//! let points = cluster.counters(6);
//! cluster.until_answered(2, &points[0], "Ext<Get>", Duration::from_secs(30));
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cosmic_hyperspace::control::Client;
use cosmic_hyperspace::{MachineConfig, PgRegistry, Registry};
use cosmic_space::{Method, Ping, Point, StarKey, StatusCode, Substance, Surface, WaitTime};

use crate::nats::PrivateNats;
use crate::{Server, stderr, stdout};

/// The machines' names, by index.
pub const NAMES: [&str; 3] = ["m-a", "m-b", "m-c"];

/// How many stars each machine runs ([`Server::start`]'s `STARLANE_STARS`).
const STARS: u16 = 2;

/// Three machines of cosmos `test`; each may be killed, stopped and started again.
#[derive(Debug)]
pub struct Cluster {
    /// One cluster at a time: three machines, on two cores, already keep them busy; more at
    /// once would starve their lease renewals and fail machines over for real.
    _turn: MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    nats: PrivateNats,
    database: String,
    lease: Option<Duration>,
    servers: Vec<Option<Server>>,
}

impl Cluster {
    /// Starts the three machines with leases of `lease` (`STARLANE_LEASE`), or of the
    /// product's default when `None` (the variable is not set at all, so the machines run as
    /// an operator's would), waiting for this process's previous cluster to be dropped.
    ///
    /// # Panics
    /// If NATS or PostgreSQL is missing, or a machine does not start.
    pub fn start(lease: Option<Duration>) -> Cluster {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let nats = PrivateNats::start();
        let database = crate::postgres::shared().database();
        let mut cluster = Cluster {
            _turn: turn,
            dir,
            nats,
            database,
            lease,
            servers: Vec::new(),
        };
        for index in 0..NAMES.len() {
            let server = cluster.machine(index);
            cluster.servers.push(Some(server));
        }
        cluster
    }

    /// How long the machines' leases last: a dead machine's particles cannot answer again
    /// sooner than this after its last renewal.
    pub fn lease(&self) -> Duration {
        self.lease.unwrap_or(MachineConfig::DEFAULT_LEASE)
    }

    /// The working directory for commands (where the fixtures bundle is written).
    pub fn work(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory of machine `index`; its log is beside it, `NAME.log`.
    pub fn home(&self, index: usize) -> PathBuf {
        self.dir.path().join(NAMES[index])
    }

    /// What machine `index` printed (its standard output and error), since it last started.
    pub fn log(&self, index: usize) -> PathBuf {
        self.home(index).with_extension("log")
    }

    /// Starts machine `index` on its data directory (again, after a kill: same home, same
    /// name).
    fn machine(&self, index: usize) -> Server {
        let home = self.home(index);
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
        let envs = self.settings(NAMES[index]);
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_with(&home, &envs)
    }

    /// The environment of a machine named `name` of this cosmos.
    fn settings(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut envs = vec![
            ("STARLANE_REGISTRY", self.database.clone()),
            ("STARLANE_NATS", self.nats.url()),
            ("STARLANE_COSMOS", "test".to_string()),
            ("STARLANE_MACHINE", name.to_string()),
        ];
        if let Some(lease) = self.lease {
            envs.push(("STARLANE_LEASE", lease.as_millis().to_string()));
        }
        envs
    }

    /// `starlane serve` of one more machine named `name` on a data directory of its own, run
    /// until it exits: whether it succeeded and what it printed. Fails the test if it still
    /// runs after `patience` (it is killed then).
    pub fn serve_until_exit(&self, name: &str, patience: Duration) -> (bool, String) {
        let home = self.dir.path().join(format!("{name}-again"));
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
        let mut child = std::process::Command::new(crate::starlane_bin())
            .arg("serve")
            .env("STARLANE_HOME", &home)
            .env("STARLANE_CONTROL", "127.0.0.1:0")
            .env("STARLANE_HTTP", "127.0.0.1:0")
            .envs(self.settings(name))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start starlane serve: {e}"));
        let started = std::time::Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > patience {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
                panic!(
                    "starlane serve as {name} still ran after {patience:?}: {}{}",
                    crate::stdout(&out),
                    crate::stderr(&out)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.success(),
            format!("{}{}", crate::stdout(&out), crate::stderr(&out)),
        )
    }

    /// The running machine `index`.
    ///
    /// # Panics
    /// If it was killed and not restarted.
    pub fn server(&self, index: usize) -> &Server {
        self.servers[index]
            .as_ref()
            .unwrap_or_else(|| panic!("machine {} is not running", NAMES[index]))
    }

    /// Kills machine `index` with SIGKILL, as a crash would, and waits for it to die.
    pub fn kill9(&mut self, index: usize) {
        if let Some(server) = self.servers[index].take() {
            server.kill9();
        }
    }

    /// Starts machine `index` again, on the same data directory under the same name, after
    /// [`Cluster::kill9`].
    pub fn restart(&mut self, index: usize) {
        self.kill9(index);
        self.servers[index] = Some(self.machine(index));
    }

    /// Stops the NATS server (as `kill -9` would) and starts it again on the same port.
    pub fn restart_nats(&mut self) {
        self.nats.restart();
    }

    /// `starlane send ARGS` through machine `index`: whether it succeeded, and what it printed.
    pub fn send(&self, index: usize, args: &[&str]) -> (bool, String) {
        let mut all = vec!["send"];
        all.extend_from_slice(args);
        let out = self.server(index).run(self.work(), &all);
        (
            out.status.success(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    }

    /// Waits until `point` answers `method` through machine `index` with success; how long
    /// that took.
    ///
    /// # Panics
    /// After `patience` without success.
    pub fn until_answered(
        &self,
        index: usize,
        point: &str,
        method: &str,
        patience: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let (ok, printed) = self.send(index, &[point, method, "--wait", "2"]);
            if ok {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < patience,
                "{point} did not answer {method} through {} within {patience:?}: {printed}",
                NAMES[index]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The machine hosting the first of `points` while all three are alive (the one a test
    /// will stop), and its index.
    pub fn victim(&self, points: &[String]) -> (String, usize) {
        let victim = self.host_of(&points[0]);
        (victim.clone(), index_of(&victim))
    }

    /// Waits until machine `index` counts every machine alive (so it places over all their
    /// stars).
    ///
    /// # Panics
    /// After 20 s.
    pub fn until_all_alive(&self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.server(index).run(self.work(), &["status", "--json"]);
            let printed = stdout(&out);
            let alive = NAMES
                .iter()
                .filter(|name| printed.contains(&format!("\"alive\":true,\"name\":\"{name}\"")))
                .count();
            if alive == NAMES.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not see every machine alive: {printed}{}",
                NAMES[index],
                stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The machine `point` is placed on when it is created while all three are alive:
    /// placement is rendezvous hashing over the live stars, the same on every machine. After
    /// a failover, adopted particles stay where they were adopted; [`Cluster::hosts`] tells
    /// where they are then.
    pub fn host_of(&self, point: &str) -> String {
        let stars: Vec<StarKey> = NAMES
            .iter()
            .flat_map(|name| (0..STARS).map(move |i| StarKey::new(name, "star", i)))
            .map(|key| key.unwrap_or_else(|e| panic!("a star key: {e}")))
            .collect();
        let point: Point = point
            .parse()
            .unwrap_or_else(|e| panic!("{point} is no point: {e}"));
        cosmic_hyperspace::placement::place(&point, &stars)
            .map(|star| star.constellation.clone())
            .unwrap_or_else(|| panic!("no star for {point}"))
    }

    /// The machine each of `points` is placed on now, by the registry (`None` for one with no
    /// location).
    ///
    /// # Panics
    /// If the registry cannot be read.
    pub async fn hosts(&self, points: &[String]) -> BTreeMap<String, Option<String>> {
        let registry = PgRegistry::connect(&self.database)
            .await
            .unwrap_or_else(|e| panic!("cannot open the cluster's registry: {e}"));
        let mut hosts = BTreeMap::new();
        for point in points {
            let parsed: Point = point
                .parse()
                .unwrap_or_else(|e| panic!("{point} is no point: {e}"));
            let star = registry
                .location(&parsed)
                .await
                .unwrap_or_else(|e| panic!("the location of {point}: {e}"));
            hosts.insert(point.clone(), star.map(|star| star.constellation));
        }
        hosts
    }

    /// The fixtures published and `n` counter mechtrons `localhost:counter-I`, created through
    /// machine `m-a` once it sees every machine alive.
    pub fn counters(&self, n: usize) -> Vec<String> {
        self.until_all_alive(0);
        crate::write_fixtures_bundle(self.work());
        self.server(0).exec(
            self.work(),
            "create localhost<Space>; create localhost:repo<Repo>; \
             publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0",
        );
        let mut points = Vec::new();
        for i in 0..n {
            let point = format!("localhost:counter-{i}");
            self.server(0).exec(
                self.work(),
                &format!(
                    "create {point}<Mechtron>{{ +config=localhost:repo:fixtures:1.0.0:/config/counter.mechtron }}"
                ),
            );
            points.push(point);
        }
        points
    }

    /// A control client of machine `index`, as HyperUser.
    ///
    /// # Panics
    /// If the machine's endpoint files are missing or it refuses the connection.
    pub async fn client(&self, index: usize) -> Client {
        let (addr, token) = self.door(index);
        Client::connect(addr, &token)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", NAMES[index]))
    }

    /// Where machine `index`'s control port listens, and its HyperUser token (to connect many
    /// clients without reading the files again).
    ///
    /// # Panics
    /// If the machine's endpoint files are missing.
    pub fn door(&self, index: usize) -> (std::net::SocketAddr, String) {
        let endpoint = cosmic_hyperspace::control::read_endpoint(&self.home(index))
            .unwrap_or_else(|e| panic!("the endpoint of {}: {e}", NAMES[index]));
        let token = endpoint
            .token
            .unwrap_or_else(|| panic!("{} wrote no token", NAMES[index]));
        (endpoint.control, token)
    }
}

/// The index of the machine called `name`.
///
/// # Panics
/// If `name` is none of [`NAMES`].
pub fn index_of(name: &str) -> usize {
    NAMES
        .iter()
        .position(|known| *known == name)
        .unwrap_or_else(|| panic!("{name} is none of ours"))
}

/// Through a running machine's control port: `Ext<METHOD>` to `point`, waiting `wait_ms` for
/// the answer; its status and its body as text.
pub async fn ping(
    client: &mut Client,
    point: &str,
    method: &str,
    wait_ms: u64,
) -> Result<(StatusCode, String), String> {
    ping_with(client, point, method, Substance::Empty, wait_ms).await
}

/// [`ping`] with a body.
pub async fn ping_with(
    client: &mut Client,
    point: &str,
    method: &str,
    body: Substance,
    wait_ms: u64,
) -> Result<(StatusCode, String), String> {
    let to: Point = point.parse().map_err(|e| format!("{e}"))?;
    let ping = Ping::new(
        Surface::core(Point::hyperuser()),
        to,
        Method::ext(method).map_err(|e| format!("{e}"))?,
        body,
    )
    .with_wait(WaitTime::from_millis(wait_ms));
    let pong = client.ping(ping).await.map_err(|e| e.to_string())?;
    Ok((pong.core.status, format!("{:?}", pong.core.body)))
}
