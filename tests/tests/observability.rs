//! Operability end to end (SPEC §19): the real `starlane serve` with its metrics on
//! (`STARLANE_METRICS`) counts exactly the waves and requests it was sent, and its log lines
//! go to standard error through one subscriber — each wave hop a JSON object with
//! `STARLANE_LOG_FORMAT=json STARLANE_LOG=info,starlane::wave=debug`, a guest's lines among
//! them. The metrics test runs on the embedded registry and on PostgreSQL.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{HttpReply, Registry, Server, http};

/// The value of the sample `series` (`name{label="value",…}`, labels as the server writes
/// them) in the exposition `text`; 0 when it is not there (series with open label sets are
/// written once they count something).
fn sample(text: &str, series: &str) -> u64 {
    let values: Vec<u64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(name, _)| *name == series)
        .map(|(_, value)| {
            value
                .parse()
                .unwrap_or_else(|e| panic!("{series} = {value}: {e}"))
        })
        .collect();
    assert!(
        values.len() <= 1,
        "{series} is written {} times",
        values.len()
    );
    values.first().copied().unwrap_or(0)
}

fn scrape(server: &Server) -> String {
    let reply = http(&server.metrics_addr(), "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.header("content-type")
    );
    reply.text()
}

fn send(server: &Server, dir: &Path, args: &[&str], ok: bool) -> String {
    server.send(dir, args, ok)
}

fn get(server: &Server, path: &str) -> HttpReply {
    http(&server.http_addr(), "GET", path, &[], b"")
}

const PINGS_OK: &str = r#"starlane_waves_total{kind="ping",status="200"}"#;
const PINGS_404: &str = r#"starlane_waves_total{kind="ping",status="404"}"#;
const PINGS_TIMED: &str = r#"starlane_wave_duration_seconds_count{kind="ping"}"#;

fn metrics_count_exactly_what_was_sent(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let server = registry.start_with(&dir.join("home"), &[("STARLANE_METRICS", "127.0.0.1:0")]);
    tests::site::build(&server, dir, &[("html/index.html", b"<p>hi</p>")]);

    // The endpoint serves /metrics only.
    let elsewhere = http(&server.metrics_addr(), "GET", "/", &[], b"");
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.text());

    let before = scrape(&server);
    assert_eq!(sample(&before, "starlane_machines_alive"), 1, "{before}");
    assert_eq!(
        sample(&before, r#"starlane_http_requests_total{status="200"}"#),
        0
    );
    assert!(
        sample(
            &before,
            r#"starlane_registry_operations_total{op="record",outcome="cached"}"#
        ) > 0,
        "{before}"
    );

    // M waves to a mechtron: one hop each, answered 200.
    const M: u64 = 5;
    for _ in 0..M {
        send(
            &server,
            dir,
            &["localhost:hello", "Ext<Hello>", "world"],
            true,
        );
    }
    let waves = scrape(&server);
    assert_eq!(
        sample(&waves, PINGS_OK) - sample(&before, PINGS_OK),
        M,
        "{waves}"
    );
    assert_eq!(
        sample(&waves, PINGS_TIMED) - sample(&before, PINGS_TIMED),
        M
    );
    assert_eq!(sample(&waves, PINGS_404), sample(&before, PINGS_404));

    // A wave to nothing ends at the sending star's courier: one hop, 404.
    send(&server, dir, &["localhost:nowhere", "Cmd<Read>"], false);
    let nowhere = scrape(&server);
    assert_eq!(sample(&nowhere, PINGS_404) - sample(&waves, PINGS_404), 1);
    assert_eq!(sample(&nowhere, PINGS_OK), sample(&waves, PINGS_OK));

    // N requests through the Space's bind to the mechtron (two hops each: the Space, which
    // forwards, and the mechtron), and one for a file that is not there (the Space's hop,
    // and the forward its courier cannot deliver).
    const N: u64 = 4;
    for _ in 0..N {
        let reply = get(&server, "/app/world");
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(get(&server, "/missing.html").status, 404);
    let requests = scrape(&server);
    assert_eq!(
        sample(&requests, r#"starlane_http_requests_total{status="200"}"#),
        N,
        "{requests}"
    );
    assert_eq!(
        sample(&requests, r#"starlane_http_requests_total{status="404"}"#),
        1
    );
    assert_eq!(
        sample(&requests, "starlane_http_request_duration_seconds_count"),
        N + 1
    );
    assert_eq!(
        sample(
            &requests,
            r#"starlane_http_request_duration_seconds_bucket{le="+Inf"}"#
        ),
        N + 1
    );
    assert_eq!(
        sample(&requests, PINGS_OK) - sample(&nowhere, PINGS_OK),
        2 * N
    );
    assert_eq!(
        sample(&requests, PINGS_404) - sample(&nowhere, PINGS_404),
        2
    );

    // With the default filter (`info`) no wave is logged; the guest's lines are, as text.
    let log = server.log();
    assert!(!log.contains("starlane::wave"), "{log}");
    assert!(
        log.lines()
            .any(|line| line.contains("INFO starlane::guest: greeting world")
                && line.contains("mechtron=localhost:hello")),
        "{log}"
    );
    server.stop();
}

tests::on_each_registry!(metrics_count_exactly_what_was_sent);

/// Every line `server` has written on standard error, as JSON, once `done` holds for them
/// (waiting up to 10 s).
fn json_lines(server: &Server, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.stderr_log();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\nall:\n{text}"))
            })
            .collect();
        if done(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "not there yet:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text<'a>(line: &'a Value, field: &str) -> &'a str {
    line[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not text in {line}"))
}

fn is_hello_wave(line: &Value) -> bool {
    line["target"] == "starlane::wave"
        && line["method"] == "Ext<Hello>"
        && line["to"]
            .as_str()
            .is_some_and(|to| to.starts_with("localhost:hello@"))
}

fn is_greeting(line: &Value) -> bool {
    line["target"] == "starlane::guest" && line["message"] == "greeting scott"
}

#[test]
fn json_logs_tell_each_wave_hop_and_the_guests_lines() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    tests::write_fixtures_bundle(dir);
    let server = Server::start_apart(
        &dir.join("home"),
        &[
            ("STARLANE_LOG_FORMAT", "json"),
            ("STARLANE_LOG", "info,starlane::wave=debug"),
        ],
    );
    server.exec(
        dir,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0; \
         create localhost:hello<Mechtron>{ +config=localhost:repo:fixtures:1.0.0:/config/hello.mechtron }",
    );
    const M: usize = 3;
    for _ in 0..M {
        send(
            &server,
            dir,
            &["localhost:hello", "Ext<Hello>", "scott"],
            true,
        );
    }
    let lines = json_lines(&server, |lines| {
        lines.iter().filter(|line| is_greeting(line)).count() >= M
            && lines.iter().filter(|line| is_hello_wave(line)).count() >= M
    });

    // One line per hop, with everything SPEC §19 asks for.
    let waves: Vec<&Value> = lines.iter().filter(|line| is_hello_wave(line)).collect();
    assert_eq!(waves.len(), M, "{waves:#?}");
    let mut ids = HashSet::new();
    for wave in &waves {
        assert_eq!(wave["level"], "DEBUG", "{wave}");
        assert_eq!(wave["kind"], "Ping", "{wave}");
        assert_eq!(text(wave, "agent"), "hyperspace:users:hyperuser", "{wave}");
        assert!(
            text(wave, "from").starts_with("hyperspace:users:hyperuser@"),
            "{wave}"
        );
        assert_eq!(wave["status"], 200, "{wave}");
        assert!(wave["us"].is_u64(), "{wave}");
        let id = text(wave, "id");
        assert!(
            id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4,
            "{wave}"
        );
        ids.insert(id.to_string());
    }
    assert_eq!(ids.len(), M, "each hop has its own wave's id");
    // The executor's commands are waves too: their hops are there.
    assert!(
        lines
            .iter()
            .any(|line| line["target"] == "starlane::wave" && line["method"] == "Cmd<RawCommand>"),
        "{lines:#?}"
    );

    // The guest's log lines, at the guest's level, with the mechtron's point.
    let greetings: Vec<&Value> = lines.iter().filter(|line| is_greeting(line)).collect();
    assert_eq!(greetings.len(), M, "{greetings:#?}");
    for greeting in greetings {
        assert_eq!(greeting["level"], "INFO", "{greeting}");
        assert_eq!(greeting["mechtron"], "localhost:hello", "{greeting}");
        assert!(greeting["timestamp"].is_string(), "{greeting}");
    }

    // Standard output says where the server listens, as ever, and nothing else.
    let out = server.log();
    assert!(out.starts_with("starlane is serving\n  control  "), "{out}");
    assert!(!out.contains('{') && !out.contains("metrics"), "{out}");
    server.stop();
}
