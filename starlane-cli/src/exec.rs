//! `starlane exec` and `starlane script`: parse commands locally (a parse error is shown with
//! its caret and nothing is sent), then send each to `GLOBAL::executor` as a
//! `Cmd<RawCommand>` Ping and print its answer, stopping at the first failure (SPEC §10, §13).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use cosmic_hyperspace::BundleLimits;
use cosmic_hyperspace::control::Client;
use cosmic_space::{Command, Ping, RawCommand, Script, Surface, WaitTime};

use crate::output::{Origin, Printer, human_bytes};
use crate::progress::UploadBar;
use crate::remote::{self, RemoteArgs};

/// Options shared by the commands that send waves.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Print each answer as one line of JSON.
    #[arg(long)]
    pub json: bool,

    /// How long each command may take before it is answered with 408, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub wait: u64,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Arguments of `starlane exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Commands separated by `;`, e.g. 'create localhost<Space>; select localhost:**'.
    commands: String,

    #[command(flatten)]
    run: RunArgs,
}

/// Arguments of `starlane script`.
#[derive(Debug, Args)]
pub struct ScriptArgs {
    /// The script file (`-` reads standard input).
    file: PathBuf,

    #[command(flatten)]
    run: RunArgs,
}

/// Runs `starlane exec`.
pub fn exec(args: &ExecArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let script = args
        .commands
        .parse::<Script>()
        .map_err(|err| err.in_file("<command line>"))?;
    run(&script, false, &args.run, home)
}

/// Runs `starlane script`.
pub fn script(args: &ScriptArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (name, text) = if args.file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the script from standard input")?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        (args.file.display().to_string(), text)
    };
    let script = text
        .parse::<Script>()
        .map_err(|err| err.in_file(name.clone()))?;
    run(&script, true, &args.run, home)
}

fn run(
    script: &Script,
    report: bool,
    args: &RunArgs,
    home: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if script.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    check_transfers(script)?;
    let target = remote::locate(&args.remote, home, |name| std::env::var(name).ok())?;
    let wait = WaitTime::from_secs(args.wait);
    remote::block_on(async {
        let mut client = remote::connect(&target).await?;
        let mut printer = Printer::new(
            std::io::stdout().lock(),
            std::io::stderr().lock(),
            args.json,
        );
        let ok = run_commands(&mut client, script, report, wait, &mut printer).await?;
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Sends the script's commands one by one and prints their answers; stops at the first
/// failure and returns whether every command succeeded. With `report`, each command is named
/// on standard error (`line 3: create …`) before it runs.
pub async fn run_commands<O: Write, E: Write>(
    client: &mut Client,
    script: &Script,
    report: bool,
    wait: WaitTime,
    printer: &mut Printer<O, E>,
) -> anyhow::Result<bool> {
    for command in script.commands() {
        let line = command.line;
        let text = command.command.to_string();
        let at = || {
            if report {
                format!("line {line}: {text}")
            } else {
                text.clone()
            }
        };
        if report {
            printer.note(&format!("line {line}: {text}"))?;
        }
        let raw = raw_command(&command.command, &text).with_context(at)?;
        let upload: u64 = raw.transfers.iter().map(|t| t.bytes.len() as u64).sum();
        let label = raw
            .transfers
            .first()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let ping = Ping::command(Surface::core(client.agent().to_point()), raw).with_wait(wait);
        let mut bar = UploadBar::new(label, upload);
        let pong = client
            .ping_with_progress(ping, |progress| bar.update(progress))
            .await
            .with_context(at)?;
        let origin = Origin {
            line: report.then_some(line),
            command: Some(&text),
        };
        if !printer.answer(origin, &pong.core)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The command as text with the local files it publishes (read relative to the current
/// directory).
fn raw_command(command: &Command, line: &str) -> anyhow::Result<RawCommand> {
    let mut raw = RawCommand::new(line);
    for name in command.transfers() {
        let bytes = std::fs::read(name).with_context(|| format!("cannot read {name}"))?;
        raw = raw.with_transfer(name, bytes);
    }
    Ok(raw)
}

/// Before anything is sent: every file the script publishes exists and is not larger than a
/// bundle may be.
fn check_transfers(script: &Script) -> anyhow::Result<()> {
    let limit = BundleLimits::DEFAULT_MAX_ARCHIVE;
    for command in script.commands() {
        for name in command.command.transfers() {
            let metadata = std::fs::metadata(name)
                .with_context(|| format!("line {}: cannot publish {name}", command.line))?;
            if !metadata.is_file() {
                bail!(
                    "line {}: cannot publish {name}: it is not a file",
                    command.line
                );
            }
            if metadata.len() > limit {
                bail!(
                    "line {}: {name} is {}; a bundle may be at most {}",
                    command.line,
                    human_bytes(metadata.len()),
                    human_bytes(limit)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::sync::Mutex;

    use async_trait::async_trait;
    use cosmic_hyperspace::control::{self, ControlError, ControlService, StatusReport};
    use cosmic_space::{Agent, Point, Pong, ReflectedCore, StatusCode, Stub, Substance};
    use tokio::net::TcpListener;

    use super::*;

    /// Records what it is sent; answers `create` with the point, `select` with a stub list,
    /// `read` with bytes, `publish` with the size of the transfer, and anything else with 409.
    struct Executor {
        seen: Mutex<Vec<RawCommand>>,
    }

    impl Executor {
        fn lines(&self) -> Vec<String> {
            self.seen
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.line.clone())
                .collect()
        }
    }

    #[async_trait]
    impl ControlService for Executor {
        async fn watch(
            &self,
            _agent: Agent,
            _selector: cosmic_space::Selector,
        ) -> Result<cosmic_hyperspace::channel::Watch, cosmic_hyperspace::channel::WatchError>
        {
            Err(cosmic_hyperspace::channel::WatchError::Unavailable(
                "this fake".into(),
            ))
        }

        async fn authenticate(&self, token: &str) -> Option<Agent> {
            (token == "t").then_some(Agent::HyperUser)
        }

        async fn ping(&self, _agent: Agent, ping: Ping) -> Pong {
            let Substance::RawCommand(raw) = ping.core.body.clone() else {
                return ping.pong(ReflectedCore::bad_request("not a raw command"));
            };
            self.seen.lock().unwrap().push(raw.clone());
            let command: Command = raw.line.parse().unwrap();
            let core = match command.verb() {
                "create" => ReflectedCore::ok(Substance::Point("localhost".parse().unwrap())),
                "select" => ReflectedCore::ok(Substance::List(vec![Substance::from(Stub {
                    point: "localhost".parse().unwrap(),
                    kind: "Space".parse().unwrap(),
                    status: "Ready".parse().unwrap(),
                })])),
                "read" => ReflectedCore::ok(Substance::Bin(vec![0, 1, 2, b'\n'])),
                "publish" => ReflectedCore::ok(Substance::Int(
                    raw.transfers.iter().map(|t| t.bytes.len() as i64).sum(),
                )),
                _ => ReflectedCore::error(StatusCode::CONFLICT, "localhost already exists"),
            };
            ping.pong(core)
        }

        async fn status(&self) -> StatusReport {
            StatusReport::default()
        }

        async fn issue_token(&self, _by: &Agent, _agent: Point) -> Result<String, ControlError> {
            Ok("x".into())
        }
    }

    async fn session() -> (Client, Arc<Executor>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let executor = Arc::new(Executor {
            seen: Mutex::new(Vec::new()),
        });
        let service: Arc<dyn ControlService> = executor.clone();
        tokio::spawn(control::serve(listener, service, std::future::pending()));
        (Client::connect(addr, "t").await.unwrap(), executor)
    }

    async fn run_text(
        client: &mut Client,
        text: &str,
        report: bool,
        json: bool,
    ) -> (bool, Vec<u8>, String) {
        let script: Script = text.parse().unwrap();
        let mut printer = Printer::new(Vec::new(), Vec::new(), json);
        let ok = run_commands(
            client,
            &script,
            report,
            WaitTime::from_secs(5),
            &mut printer,
        )
        .await
        .unwrap();
        let (out, err) = printer.into_parts();
        (ok, out, String::from_utf8(err).unwrap())
    }

    #[tokio::test]
    async fn each_command_is_sent_as_a_raw_command_and_printed() {
        let (mut client, executor) = session().await;
        let (ok, out, err) = run_text(
            &mut client,
            "create localhost<Space>;\nselect localhost:**;\nread localhost:f:/a",
            false,
            false,
        )
        .await;
        assert!(ok);
        assert_eq!(err, "");
        let mut expected =
            b"localhost\nPOINT      KIND   STATUS\nlocalhost  Space  Ready\n".to_vec();
        expected.extend_from_slice(&[0, 1, 2, b'\n']);
        assert_eq!(out, expected);
        assert_eq!(
            executor.lines(),
            [
                "create localhost<Space>",
                "select localhost:**",
                "read localhost:f:/a"
            ]
        );
    }

    #[tokio::test]
    async fn a_script_reports_lines_and_stops_at_the_first_failure() {
        let (mut client, executor) = session().await;
        let (ok, out, err) = run_text(
            &mut client,
            "# setup\ncreate localhost<Space>;\ndelete localhost;\nselect localhost:**;",
            true,
            false,
        )
        .await;
        assert!(!ok);
        assert_eq!(out, b"localhost\n");
        assert_eq!(
            err,
            "line 2: create localhost<Space>\nline 3: delete localhost\n\
             error: line 3: 409 localhost already exists\n"
        );
        assert_eq!(
            executor.lines(),
            ["create localhost<Space>", "delete localhost"]
        );
    }

    #[tokio::test]
    async fn json_prints_a_line_per_answer() {
        let (mut client, _) = session().await;
        let (ok, out, _) = run_text(&mut client, "create localhost<Space>", false, true).await;
        assert!(ok);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"body\":\"localhost\",\"command\":\"create localhost<Space>\",\"ok\":true,\"status\":200}\n"
        );
    }

    #[tokio::test]
    async fn publish_uploads_the_local_file() {
        let (mut client, executor) = session().await;
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("bundle.zip");
        std::fs::write(&zip, vec![7u8; 3000]).unwrap();
        let text = format!(
            "publish ^[ {} ]-> localhost:repo:hello:1.0.0",
            zip.display()
        );
        let script: Script = text.parse().unwrap();
        check_transfers(&script).unwrap();
        let (ok, out, _) = run_text(&mut client, &text, false, false).await;
        assert!(ok);
        assert_eq!(out, b"3000\n");
        let raw = executor.seen.lock().unwrap()[0].clone();
        assert_eq!(raw.transfers.len(), 1);
        assert_eq!(raw.transfers[0].name, zip.display().to_string());
        assert_eq!(raw.transfers[0].bytes, vec![7u8; 3000]);
    }

    #[test]
    fn a_missing_file_is_refused_before_anything_is_sent() {
        let script: Script =
            "create localhost<Space>;\npublish ^[ no-such.zip ]-> localhost:r:b:1.0.0"
                .parse()
                .unwrap();
        let err = check_transfers(&script).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("line 2: cannot publish no-such.zip: "),
            "{err:#}"
        );
    }
}
