//! `starlane send POINT METHOD [BODY]`: one Ping, and its Pong printed as a status line and a
//! body (SPEC §13).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use cosmic_space::{Method, Ping, Substance, Surface, WaitTime};

use crate::exec::RunArgs;
use crate::output::Printer;
use crate::remote;

/// Arguments of `starlane send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The target: a point such as localhost:app:hello, or a surface such as
    /// localhost:app@Shell.
    point: String,

    /// The method, e.g. Ext<Hello> or Http<Get>.
    method: String,

    /// The body, sent as text (empty when left out).
    body: Option<String>,

    /// The path inside the target.
    #[arg(long, default_value = "/")]
    path: String,

    #[command(flatten)]
    run: RunArgs,
}

/// Runs `starlane send`; the exit code is non-zero when the Pong's status is 400 or more.
pub fn send(args: &SendArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let to: Surface = args.point.parse()?;
    let method: Method = args.method.parse()?;
    let body = args
        .body
        .as_ref()
        .map(|text| Substance::from(text.as_str()))
        .unwrap_or(Substance::Empty);
    let target = remote::locate(&args.run.remote, home, |name| std::env::var(name).ok())?;
    let wait = WaitTime::from_secs(args.run.wait);
    remote::block_on(async {
        let mut client = remote::connect(&target).await?;
        let ping = Ping::new(Surface::core(client.agent().to_point()), to, method, body)
            .with_path(args.path.clone())
            .with_wait(wait);
        let pong = client.ping(ping).await?;
        let mut printer = Printer::new(
            std::io::stdout().lock(),
            std::io::stderr().lock(),
            args.run.json,
        );
        Ok(if printer.pong(&pong.core)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
