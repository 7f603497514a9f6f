//! The data directory (`STARLANE_HOME`): created owner-only, and the files this machine keeps
//! in it — the HyperUser token, the secret key, the addresses — written whole and owner-only,
//! so that a crash never leaves half a file and nobody else may read one.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Creates `home` (and its parents) if missing, owner-only (0700) on Unix.
pub(crate) fn create(home: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(home)
}

/// How a file written whole takes its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Over whatever is there.
    Replace,
    /// Only where nothing is: a file already there is `AlreadyExists`, and stays as it was.
    New,
}

/// Writes `bytes` to a fresh owner-only (0600) file beside `path`, syncs it, and puts it at
/// `path` as `place` says (a rename, or a link that fails rather than replaces). `path`
/// appears whole or not at all.
pub(crate) fn write(path: &Path, bytes: &[u8], place: Place) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    // A leftover from a crash may have other permissions: start from nothing.
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let placed = written.and_then(|()| match place {
        Place::Replace => fs::rename(&temporary, path),
        Place::New => fs::hard_link(&temporary, path),
    });
    if place == Place::New || placed.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    placed
}
