//! The command executor, `GLOBAL::executor` (SPEC §10): runs the commands of the operator
//! language for the agent of the wave that carries them.
//!
//! Every command is checked before it changes or reveals anything (SPEC §9): create needs `c`
//! on the parent, select `s`, delete `d` on the parent, grant, revoke and chown full access,
//! subscribe `r` on something the selector matches (when it matches anything now);
//! get, read, set and access ask the same [`Effect`] decision as the waves that read or change
//! a particle (`security::require_effect`), so no route reveals what another refuses. A
//! refused or failed command changes nothing.
//!
//! The executor gets the narrowest handle that does its job: the star's [`Lifecycle`] (the
//! registry, and placing and starting particles by wave), not the star.

use std::collections::BTreeMap;
use std::sync::Arc;

use cosmic_space::{
    Agent, CmdMethod, Command, Create, CreateStrategy, Effect, Env, GrantKind, Kind, KindError,
    Method, ParseError, Permission, Ping, Point, PointError, PointTemplate, PointVar, Privilege,
    PropertyChanges, ReflectedCore, Selector, Status, StatusCode, Stub, Substance, Surface,
    Transfer,
};
use serde::Serialize;

use crate::channel;
use crate::lifecycle::{Lifecycle, StartError};
use crate::registry::{Registration, RegistryError};
use crate::security::{self, SecurityError};

mod publish;

/// Why a command failed: the status it answers with and a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status (400 bad input, 403 denied, 404 missing, 409 conflict, 500 failed …).
    pub status: StatusCode,
    /// What went wrong, and where.
    pub message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<RegistryError> for Failure {
    fn from(err: RegistryError) -> Failure {
        Failure::new(err.status(), err.to_string())
    }
}

impl From<StartError> for Failure {
    fn from(err: StartError) -> Failure {
        Failure::new(err.status, err.message)
    }
}

impl From<SecurityError> for Failure {
    fn from(err: SecurityError) -> Failure {
        match err {
            SecurityError::Denied(denied) => {
                Failure::new(StatusCode::FORBIDDEN, denied.to_string())
            }
            SecurityError::Registry(err) => err.into(),
        }
    }
}

impl From<ParseError> for Failure {
    fn from(err: ParseError) -> Failure {
        Failure::bad(err.to_string())
    }
}

impl From<PointError> for Failure {
    fn from(err: PointError) -> Failure {
        Failure::bad(err.to_string())
    }
}

impl From<KindError> for Failure {
    fn from(err: KindError) -> Failure {
        Failure::bad(err.to_string())
    }
}

/// Runs the command a Ping to `GLOBAL::executor` carries and answers it; particles it creates
/// or deletes are started or forgotten through `life`.
pub async fn execute(life: &Arc<Lifecycle>, ping: &Ping) -> ReflectedCore {
    match run(life, ping).await {
        Ok(body) => ReflectedCore::ok(body),
        Err(failure) => ReflectedCore::error(failure.status, failure.message),
    }
}

async fn run(life: &Arc<Lifecycle>, ping: &Ping) -> Result<Substance, Failure> {
    let (command, transfers) = request(ping)?;
    let command = command.resolve(&Env::new())?;
    let agent = &ping.agent;
    match command {
        Command::Create(create) => self::create(life, agent, create).await,
        Command::Publish { file, point } => {
            let point = absolute(&point)?;
            let transfer = transfers.iter().find(|t| t.name == file).ok_or_else(|| {
                Failure::bad(format!(
                    "publish names the file '{file}' but no such file was sent with the command"
                ))
            })?;
            publish::publish(life, agent, &point, &transfer.bytes).await
        }
        Command::Select { selector } => select(life, agent, &selector).await,
        Command::Set { point, properties } => {
            set(life, agent, &absolute(&point)?, &properties).await
        }
        Command::Get { point, names } => get(life, agent, &absolute(&point)?, &names).await,
        Command::Read { point } => read(life, agent, &absolute(&point)?).await,
        Command::Delete { point, force } => delete(life, agent, &absolute(&point)?, force).await,
        Command::Grant { kind, on, to } => grant(life, agent, kind, on, to).await,
        Command::Revoke { id } => revoke(life, agent, id).await,
        Command::Access { point } => access(life, agent, &absolute(&point)?).await,
        Command::Chown { on, owner } => chown(life, agent, &on, &absolute(&owner)?).await,
        Command::Subscribe { selector } => subscribe(life, agent, selector).await,
        Command::Unsubscribe { selector } => unsubscribe(life, agent, &selector).await,
    }
}

/// The particle that subscribes: the agent itself, which must be a registered particle (it is
/// where deliveries go).
async fn subscriber(life: &Lifecycle, agent: &Agent, verb: &str) -> Result<Point, Failure> {
    let Agent::Point(point) = agent else {
        return Err(Failure::bad(format!(
            "{verb} makes the agent a subscriber, and {agent} is not a particle that can \
             receive: `starlane watch SELECTOR` shows what a selector publishes"
        )));
    };
    life.registry().record(point).await?;
    Ok(point.clone())
}

/// `subscribe SELECTOR` (SPEC §18), refused as [`channel::may_subscribe`] says; each later
/// delivery is checked again as the agent.
async fn subscribe(
    life: &Lifecycle,
    agent: &Agent,
    selector: Selector,
) -> Result<Substance, Failure> {
    let point = subscriber(life, agent, "subscribe").await?;
    channel::subscribe(life.registry().as_ref(), &point, selector)
        .await
        .map_err(|err| {
            let core = ReflectedCore::from(err);
            Failure::new(core.status, core.error_message().unwrap_or_default())
        })?;
    Ok(Substance::Empty)
}

/// `unsubscribe SELECTOR`: 404 when the agent had no such subscription.
async fn unsubscribe(
    life: &Lifecycle,
    agent: &Agent,
    selector: &Selector,
) -> Result<Substance, Failure> {
    let point = subscriber(life, agent, "unsubscribe").await?;
    if life
        .registry()
        .unsubscribe(&Surface::from(point.clone()), selector)
        .await?
    {
        Ok(Substance::Empty)
    } else {
        Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("{point} has no subscription to {selector}"),
        ))
    }
}

/// The command a Ping carries, and the files sent with it.
fn request(ping: &Ping) -> Result<(Command, Vec<Transfer>), Failure> {
    match (&ping.core.method, &ping.core.body) {
        (Method::Cmd(CmdMethod::RawCommand), Substance::RawCommand(raw)) => {
            Ok((raw.line.parse::<Command>()?, raw.transfers.clone()))
        }
        (Method::Cmd(CmdMethod::Command), Substance::Command(command)) => {
            Ok(((**command).clone(), Vec::new()))
        }
        (method, body) => Err(Failure::bad(format!(
            "{} runs commands: send Cmd<RawCommand> with a RawCommand body (got {method} with {})",
            Point::global_executor(),
            body.kind()
        ))),
    }
}

/// A resolved point-var as a point (commands here run without a working point).
fn absolute(point: &PointVar) -> Result<Point, Failure> {
    point
        .to_point()
        .ok_or_else(|| Failure::bad(format!("{point} is relative or has variables")))
}

async fn create(life: &Lifecycle, agent: &Agent, create: Create) -> Result<Substance, Failure> {
    let registry = life.registry();
    if create.kind.is_internal() {
        return Err(Failure::bad(format!(
            "{} particles are made by the hyperspace itself, not by commands",
            create.kind
        )));
    }
    let parent = match &create.template {
        PointTemplate::Exact(point) => absolute(point)?
            .parent()
            .ok_or_else(|| Failure::bad("ROOT exists from the start and cannot be created"))?,
        PointTemplate::Sequence { parent, .. } => absolute(parent)?,
    };
    let parent_record = registry.record(&parent).await.map_err(|err| match err {
        RegistryError::NotFound(_) => Failure::new(
            StatusCode::NOT_FOUND,
            format!("cannot create under {parent}: it does not exist"),
        ),
        other => other.into(),
    })?;
    security::require(registry.as_ref(), agent, &parent, Permission::Create).await?;
    create.kind.may_live_under(&parent_record.kind)?;
    let point = match &create.template {
        PointTemplate::Exact(point) => absolute(point)?,
        PointTemplate::Sequence { .. } => {
            let n = registry.next_sequence(&parent).await?;
            let segment = create.template.segment(n).unwrap_or_default();
            parent.push_base(&segment)?
        }
    };
    let fits = point
        .last_segment()
        .is_some_and(|segment| create.kind.accepts_segment(segment));
    if !fits {
        return Err(Failure::bad(format!(
            "{point} is not a point a {} can have (a Bundle's last segment is a version, files \
             and artifacts live under ':/', a Space is a domain, everything else a skewer-case \
             name)",
            create.kind
        )));
    }
    let record = registry
        .register(Registration {
            point: point.clone(),
            kind: create.kind.clone(),
            owner: agent.to_point(),
            properties: create.properties.clone(),
            strategy: create.strategy,
            status: Status::Pending,
        })
        .await?;
    let existed = create.strategy != CreateStrategy::Commit
        && record.location.is_some()
        && record.status == Status::Ready;
    if !existed {
        life.bring_to_life(&record, create.strategy == CreateStrategy::Commit)
            .await?;
    }
    Ok(Substance::Point(point))
}

async fn select(
    life: &Lifecycle,
    agent: &Agent,
    selector: &Selector,
) -> Result<Substance, Failure> {
    let registry = life.registry();
    if *agent != Agent::HyperUser
        && let Some(prefix) = selector.literal_prefix()
        && registry.record(&prefix).await.is_ok()
    {
        security::require(registry.as_ref(), agent, &prefix, Permission::Select).await?;
    }
    let found = registry.select(selector).await?;
    if *agent == Agent::HyperUser {
        return Ok(stubs(found));
    }
    // An agent sees a particle when it may select the children of its parent.
    let mut allowed: BTreeMap<Point, bool> = BTreeMap::new();
    let mut visible = Vec::new();
    let mut hidden: Option<Point> = None;
    for stub in found {
        let parent = stub.point.parent().unwrap_or_else(Point::root);
        let may = match allowed.get(&parent) {
            Some(may) => *may,
            None => {
                let may = security::access_on(registry.as_ref(), agent, &parent)
                    .await
                    .map(|a| a.has(Permission::Select))
                    .unwrap_or(false);
                allowed.insert(parent.clone(), may);
                may
            }
        };
        if may {
            visible.push(stub);
        } else if hidden.is_none() {
            hidden = Some(parent);
        }
    }
    if let (true, Some(parent)) = (visible.is_empty(), hidden) {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            format!("{agent} may not select {selector} (missing permission 's' on {parent})"),
        ));
    }
    Ok(stubs(visible))
}

fn stubs(stubs: Vec<Stub>) -> Substance {
    Substance::List(stubs.into_iter().map(Substance::from).collect())
}

async fn set(
    life: &Lifecycle,
    agent: &Agent,
    point: &Point,
    changes: &PropertyChanges,
) -> Result<Substance, Failure> {
    let registry = life.registry();
    registry.record(point).await?;
    let access = security::access_on(registry.as_ref(), agent, point).await?;
    // `w`, or the privilege `property:NAME:write` for every property the command changes.
    let privileged = !changes.is_empty()
        && changes
            .iter()
            .all(|change| access.has_privilege(&Privilege::property(change.name(), "write")));
    if !privileged {
        access
            .check_effect(Effect::Write, agent, point)
            .map_err(SecurityError::Denied)?;
    }
    registry.set_properties(point, changes).await?;
    let details = registry.record(point).await?.details();
    Ok(Substance::from(security::readable(details, &access)))
}

/// `get`: the details (with the properties the agent may read, which needs `r`), or the named
/// properties (each readable: see `Access::may_read_property`) — the same decision as a
/// `Cmd<Read>` wave's.
async fn get(
    life: &Lifecycle,
    agent: &Agent,
    point: &Point,
    names: &[String],
) -> Result<Substance, Failure> {
    let registry = life.registry();
    let record = registry.record(point).await?;
    if names.is_empty() {
        let access =
            security::require_effect(registry.as_ref(), agent, point, Effect::ReadDetails).await?;
        return Ok(Substance::from(security::readable(
            record.details(),
            &access,
        )));
    }
    let access = security::access_on(registry.as_ref(), agent, point).await?;
    access
        .check_properties(names.iter().map(String::as_str), agent, point)
        .map_err(SecurityError::Denied)?;
    let mut values = BTreeMap::new();
    for name in names {
        let value = record.properties.value(name).ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                format!("{point} has no property '{name}'"),
            )
        })?;
        values.insert(name.clone(), Substance::Text(value.to_string()));
    }
    Ok(Substance::Map(values))
}

/// `read`: the content, with `r` — the decision of a `Cmd<Read>` or `Http<Get>` wave. A
/// Secret's content is its sealed value, which only its driver opens (for a holder of
/// `secret:reveal`): `read` refuses it rather than hand out the sealed bytes.
async fn read(life: &Lifecycle, agent: &Agent, point: &Point) -> Result<Substance, Failure> {
    let registry = life.registry();
    let record = registry.record(point).await?;
    security::require_effect(registry.as_ref(), agent, point, Effect::ReadContent).await?;
    if record.kind == Kind::Secret {
        return Err(Failure::bad(format!(
            "{point} is a Secret: `read` never shows its value; a holder of the privilege \
             secret:reveal on it reveals it with Http<Get> (starlane send {point} 'Http<Get>')"
        )));
    }
    match registry.content(point).await? {
        Some(bytes) => Ok(Substance::Bin(bytes)),
        None => Err(Failure::bad(format!(
            "{point} is a {} and holds no content to read",
            record.kind
        ))),
    }
}

async fn delete(
    life: &Lifecycle,
    agent: &Agent,
    point: &Point,
    force: bool,
) -> Result<Substance, Failure> {
    let registry = life.registry();
    let record = registry.record(point).await?;
    let parent = point
        .parent()
        .ok_or_else(|| Failure::new(StatusCode::FORBIDDEN, "ROOT cannot be deleted"))?;
    let hyperspace = Point::hyperuser()
        .ancestors()
        .nth(1)
        .unwrap_or_else(Point::root);
    if point.is_within(&hyperspace) {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            format!("{point} belongs to the hyperspace and cannot be deleted"),
        ));
    }
    security::require(registry.as_ref(), agent, &parent, Permission::Delete).await?;
    let children = registry.children(point).await?;
    if !children.is_empty() && !force {
        return Err(RegistryError::HasChildren {
            point: point.clone(),
            children: children.len(),
        }
        .into());
    }
    // Let the drivers of the subtree forget their particles before the records go.
    let mut doomed = vec![record];
    let mut frontier = children;
    while let Some(stub) = frontier.pop() {
        frontier.extend(registry.children(&stub.point).await?);
        doomed.push(registry.record(&stub.point).await?);
    }
    for record in &doomed {
        life.forget(record).await;
    }
    let deleted = registry.delete(point, force).await?;
    Ok(Substance::List(
        deleted.into_iter().map(Substance::Point).collect(),
    ))
}

/// The point a selector's grants are anchored at, which the granting agent must fully own:
/// the selector's fixed beginning (only HyperUser may grant on a selector without one).
async fn anchor(life: &Lifecycle, agent: &Agent, on: &Selector) -> Result<(), Failure> {
    if *agent == Agent::HyperUser {
        return Ok(());
    }
    let Some(anchor) = on.literal_prefix() else {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            format!(
                "{agent} may not grant on {on}: only HyperUser may grant on a selector that does not begin with a fixed point"
            ),
        ));
    };
    let registry = life.registry();
    registry.record(&anchor).await?;
    security::require_full(registry.as_ref(), agent, &anchor).await?;
    Ok(())
}

async fn grant(
    life: &Lifecycle,
    agent: &Agent,
    kind: GrantKind,
    on: Selector,
    to: Selector,
) -> Result<Substance, Failure> {
    anchor(life, agent, &on).await?;
    let grant = life
        .registry()
        .grant(kind, on, to, agent.to_point())
        .await?;
    Ok(Substance::Int(i64::try_from(grant.id).unwrap_or(i64::MAX)))
}

async fn revoke(life: &Lifecycle, agent: &Agent, id: u64) -> Result<Substance, Failure> {
    let registry = life.registry();
    let grants = registry.grants().await?;
    let grant = grants
        .iter()
        .find(|g| g.id == id)
        .ok_or(RegistryError::NoSuchGrant(id))?;
    if grant.by != agent.to_point() {
        anchor(life, agent, &grant.on).await?;
    }
    registry.revoke(id).await?;
    Ok(Substance::Empty)
}

/// One grant as `access` lists it.
#[derive(Debug, Serialize)]
struct GrantRow {
    id: u64,
    grant: String,
    on: String,
    to: String,
    by: String,
}

/// What `access` answers: the particle's owner and the grants that apply to it.
#[derive(Debug, Serialize)]
struct AccessReport {
    point: String,
    owner: String,
    grants: Vec<GrantRow>,
}

async fn access(life: &Lifecycle, agent: &Agent, point: &Point) -> Result<Substance, Failure> {
    let registry = life.registry();
    let record = registry.record(point).await?;
    security::require_effect(registry.as_ref(), agent, point, Effect::ReadDetails).await?;
    let hierarchy = registry.hierarchy(point).await?;
    let levels: Vec<_> = (0..=point.segments().len())
        .filter_map(|depth| hierarchy.ancestor(depth))
        .collect();
    let grants = registry
        .grants()
        .await?
        .into_iter()
        .filter(|g| levels.iter().any(|h| g.on.matches(h)))
        .map(|g| GrantRow {
            id: g.id,
            grant: g.kind.to_string(),
            on: g.on.to_string(),
            to: g.to.to_string(),
            by: g.by.to_string(),
        })
        .collect();
    let report = AccessReport {
        point: point.to_string(),
        owner: record.owner.to_string(),
        grants,
    };
    Substance::json(&report).map_err(|e| Failure::new(StatusCode::ERROR, e.to_string()))
}

async fn chown(
    life: &Lifecycle,
    agent: &Agent,
    on: &Selector,
    owner: &Point,
) -> Result<Substance, Failure> {
    let registry = life.registry();
    if *agent != Agent::HyperUser {
        for stub in registry.select(on).await? {
            security::require_full(registry.as_ref(), agent, &stub.point).await?;
        }
    }
    let count = registry.chown(on, owner).await?;
    Ok(Substance::Int(i64::try_from(count).unwrap_or(i64::MAX)))
}
