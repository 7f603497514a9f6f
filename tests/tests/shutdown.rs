//! Shutdown drains (SPEC §19), end to end: the real `starlane serve` gets SIGTERM while HTTP
//! and control requests are under way. New connections are refused at once; what is under
//! way is answered, idle keep-alive connections and event streams end, and the process exits
//! 0 — or, past the grace period (`--grace`), what is still running is cut off and the process
//! exits all the same.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tests::{Server, stderr, stdout};

/// How long the test waits for what should happen at once (it takes milliseconds).
const PATIENCE: Duration = Duration::from_secs(10);

/// Starts `starlane serve ARGS` in `dir/home` with [`tests::site`] built: `GET /slow/{ms}`
/// answers after busy-waiting ms milliseconds, `/app/{name}` at once, `/news` streams a
/// channel.
fn setup(dir: &Path, args: &[&str]) -> Server {
    let server = Server::start_serving(&dir.join("home"), args, &[]);
    tests::site::build(&server, dir, &[]);
    server
}

/// Sends `GET path` on a fresh connection (`Connection: close`) and returns everything the
/// server sent before closing it: nothing if it was cut off.
fn get_raw(addr: &str, path: &str) -> Vec<u8> {
    let mut stream =
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("cannot send to {addr}: {e}"));
    let mut raw = Vec::new();
    // A connection cut off may end with a reset rather than an orderly close.
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// [`get_raw`] on a thread of its own.
fn get_in_background(addr: &str, path: &str) -> JoinHandle<Vec<u8>> {
    let (addr, path) = (addr.to_string(), path.to_string());
    std::thread::spawn(move || get_raw(&addr, &path))
}

/// `starlane send localhost:slowpoke Http<Get> --path PATH` on a process of its own.
fn send_in_background(server: &Server, dir: &Path, path: &str) -> std::process::Child {
    server
        .command(
            dir,
            &["send", "localhost:slowpoke", "Http<Get>", "--path", path],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run starlane send: {e}"))
}

/// Reads one HTTP response with a `Content-Length` from a keep-alive connection.
fn read_response(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream
            .read(&mut byte)
            .unwrap_or_else(|e| panic!("reading a response head: {e}"));
        assert_eq!(n, 1, "the connection closed in a response head");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head:?}"));
    let mut body = vec![0u8; length];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|e| panic!("reading a response body: {e}"));
    format!("{head}{}", String::from_utf8_lossy(&body))
}

/// Whether a connection to `addr` is refused now.
fn refused(addr: &str) -> bool {
    TcpStream::connect(addr).is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
}

/// Waits until connections to `addr` are refused, and says when that was.
fn until_refused(addr: &str) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    while !refused(addr) {
        assert!(
            Instant::now() < deadline,
            "{addr} still takes connections {PATIENCE:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Instant::now()
}

fn finished(child: std::process::Child) -> Output {
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("starlane send: {e}"))
}

#[test]
fn requests_under_way_are_answered_and_new_connections_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let server = setup(dir, &[]);
    let http = server.http_addr();
    let control = server.control_addr();

    // A keep-alive connection that has been answered and sits idle.
    let mut idle =
        TcpStream::connect(&http).unwrap_or_else(|e| panic!("cannot connect to {http}: {e}"));
    write!(idle, "GET /app/idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = read_response(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("Hello, idle!"), "{answer}");

    // An event stream, subscribed.
    let mut events =
        TcpStream::connect(&http).unwrap_or_else(|e| panic!("cannot connect to {http}: {e}"));
    write!(
        events,
        "GET /news HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(": subscribed") {
        let n = events
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("reading the event stream: {e}"));
        assert!(n > 0, "the event stream ended before it subscribed");
        seen.extend_from_slice(&chunk[..n]);
    }

    // The guest answers one call at a time: the control request waits for the HTTP one, and
    // both are under way (one running, one queued) when the signal comes.
    let slow = get_in_background(&http, "/slow/3000");
    let sent = send_in_background(&server, dir, "/slow/1500");
    std::thread::sleep(Duration::from_millis(1000));
    let signalled = Instant::now();
    server.signal("TERM");

    // New connections are refused at once, on both ports, while the requests run on.
    until_refused(&http);
    until_refused(&control);
    assert!(
        !slow.is_finished(),
        "the slow request was answered before new connections were refused"
    );

    // The idle keep-alive connection is closed, and so is the event stream, cleanly: the
    // chunked body ends with its last chunk.
    idle.set_read_timeout(Some(PATIENCE))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("the idle connection was not closed: {e}"));
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    events
        .set_read_timeout(Some(PATIENCE))
        .unwrap_or_else(|e| panic!("{e}"));
    events
        .read_to_end(&mut seen)
        .unwrap_or_else(|e| panic!("the event stream did not end: {e}"));
    assert!(
        seen.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );

    // What was under way is answered.
    let answer = slow
        .join()
        .unwrap_or_else(|_| panic!("the HTTP client panicked"));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("late"), "{answer}");
    let sent = finished(sent);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert_eq!(stdout(&sent), "200 OK\nlate\n");

    // Then the process exits, cleanly.
    let log_home = server.home().to_path_buf();
    let status = server.exit_within(PATIENCE);
    assert!(status.success(), "exit {status}");
    let log = std::fs::read_to_string(log_home.with_extension("log")).unwrap_or_default();
    assert!(log.ends_with("stopping\nstopped\n"), "{log}");
    assert!(!log.contains("cut off"), "{log}");
    assert!(signalled.elapsed() < Duration::from_secs(30));
}

#[test]
fn what_outlasts_the_grace_is_cut_off() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.path();
    let server = setup(dir, &["--grace", "1"]);
    let http = server.http_addr();

    // Far longer than the grace: the process must not wait for it.
    let slow = get_in_background(&http, "/slow/20000");
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    server.signal("TERM");
    until_refused(&http);

    let log_home = server.home().to_path_buf();
    let status = server.exit_within(Duration::from_secs(15));
    let exited = signalled.elapsed();
    assert!(status.success(), "exit {status}");
    // The request was cut off, unanswered, when the grace ran out.
    let answer = slow
        .join()
        .unwrap_or_else(|_| panic!("the HTTP client panicked"));
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert!(
        exited >= Duration::from_secs(1),
        "exited {exited:?} after SIGTERM, before the grace ran out"
    );
    let log = std::fs::read_to_string(log_home.with_extension("log")).unwrap_or_default();
    assert!(
        log.contains(
            "http: 1 connection(s) and 0 stream(s) still open 1 s after the stop: cut off"
        ),
        "{log}"
    );
    assert!(
        log.contains("stopping\n") && log.ends_with("stopped\n"),
        "{log}"
    );
    eprintln!("exited {exited:?} after SIGTERM with a grace of 1 s");
}
