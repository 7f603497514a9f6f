//! End-to-end tests of Starlane. The tests in `tests/` run the real `starlane` binary the way an
//! operator would; this library holds what they share (locating the binary, temporary data
//! directories) and, later, the guest fixtures built for wasm32.

use std::path::PathBuf;

/// The path of the `starlane` binary built from this workspace.
pub fn starlane_bin() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("starlane{}", std::env::consts::EXE_SUFFIX))
}
