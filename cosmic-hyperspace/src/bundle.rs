//! Bundles (SPEC §11.4): reading and validating the zip a `publish` uploads, before anything
//! is registered.
//!
//! A bundle is a zip whose entries are relative to the bundle's root (`bind/site.bind`,
//! `wasm/hello.wasm`, `html/index.html`). [`Bundle::from_zip`] reads one completely into
//! memory and refuses — with a [`BundleError`] naming the entry — anything that could escape
//! the bundle or exhaust the machine: `../`, absolute paths, backslashes, drive letters, names
//! that are not point file-system names, duplicate entries, symbolic links, encrypted or
//! unsupported entries, too many entries, an oversize archive, an entry larger than the limit,
//! and an entry that unpacks to a size other than the one it declares (a zip bomb cannot make
//! it decompress more than the declared size plus one byte). [`Bundle::entries_under`] then
//! lists the `Artifact` particles to register, parents first, so the executor can register
//! them in one atomic step (a failed publish leaves nothing behind, SPEC §16).
//!
//! ```
//! use std::io::Write;
//! use cosmic_hyperspace::{Bundle, BundleLimits};
//! use cosmic_space::{ArtifactSubKind, Kind, Point};
//!
//! // A zip with one file, as `starlane bundle` would write it.
//! let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
//! zip.start_file("wasm/hello.wasm", zip::write::SimpleFileOptions::default())?;
//! zip.write_all(b"\0asm")?;
//! let bytes = zip.finish()?.into_inner();
//!
//! let bundle = Bundle::from_zip(&bytes, &BundleLimits::default())?;
//! let version: Point = "localhost:repo:hello:1.0.0".parse()?;
//! let entries = bundle.entries_under(&version)?;
//! let points: Vec<String> = entries.iter().map(|e| e.point.to_string()).collect();
//! assert_eq!(points, [
//!     "localhost:repo:hello:1.0.0:/",
//!     "localhost:repo:hello:1.0.0:/wasm/",
//!     "localhost:repo:hello:1.0.0:/wasm/hello.wasm",
//! ]);
//! assert_eq!(entries[2].kind, Kind::Artifact(ArtifactSubKind::Wasm));
//! assert_eq!(entries[2].content.as_deref(), Some(&b"\0asm"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Read};

use cosmic_space::{ArtifactSubKind, Kind, Point, PointError, PointSeg, StatusCode};
use zip::ZipArchive;

/// The limits a bundle must stay within; every one is configurable (SPEC §16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// The largest zip archive accepted, in bytes.
    pub max_archive: u64,
    /// The most bytes all entries may unpack to together.
    pub max_unpacked: u64,
    /// The most bytes one entry may unpack to.
    pub max_entry: u64,
    /// The most entries (files and directories, including directories implied by paths).
    pub max_entries: usize,
}

impl BundleLimits {
    /// The default archive limit: 256 MiB.
    pub const DEFAULT_MAX_ARCHIVE: u64 = 256 * 1024 * 1024;
    /// The default limit on all entries unpacked together: 256 MiB.
    pub const DEFAULT_MAX_UNPACKED: u64 = 256 * 1024 * 1024;
    /// The default limit per entry: 64 MiB.
    pub const DEFAULT_MAX_ENTRY: u64 = 64 * 1024 * 1024;
    /// The default number of entries: 10,000.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
}

impl Default for BundleLimits {
    fn default() -> Self {
        BundleLimits {
            max_archive: BundleLimits::DEFAULT_MAX_ARCHIVE,
            max_unpacked: BundleLimits::DEFAULT_MAX_UNPACKED,
            max_entry: BundleLimits::DEFAULT_MAX_ENTRY,
            max_entries: BundleLimits::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Why a bundle was refused. Every variant about one entry names it as the zip spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The archive is larger than [`BundleLimits::max_archive`].
    #[error("the bundle is {size} bytes; the limit is {limit} bytes")]
    ArchiveTooLarge {
        /// The archive's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a zip archive the reader understands.
    #[error("the bundle is not a valid zip archive: {0}")]
    InvalidZip(String),
    /// The archive has more entries than [`BundleLimits::max_entries`].
    #[error("the bundle has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// An entry's path leaves the bundle: `..`, absolute, a drive letter or backslashes.
    #[error("zip entry '{entry}' escapes the bundle: {reason}")]
    EscapesBundle {
        /// The entry.
        entry: String,
        /// How it escapes.
        reason: &'static str,
    },
    /// An entry's path is not a valid point file-system path (`[A-Za-z0-9._-]+` per segment,
    /// never `.`, `..` or empty).
    #[error("zip entry '{entry}' is not a valid bundle path: {reason}")]
    BadName {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two entries have the same path.
    #[error("zip entry '{entry}' appears more than once")]
    Duplicate {
        /// The entry.
        entry: String,
    },
    /// An entry lies inside a path that another entry makes a file (`a` and `a/b`).
    #[error("zip entry '{entry}' lies inside '{file}', which is a file")]
    InsideFile {
        /// The entry.
        entry: String,
        /// The file it would lie inside.
        file: String,
    },
    /// An entry is a symbolic link; bundles hold files and directories only.
    #[error("zip entry '{entry}' is a symbolic link; bundles hold only files and directories")]
    Symlink {
        /// The entry.
        entry: String,
    },
    /// An entry declares more bytes than [`BundleLimits::max_entry`].
    #[error("zip entry '{entry}' unpacks to {size} bytes; the limit per entry is {limit} bytes")]
    EntryTooLarge {
        /// The entry.
        entry: String,
        /// The size it declares.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry unpacks to a size other than the one it declares (a zip bomb or a corrupt
    /// archive); it is never decompressed past the declared size.
    #[error(
        "zip entry '{entry}' declares {declared} bytes but unpacks to a different size \
         (a corrupt archive or a zip bomb)"
    )]
    SizeMismatch {
        /// The entry.
        entry: String,
        /// The size it declares.
        declared: u64,
    },
    /// All entries together unpack to more than [`BundleLimits::max_unpacked`].
    #[error("the bundle unpacks to more than {limit} bytes (at zip entry '{entry}')")]
    UnpackedTooLarge {
        /// The entry at which the total passed the limit.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// An entry cannot be read: encrypted, an unsupported compression method, or corrupt data
    /// (a bad checksum, a broken deflate stream).
    #[error("zip entry '{entry}' cannot be read: {reason}")]
    UnreadableEntry {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The bundle's point cannot hold a file system (it is already inside one, or `ROOT`).
    #[error("cannot unpack a bundle under {point}: {source}")]
    BadBundlePoint {
        /// The bundle's point.
        point: String,
        /// Why.
        source: Box<PointError>,
    },
}

impl BundleError {
    /// The status a `publish` answers with when it fails this way: 413 for what is too large,
    /// 400 for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            BundleError::ArchiveTooLarge { .. }
            | BundleError::TooManyEntries { .. }
            | BundleError::EntryTooLarge { .. }
            | BundleError::UnpackedTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// One thing a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Dir,
    File(ArtifactSubKind, Vec<u8>),
}

/// A validated bundle: its files with their bytes and artifact sub-kinds, and its directories
/// (those the zip lists and those its paths imply).
///
/// Paths are relative to the bundle's root; a directory's path ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    /// By path; sorted order puts every directory before what it holds.
    items: BTreeMap<String, Item>,
}

/// A file of a [`Bundle`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleFile<'a> {
    /// The path relative to the bundle's root, e.g. `wasm/hello.wasm`.
    pub path: &'a str,
    /// What it holds, by its extension.
    pub kind: ArtifactSubKind,
    /// The content.
    pub bytes: &'a [u8],
}

/// One particle a bundle unpacks into, for the executor to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    /// Where it goes, e.g. `localhost:repo:hello:1.0.0:/wasm/hello.wasm`.
    pub point: Point,
    /// Its kind: `Artifact<Dir>` for the root and directories, the file's sub-kind otherwise.
    pub kind: Kind,
    /// The content of a file; `None` for directories.
    pub content: Option<Vec<u8>>,
}

impl Bundle {
    /// Reads and validates a bundle zip within `limits`.
    pub fn from_zip(bytes: &[u8], limits: &BundleLimits) -> Result<Bundle, BundleError> {
        let size = bytes.len() as u64;
        if size > limits.max_archive {
            return Err(BundleError::ArchiveTooLarge {
                size,
                limit: limits.max_archive,
            });
        }
        let mut archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|err| BundleError::InvalidZip(err.to_string()))?;
        if archive.len() > limits.max_entries {
            return Err(BundleError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        if archive.has_duplicate_names() {
            return Err(BundleError::Duplicate {
                entry: duplicate_name(bytes, &archive)
                    .unwrap_or_else(|| "(a name listed twice)".to_string()),
            });
        }

        let mut bundle = Bundle::default();
        let mut unpacked: u64 = 0;
        for index in 0..archive.len() {
            let listed = archive
                .name_for_index(index)
                .and_then(Result::ok)
                .map(|name| name.into_owned())
                .unwrap_or_else(|| format!("#{index}"));
            let mut file = archive
                .by_index(index)
                .map_err(|err| BundleError::UnreadableEntry {
                    entry: listed.clone(),
                    reason: err.to_string(),
                })?;
            let entry = String::from_utf8_lossy(file.name_raw()).into_owned();
            if file.is_symlink() {
                return Err(BundleError::Symlink { entry });
            }
            if file.encrypted() {
                return Err(BundleError::UnreadableEntry {
                    entry,
                    reason: "encrypted entries are not supported".to_string(),
                });
            }
            let name = file.name().map_err(|err| BundleError::BadName {
                entry: entry.clone(),
                reason: err.to_string(),
            })?;
            let is_dir = file.is_dir();
            let path = bundle_path(&name, is_dir).map_err(|err| err.for_entry(&entry))?;
            if is_dir {
                bundle.insert(path, Item::Dir, &entry)?;
                continue;
            }
            let declared = file.size();
            if declared > limits.max_entry {
                return Err(BundleError::EntryTooLarge {
                    entry,
                    size: declared,
                    limit: limits.max_entry,
                });
            }
            // Never trust the header: read at most one byte more than it declares.
            let mut content = Vec::with_capacity(declared.min(1 << 20) as usize);
            (&mut file)
                .take(declared + 1)
                .read_to_end(&mut content)
                .map_err(|err| BundleError::UnreadableEntry {
                    entry: entry.clone(),
                    reason: err.to_string(),
                })?;
            if content.len() as u64 != declared {
                return Err(BundleError::SizeMismatch { entry, declared });
            }
            unpacked += declared;
            if unpacked > limits.max_unpacked {
                return Err(BundleError::UnpackedTooLarge {
                    entry,
                    limit: limits.max_unpacked,
                });
            }
            let kind = artifact_kind(&path);
            bundle.insert(path, Item::File(kind, content), &entry)?;
        }
        bundle.add_implied_dirs(limits)?;
        Ok(bundle)
    }

    /// The files, in path order.
    pub fn files(&self) -> impl Iterator<Item = BundleFile<'_>> + '_ {
        self.items.iter().filter_map(|(path, item)| match item {
            Item::File(kind, bytes) => Some(BundleFile {
                path,
                kind: *kind,
                bytes,
            }),
            Item::Dir => None,
        })
    }

    /// The directories (each ending with `/`), in path order.
    pub fn dirs(&self) -> impl Iterator<Item = &str> + '_ {
        self.items
            .iter()
            .filter(|(_, item)| matches!(item, Item::Dir))
            .map(|(path, _)| path.as_str())
    }

    /// The content of the file at `path` (relative to the bundle's root, e.g.
    /// `config/hello.mechtron`).
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.items.get(path.strip_prefix('/').unwrap_or(path))? {
            Item::File(_, bytes) => Some(bytes),
            Item::Dir => None,
        }
    }

    /// How many files and directories the bundle holds (not counting its root).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if the bundle holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bytes all files hold together.
    pub fn unpacked_size(&self) -> u64 {
        self.files().map(|file| file.bytes.len() as u64).sum()
    }

    /// The particles to register for this bundle under its version point `bundle`
    /// (e.g. `localhost:repo:hello:1.0.0`), parents before children: the root
    /// `…:1.0.0:/` (`Artifact<Dir>`), then every directory and file. The content is copied;
    /// [`Bundle::into_entries`] moves it instead.
    pub fn entries_under(&self, bundle: &Point) -> Result<Vec<BundleEntry>, BundleError> {
        let mut entries = vec![root_entry(bundle)?];
        for (path, item) in &self.items {
            entries.push(entry(bundle, path, item.clone())?);
        }
        Ok(entries)
    }

    /// Like [`Bundle::entries_under`], but moves the content into the entries.
    pub fn into_entries(self, bundle: &Point) -> Result<Vec<BundleEntry>, BundleError> {
        let mut entries = vec![root_entry(bundle)?];
        for (path, item) in self.items {
            entries.push(entry(bundle, &path, item)?);
        }
        Ok(entries)
    }

    fn insert(&mut self, path: String, item: Item, entry: &str) -> Result<(), BundleError> {
        // `a` and `a/` are the same name: a file and a directory cannot share it.
        let other = match path.strip_suffix('/') {
            Some(file) => file.to_string(),
            None => format!("{path}/"),
        };
        if self.items.contains_key(&path) || self.items.contains_key(&other) {
            return Err(BundleError::Duplicate {
                entry: entry.to_string(),
            });
        }
        self.items.insert(path, item);
        Ok(())
    }

    /// Adds the directories that paths imply but the zip does not list, and refuses a path
    /// that runs through a file.
    fn add_implied_dirs(&mut self, limits: &BundleLimits) -> Result<(), BundleError> {
        let mut implied = Vec::new();
        for path in self.items.keys() {
            let inner = path.strip_suffix('/').unwrap_or(path);
            for (at, _) in inner.match_indices('/') {
                let dir = &path[..=at];
                match self.items.get(&path[..at]) {
                    Some(Item::File(..)) => {
                        return Err(BundleError::InsideFile {
                            entry: path.clone(),
                            file: path[..at].to_string(),
                        });
                    }
                    _ if !self.items.contains_key(dir) => implied.push(dir.to_string()),
                    _ => {}
                }
            }
        }
        for dir in implied {
            self.items.insert(dir, Item::Dir);
        }
        if self.items.len() > limits.max_entries {
            return Err(BundleError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        Ok(())
    }
}

/// The artifact sub-kind of a file, by its extension.
fn artifact_kind(path: &str) -> ArtifactSubKind {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext);
    match extension {
        Some("bind") => ArtifactSubKind::Bind,
        Some("wasm") => ArtifactSubKind::Wasm,
        Some("mechtron") => ArtifactSubKind::Config,
        _ => ArtifactSubKind::Raw,
    }
}

/// Why a path was refused, before the entry's name is attached.
enum PathRefusal {
    Escapes(&'static str),
    BadName(String),
}

impl PathRefusal {
    fn for_entry(self, entry: &str) -> BundleError {
        match self {
            PathRefusal::Escapes(reason) => BundleError::EscapesBundle {
                entry: entry.to_string(),
                reason,
            },
            PathRefusal::BadName(reason) => BundleError::BadName {
                entry: entry.to_string(),
                reason,
            },
        }
    }
}

/// The bundle path of a zip entry name (directories end with `/`), or why it is refused.
fn bundle_path(name: &str, is_dir: bool) -> Result<String, PathRefusal> {
    if name.contains('\\') {
        return Err(PathRefusal::Escapes(
            "backslashes are not path separators in a bundle",
        ));
    }
    if name.starts_with('/') {
        return Err(PathRefusal::Escapes("it is an absolute path"));
    }
    let mut chars = name.chars();
    if let (Some(drive), Some(':')) = (chars.next(), chars.next())
        && drive.is_ascii_alphabetic()
    {
        return Err(PathRefusal::Escapes("it begins with a drive letter"));
    }
    let inner = if is_dir {
        name.strip_suffix('/').unwrap_or(name)
    } else {
        name
    };
    if inner.split('/').any(|segment| segment == "..") {
        return Err(PathRefusal::Escapes("'..' leaves the bundle"));
    }
    if inner.is_empty() {
        return Err(PathRefusal::BadName("the name is empty".to_string()));
    }
    if inner.split('/').any(str::is_empty) {
        return Err(PathRefusal::BadName(
            "it has an empty path segment ('//' or a trailing '/')".to_string(),
        ));
    }
    let path = if is_dir {
        format!("{inner}/")
    } else {
        inner.to_string()
    };
    // The point grammar decides what a file-system name is.
    probe_point()
        .push_path(&path)
        .map_err(|err| PathRefusal::BadName(err.to_string()))?;
    Ok(path)
}

/// A point that may hold a file system, to check paths against before the bundle's own point
/// is known.
fn probe_point() -> Point {
    Point::space("bundle").unwrap_or_else(|_| Point::root())
}

fn root_entry(bundle: &Point) -> Result<BundleEntry, BundleError> {
    let point = bundle
        .push(PointSeg::FsRoot)
        .map_err(|source| BundleError::BadBundlePoint {
            point: bundle.to_string(),
            source: Box::new(source),
        })?;
    Ok(BundleEntry {
        point,
        kind: Kind::Artifact(ArtifactSubKind::Dir),
        content: None,
    })
}

fn entry(bundle: &Point, path: &str, item: Item) -> Result<BundleEntry, BundleError> {
    let point = bundle
        .push_path(path)
        .map_err(|source| BundleError::BadBundlePoint {
            point: bundle.to_string(),
            source: Box::new(source),
        })?;
    Ok(match item {
        Item::Dir => BundleEntry {
            point,
            kind: Kind::Artifact(ArtifactSubKind::Dir),
            content: None,
        },
        Item::File(kind, bytes) => BundleEntry {
            point,
            kind: Kind::Artifact(kind),
            content: Some(bytes),
        },
    })
}

/// The first name the central directory lists twice, found by walking its headers (the zip
/// reader keeps one entry per name and only says that a duplicate exists).
fn duplicate_name(bytes: &[u8], archive: &ZipArchive<Cursor<&[u8]>>) -> Option<String> {
    const SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    const FIXED: usize = 46;
    let u16_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let start = usize::try_from(archive.central_directory_start()).ok()?;
    let mut at = [start, start.saturating_add(archive.offset() as usize)]
        .into_iter()
        .find(|&at| bytes.get(at..at + 4) == Some(&SIGNATURE[..]))?;
    let mut seen = HashSet::new();
    while bytes.get(at..at + 4) == Some(&SIGNATURE[..]) {
        let name_len = u16_at(at + 28)?;
        let extra_len = u16_at(at + 30)?;
        let comment_len = u16_at(at + 32)?;
        let name = bytes.get(at + FIXED..at + FIXED + name_len)?;
        if !seen.insert(name) {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        at += FIXED + name_len + extra_len + comment_len;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;

    use super::*;

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    fn stored() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
    }

    /// A zip of `(name, content)` files; a name ending in `/` is added as a directory.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            if let Some(dir) = name.strip_suffix('/') {
                zip.add_directory(dir, deflated()).unwrap();
            } else {
                zip.start_file(*name, deflated()).unwrap();
                zip.write_all(content).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }

    fn read(bytes: &[u8]) -> Result<Bundle, BundleError> {
        Bundle::from_zip(bytes, &BundleLimits::default())
    }

    /// Replaces every occurrence of `from` by `to` (same length) in the archive bytes: names
    /// appear in the local header and in the central directory.
    fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut count = 0;
        for at in 0..=bytes.len() - from.len() {
            if &bytes[at..at + from.len()] == from {
                bytes[at..at + from.len()].copy_from_slice(to);
                count += 1;
            }
        }
        assert!(count >= 2, "patched {count} occurrences");
    }

    fn version() -> Point {
        "localhost:repo:hello:1.0.0".parse().unwrap()
    }

    #[test]
    fn files_get_kinds_and_dirs_are_implied_parents_first() {
        let bytes = zip_of(&[
            ("wasm/hello.wasm", b"\0asm"),
            ("bind/site.bind", b"Bind { }"),
            ("config/hello.mechtron", b"Mechtron(version=1.0.0) { }"),
            ("html/index.html", b"<p>hi</p>"),
            ("html/css/", b""),
            ("README", b"read me"),
        ]);
        let bundle = read(&bytes).unwrap();
        let files: Vec<(&str, ArtifactSubKind, usize)> = bundle
            .files()
            .map(|f| (f.path, f.kind, f.bytes.len()))
            .collect();
        assert_eq!(
            files,
            [
                ("README", ArtifactSubKind::Raw, 7),
                ("bind/site.bind", ArtifactSubKind::Bind, 8),
                ("config/hello.mechtron", ArtifactSubKind::Config, 27),
                ("html/index.html", ArtifactSubKind::Raw, 9),
                ("wasm/hello.wasm", ArtifactSubKind::Wasm, 4),
            ]
        );
        assert_eq!(
            bundle.dirs().collect::<Vec<_>>(),
            ["bind/", "config/", "html/", "html/css/", "wasm/"]
        );
        assert_eq!(bundle.len(), 10);
        assert_eq!(bundle.unpacked_size(), 55);
        assert_eq!(bundle.file("/wasm/hello.wasm"), Some(&b"\0asm"[..]));
        assert_eq!(bundle.file("wasm/"), None);
        assert_eq!(bundle.file("nope"), None);

        let entries = bundle.entries_under(&version()).unwrap();
        let listed: Vec<(String, String, Option<usize>)> = entries
            .iter()
            .map(|e| {
                (
                    e.point.to_string(),
                    e.kind.to_string(),
                    e.content.as_ref().map(Vec::len),
                )
            })
            .collect();
        let v = "localhost:repo:hello:1.0.0:";
        let expected: Vec<(String, String, Option<usize>)> = [
            ("/", "Artifact<Dir>", None),
            ("/README", "Artifact<Raw>", Some(7)),
            ("/bind/", "Artifact<Dir>", None),
            ("/bind/site.bind", "Artifact<Bind>", Some(8)),
            ("/config/", "Artifact<Dir>", None),
            ("/config/hello.mechtron", "Artifact<Config>", Some(27)),
            ("/html/", "Artifact<Dir>", None),
            ("/html/css/", "Artifact<Dir>", None),
            ("/html/index.html", "Artifact<Raw>", Some(9)),
            ("/wasm/", "Artifact<Dir>", None),
            ("/wasm/hello.wasm", "Artifact<Wasm>", Some(4)),
        ]
        .iter()
        .map(|(p, k, c)| (format!("{v}{p}"), k.to_string(), *c))
        .collect();
        assert_eq!(listed, expected);
        // Every entry's parent comes before it.
        for (n, e) in entries.iter().enumerate().skip(1) {
            let parent = e.point.parent().unwrap();
            assert!(
                entries[..n].iter().any(|p| p.point == parent),
                "{}",
                e.point
            );
        }
        assert_eq!(bundle.clone().into_entries(&version()).unwrap(), entries);
    }

    #[test]
    fn sibling_names_sort_parents_first() {
        // '-' and '.' sort before '/', so `a-b/x` and `a.txt` sort between `a` and `a/`; the
        // order still holds because every path sorts after its own prefix.
        let bytes = zip_of(&[
            ("a-b/x", b"1"),
            ("a/x", b"2"),
            ("a.txt", b"3"),
            ("a/b/c", b"4"),
        ]);
        let entries = read(&bytes).unwrap().entries_under(&version()).unwrap();
        for (n, e) in entries.iter().enumerate().skip(1) {
            let parent = e.point.parent().unwrap();
            assert!(
                entries[..n].iter().any(|p| p.point == parent),
                "{}",
                e.point
            );
        }
        assert_eq!(entries.len(), 8);
    }

    #[test]
    fn an_empty_zip_is_an_empty_bundle() {
        let bundle = read(&zip_of(&[])).unwrap();
        assert!(bundle.is_empty());
        let entries = bundle.entries_under(&version()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].point.to_string(), "localhost:repo:hello:1.0.0:/");
    }

    #[test]
    fn stored_entries_are_read_too() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("a.txt", stored()).unwrap();
        zip.write_all(b"plain").unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        assert_eq!(read(&bytes).unwrap().file("a.txt"), Some(&b"plain"[..]));
    }

    #[test]
    fn escaping_paths_are_refused() {
        for (name, reason) in [
            ("../evil", "'..' leaves the bundle"),
            ("a/../../evil", "'..' leaves the bundle"),
            ("/etc/passwd", "it is an absolute path"),
            ("a\\b", "backslashes are not path separators in a bundle"),
            (
                "..\\evil",
                "backslashes are not path separators in a bundle",
            ),
            ("C:/windows", "it begins with a drive letter"),
            ("c:evil", "it begins with a drive letter"),
        ] {
            let err = read(&zip_of(&[(name, b"x")])).unwrap_err();
            assert_eq!(
                err,
                BundleError::EscapesBundle {
                    entry: name.to_string(),
                    reason
                },
                "{name}"
            );
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn names_that_are_not_point_names_are_refused() {
        for name in [
            "a b.txt",
            "./a",
            "a/./b",
            "a//b",
            "ünï.txt",
            "ab:c",
            "a?",
            "html/ind ex.html",
        ] {
            let err = read(&zip_of(&[(name, b"x")])).unwrap_err();
            assert!(
                matches!(&err, BundleError::BadName { entry, .. } if entry == name),
                "{name}: {err}"
            );
        }
        let err = read(&zip_of(&[("a b.txt", b"x")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("zip entry 'a b.txt' is not a valid bundle path: "),
            "{err}"
        );
    }

    #[test]
    fn duplicates_are_refused_with_their_name() {
        // The writer refuses duplicate names, so write two and rename one in place.
        let mut bytes = zip_of(&[("one.txt", b"1"), ("two.txt", b"2")]);
        patch(&mut bytes, b"two.txt", b"one.txt");
        assert_eq!(
            read(&bytes).unwrap_err(),
            BundleError::Duplicate {
                entry: "one.txt".to_string()
            }
        );
        // A file and a directory of the same name.
        let err = read(&zip_of(&[("a", b"1"), ("a/", b"")])).unwrap_err();
        assert_eq!(
            err,
            BundleError::Duplicate {
                entry: "a/".to_string()
            }
        );
        // A path through a file.
        let err = read(&zip_of(&[("a", b"1"), ("a/b", b"2")])).unwrap_err();
        assert_eq!(
            err,
            BundleError::InsideFile {
                entry: "a/b".to_string(),
                file: "a".to_string()
            }
        );
    }

    #[test]
    fn symlinks_are_refused() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.add_symlink("link", "/etc/passwd", deflated()).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        assert_eq!(
            read(&bytes).unwrap_err(),
            BundleError::Symlink {
                entry: "link".to_string()
            }
        );
    }

    #[test]
    fn too_many_entries_are_refused() {
        let limits = BundleLimits {
            max_entries: 3,
            ..BundleLimits::default()
        };
        let four = zip_of(&[("a", b""), ("b", b""), ("c", b""), ("d", b"")]);
        assert_eq!(
            Bundle::from_zip(&four, &limits).unwrap_err(),
            BundleError::TooManyEntries { limit: 3 }
        );
        // Directories a path implies count too.
        let deep = zip_of(&[("a/b/c/d", b"")]);
        assert_eq!(
            Bundle::from_zip(&deep, &limits).unwrap_err(),
            BundleError::TooManyEntries { limit: 3 }
        );
        let three = zip_of(&[("a", b""), ("b", b""), ("c", b"")]);
        assert_eq!(Bundle::from_zip(&three, &limits).unwrap().len(), 3);
    }

    #[test]
    fn size_limits_are_enforced() {
        let bytes = zip_of(&[("big", &[7u8; 1000]), ("small", b"x")]);
        let limits = BundleLimits {
            max_archive: bytes.len() as u64 - 1,
            ..BundleLimits::default()
        };
        let err = Bundle::from_zip(&bytes, &limits).unwrap_err();
        assert_eq!(
            err,
            BundleError::ArchiveTooLarge {
                size: bytes.len() as u64,
                limit: bytes.len() as u64 - 1
            }
        );
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let limits = BundleLimits {
            max_entry: 999,
            ..BundleLimits::default()
        };
        assert_eq!(
            Bundle::from_zip(&bytes, &limits).unwrap_err(),
            BundleError::EntryTooLarge {
                entry: "big".to_string(),
                size: 1000,
                limit: 999
            }
        );

        let limits = BundleLimits {
            max_unpacked: 1000,
            ..BundleLimits::default()
        };
        assert_eq!(
            Bundle::from_zip(&bytes, &limits).unwrap_err(),
            BundleError::UnpackedTooLarge {
                entry: "small".to_string(),
                limit: 1000
            }
        );
    }

    #[test]
    fn a_bomb_that_understates_its_size_is_cut_off() {
        // 1 MiB of zeros deflates to about 1 KiB; rewrite its declared size to 1000 bytes. The
        // zip reader stops at the declared size (and `take` would stop one byte later).
        let zeros = vec![0u8; 1 << 20];
        let mut bytes = zip_of(&[("bomb", &zeros)]);
        patch(
            &mut bytes,
            &(1u32 << 20).to_le_bytes(),
            &1000u32.to_le_bytes(),
        );
        match read(&bytes).unwrap_err() {
            BundleError::UnreadableEntry { entry, reason } => {
                assert_eq!(entry, "bomb");
                assert!(reason.contains("larger than its declared"), "{reason}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn an_entry_that_overstates_its_size_is_refused() {
        let mut bytes = zip_of(&[("short", &[1u8; 100])]);
        patch(&mut bytes, &100u32.to_le_bytes(), &200u32.to_le_bytes());
        assert_eq!(
            read(&bytes).unwrap_err(),
            BundleError::SizeMismatch {
                entry: "short".to_string(),
                declared: 200
            }
        );
    }

    #[test]
    fn corrupt_content_is_refused() {
        let mut bytes = zip_of(&[("data.txt", b"hello hello hello hello")]);
        // Flip the stored CRC (in both headers) so the content no longer matches it.
        let crc = crc_of(&bytes);
        patch(&mut bytes, &crc.to_le_bytes(), &(!crc).to_le_bytes());
        let err = read(&bytes).unwrap_err();
        assert!(
            matches!(&err, BundleError::UnreadableEntry { entry, .. } if entry == "data.txt"),
            "{err}"
        );
    }

    fn crc_of(bytes: &[u8]) -> u32 {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
        archive.by_index(0).unwrap().crc32()
    }

    #[test]
    fn garbage_is_an_invalid_zip() {
        for bytes in [
            &b""[..],
            b"not a zip at all",
            b"PK\x03\x04",
            &[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ] {
            let err = read(bytes).unwrap_err();
            assert!(matches!(err, BundleError::InvalidZip(_)), "{err}");
        }
    }

    #[test]
    fn truncated_and_mangled_zips_never_panic() {
        let bytes = zip_of(&[
            ("wasm/hello.wasm", &[9u8; 3000]),
            ("bind/site.bind", b"Bind { }"),
        ]);
        for len in 0..bytes.len() {
            let _ = read(&bytes[..len]);
        }
        for at in 0..bytes.len() {
            let mut mangled = bytes.clone();
            mangled[at] ^= 0xa5;
            let _ = read(&mangled);
        }
    }

    #[test]
    fn a_bundle_point_inside_a_file_system_is_refused() {
        let bundle = read(&zip_of(&[("a", b"1")])).unwrap();
        let inside: Point = "localhost:files:/dir/".parse().unwrap();
        let err = bundle.entries_under(&inside).unwrap_err();
        assert!(
            matches!(&err, BundleError::BadBundlePoint { point, .. } if point == "localhost:files:/dir/"),
            "{err}"
        );
    }
}

/// Why a directory could not be packed into a bundle zip.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The directory (or a file in it) could not be read.
    #[error("{path}: {source}")]
    Read {
        /// What could not be read.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file's name cannot be part of a point (`[A-Za-z0-9._-]+` per segment).
    #[error(
        "{path}: '{name}' cannot name a file in a bundle (use letters, digits, '.', '_' and '-')"
    )]
    BadName {
        /// The file.
        path: std::path::PathBuf,
        /// The offending name.
        name: String,
    },
    /// Writing the archive failed.
    #[error("writing the bundle zip failed: {0}")]
    Zip(String),
}

/// Packs the files below `root` into a bundle zip (entries relative to `root`, in a stable
/// order, deflated), refusing names a bundle could not hold. Symbolic links are not followed.
pub fn pack(root: &std::path::Path) -> Result<Vec<u8>, PackError> {
    use std::io::Write;

    fn walk(
        dir: &std::path::Path,
        prefix: &str,
        files: &mut Vec<(String, std::path::PathBuf)>,
    ) -> Result<(), PackError> {
        let read = |source| PackError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
            .map_err(read)?
            .collect::<Result<_, _>>()
            .map_err(read)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let valid = !name.is_empty()
                && name != "."
                && name != ".."
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                return Err(PackError::BadName { path, name });
            }
            let kind = entry.file_type().map_err(read)?;
            if kind.is_dir() {
                walk(&path, &format!("{prefix}{name}/"), files)?;
            } else if kind.is_file() {
                files.push((format!("{prefix}{name}"), path));
            }
        }
        Ok(())
    }

    let mut files = Vec::new();
    walk(root, "", &mut files)?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, path) in files {
        let bytes = std::fs::read(&path).map_err(|source| PackError::Read {
            path: path.clone(),
            source,
        })?;
        zip.start_file(name, options)
            .map_err(|e| PackError::Zip(e.to_string()))?;
        zip.write_all(&bytes)
            .map_err(|e| PackError::Zip(e.to_string()))?;
    }
    zip.finish()
        .map(std::io::Cursor::into_inner)
        .map_err(|e| PackError::Zip(e.to_string()))
}

#[cfg(test)]
mod pack_tests {
    use super::*;

    #[test]
    fn a_packed_directory_reads_back_as_the_same_bundle() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("html/css")).expect("dirs");
        std::fs::write(dir.path().join("html/index.html"), b"<h1>hi</h1>").expect("file");
        std::fs::write(dir.path().join("html/css/site.css"), b"h1{}").expect("file");
        let zip = pack(dir.path()).expect("packed");
        let bundle = Bundle::from_zip(&zip, &BundleLimits::default()).expect("valid bundle");
        assert_eq!(bundle.file("html/index.html"), Some(&b"<h1>hi</h1>"[..]));
        assert_eq!(bundle.file("html/css/site.css"), Some(&b"h1{}"[..]));
    }

    #[test]
    fn names_a_point_cannot_hold_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("bad name.txt"), b"x").expect("file");
        assert!(matches!(pack(dir.path()), Err(PackError::BadName { .. })));
    }
}
