//! Channels and lifecycle events (SPEC §18), end to end with the real binary on both
//! registries: a mechtron and `starlane watch` hear every message of a channel in order;
//! agents without `r` cannot subscribe and without `w` cannot publish; a subscription survives
//! `kill -9`; lifecycle events arrive for create, Ready, Panic and delete.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::watch::{PATIENCE, Watcher};
use tests::{Registry, Server, stderr, stdout};

/// Bundles the chat example and creates the room channel and the history mechtron (which its
/// document subscribes to the room), with the grants the tests need: Anonymous and the users
/// `ann` (who may read and write the room) and `bob` (who may only reach it).
fn chat(registry: &Registry, home: &Path) -> Server {
    let example = tests::workspace_root().join("examples/chat");
    let bundled = tests::bundle_scaffold(&example);
    assert!(bundled.status.success(), "{}", stderr(&bundled));
    let server = registry.start(home);
    server.exec(
        &example,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:chat:1.0.0; \
         create localhost:users<UserBase>; \
         create localhost:users:ann<User>; create localhost:users:bob<User>; \
         create localhost:chat<App>; \
         create localhost:chat:room<Channel>; \
         create localhost:chat:other<Channel>; \
         grant +csd-RWX on localhost:chat+:** to localhost:chat:history; \
         create localhost:chat:history<Mechtron>{ \
           +config=localhost:repo:chat:1.0.0:/config/history.mechtron }; \
         grant +csd-RWX on localhost:chat+:** to localhost:users:ann; \
         grant +csd-rwX on localhost:chat to localhost:users:bob; \
         grant +csd-rwX on localhost:chat:room to localhost:users:bob",
    );
    server
}

/// Publishes `text` on `channel` with `starlane send` (as `token`'s agent, else HyperUser).
fn say(
    server: &Server,
    dir: &Path,
    token: Option<&str>,
    channel: &str,
    text: &str,
) -> (bool, String) {
    let mut args = vec!["send", channel, "Ext<Say>", text];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    let out = server.run(dir, &args);
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// The texts the history mechtron keeps, oldest first.
fn history(server: &Server, dir: &Path) -> Vec<String> {
    let out = server.run(
        dir,
        &[
            "send",
            "localhost:chat:history",
            "Http<Get>",
            "--path",
            "/history",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let kept: Vec<Value> = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("the history is not JSON: {e}: {}", stdout(&out)));
    kept.iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Publishes probes on `channel` until `watcher` hears one: from then on, the watch is
/// registered and hears everything published.
fn settle(server: &Server, dir: &Path, watcher: &Watcher, channel: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let (ok, out) = say(server, dir, None, channel, "probe");
        assert!(ok, "{out}");
        if let Ok(line) = watcher.next_within(Duration::from_millis(200))
            && line["body"] == "probe"
        {
            // Drain the other probes' deliveries.
            while watcher.next_within(Duration::from_millis(300)).is_ok() {}
            return;
        }
    }
    panic!("the watch heard no probe on {channel}");
}

/// A mechtron and `starlane watch` both hear 100 messages, in the order they were published,
/// each naming its publisher; the watch stops cleanly on Ctrl-C.
fn a_mechtron_and_a_watch_hear_every_message_in_order(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = chat(registry, &dir.path().join("home"));
    let ann = server.token(dir.path(), "localhost:users:ann");
    let watcher = Watcher::start(&server, dir.path(), None, "localhost:chat:room");
    settle(&server, dir.path(), &watcher, "localhost:chat:room");

    for n in 0..100 {
        let (ok, out) = say(
            &server,
            dir.path(),
            Some(&ann),
            "localhost:chat:room",
            &format!("m{n}"),
        );
        assert!(ok, "{out}");
    }
    for n in 0..100 {
        let line = watcher
            .next()
            .unwrap_or_else(|| panic!("the watch stopped hearing after m{}", n - 1));
        assert_eq!(line["body"], format!("m{n}"), "{line}");
        assert_eq!(line["from"], "localhost:chat:room");
        assert_eq!(line["method"], "Ext<Say>");
        assert_eq!(line["publisher"], "localhost:users:ann");
    }
    let kept = history(&server, dir.path());
    let expected: Vec<String> = (50..100).map(|n| format!("m{n}")).collect();
    assert_eq!(kept, expected, "the history mechtron heard another story");
    watcher.interrupt();
    server.stop();
}

/// Watching needs `r` on the channel and publishing `w`: bob may reach the room but read
/// nothing there, Anonymous not even reach it.
fn agents_without_r_cannot_subscribe_nor_without_w_publish(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = chat(registry, &dir.path().join("home"));
    server.exec(
        dir.path(),
        "grant +csd-rwX on localhost:chat:other to localhost:users:bob",
    );
    let bob = server.token(dir.path(), "localhost:users:bob");

    let watch = server.run(
        dir.path(),
        &["watch", "localhost:chat:room", "--token", &bob],
    );
    assert!(
        !watch.status.success(),
        "bob watched a room he may not read"
    );
    assert!(stderr(&watch).contains("403"), "{}", stderr(&watch));

    let (ok, out) = say(
        &server,
        dir.path(),
        Some(&bob),
        "localhost:chat:other",
        "hi",
    );
    assert!(!ok, "bob published on a room he may not write: {out}");
    assert!(out.contains("403"), "{out}");

    // Bob's token subscribing as himself: a User is a particle, so the command runs, but it
    // is refused for want of `r`.
    let refused = server.run(
        dir.path(),
        &["exec", "--token", &bob, "subscribe localhost:chat:room"],
    );
    assert!(
        !refused.status.success(),
        "bob subscribed to a room he may not read"
    );
    let said = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(said.contains("403"), "{said}");

    // Ann may do both.
    let ann = server.token(dir.path(), "localhost:users:ann");
    let (ok, out) = say(
        &server,
        dir.path(),
        Some(&ann),
        "localhost:chat:room",
        "hello",
    );
    assert!(ok, "{out}");
    server.stop();
}

/// A subscription made by command (not by the mechtron's document) is kept in the registry:
/// after `kill -9` and a restart the mechtron still hears that channel.
fn a_subscription_survives_kill_9(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let home = dir.path().join("home");
    let server = chat(registry, &home);
    // The history subscribes to `other` as itself (a token that acts as the mechtron).
    let history_token = server.token(dir.path(), "localhost:chat:history");
    let subscribed = server.run(
        dir.path(),
        &[
            "exec",
            "--token",
            &history_token,
            "subscribe localhost:chat:other",
        ],
    );
    assert!(subscribed.status.success(), "{}", stderr(&subscribed));
    let (ok, out) = say(&server, dir.path(), None, "localhost:chat:other", "before");
    assert!(ok, "{out}");
    wait_for_history(&server, dir.path(), &["before"]);
    server.kill9();

    let server = registry.start(&home);
    let deadline = Instant::now() + PATIENCE;
    // The restarted mechtron keeps nothing in memory; what it hears now, it heard through the
    // subscription the registry kept.
    loop {
        let (ok, out) = say(&server, dir.path(), None, "localhost:chat:other", "after");
        assert!(ok, "{out}");
        if history(&server, dir.path()).contains(&"after".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the subscription was lost with the process"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
}

/// Waits until the history holds exactly `texts`.
fn wait_for_history(server: &Server, dir: &Path, texts: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let kept = history(server, dir);
        if kept == texts {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the history holds {kept:?}, not {texts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A watch of a subtree hears its particles' lifecycle: created, Ready, properties, Panic (a
/// guest that breaks on every call) and deleted.
fn lifecycle_events_arrive_for_create_ready_panic_and_delete(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = chat(registry, &dir.path().join("home"));
    server.exec(dir.path(), "create localhost:lab<App>");
    let watcher = Watcher::start(&server, dir.path(), None, "localhost:lab:**");
    // Settle: create and delete probes until the watch hears one.
    let deadline = Instant::now() + PATIENCE;
    let mut n = 0;
    loop {
        n += 1;
        server.exec(
            dir.path(),
            &format!("create localhost:lab:probe-{n}<Channel>"),
        );
        if let Ok(line) = watcher.next_within(Duration::from_millis(300))
            && line["event"] == "created"
        {
            while watcher.next_within(Duration::from_millis(300)).is_ok() {}
            break;
        }
        assert!(Instant::now() < deadline, "the watch heard no event");
    }

    server.exec(
        dir.path(),
        "grant +csd-RWX on localhost:chat:room to localhost:lab:echo; \
         create localhost:lab:echo<Mechtron>{ +config=localhost:repo:chat:1.0.0:/config/history.mechtron }",
    );
    let created = watcher.until("echo created", |l| {
        l["event"] == "created" && l["from"] == "localhost:lab:echo"
    });
    assert_eq!(created["method"], "Cmd<Event>");
    watcher.until("echo Ready", |l| {
        l["event"] == "status"
            && l["from"] == "localhost:lab:echo"
            && l["body"].to_string().contains("Ready")
    });
    server.exec(dir.path(), "set localhost:lab:echo{ +colour=blue }");
    let changed = watcher.until("echo's properties", |l| {
        l["event"] == "properties" && l["from"] == "localhost:lab:echo"
    });
    assert!(changed.to_string().contains("blue"), "{changed}");

    // A guest that panics on every call is restarted five times a minute, then marked Panic.
    tests::write_fixtures_bundle(dir.path());
    server.exec(
        dir.path(),
        "publish ^[ bundle.zip ]-> localhost:repo:fixtures:1.0.0; \
         create localhost:lab:trouble<Mechtron>{ \
           +config=localhost:repo:fixtures:1.0.0:/config/troublemaker.mechtron }",
    );
    watcher.until("trouble Ready", |l| {
        l["event"] == "status"
            && l["from"] == "localhost:lab:trouble"
            && l["body"].to_string().contains("Ready")
    });
    let deadline = Instant::now() + PATIENCE;
    let panicked = loop {
        let _ = server.run(dir.path(), &["send", "localhost:lab:trouble", "Ext<Panic>"]);
        if let Ok(line) = watcher.next_within(Duration::from_millis(100))
            && line["from"] == "localhost:lab:trouble"
            && line["event"] == "status"
            && line["body"].to_string().contains("Panic")
        {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "the troublemaker never went Panic"
        );
    };
    assert_eq!(panicked["method"], "Cmd<Event>", "{panicked}");

    server.exec(dir.path(), "delete localhost:lab:echo");
    watcher.until("echo deleted", |l| {
        l["event"] == "deleted" && l["from"] == "localhost:lab:echo"
    });

    // Bob may read nothing in the lab: his watch is refused outright.
    let bob = server.token(dir.path(), "localhost:users:bob");
    let refused = server.run(dir.path(), &["watch", "localhost:lab:**", "--token", &bob]);
    assert!(!refused.status.success(), "bob watched the lab");
    watcher.interrupt();
    server.stop();
}

/// A machine says when it goes: a watch of `hyperspace:machines:*` hears `offline` from the
/// machine it watches through as that machine stops.
fn a_stopping_machine_says_it_goes_offline(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = registry.start(&dir.path().join("home"));
    let watcher = Watcher::start(&server, dir.path(), None, "hyperspace:machines:*");
    server.stop();
    let line = watcher.until("the machine going offline", |l| l["event"] == "offline");
    assert!(
        line["from"]
            .as_str()
            .is_some_and(|from| from.starts_with("hyperspace:machines:")),
        "{line}"
    );
}

tests::on_each_registry!(
    a_stopping_machine_says_it_goes_offline,
    a_mechtron_and_a_watch_hear_every_message_in_order,
    agents_without_r_cannot_subscribe_nor_without_w_publish,
    a_subscription_survives_kill_9,
    lifecycle_events_arrive_for_create_ready_panic_and_delete,
);
