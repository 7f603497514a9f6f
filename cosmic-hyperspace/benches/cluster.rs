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

use std::time::Duration;

use bytes::Bytes;
use cosmic_hyperspace::driver::{Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::membership::LeaseTiming;
use cosmic_space::{Agent, Ping, Point, RawCommand};
use futures_util::StreamExt;
use tests::nats::{PrivateNats, machine};
use tests::postgres::PrivatePostgres;

mod common;

use common::{Load, Trip, bounces, median_round, report};

/// Between machines: 5k one at a time, 50k with 64 in flight; the median of 3 rounds.
const LOAD: Load = Load {
    warmup: 500,
    sequential: 5_000,
    throughput: 50_000,
    in_flight: 64,
};
const ROUNDS: usize = 3;

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
        let floor = median_round(ROUNDS, LOAD, move || {
            let requester = requester.clone();
            Box::pin(async move {
                requester
                    .request("floor", Bytes::from_static(b"ping"))
                    .await
                    .unwrap();
            }) as Trip
        })
        .await;

        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut machines = Vec::new();
        for (name, dir) in ["bench-a", "bench-b"].into_iter().zip(&dirs) {
            let (nats, timing) = (nats.url(), LeaseTiming::default());
            let drivers = Drivers::builtin(SecretKey::random().unwrap());
            let machine = machine(&nats, "bench", &url, name, dir.path(), drivers, timing);
            machines.push(machine.await);
        }
        let [a, b] = <[Machine; 2]>::try_from(machines).unwrap();
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
        let cross = median_round(ROUNDS, LOAD, bounces(sender, target, Agent::HyperUser)).await;
        println!(
            "Ping→Pong between machines over NATS ({} one at a time for latency, {} with {} in \
             flight; median of {ROUNDS} rounds)",
            LOAD.sequential, LOAD.throughput, LOAD.in_flight
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
