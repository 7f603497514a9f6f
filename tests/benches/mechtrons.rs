//! Benchmarks of real wasm mechtrons (the guest fixtures, built from Rust with the SDK) in a
//! whole machine, against SPEC §15, each printed beside its floor from the same run:
//!
//! - Ping→Pong into a mechtron (host → star → Field → guest → back): p50/p99 one at a time,
//!   and round trips per second with many in flight — beside a raw wasmer call of an empty
//!   export of the same wasm on one thread (the floor);
//! - create → Ready, with the compiled module cached and with a cold cache (a compile);
//! - 10,000 live mechtrons: resident memory and mappings per mechtron, and every one of them
//!   answering afterwards.
//!
//! Run: `cargo bench -p tests --bench mechtrons` (`MECHTRONS=N` changes the 10,000).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cosmic_hyperspace::driver::{SecretKey, quiet_log};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::wasm::{FloorReport, WasmConfig, WasmHost, footprint};
use cosmic_space::{Agent, Method, Ping, Point, RawCommand, Substance, WaitTime};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CONFIG: &str = "localhost:repo:fixtures:1.0.0:/config";

fn fixtures_wasm() -> Result<Vec<u8>> {
    Ok(std::fs::read(tests::guest_wasm("guest_fixtures"))?)
}

/// A machine on a fresh data directory, with the fixtures published as
/// `localhost:repo:fixtures:1.0.0`.
async fn fixtures_machine(home: &Path) -> Result<Machine> {
    let drivers = Machine::standard_drivers(
        home,
        quiet_log(),
        SecretKey::random()?,
        WasmConfig::default(),
    )?;
    let machine = Machine::open(home, 2, drivers).await?;
    command(&machine, "create localhost<Space>", None).await?;
    command(&machine, "create localhost:repo<Repo>", None).await?;
    command(
        &machine,
        "publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0",
        Some(tests::fixtures_bundle()),
    )
    .await?;
    Ok(machine)
}

async fn command(machine: &Machine, line: &str, zip: Option<Vec<u8>>) -> Result<()> {
    let mut raw = RawCommand::new(line);
    if let Some(zip) = zip {
        raw = raw.with_transfer("bundle.zip", zip);
    }
    let ping = Ping::command(Point::hyperuser(), raw);
    let core = machine.ping(Agent::HyperUser, ping).await.core;
    if core.is_ok() {
        Ok(())
    } else {
        Err(format!("{line}: {} {:?}", core.status, core.error_message()).into())
    }
}

fn create_line(point: &str, name: &str) -> String {
    format!("create {point}<Mechtron>{{ +config={CONFIG}/{name}.mechtron }}")
}

fn hello(to: &Point) -> Result<Ping> {
    Ok(Ping::new(
        Point::hyperuser(),
        to.clone(),
        Method::ext("Hello")?,
        Substance::from("bench"),
    )
    .with_wait(WaitTime::from_secs(30)))
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The floor: a raw wasmer call of the fixtures' empty export, on one thread.
fn floor() -> Result<FloorReport> {
    let host = WasmHost::new(WasmConfig::default())?;
    let module = host.compile(&fixtures_wasm()?)?.module;
    let mut samples = host.raw_call_floor(&module, "bench_empty", 20_000)?;
    Ok(FloorReport::of(&mut samples))
}

async fn ping_pong(machine: &Arc<Machine>, floor: &FloorReport) -> Result<()> {
    command(machine, &create_line("localhost:hello", "hello"), None).await?;
    let to: Point = "localhost:hello".parse()?;
    for _ in 0..2_000 {
        machine.ping(Agent::HyperUser, hello(&to)?).await;
    }
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let ping = hello(&to)?;
        let start = Instant::now();
        let pong = machine.ping(Agent::HyperUser, ping).await;
        samples.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        if !pong.core.is_ok() {
            return Err(format!("{} {:?}", pong.core.status, pong.core.error_message()).into());
        }
    }
    let one = FloorReport::of(&mut samples);
    println!(
        "ping→pong into a wasm mechtron, one at a time: p50 {:.1} µs, p99 {:.1} µs   (SPEC p50 ≤ 25 µs)",
        micros(one.p50_ns),
        micros(one.p99_ns)
    );
    println!(
        "  floor, a raw wasmer call of an empty export: p50 {:.2} µs, p99 {:.2} µs  (ratio p50 {:.0}×)",
        micros(floor.p50_ns),
        micros(floor.p99_ns),
        one.p50_ns as f64 / floor.p50_ns.max(1) as f64
    );
    // Throughput: several mechtrons (guests of one mechtron run one wave at a time), many
    // waves in flight.
    let targets: Vec<Point> = (0..8)
        .map(|i| format!("localhost:hello-{i}").parse())
        .collect::<std::result::Result<_, _>>()?;
    for target in &targets {
        command(machine, &create_line(&target.to_string(), "hello"), None).await?;
    }
    for in_flight in [8usize, 64, 256] {
        let total = 100_000usize;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for lane in 0..in_flight {
            let machine = machine.clone();
            let to = targets[lane % targets.len()].clone();
            let count = total / in_flight;
            tasks.push(tokio::spawn(async move {
                let mut failed = 0usize;
                for _ in 0..count {
                    let Ok(ping) = hello(&to) else { continue };
                    if !machine.ping(Agent::HyperUser, ping).await.core.is_ok() {
                        failed += 1;
                    }
                }
                (count, failed)
            }));
        }
        let (mut done, mut failed) = (0usize, 0usize);
        for task in tasks {
            let (count, bad) = task.await?;
            done += count;
            failed += bad;
        }
        let per_second = done as f64 / start.elapsed().as_secs_f64();
        println!(
            "ping→pong into 8 wasm mechtrons, {in_flight} in flight: {:.0} round trips/s, {failed} failed   (SPEC ≥ 50k/s)",
            per_second
        );
    }
    Ok(())
}

async fn create_to_ready(machine: &Machine) -> Result<()> {
    let mut hits = Vec::new();
    for i in 0..300 {
        let start = Instant::now();
        command(
            machine,
            &create_line(&format!("localhost:warm-{i}"), "counter"),
            None,
        )
        .await?;
        hits.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    let hit = FloorReport::of(&mut hits);
    let mut misses = Vec::new();
    for _ in 0..5 {
        let home = tempfile::tempdir()?;
        let cold = fixtures_machine(home.path()).await?;
        let start = Instant::now();
        command(&cold, &create_line("localhost:cold", "counter"), None).await?;
        misses.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        cold.shutdown().await;
    }
    let miss = FloorReport::of(&mut misses);
    println!(
        "create → Ready (the whole create command), module cached: p50 {:.0} µs, p99 {:.0} µs   (SPEC ≤ 5 ms)",
        micros(hit.p50_ns),
        micros(hit.p99_ns)
    );
    println!(
        "create → Ready, cold cache (compile): p50 {:.1} ms over {} machines",
        micros(miss.p50_ns) / 1e3,
        misses.len()
    );
    Ok(())
}

async fn live_mechtrons(machine: &Arc<Machine>, count: usize) -> Result<()> {
    let (rss_before, maps_before) = footprint();
    let start = Instant::now();
    let lanes = 16usize;
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let machine = machine.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = lane;
            while i < count {
                let line = create_line(&format!("localhost:live-{i}"), "counter");
                if let Err(err) = command(&machine, &line, None).await {
                    return Err(err.to_string());
                }
                i += lanes;
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    let created = start.elapsed();
    let (rss_after, maps_after) = footprint();
    // Every one answers, and keeps its own state.
    let mut answered = 0usize;
    for i in 0..count {
        let to: Point = format!("localhost:live-{i}").parse()?;
        let mut ping = hello(&to)?;
        ping.core.method = Method::ext("Count")?;
        let pong = machine.ping(Agent::HyperUser, ping).await;
        if pong.core.body == Substance::from("1") {
            answered += 1;
        }
    }
    println!(
        "{count} live mechtrons: created in {:.1} s ({:.0}/s); {:.1} KiB resident and {:.2} mappings per mechtron; {answered} of {count} answered with their own count   (SPEC ≥ 10k)",
        created.as_secs_f64(),
        count as f64 / created.as_secs_f64(),
        rss_after.saturating_sub(rss_before) as f64 / count as f64,
        maps_after.saturating_sub(maps_before) as f64 / count as f64,
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::var("MECHTRONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 100 } else { 10_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let floor = floor()?;
        let home = tempfile::tempdir()?;
        let machine = Arc::new(fixtures_machine(home.path()).await?);
        if !quick {
            ping_pong(&machine, &floor).await?;
            create_to_ready(&machine).await?;
        }
        live_mechtrons(&machine, count).await?;
        Ok(())
    })
}
