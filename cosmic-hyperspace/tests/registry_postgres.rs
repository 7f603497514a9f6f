//! The PostgreSQL registry (SPEC §14.2) on a private server: the conformance suite (one test
//! per check, each on a fresh database), what survives closing and connecting again, and a
//! dropped connection survived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cosmic_hyperspace::registry::{PgConfig, PgRegistry, Registry, RegistryError, conformance};
use cosmic_space::Point;
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
