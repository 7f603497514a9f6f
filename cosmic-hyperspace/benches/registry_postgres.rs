//! Benchmarks for the SPEC §15 PostgreSQL registry targets (≥ 10k creates/s with 64 in flight,
//! a point lookup p50 ≤ 300 µs), on a private server on loopback (fsync off: the server's
//! disk is not what is measured), each beside the floor measured in the same run: a raw
//! `SELECT 1` round trip on one tokio-postgres connection.
//!
//! - `SELECT 1` p50, one at a time, and its rate with 64 in flight on one connection
//!   (pipelined);
//! - `record` p50 (a point lookup through the pool);
//! - creates (`register`, durable: each commits) one at a time and with 64 in flight (64
//!   callers on the default pool of 16 connections: more connections were slower on 2 cores);
//! - `select **<Mechtron>` over ≈110k particles (100k Mechtrons, 10k Users), beside a raw
//!   fetch of every row's bytes.
//!
//! Figures are medians of several rounds. `cargo bench -p cosmic-hyperspace --bench
//! registry_postgres` (about a minute or two, most of it filling 110k particles).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmic_hyperspace::registry::{Entry, PgConfig, PgRegistry, Registration, Registry};
use cosmic_space::{CreateStrategy, Kind, Point, PropertyChanges, Selector, Status};
use tests::postgres::PrivatePostgres;

const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 5;

fn registration(point: Point, kind: &str) -> Registration {
    Registration {
        point,
        kind: kind.parse::<Kind>().unwrap(),
        owner: Point::hyperuser(),
        properties: PropertyChanges::new(),
        strategy: CreateStrategy::Commit,
        status: Status::Pending,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(d: f64) -> String {
    format!("{:.0} µs", d * 1e6)
}

/// The p50 of `n` calls of `op`, one at a time.
async fn p50<F, Fut>(n: usize, mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i).await;
        times.push(start.elapsed().as_secs_f64());
    }
    median(times)
}

fn main() {
    let server = PrivatePostgres::start();
    let url = server.database();
    let select_url = server.database();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&url, &select_url));
}

async fn run(url: &str, select_url: &str) {
    let registry = Arc::new(
        PgRegistry::connect_with(
            url,
            PgConfig {
                pool_size: PgConfig::default().pool_size,
                wait: Duration::from_secs(30),
            },
        )
        .await
        .unwrap(),
    );
    // The floor: one raw connection.
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    let floor = median(
        futures_rounds(|| {
            let client = client.clone();
            async move {
                p50(2000, |_| {
                    let client = client.clone();
                    async move {
                        client.query_one("SELECT 1", &[]).await.unwrap();
                    }
                })
                .await
            }
        })
        .await,
    );
    let floor_flight = median(
        futures_rounds(|| {
            let client = client.clone();
            async move {
                let n = 20_000;
                let start = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..IN_FLIGHT {
                    let client = client.clone();
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..n / IN_FLIGHT {
                            client.query_one("SELECT 1", &[]).await.unwrap();
                        }
                    }));
                }
                for task in tasks {
                    task.await.unwrap();
                }
                n as f64 / start.elapsed().as_secs_f64()
            }
        })
        .await,
    );
    println!("== registry in PostgreSQL: SPEC §15 (medians of {ROUNDS} rounds) ==");
    println!(
        "floor: SELECT 1 p50 {} one at a time; {:.0}/s with {IN_FLIGHT} in flight on one connection",
        micros(floor),
        floor_flight
    );

    registry
        .register(registration(Point::root(), "Root"))
        .await
        .unwrap();
    let space = Point::space("bench").unwrap();
    registry
        .register(registration(space.clone(), "Space"))
        .await
        .unwrap();

    let lookup = median(
        futures_rounds(|| {
            let registry = registry.clone();
            let space = space.clone();
            async move {
                p50(2000, |_| {
                    let registry = registry.clone();
                    let space = space.clone();
                    async move {
                        registry.record(&space).await.unwrap();
                    }
                })
                .await
            }
        })
        .await,
    );
    println!(
        "record (point lookup) p50 {} = {:.1}× the floor (target ≤ 300 µs)",
        micros(lookup),
        lookup / floor
    );

    let mut round = 0usize;
    let mut sequential = Vec::new();
    let mut flight = Vec::new();
    for _ in 0..ROUNDS {
        round += 1;
        let n = 500;
        let start = Instant::now();
        for i in 0..n {
            let point = space.push_base(&format!("seq-{round}-{i}")).unwrap();
            registry
                .register(registration(point, "Mechtron"))
                .await
                .unwrap();
        }
        sequential.push(n as f64 / start.elapsed().as_secs_f64());

        let n = 6400;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..IN_FLIGHT {
            let registry = registry.clone();
            let space = space.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..n / IN_FLIGHT {
                    let point = space.push_base(&format!("par-{round}-{t}-{i}")).unwrap();
                    registry
                        .register(registration(point, "Mechtron"))
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        flight.push(n as f64 / start.elapsed().as_secs_f64());
    }
    let sequential = median(sequential);
    let flight = median(flight);
    println!(
        "creates one at a time: {sequential:.0}/s ({} each = {:.1}× the floor)",
        micros(1.0 / sequential),
        (1.0 / sequential) / floor
    );
    println!(
        "creates with {IN_FLIGHT} in flight: {flight:.0}/s (target ≥ 10k/s; raw SELECT 1 in flight: {floor_flight:.0}/s)"
    );

    // A fresh database for the select: 10 spaces × 10 apps × 1000 Mechtrons, 10 × 1000 Users.
    drop(registry);
    let registry = Arc::new(PgRegistry::connect(select_url).await.unwrap());
    populate(&registry).await;
    let selector: Selector = "**<Mechtron>".parse().unwrap();
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        found = registry.select(&selector).await.unwrap().len();
        times.push(start.elapsed().as_secs_f64());
    }
    let select = median(times);
    // The floor of a select: fetching the same rows' bytes on a raw connection, no decoding.
    let (raw, connection) = tokio_postgres::connect(select_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut fetches = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let rows = raw
            .query("SELECT record FROM particles", &[])
            .await
            .unwrap();
        black_box(rows.len());
        fetches.push(start.elapsed().as_secs_f64());
    }
    let fetch = median(fetches);
    println!(
        "select **<Mechtron>: {found} matched in {:.1} ms, beside {:.1} ms to fetch every row's \
         bytes raw ({:.1}×; embedded target ≤ 50 ms)",
        select * 1e3,
        fetch * 1e3,
        select / fetch
    );
}

/// `ROUNDS` results of `round`.
async fn futures_rounds<F, Fut, T>(mut round: F) -> Vec<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut results = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        results.push(round().await);
    }
    results
}

/// Registers 10 spaces, each with 10 apps of 1000 Mechtrons and a user base of 1000 Users,
/// a thousand at a time, eight batches in flight.
async fn populate(registry: &Arc<PgRegistry>) {
    let start = Instant::now();
    let mut batches: Vec<Vec<Entry>> = Vec::new();
    let entry = |point: Point, kind: &str| Entry {
        registration: registration(point, kind),
        content: None,
    };
    let mut tops = vec![entry(Point::root(), "Root")];
    for s in 0..10 {
        let space = Point::space(&format!("space-{s}")).unwrap();
        tops.push(entry(space.clone(), "Space"));
        let users = space.push_base("users").unwrap();
        tops.push(entry(users.clone(), "UserBase"));
        let mut batch = Vec::new();
        for u in 0..1000 {
            batch.push(entry(
                users.push_base(&format!("user-{u}")).unwrap(),
                "User",
            ));
        }
        batches.push(batch);
        for a in 0..10 {
            let app = space.push_base(&format!("app-{a}")).unwrap();
            tops.push(entry(app.clone(), "App"));
            let mut batch = Vec::new();
            for m in 0..1000 {
                batch.push(entry(app.push_base(&format!("m-{m}")).unwrap(), "Mechtron"));
            }
            batches.push(batch);
        }
    }
    registry.register_all(tops).await.unwrap();
    let batches = Arc::new(std::sync::Mutex::new(batches));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let registry = registry.clone();
        let batches = batches.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(batch) = batches.lock().unwrap().pop() else {
                    break;
                };
                registry.register_all(batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "(filled 110k particles in {:.1} s, 1000 per register_all)",
        start.elapsed().as_secs_f64()
    );
}
