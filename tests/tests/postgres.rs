//! A cosmos whose registry is in PostgreSQL (SPEC §14.2), end to end: `starlane serve` with
//! `STARLANE_REGISTRY` on this test process's private server, a database per test. What a
//! machine keeps there survives its crash (`kill -9` in the middle of concurrent creates)
//! and the loss of its whole data directory; a database it cannot reach stops it at once with
//! a message that names where it looked and never the password.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tests::{Registry, Server, http, stderr, stdout};

/// `starlane serve` on `home` with the environment `envs`, which must fail: what it printed,
/// once it has exited (it is killed, and the test fails, if it is still running after 30 s).
fn serve_fails(home: &Path, envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(tests::starlane_bin())
        .arg("serve")
        .env("STARLANE_HOME", home)
        .env("STARLANE_CONTROL", "127.0.0.1:0")
        .env("STARLANE_HTTP", "127.0.0.1:0")
        .env_remove("STARLANE_REGISTRY")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start starlane serve: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap_or_else(|e| panic!("{e}")).is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("starlane serve {envs:?} was still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !out.status.success(),
        "starlane serve {envs:?} should have failed:\n{}",
        stdout(&out)
    );
    assert!(
        !stderr(&out).contains("panicked"),
        "starlane serve {envs:?} panicked:\n{}",
        stderr(&out)
    );
    out
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_database_that_cannot_be_reached_stops_serve_at_once_and_names_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let home = dir.path().join("home");
    let port = free_port();
    let server = tests::postgres::shared();
    tests::starlane_bin();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let silent_port = silent.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    for (url, expected) in [
        // Nobody listens: refused at once.
        (
            format!("postgres://scott:tiger-pw@127.0.0.1:{port}/cosmos"),
            format!("host 127.0.0.1, port {port}, database cosmos, user scott"),
        ),
        // A server that answers, without that database.
        (
            format!(
                "postgresql://postgres:tiger-pw@127.0.0.1:{}/missing",
                server.port()
            ),
            format!(
                "host 127.0.0.1, port {}, database missing, user postgres",
                server.port()
            ),
        ),
        // A server that takes the connection and never answers: the connect timeout.
        (
            format!("postgres://scott:tiger-pw@127.0.0.1:{silent_port}/cosmos"),
            format!("host 127.0.0.1, port {silent_port}, database cosmos, user scott"),
        ),
    ] {
        let started = Instant::now();
        let out = serve_fails(&home, &[("STARLANE_REGISTRY", &url)]);
        eprintln!("{url}: failed after {:?}", started.elapsed());
        let printed = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            printed.contains("cannot open the registry in PostgreSQL")
                && printed.contains(&expected),
            "{url}: expected '{expected}' in:\n{printed}"
        );
        assert!(
            !printed.contains("tiger-pw"),
            "{url}: the password was printed:\n{printed}"
        );
        assert!(
            !home.join("control.addr").exists(),
            "{url}: nothing was served"
        );
    }

    // A URL that is not PostgreSQL's is refused before anything starts, naming its source.
    let out = serve_fails(
        &home,
        &[("STARLANE_REGISTRY", "mysql://scott:tiger-pw@db/cosmos")],
    );
    assert_eq!(
        stderr(&out).trim(),
        "error: STARLANE_REGISTRY = 'mysql://scott:***@db/cosmos' is not a registry: write a \
         PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE (or leave it out for the \
         embedded store in the data directory)"
    );
    let help = tests::starlane(dir.path(), &["serve", "--help"]);
    assert!(
        stdout(&help).contains("--registry <URL>") && stdout(&help).contains("STARLANE_REGISTRY"),
        "{}",
        stdout(&help)
    );
}

/// `starlane script` clients, each creating its own stream of particles.
const CLIENTS: usize = 4;
/// Creates per client.
const CREATES: usize = 500;
/// How many answered creates (of all clients together) the crash waits for.
const BEFORE_THE_CRASH: usize = 400;

#[test]
fn after_kill_9_amid_concurrent_creates_every_answered_one_is_in_the_database() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let registry = Registry::postgres();
    let home = dir.join("home");
    let server = registry.start(&home);
    let parents: Vec<String> = (0..CLIENTS)
        .map(|c| format!("localhost:stream-{c}"))
        .collect();
    server.exec(dir, "create localhost<Space>");
    for (client, parent) in parents.iter().enumerate() {
        server.exec(dir, &format!("create {parent}<Base>"));
        let script: String = (0..CREATES)
            .map(|i| format!("create {parent}:p{i}<Base>;\n"))
            .collect();
        std::fs::write(dir.join(format!("stream-{client}.script")), script)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // Every client prints each point as its create is answered; the crash comes once
    // BEFORE_THE_CRASH of them have been, all clients still streaming.
    let answered = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let mut child = server
                .command(dir, &["script", &format!("stream-{client}.script")])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"));
            let lines = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("stdout")));
            let answered = answered.clone();
            std::thread::spawn(move || {
                let mut points = Vec::new();
                for line in lines.lines().map_while(Result::ok) {
                    points.push(line);
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                (points, child.wait().unwrap_or_else(|e| panic!("{e}")))
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < BEFORE_THE_CRASH && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill9();
    let streams: Vec<(Vec<String>, std::process::ExitStatus)> = readers
        .into_iter()
        .map(|reader| {
            reader
                .join()
                .unwrap_or_else(|_| panic!("a reader panicked"))
        })
        .collect();
    let total: usize = streams.iter().map(|(points, _)| points.len()).sum();
    assert!(total >= BEFORE_THE_CRASH, "{total} creates were answered");
    assert!(
        total < CLIENTS * CREATES,
        "the crash came in the middle of the streams"
    );
    assert!(
        streams.iter().any(|(_, status)| !status.success()),
        "a stream was cut short by the crash"
    );

    let server = registry.start(&home);
    for (parent, (points, _)) in parents.iter().zip(&streams) {
        let stored = server.exec(dir, &format!("select {parent}:*"));
        for point in points {
            assert!(
                point.starts_with(parent.as_str()),
                "{point} is not one of {parent}'s creates"
            );
            assert!(
                stored
                    .lines()
                    .any(|line| line.split_whitespace().next() == Some(point.as_str())),
                "{point} was answered before the crash but is not in the database"
            );
        }
        // The stream can go on where it stopped.
        server.exec(dir, &format!("create? {parent}:p{}<Base>", CREATES - 1));
    }
    server.stop();
}

/// A file bigger than one stored chunk of content (256 KiB), whose bytes must come back
/// exactly.
fn big_file() -> Vec<u8> {
    (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

const PAGE: &[u8] = b"<!doctype html><h1>In the database</h1>\n";

/// What a client sees of the cosmos that must not change when the machine changes: answers
/// of the CLI, as HyperUser and as scott, and of the gateway, as Anonymous and as scott.
fn observe(server: &Server, dir: &Path, token: &str) -> Vec<String> {
    let as_scott = |command: &str| {
        let out = server.run(dir, &["exec", "--token", token, command]);
        format!("{} {}{}", out.status.success(), stdout(&out), stderr(&out))
    };
    let addr = server.http_addr();
    let get = |path: &str, headers: &[&str]| {
        let reply = http(&addr, "GET", path, headers, b"");
        format!("{} {}", reply.status, reply.text())
    };
    let bearer = format!("Authorization: Bearer {token}");
    let sent = server.run(dir, &["send", "localhost:hello", "Ext<Hello>", "again"]);
    vec![
        server.exec(dir, "select localhost:**"),
        server.exec(dir, "access localhost:base"),
        server.exec(dir, "get localhost:base{ color, size }"),
        as_scott("get localhost:base{ color }"),
        as_scott("set localhost:base{ +color=red }"),
        as_scott("select localhost:repo:**"),
        format!("{} {}", sent.status.success(), stdout(&sent)),
        get("/index.html", &[]),
        get("/app/world", &[]),
        get("/private/scott", &[]),
        get("/private/scott", &[&bearer]),
        get("/private/scott", &["Authorization: Bearer not-a-token"]),
    ]
}

#[test]
fn an_empty_data_directory_finds_the_whole_cosmos_in_the_database() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let big = big_file();
    let registry = Registry::postgres();
    let first_home = dir.join("first");
    let server = registry.start(&first_home);
    // The site (a page and the big file, the hello and vault mechtrons, scott, grants), a
    // mechtron with memory, and a particle with properties that scott may read but not write.
    tests::site::build(
        &server,
        dir,
        &[("html/index.html", PAGE), ("html/big.bin", &big)],
    );
    server.exec(
        dir,
        "create localhost:counter<Mechtron>{ \
           +config=localhost:repo:fixtures:1.0.0:/config/counter.mechtron }; \
         create localhost:base<Base>{ +color=blue, +@size=big }; \
         grant +cSd-Rwx on localhost:base+:** to localhost:users:scott",
    );
    let token = server.token(dir, "localhost:users:scott");
    let counted = server.run(dir, &["send", "localhost:counter", "Ext<Count>"]);
    assert!(counted.status.success(), "{}", stderr(&counted));
    let before = observe(&server, dir, &token);
    // The observations are of a cosmos that works: refusals where they are due, answers
    // where not.
    for (seen, expected) in before.iter().zip([
        "localhost:hello",
        "+cSd-Rwx",
        "blue",
        "true",
        "false",
        "false",
        "true",
        "200 <!doctype html>",
        "200 Hello, world!",
        "403",
        "200 Hello, scott!",
        "401",
    ]) {
        assert!(seen.contains(expected), "expected '{expected}' in:\n{seen}");
    }
    let name =
        std::fs::read_to_string(first_home.join("machine")).unwrap_or_else(|e| panic!("{e}"));
    server.stop();
    // Nothing of the first machine is left on this host.
    std::fs::remove_dir_all(&first_home).unwrap_or_else(|e| panic!("{e}"));

    let second_home = dir.join("second");
    assert!(!second_home.exists());
    let server = registry.start(&second_home);
    let renamed =
        std::fs::read_to_string(second_home.join("machine")).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(renamed, name, "a new data directory is a new machine");
    assert_eq!(observe(&server, dir, &token), before);
    // The artifact's bytes, through the gateway and the CLI.
    let served = http(&server.http_addr(), "GET", "/big.bin", &[], b"");
    assert_eq!(served.status, 200, "{}", served.text());
    assert!(served.body == big, "the gateway served other bytes");
    let read = server.run(
        dir,
        &["exec", "read localhost:repo:site:1.0.0:/html/big.bin"],
    );
    assert!(
        read.stdout == big,
        "read gave other bytes: {}",
        stderr(&read)
    );
    // The mechtron was started again from its bundle on the new machine, with fresh memory.
    let counted = server.run(dir, &["send", "localhost:counter", "Ext<Count>"]);
    assert!(
        stdout(&counted).trim_end().ends_with('1'),
        "{}",
        stdout(&counted)
    );
    server.stop();
}
