//! The change feed: every cache forgets what a write changed, before the write returns, and
//! what another machine changed once its change is published here.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cosmic_hyperspace::driver::{Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::registry::{
    CachedRegistry, Change, EmbeddedRegistry, Registration, Registry, RegistryError,
};
use cosmic_space::{
    Agent, CmdMethod, CreateStrategy, Method, Ping, Point, PropertyChanges, RawCommand, Status,
    StatusCode, Surface,
};

fn point(text: &str) -> Point {
    text.parse().unwrap()
}

fn registration(text: &str, kind: &str) -> Registration {
    Registration {
        point: point(text),
        kind: kind.parse().unwrap(),
        owner: Point::hyperuser(),
        properties: PropertyChanges::new(),
        strategy: CreateStrategy::Commit,
        status: Status::Pending,
    }
}

/// A store, and the same store behind a cache — as a machine that shares the store with
/// another machine sees it: writes through `store` are the other machine's.
async fn store_and_cache() -> (
    tempfile::TempDir,
    Arc<EmbeddedRegistry>,
    Arc<CachedRegistry>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedRegistry::open(&dir.path().join("registry.redb")).unwrap());
    let cached = CachedRegistry::new(store.clone());
    let mut root = registration("localhost", "Space");
    root.point = Point::root();
    root.kind = cosmic_space::Kind::Root;
    cached.register(root).await.unwrap();
    for (text, kind) in [("localhost", "Space"), ("localhost:app", "Base")] {
        cached.register(registration(text, kind)).await.unwrap();
    }
    (dir, store, cached)
}

#[tokio::test]
async fn a_write_through_the_cache_is_read_back_at_once() {
    let (_dir, _store, cached) = store_and_cache().await;
    let app = point("localhost:app");
    assert_eq!(cached.record(&app).await.unwrap().status, Status::Pending);
    assert_eq!(cached.cached_records(), 1);
    cached.set_status(&app, Status::Ready).await.unwrap();
    assert_eq!(cached.record(&app).await.unwrap().status, Status::Ready);
    let changes: PropertyChanges = "{ +title=Hello }".parse().unwrap();
    cached.set_properties(&app, &changes).await.unwrap();
    let record = cached.record(&app).await.unwrap();
    assert_eq!(record.properties.value("title"), Some("Hello"));
    cached.delete(&app, false).await.unwrap();
    assert_eq!(
        cached.record(&app).await,
        Err(RegistryError::NotFound(app.clone()))
    );
}

#[tokio::test]
async fn changes_made_elsewhere_are_forgotten_once_published() {
    let (_dir, store, cached) = store_and_cache().await;
    let app = point("localhost:app");
    cached
        .register(registration("localhost:app:child", "Base"))
        .await
        .unwrap();
    let child = point("localhost:app:child");
    assert_eq!(cached.record(&app).await.unwrap().status, Status::Pending);
    assert_eq!(cached.record(&child).await.unwrap().status, Status::Pending);

    // Another machine changes the store: this machine's cache does not know yet...
    store.set_status(&app, Status::Ready).await.unwrap();
    assert_eq!(cached.record(&app).await.unwrap().status, Status::Pending);
    // ...until the change reaches its feed.
    cached
        .changes()
        .publish_from_elsewhere(&Change::Record(app.clone()));
    assert_eq!(cached.record(&app).await.unwrap().status, Status::Ready);

    // A subtree deleted elsewhere: both records go at once.
    store.delete(&app, true).await.unwrap();
    assert!(cached.record(&child).await.is_ok(), "still cached");
    cached
        .changes()
        .publish_from_elsewhere(&Change::Subtree(app.clone()));
    assert!(matches!(
        cached.record(&child).await,
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        cached.record(&app).await,
        Err(RegistryError::NotFound(_))
    ));
    assert_eq!(cached.cached_records(), 0);
}

/// A `Cmd<Bounce>` to `target` as `agent`, from the star that does not host it: the status.
async fn bounce(machine: &Machine, agent: &Agent, target: &Point) -> StatusCode {
    let host = machine.registry().location(target).await.unwrap().unwrap();
    let sender = machine
        .stars()
        .iter()
        .find(|star| *star.key() != host)
        .unwrap();
    let mut ping = Ping::new(
        Surface::core(sender.point().clone()),
        target.clone(),
        Method::Cmd(CmdMethod::Bounce),
        (),
    );
    ping.agent = agent.clone();
    sender.ping(ping).await.core.status
}

async fn exec(machine: &Machine, line: &str) -> cosmic_space::Substance {
    let ping = Ping::command(Point::hyperuser(), RawCommand::new(line));
    let core = machine.ping(Agent::HyperUser, ping).await.core;
    assert!(core.is_ok(), "{line}: {:?}", core.error_message());
    core.body
}

#[tokio::test]
async fn access_decisions_follow_grants_owners_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::open(
        dir.path(),
        2,
        Drivers::builtin(SecretKey::random().unwrap()),
    )
    .await
    .unwrap();
    for line in [
        "create localhost<Space>",
        "create localhost:users<UserBase>",
        "create localhost:users:scott<User>",
        "create localhost:app<Base>",
    ] {
        exec(&machine, line).await;
    }
    let scott = Agent::Point(point("localhost:users:scott"));
    let app = point("localhost:app");
    // Asked twice each time: the second answer comes from the cache.
    for _ in 0..2 {
        assert_eq!(bounce(&machine, &scott, &app).await, StatusCode::FORBIDDEN);
    }
    let granted = exec(
        &machine,
        "grant +csd-rwX on localhost:app to localhost:users:scott",
    )
    .await;
    for _ in 0..2 {
        assert_eq!(bounce(&machine, &scott, &app).await, StatusCode::OK);
    }
    let cosmic_space::Substance::Int(id) = granted else {
        panic!("grant answered {granted:?}");
    };
    exec(&machine, &format!("revoke {id}")).await;
    for _ in 0..2 {
        assert_eq!(bounce(&machine, &scott, &app).await, StatusCode::FORBIDDEN);
    }
    exec(&machine, "chown localhost:app to localhost:users:scott").await;
    for _ in 0..2 {
        assert_eq!(bounce(&machine, &scott, &app).await, StatusCode::OK);
    }
    // Deleted and made again by HyperUser: scott owns it no more.
    exec(&machine, "delete localhost:app").await;
    exec(&machine, "create localhost:app<Base>").await;
    for _ in 0..2 {
        assert_eq!(bounce(&machine, &scott, &app).await, StatusCode::FORBIDDEN);
    }
    machine.shutdown().await;
}

#[tokio::test]
async fn a_token_stored_again_names_its_new_agent_at_once() {
    let (_dir, store, cached) = store_and_cache().await;
    let scott = point("localhost:users:scott");
    let mary = point("localhost:users:mary");
    assert_eq!(cached.token_agent("secret").await.unwrap(), None);
    cached.store_token("secret", &scott).await.unwrap();
    assert_eq!(cached.token_agent("secret").await.unwrap(), Some(scott));
    cached.store_token("secret", &mary).await.unwrap();
    assert_eq!(
        cached.token_agent("secret").await.unwrap(),
        Some(mary.clone())
    );
    // Stored again elsewhere: heard once the change is published.
    store
        .store_token("secret", &Point::anonymous())
        .await
        .unwrap();
    assert_eq!(cached.token_agent("secret").await.unwrap(), Some(mary));
    cached.changes().publish_from_elsewhere(&Change::Tokens);
    assert_eq!(
        cached.token_agent("secret").await.unwrap(),
        Some(Point::anonymous())
    );
}
