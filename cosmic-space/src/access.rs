//! The security data model (SPEC §9): agents, permissions, masks, privileges and grants, and
//! the pure [`access`] algorithm that decides what an agent may do on a point.
//!
//! ```
//! use cosmic_space::{GrantKind, Permissions};
//!
//! let mask: GrantKind = "+cSd-RwX".parse()?;
//! assert_eq!(mask.to_string(), "+cSd-RwX");
//! assert_eq!("CSD-RWX".parse::<Permissions>()?, Permissions::full());
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```
//!
//! # The access algorithm
//!
//! [`access`] reads the target's [`Lineage`] (the target and every ancestor from `ROOT` down,
//! each with its kind and owner), the grants, and the hierarchies of the agents involved:
//!
//! - `HyperUser` has full access everywhere.
//! - An agent that owns the target or any ancestor of it has full access ([`FullAccess::Owner`]).
//!   `Anonymous` is everybody without credentials, so owning something gives it nothing.
//! - A grant *applies* to the target when its `on` selector matches the target or an ancestor
//!   (a grant on an ancestor covers the whole subtree) and its `to` selector matches the agent.
//! - A grant *counts* only if its maker (`by`) held full access at a point where it applies:
//!   the maker owns that point or an ancestor, is `HyperUser`, or holds a counting `Super`
//!   grant there. Counting grants are found as a least fixed point, top-down, so a grant never
//!   makes itself count and cycles (A gives B `Super`, B gives A `Super`) count for nothing.
//! - A counting `Super` grant gives full access ([`FullAccess::Super`]).
//! - Otherwise the permissions are the OR of every counting `+` mask, then ANDed with every
//!   counting `&` mask at any level: `&` restricts what the `+` masks add. Owners, `Super`
//!   holders and `HyperUser` are not restricted by `&` masks. Privileges are collected into a
//!   set; full access implies every privilege.
//! - `Anonymous` has nothing unless a grant gives it something.
//!
//! ```
//! use cosmic_space::*;
//!
//! let hyper = Point::hyperuser();
//! let scott: Point = "localhost:users:scott".parse()?;
//! let scott_h = PointHierarchy::new(scott.clone(), vec![Kind::Space, Kind::UserBase(None), Kind::User])?;
//! let app = Lineage::root(hyper.clone())
//!     .push(PointSeg::Space("localhost".into()), Kind::Space, hyper.clone())?
//!     .push(PointSeg::Base("app".into()), Kind::App, hyper.clone())?;
//! let grant = Grant {
//!     id: 1,
//!     kind: "+csd-rwX".parse()?,
//!     on: "localhost:app".parse()?,
//!     to: "localhost:users:*<User>".parse()?,
//!     by: hyper,
//! };
//! let scott_agent = Agent::Point(scott);
//! let result = access(&scott_agent, &app, &[grant], &[scott_h]);
//! assert!(result.has(Permission::Execute));
//! let denied = result.check(Permission::Write, &scott_agent, app.target()).unwrap_err();
//! assert_eq!(
//!     denied.to_string(),
//!     "localhost:users:scott may not w localhost:app (missing permission 'w')"
//! );
//! # Ok::<(), cosmic_space::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kind::Kind;
use crate::point::{Point, PointError, PointSeg};
use crate::selector::{PointHierarchy, Selector};
use crate::syntax::{Cursor, ParseError, Span};

/// Who a wave acts for. Set by the hyperspace from how the wave entered; never trusted from a
/// guest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Agent {
    /// The superuser: may do everything.
    HyperUser,
    /// Nobody in particular: an unauthenticated request.
    Anonymous,
    /// A user or a particle acting as itself.
    Point(Point),
}

impl Agent {
    /// The agent's point (`hyperspace:users:hyperuser` for HyperUser, and so on).
    pub fn to_point(&self) -> Point {
        match self {
            Agent::HyperUser => Point::hyperuser(),
            Agent::Anonymous => Point::anonymous(),
            Agent::Point(point) => point.clone(),
        }
    }

    /// The agent a point stands for: the well-known points become HyperUser and Anonymous.
    pub fn from_point(point: Point) -> Agent {
        if point == Point::hyperuser() {
            Agent::HyperUser
        } else if point == Point::anonymous() {
            Agent::Anonymous
        } else {
            Agent::Point(point)
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_point())
    }
}

/// The six permission bits of SPEC §9, written `csd-rwx` (upper case grants, lower case denies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Permissions {
    /// **C**: create children.
    pub create: bool,
    /// **S**: select children.
    pub select: bool,
    /// **D**: delete children.
    pub delete: bool,
    /// **R**: read.
    pub read: bool,
    /// **W**: write (properties, publish, data).
    pub write: bool,
    /// **X**: execute (send it waves).
    pub execute: bool,
}

/// One of the six permissions, for messages ("missing permission 'x'").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// c
    Create,
    /// s
    Select,
    /// d
    Delete,
    /// r
    Read,
    /// w
    Write,
    /// x
    Execute,
}

impl Permission {
    /// The permission's letter.
    pub fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Select => 's',
            Permission::Delete => 'd',
            Permission::Read => 'r',
            Permission::Write => 'w',
            Permission::Execute => 'x',
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

impl Permissions {
    /// `CSD-RWX`: everything.
    pub fn full() -> Permissions {
        Permissions {
            create: true,
            select: true,
            delete: true,
            read: true,
            write: true,
            execute: true,
        }
    }

    /// `csd-rwx`: nothing.
    pub fn none() -> Permissions {
        Permissions::default()
    }

    /// Whether `permission` is granted.
    pub fn has(&self, permission: Permission) -> bool {
        match permission {
            Permission::Create => self.create,
            Permission::Select => self.select,
            Permission::Delete => self.delete,
            Permission::Read => self.read,
            Permission::Write => self.write,
            Permission::Execute => self.execute,
        }
    }

    /// Bitwise OR: what either grants.
    pub fn or(self, other: Permissions) -> Permissions {
        Permissions {
            create: self.create || other.create,
            select: self.select || other.select,
            delete: self.delete || other.delete,
            read: self.read || other.read,
            write: self.write || other.write,
            execute: self.execute || other.execute,
        }
    }

    /// Bitwise AND: what both grant.
    pub fn and(self, other: Permissions) -> Permissions {
        Permissions {
            create: self.create && other.create,
            select: self.select && other.select,
            delete: self.delete && other.delete,
            read: self.read && other.read,
            write: self.write && other.write,
            execute: self.execute && other.execute,
        }
    }

    fn bits(&self) -> [bool; 6] {
        [
            self.create,
            self.select,
            self.delete,
            self.read,
            self.write,
            self.execute,
        ]
    }

    /// Parses the six letters `csd-rwx` (any case per letter) at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Permissions, ParseError> {
        let start = c.pos();
        let mut bits = [false; 6];
        for (i, letter) in "csdrwx".chars().enumerate() {
            if i == 3 {
                c.expect("-", "'-' between the child permissions (csd) and rwx")?;
            }
            match c.peek() {
                Some(ch) if ch == letter => bits[i] = false,
                Some(ch) if ch == letter.to_ascii_uppercase() => bits[i] = true,
                _ => {
                    return Err(c.error_span(
                        Span::new(start, c.pos() + 1),
                        format!(
                            "expected '{letter}' or '{}' (permissions are written csd-rwx)",
                            letter.to_ascii_uppercase()
                        ),
                    ));
                }
            }
            c.bump();
        }
        Ok(Permissions {
            create: bits[0],
            select: bits[1],
            delete: bits[2],
            read: bits[3],
            write: bits[4],
            execute: bits[5],
        })
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (bit, letter)) in self.bits().into_iter().zip("csdrwx".chars()).enumerate() {
            if i == 3 {
                f.write_str("-")?;
            }
            let letter = if bit {
                letter.to_ascii_uppercase()
            } else {
                letter
            };
            write!(f, "{letter}")?;
        }
        Ok(())
    }
}

impl FromStr for Permissions {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("permissions", s, Permissions::parse)
    }
}

/// How a mask combines with the permissions it meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MaskKind {
    /// `+`: adds what it grants (OR).
    Or,
    /// `&`: keeps only what it grants (AND); restricts what other grants add.
    And,
}

/// `+cSd-RwX` or `&csd-rwX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PermissionsMask {
    /// OR or AND.
    pub kind: MaskKind,
    /// The permissions.
    pub permissions: Permissions,
}

impl PermissionsMask {
    /// Applies the mask to `permissions`.
    pub fn apply(&self, permissions: Permissions) -> Permissions {
        match self.kind {
            MaskKind::Or => permissions.or(self.permissions),
            MaskKind::And => permissions.and(self.permissions),
        }
    }

    /// Parses a mask at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<PermissionsMask, ParseError> {
        let kind = if c.eat_char('+') {
            MaskKind::Or
        } else if c.eat_char('&') {
            MaskKind::And
        } else {
            return Err(c.error("expected '+' or '&' to begin a permissions mask"));
        };
        Ok(PermissionsMask {
            kind,
            permissions: Permissions::parse(c)?,
        })
    }
}

impl fmt::Display for PermissionsMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.kind {
            MaskKind::Or => '+',
            MaskKind::And => '&',
        };
        write!(f, "{sign}{}", self.permissions)
    }
}

impl FromStr for PermissionsMask {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("permissions mask", s, PermissionsMask::parse)
    }
}

/// A named privilege such as `property:email:read`: skewer-case words separated by `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Privilege(String);

impl Privilege {
    /// The privilege's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a privilege at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Privilege, ParseError> {
        let start = c.pos();
        loop {
            let at = c.pos();
            let word =
                c.take_while(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
            if !crate::syntax::is_skewer(word) {
                return Err(c.error_at(
                    at,
                    "expected a privilege: skewer-case words separated by ':' (e.g. property:email:read)",
                ));
            }
            if !(c.peek() == Some(':') && c.peek2().is_some_and(|ch| ch.is_ascii_lowercase())) {
                break;
            }
            c.bump();
        }
        Ok(Privilege(c.input()[start..c.pos()].to_string()))
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Privilege {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("privilege", s, Privilege::parse)
    }
}

/// What a grant gives: everything, a named privilege, or a permissions mask.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantKind {
    /// `Super`: full access, as if the agent owned the particles.
    Super,
    /// A named privilege.
    Privilege(Privilege),
    /// A permissions mask.
    Mask(PermissionsMask),
}

impl GrantKind {
    /// Parses a grant kind at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<GrantKind, ParseError> {
        if c.starts_with("Super") {
            c.eat("Super");
            Ok(GrantKind::Super)
        } else if matches!(c.peek(), Some('+' | '&')) {
            Ok(GrantKind::Mask(PermissionsMask::parse(c)?))
        } else if c.peek().is_some_and(|ch| ch.is_ascii_lowercase()) {
            Ok(GrantKind::Privilege(Privilege::parse(c)?))
        } else {
            Err(c.error("expected what to grant: Super, a privilege or a mask such as +cSd-RwX"))
        }
    }
}

impl fmt::Display for GrantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantKind::Super => f.write_str("Super"),
            GrantKind::Privilege(p) => p.fmt(f),
            GrantKind::Mask(m) => m.fmt(f),
        }
    }
}

impl FromStr for GrantKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("grant", s, GrantKind::parse)
    }
}

/// A grant as recorded: what, on which particles, to which agents, made by whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// The registry's id for the grant (what `revoke` takes).
    pub id: u64,
    /// What it gives.
    pub kind: GrantKind,
    /// The particles it applies to.
    pub on: Selector,
    /// The agents it applies to.
    pub to: Selector,
    /// The agent that made it; a grant counts only if this agent had full access where it
    /// applies.
    pub by: Point,
}

/// Why an agent has full access to a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FullAccess {
    /// The agent is `HyperUser`.
    HyperUser,
    /// The agent owns the point or one of its ancestors.
    Owner,
    /// A counting `Super` grant covers the point for the agent.
    Super,
}

/// What an agent may do on one point: the result of [`access`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    full: Option<FullAccess>,
    permissions: Permissions,
    privileges: BTreeSet<Privilege>,
}

impl Access {
    /// Nothing at all (what `Anonymous` has by default).
    pub fn none() -> Access {
        Access {
            full: None,
            permissions: Permissions::none(),
            privileges: BTreeSet::new(),
        }
    }

    /// Full access, for the given reason.
    pub fn full(why: FullAccess) -> Access {
        Access {
            full: Some(why),
            permissions: Permissions::full(),
            privileges: BTreeSet::new(),
        }
    }

    /// Access through grants only: these permissions and privileges.
    pub fn granted(permissions: Permissions, privileges: BTreeSet<Privilege>) -> Access {
        Access {
            full: None,
            permissions,
            privileges,
        }
    }

    /// Whether the agent has full access (owner, `Super` or `HyperUser`): every permission and
    /// privilege, and the right to make grants here.
    pub fn is_full(&self) -> bool {
        self.full.is_some()
    }

    /// Why the access is full, if it is.
    pub fn full_reason(&self) -> Option<FullAccess> {
        self.full
    }

    /// The permissions held (`CSD-RWX` for full access).
    pub fn permissions(&self) -> Permissions {
        if self.is_full() {
            Permissions::full()
        } else {
            self.permissions
        }
    }

    /// The named privileges granted explicitly (full access implies all of them anyway).
    pub fn privileges(&self) -> &BTreeSet<Privilege> {
        &self.privileges
    }

    /// Whether `permission` is held.
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions().has(permission)
    }

    /// Whether `privilege` is held (always, with full access).
    pub fn has_privilege(&self, privilege: &Privilege) -> bool {
        self.is_full() || self.privileges.contains(privilege)
    }

    /// `Ok` if `permission` is held, else an [`AccessDenied`] naming `agent`, `point` and it.
    pub fn check(
        &self,
        permission: Permission,
        agent: &Agent,
        point: &Point,
    ) -> Result<(), AccessDenied> {
        self.require(
            self.has(permission),
            Requirement::Permission(permission),
            agent,
            point,
        )
    }

    /// `Ok` if `privilege` is held, else an [`AccessDenied`].
    pub fn check_privilege(
        &self,
        privilege: &Privilege,
        agent: &Agent,
        point: &Point,
    ) -> Result<(), AccessDenied> {
        self.require(
            self.has_privilege(privilege),
            Requirement::Privilege(privilege.clone()),
            agent,
            point,
        )
    }

    /// `Ok` if access is full (what making a grant needs), else an [`AccessDenied`].
    pub fn check_full(&self, agent: &Agent, point: &Point) -> Result<(), AccessDenied> {
        self.require(self.is_full(), Requirement::Full, agent, point)
    }

    fn require(
        &self,
        held: bool,
        missing: Requirement,
        agent: &Agent,
        point: &Point,
    ) -> Result<(), AccessDenied> {
        if held {
            Ok(())
        } else {
            Err(AccessDenied {
                agent: agent.clone(),
                point: point.clone(),
                missing,
            })
        }
    }
}

/// What an operation needed and the agent lacked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Requirement {
    /// One of the six permissions.
    Permission(Permission),
    /// A named privilege.
    Privilege(Privilege),
    /// Full access (owner or `Super`), e.g. to make a grant.
    Full,
}

impl Requirement {
    /// The verb of the refusal message: the permission's letter, the privilege, `administer`.
    fn verb(&self) -> String {
        match self {
            Requirement::Permission(p) => p.letter().to_string(),
            Requirement::Privilege(p) => p.to_string(),
            Requirement::Full => "administer".to_string(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Permission(p) => write!(f, "permission '{p}'"),
            Requirement::Privilege(p) => write!(f, "privilege '{p}'"),
            Requirement::Full => f.write_str("full access (owner or Super)"),
        }
    }
}

/// An agent was refused: e.g. `localhost:users:scott may not x localhost:app (missing
/// permission 'x')`. Becomes a 403 when enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{agent} may not {verb} {point} (missing {missing})", verb = missing.verb())]
pub struct AccessDenied {
    /// Who was refused.
    pub agent: Agent,
    /// On which point.
    pub point: Point,
    /// What was missing.
    pub missing: Requirement,
}

/// Why a [`Lineage`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LineageError {
    /// There must be one owner per point from `ROOT` to the target.
    #[error("'{point}' has {expected} point(s) from ROOT down but {got} owner(s) were given")]
    OwnerCount {
        /// The target.
        point: String,
        /// How many owners were needed (segments + 1).
        expected: usize,
        /// How many were given.
        got: usize,
    },
}

/// What [`access`] needs to know about the target: the target and every ancestor from `ROOT`
/// down, with the kind (in the [`PointHierarchy`]) and the owner of each.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "LineageParts")]
pub struct Lineage {
    hierarchy: PointHierarchy,
    /// `owners[d]` owns the ancestor with `d` segments (`owners[0]` owns `ROOT`).
    owners: Vec<Point>,
}

/// The unchecked form [`Lineage`] deserializes through.
#[derive(Deserialize)]
struct LineageParts {
    hierarchy: PointHierarchy,
    owners: Vec<Point>,
}

impl TryFrom<LineageParts> for Lineage {
    type Error = LineageError;
    fn try_from(parts: LineageParts) -> Result<Self, LineageError> {
        Lineage::new(parts.hierarchy, parts.owners)
    }
}

impl Lineage {
    /// The target's hierarchy and the owner of `ROOT` and of each point down to the target;
    /// fails unless there is exactly one owner more than there are segments.
    pub fn new(hierarchy: PointHierarchy, owners: Vec<Point>) -> Result<Lineage, LineageError> {
        let expected = hierarchy.point().segments().len() + 1;
        if owners.len() != expected {
            return Err(LineageError::OwnerCount {
                point: hierarchy.point().to_string(),
                expected,
                got: owners.len(),
            });
        }
        Ok(Lineage { hierarchy, owners })
    }

    /// The lineage of `ROOT` alone, owned by `owner`.
    pub fn root(owner: Point) -> Lineage {
        Lineage {
            hierarchy: PointHierarchy::root(),
            owners: vec![owner],
        }
    }

    /// One generation down: `segment`, of kind `kind`, owned by `owner`.
    pub fn push(&self, segment: PointSeg, kind: Kind, owner: Point) -> Result<Lineage, PointError> {
        let hierarchy = self.hierarchy.push(segment, kind)?;
        let mut owners = self.owners.clone();
        owners.push(owner);
        Ok(Lineage { hierarchy, owners })
    }

    /// The target point.
    pub fn target(&self) -> &Point {
        self.hierarchy.point()
    }

    /// The target with the kinds of its segments.
    pub fn hierarchy(&self) -> &PointHierarchy {
        &self.hierarchy
    }

    /// The owners from `ROOT` down to the target.
    pub fn owners(&self) -> &[Point] {
        &self.owners
    }

    /// The number of segments of the target (`0` for `ROOT`).
    pub fn depth(&self) -> usize {
        self.owners.len().saturating_sub(1)
    }

    /// The shallowest depth at which `agent` owns a point of the lineage (never for
    /// `Anonymous`, whose ownership means nothing).
    fn first_owned(&self, agent: &Agent) -> Option<usize> {
        if *agent == Agent::Anonymous {
            return None;
        }
        let point = agent.to_point();
        self.owners.iter().position(|owner| *owner == point)
    }
}

/// Computes what `agent` may do on the target of `lineage` (SPEC §9; rules in the module
/// documentation).
///
/// `agents` holds the hierarchies (points with kinds) of the agent and of the grants' makers,
/// so `to` selectors that name kinds (`localhost:users:*<User>`) can match them; an agent not
/// listed is matched by its point alone, and any `to` hop naming a kind then fails for it.
/// `grants` may hold grants that do not apply here: they are ignored.
pub fn access(
    agent: &Agent,
    lineage: &Lineage,
    grants: &[Grant],
    agents: &[PointHierarchy],
) -> Access {
    if *agent == Agent::HyperUser {
        return Access::full(FullAccess::HyperUser);
    }
    if lineage.first_owned(agent).is_some() {
        return Access::full(FullAccess::Owner);
    }
    let counting = Counting::settle(lineage, grants, agents);
    let mut or = Permissions::none();
    let mut and = Permissions::full();
    let mut privileges = BTreeSet::new();
    for grant in counting.grants() {
        if !to_matches(&grant.to, agent, agents) {
            continue;
        }
        match &grant.kind {
            GrantKind::Super => return Access::full(FullAccess::Super),
            GrantKind::Privilege(p) => {
                privileges.insert(p.clone());
            }
            GrantKind::Mask(mask) => match mask.kind {
                MaskKind::Or => or = or.or(mask.permissions),
                MaskKind::And => and = and.and(mask.permissions),
            },
        }
    }
    Access::granted(or.and(and), privileges)
}

/// Whether a grant's `to` selector matches `agent`, with its kinds if `agents` knows them.
fn to_matches(to: &Selector, agent: &Agent, agents: &[PointHierarchy]) -> bool {
    let point = agent.to_point();
    match agents.iter().find(|h| *h.point() == point) {
        Some(hierarchy) => to.matches(hierarchy),
        None => to.matches_point(&point),
    }
}

/// The grants that count for a lineage: the least fixed point of "a grant counts from the
/// shallowest depth where it applies and its maker holds full access".
struct Counting<'g> {
    grants: Vec<&'g Grant>,
    /// `counts_at[i]`: the shallowest depth at which `grants[i]` counts, if it does.
    counts_at: Vec<Option<usize>>,
}

impl<'g> Counting<'g> {
    fn settle(lineage: &Lineage, all: &'g [Grant], agents: &[PointHierarchy]) -> Counting<'g> {
        let depth = lineage.depth();
        // Only grants whose `on` matches the target or an ancestor matter.
        let mut grants = Vec::new();
        let mut on_depths = Vec::new();
        for grant in all {
            let depths: Vec<bool> = (0..=depth)
                .map(|d| grant.on.matches_depth(lineage.hierarchy(), d))
                .collect();
            if depths.contains(&true) {
                grants.push(grant);
                on_depths.push(depths);
            }
        }
        // The distinct makers, each with where it first owns something.
        let mut makers: Vec<Agent> = Vec::new();
        let maker_of: Vec<usize> = grants
            .iter()
            .map(|grant| {
                let maker = Agent::from_point(grant.by.clone());
                match makers.iter().position(|m| *m == maker) {
                    Some(i) => i,
                    None => {
                        makers.push(maker);
                        makers.len() - 1
                    }
                }
            })
            .collect();
        let owned_from: Vec<Option<usize>> =
            makers.iter().map(|m| lineage.first_owned(m)).collect();
        // For each `Super` grant, which makers its `to` selector names (matched once).
        let supers: Vec<(usize, Vec<bool>)> = grants
            .iter()
            .enumerate()
            .filter(|(_, g)| g.kind == GrantKind::Super)
            .map(|(i, g)| {
                let to: Vec<bool> = makers
                    .iter()
                    .map(|m| to_matches(&g.to, m, agents))
                    .collect();
                (i, to)
            })
            .collect();

        let mut counts_at: Vec<Option<usize>> = vec![None; grants.len()];
        let is_full = |counts_at: &[Option<usize>], maker: usize, d: usize| {
            makers.get(maker) == Some(&Agent::HyperUser)
                || owned_from
                    .get(maker)
                    .copied()
                    .flatten()
                    .is_some_and(|owned| owned <= d)
                || supers.iter().any(|(s, to)| {
                    counts_at
                        .get(*s)
                        .copied()
                        .flatten()
                        .is_some_and(|at| at <= d)
                        && to.get(maker).copied().unwrap_or(false)
                })
        };
        // Top-down; at each depth admit grants until nothing changes. A grant's own entry is
        // `None` while it is being judged, so it can never vouch for itself.
        for d in 0..=depth {
            loop {
                let mut changed = false;
                for i in 0..grants.len() {
                    let applies_here = on_depths
                        .get(i)
                        .and_then(|depths| depths.get(d))
                        .copied()
                        .unwrap_or(false);
                    let maker = maker_of.get(i).copied().unwrap_or(usize::MAX);
                    if counts_at.get(i) == Some(&None)
                        && applies_here
                        && is_full(&counts_at, maker, d)
                    {
                        if let Some(slot) = counts_at.get_mut(i) {
                            *slot = Some(d);
                        }
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        Counting { grants, counts_at }
    }

    /// The grants that count for the target.
    fn grants(&self) -> impl Iterator<Item = &'g Grant> + '_ {
        self.grants
            .iter()
            .zip(&self.counts_at)
            .filter(|(_, at)| at.is_some())
            .map(|(grant, _)| *grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_grants_round_trip() {
        for s in [
            "Super",
            "+cSd-RwX",
            "&csd-rwX",
            "property:email:read",
            "+CSD-RWX",
        ] {
            assert_eq!(s.parse::<GrantKind>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn permissions_parse_case_by_case() {
        let p: Permissions = "cSd-RwX".parse().unwrap();
        assert!(!p.create && p.select && !p.delete && p.read && !p.write && p.execute);
        assert_eq!(Permissions::none().to_string(), "csd-rwx");
        for bad in ["csdrwx", "csd-rw", "xsd-rwx", "+csd-rwx", "csd-rwxx"] {
            assert!(bad.parse::<Permissions>().is_err(), "{bad}");
        }
    }

    #[test]
    fn masks_apply() {
        let or: PermissionsMask = "+cSd-RwX".parse().unwrap();
        let and: PermissionsMask = "&csd-rwX".parse().unwrap();
        let p = or.apply(Permissions::none());
        assert_eq!(p.to_string(), "cSd-RwX");
        assert_eq!(and.apply(p).to_string(), "csd-rwX");
    }

    #[test]
    fn agents_know_their_points() {
        assert_eq!(Agent::from_point(Point::hyperuser()), Agent::HyperUser);
        assert_eq!(Agent::Anonymous.to_point(), Point::anonymous());
    }
}
