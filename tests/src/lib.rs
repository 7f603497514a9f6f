//! End-to-end tests of Starlane. The tests in `tests/` run the real `starlane` binary the way an
//! operator would; this library holds what they share: building and locating the binary,
//! running it on either registry ([`Registry`], [`on_each_registry!`]), a private PostgreSQL
//! ([`postgres`]) and NATS ([`nats`]), a cosmos of three machines on them ([`cluster`]), and
//! the guest fixtures (real wasm, built by `build.rs` from `tests/guests/`).

pub mod cluster;
pub mod nats;
pub mod postgres;
pub mod site;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The root of the workspace: the parent of the running test's package (cargo says which when
/// it runs a test; the path compiled in is the fallback). Not the compiled-in path first: a
/// target directory shared by two checkouts may run a test binary the other one built.
pub fn workspace_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    package.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The path of the `starlane` binary, built from this workspace on first use (with the same
/// cargo, target directory and profile as the tests — release for benchmarks — so it is
/// normally already up to date), through a link of this process's own ([`pinned`]).
/// `STARLANE_TEST_BIN` names another binary to test instead (an installed one, or an older
/// build to show that a new test fails on it).
pub fn starlane_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("STARLANE_TEST_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "starlane-cli",
            "--bin",
            "starlane",
        ]);
        if target_dir().ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build starlane: {e}"));
        assert!(status.success(), "building the starlane binary failed");
        pinned(&target_dir().join(format!("starlane{}", std::env::consts::EXE_SUFFIX)))
    })
}

/// A link of this process's own to the binary `built`, so that it runs the same binary to
/// the end: another checkout sharing the target directory replaces `<profile>/starlane` when
/// it builds, and a server a test restarts must be the one it started. Links left by test
/// processes that have ended are removed. Where no link can be made, `built` itself.
fn pinned(built: &Path) -> PathBuf {
    let dir = target_root().join("tests").join("bin");
    if std::fs::create_dir_all(&dir).is_err() {
        return built.to_path_buf();
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists()
        && let Ok(entries) = std::fs::read_dir(&dir)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|name| name.strip_prefix("starlane-"))
                .and_then(|rest| rest.split('.').next());
            if let Some(pid) = pid
                && !proc.join(pid).exists()
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let link = dir.join(format!(
        "starlane-{}{}",
        std::process::id(),
        std::env::consts::EXE_SUFFIX
    ));
    let _ = std::fs::remove_file(&link);
    match std::fs::hard_link(built, &link) {
        Ok(()) => link,
        Err(_) => built.to_path_buf(),
    }
}

/// The target directory the tests were built into (`target`, or `CARGO_TARGET_DIR`): the
/// parent of [`target_dir`]. Tests keep their persistent build products under it.
pub fn target_root() -> PathBuf {
    let mut dir = target_dir();
    dir.pop();
    dir
}

/// The directory cargo puts this profile's binaries in (`target/debug`).
fn target_dir() -> PathBuf {
    // The test executable lives in `<target>/<profile>/deps/`.
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Runs `starlane ARGS` in `dir` and returns what it printed and its exit status.
pub fn starlane(dir: &Path, args: &[&str]) -> Output {
    Command::new(starlane_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"))
}

/// A `starlane serve` running on a data directory of its own, on free ports.
#[derive(Debug)]
pub struct Server {
    home: PathBuf,
    child: Option<std::process::Child>,
}

impl Server {
    /// Starts `starlane serve` on `home` (control and HTTP on port 0, two stars) and waits
    /// until it has written its endpoint files.
    pub fn start(home: &Path) -> Server {
        Server::start_with(home, &[])
    }

    /// Starts `starlane serve` on `home` like [`Server::start`], with the extra environment
    /// `envs` (e.g. `STARLANE_HTTP_WAIT`).
    pub fn start_with(home: &Path, envs: &[(&str, &str)]) -> Server {
        Server::spawn(home, &[], envs, false)
    }

    /// Starts `starlane serve ARGS` on `home` like [`Server::start`], with the extra
    /// environment `envs`.
    pub fn start_serving(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(home, args, envs, false)
    }

    /// Starts `starlane serve` like [`Server::start_with`], but keeps its standard error apart
    /// from its standard output: [`Server::log`] has only what it printed,
    /// [`Server::stderr_log`] what it logged.
    pub fn start_apart(home: &Path, envs: &[(&str, &str)]) -> Server {
        Server::spawn(home, &[], envs, true)
    }

    fn spawn(home: &Path, args: &[&str], envs: &[(&str, &str)], apart: bool) -> Server {
        // Stale endpoint files from a killed server must not be mistaken for the new one's.
        for stale in ["control.addr", "http.addr", "token"] {
            let _ = std::fs::remove_file(home.join(stale));
        }
        let log = std::fs::File::create(home.with_extension("log"))
            .unwrap_or_else(|e| panic!("cannot create the server log: {e}"));
        let errors = match apart {
            true => std::fs::File::create(home.with_extension("err"))
                .unwrap_or_else(|e| panic!("cannot create the server's error log: {e}")),
            false => log.try_clone().unwrap_or_else(|e| panic!("log: {e}")),
        };
        let child = Command::new(starlane_bin())
            .arg("serve")
            .args(args)
            .env("STARLANE_HOME", home)
            .env("STARLANE_CONTROL", "127.0.0.1:0")
            .env("STARLANE_HTTP", "127.0.0.1:0")
            .env("STARLANE_STARS", "2")
            // The registry is the test's choice ([`Registry`]), not the environment's; so is
            // the cosmos a machine joins, and its lease ([`cluster`]).
            .env_remove("STARLANE_REGISTRY")
            .env_remove("STARLANE_NATS")
            .env_remove("STARLANE_COSMOS")
            .env_remove("STARLANE_MACHINE")
            .env_remove("STARLANE_LEASE")
            .envs(envs.iter().copied())
            .stdout(log)
            .stderr(errors)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start starlane serve: {e}"));
        let server = Server {
            home: home.to_path_buf(),
            child: Some(child),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !(home.join("control.addr").exists() && home.join("token").exists()) {
            assert!(
                std::time::Instant::now() < deadline,
                "starlane serve did not start within 30 s; its log:\n{}",
                std::fs::read_to_string(home.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        server
    }

    /// The data directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// What the server has printed on standard output and standard error since it started
    /// (its log, kept beside the data directory as `HOME.log`; standard output alone for a
    /// server started with [`Server::start_apart`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.with_extension("log")).unwrap_or_default()
    }

    /// What a server started with [`Server::start_apart`] has printed on standard error
    /// (`HOME.err`).
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.home.with_extension("err")).unwrap_or_default()
    }

    /// The address a server started with `STARLANE_METRICS` serves its metrics on (`IP:PORT`,
    /// from the `metrics` line it prints), waiting up to 10 s for the line.
    ///
    /// # Panics
    /// If the server prints no such line.
    pub fn metrics_addr(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let log = self.log();
            let found = log.lines().find_map(|line| {
                line.trim()
                    .strip_prefix("metrics  http://")?
                    .strip_suffix("/metrics")
                    .map(str::to_string)
            });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server printed no metrics line:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Where the HTTP gateway listens (`IP:PORT`, from the data directory).
    pub fn http_addr(&self) -> String {
        std::fs::read_to_string(self.home.join("http.addr"))
            .unwrap_or_else(|e| panic!("the server wrote no http.addr: {e}"))
            .trim()
            .to_string()
    }

    /// Where the control protocol listens (`IP:PORT`, from the data directory).
    pub fn control_addr(&self) -> String {
        std::fs::read_to_string(self.home.join("control.addr"))
            .unwrap_or_else(|e| panic!("the server wrote no control.addr: {e}"))
            .trim()
            .to_string()
    }

    /// Waits up to `within` for the server to exit by itself (after a signal sent with
    /// [`Server::signal`]) and returns how it exited.
    ///
    /// # Panics
    /// If it is still running after `within` (it is then killed).
    pub fn exit_within(mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("the server is not running");
        };
        let deadline = std::time::Instant::now() + within;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("starlane serve did not exit within {within:?}");
                }
            }
        }
    }

    /// Runs `starlane ARGS` in `dir` against this server (found through its data directory).
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run starlane: {e}"))
    }

    /// Runs `starlane exec LINE` in `dir`, which must succeed, and returns what it printed.
    pub fn exec(&self, dir: &Path, line: &str) -> String {
        let out = self.run(dir, &["exec", line]);
        assert!(
            out.status.success(),
            "{line}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `starlane send ARGS` in `dir` and what it printed (standard output, then standard
    /// error); `ok` says whether it must succeed.
    pub fn send(&self, dir: &Path, args: &[&str], ok: bool) -> String {
        let mut all = vec!["send"];
        all.extend_from_slice(args);
        let out = self.run(dir, &all);
        assert_eq!(
            out.status.success(),
            ok,
            "send {args:?}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        format!("{}{}", stdout(&out), stderr(&out))
    }

    /// `starlane token USER` in `dir`, which must succeed: the user's token.
    pub fn token(&self, dir: &Path, user: &str) -> String {
        let out = self.run(dir, &["token", user]);
        assert!(out.status.success(), "token {user}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// A `starlane ARGS` command set up to talk to this server.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(starlane_bin());
        command
            .args(args)
            .current_dir(dir)
            .env("STARLANE_HOME", &self.home)
            .env_remove("STARLANE_SERVER")
            .env_remove("STARLANE_TOKEN");
        command
    }

    /// Stops the server the way Ctrl-C does (SIGTERM) and waits (up to 20 s) for it to exit,
    /// which it must do successfully.
    pub fn stop(mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !signalled {
            // No `kill` program here: a hard stop still ends the test cleanly.
            let _ = child.kill();
        }
        let status = self.exit_within(std::time::Duration::from_secs(20));
        assert!(
            status.success() || !signalled,
            "starlane serve exited with {status} on SIGTERM"
        );
    }

    /// Sends the server the signal `name` (`STOP`, `CONT`, …) with `kill`.
    ///
    /// # Panics
    /// If the server is not running or `kill` fails.
    pub fn signal(&self, name: &str) {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("the server is not running"));
        let status = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{name} failed: {status}");
        if name == "STOP" {
            // The signal is sent; wait until every thread has stopped (state T).
            let stat = format!("/proc/{}/stat", child.id());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::fs::read_to_string(&stat).ok().and_then(|text| {
                text.rsplit(')')
                    .next()
                    .map(|rest| rest.trim_start().starts_with('T'))
            }) != Some(true)
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the server did not stop"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    /// The server's resident memory now, in KiB (`VmRSS` in `/proc/PID/status`).
    ///
    /// # Panics
    /// If the server is not running or its status cannot be read.
    pub fn resident_kib(&self) -> u64 {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("the server is not running"));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_else(|e| panic!("the server's status: {e}"));
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in the server's status"))
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to die.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the registry of the servers a test starts lives. The suites that drive `starlane
/// serve` run each test on both ([`on_each_registry!`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registry {
    /// The embedded store in the server's data directory.
    Embedded,
    /// A PostgreSQL database (`STARLANE_REGISTRY`): its URL.
    Postgres(String),
}

impl Registry {
    /// A fresh, empty database on this test process's private PostgreSQL
    /// ([`postgres::shared`], started on first use). Its URL carries a password the server
    /// does not ask for (trust authentication), so that tests can check it is never shown.
    ///
    /// # Panics
    /// If PostgreSQL is not installed (saying what to install) or does not start.
    pub fn postgres() -> Registry {
        let url = postgres::shared().database().replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{}@", Registry::PASSWORD),
            1,
        );
        assert!(url.contains(Registry::PASSWORD), "{url}: no password");
        Registry::Postgres(url)
    }

    /// The password in the URLs of [`Registry::postgres`].
    pub const PASSWORD: &str = "never-shown-pw";

    /// Another registry of the same kind, empty: a new database for PostgreSQL (for the
    /// embedded store, a new data directory is a new store).
    pub fn fresh(&self) -> Registry {
        match self {
            Registry::Embedded => Registry::Embedded,
            Registry::Postgres(_) => Registry::postgres(),
        }
    }

    /// Starts `starlane serve` on `home` with this registry ([`Server::start`]).
    pub fn start(&self, home: &Path) -> Server {
        self.start_with(home, &[])
    }

    /// Starts `starlane serve` on `home` with this registry and the extra environment `envs`
    /// ([`Server::start_with`]), and checks that the server keeps its registry where it was
    /// told: a PostgreSQL server must not have opened an embedded store in its data directory.
    ///
    /// # Panics
    /// If the server does not start, or its registry is not where it was told.
    pub fn start_with(&self, home: &Path, envs: &[(&str, &str)]) -> Server {
        let mut all = envs.to_vec();
        if let Registry::Postgres(url) = self {
            all.push(("STARLANE_REGISTRY", url));
        }
        let server = Server::start_with(home, &all);
        let embedded = home.join("registry.redb").exists();
        assert_eq!(
            embedded,
            *self == Registry::Embedded,
            "{self:?}: the server's data directory {} an embedded registry",
            if embedded { "holds" } else { "lacks" }
        );
        server
    }
}

/// Runs each named test function of the calling file — `fn NAME(registry: &Registry)` — once
/// on each registry, as two tests: `embedded::NAME` and `postgres::NAME` (on a fresh database
/// of the test process's private PostgreSQL, which must be installed).
///
/// ```
/// fn a_restart_finds_everything(registry: &tests::Registry) {
///     # let _ = registry;
///     // let server = registry.start(&home); …
/// }
///
/// tests::on_each_registry!(a_restart_finds_everything);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! on_each_registry {
    ($($name:ident),+ $(,)?) => {
        /// Each test on the embedded store in the server's data directory.
        mod embedded {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::Registry::Embedded);
                }
            )+
        }

        /// Each test on a database of its own in PostgreSQL.
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::Registry::postgres());
                }
            )+
        }
    };
}

/// What a command printed on standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed on standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A zip archive holding `files` (path, bytes), as a bundle is shipped.
pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in files {
        archive
            .start_file(*path, options)
            .unwrap_or_else(|e| panic!("zip {path}: {e}"));
        archive
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("zip {path}: {e}"));
    }
    archive
        .finish()
        .unwrap_or_else(|e| panic!("zip: {e}"))
        .into_inner()
}

/// The wasm of the guest crate `name` (`guest_fixtures` or `guest_malformed`), built for
/// `wasm32-unknown-unknown` by `build.rs`.
pub fn guest_wasm(name: &str) -> PathBuf {
    Path::new(env!("STARLANE_GUEST_WASM_DIR")).join(format!("{name}.wasm"))
}

/// The `.mechtron` documents of the fixtures bundle (file name, text): one per mechtron type
/// of `guest_fixtures.wasm`, and one for `guest_malformed.wasm`.
pub const FIXTURE_CONFIGS: [(&str, &str); 6] = [
    (
        "hello.mechtron",
        include_str!("../guests/bundle/config/hello.mechtron"),
    ),
    (
        "counter.mechtron",
        include_str!("../guests/bundle/config/counter.mechtron"),
    ),
    (
        "pinger.mechtron",
        include_str!("../guests/bundle/config/pinger.mechtron"),
    ),
    (
        "troublemaker.mechtron",
        include_str!("../guests/bundle/config/troublemaker.mechtron"),
    ),
    (
        "malformed.mechtron",
        include_str!("../guests/bundle/config/malformed.mechtron"),
    ),
    (
        "slowpoke.mechtron",
        include_str!("../guests/bundle/config/slowpoke.mechtron"),
    ),
];

/// The fixtures bundle as a zip: `wasm/guest_fixtures.wasm`, `wasm/guest_malformed.wasm` and
/// `config/{hello,counter,pinger,troublemaker,malformed,slowpoke}.mechtron`. Published as
/// `localhost:repo:fixtures:1.0.0`, a mechtron is created with e.g.
/// `+config=localhost:repo:fixtures:1.0.0:/config/counter.mechtron`.
pub fn fixtures_bundle() -> Vec<u8> {
    let read = |name: &str| {
        let path = guest_wasm(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    };
    let fixtures = read("guest_fixtures");
    let malformed = read("guest_malformed");
    let configs: Vec<(String, &[u8])> = FIXTURE_CONFIGS
        .iter()
        .map(|(name, text)| (format!("config/{name}"), text.as_bytes()))
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("wasm/guest_fixtures.wasm", &fixtures),
        ("wasm/guest_malformed.wasm", &malformed),
    ];
    files.extend(configs.iter().map(|(name, bytes)| (name.as_str(), *bytes)));
    zip(&files)
}

/// Writes [`fixtures_bundle`] to `dir/bundle.zip` (ready for `publish ^[ bundle.zip ]-> …`)
/// and returns its path.
pub fn write_fixtures_bundle(dir: &Path) -> PathBuf {
    let path = dir.join("bundle.zip");
    std::fs::write(&path, fixtures_bundle())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Runs `starlane ARGS` in `dir` with the environment changes `envs` (`None` removes), and
/// without what a test run sets for its own compilation (so builds it starts are clean).
pub fn starlane_with(dir: &Path, args: &[&str], envs: &[(&str, Option<&str>)]) -> Output {
    let mut command = Command::new(starlane_bin());
    command.args(args).current_dir(dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    for (name, value) in envs {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"))
}

/// `starlane new NAME` in `parent`, which must succeed, with the workspace's `Cargo.lock`
/// copied into the new crate (its builds then resolve offline, to the versions CI tested).
/// Returns the crate's directory.
pub fn scaffold(parent: &Path, name: &str) -> PathBuf {
    let out = starlane(parent, &["new", name]);
    assert!(
        out.status.success(),
        "starlane new {name}: {}",
        stderr(&out)
    );
    let dir = parent.join(name);
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("cannot copy Cargo.lock into {}: {e}", dir.display()));
    dir
}

/// `starlane bundle` in a scaffolded crate: offline, into a target directory kept between
/// runs (`<target>/scaffold`), so a re-run is incremental.
pub fn bundle_scaffold(dir: &Path) -> Output {
    let target = target_root().join("scaffold").display().to_string();
    starlane_with(
        dir,
        &["bundle"],
        &[
            ("CARGO_TARGET_DIR", Some(&target)),
            ("CARGO_NET_OFFLINE", Some("true")),
        ],
    )
}

/// An HTTP response as [`http`] read it.
#[derive(Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first value of the header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request to `addr` — `method path`, the `headers` (`Name: value`) and
/// `body` — on a fresh connection, and reads the whole response. Deliberately small: the
/// gateway's tests should see exactly the bytes a client sends and gets.
pub fn http(addr: &str, method: &str, path: &str, headers: &[&str], body: &[u8]) -> HttpReply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .unwrap_or_else(|e| panic!("cannot send to {addr}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("cannot read from {addr}: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// A port nobody listens on now on 127.0.0.1 (a private server takes it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}
