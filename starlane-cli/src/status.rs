//! `starlane status` (stars, particles per kind, uptime, addresses) and `starlane token AGENT`
//! (SPEC §13).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use cosmic_hyperspace::control::StatusReport;
use cosmic_space::Point;
use serde_json::json;

use crate::output::table;
use crate::remote::{self, RemoteArgs};

/// Arguments of `starlane status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    remote: RemoteArgs,
}

/// Arguments of `starlane token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user point the token will act as, e.g. localhost:users:scott.
    agent: String,

    #[command(flatten)]
    remote: RemoteArgs,
}

/// Runs `starlane status`.
pub fn status(args: &StatusArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let target = remote::locate(&args.remote, home, |name| std::env::var(name).ok())?;
    let report = remote::block_on(async {
        let mut client = remote::connect(&target).await?;
        Ok(client.status().await?)
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", status_json(&report))?;
    } else {
        print_status(&report, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `starlane token`: prints the new token.
pub fn token(args: &TokenArgs, home: Option<&Path>) -> anyhow::Result<ExitCode> {
    let agent: Point = args.agent.parse()?;
    let target = remote::locate(&args.remote, home, |name| std::env::var(name).ok())?;
    let token = remote::block_on(async {
        let mut client = remote::connect(&target).await?;
        Ok(client.issue_token(agent).await?)
    })?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// The status for people.
fn print_status(report: &StatusReport, out: &mut dyn Write) -> io::Result<()> {
    let address = |addr: Option<std::net::SocketAddr>| {
        addr.map(|a| a.to_string())
            .unwrap_or_else(|| "-".to_string())
    };
    writeln!(out, "machine   {}", report.machine)?;
    writeln!(out, "uptime    {}", uptime(report.uptime))?;
    writeln!(out, "control   {}", address(report.control))?;
    writeln!(out, "http      {}", address(report.http))?;
    let registry = if report.registry.is_empty() {
        "-"
    } else {
        &report.registry
    };
    writeln!(out, "registry  {registry}")?;
    writeln!(out)?;
    if !report.machines.is_empty() {
        let machines: Vec<[String; 4]> = report
            .machines
            .iter()
            .map(|machine| {
                [
                    machine.name.clone(),
                    if machine.alive { "alive" } else { "dead" }.to_string(),
                    machine.stars.to_string(),
                    machine.particles.to_string(),
                ]
            })
            .collect();
        table(["MACHINE", "STATE", "STARS", "PARTICLES"], &machines, out)?;
        writeln!(out)?;
    }
    let stars: Vec<[String; 3]> = report
        .stars
        .iter()
        .map(|star| {
            [
                star.key.to_string(),
                star.kind.to_string(),
                star.particles.to_string(),
            ]
        })
        .collect();
    table(["STAR", "KIND", "PARTICLES"], &stars, out)?;
    writeln!(out)?;
    let mut kinds: Vec<[String; 2]> = report
        .particles
        .iter()
        .map(|(kind, count)| [kind.to_string(), count.to_string()])
        .collect();
    let total: u64 = report.particles.values().sum();
    kinds.push(["total".to_string(), total.to_string()]);
    table(["KIND", "PARTICLES"], &kinds, out)
}

/// The status as one JSON object.
fn status_json(report: &StatusReport) -> serde_json::Value {
    json!({
        "machine": report.machine,
        "uptime_secs": report.uptime.as_secs(),
        "control": report.control.map(|a| a.to_string()),
        "http": report.http.map(|a| a.to_string()),
        "registry": report.registry,
        "stars": report.stars.iter().map(|star| json!({
            "key": star.key.to_string(),
            "kind": star.kind.to_string(),
            "particles": star.particles,
        })).collect::<Vec<_>>(),
        "particles": report.particles.iter()
            .map(|(kind, count)| (kind.to_string(), json!(count)))
            .collect::<serde_json::Map<_, _>>(),
        "machines": report.machines,
    })
}

/// `3d 4h 5m 6s`, leaving out leading zero units.
fn uptime(uptime: Duration) -> String {
    let secs = uptime.as_secs();
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3_600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let first = parts
        .iter()
        .position(|(n, _)| *n > 0)
        .unwrap_or(parts.len() - 1);
    parts[first..]
        .iter()
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cosmic_hyperspace::control::{MachineReport, StarReport};

    use super::*;

    fn report() -> StatusReport {
        let mut particles = BTreeMap::new();
        particles.insert("Space".to_string(), 2);
        particles.insert("Mechtron".to_string(), 10);
        StatusReport {
            machine: "box".into(),
            uptime: Duration::from_secs(3 * 3600 + 5),
            stars: vec![
                StarReport {
                    key: "STAR::central:nexus[0]".parse().unwrap(),
                    kind: "Star<Central>".parse().unwrap(),
                    particles: 3,
                },
                StarReport {
                    key: "STAR::machine:star[1]".parse().unwrap(),
                    kind: "Star<Machine>".parse().unwrap(),
                    particles: 9,
                },
            ],
            particles,
            control: Some("127.0.0.1:4343".parse().unwrap()),
            http: None,
            registry: "postgres://scott:***@db:5432/cosmos".into(),
            machines: vec![
                MachineReport {
                    name: "box".into(),
                    alive: true,
                    stars: 2,
                    particles: 12,
                },
                MachineReport {
                    name: "edge-2".into(),
                    alive: false,
                    stars: 4,
                    particles: 0,
                },
            ],
        }
    }

    #[test]
    fn status_prints_for_people() {
        let mut out = Vec::new();
        print_status(&report(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
machine   box
uptime    3h 0m 5s
control   127.0.0.1:4343
http      -
registry  postgres://scott:***@db:5432/cosmos

MACHINE  STATE  STARS  PARTICLES
box      alive  2      12
edge-2   dead   4      0

STAR                    KIND           PARTICLES
STAR::central:nexus[0]  Star<Central>  3
STAR::machine:star[1]   Star<Machine>  9

KIND      PARTICLES
Mechtron  10
Space     2
total     12
"
        );
    }

    #[test]
    fn status_prints_as_json() {
        assert_eq!(
            status_json(&report()),
            json!({
                "machine": "box",
                "uptime_secs": 10805,
                "control": "127.0.0.1:4343",
                "http": null,
                "registry": "postgres://scott:***@db:5432/cosmos",
                "machines": [
                    {"name": "box", "alive": true, "stars": 2, "particles": 12},
                    {"name": "edge-2", "alive": false, "stars": 4, "particles": 0},
                ],
                "stars": [
                    {"key": "STAR::central:nexus[0]", "kind": "Star<Central>", "particles": 3},
                    {"key": "STAR::machine:star[1]", "kind": "Star<Machine>", "particles": 9},
                ],
                "particles": {"Space": 2, "Mechtron": 10},
            })
        );
    }

    #[test]
    fn uptimes_read_well() {
        assert_eq!(uptime(Duration::from_secs(0)), "0s");
        assert_eq!(uptime(Duration::from_secs(59)), "59s");
        assert_eq!(uptime(Duration::from_secs(61)), "1m 1s");
        assert_eq!(uptime(Duration::from_secs(2 * 86_400 + 1)), "2d 0h 0m 1s");
    }
}
