//! The driver of artifacts: the immutable files of a published bundle (SPEC §11.4). Each is
//! readable with `Cmd<Read>` (its bytes) and, through a bind, `Http<Get>` (its bytes with a
//! content type).

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{
    BaseKind, Bind, CmdMethod, HttpMethod, Method, Ping, ReflectedCore, StatusCode, Substance,
};

use super::{Driver, DriverCtx};
use crate::registry::ParticleRecord;

/// Serves artifact bytes.
#[derive(Debug)]
pub struct ArtifactDriver {
    bind: Arc<Bind>,
}

impl ArtifactDriver {
    /// The artifact driver; its default bind lets `Http<Get>` reach the Core.
    pub fn new() -> ArtifactDriver {
        let bind: Bind = "Bind(version=1.0.0) { Route<Http<Get>> -> (()) => &; }"
            .parse()
            .unwrap_or_default();
        ArtifactDriver {
            bind: Arc::new(bind),
        }
    }
}

impl Default for ArtifactDriver {
    fn default() -> Self {
        ArtifactDriver::new()
    }
}

/// The content type of a file, from its extension.
pub fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" | "bind" | "mechtron" | "script" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[async_trait]
impl Driver for ArtifactDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Artifact
    }

    fn bind(&self) -> Arc<Bind> {
        self.bind.clone()
    }

    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        let reading = matches!(
            ping.core.method,
            Method::Cmd(CmdMethod::Read) | Method::Http(HttpMethod::Get | HttpMethod::Head)
        );
        if !reading {
            return ReflectedCore::error(
                StatusCode::NOT_FOUND,
                format!(
                    "artifact {} answers only reads, not {}",
                    record.point, ping.core.method
                ),
            );
        }
        let bytes = match ctx.registry.content(&record.point).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return ReflectedCore::error(
                    StatusCode::NOT_FOUND,
                    format!("{} is a directory; read one of its files", record.point),
                );
            }
            Err(err) => return ReflectedCore::error(err.status(), err.to_string()),
        };
        let name = record.point.to_string();
        let core = ReflectedCore::ok(Substance::Bin(bytes));
        match ping.core.method {
            Method::Http(_) => core.with_header("content-type", content_type(&name)),
            _ => core,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(
            content_type("a:/html/index.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type("a:/x/app.WASM"), "application/wasm");
        assert_eq!(content_type("a:/noext"), "application/octet-stream");
    }

    #[test]
    fn the_default_bind_parses() {
        assert_eq!(ArtifactDriver::new().bind.routes.len(), 1);
    }
}
