//! Finding and connecting to a running server: `--server`/`STARLANE_SERVER` and
//! `--token`/`STARLANE_TOKEN`, else the endpoint files in the data directory (SPEC §13).

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use cosmic_hyperspace::control::{
    self, CONTROL_ADDR_FILE, Client, ControlError, TOKEN_FILE, resolve_home,
};

/// The variable naming the server's control address.
pub const ENV_SERVER: &str = "STARLANE_SERVER";
/// The variable holding the token.
pub const ENV_TOKEN: &str = "STARLANE_TOKEN";

/// How to reach the server.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// The server's control address (default: STARLANE_SERVER, else the data directory's
    /// control.addr).
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,

    /// The token to act with (default: STARLANE_TOKEN, else the data directory's token file).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Where the server is and how to authenticate, and where that was learnt.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The control address.
    pub addr: String,
    /// The token.
    pub token: String,
    /// The data directory the address came from, if it came from there.
    pub found_in: Option<PathBuf>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("found_in", &self.found_in)
            .finish_non_exhaustive()
    }
}

/// Works out the target from the flags, the environment (`env`) and the data directory.
pub fn locate(
    args: &RemoteArgs,
    home: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Target> {
    let server = args.server.clone().or_else(|| env(ENV_SERVER));
    let token = args.token.clone().or_else(|| env(ENV_TOKEN));
    match (server, token) {
        (Some(addr), Some(token)) => Ok(Target {
            addr,
            token,
            found_in: None,
        }),
        (Some(addr), None) => {
            let home = resolve_home(home, &env)?;
            let token = read_token(&home)?.ok_or_else(|| {
                anyhow!(
                    "no token to talk to {addr}: pass --token or set {ENV_TOKEN} (there is no {})",
                    home.join(TOKEN_FILE).display()
                )
            })?;
            Ok(Target {
                addr,
                token,
                found_in: None,
            })
        }
        (None, token) => {
            let home = resolve_home(home, &env)?;
            let endpoint = control::read_endpoint(&home)?;
            let token = token.or(endpoint.token).ok_or_else(|| {
                anyhow!(
                    "no token in {}: pass --token or set {ENV_TOKEN}",
                    home.join(TOKEN_FILE).display()
                )
            })?;
            Ok(Target {
                addr: endpoint.control.to_string(),
                token,
                found_in: Some(home),
            })
        }
    }
}

fn read_token(home: &Path) -> anyhow::Result<Option<String>> {
    let path = home.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(Some(token.trim().to_string())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Connects and authenticates; a server that the data directory names but that does not
/// answer is reported as not running.
pub async fn connect(target: &Target) -> anyhow::Result<Client> {
    match Client::connect(target.addr.as_str(), &target.token).await {
        Ok(client) => Ok(client),
        Err(ControlError::Connect { addr, source }) => match &target.found_in {
            Some(home) => Err(anyhow!(
                "no running server found in {}: start one with `starlane serve` \
                 ({} names {addr}, which does not answer: {source})",
                home.display(),
                CONTROL_ADDR_FILE
            )),
            None => Err(anyhow!(
                "no server answers at {addr} ({source}): check --server / {ENV_SERVER}, \
                 or start one with `starlane serve`"
            )),
        },
        Err(ControlError::Denied(message)) => Err(anyhow!(
            "the server at {} refused the token ({message}): check --token / {ENV_TOKEN}",
            target.addr
        )),
        Err(err) => {
            Err(err).with_context(|| format!("cannot talk to the server at {}", target.addr))
        }
    }
}

/// Runs a client future to completion on a single-threaded runtime (the CLI talks to one
/// server at a time).
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn endpoint_in(home: &Path, token: &str) {
        let addr: SocketAddr = "127.0.0.1:4343".parse().unwrap();
        let http: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        control::write_endpoint(home, addr, http, token).unwrap();
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        endpoint_in(dir.path(), "file-token");
        let home = dir.path().to_str().unwrap();

        let from_files = locate(
            &RemoteArgs::default(),
            None,
            env_of(&[("STARLANE_HOME", home)]),
        )
        .unwrap();
        assert_eq!(from_files.addr, "127.0.0.1:4343");
        assert_eq!(from_files.token, "file-token");
        assert_eq!(from_files.found_in.as_deref(), Some(dir.path()));

        let env = env_of(&[
            ("STARLANE_HOME", home),
            ("STARLANE_SERVER", "127.0.0.1:9"),
            ("STARLANE_TOKEN", "env-token"),
        ]);
        let from_env = locate(&RemoteArgs::default(), None, &env).unwrap();
        assert_eq!(
            (from_env.addr.as_str(), from_env.token.as_str()),
            ("127.0.0.1:9", "env-token")
        );
        assert_eq!(from_env.found_in, None);

        let flags = RemoteArgs {
            server: Some("10.0.0.1:1".into()),
            token: Some("flag-token".into()),
        };
        let from_flags = locate(&flags, None, &env).unwrap();
        assert_eq!(
            (from_flags.addr.as_str(), from_flags.token.as_str()),
            ("10.0.0.1:1", "flag-token")
        );

        // A server given without a token takes the data directory's token.
        let server_only = RemoteArgs {
            server: Some("10.0.0.1:1".into()),
            token: None,
        };
        let target = locate(&server_only, None, env_of(&[("STARLANE_HOME", home)])).unwrap();
        assert_eq!(target.token, "file-token");
        assert!(!format!("{target:?}").contains("file-token"));
    }

    #[test]
    fn no_server_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate(&RemoteArgs::default(), Some(dir.path()), env_of(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no running server found in {}: start one with `starlane serve`",
                dir.path().display()
            )
        );
        let server_only = RemoteArgs {
            server: Some("127.0.0.1:1".into()),
            token: None,
        };
        let err = locate(&server_only, Some(dir.path()), env_of(&[])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no token to talk to 127.0.0.1:1: pass --token or set STARLANE_TOKEN"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_stale_endpoint_says_no_server_runs() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        control::write_endpoint(dir.path(), addr, addr, "t").unwrap();
        let target = locate(&RemoteArgs::default(), Some(dir.path()), env_of(&[])).unwrap();
        let err = connect(&target).await.unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "no running server found in {}: start one with `starlane serve` (control.addr names {addr}",
                dir.path().display()
            )),
            "{err}"
        );
    }
}
