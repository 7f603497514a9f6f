//! Round trips measured one way for every bench of waves (`waves`, `cluster`): latency one at
//! a time, then throughput with many in flight, each printed beside a floor from the same run.

// Each bench uses a part.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use cosmic_hyperspace::star::StarHandle;
use cosmic_space::{Agent, CmdMethod, Method, Ping, Point, StatusCode, Surface};

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Round trips before measuring anything.
    pub warmup: usize,
    /// Round trips one at a time, for the latency.
    pub sequential: usize,
    /// Round trips with `in_flight` at once, for the throughput.
    pub throughput: usize,
    pub in_flight: usize,
}

/// What one measurement found.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
}

/// One round trip, as a boxed future.
pub type Trip = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Measures `round_trip` under `load`, on a task of the runtime (not on the thread blocked in
/// `block_on`, which every answer would have to wake).
pub async fn measure<F>(load: Load, round_trip: F) -> Figures
where
    F: Fn() -> Trip + Clone + Send + Sync + 'static,
{
    tokio::spawn(measure_here(load, round_trip)).await.unwrap()
}

async fn measure_here<F>(load: Load, round_trip: F) -> Figures
where
    F: Fn() -> Trip + Clone + Send + Sync + 'static,
{
    for _ in 0..load.warmup {
        round_trip().await;
    }
    let mut latencies = Vec::with_capacity(load.sequential);
    for _ in 0..load.sequential {
        let start = Instant::now();
        round_trip().await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..load.throughput {
        set.spawn(round_trip());
        while set.len() >= load.in_flight {
            set.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    Figures {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        per_second: load.throughput as f64 / start.elapsed().as_secs_f64(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// The round of `rounds` measurements with the median p50 (a noisy machine's outliers aside).
pub async fn median_round<F>(rounds: usize, load: Load, round_trip: F) -> Figures
where
    F: Fn() -> Trip + Clone + Send + Sync + 'static,
{
    let mut all = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        all.push(measure(load, round_trip.clone()).await);
    }
    all.sort_by_key(|figures| figures.p50);
    all.swap_remove(all.len() / 2)
}

/// Prints `figures` beside `floor`.
pub fn report(name: &str, figures: &Figures, floor: &Figures) {
    println!(
        "{name:<50} p50 {:>8.2} µs  p99 {:>8.2} µs  {:>9.0} round trips/s   p50 ×{:.2} floor, throughput ×{:.2} floor",
        figures.p50.as_secs_f64() * 1e6,
        figures.p99.as_secs_f64() * 1e6,
        figures.per_second,
        figures.p50.as_secs_f64() / floor.p50.as_secs_f64(),
        figures.per_second / floor.per_second,
    );
}

/// One round trip: a `Cmd<Bounce>` from `sender` to `target` as `agent`, which must answer
/// 200.
pub fn bounces(
    sender: StarHandle,
    target: Point,
    agent: Agent,
) -> impl Fn() -> Trip + Clone + Send + Sync + 'static {
    move || {
        let mut ping = Ping::new(
            Surface::core(sender.point().clone()),
            target.clone(),
            Method::Cmd(CmdMethod::Bounce),
            (),
        );
        ping.agent = agent.clone();
        let sender = sender.clone();
        Box::pin(async move {
            let pong = sender.ping(ping).await;
            assert_eq!(pong.core.status, StatusCode::OK);
        })
    }
}
