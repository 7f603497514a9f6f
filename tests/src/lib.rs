//! End-to-end tests of Starlane. The tests in `tests/` run the real `starlane` binary the way an
//! operator would; this library holds what they share: building and locating the binary, and
//! running it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The root of the workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The path of the `starlane` binary, built from this workspace on first use (with the same
/// cargo and target directory as the tests, so it is normally already up to date).
pub fn starlane_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "starlane-cli",
                "--bin",
                "starlane",
            ])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build starlane: {e}"));
        assert!(status.success(), "building the starlane binary failed");
        target_dir().join(format!("starlane{}", std::env::consts::EXE_SUFFIX))
    })
}

/// The directory cargo puts this profile's binaries in (`target/debug`).
fn target_dir() -> PathBuf {
    // The test executable lives in `<target>/<profile>/deps/`.
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Runs `starlane ARGS` in `dir` and returns what it printed and its exit status.
pub fn starlane(dir: &Path, args: &[&str]) -> Output {
    Command::new(starlane_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"))
}
