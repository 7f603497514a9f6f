//! The HTTP gateway under load, against SPEC §15 (`GET` through gateway + bind + wasm
//! mechtron with 64 connections: ≥ 30k requests/s, p99 ≤ 10 ms).
//!
//! It drives the real `starlane serve` (the release build) over real sockets with a load
//! generator of its own that works like wrk: 64 keep-alive connections, each sending its next
//! request as soon as the last is answered, for a fixed time after a warm-up. Every answer is
//! checked — status 200 and the expected body, byte for byte — and anything else (a wrong
//! answer, a broken connection) counts as an error.
//!
//! Three targets, one after another in the same run:
//! - **the floor**: a bare socket server in this process that answers every request with
//!   canned bytes — what the generator, the kernel and the loopback cost by themselves;
//! - **a static file**: `GET /index.html`, an artifact reached through the Space's bind;
//! - **a wasm mechtron**: `GET /app/bench`, forwarded by the bind to a mechtron (the guest
//!   fixtures' `hello`, built from Rust with the SDK) that answers `Hello, bench!`.
//!
//! Run: `cargo bench -p tests --bench gateway` (`SECONDS=N` changes the 10 s per target,
//! `CONNECTIONS=N` the 64).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmic_hyperspace::wasm::FloorReport;
use tests::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const INDEX: &[u8] = include_bytes!("../../examples/app/bundle/html/index.html");

/// The Space's bind: the mechtron, and the site's files.
const BIND: &str = "Bind(version=1.0.0) {
  Route<Http<Get>>/app/(?P<rest>.*) -> localhost:hello => &;
  Route<Http<Get>>/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
}
";

/// The floor's answer to every request.
const CANNED: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 14\r\n\r\nHello, bench!\n";

/// A `starlane serve` with the fixtures and the site published, a hello mechtron, the bind
/// above on `localhost`, and the Space open to Anonymous.
fn server(dir: &Path) -> Server {
    tests::write_fixtures_bundle(dir);
    let site = tests::zip(&[
        ("html/index.html", INDEX),
        ("bind/space.bind", BIND.as_bytes()),
    ]);
    std::fs::write(dir.join("site.zip"), site).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(&dir.join("home"));
    server.exec(
        dir,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0; \
         publish ^[ site.zip ]-> localhost:repo:site:1.0.0; \
         create localhost:hello<Mechtron>{ \
           +config=localhost:repo:fixtures:1.0.0:/config/hello.mechtron }; \
         set localhost{ +bind=localhost:repo:site:1.0.0:/bind/space.bind }; \
         grant +csd-rwX on localhost to hyperspace:users:anonymous; \
         grant +csd-Rwx on localhost:repo:site+:** to hyperspace:users:anonymous",
    );
    server
}

/// What one run of the load generator saw.
struct Load {
    /// Requests answered correctly after the warm-up.
    answered: u64,
    /// Wrong answers and broken connections, warm-up included.
    errors: u64,
    /// The first few errors, for the report.
    examples: Vec<String>,
    /// The latency of every request answered after the warm-up, in nanoseconds.
    latencies: Vec<u64>,
    /// How long the measured part ran.
    measured: Duration,
}

impl Load {
    /// Nothing seen yet, for a run measuring `measured`.
    fn new(measured: Duration) -> Load {
        Load {
            answered: 0,
            errors: 0,
            examples: Vec::new(),
            latencies: Vec::new(),
            measured,
        }
    }

    fn report(&mut self, what: &str, floor: Option<&Load>) {
        let per_second = self.answered as f64 / self.measured.as_secs_f64();
        let latency = FloorReport::of(&mut self.latencies);
        print!(
            "{what}: {per_second:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            latency.p50_ns as f64 / 1e6,
            latency.p99_ns as f64 / 1e6,
            self.errors
        );
        if let Some(floor) = floor {
            let floor_rate = floor.answered as f64 / floor.measured.as_secs_f64();
            print!("  ({:.1}× slower than the floor)", floor_rate / per_second);
        }
        println!();
        for example in &self.examples {
            println!("  error: {example}");
        }
    }
}

/// Drives `addr` with `connections` keep-alive connections sending `GET path` for `warm_up`
/// and then `measure`, expecting 200 and `body` every time.
async fn load(
    addr: &str,
    path: &str,
    body: &[u8],
    connections: usize,
    warm_up: Duration,
    measure: Duration,
) -> Load {
    let request: Arc<[u8]> = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .into_bytes()
        .into();
    let body: Arc<[u8]> = body.into();
    let start = Instant::now();
    let (measure_from, stop) = (start + warm_up, start + warm_up + measure);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, request, body) = (addr.to_string(), request.clone(), body.clone());
            tokio::spawn(async move {
                let mut lane = Load::new(measure);
                while Instant::now() < stop {
                    if let Err(error) =
                        drive(&addr, &request, &body, measure_from, stop, &mut lane).await
                    {
                        lane.errors += 1;
                        if lane.examples.len() < 3 {
                            lane.examples.push(error.to_string());
                        }
                    }
                }
                lane
            })
        })
        .collect();
    let mut total = Load::new(measure);
    for task in tasks {
        match task.await {
            Ok(lane) => {
                total.answered += lane.answered;
                total.errors += lane.errors;
                total.latencies.extend(lane.latencies);
                for example in lane.examples {
                    if total.examples.len() < 3 {
                        total.examples.push(example);
                    }
                }
            }
            Err(error) => {
                total.errors += 1;
                total
                    .examples
                    .push(format!("a connection task failed: {error}"));
            }
        }
    }
    total
}

/// One connection: requests one after another until `stop` (or an error).
async fn drive(
    addr: &str,
    request: &[u8],
    body: &[u8],
    measure_from: Instant,
    stop: Instant,
    lane: &mut Load,
) -> Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buffer = Vec::with_capacity(8 * 1024);
    loop {
        let sent = Instant::now();
        if sent >= stop {
            return Ok(());
        }
        stream.write_all(request).await?;
        let (status, answer) = read_response(&mut stream, &mut buffer).await?;
        let took = sent.elapsed();
        if status != 200 || answer != body {
            return Err(format!(
                "status {status}, body {:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(80)])
            )
            .into());
        }
        if sent >= measure_from {
            lane.answered += 1;
            lane.latencies
                .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

/// Reads one response with a `content-length` from `stream`: its status and body.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(u16, Vec<u8>)> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])?;
            let status: u16 = head
                .get(9..12)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| format!("no status in {head:?}"))?;
            let length: usize = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse().ok())
                .ok_or_else(|| format!("no content-length in {head:?}"))?;
            let total = end + 4 + length;
            while buffer.len() < total {
                read_more(stream, buffer).await?;
            }
            let body = buffer[end + 4..total].to_vec();
            buffer.drain(..total);
            return Ok((status, body));
        }
        read_more(stream, buffer).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 8 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The floor: answers every request head on a connection with [`CANNED`].
async fn floor_server(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(8 * 1024);
            let mut chunk = [0u8; 8 * 1024];
            while let Ok(n) = stream.read(&mut chunk).await {
                if n == 0 {
                    return;
                }
                buffer.extend_from_slice(&chunk[..n]);
                while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    buffer.drain(..end + 4);
                    if stream.write_all(CANNED).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let seconds = Duration::from_secs(setting("SECONDS", 10));
    let connections = usize::try_from(setting("CONNECTIONS", 64))?;
    let warm_up = Duration::from_secs(2);
    let dir = tempfile::tempdir()?;
    let server = server(dir.path());
    let addr = server.http_addr();

    // The generator runs on one thread (wrk's default is two; this machine has two cores,
    // and the server needs them).
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let floor_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let floor_listener = floor_runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let floor_addr = floor_listener.local_addr()?.to_string();
    floor_runtime.spawn(floor_server(floor_listener));

    println!(
        "{connections} keep-alive connections, {} s per target after a {} s warm-up; the server is the release `starlane serve` with 2 stars",
        seconds.as_secs(),
        warm_up.as_secs()
    );
    let mut floor = client.block_on(load(
        &floor_addr,
        "/",
        b"Hello, bench!\n",
        connections,
        warm_up,
        seconds,
    ));
    floor.report("floor: a canned answer from a bare socket server", None);
    drop(floor_runtime);

    let mut file = client.block_on(load(
        &addr,
        "/index.html",
        INDEX,
        connections,
        warm_up,
        seconds,
    ));
    file.report(
        "static file: GET /index.html (gateway → Space bind → artifact)",
        Some(&floor),
    );
    let mut mechtron = client.block_on(load(
        &addr,
        "/app/bench",
        b"Hello, bench!",
        connections,
        warm_up,
        seconds,
    ));
    mechtron.report(
        "wasm mechtron: GET /app/bench (gateway → Space bind → mechtron)",
        Some(&floor),
    );
    println!("SPEC §15: ≥ 30k requests/s and p99 ≤ 10 ms through gateway + bind + wasm mechtron");
    server.stop();
    let errors = floor.errors + file.errors + mechtron.errors;
    if errors > 0 {
        return Err(format!("{errors} requests failed").into());
    }
    Ok(())
}
