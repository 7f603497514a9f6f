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

use cosmic_hyperspace::driver::{Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::registry::PgRegistry;
use cosmic_hyperspace::star::StarHandle;
use cosmic_space::{Agent, Ping, Point, RawCommand, StatusCode, WaveKind};
use tests::postgres::PrivatePostgres;
use tokio::sync::{mpsc, oneshot};

mod common;

use common::{Figures, Load, Trip, bounces, measure, report};

/// Ping→Pong on one machine: 20k one at a time, 200k with 256 in flight.
const LOAD: Load = Load {
    warmup: 2_000,
    sequential: 20_000,
    throughput: 200_000,
    in_flight: 256,
};

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
    let hyper = measure(
        LOAD,
        bounces(sender.clone(), target.clone(), Agent::HyperUser),
    )
    .await;
    let client = Agent::Point("localhost:users:client".parse().unwrap());
    let user = measure(LOAD, bounces(sender, target, client)).await;
    (hyper, user)
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
        let floor = measure(LOAD, move || {
            let tx = tx.clone();
            Box::pin(async move {
                let (answer, answered) = oneshot::channel();
                tx.send(answer).unwrap();
                answered.await.unwrap();
            }) as Trip
        })
        .await;

        println!(
            "Ping→Pong across two stars ({} sequential for latency; {} with {} in flight for throughput)",
            LOAD.sequential, LOAD.throughput, LOAD.in_flight
        );
        report("floor: tokio mpsc + oneshot round trip", &floor, &floor);

        let dir = tempfile::tempdir().unwrap();
        let embedded = Machine::open(dir.path(), 2, Drivers::builtin(SecretKey::random().unwrap())).await.unwrap();
        let (hyper, user) = measure_machine(&embedded).await;
        report("embedded registry: HyperUser (no access check)", &hyper, &floor);
        report("embedded registry: user agent (access checked)", &user, &floor);
        // The machine's metrics recorded every hop while it was measured.
        println!(
            "embedded registry: {} Ping hops counted (200)",
            embedded.metrics().waves(WaveKind::Ping, StatusCode::OK)
        );
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
