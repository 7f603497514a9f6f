//! The driver of `Database<KeyValue>` particles (SPEC §17.1): key-value stores whose entries the
//! registry keeps beside them ([`crate::registry::KeyValues`]). The wave's meaning and the rules
//! of writes are [`cosmic_space::kv`]'s; this driver reads the clock, remembers increments by
//! wave id, and hands the request to the store.
//!
//! `Database<Relational<…>>` particles are records only: this cosmos does not run relational
//! databases, and such a particle answers what a plain record does.

use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::kv::{self, KvRequest};
use cosmic_space::{
    BaseKind, Bind, CmdMethod, DatabaseSubKind, Kind, KvOp, Method, Ping, ReflectedCore, StatusCode,
};

use super::{Driver, DriverCtx, now_ms};
use crate::registry::{KeyValues, Once, ParticleRecord};

/// Serves key-value stores.
#[derive(Debug)]
pub struct DatabaseDriver {
    bind: Arc<Bind>,
}

impl DatabaseDriver {
    /// The driver; its default bind lets every Http wave reach the Core (where the store
    /// answers what it understands and 404/405 the rest).
    pub fn new() -> DatabaseDriver {
        let bind: Bind = "Bind(version=1.0.0) { Route<Http<*>> -> (()) => &; }"
            .parse()
            .unwrap_or_default();
        DatabaseDriver {
            bind: Arc::new(bind),
        }
    }
}

impl Default for DatabaseDriver {
    fn default() -> Self {
        DatabaseDriver::new()
    }
}

#[async_trait]
impl Driver for DatabaseDriver {
    fn kind(&self) -> BaseKind {
        BaseKind::Database
    }

    fn bind(&self) -> Arc<Bind> {
        self.bind.clone()
    }

    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        if let Method::Cmd(CmdMethod::Bounce) = ping.core.method {
            return ReflectedCore::ok(());
        }
        if record.kind != Kind::Database(DatabaseSubKind::KeyValue) {
            return ReflectedCore::error(
                StatusCode::NOT_FOUND,
                format!(
                    "{} ({}) is a record only: this cosmos keeps key-value stores, not relational databases",
                    record.point, record.kind
                ),
            );
        }
        let Some(store) = ctx.registry.key_values() else {
            return ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                format!(
                    "the registry of this machine keeps no data for {}",
                    record.point
                ),
            );
        };
        let request = match KvRequest::parse(&ping.core) {
            Ok(request) => request,
            Err(err) => return err.into(),
        };
        serve(store.as_ref(), &record.point, request, ping).await
    }
}

/// Answers `request` from `store`.
async fn serve(
    store: &dyn KeyValues,
    point: &cosmic_space::Point,
    request: KvRequest,
    ping: &Ping,
) -> ReflectedCore {
    let now = now_ms();
    match request {
        KvRequest::Op(KvOp::Get { key }) => match store.get(point, &key, now).await {
            Ok(Some(entry)) => kv::answer(cosmic_space::KvOutcome::Found(entry), &key),
            Ok(None) => kv::answer(cosmic_space::KvOutcome::Missing, &key),
            Err(err) => err.into(),
        },
        KvRequest::Op(op) => {
            let key = op.key().to_string();
            match write(store, point, vec![op], now, ping).await {
                Ok(mut outcomes) => match outcomes.pop() {
                    Some(outcome) => kv::answer(outcome, &key),
                    None => ReflectedCore::error(StatusCode::ERROR, "the store answered nothing"),
                },
                Err(core) => core,
            }
        }
        KvRequest::List(query) => match store.keys(point, &query, now).await {
            Ok(page) => kv::answer_page(&page),
            Err(err) => err.into(),
        },
        KvRequest::Batch(ops) => match write(store, point, ops, now, ping).await {
            Ok(outcomes) => kv::answer_batch(&outcomes),
            Err(core) => core,
        },
    }
}

/// Writes `ops`, remembering the outcome by the wave's agent and id when an increment is among
/// them (so that the same wave, sent again, counts once).
async fn write(
    store: &dyn KeyValues,
    point: &cosmic_space::Point,
    ops: Vec<KvOp>,
    now: u64,
    ping: &Ping,
) -> Result<Vec<cosmic_space::KvOutcome>, ReflectedCore> {
    let counts = ops.iter().any(|op| matches!(op, KvOp::Increment { .. }));
    let once = (counts && !ping.id.is_nil()).then(|| Once {
        agent: ping.agent.to_point().to_string(),
        wave: ping.id,
    });
    match store.write(point, ops, now, once).await {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(refused)) => Err(refused.into()),
        Err(err) => Err(err.into()),
    }
}
