//! Security enforcement (SPEC §9): what an agent may do on a point, computed from the registry
//! with the pure algorithm of `cosmic_space::access`.
//!
//! The Field asks this before any driver sees a wave (`x` on the target, then what the wave's
//! [`Effect`] needs), and the executor before any command changes or reveals anything (`c`,
//! `s`, `d`, full access, and the same [`Effect`]s for reading and changing one particle), so
//! no route reads or changes what another refuses. Details are answered through
//! [`readable`], which leaves out the properties the agent may not read.

use std::collections::{BTreeSet, HashMap, HashSet};

use parking_lot::RwLock;

use cosmic_space::{
    Access, AccessDenied, Agent, Details, Effect, FullAccess, Permission, Point, PointHierarchy,
    access,
};

use crate::registry::{Change, Forget, PointCache, Registry, RegistryError};

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
///
/// `HyperUser` is answered without reading the registry: full access, without the
/// privileges only a grant gives (`secret:reveal`), so an [`Effect`] that
/// [needs a grant](Effect::needs_grant) is refused to it here. The Field asks its
/// [`AccessCache`] for those, which computes HyperUser's grants like anyone's.
pub async fn access_on(
    registry: &dyn Registry,
    agent: &Agent,
    point: &Point,
) -> Result<Access, RegistryError> {
    if *agent == Agent::HyperUser {
        return Ok(Access::full(FullAccess::HyperUser));
    }
    Ok(decide(registry, agent, point).await?.0)
}

/// What `agent` may do on `point`, and the points whose hierarchies went into the decision
/// (the agent and every grant maker: selectors with kinds, as in `to localhost:users:*<User>`,
/// need them; points that are not registered are matched by their point alone). For
/// `HyperUser` too: full access, and the privileges granted to it that full access does not
/// imply.
async fn decide(
    registry: &dyn Registry,
    agent: &Agent,
    point: &Point,
) -> Result<(Access, BTreeSet<Point>), RegistryError> {
    let lineage = registry.lineage(point).await?;
    let grants = registry.grants_on(point).await?;
    let mut consulted: BTreeSet<Point> = grants.iter().map(|g| g.by.clone()).collect();
    consulted.insert(agent.to_point());
    let mut agents: Vec<PointHierarchy> = Vec::with_capacity(consulted.len());
    for point in &consulted {
        if let Ok(hierarchy) = registry.hierarchy(point).await {
            agents.push(hierarchy);
        }
    }
    Ok((access(agent, &lineage, &grants, &agents), consulted))
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

/// The most targets an [`AccessCache`] keeps decisions for before it starts again from empty.
const CACHE_TARGETS: usize = 16_384;

/// The most agents an [`AccessCache`] keeps decisions for on one target.
const CACHE_AGENTS: usize = 256;

/// Access decisions of one star, kept until a [`Change`] can affect them.
///
/// Computing access reads the target's lineage, the grants that may apply and the hierarchies
/// of the agent and the grant makers; the Field asks for every directed wave, and most waves
/// repeat the same (agent, target) pair. A decision depends on the owners and kinds along the
/// target's line, the grants, and the hierarchies it consulted, so it is forgotten when grants
/// or owners change, when a subtree is deleted, or when the record of a consulted point
/// changes (a user registered after a decision matched it by point alone).
#[derive(Debug)]
pub struct AccessCache {
    /// Per target, per agent.
    decisions: PointCache<HashMap<Agent, Access>>,
    /// Every point whose hierarchy a cached decision consulted.
    consulted: RwLock<HashSet<Point>>,
}

impl AccessCache {
    /// An empty cache; it must listen on the registry's [`ChangeFeed`](crate::registry::ChangeFeed).
    pub fn new() -> AccessCache {
        AccessCache {
            decisions: PointCache::new(CACHE_TARGETS),
            consulted: RwLock::new(HashSet::new()),
        }
    }

    /// What `agent` may do on `point`, from the cache unless a change may have affected it.
    pub async fn access_on(
        &self,
        registry: &dyn Registry,
        agent: &Agent,
        point: &Point,
    ) -> Result<Access, RegistryError> {
        if let Some(access) = self
            .decisions
            .with(point, |agents| agents.get(agent).cloned())
        {
            return Ok(access);
        }
        let epoch = self.decisions.epoch();
        let (access, consulted) = decide(registry, agent, point).await?;
        {
            let mut known = self.consulted.write();
            known.extend(consulted);
        }
        self.decisions.update_if(epoch, point.clone(), |slot| {
            let agents = slot.get_or_insert_with(HashMap::new);
            if agents.len() >= CACHE_AGENTS {
                agents.clear();
            }
            agents.insert(agent.clone(), access.clone());
        });
        Ok(access)
    }
}

impl Default for AccessCache {
    fn default() -> AccessCache {
        AccessCache::new()
    }
}

impl Forget for AccessCache {
    fn forget(&self, change: &Change) {
        match change {
            Change::Record(point) => {
                if self.consulted.read().contains(point) {
                    self.consulted.write().clear();
                    self.decisions.forget_all();
                } else {
                    self.decisions.forget_key(point);
                }
            }
            Change::Subtree(_) | Change::Owners | Change::Grants | Change::Anything => {
                self.consulted.write().clear();
                self.decisions.forget_all();
            }
            Change::Tokens | Change::Subscriptions => {}
        }
    }
}
