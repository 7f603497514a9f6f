//! The HTTP gateway end to end (SPEC §12): the real `starlane serve`, real HTTP on a socket,
//! a Space bind routing to artifacts and to wasm mechtrons.

use std::path::Path;

use tests::{HttpReply, Server, http, stderr, stdout};

const INDEX: &[u8] = include_bytes!("../../examples/site/bundle/html/index.html");
const CSS: &[u8] = include_bytes!("../../examples/site/bundle/html/css/site.css");

/// The Space's bind: static files, a mechtron by forward and by call with a captured
/// variable, a slow and a failing mechtron, and a route only a user may take.
const BIND: &str = "Bind(version=1.0.0) {
  Route<Http<Get>>/app/(?P<rest>.*) -> localhost:hello => &;
  Route<Http<Get>>/greet/(?P<who>[^/]*) -> localhost:hello^Http<Get>/app/${who} => &;
  Route<Http<Get>>/slow/(?P<ms>[0-9]+) -> localhost:slowpoke => &;
  Route<Http<Get>>/boom -> localhost:trouble^Ext<Panic> => &;
  Route<Http<Get>>/private/(?P<who>[^/]*) -> localhost:vault^Http<Get>/app/${who} => &;
  Route<Http<Get>>/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
}
";

/// A server whose gateway waits 2 s and takes bodies up to 1 KiB, with the site, the
/// fixtures and the bind above; Anonymous may reach everything but the vault.
fn setup(dir: &Path) -> Server {
    tests::write_fixtures_bundle(dir);
    let site = tests::zip(&[
        ("html/index.html", INDEX),
        ("html/css/site.css", CSS),
        ("bind/space.bind", BIND.as_bytes()),
    ]);
    std::fs::write(dir.join("site.zip"), site).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start_with(
        &dir.join("home"),
        &[
            ("STARLANE_HTTP_WAIT", "2"),
            ("STARLANE_HTTP_MAX_BODY", "1024"),
        ],
    );
    let config = "localhost:repo:fixtures:1.0.0:/config";
    server.exec(
        dir,
        &format!(
            "create localhost<Space>; create localhost:repo<Repo>; \
             publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0; \
             publish ^[ site.zip ]-> localhost:repo:site:1.0.0; \
             create localhost:hello<Mechtron>{{ +config={config}/hello.mechtron }}; \
             create localhost:vault<Mechtron>{{ +config={config}/hello.mechtron }}; \
             create localhost:slowpoke<Mechtron>{{ +config={config}/slowpoke.mechtron }}; \
             create localhost:trouble<Mechtron>{{ +config={config}/troublemaker.mechtron }}; \
             set localhost{{ +bind=localhost:repo:site:1.0.0:/bind/space.bind }}; \
             create localhost:users<UserBase>; create localhost:users:scott<User>"
        ),
    );
    for grant in [
        // A public site is the owner's choice (a grant on the Space covers its subtree)…
        "grant +csd-rwX on localhost to hyperspace:users:anonymous",
        // …except the vault, masked for Anonymous, and opened for scott.
        "grant &csd-rwx on localhost:vault to hyperspace:users:anonymous",
        "grant +csd-rwX on localhost to localhost:users:scott",
    ] {
        server.exec(dir, grant);
    }
    server
}

fn get(server: &Server, path: &str, headers: &[&str]) -> HttpReply {
    http(&server.http_addr(), "GET", path, headers, b"")
}

#[test]
fn static_files_and_mechtrons_through_binds() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path());

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
    let query = get(&server, "/app/ann?lang=en", &[]);
    assert_eq!(query.text(), "Hello, ann!");

    // A call: the bind's captured variable becomes the callee's path.
    let call = get(&server, "/greet/scott", &[]);
    assert_eq!(call.status, 200, "{}", call.text());
    assert_eq!(call.text(), "Hello, scott!");
    server.stop();
}

#[test]
fn errors_have_their_statuses_and_keep_internals_private() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path());
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

    let slow = get(&server, "/slow/4000", &[]);
    assert_eq!(slow.status, 504, "{}", slow.text());

    // The server carries on.
    assert_eq!(get(&server, "/app/again", &[]).text(), "Hello, again!");
    server.stop();
}

#[test]
fn a_bearer_token_opens_what_anonymous_may_not_reach() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path());
    let anonymous = get(&server, "/private/scott", &[]);
    assert_eq!(anonymous.status, 403, "{}", anonymous.text());

    let out = server.run(dir.path(), &["token", "localhost:users:scott"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
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
