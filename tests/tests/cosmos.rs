//! A local cosmos as an operator meets it: `starlane serve` on a fresh data directory, driven
//! by `starlane exec`, `script`, `send`, `status` and `token`; restarted, and killed. Every
//! test runs twice: on the embedded registry and on PostgreSQL (`embedded::…`,
//! `postgres::…`).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use tests::{Registry, Server, stderr, stdout, zip};

const INDEX: &[u8] = b"<!doctype html><h1>Hello, cosmos</h1>\n";

/// A bundle with a page, binds for the space and the app, and a binary file whose bytes must
/// come back exactly.
fn hello_bundle() -> Vec<u8> {
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let binary: &'static [u8] = Box::leak(binary.into_boxed_slice());
    zip(&[
        ("html/index.html", INDEX),
        ("html/logo.bin", binary),
        (
            "bind/localhost.bind",
            b"Bind(version=1.0.0) { Route<Http<Get>>/(?P<path>.*) -> localhost:repo:hello:1.0.0:/html/${path} => &; }",
        ),
        ("bind/app.bind", b"Bind(version=1.0.0) { Route -> { Cmd<Read> -> (()) => &; } }"),
        ("config/app.txt", b"name=app\n"),
    ])
}

/// A space, a repo, and the hello bundle published in it.
const SITE: &str = "create localhost<Space>; create localhost:repo<Repo>; \
                    publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0";

/// A user base with the user scott (after [`SITE`] or another `create localhost<Space>`).
const USERS: &str = "create localhost:users<UserBase>; create localhost:users:scott<User>";

fn setup(dir: &Path, registry: &Registry) -> Server {
    fs::write(dir.join("bundle.zip"), hello_bundle()).unwrap();
    registry.start(&dir.join("home"))
}

/// Runs one `starlane exec` that must fail, and returns its standard error.
fn refused(server: &Server, dir: &Path, args: &[&str]) -> String {
    let out = server.run(dir, args);
    assert!(
        !out.status.success(),
        "{args:?} should have failed: {}",
        stdout(&out)
    );
    stderr(&out)
}

fn the_spec_script_runs_and_every_answer_is_right(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);

    assert_eq!(server.exec(dir, "create localhost<Space>"), "localhost\n");
    assert!(refused(&server, dir, &["exec", "create localhost<Space>"]).contains("409"));
    assert_eq!(
        server.exec(dir, "create? localhost:repo<Repo>"),
        "localhost:repo\n"
    );
    assert_eq!(
        server.exec(dir, "create? localhost:repo<Repo>"),
        "localhost:repo\n"
    );
    assert_eq!(
        server.exec(dir, "publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0"),
        "localhost:repo:hello:1.0.0\n"
    );
    assert_eq!(
        server.exec(dir,
            "create! localhost:app<App>{ +config=localhost:repo:hello:1.0.0:/config/app.txt, +bind=localhost:repo:hello:1.0.0:/bind/app.bind }"
        ),
        "localhost:app\n"
    );
    server.exec(dir, "create localhost:base<Base>");
    assert_eq!(
        server.exec(dir, "create localhost:base:worker-%<Base>"),
        "localhost:base:worker-1\n"
    );
    assert_eq!(
        server.exec(dir, "create localhost:base:worker-%<Base>"),
        "localhost:base:worker-2\n"
    );

    let selected = server.exec(dir, "select localhost:**<App>");
    assert!(
        selected.contains("localhost:app") && selected.contains("App"),
        "{selected}"
    );
    assert!(!selected.contains("localhost:base"), "{selected}");

    server.exec(
        dir,
        "set localhost{ +bind=localhost:repo:hello:1.0.0:/bind/localhost.bind, +@locked=x, !old }",
    );
    let got = server.exec(dir, "get localhost:app{ config, bind }");
    assert!(
        got.contains("localhost:repo:hello:1.0.0:/config/app.txt"),
        "{got}"
    );
    assert!(
        got.contains("localhost:repo:hello:1.0.0:/bind/app.bind"),
        "{got}"
    );
    assert!(refused(&server, dir, &["exec", "set localhost{ +locked=y }"]).contains("locked"));

    let read = server.run(
        dir,
        &["exec", "read localhost:repo:hello:1.0.0:/html/index.html"],
    );
    assert!(read.status.success());
    assert_eq!(read.stdout, INDEX);

    let refusal = refused(&server, dir, &["exec", "delete localhost:base"]);
    assert!(
        refusal.contains("409") && refusal.contains("delete!"),
        "{refusal}"
    );
    let deleted = server.exec(dir, "delete! localhost:base");
    assert_eq!(deleted.lines().count(), 3, "{deleted}");

    server.exec(dir, USERS);
    server.exec(dir, "create localhost:users:admin<User>");
    // `localhost:app:**` covers what is below the app; `+` takes the app itself in too.
    let first = server.exec(
        dir,
        "grant +cSd-RwX on localhost:app+:** to localhost:users:**<User>",
    );
    let second = server.exec(dir, "grant Super on localhost+:** to localhost:users:admin");
    let first: u64 = first.trim().parse().unwrap();
    let second: u64 = second.trim().parse().unwrap();
    assert!(second > first);
    let access = server.exec(dir, "access localhost:app");
    assert!(
        access.contains("+cSd-RwX") && access.contains("Super"),
        "{access}"
    );
    server.exec(dir, &format!("revoke {first}"));
    let access = server.exec(dir, "access localhost:app");
    assert!(
        !access.contains("+cSd-RwX") && access.contains("Super"),
        "{access}"
    );
    assert_eq!(
        server.exec(dir, "chown localhost:app+:** to localhost:users:scott"),
        "1\n"
    );
    let access = server.exec(dir, "access localhost:app");
    assert!(
        access.contains("\"owner\": \"localhost:users:scott\""),
        "{access}"
    );

    // The same script as a file runs top to bottom on a fresh machine and exits 0.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_server = setup(fresh.path(), &registry.fresh());
    fs::write(fresh.path().join("spec.script"), SPEC_SCRIPT).unwrap();
    let out = fresh_server.run(fresh.path(), &["script", "spec.script"]);
    assert!(out.status.success(), "{}", stderr(&out));
    server.stop();
    fresh_server.stop();
}

/// SPEC §10's script, without mechtrons (they come with the guest SDK).
const SPEC_SCRIPT: &str = "\
# SPEC §10, with the placeholders filled in
create localhost<Space>;
create? localhost:repo<Repo>;
create! localhost:app<App>{ +config=localhost:repo:hello:1.0.0:/config/app.txt };
publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0;
create localhost:base<Base>;
create localhost:base:worker-%<Base>{ +role=worker };
select localhost:**<Base>;
set localhost{ +bind=localhost:repo:hello:1.0.0:/bind/localhost.bind, +@locked=x, !old };
get localhost:app{ config };
read localhost:repo:hello:1.0.0:/html/index.html;
delete! localhost:base;
create localhost:users<UserBase>;
create localhost:users:admin<User>;
grant +cSd-RwX on localhost:app:** to localhost:users:**<User>;
grant Super on localhost+:** to localhost:users:admin;
access localhost:app;
chown localhost:app:** to localhost:users:admin;
";

fn a_script_stops_at_the_first_failure_and_names_its_line(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    fs::write(
        dir.join("broken.script"),
        "create localhost<Space>;\ncreate localhost:a<Base>;\ncreate localhost:a<Base>;\ncreate localhost:b<Base>;\n",
    )
    .unwrap();
    let out = server.run(dir, &["script", "broken.script"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    let selected = server.exec(dir, "select localhost:*");
    assert!(selected.contains("localhost:a"));
    assert!(
        !selected.contains("localhost:b"),
        "the script stopped at line 3: {selected}"
    );
    server.stop();
}

fn a_restart_finds_every_particle_property_grant_and_artifact(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    server.exec(dir, SITE);
    server.exec(
        dir,
        "create localhost:base<Base>{ +color=blue, +@size=big }",
    );
    server.exec(dir, USERS);
    server.exec(
        dir,
        "grant +cSd-RwX on localhost:base+:** to localhost:users:scott",
    );
    let before = server.exec(dir, "select localhost:**");
    let access_before = server.exec(dir, "access localhost:base");
    server.stop();

    let server = registry.start(&dir.join("home"));
    assert_eq!(server.exec(dir, "select localhost:**"), before);
    assert_eq!(server.exec(dir, "access localhost:base"), access_before);
    let got = server.exec(dir, "get localhost:base{ color, size }");
    assert!(got.contains("blue") && got.contains("big"), "{got}");
    assert!(
        refused(&server, dir, &["exec", "set localhost:base{ +size=small }"]).contains("locked")
    );
    let read = server.run(
        dir,
        &["exec", "read localhost:repo:hello:1.0.0:/html/logo.bin"],
    );
    let expected: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    assert_eq!(read.stdout, expected);
    // And the particles answer waves again.
    let sent = server.run(
        dir,
        &[
            "send",
            "localhost:repo:hello:1.0.0:/html/index.html",
            "Cmd<Read>",
        ],
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    server.stop();
}

fn after_kill_9_every_answered_create_is_still_there(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    server.exec(dir, "create localhost<Space>");
    server.exec(dir, "create localhost:stream<Base>");
    let script: String = (0..2_000)
        .map(|i| format!("create localhost:stream:p{i}<Base>;\n"))
        .collect();
    fs::write(dir.join("stream.script"), script).unwrap();
    let mut client = server
        .command(dir, &["script", "stream.script"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answered = Vec::new();
    let reader = BufReader::new(client.stdout.take().unwrap());
    let mut lines = reader.lines();
    while answered.len() < 300 {
        match lines.next() {
            Some(Ok(line)) => answered.push(line),
            _ => break,
        }
    }
    server.kill9();
    // Whatever the client printed before it noticed is answered too.
    for line in lines.map_while(Result::ok) {
        answered.push(line);
    }
    let status = client.wait().unwrap();
    assert!(!status.success(), "the stream was cut short by the crash");
    assert!(
        answered.len() >= 300,
        "{} creates were answered",
        answered.len()
    );
    assert!(
        answered.len() < 2_000,
        "the crash came in the middle of the stream"
    );

    let server = registry.start(&dir.join("home"));
    let stored = server.exec(dir, "select localhost:stream:*");
    for point in &answered {
        assert!(
            stored
                .lines()
                .any(|line| line.split_whitespace().next() == Some(point.as_str())),
            "{point} was answered before the crash but is gone"
        );
    }
    server.stop();
}

fn a_user_token_without_grants_gets_403_and_changes_nothing(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    server.exec(dir, SITE);
    server.exec(dir, USERS);
    server.exec(dir, "create localhost:base<Base>{ +color=blue }");
    let token = server.token(dir, "localhost:users:scott");
    let before = server.exec(dir, "select localhost:**");

    for command in [
        "create localhost:base:mine<Base>",
        "select localhost:base:**",
        "set localhost:base{ +color=red }",
        "read localhost:repo:hello:1.0.0:/html/index.html",
        "delete! localhost:base",
        "grant Super on localhost+:** to localhost:users:scott",
    ] {
        let err = refused(&server, dir, &["exec", "--token", &token, command]);
        assert!(err.contains("403"), "{command}: {err}");
        assert!(err.contains("localhost:users:scott"), "{command}: {err}");
    }
    let sent = server.run(
        dir,
        &["send", "--token", &token, "localhost:base", "Cmd<Read>"],
    );
    assert!(!sent.status.success());
    let printed = format!("{}{}", stdout(&sent), stderr(&sent));
    assert!(
        printed.contains("403") && printed.contains("localhost:users:scott"),
        "{printed}"
    );
    // Scott may not issue tokens either.
    assert!(
        !server
            .run(dir, &["token", "--token", &token, "localhost:users:scott"])
            .status
            .success()
    );
    assert_eq!(
        server.exec(dir, "select localhost:**"),
        before,
        "nothing changed"
    );
    assert!(
        server
            .exec(dir, "get localhost:base{ color }")
            .contains("blue")
    );

    // A mask opens exactly what it says: read and select, not write.
    server.exec(
        dir,
        "grant +cSd-Rwx on localhost:base+:** to localhost:users:scott",
    );
    assert!(
        server
            .run(dir, &["exec", "--token", &token, "get localhost:base"])
            .status
            .success()
    );
    assert!(
        !server
            .run(
                dir,
                &[
                    "exec",
                    "--token",
                    &token,
                    "set localhost:base{ +color=red }"
                ]
            )
            .status
            .success()
    );
    assert!(
        !server
            .run(
                dir,
                &[
                    "exec",
                    "--token",
                    &token,
                    "create localhost:base:mine<Base>"
                ]
            )
            .status
            .success()
    );
    server.stop();
}

fn an_unauthenticated_control_connection_gets_nothing(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    for args in [
        vec!["exec", "--token", "not-a-token", "create localhost<Space>"],
        vec!["status", "--token", "not-a-token"],
        vec!["send", "--token", "", "localhost", "Cmd<Read>"],
    ] {
        let err = refused(&server, dir, &args);
        assert!(err.contains("refused the token"), "{args:?}: {err}");
    }
    let selected = server.exec(dir, "select localhost");
    assert!(
        selected.trim().lines().count() <= 1,
        "nothing was created: {selected}"
    );
    server.stop();
}

fn bad_input_gets_a_clear_error_and_registers_nothing(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    server.exec(dir, "create localhost<Space>");
    server.exec(dir, "create localhost:repo<Repo>");
    fs::write(dir.join("escape.zip"), zip(&[("../evil.txt", b"x")])).unwrap();
    fs::write(dir.join("absolute.zip"), zip(&[("/etc/passwd", b"x")])).unwrap();
    fs::write(dir.join("garbage.zip"), b"this is not a zip").unwrap();
    let bomb: Vec<u8> = vec![0u8; 70 * 1024 * 1024];
    fs::write(dir.join("bomb.zip"), zip(&[("big.bin", &bomb)])).unwrap();
    let before = server.exec(dir, "select localhost:**");
    for (command, expect) in [
        ("create localhost:x<Spaceship>", "unknown kind 'Spaceship'"),
        ("create localhost:x<Repo", "expected"),
        ("creat localhost:x<Repo>", "create"),
        (
            "create localhost:repo:x<App>",
            "App may not live under Repo",
        ),
        ("create localhost:repo<Repo>", "409"),
        ("read localhost:nowhere", "404"),
        ("create nowhere:x<Base>", "404"),
        ("publish ^[ escape.zip ]-> localhost:repo:evil:1.0.0", "400"),
        (
            "publish ^[ absolute.zip ]-> localhost:repo:evil:1.0.0",
            "400",
        ),
        (
            "publish ^[ garbage.zip ]-> localhost:repo:evil:1.0.0",
            "400",
        ),
        ("publish ^[ bomb.zip ]-> localhost:repo:evil:1.0.0", "413"),
    ] {
        let err = refused(&server, dir, &["exec", command]);
        assert!(
            err.contains(expect),
            "{command}: expected '{expect}' in:\n{err}"
        );
    }
    assert_eq!(
        server.exec(dir, "select localhost:**"),
        before,
        "nothing was registered"
    );
    server.stop();
}

fn status_and_send_report_the_running_cosmos(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = setup(dir, registry);
    server.exec(dir, "create localhost<Space>");
    let status = server.run(dir, &["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let printed = stdout(&status);
    // The machine's name, generated once and kept in its data directory, names its stars.
    let name = std::fs::read_to_string(server.home().join("machine")).unwrap();
    let name = name.trim();
    assert!(name.starts_with("machine-"), "{name}");
    assert!(
        printed.contains(&format!("STAR::{name}:star[0]")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("STAR::{name}:star[1]")),
        "{printed}"
    );
    assert!(printed.contains("Space"), "{printed}");
    // Which registry serves, its password hidden.
    let registry_line = match registry {
        Registry::Embedded => format!("registry  embedded, in {}", server.home().display()),
        Registry::Postgres(url) => {
            format!("registry  {}", url.replace(Registry::PASSWORD, "***"))
        }
    };
    assert!(printed.contains(&registry_line), "{printed}");
    assert!(!printed.contains(Registry::PASSWORD), "{printed}");
    let json = server.run(dir, &["status", "--json"]);
    assert!(stdout(&json).contains("\"stars\""));
    assert!(stdout(&json).contains("\"registry\""), "{}", stdout(&json));
    let log = fs::read_to_string(server.home().with_extension("log")).unwrap();
    assert!(
        log.contains(&registry_line.replacen("registry  ", "registry ", 1)),
        "serve says which registry it uses:\n{log}"
    );
    assert!(!log.contains(Registry::PASSWORD), "{log}");
    let sent = server.run(dir, &["send", "localhost", "Cmd<Bounce>"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(stdout(&sent).starts_with("200"), "{}", stdout(&sent));
    let missing = server.run(dir, &["send", "localhost:nowhere", "Cmd<Read>"]);
    assert!(!missing.status.success());
    server.stop();
}

fn a_machine_keeps_its_name_and_a_renamed_one_places_its_particles_again(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let home = dir.join("home");
    let server = registry.start(&home);
    server.exec(dir, "create localhost<Space>; create localhost:app<App>");
    let name = std::fs::read_to_string(home.join("machine")).unwrap();
    server.stop();

    // The same data directory: the same name, the same stars, the particles where they were.
    let server = registry.start(&home);
    assert_eq!(std::fs::read_to_string(home.join("machine")).unwrap(), name);
    let status = stdout(&server.run(dir, &["status"]));
    assert!(
        status.contains(&format!("STAR::{}:star[0]", name.trim())),
        "{status}"
    );
    server.stop();

    // Renamed (STARLANE_MACHINE): its stars have new keys, and every particle is placed again
    // on them and answers.
    let server = registry.start_with(&home, &[("STARLANE_MACHINE", "edge-1")]);
    let status = stdout(&server.run(dir, &["status"]));
    assert!(status.contains("STAR::edge-1:star[0]"), "{status}");
    assert!(!status.contains(name.trim()), "{status}");
    let sent = server.run(dir, &["send", "localhost:app", "Cmd<Bounce>"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    server.stop();
}

tests::on_each_registry!(
    the_spec_script_runs_and_every_answer_is_right,
    a_script_stops_at_the_first_failure_and_names_its_line,
    a_restart_finds_every_particle_property_grant_and_artifact,
    after_kill_9_every_answered_create_is_still_there,
    a_user_token_without_grants_gets_403_and_changes_nothing,
    an_unauthenticated_control_connection_gets_nothing,
    bad_input_gets_a_clear_error_and_registers_nothing,
    status_and_send_report_the_running_cosmos,
    a_machine_keeps_its_name_and_a_renamed_one_places_its_particles_again,
);
