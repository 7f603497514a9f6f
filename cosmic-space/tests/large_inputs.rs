//! Parsing stays linear in the size of its input (SPEC §16): a 1 MB script and a 40,000-name
//! property list parse in a fraction of a second. Before, each command's line number was found
//! by rescanning the script from its start and duplicate names were searched in a list, so
//! 480 KB of script took 13 s.
//!
//! The figures are printed; the bound asserted is generous (these machines are shared and
//! noisy) and only catches a return to quadratic time. `cargo bench -p cosmic-space --bench
//! space -- large` measures them properly.

use std::time::{Duration, Instant};

use cosmic_space::{Command, PropertyChanges, Script};

/// Far above the milliseconds these take, far below the minutes a quadratic parser needs.
const GENEROUS: Duration = Duration::from_secs(10);

/// `read a;` lines, about `bytes` long.
fn script_of(bytes: usize) -> String {
    "read a;\n".repeat(bytes / 8)
}

/// `{ +p0=x, +p1=x, … }` with `n` names.
fn property_changes(n: usize) -> String {
    let body: Vec<String> = (0..n).map(|i| format!("+p{i}=x")).collect();
    format!("{{ {} }}", body.join(", "))
}

/// `get localhost{ p0, p1, … }` with `n` names.
fn get_command(n: usize) -> String {
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    format!("get localhost{{ {} }}", names.join(", "))
}

fn timed<T>(what: &str, bytes: usize, parse: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let parsed = parse();
    let took = started.elapsed();
    println!(
        "{what}: {} KB parsed in {:.1} ms",
        bytes / 1000,
        took.as_secs_f64() * 1e3
    );
    assert!(
        took < GENEROUS,
        "{what} took {took:?}: parsing is no longer linear"
    );
    parsed
}

#[test]
fn a_1_mb_script_parses_in_linear_time() {
    let text = script_of(1_000_000);
    let script: Script = timed("script", text.len(), || text.parse()).unwrap();
    assert_eq!(script.len(), 125_000);
    let last = script.commands().last().unwrap();
    assert_eq!(last.line, 125_000, "line numbers are still right");
}

#[test]
fn a_40k_property_list_parses_in_linear_time() {
    let text = property_changes(40_000);
    let changes: PropertyChanges = timed("property changes", text.len(), || text.parse()).unwrap();
    assert_eq!(changes.len(), 40_000);

    let text = get_command(40_000);
    let command: Command = timed("get names", text.len(), || text.parse()).unwrap();
    let Command::Get { names, .. } = command else {
        panic!("not a get: {command}");
    };
    assert_eq!(names.len(), 40_000);
}

#[test]
fn duplicates_are_still_refused_at_the_second_mention() {
    let err = "{ +a=1, +b=2, +a=3 }"
        .parse::<PropertyChanges>()
        .unwrap_err();
    assert!(err.message.contains("'a' is changed twice"), "{err}");
    assert_eq!(err.line_col(), (1, 15));
    let err = "get localhost{ a, b, a }".parse::<Command>().unwrap_err();
    assert!(err.message.contains("'a' is named twice"), "{err}");
}
