//! Benchmarks of data for mechtrons (SPEC §15, §17) in a whole machine, on the embedded
//! registry and then on PostgreSQL (a private server), each figure beside a floor from the same
//! run — the raw store under the registry, without Starlane:
//!
//! - key-value get and put p50/p99 **from inside a mechtron** (the real wasm fixtures, timed
//!   by the host's clock around each `ctx.kv(…)` call) — beside a raw point read;
//! - gets/s and durable puts/s with 64 in flight, sent to the store as Pings — beside raw
//!   reads/s and raw durable single-row writes/s;
//! - a 10 MiB file put and got through a file store, MB/s — beside a raw durable write and
//!   read of the same bytes.
//!
//! Run: `cargo bench -p tests --bench data` (`DATA_BACKENDS=embedded` skips PostgreSQL).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmic_hyperspace::driver::{SecretKey, quiet_log};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::registry::PgRegistry;
use cosmic_hyperspace::wasm::WasmConfig;
use cosmic_space::{
    Agent, DirectedCore, HttpMethod, Method, Ping, Point, RawCommand, Substance, WaitTime,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Waves in flight for the throughput figures.
const IN_FLIGHT: usize = 64;
const GETS: usize = 40_000;
const PUTS: usize = 10_000;
const GUEST_CALLS: usize = 2_000;
const FILE_BYTES: usize = 10 << 20;
const FILE_ROUNDS: usize = 5;

async fn command(machine: &Machine, line: &str, zip: Option<Vec<u8>>) -> Result<()> {
    let mut raw = RawCommand::new(line);
    if let Some(zip) = zip {
        raw = raw.with_transfer("bundle.zip", zip);
    }
    let core = machine
        .ping(Agent::HyperUser, Ping::command(Point::hyperuser(), raw))
        .await
        .core;
    if core.is_ok() {
        Ok(())
    } else {
        Err(format!("{line}: {} {:?}", core.status, core.error_message()).into())
    }
}

/// The store, a file store and a pinger mechtron allowed to use the store.
async fn setup(machine: &Machine) -> Result<()> {
    for line in ["create localhost<Space>", "create localhost:repo<Repo>"] {
        command(machine, line, None).await?;
    }
    command(
        machine,
        "publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0",
        Some(tests::fixtures_bundle()),
    )
    .await?;
    for line in [
        "create localhost:data<Database<KeyValue>>",
        "create localhost:files<FileStore>",
        "create localhost:pinger<Mechtron>{ +config=localhost:repo:fixtures:1.0.0:/config/pinger.mechtron }",
        "grant +csd-RWX on localhost:data to localhost:pinger",
    ] {
        command(machine, line, None).await?;
    }
    Ok(())
}

fn ping(to: &str, core: DirectedCore) -> Result<Ping> {
    let mut ping = Ping::with_core(Point::hyperuser(), to.parse::<Point>()?, core);
    ping.handling.wait = WaitTime::from_secs(60);
    Ok(ping)
}

fn ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// p50 and p99 of `samples`.
fn spread(mut samples: Vec<u64>) -> (u64, u64) {
    samples.sort_unstable();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Key-value calls timed inside the guest.
async fn from_a_mechtron(machine: &Machine, op: &str) -> Result<(u64, u64)> {
    let core = DirectedCore::new(Method::ext("KvTime")?).with_body(Substance::from(format!(
        "{op} {GUEST_CALLS} localhost:data"
    )));
    let pong = machine
        .ping(Agent::HyperUser, ping("localhost:pinger", core)?)
        .await;
    let Substance::Json(json) = pong.core.body else {
        return Err(format!("KvTime answered {} {:?}", pong.core.status, pong.core.body).into());
    };
    let times: Vec<u64> = json.to_value()?;
    // The first calls warm the path; the figures are of the rest.
    Ok(spread(times[GUEST_CALLS / 10..].to_vec()))
}

/// `total` Pings made by `make(i)`, `IN_FLIGHT` at a time; the answers per second.
async fn throughput(
    machine: &Arc<Machine>,
    total: usize,
    make: impl Fn(usize) -> Result<Ping> + Send + Sync + 'static,
) -> Result<f64> {
    let make = Arc::new(make);
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let machine = machine.clone();
        let make = make.clone();
        workers.spawn(async move {
            let mut i = worker;
            while i < total {
                let ping = make(i).map_err(|e| e.to_string())?;
                let pong = machine.ping(Agent::HyperUser, ping).await;
                if !pong.core.is_ok() {
                    return Err(format!(
                        "{} {:?}",
                        pong.core.status,
                        pong.core.error_message()
                    ));
                }
                i += IN_FLIGHT;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn get_core(key: &str) -> DirectedCore {
    DirectedCore::new(Method::Http(HttpMethod::Get)).with_path(format!("/k/{key}"))
}

fn put_core(key: &str) -> DirectedCore {
    DirectedCore::new(Method::Http(HttpMethod::Put))
        .with_path(format!("/k/{key}"))
        .with_body(Substance::Bin(b"a value of a few bytes".to_vec()))
}

/// The file figures: MB/s of the median put and get of a 10 MiB file.
async fn file_rates(machine: &Machine) -> Result<(f64, f64)> {
    let bytes: Vec<u8> = (0..FILE_BYTES).map(|n| (n % 251) as u8).collect();
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for round in 0..FILE_ROUNDS {
        let to = format!("localhost:files:/bench/big-{round}.bin");
        let core = DirectedCore::new(Method::Http(HttpMethod::Put))
            .with_body(Substance::Bin(bytes.clone()));
        let start = Instant::now();
        let pong = machine.ping(Agent::HyperUser, ping(&to, core)?).await;
        puts.push(start.elapsed());
        if !pong.core.is_ok() {
            return Err(format!(
                "file put: {} {:?}",
                pong.core.status,
                pong.core.error_message()
            )
            .into());
        }
        let start = Instant::now();
        let pong = machine
            .ping(
                Agent::HyperUser,
                ping(&to, DirectedCore::new(Method::Http(HttpMethod::Get)))?,
            )
            .await;
        gets.push(start.elapsed());
        match pong.core.body {
            Substance::Bin(got) if got.len() == FILE_BYTES => {}
            other => return Err(format!("file get answered {:?}", other.kind()).into()),
        }
    }
    Ok((rate(puts), rate(gets)))
}

/// MB/s of the median of `times` for [`FILE_BYTES`].
fn rate(mut times: Vec<Duration>) -> f64 {
    times.sort_unstable();
    let median = times[times.len() / 2];
    FILE_BYTES as f64 / 1e6 / median.as_secs_f64()
}

/// What the floors measured.
struct Floors {
    read_p50: u64,
    read_p99: u64,
    reads_per_s: f64,
    writes_per_s: f64,
    file_write: f64,
    file_read: f64,
}

/// The raw redb floors, in a file of their own.
fn redb_floors(dir: &Path) -> Result<Floors> {
    use redb::{Database, ReadableDatabase, TableDefinition};
    const TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("floor");
    let db = Database::create(dir.join("floor.redb"))?;
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(TABLE)?;
        for n in 0..100 {
            table.insert(
                format!("k{n}").as_str(),
                b"a value of a few bytes".as_slice(),
            )?;
        }
    }
    txn.commit()?;
    let mut samples = Vec::with_capacity(GETS);
    let start = Instant::now();
    for n in 0..GETS {
        let one = Instant::now();
        let txn = db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let found = table.get(format!("k{}", n % 100).as_str())?;
        std::hint::black_box(found.map(|v| v.value().len()));
        samples.push(ns(one));
    }
    let reads_per_s = GETS as f64 / start.elapsed().as_secs_f64();
    let (read_p50, read_p99) = spread(samples);
    let writes = 500;
    let start = Instant::now();
    for n in 0..writes {
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?.insert(
            format!("w{n}").as_str(),
            b"a value of a few bytes".as_slice(),
        )?;
        txn.commit()?;
    }
    let writes_per_s = writes as f64 / start.elapsed().as_secs_f64();
    let bytes = vec![7u8; FILE_BYTES];
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for round in 0..FILE_ROUNDS {
        let key = format!("file-{round}");
        let start = Instant::now();
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?
            .insert(key.as_str(), bytes.as_slice())?;
        txn.commit()?;
        puts.push(start.elapsed());
        let start = Instant::now();
        let txn = db.begin_read()?;
        let got = txn
            .open_table(TABLE)?
            .get(key.as_str())?
            .map(|v| v.value().to_vec());
        std::hint::black_box(got);
        gets.push(start.elapsed());
    }
    Ok(Floors {
        read_p50,
        read_p99,
        reads_per_s,
        writes_per_s,
        file_write: rate(puts),
        file_read: rate(gets),
    })
}

/// The raw PostgreSQL floors: statements on a table of their own through one client per
/// worker (64 in flight, as the machine's pool would have them).
async fn postgres_floors(url: &str) -> Result<Floors> {
    let connect = || async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok::<_, tokio_postgres::Error>(client)
    };
    let client = connect().await?;
    client
        .batch_execute(
            "CREATE TABLE floor (key text PRIMARY KEY, value bytea NOT NULL);
             INSERT INTO floor SELECT 'k' || n, 'a value of a few bytes'::bytea
               FROM generate_series(0, 99) AS n;",
        )
        .await?;
    let read = client
        .prepare("SELECT value FROM floor WHERE key = $1")
        .await?;
    let mut samples = Vec::with_capacity(5_000);
    for n in 0..5_000 {
        let start = Instant::now();
        client.query_opt(&read, &[&format!("k{}", n % 100)]).await?;
        samples.push(ns(start));
    }
    let (read_p50, read_p99) = spread(samples);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Arc::new(connect().await?));
    }
    let reads_per_s = pg_rate(
        &clients,
        GETS,
        "SELECT value FROM floor WHERE key = $1",
        false,
    )
    .await?;
    let writes_per_s = pg_rate(
        &clients,
        PUTS,
        "INSERT INTO floor (key, value) VALUES ($1, 'a value'::bytea) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        true,
    )
    .await?;
    let bytes = vec![7u8; FILE_BYTES];
    let write = client
        .prepare("INSERT INTO floor (key, value) VALUES ($1, $2)")
        .await?;
    let fetch = client
        .prepare("SELECT value FROM floor WHERE key = $1")
        .await?;
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for round in 0..FILE_ROUNDS {
        let key = format!("file-{round}");
        let start = Instant::now();
        client.execute(&write, &[&key, &bytes]).await?;
        puts.push(start.elapsed());
        let start = Instant::now();
        let row = client.query_one(&fetch, &[&key]).await?;
        std::hint::black_box(row.get::<_, Vec<u8>>(0));
        gets.push(start.elapsed());
    }
    Ok(Floors {
        read_p50,
        read_p99,
        reads_per_s,
        writes_per_s,
        file_write: rate(puts),
        file_read: rate(gets),
    })
}

/// `total` executions of `sql` (keyed `k{i % 100}`, or `w{i}` when `distinct`), 64 in flight
/// over `clients` (which pipeline what is sent to them at once); per second.
async fn pg_rate(
    clients: &[Arc<tokio_postgres::Client>],
    total: usize,
    sql: &str,
    distinct: bool,
) -> Result<f64> {
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let client = clients[worker % clients.len()].clone();
        let sql = sql.to_string();
        workers.spawn(async move {
            let statement = client.prepare(&sql).await?;
            let mut i = worker;
            while i < total {
                let key = if distinct {
                    format!("w{i}")
                } else {
                    format!("k{}", i % 100)
                };
                client.execute(&statement, &[&key]).await?;
                i += IN_FLIGHT;
            }
            Ok::<(), tokio_postgres::Error>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn run(name: &str, machine: Arc<Machine>, floors: Floors) -> Result<()> {
    setup(&machine).await?;
    println!("\n== {name} ==");
    let (put_p50, put_p99) = from_a_mechtron(&machine, "put").await?;
    let (get_p50, get_p99) = from_a_mechtron(&machine, "get").await?;
    println!(
        "kv from a mechtron: get p50 {:.1} µs p99 {:.1} µs; put (durable) p50 {:.1} µs p99 {:.1} µs   (SPEC get/put p50 ≤ 30 µs, embedded)",
        micros(get_p50),
        micros(get_p99),
        micros(put_p50),
        micros(put_p99)
    );
    println!(
        "  floor, a raw point read: p50 {:.1} µs p99 {:.1} µs  (get ratio {:.0}×)",
        micros(floors.read_p50),
        micros(floors.read_p99),
        get_p50 as f64 / floors.read_p50.max(1) as f64
    );
    for n in 0..100 {
        let pong = machine
            .ping(
                Agent::HyperUser,
                ping("localhost:data", put_core(&format!("k{n}")))?,
            )
            .await;
        if !pong.core.is_ok() {
            return Err(format!("seeding: {:?}", pong.core.error_message()).into());
        }
    }
    let gets = throughput(&machine, GETS, |i| {
        ping("localhost:data", get_core(&format!("k{}", i % 100)))
    })
    .await?;
    let puts = throughput(&machine, PUTS, |i| {
        ping("localhost:data", put_core(&format!("w{i}")))
    })
    .await?;
    println!(
        "kv with {IN_FLIGHT} in flight: {gets:.0} gets/s, {puts:.0} durable puts/s   (SPEC ≥ 100k gets/s, ≥ 20k puts/s)"
    );
    println!(
        "  floor, raw: {:.0} reads/s, {:.0} durable single-row writes/s  (gets {:.2}× of raw reads; puts {:.1}× raw writes)",
        floors.reads_per_s,
        floors.writes_per_s,
        gets / floors.reads_per_s,
        puts / floors.writes_per_s
    );
    let (file_put, file_get) = file_rates(&machine).await?;
    println!("a 10 MiB file through a file store: put {file_put:.0} MB/s, get {file_get:.0} MB/s");
    println!(
        "  floor, raw durable write {:.0} MB/s, read {:.0} MB/s",
        floors.file_write, floors.file_read
    );
    Ok(())
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let backends = std::env::var("DATA_BACKENDS").unwrap_or_else(|_| "embedded,postgres".into());
    if backends.contains("embedded") {
        let dir = tempfile::tempdir()?;
        let floors = redb_floors(dir.path())?;
        runtime.block_on(async {
            let home = dir.path().join("home");
            let drivers = Machine::standard_drivers(
                &home,
                quiet_log(),
                SecretKey::random()?,
                WasmConfig::default(),
            )?;
            let machine = Arc::new(Machine::open(&home, 2, drivers).await?);
            run("embedded registry (redb)", machine, floors).await
        })?;
    }
    if backends.contains("postgres") {
        let server = tests::postgres::PrivatePostgres::start();
        let floor_url = server.database();
        let url = server.database();
        let dir = tempfile::tempdir()?;
        runtime.block_on(async {
            let floors = postgres_floors(&floor_url).await?;
            let home = dir.path().join("home");
            let drivers = Machine::standard_drivers(
                &home,
                quiet_log(),
                SecretKey::random()?,
                WasmConfig::default(),
            )?;
            let registry = Arc::new(PgRegistry::connect(&url).await?);
            let machine = Machine::builder(&home)
                .stars(2)
                .registry(registry)
                .drivers(drivers)
                .build()
                .await?;
            run(
                "PostgreSQL registry (private server, loopback)",
                Arc::new(machine),
                floors,
            )
            .await
        })?;
    }
    Ok(())
}
