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

use anyhow::Context;
use clap::Args;
use cosmic_hyperspace::control::{LogConfig, LogFormat, MachineConfig, Settings};
use cosmic_hyperspace::machine::Machine;
use tracing_subscriber::EnvFilter;

/// Arguments of `starlane serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the control protocol listens, IP:PORT (default: STARLANE_CONTROL, starlane.toml,
    /// 127.0.0.1:4343; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    control: Option<String>,

    /// Where the HTTP gateway listens, IP:PORT (default: STARLANE_HTTP, starlane.toml,
    /// 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,

    /// How many stars to run (default: STARLANE_STARS, starlane.toml, the number of cores).
    #[arg(long, value_name = "N")]
    stars: Option<String>,

    /// This machine's name in the cosmos, part of its stars' keys (default: STARLANE_MACHINE,
    /// starlane.toml, a name generated once and kept in the data directory).
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,

    /// Keep the registry in PostgreSQL, postgres://USER:PASSWORD@HOST:PORT/DATABASE (or
    /// postgresql://…), shared by the machines of a cosmos (default: STARLANE_REGISTRY,
    /// starlane.toml, the embedded store in the data directory). A password on the command
    /// line is visible to other users of the host: prefer STARLANE_REGISTRY or starlane.toml.
    #[arg(long, value_name = "URL")]
    registry: Option<String>,

    /// Join a cosmos of several machines over this NATS, nats://HOST:PORT (credentials as
    /// nats://USER:PASSWORD@HOST:PORT). Needs the registry in PostgreSQL, shared by every
    /// machine of the cosmos (default: STARLANE_NATS, starlane.toml, none: this machine alone).
    #[arg(long, value_name = "URL")]
    nats: Option<String>,

    /// The cosmos's name: several cosmoses can share one NATS (default: STARLANE_COSMOS,
    /// starlane.toml, default).
    #[arg(long, value_name = "NAME")]
    cosmos: Option<String>,
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

/// Runs `starlane serve`.
pub fn serve(args: &ServeArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let flags = Settings {
        home: home.map(Path::to_path_buf),
        control: args.control.clone(),
        http: args.http.clone(),
        stars: args.stars.clone(),
        machine: args.machine.clone(),
        registry: args.registry.clone(),
        nats: args.nats.clone(),
        cosmos: args.cosmos.clone(),
    };
    let config = MachineConfig::resolve(&flags, |name| std::env::var(name).ok())?;
    install_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(start_and_run(config))?;
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
        let bad = ServeArgs {
            control: Some("nowhere".into()),
            http: None,
            stars: None,
            machine: None,
            registry: None,
            nats: None,
            cosmos: None,
        };
        let err = serve(&bad, Some(dir.path())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--control = 'nowhere' is not a listen address: write IP:PORT, e.g. 127.0.0.1:4343"
        );
    }
}
