//! The driver of `Secret` particles (SPEC §17.3): each holds one write-only value, sealed with
//! the machine's [`SecretKey`] and kept as the particle's content in the registry, so only
//! this driver — the one holder of the key — ever sees it in the clear.
//!
//! | Wave | The Field checked | Answers |
//! | --- | --- | --- |
//! | `Http<Put>` + body (text or bytes) | `w` | 200; the value sealed and stored, with the property `updated` (Unix ms); empty 400, over 64 KiB 413 |
//! | `Http<Get>`, `Cmd<Read>` | `r` and `secret:reveal`, granted explicitly | the value (200, bytes), or 404 if none was set; each reveal logged by point and agent |
//! | `Http<Head>` | `r` | 200 if a value is set, else 404; no body |
//! | `Http<Delete>` | `w` | 200, the value cleared (and `updated` removed), or 404 if none was set |
//!
//! The path is ignored (a secret holds one value). A value that does not open — sealed under
//! another key, altered, or copied from another secret — answers 500 saying which, never with
//! the stored bytes. No answer, log line or error carries a value but a reveal's own.

mod key;

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{
    BaseKind, Bind, CmdMethod, HttpMethod, Method, Ping, Point, PropertyChange, PropertyChanges,
    ReflectedCore, StatusCode, Substance,
};

pub use key::{KeySource, SECRET_KEY_FILE, SealError, SecretKey, SecretKeyError};

use super::{Driver, DriverCtx, now_ms};
use crate::registry::ParticleRecord;

/// The property a secret carries while it holds a value: when it was last set (Unix
/// milliseconds). Nothing else about the value is ever recorded in the clear.
pub const UPDATED_PROPERTY: &str = "updated";

/// Serves secrets.
pub struct SecretDriver {
    key: SecretKey,
    bind: Arc<Bind>,
}

impl std::fmt::Debug for SecretDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretDriver")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SecretDriver {
    /// The largest value a secret holds (larger: 413). Secrets are passwords, tokens and keys;
    /// a file belongs in a FileStore.
    pub const MAX_VALUE: usize = 64 * 1024;

    /// The driver, sealing with `key`; its default bind lets every Http wave reach the Core
    /// (which answers what a secret understands and 405 the rest).
    pub fn new(key: SecretKey) -> SecretDriver {
        let bind: Bind = "Bind(version=1.0.0) { Route<Http<*>> -> (()) => &; }"
            .parse()
            .unwrap_or_default();
        SecretDriver {
            key,
            bind: Arc::new(bind),
        }
    }

    /// `Http<Put>`: seals the body and stores it.
    async fn set(&self, ctx: &DriverCtx, point: &Point, body: &Substance) -> ReflectedCore {
        let value: &[u8] = match body {
            Substance::Bin(bytes) => bytes,
            Substance::Text(text) => text.as_bytes(),
            Substance::Empty => return empty(point),
            other => {
                return ReflectedCore::error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "the value of {point} is text or bytes, not {}",
                        other.kind()
                    ),
                );
            }
        };
        if value.is_empty() {
            return empty(point);
        }
        if value.len() > SecretDriver::MAX_VALUE {
            return ReflectedCore::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the value for {point} is {} bytes; a secret holds at most {} (keep files in a FileStore)",
                    value.len(),
                    SecretDriver::MAX_VALUE
                ),
            );
        }
        let sealed = match self.key.seal(point, value) {
            Ok(sealed) => sealed,
            Err(err) => return ReflectedCore::error(StatusCode::ERROR, err.to_string()),
        };
        let changes = PropertyChanges::new()
            .with(PropertyChange::set(UPDATED_PROPERTY, now_ms().to_string()));
        match ctx.registry.write_content(point, sealed, &changes).await {
            Ok(_) => ReflectedCore::ok(()),
            Err(err) => ReflectedCore::error(err.status(), err.to_string()),
        }
    }

    /// `Http<Get>` and `Cmd<Read>`: the value, opened.
    async fn reveal(&self, ctx: &DriverCtx, point: &Point, ping: &Ping) -> ReflectedCore {
        let sealed = match stored(ctx, point).await {
            Ok(Some(sealed)) => sealed,
            Ok(None) => return unset(point),
            Err(core) => return core,
        };
        match self.key.open(point, &sealed) {
            Ok(value) => {
                tracing::info!(
                    target: "starlane::secret",
                    secret = %point,
                    agent = %ping.agent,
                    "revealed"
                );
                ReflectedCore::ok(Substance::Bin(value)).with_header("cache-control", "no-store")
            }
            Err(err) => ReflectedCore::error(StatusCode::ERROR, err.to_string()),
        }
    }

    /// `Http<Delete>`: forgets the value.
    async fn clear(&self, ctx: &DriverCtx, point: &Point) -> ReflectedCore {
        match stored(ctx, point).await {
            Ok(Some(_)) => {}
            Ok(None) => return unset(point),
            Err(core) => return core,
        }
        let changes = PropertyChanges::new().with(PropertyChange::remove(UPDATED_PROPERTY));
        match ctx
            .registry
            .write_content(point, Vec::new(), &changes)
            .await
        {
            Ok(_) => ReflectedCore::ok(()),
            Err(err) => ReflectedCore::error(err.status(), err.to_string()),
        }
    }
}

/// The sealed value of `point`, `None` if it holds none (never set, or cleared: cleared is
/// stored as empty content, which no sealed value is).
async fn stored(ctx: &DriverCtx, point: &Point) -> Result<Option<Vec<u8>>, ReflectedCore> {
    match ctx.registry.content(point).await {
        Ok(Some(sealed)) if !sealed.is_empty() => Ok(Some(sealed)),
        Ok(_) => Ok(None),
        Err(err) => Err(ReflectedCore::error(err.status(), err.to_string())),
    }
}

fn unset(point: &Point) -> ReflectedCore {
    ReflectedCore::error(
        StatusCode::NOT_FOUND,
        format!("{point} holds no value: set one with `starlane secret set {point}`"),
    )
}

fn empty(point: &Point) -> ReflectedCore {
    ReflectedCore::bad_request(format!(
        "the value for {point} is empty: a secret holds a value of at least one byte \
         (Http<Delete> clears it)"
    ))
}

#[async_trait]
impl Driver for SecretDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Secret
    }

    fn bind(&self) -> Arc<Bind> {
        self.bind.clone()
    }

    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        let point = &record.point;
        match &ping.core.method {
            Method::Cmd(CmdMethod::Bounce) => ReflectedCore::ok(()),
            Method::Http(HttpMethod::Put) => self.set(ctx, point, &ping.core.body).await,
            Method::Http(HttpMethod::Get) | Method::Cmd(CmdMethod::Read) => {
                self.reveal(ctx, point, ping).await
            }
            Method::Http(HttpMethod::Head) => match stored(ctx, point).await {
                Ok(Some(_)) => ReflectedCore::ok(()),
                Ok(None) => ReflectedCore::status(StatusCode::NOT_FOUND),
                Err(core) => core,
            },
            Method::Http(HttpMethod::Delete) => self.clear(ctx, point).await,
            other => ReflectedCore::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{point} is a Secret: it answers Http<Put>, Http<Get>, Http<Head>, \
                     Http<Delete> and Cmd<Read>, not {other}"
                ),
            )
            .with_header("allow", "GET, HEAD, PUT, DELETE"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bind_parses() {
        let key = SecretKey::parse(&"ab".repeat(32), "test").unwrap_or_else(|e| panic!("{e}"));
        let driver = SecretDriver::new(key);
        assert_eq!(driver.bind.routes.len(), 1);
        let shown = format!("{driver:?}");
        assert!(
            shown.starts_with("SecretDriver { key: SecretKey { id: "),
            "{shown}"
        );
        assert!(!shown.contains("abab"), "{shown}");
    }
}
