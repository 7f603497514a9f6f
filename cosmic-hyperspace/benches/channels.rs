//! Channels (SPEC §15: one message to 1,000 subscribers delivered to all in ≤ 20 ms p50 on one
//! machine), each beside a floor measured in the same run: a tokio broadcast channel with
//! as many receivers, each on a task of its own, which is what handing one message to that
//! many tasks costs at the least.
//!
//! - **fan-out**: a message published on a channel (a Ping from the CLI's side of a machine,
//!   through the Field to the Channel's driver, then the hub) until every one of 1,000
//!   watchers has it; one message at a time, p50 and p99;
//! - **throughput**: messages through one channel with 10 subscribers, 64 publishes in
//!   flight, until every subscriber has every message.
//!
//! `cargo bench -p cosmic-hyperspace --bench channels`

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cosmic_hyperspace::driver::{Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::metrics::ChannelDelivery;
use cosmic_space::{Agent, Method, Ping, Point, RawCommand, Selector, Surface};
use tokio::sync::{Semaphore, broadcast, mpsc};

/// Messages fanned out one at a time.
const FAN_OUT_MESSAGES: usize = 300;
/// Subscribers of the fan-out.
const FAN_OUT_SUBSCRIBERS: usize = 1_000;
/// Messages through the channel of the throughput run.
const THROUGHPUT_MESSAGES: usize = 50_000;
/// Subscribers of the throughput run.
const THROUGHPUT_SUBSCRIBERS: usize = 10;
/// Publishes in flight in the throughput run.
const IN_FLIGHT: usize = 64;
/// Rounds of each measure; the median round is reported.
const ROUNDS: usize = 3;

async fn exec(machine: &Machine, line: &str) {
    let ping = Ping::command(Point::hyperuser(), RawCommand::new(line));
    let pong = machine.ping(Agent::HyperUser, ping).await;
    assert!(pong.core.is_ok(), "{line}: {:?}", pong.core.error_message());
}

/// Counts deliveries: when the last of `subscribers` has message `n`, tells `done`.
struct Tally {
    counts: Vec<AtomicUsize>,
    subscribers: usize,
    done: mpsc::UnboundedSender<usize>,
}

impl Tally {
    fn new(messages: usize, subscribers: usize) -> (Arc<Tally>, mpsc::UnboundedReceiver<usize>) {
        let (done, finished) = mpsc::unbounded_channel();
        let tally = Tally {
            counts: (0..messages).map(|_| AtomicUsize::new(0)).collect(),
            subscribers,
            done,
        };
        (Arc::new(tally), finished)
    }

    fn heard(&self, n: usize) {
        if let Some(count) = self.counts.get(n)
            && count.fetch_add(1, Ordering::AcqRel) + 1 == self.subscribers
        {
            let _ = self.done.send(n);
        }
    }
}

/// The number a message carries in its body.
fn number(body: &cosmic_space::Substance) -> usize {
    match body {
        cosmic_space::Substance::Int(n) => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    }
}

/// Starts `subscribers` watches of `channel` on `machine`, each counting into `tally`.
async fn watchers(machine: &Machine, channel: &Point, subscribers: usize, tally: &Arc<Tally>) {
    let selector: Selector = channel.to_string().parse().unwrap();
    for _ in 0..subscribers {
        let mut watch = machine
            .hub()
            .watch(Agent::HyperUser, selector.clone())
            .await
            .unwrap();
        let tally = tally.clone();
        tokio::spawn(async move {
            while let Some(signal) = watch.next().await {
                tally.heard(number(&signal.core.body));
            }
        });
    }
}

fn publish_ping(channel: &Point, n: usize) -> Ping {
    let method: Method = "Ext<Say>".parse().unwrap();
    Ping::new(
        Point::hyperuser(),
        Surface::from(channel.clone()),
        method,
        i64::try_from(n).unwrap(),
    )
}

/// Percentile `p` of sorted `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

/// One message at a time through the cosmos until every watcher has it.
async fn fan_out(machine: &Machine, channel: &Point) -> Vec<Duration> {
    let (tally, mut finished) = Tally::new(FAN_OUT_MESSAGES, FAN_OUT_SUBSCRIBERS);
    watchers(machine, channel, FAN_OUT_SUBSCRIBERS, &tally).await;
    let mut samples = Vec::with_capacity(FAN_OUT_MESSAGES);
    for n in 0..FAN_OUT_MESSAGES {
        let started = Instant::now();
        let pong = machine
            .ping(Agent::HyperUser, publish_ping(channel, n))
            .await;
        assert!(pong.core.is_ok(), "{:?}", pong.core.error_message());
        let all = tokio::time::timeout(Duration::from_secs(10), finished.recv()).await;
        assert_eq!(
            all.ok().flatten(),
            Some(n),
            "message {n} did not reach every watcher"
        );
        samples.push(started.elapsed());
    }
    samples.sort();
    samples
}

/// The floor of the fan-out: a tokio broadcast to as many tasks.
async fn fan_out_floor() -> Vec<Duration> {
    let (tally, mut finished) = Tally::new(FAN_OUT_MESSAGES, FAN_OUT_SUBSCRIBERS);
    let (sender, _) = broadcast::channel::<usize>(1024);
    for _ in 0..FAN_OUT_SUBSCRIBERS {
        let mut receiver = sender.subscribe();
        let tally = tally.clone();
        tokio::spawn(async move {
            while let Ok(n) = receiver.recv().await {
                tally.heard(n);
            }
        });
    }
    let mut samples = Vec::with_capacity(FAN_OUT_MESSAGES);
    for n in 0..FAN_OUT_MESSAGES {
        let started = Instant::now();
        sender.send(n).unwrap();
        assert_eq!(finished.recv().await, Some(n));
        samples.push(started.elapsed());
    }
    samples.sort();
    samples
}

/// Messages per second through one channel with its subscribers, `IN_FLIGHT` publishes at
/// once, until every subscriber has every message.
async fn throughput(machine: &Arc<Machine>, channel: &Point) -> f64 {
    let (tally, mut finished) = Tally::new(THROUGHPUT_MESSAGES, THROUGHPUT_SUBSCRIBERS);
    watchers(machine, channel, THROUGHPUT_SUBSCRIBERS, &tally).await;
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    for n in 0..THROUGHPUT_MESSAGES {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let machine = machine.clone();
        let ping = publish_ping(channel, n);
        tokio::spawn(async move {
            let pong = machine.ping(Agent::HyperUser, ping).await;
            assert!(pong.core.is_ok(), "{:?}", pong.core.error_message());
            drop(permit);
        });
    }
    // Delivery is at most once: a subscriber that falls a queue behind is dropped, and then
    // some messages never reach all. Count what did, rather than wait for ever.
    let mut complete = 0usize;
    while complete < THROUGHPUT_MESSAGES {
        match tokio::time::timeout(Duration::from_secs(5), finished.recv()).await {
            Ok(Some(_)) => complete += 1,
            _ => {
                println!(
                    "  (only {complete} of {THROUGHPUT_MESSAGES} messages reached every \
                     subscriber: one fell behind and was dropped)"
                );
                break;
            }
        }
    }
    complete as f64 / started.elapsed().as_secs_f64()
}

/// The floor of the throughput: a tokio broadcast with as many receivers.
async fn throughput_floor() -> f64 {
    let (tally, mut finished) = Tally::new(THROUGHPUT_MESSAGES, THROUGHPUT_SUBSCRIBERS);
    let (sender, _) = broadcast::channel::<usize>(THROUGHPUT_MESSAGES);
    for _ in 0..THROUGHPUT_SUBSCRIBERS {
        let mut receiver = sender.subscribe();
        let tally = tally.clone();
        tokio::spawn(async move {
            while let Ok(n) = receiver.recv().await {
                tally.heard(n);
            }
        });
    }
    let started = Instant::now();
    for n in 0..THROUGHPUT_MESSAGES {
        sender.send(n).unwrap();
    }
    for _ in 0..THROUGHPUT_MESSAGES {
        finished.recv().await.unwrap();
    }
    THROUGHPUT_MESSAGES as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let machine = Arc::new(
            Machine::open(dir.path(), 2, Drivers::builtin(SecretKey::random().unwrap()))
                .await
                .unwrap(),
        );
        exec(&machine, "create localhost<Space>").await;

        println!(
            "Fan-out: one message to {FAN_OUT_SUBSCRIBERS} subscribers, one at a time \
             ({FAN_OUT_MESSAGES} messages, median of {ROUNDS} rounds)"
        );
        let mut floors = Vec::new();
        let mut ours = Vec::new();
        for round in 0..ROUNDS {
            floors.push(fan_out_floor().await);
            let channel: Point = format!("localhost:fan-{round}").parse().unwrap();
            exec(&machine, &format!("create {channel}<Channel>")).await;
            ours.push(fan_out(&machine, &channel).await);
        }
        let p50 = |runs: &[Vec<Duration>], p: f64| {
            median(runs.iter().map(|s| percentile(s, p).as_secs_f64()).collect())
        };
        let (floor50, floor99) = (p50(&floors, 0.5), p50(&floors, 0.99));
        let (ours50, ours99) = (p50(&ours, 0.5), p50(&ours, 0.99));
        println!(
            "  floor: tokio broadcast        p50 {:>9.3} ms  p99 {:>9.3} ms",
            floor50 * 1e3,
            floor99 * 1e3
        );
        println!(
            "  channel (publish → all)       p50 {:>9.3} ms  p99 {:>9.3} ms  (×{:.1} / ×{:.1} the floor; SPEC §15: p50 ≤ 20 ms)",
            ours50 * 1e3,
            ours99 * 1e3,
            ours50 / floor50,
            ours99 / floor99
        );

        println!(
            "Throughput: {THROUGHPUT_MESSAGES} messages through one channel with \
             {THROUGHPUT_SUBSCRIBERS} subscribers, {IN_FLIGHT} publishes in flight \
             (median of {ROUNDS} rounds)"
        );
        let mut floors = Vec::new();
        let mut ours = Vec::new();
        for round in 0..ROUNDS {
            floors.push(throughput_floor().await);
            let channel: Point = format!("localhost:busy-{round}").parse().unwrap();
            exec(&machine, &format!("create {channel}<Channel>")).await;
            ours.push(throughput(&machine, &channel).await);
        }
        let (floor, ours) = (median(floors), median(ours));
        println!("  floor: tokio broadcast        {floor:>12.0} messages/s");
        println!(
            "  channel                       {ours:>12.0} messages/s (×{:.3} the floor; {:.0} deliveries/s)",
            ours / floor,
            ours * THROUGHPUT_SUBSCRIBERS as f64
        );
        let metrics = machine.metrics();
        println!(
            "  hub: {} delivered, {} dropped",
            metrics.channel_deliveries(ChannelDelivery::Delivered),
            metrics.channel_deliveries(ChannelDelivery::Dropped)
        );
    });
}
