//! `starlane secret set POINT`: stores a secret's value, read from standard input — never from
//! the command line, which other users of the host can see in the process list — with
//! `Http<Put>` as the session's agent, and prints only a confirmation (SPEC §13, §17.3).

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use cosmic_space::{HttpMethod, Method, Ping, Point, Substance, Surface, WaitTime};

use crate::exec::RunArgs;
use crate::output::Printer;
use crate::remote;

/// Arguments of `starlane secret`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Store the value of the Secret at POINT, read from standard input (one trailing newline
    /// dropped), e.g. `printf %s "$TOKEN" | starlane secret set localhost:app:api-key`.
    Set(SetArgs),
}

/// Arguments of `starlane secret set`.
#[derive(Debug, Args)]
struct SetArgs {
    /// The Secret, e.g. localhost:app:db-password.
    point: String,

    #[command(flatten)]
    run: RunArgs,
}

/// Runs `starlane secret …`.
pub fn secret(args: &SecretArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    match &args.command {
        SecretCommand::Set(set_args) => {
            let stdin = std::io::stdin();
            let typed = stdin.is_terminal();
            set(set_args, home, &mut stdin.lock(), typed)
        }
    }
}

/// Reads the value from `input` (a terminal when `typed`), then stores it.
fn set(
    args: &SetArgs,
    home: Option<&Path>,
    input: &mut dyn Read,
    typed: bool,
) -> anyhow::Result<ExitCode> {
    let point: Point = args.point.parse()?;
    // Everything that can fail here is checked before the value is read.
    let target = remote::locate(&args.run.remote, home, |name| std::env::var(name).ok())?;
    if typed {
        eprintln!(
            "type the value of {point}, then Ctrl-D on a new line (the terminal shows what you \
             type: prefer piping the value in)"
        );
    }
    let value = read_value(input)?;
    let wait = WaitTime::from_secs(args.run.wait);
    remote::block_on(async {
        let mut client = remote::connect(&target).await?;
        let ping = Ping::new(
            Surface::core(client.agent().to_point()),
            Surface::core(point.clone()),
            Method::Http(HttpMethod::Put),
            Substance::Bin(value),
        )
        .with_wait(wait);
        let pong = client.ping(ping).await?;
        let mut printer = Printer::new(
            std::io::stdout().lock(),
            std::io::stderr().lock(),
            args.run.json,
        );
        if pong.core.is_ok() && !args.run.json {
            println!("set {point}");
            return Ok(ExitCode::SUCCESS);
        }
        // The answer to a Put never carries the value: print it as `send` would.
        Ok(if printer.pong(&pong.core, false)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// The value on `input`: its bytes without one trailing newline (`\n` or `\r\n`), which
/// `echo` and editors add; an empty value is refused.
fn read_value(input: &mut dyn Read) -> anyhow::Result<Vec<u8>> {
    let mut value = Vec::new();
    input
        .read_to_end(&mut value)
        .context("cannot read the value from standard input")?;
    if value.ends_with(b"\r\n") {
        value.truncate(value.len() - 2);
    } else if value.ends_with(b"\n") {
        value.truncate(value.len() - 1);
    }
    if value.is_empty() {
        bail!(
            "the value on standard input is empty: pipe the value in, e.g. \
             `printf %s \"$VALUE\" | starlane secret set POINT` (a secret is never given on \
             the command line)"
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Secret {
        #[command(flatten)]
        args: SecretArgs,
    }

    #[test]
    fn one_trailing_newline_is_dropped_and_nothing_else() {
        for (input, value) in [
            (&b"hunter2\n"[..], &b"hunter2"[..]),
            (b"hunter2\r\n", b"hunter2"),
            (b"hunter2", b"hunter2"),
            (b"two lines\n\n", b"two lines\n"),
            (b" spaced \n", b" spaced "),
            (b"\n\n", b"\n"),
            (b"\x00\xff\n", b"\x00\xff"),
        ] {
            assert_eq!(
                read_value(&mut &input[..]).expect("a value"),
                value,
                "{input:?}"
            );
        }
    }

    #[test]
    fn an_empty_value_is_refused() {
        for input in [&b""[..], b"\n", b"\r\n"] {
            let err = read_value(&mut &input[..]).expect_err("empty");
            assert!(
                err.to_string()
                    .starts_with("the value on standard input is empty: pipe the value in"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_value_is_never_an_argument() {
        let parsed = Secret::try_parse_from(["secret", "set", "localhost:app:key"]);
        assert!(parsed.is_ok(), "{parsed:?}");
        let err = Secret::try_parse_from(["secret", "set", "localhost:app:key", "hunter2"])
            .expect_err("a value as an argument");
        assert!(
            err.to_string().contains("unexpected argument 'hunter2'"),
            "{err}"
        );
    }
}
