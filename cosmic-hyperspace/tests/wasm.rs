//! The wasm host against hand-written WAT guests that implement the mechtron ABI (SPEC §11.3):
//! state across calls, fuel, traps, memory caps, malformed frames, the host imports, a Ping
//! between two guests with one warm worker, the module cache, and fairness: a busy guest does
//! not hold up its neighbours, a call past its timeout is stopped, a full guest refuses at
//! once and calls whose callers gave up are not started.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use cosmic_hyperspace::driver::{Drivers, MechtronDriver, RestartPolicy, SecretKey, quiet_log};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::wasm::{
    CacheSource, Guest, GuestModule, GuestOutbox, GuestSpec, PongReply, WasmConfig, WasmError,
    WasmHost,
};
use cosmic_space::{
    Agent, Details, DirectedWave, Kind, Limits, LogLevel, Method, Ping, Point, Pong, RawCommand,
    ReflectedCore, Status, StatusCode, Stub, Substance, Surface, WaitTime, wire,
};

/// Offsets in a guest's memory (one page: 64 KiB).
const STATUS_AT: u32 = 1024;
const REPLY_AT: u32 = 2048;
const EXTRA_AT: u32 = 8192;
const COUNTER_AT: u32 = 16;
const HEAP_AT: u32 = 32768;
const MARK: u8 = 0xAA;

fn data(at: u32, bytes: &[u8]) -> String {
    let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    format!("(data (i32.const {at}) \"{escaped}\")")
}

/// The reply frame `ReflectedCore::ok(Bin([MARK; n]))` and where its `n` marker bytes start.
fn reply_template(n: usize) -> Result<(Vec<u8>, u32)> {
    let frame = wire::encode(&ReflectedCore::ok(Substance::Bin(vec![MARK; n])))?;
    let at = frame.len() - n;
    assert!(frame[at..].iter().all(|b| *b == MARK));
    Ok((frame, u32::try_from(at)?))
}

/// A guest: a bump allocator, init answering Ready (a data segment holding the encoded
/// `Status::Ready`), and `handle` with the given body (which must leave an i64 on the stack).
fn guest(handle_body: &str, extra: &str) -> Result<Vec<u8>> {
    let status = wire::encode(&Status::Ready)?;
    let text = format!(
        r#"(module
  (import "cosmic" "host_send" (func $host_send (param i32 i32) (result i64)))
  (import "cosmic" "host_log" (func $host_log (param i32 i32)))
  (import "cosmic" "host_now" (func $host_now (result i64)))
  (import "cosmic" "host_random" (func $host_random (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const {HEAP_AT}))
  (func (export "mechtron_abi_version") (result i32) (i32.const 1))
  (func $alloc (export "mechtron_alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then (global.set $heap (i32.const {HEAP_AT})) (local.set $at (i32.const {HEAP_AT}))))
    (local.get $at))
  (func (export "mechtron_dealloc") (param i32 i32))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "mechtron_init") (param $ptr i32) (param $len i32) (result i64)
    (call $pack (i32.const {STATUS_AT}) (i32.const {status_len})))
  (func (export "mechtron_handle") (param $ptr i32) (param $len i32) (result i64)
    {handle_body})
  (func (export "empty"))
  {status_data}
  {extra}
)"#,
        status_len = status.len(),
        status_data = data(STATUS_AT, &status),
    );
    Ok(wat::parse_str(&text)?)
}

/// Counts calls in memory and answers `Bin(count as 8 LE bytes)`.
fn counter_guest() -> Result<Vec<u8>> {
    let (reply, mark) = reply_template(8)?;
    guest(
        &format!(
            "(i64.store (i32.const {COUNTER_AT}) (i64.add (i64.load (i32.const {COUNTER_AT})) (i64.const 1)))
             (i64.store (i32.const {at}) (i64.load (i32.const {COUNTER_AT})))
             (call $pack (i32.const {REPLY_AT}) (i32.const {len}))",
            at = REPLY_AT + mark,
            len = reply.len(),
        ),
        &data(REPLY_AT, &reply),
    )
}

/// Counts like [`counter_guest`], but traps on the second call.
fn trapper_guest() -> Result<Vec<u8>> {
    let (reply, mark) = reply_template(8)?;
    guest(
        &format!(
            "(i64.store (i32.const {COUNTER_AT}) (i64.add (i64.load (i32.const {COUNTER_AT})) (i64.const 1)))
             (if (i64.eq (i64.load (i32.const {COUNTER_AT})) (i64.const 2)) (then unreachable))
             (i64.store (i32.const {at}) (i64.load (i32.const {COUNTER_AT})))
             (call $pack (i32.const {REPLY_AT}) (i32.const {len}))",
            at = REPLY_AT + mark,
            len = reply.len(),
        ),
        &data(REPLY_AT, &reply),
    )
}

fn count_of(core: &ReflectedCore) -> Result<i64> {
    match &core.body {
        Substance::Bin(bytes) => Ok(i64::from_le_bytes(
            bytes.as_slice().try_into().context("8 bytes")?,
        )),
        other => Err(anyhow!("not a count: {other:?}")),
    }
}

#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<DirectedWave>>,
    logs: Mutex<Vec<(Point, LogLevel, String)>>,
    forward: Mutex<Option<(tokio::runtime::Handle, Arc<Guest>)>>,
}

impl GuestOutbox for Recorder {
    fn send(&self, wave: DirectedWave, reply: Option<PongReply>) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(wave.clone());
        }
        let (Some(reply), DirectedWave::Ping(ping)) = (reply, wave) else {
            return;
        };
        let forward = self.forward.lock().ok().and_then(|f| f.clone());
        match forward {
            // A real round trip into another guest, from the async world.
            Some((runtime, target)) => {
                runtime.spawn(async move {
                    let core = target.handle(&ping).await.unwrap_or_else(|e| e.to_core());
                    reply.send(ping.pong(core));
                });
            }
            // Answer from another thread.
            None => {
                std::thread::spawn(move || reply.send(ping.pong(ReflectedCore::ok("pong!"))));
            }
        }
    }

    fn log(&self, point: &Point, level: LogLevel, message: &str) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push((point.clone(), level, message.to_string()));
        }
    }
}

fn host(workers: usize) -> Result<WasmHost> {
    Ok(WasmHost::new(WasmConfig {
        workers,
        ..WasmConfig::default()
    })?)
}

fn spec(name: &str, limits: Limits, outbox: Arc<Recorder>) -> Result<GuestSpec> {
    Ok(GuestSpec::new(
        format!("localhost:{name}").parse()?,
        limits,
        outbox,
    ))
}

fn details(name: &str) -> Result<Details> {
    let mut details = Details::new(Stub {
        point: format!("localhost:{name}").parse()?,
        kind: Kind::Mechtron,
        status: Status::Init,
    });
    details.properties.set("mechtron", "counter");
    Ok(details)
}

fn ping_to(name: &str) -> Result<Ping> {
    Ok(Ping::new(
        Surface::core("localhost:caller".parse()?),
        Surface::core(format!("localhost:{name}").parse()?),
        Method::ext("Count")?,
        Substance::Empty,
    ))
}

async fn started(
    host: &WasmHost,
    module: &GuestModule,
    name: &str,
    limits: Limits,
) -> Result<Guest> {
    let guest = host
        .instantiate(module, spec(name, limits, Arc::new(Recorder::default()))?)
        .await?;
    assert_eq!(guest.init(&details(name)?).await?, Status::Ready);
    Ok(guest)
}

#[tokio::test]
async fn state_survives_between_calls() -> Result<()> {
    let host = host(2)?;
    let compiled = host.compile(&counter_guest()?)?;
    assert_eq!(compiled.source, CacheSource::Compiled);
    assert_eq!(host.compile(&counter_guest()?)?.source, CacheSource::Memory);
    let a = started(&host, &compiled.module, "a", Limits::default()).await?;
    let b = started(&host, &compiled.module, "b", Limits::default()).await?;
    for n in 1..=3 {
        assert_eq!(count_of(&a.handle(&ping_to("a")?).await?)?, n);
    }
    assert_eq!(count_of(&b.handle(&ping_to("b")?).await?)?, 1);
    assert_eq!(host.stats().guests, 2);
    drop(a);
    drop(b);
    Ok(())
}

#[tokio::test]
async fn an_endless_loop_runs_out_of_fuel_and_breaks_only_its_guest() -> Result<()> {
    let host = host(1)?;
    let looping = host.compile(&guest("(loop $l (br $l)) (i64.const 0)", "")?)?;
    let counter = host.compile(&counter_guest()?)?;
    let limits = Limits::new(10_000_000, Limits::DEFAULT_MEMORY)?;
    let spinner = started(&host, &looping.module, "spinner", limits).await?;
    let other = started(&host, &counter.module, "other", limits).await?;

    let error = spinner.handle(&ping_to("spinner")?).await.err();
    assert_eq!(
        error,
        Some(WasmError::FuelExhausted {
            call: "mechtron_handle",
            fuel: 10_000_000
        })
    );
    assert!(matches!(
        spinner.handle(&ping_to("spinner")?).await,
        Err(WasmError::Broken(_))
    ));
    assert_eq!(count_of(&other.handle(&ping_to("other")?).await?)?, 1);

    // A restart gives a fresh, working instance (it loops again, but is called normally).
    spinner.restart().await?;
    assert_eq!(spinner.init(&details("spinner")?).await?, Status::Ready);
    Ok(())
}

#[tokio::test]
async fn a_trap_fails_the_call_and_restart_recovers() -> Result<()> {
    let host = host(1)?;
    let module = host.compile(&trapper_guest()?)?;
    let guest = started(&host, &module.module, "trapper", Limits::default()).await?;
    assert_eq!(count_of(&guest.handle(&ping_to("trapper")?).await?)?, 1);
    let error = guest.handle(&ping_to("trapper")?).await.err();
    assert!(
        matches!(&error, Some(WasmError::Trap { call: "mechtron_handle", reason }) if reason.contains("unreachable")),
        "{error:?}"
    );
    assert_eq!(error.map(|e| e.to_core().status.as_u16()), Some(500));
    assert!(matches!(
        guest.handle(&ping_to("trapper")?).await,
        Err(WasmError::Broken(_))
    ));
    guest.restart().await?;
    assert_eq!(count_of(&guest.handle(&ping_to("trapper")?).await?)?, 1);
    Ok(())
}

#[tokio::test]
async fn memory_cannot_grow_past_the_limit() -> Result<()> {
    let host = host(1)?;
    let (reply, mark) = reply_template(8)?;
    // Answers with the result of memory.grow(pages), pages taken from the first input byte…
    // simpler: grows by 100 pages on odd calls and by 1 page on even calls.
    let module = host.compile(&guest(
        &format!(
            "(i64.store (i32.const {COUNTER_AT}) (i64.add (i64.load (i32.const {COUNTER_AT})) (i64.const 1)))
             (i64.store (i32.const {at})
               (i64.extend_i32_s
                 (memory.grow (select (i32.const 100) (i32.const 1)
                   (i32.wrap_i64 (i64.and (i64.load (i32.const {COUNTER_AT})) (i64.const 1)))))))
             (call $pack (i32.const {REPLY_AT}) (i32.const {len}))",
            at = REPLY_AT + mark,
            len = reply.len(),
        ),
        &data(REPLY_AT, &reply),
    )?)?;
    // 1 MiB: 16 pages.
    let limits = Limits::new(Limits::DEFAULT_FUEL, 1024 * 1024)?;
    let guest = started(&host, &module.module, "grower", limits).await?;
    assert_eq!(count_of(&guest.handle(&ping_to("grower")?).await?)?, -1);
    assert_eq!(count_of(&guest.handle(&ping_to("grower")?).await?)?, 1);
    assert_eq!(count_of(&guest.handle(&ping_to("grower")?).await?)?, -1);
    assert_eq!(count_of(&guest.handle(&ping_to("grower")?).await?)?, 2);

    // A module that needs more than the limit at start is refused.
    let big = host.compile(&wat::parse_str(
        r#"(module (memory (export "memory") 20))"#,
    )?)?;
    let refused = host
        .instantiate(
            &big.module,
            spec("big", limits, Arc::new(Recorder::default()))?,
        )
        .await
        .err();
    assert_eq!(
        refused,
        Some(WasmError::MemoryLimit {
            needed: 20 * 65536,
            limit: 1024 * 1024
        })
    );
    Ok(())
}

#[tokio::test]
async fn malformed_output_frames_are_typed_errors() -> Result<()> {
    let host = host(1)?;
    let out_of_bounds = host.compile(&guest(
        "(call $pack (i32.const 65000) (i32.const 1000))",
        "",
    )?)?;
    let too_long = host.compile(&guest("(call $pack (i32.const 16) (i32.const -1))", "")?)?;
    // Answers with its input: a Ping frame is not a reflected core.
    let garbage = host.compile(&guest(
        "(call $pack (local.get $ptr) (local.get $len))",
        "",
    )?)?;

    let guest_a = started(&host, &out_of_bounds.module, "oob", Limits::default()).await?;
    assert_eq!(
        guest_a.handle(&ping_to("oob")?).await.err(),
        Some(WasmError::OutOfBounds {
            what: "output",
            ptr: 65000,
            len: 1000,
            memory: 65536
        })
    );
    let guest_b = started(&host, &too_long.module, "long", Limits::default()).await?;
    assert_eq!(
        guest_b.handle(&ping_to("long")?).await.err(),
        Some(WasmError::FrameTooLarge {
            what: "output",
            len: u64::from(u32::MAX),
            limit: wire::Wire::DEFAULT_MAX_FRAME
        })
    );
    let guest_c = started(&host, &garbage.module, "garbage", Limits::default()).await?;
    let error = guest_c.handle(&ping_to("garbage")?).await.err();
    assert!(
        matches!(
            error,
            Some(WasmError::Frame {
                what: "reflected core",
                ..
            })
        ),
        "{error:?}"
    );
    // Frame errors do not break the guest: the call returned normally.
    assert!(matches!(
        guest_c.handle(&ping_to("garbage")?).await,
        Err(WasmError::Frame { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn modules_that_break_the_abi_are_refused() -> Result<()> {
    let host = host(1)?;
    let no_exports = host.compile(&wat::parse_str(r#"(module (memory (export "memory") 1))"#)?)?;
    let error = host
        .instantiate(
            &no_exports.module,
            spec("bare", Limits::default(), Arc::new(Recorder::default()))?,
        )
        .await
        .err();
    assert!(
        matches!(&error, Some(WasmError::Abi(m)) if m.contains("mechtron_abi_version")),
        "{error:?}"
    );
    assert!(matches!(
        host.compile(b"not wasm at all"),
        Err(WasmError::Compile(_))
    ));
    Ok(())
}

/// A guest whose handle logs, reads the clock and random bytes, pings, and answers with
/// `Bin(now ‖ random[8] ‖ pong frame)`.
/// `answer` is the core the guest's Ping will be answered with (the guest checks the Pong
/// frame's length against it).
fn host_calls_guest(guest_point: &str, answer: ReflectedCore) -> Result<(Vec<u8>, Ping)> {
    let log = wire::encode(&(LogLevel::Info, "hello from the guest".to_string()))?;
    // The guest claims to be someone else and HyperUser: the host must overwrite both.
    let ping = Ping::new(
        Surface::core("localhost:liar".parse()?),
        Surface::core("localhost:target".parse()?),
        Method::ext("Echo")?,
        "hi",
    )
    .with_agent(Agent::HyperUser);
    let mut stamped = ping.clone();
    stamped.from = Surface::core(guest_point.parse()?);
    stamped.agent = Agent::Point(guest_point.parse()?);
    let pong_len = wire::encode(&stamped.pong(answer))?.len();
    let ping_frame = wire::encode(&DirectedWave::Ping(ping.clone()))?;
    let (reply, mark) = reply_template(16 + pong_len)?;
    let log_at = EXTRA_AT;
    let ping_at = EXTRA_AT + 512;
    let body = REPLY_AT + mark;
    let wasm = guest(
        &format!(
            "(local $pong i64)
             (call $host_log (i32.const {log_at}) (i32.const {log_len}))
             (i64.store (i32.const {body}) (call $host_now))
             (call $host_random (i32.const {random_at}) (i32.const 8))
             (local.set $pong (call $host_send (i32.const {ping_at}) (i32.const {ping_len})))
             (if (i64.ne (i64.and (local.get $pong) (i64.const 0xffffffff)) (i64.const {pong_len}))
               (then unreachable))
             (memory.copy (i32.const {pong_at})
               (i32.wrap_i64 (i64.shr_u (local.get $pong) (i64.const 32)))
               (i32.const {pong_len}))
             (call $pack (i32.const {REPLY_AT}) (i32.const {reply_len}))",
            log_len = log.len(),
            random_at = body + 8,
            ping_len = ping_frame.len(),
            pong_at = body + 16,
            reply_len = reply.len(),
        ),
        &format!(
            "{} {} {}",
            data(REPLY_AT, &reply),
            data(log_at, &log),
            data(ping_at, &ping_frame)
        ),
    )?;
    Ok((wasm, ping))
}

#[tokio::test]
async fn guests_log_read_the_clock_and_randomness_and_ping() -> Result<()> {
    let host = host(1)?;
    let (wasm, ping) = host_calls_guest("localhost:caller-guest", ReflectedCore::ok("pong!"))?;
    let module = host.compile(&wasm)?;
    let outbox = Arc::new(Recorder::default());
    let guest = host
        .instantiate(
            &module.module,
            spec("caller-guest", Limits::default(), outbox.clone())?,
        )
        .await?;
    let before = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let core = guest.handle(&ping_to("caller-guest")?).await?;
    let after = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();

    let Substance::Bin(body) = &core.body else {
        return Err(anyhow!("not Bin: {core:?}"));
    };
    let now = u128::from(u64::from_le_bytes(body[..8].try_into()?));
    assert!(before <= now && now <= after, "{before} {now} {after}");
    assert_ne!(&body[8..16], &[MARK; 8]);
    let pong: Pong = wire::decode(&body[16..])?;
    assert_eq!(pong.core, ReflectedCore::ok("pong!"));
    assert_eq!(pong.reflection_of, ping.id);

    let sent = outbox.sent.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    assert_eq!(sent.len(), 1);
    let point: Point = "localhost:caller-guest".parse()?;
    assert_eq!(sent[0].agent(), &Agent::Point(point.clone()));
    assert_eq!(sent[0].sender(), &Surface::core(point.clone()));
    assert_eq!(sent[0].id(), ping.id);
    let logs = outbox.logs.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    assert_eq!(
        logs,
        vec![(point, LogLevel::Info, "hello from the guest".to_string())]
    );
    Ok(())
}

#[tokio::test]
async fn a_guest_pings_another_guest_with_one_warm_worker() -> Result<()> {
    // One warm worker: the target can only answer if the pool starts another while the
    // caller waits in host_send.
    let host = host(1)?;
    let counter = host.compile(&counter_guest()?)?;
    let target = Arc::new(started(&host, &counter.module, "target", Limits::default()).await?);
    let answer = ReflectedCore::ok(Substance::Bin(1i64.to_le_bytes().to_vec()));
    let (wasm, ping) = host_calls_guest("localhost:caller-guest", answer)?;
    let outbox = Arc::new(Recorder::default());
    if let Ok(mut forward) = outbox.forward.lock() {
        *forward = Some((tokio::runtime::Handle::current(), target.clone()));
    }
    let module = host.compile(&wasm)?;
    let caller = host
        .instantiate(
            &module.module,
            spec("caller-guest", Limits::default(), outbox.clone())?,
        )
        .await?;
    assert_eq!(host.stats().guests, 2);
    let core = caller.handle(&ping_to("caller-guest")?).await?;
    let Substance::Bin(body) = &core.body else {
        return Err(anyhow!("not Bin: {core:?}"));
    };
    let pong: Pong = wire::decode(&body[16..])?;
    assert_eq!(pong.reflection_of, ping.id);
    assert_eq!(count_of(&pong.core)?, 1);
    assert_eq!(count_of(&target.handle(&ping_to("target")?).await?)?, 2);
    Ok(())
}

#[tokio::test]
async fn compiled_modules_are_cached_on_disk() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = || WasmConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        workers: 1,
        ..WasmConfig::default()
    };
    let wasm = counter_guest()?;
    let first = WasmHost::new(config())?.compile(&wasm)?;
    assert_eq!(first.source, CacheSource::Compiled);
    assert_eq!(first.cache_error, None);

    let second_host = WasmHost::new(config())?;
    let second = second_host.compile(&wasm)?;
    assert_eq!(second.source, CacheSource::Disk);
    assert_eq!(second.module.key(), first.module.key());
    let guest = started(&second_host, &second.module, "cached", Limits::default()).await?;
    assert_eq!(count_of(&guest.handle(&ping_to("cached")?).await?)?, 1);

    // Corrupt the entry: a miss, recompiled, overwritten, working.
    let path = dir.path().join(format!("{}.module", first.module.key()));
    let mut bytes = std::fs::read(&path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes)?;
    let third_host = WasmHost::new(config())?;
    let third = third_host.compile(&wasm)?;
    assert_eq!(third.source, CacheSource::Compiled);
    let guest = started(&third_host, &third.module, "recompiled", Limits::default()).await?;
    assert_eq!(count_of(&guest.handle(&ping_to("recompiled")?).await?)?, 1);
    assert_eq!(
        WasmHost::new(config())?.compile(&wasm)?.source,
        CacheSource::Disk
    );

    // A truncated entry too.
    std::fs::write(&path, b"STLWASM1")?;
    assert_eq!(
        WasmHost::new(config())?.compile(&wasm)?.source,
        CacheSource::Compiled
    );
    Ok(())
}

/// A machine whose Mechtron driver runs guests in `host`, and a bundle
/// `localhost:repo:guests:1.0.0` holding `files` (path, bytes).
async fn machine_with_bundle(
    driver: MechtronDriver,
    files: &[(&str, Vec<u8>)],
) -> Result<(tempfile::TempDir, Machine)> {
    let dir = tempfile::tempdir()?;
    let mut drivers = Drivers::builtin(SecretKey::random()?);
    drivers.insert(Arc::new(driver.with_log(quiet_log())));
    let machine = Machine::open(&dir.path().join("home"), 2, drivers).await?;
    let bundle = dir.path().join("bundle");
    for (path, bytes) in files {
        let path = bundle.join(path);
        std::fs::create_dir_all(path.parent().context("a parent")?)?;
        std::fs::write(path, bytes)?;
    }
    let zip = cosmic_hyperspace::bundle::pack(&bundle)?;
    command(&machine, "create localhost<Space>", None).await?;
    command(&machine, "create localhost:repo<Repo>", None).await?;
    command(
        &machine,
        "publish ^[ guests.zip ]-> localhost:repo:guests:1.0.0",
        Some(zip),
    )
    .await?;
    Ok((dir, machine))
}

/// Runs a command line as HyperUser (with `zip` as its transfer) and returns the answer.
async fn command(machine: &Machine, line: &str, zip: Option<Vec<u8>>) -> Result<ReflectedCore> {
    let mut raw = RawCommand::new(line);
    if let Some(zip) = zip {
        raw = raw.with_transfer("guests.zip", zip);
    }
    let ping = Ping::command(Point::hyperuser(), raw);
    let core = machine.ping(Agent::HyperUser, ping).await.core;
    match core.is_ok() {
        true => Ok(core),
        false => Err(anyhow!(
            "{line}: {} {:?}",
            core.status,
            core.error_message()
        )),
    }
}

fn mechtron_doc(wasm: &str, name: &str) -> Vec<u8> {
    format!("Mechtron(version=1.0.0) {{ Wasm {{ +bin=${{bundle}}:/wasm/{wasm}; +name={name}; }} }}")
        .into_bytes()
}

#[tokio::test]
async fn the_mechtron_driver_runs_guests_and_restarts_broken_ones() -> Result<()> {
    let (_dir, machine) = machine_with_bundle(
        MechtronDriver::new(host(1)?),
        &[
            ("wasm/counter.wasm", counter_guest()?),
            ("wasm/trapper.wasm", trapper_guest()?),
            (
                "config/counter.mechtron",
                mechtron_doc("counter.wasm", "counter"),
            ),
            (
                "config/trapper.mechtron",
                mechtron_doc("trapper.wasm", "counter"),
            ),
            (
                "config/nowasm.mechtron",
                mechtron_doc("missing.wasm", "counter"),
            ),
        ],
    )
    .await?;
    let config = "localhost:repo:guests:1.0.0:/config";
    command(
        &machine,
        &format!("create localhost:counter<Mechtron>{{ +config={config}/counter.mechtron }}"),
        None,
    )
    .await?;
    command(
        &machine,
        &format!("create localhost:trapper<Mechtron>{{ +config={config}/trapper.mechtron }}"),
        None,
    )
    .await?;
    let send = |name: &str| {
        let ping = ping_to(name);
        let machine = &machine;
        async move { Ok::<_, anyhow::Error>(machine.ping(Agent::HyperUser, ping?).await.core) }
    };
    // State lives as long as the particle.
    for expected in 1..=3 {
        assert_eq!(count_of(&send("counter").await?)?, expected);
    }
    // A trap answers 500 for its wave; the guest restarts in the background with fresh state.
    assert_eq!(count_of(&send("trapper").await?)?, 1);
    let failed = send("trapper").await?;
    assert_eq!(failed.status.as_u16(), 500);
    assert!(
        failed
            .error_message()
            .unwrap_or_default()
            .contains("trapped"),
        "{failed:?}"
    );
    let mut after = send("trapper").await?;
    for _ in 0..100 {
        if after.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        after = send("trapper").await?;
    }
    assert_eq!(count_of(&after)?, 1);
    // Every other particle kept working.
    assert_eq!(count_of(&send("counter").await?)?, 4);
    // A mechtron whose wasm is missing is refused, with the reason, and registers nothing.
    let refused = command(
        &machine,
        &format!("create localhost:broken<Mechtron>{{ +config={config}/nowasm.mechtron }}"),
        None,
    )
    .await;
    let message = format!("{:?}", refused.err());
    assert!(message.contains("missing.wasm"), "{message}");
    assert_eq!(
        command(&machine, "select localhost:broken", None)
            .await?
            .body,
        Substance::List(vec![])
    );
    let missing = command(&machine, "create localhost:bare<Mechtron>", None).await;
    assert!(format!("{:?}", missing.err()).contains("config"));
    Ok(())
}

#[tokio::test]
async fn a_guest_that_breaks_too_often_is_marked_panic() -> Result<()> {
    let policy = RestartPolicy {
        max_restarts: 1,
        window: std::time::Duration::from_secs(60),
    };
    let (_dir, machine) = machine_with_bundle(
        MechtronDriver::new(host(1)?).with_policy(policy),
        &[
            ("wasm/trapper.wasm", trapper_guest()?),
            (
                "config/trapper.mechtron",
                mechtron_doc("trapper.wasm", "counter"),
            ),
        ],
    )
    .await?;
    command(
        &machine,
        "create localhost:trapper<Mechtron>{ +config=localhost:repo:guests:1.0.0:/config/trapper.mechtron }",
        None,
    )
    .await?;
    let send = || async {
        Ok::<_, anyhow::Error>(
            machine
                .ping(Agent::HyperUser, ping_to("trapper")?)
                .await
                .core,
        )
    };
    // Count 1, then the trap (a restart is allowed), then count 1 again, then a second trap:
    // more restarts than the policy allows.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let core = send().await?;
        statuses.push(core.status.as_u16());
        if core.status.as_u16() == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(statuses.first(), Some(&200), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 500).count() >= 2,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    let details = command(&machine, "get localhost:trapper", None).await?;
    assert!(
        format!("{:?}", details.body).contains("Panic"),
        "{details:?}"
    );
    // Ensuring it exists (`create?`) brings it back.
    command(
        &machine,
        "create? localhost:trapper<Mechtron>{ +config=localhost:repo:guests:1.0.0:/config/trapper.mechtron }",
        None,
    )
    .await?;
    assert_eq!(count_of(&send().await?)?, 1);
    Ok(())
}

/// Busy-waits on the host's clock for `ms` milliseconds, then absorbs the wave (200, empty).
fn sleeper_guest(ms: u64) -> Result<Vec<u8>> {
    guest(
        &format!(
            "(local $until i64)
             (local.set $until (i64.add (call $host_now) (i64.const {ns})))
             (block $done (loop $again
               (br_if $done (i64.ge_u (call $host_now) (local.get $until)))
               (br $again)))
             (i64.const 0)",
            ns = ms * 1_000_000,
        ),
        "",
    )
}

/// Never returns: only fuel or the timeout stops it.
fn endless_guest() -> Result<Vec<u8>> {
    guest("(loop $again (br $again)) (i64.const 0)", "")
}

/// Fuel for seconds of work; the timeout as given.
fn generous(timeout: Duration) -> Result<Limits> {
    Ok(Limits::new(1 << 60, Limits::DEFAULT_MEMORY)?.with_timeout(timeout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_guest_does_not_hold_up_its_neighbours() -> Result<()> {
    // One warm worker: the busy guest takes it, and the neighbours are served only if the
    // pool starts another.
    let host = host(1)?;
    let busy_module = host.compile(&sleeper_guest(1500)?)?;
    let busy = started(
        &host,
        &busy_module.module,
        "busy",
        generous(Duration::from_secs(30))?,
    )
    .await?;
    let counter = host.compile(&counter_guest()?)?;
    let neighbour = started(&host, &counter.module, "neighbour", Limits::default()).await?;
    let busy_ping = ping_to("busy")?;
    let started_at = Instant::now();
    let busy_call = tokio::spawn(async move { busy.handle(&busy_ping).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut slowest = Duration::ZERO;
    for n in 1..=20 {
        let at = Instant::now();
        assert_eq!(
            count_of(&neighbour.handle(&ping_to("neighbour")?).await?)?,
            n
        );
        slowest = slowest.max(at.elapsed());
    }
    assert!(
        started_at.elapsed() < Duration::from_millis(1400),
        "the neighbour's calls waited for the busy guest"
    );
    // An order of magnitude, not a tight time: the neighbour is not held for the busy 1.5 s.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest neighbour call {slowest:?}"
    );
    busy_call.await??;
    assert!(started_at.elapsed() >= Duration::from_millis(1500));
    assert!(host.stats().workers >= 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_timeout_is_stopped() -> Result<()> {
    let host = host(1)?;
    let module = host.compile(&endless_guest()?)?;
    let guest = started(
        &host,
        &module.module,
        "endless",
        generous(Duration::from_millis(300))?,
    )
    .await?;
    let at = Instant::now();
    let err = guest.handle(&ping_to("endless")?).await.unwrap_err();
    let took = at.elapsed();
    assert!(
        matches!(err, WasmError::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err}"
    );
    assert_eq!(err.to_core().status, StatusCode::ERROR);
    assert!(
        took >= Duration::from_millis(300),
        "stopped early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "not stopped: {took:?}");
    assert_eq!(host.stats().timed_out, 1);
    // Broken until restarted, like any call that did not return.
    assert!(matches!(
        guest.handle(&ping_to("endless")?).await,
        Err(WasmError::Broken(_))
    ));
    guest.restart().await?;
    assert_eq!(guest.init(&details("endless")?).await?, Status::Ready);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_guest_refuses_at_once_and_calls_given_up_on_are_not_started() -> Result<()> {
    let host = WasmHost::new(WasmConfig {
        workers: 1,
        queue: 2,
        ..WasmConfig::default()
    })?;
    let module = host.compile(&sleeper_guest(400)?)?;
    let guest = Arc::new(
        started(
            &host,
            &module.module,
            "sleeper",
            generous(Duration::from_secs(30))?,
        )
        .await?,
    );
    let running = {
        let guest = guest.clone();
        tokio::spawn(async move {
            guest
                .handle(&ping_to("sleeper")?)
                .await
                .map_err(anyhow::Error::from)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Two wait in the mailbox: one whose wave waits 100 ms (its caller is gone when the
    // guest is free), one whose caller gives up at once.
    let mut short = ping_to("sleeper")?;
    short.handling.wait = WaitTime::from_millis(100);
    let expiring = {
        let guest = guest.clone();
        tokio::spawn(async move { guest.handle(&short).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let dropped = {
        let guest = guest.clone();
        tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_millis(20),
                guest.handle(&ping_to("sleeper")?),
            )
            .await
            .map_err(anyhow::Error::from)
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The mailbox is full: refused at once.
    let at = Instant::now();
    let refused = guest.handle(&ping_to("sleeper")?).await.unwrap_err();
    assert!(
        matches!(refused, WasmError::Busy { queued: 2 }),
        "{refused}"
    );
    assert_eq!(refused.to_core().status, StatusCode::UNAVAILABLE);
    assert!(at.elapsed() < Duration::from_millis(300));
    running.await??;
    assert!(matches!(expiring.await?, Err(WasmError::NotStarted)));
    assert!(dropped.await?.is_err(), "the caller gave up after 20 ms");
    // The guest serves again (after the jobs queued before this call: its mailbox keeps
    // their order), and the two given up on were never run.
    guest.handle(&ping_to("sleeper")?).await?;
    let stats = host.stats();
    assert_eq!((stats.busy, stats.not_started), (1, 2));
    Ok(())
}
