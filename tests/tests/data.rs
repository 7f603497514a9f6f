//! Data for mechtrons (SPEC §17), end to end with the real binary on both registries: a
//! mechtron's counter in a key-value store that survives `kill -9`, and the store's own
//! answers through `starlane send` and the web — conditions (412), limits (413), paged
//! listings, all-or-nothing batches, and refusals (403) to agents without `r`/`w`.

use std::path::Path;

use tests::{HttpReply, Registry, Server, http, stderr, stdout};

/// Bundles the `visits` example and sets up `localhost` with its bind, the stores
/// `localhost:visits:data` and `localhost:visits:files` and the mechtron
/// `localhost:visits:counter` — which may not use the stores yet — and opens the Space and the
/// mechtron to Anonymous.
fn visits_app(registry: &Registry, home: &Path) -> Server {
    let example = tests::workspace_root().join("examples/visits");
    let bundled = tests::bundle_scaffold(&example);
    assert!(bundled.status.success(), "{}", stderr(&bundled));
    let server = registry.start(home);
    server.exec(
        &example,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:visits:1.0.0; \
         create localhost:visits<App>; \
         create localhost:visits:data<Database<KeyValue>>; \
         create localhost:visits:files<FileStore>; \
         create localhost:visits:counter<Mechtron>{ \
           +config=localhost:repo:visits:1.0.0:/config/visits.mechtron, \
           +kv=localhost:visits:data, +files=localhost:visits:files }; \
         set localhost{ +bind=localhost:repo:visits:1.0.0:/bind/localhost.bind }; \
         grant +csd-rwX on localhost to hyperspace:users:anonymous; \
         grant +csd-rwX on localhost:visits:counter to hyperspace:users:anonymous",
    );
    server
}

fn get(server: &Server, path: &str) -> HttpReply {
    http(&server.http_addr(), "GET", path, &[], b"")
}

/// A mechtron keeps its counter in a key-value store and uploads in a file store: refused until
/// the stores grant it `rw`, then counting and storing, and both survive `kill -9` of the
/// server and a restart.
fn a_mechtrons_counter_and_files_survive_kill_9(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let home = dir.path().join("home");
    let server = visits_app(registry, &home);
    let refused = get(&server, "/visits");
    assert_eq!(refused.status, 403, "{}", refused.text());

    let upload = http(&server.http_addr(), "PUT", "/files/hello.txt", &[], b"hi");
    assert_eq!(upload.status, 403, "{}", upload.text());
    server.exec(
        dir.path(),
        "grant +csd-RWX on localhost:visits:data to localhost:visits:counter; \
         grant +csd-RWX on localhost:visits:files+:** to localhost:visits:counter",
    );
    let pixels: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let upload = http(
        &server.http_addr(),
        "PUT",
        "/files/pixels.png",
        &["content-type: image/png"],
        &pixels,
    );
    assert_eq!(upload.status, 200, "{}", upload.text());
    for n in 1..=3 {
        let visit = get(&server, "/visits");
        assert_eq!(visit.status, 200, "{}", visit.text());
        assert_eq!(visit.text().trim(), format!("You are visitor number {n}."));
    }
    server.kill9();

    let server = registry.start(&home);
    let visit = get(&server, "/visits");
    assert_eq!(visit.status, 200, "{}", visit.text());
    assert_eq!(visit.text().trim(), "You are visitor number 4.");
    let download = get(&server, "/files/pixels.png");
    assert_eq!(download.status, 200, "{}", download.text());
    assert!(download.body == pixels, "the upload came back changed");
    assert_eq!(download.header("content-type"), Some("image/png"));
    assert_eq!(get(&server, "/files/nothing.png").status, 404);
    let read = server.run(
        dir.path(),
        &[
            "send",
            "localhost:visits:data",
            "Http<Get>",
            "--path",
            "/k/visits",
        ],
    );
    assert!(read.status.success(), "{}", stderr(&read));
    assert_eq!(
        stdout(&read).lines().last().map(str::trim),
        Some("4"),
        "{}",
        stdout(&read)
    );
    server.stop();
}

/// The Space's bind opens the store to the web under `/kv/…` and `/batch` (each route calls
/// the store with the method and path the store answers).
const STORE_BIND: &str = "Bind(version=1.0.0) {
  Route<Http<Get>>/kv/(?P<rest>.*) -> localhost:app:data^Http<Get>/k/${rest} => &;
  Route<Http<Put>>/kv/(?P<rest>.*) -> localhost:app:data^Http<Put>/k/${rest} => &;
  Route<Http<Delete>>/kv/(?P<rest>.*) -> localhost:app:data^Http<Delete>/k/${rest} => &;
  Route<Http<Post>>/kv/(?P<rest>.*) -> localhost:app:data^Http<Post>/k/${rest} => &;
  Route<Http<Post>>/batch -> localhost:app:data^Http<Post>/batch => &;
}
";

fn store_on_the_web(registry: &Registry, dir: &Path) -> Server {
    let server = registry.start(&dir.join("home"));
    let site = tests::zip(&[("bind/localhost.bind", STORE_BIND.as_bytes())]);
    std::fs::write(dir.join("site.zip"), site).unwrap_or_else(|e| panic!("{e}"));
    server.exec(
        dir,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ site.zip ]-> localhost:repo:site:1.0.0; \
         create localhost:app<App>; create localhost:app:data<Database<KeyValue>>; \
         set localhost{ +bind=localhost:repo:site:1.0.0:/bind/localhost.bind }; \
         grant +csd-rwX on localhost+:** to hyperspace:users:anonymous; \
         grant +csd-Rwx on localhost:repo+:** to hyperspace:users:anonymous",
    );
    server
}

/// Reads need `r` and writes `w` on the store, through the web and through `send`; a user
/// token without them is refused (403) and changes nothing.
fn a_store_refuses_agents_without_r_or_w(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = store_on_the_web(registry, dir.path());
    let addr = server.http_addr();
    // Every operation of a store, from the web as Anonymous (which may reach it, `x`, but
    // neither read nor write it): refused, and nothing changes.
    for (method, path, body) in [
        ("PUT", "/kv/secret-plan", &b"v1"[..]),
        ("GET", "/kv/secret-plan", b""),
        ("DELETE", "/kv/secret-plan", b""),
        ("POST", "/kv/visits/increment", b"1"),
        ("GET", "/kv/?prefix=s", b""),
        ("POST", "/batch", br#"[{"op":"get","key":"a"}]"#),
    ] {
        let refused = http(&addr, method, path, &[], body);
        assert_eq!(refused.status, 403, "{method} {path}: {}", refused.text());
    }
    let untouched = server.run(
        dir.path(),
        &[
            "send",
            "localhost:app:data",
            "Http<Get>",
            "--path",
            "/k/visits",
        ],
    );
    assert!(stdout(&untouched).contains("404") || stderr(&untouched).contains("404"));

    server.exec(
        dir.path(),
        "create localhost:users<UserBase>; create localhost:users:ann<User>",
    );
    let token = server.token(dir.path(), "localhost:users:ann");
    let as_ann = |args: &[&str]| {
        let mut command = server.command(dir.path(), args);
        command.env("STARLANE_TOKEN", &token);
        command.output().unwrap_or_else(|e| panic!("{e}"))
    };
    let put = as_ann(&[
        "send",
        "localhost:app:data",
        "Http<Put>",
        "v1",
        "--path",
        "/k/plan",
    ]);
    assert!(!put.status.success());
    assert!(
        stderr(&put).contains("403") || stdout(&put).contains("403"),
        "{}",
        stderr(&put)
    );

    server.exec(
        dir.path(),
        "grant +csd-RWX on localhost:app:data to localhost:users:**<User>",
    );
    let put = as_ann(&[
        "send",
        "localhost:app:data",
        "Http<Put>",
        "v1",
        "--path",
        "/k/plan",
    ]);
    assert!(put.status.success(), "{}", stderr(&put));
    let get = as_ann(&[
        "send",
        "localhost:app:data",
        "Http<Get>",
        "--path",
        "/k/plan",
    ]);
    assert!(get.status.success(), "{}", stderr(&get));
    assert!(stdout(&get).contains("v1"), "{}", stdout(&get));
    // Anonymous on the web still has neither.
    let read = http(&addr, "GET", "/kv/plan", &[], b"");
    assert_eq!(read.status, 403, "{}", read.text());
    server.stop();
}

/// The store's rules through the web: etag conditions (412), the value limit (413), a
/// listing paged through 2,500 keys, and a batch that fails a condition changing nothing.
fn a_store_keeps_its_rules_on_the_web(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = store_on_the_web(registry, dir.path());
    server.exec(
        dir.path(),
        "grant +csd-RWX on localhost:app:data to hyperspace:users:anonymous",
    );
    let addr = server.http_addr();

    let first = http(
        &addr,
        "PUT",
        "/kv/greeting",
        &["if-none-match: *"],
        b"hello",
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let etag = first
        .header("etag")
        .unwrap_or_else(|| panic!("no etag"))
        .to_string();
    let again = http(&addr, "PUT", "/kv/greeting", &["if-none-match: *"], b"hi");
    assert_eq!(again.status, 412, "{}", again.text());
    let stale = http(&addr, "PUT", "/kv/greeting", &["if-match: \"0000\""], b"hi");
    assert_eq!(stale.status, 412, "{}", stale.text());
    let fresh = http(
        &addr,
        "PUT",
        "/kv/greeting",
        &[&format!("if-match: {etag}")],
        b"hi",
    );
    assert_eq!(fresh.status, 200, "{}", fresh.text());
    let read = get(&server, "/kv/greeting");
    assert_eq!((read.status, read.text()), (200, "hi".to_string()));

    let limit = 1 << 20;
    let too_big = http(&addr, "PUT", "/kv/big", &[], &vec![b'x'; limit + 1]);
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    let just_fits = http(&addr, "PUT", "/kv/big", &[], &vec![b'x'; limit]);
    assert_eq!(just_fits.status, 200, "{}", just_fits.text());
    assert_eq!(get(&server, "/kv/big").body.len(), limit);

    let count = http(&addr, "POST", "/kv/visits/increment", &[], b"5");
    assert_eq!((count.status, count.text()), (200, "5".to_string()));
    // An increment sent again with its wave id (a client's retry) is answered again, and
    // counted once; a new id counts again.
    let increment = |id: &str| {
        let out = server.run(
            dir.path(),
            &[
                "send",
                "localhost:app:data",
                "Http<Post>",
                "2",
                "--path",
                "/k/retried/increment",
                "--wave-id",
                id,
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let id = "6f1c2a9e-3b4d-4c5e-8f60-718293a4b5c6";
    assert!(increment(id).contains('2'));
    assert!(
        increment(id).contains('2'),
        "the retry is answered as the first time"
    );
    assert!(increment("0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3").contains('4'));
    assert_eq!(get(&server, "/kv/retried").text(), "4");

    for chunk in 0..3 {
        let ops: Vec<String> = (chunk * 1000..(chunk * 1000 + 1000).min(2500))
            .map(|n| format!("{{\"op\":\"put\",\"key\":\"user:{n:04}\",\"value\":\"{n}\"}}"))
            .collect();
        let body = format!("[{}]", ops.join(","));
        let batch = http(&addr, "POST", "/batch", &[], body.as_bytes());
        assert_eq!(batch.status, 200, "{}", batch.text());
    }
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/kv/?prefix=user%3A".to_string();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", cursor.replace(':', "%3A")));
        }
        let page = get(&server, &path);
        assert_eq!(page.status, 200, "{}", page.text());
        let page: serde_json::Value =
            serde_json::from_slice(&page.body).unwrap_or_else(|e| panic!("{e}"));
        pages += 1;
        let keys = page["keys"].as_array().unwrap_or_else(|| panic!("{page}"));
        assert!(keys.len() <= 1000);
        listed.extend(keys.iter().filter_map(|k| k.as_str().map(str::to_string)));
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let want: Vec<String> = (0..2500).map(|n| format!("user:{n:04}")).collect();
    assert_eq!(listed, want, "every key once, in order");
    assert_eq!(pages, 3);

    let failing = format!(
        "[{{\"op\":\"put\",\"key\":\"user:0001\",\"value\":\"changed\"}},\
          {{\"op\":\"increment\",\"key\":\"visits\",\"by\":100}},\
          {{\"op\":\"delete\",\"key\":\"greeting\",\"if-match\":{}}}]",
        serde_json::Value::from(etag)
    );
    let batch = http(&addr, "POST", "/batch", &[], failing.as_bytes());
    assert_eq!(batch.status, 412, "{}", batch.text());
    assert_eq!(get(&server, "/kv/user:0001").text(), "1");
    assert_eq!(get(&server, "/kv/visits").text(), "5");
    assert_eq!(get(&server, "/kv/greeting").text(), "hi");
    server.stop();
}

/// The Space's bind opens a file store to the web under `/files/…`.
const FILES_BIND: &str = "Bind(version=1.0.0) {
  Route<Http<*>>/files/(?P<path>.*) -> localhost:app:files:/${path} => &;
}
";

/// Files through the web and `send`: a file round-trips byte for byte with its content type,
/// ranges give 206 (and 416 past the end), conditions hold, directories are particles that
/// list their files and are deleted only when empty, and agents without `r`/`w` are refused.
fn a_file_store_keeps_files_as_particles(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = registry.start(&dir.path().join("home"));
    let site = tests::zip(&[("bind/localhost.bind", FILES_BIND.as_bytes())]);
    std::fs::write(dir.path().join("site.zip"), site).unwrap_or_else(|e| panic!("{e}"));
    server.exec(
        dir.path(),
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ site.zip ]-> localhost:repo:site:1.0.0; \
         create localhost:app<App>; create localhost:app:files<FileStore>; \
         set localhost{ +bind=localhost:repo:site:1.0.0:/bind/localhost.bind }; \
         grant +csd-rwX on localhost+:** to hyperspace:users:anonymous; \
         grant +csd-Rwx on localhost:repo+:** to hyperspace:users:anonymous",
    );
    let addr = server.http_addr();
    let photo: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    let refused = http(&addr, "PUT", "/files/photos/cat.png", &[], &photo);
    assert_eq!(refused.status, 403, "{}", refused.text());
    server.exec(
        dir.path(),
        "grant +csd-RWX on localhost:app:files+:** to hyperspace:users:anonymous",
    );

    let put = http(
        &addr,
        "PUT",
        "/files/photos/cat.png",
        &["if-none-match: *"],
        &photo,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let etag = put
        .header("etag")
        .unwrap_or_else(|| panic!("no etag"))
        .to_string();
    let again = http(
        &addr,
        "PUT",
        "/files/photos/cat.png",
        &["if-none-match: *"],
        b"x",
    );
    assert_eq!(again.status, 412, "{}", again.text());
    let got = get(&server, "/files/photos/cat.png");
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(
        got.body == photo,
        "the file came back changed ({} bytes)",
        got.body.len()
    );
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(got.header("etag"), Some(etag.as_str()));

    let part = http(
        &addr,
        "GET",
        "/files/photos/cat.png",
        &["range: bytes=10-19"],
        b"",
    );
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.body, photo[10..20]);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/300000"));
    let tail = http(
        &addr,
        "GET",
        "/files/photos/cat.png",
        &["range: bytes=-5"],
        b"",
    );
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &photo[299_995..])
    );
    let past = http(
        &addr,
        "GET",
        "/files/photos/cat.png",
        &["range: bytes=300000-"],
        b"",
    );
    assert_eq!(past.status, 416, "{}", past.text());

    let note = http(
        &addr,
        "PUT",
        "/files/photos/note.txt",
        &["content-type: text/markdown"],
        b"# cats",
    );
    assert_eq!(note.status, 200, "{}", note.text());
    let stale = http(
        &addr,
        "PUT",
        "/files/photos/cat.png",
        &["if-match: \"nope\""],
        b"x",
    );
    assert_eq!(stale.status, 412, "{}", stale.text());
    let replaced = http(
        &addr,
        "PUT",
        "/files/photos/cat.png",
        &[&format!("if-match: {etag}")],
        b"meow",
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(get(&server, "/files/photos/cat.png").body, b"meow");

    let listing = get(&server, "/files/photos/");
    assert_eq!(listing.status, 200, "{}", listing.text());
    let listing: serde_json::Value =
        serde_json::from_slice(&listing.body).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = listing["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{listing}"))
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["cat.png", "note.txt"], "{listing}");
    assert_eq!(listing["entries"][1]["content-type"], "text/markdown");

    // Directories and files are particles: selectable, and read with `send` too.
    let selected = server.exec(dir.path(), "select localhost:app:files:/**");
    assert!(
        selected.contains("localhost:app:files:/photos/cat.png"),
        "{selected}"
    );
    assert!(selected.contains("File<Dir>"), "{selected}");
    let read = server.run(
        dir.path(),
        &["send", "localhost:app:files:/photos/note.txt", "Http<Get>"],
    );
    assert!(read.status.success(), "{}", stderr(&read));
    assert!(stdout(&read).contains("# cats"), "{}", stdout(&read));

    // A user without grants reaches nothing of the store through send either.
    server.exec(
        dir.path(),
        "create localhost:users<UserBase>; create localhost:users:ann<User>",
    );
    let token = server.token(dir.path(), "localhost:users:ann");
    for (method, body) in [
        ("Http<Get>", None),
        ("Http<Put>", Some("changed")),
        ("Http<Delete>", None),
    ] {
        let mut args = vec!["send", "localhost:app:files:/photos/note.txt", method];
        args.extend(body);
        let mut command = server.command(dir.path(), &args);
        command.env("STARLANE_TOKEN", &token);
        let out = command.output().unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.status.success(), "{method} as ann succeeded");
        assert!(stderr(&out).contains("403"), "{method}: {}", stderr(&out));
    }
    assert_eq!(get(&server, "/files/photos/note.txt").text(), "# cats");

    let busy = http(&addr, "DELETE", "/files/photos/", &[], b"");
    assert_eq!(busy.status, 409, "{}", busy.text());
    for file in ["cat.png", "note.txt"] {
        let gone = http(&addr, "DELETE", &format!("/files/photos/{file}"), &[], b"");
        assert_eq!(gone.status, 200, "{}", gone.text());
    }
    assert_eq!(get(&server, "/files/photos/cat.png").status, 404);
    let empty = http(&addr, "DELETE", "/files/photos/", &[], b"");
    assert_eq!(empty.status, 200, "{}", empty.text());
    server.stop();
}

tests::on_each_registry!(
    a_file_store_keeps_files_as_particles,
    a_mechtrons_counter_and_files_survive_kill_9,
    a_store_refuses_agents_without_r_or_w,
    a_store_keeps_its_rules_on_the_web,
);
