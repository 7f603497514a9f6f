//! Secrets (SPEC §17.3), end to end with the real binary on both registries: `starlane secret
//! set` from standard input; the value never shown by `select`, `get`, `read`, `status` or
//! `exec`, never in the server's log, never stored in the clear (every file of the data
//! directory, and for PostgreSQL the whole database, is searched for it); 403 to an agent with
//! `r` but without `secret:reveal`, HyperUser included; a mechtron that reveals it only after
//! `grant secret:reveal … to` it; a wrong key named as such; a malformed key refused at start.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use tests::{Registry, Server, stderr, stdout};

/// The value: distinctive enough that finding it anywhere means it leaked.
const VALUE: &str = "tr0ub4dor-and-3-horses-7f1c9e2a";

const SECRET: &str = "localhost:app:db-password";

/// `starlane secret set POINT` on `server`, with `input` on standard input.
fn secret_set(server: &Server, dir: &Path, point: &str, input: &[u8]) -> Output {
    secret_set_as(server, dir, point, input, None)
}

/// `starlane secret set POINT` as the agent of `token` (HyperUser without one).
fn secret_set_as(
    server: &Server,
    dir: &Path,
    point: &str,
    input: &[u8],
    token: Option<&str>,
) -> Output {
    use std::io::Write;
    let mut command = server.command(dir, &["secret", "set", point]);
    if let Some(token) = token {
        command.env("STARLANE_TOKEN", token);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"));
    let mut stdin = child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("no standard input"));
    stdin
        .write_all(input)
        .unwrap_or_else(|e| panic!("cannot write the value: {e}"));
    drop(stdin);
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("starlane secret set: {e}"))
}

/// The output of `out`, both streams, for searching.
fn printed(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// `out` failed with `status`, and its message contains `says`.
fn refused(out: &Output, status: u16, says: &str) {
    assert!(!out.status.success(), "{}", printed(out));
    let err = stderr(out);
    assert!(
        err.contains(&format!("error: {status} ")) && err.contains(says),
        "expected {status} saying {says:?}, got: {}",
        printed(out)
    );
}

/// Whether the server's `log` has the line of `secret` revealed to `agent` (at info, under
/// `starlane::secret`, naming the point and the agent only).
fn logs_reveal(log: &str, secret: &str, agent: &str) -> bool {
    log.lines().any(|line| {
        line.contains("INFO starlane::secret: revealed")
            && line.contains(&format!("secret={secret}"))
            && line.contains(&format!("agent={agent}"))
    })
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Nothing the server stored holds the value: no file of the data directory (the registry,
/// the key file, caches) nor, for PostgreSQL, any row of the database.
fn stored_nowhere(registry: &Registry, home: &Path) {
    let all = files(home);
    assert!(all.iter().any(|f| f.ends_with("secret.key")), "{all:?}");
    for file in &all {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            !contains(&bytes, VALUE.as_bytes()),
            "{} holds the value",
            file.display()
        );
    }
    if let Registry::Postgres(url) = registry {
        let postgres = tests::postgres::shared();
        let hex: String = VALUE.bytes().map(|b| format!("{b:02x}")).collect();
        let rows = postgres.sql_in(
            url,
            &format!("SELECT count(*) FROM content_chunks WHERE point = '{SECRET}'"),
        );
        assert_ne!(rows, "0", "the sealed value is not in content_chunks");
        let found = postgres.sql_in(
            url,
            &format!(
                "SELECT (SELECT count(*) FROM content_chunks \
                   WHERE position(decode('{hex}', 'hex') IN bytes) > 0) \
                 + (SELECT count(*) FROM contents WHERE contents::text LIKE '%{VALUE}%')"
            ),
        );
        assert_eq!(found, "0", "contents or content_chunks hold the value");
        let dump = postgres.dump(url);
        assert!(
            !contains(&dump, VALUE.as_bytes()),
            "the database holds the value"
        );
        assert!(
            !contains(&dump, hex.as_bytes()),
            "the database holds the value as bytes"
        );
    }
}

/// The cosmos of these tests: the fixtures bundle, an app with the secret and a `pinger`
/// mechtron (which reveals a secret on `Ext<Reveal>`), and the user ann.
fn cosmos(registry: &Registry, dir: &Path) -> Server {
    let server = registry.start(&dir.join("home"));
    tests::write_fixtures_bundle(dir);
    server.exec(
        dir,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0; \
         create localhost:app<App>; \
         create localhost:app:db-password<Secret>; \
         create localhost:app:pinger<Mechtron>{ \
           +config=localhost:repo:fixtures:1.0.0:/config/pinger.mechtron }; \
         create localhost:users<UserBase>; create localhost:users:ann<User>",
    );
    server
}

/// The answer of the pinger asked to reveal the secret.
fn pinger_reveals(server: &Server, dir: &Path) -> Output {
    server.run(
        dir,
        &["send", "localhost:app:pinger", "Ext<Reveal>", SECRET],
    )
}

/// The secret is set from standard input, and then nothing shows it: not the commands, not
/// the log, not the data directory or the database; only a reveal by an agent granted
/// `secret:reveal` — a mechtron, or HyperUser once it granted itself — shows it.
fn a_secret_is_write_only_but_to_a_grant_of_secret_reveal(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = cosmos(registry, dir.path());

    let empty = secret_set(&server, dir.path(), SECRET, b"\n");
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("the value on standard input is empty"),
        "{}",
        printed(&empty)
    );
    let set = secret_set(&server, dir.path(), SECRET, format!("{VALUE}\n").as_bytes());
    assert!(set.status.success(), "{}", printed(&set));
    assert_eq!(stdout(&set), format!("set {SECRET}\n"));
    assert_eq!(stderr(&set), "");
    // A point that is no secret takes no value, and says so without it.
    let not_a_secret = secret_set(&server, dir.path(), "localhost:app", VALUE.as_bytes());
    assert!(!not_a_secret.status.success());
    assert!(!printed(&not_a_secret).contains(VALUE));

    // What commands show of it: that it is set, never what.
    let mut shown = String::new();
    for line in [
        "select localhost:**",
        "select localhost:**<Secret>",
        "get localhost:app:db-password",
        "access localhost:app:db-password",
    ] {
        for json in [false, true] {
            let args: Vec<&str> = if json {
                vec!["exec", "--json", line]
            } else {
                vec!["exec", line]
            };
            let out = server.run(dir.path(), &args);
            assert!(out.status.success(), "{line}: {}", printed(&out));
            shown.push_str(&printed(&out));
        }
    }
    assert!(
        shown.contains(SECRET) && shown.contains("updated"),
        "{shown}"
    );
    for args in [&["status"][..], &["status", "--json"]] {
        let out = server.run(dir.path(), args);
        assert!(out.status.success(), "{}", printed(&out));
        shown.push_str(&printed(&out));
    }
    let read = server.run(dir.path(), &["exec", "read localhost:app:db-password"]);
    refused(&read, 400, "`read` never shows its value");
    shown.push_str(&printed(&read));
    assert!(!shown.contains(VALUE), "{shown}");

    // HyperUser holds everything but what only a grant gives.
    let get = server.run(dir.path(), &["send", SECRET, "Http<Get>"]);
    refused(
        &get,
        403,
        "hyperspace:users:hyperuser may not secret:reveal localhost:app:db-password \
         (missing privilege 'secret:reveal')",
    );
    // ann may read (r, x), but has no grant of secret:reveal.
    server.exec(
        dir.path(),
        "grant +csd-RwX on localhost:app:db-password to localhost:users:ann",
    );
    let token = server.token(dir.path(), "localhost:users:ann");
    let mut as_ann = server.command(dir.path(), &["send", SECRET, "Http<Get>"]);
    as_ann.env("STARLANE_TOKEN", &token);
    let ann = as_ann.output().unwrap_or_else(|e| panic!("{e}"));
    refused(
        &ann,
        403,
        "localhost:users:ann may not secret:reveal localhost:app:db-password",
    );
    // …nor w, to replace it.
    let ann_sets = secret_set_as(&server, dir.path(), SECRET, b"mine", Some(&token));
    refused(
        &ann_sets,
        403,
        "localhost:users:ann may not w localhost:app:db-password (missing permission 'w')",
    );

    // The mechtron: refused until the secret lets it in (x, r), then until it is granted
    // secret:reveal; then it reveals the value and answers only its length and hash.
    refused(
        &pinger_reveals(&server, dir.path()),
        403,
        "missing permission 'x'",
    );
    server.exec(
        dir.path(),
        "grant +csd-RwX on localhost:app:db-password to localhost:app:pinger",
    );
    refused(
        &pinger_reveals(&server, dir.path()),
        403,
        "localhost:app:pinger may not secret:reveal localhost:app:db-password \
         (missing privilege 'secret:reveal')",
    );
    server.exec(
        dir.path(),
        "grant secret:reveal on localhost:app:db-password to localhost:app:pinger",
    );
    let revealed = pinger_reveals(&server, dir.path());
    assert!(revealed.status.success(), "{}", printed(&revealed));
    assert_eq!(
        stdout(&revealed).lines().last(),
        Some(
            format!(
                "{} bytes, fnv-1a {:016x}",
                VALUE.len(),
                cosmic_space::wire::fnv1a(VALUE.bytes())
            )
            .as_str()
        ),
        "{}",
        printed(&revealed)
    );

    let log = server.log();
    assert!(
        logs_reveal(&log, "localhost:app:db-password", "localhost:app:pinger"),
        "{log}"
    );
    assert!(!log.contains(VALUE), "{log}");
    stored_nowhere(registry, server.home());

    // HyperUser may grant itself the privilege; the grant is the trace, the reveal is logged.
    server.exec(
        dir.path(),
        "grant secret:reveal on localhost:app:db-password to hyperspace:users:hyperuser",
    );
    let get = server.run(dir.path(), &["send", SECRET, "Http<Get>"]);
    assert!(get.status.success(), "{}", printed(&get));
    assert_eq!(get.stdout, VALUE.as_bytes());
    let log = server.log();
    assert!(
        logs_reveal(
            &log,
            "localhost:app:db-password",
            "hyperspace:users:hyperuser"
        ),
        "{log}"
    );
    assert!(!log.contains(VALUE), "{log}");
    server.stop();
}

/// A machine given another key says its key is wrong (500, the message names the key, not
/// the value); given the right one again, the value was never lost. A malformed key stops the
/// server at start, naming the variable.
fn the_key_is_checked(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = cosmos(registry, dir.path());
    let set = secret_set(&server, dir.path(), SECRET, VALUE.as_bytes());
    assert!(set.status.success(), "{}", printed(&set));
    server.exec(
        dir.path(),
        "grant secret:reveal on localhost:app:db-password to hyperspace:users:hyperuser",
    );
    let home = server.home().to_path_buf();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("secret.key"))
            .unwrap_or_else(|e| panic!("no key file: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    server.stop();

    let other = "00".repeat(32);
    let server = registry.start_with(&home, &[("STARLANE_SECRET_KEY", &other)]);
    let get = server.run(dir.path(), &["send", SECRET, "Http<Get>"]);
    refused(
        &get,
        500,
        "the value of localhost:app:db-password was sealed with another secret key",
    );
    assert!(printed(&get).contains("is wrong"), "{}", printed(&get));
    assert!(!printed(&get).contains(VALUE));
    assert!(!server.log().contains(VALUE));
    server.stop();

    let malformed = tests::starlane_with(
        dir.path(),
        &["serve"],
        &[
            ("STARLANE_HOME", Some(&home.display().to_string())),
            ("STARLANE_CONTROL", Some("127.0.0.1:0")),
            ("STARLANE_HTTP", Some("127.0.0.1:0")),
            ("STARLANE_SECRET_KEY", Some(VALUE)),
        ],
    );
    assert!(!malformed.status.success());
    assert!(
        stderr(&malformed)
            .contains("STARLANE_SECRET_KEY is not a secret key: write 64 hexadecimal"),
        "{}",
        printed(&malformed)
    );
    assert!(!printed(&malformed).contains(VALUE));

    let server = registry.start(&home);
    let get = server.run(dir.path(), &["send", SECRET, "Http<Get>"]);
    assert!(get.status.success(), "{}", printed(&get));
    assert_eq!(get.stdout, VALUE.as_bytes());
    server.stop();
}

tests::on_each_registry!(
    a_secret_is_write_only_but_to_a_grant_of_secret_reveal,
    the_key_is_checked
);
