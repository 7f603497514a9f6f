//! The driver of file stores and their files (SPEC §17.2): `FileStore` particles and the
//! `File<Dir>` / `File<File>` particles of their file system.
//!
//! A file is a particle whose content the registry keeps (with its `content-type`, `etag` and
//! `size` as properties, written together by [`Registry::write_content`]). `Http<Put>` to a
//! point in a store's file system that does not exist yet reaches the nearest directory (or
//! the store) — the courier routes it there, and access is decided there — which registers the
//! missing directories and the file in one transaction. Files written this way are not
//! placed on stars of their own: they live with their store.
//!
//! Writes to one file are taken one at a time on its machine, so `if-match` / `if-none-match`
//! hold between a check and its write.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use cosmic_space::{
    BaseKind, Bind, CmdMethod, Condition, CreateStrategy, DirEntry, FileSubKind, HttpMethod, Json,
    Kind, Listing, Method, Ping, Point, PointSeg, PropertyChange, PropertyChanges, RangeAsk,
    ReflectedCore, Status, StatusCode, Substance, kv,
};
use parking_lot::Mutex;

use super::{Driver, DriverCtx, content_type};
use crate::registry::{Entry, ParticleRecord, Registration, Registry, RegistryError};

/// The properties a file carries beside its content.
const CONTENT_TYPE: &str = "content-type";
const ETAG: &str = "etag";
const SIZE: &str = "size";

/// Serves a file store, or the files and directories in one.
#[derive(Debug)]
pub struct FileDriver {
    kind: BaseKind,
    bind: Arc<Bind>,
    /// One lock per file being written, held from a condition's check to its write.
    writing: Mutex<HashMap<Point, Weak<tokio::sync::Mutex<()>>>>,
}

impl FileDriver {
    /// The driver of `FileStore` particles.
    pub fn stores() -> FileDriver {
        FileDriver::new(BaseKind::FileStore)
    }

    /// The driver of `File` particles.
    pub fn files() -> FileDriver {
        FileDriver::new(BaseKind::File)
    }

    fn new(kind: BaseKind) -> FileDriver {
        let bind: Bind = "Bind(version=1.0.0) { Route<Http<*>> -> (()) => &; }"
            .parse()
            .unwrap_or_default();
        FileDriver {
            kind,
            bind: Arc::new(bind),
            writing: Mutex::new(HashMap::new()),
        }
    }

    /// The write lock of `point` (made on first use, dropped with its last holder).
    fn lock_of(&self, point: &Point) -> Arc<tokio::sync::Mutex<()>> {
        let mut writing = self.writing.lock();
        if let Some(lock) = writing.get(point).and_then(Weak::upgrade) {
            return lock;
        }
        writing.retain(|_, lock| lock.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        writing.insert(point.clone(), Arc::downgrade(&lock));
        lock
    }
}

#[async_trait]
impl Driver for FileDriver {
    fn kind(&self) -> BaseKind {
        self.kind
    }

    fn bind(&self) -> Arc<Bind> {
        self.bind.clone()
    }

    async fn handle(&self, ctx: &DriverCtx, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
        let target = &ping.to.point;
        let method = &ping.core.method;
        if let Method::Cmd(CmdMethod::Bounce) = method {
            return ReflectedCore::ok(());
        }
        let registry = ctx.registry.as_ref();
        if *target != record.point {
            // A point that does not exist yet, below this directory or store.
            return match method {
                Method::Http(HttpMethod::Put) => {
                    let lock = self.lock_of(target);
                    let _writing = lock.lock().await;
                    create(registry, record, ping).await
                }
                _ => ReflectedCore::error(StatusCode::NOT_FOUND, format!("no file {target}")),
            };
        }
        let reading = matches!(
            method,
            Method::Cmd(CmdMethod::Read) | Method::Http(HttpMethod::Get | HttpMethod::Head)
        );
        match (&record.kind, reading, method) {
            (Kind::File(FileSubKind::File), true, _) => read(registry, record, ping).await,
            (Kind::File(FileSubKind::File), false, Method::Http(HttpMethod::Put)) => {
                let lock = self.lock_of(target);
                let _writing = lock.lock().await;
                replace(registry, record, ping).await
            }
            (Kind::File(FileSubKind::File), false, Method::Http(HttpMethod::Delete)) => {
                let lock = self.lock_of(target);
                let _writing = lock.lock().await;
                remove(registry, record, ping).await
            }
            (Kind::File(FileSubKind::Dir) | Kind::FileStore, true, _) => {
                list(registry, &record.point).await
            }
            (Kind::File(FileSubKind::Dir), false, Method::Http(HttpMethod::Delete)) => {
                match registry.delete(target, false).await {
                    Ok(_) => ReflectedCore::ok(()),
                    Err(RegistryError::HasChildren { .. }) => ReflectedCore::error(
                        StatusCode::CONFLICT,
                        format!("the directory {target} is not empty"),
                    ),
                    Err(err) => err.into(),
                }
            }
            (kind, _, method) => ReflectedCore::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{target} ({kind}) does not answer {method}: files answer Get, Put and \
                     Delete, directories Get and Delete, a store Get (and Put to paths in it)"
                ),
            ),
        }
    }
}

/// The bytes a `PUT` stores, and the content type its body implies.
/// A refusal, boxed: it travels only on the path that answers with it.
type Refused = Box<ReflectedCore>;

fn body_bytes(body: &Substance) -> Result<(Vec<u8>, Option<&'static str>), Refused> {
    match body {
        Substance::Empty => Ok((Vec::new(), None)),
        Substance::Bin(bytes) => Ok((bytes.clone(), None)),
        Substance::Text(text) => Ok((text.clone().into_bytes(), Some("text/plain; charset=utf-8"))),
        Substance::Json(json) => Ok((json.as_str().as_bytes().to_vec(), Some("application/json"))),
        other => Err(Box::new(ReflectedCore::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a file holds bytes, text or Json, not {}", other.kind()),
        ))),
    }
}

/// The properties of a file holding `bytes` as the `PUT` in `ping` describes them.
fn file_properties(
    point: &Point,
    ping: &Ping,
    bytes: &[u8],
    implied: Option<&str>,
) -> (PropertyChanges, String) {
    let content_type = ping
        .core
        .headers
        .get("content-type")
        .map(str::to_string)
        .or(implied.map(str::to_string))
        .unwrap_or_else(|| content_type(&point.to_string()).to_string());
    let etag = kv::etag(bytes, Some(&content_type));
    let mut changes = PropertyChanges::new();
    changes.push(PropertyChange::set(CONTENT_TYPE, content_type));
    changes.push(PropertyChange::set(ETAG, etag.clone()));
    changes.push(PropertyChange::set(SIZE, bytes.len().to_string()));
    (changes, etag)
}

fn condition(ping: &Ping) -> Result<Condition, Refused> {
    Condition::from_headers(&ping.core.headers).map_err(|err| Box::new(err.into()))
}

fn precondition_failed(point: &Point, condition: &Condition) -> ReflectedCore {
    ReflectedCore::error(
        StatusCode::PRECONDITION_FAILED,
        format!("{point} does not meet {condition}"),
    )
}

/// `PUT` of a file that does not exist yet: its missing directories and itself, in one go.
async fn create(registry: &dyn Registry, holder: &ParticleRecord, ping: &Ping) -> ReflectedCore {
    let target = &ping.to.point;
    if !matches!(target.last_segment(), Some(PointSeg::File(_))) {
        return ReflectedCore::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{target} is a directory: PUT a file, and its directories are made for it"),
        );
    }
    let condition = match condition(ping) {
        Ok(condition) => condition,
        Err(core) => return *core,
    };
    if !condition.holds_for(None) {
        return precondition_failed(target, &condition);
    }
    let (bytes, implied) = match body_bytes(&ping.core.body) {
        Ok(body) => body,
        Err(core) => return *core,
    };
    let (properties, etag) = file_properties(target, ping, &bytes, implied);
    let owner = ping.agent.to_point();
    let registration = |point: Point, kind: Kind, properties, strategy| Registration {
        point,
        kind,
        owner: owner.clone(),
        properties,
        strategy,
        status: Status::Ready,
    };
    let mut entries: Vec<Entry> = target
        .ancestors()
        .filter(|ancestor| ancestor.is_within(&holder.point) && *ancestor != holder.point)
        .map(|dir| Entry {
            registration: registration(
                dir,
                Kind::File(FileSubKind::Dir),
                PropertyChanges::new(),
                CreateStrategy::Ensure,
            ),
            content: None,
        })
        .collect();
    entries.push(Entry {
        registration: registration(
            target.clone(),
            Kind::File(FileSubKind::File),
            properties,
            CreateStrategy::Commit,
        ),
        content: Some(bytes),
    });
    match registry.register_all(entries).await {
        Ok(_) => ReflectedCore::ok(()).with_header(ETAG, etag),
        Err(RegistryError::AlreadyExists(_)) => ReflectedCore::error(
            StatusCode::CONFLICT,
            format!("{target} was created meanwhile; send the PUT again"),
        ),
        Err(RegistryError::KindMismatch {
            point, existing, ..
        }) => ReflectedCore::error(
            StatusCode::CONFLICT,
            format!("{point} is a {existing}, so {target} cannot be made under it"),
        ),
        Err(err) => err.into(),
    }
}

/// `PUT` of an existing file: new content, if the condition holds.
async fn replace(registry: &dyn Registry, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
    let point = &record.point;
    let condition = match condition(ping) {
        Ok(condition) => condition,
        Err(core) => return *core,
    };
    if !condition.holds_for(record.properties.value(ETAG)) {
        return precondition_failed(point, &condition);
    }
    let (bytes, implied) = match body_bytes(&ping.core.body) {
        Ok(body) => body,
        Err(core) => return *core,
    };
    let (properties, etag) = file_properties(point, ping, &bytes, implied);
    match registry.write_content(point, bytes, &properties).await {
        Ok(_) => ReflectedCore::ok(()).with_header(ETAG, etag),
        Err(err) => err.into(),
    }
}

/// `DELETE` of a file, if the condition holds.
async fn remove(registry: &dyn Registry, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
    let condition = match condition(ping) {
        Ok(condition) => condition,
        Err(core) => return *core,
    };
    if !condition.holds_for(record.properties.value(ETAG)) {
        return precondition_failed(&record.point, &condition);
    }
    match registry.delete(&record.point, false).await {
        Ok(_) => ReflectedCore::ok(()),
        Err(err) => err.into(),
    }
}

/// A file's bytes (or the range asked for), with its content type and etag.
async fn read(registry: &dyn Registry, record: &ParticleRecord, ping: &Ping) -> ReflectedCore {
    let etag = record
        .properties
        .value(ETAG)
        .unwrap_or_default()
        .to_string();
    let headers = &ping.core.headers;
    if !etag.is_empty()
        && headers.get("if-none-match").is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
    {
        return ReflectedCore::status(StatusCode::NOT_MODIFIED).with_header(ETAG, etag);
    }
    let bytes = match registry.content(&record.point).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => Vec::new(),
        Err(err) => return err.into(),
    };
    let content_type = record.properties.value(CONTENT_TYPE).map_or_else(
        || content_type(&record.point.to_string()).to_string(),
        str::to_string,
    );
    let len = bytes.len() as u64;
    let core = match RangeAsk::of(headers.get("range"), len) {
        RangeAsk::Whole => ReflectedCore::ok(Substance::Bin(bytes)),
        RangeAsk::Part { start, end } => {
            let part = bytes
                .get(start as usize..=end as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            ReflectedCore::status(StatusCode::PARTIAL_CONTENT)
                .with_body(Substance::Bin(part))
                .with_header("content-range", format!("bytes {start}-{end}/{len}"))
        }
        RangeAsk::Unsatisfiable => {
            return ReflectedCore::error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "{} has {len} bytes; the range asked lies outside them",
                    record.point
                ),
            )
            .with_header("content-range", format!("bytes */{len}"));
        }
    };
    let core = core
        .with_header("accept-ranges", "bytes")
        .with_header(CONTENT_TYPE, content_type);
    if etag.is_empty() {
        core
    } else {
        core.with_header(ETAG, etag)
    }
}

/// A directory's (or store's) listing: its files and directories, in name order.
async fn list(registry: &dyn Registry, point: &Point) -> ReflectedCore {
    // A store lists its root directory.
    let dir = match point.is_filesystem() {
        true => point.clone(),
        false => match point.push(PointSeg::FsRoot) {
            Ok(root) => root,
            Err(err) => return ReflectedCore::error(StatusCode::ERROR, err.to_string()),
        },
    };
    let children = match registry.children(&dir).await {
        Ok(children) => children,
        Err(RegistryError::NotFound(_)) => Vec::new(),
        Err(err) => return err.into(),
    };
    let mut entries = Vec::with_capacity(children.len());
    for child in children {
        let name = child
            .point
            .last_segment()
            .map(PointSeg::as_text)
            .unwrap_or_default();
        let entry = match child.kind {
            Kind::File(FileSubKind::File) => {
                let properties = match registry.record(&child.point).await {
                    Ok(record) => record.properties,
                    Err(err) => return err.into(),
                };
                DirEntry {
                    name,
                    kind: "File".into(),
                    size: properties.value(SIZE).and_then(|size| size.parse().ok()),
                    content_type: properties.value(CONTENT_TYPE).map(str::to_string),
                }
            }
            _ => DirEntry {
                name,
                kind: "Dir".into(),
                size: None,
                content_type: None,
            },
        };
        entries.push(entry);
    }
    match Json::from_value(&Listing { entries }) {
        Ok(json) => ReflectedCore::ok(Substance::Json(json)),
        Err(err) => ReflectedCore::error(StatusCode::ERROR, err.to_string()),
    }
}
