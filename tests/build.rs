//! Builds the guest fixtures (`tests/guests/fixtures`, `tests/guests/malformed`) for
//! `wasm32-unknown-unknown`, so the end-to-end tests run real wasm in real wasmer (the
//! wasmtime/Spin pattern; see `docs/decisions/guest-fixtures.md`).
//!
//! A nested `cargo build --release --locked --target wasm32-unknown-unknown` runs from the
//! workspace root into a target directory of its own, `<target>/guests/<checkout>`, so it
//! never contends for the lock of the outer build's directory, its artifacts survive between
//! runs (incremental), and checkouts sharing a target directory do not test each other's
//! guests. Variables the outer build sets for its own compilation are removed, so
//! they cannot leak into a build for another target. Like `starlane bundle`, it builds with
//! `--cfg getrandom_backend="custom"`: the fixtures use `uuid` and `rand`, whose getrandom
//! draws from the host through the SDK. The directory holding
//! `guest_fixtures.wasm` and `guest_malformed.wasm` is passed to the crate as
//! `STARLANE_GUEST_WASM_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const GUESTS: [&str; 2] = ["guest-fixtures", "guest-malformed"];

/// Guests build as `starlane bundle` builds them: getrandom (under `uuid` and `rand`) takes
/// its custom backend, which the SDK provides over the host's randomness.
const GETRANDOM_CUSTOM: &str =
    r#"target.wasm32-unknown-unknown.rustflags=["--cfg", 'getrandom_backend="custom"']"#;

/// What the outer build sets that must not reach the nested one: flags and wrappers for the
/// host compilation (clippy's driver, sccache), the outer target directory and target.
const LEAKY_VARS: [&str; 8] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .unwrap_or_else(|| panic!("the tests crate has no parent directory"))
        .to_path_buf();

    for watched in [
        "tests/guests",
        "cosmic-mechtron",
        "cosmic-macros",
        "cosmic-space/src",
        "cosmic-space/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = outer_target_dir(&root)
        .join("guests")
        .join(checkout_key(&root));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(["--config", GETRANDOM_CUSTOM])
        .arg("--target-dir")
        .arg(&target_dir);
    for guest in GUESTS {
        command.args(["-p", guest]);
    }
    for var in LEAKY_VARS {
        command.env_remove(var);
    }
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run {} to build the guest fixtures: {error}",
            Path::new(&cargo).display()
        )
    });
    if !output.status.success() {
        panic!(
            "building the guest fixtures for {TARGET} failed ({}).\n\
             If the target is missing: rustup target add {TARGET}\n\
             --- cargo's output ---\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    let wasm_dir = target_dir.join(TARGET).join("release");
    for guest in GUESTS {
        let wasm = wasm_dir.join(format!("{}.wasm", guest.replace('-', "_")));
        if !wasm.is_file() {
            panic!(
                "cargo built the guests but {} is missing:\n{}",
                wasm.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    println!(
        "cargo:rustc-env=STARLANE_GUEST_WASM_DIR={}",
        wasm_dir.display()
    );
}

/// A name for this checkout's guest builds: the workspace directory's name and a hash of its
/// path. Checkouts sharing a target directory would otherwise build into, and test with, one
/// `guest_fixtures.wasm` — whichever built last, which need not be their own.
fn checkout_key(root: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    let name = root
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}-{:016x}", hasher.finish())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// The outer build's target directory: `CARGO_TARGET_DIR` when set (relative to the
/// workspace root, as cargo resolves it when run there), else found from `OUT_DIR`, which is
/// `<target>/<profile>/build/<pkg>-<hash>/out`.
fn outer_target_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        return root.join(dir);
    }
    let out_dir = PathBuf::from(env("OUT_DIR"));
    out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected OUT_DIR layout: {}", out_dir.display()))
}
