//! `starlane` — the command-line interface of Starlane (SPEC §13).
//!
//! `serve` runs a cosmos on this machine; `exec`, `script`, `send`, `secret`, `status`,
//! `token` and `watch` drive a running one over the control protocol (`cosmic_hyperspace::control`),
//! finding it through `--server`/`--token`, `STARLANE_SERVER`/`STARLANE_TOKEN`, or the data
//! directory the server writes its address and token into; `check` checks documents offline; `new` scaffolds a
//! mechtron crate and `bundle` builds and packs it.
//!
//! Exit status: 0 when everything succeeded, 1 otherwise (the error on standard error), 2 for
//! a command line that does not parse.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use cosmic_hyperspace::control::ENV_HOME;
use cosmic_space::ParseError;

mod bundle;
mod check;
mod exec;
mod new;
mod output;
mod progress;
mod remote;
mod secret;
mod send;
mod serve;
mod status;
mod watch;

/// Starlane: a WebAssembly orchestration framework.
#[derive(Debug, Parser)]
#[command(name = "starlane", version, about, long_about = None)]
struct Cli {
    /// The data directory (default ~/.starlane).
    #[arg(long, global = true, value_name = "DIR", env = ENV_HOME)]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a cosmos on this machine and serve until Ctrl-C.
    Serve(Box<serve::ServeArgs>),
    /// Run commands against a running cosmos, e.g. 'create localhost<Space>; select localhost:**'.
    Exec(exec::ExecArgs),
    /// Run a script file (or `-` for standard input), stopping at the first failure.
    Script(exec::ScriptArgs),
    /// Send one Ping and print the Pong, e.g. `starlane send localhost:app Ext<Hello> world`.
    Send(send::SendArgs),
    /// Store a Secret's value, read from standard input (never from the command line).
    Secret(secret::SecretArgs),
    /// Show the running machine's stars, particles, uptime, addresses and registry.
    Status(status::StatusArgs),
    /// Print what channels publish and what happens to particles, until Ctrl-C, e.g.
    /// `starlane watch 'localhost:chat:**'`.
    Watch(watch::WatchArgs),
    /// Issue a token that acts as a user (HyperUser only).
    Token(status::TokenArgs),
    /// Scaffold a mechtron crate NAME/ that builds as-is (Cargo.toml, src/lib.rs, bundle/).
    New(new::NewArgs),
    /// Build a mechtron crate's wasm (if DIR has a Cargo.toml) and pack its bundle directory
    /// (DIR/bundle, or DIR) into DIR/bundle.zip for `publish`.
    Bundle(bundle::BundleArgs),
    /// Check scripts, bind and mechtron documents, or single expressions, and print them in
    /// canonical form.
    Check(check::CheckArgs),
}

/// mimalloc: the server allocates for every wave, and glibc's malloc (arenas, consolidation)
/// cost a sixth of the CPU of the gateway under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    // The data directory as the command line gives it: each command reads STARLANE_HOME
    // itself (clap reads it too, for the help only).
    let home = cli
        .home
        .as_deref()
        .filter(|_| matches.value_source("home") == Some(ValueSource::CommandLine));
    let result = match &cli.command {
        Command::Serve(args) => matches
            .subcommand_matches("serve")
            .ok_or_else(|| anyhow::anyhow!("the command line lost the arguments of `serve`"))
            .and_then(|serve| serve::serve(&args.settings(serve, home))),
        Command::Exec(args) => exec::exec(args, home),
        Command::Script(args) => exec::script(args, home),
        Command::Send(args) => send::send(args, home),
        Command::Secret(args) => secret::secret(args, home),
        Command::Status(args) => status::status(args, home),
        Command::Token(args) => status::token(args, home),
        Command::Watch(args) => watch::watch(args, home),
        Command::New(args) => new::new(args),
        Command::Bundle(args) => bundle::bundle(args),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`starlane status | head`): stop quietly, as `cat` would.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // A parse error renders itself like rustc (line, caret, expectation).
            match err.downcast_ref::<ParseError>() {
                Some(parse) => eprintln!("{parse}"),
                None => eprintln!("error: {err:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether `err` is, at bottom, a write to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
