//! Benchmarks for the SPEC §15 registry targets: durable creates (≥ 5k/s sustained) and
//! `select **<Kind>` over 100k particles (≤ 50 ms), each beside a baseline measured in the
//! same run, with a summary of medians and ratios printed at the end.
//!
//! - creates: `register` one after another and with 64 in flight (group commit), against a
//!   raw redb insert + durable commit of the same encoded record (one per commit, and 64 per
//!   commit — the best group commit can do);
//! - select: `localhost:**<Mechtron>`, `**<Mechtron>` and `*<Space>:*<App>:*<Mechtron>`
//!   (kinds of ancestors) over ≈110k particles (100k Mechtrons under spaces and apps, 10k
//!   Users under user bases), against a plain iteration of the same records in a `BTreeMap`
//!   that clones the stub of every record the selector wants (no matching at all), and
//!   against matching with a `PointHierarchy` built per candidate.
//!
//! `cargo bench -p cosmic-hyperspace --bench registry`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cosmic_hyperspace::registry::{
    EmbeddedRegistry, Entry, ParticleRecord, Registration, Registry,
};
use cosmic_space::{
    CreateStrategy, Kind, Point, PointHierarchy, Properties, PropertyChanges, Selector, Status,
    Stub, wire,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::{Database, TableDefinition};
use tokio::runtime::Runtime;

/// Per-iteration times (seconds) of every measured sample, by benchmark, for the summary.
static SAMPLES: Mutex<BTreeMap<&'static str, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, elapsed: Duration, iters: u64) {
    let per = elapsed.as_secs_f64() / iters.max(1) as f64;
    SAMPLES.lock().unwrap().entry(name).or_default().push(per);
}

fn median(name: &str) -> Option<f64> {
    let samples = SAMPLES.lock().unwrap();
    let mut values = samples.get(name)?.clone();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn registration(point: Point, kind: Kind) -> Registration {
    Registration {
        point,
        kind,
        owner: Point::hyperuser(),
        properties: PropertyChanges::new(),
        strategy: CreateStrategy::Commit,
        status: Status::Pending,
    }
}

fn bootstrap(rt: &Runtime, registry: &EmbeddedRegistry, spaces: &[&str]) {
    rt.block_on(async {
        registry
            .register(registration(Point::root(), Kind::Root))
            .await
            .unwrap();
        for space in spaces {
            registry
                .register(registration(Point::space(space).unwrap(), Kind::Space))
                .await
                .unwrap();
        }
    });
}

const RAW: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("raw");

fn raw_record(point: Point) -> ParticleRecord {
    ParticleRecord {
        point,
        kind: Kind::Mechtron,
        status: Status::Pending,
        owner: Point::hyperuser(),
        properties: Properties::new(),
        location: None,
    }
}

/// Inserts `count` encoded records into a raw redb table, `per_commit` per durable commit.
fn raw_inserts(db: &Database, parent: &Point, next: &AtomicU64, count: u64, per_commit: u64) {
    let mut left = count;
    while left > 0 {
        let n = left.min(per_commit);
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(RAW).unwrap();
            for _ in 0..n {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let point = parent.push_base(&format!("w-{i}")).unwrap();
                let bytes = wire::encode(&raw_record(point.clone())).unwrap();
                table
                    .insert(point.to_string().as_str(), bytes.as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
        left -= n;
    }
}

fn creates(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(EmbeddedRegistry::open(&dir.path().join("registry.redb")).unwrap());
    bootstrap(&rt, &registry, &["localhost"]);
    let parent: Point = "localhost".parse().unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let raw = Database::create(dir.path().join("raw.redb")).unwrap();

    let mut group = c.benchmark_group("registry create (durable)");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("register, one at a time", |b| {
        b.iter_custom(|iters| {
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let point = parent.push_base(&format!("w-{i}")).unwrap();
                    registry
                        .register(registration(point, Kind::Mechtron))
                        .await
                        .unwrap();
                }
                start.elapsed()
            });
            record("create sequential", elapsed, iters);
            elapsed
        })
    });
    group.bench_function("baseline: raw redb insert + commit, one per commit", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            raw_inserts(&raw, &parent, &next, iters, 1);
            let elapsed = start.elapsed();
            record("raw sequential", elapsed, iters);
            elapsed
        })
    });
    group.bench_function("register, 64 in flight", |b| {
        b.iter_custom(|iters| {
            let elapsed = rt.block_on(async {
                let first = next.fetch_add(iters, Ordering::Relaxed);
                let cursor = Arc::new(AtomicU64::new(first));
                let end = first + iters;
                let start = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..64 {
                    let registry = Arc::clone(&registry);
                    let cursor = Arc::clone(&cursor);
                    let parent = parent.clone();
                    tasks.push(tokio::spawn(async move {
                        loop {
                            let i = cursor.fetch_add(1, Ordering::Relaxed);
                            if i >= end {
                                break;
                            }
                            let point = parent.push_base(&format!("w-{i}")).unwrap();
                            registry
                                .register(registration(point, Kind::Mechtron))
                                .await
                                .unwrap();
                        }
                    }));
                }
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            });
            record("create 64 in flight", elapsed, iters);
            elapsed
        })
    });
    group.bench_function("baseline: raw redb insert, 64 per commit", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            raw_inserts(&raw, &parent, &next, iters, 64);
            let elapsed = start.elapsed();
            record("raw 64 per commit", elapsed, iters);
            elapsed
        })
    });
    group.finish();
}

const SPACES: [&str; 10] = [
    "localhost",
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
    "s6",
    "s7",
    "s8",
    "s9",
];
const APPS_PER_SPACE: usize = 10;
const MECHTRONS_PER_APP: usize = 900;
const MECHTRONS_PER_SPACE: usize = 1000;
const USERS_PER_SPACE: usize = 1000;

/// Every particle of the select benchmark below the spaces, parents first: 100k Mechtrons
/// and 10k Users (plus their apps and user bases).
fn population() -> Vec<(Point, Kind)> {
    let mut all = Vec::new();
    for space in SPACES {
        let space = Point::space(space).unwrap();
        for a in 0..APPS_PER_SPACE {
            let app = space.push_base(&format!("app-{a}")).unwrap();
            all.push((app.clone(), Kind::App));
            for m in 0..MECHTRONS_PER_APP {
                all.push((app.push_base(&format!("m-{m}")).unwrap(), Kind::Mechtron));
            }
        }
        for m in 0..MECHTRONS_PER_SPACE {
            all.push((space.push_base(&format!("m-{m}")).unwrap(), Kind::Mechtron));
        }
        let users = space.push_base("users").unwrap();
        all.push((users.clone(), Kind::UserBase(None)));
        for u in 0..USERS_PER_SPACE {
            all.push((users.push_base(&format!("u-{u}")).unwrap(), Kind::User));
        }
    }
    all
}

fn select(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    let setup = Instant::now();
    let registry = EmbeddedRegistry::open(&path).unwrap();
    bootstrap(&rt, &registry, &SPACES);
    let population = population();
    rt.block_on(async {
        for chunk in population.chunks(10_000) {
            let entries = chunk
                .iter()
                .map(|(point, kind)| Entry {
                    registration: registration(point.clone(), kind.clone()),
                    content: None,
                })
                .collect();
            registry.register_all(entries).await.unwrap();
        }
    });
    let total = rt
        .block_on(registry.census())
        .unwrap()
        .values()
        .sum::<u64>();
    println!(
        "select setup: {total} particles registered in {:.2?}",
        setup.elapsed()
    );
    // The baseline's copy of the same records.
    let mut map: BTreeMap<Point, ParticleRecord> = BTreeMap::new();
    let spaces = SPACES
        .iter()
        .map(|s| (Point::space(s).unwrap(), Kind::Space));
    for (point, kind) in spaces.chain(population) {
        let record = rt.block_on(registry.record(&point)).unwrap();
        assert_eq!(record.kind, kind);
        map.insert(point, record);
    }

    let mut group = c.benchmark_group("registry select over 110k");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (text, name, want) in [
        ("localhost:**<Mechtron>", "select localhost", 10_000),
        ("**<Mechtron>", "select all", 100_000),
        ("*<Space>:*<App>:*<Mechtron>", "select kinds", 90_000),
    ] {
        let selector: Selector = text.parse().unwrap();
        let prefix = selector.literal_prefix();
        assert_eq!(
            rt.block_on(registry.select(&selector)).unwrap().len(),
            want,
            "{text}"
        );
        group.bench_function(format!("select {text}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(rt.block_on(registry.select(black_box(&selector))).unwrap());
                }
                let elapsed = start.elapsed();
                record(name, elapsed, iters);
                elapsed
            })
        });
        group.bench_function(
            format!("baseline: iterate the map, clone Mechtron stubs ({text})"),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let stubs: Vec<Stub> = scan(&map, prefix.as_ref())
                            .filter(|record| {
                                record.kind == Kind::Mechtron
                                    && (name != "select kinds"
                                        || record.point.segments().len() == 3)
                            })
                            .map(ParticleRecord::stub)
                            .collect();
                        assert_eq!(stubs.len(), want);
                        black_box(stubs);
                    }
                    let elapsed = start.elapsed();
                    record(baseline_name(name), elapsed, iters);
                    elapsed
                })
            },
        );
        group.bench_function(
            format!("naive: PointHierarchy per candidate ({text})"),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let stubs: Vec<Stub> = scan(&map, prefix.as_ref())
                            .filter(|record| {
                                let mut kinds: Vec<Kind> = record
                                    .point
                                    .ancestors()
                                    .skip(1)
                                    .map(|a| map[&a].kind.clone())
                                    .collect();
                                if !record.point.is_root() {
                                    kinds.push(record.kind.clone());
                                }
                                let hierarchy =
                                    PointHierarchy::new(record.point.clone(), kinds).unwrap();
                                selector.matches(&hierarchy)
                            })
                            .map(ParticleRecord::stub)
                            .collect();
                        assert_eq!(stubs.len(), want);
                        black_box(stubs);
                    }
                    let elapsed = start.elapsed();
                    record(naive_name(name), elapsed, iters);
                    elapsed
                })
            },
        );
    }
    group.finish();
    drop(registry);
    let _ = std::fs::remove_file(Path::new(&path));
}

/// The records at or below `prefix` (all of them for `None`), in point order.
fn scan<'a>(
    map: &'a BTreeMap<Point, ParticleRecord>,
    prefix: Option<&Point>,
) -> Box<dyn Iterator<Item = &'a ParticleRecord> + 'a> {
    match prefix {
        Some(prefix) => {
            let prefix = prefix.clone();
            Box::new(
                map.range(prefix.clone()..)
                    .take_while(move |(point, _)| point.is_within(&prefix))
                    .map(|(_, record)| record),
            )
        }
        None => Box::new(map.values()),
    }
}

fn baseline_name(name: &str) -> &'static str {
    match name {
        "select localhost" => "baseline localhost",
        "select kinds" => "baseline kinds",
        _ => "baseline all",
    }
}

fn naive_name(name: &str) -> &'static str {
    match name {
        "select localhost" => "naive localhost",
        "select kinds" => "naive kinds",
        _ => "naive all",
    }
}

fn summary(_: &mut Criterion) {
    let ms = |s: f64| s * 1e3;
    println!("\n== registry: SPEC §15 summary (medians of per-sample means) ==");
    if let (Some(seq), Some(raw)) = (median("create sequential"), median("raw sequential")) {
        println!(
            "create, one at a time : {:8.1} creates/s ({:.3} ms each); raw redb commit per \
             insert {:8.1}/s; ratio to baseline {:.2}x the time",
            1.0 / seq,
            ms(seq),
            1.0 / raw,
            seq / raw
        );
    }
    if let (Some(par), Some(raw)) = (median("create 64 in flight"), median("raw 64 per commit")) {
        println!(
            "create, 64 in flight  : {:8.1} creates/s ({:.1} µs each); raw redb 64 per \
             commit {:8.1}/s; ratio to baseline {:.2}x the time   [target ≥ 5000/s]",
            1.0 / par,
            par * 1e6,
            1.0 / raw,
            par / raw
        );
    }
    for (name, baseline, naive, text) in [
        (
            "select localhost",
            "baseline localhost",
            "naive localhost",
            "localhost:**<Mechtron> (10k of 11k)",
        ),
        (
            "select all",
            "baseline all",
            "naive all",
            "**<Mechtron> (100k of 110k)",
        ),
        (
            "select kinds",
            "baseline kinds",
            "naive kinds",
            "*<Space>:*<App>:*<Mechtron> (90k of 110k)",
        ),
    ] {
        if let (Some(got), Some(base), Some(slow)) = (median(name), median(baseline), median(naive))
        {
            println!(
                "select {text:42}: {:7.2} ms; map iteration {:7.2} ms ({:.2}x); hierarchy \
                 per candidate {:7.2} ms   [target ≤ 50 ms]",
                ms(got),
                ms(base),
                got / base,
                ms(slow)
            );
        }
    }
}

criterion_group!(benches, creates, select, summary);
criterion_main!(benches);
