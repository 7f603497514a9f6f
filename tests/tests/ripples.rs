//! Ripples end to end (SPEC §5.1, §5.3, §18): a mechtron ripples to ten others through the
//! real `starlane` binary and gets back the Echoes its bounce-back rule asks for — every one,
//! the first, three, none, or what arrived when its timer fired — with a 403 Echo from a
//! recipient it may not reach. The rippler is the fixtures' `pinger` (`Ext<Ripple>`), the
//! recipients are `hello`s (`Ext<Hello>` "rippler" → "Goodbye, rippler!").

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{Registry, Server, stderr, stdout};

/// The ten recipients, `localhost:crowd:m-0` … `m-9`.
fn crowd() -> Vec<String> {
    (0..10).map(|n| format!("localhost:crowd:m-{n}")).collect()
}

/// The fixtures published, ten `hello`s under `localhost:crowd` that the rippler may reach,
/// one (`localhost:locked`) it may not, and the rippler `localhost:rippler`.
fn setup(dir: &Path, registry: &Registry) -> Server {
    tests::write_fixtures_bundle(dir);
    let server = registry.start(&dir.join("home"));
    let config =
        |name: &str| format!("+config=localhost:repo:fixtures:1.0.0:/config/{name}.mechtron");
    let mut script = vec![
        "create localhost<Space>".to_string(),
        "create localhost:repo<Repo>".to_string(),
        "publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0".to_string(),
        "create localhost:crowd<Base>".to_string(),
        format!(
            "create localhost:rippler<Mechtron>{{ {} }}",
            config("pinger")
        ),
        format!("create localhost:locked<Mechtron>{{ {} }}", config("hello")),
        "grant +csd-rwX on localhost:crowd+:** to localhost:rippler".to_string(),
    ];
    for point in crowd() {
        script.push(format!("create {point}<Mechtron>{{ {} }}", config("hello")));
        // A nap is a Ripple to itself (see the fixture's `Hello::nap`).
        script.push(format!("grant +csd-rwX on {point} to {point}"));
    }
    server.exec(dir, &script.join("; "));
    server
}

/// Asks the rippler to ripple per `request` (the fixture's Json); the report it answered and
/// how long the whole `starlane send` took.
fn ripple(server: &Server, dir: &Path, request: &Value) -> (Value, Duration) {
    let start = Instant::now();
    let out = server.run(
        dir,
        &[
            "send",
            "localhost:rippler",
            "Ext<Ripple>",
            &request.to_string(),
        ],
    );
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{request}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let printed = stdout(&out);
    let body = printed.split_once('\n').map_or("", |(_, body)| body.trim());
    let report: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {printed}"));
    (report, took)
}

fn count(report: &Value) -> usize {
    let count = report["count"].as_u64().unwrap_or(u64::MAX) as usize;
    assert_eq!(
        report["echoes"].as_array().map(Vec::len),
        Some(count),
        "{report}"
    );
    count
}

/// `(from, status, said)` of each Echo, sorted by `from`.
fn echoes(report: &Value) -> Vec<(String, u64, String)> {
    let mut echoes: Vec<(String, u64, String)> = report["echoes"]
        .as_array()
        .unwrap_or_else(|| panic!("no echoes in {report}"))
        .iter()
        .map(|echo| {
            (
                echo["from"].as_str().unwrap_or_default().to_string(),
                echo["status"].as_u64().unwrap_or_default(),
                echo["said"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    echoes.sort();
    echoes
}

/// Waits (up to 10 s) until the guests have logged `greeting rippler` — once for each
/// recipient that ran a Ripple — exactly `n` times.
fn assert_greeted(server: &Server, n: usize) {
    let greeted = || server.log().matches("greeting rippler").count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while greeted() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(greeted(), n, "recipients that ran a Ripple");
}

fn bounce_backs_return_what_they_ask_for(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let server = setup(dir, registry);
    let crowd = crowd();

    // All: exactly one Echo from each of the ten, each its own answer.
    let (report, _) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": crowd, "bounce": "all"}),
    );
    assert_eq!(count(&report), 10, "{report}");
    let expected: Vec<(String, u64, String)> = crowd
        .iter()
        .map(|point| (point.clone(), 200, "200 Goodbye, rippler!".to_string()))
        .collect();
    assert_eq!(echoes(&report), expected);

    // A selector is resolved by the sender's star: the same ten.
    let (report, _) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": "localhost:crowd:*<Mechtron>", "bounce": "all"}),
    );
    assert_eq!(echoes(&report), expected);

    // The first; the first three.
    let (report, _) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": crowd, "bounce": "first"}),
    );
    assert_eq!(count(&report), 1, "{report}");
    assert_eq!(report["echoes"][0]["status"], 200, "{report}");
    let (report, _) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": crowd, "bounce": "3"}),
    );
    assert_eq!(count(&report), 3, "{report}");

    // Every recipient ran each Ripple, the first and the first three's included: a rule says
    // what the sender waits for, not who gets the Ripple.
    assert_greeted(&server, 40);

    // None: no Echoes, at once — but the ten still get the Ripple.
    let (report, _) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": crowd, "bounce": "none"}),
    );
    assert_eq!(count(&report), 0, "{report}");
    assert_greeted(&server, 50);

    // A recipient the rippler may not reach answers 403, one that does not exist 404; the
    // others answer as before, and All still completes with one Echo per recipient.
    let mut to = crowd.clone();
    to.push("localhost:locked".to_string());
    to.push("localhost:nobody".to_string());
    let start = Instant::now();
    let (report, _) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": to, "bounce": "all"}),
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "All did not wait for its wait time"
    );
    assert_eq!(count(&report), 12, "{report}");
    let echoes = echoes(&report);
    let statuses: Vec<u64> = echoes.iter().map(|(_, status, _)| *status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{echoes:?}"
    );
    assert!(
        echoes
            .iter()
            .any(|(from, status, _)| from == "localhost:locked" && *status == 403),
        "{echoes:?}"
    );
    assert!(
        echoes
            .iter()
            .any(|(from, status, _)| from == "localhost:nobody" && *status == 404),
        "{echoes:?}"
    );

    // A rule that is not one is the rippler's 400, and nothing is sent.
    let out = server.run(
        dir,
        &[
            "send",
            "localhost:rippler",
            "Ext<Ripple>",
            r#"{"to": ["localhost:crowd:m-0"], "bounce": "most"}"#,
        ],
    );
    assert!(
        stderr(&out).contains("400") || stdout(&out).contains("400"),
        "{out:?}"
    );
    server.stop();
}

fn a_timer_returns_what_arrived_when_it_fires(registry: &Registry) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path();
    let server = setup(dir, registry);
    let crowd = crowd();

    // Three recipients are busy for 4 s: a Ripple reaching them waits until they are free.
    let naps: Vec<_> = crowd[7..]
        .iter()
        .map(|point| {
            let mut command = server.command(dir, &["send", point, "Ext<Nap>", "4000"]);
            std::thread::spawn(move || command.output())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));

    let timer = Duration::from_millis(1_500);
    let (report, took) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": crowd, "bounce": format!("timer:{}", timer.as_millis())}),
    );
    assert_eq!(count(&report), 7, "the seven that were free: {report}");
    assert!(
        echoes(&report)
            .iter()
            .all(|(from, status, _)| *status == 200 && !crowd[7..].contains(from)),
        "{report}"
    );
    // It returned when the timer fired: not before, and long before the naps ended.
    assert!(took >= timer, "returned after {took:?}");
    assert!(
        took < Duration::from_millis(3_200),
        "returned after {took:?}"
    );

    for nap in naps {
        let out = nap
            .join()
            .unwrap_or_else(|_| panic!("a nap thread panicked"))
            .unwrap_or_else(|e| panic!("cannot run starlane: {e}"));
        assert!(stdout(&out).contains("napped"), "{out:?}");
    }

    // Once they are free, a timer longer than everyone needs returns as the tenth arrives.
    let (report, took) = ripple(
        &server,
        dir,
        &serde_json::json!({"to": crowd, "bounce": "timer:20000"}),
    );
    assert_eq!(count(&report), 10, "{report}");
    assert!(took < Duration::from_secs(10), "returned after {took:?}");
    server.stop();
}

tests::on_each_registry!(
    bounce_backs_return_what_they_ask_for,
    a_timer_returns_what_arrived_when_it_fires,
);
