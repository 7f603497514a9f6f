//! `starlane check`: parse documents and expressions and print their canonical form, or the
//! error with the line and a caret.

use std::fmt::Display;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cosmic_space::{
    Bind, Command, GrantKind, Kind, KindSelector, MechtronConfig, Method, ParseError, Point,
    PointVar, Script, Selector, Span, Surface,
};

/// What a piece of text is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Grammar {
    /// A point, e.g. `localhost:app:users:scott`.
    Point,
    /// A point with `${variables}` or a relative beginning.
    PointVar,
    /// A surface, e.g. `localhost@Shell+Topic<Cli>`.
    Surface,
    /// A kind, e.g. `Artifact<Wasm>`.
    Kind,
    /// A kind selector, e.g. `Artifact<*>`.
    KindSelector,
    /// A selector, e.g. `localhost:**<Mechtron>`.
    Selector,
    /// A method, e.g. `Http<Get>`.
    Method,
    /// What a grant gives: `Super`, a privilege or a mask.
    Grant,
    /// One command, e.g. `create localhost<Space>`.
    Command,
}

/// Arguments of `starlane check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files to check (`-` reads standard input). The extension decides the grammar:
    /// `.script`, `.bind`, `.mechtron`.
    #[arg(required_unless_present = "expr")]
    files: Vec<PathBuf>,

    /// Check one expression instead of files, e.g. `--expr 'localhost:app' --as point`.
    #[arg(long, requires = "grammar")]
    expr: Option<String>,

    /// The grammar of `--expr`.
    #[arg(long = "as", value_enum)]
    grammar: Option<Grammar>,
}

/// Runs `starlane check`; the exit code is non-zero if anything failed to parse.
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    if let (Some(expr), Some(grammar)) = (&args.expr, args.grammar) {
        failed |= report(None, check_expr(grammar, expr));
    }
    for file in &args.files {
        let (name, text) = read(file)?;
        let result = check_document(file, &text).map_err(|e| e.in_file(name.clone()));
        failed |= report(Some(&name), result);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn read(file: &Path) -> anyhow::Result<(String, String)> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(("<stdin>".to_string(), text));
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((file.display().to_string(), text))
}

/// Prints the canonical form or the error; returns true on failure.
fn report(name: Option<&str>, result: Result<String, ParseError>) -> bool {
    match result {
        Ok(canonical) => {
            if let Some(name) = name {
                println!("{name}: ok");
            }
            println!("{canonical}");
            false
        }
        Err(err) => {
            eprintln!("{err}");
            true
        }
    }
}

fn canonical<T>(text: &str) -> Result<String, ParseError>
where
    T: FromStr<Err = ParseError> + Display,
{
    text.parse::<T>().map(|value| value.to_string())
}

fn check_expr(grammar: Grammar, text: &str) -> Result<String, ParseError> {
    match grammar {
        Grammar::Point => canonical::<Point>(text),
        Grammar::PointVar => canonical::<PointVar>(text),
        Grammar::Surface => canonical::<Surface>(text),
        Grammar::Kind => canonical::<Kind>(text),
        Grammar::KindSelector => canonical::<KindSelector>(text),
        Grammar::Selector => canonical::<Selector>(text),
        Grammar::Method => canonical::<Method>(text),
        Grammar::Grant => canonical::<GrantKind>(text),
        Grammar::Command => canonical::<Command>(text),
    }
}

fn check_document(file: &Path, text: &str) -> Result<String, ParseError> {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    match extension {
        "script" => canonical::<Script>(text),
        "bind" => canonical::<Bind>(text),
        "mechtron" => canonical::<MechtronConfig>(text),
        other => Err(ParseError::new(
            "file",
            "",
            Span::at(0),
            format!("cannot tell what '.{other}' files hold: use .script, .bind or .mechtron"),
        )),
    }
}
