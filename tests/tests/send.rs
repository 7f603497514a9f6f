//! `starlane send` end to end (SPEC §13): the real binary against `starlane serve`, sending
//! headers, bodies of bytes from files and standard input, and wave ids of its own choosing;
//! printing the answer's headers (`--include`) and bodies of bytes exactly. The tests with a
//! server run on the embedded registry and on PostgreSQL (`embedded::…`, `postgres::…`).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tests::{Registry, Server, stderr, stdout};

const INDEX: &[u8] = b"<!doctype html><h1>Hello, send</h1>\n";

/// Bytes that are no text: every byte value, many times over, and no newline at the end.
fn binary() -> Vec<u8> {
    (0..=255u8).rev().cycle().take(70_001).collect()
}

/// A server with [`tests::site`] built: the mechtrons `localhost:hello` and
/// `localhost:slowpoke`, and `INDEX` and [`binary`] as the artifacts
/// `localhost:repo:site:1.0.0:/html/index.html` and `…/html/logo.bin`.
fn setup(dir: &Path, registry: &Registry) -> Server {
    let server = registry.start(&dir.join("home"));
    tests::site::build(
        &server,
        dir,
        &[("html/index.html", INDEX), ("html/logo.bin", &binary())],
    );
    server
}

/// `starlane send ARGS` against `server`, which must succeed.
fn sent(server: &Server, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let out = server.run(dir, &all);
    assert!(
        out.status.success(),
        "send {args:?}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    out
}

fn headers_go_and_come_back_and_bytes_arrive_exactly(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let server = setup(dir, registry);

    // An artifact read as the web reads it answers with its content type: --include prints
    // the status line, the headers and a blank line before the bytes, as curl -i does.
    let out = sent(
        &server,
        dir,
        &[
            "localhost:repo:site:1.0.0:/html/index.html",
            "Http<Get>",
            "--include",
        ],
    );
    let mut expected = b"200 OK\ncontent-type: text/html; charset=utf-8\n\n".to_vec();
    expected.extend_from_slice(INDEX);
    assert_eq!(stdout(&out), String::from_utf8_lossy(&expected));

    // `send … > file` writes exactly the file's bytes; the status line goes to stderr.
    let copy = dir.join("logo.copy");
    let out = server
        .command(
            dir,
            &[
                "send",
                "localhost:repo:site:1.0.0:/html/logo.bin",
                "Http<Get>",
            ],
        )
        .stdout(fs::File::create(&copy).unwrap_or_else(|e| panic!("{e}")))
        .output()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let copied = fs::read(&copy).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        copied == binary(),
        "{} bytes written, {} expected",
        copied.len(),
        binary().len()
    );
    assert_eq!(stderr(&out), "200 OK\n");

    // Headers reach a mechtron (it echoes x-client as x-echo) and its headers come back.
    let out = sent(
        &server,
        dir,
        &[
            "localhost:hello",
            "Http<Get>",
            "--path",
            "/app/world",
            "--header",
            "X-Client: cli",
            "--include",
        ],
    );
    assert_eq!(
        stdout(&out),
        "200 OK\ncontent-type: text/plain; charset=utf-8\nx-echo: cli\n\nHello, world!"
    );
    let out = sent(
        &server,
        dir,
        &[
            "localhost:hello",
            "Http<Get>",
            "--path",
            "/app/json",
            "-H",
            "x-client: j",
            "--json",
            "--include",
        ],
    );
    assert!(
        stdout(&out)
            .contains(r#""headers":{"content-type":"text/plain; charset=utf-8","x-echo":"j"}"#),
        "{}",
        stdout(&out)
    );

    // A body of bytes from a file, and from standard input, arrives byte for byte (the
    // mechtron answers with the body it got) and comes back the same.
    let body = dir.join("body.bin");
    fs::write(&body, binary()).unwrap_or_else(|e| panic!("{e}"));
    let out = sent(
        &server,
        dir,
        &[
            "localhost:hello",
            "Ext<Echo>",
            "--body-file",
            "body.bin",
            "-H",
            "x-a: 1",
        ],
    );
    assert!(
        out.stdout == binary(),
        "{} bytes came back, {} sent",
        out.stdout.len(),
        binary().len()
    );
    assert_eq!(stderr(&out), "200 OK\n");

    let mut child = server
        .command(
            dir,
            &["send", "localhost:hello", "Ext<Echo>", "--body-file", "-"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    stdin.write_all(&binary()).unwrap_or_else(|e| panic!("{e}"));
    drop(stdin);
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout == binary(),
        "{} bytes came back from standard input, {} sent",
        out.stdout.len(),
        binary().len()
    );
    server.stop();
}

fn a_wave_id_reaches_the_target_and_a_second_one_in_flight_is_refused(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let server = setup(dir, registry);

    // The guest sees the id the sender chose, and a retry under it, once the first is
    // answered, is sent again.
    let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    for _ in 0..2 {
        let out = sent(
            &server,
            dir,
            &["localhost:hello", "Ext<Echo>", "--wave-id", id, "--include"],
        );
        assert_eq!(stdout(&out), format!("200 OK\nx-wave-id: {id}\n\n"));
    }
    // Without --wave-id, a fresh id every time.
    let fresh: Vec<String> = (0..2)
        .map(|_| stdout(&sent(&server, dir, &["localhost:hello", "Ext<Echo>", "-i"])))
        .collect();
    assert_ne!(fresh[0], fresh[1]);
    assert!(!fresh[0].contains(id), "{}", fresh[0]);

    // Two Pings under one id at once: the one that comes second is refused with 409 while
    // the first is in flight, and the first gets its own answer.
    let id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let slow = [
        "send",
        "localhost:slowpoke",
        "Http<Get>",
        "--path",
        "/slow/2000",
        "--wave-id",
        id,
    ];
    let first = server
        .command(dir, &slow)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"));
    std::thread::sleep(Duration::from_millis(300));
    let second = server.run(dir, &slow);
    let first = first.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let refusal = format!("error: 409 a wave with id {id} is already in flight\n");
    let (answered, refused) = match (first.status.success(), second.status.success()) {
        (true, false) => (first, second),
        (false, true) => (second, first),
        _ => panic!(
            "expected one answer and one refusal\nfirst: {}{}\nsecond: {}{}",
            stdout(&first),
            stderr(&first),
            stdout(&second),
            stderr(&second)
        ),
    };
    assert_eq!(stdout(&answered), "200 OK\nlate\n", "{}", stderr(&answered));
    assert_eq!(stderr(&refused), refusal);
    assert_eq!(stdout(&refused), "");
    server.stop();
}

tests::on_each_registry!(
    headers_go_and_come_back_and_bytes_arrive_exactly,
    a_wave_id_reaches_the_target_and_a_second_one_in_flight_is_refused,
);

/// Mistakes on the command line are named before anything is sent (no server is needed to
/// see it: none is running).
#[test]
fn a_malformed_header_wave_id_or_body_file_is_named_before_connecting() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let home = dir.path().join("no-server");
    let home = home.to_str().unwrap_or_else(|| panic!("a UTF-8 path"));
    let run = |args: &[&str]| {
        let mut all = vec!["send", "--home", home, "localhost:hello", "Ext<Echo>"];
        all.extend_from_slice(args);
        tests::starlane(dir.path(), &all)
    };

    for (args, expected) in [
        (
            &["-H", "x-client"][..],
            "error: invalid value 'x-client' for '--header <NAME: VALUE>': expected 'name: \
             value', with a ':' after the name",
        ),
        (
            &["--header", ": cli"],
            "error: invalid value ': cli' for '--header <NAME: VALUE>': the header name is empty",
        ),
        (
            &["--header", "x client: cli"],
            "error: invalid value 'x client: cli' for '--header <NAME: VALUE>': the header name \
             \"x client\" contains ' '",
        ),
        (
            &["--wave-id", "not-a-uuid"],
            "error: invalid value 'not-a-uuid' for '--wave-id <UUID>': expected a UUID",
        ),
        (
            &["--wave-id", "0f8fad5b-d9cb-469f-a165-70867728950"],
            "error: invalid value '0f8fad5b-d9cb-469f-a165-70867728950' for '--wave-id <UUID>': \
             expected a UUID",
        ),
        (
            &["text", "--body-file", "body.bin"],
            "error: the argument '[BODY]' cannot be used with '--body-file <FILE>'",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(expected),
            "{args:?}:\n{}",
            stderr(&out)
        );
    }

    // A missing body file is named; the server is not looked for (there is none).
    let out = run(&["--body-file", "missing.bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: cannot read the body file missing.bin: "),
        "{}",
        stderr(&out)
    );
}
