//! Security enforcement (SPEC §9): what an agent may do on a point, computed from the registry
//! with the pure algorithm of `cosmic_space::access`.
//!
//! The Field asks this before any driver sees a wave (`x` on the target, then what the wave's
//! [`Effect`] needs), and the executor before any command changes or reveals anything (`c`,
//! `s`, `d`, full access, and the same [`Effect`]s for reading and changing one particle), so
//! no route reads or changes what another refuses. Details are answered through
//! [`readable`], which leaves out the properties the agent may not read.

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;

use cosmic_space::{
    Access, AccessDenied, Agent, Details, Effect, FullAccess, Permission, Point, PointHierarchy,
    access,
};

use crate::registry::{Registry, RegistryError};

/// Why access could not be decided or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// The agent lacks what the operation needs.
    #[error(transparent)]
    Denied(#[from] AccessDenied),
    /// The registry could not answer (the point does not exist, storage failed).
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// What `agent` may do on `point` (which must be registered).
pub async fn access_on(
    registry: &dyn Registry,
    agent: &Agent,
    point: &Point,
) -> Result<Access, RegistryError> {
    if *agent == Agent::HyperUser {
        return Ok(Access::full(FullAccess::HyperUser));
    }
    let lineage = registry.lineage(point).await?;
    let grants = registry.grants().await?;
    // The hierarchies of the agent and of every grant maker: selectors with kinds (`to
    // localhost:users:*<User>`) need them. Points that are not registered are matched by their
    // point alone.
    let mut points: BTreeSet<Point> = grants.iter().map(|g| g.by.clone()).collect();
    points.insert(agent.to_point());
    let mut agents: Vec<PointHierarchy> = Vec::with_capacity(points.len());
    for point in points {
        if let Ok(hierarchy) = registry.hierarchy(&point).await {
            agents.push(hierarchy);
        }
    }
    Ok(access(agent, &lineage, &grants, &agents))
}

/// `Ok` if `agent` holds `permission` on `point`.
pub async fn require(
    registry: &dyn Registry,
    agent: &Agent,
    point: &Point,
    permission: Permission,
) -> Result<(), SecurityError> {
    let access = access_on(registry, agent, point).await?;
    access.check(permission, agent, point)?;
    Ok(())
}

/// What `agent` may do on `point`, if it may have the `effect` (see [`Effect`]) there.
pub async fn require_effect(
    registry: &dyn Registry,
    agent: &Agent,
    point: &Point,
    effect: Effect,
) -> Result<Access, SecurityError> {
    let access = access_on(registry, agent, point).await?;
    access.check_effect(effect, agent, point)?;
    Ok(access)
}

/// `details` with only the properties `access` may read (SPEC §9: a property guarded by a
/// `property:NAME:read` privilege stays hidden without it).
pub fn readable(mut details: Details, access: &Access) -> Details {
    if !access.is_full() {
        details.properties = details
            .properties
            .iter()
            .filter(|(name, _)| access.may_read_property(name))
            .map(|(name, property)| (name, property.clone()))
            .collect();
    }
    details
}

/// `Ok` if `agent` has full access (owner, Super or HyperUser) on `point`.
pub async fn require_full(
    registry: &dyn Registry,
    agent: &Agent,
    point: &Point,
) -> Result<(), SecurityError> {
    let access = access_on(registry, agent, point).await?;
    access.check_full(agent, point)?;
    Ok(())
}

/// The most decisions an [`AccessCache`] keeps before it starts again from empty.
const CACHE_LIMIT: usize = 65_536;

/// Access decisions of one star, remembered while the registry does not change.
///
/// Computing access reads the target's lineage and every grant; the Field asks for every
/// directed wave, and most waves repeat the same (agent, target) pair. Entries carry the
/// registry's generation and are used only while it is unchanged; a registry that cannot tell
/// its generation gets no caching at all.
#[derive(Debug, Default)]
pub struct AccessCache {
    decisions: RwLock<HashMap<(Agent, Point), (u64, Access)>>,
}

impl AccessCache {
    /// An empty cache.
    pub fn new() -> AccessCache {
        AccessCache::default()
    }

    /// What `agent` may do on `point`, from the cache when the registry has not changed since.
    pub async fn access_on(
        &self,
        registry: &dyn Registry,
        agent: &Agent,
        point: &Point,
    ) -> Result<Access, RegistryError> {
        let Some(generation) = registry.generation() else {
            return access_on(registry, agent, point).await;
        };
        let key = (agent.clone(), point.clone());
        if let Some((seen, access)) = self.decisions.read().get(&key)
            && *seen == generation
        {
            return Ok(access.clone());
        }
        let access = access_on(registry, agent, point).await?;
        let mut decisions = self.decisions.write();
        if decisions.len() >= CACHE_LIMIT {
            decisions.clear();
        }
        decisions.insert(key, (generation, access.clone()));
        Ok(access)
    }
}
