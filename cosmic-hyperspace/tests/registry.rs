//! The embedded registry (SPEC §14): the conformance suite every registry passes, plus what
//! only a file can show — durability across reopening and across `kill -9` in the middle of
//! writes, corrupt files refused with an error, tokens never stored in the clear, and
//! subscriptions stored as text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cosmic_hyperspace::registry::{
    EmbeddedRegistry, Entry, ParticleRecord, Registration, Registry, RegistryError, conformance,
};
use cosmic_space::{
    Agent, CreateStrategy, Kind, Point, Properties, PropertyChanges, Selector, Status, Subscription,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

fn open(path: &Path) -> EmbeddedRegistry {
    EmbeddedRegistry::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

fn registration(point: &str, kind: Kind) -> Registration {
    Registration {
        point: point.parse().unwrap(),
        kind,
        owner: Point::hyperuser(),
        properties: PropertyChanges::new(),
        strategy: CreateStrategy::Commit,
        status: Status::Pending,
    }
}

/// A fresh registry in a folder of its own, kept for as long as the test process runs (the
/// registry is moved into the check, so its folder cannot be dropped with it).
async fn fresh() -> EmbeddedRegistry {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let n = N.fetch_add(1, Ordering::Relaxed);
    open(&dir.path().join(format!("registry-{n}.redb")))
}

// One test per conformance check, each on a registry of its own.
cosmic_hyperspace::registry_conformance_tests!(fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_registry_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("registry.redb");
    let opened = AtomicUsize::new(0);
    conformance::survives_reopen(|| {
        opened.fetch_add(1, Ordering::Relaxed);
        open(&path)
    })
    .await
    .unwrap_or_else(|message| panic!("{message}"));
    assert_eq!(opened.load(Ordering::Relaxed), 2);
    assert!(path.exists(), "the file is created with its directory");
}

#[tokio::test]
async fn a_file_is_held_by_one_registry_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    let first = open(&path);
    match EmbeddedRegistry::open(&path) {
        Err(RegistryError::Storage(message)) => {
            assert!(message.contains("opening"), "{message}");
        }
        other => panic!("a second open of a held file answered {other:?}"),
    }
    drop(first);
    let again = open(&path);
    assert_eq!(again.path(), path.as_path());
}

#[tokio::test]
async fn tokens_are_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    let token = "super-secret-token-4f9a1c";
    {
        let registry = open(&path);
        registry
            .store_token(token, &"localhost:users:scott".parse().unwrap())
            .await
            .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let found = bytes
        .windows(token.len())
        .any(|window| window == token.as_bytes());
    assert!(!found, "the token appears in the clear in the file");
    let registry = open(&path);
    assert_eq!(
        registry.token_agent(token).await.unwrap(),
        Some("localhost:users:scott".parse().unwrap())
    );
}

const PARTICLES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("particles");
const GRANTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("grants");
const SUBSCRIPTIONS: TableDefinition<'_, (&str, &str), &str> =
    TableDefinition::new("subscriptions");

/// Makes a registry file with ROOT and `localhost`, then lets `tamper` change it with redb.
async fn tampered(dir: &Path, tamper: impl FnOnce(&Database)) -> PathBuf {
    let path = dir.join("registry.redb");
    {
        let registry = open(&path);
        registry
            .register(registration("ROOT", Kind::Root))
            .await
            .unwrap();
        registry
            .register(registration("localhost", Kind::Space))
            .await
            .unwrap();
    }
    let db = Database::create(&path).unwrap();
    tamper(&db);
    drop(db);
    path
}

fn write_row(db: &Database, key: &str, value: &[u8]) {
    let txn = db.begin_write().unwrap();
    txn.open_table(PARTICLES)
        .unwrap()
        .insert(key, value)
        .unwrap();
    txn.commit().unwrap();
}

fn storage_error(path: &Path) -> String {
    match EmbeddedRegistry::open(path) {
        Err(RegistryError::Storage(message)) => message,
        Err(other) => panic!("expected a storage error, got {other:?}"),
        Ok(_) => panic!("a corrupt file opened"),
    }
}

#[tokio::test]
async fn corrupt_records_are_storage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = tampered(dir.path(), |db| {
        write_row(db, "localhost", &[0xff, 0xfe, 0x07])
    })
    .await;
    let message = storage_error(&path);
    assert!(
        message.starts_with("corrupt particle record in the registry file"),
        "{message}"
    );
}

#[tokio::test]
async fn a_record_under_the_wrong_key_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let record = ParticleRecord {
        point: "elsewhere".parse().unwrap(),
        kind: Kind::Space,
        status: Status::Ready,
        owner: Point::hyperuser(),
        properties: Properties::new(),
        location: None,
    };
    let bytes = cosmic_space::wire::encode(&record).unwrap();
    let path = tampered(dir.path(), |db| write_row(db, "localhost", &bytes)).await;
    assert_eq!(
        storage_error(&path),
        "corrupt registry file: the row 'localhost' holds the record of elsewhere"
    );
}

#[tokio::test]
async fn an_orphan_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let record = ParticleRecord {
        point: "localhost:app:echo".parse().unwrap(),
        kind: Kind::Mechtron,
        status: Status::Ready,
        owner: Point::hyperuser(),
        properties: Properties::new(),
        location: None,
    };
    let bytes = cosmic_space::wire::encode(&record).unwrap();
    let path = tampered(dir.path(), |db| {
        write_row(db, "localhost:app:echo", &bytes);
    })
    .await;
    assert_eq!(
        storage_error(&path),
        "corrupt registry file: localhost:app:echo is registered but its parent \
         localhost:app is not"
    );
}

#[tokio::test]
async fn corrupt_grants_are_storage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = tampered(dir.path(), |db| {
        let txn = db.begin_write().unwrap();
        txn.open_table(GRANTS)
            .unwrap()
            .insert(7, [1u8, 2, 3].as_slice())
            .unwrap();
        txn.commit().unwrap();
    })
    .await;
    let message = storage_error(&path);
    assert!(
        message.starts_with("corrupt grant in the registry file"),
        "{message}"
    );
}

#[tokio::test]
async fn corrupt_subscriptions_are_storage_errors_naming_the_row() {
    let hyperuser = Point::hyperuser().to_string();
    for (subscriber, selector, agent, column) in [
        (
            "localhost@Core",
            "localhost:chat:((",
            hyperuser.as_str(),
            "selector",
        ),
        (
            "localhost@Nowhere",
            "localhost:chat:**",
            hyperuser.as_str(),
            "subscriber",
        ),
        (
            "localhost@Core",
            "localhost:chat:a",
            "not a point!",
            "agent",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = tampered(dir.path(), |db| {
            write_subscription(db, (subscriber, selector), agent)
        })
        .await;
        let message = storage_error(&path);
        assert!(
            message.starts_with(&format!(
                "corrupt subscription row (subscriber '{subscriber}', selector '{selector}') \
                 in the registry file: the {column}"
            )),
            "{message}"
        );
    }
    // A row that parses but is not keyed by its printed form could never be unsubscribed.
    let dir = tempfile::tempdir().unwrap();
    let path = tampered(dir.path(), |db| {
        write_subscription(db, ("localhost", "localhost:chat:a"), &hyperuser)
    })
    .await;
    assert_eq!(
        storage_error(&path),
        "corrupt registry file: the subscription row (subscriber 'localhost', selector \
         'localhost:chat:a') is not keyed by its printed form (localhost@Core, localhost:chat:a)"
    );
}

fn write_subscription(db: &Database, key: (&str, &str), agent: &str) {
    let txn = db.begin_write().unwrap();
    txn.open_table(SUBSCRIPTIONS)
        .unwrap()
        .insert(key, agent)
        .unwrap();
    txn.commit().unwrap();
}

#[tokio::test]
async fn subscriptions_are_stored_readably() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    {
        let registry = open(&path);
        registry
            .subscribe(&Subscription {
                subscriber: "localhost:app@Shell+Topic<Cli>".parse().unwrap(),
                selector: "localhost:chat:**<Channel>".parse().unwrap(),
                agent: Agent::Anonymous,
            })
            .await
            .unwrap();
    }
    let db = Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(SUBSCRIPTIONS).unwrap();
    let rows: Vec<(String, String, String)> = table
        .iter()
        .unwrap()
        .map(|row| {
            let (key, value) = row.unwrap();
            let (subscriber, selector) = key.value();
            (
                subscriber.to_string(),
                selector.to_string(),
                value.value().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![(
            "localhost:app@Shell+Topic<Cli>".to_string(),
            "localhost:chat:**<Channel>".to_string(),
            Point::anonymous().to_string(),
        )]
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_registry_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    std::fs::write(
        &path,
        b"this is not a redb file, just some text that is long enough",
    )
    .unwrap();
    let message = storage_error(&path);
    assert!(message.starts_with("opening "), "{message}");
}

// ---- kill -9 in the middle of writes ----

/// Set in the child process: the registry file it writes to.
const CHILD_FILE: &str = "STARLANE_REGISTRY_CRASH_FILE";
/// Set in the child process: the first bundle number it writes.
const CHILD_FIRST: &str = "STARLANE_REGISTRY_CRASH_FIRST";
/// Particles per bundle: a base and its files.
const BUNDLE: usize = 16;
/// Bundles the parent waits to see acknowledged before it kills the child.
const ACKS_BEFORE_KILL: usize = 40;

fn bundle_entries(n: u64) -> Vec<Entry> {
    let base = format!("crash:b-{n}");
    let mut entries = vec![Entry {
        registration: registration(&base, Kind::Base),
        content: None,
    }];
    for k in 1..BUNDLE {
        entries.push(Entry {
            registration: registration(&format!("{base}:f-{k}"), Kind::Mechtron),
            content: Some(format!("{n}/{k}").into_bytes()),
        });
    }
    entries
}

/// The child: writes bundles from 8 tasks, printing `acked N` as each is answered, until it
/// is killed (or a minute passes).
fn crash_child(file: &str, first: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let registry = Arc::new(open(Path::new(file)));
        for (point, kind) in [("ROOT", Kind::Root), ("crash", Kind::Space)] {
            let mut ensure = registration(point, kind);
            ensure.strategy = CreateStrategy::Ensure;
            registry.register(ensure).await.unwrap();
        }
        let next = Arc::new(std::sync::atomic::AtomicU64::new(first));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let registry = Arc::clone(&registry);
            let next = Arc::clone(&next);
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    registry.register_all(bundle_entries(n)).await.unwrap();
                    println!("acked {n}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_register_all_leaves_whole_bundles_or_none() {
    if let (Ok(file), Ok(first)) = (std::env::var(CHILD_FILE), std::env::var(CHILD_FIRST)) {
        // Run the child on its own thread: it builds its own runtime.
        std::thread::spawn(move || crash_child(&file, first.parse().unwrap()))
            .join()
            .unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    let mut acked_total = 0;
    for round in 0..3u64 {
        let first = round * 1_000_000;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_mid_register_all_leaves_whole_bundles_or_none",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_FILE, &path)
            .env(CHILD_FIRST, first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acked.push(n.parse::<u64>().unwrap());
                if acked.len() == ACKS_BEFORE_KILL {
                    break;
                }
            }
        }
        assert_eq!(acked.len(), ACKS_BEFORE_KILL, "the child stopped early");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked_total += acked.len();

        let registry = open(&path);
        let stubs = registry
            .select(&"crash:**".parse::<Selector>().unwrap())
            .await
            .unwrap();
        let mut bundles: BTreeMap<u64, usize> = BTreeMap::new();
        for stub in &stubs {
            let text = stub.point.to_string();
            let n: u64 = text
                .strip_prefix("crash:b-")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected particle {text}"));
            *bundles.entry(n).or_default() += 1;
        }
        for (n, count) in &bundles {
            assert_eq!(*count, BUNDLE, "bundle {n} is half there after kill -9");
        }
        for n in &acked {
            assert!(
                bundles.contains_key(n),
                "bundle {n} was acknowledged but is gone after kill -9"
            );
            let file: Point = format!("crash:b-{n}:f-3").parse().unwrap();
            assert_eq!(
                registry.content(&file).await.unwrap(),
                Some(format!("{n}/3").into_bytes())
            );
        }
        assert!(bundles.len() >= acked_total, "{} bundles", bundles.len());
    }
}
