//! A cosmos across machines (SPEC §14.2), end to end: three `starlane serve` processes on one
//! private NATS server and one private PostgreSQL database. Every machine reaches every
//! particle, by CLI and by HTTP; when the machine hosting a set of mechtrons is killed, they
//! answer again through the survivors; when NATS restarts, the cosmos resumes by itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::nats::PrivateNats;
use tests::{Server, http, stderr, stdout};

/// Lease length for the tests: short, so failover is quick to watch.
const LEASE_MS: &str = "1000";

/// Three machines, `m-a`, `m-b` and `m-c`, of cosmos `test`.
struct Cluster {
    /// One cluster at a time: three machines per test, on two cores, already keep them busy;
    /// more at once would starve their lease renewals and fail machines over for real.
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    nats: PrivateNats,
    database: String,
    servers: Vec<Option<Server>>,
}

const NAMES: [&str; 3] = ["m-a", "m-b", "m-c"];

impl Cluster {
    fn start() -> Cluster {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let turn = TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let nats = PrivateNats::start();
        let database = tests::postgres::shared().database();
        let mut cluster = Cluster {
            _turn: turn,
            dir,
            nats,
            database,
            servers: Vec::new(),
        };
        for index in 0..NAMES.len() {
            let server = cluster.machine(index);
            cluster.servers.push(Some(server));
        }
        cluster
    }

    fn work(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self, index: usize) -> PathBuf {
        self.dir.path().join(NAMES[index])
    }

    /// Starts machine `index` (again).
    fn machine(&self, index: usize) -> Server {
        let home = self.home(index);
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{e}"));
        let nats = self.nats.url();
        Server::start_with(
            &home,
            &[
                ("STARLANE_REGISTRY", self.database.as_str()),
                ("STARLANE_NATS", nats.as_str()),
                ("STARLANE_COSMOS", "test"),
                ("STARLANE_MACHINE", NAMES[index]),
                ("STARLANE_LEASE", LEASE_MS),
            ],
        )
    }

    fn server(&self, index: usize) -> &Server {
        self.servers[index]
            .as_ref()
            .unwrap_or_else(|| panic!("machine {} is not running", NAMES[index]))
    }

    /// `starlane send ARGS` through machine `index`: whether it succeeded, and what it printed.
    fn send(&self, index: usize, args: &[&str]) -> (bool, String) {
        let mut all = vec!["send"];
        all.extend_from_slice(args);
        let out = self.server(index).run(self.work(), &all);
        (
            out.status.success(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    }

    /// Waits until `point` answers `method` through machine `index` with success; how long
    /// that took. Fails the test after `patience`.
    fn until_answered(
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

    /// The machine hosting the first of `points` (the one a test will stop), and its index.
    fn victim(&self, points: &[String]) -> (String, usize) {
        let victim = self.host_of(&points[0]);
        let index = NAMES
            .iter()
            .position(|name| *name == victim)
            .unwrap_or_else(|| panic!("{victim} is none of ours"));
        (victim, index)
    }

    /// Waits until machine `index` counts every machine alive (so it places over all their
    /// stars).
    fn until_all_alive(&self, index: usize) {
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

    /// The machine `point` is placed on while all three are alive: placement is rendezvous
    /// hashing over the live stars, the same on every machine.
    fn host_of(&self, point: &str) -> String {
        let stars: Vec<cosmic_space::StarKey> = NAMES
            .iter()
            .flat_map(|name| (0..2).map(move |i| cosmic_space::StarKey::new(name, "star", i)))
            .map(|key| key.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let point: cosmic_space::Point = point.parse().unwrap_or_else(|e| panic!("{e}"));
        cosmic_hyperspace::placement::place(&point, &stars)
            .map(|star| star.constellation.clone())
            .unwrap_or_else(|| panic!("no star for {point}"))
    }
}

/// The fixtures published and `n` counter mechtrons `localhost:counter-I`, created through
/// machine `m-a`.
fn counters(cluster: &Cluster, n: usize) -> Vec<String> {
    cluster.until_all_alive(0);
    tests::write_fixtures_bundle(cluster.work());
    cluster.server(0).exec(
        cluster.work(),
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0",
    );
    let mut points = Vec::new();
    for i in 0..n {
        let point = format!("localhost:counter-{i}");
        cluster.server(0).exec(
            cluster.work(),
            &format!(
                "create {point}<Mechtron>{{ +config=localhost:repo:fixtures:1.0.0:/config/counter.mechtron }}"
            ),
        );
        points.push(point);
    }
    points
}

#[test]
fn particles_made_through_one_machine_answer_through_every_other() {
    let cluster = Cluster::start();
    let points = counters(&cluster, 6);
    let mut hosts = std::collections::BTreeSet::new();
    for point in &points {
        hosts.insert(cluster.host_of(point));
        for (index, name) in NAMES.iter().enumerate() {
            let (ok, printed) = cluster.send(index, &[point, "Ext<Count>"]);
            assert!(ok, "{point} through {name}: {printed}");
        }
    }
    assert!(
        hosts.len() >= 2,
        "six mechtrons over three machines' stars land on more than one machine: {hosts:?}"
    );
    // Each counter counted once per machine: three waves, one instance.
    for point in &points {
        let (ok, printed) = cluster.send(2, &[point, "Ext<Get>"]);
        assert!(ok, "{printed}");
        assert!(printed.contains('3'), "{point} counted {printed}");
    }
}

#[test]
fn a_web_request_to_any_machine_reaches_a_mechtron_on_another() {
    let cluster = Cluster::start();
    cluster.until_all_alive(0);
    tests::site::build(
        cluster.server(0),
        cluster.work(),
        &[("html/index.html", b"<h1>hi</h1>")],
    );
    let host = cluster.host_of("localhost:hello");
    for (index, name) in NAMES.iter().enumerate() {
        let addr = cluster.server(index).http_addr();
        let reply = http(&addr, "GET", "/app/world", &["Host: localhost"], b"");
        assert_eq!(reply.status, 200, "through {}: {}", name, reply.text());
        let page = http(&addr, "GET", "/index.html", &["Host: localhost"], b"");
        assert_eq!(page.status, 200, "through {}", name);
        assert_eq!(page.body, b"<h1>hi</h1>");
    }
    println!("localhost:hello lives on {host}; every machine's gateway reached it");
}

#[test]
fn the_mechtrons_of_a_killed_machine_answer_again_through_the_survivors() {
    let mut cluster = Cluster::start();
    let points = counters(&cluster, 9);
    let (victim, index) = cluster.victim(&points);
    let hosted: Vec<&String> = points
        .iter()
        .filter(|point| cluster.host_of(point) == victim)
        .collect();
    let survivor = (index + 1) % NAMES.len();
    let killed = Instant::now();
    if let Some(server) = cluster.servers[index].take() {
        server.kill9();
    }
    let mut slowest = Duration::ZERO;
    for point in &hosted {
        let took = cluster.until_answered(survivor, point, "Ext<Count>", Duration::from_secs(30));
        slowest = slowest.max(took);
    }
    println!(
        "kill -9 of {victim} ({} mechtrons): every one answered through {} {:?} after the kill",
        hosted.len(),
        NAMES[survivor],
        killed.elapsed()
    );
    // The killed machine comes back: it takes a new lease and serves what is placed on it.
    cluster.servers[index] = Some(cluster.machine(index));
    for point in &points {
        cluster.until_answered(index, point, "Ext<Get>", Duration::from_secs(30));
    }
}

#[test]
fn the_cosmos_resumes_by_itself_when_nats_restarts() {
    let mut cluster = Cluster::start();
    let points = counters(&cluster, 6);
    cluster.nats.restart();
    let restarted = Instant::now();
    for point in &points {
        for index in 0..NAMES.len() {
            cluster.until_answered(index, point, "Ext<Get>", Duration::from_secs(30));
        }
    }
    println!(
        "after nats-server restarted, every mechtron answered through every machine within {:?}",
        restarted.elapsed()
    );
}

/// Through a running machine's control port: `Ext<METHOD>` to `point`, the status and the
/// body as text.
async fn ping(
    client: &mut cosmic_hyperspace::control::Client,
    point: &str,
    method: &str,
    wait_ms: u64,
) -> Result<(cosmic_space::StatusCode, String), String> {
    ping_with(
        client,
        point,
        method,
        cosmic_space::Substance::Empty,
        wait_ms,
    )
    .await
}

/// [`ping`] with a body.
async fn ping_with(
    client: &mut cosmic_hyperspace::control::Client,
    point: &str,
    method: &str,
    body: cosmic_space::Substance,
    wait_ms: u64,
) -> Result<(cosmic_space::StatusCode, String), String> {
    use cosmic_space::{Method, Ping, Point, Surface, WaitTime};
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

/// A control client of machine `index`, as HyperUser.
async fn client(cluster: &Cluster, index: usize) -> cosmic_hyperspace::control::Client {
    let endpoint = cosmic_hyperspace::control::read_endpoint(&cluster.home(index))
        .unwrap_or_else(|e| panic!("{e}"));
    let token = endpoint.token.unwrap_or_else(|| panic!("no token"));
    cosmic_hyperspace::control::Client::connect(endpoint.control, &token)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_stopped_machine_loses_its_mechtrons_and_never_serves_them_again() {
    let cluster = Cluster::start();
    let points = counters(&cluster, 9);
    let (victim, index) = cluster.victim(&points);
    let survivor = (index + 1) % NAMES.len();
    let hosted: Vec<&String> = points
        .iter()
        .filter(|point| cluster.host_of(point) == victim)
        .collect();
    for point in &hosted {
        let (ok, printed) = cluster.send(survivor, &[point, "Ext<Count>"]);
        assert!(ok, "{printed}");
    }
    // A pinger on the victim that signals a counter on another machine: what the stopped
    // machine would do if it served its old pinger after it continued is visible there.
    let pinger = (0..64)
        .map(|i| format!("localhost:pinger-{i}"))
        .find(|point| cluster.host_of(point) == victim)
        .unwrap_or_else(|| panic!("no pinger name lands on {victim}"));
    let watched = points
        .iter()
        .find(|point| cluster.host_of(point) != victim)
        .unwrap_or_else(|| panic!("every counter is on {victim}"))
        .clone();
    cluster.server(survivor).exec(
        cluster.work(),
        &format!(
            "create {pinger}<Mechtron>{{ +config=localhost:repo:fixtures:1.0.0:/config/pinger.mechtron }}; \
             grant +csd-rwX on {watched} to {pinger}"
        ),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let read = |door: usize, point: &str| {
        let (ok, printed) = cluster.send(door, &[point, "Ext<Get>"]);
        assert!(ok, "{printed}");
        number(printed.lines().last().unwrap_or_default())
    };
    let before = read(survivor, &watched);
    cluster.server(index).signal("STOP");
    // Waves for the stopped machine's pinger wait in its connection while it is stopped.
    runtime.block_on(async {
        let mut door = client(&cluster, survivor).await;
        for _ in 0..5 {
            let _ = ping_with(
                &mut door,
                &pinger,
                "Signal",
                cosmic_space::Substance::Text(watched.clone()),
                200,
            )
            .await;
        }
    });
    cluster.until_answered(survivor, &pinger, "Cmd<Read>", Duration::from_secs(30));
    assert_eq!(
        read(survivor, &watched),
        before,
        "a queued signal was served"
    );
    cluster.server(index).signal("CONT");
    // Continued, the machine finds its lease gone: the waves it had queued are refused, not
    // served by its old pinger.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        read(survivor, &watched),
        before,
        "{victim}, continued, served its old pinger: {watched} was signalled"
    );
    // The continued machine may serve nothing it lost: counting through the survivor and
    // reading through the continued machine (which answers 503 until it holds a lease again)
    // see one instance, the new one.
    runtime.block_on(async {
        let mut counter_door = client(&cluster, survivor).await;
        let mut reader_door = client(&cluster, index).await;
        for point in &hosted {
            let mut last = None;
            for _ in 0..3 {
                let (status, counted) = ping(&mut counter_door, point, "Count", 5_000)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(status.is_ok(), "{point}: {status} {counted}");
                let counted = number(&counted);
                if let Some(last) = last {
                    assert_eq!(counted, last + 1, "{point} counted {last} then {counted}");
                }
                last = Some(counted);
                let deadline = Instant::now() + Duration::from_secs(20);
                let read = loop {
                    let (status, body) = ping(&mut reader_door, point, "Get", 2_000)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    if status.is_ok() {
                        break number(&body);
                    }
                    assert!(Instant::now() < deadline, "{point}: {status} {body}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                assert_eq!(
                    read, counted,
                    "{point}: counted {counted} through {}, but {victim} read {read}: two instances",
                    NAMES[survivor]
                );
            }
        }
    });
}

/// The number in a body's text.
fn number(body: &str) -> i64 {
    body.chars()
        .filter(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[test]
fn every_ping_during_a_failover_gets_exactly_one_answer() {
    let mut cluster = Cluster::start();
    let points = counters(&cluster, 12);
    let (victim, index) = cluster.victim(&points);
    let survivor = (index + 1) % NAMES.len();
    const TOTAL: usize = 20_000;
    const CONNECTIONS: usize = 32;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outcomes = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for connection in 0..CONNECTIONS {
            let mut door = client(&cluster, survivor).await;
            let points = points.clone();
            let sent = sent.clone();
            tasks.spawn(async move {
                let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
                let mut n = connection;
                while n < TOTAL {
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let point = &points[n % points.len()];
                    let outcome = match ping(&mut door, point, "Get", 3_000).await {
                        Ok((status, _)) => status.to_string(),
                        Err(err) => format!("no answer: {err}"),
                    };
                    *outcomes.entry(outcome).or_default() += 1;
                    n += CONNECTIONS;
                }
                outcomes
            });
        }
        // Kill the victim once a tenth of the pings are out.
        while sent.load(std::sync::atomic::Ordering::Relaxed) < TOTAL / 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(server) = cluster.servers[index].take() {
            server.kill9();
        }
        let mut all = std::collections::BTreeMap::<String, usize>::new();
        while let Some(done) = tasks.join_next().await {
            for (outcome, count) in done.unwrap_or_else(|e| panic!("{e}")) {
                *all.entry(outcome).or_default() += count;
            }
        }
        all
    });
    println!(
        "{TOTAL} pings through {} while {victim} was killed: {outcomes:?}",
        NAMES[survivor]
    );
    assert_eq!(outcomes.values().sum::<usize>(), TOTAL, "{outcomes:?}");
    for outcome in outcomes.keys() {
        assert!(
            ["200", "503", "408"]
                .iter()
                .any(|ok| outcome.starts_with(ok)),
            "an answer that is none of 200, 503, 408: {outcomes:?}"
        );
    }
}
