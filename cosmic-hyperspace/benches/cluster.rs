//! Ping→Pong between machines over NATS (SPEC §15: p50 ≤ 150 µs, p99 ≤ 500 µs one at a time;
//! ≥ 50k/s with 64 in flight), beside the floor measured in the same run: raw NATS
//! request/reply between two clients of the same private server (a responder that answers
//! each request with its payload).
//!
//! The two machines run in this process, each with its own NATS connection, fabric, stars and
//! lease, on one private `nats-server` and one private PostgreSQL database: every wave between
//! them goes through the server on loopback, as between two processes.
//!
//! `cargo bench -p cosmic-hyperspace --bench cluster`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cosmic_hyperspace::fabric::{NatsFabric, NatsSettings};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::membership::LeaseTiming;
use cosmic_hyperspace::registry::PgRegistry;
use cosmic_space::{Agent, CmdMethod, Method, Ping, Point, RawCommand, StatusCode, Surface};
use futures_util::StreamExt;
use tests::nats::PrivateNats;
use tests::postgres::PrivatePostgres;

const SEQUENTIAL: usize = 5_000;
const THROUGHPUT: usize = 50_000;
const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 3;

struct Figures {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

/// One round trip, as a boxed future.
type Trip = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Latency of `SEQUENTIAL` round trips one at a time, then the rate of `THROUGHPUT` with
/// `IN_FLIGHT` in flight; the median round of `ROUNDS`.
async fn measure(trip: Arc<dyn Fn() -> Trip + Send + Sync>) -> Figures {
    for _ in 0..500 {
        trip().await;
    }
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let mut latencies = Vec::with_capacity(SEQUENTIAL);
        for _ in 0..SEQUENTIAL {
            let start = Instant::now();
            trip().await;
            latencies.push(start.elapsed());
        }
        latencies.sort();
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..THROUGHPUT {
            set.spawn(trip());
            while set.len() >= IN_FLIGHT {
                set.join_next().await.unwrap().unwrap();
            }
        }
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
        rounds.push(Figures {
            p50: latencies[latencies.len() / 2],
            p99: latencies[latencies.len() * 99 / 100],
            per_second: THROUGHPUT as f64 / start.elapsed().as_secs_f64(),
        });
    }
    rounds.sort_by_key(|figures| figures.p50);
    rounds.swap_remove(ROUNDS / 2)
}

fn report(name: &str, figures: &Figures, floor: &Figures) {
    println!(
        "{name:<44} p50 {:>7.1} µs  p99 {:>7.1} µs  {:>8.0}/s   p50 ×{:.2} floor, throughput ×{:.2} floor",
        figures.p50.as_secs_f64() * 1e6,
        figures.p99.as_secs_f64() * 1e6,
        figures.per_second,
        figures.p50.as_secs_f64() / floor.p50.as_secs_f64(),
        figures.per_second / floor.per_second,
    );
}

async fn machine(name: &str, nats: &str, url: &str, dir: &std::path::Path) -> Machine {
    let fabric = NatsFabric::connect(&NatsSettings::new(nats, "bench", name))
        .await
        .unwrap();
    let registry = Arc::new(PgRegistry::connect(url).await.unwrap());
    Machine::builder(dir)
        .name(name)
        .stars(2)
        .registry(registry.clone())
        .fabric(fabric)
        .membership(registry, LeaseTiming::default())
        .build()
        .await
        .unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let nats = tokio::task::spawn_blocking(PrivateNats::start)
            .await
            .unwrap();
        let postgres = tokio::task::spawn_blocking(PrivatePostgres::start)
            .await
            .unwrap();
        let url = postgres.database();

        // The floor: raw request/reply between two clients of the server.
        let responder = async_nats::connect(nats.url()).await.unwrap();
        let mut requests = responder.subscribe("floor").await.unwrap();
        responder.flush().await.unwrap();
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    responder.publish(reply, request.payload).await.unwrap();
                }
            }
        });
        let requester = async_nats::connect(nats.url()).await.unwrap();
        let floor = measure(Arc::new(move || {
            let requester = requester.clone();
            Box::pin(async move {
                requester
                    .request("floor", Bytes::from_static(b"ping"))
                    .await
                    .unwrap();
            }) as Trip
        }))
        .await;

        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let a = machine("bench-a", &nats.url(), &url, dirs[0].path()).await;
        let b = machine("bench-b", &nats.url(), &url, dirs[1].path()).await;
        while a.live_stars().len() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ping = Ping::command(
            Point::hyperuser(),
            RawCommand::new("create localhost<Space>"),
        );
        assert!(a.ping(Agent::HyperUser, ping).await.core.is_ok());
        // A target placed on B, pinged from A's star.
        let mut target = None;
        for i in 0..32 {
            let point: Point = format!("localhost:target-{i}").parse().unwrap();
            let ping = Ping::command(
                Point::hyperuser(),
                RawCommand::new(format!("create {point}<Base>")),
            );
            assert!(a.ping(Agent::HyperUser, ping).await.core.is_ok());
            let host = a.registry().location(&point).await.unwrap().unwrap();
            if host.constellation == "bench-b" {
                target = Some(point);
                break;
            }
        }
        let target = target.expect("a target on bench-b");
        let sender = a.stars()[0].clone();
        let cross = measure(Arc::new(move || {
            let mut ping = Ping::new(
                Surface::core(sender.point().clone()),
                target.clone(),
                Method::Cmd(CmdMethod::Bounce),
                (),
            );
            ping.agent = Agent::HyperUser;
            let sender = sender.clone();
            Box::pin(async move {
                let pong = sender.ping(ping).await;
                assert_eq!(pong.core.status, StatusCode::OK);
            }) as Trip
        }))
        .await;
        println!(
            "Ping→Pong between machines over NATS ({SEQUENTIAL} one at a time for latency, \
             {THROUGHPUT} with {IN_FLIGHT} in flight; median of {ROUNDS} rounds)"
        );
        report("floor: raw NATS request/reply", &floor, &floor);
        report(
            "Cmd<Bounce> from machine A to a particle on B",
            &cross,
            &floor,
        );
        a.shutdown().await;
        b.shutdown().await;
    });
}
