//! Failover of a cosmos across machines, against SPEC §15: a machine killed with `kill -9` → its
//! particles answer again from another machine within 3 s at the median and 5 s at p99 over
//! repeated kills; a machine stopped with `SIGSTOP` → within 10 s.
//!
//! One cluster ([`tests::cluster`]): three release `starlane serve` machines, `m-a`, `m-b` and
//! `m-c`, on a private NATS server and a private PostgreSQL, with the product's default lease
//! (`STARLANE_LEASE` is not set), and 12 counter mechtrons spread over their six stars by
//! rendezvous. Then, round after round, first with `kill -9`, then with `SIGSTOP`:
//!
//! 1. wait until every machine sees all three alive and every counter answers through every
//!    machine, and one lease more;
//! 2. pick a victim: the next machine in turn that hosts at least one counter, by the registry
//!    (adopted particles stay where they were adopted, so after the first round rendezvous
//!    over all six stars no longer says where a counter is);
//! 3. kill it (or stop it), and time from the signal until *every* counter has answered
//!    `Ext<Get>` with success through a survivor's control port. Each counter is polled on
//!    connections of its own, alternating between the two survivors, a new attempt every
//!    25 ms, each waiting 400 ms for its answer (a stopped machine never answers, so its waves
//!    end in 408s): the figures are good to a few tens of milliseconds. The survivors' logs
//!    are watched too, for the line saying one of them buried the victim;
//! 4. start the victim again on its data directory under its name (or continue it), and wait
//!    for it to rejoin.
//!
//! Printed: every round, then the median, p99 (nearest rank: the maximum for up to 100
//! rounds) and maximum of each kind, beside the floor measured in the same run — the lease (a
//! dead machine's particles move only once its lease has expired, at most one renewal tick
//! less after the fault) and one round trip to a counter on a live machine — and the SPEC's
//! targets. A benchmark measures and does not judge: it fails only if some counter does not
//! answer within 30 s of a fault, or a machine does not come back.
//!
//! Run: `cargo bench -p tests --bench failover` (`KILLS=N` and `STOPS=N` change the 10 rounds
//! of each, `COUNTERS=N` the 12 counters). It takes a few minutes after the build.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmic_hyperspace::control::Client;
use tests::cluster::{Cluster, NAMES, ping};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// How often a new attempt is made for a counter that has not answered yet.
const ATTEMPT_EVERY: Duration = Duration::from_millis(25);

/// How long each attempt's wave waits for its answer, in milliseconds.
const WAVE_WAIT_MS: u64 = 400;

/// How long after a fault every counter must have answered before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// What happens to the victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `kill -9`: the process is gone; it is started again afterwards.
    Kill,
    /// `SIGSTOP`: the process is frozen, its connections open; it is continued afterwards.
    Stop,
}

impl Fault {
    fn label(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9",
            Fault::Stop => "SIGSTOP",
        }
    }
}

/// A survivor's control port, to open connections to.
#[derive(Debug, Clone)]
struct Door {
    name: &'static str,
    addr: SocketAddr,
    token: Arc<str>,
}

/// What one round measured.
#[derive(Debug)]
struct Round {
    victim: &'static str,
    /// How many counters the victim hosted, of how many.
    hosted: usize,
    counters: usize,
    /// From the fault until every counter had answered through a survivor.
    every: Duration,
    /// From the fault until the first of the victim's counters answered.
    first_hosted: Option<Duration>,
    /// From the fault until a survivor's log said it buried the victim, and which.
    burial: Option<(Duration, String)>,
    /// From restarting (or continuing) the victim until it had rejoined and every counter
    /// answered through every machine.
    back: Duration,
    /// How many counters each machine hosted before the fault, and how many of them were
    /// not where they were first placed (adopted in an earlier round).
    placement: String,
    /// Anything unexpected seen in the round.
    notes: Vec<String>,
}

fn main() {
    let kills = setting("KILLS", 10);
    let stops = setting("STOPS", 10);
    let count = setting("COUNTERS", 12);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("a tokio runtime: {e}"));

    let mut cluster = Cluster::start(None);
    let points = cluster.counters(count);
    println!(
        "3 machines (release `starlane serve`, 2 stars each) on a private NATS and PostgreSQL; \
         lease {} ms (the product default: STARLANE_LEASE unset); {count} counter mechtrons",
        cluster.lease().as_millis()
    );
    let settled = settle(&cluster, &runtime, &points);
    println!(
        "every counter answered through every machine {:.1} s after the counters were created",
        settled.as_secs_f64()
    );
    let trip = round_trips(&cluster, &runtime, &points);
    println!(
        "one round trip (Ext<Get> to a counter on a live machine, through each machine): \
         p50 {:.2} ms, max {:.2} ms over {} pings",
        millis(quantile(&trip, 0.5)),
        millis(quantile(&trip, 1.0)),
        trip.len()
    );
    println!(
        "{} counters placed: {}",
        points.len(),
        placement(&runtime.block_on(cluster.hosts(&points)))
    );

    let mut turn = 0;
    let mut results: BTreeMap<&'static str, Vec<Round>> = BTreeMap::new();
    for (fault, rounds) in [(Fault::Kill, kills), (Fault::Stop, stops)] {
        println!();
        println!("{} rounds ({rounds}):", fault.label());
        for number in 1..=rounds {
            let round = run_round(&mut cluster, &runtime, &points, fault, turn);
            turn += 1;
            print_round(fault, number, &round);
            results.entry(fault.label()).or_default().push(round);
        }
    }

    println!();
    println!("summary (p50 and p99 by nearest rank; p99 is the maximum for up to 100 rounds):");
    for (fault, target) in [
        (Fault::Kill, "SPEC §15: ≤ 3 s p50, ≤ 5 s p99"),
        (Fault::Stop, "SPEC §15: ≤ 10 s"),
    ] {
        let Some(rounds) = results.get(fault.label()) else {
            continue;
        };
        if rounds.is_empty() {
            continue;
        }
        let every: Vec<Duration> = rounds.iter().map(|round| round.every).collect();
        let burials: Vec<Duration> = rounds
            .iter()
            .filter_map(|round| round.burial.as_ref().map(|(at, _)| *at))
            .collect();
        println!(
            "  {:<8} {:>2} rounds: every counter answering again after p50 {:.3} s, p99 {:.3} s, \
             max {:.3} s   [{target}]",
            fault.label(),
            rounds.len(),
            seconds(quantile(&every, 0.5)),
            seconds(quantile(&every, 0.99)),
            seconds(quantile(&every, 1.0)),
        );
        if !burials.is_empty() {
            println!(
                "  {:<8}           the victim buried (a survivor's log) after p50 {:.3} s, \
                 max {:.3} s ({} of {} rounds seen)",
                "",
                seconds(quantile(&burials, 0.5)),
                seconds(quantile(&burials, 1.0)),
                burials.len(),
                rounds.len()
            );
        }
    }
    println!(
        "  floor: the lease, {} ms (renewed every {} ms: a dead machine's particles cannot move \
         sooner than {}–{} ms after the fault), plus one round trip, p50 {:.2} ms",
        cluster.lease().as_millis(),
        (cluster.lease() / 8).as_millis(),
        (cluster.lease() - cluster.lease() / 8).as_millis(),
        cluster.lease().as_millis(),
        millis(quantile(&trip, 0.5))
    );
}

/// One round: settle, pick a victim, fault it, time every counter back, bring it back.
fn run_round(
    cluster: &mut Cluster,
    runtime: &Runtime,
    points: &[String],
    fault: Fault,
    turn: usize,
) -> Round {
    let mut notes = Vec::new();
    settle(cluster, runtime, points);
    // Steady state before the fault: a restarted machine's first lease fully behind it.
    std::thread::sleep(cluster.lease());
    let hosts = runtime.block_on(cluster.hosts(points));
    let unplaced: Vec<&String> = hosts
        .iter()
        .filter(|(_, host)| host.is_none())
        .map(|(point, _)| point)
        .collect();
    if !unplaced.is_empty() {
        notes.push(format!("counters with no location: {unplaced:?}"));
    }
    let hosting = |index: usize| {
        hosts
            .values()
            .filter(|host| host.as_deref() == Some(NAMES[index]))
            .count()
    };
    let preferred = turn % NAMES.len();
    let index = (0..NAMES.len())
        .map(|k| (preferred + k) % NAMES.len())
        .find(|&index| hosting(index) > 0)
        .unwrap_or_else(|| panic!("no machine hosts a counter: {hosts:?}"));
    if index != preferred {
        notes.push(format!(
            "{} hosted no counter; {} was the victim instead",
            NAMES[preferred], NAMES[index]
        ));
    }
    let victim = NAMES[index];
    let hosted: Vec<String> = hosts
        .iter()
        .filter(|(_, host)| host.as_deref() == Some(victim))
        .map(|(point, _)| point.clone())
        .collect();
    let survivors: Vec<usize> = (0..NAMES.len()).filter(|&i| i != index).collect();
    let doors: Arc<[Door]> = survivors
        .iter()
        .map(|&i| {
            let (addr, token) = cluster.door(i);
            Door {
                name: NAMES[i],
                addr,
                token: token.into(),
            }
        })
        .collect();
    // Connections are opened before the fault, so the clock counts none of that.
    let pools: Vec<Vec<Vec<Client>>> = runtime.block_on(async {
        let mut pools = Vec::new();
        for _ in points {
            let mut pool = Vec::new();
            for door in doors.iter() {
                pool.push(vec![connect(door).await.unwrap_or_else(|e| panic!("{e}"))]);
            }
            pools.push(pool);
        }
        pools
    });
    let logs: Vec<(PathBuf, u64)> = survivors
        .iter()
        .map(|&i| {
            let log = cluster.log(i);
            let length = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            (log, length)
        })
        .collect();

    let faulted = Instant::now();
    match fault {
        Fault::Kill => cluster.kill9(index),
        Fault::Stop => cluster.server(index).signal("STOP"),
    }
    let (answers, burial) = runtime.block_on(async {
        let watcher = tokio::spawn(burial(logs.clone(), victim, faulted));
        let mut polls = JoinSet::new();
        for (point, idle) in points.iter().zip(pools) {
            let (doors, point) = (doors.clone(), point.clone());
            polls.spawn(async move {
                let answered = until_answers(&doors, &point, faulted, idle).await;
                (point, answered)
            });
        }
        let mut answers = BTreeMap::new();
        while let Some(joined) = polls.join_next().await {
            let (point, answered) = joined.unwrap_or_else(|e| panic!("a poll failed: {e}"));
            let answered = answered.unwrap_or_else(|why| {
                panic!(
                    "{} of {victim}: {point} did not answer through a survivor within {PATIENCE:?} \
                     of the fault: {why}",
                    fault.label()
                )
            });
            answers.insert(point, answered);
        }
        // The burial is logged before the adoption it leads to; give the watcher a moment
        // to read it if it has not yet.
        let burial = tokio::time::timeout(Duration::from_secs(2), watcher)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        (answers, burial)
    });
    let every = answers.values().copied().max().unwrap_or_default();
    let first_hosted = hosted
        .iter()
        .filter_map(|point| answers.get(point).copied())
        .min();
    for (log, from) in &logs {
        let text = read_from(log, *from);
        for line in text.lines().filter(|line| line.contains("lost its lease")) {
            notes.push(format!("a survivor: {line}"));
        }
    }

    let back = Instant::now();
    match fault {
        Fault::Kill => cluster.restart(index),
        Fault::Stop => cluster.server(index).signal("CONT"),
    }
    settle(cluster, runtime, points);
    Round {
        victim,
        hosted: hosted.len(),
        counters: points.len(),
        every,
        first_hosted,
        burial,
        back: back.elapsed(),
        placement: format!(
            "{}; {} of {} away from where rendezvous over all six stars puts them",
            placement(&hosts),
            hosts
                .iter()
                .filter(|(point, host)| host.as_deref() != Some(cluster.host_of(point).as_str()))
                .count(),
            points.len()
        ),
        notes,
    }
}

/// Waits until every machine sees all three alive and every counter answers `Ext<Get>`
/// through every machine; how long that took.
fn settle(cluster: &Cluster, runtime: &Runtime, points: &[String]) -> Duration {
    let started = Instant::now();
    for index in 0..NAMES.len() {
        cluster.until_all_alive(index);
    }
    runtime.block_on(async {
        for (index, name) in NAMES.iter().enumerate() {
            let mut client = cluster.client(index).await;
            for point in points {
                let deadline = Instant::now() + PATIENCE;
                loop {
                    match ping(&mut client, point, "Get", 2_000).await {
                        Ok((status, _)) if status.is_ok() => break,
                        Ok((status, body)) => assert!(
                            Instant::now() < deadline,
                            "{point} did not answer through {name} within {PATIENCE:?}: {status} {body}"
                        ),
                        Err(err) => {
                            assert!(
                                Instant::now() < deadline,
                                "{point} did not answer through {name} within {PATIENCE:?}: {err}"
                            );
                            client = cluster.client(index).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    });
    started.elapsed()
}

/// Round trips of `Ext<Get>` to every counter through every machine, all alive: 10 each,
/// after one to warm the way.
fn round_trips(cluster: &Cluster, runtime: &Runtime, points: &[String]) -> Vec<Duration> {
    runtime.block_on(async {
        let mut trips = Vec::new();
        for (index, name) in NAMES.iter().enumerate() {
            let mut client = cluster.client(index).await;
            for point in points {
                for attempt in 0..11 {
                    let sent = Instant::now();
                    let (status, body) = ping(&mut client, point, "Get", 2_000)
                        .await
                        .unwrap_or_else(|e| panic!("{point} through {name}: {e}"));
                    let took = sent.elapsed();
                    assert!(status.is_ok(), "{point}: {status} {body}");
                    if attempt > 0 {
                        trips.push(took);
                    }
                }
            }
        }
        trips
    })
}

/// Polls `point` until it answers with success through one of `doors` (alternating), starting
/// with the connections in `idle` (one list per door); how long after `since` the answer came.
async fn until_answers(
    doors: &[Door],
    point: &str,
    since: Instant,
    mut idle: Vec<Vec<Client>>,
) -> Result<Duration, String> {
    let mut attempts = JoinSet::new();
    let mut tick = tokio::time::interval(ATTEMPT_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next = 0;
    let mut last = String::from("no attempt was answered");
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if since.elapsed() > PATIENCE {
                    return Err(last);
                }
                let door = next % doors.len();
                next += 1;
                let client = idle[door].pop();
                attempts.spawn(attempt(doors[door].clone(), door, client, point.to_string()));
            }
            Some(joined) = attempts.join_next() => {
                let done = joined.map_err(|e| format!("an attempt failed: {e}"))?;
                match done.outcome {
                    Ok(()) => return Ok(done.at.duration_since(since)),
                    Err(why) => last = why,
                }
                if let Some(client) = done.client {
                    idle[done.door].push(client);
                }
            }
        }
    }
}

/// One `Ext<Get>` and when its answer came; the connection, if it can be used again.
struct Attempt {
    door: usize,
    client: Option<Client>,
    outcome: Result<(), String>,
    at: Instant,
}

async fn attempt(door: Door, index: usize, client: Option<Client>, point: String) -> Attempt {
    let mut client = match client {
        Some(client) => client,
        None => match connect(&door).await {
            Ok(client) => client,
            Err(why) => {
                return Attempt {
                    door: index,
                    client: None,
                    outcome: Err(why),
                    at: Instant::now(),
                };
            }
        },
    };
    let answer = ping(&mut client, &point, "Get", WAVE_WAIT_MS).await;
    let at = Instant::now();
    let (client, outcome) = match answer {
        Ok((status, _)) if status.is_ok() => (Some(client), Ok(())),
        Ok((status, body)) => (
            Some(client),
            Err(format!("{status} through {}: {body}", door.name)),
        ),
        // The exchange was cut short: this connection is done.
        Err(err) => (None, Err(format!("through {}: {err}", door.name))),
    };
    Attempt {
        door: index,
        client,
        outcome,
        at,
    }
}

async fn connect(door: &Door) -> Result<Client, String> {
    Client::connect(door.addr, &door.token)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", door.name))
}

/// Watches the survivors' logs (from the offsets given) for the line saying one of them
/// buried `victim`: how long after `since` it was seen, and the line.
async fn burial(
    logs: Vec<(PathBuf, u64)>,
    victim: &str,
    since: Instant,
) -> Option<(Duration, String)> {
    let wanted = format!("membership: machine {victim} is dead");
    while since.elapsed() < PATIENCE {
        for (log, from) in &logs {
            if let Some(line) = read_from(log, *from)
                .lines()
                .find(|line| line.contains(&wanted))
            {
                return Some((since.elapsed(), line.to_string()));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The text of `log` after its first `from` bytes (nothing if it cannot be read).
fn read_from(log: &std::path::Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = Vec::new();
    if let Ok(mut file) = std::fs::File::open(log)
        && file.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = file.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn print_round(fault: Fault, number: usize, round: &Round) {
    let burial = match &round.burial {
        Some((at, line)) => {
            let by = line.rsplit(';').next().unwrap_or_default().trim();
            format!("buried at {:.3} s ({by})", seconds(*at))
        }
        None => "no burial seen in the survivors' logs".to_string(),
    };
    println!(
        "  {} {number:>2}: {} hosted {:>2} of {} counters; every counter answering after {:.3} s \
         (its first after {}); {burial}; back in {:.1} s  [placed: {}]",
        fault.label(),
        round.victim,
        round.hosted,
        round.counters,
        seconds(round.every),
        round
            .first_hosted
            .map(|at| format!("{:.3} s", seconds(at)))
            .unwrap_or_else(|| "—".to_string()),
        seconds(round.back),
        round.placement,
    );
    for note in &round.notes {
        println!("      note: {note}");
    }
}

/// How many of the counters each machine hosts, e.g. `m-a 4, m-b 5, m-c 3`.
fn placement(hosts: &BTreeMap<String, Option<String>>) -> String {
    let mut per_machine: BTreeMap<&str, usize> = NAMES.iter().map(|name| (*name, 0)).collect();
    for host in hosts.values().flatten() {
        *per_machine.entry(host.as_str()).or_default() += 1;
    }
    per_machine
        .iter()
        .map(|(machine, n)| format!("{machine} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `q` quantile of `samples` by nearest rank (`1.0`: the maximum).
fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
