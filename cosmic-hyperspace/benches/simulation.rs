//! The simulation of `tests/simulation.rs` at full size: rendezvous placement of 100k particles
//! over 1,000 stars (250 machines × 4), and every membership scenario over 1,024 seeds, with
//! the same checks as the tests. Prints the figures; asserts no time.
//!
//! `cargo bench -p cosmic-hyperspace --bench simulation`

use std::time::Instant;

#[allow(dead_code)]
#[path = "../tests/simulation.rs"]
mod simulation;

use simulation::{
    BUS_HEALS, CALM_KILL, CHAOS, DB_OUTAGE, DRIFT, LOSSY, LOSSY_KILLS, Network, Scenario, TWIN,
    UNHEARD_BURIAL, placement, simulate,
};

const SEEDS: u64 = 1024;

fn main() {
    let figures = placement(250, 4, 100_000);
    println!("{figures}");
    assert!(figures.max_over_mean < 1.5 && figures.min_over_mean > 0.5);

    for scenario in [CALM_KILL, LOSSY_KILLS, CHAOS, DRIFT, BUS_HEALS, DB_OUTAGE] {
        let started = Instant::now();
        let tally = simulate(&scenario, 0, SEEDS);
        println!("{}: {tally} [{:.1?}]", scenario.name, started.elapsed());
        tally.assert_safe(&scenario);
    }
    // How often living machines lose their lease as loss grows: each lost call stalls a tick
    // for the caller's timeout, and the renewal waits behind the reads and burials.
    for loss in [0.01, 0.05] {
        let scenario = Scenario {
            name: if loss < 0.02 {
                "1% of legs lost, two kills"
            } else {
                "5% of legs lost, two kills"
            },
            network: Network { loss, ..LOSSY },
            ..LOSSY_KILLS
        };
        let tally = simulate(&scenario, 0, SEEDS);
        println!("{}: {tally}", scenario.name);
        tally.assert_safe(&scenario);
    }
    // The holes the simulation once found, closed: a burial whose answer is lost, a second
    // process with a machine's name.
    for scenario in [UNHEARD_BURIAL, TWIN] {
        let started = Instant::now();
        let tally = simulate(&scenario, 0, SEEDS);
        println!("{}: {tally} [{:.1?}]", scenario.name, started.elapsed());
        tally.assert_safe(&scenario);
    }
}
