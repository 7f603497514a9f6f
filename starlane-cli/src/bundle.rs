//! `starlane bundle [DIR]`: pack a bundle directory into `bundle.zip`, ready for
//! `publish ^[ bundle.zip ]-> …` (SPEC §11.4, §13).
//!
//! The bundle's root is `DIR/bundle` when there is one (the layout `starlane new` scaffolds),
//! else `DIR` itself; the zip is written to `DIR/bundle.zip`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// Arguments of `starlane bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The directory to pack (default: the current directory).
    dir: Option<PathBuf>,
}

/// Runs `starlane bundle`.
pub fn bundle(args: &BundleArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = bundle_root(&dir);
    let zip = cosmic_hyperspace::bundle::pack(&root)
        .with_context(|| format!("cannot pack {}", root.display()))?;
    let out = dir.join("bundle.zip");
    std::fs::write(&out, &zip).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} ({} bytes, from {})",
        out.display(),
        zip.len(),
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `DIR/bundle` if it is a directory, else `DIR`.
fn bundle_root(dir: &Path) -> PathBuf {
    let scaffolded = dir.join("bundle");
    if scaffolded.is_dir() {
        scaffolded
    } else {
        dir.to_path_buf()
    }
}
