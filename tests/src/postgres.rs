//! A private PostgreSQL server for tests and benchmarks: its own data directory in a temporary
//! folder, its own free port on 127.0.0.1, trust authentication, `fsync` off (a test's data
//! need not survive the machine). Nothing is shared with a system PostgreSQL service, which
//! need not be running (nor even installed as a service: only the binaries are used).
//!
//! `initdb` and `pg_ctl` refuse to run as root; when the tests run as root (as CI does), they
//! run as the `postgres` OS user that Debian's `postgresql` package creates, through
//! `runuser`, on a folder handed to that user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running private PostgreSQL server; stopped and removed when dropped (or, for one held in
/// a `static`, by a watcher once the test process has exited).
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    databases: AtomicUsize,
}

impl PrivatePostgres {
    /// Initialises and starts a server, and waits until it accepts connections.
    ///
    /// # Panics
    /// If the PostgreSQL binaries are missing (saying what to install) or the server does not
    /// start (with its log).
    pub fn start() -> PrivatePostgres {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("starlane-pg-")
            .tempdir()
            .expect("a temporary folder for PostgreSQL");
        if as_root() {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(server_command(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync"));
        let port = crate::free_port();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
             -c full_page_writes=off -c max_connections=300",
            dir.path().display()
        );
        let log = dir.path().join("postgres.log");
        let started = server_command(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running pg_ctl start");
        if !started.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the private PostgreSQL did not start ({started}):\n{log}");
        }
        watch(&bin, dir.path());
        PrivatePostgres {
            bin,
            dir,
            port,
            databases: AtomicUsize::new(0),
        }
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` as the superuser on the server's `postgres` database with `psql`, and
    /// returns what it printed (unaligned, tuples only): for what a test does behind the
    /// registry's back, such as `pg_terminate_backend`.
    ///
    /// # Panics
    /// If `psql` fails.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// Runs `sql` like [`PrivatePostgres::sql`], on the database `database`: a name, or the
    /// URL of one from [`PrivatePostgres::database`].
    ///
    /// # Panics
    /// If `psql` fails.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "postgres",
                "-d",
                database_name(database),
                "-At",
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| panic!("running psql: {e}"));
        assert!(
            output.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Everything the database `database` (a name or a URL) holds, as `pg_dump` writes it
    /// (`bytea` as hexadecimal text): for tests that look for what must not be stored.
    ///
    /// # Panics
    /// If `pg_dump` fails.
    pub fn dump(&self, database: &str) -> Vec<u8> {
        let output = Command::new(self.bin.join("pg_dump"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database_name(database)])
            .output()
            .unwrap_or_else(|e| panic!("running pg_dump: {e}"));
        assert!(
            output.status.success(),
            "pg_dump {database} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("db{n}");
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", &name]));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = server_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// The name of a database given by name or by URL (`postgres://…/NAME?…`).
fn database_name(database: &str) -> &str {
    match database.split_once("://") {
        Some((_, rest)) => rest
            .rsplit('/')
            .next()
            .and_then(|name| name.split('?').next())
            .unwrap_or(rest),
        None => database,
    }
}

/// This test process's private server, started on first use and shared by its tests (each
/// takes a [`PrivatePostgres::database`] of its own). Held in a `static`, it is never dropped:
/// the watcher stops it and removes its folder once the process has exited.
///
/// # Panics
/// As [`PrivatePostgres::start`] does — in every test that asks, if the binaries are missing.
pub fn shared() -> &'static PrivatePostgres {
    static SHARED: OnceLock<PrivatePostgres> = OnceLock::new();
    SHARED.get_or_init(PrivatePostgres::start)
}

/// The folder of the PostgreSQL binaries: `PG_BIN`, or the newest `/usr/lib/postgresql/*/bin`.
fn binaries() -> PathBuf {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: the PostgreSQL registry tests start a private server \
             from /usr/lib/postgresql/*/bin (initdb, pg_ctl). Install it with \
             `apt-get install postgresql`, or set PG_BIN to the folder holding initdb."
        ),
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A command for a server binary, as the `postgres` user when we are root.
fn server_command(bin: &Path, name: &str) -> Command {
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(name));
        command
    } else {
        Command::new(bin.join(name))
    }
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts a watcher that stops the server and removes its folder once this process has
/// exited: a server held in a `static` is never dropped. The watcher ignores the signals a
/// terminal sends its foreground group (Ctrl-C) and runs in a process group of its own, so it
/// outlives a test run that is interrupted and still cleans up (the server, which `pg_ctl`
/// starts in a session of its own, would otherwise be left running).
fn watch(bin: &Path, dir: &Path) {
    let stop = server_command(bin, "pg_ctl");
    let stop = std::iter::once(stop.get_program())
        .chain(stop.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "trap '' INT HUP TERM QUIT; while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         {stop} -D '{dir}/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display(),
    );
    let mut watcher = Command::new("sh");
    watcher
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut watcher, 0);
    let _ = watcher.spawn();
}
