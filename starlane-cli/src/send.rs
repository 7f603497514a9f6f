//! `starlane send POINT METHOD [BODY]`: one Ping — with a path, headers, a body from the
//! command line or from a file, and if asked an id of the sender's choosing — and its Pong
//! printed as a status line (with `--include`, the headers too) and a body (SPEC §13).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cosmic_space::{Method, Ping, Substance, Surface, WaitTime, WaveId};

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
    #[arg(conflicts_with = "body_file")]
    body: Option<String>,

    /// Send the bytes of FILE as the body (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,

    /// The path inside the target.
    #[arg(long, default_value = "/")]
    path: String,

    /// A header to send, as 'name: value' (repeat for more).
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        value_parser = parse_header
    )]
    headers: Vec<Header>,

    /// Print the answer's status line and headers, then a blank line, then its body (as
    /// curl -i does); with --json, its headers as a "headers" object.
    #[arg(short = 'i', long)]
    include: bool,

    /// Send the Ping with this id (a UUID) instead of a fresh one: a retry under the same id
    /// is the same request to the target (a key-value increment is applied once per id).
    #[arg(long, value_name = "UUID", value_parser = parse_wave_id)]
    wave_id: Option<WaveId>,

    #[command(flatten)]
    run: RunArgs,
}

/// One `--header`: a name that HTTP would take, and a value without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    name: String,
    value: String,
}

/// Runs `starlane send`; the exit code is non-zero when the Pong's status is 400 or more.
pub fn send(args: &SendArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let to: Surface = args.point.parse()?;
    let method: Method = args.method.parse()?;
    // Read before connecting: a missing file is the command line's fault, not the server's.
    let body = body(args)?;
    let target = remote::locate(&args.run.remote, home, |name| std::env::var(name).ok())?;
    let wait = WaitTime::from_secs(args.run.wait);
    remote::block_on(async {
        let mut client = remote::connect(&target).await?;
        let mut ping = Ping::new(Surface::core(client.agent().to_point()), to, method, body)
            .with_path(args.path.clone())
            .with_wait(wait);
        for header in &args.headers {
            ping.core.headers.append(&header.name, header.value.clone());
        }
        if let Some(id) = args.wave_id {
            ping = ping.with_id(id);
        }
        let pong = client.ping(ping).await?;
        let mut printer = Printer::new(
            std::io::stdout().lock(),
            std::io::stderr().lock(),
            args.run.json,
        );
        Ok(if printer.pong(&pong.core, args.include)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// The body: the BODY argument as text, the bytes of `--body-file` (or of standard input for
/// `-`), or nothing.
fn body(args: &SendArgs) -> anyhow::Result<Substance> {
    match (&args.body_file, &args.body) {
        (Some(file), _) if file == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read the body from standard input")?;
            Ok(Substance::Bin(bytes))
        }
        (Some(file), _) => std::fs::read(file)
            .map(Substance::Bin)
            .with_context(|| format!("cannot read the body file {}", file.display())),
        (None, Some(text)) => Ok(Substance::from(text.as_str())),
        (None, None) => Ok(Substance::Empty),
    }
}

/// The characters a header name may hold besides letters and digits (an RFC 9110 token).
const NAME_SYMBOLS: &str = "!#$%&'*+-.^_`|~";

/// Parses `--header 'name: value'`: the name must be an HTTP token, the value (spaces and
/// tabs around it dropped) may hold no control characters but tabs.
fn parse_header(text: &str) -> Result<Header, String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err("expected 'name: value', with a ':' after the name".to_string());
    };
    if name.is_empty() {
        return Err("the header name is empty: expected 'name: value'".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || NAME_SYMBOLS.contains(*c)))
    {
        return Err(format!(
            "the header name {name:?} contains {bad:?}: a name is letters, digits and \
             {NAME_SYMBOLS} only"
        ));
    }
    let value = value.trim_matches([' ', '\t']);
    if let Some(bad) = value.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!(
            "the value of header {name:?} contains the control character {bad:?}"
        ));
    }
    Ok(Header {
        name: name.to_string(),
        value: value.to_string(),
    })
}

/// Parses `--wave-id`: a UUID, but not the nil one (which means "no id yet").
fn parse_wave_id(text: &str) -> Result<WaveId, String> {
    let id: WaveId = text
        .parse()
        .map_err(|_| "expected a UUID such as 67e55044-10b1-426f-9247-bb680e5fe0c8".to_string())?;
    if id.is_nil() {
        return Err(
            "the nil UUID means 'no id': choose another, or leave --wave-id out for a fresh one"
                .to_string(),
        );
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `starlane send …` as clap parses it.
    #[derive(Debug, Parser)]
    struct Send {
        #[command(flatten)]
        args: SendArgs,
    }

    fn parsed(args: &[&str]) -> Result<SendArgs, clap::Error> {
        Send::try_parse_from(std::iter::once("send").chain(args.iter().copied()))
            .map(|send| send.args)
    }

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn headers_are_name_colon_value_and_may_repeat() {
        let args = parsed(&[
            "localhost:app",
            "Http<Get>",
            "--header",
            "X-Client: cli",
            "-H",
            "accept:text/html",
            "-H",
            "x-empty:",
            "-H",
            "x-spaced: \t a: b \t",
        ])
        .expect("valid headers");
        assert_eq!(
            args.headers,
            [
                header("X-Client", "cli"),
                header("accept", "text/html"),
                header("x-empty", ""),
                header("x-spaced", "a: b"),
            ]
        );
    }

    #[test]
    fn a_malformed_header_names_the_argument_and_what_is_wrong() {
        for (given, expected) in [
            ("no-colon", "with a ':' after the name"),
            (": value", "the header name is empty"),
            ("x y: z", "the header name \"x y\" contains ' '"),
            ("x(y): z", "contains '('"),
            ("é: z", "contains 'é'"),
            (
                "x: a\nb",
                "the value of header \"x\" contains the control character '\\n'",
            ),
        ] {
            let err = parsed(&["localhost", "Http<Get>", "--header", given])
                .expect_err(given)
                .to_string();
            assert!(
                err.contains("--header <NAME: VALUE>") && err.contains(expected),
                "{given:?}: {err}"
            );
        }
    }

    #[test]
    fn the_wave_id_is_a_uuid_and_not_the_nil_one() {
        let args = parsed(&[
            "localhost",
            "Cmd<Read>",
            "--wave-id",
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
        ])
        .expect("a uuid");
        assert_eq!(
            args.wave_id.map(|id| id.to_string()).as_deref(),
            Some("67e55044-10b1-426f-9247-bb680e5fe0c8")
        );
        for (given, expected) in [
            ("42", "expected a UUID such as"),
            (
                "67e55044-10b1-426f-9247-bb680e5fe0cZ",
                "expected a UUID such as",
            ),
            (
                "00000000-0000-0000-0000-000000000000",
                "the nil UUID means 'no id'",
            ),
        ] {
            let err = parsed(&["localhost", "Cmd<Read>", "--wave-id", given])
                .expect_err(given)
                .to_string();
            assert!(
                err.contains("--wave-id <UUID>") && err.contains(expected),
                "{given:?}: {err}"
            );
        }
    }

    #[test]
    fn a_body_comes_from_the_argument_or_a_file_not_both() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("body.bin");
        let bytes = vec![0u8, 159, 146, 150, b'\n', 255];
        std::fs::write(&file, &bytes).expect("written");
        let file = file.to_str().expect("a UTF-8 path");

        let args = parsed(&["localhost", "Http<Put>", "--body-file", file]).expect("a file");
        assert_eq!(body(&args).expect("read"), Substance::Bin(bytes));
        let args = parsed(&["localhost", "Ext<Hello>", "world"]).expect("text");
        assert_eq!(body(&args).expect("text"), Substance::from("world"));
        let args = parsed(&["localhost", "Ext<Hello>"]).expect("no body");
        assert_eq!(body(&args).expect("empty"), Substance::Empty);

        let err = parsed(&["localhost", "Ext<Hello>", "world", "--body-file", file])
            .expect_err("both")
            .to_string();
        assert!(err.contains("cannot be used with"), "{err}");

        let missing = dir.path().join("missing.bin");
        let missing = missing.to_str().expect("a UTF-8 path");
        let args = parsed(&["localhost", "Http<Put>", "--body-file", missing]).expect("parses");
        let err = format!("{:#}", body(&args).expect_err("no such file"));
        assert!(
            err.starts_with(&format!("cannot read the body file {missing}: ")),
            "{err}"
        );
    }
}
