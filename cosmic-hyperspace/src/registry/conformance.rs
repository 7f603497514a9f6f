//! The conformance suite every [`Registry`] must pass (SPEC §14: the embedded store and
//! PostgreSQL are covered by the same tests).
//!
//! Written only against the trait. Each check takes a fresh, empty registry and returns
//! `Err(message)` on the first thing that is not as the trait documents;
//! [`registry_conformance_tests!`](crate::registry_conformance_tests) makes one test of each
//! for a store. [`survives_reopen`] is for implementations that can be closed and opened
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use cosmic_space::{
    Agent, CreateStrategy, Grant, GrantKind, Kind, Point, Properties, Property, PropertyChanges,
    Selector, StarKey, Status, Stub,
};

use super::{
    Entry, ParticleRecord, Registration, Registry, RegistryError, RegistryResult, may_apply,
};

/// What a check returns: `Err` says what was wrong.
pub type Outcome = Result<(), String>;

/// Returns `Err` from the check unless `$got == $want`.
macro_rules! check_eq {
    ($got:expr, $want:expr, $($what:tt)+) => {{
        let got = $got;
        let want = $want;
        if got != want {
            return Err(format!(
                "{}:\n  expected {:?}\n       got {:?}",
                format!($($what)+),
                want,
                got
            ));
        }
    }};
}

/// Generates one `#[tokio::test]` per conformance check, each named after its check and run
/// on a registry fresh from `$make` (a path to an `async fn() -> R` where `R: Registry`), so a
/// failure names its check and the checks run in parallel. The calling crate needs `tokio`
/// (with `macros` and `rt-multi-thread`).
///
/// ```ignore
/// async fn make() -> EmbeddedRegistry { /* a fresh, empty registry */ }
/// cosmic_hyperspace::registry_conformance_tests!(make);
/// ```
#[macro_export]
macro_rules! registry_conformance_tests {
    ($make:path) => {
        $crate::registry_conformance_tests!(
            @tests $make;
            register_and_record,
            parent_must_exist,
            commit_refuses_a_taken_point,
            ensure_accepts_the_same_kind_unchanged,
            override_replaces_unlocked_properties,
            register_all_is_ordered_and_stores_content,
            register_all_is_all_or_nothing,
            sequences_count_per_parent,
            line_hierarchy_and_lineage,
            status_and_location,
            set_properties_is_atomic_and_respects_locks,
            select_matches_points_and_kinds_in_order,
            children_are_direct_and_ordered,
            delete_refuses_children_unless_forced,
            chown_changes_owners_by_selector,
            grants_have_ids_never_reused,
            grants_on_a_point_leave_out_what_cannot_apply,
            tokens_name_their_agent,
            census_counts_by_base_kind,
            concurrent_registers_of_one_point_one_wins,
            concurrent_sequences_are_distinct,
            concurrent_writes_are_isolated,
            content_is_written_with_its_properties,
            key_values_are_kept_with_their_store,
            key_values_list_in_pages,
            key_values_apply_once_per_wave,
            key_values_hold_conditions_when_writes_race,
            subscriptions_are_listed_by_subscriber_then_selector,
            subscribing_again_replaces_the_agent,
            unsubscribe_says_whether_there_was_one,
            unsubscribe_all_takes_every_surface_of_a_point,
            delete_takes_the_subscriptions_of_what_it_deletes,
            subscriptions_made_together_are_each_kept,
        );
    };
    (@tests $make:path; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let registry = ::std::sync::Arc::new($make().await);
                if let Err(message) = $crate::registry::conformance::$check(registry).await {
                    panic!("{}: {}", stringify!($check), message);
                }
            }
        )*
    };
}

// ---- fixtures ----

fn point(text: &str) -> Result<Point, String> {
    text.parse()
        .map_err(|e| format!("fixture point '{text}': {e}"))
}

fn selector(text: &str) -> Result<Selector, String> {
    text.parse()
        .map_err(|e| format!("fixture selector '{text}': {e}"))
}

fn kind(text: &str) -> Result<Kind, String> {
    text.parse()
        .map_err(|e| format!("fixture kind '{text}': {e}"))
}

fn changes(text: &str) -> Result<PropertyChanges, String> {
    text.parse()
        .map_err(|e| format!("fixture properties '{text}': {e}"))
}

/// The agent that owns the fixtures unless a check says otherwise.
fn owner() -> Point {
    Point::hyperuser()
}

fn scott() -> Result<Point, String> {
    point("localhost:users:scott")
}

/// A `Commit` registration of `text` as a `kind`, owned by [`owner`], `Pending`.
fn registration(text: &str, kind_text: &str) -> Result<Registration, String> {
    Ok(Registration {
        point: point(text)?,
        kind: kind(kind_text)?,
        owner: owner(),
        properties: PropertyChanges::new(),
        strategy: CreateStrategy::Commit,
        status: Status::Pending,
    })
}

/// The record a fresh registration of `text` as a `kind` with `properties` must give.
fn expected(text: &str, kind_text: &str, properties: Properties) -> Result<ParticleRecord, String> {
    Ok(ParticleRecord {
        point: point(text)?,
        kind: kind(kind_text)?,
        status: Status::Pending,
        owner: owner(),
        properties,
        location: None,
    })
}

/// `Ok` of `result`, or a message saying what failed while `doing` what.
fn ok<T>(result: RegistryResult<T>, doing: impl fmt::Display) -> Result<T, String> {
    result.map_err(|e| format!("{doing}: unexpected error: {e} ({e:?})"))
}

/// `Ok(())` if `result` is exactly the error `want`.
fn refused<T: fmt::Debug>(
    result: RegistryResult<T>,
    want: RegistryError,
    doing: impl fmt::Display,
) -> Outcome {
    match result {
        Err(got) if got == want => Ok(()),
        Err(got) => Err(format!(
            "{doing}:\n  expected the error {want:?}\n       got the error {got:?}"
        )),
        Ok(value) => Err(format!(
            "{doing}:\n  expected the error {want:?}\n  but it succeeded with {value:?}"
        )),
    }
}

/// Registers `(point, kind)` pairs in order with [`registration`].
async fn register_each<R: Registry>(registry: &R, particles: &[(&str, &str)]) -> Outcome {
    for (text, kind_text) in particles {
        ok(
            registry.register(registration(text, kind_text)?).await,
            format!("registering {text}<{kind_text}>"),
        )?;
    }
    Ok(())
}

/// The tree most checks start from.
const COSMOS: &[(&str, &str)] = &[
    ("ROOT", "Root"),
    ("localhost", "Space"),
    ("localhost:app", "App"),
    ("localhost:app:echo", "Mechtron"),
    ("localhost:app:users", "UserBase"),
    ("localhost:app:users:scott", "User"),
    ("localhost:worker", "Mechtron"),
    ("other", "Space"),
    ("other:m", "Mechtron"),
];

async fn cosmos<R: Registry>(registry: &R) -> Outcome {
    register_each(registry, COSMOS).await
}

fn points(stubs: &[Stub]) -> Vec<String> {
    stubs.iter().map(|s| s.point.to_string()).collect()
}

// ---- checks ----

// The checks of data (after `check_eq!`, which they use).
mod content;
mod kv;
mod subscriptions;

pub use content::content_is_written_with_its_properties;
pub use kv::{
    key_values_apply_once_per_wave, key_values_are_kept_with_their_store,
    key_values_hold_conditions_when_writes_race, key_values_list_in_pages,
};
pub use subscriptions::{
    delete_takes_the_subscriptions_of_what_it_deletes, subscribing_again_replaces_the_agent,
    subscriptions_are_listed_by_subscriber_then_selector,
    subscriptions_made_together_are_each_kept, unsubscribe_all_takes_every_surface_of_a_point,
    unsubscribe_says_whether_there_was_one,
};

/// `register` stores what it is given (properties applied in order, `+@` locking, `!` of an
/// absent property a no-op) and returns it; `record` reads it back; a missing point is
/// `NotFound`.
pub async fn register_and_record<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(&*registry, &[("ROOT", "Root"), ("localhost", "Space")]).await?;
    let mut app = registration("localhost:app", "App")?;
    app.properties = changes("{ +config=a, +@bind=b, !absent }")?;
    app.owner = scott()?;
    app.status = Status::Init;
    let stored = ok(registry.register(app).await, "registering localhost:app")?;
    let mut want = expected(
        "localhost:app",
        "App",
        [
            ("bind", Property::locked("b")),
            ("config", Property::new("a")),
        ]
        .into_iter()
        .collect(),
    )?;
    want.owner = scott()?;
    want.status = Status::Init;
    check_eq!(&stored, &want, "the record register returns");
    let read = ok(
        registry.record(&point("localhost:app")?).await,
        "reading localhost:app",
    )?;
    check_eq!(&read, &want, "the record read back");
    check_eq!(
        ok(registry.record(&Point::root()).await, "reading ROOT")?,
        expected("ROOT", "Root", Properties::new())?,
        "ROOT's record"
    );
    refused(
        registry.record(&point("localhost:nothing")?).await,
        RegistryError::NotFound(point("localhost:nothing")?),
        "reading a point never registered",
    )
}

/// A particle needs its parent; `ROOT` needs none.
pub async fn parent_must_exist<R: Registry>(registry: Arc<R>) -> Outcome {
    refused(
        registry.register(registration("localhost", "Space")?).await,
        RegistryError::NoParent {
            point: point("localhost")?,
            parent: Point::root(),
        },
        "registering a space before ROOT",
    )?;
    register_each(&*registry, &[("ROOT", "Root"), ("localhost", "Space")]).await?;
    refused(
        registry
            .register(registration("localhost:app:echo", "Mechtron")?)
            .await,
        RegistryError::NoParent {
            point: point("localhost:app:echo")?,
            parent: point("localhost:app")?,
        },
        "registering below a missing parent",
    )?;
    refused(
        registry.record(&point("localhost:app:echo")?).await,
        RegistryError::NotFound(point("localhost:app:echo")?),
        "the refused particle is not registered",
    )
}

/// `Commit` refuses a point that is taken and changes nothing.
pub async fn commit_refuses_a_taken_point<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(&*registry, &[("ROOT", "Root"), ("localhost", "Space")]).await?;
    let before = ok(registry.record(&point("localhost")?).await, "reading")?;
    let mut again = registration("localhost", "Space")?;
    again.properties = changes("{ +x=1 }")?;
    refused(
        registry.register(again).await,
        RegistryError::AlreadyExists(point("localhost")?),
        "registering localhost twice",
    )?;
    refused(
        registry.register(registration("localhost", "Base")?).await,
        RegistryError::AlreadyExists(point("localhost")?),
        "registering localhost again as another kind",
    )?;
    check_eq!(
        ok(registry.record(&point("localhost")?).await, "reading")?,
        before,
        "the record after refused registrations"
    );
    Ok(())
}

/// `Ensure` registers a missing particle, accepts an existing one of the same kind unchanged
/// and refuses one of another kind.
pub async fn ensure_accepts_the_same_kind_unchanged<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(&*registry, &[("ROOT", "Root")]).await?;
    let mut first = registration("localhost", "Space")?;
    first.strategy = CreateStrategy::Ensure;
    first.properties = changes("{ +a=1 }")?;
    let created = ok(registry.register(first).await, "ensuring a missing space")?;
    check_eq!(
        &created,
        &expected(
            "localhost",
            "Space",
            [("a", Property::new("1"))].into_iter().collect()
        )?,
        "the record an Ensure of a missing point creates"
    );
    let mut second = registration("localhost", "Space")?;
    second.strategy = CreateStrategy::Ensure;
    second.properties = changes("{ +a=2, +b=3 }")?;
    second.owner = scott()?;
    check_eq!(
        ok(
            registry.register(second).await,
            "ensuring an existing space"
        )?,
        created.clone(),
        "an Ensure of an existing particle returns it unchanged"
    );
    check_eq!(
        ok(registry.record(&point("localhost")?).await, "reading")?,
        created,
        "the record after Ensure"
    );
    let mut wrong = registration("localhost", "Base")?;
    wrong.strategy = CreateStrategy::Ensure;
    refused(
        registry.register(wrong).await,
        RegistryError::KindMismatch {
            point: point("localhost")?,
            existing: Box::new(Kind::Space),
            requested: Box::new(Kind::Base),
        },
        "ensuring an existing space as a Base",
    )
}

/// `Override` keeps the locked properties, replaces the others with the new ones (and keeps
/// owner, status and location), refuses a change to a locked one, and refuses another kind.
pub async fn override_replaces_unlocked_properties<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(&*registry, &[("ROOT", "Root"), ("localhost", "Space")]).await?;
    let app = point("localhost:app")?;
    let mut first = registration("localhost:app", "App")?;
    first.strategy = CreateStrategy::Override;
    first.properties = changes("{ +config=a, +@bind=b, +old=x }")?;
    first.owner = scott()?;
    ok(registry.register(first).await, "overriding a missing app")?;
    ok(
        registry.set_status(&app, Status::Ready).await,
        "setting the status",
    )?;
    let star = StarKey::new("central", "fold", 1).map_err(|e| e.to_string())?;
    ok(
        registry.set_location(&app, star.clone()).await,
        "setting the location",
    )?;

    let mut second = registration("localhost:app", "App")?;
    second.strategy = CreateStrategy::Override;
    second.properties = changes("{ +config=c, +new=y, +bind=b }")?;
    let overridden = ok(registry.register(second).await, "overriding the app")?;
    let want = ParticleRecord {
        point: app.clone(),
        kind: Kind::App,
        status: Status::Ready,
        owner: scott()?,
        properties: [
            ("bind", Property::locked("b")),
            ("config", Property::new("c")),
            ("new", Property::new("y")),
        ]
        .into_iter()
        .collect(),
        location: Some(star),
    };
    check_eq!(&overridden, &want, "the record an Override returns");
    check_eq!(
        ok(registry.record(&app).await, "reading")?,
        want.clone(),
        "the record after Override"
    );

    let mut locked = registration("localhost:app", "App")?;
    locked.strategy = CreateStrategy::Override;
    locked.properties = changes("{ +config=d, +bind=other }")?;
    refused(
        registry.register(locked).await,
        RegistryError::PropertyLocked {
            point: app.clone(),
            name: "bind".to_string(),
        },
        "overriding a locked property",
    )?;
    let mut removing = registration("localhost:app", "App")?;
    removing.strategy = CreateStrategy::Override;
    removing.properties = changes("{ !bind }")?;
    refused(
        registry.register(removing).await,
        RegistryError::PropertyLocked {
            point: app.clone(),
            name: "bind".to_string(),
        },
        "removing a locked property by Override",
    )?;
    check_eq!(
        ok(registry.record(&app).await, "reading")?,
        want,
        "the record after refused Overrides"
    );
    let mut wrong = registration("localhost:app", "Mechtron")?;
    wrong.strategy = CreateStrategy::Override;
    refused(
        registry.register(wrong).await,
        RegistryError::KindMismatch {
            point: app,
            existing: Box::new(Kind::App),
            requested: Box::new(Kind::Mechtron),
        },
        "overriding an App as a Mechtron",
    )
}

/// A bundle: the entries of one `register_all`, parents before children, with content.
fn bundle(version: &str) -> Result<Vec<Entry>, String> {
    let root = format!("repo:hello:{version}");
    let entry = |text: String, kind_text: &str, content: Option<&[u8]>| -> Result<Entry, String> {
        Ok(Entry {
            registration: registration(&text, kind_text)?,
            content: content.map(<[u8]>::to_vec),
        })
    };
    Ok(vec![
        entry(root.clone(), "Bundle", None)?,
        entry(format!("{root}:/"), "Artifact<Dir>", None)?,
        entry(format!("{root}:/wasm/"), "Artifact<Dir>", None)?,
        entry(
            format!("{root}:/wasm/hello.wasm"),
            "Artifact<Wasm>",
            Some(b"\0asm wasm bytes"),
        )?,
        entry(format!("{root}:/bind/"), "Artifact<Dir>", None)?,
        entry(
            format!("{root}:/bind/hello.bind"),
            "Artifact<Bind>",
            Some(b"Bind(version=1.0.0) { }"),
        )?,
    ])
}

/// `register_all` registers in order (a parent before its children), returns the records in
/// order and stores each entry's content; `content` reads it back, `None` for a particle
/// without.
pub async fn register_all_is_ordered_and_stores_content<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(
        &*registry,
        &[
            ("ROOT", "Root"),
            ("repo", "Space"),
            ("repo:hello", "BundleSeries"),
        ],
    )
    .await?;
    check_eq!(
        ok(
            registry.register_all(Vec::new()).await,
            "registering nothing"
        )?,
        Vec::<ParticleRecord>::new(),
        "register_all of no entries"
    );
    let entries = bundle("1.0.0")?;
    let want_points: Vec<String> = entries
        .iter()
        .map(|e| e.registration.point.to_string())
        .collect();
    let records = ok(registry.register_all(entries).await, "registering a bundle")?;
    check_eq!(
        records
            .iter()
            .map(|r| r.point.to_string())
            .collect::<Vec<_>>(),
        want_points,
        "the records register_all returns, in order"
    );
    check_eq!(
        &records[3],
        &expected(
            "repo:hello:1.0.0:/wasm/hello.wasm",
            "Artifact<Wasm>",
            Properties::new()
        )?,
        "the wasm artifact's record"
    );
    let wasm = point("repo:hello:1.0.0:/wasm/hello.wasm")?;
    check_eq!(
        ok(registry.content(&wasm).await, "reading the wasm content")?,
        Some(b"\0asm wasm bytes".to_vec()),
        "the wasm artifact's content"
    );
    check_eq!(
        ok(
            registry.content(&point("repo:hello:1.0.0:/wasm/")?).await,
            "reading a directory's content"
        )?,
        None,
        "the content of a particle registered without any"
    );
    refused(
        registry.content(&point("repo:hello:2.0.0")?).await,
        RegistryError::NotFound(point("repo:hello:2.0.0")?),
        "reading the content of a missing particle",
    )?;

    // Ensure leaves content as it is; Override replaces it when given.
    let mut ensure = Entry {
        registration: registration("repo:hello:1.0.0:/wasm/hello.wasm", "Artifact<Wasm>")?,
        content: Some(b"ignored".to_vec()),
    };
    ensure.registration.strategy = CreateStrategy::Ensure;
    ok(
        registry.register_all(vec![ensure]).await,
        "ensuring the wasm",
    )?;
    check_eq!(
        ok(registry.content(&wasm).await, "reading the wasm content")?,
        Some(b"\0asm wasm bytes".to_vec()),
        "content after an Ensure"
    );
    let mut replace = Entry {
        registration: registration("repo:hello:1.0.0:/wasm/hello.wasm", "Artifact<Wasm>")?,
        content: Some(b"new bytes".to_vec()),
    };
    replace.registration.strategy = CreateStrategy::Override;
    ok(
        registry.register_all(vec![replace]).await,
        "overriding the wasm",
    )?;
    check_eq!(
        ok(registry.content(&wasm).await, "reading the wasm content")?,
        Some(b"new bytes".to_vec()),
        "content after an Override with new content"
    );
    Ok(())
}

/// A refusal anywhere in `register_all` leaves the registry as it was: no record, no
/// content.
pub async fn register_all_is_all_or_nothing<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(
        &*registry,
        &[
            ("ROOT", "Root"),
            ("repo", "Space"),
            ("repo:hello", "BundleSeries"),
            ("repo:hello:0.1.0", "Bundle"),
        ],
    )
    .await?;
    let census = ok(registry.census().await, "census")?;

    // The last entry is taken.
    let mut entries = bundle("1.0.0")?;
    entries.push(Entry {
        registration: registration("repo:hello:0.1.0", "Bundle")?,
        content: None,
    });
    refused(
        registry.register_all(entries).await,
        RegistryError::AlreadyExists(point("repo:hello:0.1.0")?),
        "a bundle whose last entry is taken",
    )?;
    // An entry in the middle has no parent.
    let mut entries = bundle("1.0.0")?;
    entries.insert(
        3,
        Entry {
            registration: registration("repo:hello:1.0.0:/missing/x.txt", "Artifact<Raw>")?,
            content: Some(b"x".to_vec()),
        },
    );
    refused(
        registry.register_all(entries).await,
        RegistryError::NoParent {
            point: point("repo:hello:1.0.0:/missing/x.txt")?,
            parent: point("repo:hello:1.0.0:/missing/")?,
        },
        "a bundle with an entry whose parent is missing",
    )?;
    // The same point twice.
    let mut entries = bundle("1.0.0")?;
    entries.extend(bundle("1.0.0")?.into_iter().skip(3).take(1));
    refused(
        registry.register_all(entries).await,
        RegistryError::AlreadyExists(point("repo:hello:1.0.0:/wasm/hello.wasm")?),
        "a bundle with one point twice",
    )?;
    // A locked property in an Override.
    let mut locked = registration("repo:hello:0.1.0", "Bundle")?;
    locked.strategy = CreateStrategy::Override;
    locked.properties = changes("{ +@sealed=yes }")?;
    ok(registry.register(locked).await, "locking a property")?;
    let mut entries = bundle("1.0.0")?;
    let mut change = registration("repo:hello:0.1.0", "Bundle")?;
    change.strategy = CreateStrategy::Override;
    change.properties = changes("{ +sealed=no }")?;
    entries.push(Entry {
        registration: change,
        content: None,
    });
    refused(
        registry.register_all(entries).await,
        RegistryError::PropertyLocked {
            point: point("repo:hello:0.1.0")?,
            name: "sealed".to_string(),
        },
        "a bundle that changes a locked property",
    )?;

    for text in [
        "repo:hello:1.0.0",
        "repo:hello:1.0.0:/",
        "repo:hello:1.0.0:/wasm/hello.wasm",
    ] {
        refused(
            registry.record(&point(text)?).await,
            RegistryError::NotFound(point(text)?),
            format!("{text} after refused bundles"),
        )?;
    }
    check_eq!(
        ok(registry.census().await, "census")?,
        census,
        "the census after refused bundles"
    );
    check_eq!(
        ok(
            registry.record(&point("repo:hello:0.1.0")?).await,
            "reading"
        )?
        .properties
        .value("sealed")
        .map(str::to_string),
        Some("yes".to_string()),
        "the locked property after a refused bundle"
    );
    // And the same bundle, valid, goes in whole.
    ok(
        registry.register_all(bundle("1.0.0")?).await,
        "the valid bundle",
    )?;
    check_eq!(
        ok(
            registry
                .content(&point("repo:hello:1.0.0:/wasm/hello.wasm")?)
                .await,
            "reading the wasm"
        )?,
        Some(b"\0asm wasm bytes".to_vec()),
        "the content of the valid bundle"
    );
    Ok(())
}

/// Each parent counts its own sequence from 1; a missing parent is `NotFound`; a deleted and
/// re-registered parent never hands out a number twice.
pub async fn sequences_count_per_parent<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(
        &*registry,
        &[("ROOT", "Root"), ("localhost", "Space"), ("other", "Space")],
    )
    .await?;
    let localhost = point("localhost")?;
    let other = point("other")?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(ok(
            registry.next_sequence(&localhost).await,
            "next_sequence",
        )?);
    }
    check_eq!(got, vec![1, 2, 3], "localhost's sequence");
    check_eq!(
        ok(registry.next_sequence(&other).await, "next_sequence")?,
        1,
        "another parent's sequence"
    );
    refused(
        registry.next_sequence(&point("nowhere")?).await,
        RegistryError::NotFound(point("nowhere")?),
        "the sequence of a missing parent",
    )?;
    ok(registry.delete(&other, false).await, "deleting other")?;
    register_each(&*registry, &[("other", "Space")]).await?;
    let again = ok(registry.next_sequence(&other).await, "next_sequence")?;
    if again == 1 {
        return Err("a re-registered parent handed out 1 again".to_string());
    }
    Ok(())
}

/// `line` gives the records from `ROOT` down; `hierarchy` the kinds of the segments (empty for
/// `ROOT`); `lineage` the hierarchy and every owner from `ROOT`'s down.
pub async fn line_hierarchy_and_lineage<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let echo = point("localhost:app:echo")?;
    ok(
        registry.chown(&selector("localhost:app")?, &scott()?).await,
        "chown",
    )?;
    let line = ok(registry.line(&echo).await, "line")?;
    check_eq!(
        line.iter().map(|r| r.point.to_string()).collect::<Vec<_>>(),
        vec!["ROOT", "localhost", "localhost:app", "localhost:app:echo"],
        "the points of the line"
    );
    check_eq!(
        &line[3],
        &ok(registry.record(&echo).await, "record")?,
        "the line's last record"
    );
    let hierarchy = ok(registry.hierarchy(&echo).await, "hierarchy")?;
    check_eq!(hierarchy.point(), &echo, "the hierarchy's point");
    check_eq!(
        hierarchy.kinds(),
        &[Kind::Space, Kind::App, Kind::Mechtron][..],
        "the hierarchy's kinds"
    );
    let root = ok(registry.hierarchy(&Point::root()).await, "ROOT's hierarchy")?;
    check_eq!(root.kinds().len(), 0, "ROOT's hierarchy has no kinds");
    check_eq!(root.point(), &Point::root(), "ROOT's hierarchy's point");
    let lineage = ok(registry.lineage(&echo).await, "lineage")?;
    check_eq!(lineage.hierarchy(), &hierarchy, "the lineage's hierarchy");
    check_eq!(
        lineage.owners(),
        &[owner(), owner(), scott()?, owner()][..],
        "the lineage's owners"
    );
    check_eq!(
        ok(registry.lineage(&Point::root()).await, "ROOT's lineage")?
            .owners()
            .to_vec(),
        vec![owner()],
        "ROOT's lineage"
    );
    let missing = point("localhost:app:nothing")?;
    refused(
        registry.line(&missing).await,
        RegistryError::NotFound(missing.clone()),
        "the line of a missing point",
    )?;
    refused(
        registry.hierarchy(&missing).await,
        RegistryError::NotFound(missing.clone()),
        "the hierarchy of a missing point",
    )?;
    refused(
        registry.lineage(&missing).await,
        RegistryError::NotFound(missing),
        "the lineage of a missing point",
    )
}

/// `set_status` and `set_location` change only what they name; a missing point is
/// `NotFound`.
pub async fn status_and_location<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let echo = point("localhost:app:echo")?;
    let before = ok(registry.record(&echo).await, "record")?;
    let failed = Status::Panic("out of fuel (again)".to_string());
    ok(registry.set_status(&echo, failed.clone()).await, "status")?;
    let star = StarKey::new("central", "fold", 3).map_err(|e| e.to_string())?;
    ok(registry.set_location(&echo, star.clone()).await, "location")?;
    let mut want = before;
    want.status = failed;
    want.location = Some(star.clone());
    check_eq!(
        ok(registry.record(&echo).await, "record")?,
        want,
        "the record after set_status and set_location"
    );
    let missing = point("localhost:gone")?;
    refused(
        registry.set_status(&missing, Status::Ready).await,
        RegistryError::NotFound(missing.clone()),
        "the status of a missing point",
    )?;
    refused(
        registry.set_location(&missing, star).await,
        RegistryError::NotFound(missing),
        "the location of a missing point",
    )
}

/// `set_properties` applies all its changes or none: any change to a locked property refuses
/// them all; setting a locked property to its own value is no change.
pub async fn set_properties_is_atomic_and_respects_locks<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let app = point("localhost:app")?;
    let after = ok(
        registry
            .set_properties(&app, &changes("{ +a=1, +@b=2, !c }")?)
            .await,
        "setting a and locking b",
    )?;
    let want: Properties = [("a", Property::new("1")), ("b", Property::locked("2"))]
        .into_iter()
        .collect();
    check_eq!(&after, &want, "the properties set_properties returns");
    for text in ["{ +a=3, +b=9 }", "{ +a=3, !b }", "{ +a=3, +@b=9 }"] {
        refused(
            registry.set_properties(&app, &changes(text)?).await,
            RegistryError::PropertyLocked {
                point: app.clone(),
                name: "b".to_string(),
            },
            format!("set {text} with b locked"),
        )?;
        check_eq!(
            ok(registry.record(&app).await, "record")?.properties,
            want.clone(),
            "the properties after refused set {}",
            text
        );
    }
    let after = ok(
        registry
            .set_properties(&app, &changes("{ +b=2, !a, +d=4 }")?)
            .await,
        "setting b to its own value",
    )?;
    let want: Properties = [("b", Property::locked("2")), ("d", Property::new("4"))]
        .into_iter()
        .collect();
    check_eq!(&after, &want, "the properties after a change that keeps b");
    check_eq!(
        ok(registry.record(&app).await, "record")?.properties,
        want,
        "the stored properties"
    );
    let missing = point("localhost:gone")?;
    refused(
        registry
            .set_properties(&missing, &changes("{ +a=1 }")?)
            .await,
        RegistryError::NotFound(missing),
        "setting properties of a missing point",
    )
}

/// `select` matches points and kinds (ancestors' kinds included) and answers stubs in point
/// order.
pub async fn select_matches_points_and_kinds_in_order<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    ok(
        registry
            .set_status(&point("localhost:worker")?, Status::Ready)
            .await,
        "status",
    )?;
    let mechtrons = ok(registry.select(&selector("**<Mechtron>")?).await, "select")?;
    check_eq!(
        &mechtrons,
        &vec![
            Stub {
                point: point("localhost:app:echo")?,
                kind: Kind::Mechtron,
                status: Status::Pending
            },
            Stub {
                point: point("localhost:worker")?,
                kind: Kind::Mechtron,
                status: Status::Ready
            },
            Stub {
                point: point("other:m")?,
                kind: Kind::Mechtron,
                status: Status::Pending
            },
        ],
        "select **<Mechtron>"
    );
    let cases: &[(&str, &[&str])] = &[
        (
            "localhost:**<Mechtron>",
            &["localhost:app:echo", "localhost:worker"],
        ),
        (
            "localhost:**",
            &[
                "localhost:app",
                "localhost:app:echo",
                "localhost:app:users",
                "localhost:app:users:scott",
                "localhost:worker",
            ],
        ),
        (
            "localhost+:*",
            &["localhost", "localhost:app", "localhost:worker"],
        ),
        ("*", &["localhost", "other"]),
        ("**<App>:*<Mechtron>", &["localhost:app:echo"]),
        ("localhost:*<App>:**<User>", &["localhost:app:users:scott"]),
        ("**<UserBase<*>>:*", &["localhost:app:users:scott"]),
        ("*<Space>:*<Mechtron>", &["localhost:worker", "other:m"]),
        ("localhost:app", &["localhost:app"]),
        ("localhost:app:**<App>", &[]),
        ("nowhere:**", &[]),
        ("other:m:**", &[]),
    ];
    for (text, want) in cases {
        let got = ok(
            registry.select(&selector(text)?).await,
            format!("select {text}"),
        )?;
        check_eq!(points(&got), want.to_vec(), "select {}", text);
    }
    let everything = ok(registry.select(&selector("**")?).await, "select **")?;
    let mut want: Vec<Point> = COSMOS
        .iter()
        .skip(1)
        .map(|(text, _)| point(text))
        .collect::<Result<_, _>>()?;
    want.sort();
    check_eq!(
        everything
            .iter()
            .map(|s| s.point.clone())
            .collect::<Vec<_>>(),
        want,
        "select ** (every point but ROOT, in point order)"
    );
    Ok(())
}

/// `children` lists direct children only, in point order; a missing point is `NotFound`.
pub async fn children_are_direct_and_ordered<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let app = ok(
        registry.children(&point("localhost:app")?).await,
        "children",
    )?;
    check_eq!(
        points(&app),
        vec!["localhost:app:echo", "localhost:app:users"],
        "the children of localhost:app"
    );
    check_eq!(
        app.first().map(|s| s.kind.clone()),
        Some(Kind::Mechtron),
        "a child's kind"
    );
    let root = ok(registry.children(&Point::root()).await, "children")?;
    check_eq!(points(&root), vec!["localhost", "other"], "ROOT's children");
    check_eq!(
        ok(registry.children(&point("other:m")?).await, "children")?.len(),
        0,
        "a leaf's children"
    );
    refused(
        registry.children(&point("localhost:gone")?).await,
        RegistryError::NotFound(point("localhost:gone")?),
        "the children of a missing point",
    )
}

/// `delete` refuses a particle with children (saying how many) unless forced; forced, it
/// deletes the subtree deepest first, content included, and keeps grants.
pub async fn delete_refuses_children_unless_forced<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let file = Entry {
        registration: registration("localhost:app:echo:/", "Artifact<Dir>")?,
        content: None,
    };
    let data = Entry {
        registration: registration("localhost:app:echo:/data.txt", "Artifact<Raw>")?,
        content: Some(b"data".to_vec()),
    };
    ok(registry.register_all(vec![file, data]).await, "content")?;
    let grant = ok(
        registry
            .grant(
                GrantKind::Super,
                selector("localhost:app:**")?,
                selector("localhost:users:scott")?,
                owner(),
            )
            .await,
        "grant",
    )?;
    let app = point("localhost:app")?;
    refused(
        registry.delete(&app, false).await,
        RegistryError::HasChildren {
            point: app.clone(),
            children: 2,
        },
        "deleting localhost:app without force",
    )?;
    check_eq!(
        ok(
            registry.select(&selector("localhost:app+:**")?).await,
            "select"
        )?
        .len(),
        6,
        "nothing is deleted by a refused delete"
    );
    check_eq!(
        ok(
            registry.delete(&point("other:m")?, false).await,
            "deleting a leaf"
        )?,
        vec![point("other:m")?],
        "the points a leaf's delete returns"
    );
    let deleted = ok(registry.delete(&app, true).await, "delete!")?;
    check_eq!(
        deleted.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            "localhost:app:echo:/data.txt",
            "localhost:app:echo:/",
            "localhost:app:users:scott",
            "localhost:app:echo",
            "localhost:app:users",
            "localhost:app",
        ],
        "the points delete! returns, deepest first"
    );
    for gone in &deleted {
        refused(
            registry.record(gone).await,
            RegistryError::NotFound(gone.clone()),
            format!("{gone} after delete!"),
        )?;
    }
    check_eq!(
        ok(registry.grants().await, "grants")?,
        vec![grant],
        "grants after delete!"
    );
    refused(
        registry.delete(&app, true).await,
        RegistryError::NotFound(app.clone()),
        "deleting a deleted point",
    )?;
    // The point can be registered again, without the old content.
    register_each(
        &*registry,
        &[
            ("localhost:app", "App"),
            ("localhost:app:echo", "Mechtron"),
            ("localhost:app:echo:/", "Artifact<Dir>"),
            ("localhost:app:echo:/data.txt", "Artifact<Raw>"),
        ],
    )
    .await?;
    check_eq!(
        ok(
            registry
                .content(&point("localhost:app:echo:/data.txt")?)
                .await,
            "content"
        )?,
        None,
        "the content of a re-registered artifact"
    );
    Ok(())
}

/// `chown` sets the owner of every particle the selector matches and says how many.
pub async fn chown_changes_owners_by_selector<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(&*registry).await?;
    let scott = scott()?;
    check_eq!(
        ok(
            registry
                .chown(&selector("localhost:app+:**")?, &scott)
                .await,
            "chown"
        )?,
        4,
        "how many particles chown changed"
    );
    for (text, _) in COSMOS {
        let record = ok(registry.record(&point(text)?).await, "record")?;
        let want = if text.starts_with("localhost:app") {
            scott.clone()
        } else {
            owner()
        };
        check_eq!(record.owner, want, "the owner of {}", text);
    }
    check_eq!(
        ok(
            registry.chown(&selector("**<Mechtron>")?, &scott).await,
            "chown by kind"
        )?,
        3,
        "chown by kind"
    );
    check_eq!(
        ok(registry.record(&point("other:m")?).await, "record")?.owner,
        scott.clone(),
        "the owner after chown by kind"
    );
    check_eq!(
        ok(
            registry.chown(&selector("nowhere:**")?, &scott).await,
            "chown"
        )?,
        0,
        "chown matching nothing"
    );
    Ok(())
}

/// `grants_on` keeps every grant whose `on` may match the point or an ancestor — wildcards
/// from the first hop, the point's Space, app or the point itself, an inclusive hop — in id
/// order, and leaves out grants under other Spaces, apps or siblings.
pub async fn grants_on_a_point_leave_out_what_cannot_apply<R: Registry>(
    registry: Arc<R>,
) -> Outcome {
    let kind: GrantKind = "+csd-Rwx".parse().map_err(|e| format!("grant kind: {e}"))?;
    let ons = [
        ("**", true),
        ("*:app:**", true),
        ("localhost:app:**", true),
        ("localhost+:**", true),
        ("localhost:app:users:scott", true),
        ("localhost:app:users:scott:**", true),
        ("localhost:app:users:scott:notes:/**", false),
        ("localhost:other:**", false),
        ("localhost:app:users:mary", false),
        ("localhost:app:users:scott:notes:/docs/**", false),
        ("example.com:app:**", false),
    ];
    let mut applying = Vec::new();
    for (on, applies) in ons {
        let grant = ok(
            registry
                .grant(kind.clone(), selector(on)?, selector("**")?, owner())
                .await,
            "grant",
        )?;
        if applies {
            applying.push(grant);
        }
    }
    let all = ok(registry.grants().await, "grants")?;
    let target = point("localhost:app:users:scott")?;
    let got = ok(registry.grants_on(&target).await, "grants_on")?;
    check_eq!(
        got.iter().map(|g| g.on.to_string()).collect::<Vec<_>>(),
        applying
            .iter()
            .map(|g| g.on.to_string())
            .collect::<Vec<_>>(),
        "the grants on {target}"
    );
    for grant in all.iter().filter(|g| !got.contains(g)) {
        if may_apply(grant, &target) {
            return Err(format!("grants_on left out {}, which may apply", grant.on));
        }
    }
    Ok(())
}

/// Grants get increasing ids that are never reused; `grants` lists them in id order;
/// `revoke` removes one and returns it; an unknown id is `NoSuchGrant`.
pub async fn grants_have_ids_never_reused<R: Registry>(registry: Arc<R>) -> Outcome {
    let kinds: Vec<GrantKind> = ["Super", "+cSd-RwX", "property:email:read"]
        .into_iter()
        .map(|text| text.parse().map_err(|e| format!("grant kind {text}: {e}")))
        .collect::<Result<_, _>>()?;
    let mut made: Vec<Grant> = Vec::new();
    for (n, grant_kind) in kinds.iter().enumerate() {
        let grant = ok(
            registry
                .grant(
                    grant_kind.clone(),
                    selector(&format!("localhost:app{n}:**"))?,
                    selector("localhost:users:*<User>")?,
                    scott()?,
                )
                .await,
            "grant",
        )?;
        check_eq!(
            (&grant.kind, &grant.by, grant.on.to_string()),
            (grant_kind, &scott()?, format!("localhost:app{n}:**")),
            "the grant returned"
        );
        if let Some(last) = made.last()
            && grant.id <= last.id
        {
            return Err(format!(
                "grant ids must increase: {} came after {}",
                grant.id, last.id
            ));
        }
        made.push(grant);
    }
    check_eq!(
        ok(registry.grants().await, "grants")?,
        made.clone(),
        "the grants, in id order"
    );
    let first = made.remove(0);
    check_eq!(
        ok(registry.revoke(first.id).await, "revoke")?,
        first.clone(),
        "the grant revoke returns"
    );
    check_eq!(
        ok(registry.grants().await, "grants")?,
        made.clone(),
        "the grants after revoke"
    );
    refused(
        registry.revoke(first.id).await,
        RegistryError::NoSuchGrant(first.id),
        "revoking a revoked grant",
    )?;
    refused(
        registry.revoke(u64::MAX).await,
        RegistryError::NoSuchGrant(u64::MAX),
        "revoking an unknown grant",
    )?;
    let last = made.last().map_or(first.id, |g| g.id);
    ok(registry.revoke(last).await, "revoking the newest grant")?;
    let newer = ok(
        registry
            .grant(
                GrantKind::Super,
                selector("localhost:**")?,
                selector("localhost:users:admin")?,
                owner(),
            )
            .await,
        "grant",
    )?;
    if newer.id <= last {
        return Err(format!(
            "a revoked grant's id was reused: new grant {} after revoked {last}",
            newer.id
        ));
    }
    Ok(())
}

/// A stored token names its agent (the last one it was stored for); an unknown token names
/// none.
pub async fn tokens_name_their_agent<R: Registry>(registry: Arc<R>) -> Outcome {
    ok(
        registry
            .store_token("tok-scott-0123456789", &scott()?)
            .await,
        "store_token",
    )?;
    ok(
        registry
            .store_token("tok-hyper-9876543210", &Point::hyperuser())
            .await,
        "store_token",
    )?;
    check_eq!(
        ok(registry.token_agent("tok-scott-0123456789").await, "token")?,
        Some(scott()?),
        "scott's token"
    );
    check_eq!(
        ok(registry.token_agent("tok-hyper-9876543210").await, "token")?,
        Some(Point::hyperuser()),
        "the hyperuser's token"
    );
    check_eq!(
        ok(registry.token_agent("tok-scott-012345678").await, "token")?,
        None,
        "an unknown token"
    );
    check_eq!(
        ok(registry.token_agent("").await, "token")?,
        None,
        "the empty token"
    );
    ok(
        registry
            .store_token("tok-scott-0123456789", &Point::anonymous())
            .await,
        "storing a token again",
    )?;
    check_eq!(
        ok(registry.token_agent("tok-scott-0123456789").await, "token")?,
        Some(Point::anonymous()),
        "a token stored again names its new agent"
    );
    Ok(())
}

/// `census` counts the particles of each base kind.
pub async fn census_counts_by_base_kind<R: Registry>(registry: Arc<R>) -> Outcome {
    check_eq!(
        ok(registry.census().await, "census")?,
        BTreeMap::new(),
        "the census of an empty registry"
    );
    cosmos(&*registry).await?;
    ok(
        registry
            .register_all(vec![
                Entry {
                    registration: registration("other:m:/", "Artifact<Dir>")?,
                    content: None,
                },
                Entry {
                    registration: registration("other:m:/a.wasm", "Artifact<Wasm>")?,
                    content: Some(vec![1]),
                },
            ])
            .await,
        "artifacts",
    )?;
    let want: BTreeMap<String, u64> = [
        ("App", 1),
        ("Artifact", 2),
        ("Mechtron", 3),
        ("Root", 1),
        ("Space", 2),
        ("User", 1),
        ("UserBase", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    check_eq!(ok(registry.census().await, "census")?, want, "the census");
    ok(registry.delete(&point("other")?, true).await, "delete!")?;
    let want: BTreeMap<String, u64> = [
        ("App", 1),
        ("Mechtron", 2),
        ("Root", 1),
        ("Space", 1),
        ("User", 1),
        ("UserBase", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    check_eq!(
        ok(registry.census().await, "census")?,
        want,
        "the census after delete!"
    );
    Ok(())
}

/// Many concurrent `Commit` registrations of one point: exactly one wins, the others are
/// `AlreadyExists`; concurrent `Ensure`s all get the same record.
pub async fn concurrent_registers_of_one_point_one_wins<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(&*registry, &[("ROOT", "Root"), ("localhost", "Space")]).await?;
    let contested = point("localhost:contested")?;
    let mut tasks = Vec::new();
    for n in 0..32 {
        let registry = Arc::clone(&registry);
        let mut registration = registration("localhost:contested", "App")?;
        registration.properties = changes(&format!("{{ +n={n} }}"))?;
        tasks.push(tokio::spawn(async move {
            registry.register(registration).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task
            .await
            .map_err(|e| format!("a register task failed: {e}"))?
        {
            Ok(record) => winners.push(record),
            Err(RegistryError::AlreadyExists(p)) if p == contested => {}
            Err(other) => return Err(format!("a contested register failed with {other:?}")),
        }
    }
    check_eq!(winners.len(), 1, "how many contested registrations won");
    check_eq!(
        ok(registry.record(&contested).await, "record")?,
        winners.remove(0),
        "the stored record is the winner's"
    );

    let mut tasks = Vec::new();
    for _ in 0..16 {
        let registry = Arc::clone(&registry);
        let mut registration = registration("localhost:ensured", "App")?;
        registration.strategy = CreateStrategy::Ensure;
        tasks.push(tokio::spawn(async move {
            registry.register(registration).await
        }));
    }
    let mut records = BTreeSet::new();
    for task in tasks {
        let record = task
            .await
            .map_err(|e| format!("an Ensure task failed: {e}"))?;
        records.insert(format!("{:?}", ok(record, "concurrent Ensure")?));
    }
    check_eq!(records.len(), 1, "distinct records from concurrent Ensures");
    Ok(())
}

/// Many concurrent creates under one parent with sequence numbers: every number distinct,
/// every particle registered.
pub async fn concurrent_sequences_are_distinct<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(
        &*registry,
        &[
            ("ROOT", "Root"),
            ("localhost", "Space"),
            ("localhost:app", "App"),
        ],
    )
    .await?;
    let parent = point("localhost:app")?;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let registry = Arc::clone(&registry);
        let parent = parent.clone();
        tasks.push(tokio::spawn(async move {
            let n = registry.next_sequence(&parent).await?;
            let worker = parent
                .push_base(&format!("worker-{n}"))
                .map_err(|e| RegistryError::Storage(e.to_string()))?;
            registry
                .register(Registration {
                    point: worker,
                    kind: Kind::Mechtron,
                    owner: owner(),
                    properties: PropertyChanges::new(),
                    strategy: CreateStrategy::Commit,
                    status: Status::Pending,
                })
                .await?;
            Ok::<u64, RegistryError>(n)
        }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        let n = task
            .await
            .map_err(|e| format!("a create task failed: {e}"))?;
        numbers.insert(ok(n, "a sequenced create")?);
    }
    check_eq!(
        numbers,
        (1..=64).collect::<BTreeSet<u64>>(),
        "the sequence numbers handed out"
    );
    check_eq!(
        ok(registry.children(&parent).await, "children")?.len(),
        64,
        "the workers registered"
    );
    Ok(())
}

/// Concurrent writes, some refused, do not affect each other: every valid one lands, no
/// refused one leaves a trace.
pub async fn concurrent_writes_are_isolated<R: Registry>(registry: Arc<R>) -> Outcome {
    register_each(
        &*registry,
        &[
            ("ROOT", "Root"),
            ("localhost", "Space"),
            ("localhost:taken", "App"),
        ],
    )
    .await?;
    let mut tasks = Vec::new();
    for n in 0..48 {
        let registry = Arc::clone(&registry);
        let entries: Vec<Entry> = match n % 4 {
            // Valid: a base and a child.
            0 | 1 => vec![
                Entry {
                    registration: registration(&format!("localhost:ok-{n}"), "Base")?,
                    content: None,
                },
                Entry {
                    registration: registration(&format!("localhost:ok-{n}:child"), "App")?,
                    content: Some(vec![n as u8]),
                },
            ],
            // Refused at the end: the second entry is taken.
            2 => vec![
                Entry {
                    registration: registration(&format!("localhost:bad-{n}"), "Base")?,
                    content: Some(vec![n as u8]),
                },
                Entry {
                    registration: registration("localhost:taken", "App")?,
                    content: None,
                },
            ],
            // Refused: no parent.
            _ => vec![Entry {
                registration: registration(&format!("localhost:none-{n}:child"), "App")?,
                content: None,
            }],
        };
        tasks.push(tokio::spawn(async move {
            (n, registry.register_all(entries).await)
        }));
    }
    for task in tasks {
        let (n, result) = task.await.map_err(|e| format!("a task failed: {e}"))?;
        match (n % 4, result) {
            (0 | 1, Ok(records)) => check_eq!(records.len(), 2, "records of valid write {}", n),
            (2, Err(RegistryError::AlreadyExists(_))) => {}
            (3, Err(RegistryError::NoParent { .. })) => {}
            (_, other) => return Err(format!("write {n} answered {other:?}")),
        }
    }
    let mut want: Vec<String> = Vec::new();
    for n in (0..48).filter(|n| n % 4 < 2) {
        want.push(format!("localhost:ok-{n}"));
        want.push(format!("localhost:ok-{n}:child"));
    }
    want.push("localhost:taken".to_string());
    let mut want: Vec<Point> = want
        .iter()
        .map(|text| point(text))
        .collect::<Result<_, _>>()?;
    want.sort();
    let got = ok(registry.select(&selector("localhost:**")?).await, "select")?;
    check_eq!(
        got.iter().map(|s| s.point.clone()).collect::<Vec<_>>(),
        want,
        "the particles after concurrent writes"
    );
    check_eq!(
        ok(
            registry.content(&point("localhost:ok-5:child")?).await,
            "content"
        )?,
        Some(vec![5]),
        "the content of a valid write"
    );
    Ok(())
}

/// Everything written before a close is there after the registry is opened again: records
/// with their properties, status, owner and location, content, sequences, grants (a revoked
/// one stays revoked and its id is not reused), tokens and subscriptions (one undone stays
/// undone, one of a deleted particle stays gone).
///
/// `open` must open the SAME store each time; the registry it returns first is dropped
/// before the second call.
pub async fn survives_reopen<R: Registry>(mut open: impl FnMut() -> R) -> Outcome {
    let app = point("localhost:app")?;
    let star = StarKey::new("central", "fold", 2).map_err(|e| e.to_string())?;
    let kept = [
        subscriptions::subscription(
            "localhost:app@Core",
            "localhost:chat:**<Channel>",
            Agent::HyperUser,
        )?,
        subscriptions::subscription(
            "localhost:app:echo@Shell+Topic<Path>(room:one)",
            "localhost:chat:a",
            Agent::Point(scott()?),
        )?,
        subscriptions::subscription("localhost:worker@Core", "other:m", Agent::Anonymous)?,
    ];
    let undone =
        subscriptions::subscription("localhost:app@Core", "localhost:chat:b", Agent::HyperUser)?;
    let of_deleted =
        subscriptions::subscription("other:m@Core", "localhost:chat:a", Agent::HyperUser)?;
    let (records, grants, last_sequence, revoked) = {
        let registry = open();
        cosmos(&registry).await?;
        for subscription in kept.iter().chain([&undone, &of_deleted]) {
            ok(registry.subscribe(subscription).await, "subscribe")?;
        }
        ok(
            registry
                .unsubscribe(&undone.subscriber, &undone.selector)
                .await,
            "unsubscribe",
        )?;
        ok(
            registry
                .set_properties(&app, &changes("{ +config=c, +@bind=b }")?)
                .await,
            "properties",
        )?;
        ok(registry.set_status(&app, Status::Ready).await, "status")?;
        ok(registry.set_location(&app, star.clone()).await, "location")?;
        ok(
            registry.chown(&selector("other+:**")?, &scott()?).await,
            "chown",
        )?;
        ok(
            registry
                .register_all(vec![
                    Entry {
                        registration: registration("localhost:app:echo:/", "Artifact<Dir>")?,
                        content: None,
                    },
                    Entry {
                        registration: registration(
                            "localhost:app:echo:/hello.wasm",
                            "Artifact<Wasm>",
                        )?,
                        content: Some(vec![0, 97, 115, 109, 255]),
                    },
                ])
                .await,
            "artifacts",
        )?;
        ok(registry.delete(&point("other:m")?, false).await, "delete")?;
        let mut last_sequence = 0;
        for _ in 0..5 {
            last_sequence = ok(registry.next_sequence(&app).await, "sequence")?;
        }
        let first = ok(
            registry
                .grant(
                    GrantKind::Super,
                    selector("localhost+:**")?,
                    selector("localhost:users:admin")?,
                    owner(),
                )
                .await,
            "grant",
        )?;
        let revoked = ok(
            registry
                .grant(
                    "+cSd-RwX".parse().map_err(|e| format!("grant kind: {e}"))?,
                    selector("localhost:app:**")?,
                    selector("localhost:users:*<User>")?,
                    scott()?,
                )
                .await,
            "grant",
        )?;
        ok(registry.revoke(revoked.id).await, "revoke")?;
        ok(
            registry.store_token("reopen-token-1", &scott()?).await,
            "token",
        )?;
        let records = ok(registry.select(&selector("**+:**")?).await, "select")?;
        let mut full = Vec::new();
        for stub in &records {
            full.push(ok(registry.record(&stub.point).await, "record")?);
        }
        (full, vec![first], last_sequence, revoked.id)
    };

    let registry = open();
    let again = ok(registry.select(&selector("**+:**")?).await, "select")?;
    let mut full = Vec::new();
    for stub in &again {
        full.push(ok(registry.record(&stub.point).await, "record")?);
    }
    check_eq!(full, records, "every record after reopening");
    check_eq!(
        ok(registry.record(&app).await, "record")?.location,
        Some(star),
        "the location after reopening"
    );
    check_eq!(
        ok(
            registry
                .content(&point("localhost:app:echo:/hello.wasm")?)
                .await,
            "content"
        )?,
        Some(vec![0, 97, 115, 109, 255]),
        "content after reopening"
    );
    refused(
        registry.record(&point("other:m")?).await,
        RegistryError::NotFound(point("other:m")?),
        "a deleted particle after reopening",
    )?;
    check_eq!(
        ok(registry.next_sequence(&app).await, "sequence")?,
        last_sequence + 1,
        "the sequence after reopening"
    );
    check_eq!(
        ok(registry.grants().await, "grants")?,
        grants,
        "the grants after reopening"
    );
    let newer = ok(
        registry
            .grant(
                GrantKind::Super,
                selector("other:**")?,
                selector("localhost:users:admin")?,
                owner(),
            )
            .await,
        "grant",
    )?;
    if newer.id <= revoked {
        return Err(format!(
            "after reopening, grant id {} reuses or precedes the revoked id {revoked}",
            newer.id
        ));
    }
    check_eq!(
        ok(registry.token_agent("reopen-token-1").await, "token")?,
        Some(scott()?),
        "the token after reopening"
    );
    let [of_app, of_echo, of_worker] = &kept;
    check_eq!(
        subscriptions::listed(&registry).await?,
        subscriptions::lines(&[of_echo, of_app, of_worker]),
        "the subscriptions after reopening (one undone, one deleted with its subscriber)"
    );
    Ok(())
}
