//! The HTTP gateway end to end (SPEC §12): the real `starlane serve`, real HTTP on a socket,
//! a Space bind routing to artifacts and to wasm mechtrons. Every test runs on the embedded
//! registry and on PostgreSQL (`embedded::…`, `postgres::…`).

use std::path::Path;

use tests::{HttpReply, Registry, Server, http, stderr};

const INDEX: &[u8] = include_bytes!("../../examples/app/bundle/html/index.html");
const CSS: &[u8] = include_bytes!("../../examples/app/bundle/html/css/site.css");

/// A server whose gateway waits 2 s, takes bodies up to 1 KiB and cuts off requests that take
/// more than 500 ms to arrive, with the example app's page and stylesheet as the site
/// ([`tests::site`]: Anonymous may reach everything but the vault).
fn setup(dir: &Path, registry: &Registry) -> Server {
    let server = registry.start_with(
        &dir.join("home"),
        &[
            ("STARLANE_HTTP_WAIT", "2"),
            ("STARLANE_HTTP_MAX_BODY", "1024"),
            ("STARLANE_HTTP_READ_TIMEOUT", "500"),
        ],
    );
    tests::site::build(
        &server,
        dir,
        &[("html/index.html", INDEX), ("html/css/site.css", CSS)],
    );
    server
}

fn get(server: &Server, path: &str, headers: &[&str]) -> HttpReply {
    http(&server.http_addr(), "GET", path, headers, b"")
}

fn static_files_and_mechtrons_through_binds(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);

    // Artifacts: the bytes and the content type of each file.
    let index = get(&server, "/index.html", &[]);
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(index.body, INDEX);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let css = get(&server, "/css/site.css", &[]);
    assert_eq!(css.body, CSS);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    // A mechtron by forward (its route captures the name), headers carried both ways.
    let app = get(&server, "/app/world", &["X-Client: tester"]);
    assert_eq!(app.status, 200, "{}", app.text());
    assert_eq!(app.text(), "Hello, world!");
    assert_eq!(app.header("x-echo"), Some("tester"));
    assert_eq!(
        app.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // Binds and routes match the path; the query reaches the mechtron apart.
    let query = get(&server, "/app/ann?lang=en", &[]);
    assert_eq!(query.text(), "Hello, ann!");
    assert_eq!(query.header("x-query"), Some("lang=en"));
    let css = get(&server, "/css/site.css?v=2", &[]);
    assert_eq!(css.status, 200, "{}", css.text());
    assert_eq!(css.body, CSS);

    // A typed route variable, the parsed query, and JSON; a variable that does not convert is
    // a 400 that names it.
    let item = get(&server, "/app/items/42?tag=a%20b&tag=c", &[]);
    assert_eq!(item.status, 200, "{}", item.text());
    assert_eq!(item.text(), r#"[42,["a b","c"]]"#);
    assert_eq!(item.header("content-type"), Some("application/json"));
    let bad = get(&server, "/app/items/abc", &[]);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(
        bad.text()
            .contains(r#"route variable 'id' = "abc" is not a valid u64"#),
        "{}",
        bad.text()
    );

    // A call: the bind's captured variable becomes the callee's path, which keeps the query.
    let call = get(&server, "/greet/scott?x=1", &[]);
    assert_eq!(call.status, 200, "{}", call.text());
    assert_eq!(call.text(), "Hello, scott!");
    assert_eq!(call.header("x-query"), Some("x=1"));
    server.stop();
}

/// The README walkthrough's web part, step by step: `starlane bundle examples/app`, publish,
/// create the app mechtron, give the Space the app's bind, and browse — refused until the
/// owner opens the Space to Anonymous.
fn the_example_app_answers_on_the_web(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = tests::workspace_root().join("examples/app");
    let bundled = tests::bundle_scaffold(&app);
    assert!(bundled.status.success(), "{}", stderr(&bundled));
    let server = registry.start(&dir.path().join("home"));
    server.exec(&app, "create localhost<Space>; create localhost:repo<Repo>");
    server.exec(&app, "publish ^[ bundle.zip ]-> localhost:repo:app:1.0.0");
    server.exec(
        &app,
        "create localhost:app<Mechtron>{ +config=localhost:repo:app:1.0.0:/config/app.mechtron }",
    );
    server.exec(
        &app,
        "set localhost{ +bind=localhost:repo:app:1.0.0:/bind/localhost.bind }",
    );
    let refused = get(&server, "/app/world", &[]);
    assert_eq!(refused.status, 403, "{}", refused.text());

    // `x` reaches the Space and the mechtron; the page is data, read with `r` (SPEC §9).
    server.exec(
        &app,
        "grant +csd-rwX on localhost to hyperspace:users:anonymous",
    );
    let unread = get(&server, "/", &[]);
    assert_eq!(unread.status, 403, "{}", unread.text());
    assert_eq!(unread.text(), "Forbidden\n");
    server.exec(
        &app,
        "grant +csd-Rwx on localhost:repo:app:1.0.0+:** to hyperspace:users:anonymous",
    );
    let page = get(&server, "/", &[]);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.body, INDEX);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let css = get(&server, "/css/site.css", &[]);
    assert_eq!(css.body, CSS);
    let hello = get(&server, "/app/world", &[]);
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.text(), "Hello, world!\n");
    assert_eq!(
        hello.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    server.stop();
}

fn errors_have_their_statuses_and_keep_internals_private(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    let addr = server.http_addr();

    let missing = get(&server, "/nothing.html", &[]);
    assert_eq!(missing.status, 404);
    let no_route = http(&addr, "POST", "/index.html", &[], b"x");
    assert_eq!(no_route.status, 404, "{}", no_route.text());

    let big = http(&addr, "POST", "/app/world", &[], &[b'x'; 2048]);
    assert_eq!(big.status, 413, "{}", big.text());

    let boom = get(&server, "/boom", &[]);
    assert_eq!(boom.status, 500);
    let text = boom.text().to_lowercase();
    assert!(
        !text.contains("trap") && !text.contains("panic") && !text.contains("mechtron"),
        "{text}"
    );

    // 2.5 s: past the gateway's 2 s wait, and short enough that a mechtron sharing the slow
    // guest's wasm worker (which runs one call at a time) answers the next request in time.
    let slow = get(&server, "/slow/2500", &[]);
    assert_eq!(slow.status, 504, "{}", slow.text());

    // The server carries on.
    assert_eq!(get(&server, "/app/again", &[]).text(), "Hello, again!");
    server.stop();
}

fn a_bearer_token_opens_what_anonymous_may_not_reach(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    let anonymous = get(&server, "/private/scott", &[]);
    assert_eq!(anonymous.status, 403, "{}", anonymous.text());

    let token = server.token(dir.path(), "localhost:users:scott");
    let bearer = format!("Authorization: Bearer {token}");
    let scott = get(&server, "/private/scott", &[&bearer]);
    assert_eq!(scott.status, 200, "{}", scott.text());
    assert_eq!(scott.text(), "Hello, scott!");

    let forged = get(
        &server,
        "/private/scott",
        &["Authorization: Bearer not-a-token"],
    );
    assert_eq!(forged.status, 401);
    assert_eq!(forged.header("www-authenticate"), Some("Bearer"));
    server.stop();
}

/// What the server did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It answered with this status.
    Answered(u16),
    /// It closed the connection without answering.
    Closed,
}

/// What the client does once it has sent its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Waits for the answer (the request is complete, or deliberately left unfinished).
    Wait,
    /// Hangs up at once.
    HangUp,
}

/// One kind of bad request: its bytes, what the client does next, and what the server must do.
struct Abuse {
    name: &'static str,
    bytes: Vec<u8>,
    then: Then,
    expected: Outcome,
}

/// The bad requests a server on the web meets: garbage, malformed heads, oversize heads and
/// bodies, undecodable headers, unserved methods, forged tokens, and clients that stall or
/// vanish half-way. The gateway takes bodies up to 1 KiB and waits 500 ms for a request.
fn abuses() -> Vec<Abuse> {
    let request = |head: &str| format!("{head}\r\nHost: localhost\r\nConnection: close\r\n");
    let many_headers: String = (0..200).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
    let chunked_body = format!("800\r\n{}\r\n0\r\n\r\n", "x".repeat(0x800));
    let abuse = |name, bytes: Vec<u8>, then, expected| Abuse {
        name,
        bytes,
        then,
        expected,
    };
    use Outcome::{Answered, Closed};
    use Then::{HangUp, Wait};
    vec![
        abuse(
            "TLS bytes on the HTTP port",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            Wait,
            Answered(400),
        ),
        abuse(
            "no HTTP version",
            b"GET /index.html\r\n\r\n".to_vec(),
            Wait,
            Answered(400),
        ),
        abuse(
            "a header without a colon",
            format!(
                "{}Broken header\r\n\r\n",
                request("GET /index.html HTTP/1.1")
            )
            .into_bytes(),
            Wait,
            Answered(400),
        ),
        abuse(
            "200 headers",
            format!("{}{many_headers}\r\n", request("GET /index.html HTTP/1.1")).into_bytes(),
            Wait,
            Answered(431),
        ),
        abuse(
            "a 70 KiB header",
            format!(
                "{}X-Big: {}\r\n\r\n",
                request("GET /index.html HTTP/1.1"),
                "b".repeat(70 * 1024)
            )
            .into_bytes(),
            Wait,
            Answered(431),
        ),
        abuse(
            "a Content-Length that is not a number",
            format!(
                "{}Content-Length: lots\r\n\r\n",
                request("POST /app/x HTTP/1.1")
            )
            .into_bytes(),
            Wait,
            Answered(400),
        ),
        abuse(
            "a declared body over the limit",
            format!(
                "{}Content-Length: 2048\r\n\r\n",
                request("POST /app/x HTTP/1.1")
            )
            .into_bytes(),
            Wait,
            Answered(413),
        ),
        abuse(
            "a chunked body over the limit",
            format!(
                "{}Transfer-Encoding: chunked\r\n\r\n{chunked_body}",
                request("POST /app/x HTTP/1.1")
            )
            .into_bytes(),
            Wait,
            Answered(413),
        ),
        abuse(
            "a header value that is not text",
            [
                request("GET /index.html HTTP/1.1").as_bytes(),
                b"X-Binary: \xff\xfe\r\n\r\n",
            ]
            .concat(),
            Wait,
            Answered(400),
        ),
        abuse(
            "a method the gateway does not serve",
            format!("{}\r\n", request("BREW /pot HTTP/1.1")).into_bytes(),
            Wait,
            Answered(405),
        ),
        abuse(
            "a forged token",
            format!(
                "{}Authorization: Bearer forged\r\n\r\n",
                request("GET /index.html HTTP/1.1")
            )
            .into_bytes(),
            Wait,
            Answered(401),
        ),
        abuse(
            "headers that stop half-way",
            b"GET /index.html HTTP/1.1\r\nHost: local".to_vec(),
            Wait,
            Closed,
        ),
        abuse(
            "a body that stops half-way",
            format!(
                "{}Content-Length: 100\r\n\r\n0123456789",
                request("POST /app/x HTTP/1.1")
            )
            .into_bytes(),
            Wait,
            Answered(408),
        ),
        abuse("a connection that says nothing", Vec::new(), Wait, Closed),
        abuse(
            "a client that hangs up mid-body",
            format!(
                "{}Content-Length: 100\r\n\r\nabc",
                request("POST /app/x HTTP/1.1")
            )
            .into_bytes(),
            HangUp,
            Closed,
        ),
    ]
}

/// Sends `abuse` on a fresh connection and sees what the server does (within 10 s: the
/// server must answer or hang up long before).
fn inflict(addr: &str, abuse: &Abuse) -> Outcome {
    use std::io::{ErrorKind, Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("{}: cannot connect to {addr}: {e}", abuse.name));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(&abuse.bytes)
        .unwrap_or_else(|e| panic!("{}: cannot send: {e}", abuse.name));
    if abuse.then == Then::HangUp {
        return Outcome::Closed;
    }
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "{}: the server neither answered nor hung up: {e}",
                abuse.name
            ),
        }
    }
    if head.is_empty() {
        return Outcome::Closed;
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{}: not an HTTP answer: {line:?}", abuse.name));
    Outcome::Answered(status)
}

fn the_server_survives_10k_bad_requests_and_answers_the_next_good_one(registry: &Registry) {
    const REQUESTS: usize = 10_000;
    const CLIENTS: usize = 64;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry);
    let addr = server.http_addr();
    let abuses = abuses();

    // 64 clients at once, each taking every 64th request of the 10,000, so the slow ones
    // (cut off after 500 ms) overlap; every kind comes round 600+ times.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (addr, abuses) = (&addr, &abuses);
                scope.spawn(move || {
                    (client..REQUESTS)
                        .step_by(CLIENTS)
                        .filter_map(|n| {
                            let abuse = &abuses[n % abuses.len()];
                            let outcome = inflict(addr, abuse);
                            (outcome != abuse.expected).then(|| {
                                format!(
                                    "request {n}, {}: {outcome:?}, expected {:?}",
                                    abuse.name, abuse.expected
                                )
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|client| {
                client
                    .join()
                    .unwrap_or_else(|_| panic!("a client panicked"))
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} bad requests were not handled as expected, e.g.\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );

    // The next good requests are answered, byte for byte.
    let index = get(&server, "/index.html", &[]);
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(index.body, INDEX);
    let app = get(&server, "/app/world", &["X-Client: survivor"]);
    assert_eq!(app.status, 200, "{}", app.text());
    assert_eq!(app.text(), "Hello, world!");
    assert_eq!(app.header("x-echo"), Some("survivor"));
    let posted = http(&addr, "POST", "/app/world", &[], &[b'x'; 1024]);
    assert_eq!(posted.status, 404, "{}", posted.text());
    server.stop();
}

tests::on_each_registry!(
    static_files_and_mechtrons_through_binds,
    the_example_app_answers_on_the_web,
    errors_have_their_statuses_and_keep_internals_private,
    a_bearer_token_opens_what_anonymous_may_not_reach,
    the_server_survives_10k_bad_requests_and_answers_the_next_good_one,
);
