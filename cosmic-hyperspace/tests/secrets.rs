//! Secrets in a whole machine in one process (SPEC §17.3): the driver's answers, the Field's
//! `secret:reveal` rule for every kind of agent, and values sealed at rest — under the
//! machine's key, bound to their point.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use cosmic_hyperspace::driver::{Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_space::{
    Agent, Method, Ping, Point, PropertyChanges, RawCommand, ReflectedCore, StatusCode, Substance,
    Surface,
};

const VALUE: &[u8] = b"correct horse battery staple";

async fn open(home: &Path, key: &SecretKey) -> Machine {
    Machine::open(home, 2, Drivers::builtin(key.clone()))
        .await
        .unwrap()
}

/// Runs the commands of `line` (separated by `;`) one by one as `agent`; answers the first
/// failure, or the last answer.
async fn exec(machine: &Machine, agent: &Agent, line: &str) -> ReflectedCore {
    let mut answer = ReflectedCore::ok(());
    for command in line.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let ping = Ping::command(Point::hyperuser(), RawCommand::new(command));
        answer = machine.ping(agent.clone(), ping).await.core;
        if !answer.is_ok() {
            break;
        }
    }
    answer
}

async fn ok(machine: &Machine, line: &str) -> Substance {
    let core = exec(machine, &Agent::HyperUser, line).await;
    assert!(
        core.is_ok(),
        "{line}: {} {:?}",
        core.status,
        core.error_message()
    );
    core.body
}

/// Sends `method` with `body` to `to` as `agent`.
async fn send(
    machine: &Machine,
    agent: &Agent,
    to: &str,
    method: &str,
    body: impl Into<Substance>,
) -> ReflectedCore {
    let to: Surface = to.parse().unwrap();
    let method: Method = method.parse().unwrap();
    let ping = Ping::new(Surface::core(agent.to_point()), to, method, body);
    machine.ping(agent.clone(), ping).await.core
}

fn user(name: &str) -> Agent {
    Agent::Point(format!("localhost:users:{name}").parse().unwrap())
}

/// `localhost:app:key`, a Secret below an App, and the users ann, bob and carol.
async fn cosmos(machine: &Machine) {
    ok(
        machine,
        "create localhost<Space>; create localhost:users<UserBase>; \
         create localhost:users:ann<User>; create localhost:users:bob<User>; \
         create localhost:users:carol<User>; create localhost:app<App>; \
         create localhost:app:key<Secret>",
    )
    .await;
}

/// Nothing a command answers about a secret shows its value.
fn shows_no_value(core: &ReflectedCore) {
    let shown = format!("{core:?}");
    let value = String::from_utf8_lossy(VALUE);
    assert!(!shown.contains(value.as_ref()), "{shown}");
}

#[tokio::test]
async fn a_secret_is_set_revealed_with_a_grant_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let machine = open(dir.path(), &SecretKey::random().unwrap()).await;
    cosmos(&machine).await;
    let hyper = Agent::HyperUser;
    let key = "localhost:app:key";

    let never_set = send(&machine, &hyper, key, "Http<Head>", ()).await;
    assert_eq!(never_set.status, StatusCode::NOT_FOUND);
    let set = send(
        &machine,
        &hyper,
        key,
        "Http<Put>",
        Substance::Bin(VALUE.to_vec()),
    )
    .await;
    assert!(set.is_ok(), "{:?}", set.error_message());
    assert_eq!(set.body, Substance::Empty);
    assert_eq!(
        send(&machine, &hyper, key, "Http<Head>", ()).await.status,
        StatusCode::OK
    );

    // HyperUser holds everything but what only a grant gives.
    for method in ["Http<Get>", "Cmd<Read>"] {
        let refused = send(&machine, &hyper, key, method, ()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method}");
        assert_eq!(
            refused.error_message().as_deref(),
            Some(
                "hyperspace:users:hyperuser may not secret:reveal localhost:app:key \
                 (missing privilege 'secret:reveal')"
            )
        );
    }
    // Commands show that it is set, never what.
    let details = exec(&machine, &hyper, "get localhost:app:key").await;
    assert!(details.is_ok());
    shows_no_value(&details);
    let Substance::Details(details) = details.body else {
        panic!("get answers details");
    };
    let names: Vec<&str> = details.properties.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["updated"]);
    let read = exec(&machine, &hyper, "read localhost:app:key").await;
    assert_eq!(read.status, StatusCode::BAD_REQUEST);
    assert!(
        read.error_message()
            .is_some_and(|m| m.contains("`read` never shows its value")),
        "{read:?}"
    );
    shows_no_value(&read);
    shows_no_value(&exec(&machine, &hyper, "select localhost:**").await);

    ok(
        &machine,
        "grant secret:reveal on localhost:app:key to hyperspace:users:hyperuser",
    )
    .await;
    for method in ["Http<Get>", "Cmd<Read>"] {
        let revealed = send(&machine, &hyper, key, method, ()).await;
        assert!(revealed.is_ok(), "{method}: {:?}", revealed.error_message());
        assert_eq!(revealed.body, Substance::Bin(VALUE.to_vec()));
        assert_eq!(revealed.headers.get("cache-control"), Some("no-store"));
    }

    // Text replaces it; Delete clears it (and the marker); a cleared secret is never set.
    let set = send(&machine, &hyper, key, "Http<Put>", "second").await;
    assert!(set.is_ok());
    let revealed = send(&machine, &hyper, key, "Http<Get>", ()).await;
    assert_eq!(revealed.body, Substance::Bin(b"second".to_vec()));
    assert!(
        send(&machine, &hyper, key, "Http<Delete>", ())
            .await
            .is_ok()
    );
    for method in ["Http<Get>", "Http<Head>", "Http<Delete>"] {
        let gone = send(&machine, &hyper, key, method, ()).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{method}");
    }
    let Substance::Details(details) = ok(&machine, "get localhost:app:key").await else {
        panic!("get answers details");
    };
    assert_eq!(details.properties.iter().count(), 0);
    machine.shutdown().await;
}

#[tokio::test]
async fn only_a_grant_naming_secret_reveal_reveals_whoever_asks() {
    let dir = tempfile::tempdir().unwrap();
    let machine = open(dir.path(), &SecretKey::random().unwrap()).await;
    cosmos(&machine).await;
    let key = "localhost:app:key";
    let set = send(
        &machine,
        &Agent::HyperUser,
        key,
        "Http<Put>",
        Substance::Bin(VALUE.to_vec()),
    )
    .await;
    assert!(set.is_ok());
    // ann: r and x through a mask; bob: Super on the app; carol: owns the secret.
    ok(
        &machine,
        "grant +csd-RwX on localhost:app+:** to localhost:users:ann; \
         grant Super on localhost:app+:** to localhost:users:bob; \
         chown localhost:app:key to localhost:users:carol",
    )
    .await;
    for who in ["ann", "bob", "carol"] {
        let refused = send(&machine, &user(who), key, "Http<Get>", ()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{who}");
        assert!(
            refused
                .error_message()
                .is_some_and(|m| m.ends_with("(missing privilege 'secret:reveal')")),
            "{who}: {:?}",
            refused.error_message()
        );
    }
    // ann may not write it either (the mask has no w); the owner and Super may.
    let put = send(&machine, &user("ann"), key, "Http<Put>", "mine").await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);

    // The owner grants it to ann (and to herself); bob still has nothing by Super.
    let grant = exec(
        &machine,
        &user("carol"),
        "grant secret:reveal on localhost:app:key to localhost:users:ann; \
         grant secret:reveal on localhost:app:key to localhost:users:carol",
    )
    .await;
    assert!(grant.is_ok(), "{:?}", grant.error_message());
    for who in ["ann", "carol"] {
        let revealed = send(&machine, &user(who), key, "Http<Get>", ()).await;
        assert_eq!(revealed.body, Substance::Bin(VALUE.to_vec()), "{who}");
    }
    let refused = send(&machine, &user("bob"), key, "Http<Get>", ()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // ann cannot pass it on: she has no full access to make grants with.
    let passed = exec(
        &machine,
        &user("ann"),
        "grant secret:reveal on localhost:app:key to localhost:users:bob",
    )
    .await;
    assert_eq!(passed.status, StatusCode::FORBIDDEN);
    let refused = send(&machine, &user("bob"), key, "Http<Get>", ()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    machine.shutdown().await;
}

#[tokio::test]
async fn a_secret_refuses_what_it_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let machine = open(dir.path(), &SecretKey::random().unwrap()).await;
    cosmos(&machine).await;
    let hyper = Agent::HyperUser;
    let key = "localhost:app:key";
    for (body, status) in [
        (Substance::Empty, StatusCode::BAD_REQUEST),
        (Substance::Bin(Vec::new()), StatusCode::BAD_REQUEST),
        (Substance::Text(String::new()), StatusCode::BAD_REQUEST),
        (Substance::Int(7), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            Substance::Bin(vec![b'x'; 64 * 1024 + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let refused = send(&machine, &hyper, key, "Http<Put>", body.clone()).await;
        assert_eq!(refused.status, status, "{:?}", body.kind());
    }
    assert_eq!(
        send(&machine, &hyper, key, "Http<Head>", ()).await.status,
        StatusCode::NOT_FOUND,
        "a refused value is not stored"
    );
    let largest = send(
        &machine,
        &hyper,
        key,
        "Http<Put>",
        Substance::Bin(vec![b'x'; 64 * 1024]),
    )
    .await;
    assert!(largest.is_ok());
    let post = send(&machine, &hyper, key, "Http<Post>", "x").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers.get("allow"), Some("GET, HEAD, PUT, DELETE"));
    // Where a secret may live (SPEC §3).
    let misplaced = exec(&machine, &hyper, "create localhost:users:ann:key<Secret>").await;
    assert_eq!(misplaced.status, StatusCode::BAD_REQUEST);
    assert!(
        misplaced.error_message().is_some_and(|m| m.contains(
            "Secret may not live under User: Secret lives under Space, Base, App or Mechtron"
        )),
        "{:?}",
        misplaced.error_message()
    );
    ok(&machine, "create localhost:top<Secret>; create localhost:base<Base>; create localhost:base:key<Secret>").await;
    machine.shutdown().await;
}

#[tokio::test]
async fn values_are_sealed_at_rest_under_the_key_and_bound_to_their_point() {
    let dir = tempfile::tempdir().unwrap();
    let first = SecretKey::random().unwrap();
    let machine = open(dir.path(), &first).await;
    cosmos(&machine).await;
    ok(
        &machine,
        "create localhost:app:copy<Secret>; \
         grant secret:reveal on localhost:app:* to hyperspace:users:hyperuser",
    )
    .await;
    let hyper = Agent::HyperUser;
    let set = send(
        &machine,
        &hyper,
        "localhost:app:key",
        "Http<Put>",
        Substance::Bin(VALUE.to_vec()),
    )
    .await;
    assert!(set.is_ok());
    let key: Point = "localhost:app:key".parse().unwrap();
    let sealed = machine.registry().content(&key).await.unwrap().unwrap();
    assert!(
        !sealed.windows(VALUE.len()).any(|w| w == VALUE),
        "stored in the clear"
    );

    // The sealed bytes copied to another secret do not open there.
    let copy: Point = "localhost:app:copy".parse().unwrap();
    machine
        .registry()
        .write_content(&copy, sealed, &PropertyChanges::new())
        .await
        .unwrap();
    let copied = send(&machine, &hyper, "localhost:app:copy", "Http<Get>", ()).await;
    assert_eq!(copied.status, StatusCode::ERROR);
    assert_eq!(
        copied.error_message().as_deref(),
        Some(
            "the stored value of localhost:app:copy does not open with this machine's secret \
             key: it was altered, or copied from another secret"
        )
    );
    machine.shutdown().await;

    // Another key: the machine says its key is wrong, and shows nothing of the value.
    let machine = open(dir.path(), &SecretKey::random().unwrap()).await;
    let wrong = send(&machine, &hyper, "localhost:app:key", "Http<Get>", ()).await;
    assert_eq!(wrong.status, StatusCode::ERROR);
    let message = wrong.error_message().unwrap_or_default();
    assert!(
        message.starts_with("the value of localhost:app:key was sealed with another secret key")
            && message.contains("is wrong"),
        "{message}"
    );
    shows_no_value(&wrong);
    machine.shutdown().await;

    // The right key again: it was never lost.
    let machine = open(dir.path(), &first).await;
    let revealed = send(&machine, &hyper, "localhost:app:key", "Http<Get>", ()).await;
    assert_eq!(revealed.body, Substance::Bin(VALUE.to_vec()));
    machine.shutdown().await;
}
