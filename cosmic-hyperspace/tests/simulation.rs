//! A deterministic simulation of a cosmos (SPEC §14.2): no processes, no sockets, no real time.
//!
//! - **Placement**: rendezvous hashing of many points over many stars — how even the load is,
//!   and that a star or a machine dying moves exactly its particles, and a star joining moves
//!   only particles onto it (about one in `stars + 1`).
//! - **Membership**: a database with its own clock holding the leases (acquire, renew, read and
//!   bury with the conditions of `registry::postgres::leases`), and machines that each run a
//!   [`Judge`] on a monotonic clock of their own (another offset; in one scenario another rate)
//!   and go through `Membership::join` and `Membership::tick` step by step: renew (or take a
//!   new lease when refused), set the gate, read the leases, bury what `Judge::to_bury` names,
//!   sleep a tick. Each call's request and response are lost or delayed at random (seeded
//!   splitmix64); a request executes when it reaches the database, by the database's clock,
//!   even if its caller gave up; `Judge::renewed` gets the time the renewal *began*, and only
//!   if the answer arrives. Buses flap (sampled at each tick, as the code does), machines are
//!   paused (`SIGSTOP`: no steps, the clock runs on) or killed (their calls in flight still
//!   land). Time advances a millisecond at a time.
//!
//! Checked every millisecond, for every process not killed (paused ones included, as if they
//! could serve the instant they resume): if its gate is open or its judge says it may serve,
//! its machine's lease in the database is unexpired and unburied; no star is served by two
//! processes. Checked at every burial: nobody is buried within a lease of a renewal the
//! database took, nor while it may serve. Checked at every request to bury: the burier's ticks
//! have seen the bus up for a whole lease. Liveness (in the scenarios that allow it): a killed
//! machine is buried soon after its lease's end; nobody alive is buried on a calm network.
//!
//! `cargo test -p cosmic-hyperspace --test simulation -- --nocapture` prints the figures of a
//! size a debug build runs in seconds (100 stars, 10k particles; 5 machines, 64 seeds per
//! scenario); `cargo bench -p cosmic-hyperspace --bench simulation` runs the full size
//! (1,000 stars, 100k particles; 1,024 seeds per scenario) with the same checks. The holes
//! the simulation once found (a second process of one name, an unheard burial, the living
//! buried after a database outage) are closed, each kept as a test.

use std::time::{Duration, Instant};

use cosmic_hyperspace::membership::{Judge, Lease, LeaseTiming};
use cosmic_hyperspace::placement::place;
use cosmic_space::{Point, StarKey};

/// splitmix64: a seeded stream of numbers, the same on every platform (no dependency).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn draw(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.draw() % (high - low + 1)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.draw() >> 11) as f64) < p * (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------------------------

/// What one change of the star list moved.
#[derive(Debug, Clone, Copy)]
pub struct Moves {
    /// Particles whose star changed.
    pub moved: usize,
    /// How many had to move (the dead stars' particles), or were expected to (a join).
    pub expected: f64,
    /// The most moved particles any one star received.
    pub most_on_one_star: usize,
}

/// The figures of placing `particles` points over `machines` × `per_machine` stars.
#[derive(Debug, Clone)]
pub struct Placement {
    pub stars: usize,
    pub particles: usize,
    pub max_over_mean: f64,
    pub min_over_mean: f64,
    pub star_dies: Moves,
    pub machine_dies: Moves,
    pub star_joins: Moves,
    pub elapsed: Duration,
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let share = |moves: &Moves| 100.0 * moves.moved as f64 / self.particles as f64;
        writeln!(
            f,
            "placement: {} particles over {} stars ({} per star on average), placed in {:.1?} \
             per full pass",
            self.particles,
            self.stars,
            self.particles / self.stars,
            self.elapsed / 4,
        )?;
        writeln!(
            f,
            "  balance: max/mean {:.3}, min/mean {:.3}",
            self.max_over_mean, self.min_over_mean
        )?;
        for (what, moves) in [
            ("one star dies", &self.star_dies),
            ("one machine (4 stars) dies", &self.machine_dies),
        ] {
            writeln!(
                f,
                "  {what}: {} moved ({:.3}%), exactly the dead stars' particles; at most {} \
                 landed on one survivor",
                moves.moved,
                share(moves),
                moves.most_on_one_star
            )?;
        }
        write!(
            f,
            "  a star joins: {} moved ({:.3}%; 1/{} would be {:.1}), every one onto the new star",
            self.star_joins.moved,
            share(&self.star_joins),
            self.stars + 1,
            self.star_joins.expected
        )
    }
}

fn star_keys(machines: u16, per_machine: u16) -> Vec<StarKey> {
    (0..machines)
        .flat_map(|m| {
            (0..per_machine)
                .map(move |k| StarKey::new(&format!("m{m}"), "star", k).expect("a star key"))
        })
        .collect()
}

/// Where in `stars` rendezvous puts `point`.
fn slot(stars: &[StarKey], point: &Point) -> usize {
    let star = place(point, stars).expect("there are stars");
    stars
        .iter()
        .position(|candidate| std::ptr::eq(candidate, star))
        .expect("place answers one of the stars it was given")
}

/// Places `particles` points over `machines` × `per_machine` stars, then again with one star
/// dead, with one machine dead and with a star more; panics if anything moves that need not.
pub fn placement(machines: u16, per_machine: u16, particles: usize) -> Placement {
    let stars = star_keys(machines, per_machine);
    let points: Vec<Point> = (0..particles)
        .map(|i| format!("localhost:app:p{i}").parse().expect("a point"))
        .collect();
    let started = Instant::now();
    let home: Vec<usize> = points.iter().map(|point| slot(&stars, point)).collect();
    let mut load = vec![0usize; stars.len()];
    for &star in &home {
        load[star] += 1;
    }
    let mean = particles as f64 / stars.len() as f64;
    let max = *load.iter().max().expect("stars");
    let min = *load.iter().min().expect("stars");

    let dead_star = [stars.len() / 2];
    let machine = usize::from(machines / 3) * usize::from(per_machine);
    let dead_machine: Vec<usize> = (machine..machine + usize::from(per_machine)).collect();
    let star_dies = without(&stars, &points, &home, &dead_star);
    let machine_dies = without(&stars, &points, &home, &dead_machine);
    let star_joins = joining(&stars, &points, &home, machines);
    Placement {
        stars: stars.len(),
        particles,
        max_over_mean: max as f64 / mean,
        min_over_mean: min as f64 / mean,
        star_dies,
        machine_dies,
        star_joins,
        elapsed: started.elapsed(),
    }
}

/// Places every point again without the stars `dead`: exactly their particles must move.
fn without(stars: &[StarKey], points: &[Point], home: &[usize], dead: &[usize]) -> Moves {
    let survivors: Vec<StarKey> = stars
        .iter()
        .enumerate()
        .filter(|(index, _)| !dead.contains(index))
        .map(|(_, star)| star.clone())
        .collect();
    let mut received = vec![0usize; survivors.len()];
    let mut moved = 0;
    for (point, &was) in points.iter().zip(home) {
        let now = slot(&survivors, point);
        if survivors[now] != stars[was] {
            assert!(
                dead.contains(&was),
                "{point} moved from {} to {} though its star lives",
                stars[was],
                survivors[now]
            );
            moved += 1;
            received[now] += 1;
        }
    }
    let orphans = home.iter().filter(|star| dead.contains(star)).count();
    assert!(
        orphans > 0,
        "the dead stars hosted nothing: a meaningless test"
    );
    assert_eq!(moved, orphans, "every particle of a dead star moves");
    Moves {
        moved,
        expected: orphans as f64,
        most_on_one_star: received.into_iter().max().unwrap_or(0),
    }
}

/// Places every point again with one star more: only particles onto it may move, about one
/// in `stars + 1`.
fn joining(stars: &[StarKey], points: &[Point], home: &[usize], machines: u16) -> Moves {
    let mut with = stars.to_vec();
    with.push(StarKey::new(&format!("m{machines}"), "star", 0).expect("a star key"));
    let new = with.len() - 1;
    let mut moved = 0;
    for (point, &was) in points.iter().zip(home) {
        let now = slot(&with, point);
        if now != was {
            assert_eq!(
                now, new,
                "{point} moved from {} to {}, not onto the new star",
                stars[was], with[now]
            );
            moved += 1;
        }
    }
    let p = 1.0 / with.len() as f64;
    let expected = points.len() as f64 * p;
    let sigma = (expected * (1.0 - p)).sqrt();
    assert!(
        (moved as f64 - expected).abs() <= 5.0 * sigma + 1.0,
        "a join moved {moved} particles, {expected:.1} ± {sigma:.1} expected"
    );
    Moves {
        moved,
        expected,
        most_on_one_star: moved,
    }
}

// ---------------------------------------------------------------------------------------------
// Membership
// ---------------------------------------------------------------------------------------------

/// How the network treats each leg (request or response) of a call to the database.
#[derive(Debug, Clone, Copy)]
pub struct Network {
    /// Chance that a leg is lost.
    pub loss: f64,
    /// A leg's usual delay in milliseconds (uniform, inclusive).
    pub delay: (u64, u64),
    /// Chance that a leg is slow instead, and how slow.
    pub slow: f64,
    pub slow_delay: (u64, u64),
    /// How long a caller waits for an answer before its call fails (a broken connection).
    pub timeout: u64,
}

/// No loss, 1–20 ms a leg.
pub const CALM: Network = Network {
    loss: 0.0,
    delay: (1, 20),
    slow: 0.0,
    slow_delay: (0, 0),
    timeout: 1_000,
};

/// One leg in ten lost, 1–50 ms a leg, one in fifty 0.2–1.5 s (some beyond the caller's 1 s
/// timeout: those reach the database after the caller gave up).
pub const LOSSY: Network = Network {
    loss: 0.1,
    delay: (1, 50),
    slow: 0.02,
    slow_delay: (200, 1_500),
    timeout: 1_000,
};

/// What goes wrong in a scenario besides the network.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chaos {
    /// Every machine's bus drops now and then (20 ms – 3 s, every 1–15 s).
    pub flaps: bool,
    /// Machines are stopped (`SIGSTOP`) now and then for 0.3–8 s.
    pub pauses: bool,
    /// This many machines are killed at random times (none of the first 10 s).
    pub kills: usize,
    /// One machine cannot reach the database for 0.5–5 s.
    pub cut_one: bool,
    /// No machine reaches the database in this window (ms).
    pub db_outage: Option<(u64, u64)>,
    /// Every machine that is not killed is off the bus in this window (ms).
    pub bus_outage: Option<(u64, u64)>,
    /// The last machine is killed at this time (ms).
    pub kill_last_at: Option<u64>,
    /// Every answer to a burial is lost (the link drops at that moment).
    pub lose_burial_answers: bool,
    /// Machine clocks run fast or slow by up to this many parts per million.
    pub drift_ppm: u64,
    /// A second process with the first machine's name starts at this time, while the first
    /// one is paused from a little before it for the given length.
    pub twin: Option<(u64, u64)>,
}

/// A simulated cosmos and what goes wrong in it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub machines: usize,
    /// Simulated seconds per seed.
    pub seconds: u64,
    pub network: Network,
    pub chaos: Chaos,
}

/// What the runs of one scenario did and saw, over all seeds.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub seeds: u64,
    pub simulated_ms: u64,
    /// Simulated milliseconds times processes.
    pub process_ms: u64,
    pub ticks: u64,
    pub renewals: u64,
    /// Renewals whose caller saw no answer (a leg lost or too slow).
    pub renewals_failed: u64,
    /// Renewals the database refused (lease expired, buried or taken): the machine took a new
    /// lease.
    pub leases_lost: u64,
    pub legs_lost: u64,
    pub burials: u64,
    pub burials_of_killed: u64,
    /// Burials of machines that were not killed (they lost their lease to loss, pauses or
    /// cuts, and took a new one).
    pub burials_of_running: u64,
    pub kills: u64,
    /// Killed machines not buried by the end of their run though there was time.
    pub unburied: u64,
    /// Processes that gave up joining: another process held their name's lease.
    pub names_taken: u64,
    /// Killed machines: from the last renewal the database took to the burial (ms).
    pub renewal_to_burial: Vec<u64>,
    /// Killed machines: from the kill to the burial (ms).
    pub kill_to_burial: Vec<u64>,
    /// Burials that took in the database but whose answer never reached the burier (it adopts
    /// when it reads its name on the buried lease).
    pub unheard_burials: u64,
    /// Runs that ended with a burial not followed by any adoption (a burial heard or read, a
    /// machine starting or taking a new lease: each places every unplaced particle again).
    pub unadopted_at_end: u64,
    /// The longest time from a burial to the next adoption (ms).
    pub max_unadopted_ms: u64,
    /// Burials asked for within a lease of a bus drop the machine's ticks never saw.
    pub unseen_flap_burials: u64,
    /// Milliseconds machines served, summed.
    pub serving_ms: u64,
    /// Milliseconds processes served while the database held another epoch of their lease
    /// (a stale `acquire` that arrived after a newer one, or another process of the name).
    pub voided_epoch_ms: u64,
    /// Milliseconds in which a star was served by two processes.
    pub twice_served_ms: u64,
    pub violations: u64,
    pub first_violations: Vec<String>,
    /// When the last machine was buried, per seed (global ms).
    pub last_buried_at: Vec<u64>,
}

impl Tally {
    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.first_violations.len() < 5 {
            self.first_violations.push(what);
        }
    }

    /// Panics with the first violations if there were any.
    pub fn assert_safe(&self, scenario: &Scenario) {
        assert!(
            self.violations == 0,
            "{}: {} violations, the first:\n  {}",
            scenario.name,
            self.violations,
            self.first_violations.join("\n  ")
        );
    }

    pub fn max_renewal_to_burial(&self) -> u64 {
        self.renewal_to_burial.iter().copied().max().unwrap_or(0)
    }
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} seeds, {} simulated s, {} ticks; renewals {} ({} failed at the caller, {} \
             refused → new lease); legs lost {}; burials {} ({} of killed machines, {} of \
             running ones); kills {} (unburied {}); names taken {}; last renewal → burial \
             p50 {} ms max {} ms; kill → burial p50 {} ms max {} ms; burials unheard by their \
             burier {}; burial → adoption max {} ms (runs ending before one {}); burials \
             within a lease of an unseen bus drop {}; serving {:.1}% of machine-time (under a \
             voided epoch {} ms); a star served twice {} ms; violations {}",
            self.seeds,
            self.simulated_ms / 1000,
            self.ticks,
            self.renewals,
            self.renewals_failed,
            self.leases_lost,
            self.legs_lost,
            self.burials,
            self.burials_of_killed,
            self.burials_of_running,
            self.kills,
            self.unburied,
            self.names_taken,
            median(&self.renewal_to_burial),
            self.max_renewal_to_burial(),
            median(&self.kill_to_burial),
            self.kill_to_burial.iter().max().unwrap_or(&0),
            self.unheard_burials,
            self.max_unadopted_ms,
            self.unadopted_at_end,
            self.unseen_flap_burials,
            100.0 * self.serving_ms as f64 / self.process_ms.max(1) as f64,
            self.voided_epoch_ms,
            self.twice_served_ms,
            self.violations,
        )
    }
}

/// Runs `scenario` for `seeds` seeds from `first` and adds up what happened.
pub fn simulate(scenario: &Scenario, first: u64, seeds: u64) -> Tally {
    let mut tally = Tally::default();
    for seed in first..first + seeds {
        tally = Sim::new(scenario, seed, tally).run();
    }
    tally
}

/// The standard scenarios, in the order the tests and the bench print them.
pub const CALM_KILL: Scenario = Scenario {
    name: "calm, one kill",
    machines: 5,
    seconds: 60,
    network: CALM,
    chaos: Chaos {
        flaps: false,
        pauses: false,
        kills: 1,
        cut_one: false,
        db_outage: None,
        bus_outage: None,
        kill_last_at: None,
        lose_burial_answers: false,
        drift_ppm: 0,
        twin: None,
    },
};

pub const LOSSY_KILLS: Scenario = Scenario {
    name: "lossy, two kills",
    network: LOSSY,
    chaos: Chaos {
        kills: 2,
        ..CALM_KILL.chaos
    },
    ..CALM_KILL
};

pub const CHAOS: Scenario = Scenario {
    name: "chaos: loss, flaps, pauses, a cut, a kill",
    network: LOSSY,
    chaos: Chaos {
        flaps: true,
        pauses: true,
        kills: 1,
        cut_one: true,
        ..CALM_KILL.chaos
    },
    ..CALM_KILL
};

pub const DRIFT: Scenario = Scenario {
    name: "chaos with clocks 1% apart",
    chaos: Chaos {
        drift_ppm: 10_000,
        ..CHAOS.chaos
    },
    ..CHAOS
};

pub const BUS_HEALS: Scenario = Scenario {
    name: "survivors off the bus 10–15 s, m4 killed at 10 s",
    seconds: 30,
    chaos: Chaos {
        kills: 0,
        bus_outage: Some((10_000, 15_000)),
        kill_last_at: Some(10_000),
        ..CALM_KILL.chaos
    },
    ..CALM_KILL
};

pub const DB_OUTAGE: Scenario = Scenario {
    name: "the database away 20–24 s",
    seconds: 40,
    chaos: Chaos {
        kills: 0,
        db_outage: Some((20_000, 24_000)),
        ..CALM_KILL.chaos
    },
    ..CALM_KILL
};

pub const UNHEARD_BURIAL: Scenario = Scenario {
    name: "calm, one kill, every answer to a burial lost",
    chaos: Chaos {
        lose_burial_answers: true,
        ..CALM_KILL.chaos
    },
    ..CALM_KILL
};

pub const TWIN: Scenario = Scenario {
    name: "m0 frozen 10–10.6 s, a second m0 started at 10.2 s",
    seconds: 30,
    chaos: Chaos {
        kills: 0,
        twin: Some((10_200, 600)),
        ..CALM_KILL.chaos
    },
    ..CALM_KILL
};

/// What a process plans to suffer, in global milliseconds.
#[derive(Debug, Clone, Default)]
struct Faults {
    bus_down: Vec<(u64, u64)>,
    paused: Vec<(u64, u64)>,
    db_cut: Vec<(u64, u64)>,
    killed: Option<u64>,
}

fn within(windows: &[(u64, u64)], at: u64) -> bool {
    windows.iter().any(|&(from, to)| from <= at && at < to)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Acquire,
    Renew(u64),
    Leases,
    Bury(usize, u64),
}

#[derive(Debug, Clone)]
enum Reply {
    /// The new epoch, or `None`: another process holds the lease.
    Acquired(Option<u64>),
    Renewed(bool),
    Leases(Vec<Lease>),
    Buried(bool),
}

/// A call a process is waiting on.
#[derive(Debug)]
struct Flight {
    id: u64,
    /// Its local time when the call began.
    began: u64,
    /// When the answer (or the failure) reaches the caller, global ms.
    answer_at: u64,
    /// Whether the caller sees a failure whatever the database did.
    fails: bool,
    call: Call,
    reply: Option<Reply>,
}

/// A request on its way to the database.
#[derive(Debug)]
struct Transit {
    process: usize,
    flight: u64,
    at: u64,
    call: Call,
}

/// Where a process is in `Membership::join` and `Membership::tick`.
#[derive(Debug)]
enum Step {
    Starting(u64),
    Joining,
    Sleeping(u64),
    Renewing,
    Acquiring,
    Reading,
    Burying(Vec<(usize, u64)>),
    /// `join` gave up: another process holds the name's lease (`JoinError::NameTaken`).
    Gone,
}

#[derive(Debug)]
struct Process {
    /// Its machine's name, an index into the names (two processes may share one).
    name: usize,
    offset: u64,
    drift_ppm: i64,
    faults: Faults,
    judge: Judge,
    /// What the stars' `Gate` holds: serve until this local time.
    gate: Option<u64>,
    /// The judge as the tick cloned it after the renewal.
    snapshot: Judge,
    epoch: u64,
    step: Step,
    flight: Option<Flight>,
    /// Since when (local) the ticks have seen the bus up without a break.
    bus_seen_since: Option<u64>,
    /// When `join` first asked for the lease (global ms).
    joining_since: Option<u64>,
    /// The burials this process made and adopted (`Membership::adopted`).
    adopted: Vec<(usize, u64)>,
}

impl Process {
    fn local(&self, now: u64) -> u64 {
        let now = i64::try_from(now).expect("ms");
        let drift = now * self.drift_ppm / 1_000_000;
        u64::try_from(i64::try_from(self.offset).expect("ms") + now + drift).expect("ms")
    }

    fn killed(&self, now: u64) -> bool {
        self.faults.killed.is_some_and(|at| at <= now)
    }

    fn serving(&self, local: u64) -> bool {
        self.gate.is_some_and(|until| local < until) || self.judge.may_serve(local)
    }
}

#[derive(Debug, Clone)]
struct Row {
    epoch: u64,
    /// Database time.
    expires_at: u64,
    buried: bool,
    /// The process that took it (its holder number).
    holder: usize,
    /// The name of the machine that buried it.
    buried_by: Option<usize>,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    seed: u64,
    ttl: u64,
    tick: u64,
    rng: Rng,
    now: u64,
    db_offset: u64,
    names: Vec<String>,
    rows: Vec<Option<Row>>,
    /// Per name: the epoch and database time of the last renewal or acquisition that took.
    extended: Vec<(u64, u64)>,
    processes: Vec<Process>,
    transit: Vec<Transit>,
    next_flight: u64,
    buried_at: Vec<Option<u64>>,
    /// Since when a burial has left a dead machine's particles unadopted (the first burial
    /// that no adoption followed yet).
    unadopted_since: Option<u64>,
    tally: Tally,
}

const STARS: u16 = 4;

impl<'a> Sim<'a> {
    /// One run of `scenario`, adding up into `tally`.
    fn new(scenario: &'a Scenario, seed: u64, tally: Tally) -> Sim<'a> {
        let timing = LeaseTiming::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).expect("ms");
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
        let end = scenario.seconds * 1000;
        let chaos = scenario.chaos;
        let n = scenario.machines;
        let mut plans: Vec<(usize, u64, Faults)> = Vec::new();
        for name in 0..n {
            let start = rng.range(0, 500);
            let mut faults = Faults::default();
            if chaos.flaps {
                let mut at = rng.range(1_000, 15_000);
                while at < end {
                    let down = rng.range(20, 3_000);
                    faults.bus_down.push((at, at + down));
                    at += down + rng.range(1_000, 15_000);
                }
            }
            if chaos.pauses {
                for _ in 0..rng.range(0, 2) {
                    let at = rng.range(2_000, end - 10_000);
                    faults.paused.push((at, at + rng.range(300, 8_000)));
                }
            }
            if let Some(window) = chaos.bus_outage
                && !(chaos.kill_last_at.is_some() && name == n - 1)
            {
                faults.bus_down.push(window);
            }
            if let Some(at) = chaos.kill_last_at
                && name == n - 1
            {
                faults.killed = Some(at);
            }
            plans.push((name, start, faults));
        }
        let mut killable: Vec<usize> = (0..n).collect();
        for _ in 0..chaos.kills {
            let victim = killable
                .remove(usize::try_from(rng.range(0, killable.len() as u64 - 1)).expect("index"));
            plans[victim].2.killed = Some(rng.range(10_000, end - 15_000));
        }
        if chaos.cut_one {
            let victim = usize::try_from(rng.range(0, n as u64 - 1)).expect("index");
            let at = rng.range(5_000, end - 10_000);
            plans[victim]
                .2
                .db_cut
                .push((at, at + rng.range(500, 5_000)));
        }
        if let Some((at, frozen)) = chaos.twin {
            plans[0].2.paused.push((at - 200, at - 200 + frozen));
            plans.push((0, at, Faults::default()));
        }
        if let Some(window) = chaos.db_outage {
            for plan in &mut plans {
                plan.2.db_cut.push(window);
            }
        }
        let processes = plans
            .into_iter()
            .map(|(name, start, faults)| {
                let drift = if chaos.drift_ppm > 0 {
                    i64::try_from(rng.range(0, 2 * chaos.drift_ppm)).expect("ppm")
                        - i64::try_from(chaos.drift_ppm).expect("ppm")
                } else {
                    0
                };
                Process {
                    name,
                    offset: rng.range(0, 1 << 40),
                    drift_ppm: drift,
                    faults,
                    judge: Judge::new(timing),
                    gate: None,
                    snapshot: Judge::new(timing),
                    epoch: 0,
                    step: Step::Starting(start),
                    flight: None,
                    bus_seen_since: None,
                    joining_since: None,
                    adopted: Vec::new(),
                }
            })
            .collect();
        Sim {
            scenario,
            seed,
            ttl: ms(timing.ttl),
            tick: ms(timing.tick),
            db_offset: rng.range(0, 1 << 40),
            rng,
            now: 0,
            names: (0..n).map(|m| format!("m{m}")).collect(),
            rows: vec![None; n],
            extended: vec![(0, 0); n],
            processes,
            transit: Vec::new(),
            next_flight: 0,
            buried_at: vec![None; n],
            unadopted_since: None,
            tally,
        }
    }

    fn run(mut self) -> Tally {
        let end = self.scenario.seconds * 1000;
        for now in 0..end {
            self.now = now;
            self.deliver();
            for process in 0..self.processes.len() {
                self.advance(process);
            }
            self.check();
        }
        self.tally.seeds += 1;
        self.tally.simulated_ms += end;
        self.tally.process_ms += end * self.processes.len() as u64;
        for process in &self.processes {
            let Some(killed) = process.faults.killed else {
                continue;
            };
            self.tally.kills += 1;
            let buried = self.rows[process.name]
                .as_ref()
                .is_some_and(|row| row.buried);
            match self.buried_at[process.name] {
                Some(at) => self.tally.kill_to_burial.push(at.saturating_sub(killed)),
                // Buried before it was killed (it had lost its lease and died taking a new one).
                None if buried => {}
                None if killed + self.ttl + 10 * self.tick < end => self.tally.unburied += 1,
                None => {}
            }
        }
        if let Some(since) = self.unadopted_since {
            self.tally.unadopted_at_end += 1;
            self.tally.max_unadopted_ms = self.tally.max_unadopted_ms.max(end - since);
        }
        if let Some(at) = self.buried_at.iter().flatten().max() {
            self.tally.last_buried_at.push(*at);
        }
        self.tally
    }

    fn db_time(&self) -> u64 {
        self.now + self.db_offset
    }

    fn delay(&mut self) -> (bool, u64) {
        let network = self.scenario.network;
        let lost = self.rng.chance(network.loss);
        let delay = if self.rng.chance(network.slow) {
            self.rng.range(network.slow_delay.0, network.slow_delay.1)
        } else {
            self.rng.range(network.delay.0, network.delay.1)
        };
        (lost, delay)
    }

    /// Sends `call` from `process` to the database: it executes there when (and if) the
    /// request arrives, and the caller learns the answer when (and if) the response arrives.
    fn send(&mut self, process: usize, call: Call) {
        let now = self.now;
        let (request_lost, there) = self.delay();
        let (response_lost, back) = self.delay();
        let response_lost = response_lost
            || (self.scenario.chaos.lose_burial_answers && matches!(call, Call::Bury(..)));
        let cut = &self.processes[process].faults.db_cut;
        let request_lost = request_lost || within(cut, now) || within(cut, now + there);
        let response_lost = response_lost || within(cut, now + there + back);
        self.tally.legs_lost += u64::from(request_lost) + u64::from(response_lost);
        let timeout = self.scenario.network.timeout;
        let fails = request_lost || response_lost || there + back > timeout;
        let id = self.next_flight;
        self.next_flight += 1;
        if !request_lost {
            self.transit.push(Transit {
                process,
                flight: id,
                at: now + there,
                call: call.clone(),
            });
        }
        let began = self.processes[process].local(now);
        self.processes[process].flight = Some(Flight {
            id,
            began,
            answer_at: now + if fails { timeout } else { there + back },
            fails,
            call,
            reply: None,
        });
    }

    /// The database executes the requests that arrive now, in a random order.
    fn deliver(&mut self) {
        let now = self.now;
        let mut arriving: Vec<Transit> = Vec::new();
        let mut index = 0;
        while index < self.transit.len() {
            if self.transit[index].at == now {
                arriving.push(self.transit.swap_remove(index));
            } else {
                index += 1;
            }
        }
        while !arriving.is_empty() {
            let pick =
                usize::try_from(self.rng.range(0, arriving.len() as u64 - 1)).expect("index");
            let transit = arriving.swap_remove(pick);
            let reply = self.execute(transit.process, &transit.call);
            match &mut self.processes[transit.process].flight {
                Some(flight) if flight.id == transit.flight => flight.reply = Some(reply),
                // The caller gave up on this call before it arrived.
                _ if matches!(reply, Reply::Buried(true)) => self.unheard_burial(),
                _ => {}
            }
        }
    }

    /// One statement of `registry::postgres::leases`, by the database's clock.
    fn execute(&mut self, process: usize, call: &Call) -> Reply {
        let at = self.db_time();
        let ttl = self.ttl;
        let name = self.processes[process].name;
        match *call {
            Call::Acquire => {
                let held = self.rows[name]
                    .as_ref()
                    .is_some_and(|row| !row.buried && row.expires_at > at && row.holder != process);
                if held {
                    return Reply::Acquired(None);
                }
                let epoch = self.rows[name].as_ref().map_or(1, |row| row.epoch + 1);
                self.rows[name] = Some(Row {
                    epoch,
                    expires_at: at + ttl,
                    buried: false,
                    holder: process,
                    buried_by: None,
                });
                self.extended[name] = (epoch, at);
                Reply::Acquired(Some(epoch))
            }
            Call::Renew(epoch) => {
                let row = self.rows[name]
                    .as_mut()
                    .filter(|row| row.epoch == epoch && !row.buried && row.expires_at > at);
                let renewed = row.is_some();
                if let Some(row) = row {
                    row.expires_at = at + ttl;
                    self.extended[name] = (epoch, at);
                }
                Reply::Renewed(renewed)
            }
            Call::Leases => Reply::Leases(
                self.rows
                    .iter()
                    .enumerate()
                    .filter_map(|(name, row)| {
                        let row = row.as_ref()?;
                        Some(Lease {
                            machine: self.names[name].clone(),
                            epoch: row.epoch,
                            stars: STARS,
                            remaining: (row.expires_at > at)
                                .then(|| Duration::from_millis(row.expires_at - at)),
                            buried: row.buried,
                            buried_by: row.buried_by.map(|by| self.names[by].clone()),
                        })
                    })
                    .collect(),
            ),
            Call::Bury(dead, epoch) => {
                let row = self.rows[dead]
                    .as_mut()
                    .filter(|row| row.epoch == epoch && !row.buried && row.expires_at <= at);
                let buried = row.is_some();
                if let Some(row) = row {
                    row.buried = true;
                    row.buried_by = Some(name);
                    self.buried(process, dead, epoch);
                    // Its particles wait for an adoption from now on.
                    self.unadopted_since.get_or_insert(self.now);
                }
                Reply::Buried(buried)
            }
        }
    }

    /// `process` just buried `dead` at `epoch`: nobody may be buried inside a lease it renewed,
    /// nor while it serves.
    fn buried(&mut self, process: usize, dead: usize, epoch: u64) {
        let at = self.db_time();
        let now = self.now;
        let (extended_epoch, extended_at) = self.extended[dead];
        self.tally.burials += 1;
        if extended_epoch != epoch || at < extended_at + self.ttl {
            let what = format!(
                "seed {}, {now} ms: {} buried {} at epoch {epoch}, renewed at epoch \
                 {extended_epoch} {} ms before (a lease is {} ms)",
                self.seed,
                self.names[self.processes[process].name],
                self.names[dead],
                at - extended_at,
                self.ttl
            );
            self.tally.violation(what);
        }
        for victim in &self.processes {
            if victim.name == dead && !victim.killed(now) && victim.epoch == epoch {
                let local = victim.local(now);
                if victim.serving(local) {
                    let what = format!(
                        "seed {}, {now} ms: {} buried while it serves (gate until {:?}, now {local})",
                        self.seed, self.names[dead], victim.gate
                    );
                    self.tally.violation(what);
                }
            }
        }
        let killed = self
            .processes
            .iter()
            .any(|victim| victim.name == dead && victim.killed(now));
        if killed {
            self.tally.burials_of_killed += 1;
            self.tally.renewal_to_burial.push(at - extended_at);
            self.buried_at[dead] = Some(now);
        } else {
            self.tally.burials_of_running += 1;
        }
    }

    /// Runs `process` as far as it can go now: `Membership::join`, then `Membership::tick`
    /// every tick.
    fn advance(&mut self, process: usize) {
        let now = self.now;
        {
            let p = &self.processes[process];
            if p.killed(now) || within(&p.faults.paused, now) || matches!(p.step, Step::Gone) {
                return;
            }
        }
        loop {
            let p = &mut self.processes[process];
            let local = p.local(now);
            match p.step {
                Step::Starting(at) if at <= now => {
                    p.step = Step::Joining;
                    p.joining_since.get_or_insert(now);
                    self.send(process, Call::Acquire);
                }
                Step::Sleeping(until) if until <= local => {
                    let connected = !within(&p.faults.bus_down, now);
                    p.judge.bus(connected, local);
                    see_bus(p, connected, local);
                    self.tally.ticks += 1;
                    self.tally.renewals += 1;
                    p.step = Step::Renewing;
                    let epoch = p.epoch;
                    self.send(process, Call::Renew(epoch));
                }
                Step::Starting(_) | Step::Sleeping(_) | Step::Gone => return,
                _ => {
                    let flight = p.flight.as_ref().expect("a call in flight");
                    if flight.answer_at > now {
                        return;
                    }
                    let flight = p.flight.take().expect("a call in flight");
                    let buried = matches!(flight.reply, Some(Reply::Buried(true)));
                    let reply = if flight.fails { None } else { flight.reply };
                    match (buried, &reply, &flight.call) {
                        (true, Some(_), Call::Bury(dead, epoch)) => {
                            p.adopted.push((*dead, *epoch));
                            self.adopted();
                        }
                        (true, None, _) => self.unheard_burial(),
                        _ => {}
                    }
                    self.answer(process, flight.began, reply);
                }
            }
        }
    }

    /// What `Membership` does with the answer to its call (`None`: the call failed).
    fn answer(&mut self, process: usize, began: u64, reply: Option<Reply>) {
        let now = self.now;
        let tick = self.tick;
        let p = &mut self.processes[process];
        let local = p.local(now);
        let step = std::mem::replace(&mut p.step, Step::Sleeping(local + tick));
        match (step, reply) {
            (Step::Joining, Some(Reply::Acquired(Some(epoch)))) => {
                p.epoch = epoch;
                p.judge.renewed(began);
                let connected = !within(&p.faults.bus_down, now);
                p.judge.bus(connected, local);
                see_bus(p, connected, local);
                p.gate = p.judge.serving_until();
                // A machine that starts brings back every particle that has no live star.
                self.adopted();
            }
            // Another process holds the name's lease: `join` asks again a tick later, and gives
            // up after two leases and a tick.
            (Step::Joining, Some(Reply::Acquired(None)))
                if p.joining_since
                    .is_some_and(|since| now >= since + 2 * self.ttl + tick) =>
            {
                p.step = Step::Gone;
                p.gate = None;
                self.tally.names_taken += 1;
            }
            // `join` failed or waits: the machine asks again a tick later.
            (Step::Joining, _) => p.step = Step::Starting(now + tick),
            (Step::Renewing, Some(Reply::Renewed(true))) => {
                p.judge.renewed(began);
                self.renewed(process);
            }
            (Step::Renewing, Some(Reply::Renewed(false))) => {
                p.judge.lost();
                p.gate = None;
                p.step = Step::Acquiring;
                self.tally.leases_lost += 1;
                self.send(process, Call::Acquire);
            }
            (Step::Renewing, _) => {
                self.tally.renewals_failed += 1;
                self.renewed(process);
            }
            (Step::Acquiring, Some(Reply::Acquired(Some(epoch)))) => {
                p.epoch = epoch;
                p.judge.renewed(began);
                // `Member::rejoined` adopts: it places every particle that has no live star.
                self.adopted();
                self.renewed(process);
            }
            (Step::Acquiring, _) => self.renewed(process),
            (Step::Reading, Some(Reply::Leases(leases))) => {
                let me = &self.names[p.name];
                // Burials of ours whose answer was lost (the database names the burier).
                let mut unheard = false;
                for lease in &leases {
                    let dead = self
                        .names
                        .iter()
                        .position(|name| *name == lease.machine)
                        .expect("a machine of the cosmos");
                    if lease.buried
                        && lease.buried_by.as_ref() == Some(me)
                        && !p.adopted.contains(&(dead, lease.epoch))
                    {
                        p.adopted.push((dead, lease.epoch));
                        unheard = true;
                    }
                }
                let dead: Vec<(usize, u64)> = p
                    .snapshot
                    .to_bury(local, me, &leases)
                    .into_iter()
                    .map(|lease| {
                        let name = self
                            .names
                            .iter()
                            .position(|name| *name == lease.machine)
                            .expect("a machine of the cosmos");
                        (name, lease.epoch)
                    })
                    .collect();
                if unheard {
                    self.adopted();
                }
                self.bury_next(process, dead);
            }
            (Step::Burying(rest), _) => self.bury_next(process, rest),
            // A failed read, or a reply that does not fit (none can): sleep until the next tick.
            _ => {}
        }
    }

    /// A burial took in the database but its burier does not know yet: it adopts when it next
    /// reads the leases (its name is on the burial), unless it dies first.
    fn unheard_burial(&mut self) {
        self.tally.unheard_burials += 1;
    }

    /// Somebody adopted (`Lifecycle::reawaken`): every particle without a live star is placed
    /// again, whichever burial (that took before now) left it.
    fn adopted(&mut self) {
        if let Some(since) = self.unadopted_since.take() {
            self.tally.max_unadopted_ms = self.tally.max_unadopted_ms.max(self.now - since);
        }
    }

    /// After the renewal (or the new lease): the gate follows the judge, then the leases are
    /// read.
    fn renewed(&mut self, process: usize) {
        let p = &mut self.processes[process];
        p.gate = p.judge.serving_until();
        p.snapshot = p.judge.clone();
        p.step = Step::Reading;
        self.send(process, Call::Leases);
    }

    fn bury_next(&mut self, process: usize, mut dead: Vec<(usize, u64)>) {
        let now = self.now;
        let p = &mut self.processes[process];
        let local = p.local(now);
        if dead.is_empty() {
            p.step = Step::Sleeping(local + self.tick);
            return;
        }
        let (name, epoch) = dead.remove(0);
        if p.bus_seen_since
            .is_none_or(|since| local < since + self.ttl)
        {
            let what = format!(
                "seed {}, {now} ms: {} asks to bury {} though its ticks have seen the bus up \
                 only since {:?} (now {local}, a lease is {} ms)",
                self.seed, self.names[p.name], self.names[name], p.bus_seen_since, self.ttl
            );
            self.tally.violation(what);
        } else if p
            .faults
            .bus_down
            .iter()
            .any(|&(from, to)| from <= now && to + self.ttl > now)
        {
            self.tally.unseen_flap_burials += 1;
        }
        p.step = Step::Burying(dead);
        self.send(process, Call::Bury(name, epoch));
    }

    /// Every millisecond: whoever serves holds its lease in the database, unexpired and
    /// unburied, and no star is served by two processes.
    fn check(&mut self) {
        let now = self.now;
        let at = self.db_time();
        let mut serving = vec![0u32; self.names.len()];
        for index in 0..self.processes.len() {
            let p = &self.processes[index];
            if p.killed(now) {
                continue;
            }
            let local = p.local(now);
            if !p.serving(local) {
                continue;
            }
            serving[p.name] += 1;
            self.tally.serving_ms += 1;
            let row = self.rows[p.name].as_ref();
            let holds = row.is_some_and(|row| !row.buried && row.expires_at > at);
            if row.is_some_and(|row| row.epoch != p.epoch) {
                self.tally.voided_epoch_ms += 1;
            }
            if !holds {
                let what = format!(
                    "seed {}, {now} ms: {} (process {index}, epoch {}) serves (gate until {:?}, \
                     now {local}) but its lease is {:?}, {} ms past its expiry",
                    self.seed,
                    self.names[p.name],
                    p.epoch,
                    p.gate,
                    row,
                    row.map_or(0, |row| i128::from(at) - i128::from(row.expires_at)),
                );
                self.tally.violation(what);
            }
        }
        if serving.iter().any(|&count| count > 1) {
            self.tally.twice_served_ms += 1;
            let what = format!(
                "seed {}, {now} ms: a star is served by two processes",
                self.seed
            );
            self.tally.violation(what);
        }
    }
}

/// What the process's ticks have seen of the bus (as `Judge::bus` tracks it).
fn see_bus(p: &mut Process, connected: bool, local: u64) {
    match (connected, p.bus_seen_since) {
        (true, None) => p.bus_seen_since = Some(local),
        (false, Some(_)) => p.bus_seen_since = None,
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Tests (sizes for a debug build; the bench runs the full ones)
// ---------------------------------------------------------------------------------------------

/// Seeds per membership scenario in the tests.
#[cfg(test)]
const SEEDS: u64 = 64;

#[test]
fn placement_moves_only_what_must_move() {
    let figures = placement(25, 4, 10_000);
    println!("{figures}");
    assert!(figures.max_over_mean < 1.5, "{figures}");
    assert!(figures.min_over_mean > 0.5, "{figures}");
}

#[cfg(test)]
fn run(scenario: &Scenario) -> Tally {
    let tally = simulate(scenario, 0, SEEDS);
    println!("{}: {tally}", scenario.name);
    tally.assert_safe(scenario);
    tally
}

#[test]
fn a_killed_machine_is_buried_within_a_lease_and_a_tick() {
    let tally = run(&CALM_KILL);
    let max_delay = CALM.delay.1;
    assert_eq!(tally.kills, SEEDS);
    assert_eq!(tally.unburied, 0);
    assert_eq!(tally.burials_of_killed, SEEDS);
    assert_eq!(tally.burials_of_running, 0, "nobody alive is buried");
    assert_eq!(tally.leases_lost, 0);
    // The lease expires a ttl after the last renewal; a survivor's next read of the leases
    // comes within a tick and three round trips (renew, read, bury), its burial one leg later.
    assert!(
        tally.max_renewal_to_burial() <= 2_000 + 250 + 8 * max_delay,
        "{tally}"
    );
}

#[test]
fn loss_and_delay_never_make_two_servers() {
    let tally = run(&LOSSY_KILLS);
    assert_eq!(tally.kills, 2 * SEEDS);
    assert_eq!(tally.unburied, 0);
    assert!(tally.legs_lost > 0 && tally.renewals_failed > 0, "{tally}");
    // Survivors on a stable bus bury a killed machine soon after its lease's end even when
    // their own calls are lost, though each lost call stalls a survivor's tick for the
    // caller's timeout (1 s), and a survivor that has just taken its own lease anew (on this
    // network each machine loses it every 12 s or so) buries nobody for a lease: within two
    // leases and four timeouts.
    assert!(
        tally.max_renewal_to_burial() <= 2 * 2_000 + 4 * LOSSY.timeout,
        "{tally}"
    );
}

#[test]
fn flaps_pauses_and_cuts_never_make_two_servers() {
    let tally = run(&CHAOS);
    assert!(
        tally.burials_of_running > 0,
        "the chaos must bury someone alive: {tally}"
    );
}

#[test]
fn the_margin_covers_clocks_a_percent_apart() {
    run(&DRIFT);
}

#[test]
fn a_machine_back_on_the_bus_buries_nobody_for_a_lease() {
    let tally = run(&BUS_HEALS);
    assert_eq!(tally.burials, SEEDS, "{tally}");
    assert_eq!(tally.burials_of_killed, SEEDS, "{tally}");
    // The survivors' ticks see the bus back within a tick of 15 s; they may bury a lease later.
    for at in &tally.last_buried_at {
        assert!(
            (17_000..=17_000 + 2 * 250 + 8 * CALM.delay.1).contains(at),
            "{at} ms: {tally}"
        );
    }
}

#[test]
fn a_database_outage_stops_everyone_serving_and_nobody_serves_twice() {
    let tally = run(&DB_OUTAGE);
    assert!(tally.leases_lost > 0, "{tally}");
}

/// A second process with a machine's name (a restart while the old process is frozen, or a
/// misconfiguration) may not take the lease while the old process holds it: `acquire` is
/// conditional, so the second waits, and gives up when the old one renews throughout.
#[test]
fn two_processes_with_one_name_never_serve_at_once() {
    let tally = run(&TWIN);
    assert_eq!(
        tally.names_taken, SEEDS,
        "the second process gives up: {tally}"
    );
    assert_eq!(tally.voided_epoch_ms, 0, "{tally}");
}

/// A burial that takes in the database but whose answer is lost: the burier finds its name on
/// the buried lease at its next read and adopts then.
#[test]
fn a_burial_nobody_hears_of_still_gets_adopted() {
    let tally = run(&UNHEARD_BURIAL);
    assert!(tally.unheard_burials >= SEEDS, "{tally}");
    assert_eq!(tally.unadopted_at_end, 0, "{tally}");
    // The burier learns of nothing for its call's timeout, then reads at its next tick.
    assert!(
        tally.max_unadopted_ms <= CALM.timeout + 2 * 250 + 8 * CALM.delay.1,
        "{tally}"
    );
}

/// After the database was away for longer than a lease, every lease has expired. Each machine
/// takes its lease anew at its next tick, and buries nobody until it has held the new one for
/// a whole lease — by then every machine that lives has taken its own.
#[test]
fn a_database_outage_buries_nobody_alive() {
    let tally = run(&DB_OUTAGE);
    assert_eq!(tally.burials_of_running, 0, "{tally}");
}
