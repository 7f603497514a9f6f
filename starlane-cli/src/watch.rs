//! `starlane watch SELECTOR` (SPEC §18): prints what the selected channels publish and what
//! happens to the selected particles, as the session's agent may read it, until Ctrl-C.
//!
//! Text: one line per wave — `POINT  event NAME  STUB` for a lifecycle event, `POINT  METHOD
//! BODY  (by PUBLISHER)` for a message. `--json`: one object per line with `from`, `method`,
//! `path`, `headers`, `body`, and `event` or `publisher`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cosmic_space::{EVENT, PUBLISHER, Selector, Signal, event_of};
use serde_json::{Map, Value, json};

use crate::output::{inline, substance_json};
use crate::remote::{self, RemoteArgs};

/// Arguments of `starlane watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch, e.g. `localhost:chat:**` (channels' messages and particles' events).
    selector: String,

    /// Print one JSON object per wave.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    remote: RemoteArgs,
}

/// Runs `starlane watch` until Ctrl-C (exit 0) or the server ends the watch.
pub fn watch(args: &WatchArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let selector: Selector = args.selector.parse()?;
    let target = remote::locate(&args.remote, home, |name| std::env::var(name).ok())?;
    remote::block_on(async {
        let client = remote::connect(&target).await?;
        let mut watching = client.watch(selector.clone()).await?;
        // On standard error, so that standard output holds only what was delivered.
        eprintln!("watching {selector} (Ctrl-C to stop)");
        let mut out = io::stdout().lock();
        loop {
            tokio::select! {
                interrupted = tokio::signal::ctrl_c() => {
                    interrupted.context("cannot listen for Ctrl-C")?;
                    return Ok(ExitCode::SUCCESS);
                }
                next = watching.next() => match next? {
                    Some(wave) => {
                        print_wave(&wave, args.json, &mut out)?;
                        out.flush()?;
                    }
                    None => return Ok(ExitCode::SUCCESS),
                },
            }
        }
    })
}

/// One wave, as a line of text or of JSON.
fn print_wave(wave: &Signal, json: bool, out: &mut dyn Write) -> io::Result<()> {
    let event = event_of(wave).map(|(_, event)| event);
    let publisher = wave.core.headers.get(PUBLISHER);
    if json {
        let mut object = Map::new();
        object.insert("from".into(), json!(wave.from.point.to_string()));
        object.insert("method".into(), json!(wave.core.method.to_string()));
        object.insert("path".into(), json!(wave.core.path));
        let headers: Map<String, Value> = wave
            .core
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect();
        object.insert("headers".into(), Value::Object(headers));
        object.insert("body".into(), substance_json(&wave.core.body));
        if let Some(name) = wave.core.headers.get(EVENT) {
            object.insert("event".into(), json!(name));
        }
        if let Some(publisher) = publisher {
            object.insert("publisher".into(), json!(publisher));
        }
        return writeln!(out, "{}", Value::Object(object));
    }
    match (event, publisher) {
        (Some(event), _) => writeln!(
            out,
            "{}  event {}  {}",
            wave.from.point,
            event,
            inline(&wave.core.body)
        ),
        (None, Some(publisher)) => writeln!(
            out,
            "{}  {}  {}  (by {publisher})",
            wave.from.point,
            wave.core.method,
            inline(&wave.core.body)
        ),
        (None, None) => writeln!(
            out,
            "{}  {}  {}",
            wave.from.point,
            wave.core.method,
            inline(&wave.core.body)
        ),
    }
}
