//! `starlane serve`: resolve the machine's settings (flags, environment, `starlane.toml`,
//! defaults), start the machine, say where it listens, and run until Ctrl-C or SIGTERM, then
//! shut down cleanly (SPEC §13).
//!
//! Standard output says where it listens (tests and scripts read it); everything the server
//! logs goes to standard error, through the `tracing` subscriber installed here (SPEC §19):
//! filtered by `STARLANE_LOG` (`RUST_LOG` syntax, default `info`), as text or, with
//! `STARLANE_LOG_FORMAT=json`, one JSON object per line.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use cosmic_hyperspace::control::{
    ENV_CONTROL, ENV_COSMOS, ENV_DEFAULT_SPACE, ENV_GRACE, ENV_GUEST_QUEUE, ENV_HTTP,
    ENV_HTTP_MAX_BODY, ENV_HTTP_READ_TIMEOUT, ENV_HTTP_WAIT, ENV_LEASE, ENV_LOG, ENV_LOG_FORMAT,
    ENV_MACHINE, ENV_METRICS, ENV_NATS, ENV_REGISTRY, ENV_STAR_CAPACITY, ENV_STARS,
    ENV_WASM_MAX_WORKERS, ENV_WASM_WORKERS, LogConfig, LogFormat, MachineConfig, Setting, Settings,
};
use cosmic_hyperspace::machine::Machine;
use tracing_subscriber::EnvFilter;

/// What `starlane serve --help` says after the flags.
const AFTER_HELP: &str = "\
Each setting comes from its flag, else its environment variable, else starlane.toml in the data
directory (--home, STARLANE_HOME, default ~/.starlane), else its default.

Environment only:
  STARLANE_SECRET_KEY  the key secrets are sealed with: 64 hexadecimal digits (e.g. `openssl rand
                       -hex 32`), the same on every machine of a cosmos; never a flag or a key of
                       starlane.toml (unset: secret.key in the data directory, created owner-only)";

/// Arguments of `starlane serve`: every setting of the machine, each with its environment
/// variable (`[env: …]` in the help) and its key in `starlane.toml`. The values are checked
/// by [`MachineConfig::resolve`], which also reads the variables and the file; clap's own
/// reading of the variables only fills the help (see [`ServeArgs::settings`]).
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ServeArgs {
    /// Where the control protocol listens, IP:PORT; port 0 picks a free port (starlane.toml:
    /// [control] listen; default 127.0.0.1:4343).
    #[arg(long, value_name = "ADDR", env = ENV_CONTROL)]
    control: Option<String>,

    /// Where the HTTP gateway listens, IP:PORT; port 0 picks a free port (starlane.toml:
    /// [http] listen; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", env = ENV_HTTP)]
    http: Option<String>,

    /// How many stars to run, 1 to 1024 (starlane.toml: stars; default: the number of cores).
    #[arg(long, value_name = "N", env = ENV_STARS)]
    stars: Option<String>,

    /// This machine's name in the cosmos, part of its stars' keys (starlane.toml: machine;
    /// default: a name generated once and kept in the data directory).
    #[arg(long, value_name = "NAME", env = ENV_MACHINE)]
    machine: Option<String>,

    /// Keep the registry in PostgreSQL, postgres://USER:PASSWORD@HOST:PORT/DATABASE, shared by
    /// the machines of a cosmos (starlane.toml: [registry] url; default: the embedded store in
    /// the data directory). A password on the command line is visible to other users of the
    /// host: prefer the variable or starlane.toml.
    #[arg(long, value_name = "URL", env = ENV_REGISTRY, hide_env_values = true)]
    registry: Option<String>,

    /// Join a cosmos of several machines over this NATS, nats://HOST:PORT (credentials as
    /// nats://USER:PASSWORD@HOST:PORT); needs the registry in PostgreSQL (starlane.toml:
    /// [cluster] nats; default: none, this machine alone).
    #[arg(long, value_name = "URL", env = ENV_NATS, hide_env_values = true)]
    nats: Option<String>,

    /// The cosmos's name: several cosmoses can share one NATS (starlane.toml: [cluster]
    /// cosmos; default: default).
    #[arg(long, value_name = "NAME", env = ENV_COSMOS)]
    cosmos: Option<String>,

    /// How long a machine's lease lasts, in milliseconds: a machine silent that long is
    /// declared dead (starlane.toml: [cluster] lease; default 2000).
    #[arg(long, value_name = "MS", env = ENV_LEASE)]
    lease: Option<String>,

    /// The Space of HTTP requests whose host is not a Space (starlane.toml: [http]
    /// default-space; default localhost).
    #[arg(long, value_name = "SPACE", env = ENV_DEFAULT_SPACE)]
    default_space: Option<String>,

    /// How long an HTTP request waits for its answer, in seconds, then 504 (starlane.toml:
    /// [http] wait; default 30).
    #[arg(long, value_name = "SECS", env = ENV_HTTP_WAIT)]
    http_wait: Option<String>,

    /// The largest HTTP request body, in bytes, then 413 (starlane.toml: [http] max-body;
    /// default 16777216).
    #[arg(long, value_name = "BYTES", env = ENV_HTTP_MAX_BODY)]
    http_max_body: Option<String>,

    /// How long an HTTP request's head, then its body, may take to arrive, in milliseconds;
    /// also how long an idle keep-alive connection stays open (starlane.toml: [http]
    /// read-timeout; default 10000).
    #[arg(long, value_name = "MS", env = ENV_HTTP_READ_TIMEOUT)]
    http_read_timeout: Option<String>,

    /// Which log events are written, RUST_LOG syntax, e.g. warn,cosmic_hyperspace=debug
    /// (starlane.toml: [log] filter; default info).
    #[arg(long, value_name = "FILTER", env = ENV_LOG)]
    log: Option<String>,

    /// How log events are written: text, or json for machines (starlane.toml: [log] format;
    /// default text).
    #[arg(long, value_name = "FORMAT", env = ENV_LOG_FORMAT)]
    log_format: Option<String>,

    /// Where the Prometheus metrics endpoint listens, IP:PORT, or off (starlane.toml:
    /// [metrics] listen; default off).
    #[arg(long, value_name = "ADDR", env = ENV_METRICS)]
    metrics: Option<String>,

    /// On Ctrl-C or SIGTERM, how long HTTP requests, control requests and waves under way have
    /// to finish, in seconds; then they are cut off (starlane.toml: [shutdown] grace; default
    /// 10).
    #[arg(long, value_name = "SECS", env = ENV_GRACE)]
    grace: Option<String>,

    /// Waves in flight on one star before it answers 503 at once (starlane.toml: [host]
    /// star-capacity; default 4096).
    #[arg(long, value_name = "N", env = ENV_STAR_CAPACITY)]
    star_capacity: Option<String>,

    /// Wasm worker threads kept warm, 0 for one per core (starlane.toml: [host] wasm-workers;
    /// default 0).
    #[arg(long, value_name = "N", env = ENV_WASM_WORKERS)]
    wasm_workers: Option<String>,

    /// Most wasm worker threads when guests are busy or waiting (starlane.toml: [host]
    /// wasm-max-workers; default 256).
    #[arg(long, value_name = "N", env = ENV_WASM_MAX_WORKERS)]
    wasm_max_workers: Option<String>,

    /// Calls waiting for one guest before it answers 503 (starlane.toml: [host] guest-queue;
    /// default 256).
    #[arg(long, value_name = "N", env = ENV_GUEST_QUEUE)]
    guest_queue: Option<String>,
}

impl ServeArgs {
    /// The settings given on the command line (`matches` are `serve`'s; `home` is the
    /// `--home` flag's). A value clap took from an environment variable is left out:
    /// [`MachineConfig::resolve`] reads the variables itself, so that an error names the
    /// variable, not the flag.
    pub fn settings(&self, matches: &ArgMatches, home: Option<&Path>) -> Settings {
        let mut settings = Settings {
            home: home.map(Path::to_path_buf),
            ..Settings::default()
        };
        for (setting, value) in self.values() {
            let on_command_line =
                matches.value_source(&arg_id(&setting)) == Some(ValueSource::CommandLine);
            if let (true, Some(slot)) = (on_command_line, settings.slot_mut(&setting)) {
                slot.clone_from(value);
            }
        }
        settings
    }

    /// Each setting with its value.
    fn values(&self) -> [(Setting, &Option<String>); 20] {
        [
            (Setting::CONTROL, &self.control),
            (Setting::HTTP, &self.http),
            (Setting::STARS, &self.stars),
            (Setting::MACHINE, &self.machine),
            (Setting::REGISTRY, &self.registry),
            (Setting::NATS, &self.nats),
            (Setting::COSMOS, &self.cosmos),
            (Setting::LEASE, &self.lease),
            (Setting::DEFAULT_SPACE, &self.default_space),
            (Setting::HTTP_WAIT, &self.http_wait),
            (Setting::HTTP_MAX_BODY, &self.http_max_body),
            (Setting::HTTP_READ_TIMEOUT, &self.http_read_timeout),
            (Setting::LOG, &self.log),
            (Setting::LOG_FORMAT, &self.log_format),
            (Setting::METRICS, &self.metrics),
            (Setting::GRACE, &self.grace),
            (Setting::STAR_CAPACITY, &self.star_capacity),
            (Setting::WASM_WORKERS, &self.wasm_workers),
            (Setting::WASM_MAX_WORKERS, &self.wasm_max_workers),
            (Setting::GUEST_QUEUE, &self.guest_queue),
        ]
    }
}

/// clap's id of a setting's argument: its flag's field (`--http-wait` → `http_wait`).
fn arg_id(setting: &Setting) -> String {
    setting.flag.trim_start_matches('-').replace('-', "_")
}

/// What `serve` needs of a started machine (a trait so the printing and shutdown sequence can
/// be tested without starting one).
pub trait Served {
    /// The address the control protocol listens on (the port chosen, if 0 was asked).
    fn control_addr(&self) -> SocketAddr;

    /// The address the HTTP gateway listens on.
    fn http_addr(&self) -> SocketAddr;

    /// The address the metrics are served on, if they are.
    fn metrics_addr(&self) -> Option<SocketAddr>;

    /// Stops the machine cleanly.
    fn shutdown(self) -> impl Future<Output = anyhow::Result<()>>;
}

/// Runs `starlane serve` with the settings given on the command line (`flags`).
pub fn serve(flags: &Settings) -> anyhow::Result<ExitCode> {
    let config = MachineConfig::resolve(flags, |name| std::env::var(name).ok())?;
    install_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(start_and_run(config));
    // What is still running past the shutdown's grace (a compile on the blocking pool) does
    // not hold the process.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Installs the subscriber every `tracing` event of the server goes through: `log`'s filter
/// and format, on standard error.
fn install_logging(log: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::builder().parse(&log.filter).map_err(|err| {
        anyhow::anyhow!(
            "STARLANE_LOG = '{}' is not a log filter ({err}): write levels and targets as \
             RUST_LOG does, e.g. info or info,starlane::wave=debug",
            log.filter
        )
    })?;
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.format {
        LogFormat::Text => lines
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => lines.json().flatten_event(true).try_init(),
    };
    installed.map_err(|err| anyhow::anyhow!("cannot install the log subscriber: {err}"))
}

/// Starts the machine with `config` and serves until a shutdown signal.
async fn start_and_run(config: MachineConfig) -> anyhow::Result<()> {
    let home = config.home.clone();
    let registry = config.registry_description();
    let (control, http) = (config.control, config.http);
    let machine = Machine::start(config)
        .await
        .with_context(|| format!("cannot start a machine in {}", home.display()))?;
    let served = Started {
        machine,
        control,
        http,
    };
    let place = Place {
        home: &home,
        registry: &registry,
    };
    run_until(served, place, &mut std::io::stdout(), shutdown_signal()).await
}

/// Where a served machine keeps its data, as `serve` prints it.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The data directory.
    pub home: &'a Path,
    /// Where the registry lives (no password).
    pub registry: &'a str,
}

/// A started machine, with the addresses it was asked for in case it did not report them.
struct Started {
    machine: Machine,
    control: SocketAddr,
    http: SocketAddr,
}

impl Served for Started {
    fn control_addr(&self) -> SocketAddr {
        self.machine.control_addr().unwrap_or(self.control)
    }

    fn http_addr(&self) -> SocketAddr {
        self.machine.http_addr().unwrap_or(self.http)
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.machine.metrics_addr()
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.machine.shutdown().await;
        Ok(())
    }
}

/// Prints where `machine` listens and keeps its data, waits for `stop`, then shuts it down.
pub async fn run_until<M: Served>(
    machine: M,
    place: Place<'_>,
    out: &mut dyn Write,
    stop: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    writeln!(out, "starlane is serving")?;
    writeln!(out, "  control  {}", machine.control_addr())?;
    writeln!(out, "  http     http://{}", machine.http_addr())?;
    if let Some(metrics) = machine.metrics_addr() {
        writeln!(out, "  metrics  http://{metrics}/metrics")?;
    }
    writeln!(out, "  data     {}", place.home.display())?;
    writeln!(out, "  registry {}", place.registry)?;
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;
    let waited = stop.await;
    writeln!(out, "stopping")?;
    out.flush()?;
    machine.shutdown().await?;
    writeln!(out, "stopped")?;
    waited
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot listen for Ctrl-C"),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Fake {
        stopped: Arc<AtomicBool>,
        metrics: Option<SocketAddr>,
    }

    impl Served for Fake {
        fn control_addr(&self) -> SocketAddr {
            "127.0.0.1:4343".parse().unwrap()
        }

        fn http_addr(&self) -> SocketAddr {
            "127.0.0.1:8080".parse().unwrap()
        }

        fn metrics_addr(&self) -> Option<SocketAddr> {
            self.metrics
        }

        async fn shutdown(self) -> anyhow::Result<()> {
            self.stopped.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn serving_prints_the_addresses_and_shuts_down_on_the_signal() {
        let stopped = Arc::new(AtomicBool::new(false));
        let machine = Fake {
            stopped: stopped.clone(),
            metrics: None,
        };
        let mut out = Vec::new();
        let place = Place {
            home: Path::new("/data"),
            registry: "postgres://scott:***@db:5432/cosmos",
        };
        run_until(machine, place, &mut out, async { Ok(()) })
            .await
            .unwrap();
        assert!(stopped.load(Ordering::SeqCst));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "starlane is serving\n  control  127.0.0.1:4343\n  http     http://127.0.0.1:8080\n  \
             data     /data\n  registry postgres://scott:***@db:5432/cosmos\npress Ctrl-C to stop\n\
             stopping\nstopped\n"
        );
    }

    /// `starlane serve ARGS` as clap reads it: the arguments and their matches.
    fn parsed(args: &[&str]) -> (ServeArgs, ArgMatches) {
        #[derive(Debug, clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        use clap::{CommandFactory, FromArgMatches};
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let matches = Serve::command().try_get_matches_from(all).unwrap();
        (Serve::from_arg_matches(&matches).unwrap().args, matches)
    }

    #[test]
    fn every_setting_has_its_flag() {
        for setting in Setting::ALL {
            let (args, matches) = parsed(&[setting.flag, "given"]);
            let mut settings = args.settings(&matches, None);
            assert_eq!(
                settings.slot_mut(&setting).unwrap().as_deref(),
                Some("given"),
                "{}",
                setting.flag
            );
            *settings.slot_mut(&setting).unwrap() = None;
            assert_eq!(settings, Settings::default(), "{}", setting.flag);
        }
    }

    #[tokio::test]
    async fn the_metrics_address_follows_the_http_one_when_they_are_served() {
        let machine = Fake {
            stopped: Arc::new(AtomicBool::new(false)),
            metrics: Some("127.0.0.1:9464".parse().unwrap()),
        };
        let mut out = Vec::new();
        let place = Place {
            home: Path::new("/data"),
            registry: "embedded, in /data",
        };
        run_until(machine, place, &mut out, async { Ok(()) })
            .await
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with(
                "starlane is serving\n  control  127.0.0.1:4343\n  http     http://127.0.0.1:8080\n  \
                 metrics  http://127.0.0.1:9464/metrics\n  data     /data\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_bad_log_filter_is_refused_saying_what_to_write() {
        let log = LogConfig {
            filter: "info,starlane=loud".to_string(),
            format: LogFormat::Text,
        };
        let err = install_logging(&log).unwrap_err().to_string();
        assert!(
            err.starts_with("STARLANE_LOG = 'info,starlane=loud' is not a log filter"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_address_is_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let (args, matches) = parsed(&["--control", "nowhere"]);
        let err = serve(&args.settings(&matches, Some(dir.path()))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--control = 'nowhere' is not a listen address: write IP:PORT, e.g. 127.0.0.1:4343"
        );
    }
}
