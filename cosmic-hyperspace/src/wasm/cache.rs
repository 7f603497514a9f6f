//! The on-disk cache of compiled modules (SPEC §11.2).
//!
//! One file per module, named by the cache key (hex sha256 of the wasm, the wasmer version and
//! every compile setting). A file is `MAGIC`, the sha256 of the payload, then the payload (a
//! serialized wasmer artifact). wasmer's deserialization trusts its input (it maps machine
//! code), so the checksum is what stands between a corrupt or truncated file and executing
//! garbage: any mismatch, short file or deserialization error is a miss, and the entry is
//! recompiled and overwritten. Writes go to a temporary file renamed into place, so a crash
//! mid-write leaves either the old entry or none.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where a compiled module came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSource {
    /// Already loaded in this process.
    Memory,
    /// Loaded from the on-disk cache.
    Disk,
    /// Compiled now (a miss; written to the disk cache if there is one).
    Compiled,
}

const MAGIC: &[u8; 8] = b"STLWASM1";
const HEADER: usize = MAGIC.len() + 32;

/// The hex sha256 of `parts`, each prefixed by its length (so parts cannot run together).
pub(crate) fn key(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A cache directory.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache in `dir`, created if missing.
    pub(crate) fn open(dir: &Path) -> std::io::Result<DiskCache> {
        fs::create_dir_all(dir)?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The file of `key`.
    pub(crate) fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.module"))
    }

    /// The verified payload stored under `key`, or `None` (missing, short, corrupt).
    pub(crate) fn load(&self, key: &str) -> Option<Vec<u8>> {
        let mut bytes = fs::read(self.path(key)).ok()?;
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return None;
        }
        let digest = Sha256::digest(&bytes[HEADER..]);
        if digest.as_slice() != &bytes[MAGIC.len()..HEADER] {
            return None;
        }
        bytes.drain(..HEADER);
        Some(bytes)
    }

    /// Stores `payload` under `key` (atomically: temporary file, then rename).
    pub(crate) fn store(&self, key: &str, payload: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{key}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(payload))?;
            file.write_all(payload)?;
            file.sync_all()?;
            fs::rename(&tmp, self.path(key))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_parts() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]).len(), 64);
    }

    #[test]
    fn round_trip_and_corruption() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache = DiskCache::open(dir.path())?;
        assert_eq!(cache.load("k"), None);
        cache.store("k", b"payload")?;
        assert_eq!(cache.load("k").as_deref(), Some(&b"payload"[..]));
        let path = cache.path("k");
        let mut bytes = fs::read(&path)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes)?;
        assert_eq!(cache.load("k"), None);
        fs::write(&path, b"STLW")?;
        assert_eq!(cache.load("k"), None);
        Ok(())
    }
}
