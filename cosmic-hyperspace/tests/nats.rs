//! Two machines in one process, one cosmos: their stars exchange waves over a private NATS
//! server, their registry is one private PostgreSQL database, and what one machine changes in
//! the registry the other's caches forget.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cosmic_hyperspace::driver::{BasicDriver, Driver, DriverCtx, Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::membership::LeaseTiming;
use cosmic_hyperspace::registry::ParticleRecord;
use cosmic_hyperspace::star::StarHandle;
use cosmic_space::{
    Agent, BaseKind, Bind, Method, Ping, Point, RawCommand, ReflectedCore, StatusCode, Substance,
    Surface,
};
use tests::nats::PrivateNats;
use tests::postgres::PrivatePostgres;

/// Stars per machine (`tests::nats::machine`).
const STARS: u16 = 2;

/// Short leases, so failover is quick to watch.
const TTL: Duration = Duration::from_millis(1000);

/// `Base` particles that answer `Ext<Echo>` with the body they were sent.
struct EchoDriver(BasicDriver);

#[async_trait]
impl Driver for EchoDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Base
    }
    fn bind(&self) -> Arc<Bind> {
        "Bind(version=1.0.0) { Route<Ext<*>> -> (()) => &; }"
            .parse::<Bind>()
            .map(Arc::new)
            .unwrap()
    }
    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        if ping.core.method == Method::ext("Echo").unwrap() {
            return ReflectedCore::ok(ping.core.body.clone());
        }
        self.0.handle(ctx, record, ping).await
    }
}

/// Two machines, `edge-a` and `edge-b`, of cosmos `test`.
struct Cosmos {
    _nats: PrivateNats,
    _postgres: PrivatePostgres,
    _dirs: Vec<tempfile::TempDir>,
    a: Machine,
    /// `None` once it has left.
    b: Option<Machine>,
}

async fn cosmos() -> Cosmos {
    let nats = tokio::task::spawn_blocking(PrivateNats::start)
        .await
        .unwrap();
    let postgres = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let url = postgres.database();
    let mut dirs = Vec::new();
    let mut machines = Vec::new();
    for name in ["edge-a", "edge-b"] {
        let dir = tempfile::tempdir().unwrap();
        let mut drivers = Drivers::builtin(SecretKey::random().unwrap());
        drivers.insert(Arc::new(EchoDriver(BasicDriver::new(BaseKind::Base))));
        let timing = LeaseTiming::with_ttl(TTL);
        let machine =
            tests::nats::machine(&nats.url(), "test", &url, name, dir.path(), drivers, timing)
                .await;
        dirs.push(dir);
        machines.push(machine);
    }
    // A hears of B at its next tick.
    let deadline = Instant::now() + Duration::from_secs(5);
    while machines[0].live_stars().len() < usize::from(2 * STARS) {
        assert!(Instant::now() < deadline, "edge-a never saw edge-b's stars");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = machines.pop().unwrap();
    let a = machines.pop().unwrap();
    Cosmos {
        _nats: nats,
        _postgres: postgres,
        _dirs: dirs,
        a,
        b: Some(b),
    }
}

impl Cosmos {
    /// Machine B, while it runs.
    fn b(&self) -> &Machine {
        self.b.as_ref().unwrap()
    }

    /// Machine B shuts down (and gives up its lease).
    async fn b_leaves(&mut self) {
        if let Some(b) = self.b.take() {
            b.shutdown().await;
        }
    }

    /// Both machines leave, before their database and bus go.
    async fn end(mut self) {
        self.b_leaves().await;
        self.a.shutdown().await;
    }
}

async fn exec(machine: &Machine, line: &str) -> Substance {
    let ping = Ping::command(Point::hyperuser(), RawCommand::new(line));
    let core = machine.ping(Agent::HyperUser, ping).await.core;
    assert!(core.is_ok(), "{line}: {:?}", core.error_message());
    core.body
}

/// Runs `line` on `machine` until its answer mentions `want`; fails after 2 s.
async fn read_eventually(machine: &Machine, line: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let ping = Ping::command(Point::hyperuser(), RawCommand::new(line));
        let core = machine.ping(Agent::HyperUser, ping).await.core;
        let answer = format!("{:?} {:?}", core.body, core.error_message());
        if core.is_ok() && answer.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{line} still answers {answer} 2 s after the change to {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `Ext<Echo>` with `body` to `target` from `sender`'s star, as HyperUser.
async fn echo(sender: &StarHandle, target: &Point, body: Substance) -> ReflectedCore {
    let mut ping = Ping::new(
        Surface::core(sender.point().clone()),
        target.clone(),
        Method::ext("Echo").unwrap(),
        body,
    );
    ping.agent = Agent::HyperUser;
    sender.ping(ping).await.core
}

/// The particles `localhost:p0` … `localhost:p{n-1}`, made through machine A.
async fn particles(cosmos: &Cosmos, n: usize) -> Vec<Point> {
    exec(&cosmos.a, "create localhost<Space>").await;
    let mut points = Vec::new();
    for i in 0..n {
        exec(&cosmos.a, &format!("create localhost:p{i}<Base>")).await;
        points.push(format!("localhost:p{i}").parse().unwrap());
    }
    points
}

/// One of `points` that is placed on a star of `machine`.
async fn placed_on(cosmos: &Cosmos, points: &[Point], machine: &str) -> Point {
    for point in points {
        let host = cosmos.a.registry().location(point).await.unwrap().unwrap();
        if host.constellation == machine {
            return point.clone();
        }
    }
    panic!("none of {points:?} is placed on {machine}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn particles_made_on_one_machine_answer_through_the_other() {
    let cosmos = cosmos().await;
    let points = particles(&cosmos, 16).await;
    let mut placed_on_b = 0;
    for point in &points {
        let host = cosmos.a.registry().location(point).await.unwrap().unwrap();
        placed_on_b += usize::from(host.constellation == "edge-b");
        for sender in cosmos.a.stars().iter().chain(cosmos.b().stars()) {
            let core = echo(sender, point, Substance::Text(format!("to {point}"))).await;
            assert_eq!(core.status, StatusCode::OK, "{point} from {}", sender.key());
            assert_eq!(core.body, Substance::Text(format!("to {point}")));
        }
    }
    assert!(
        (1..points.len()).contains(&placed_on_b),
        "rendezvous over both machines' stars places some particles on each ({placed_on_b} of {} on edge-b)",
        points.len()
    );
    // A change made through A is seen through B a moment later (its caches hear it over the
    // bus; docs/decisions/cluster.md, "Caches across machines").
    let target = &points[0];
    exec(&cosmos.a, &format!("set {target}{{ +title=Before }}")).await;
    read_eventually(cosmos.b(), &format!("get {target}{{ title }}"), "Before").await;
    exec(&cosmos.a, &format!("set {target}{{ +title=Hello }}")).await;
    read_eventually(cosmos.b(), &format!("get {target}{{ title }}"), "Hello").await;
    cosmos.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_mebibyte_wave_crosses_machines_intact() {
    let cosmos = cosmos().await;
    let points = particles(&cosmos, 8).await;
    let target = placed_on(&cosmos, &points, "edge-b").await;
    let bytes: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sender = &cosmos.a.stars()[0];
    let core = echo(sender, &target, Substance::Bin(bytes.clone())).await;
    assert_eq!(core.status, StatusCode::OK, "{:?}", core.error_message());
    assert!(
        core.body == Substance::Bin(bytes),
        "the echo came back different"
    );
    cosmos.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_star_nobody_serves_answers_at_once() {
    let mut cosmos = cosmos().await;
    let points = particles(&cosmos, 8).await;
    let target = placed_on(&cosmos, &points, "edge-b").await;
    cosmos.b_leaves().await;
    let a = &cosmos.a;
    let started = Instant::now();
    let core = echo(&a.stars()[0], &target, Substance::Text("anyone?".into())).await;
    assert_eq!(
        core.status,
        StatusCode::UNAVAILABLE,
        "{:?}",
        core.error_message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}, not at once",
        started.elapsed()
    );
    cosmos.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_particles_of_a_machine_that_leaves_answer_from_the_other() {
    let mut cosmos = cosmos().await;
    // A has read both leases (it sees B's stars): two machines alive, on both.
    assert_eq!(cosmos.a.metrics().machines_alive(), 2);
    assert_eq!(cosmos.b().metrics().machines_alive(), 2);
    let points = particles(&cosmos, 16).await;
    let target = placed_on(&cosmos, &points, "edge-b").await;
    let left = Instant::now();
    cosmos.b_leaves().await;
    let a = &cosmos.a;
    // Every particle answers through A again, the ones B hosted once A has buried B.
    let deadline = Instant::now() + Duration::from_secs(15);
    let sender = &a.stars()[0];
    for point in &points {
        loop {
            let core = echo(sender, point, Substance::Text("back?".into())).await;
            if core.status == StatusCode::OK {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{point} still answers {} {:?}",
                core.status,
                core.error_message()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "every particle answered through edge-a {:?} after edge-b left",
        left.elapsed()
    );
    let host = a.registry().location(&target).await.unwrap().unwrap();
    assert_eq!(host.constellation, "edge-a");
    // B gave its lease up: A counts itself alone at its next reading.
    while a.metrics().machines_alive() != 1 {
        assert!(
            Instant::now() < deadline,
            "edge-a still counts edge-b alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cosmos.end().await;
}
