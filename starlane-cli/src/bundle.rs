//! `starlane bundle [DIR]`: build a mechtron crate's wasm and pack its bundle directory into
//! `bundle.zip`, ready for `publish ^[ bundle.zip ]-> …` (SPEC §11.4, §13).
//!
//! When `DIR/Cargo.toml` exists, the crate is built first: `cargo build --release --lib
//! --target wasm32-unknown-unknown --message-format=json-render-diagnostics` in `DIR` (cargo's
//! progress and errors go to the terminal as usual; its JSON messages on standard output name
//! the artifacts), and the package's `.wasm` is copied to `DIR/bundle/wasm/<package>.wasm`.
//! Cargo is `CARGO` if set, else `cargo` on the `PATH`; it honours `CARGO_TARGET_DIR` and the
//! crate's own `rust-toolchain.toml`. A directory without `Cargo.toml` is packed as it is.
//!
//! The bundle's root is `DIR/bundle` when there is one (the layout `starlane new` scaffolds),
//! else `DIR` itself; the zip is written to `DIR/bundle.zip`.
//!
//! The build passes `--cfg getrandom_backend="custom"` (see [`GetrandomFlags`]): getrandom,
//! under `uuid` and `rand`, then draws from the host through the guest SDK, and those crates
//! work in a mechtron with no flags of the author's.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::Value;

use crate::output::human_bytes;

/// The target mechtrons are built for (SPEC §11.1).
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The cfg that gives getrandom 0.3 and 0.4 their custom backend on wasm32, which the guest
/// SDK provides over the host's randomness (`host_random`).
const GETRANDOM_CFG: &str = r#"getrandom_backend="custom""#;

/// The same, as cargo configuration for the wasm32 target.
const GETRANDOM_CONFIG: &str =
    r#"target.wasm32-unknown-unknown.rustflags=["--cfg", 'getrandom_backend="custom"']"#;

/// Arguments of `starlane bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The directory to build and pack (default: the current directory).
    dir: Option<PathBuf>,
}

/// Runs `starlane bundle`.
pub fn bundle(args: &BundleArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if dir.join("Cargo.toml").is_file() {
        build_wasm(&dir)?;
    }
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

/// The crate in a bundle directory, as cargo describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Crate {
    /// The package name: the wasm is bundled as `wasm/<name>.wasm`.
    name: String,
    /// Its manifest, absolute.
    manifest: PathBuf,
}

/// Builds the crate in `dir` for wasm32 and copies its wasm to `dir/bundle/wasm/`.
fn build_wasm(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = std::path::absolute(dir.join("Cargo.toml"))
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let cargo = cargo_program();
    let krate = describe_crate(&cargo, dir, &manifest)?;
    if wasm_target_installed(dir) == Some(false) {
        bail!(
            "the {WASM_TARGET} target is not installed for the Rust toolchain that builds {}: \
             rustup target add {WASM_TARGET}",
            manifest.display()
        );
    }
    eprintln!("Building {} for {WASM_TARGET} (release)", krate.name);
    let wasm = cargo_build(&cargo, dir, &krate)?;

    let bundled = dir
        .join("bundle")
        .join("wasm")
        .join(format!("{}.wasm", krate.name));
    if let Some(parent) = bundled.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let bytes = std::fs::copy(&wasm, &bundled)
        .with_context(|| format!("cannot copy {} to {}", wasm.display(), bundled.display()))?;
    println!(
        "{} ({}, from {})",
        bundled.display(),
        human_bytes(bytes),
        wasm.display()
    );
    Ok(bundled)
}

/// `CARGO` (set when run from cargo, or by the user), else `cargo` on the `PATH`.
fn cargo_program() -> OsString {
    std::env::var_os("CARGO")
        .filter(|cargo| !cargo.is_empty())
        .unwrap_or_else(|| "cargo".into())
}

/// Starts `command`, turning "no such program" into an error that says what to install.
fn spawn_cargo(command: &mut Command, cargo: &OsString) -> anyhow::Result<std::process::Child> {
    command.spawn().map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "cargo not found (tried {}): install Rust from https://rustup.rs, or set CARGO \
                 to the cargo program; it builds the mechtron's wasm",
                Path::new(cargo).display()
            )
        } else {
            anyhow!("cannot run {}: {error}", Path::new(cargo).display())
        }
    })
}

/// Asks `cargo metadata` which package `manifest` is and checks that it has a cdylib.
fn describe_crate(cargo: &OsString, dir: &Path, manifest: &Path) -> anyhow::Result<Crate> {
    let mut command = Command::new(cargo);
    command
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(manifest)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = spawn_cargo(&mut command, cargo)?
        .wait_with_output()
        .context("cargo metadata did not finish")?;
    if !output.status.success() {
        bail!(
            "cargo cannot read {}:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
    find_crate(&metadata, manifest)
}

/// The package of `manifest` in `cargo metadata` output, if it has a cdylib library.
fn find_crate(metadata: &Value, manifest: &Path) -> anyhow::Result<Crate> {
    let packages = metadata
        .get("packages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let package = packages
        .iter()
        .find(|package| {
            package
                .get("manifest_path")
                .and_then(Value::as_str)
                .is_some_and(|path| same_file(Path::new(path), manifest))
        })
        .ok_or_else(|| {
            anyhow!(
                "{} declares no package (a workspace?): run `starlane bundle` on the mechtron \
                 crate's own directory",
                manifest.display()
            )
        })?;
    let name = package
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("cargo metadata gave no name for {}", manifest.display()))?;
    let cdylib = package
        .get("targets")
        .and_then(Value::as_array)
        .is_some_and(|targets| targets.iter().any(is_cdylib));
    if !cdylib {
        bail!(
            "{} has no cdylib library, so it builds no wasm: a mechtron crate says \
             `crate-type = [\"cdylib\", \"rlib\"]` under [lib] (`starlane new` writes one)",
            manifest.display()
        );
    }
    Ok(Crate {
        name: name.to_string(),
        manifest: manifest.to_path_buf(),
    })
}

/// Whether a cargo target (from `cargo metadata` or a `compiler-artifact` message) is a
/// cdylib.
fn is_cdylib(target: &Value) -> bool {
    target
        .get("crate_types")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether the toolchain that builds in `dir` has the wasm32 standard library; `None` when
/// that cannot be told (no `rustc` to ask), and the build will say.
fn wasm_target_installed(dir: &Path) -> Option<bool> {
    let rustc = std::env::var_os("RUSTC")
        .filter(|rustc| !rustc.is_empty())
        .unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let libdir = String::from_utf8(output.stdout).ok()?;
    Some(Path::new(libdir.trim()).is_dir())
}

/// Runs the release build for wasm32 and returns the package's `.wasm`.
fn cargo_build(cargo: &OsString, dir: &Path, krate: &Crate) -> anyhow::Result<PathBuf> {
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--lib", "--target", WASM_TARGET]);
    let env = |name: &str| std::env::var(name).ok();
    match GetrandomFlags::choose(
        env("CARGO_ENCODED_RUSTFLAGS").as_deref(),
        env("RUSTFLAGS").as_deref(),
        &cargo_configs(dir),
    ) {
        GetrandomFlags::Chosen => {}
        GetrandomFlags::Encoded(flags) => {
            command.env("CARGO_ENCODED_RUSTFLAGS", flags);
        }
        GetrandomFlags::Plain(flags) => {
            command.env("RUSTFLAGS", flags);
        }
        GetrandomFlags::Config => {
            command.args(["--config", GETRANDOM_CONFIG]);
        }
    }
    command
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&krate.manifest)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = spawn_cargo(&mut command, cargo)?;
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(path) = wasm_artifact(&line, &krate.manifest) {
                wasm = Some(path);
            }
        }
    }
    let status = child.wait().context("cargo build did not finish")?;
    if !status.success() {
        bail!(
            "cargo build of {} for {WASM_TARGET} failed ({status}); cargo's output is above",
            krate.name
        );
    }
    wasm.ok_or_else(|| {
        anyhow!(
            "cargo built {} but produced no .wasm for it (is its library a cdylib?)",
            krate.name
        )
    })
}

/// How the wasm build gets [`GETRANDOM_CFG`] without undoing flags the user set. Cargo takes
/// its flags from one source only — `CARGO_ENCODED_RUSTFLAGS`, else `RUSTFLAGS`, else the
/// configuration's `target.…rustflags` joined, else `build.rustflags` — so the cfg joins
/// whichever the user's build uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GetrandomFlags {
    /// The user's flags or cargo configuration already choose a getrandom backend (the
    /// scaffold's `.cargo/config.toml` does): nothing to add.
    Chosen,
    /// `CARGO_ENCODED_RUSTFLAGS` as the user set it, and the cfg.
    Encoded(String),
    /// `RUSTFLAGS` as the user set it, and the cfg.
    Plain(String),
    /// `--config target.wasm32-unknown-unknown.rustflags=[…]`: joins the target flags of the
    /// configuration files (it would shadow a `build.rustflags` of theirs; there is no way to
    /// join that one).
    Config,
}

impl GetrandomFlags {
    /// The way for a build whose environment has `encoded` / `plain` flags and whose cargo
    /// configuration files (those cargo reads for the crate's directory) are `configs`.
    fn choose(encoded: Option<&str>, plain: Option<&str>, configs: &[String]) -> GetrandomFlags {
        let chosen = |flags: &str| flags.contains("getrandom_backend");
        if let Some(encoded) = encoded.filter(|flags| !flags.is_empty()) {
            return if chosen(encoded) {
                GetrandomFlags::Chosen
            } else {
                GetrandomFlags::Encoded(format!("{encoded}\x1f--cfg\x1f{GETRANDOM_CFG}"))
            };
        }
        if let Some(plain) = plain.filter(|flags| !flags.trim().is_empty()) {
            return if chosen(plain) {
                GetrandomFlags::Chosen
            } else {
                GetrandomFlags::Plain(format!("{plain} --cfg {GETRANDOM_CFG}"))
            };
        }
        if configs.iter().any(|config| chosen(config)) {
            GetrandomFlags::Chosen
        } else {
            GetrandomFlags::Config
        }
    }
}

/// The texts of the cargo configuration files cargo reads when it builds in `dir`:
/// `.cargo/config.toml` (or `.cargo/config`) in `dir` and every directory above it, and in
/// `CARGO_HOME` (by default `~/.cargo`).
fn cargo_configs(dir: &Path) -> Vec<String> {
    let mut homes: Vec<PathBuf> = std::path::absolute(dir)
        .map(|dir| dir.ancestors().map(|d| d.join(".cargo")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME").filter(|home| !home.is_empty()) {
        homes.push(PathBuf::from(home));
    } else if let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        homes.push(Path::new(&home).join(".cargo"));
    }
    homes
        .iter()
        .flat_map(|home| [home.join("config.toml"), home.join("config")])
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .collect()
}

/// The `.wasm` a cargo JSON message reports for the cdylib of `manifest`, if it is one.
fn wasm_artifact(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact"
        || !same_file(Path::new(message.get("manifest_path")?.as_str()?), manifest)
        || !is_cdylib(message.get("target")?)
    {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|file| file.ends_with(".wasm"))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(targets: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"packages": [
                {{"name": "other", "manifest_path": "/x/other/Cargo.toml", "targets": []}},
                {{"name": "my-greeter", "manifest_path": "/x/my-greeter/Cargo.toml",
                  "targets": {targets}}}
            ]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_crate_is_the_package_of_the_manifest_with_a_cdylib() {
        let manifest = Path::new("/x/my-greeter/Cargo.toml");
        let found = find_crate(
            &metadata(r#"[{"name": "my_greeter", "crate_types": ["cdylib", "rlib"]}]"#),
            manifest,
        )
        .unwrap();
        assert_eq!(
            found,
            Crate {
                name: "my-greeter".to_string(),
                manifest: manifest.to_path_buf()
            }
        );

        let error = find_crate(
            &metadata(r#"[{"name": "my_greeter", "crate_types": ["lib"]}]"#),
            manifest,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("has no cdylib library"), "{error}");

        let error = find_crate(&metadata("[]"), Path::new("/x/Cargo.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("declares no package"), "{error}");
    }

    #[test]
    fn the_wasm_is_read_from_the_artifact_message_of_the_cdylib() {
        let manifest = Path::new("/x/my-greeter/Cargo.toml");
        let line = r#"{"reason":"compiler-artifact","manifest_path":"/x/my-greeter/Cargo.toml",
            "target":{"name":"my_greeter","crate_types":["cdylib","rlib"]},
            "filenames":["/t/wasm32-unknown-unknown/release/my_greeter.wasm",
                         "/t/wasm32-unknown-unknown/release/libmy_greeter.rlib"],"fresh":true}"#
            .replace('\n', " ");
        assert_eq!(
            wasm_artifact(&line, manifest),
            Some(PathBuf::from(
                "/t/wasm32-unknown-unknown/release/my_greeter.wasm"
            ))
        );
        let dependency = line.replace("/x/my-greeter/", "/x/other/");
        assert_eq!(wasm_artifact(&dependency, manifest), None);
        let finished = r#"{"reason":"build-finished","success":true}"#;
        assert_eq!(wasm_artifact(finished, manifest), None);
        assert_eq!(wasm_artifact("not json", manifest), None);
    }

    #[test]
    fn the_getrandom_cfg_joins_the_flags_the_user_has() {
        use GetrandomFlags::*;
        let cfg = r#"getrandom_backend="custom""#;
        assert_eq!(GetrandomFlags::choose(None, None, &[]), Config);
        assert_eq!(GetrandomFlags::choose(Some(""), Some(" "), &[]), Config);
        assert_eq!(
            GetrandomFlags::choose(Some("-Cdebuginfo=1"), Some("-Copt-level=z"), &[]),
            Encoded(format!("-Cdebuginfo=1\x1f--cfg\x1f{cfg}"))
        );
        assert_eq!(
            GetrandomFlags::choose(None, Some("-C target-feature=+simd128"), &[]),
            Plain(format!("-C target-feature=+simd128 --cfg {cfg}"))
        );
        // A backend the user chose stays theirs, wherever it is chosen.
        let unsupported = r#"--cfg getrandom_backend="unsupported""#;
        assert_eq!(GetrandomFlags::choose(None, Some(unsupported), &[]), Chosen);
        assert_eq!(
            GetrandomFlags::choose(Some(&unsupported.replace(' ', "\x1f")), None, &[]),
            Chosen
        );
        let scaffold = "[target.wasm32-unknown-unknown]\n\
                        rustflags = [\"--cfg\", 'getrandom_backend=\"custom\"']\n";
        let other = "[build]\njobs = 2\n".to_string();
        assert_eq!(
            GetrandomFlags::choose(None, None, &[other.clone(), scaffold.to_string()]),
            Chosen
        );
        assert_eq!(GetrandomFlags::choose(None, None, &[other]), Config);
    }

    #[test]
    fn cargo_configs_are_read_from_the_directory_up() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("a/b");
        std::fs::create_dir_all(inner.join(".cargo")).unwrap();
        std::fs::create_dir_all(dir.path().join("a/.cargo")).unwrap();
        std::fs::write(inner.join(".cargo/config.toml"), "inner").unwrap();
        std::fs::write(dir.path().join("a/.cargo/config"), "outer").unwrap();
        let configs = cargo_configs(&inner);
        assert!(configs.iter().any(|c| c == "inner"), "{configs:?}");
        assert!(configs.iter().any(|c| c == "outer"), "{configs:?}");
    }

    #[test]
    fn a_directory_with_a_bundle_folder_packs_that_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(bundle_root(dir.path()), dir.path());
        std::fs::create_dir(dir.path().join("bundle")).unwrap();
        assert_eq!(bundle_root(dir.path()), dir.path().join("bundle"));
    }
}
