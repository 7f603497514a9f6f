//! A cosmos across machines (SPEC §14.2), end to end: three `starlane serve` processes on one
//! private NATS server and one private PostgreSQL database. Every machine reaches every
//! particle, by CLI and by HTTP (a 10 MiB file too); when the machine hosting a set of
//! mechtrons is killed, they answer again through the survivors; when NATS restarts, the
//! cosmos resumes by itself; a second process with a running machine's name gives up.

use std::time::{Duration, Instant};

use tests::cluster::{Cluster, NAMES, ping, ping_with};
use tests::http;

/// Lease length for the tests: short, so failover is quick to watch.
const LEASE: Duration = Duration::from_millis(1000);

#[test]
fn particles_made_through_one_machine_answer_through_every_other() {
    let cluster = Cluster::start(Some(LEASE));
    let points = cluster.counters(6);
    let mut hosts = std::collections::BTreeSet::new();
    for point in &points {
        hosts.insert(cluster.host_of(point));
        for (index, name) in NAMES.iter().enumerate() {
            let (ok, printed) = cluster.send(index, &[point, "Ext<Count>"]);
            assert!(ok, "{point} through {name}: {printed}");
        }
    }
    assert!(
        hosts.len() >= 2,
        "six mechtrons over three machines' stars land on more than one machine: {hosts:?}"
    );
    // Each counter counted once per machine: three waves, one instance.
    for point in &points {
        let (ok, printed) = cluster.send(2, &[point, "Ext<Get>"]);
        assert!(ok, "{printed}");
        assert!(printed.contains('3'), "{point} counted {printed}");
    }
}

#[test]
fn a_web_request_to_any_machine_reaches_a_mechtron_on_another() {
    let cluster = Cluster::start(Some(LEASE));
    cluster.until_all_alive(0);
    // 10 MiB that no two places share, so a chunk lost, doubled or out of order shows.
    let big: Vec<u8> = (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    tests::site::build(
        cluster.server(0),
        cluster.work(),
        &[("html/index.html", b"<h1>hi</h1>"), ("html/big.bin", &big)],
    );
    let host = cluster.host_of("localhost:hello");
    let big_point = "localhost:repo:site:1.0.0:/html/big.bin".to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let big_host = runtime.block_on(cluster.hosts(std::slice::from_ref(&big_point)));
    let big_host = big_host[&big_point].clone().unwrap_or_default();
    for (index, name) in NAMES.iter().enumerate() {
        let addr = cluster.server(index).http_addr();
        let reply = http(&addr, "GET", "/app/world", &["Host: localhost"], b"");
        assert_eq!(reply.status, 200, "through {}: {}", name, reply.text());
        let page = http(&addr, "GET", "/index.html", &["Host: localhost"], b"");
        assert_eq!(page.status, 200, "through {}", name);
        assert_eq!(page.body, b"<h1>hi</h1>");
        // Two of the three gateways are on another machine than the file's star: the 10 MiB
        // answer crosses NATS, in chunks, and must arrive whole.
        let file = http(&addr, "GET", "/big.bin", &["Host: localhost"], b"");
        assert_eq!(file.status, 200, "big.bin through {name}: {}", file.text());
        assert!(
            file.body == big,
            "big.bin through {name} (hosted on {big_host}): {} bytes, not the 10 MiB sent",
            file.body.len()
        );
    }
    assert!(
        NAMES.contains(&big_host.as_str()),
        "big.bin is placed nowhere"
    );
    println!(
        "localhost:hello lives on {host}, big.bin on {big_host}; every machine's gateway \
         reached them, the 10 MiB intact"
    );
}

#[test]
fn the_mechtrons_of_a_killed_machine_answer_again_through_the_survivors() {
    let mut cluster = Cluster::start(Some(LEASE));
    let points = cluster.counters(9);
    let (victim, index) = cluster.victim(&points);
    let hosted: Vec<&String> = points
        .iter()
        .filter(|point| cluster.host_of(point) == victim)
        .collect();
    let survivor = (index + 1) % NAMES.len();
    let killed = Instant::now();
    cluster.kill9(index);
    let mut slowest = Duration::ZERO;
    for point in &hosted {
        let took = cluster.until_answered(survivor, point, "Ext<Count>", Duration::from_secs(30));
        slowest = slowest.max(took);
    }
    println!(
        "kill -9 of {victim} ({} mechtrons): every one answered through {} {:?} after the kill",
        hosted.len(),
        NAMES[survivor],
        killed.elapsed()
    );
    // The killed machine comes back: it takes a new lease and serves what is placed on it.
    cluster.restart(index);
    for point in &points {
        cluster.until_answered(index, point, "Ext<Get>", Duration::from_secs(30));
    }
}

#[test]
fn the_cosmos_resumes_by_itself_when_nats_restarts() {
    let mut cluster = Cluster::start(Some(LEASE));
    let points = cluster.counters(6);
    cluster.restart_nats();
    let restarted = Instant::now();
    for point in &points {
        for index in 0..NAMES.len() {
            cluster.until_answered(index, point, "Ext<Get>", Duration::from_secs(30));
        }
    }
    println!(
        "after nats-server restarted, every mechtron answered through every machine within {:?}",
        restarted.elapsed()
    );
}

#[test]
fn a_stopped_machine_loses_its_mechtrons_and_never_serves_them_again() {
    let cluster = Cluster::start(Some(LEASE));
    let points = cluster.counters(9);
    let (victim, index) = cluster.victim(&points);
    let survivor = (index + 1) % NAMES.len();
    let hosted: Vec<&String> = points
        .iter()
        .filter(|point| cluster.host_of(point) == victim)
        .collect();
    for point in &hosted {
        let (ok, printed) = cluster.send(survivor, &[point, "Ext<Count>"]);
        assert!(ok, "{printed}");
    }
    // A pinger on the victim that signals a counter on another machine: what the stopped
    // machine would do if it served its old pinger after it continued is visible there.
    let pinger = (0..64)
        .map(|i| format!("localhost:pinger-{i}"))
        .find(|point| cluster.host_of(point) == victim)
        .unwrap_or_else(|| panic!("no pinger name lands on {victim}"));
    let watched = points
        .iter()
        .find(|point| cluster.host_of(point) != victim)
        .unwrap_or_else(|| panic!("every counter is on {victim}"))
        .clone();
    cluster.server(survivor).exec(
        cluster.work(),
        &format!(
            "create {pinger}<Mechtron>{{ +config=localhost:repo:fixtures:1.0.0:/config/pinger.mechtron }}; \
             grant +csd-rwX on {watched} to {pinger}"
        ),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let read = |door: usize, point: &str| {
        let (ok, printed) = cluster.send(door, &[point, "Ext<Get>"]);
        assert!(ok, "{printed}");
        number(printed.lines().last().unwrap_or_default())
    };
    let before = read(survivor, &watched);
    cluster.server(index).signal("STOP");
    let stopped = Instant::now();
    // Waves for the stopped machine's pinger wait in its connection while it is stopped.
    runtime.block_on(async {
        let mut door = cluster.client(survivor).await;
        for _ in 0..5 {
            let _ = ping_with(
                &mut door,
                &pinger,
                "Signal",
                cosmic_space::Substance::Text(watched.clone()),
                200,
            )
            .await;
        }
    });
    cluster.until_answered(survivor, &pinger, "Cmd<Read>", Duration::from_secs(30));
    for point in &hosted {
        cluster.until_answered(survivor, point, "Ext<Get>", Duration::from_secs(30));
    }
    println!(
        "SIGSTOP of {victim} ({} mechtrons and its pinger): every one answered through {} {:?} \
         after the stop",
        hosted.len(),
        NAMES[survivor],
        stopped.elapsed()
    );
    assert_eq!(
        read(survivor, &watched),
        before,
        "a queued signal was served"
    );
    cluster.server(index).signal("CONT");
    // Continued, the machine finds its lease gone: the waves it had queued are refused, not
    // served by its old pinger.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        read(survivor, &watched),
        before,
        "{victim}, continued, served its old pinger: {watched} was signalled"
    );
    // The continued machine may serve nothing it lost: counting through the survivor and
    // reading through the continued machine (which answers 503 until it holds a lease again)
    // see one instance, the new one.
    runtime.block_on(async {
        let mut counter_door = cluster.client(survivor).await;
        let mut reader_door = cluster.client(index).await;
        for point in &hosted {
            let mut last = None;
            for _ in 0..3 {
                let (status, counted) = ping(&mut counter_door, point, "Count", 5_000)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(status.is_ok(), "{point}: {status} {counted}");
                let counted = number(&counted);
                if let Some(last) = last {
                    assert_eq!(counted, last + 1, "{point} counted {last} then {counted}");
                }
                last = Some(counted);
                let deadline = Instant::now() + Duration::from_secs(20);
                let read = loop {
                    let (status, body) = ping(&mut reader_door, point, "Get", 2_000)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    if status.is_ok() {
                        break number(&body);
                    }
                    assert!(Instant::now() < deadline, "{point}: {status} {body}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                assert_eq!(
                    read, counted,
                    "{point}: counted {counted} through {}, but {victim} read {read}: two instances",
                    NAMES[survivor]
                );
            }
        }
    });
}

/// The number in a body's text.
fn number(body: &str) -> i64 {
    body.chars()
        .filter(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[test]
fn every_ping_during_a_failover_gets_exactly_one_answer() {
    let mut cluster = Cluster::start(Some(LEASE));
    let points = cluster.counters(12);
    let (victim, index) = cluster.victim(&points);
    let survivor = (index + 1) % NAMES.len();
    const TOTAL: usize = 20_000;
    const CONNECTIONS: usize = 32;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outcomes = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for connection in 0..CONNECTIONS {
            let mut door = cluster.client(survivor).await;
            let points = points.clone();
            let sent = sent.clone();
            tasks.spawn(async move {
                let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
                let mut n = connection;
                while n < TOTAL {
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let point = &points[n % points.len()];
                    let outcome = match ping(&mut door, point, "Get", 3_000).await {
                        Ok((status, _)) => status.to_string(),
                        Err(err) => format!("no answer: {err}"),
                    };
                    *outcomes.entry(outcome).or_default() += 1;
                    n += CONNECTIONS;
                }
                outcomes
            });
        }
        // Kill the victim once a tenth of the pings are out.
        while sent.load(std::sync::atomic::Ordering::Relaxed) < TOTAL / 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cluster.kill9(index);
        let mut all = std::collections::BTreeMap::<String, usize>::new();
        while let Some(done) = tasks.join_next().await {
            for (outcome, count) in done.unwrap_or_else(|e| panic!("{e}")) {
                *all.entry(outcome).or_default() += count;
            }
        }
        all
    });
    println!(
        "{TOTAL} pings through {} while {victim} was killed: {outcomes:?}",
        NAMES[survivor]
    );
    assert_eq!(outcomes.values().sum::<usize>(), TOTAL, "{outcomes:?}");
    for outcome in outcomes.keys() {
        assert!(
            ["200", "503", "408"]
                .iter()
                .any(|ok| outcome.starts_with(ok)),
            "an answer that is none of 200, 503, 408: {outcomes:?}"
        );
    }
}

#[test]
fn a_second_process_with_a_running_machines_name_gives_up_and_the_first_serves_on() {
    let cluster = Cluster::start(Some(LEASE));
    let points = cluster.counters(3);
    let (ok, printed) = cluster.serve_until_exit(NAMES[1], Duration::from_secs(30));
    assert!(!ok, "a second {} started: {printed}", NAMES[1]);
    assert!(
        printed.contains(&format!("machine {} is running elsewhere", NAMES[1]))
            && printed.contains("--machine"),
        "{printed}"
    );
    // The first kept its lease all along: it is alive, and every counter answers through it.
    cluster.until_all_alive(0);
    for point in &points {
        let (ok, printed) = cluster.send(1, &[point, "Ext<Count>"]);
        assert!(ok, "{point} through {}: {printed}", NAMES[1]);
    }
    let log = std::fs::read_to_string(cluster.log(1)).unwrap_or_default();
    assert!(
        !log.contains("lost its lease"),
        "{} lost its lease to the second process: {log}",
        NAMES[1]
    );
}

/// A channel's messages and the cosmos's lifecycle events reach subscribers on every machine
/// (SPEC §18): a watch through each of the three machines and the chat's history mechtron
/// (wherever it was placed) hear every message published through a third machine, in order;
/// a particle created through one machine is announced on all three.
#[test]
fn channels_deliver_to_subscribers_on_every_machine() {
    use tests::watch::Watcher;

    let cluster = Cluster::start(Some(LEASE));
    cluster.until_all_alive(0);
    let example = tests::workspace_root().join("examples/chat");
    let bundled = tests::bundle_scaffold(&example);
    assert!(bundled.status.success(), "{}", tests::stderr(&bundled));
    cluster.server(0).exec(
        &example,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> localhost:repo:chat:1.0.0; \
         create localhost:chat<App>; create localhost:chat:room<Channel>; \
         grant +csd-RWX on localhost:chat+:** to localhost:chat:history; \
         create localhost:chat:history<Mechtron>{ \
           +config=localhost:repo:chat:1.0.0:/config/history.mechtron }",
    );
    let watchers: Vec<Watcher> = (0..NAMES.len())
        .map(|index| {
            Watcher::start(
                cluster.server(index),
                cluster.work(),
                None,
                "localhost:chat:**",
            )
        })
        .collect();
    // Probes through m-c until every watch has heard one: from then on each is registered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut heard = vec![false; watchers.len()];
    while heard.iter().any(|h| !h) {
        assert!(
            Instant::now() < deadline,
            "watches that heard no probe: {heard:?}"
        );
        let (ok, printed) = cluster.send(2, &["localhost:chat:room", "Ext<Say>", "probe"]);
        assert!(ok, "{printed}");
        for (index, watcher) in watchers.iter().enumerate() {
            while let Ok(line) = watcher.next_within(Duration::from_millis(100)) {
                heard[index] |= line["body"] == "probe";
            }
        }
    }
    for watcher in &watchers {
        while watcher.next_within(Duration::from_millis(300)).is_ok() {}
    }

    for n in 0..30 {
        let (ok, printed) = cluster.send(1, &["localhost:chat:room", "Ext<Say>", &format!("m{n}")]);
        assert!(ok, "{printed}");
    }
    for (index, watcher) in watchers.iter().enumerate() {
        for n in 0..30 {
            let line = watcher
                .next()
                .unwrap_or_else(|| panic!("the watch through {} missed m{n}", NAMES[index]));
            assert_eq!(
                line["body"],
                format!("m{n}"),
                "through {}: {line}",
                NAMES[index]
            );
        }
    }
    let (ok, history) = cluster.send(
        0,
        &["localhost:chat:history", "Http<Get>", "--path", "/history"],
    );
    assert!(ok, "{history}");
    let expected: Vec<String> = (0..30).map(|n| format!("\"m{n}\"")).collect();
    let positions: Vec<usize> = expected
        .iter()
        .map(|text| {
            history
                .find(text.as_str())
                .unwrap_or_else(|| panic!("the history lacks {text}: {history}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {history}"
    );

    cluster
        .server(0)
        .exec(cluster.work(), "create localhost:chat:late<Channel>");
    for (index, watcher) in watchers.iter().enumerate() {
        let line = watcher.until("the late room created", |l| {
            l["event"] == "created" && l["from"] == "localhost:chat:late"
        });
        assert_eq!(line["method"], "Cmd<Event>", "through {}", NAMES[index]);
    }
    // Machines announce themselves: m-c killed is declared offline by the survivor that
    // buries it, and says it is online when it comes back.
    let machines = Watcher::start(
        cluster.server(0),
        cluster.work(),
        None,
        "hyperspace:machines:*",
    );
    let mut cluster = cluster;
    cluster.kill9(2);
    machines.until("m-c offline", |l| {
        l["event"] == "offline" && l["from"] == "hyperspace:machines:m-c"
    });
    cluster.restart(2);
    machines.until("m-c online", |l| {
        l["event"] == "online" && l["from"] == "hyperspace:machines:m-c"
    });
    println!(
        "the room lives on {}, the history on {}; every machine's watch heard all 30 in order",
        cluster.host_of("localhost:chat:room"),
        cluster.host_of("localhost:chat:history")
    );
}
