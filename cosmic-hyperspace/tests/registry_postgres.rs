//! The PostgreSQL registry (SPEC §14.2) on a private server: the conformance suite (one test
//! per check, each on a fresh database), what survives closing and connecting again, a
//! dropped connection survived, the stub columns of migration 3 filled for rows from before
//! it, selects and children that agree with the embedded store's, concurrent creates
//! (batched together) that each get their own answer, and subscriptions stored as text, a
//! corrupt row of which is an error naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use cosmic_hyperspace::registry::{
    EmbeddedRegistry, PgConfig, PgRegistry, Registration, Registry, RegistryError, conformance,
};
use cosmic_space::{
    Agent, CreateStrategy, Kind, Point, PropertyChanges, Selector, Status, Subscription,
};
use tests::postgres::PrivatePostgres;

/// One private server for every test of this binary.
fn server() -> &'static PrivatePostgres {
    static SERVER: OnceLock<PrivatePostgres> = OnceLock::new();
    SERVER.get_or_init(PrivatePostgres::start)
}

/// A registry on a fresh, empty database (small pool: the checks run side by side).
async fn fresh() -> PgRegistry {
    let url = tokio::task::spawn_blocking(|| server().database())
        .await
        .unwrap();
    connect(&url).await
}

async fn connect(url: &str) -> PgRegistry {
    let config = PgConfig {
        pool_size: 8,
        ..PgConfig::default()
    };
    PgRegistry::connect_with(url, config)
        .await
        .unwrap_or_else(|e| panic!("connecting to the private PostgreSQL: {e}"))
}

cosmic_hyperspace::registry_conformance_tests!(fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_registry_survives_reconnecting() {
    let url = tokio::task::spawn_blocking(|| server().database())
        .await
        .unwrap();
    let opened = AtomicUsize::new(0);
    conformance::survives_reopen(|| {
        opened.fetch_add(1, Ordering::Relaxed);
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(connect(&url)))
    })
    .await
    .unwrap_or_else(|message| panic!("{message}"));
    assert_eq!(opened.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_applied_once_when_machines_start_together() {
    let url = tokio::task::spawn_blocking(|| server().database())
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(connect(&url), connect(&url), connect(&url));
    a.register(root()).await.unwrap();
    assert_eq!(b.record(&Point::root()).await.unwrap().point, Point::root());
    drop((a, b, c));
    // Connecting to a migrated database migrates nothing and finds everything.
    let again = connect(&url).await;
    assert_eq!(again.census().await.unwrap().get("Root"), Some(&1));
}

fn root() -> cosmic_hyperspace::registry::Registration {
    cosmic_hyperspace::registry::Registration {
        point: Point::root(),
        kind: "Root".parse().unwrap(),
        owner: Point::hyperuser(),
        properties: cosmic_space::PropertyChanges::new(),
        strategy: cosmic_space::CreateStrategy::Commit,
        status: cosmic_space::Status::Ready,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_stored_readably_and_corrupt_rows_are_storage_errors() {
    let url = tokio::task::spawn_blocking(|| server().database())
        .await
        .unwrap();
    let registry = connect(&url).await;
    let subscription = Subscription {
        subscriber: "localhost:app@Shell+Topic<Cli>".parse().unwrap(),
        selector: "localhost:chat:**<Channel>".parse().unwrap(),
        agent: Agent::HyperUser,
    };
    registry.subscribe(&subscription).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT subscriber, selector, subscriber_point, agent FROM subscriptions",
            &[],
        )
        .await
        .unwrap();
    let columns: [String; 4] = [row.get(0), row.get(1), row.get(2), row.get(3)];
    assert_eq!(
        columns,
        [
            "localhost:app@Shell+Topic<Cli>".to_string(),
            "localhost:chat:**<Channel>".to_string(),
            "localhost:app".to_string(),
            Point::hyperuser().to_string(),
        ]
    );
    for (subscriber, selector, agent, column) in [
        (
            "localhost@Core",
            "localhost:chat:((",
            "localhost",
            "selector",
        ),
        (
            "localhost@Nowhere",
            "localhost:chat:**",
            "localhost",
            "subscriber",
        ),
        (
            "localhost@Core",
            "localhost:chat:a",
            "not a point!",
            "agent",
        ),
    ] {
        client
            .execute(
                "INSERT INTO subscriptions (subscriber, selector, subscriber_point, agent) \
                 VALUES ($1, $2, 'localhost', $3)",
                &[&subscriber, &selector, &agent],
            )
            .await
            .unwrap();
        match registry.subscriptions().await {
            Err(RegistryError::Storage(message)) => assert!(
                message.starts_with(&format!(
                    "corrupt subscription row (subscriber '{subscriber}', selector \
                     '{selector}') in PostgreSQL: the {column}"
                )),
                "{message}"
            ),
            other => panic!("a corrupt subscription row read as {other:?}"),
        }
        client
            .execute(
                "DELETE FROM subscriptions WHERE subscriber = $1 AND selector = $2",
                &[&subscriber, &selector],
            )
            .await
            .unwrap();
    }
    assert_eq!(registry.subscriptions().await.unwrap(), vec![subscription]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_survived() {
    let url = tokio::task::spawn_blocking(|| server().database())
        .await
        .unwrap();
    let database = url.rsplit('/').next().unwrap().to_string();
    let registry = connect(&url).await;
    registry.register(root()).await.unwrap();
    // Warm several pooled connections, then end every session on the database.
    let mut reads = Vec::new();
    for _ in 0..4 {
        let registry = registry.clone();
        reads.push(tokio::spawn(async move {
            registry.record(&Point::root()).await
        }));
    }
    for read in reads {
        read.await.unwrap().unwrap();
    }
    let terminated = tokio::task::spawn_blocking(move || terminate(&database))
        .await
        .unwrap();
    assert!(terminated > 0, "no session of the registry was terminated");

    // A read is retried on another connection; a write may fail as Unavailable once.
    registry.record(&Point::root()).await.unwrap();
    match registry.next_sequence(&Point::root()).await {
        Ok(_) => {}
        Err(RegistryError::Unavailable(message)) => {
            assert!(!message.is_empty());
            registry.next_sequence(&Point::root()).await.unwrap();
        }
        Err(other) => panic!("a write after a dropped connection failed as {other:?}"),
    }
    for _ in 0..8 {
        registry.record(&Point::root()).await.unwrap();
        registry.next_sequence(&Point::root()).await.unwrap();
    }
}

/// Ends every session on `database` with `pg_terminate_backend`; returns how many.
fn terminate(database: &str) -> usize {
    server()
        .sql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ))
        .parse()
        .unwrap()
}

/// A `Commit` registration of `point` as a `kind`, `Pending`.
fn registration(point: &str, kind: &str) -> Registration {
    Registration {
        point: point.parse().unwrap(),
        kind: kind.parse::<Kind>().unwrap(),
        owner: Point::hyperuser(),
        properties: PropertyChanges::new(),
        strategy: CreateStrategy::Commit,
        status: Status::Pending,
    }
}

/// Runs `sql` on the database at `url`.
async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_before_the_stub_columns_get_them_from_their_records() {
    let url = tokio::task::spawn_blocking(|| server().database())
        .await
        .unwrap();
    let registry = connect(&url).await;
    for (point, kind) in [
        ("ROOT", "Root"),
        ("localhost", "Space"),
        ("localhost:app", "App"),
        ("localhost:app:echo", "Mechtron"),
        ("localhost:app:echo:/", "File<Dir>"),
    ] {
        registry.register(registration(point, kind)).await.unwrap();
    }
    let echo: Point = "localhost:app:echo".parse().unwrap();
    // A reason may hold anything: parentheses, backslashes, newlines, NUL.
    let failed = Status::Panic("out of (fuel)\n\\ memory\0".to_string());
    registry.set_status(&echo, failed.clone()).await.unwrap();
    registry
        .set_status(&Point::root(), Status::Ready)
        .await
        .unwrap();
    let before = registry
        .select(&"**".parse::<Selector>().unwrap())
        .await
        .unwrap();
    drop(registry);
    // The database as migration 2 left it: no status column (the records are the same), and
    // none of the later migrations (the leases of migration 4, the key-value tables of 6).
    execute(
        &url,
        "ALTER TABLE particles DROP COLUMN status; DROP TABLE leases; \
         DROP TABLE kv; DROP TABLE kv_once; DROP TABLE subscriptions; \
         DELETE FROM schema_migrations WHERE version >= 3",
    )
    .await;

    let registry = connect(&url).await;
    let after = registry
        .select(&"**".parse::<Selector>().unwrap())
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(
        registry
            .children(&"localhost:app".parse().unwrap())
            .await
            .unwrap()[0]
            .status,
        failed
    );
    // The column is required again: a row without it cannot be written behind our back.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let nullable: String = client
        .query_one(
            "SELECT is_nullable FROM information_schema.columns \
             WHERE table_name = 'particles' AND column_name = 'status'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nullable, "NO");
}

/// Particles whose printed order is not their point order (`app` and `app-1`, versions,
/// file systems), for comparing selects with the embedded store's.
const TRICKY: &[(&str, &str)] = &[
    ("ROOT", "Root"),
    ("localhost", "Space"),
    ("localhost-2", "Space"),
    ("localhost:app", "App"),
    ("localhost:app:a", "Mechtron"),
    ("localhost:app:a-b", "Mechtron"),
    ("localhost:app:a:x", "Mechtron"),
    ("localhost:app-1", "App"),
    ("localhost:app-1:m", "Mechtron"),
    ("localhost:app0", "App"),
    ("localhost:app:users", "UserBase"),
    ("localhost:app:users:scott", "User"),
    ("localhost:app:a:/", "File<Dir>"),
    ("localhost:app:a:/logs/", "File<Dir>"),
    ("localhost:app:a:/logs/z.txt", "File<File>"),
    ("localhost:app:a:/log.txt", "File<File>"),
    ("localhost-2:m", "Mechtron"),
    ("repo", "Space"),
    ("repo:hello", "BundleSeries"),
    ("repo:hello:1.10.0", "Bundle"),
    ("repo:hello:1.9.0", "Bundle"),
    ("repo:hello:1.9.0:/", "Artifact<Dir>"),
    ("repo:hello:1.9.0:/hello.wasm", "Artifact<Wasm>"),
    ("repo:hello:1.10.0:/", "Artifact<Dir>"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selects_and_children_agree_with_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedRegistry::open(&dir.path().join("registry.redb")).unwrap();
    let pg = fresh().await;
    for (point, kind) in TRICKY {
        embedded.register(registration(point, kind)).await.unwrap();
        pg.register(registration(point, kind)).await.unwrap();
    }
    pg.set_status(&"localhost:app:a".parse().unwrap(), Status::Ready)
        .await
        .unwrap();
    embedded
        .set_status(&"localhost:app:a".parse().unwrap(), Status::Ready)
        .await
        .unwrap();
    // Matched point by point, then by the walk (see `postgres::select`).
    for text in [
        "**",
        "**<*>",
        "**<Mechtron>",
        "**<App>",
        "**<File>",
        "**<File<File>>",
        "**<Artifact<Wasm>>",
        "**<UserBase<*>>",
        "*",
        "*<Space>",
        "*:**<Mechtron>",
        "localhost:**",
        "localhost:*",
        "localhost:*<App>",
        "localhost:**<App>",
        "localhost:*:*<Mechtron>",
        "localhost:app:**<Mechtron>",
        "localhost:app:a:**",
        "repo:hello:*:**",
        "repo:hello:*<Bundle>",
        "repo:hello:*:**<Artifact<Wasm>>",
        "nowhere:**",
        "localhost+:**",
        "localhost:**+",
        "**+:**",
        "*<Space>:*<App>:*<Mechtron>",
        "*<Space>:*<App>:**",
        "localhost:*<App>:**",
        "localhost:app<App>:**",
        "**<App>:*<Mechtron>",
        "localhost:app:a:/**",
        "**:/**",
        "repo:hello:1.9.0:/**",
    ] {
        let selector: Selector = text.parse().unwrap();
        assert_eq!(
            pg.select(&selector).await.unwrap(),
            embedded.select(&selector).await.unwrap(),
            "select {text}"
        );
    }
    for (point, _) in TRICKY {
        let point: Point = point.parse().unwrap();
        assert_eq!(
            pg.children(&point).await.unwrap(),
            embedded.children(&point).await.unwrap(),
            "children of {point}"
        );
    }
}

/// What one concurrent register asked for, and what it must be answered.
enum Want {
    Created,
    Existing,
    AlreadyExists,
    NoParent,
    KindMismatch,
    PropertyLocked,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_each_get_their_own_answer() {
    let registry = Arc::new(fresh().await);
    for (point, kind) in [
        ("ROOT", "Root"),
        ("localhost", "Space"),
        ("localhost:taken", "App"),
    ] {
        registry.register(registration(point, kind)).await.unwrap();
    }
    let mut locked = registration("localhost:locked", "App");
    locked.properties = "{ +@config=a }".parse().unwrap();
    registry.register(locked).await.unwrap();
    for round in 0..8 {
        let mut tasks = Vec::new();
        for n in 0..96 {
            let (mut asked, want) = match n % 8 {
                0..=2 => (
                    registration(&format!("localhost:new-{round}-{n}"), "App"),
                    Want::Created,
                ),
                3 => (registration("localhost:taken", "App"), Want::AlreadyExists),
                4 => (
                    registration(&format!("localhost:none-{n}:child"), "App"),
                    Want::NoParent,
                ),
                5 => {
                    let mut asked = registration("localhost:taken", "Mechtron");
                    asked.strategy = CreateStrategy::Ensure;
                    (asked, Want::KindMismatch)
                }
                6 => {
                    let mut asked = registration("localhost:locked", "App");
                    asked.strategy = CreateStrategy::Override;
                    asked.properties = "{ +config=b }".parse().unwrap();
                    (asked, Want::PropertyLocked)
                }
                _ => {
                    let mut asked = registration("localhost:taken", "App");
                    asked.strategy = CreateStrategy::Ensure;
                    (asked, Want::Existing)
                }
            };
            asked.status = Status::Init;
            let registry = Arc::clone(&registry);
            tasks.push(tokio::spawn(async move {
                let point = asked.point.clone();
                (point, want, registry.register(asked).await)
            }));
        }
        for task in tasks {
            let (point, want, answer) = task.await.unwrap();
            match (want, answer) {
                (Want::Created, Ok(record)) => {
                    assert_eq!(record.point, point);
                    assert_eq!(record.status, Status::Init);
                }
                (Want::Existing, Ok(record)) => assert_eq!(record.status, Status::Pending),
                (Want::AlreadyExists, Err(RegistryError::AlreadyExists(p))) => {
                    assert_eq!(p, point)
                }
                (Want::NoParent, Err(RegistryError::NoParent { point: p, .. })) => {
                    assert_eq!(p, point)
                }
                (Want::KindMismatch, Err(RegistryError::KindMismatch { point: p, .. })) => {
                    assert_eq!(p, point)
                }
                (Want::PropertyLocked, Err(RegistryError::PropertyLocked { point: p, name })) => {
                    assert_eq!((p, name.as_str()), (point, "config"))
                }
                (_, answer) => panic!("{point} was answered {answer:?}"),
            }
        }
    }
    let created = registry
        .select(&"localhost:*<App>".parse::<Selector>().unwrap())
        .await
        .unwrap();
    // 8 rounds of 36 new ones, the taken and the locked one; nothing else.
    assert_eq!(created.len(), 8 * 36 + 2);
    assert!(created.iter().all(|stub| stub.status == Status::Init
        || ["localhost:taken", "localhost:locked"].contains(&stub.point.to_string().as_str())));
    let locked = registry
        .record(&"localhost:locked".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(locked.properties.get("config").unwrap().value, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_racing_the_delete_of_their_parent_leave_no_orphan() {
    let registry = Arc::new(fresh().await);
    for (point, kind) in [("ROOT", "Root"), ("localhost", "Space")] {
        registry.register(registration(point, kind)).await.unwrap();
    }
    let parent: Point = "localhost:app".parse().unwrap();
    for round in 0..6 {
        registry
            .register(registration("localhost:app", "App"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..64 {
            let registry = Arc::clone(&registry);
            tasks.push(tokio::spawn(async move {
                let child = registration(&format!("localhost:app:c-{round}-{n}"), "Mechtron");
                (child.point.clone(), registry.register(child).await)
            }));
        }
        tokio::task::yield_now().await;
        let deleted: BTreeSet<Point> = registry
            .delete(&parent, true)
            .await
            .unwrap()
            .into_iter()
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                // Created before the delete, so deleted with its parent.
                (point, Ok(_)) => assert!(deleted.contains(&point), "{point} survived"),
                (
                    point,
                    Err(RegistryError::NoParent {
                        point: p,
                        parent: above,
                    }),
                ) => {
                    assert_eq!((p, above), (point, parent.clone()));
                }
                (point, Err(other)) => panic!("{point} was answered {other:?}"),
            }
        }
        let orphans = registry
            .select(&"localhost:app:**".parse::<Selector>().unwrap())
            .await
            .unwrap();
        assert!(orphans.is_empty(), "orphans: {orphans:?}");
    }
}

/// The leases' statements (`membership`): a lease is taken only from nobody, or again by its
/// own holder; renewals and burials name the epoch; a burial records its burier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_taken_only_from_nobody_and_burials_name_their_burier() {
    use cosmic_hyperspace::membership::Leases;
    use std::time::Duration;
    let registry = fresh().await;
    let long = Duration::from_secs(60);
    let short = Duration::from_millis(200);
    let first = registry.acquire("m-a", 7, 2, long).await.unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(
        registry.acquire("m-a", 8, 2, long).await.unwrap(),
        None,
        "another holder may not take a live lease"
    );
    assert_eq!(
        registry.acquire("m-a", 7, 2, long).await.unwrap(),
        Some(2),
        "its own holder takes it again (an answer it lost)"
    );
    assert!(
        !registry.renew("m-a", 1, long).await.unwrap(),
        "epoch 1 is void"
    );
    assert!(registry.renew("m-a", 2, short).await.unwrap());
    assert!(
        !registry.bury("m-a", 2, "m-b").await.unwrap(),
        "not before the lease ends"
    );
    tokio::time::sleep(short * 2).await;
    assert!(registry.bury("m-a", 2, "m-b").await.unwrap());
    assert!(
        !registry.bury("m-a", 2, "m-c").await.unwrap(),
        "buried once"
    );
    let leases = registry.leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert!(leases[0].buried && !leases[0].is_live());
    assert_eq!(leases[0].buried_by.as_deref(), Some("m-b"));
    assert!(
        !registry.renew("m-a", 2, long).await.unwrap(),
        "a buried lease"
    );
    assert_eq!(
        registry.acquire("m-a", 9, 3, long).await.unwrap(),
        Some(3),
        "a buried lease is anybody's"
    );
    let leases = registry.leases().await.unwrap();
    assert!(leases[0].is_live() && leases[0].buried_by.is_none());
    assert_eq!(leases[0].stars, 3);
    registry.release("m-a", 3).await.unwrap();
    assert_eq!(
        registry.acquire("m-a", 10, 3, long).await.unwrap(),
        Some(4),
        "a released lease is anybody's"
    );
}
