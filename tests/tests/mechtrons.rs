//! Mechtrons end to end: the real `starlane` binary, real wasm built from the guest fixtures
//! (`tests/guests`, built for wasm32 by `tests/build.rs`) and from a freshly scaffolded crate.
//! SPEC §8, §11, §13. Every test runs on the embedded registry and on PostgreSQL
//! (`embedded::…`, `postgres::…`).

use std::path::Path;

use tests::{Registry, Server, stderr, stdout};

/// The space, the repo, and the fixtures published as `localhost:repo:fixtures:1.0.0`.
fn setup(dir: &Path, registry: &Registry) -> Server {
    tests::write_fixtures_bundle(dir);
    let server = registry.start(&dir.join("home"));
    server.exec(
        dir,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0",
    );
    server
}

/// Creates the mechtron `point` from the fixture document `config`.
fn create(server: &Server, dir: &Path, point: &str, config: &str) {
    server.exec(dir,
        &format!(
            "create {point}<Mechtron>{{ +config=localhost:repo:fixtures:1.0.0:/config/{config}.mechtron }}"
        ),
    );
}

/// `starlane send POINT METHOD BODY [--wait SECS]` and what it printed; `ok` says whether it
/// must succeed.
fn send(server: &Server, dir: &Path, args: &[&str], ok: bool) -> String {
    server.send(dir, args, ok)
}

/// The body `starlane send` printed (the lines after its status line).
fn body(printed: &str) -> &str {
    printed.split_once('\n').map_or("", |(_, body)| body.trim())
}

fn state_survives_across_waves(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    create(&server, dir.path(), "localhost:counter", "counter");
    for expected in ["1", "2", "3"] {
        let out = send(
            &server,
            dir.path(),
            &["localhost:counter", "Ext<Count>"],
            true,
        );
        assert_eq!(body(&out), expected, "{out}");
    }
    let out = send(
        &server,
        dir.path(),
        &["localhost:counter", "Ext<Get>"],
        true,
    );
    assert_eq!(body(&out), "3", "{out}");
    let out = send(
        &server,
        dir.path(),
        &["localhost:hello-nobody", "Ext<Get>"],
        false,
    );
    assert!(out.contains("404"), "{out}");
    server.stop();
}

/// Whether `text` is a version 4 (random) uuid in its hyphenated form.
fn is_v4_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-')
        && text
            .chars()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || matches!(c, '0'..='9' | 'a'..='f'))
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

/// `uuid` (v4) and `rand` inside real wasm: getrandom takes the SDK's backend, which asks the
/// host (`host_random`); two draws differ.
fn guests_draw_uuids_and_random_numbers_from_the_host(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    create(&server, dir.path(), "localhost:hello", "hello");
    let draw = |method: &str| {
        let out = send(&server, dir.path(), &["localhost:hello", method], true);
        body(&out).to_string()
    };
    let (first, second) = (draw("Ext<Uuid>"), draw("Ext<Uuid>"));
    assert!(is_v4_uuid(&first), "{first:?}");
    assert!(is_v4_uuid(&second), "{second:?}");
    assert_ne!(first, second);
    let (first, second) = (draw("Ext<Roll>"), draw("Ext<Roll>"));
    let parsed = (first.parse::<u64>(), second.parse::<u64>());
    assert!(matches!(parsed, (Ok(_), Ok(_))), "{first:?} {second:?}");
    assert_ne!(first, second);
    server.stop();
}

fn mechtron_pings_pass_the_field_as_the_mechtron(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    create(&server, dir.path(), "localhost:hello", "hello");
    create(&server, dir.path(), "localhost:pinger", "pinger");
    create(&server, dir.path(), "localhost:counter", "counter");
    // The pinger acts as itself, and nobody granted it anything.
    let out = send(
        &server,
        dir.path(),
        &["localhost:pinger", "Ext<Ping>", "localhost:hello"],
        true,
    );
    assert!(body(&out).starts_with("403 "), "{out}");
    server.exec(
        dir.path(),
        "grant +csd-rwX on localhost:hello to localhost:pinger",
    );
    let out = send(
        &server,
        dir.path(),
        &["localhost:pinger", "Ext<Ping>", "localhost:hello"],
        true,
    );
    assert_eq!(body(&out), "200 Goodbye, pinger!", "{out}");
    // A grant on one particle opens that one only.
    server.exec(dir.path(),
        "create localhost:hello-2<Mechtron>{ +config=localhost:repo:fixtures:1.0.0:/config/hello.mechtron }",
    );
    let out = send(
        &server,
        dir.path(),
        &["localhost:pinger", "Ext<Ping>", "localhost:hello-2"],
        true,
    );
    assert!(body(&out).starts_with("403 "), "{out}");
    // Signals are checked the same way: without a grant the counter does not move.
    send(
        &server,
        dir.path(),
        &["localhost:pinger", "Ext<Signal>", "localhost:counter"],
        true,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = send(
        &server,
        dir.path(),
        &["localhost:counter", "Ext<Get>"],
        true,
    );
    assert_eq!(body(&out), "0", "{out}");
    server.exec(
        dir.path(),
        "grant +csd-rwX on localhost:counter to localhost:pinger",
    );
    send(
        &server,
        dir.path(),
        &["localhost:pinger", "Ext<Signal>", "localhost:counter"],
        true,
    );
    let seen = stdout(&retried(
        &server,
        dir.path(),
        &["send", "localhost:counter", "Ext<Get>"],
        |out| body(&stdout(out)) == "1",
    ));
    assert_eq!(body(&seen), "1", "{seen}");
    server.stop();
}

/// Runs `starlane ARGS` until `done` holds for what it printed (a restarted guest, a signal
/// that arrives, are a moment away), at most 50 times 50 ms apart; returns the last run.
fn retried(
    server: &Server,
    dir: &Path,
    args: &[&str],
    done: impl Fn(&std::process::Output) -> bool,
) -> std::process::Output {
    let mut out = server.run(dir, args);
    for _ in 0..50 {
        if done(&out) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        out = server.run(dir, args);
    }
    out
}

/// Sends a wave that makes a guest misbehave, with a wait time of one second: a 500 (not the
/// 408 the Shell gives when nothing answers in time) shows the host answered within it.
fn fails_within_a_second(
    server: &Server,
    dir: &Path,
    point: &str,
    method: &str,
    path: Option<&str>,
) {
    let mut args = vec![point, method, "--wait", "1"];
    if let Some(path) = path {
        args.extend_from_slice(&["--path", path]);
    }
    let out = send(server, dir, &args, false);
    assert!(out.contains("500"), "{point} {method} {path:?}: {out}");
}

fn misbehaving_guests_fail_their_wave_and_nothing_else(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    create(&server, dir.path(), "localhost:hello", "hello");
    create(&server, dir.path(), "localhost:trouble", "troublemaker");
    create(&server, dir.path(), "localhost:malformed", "malformed");
    let healthy = |server: &Server| {
        let out = send(
            server,
            dir.path(),
            &["localhost:hello", "Ext<Hello>", "world"],
            true,
        );
        assert_eq!(body(&out), "Goodbye, world!", "{out}");
    };
    for method in ["Ext<Loop>", "Ext<Panic>", "Ext<Hog>"] {
        send(
            &server,
            dir.path(),
            &["localhost:trouble", "Ext<Count>"],
            true,
        );
        fails_within_a_second(&server, dir.path(), "localhost:trouble", method, None);
        healthy(&server);
        // The troublemaker was restarted: it answers again, with its state started over.
        let out = stdout(&retried(
            &server,
            dir.path(),
            &["send", "localhost:trouble", "Ext<Count>"],
            |out| out.status.success(),
        ));
        assert_eq!(
            body(&out),
            "1",
            "{method}: the restarted guest counts from zero"
        );
    }
    for path in [
        "/out-of-bounds",
        "/garbage",
        "/too-long",
        "/log-out-of-bounds",
    ] {
        fails_within_a_second(
            &server,
            dir.path(),
            "localhost:malformed",
            "Ext<Go>",
            Some(path),
        );
        healthy(&server);
    }
    // A garbage frame handed to host_send fails the guest's call (and restarts it).
    fails_within_a_second(
        &server,
        dir.path(),
        "localhost:malformed",
        "Ext<Go>",
        Some("/send-garbage"),
    );
    healthy(&server);
    let out = stdout(&retried(
        &server,
        dir.path(),
        &["send", "localhost:malformed", "Ext<Go>", "--path", "/ok"],
        |out| out.status.success(),
    ));
    assert_eq!(body(&out), "fine", "{out}");
    server.stop();
}

fn a_restart_brings_mechtrons_back_from_the_module_cache(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    create(&server, dir.path(), "localhost:hello", "hello");
    create(&server, dir.path(), "localhost:counter", "counter");
    send(
        &server,
        dir.path(),
        &["localhost:counter", "Ext<Count>"],
        true,
    );
    let home = server.home().to_path_buf();
    server.stop();
    let log = home.with_extension("log");
    std::fs::write(&log, "").unwrap_or_else(|e| panic!("{e}"));
    let server = registry.start(&home);
    let out = server.exec(dir.path(), "select localhost:*<Mechtron>");
    assert!(out.contains("localhost:hello"), "{out}");
    let out = send(
        &server,
        dir.path(),
        &["localhost:hello", "Ext<Hello>", "again"],
        true,
    );
    assert_eq!(body(&out), "Goodbye, again!", "{out}");
    // Memory is not persisted: the counter starts over in its new guest.
    let out = send(
        &server,
        dir.path(),
        &["localhost:counter", "Ext<Count>"],
        true,
    );
    assert_eq!(body(&out), "1", "{out}");
    let printed = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        printed.contains("loaded from the disk cache") && !printed.contains("compiled (not cached"),
        "{printed}"
    );
    server.stop();
}

fn the_walkthrough_greets_the_world(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let crate_dir = tests::scaffold(dir.path(), "hello");
    let out = tests::bundle_scaffold(&crate_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let server = registry.start(&dir.path().join("home"));
    server.exec(
        &crate_dir,
        "create localhost<Space>; create localhost:repo<Repo>",
    );
    server.exec(
        &crate_dir,
        "publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0",
    );
    server.exec(&crate_dir,
        "create localhost:hello<Mechtron>{ +config=localhost:repo:hello:1.0.0:/config/hello.mechtron }",
    );
    let out = server.run(
        &crate_dir,
        &["send", "localhost:hello", "Ext<Hello>", "world"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(body(&stdout(&out)), "Goodbye, world!");
    server.stop();
}

#[test]
fn v4_uuids_are_told_apart_from_others() {
    assert!(is_v4_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    assert!(
        !is_v4_uuid("0f8fad5b-d9cb-169f-a165-70867728950e"),
        "version 1"
    );
    assert!(
        !is_v4_uuid("0f8fad5b-d9cb-469f-c165-70867728950e"),
        "variant"
    );
    assert!(
        !is_v4_uuid("0f8fad5bd9cb469fa16570867728950e"),
        "no hyphens"
    );
    assert!(
        !is_v4_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"),
        "upper case"
    );
    assert!(!is_v4_uuid(""));
}

tests::on_each_registry!(
    guests_draw_uuids_and_random_numbers_from_the_host,
    state_survives_across_waves,
    mechtron_pings_pass_the_field_as_the_mechtron,
    misbehaving_guests_fail_their_wave_and_nothing_else,
    a_restart_brings_mechtrons_back_from_the_module_cache,
    the_walkthrough_greets_the_world,
);
