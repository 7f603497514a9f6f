//! The driver of `Channel` particles (SPEC §18): a wave sent to a channel is published to its
//! subscribers by this machine's [`Hub`].
//!
//! The Field has already checked the sender: `w` to publish, `r` for `Http<Get>`, which is how
//! the web subscribes. The channel answers that `Http<Get>` with `200` and the
//! [`STREAM`] header naming itself; the gateway then streams the channel to the request (as
//! Server-Sent Events, or over a WebSocket) through the hub, as the request's agent.

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::{
    BaseKind, Bind, CmdMethod, HttpMethod, Method, Ping, ReflectedCore, StatusCode, Substance,
};

use super::{Driver, DriverCtx};
use crate::channel::Hub;
use crate::registry::ParticleRecord;

/// The header of a channel's answer to `Http<Get>` that names the channel to stream.
pub const STREAM: &str = "x-starlane-stream";

/// Serves channels, publishing through its machine's hub.
#[derive(Debug)]
pub struct ChannelDriver {
    hub: Arc<Hub>,
    bind: Arc<Bind>,
}

impl ChannelDriver {
    /// The driver of the machine whose channels `hub` serves; its default bind lets every
    /// `Ext` and `Http` wave reach the Core (and `Cmd` waves reach it by default).
    pub fn new(hub: Arc<Hub>) -> ChannelDriver {
        let bind: Bind =
            "Bind(version=1.0.0) { Route<Ext<*>> -> (()) => &; Route<Http<*>> -> (()) => &; }"
                .parse()
                .unwrap_or_default();
        ChannelDriver {
            hub,
            bind: Arc::new(bind),
        }
    }
}

#[async_trait]
impl Driver for ChannelDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Channel
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
            Method::Cmd(CmdMethod::Bounce) | Method::Http(HttpMethod::Options) => {
                ReflectedCore::ok(())
            }
            Method::Http(HttpMethod::Get | HttpMethod::Head) => {
                let mut core = ReflectedCore::ok(Substance::Empty);
                core.headers.insert(STREAM, record.point.to_string());
                core
            }
            // Lifecycle events come from the hyperspace only: nobody may forge one.
            Method::Cmd(CmdMethod::Event) => ReflectedCore::error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} does not publish {}: lifecycle events come from the hyperspace",
                    record.point, ping.core.method
                ),
            ),
            _ => {
                self.hub.publish(&record.point, ping);
                ReflectedCore::ok(())
            }
        }
    }
}
