//! The secret key of a machine, and sealing with it: how a `Secret`'s value is kept at rest
//! (SPEC §17.3).
//!
//! A sealed value is `version (1 byte) | key id (8) | nonce (24) | ciphertext | tag (16)`:
//! XChaCha20-Poly1305 under the machine's 32-byte key, a fresh random nonce for every seal,
//! and as associated data the version and the secret's point — so a sealed value copied to
//! another secret, or altered in any byte, does not open. The key id (the first 8 bytes of
//! SHA-256 over a label and the key) says whether a value was sealed under another key, so a
//! machine given the wrong key says exactly that rather than "corrupt".
//!
//! The key is 64 hexadecimal digits (32 random bytes, e.g. `openssl rand -hex 32`): from
//! `STARLANE_SECRET_KEY`, or else from `secret.key` in the data directory, which the first
//! start creates, readable by its owner only. Every machine of a cosmos must have the same.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use cosmic_space::Point;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The file in the data directory that holds the key when `STARLANE_SECRET_KEY` is not set.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// The format of the sealed values this code writes.
const VERSION: u8 = 1;
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + ID_LEN + NONCE_LEN;

/// A machine's key for sealing secrets: 32 bytes, wiped from memory when dropped, never
/// printed (its `Debug` shows only its id).
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; SecretKey::LEN],
}

/// Where a machine's key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The setting (`STARLANE_SECRET_KEY`).
    Setting,
    /// The key file in the data directory; `created` when this start made it.
    File {
        /// The file.
        path: PathBuf,
        /// Whether it was created now (a new key: secrets sealed before are lost to it).
        created: bool,
    },
}

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    /// The setting is not 64 hexadecimal digits (its value is never shown).
    #[error(
        "{setting} is not a secret key: write 64 hexadecimal digits (32 random bytes), e.g. the \
         output of `openssl rand -hex 32`; every machine of a cosmos needs the same key"
    )]
    Malformed {
        /// Where the value came from (`STARLANE_SECRET_KEY`).
        setting: String,
    },
    /// The key file does not hold a key (its content is never shown).
    #[error(
        "{} does not hold a secret key (64 hexadecimal digits): restore the file this cosmos's \
         secrets were sealed with, or set STARLANE_SECRET_KEY", path.display()
    )]
    MalformedFile {
        /// The file.
        path: PathBuf,
    },
    /// The key file may be read by other users.
    #[error(
        "{} may be read by other users (mode {mode:o}): make it owner-only with `chmod 600 {}`",
        path.display(), path.display()
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file could not be read or created.
    #[error("cannot {action} the secret key file {}: {source}", path.display())]
    File {
        /// `read` or `create`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The operating system gave no random bytes for a new key.
    #[error("the operating system gave no random bytes for a secret key: {0}")]
    Random(String),
}

/// Why a value could not be sealed or opened. No variant carries the value or the sealed
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The value was sealed under another key.
    #[error(
        "the value of {point} was sealed with another secret key: this machine's key \
         (STARLANE_SECRET_KEY, or secret.key in its data directory) is wrong — every machine \
         of a cosmos needs the key its secrets were sealed with"
    )]
    WrongKey {
        /// The secret.
        point: Point,
    },
    /// The sealed value does not open under this key: altered, or copied from another secret.
    #[error(
        "the stored value of {point} does not open with this machine's secret key: it was \
         altered, or copied from another secret"
    )]
    Tampered {
        /// The secret.
        point: Point,
    },
    /// The stored bytes are not a sealed value this code knows.
    #[error("the stored value of {point} is not a sealed secret this version of Starlane reads")]
    Unreadable {
        /// The secret.
        point: Point,
    },
    /// No nonce could be drawn, or the cipher refused the value.
    #[error("cannot seal the value of {point}: {why}")]
    Seal {
        /// The secret.
        point: Point,
        /// Why.
        why: String,
    },
}

impl SecretKey {
    /// The length of a key in bytes.
    pub const LEN: usize = 32;

    /// A new key from the operating system's random generator.
    pub fn random() -> Result<SecretKey, SecretKeyError> {
        let mut bytes = [0u8; SecretKey::LEN];
        getrandom::fill(&mut bytes).map_err(|err| SecretKeyError::Random(err.to_string()))?;
        Ok(SecretKey { bytes })
    }

    /// The key written as 64 hexadecimal digits (either case, white space around them
    /// ignored); `setting` names where the text came from, for the error.
    pub fn parse(text: &str, setting: &str) -> Result<SecretKey, SecretKeyError> {
        decode_hex(text.trim()).ok_or_else(|| SecretKeyError::Malformed {
            setting: setting.to_string(),
        })
    }

    /// The key of the data directory `home`: read from `secret.key`, or created there (a new
    /// random key, owner-only) if there is none. A file that other users may read is refused.
    pub fn load_or_create(home: &Path) -> Result<(SecretKey, KeySource), SecretKeyError> {
        let path = home.join(SECRET_KEY_FILE);
        if let Some(key) = read_key_file(&path)? {
            return Ok((
                key,
                KeySource::File {
                    path,
                    created: false,
                },
            ));
        }
        let key = SecretKey::random()?;
        let created = key.create_file(home, &path)?;
        if created {
            return Ok((
                key,
                KeySource::File {
                    path,
                    created: true,
                },
            ));
        }
        // Another process created it first: use that one.
        match read_key_file(&path)? {
            Some(key) => Ok((
                key,
                KeySource::File {
                    path,
                    created: false,
                },
            )),
            None => Err(SecretKeyError::MalformedFile { path }),
        }
    }

    /// The key's id: 16 hexadecimal digits that differ between keys and tell nothing of the
    /// key (to compare the keys of two machines).
    pub fn id(&self) -> String {
        hex(&self.id_bytes())
    }

    fn id_bytes(&self) -> [u8; ID_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(b"starlane secret key id\0");
        hasher.update(self.bytes);
        let digest = hasher.finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        id
    }

    /// Seals `value` as the value of the secret at `point`.
    pub fn seal(&self, point: &Point, value: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|err| SealError::Seal {
            point: point.clone(),
            why: format!("the operating system gave no random bytes: {err}"),
        })?;
        let aad = associated_data(point);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Seal {
                point: point.clone(),
                why: "the cipher refused it (too long)".to_string(),
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&self.id_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`SecretKey::seal`] made for the secret at `point`.
    pub fn open(&self, point: &Point, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let unreadable = || SealError::Unreadable {
            point: point.clone(),
        };
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(unreadable());
        }
        let (header, ciphertext) = sealed.split_at(HEADER_LEN);
        let (version, rest) = header.split_at(1);
        let (id, nonce) = rest.split_at(ID_LEN);
        if version != [VERSION] {
            return Err(unreadable());
        }
        if !bool::from(id.ct_eq(&self.id_bytes())) {
            return Err(SealError::WrongKey {
                point: point.clone(),
            });
        }
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unreadable())?;
        let aad = associated_data(point);
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered {
                point: point.clone(),
            })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.bytes))
    }

    /// Writes the key to `path`, owner-only, unless a file is there already (`false` then).
    /// The file appears whole or not at all: written beside it, then linked into place, which
    /// fails rather than replaces.
    fn create_file(&self, home: &Path, path: &Path) -> Result<bool, SecretKeyError> {
        let failed = |source| SecretKeyError::File {
            action: "create",
            path: path.to_path_buf(),
            source,
        };
        crate::home::create(home).map_err(failed)?;
        let text = Zeroizing::new(format!("{}\n", hex(&self.bytes)));
        let linked = crate::home::write(path, text.as_bytes(), crate::home::Place::New);
        match linked {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(failed(err)),
        }
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &SecretKey) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// What a sealed value is bound to besides its key: the format and the secret's point.
fn associated_data(point: &Point) -> Vec<u8> {
    let point = point.to_string();
    let mut aad = Vec::with_capacity(point.len() + 17);
    aad.push(VERSION);
    aad.extend_from_slice(b"starlane secret ");
    aad.extend_from_slice(point.as_bytes());
    aad
}

/// The key in `path`, `None` if there is no such file.
fn read_key_file(path: &Path) -> Result<Option<SecretKey>, SecretKeyError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            return Err(SecretKeyError::MalformedFile {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(SecretKeyError::File {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|source| SecretKeyError::File {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretKeyError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    decode_hex(text.trim())
        .map(Some)
        .ok_or_else(|| SecretKeyError::MalformedFile {
            path: path.to_path_buf(),
        })
}

fn decode_hex(text: &str) -> Option<SecretKey> {
    let digits = text.as_bytes();
    if digits.len() != 2 * SecretKey::LEN {
        return None;
    }
    let mut key = SecretKey {
        bytes: [0u8; SecretKey::LEN],
    };
    for (byte, pair) in key.bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(*pair.first()?).to_digit(16)?;
        let low = char::from(*pair.get(1)?).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn key(digit: char) -> SecretKey {
        SecretKey::parse(&digit.to_string().repeat(64), "test").unwrap()
    }

    fn point(text: &str) -> Point {
        text.parse().unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_point() {
        let key = key('a');
        let at = point("localhost:app:db-password");
        let sealed = key.seal(&at, b"hunter2").unwrap();
        assert_eq!(key.open(&at, &sealed).unwrap(), b"hunter2");
        assert_eq!(sealed.len(), HEADER_LEN + b"hunter2".len() + TAG_LEN);
        assert!(
            !sealed.windows(7).any(|w| w == b"hunter2"),
            "the value shows through"
        );
        // A fresh nonce every time: the same value seals differently.
        let again = key.seal(&at, b"hunter2").unwrap();
        assert_ne!(sealed, again);
        assert_eq!(key.open(&at, &again).unwrap(), b"hunter2");
        // Binary values and the empty value round-trip too.
        let binary = [0u8, 255, 10, 13, 0];
        assert_eq!(
            key.open(&at, &key.seal(&at, &binary).unwrap()).unwrap(),
            binary
        );
        assert_eq!(key.open(&at, &key.seal(&at, b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn another_key_is_named_as_the_wrong_key() {
        let at = point("localhost:app:db-password");
        let sealed = key('a').seal(&at, b"hunter2").unwrap();
        let err = key('b').open(&at, &sealed).unwrap_err();
        assert_eq!(err, SealError::WrongKey { point: at.clone() });
        let message = err.to_string();
        assert!(
            message.contains("key") && message.contains("is wrong"),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let key = key('a');
        let at = point("localhost:app:db-password");
        let sealed = key.seal(&at, b"hunter2").unwrap();
        for at_byte in 0..sealed.len() {
            let mut altered = sealed.clone();
            if let Some(byte) = altered.get_mut(at_byte) {
                *byte ^= 0x01;
            }
            let err = key.open(&at, &altered).unwrap_err();
            let expected = match at_byte {
                0 => SealError::Unreadable { point: at.clone() },
                1..=8 => SealError::WrongKey { point: at.clone() },
                _ => SealError::Tampered { point: at.clone() },
            };
            assert_eq!(err, expected, "byte {at_byte}");
        }
        for cut in [0, 1, HEADER_LEN, HEADER_LEN + TAG_LEN - 1] {
            assert_eq!(
                key.open(&at, &sealed[..cut]).unwrap_err(),
                SealError::Unreadable { point: at.clone() },
                "{cut} bytes"
            );
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(
            key.open(&at, &longer).unwrap_err(),
            SealError::Tampered { point: at.clone() }
        );
    }

    #[test]
    fn a_sealed_value_is_bound_to_its_point() {
        let key = key('a');
        let sealed = key
            .seal(&point("localhost:app:db-password"), b"hunter2")
            .unwrap();
        for other in [
            "localhost:app:api-key",
            "localhost:app:db-password:x",
            "localhost:other:db-password",
        ] {
            assert_eq!(
                key.open(&point(other), &sealed).unwrap_err(),
                SealError::Tampered {
                    point: point(other)
                },
                "{other}"
            );
        }
    }

    #[test]
    fn keys_are_64_hex_digits_and_never_printed() {
        let text = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";
        let key = SecretKey::parse(&format!("  {text}\n"), "STARLANE_SECRET_KEY").unwrap();
        assert_eq!(key, SecretKey::parse(&text.to_lowercase(), "x").unwrap());
        assert_ne!(key, SecretKey::random().unwrap());
        let shown = format!("{key:?}");
        assert!(shown.starts_with("SecretKey { id: \""), "{shown}");
        assert!(!shown.to_lowercase().contains("00112233"), "{shown}");
        assert_eq!(key.id().len(), 16);
        for bad in [
            "",
            "abc",
            &text[..63],
            &format!("{text}0"),
            &format!("{}g", &text[..63]),
            &"é".repeat(32),
            "0x00112233445566778899aabbccddeeffffeeddccbbaa998877665544332211",
        ] {
            let err = SecretKey::parse(bad, "STARLANE_SECRET_KEY").unwrap_err();
            assert_eq!(
                err.to_string(),
                "STARLANE_SECRET_KEY is not a secret key: write 64 hexadecimal digits (32 \
                 random bytes), e.g. the output of `openssl rand -hex 32`; every machine of a \
                 cosmos needs the same key",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_key_file_is_created_owner_only_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let (first, source) = SecretKey::load_or_create(&home).unwrap();
        let path = home.join(SECRET_KEY_FILE);
        assert_eq!(
            source,
            KeySource::File {
                path: path.clone(),
                created: true
            }
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let (second, source) = SecretKey::load_or_create(&home).unwrap();
        assert_eq!(first, second);
        assert_eq!(
            source,
            KeySource::File {
                path: path.clone(),
                created: false
            }
        );
        let leftovers: Vec<_> = fs::read_dir(&home)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [SECRET_KEY_FILE]);
    }

    #[test]
    fn a_bad_or_exposed_key_file_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_KEY_FILE);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&path)
            .unwrap()
            .write_all(b"not-a-key-at-all\n")
            .unwrap();
        let err = SecretKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, SecretKeyError::MalformedFile { .. }), "{err}");
        assert!(!err.to_string().contains("not-a-key"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = SecretKey::load_or_create(dir.path()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{} may be read by other users (mode 644): make it owner-only with `chmod \
                     600 {}`",
                    path.display(),
                    path.display()
                )
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let (key, _) = SecretKey::load_or_create(dir.path()).unwrap();
            assert_eq!(key, SecretKey::parse(&"ab".repeat(32), "x").unwrap());
        }
    }
}
