//! Benchmarks of the wasm host against SPEC §15, printed as figures beside a floor measured in
//! the same run:
//! - a handle call into a guest (host → worker thread → guest → back), p50/p99 and calls/s,
//!   beside a raw wasmer call of an empty export on one thread;
//! - create → Ready with the module cached (instantiate + init), p50, and loading a module
//!   from the disk cache;
//! - neighbours' latency while another guest computes for 3 s, beside their quiet latency
//!   (SPEC §15: within 50 ms p99);
//! - memory (VmRSS) and mappings (/proc/self/maps lines) per idle guest, for 1,000 and then
//!   10,000 live guests.
//!
//! Run: `cargo bench -p cosmic-hyperspace --bench wasm`.

use std::sync::Arc;
use std::time::Instant;

use cosmic_hyperspace::wasm::{
    FloorReport, Guest, GuestOutbox, GuestSpec, PongReply, WasmConfig, WasmHost, footprint,
};
use cosmic_space::{
    Details, DirectedWave, Kind, Limits, LogLevel, Method, Ping, Point, ReflectedCore, Status,
    Stub, Substance, Surface, wire,
};

struct Quiet;

impl GuestOutbox for Quiet {
    fn send(&self, _wave: DirectedWave, _reply: Option<PongReply>) {}
    fn log(&self, _point: &Point, _level: LogLevel, _message: &str) {}
}

fn data(at: u32, bytes: &[u8]) -> String {
    let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    format!("(data (i32.const {at}) \"{escaped}\")")
}

/// The counter guest of the tests: counts calls, answers `Bin(count)`.
fn counter_guest() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let reply = wire::encode(&ReflectedCore::ok(Substance::Bin(vec![0xAA; 8])))?;
    let mark = 2048 + reply.len() - 8;
    guest(
        &format!(
            "(i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (i64.const 1)))
    (i64.store (i32.const {mark}) (i64.load (i32.const 16)))
    (call $pack (i32.const 2048) (i32.const {reply_len}))",
            reply_len = reply.len()
        ),
        &data(2048, &reply),
    )
}

/// A guest busy on the host's clock for `ms` milliseconds per call (a guest computing for
/// seconds within its fuel).
fn busy_guest(ms: u64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    guest(
        &format!(
            "(local $until i64)
    (local.set $until (i64.add (call $host_now) (i64.const {ns})))
    (block $done (loop $again
      (br_if $done (i64.ge_u (call $host_now) (local.get $until)))
      (br $again)))
    (i64.const 0)",
            ns = ms * 1_000_000
        ),
        "",
    )
}

/// A guest of the mechtron ABI whose `mechtron_handle` runs `handle` (leaving an i64).
fn guest(handle: &str, extra: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let status = wire::encode(&Status::Ready)?;
    let text = format!(
        r#"(module
  (import "cosmic" "host_now" (func $host_now (result i64)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 32768))
  (func (export "mechtron_abi_version") (result i32) (i32.const 1))
  (func (export "mechtron_alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then (global.set $heap (i32.const 32768)) (local.set $at (i32.const 32768))))
    (local.get $at))
  (func (export "mechtron_dealloc") (param i32 i32))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "mechtron_init") (param i32 i32) (result i64)
    (call $pack (i32.const 1024) (i32.const {status_len})))
  (func (export "mechtron_handle") (param i32 i32) (result i64)
    {handle})
  (func (export "empty"))
  {status_data}
  {extra}
)"#,
        status_len = status.len(),
        status_data = data(1024, &status),
    );
    Ok(wat::parse_str(&text)?)
}

fn spec(n: usize) -> Result<GuestSpec, Box<dyn std::error::Error>> {
    Ok(GuestSpec::new(
        format!("localhost:bench:m{n}").parse()?,
        Limits::default(),
        Arc::new(Quiet),
    ))
}

fn details(n: usize) -> Result<Details, Box<dyn std::error::Error>> {
    Ok(Details::new(Stub {
        point: format!("localhost:bench:m{n}").parse()?,
        kind: Kind::Mechtron,
        status: Status::Init,
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = WasmConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..WasmConfig::default()
    };
    let wasm = counter_guest()?;
    let host = WasmHost::new(config.clone())?;
    let t = Instant::now();
    let module = host.compile(&wasm)?.module;
    println!("compile (miss): {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    let mut disk = Vec::new();
    for _ in 0..20 {
        let fresh = WasmHost::new(config.clone())?;
        let t = Instant::now();
        fresh.compile(&wasm)?;
        disk.push(t.elapsed().as_nanos() as u64);
    }
    println!(
        "load from disk cache: p50 {:.1} µs",
        FloorReport::of(&mut disk).p50_ns as f64 / 1e3
    );

    // Floor: raw wasmer call of an empty export, same thread.
    let mut floor = host.raw_call_floor(&module, "empty", 200_000)?;
    let floor = FloorReport::of(&mut floor);

    // Handle round trip, one at a time.
    let guest = host.instantiate(&module, spec(0)?).await?;
    guest.init(&details(0)?).await?;
    let ping = Ping::new(
        Surface::core("localhost:bench:caller".parse()?),
        Surface::core("localhost:bench:m0".parse()?),
        Method::ext("Count")?,
        Substance::Empty,
    );
    for _ in 0..2_000 {
        guest.handle(&ping).await?;
    }
    let calls = 50_000;
    let mut samples = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        guest.handle(&ping).await?;
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let serial_rate = calls as f64 / start.elapsed().as_secs_f64();
    let handle = FloorReport::of(&mut samples);
    println!(
        "handle round trip: p50 {:.2} µs, p99 {:.2} µs, {:.0} calls/s one at a time \
         (floor: raw empty call p50 {:.3} µs, p99 {:.3} µs; ratio p50 {:.0}x)",
        handle.p50_ns as f64 / 1e3,
        handle.p99_ns as f64 / 1e3,
        serial_rate,
        floor.p50_ns as f64 / 1e3,
        floor.p99_ns as f64 / 1e3,
        handle.p50_ns as f64 / floor.p50_ns.max(1) as f64,
    );

    // Many in flight: 8 guests, 8 tasks.
    let mut guests = Vec::new();
    for n in 1..=8 {
        let g = host.instantiate(&module, spec(n)?).await?;
        g.init(&details(n)?).await?;
        guests.push(Arc::new(g));
    }
    let per_task = 20_000;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for g in &guests {
        let g: Arc<Guest> = g.clone();
        let ping = ping.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                if g.handle(&ping).await.is_err() {
                    return false;
                }
            }
            true
        }));
    }
    for task in tasks {
        task.await?;
    }
    let rate = (per_task * guests.len()) as f64 / start.elapsed().as_secs_f64();
    println!("handle throughput, 8 guests in flight: {rate:.0} calls/s");

    // Neighbours beside a busy guest (SPEC §15: within 50 ms p99 of their normal latency):
    // calls to four guests, one at a time, quiet and then while a fifth computes for 3 s.
    let neighbours = |label: &'static str| {
        let guests = &guests[..4];
        let ping = &ping;
        async move {
            let mut samples = Vec::new();
            let start = Instant::now();
            while start.elapsed().as_millis() < 2_000 {
                for g in guests {
                    let t = Instant::now();
                    g.handle(ping).await?;
                    samples.push(t.elapsed().as_nanos() as u64);
                }
            }
            let report = FloorReport::of(&mut samples);
            println!(
                "neighbour calls, {label}: p50 {:.2} µs, p99 {:.2} µs ({} calls)",
                report.p50_ns as f64 / 1e3,
                report.p99_ns as f64 / 1e3,
                samples.len()
            );
            Ok::<FloorReport, Box<dyn std::error::Error>>(report)
        }
    };
    let quiet = neighbours("quiet").await?;
    let busy_module = host.compile(&busy_guest(3_000)?)?.module;
    let mut busy_spec = spec(99)?;
    busy_spec.limits = Limits::new(1 << 60, Limits::DEFAULT_MEMORY)?;
    let busy = host.instantiate(&busy_module, busy_spec).await?;
    busy.init(&details(99)?).await?;
    let busy_ping = ping.clone();
    let running = tokio::spawn(async move { busy.handle(&busy_ping).await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let beside = neighbours("beside a guest busy for 3 s").await?;
    running.await??;
    println!(
        "neighbour p99 beside a busy guest: +{:.2} ms over quiet (target ≤ 50 ms); workers now {}",
        (beside.p99_ns as f64 - quiet.p99_ns as f64) / 1e6,
        host.stats().workers
    );
    drop(guests);

    // Create → Ready from the cached module, and the cost of idle guests.
    let (rss0, maps0) = footprint();
    let mut live = Vec::new();
    let mut create = Vec::new();
    for n in 0..10_000 {
        let t = Instant::now();
        let module = host.compile(&wasm)?.module;
        let g = host.instantiate(&module, spec(n + 100)?).await?;
        let status = g.init(&details(n + 100)?).await?;
        create.push(t.elapsed().as_nanos() as u64);
        if status != Status::Ready {
            return Err(format!("guest {n} is {status}").into());
        }
        live.push(g);
        if live.len() == 1_000 || live.len() == 10_000 {
            let (rss, maps) = footprint();
            println!(
                "{} idle guests: VmRSS +{:.1} MiB ({:.1} KiB/guest), mappings +{} ({:.2}/guest)",
                live.len(),
                (rss.saturating_sub(rss0)) as f64 / 1024.0,
                (rss.saturating_sub(rss0)) as f64 / live.len() as f64,
                maps.saturating_sub(maps0),
                maps.saturating_sub(maps0) as f64 / live.len() as f64,
            );
        }
    }
    let create = FloorReport::of(&mut create);
    println!(
        "create → Ready (module cached): p50 {:.1} µs, p99 {:.1} µs",
        create.p50_ns as f64 / 1e3,
        create.p99_ns as f64 / 1e3
    );
    let t = Instant::now();
    for g in &live[..100] {
        g.handle(&ping).await?;
    }
    println!(
        "100 calls with 10,000 guests live: {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / 100.0
    );
    Ok(())
}
