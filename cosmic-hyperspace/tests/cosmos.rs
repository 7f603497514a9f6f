//! A whole machine in one process: commands through the executor, waves through the layers,
//! security on the way, and exactly one answer for every Ping.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cosmic_hyperspace::driver::{BasicDriver, Driver, DriverCtx, Drivers, SecretKey};
use cosmic_hyperspace::machine::Machine;
use cosmic_hyperspace::registry::ParticleRecord;
use cosmic_space::{
    Agent, BaseKind, Bind, CmdMethod, Method, Ping, Point, RawCommand, ReflectedCore, StatusCode,
    Substance, WaitTime,
};

async fn machine(drivers: Drivers) -> (tempfile::TempDir, Machine) {
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::open(dir.path(), 2, drivers).await.unwrap();
    (dir, machine)
}

/// Runs one command as `agent` and returns the answer.
async fn exec(machine: &Machine, agent: &Agent, line: &str) -> ReflectedCore {
    let ping = Ping::command(Point::hyperuser(), RawCommand::new(line));
    machine.ping(agent.clone(), ping).await.core
}

/// The status one command answers with.
async fn status_of(machine: &Machine, agent: &Agent, line: &str) -> StatusCode {
    exec(machine, agent, line).await.status
}

/// `line`, run as `agent`, is answered with success.
async fn allowed(machine: &Machine, agent: &Agent, line: &str) {
    let status = status_of(machine, agent, line).await;
    assert!(status.is_ok(), "{agent}: {line}: {status}");
}

/// `line`, run as `agent`, is refused with 403.
async fn forbidden(machine: &Machine, agent: &Agent, line: &str) {
    let status = status_of(machine, agent, line).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{agent}: {line}");
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

fn user(name: &str) -> Agent {
    Agent::Point(format!("localhost:users:{name}").parse().unwrap())
}

#[tokio::test]
async fn commands_create_select_set_get_and_delete() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    assert_eq!(
        ok(&machine, "create localhost<Space>").await,
        Substance::Point("localhost".parse().unwrap())
    );
    assert_eq!(
        status_of(&machine, &Agent::HyperUser, "create localhost<Space>").await,
        StatusCode::CONFLICT
    );
    ok(&machine, "create? localhost<Space>").await;
    ok(
        &machine,
        "create localhost:app<Base>{ +title=Hello, +@locked=x }",
    )
    .await;
    let first = ok(&machine, "create localhost:app:worker-%<Base>").await;
    let second = ok(&machine, "create localhost:app:worker-%<Base>").await;
    assert_eq!(
        first,
        Substance::Point("localhost:app:worker-1".parse().unwrap())
    );
    assert_eq!(
        second,
        Substance::Point("localhost:app:worker-2".parse().unwrap())
    );

    let Substance::List(found) = ok(&machine, "select localhost:app:*<Base>").await else {
        panic!("select answers a list");
    };
    assert_eq!(found.len(), 2);

    ok(&machine, "set localhost:app{ +title=Goodbye }").await;
    let got = ok(&machine, "get localhost:app{ title }").await;
    let Substance::Map(values) = got else {
        panic!("get answers a map")
    };
    assert_eq!(
        values.get("title"),
        Some(&Substance::Text("Goodbye".into()))
    );
    let locked = exec(
        &machine,
        &Agent::HyperUser,
        "set localhost:app{ +locked=y }",
    )
    .await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN);

    let refused = exec(&machine, &Agent::HyperUser, "delete localhost:app").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let Substance::List(deleted) = ok(&machine, "delete! localhost:app").await else {
        panic!("delete answers a list");
    };
    assert_eq!(deleted.len(), 3);
    assert_eq!(
        status_of(&machine, &Agent::HyperUser, "get localhost:app").await,
        StatusCode::NOT_FOUND
    );
    machine.shutdown().await;
}

#[tokio::test]
async fn bad_commands_are_refused_and_register_nothing() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    ok(&machine, "create localhost<Space>").await;
    for (line, status) in [
        ("create localhost:x<Spaceship>", StatusCode::BAD_REQUEST),
        ("create localhost:repo<Repo", StatusCode::BAD_REQUEST),
        ("create localhost:b<Bundle>", StatusCode::BAD_REQUEST),
        ("create nowhere:app<App>", StatusCode::NOT_FOUND),
        ("create localhost:u<User>", StatusCode::BAD_REQUEST),
        ("create localhost:s<Star<Fold>>", StatusCode::BAD_REQUEST),
        ("read localhost:nope", StatusCode::NOT_FOUND),
        ("revoke 99", StatusCode::NOT_FOUND),
        ("delete! hyperspace", StatusCode::FORBIDDEN),
        ("delete hyperspace:users:anonymous", StatusCode::FORBIDDEN),
    ] {
        let core = exec(&machine, &Agent::HyperUser, line).await;
        assert_eq!(core.status, status, "{line}: {:?}", core.error_message());
    }
    let Substance::List(all) = ok(&machine, "select localhost:**").await else {
        panic!("a list");
    };
    assert!(all.is_empty(), "nothing was registered: {all:?}");
    machine.shutdown().await;
}

#[tokio::test]
async fn users_without_grants_get_403_and_change_nothing() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    ok(&machine, "create localhost<Space>").await;
    ok(&machine, "create localhost:users<UserBase>").await;
    ok(&machine, "create localhost:users:scott<User>").await;
    ok(&machine, "create localhost:app<Base>").await;
    let scott = user("scott");
    for line in [
        "create localhost:app:mine<Base>",
        "select localhost:app:**",
        "set localhost:app{ +x=y }",
        "get localhost:app",
        "delete localhost:app",
        "grant Super on localhost+:** to localhost:users:scott",
    ] {
        let core = exec(&machine, &scott, line).await;
        assert_eq!(core.status, StatusCode::FORBIDDEN, "{line}");
        let message = core.error_message().unwrap_or_default();
        assert!(
            message.contains("localhost:users:scott"),
            "{line}: {message}"
        );
    }
    let send = machine
        .ping(
            scott.clone(),
            Ping::new(
                Point::root(),
                "localhost:app".parse::<Point>().unwrap(),
                Method::Cmd(CmdMethod::Read),
                (),
            ),
        )
        .await;
    assert_eq!(send.core.status, StatusCode::FORBIDDEN);
    let anonymous = machine
        .ping(
            Agent::Anonymous,
            Ping::new(
                Point::root(),
                "localhost:app".parse::<Point>().unwrap(),
                Method::Cmd(CmdMethod::Read),
                (),
            ),
        )
        .await;
    assert_eq!(anonymous.core.status, StatusCode::FORBIDDEN);
    let Substance::Details(details) = ok(&machine, "get localhost:app").await else {
        panic!("details");
    };
    assert!(details.properties.get("x").is_none(), "nothing changed");

    // A mask opens exactly what it says.
    ok(
        &machine,
        "grant +cSd-Rwx on localhost:app+:** to localhost:users:**<User>",
    )
    .await;
    allowed(&machine, &scott, "get localhost:app").await;
    allowed(&machine, &scott, "select localhost:app:**").await;
    forbidden(&machine, &scott, "create localhost:app:mine<Base>").await;
    forbidden(&machine, &scott, "set localhost:app{ +x=y }").await;
    ok(
        &machine,
        "grant +Csd-rwx on localhost:app to localhost:users:scott",
    )
    .await;
    allowed(&machine, &scott, "create localhost:app:mine<Base>").await;
    // An `&` mask above takes away what the others add.
    ok(
        &machine,
        "grant &csd-rwx on localhost to localhost:users:**",
    )
    .await;
    forbidden(&machine, &scott, "get localhost:app").await;
    // Scott owns what he created.
    allowed(&machine, &scott, "set localhost:app:mine{ +x=y }").await;
    machine.shutdown().await;
}

/// A driver whose particles take their time: `Ext<Slow>` answers after 300 ms.
struct SlowDriver(BasicDriver);

#[async_trait]
impl Driver for SlowDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Base
    }
    fn bind(&self) -> Arc<Bind> {
        "Bind(version=1.0.0) { Route<Ext<*>> -> (()) => &; }"
            .parse::<Bind>()
            .map(Arc::new)
            .unwrap()
    }
    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        if ping.core.method == Method::ext("Slow").unwrap() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return ReflectedCore::ok("finally");
        }
        self.0.handle(ctx, record, ping).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ping_is_answered_exactly_once() {
    let mut drivers = Drivers::builtin(SecretKey::random().unwrap());
    drivers.insert(Arc::new(SlowDriver(BasicDriver::new(BaseKind::Base))));
    let (_dir, machine) = machine(drivers).await;
    ok(&machine, "create localhost<Space>").await;
    ok(&machine, "create localhost:fast<App>").await;
    ok(&machine, "create localhost:slow<Base>").await;
    let machine = Arc::new(machine);
    let total = 100_000usize;
    let mut counts = std::collections::BTreeMap::new();
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..total {
        let machine = machine.clone();
        let (to, method, wait) = match i % 10 {
            0 => (
                "localhost:missing",
                Method::Cmd(CmdMethod::Read),
                WaitTime::DEFAULT,
            ),
            1 => (
                "localhost:slow",
                Method::ext("Slow").unwrap(),
                WaitTime::from_millis(50),
            ),
            _ => (
                "localhost:fast",
                Method::Cmd(CmdMethod::Bounce),
                WaitTime::DEFAULT,
            ),
        };
        in_flight.spawn(async move {
            let ping =
                Ping::new(Point::root(), to.parse::<Point>().unwrap(), method, ()).with_wait(wait);
            machine.ping(Agent::HyperUser, ping).await.core.status
        });
        while in_flight.len() >= 512 {
            let status = in_flight.join_next().await.unwrap().unwrap();
            *counts.entry(status.as_u16()).or_insert(0usize) += 1;
        }
    }
    while let Some(status) = in_flight.join_next().await {
        *counts.entry(status.unwrap().as_u16()).or_insert(0usize) += 1;
    }
    assert_eq!(counts.values().sum::<usize>(), total);
    assert_eq!(counts.get(&200), Some(&80_000), "{counts:?}");
    assert_eq!(counts.get(&404), Some(&10_000), "{counts:?}");
    assert_eq!(counts.get(&408), Some(&10_000), "{counts:?}");
}

#[tokio::test]
async fn chown_changes_the_owner() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    ok(&machine, "create localhost<Space>").await;
    ok(&machine, "create localhost:app<App>").await;
    assert_eq!(
        ok(&machine, "chown localhost:app+:** to localhost:users:scott").await,
        Substance::Int(1)
    );
    let record = machine
        .registry()
        .record(&"localhost:app".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(record.owner.to_string(), "localhost:users:scott");
}

#[tokio::test]
async fn super_and_privileges_open_exactly_what_they_say() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    ok(&machine, "create localhost<Space>").await;
    ok(&machine, "create localhost:users<UserBase>").await;
    ok(&machine, "create localhost:users:scott<User>").await;
    ok(&machine, "create localhost:users:admin<User>").await;
    ok(
        &machine,
        "create localhost:people<Base>{ +email=a@b.c, +phone=123 }",
    )
    .await;
    let scott = user("scott");
    let admin = user("admin");

    // A privilege opens the one property it names, for the one action it names.
    forbidden(&machine, &scott, "get localhost:people{ email }").await;
    ok(
        &machine,
        "grant property:email:read on localhost:people to localhost:users:scott",
    )
    .await;
    allowed(&machine, &scott, "get localhost:people{ email }").await;
    forbidden(&machine, &scott, "get localhost:people{ phone }").await;
    forbidden(&machine, &scott, "get localhost:people{ email, phone }").await;
    forbidden(&machine, &scott, "get localhost:people").await;
    forbidden(&machine, &scott, "set localhost:people{ +email=x@y.z }").await;

    // Super is full access below where it is granted, and nothing outside it.
    ok(
        &machine,
        "grant Super on localhost:people+:** to localhost:users:admin",
    )
    .await;
    allowed(&machine, &admin, "set localhost:people{ +email=x@y.z }").await;
    allowed(&machine, &admin, "create localhost:people:bob<Base>").await;
    allowed(
        &machine,
        &admin,
        "grant +csd-Rwx on localhost:people:bob to localhost:users:scott",
    )
    .await;
    allowed(&machine, &scott, "get localhost:people:bob").await;
    forbidden(&machine, &admin, "create localhost:elsewhere<Base>").await;
    // A grant made by someone without full access where it applies counts for nothing.
    forbidden(
        &machine,
        &scott,
        "grant Super on localhost+:** to localhost:users:scott",
    )
    .await;
}

#[tokio::test]
async fn cached_access_follows_grants_and_revocations() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    ok(&machine, "create localhost<Space>").await;
    ok(&machine, "create localhost:users<UserBase>").await;
    ok(&machine, "create localhost:users:scott<User>").await;
    ok(&machine, "create localhost:app<Base>").await;
    let scott = user("scott");
    let bounce = || {
        Ping::new(
            Point::root(),
            "localhost:app".parse::<Point>().unwrap(),
            Method::Cmd(CmdMethod::Bounce),
            (),
        )
    };
    for _ in 0..3 {
        assert_eq!(
            machine.ping(scott.clone(), bounce()).await.core.status,
            StatusCode::FORBIDDEN
        );
    }
    let Substance::Int(id) = ok(
        &machine,
        "grant +csd-rwX on localhost:app to localhost:users:scott",
    )
    .await
    else {
        panic!("grant answers its id");
    };
    for _ in 0..3 {
        assert_eq!(
            machine.ping(scott.clone(), bounce()).await.core.status,
            StatusCode::OK
        );
    }
    ok(&machine, &format!("revoke {id}")).await;
    assert_eq!(
        machine.ping(scott.clone(), bounce()).await.core.status,
        StatusCode::FORBIDDEN
    );
}

/// Publishes the files `(path, text)` as the bundle `localhost:repo:site:1.0.0`.
async fn publish_site(machine: &Machine, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let zip = cosmic_hyperspace::bundle::pack(dir.path()).unwrap();
    let line = "publish ^[ site.zip ]-> localhost:repo:site:1.0.0";
    let ping = Ping::command(
        Point::hyperuser(),
        RawCommand::new(line).with_transfer("site.zip", zip),
    );
    let pong = machine.ping(Agent::HyperUser, ping).await;
    assert!(pong.core.is_ok(), "{:?}", pong.core.error_message());
}

async fn send(machine: &Machine, method: &str, path: &str, body: Substance) -> ReflectedCore {
    let ping = Ping::new(
        Point::root(),
        "localhost:app".parse::<Point>().unwrap(),
        method.parse().unwrap(),
        body,
    )
    .with_path(path);
    machine.ping(Agent::HyperUser, ping).await.core
}

#[tokio::test]
async fn a_bind_property_routes_forwards_calls_and_filters() {
    let (_dir, machine) = machine(Drivers::builtin(SecretKey::random().unwrap())).await;
    ok(&machine, "create localhost<Space>").await;
    ok(&machine, "create localhost:repo<Repo>").await;
    publish_site(
        &machine,
        &[
            ("html/index.html", "<h1>hi</h1>"),
            (
                "bind/app.bind",
                "Bind(version=1.0.0) {
                   Route<Http<Get>>/static/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
                   Route<Ext<Page>> -> localhost:repo:site:1.0.0:/html/index.html^Cmd<Read> => &;
                   Route<Ext<Text>> -[ Text ]-> (()) => &;
                 }",
            ),
            ("bind/empty.bind", "Bind(version=1.0.0) { }"),
        ],
    )
    .await;
    ok(
        &machine,
        "create localhost:app<Base>{ +bind=localhost:repo:site:1.0.0:/bind/app.bind }",
    )
    .await;

    // Forward, with the captured path variable, to an artifact that answers Http<Get>.
    let page = send(
        &machine,
        "Http<Get>",
        "/static/index.html",
        Substance::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, Substance::Bin(b"<h1>hi</h1>".to_vec()));
    assert_eq!(
        page.headers.get("content-type"),
        Some("text/html; charset=utf-8")
    );
    // A call: a new method on another particle.
    let called = send(&machine, "Ext<Page>", "/", Substance::Empty).await;
    assert_eq!(called.body, Substance::Bin(b"<h1>hi</h1>".to_vec()));
    // The filter answers 400 for the wrong kind of body, and lets Text through to the Core.
    let wrong = send(&machine, "Ext<Text>", "/", Substance::Bin(vec![1])).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let through = send(&machine, "Ext<Text>", "/", Substance::Text("x".into())).await;
    assert_eq!(
        through.status,
        StatusCode::NOT_FOUND,
        "the Base's Core does not answer Ext<Text>"
    );
    // No route; and Cmd waves take the default pipeline to the Core.
    assert_eq!(
        send(&machine, "Http<Get>", "/elsewhere", Substance::Empty)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        send(&machine, "Cmd<Read>", "/", Substance::Empty)
            .await
            .is_ok()
    );

    // A new bind takes effect at once.
    ok(
        &machine,
        "set localhost:app{ +bind=localhost:repo:site:1.0.0:/bind/empty.bind }",
    )
    .await;
    assert_eq!(
        send(
            &machine,
            "Http<Get>",
            "/static/index.html",
            Substance::Empty
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}
