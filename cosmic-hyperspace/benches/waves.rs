//! Ping→Pong between native particles on two stars of one machine (SPEC §15: p50 ≤ 10 µs,
//! ≥ 200k round trips/s with many in flight), beside the floor measured in the same run: a
//! bare tokio round trip (request over an mpsc channel to another task, answer over a
//! oneshot), which is what one hop between stars costs at the least.
//!
//! Then the same on a machine whose registry is in PostgreSQL (SPEC §15: within 10% of the
//! embedded one, thanks to the caches).
//!
//! `cargo bench -p cosmic-hyperspace --bench waves`

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmic_hyperspace::driver::Drivers;
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::registry::PgRegistry;
use cosmic_hyperspace::star::StarHandle;
use cosmic_space::{Agent, CmdMethod, Method, Ping, Point, RawCommand, StatusCode, Surface};
use tests::postgres::PrivatePostgres;
use tokio::sync::{mpsc, oneshot};

const SEQUENTIAL: usize = 20_000;
const THROUGHPUT: usize = 200_000;
const IN_FLIGHT: usize = 256;

struct Figures {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Measures on a task of the runtime (not on the thread blocked in `block_on`, which every
/// answer would have to wake).
async fn measure<F, Fut>(round_trip: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(measure_here(round_trip)).await.unwrap()
}

async fn measure_here<F, Fut>(round_trip: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    for _ in 0..2_000 {
        round_trip().await;
    }
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let start = Instant::now();
        round_trip().await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..THROUGHPUT {
        let round_trip = round_trip.clone();
        set.spawn(async move { round_trip().await });
        while set.len() >= IN_FLIGHT {
            set.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    Figures {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        per_second: THROUGHPUT as f64 / start.elapsed().as_secs_f64(),
    }
}

async fn exec(machine: &Machine, line: &str) {
    let ping = Ping::command(Point::hyperuser(), RawCommand::new(line));
    let pong = machine.ping(Agent::HyperUser, ping).await;
    assert!(pong.core.is_ok(), "{line}: {:?}", pong.core.error_message());
}

/// The star that does not host `target`, so every round trip crosses between stars.
async fn other_star(machine: &Machine, target: &Point) -> StarHandle {
    let record = machine.registry().record(target).await.unwrap();
    let host = record.location.unwrap();
    machine
        .stars()
        .iter()
        .find(|star| *star.key() != host)
        .cloned()
        .unwrap()
}

/// One round trip: a `Cmd<Bounce>` from `sender` to `target` as `agent`, which must answer 200.
fn bounces(
    sender: StarHandle,
    target: Point,
    agent: Agent,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move || {
        let mut ping = Ping::new(
            Surface::core(sender.point().clone()),
            target.clone(),
            Method::Cmd(CmdMethod::Bounce),
            (),
        );
        ping.agent = agent.clone();
        let sender = sender.clone();
        Box::pin(async move {
            let pong = sender.ping(ping).await;
            assert_eq!(pong.core.status, StatusCode::OK);
        })
    }
}

/// Sets up a target and a user granted `x` on it, then measures bounces as HyperUser and as
/// the user.
async fn measure_machine(machine: &Machine) -> (Figures, Figures) {
    exec(machine, "create localhost<Space>").await;
    exec(machine, "create localhost:users<UserBase>").await;
    exec(machine, "create localhost:users:client<User>").await;
    exec(machine, "create localhost:target<Base>").await;
    exec(
        machine,
        "grant +csd-rwX on localhost:target to localhost:users:client",
    )
    .await;
    let target: Point = "localhost:target".parse().unwrap();
    let sender = other_star(machine, &target).await;
    let hyper = measure(bounces(sender.clone(), target.clone(), Agent::HyperUser)).await;
    let client = Agent::Point("localhost:users:client".parse().unwrap());
    let user = measure(bounces(sender, target, client)).await;
    (hyper, user)
}

fn report(name: &str, figures: &Figures, floor: &Figures) {
    println!(
        "{name:<50} p50 {:>8.2} µs  p99 {:>8.2} µs  {:>9.0} round trips/s   p50 ×{:.1} floor, throughput ×{:.2} floor",
        figures.p50.as_secs_f64() * 1e6,
        figures.p99.as_secs_f64() * 1e6,
        figures.per_second,
        figures.p50.as_secs_f64() / floor.p50.as_secs_f64(),
        figures.per_second / floor.per_second,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The floor: a request to another task and its answer, nothing else.
        let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
        tokio::spawn(async move {
            while let Some(answer) = rx.recv().await {
                let _ = answer.send(());
            }
        });
        let floor = measure(move || {
            let tx = tx.clone();
            async move {
                let (answer, answered) = oneshot::channel();
                tx.send(answer).unwrap();
                answered.await.unwrap();
            }
        })
        .await;

        println!("Ping→Pong across two stars ({SEQUENTIAL} sequential for latency; {THROUGHPUT} with {IN_FLIGHT} in flight for throughput)");
        report("floor: tokio mpsc + oneshot round trip", &floor, &floor);

        let dir = tempfile::tempdir().unwrap();
        let embedded = Machine::open(dir.path(), 2, Drivers::builtin()).await.unwrap();
        let (hyper, user) = measure_machine(&embedded).await;
        report("embedded registry: HyperUser (no access check)", &hyper, &floor);
        report("embedded registry: user agent (access checked)", &user, &floor);
        embedded.shutdown().await;

        // The same with the registry in PostgreSQL (a private server on loopback): the
        // records, placements, access decisions and binds come from the caches, so the
        // figures should stay close to the embedded ones.
        let server = tokio::task::spawn_blocking(PrivatePostgres::start).await.unwrap();
        let url = server.database();
        let pg = PgRegistry::connect(&url).await.unwrap();
        let pg_dir = tempfile::tempdir().unwrap();
        let postgres = Machine::builder(pg_dir.path())
            .stars(2)
            .registry(Arc::new(pg))
            .build()
            .await
            .unwrap();
        let (pg_hyper, pg_user) = measure_machine(&postgres).await;
        report("PostgreSQL registry: HyperUser", &pg_hyper, &floor);
        report("PostgreSQL registry: user agent", &pg_user, &floor);
        println!(
            "PostgreSQL vs embedded: p50 ×{:.2} (HyperUser), ×{:.2} (user); throughput ×{:.2}, ×{:.2}",
            pg_hyper.p50.as_secs_f64() / hyper.p50.as_secs_f64(),
            pg_user.p50.as_secs_f64() / user.p50.as_secs_f64(),
            pg_hyper.per_second / hyper.per_second,
            pg_user.per_second / user.per_second,
        );
        postgres.shutdown().await;
    });
}
