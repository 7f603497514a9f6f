//! The driver of kinds that are plain records in the registry: containers (Root, Space, Base,
//! App, Repo, BundleSeries, Bundle, FileStore, Database) and accounts (UserBase, User).

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{BaseKind, Bind, CmdMethod, Method, Ping, ReflectedCore};

use super::{Driver, DriverCtx};
use crate::registry::ParticleRecord;

/// Answers `Cmd<Bounce>` with an empty 200; any other method is 404 (the particle does not
/// answer it). Its details (`Cmd<Read>`) are answered by the Field for every kind.
#[derive(Debug)]
pub struct BasicDriver {
    kind: BaseKind,
    bind: Arc<Bind>,
}

impl BasicDriver {
    /// The driver for `kind`.
    pub fn new(kind: BaseKind) -> BasicDriver {
        BasicDriver {
            kind,
            bind: Arc::new(Bind::default()),
        }
    }
}

#[async_trait]
impl Driver for BasicDriver {
    fn kind(&self) -> BaseKind {
        self.kind
    }

    fn bind(&self) -> Arc<Bind> {
        self.bind.clone()
    }

    async fn handle(
        &self,
        _ctx: &DriverCtx,
        record: &ParticleRecord,
        ping: &Ping,
    ) -> ReflectedCore {
        match &ping.core.method {
            Method::Cmd(CmdMethod::Bounce) => ReflectedCore::ok(()),
            other => ReflectedCore::error(
                cosmic_space::StatusCode::NOT_FOUND,
                format!("{} ({}) does not answer {other}", record.point, record.kind),
            ),
        }
    }
}
