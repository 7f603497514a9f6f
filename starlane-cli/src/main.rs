//! `starlane` — the command-line interface of Starlane.
//!
//! Today it checks documents written in Starlane's grammars (`starlane check`); serving a
//! cosmos and driving it arrive with the hyperspace.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;

/// Starlane: a WebAssembly orchestration framework.
#[derive(Debug, Parser)]
#[command(name = "starlane", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check scripts, bind and mechtron documents, or single expressions, and print them in
    /// canonical form.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
