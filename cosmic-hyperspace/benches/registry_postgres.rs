//! Benchmarks for the SPEC §15 PostgreSQL registry targets (≥ 10k creates/s with 64 in flight,
//! a point lookup p50 ≤ 300 µs) and its select, on a private server on loopback (fsync off:
//! the server's disk is not what is measured), each beside baselines measured in the same
//! run: the embedded store doing the same work, and the floor — a raw `SELECT 1` on one
//! tokio-postgres connection.
//!
//! - floor: `SELECT 1` p50 prepared (one round trip) and unprepared (parse, then execute: two),
//!   and its rate with 64 in flight pipelined on one connection;
//! - `record` p50 (a point lookup);
//! - creates (`register`, durable: answered once committed) one at a time and with 64 in
//!   flight, with the CPU each took in this process and in PostgreSQL's (where the time
//!   goes), and how busy the machine was meanwhile (it is shared);
//! - `select **<Mechtron>` (matched row by row) and `select *<Space>:*<App>:*<Mechtron>` (the
//!   walk, with ancestors' kinds) over ≈110k particles (100k Mechtrons, 10k Users), beside a
//!   raw fetch of the rows and columns the first one reads.
//!
//! Figures are medians of several rounds, with their spread. `cargo bench -p
//! cosmic-hyperspace --bench registry_postgres` (a minute or two).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmic_hyperspace::registry::{
    EmbeddedRegistry, Entry, PgConfig, PgRegistry, Registration, Registry,
};
use cosmic_space::{CreateStrategy, Kind, Point, PropertyChanges, Selector, Status};
use tests::postgres::PrivatePostgres;

const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 5;
/// Calls per round of a latency.
const CALLS: usize = 2000;
/// Creates per round: one at a time, and with [`IN_FLIGHT`] in flight.
const SEQUENTIAL: usize = 500;
const FLIGHT: usize = 6400;

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

/// The median of some rounds and their spread.
#[derive(Debug, Clone, Copy)]
struct Figure {
    median: f64,
    low: f64,
    high: f64,
}

impl Figure {
    fn of(mut values: Vec<f64>) -> Figure {
        values.sort_by(f64::total_cmp);
        Figure {
            median: values[values.len() / 2],
            low: values[0],
            high: values[values.len() - 1],
        }
    }

    fn micros(&self) -> String {
        let digits = if self.median < 1e-5 { 2 } else { 0 };
        format!(
            "{:.digits$} µs ({:.digits$}–{:.digits$})",
            self.median * 1e6,
            self.low * 1e6,
            self.high * 1e6
        )
    }

    fn millis(&self) -> String {
        format!(
            "{:.1} ms ({:.1}–{:.1})",
            self.median * 1e3,
            self.low * 1e3,
            self.high * 1e3
        )
    }

    fn rate(&self) -> String {
        format!("{:.0}/s ({:.0}–{:.0})", self.median, self.low, self.high)
    }
}

/// The p50 of [`CALLS`] calls of `op`, one at a time, in each of [`ROUNDS`] rounds.
async fn p50<F, Fut>(op: F) -> Figure
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut times = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let start = Instant::now();
            op().await;
            times.push(start.elapsed().as_secs_f64());
        }
        rounds.push(Figure::of(times).median);
    }
    Figure::of(rounds)
}

/// The rate of `n` calls of `op`, [`IN_FLIGHT`] at a time: as many tasks each make their
/// share of the calls, `op(task, call)`, one after another.
async fn in_flight<F, Fut>(n: usize, op: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                for call in 0..n / IN_FLIGHT {
                    op(task, call).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// [`ROUNDS`] results of `round`, as a figure.
async fn rounds<F, Fut>(round: F) -> Figure
where
    F: Fn() -> Fut,
    Fut: Future<Output = f64>,
{
    let mut results = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        results.push(round().await);
    }
    Figure::of(results)
}

/// CPU time, in clock ticks, of processes read from `/proc`.
mod cpu {
    /// Ticks per second (`getconf CLK_TCK`; 100 on Linux).
    pub const HZ: f64 = 100.0;

    /// (ppid, utime + stime) of a process.
    fn stat(pid: &str) -> Option<(u32, u64)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let ppid = fields.get(1)?.parse().ok()?;
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((ppid, utime + stime))
    }

    /// This process's CPU ticks.
    pub fn own() -> u64 {
        stat("self").map_or(0, |(_, ticks)| ticks)
    }

    /// The pid of the PostgreSQL server listening on `port` (its command line names it).
    pub fn postmaster(port: u16) -> Option<u32> {
        let port = port.to_string();
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let is_server = args.first()?.ends_with(b"/postgres")
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
                is_server.then_some(pid)
            })
    }

    /// CPU ticks of the server and every process it started (backends, WAL writer, …).
    pub fn server(postmaster: u32) -> u64 {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let pid = name.to_str()?;
                pid.parse::<u32>().ok()?;
                let (ppid, ticks) = stat(pid)?;
                (pid == postmaster.to_string() || ppid == postmaster).then_some(ticks)
            })
            .sum()
    }

    /// Busy and total ticks of the whole machine (every core).
    pub fn machine() -> (u64, u64) {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let values: Vec<u64> = text
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: u64 = values.iter().sum();
        // idle and iowait
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        (total - idle, total)
    }
}

/// Where the CPU went during a phase: this process, the PostgreSQL server, everything else.
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    own: u64,
    server: u64,
    busy: u64,
    total: u64,
}

impl Cpu {
    fn now(postmaster: Option<u32>) -> Cpu {
        let (busy, total) = cpu::machine();
        Cpu {
            own: cpu::own(),
            server: postmaster.map_or(0, cpu::server),
            busy,
            total,
        }
    }

    fn since(self, start: Cpu) -> Cpu {
        Cpu {
            own: self.own - start.own,
            server: self.server - start.server,
            busy: self.busy - start.busy,
            total: self.total - start.total,
        }
    }

    fn add(&mut self, other: Cpu) {
        self.own += other.own;
        self.server += other.server;
        self.busy += other.busy;
        self.total += other.total;
    }

    /// "this process X µs, PostgreSQL Y µs per create; machine Z% busy, W% by others".
    fn per(&self, count: usize) -> String {
        let per = |ticks: u64| ticks as f64 / cpu::HZ / count as f64 * 1e6;
        let share = |ticks: u64| 100.0 * ticks as f64 / self.total.max(1) as f64;
        let others = self.busy.saturating_sub(self.own + self.server);
        format!(
            "CPU per create: this process {:.0} µs, PostgreSQL {:.0} µs; the machine was \
             {:.0}% busy, {:.0}% of it by other processes",
            per(self.own),
            per(self.server),
            share(self.busy),
            share(others),
        )
    }
}

/// What one store measured.
struct Measured {
    lookup: Figure,
    sequential: Figure,
    flight: Figure,
    flight_cpu: Cpu,
    sequential_cpu: Cpu,
}

/// `record` p50 and creates one at a time and in flight under `space` (registered), with the
/// CPU the creates took.
async fn measure<R: Registry>(
    registry: &Arc<R>,
    space: &Point,
    postmaster: Option<u32>,
) -> Measured {
    let lookup = p50(|| async {
        registry.record(space).await.unwrap();
    })
    .await;
    let mut sequential = Vec::new();
    let mut flight = Vec::new();
    let mut sequential_cpu = Cpu::default();
    let mut flight_cpu = Cpu::default();
    for round in 0..ROUNDS {
        let cpu = Cpu::now(postmaster);
        let start = Instant::now();
        for i in 0..SEQUENTIAL {
            let point = space.push_base(&format!("seq-{round}-{i}")).unwrap();
            registry
                .register(registration(point, "Mechtron"))
                .await
                .unwrap();
        }
        sequential.push(SEQUENTIAL as f64 / start.elapsed().as_secs_f64());
        sequential_cpu.add(Cpu::now(postmaster).since(cpu));

        let cpu = Cpu::now(postmaster);
        let registry = registry.clone();
        let space = space.clone();
        flight.push(
            in_flight(FLIGHT, move |t, i| {
                let registry = registry.clone();
                let point = space.push_base(&format!("par-{round}-{t}-{i}")).unwrap();
                async move {
                    registry
                        .register(registration(point, "Mechtron"))
                        .await
                        .unwrap();
                }
            })
            .await,
        );
        flight_cpu.add(Cpu::now(postmaster).since(cpu));
    }
    Measured {
        lookup,
        sequential: Figure::of(sequential),
        flight: Figure::of(flight),
        flight_cpu,
        sequential_cpu,
    }
}

/// Registers `ROOT` and `space`.
async fn bootstrap<R: Registry>(registry: &R, space: &Point) {
    registry
        .register(registration(Point::root(), "Root"))
        .await
        .unwrap();
    registry
        .register(registration(space.clone(), "Space"))
        .await
        .unwrap();
}

fn main() {
    let server = PrivatePostgres::start();
    let url = server.database();
    let select_url = server.database();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let postmaster = cpu::postmaster(server.port());
    rt.block_on(run(&url, &select_url, dir.path(), postmaster));
}

async fn run(url: &str, select_url: &str, dir: &std::path::Path, postmaster: Option<u32>) {
    println!(
        "== registry in PostgreSQL beside the embedded store: SPEC §15 (medians of {ROUNDS} \
         rounds, range in brackets; the machine is shared, so rounds vary) =="
    );
    // The floor: one raw connection.
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    let one = client.prepare("SELECT 1").await.unwrap();
    let floor = p50(|| async {
        client.query_one(&one, &[]).await.unwrap();
    })
    .await;
    let unprepared = p50(|| async {
        client.query_one("SELECT 1", &[]).await.unwrap();
    })
    .await;
    let floor_flight = rounds(|| {
        let client = client.clone();
        let one = one.clone();
        in_flight(20_000, move |_, _| {
            let client = client.clone();
            let one = one.clone();
            async move {
                client.query_one(&one, &[]).await.unwrap();
            }
        })
    })
    .await;
    println!(
        "floor: SELECT 1 p50 {} prepared (one round trip), {} unprepared (two); {} with \
         {IN_FLIGHT} in flight on one connection",
        floor.micros(),
        unprepared.micros(),
        floor_flight.rate()
    );

    let space = Point::space("bench").unwrap();
    let pg = Arc::new(
        PgRegistry::connect_with(
            url,
            PgConfig {
                wait: Duration::from_secs(30),
                ..PgConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    let embedded = Arc::new(EmbeddedRegistry::open(&dir.join("registry.redb")).unwrap());
    bootstrap(&*pg, &space).await;
    bootstrap(&*embedded, &space).await;
    let pg_figures = measure(&pg, &space, postmaster).await;
    let embedded_figures = measure(&embedded, &space, None).await;

    let ratio = |a: Figure, b: Figure| a.median / b.median;
    println!(
        "record (point lookup) p50: PostgreSQL {} = {:.1}× the floor (target ≤ 300 µs); \
         embedded {}",
        pg_figures.lookup.micros(),
        ratio(pg_figures.lookup, floor),
        embedded_figures.lookup.micros(),
    );
    println!(
        "creates one at a time: PostgreSQL {} ({:.0} µs each = {:.1}× the floor); embedded \
         {} (one fsync each; the private PostgreSQL has fsync off); PostgreSQL/embedded {:.2}",
        pg_figures.sequential.rate(),
        1e6 / pg_figures.sequential.median,
        (1.0 / pg_figures.sequential.median) / floor.median,
        embedded_figures.sequential.rate(),
        ratio(pg_figures.sequential, embedded_figures.sequential),
    );
    println!("  {}", pg_figures.sequential_cpu.per(SEQUENTIAL * ROUNDS));
    println!(
        "creates with {IN_FLIGHT} in flight: PostgreSQL {} (target ≥ 10k/s; {:.2}× the floor's \
         SELECT 1 rate in flight); embedded {}; PostgreSQL/embedded {:.2}",
        pg_figures.flight.rate(),
        ratio(pg_figures.flight, floor_flight),
        embedded_figures.flight.rate(),
        ratio(pg_figures.flight, embedded_figures.flight),
    );
    println!("  {}", pg_figures.flight_cpu.per(FLIGHT * ROUNDS));
    drop((pg, embedded));

    // Fresh stores for the selects: 10 spaces × 10 apps × 1000 Mechtrons, 10 × 1000 Users.
    let pg = Arc::new(PgRegistry::connect(select_url).await.unwrap());
    let embedded = Arc::new(EmbeddedRegistry::open(&dir.join("select.redb")).unwrap());
    let filled = Instant::now();
    populate(&pg).await;
    println!(
        "(filled 110k particles in PostgreSQL in {:.1} s, 1000 per register_all)",
        filled.elapsed().as_secs_f64()
    );
    populate(&embedded).await;
    for text in ["**<Mechtron>", "*<Space>:*<App>:*<Mechtron>"] {
        let selector: Selector = text.parse().unwrap();
        let (pg_select, found) = select(&pg, &selector).await;
        let (embedded_select, embedded_found) = select(&embedded, &selector).await;
        assert_eq!(found, embedded_found, "both stores select the same");
        println!(
            "select {text}: {found} matched; PostgreSQL {}, embedded {} (target ≤ 50 ms); \
             PostgreSQL/embedded {:.1}",
            pg_select.millis(),
            embedded_select.millis(),
            ratio(pg_select, embedded_select),
        );
        if text == "**<Mechtron>" {
            let fetch = raw_fetch(
                select_url,
                "SELECT point, kind, status FROM particles WHERE base = 'Mechtron'",
            )
            .await;
            let records = raw_fetch(select_url, "SELECT record FROM particles").await;
            println!(
                "  beside fetching the same rows and columns raw: {} ({:.1}×); fetching \
                 every row's record raw (what a select read before): {}",
                fetch.millis(),
                ratio(pg_select, fetch),
                records.millis(),
            );
        }
    }
}

/// The median time `registry` takes to select with `selector`, and how many it found.
async fn select<R: Registry>(registry: &Arc<R>, selector: &Selector) -> (Figure, usize) {
    let mut found = 0;
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        found = registry.select(selector).await.unwrap().len();
        times.push(start.elapsed().as_secs_f64());
    }
    (Figure::of(times), found)
}

/// The median time of `sql` on a raw connection, its rows only received.
async fn raw_fetch(url: &str, sql: &str) -> Figure {
    let (raw, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let statement = raw.prepare(sql).await.unwrap();
    rounds(|| async {
        let start = Instant::now();
        let rows = raw.query(&statement, &[]).await.unwrap();
        black_box(rows.len());
        start.elapsed().as_secs_f64()
    })
    .await
}

/// Registers 10 spaces, each with 10 apps of 1000 Mechtrons and a user base of 1000 Users,
/// a thousand at a time, eight batches in flight.
async fn populate<R: Registry>(registry: &Arc<R>) {
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
}
