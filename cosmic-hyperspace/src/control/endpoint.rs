//! The data-directory files through which the CLI finds a running server (SPEC §13):
//! `control.addr`, `http.addr` and the HyperUser `token` (owner-only), each written
//! atomically so a reader never sees half a file.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::ControlError;

/// The file holding the control address, e.g. `127.0.0.1:4343`.
pub const CONTROL_ADDR_FILE: &str = "control.addr";
/// The file holding the HTTP gateway's address.
pub const HTTP_ADDR_FILE: &str = "http.addr";
/// The file holding the HyperUser token (permissions 0600 on Unix).
pub const TOKEN_FILE: &str = "token";

/// Where a running server listens and the token to talk to it, as read from its data
/// directory.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The control address.
    pub control: SocketAddr,
    /// The HTTP gateway's address, if the file is there.
    pub http: Option<SocketAddr>,
    /// The HyperUser token, if the file is there.
    pub token: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("control", &self.control)
            .field("http", &self.http)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Writes the addresses and the HyperUser token into `home` (created, owner-only, if
/// missing). Every file is replaced atomically; the token file is readable by its owner only.
pub fn write_endpoint(
    home: &Path,
    control: SocketAddr,
    http: SocketAddr,
    token: &str,
) -> Result<(), ControlError> {
    create_home(home)?;
    // The token first: a reader that finds the address finds the matching token.
    write_atomically(&home.join(TOKEN_FILE), token.as_bytes())?;
    write_atomically(&home.join(HTTP_ADDR_FILE), format!("{http}\n").as_bytes())?;
    write_atomically(
        &home.join(CONTROL_ADDR_FILE),
        format!("{control}\n").as_bytes(),
    )?;
    Ok(())
}

/// Reads the endpoint of the server whose data directory is `home`;
/// [`ControlError::NoServer`] if there is no `control.addr`.
pub fn read_endpoint(home: &Path) -> Result<Endpoint, ControlError> {
    let control_path = home.join(CONTROL_ADDR_FILE);
    let control = match read_optional(&control_path)? {
        Some(text) => parse_addr(&control_path, &text)?,
        None => {
            return Err(ControlError::NoServer {
                home: home.to_path_buf(),
            });
        }
    };
    let http_path = home.join(HTTP_ADDR_FILE);
    let http = match read_optional(&http_path)? {
        Some(text) => Some(parse_addr(&http_path, &text)?),
        None => None,
    };
    let token = read_optional(&home.join(TOKEN_FILE))?.map(|token| token.trim().to_string());
    Ok(Endpoint {
        control,
        http,
        token,
    })
}

/// Removes the endpoint files (on a clean shutdown), so the CLI reports that no server runs
/// rather than failing to connect. Missing files are fine.
pub fn clear_endpoint(home: &Path) -> Result<(), ControlError> {
    for name in [CONTROL_ADDR_FILE, HTTP_ADDR_FILE, TOKEN_FILE] {
        let path = home.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ControlError::File {
                    action: "remove",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// A new random secret for a token: 256 bits from the operating system's generator, as 64
/// hex digits.
pub fn generate_token() -> Result<String, ControlError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| {
        ControlError::Io(io::Error::other(format!(
            "the operating system gave no random bytes: {err}"
        )))
    })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn create_home(home: &Path) -> Result<(), ControlError> {
    crate::home::create(home).map_err(|source| ControlError::File {
        action: "create",
        path: home.to_path_buf(),
        source,
    })
}

/// Writes `bytes` whole and owner-only at `path`, replacing what is there.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ControlError> {
    crate::home::write(path, bytes, crate::home::Place::Replace).map_err(|source| {
        ControlError::File {
            action: "write",
            path: path.to_path_buf(),
            source,
        }
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, ControlError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ControlError::File {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_addr(path: &Path, text: &str) -> Result<SocketAddr, ControlError> {
    text.trim().parse().map_err(|_| ControlError::BadFile {
        path: PathBuf::from(path),
        message: format!("'{}' is not a socket address", text.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("nested").join(".starlane");
        let control: SocketAddr = "127.0.0.1:4343".parse().unwrap();
        let http: SocketAddr = "[::1]:8080".parse().unwrap();
        write_endpoint(&home, control, http, "s3cret").unwrap();
        let endpoint = read_endpoint(&home).unwrap();
        assert_eq!(endpoint.control, control);
        assert_eq!(endpoint.http, Some(http));
        assert_eq!(endpoint.token.as_deref(), Some("s3cret"));
        assert_eq!(
            fs::read_to_string(home.join(CONTROL_ADDR_FILE)).unwrap(),
            "127.0.0.1:4343\n"
        );
        assert!(!format!("{endpoint:?}").contains("s3cret"));

        // Writing again replaces everything and leaves no temporary files.
        write_endpoint(&home, control, http, "other").unwrap();
        assert_eq!(
            read_endpoint(&home).unwrap().token.as_deref(),
            Some("other")
        );
        let mut names: Vec<String> = fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["control.addr", "http.addr", "token"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_token_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        // A stale temporary file with open permissions must not lend them to the token.
        fs::create_dir_all(&home).unwrap();
        let stale = home.join(format!(".token.{}.tmp", std::process::id()));
        fs::write(&stale, "old").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o666)).unwrap();
        write_endpoint(&home, addr, addr, "t").unwrap();
        let mode = fs::metadata(home.join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let fresh = dir.path().join("fresh");
        write_endpoint(&fresh, addr, addr, "t").unwrap();
        let mode = fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_missing_or_broken_endpoint_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_endpoint(dir.path()).unwrap_err();
        assert!(matches!(err, ControlError::NoServer { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "no running server found in {}: start one with `starlane serve`",
                dir.path().display()
            )
        );
        fs::write(dir.path().join(CONTROL_ADDR_FILE), "nonsense\n").unwrap();
        let err = read_endpoint(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("control.addr: 'nonsense' is not a socket address"),
            "{err}"
        );
        // Without the other files the endpoint still names the server.
        fs::write(dir.path().join(CONTROL_ADDR_FILE), "127.0.0.1:9\n").unwrap();
        let endpoint = read_endpoint(dir.path()).unwrap();
        assert_eq!(endpoint.http, None);
        assert_eq!(endpoint.token, None);
    }

    #[test]
    fn clearing_removes_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        write_endpoint(dir.path(), addr, addr, "t").unwrap();
        clear_endpoint(dir.path()).unwrap();
        assert!(matches!(
            read_endpoint(dir.path()),
            Err(ControlError::NoServer { .. })
        ));
        clear_endpoint(dir.path()).unwrap();
    }

    #[test]
    fn tokens_are_long_and_different() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
