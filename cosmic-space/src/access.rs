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
//!   set; full access implies every privilege but `secret:reveal`
//!   ([`Privilege::implied_by_full_access`]), which only a counting grant naming it gives — to
//!   owners, `Super` holders and `HyperUser` too (SPEC §17.3).
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

use crate::kind::{BaseKind, Kind};
use crate::method::{CmdMethod, HttpMethod, Method};
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
    /// The name of [`Privilege::secret_reveal`].
    pub const SECRET_REVEAL: &'static str = "secret:reveal";

    /// `property:NAME:ACTION`, the privilege of one action on one property.
    pub fn property(name: &str, action: &str) -> Privilege {
        Privilege(format!("property:{name}:{action}"))
    }

    /// `secret:reveal`: reading a `Secret`'s value (SPEC §17.3). Only a grant naming it gives
    /// it; see [`Privilege::implied_by_full_access`].
    pub fn secret_reveal() -> Privilege {
        Privilege(Privilege::SECRET_REVEAL.to_string())
    }

    /// Whether full access (owning, `Super`, `HyperUser`) implies this privilege: true of every
    /// privilege but `secret:reveal`, which only an explicit grant gives, so that every agent
    /// who can read a secret is named in a grant (`access` lists it) and owning a subtree, or
    /// administering the cosmos, is not enough.
    pub fn implied_by_full_access(&self) -> bool {
        self.0 != Privilege::SECRET_REVEAL
    }

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
            let at = c.pos();
            c.eat("Super");
            if c.peek().is_some_and(|ch| ch.is_ascii_alphanumeric()) {
                let rest = c.take_while(|ch| ch.is_ascii_alphanumeric());
                return Err(c.error_span(
                    Span::new(at, c.pos()),
                    format!("unknown grant 'Super{rest}': expected Super, a privilege or a mask"),
                ));
            }
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
    /// The privileges that counting grants here name, whoever they are for: a property named
    /// by a `property:NAME:read` among them is guarded (see [`Access::may_read_property`]).
    guarded: BTreeSet<Privilege>,
}

impl Access {
    /// Nothing at all (what `Anonymous` has by default).
    pub fn none() -> Access {
        Access {
            full: None,
            permissions: Permissions::none(),
            privileges: BTreeSet::new(),
            guarded: BTreeSet::new(),
        }
    }

    /// Full access, for the given reason.
    pub fn full(why: FullAccess) -> Access {
        Access {
            full: Some(why),
            permissions: Permissions::full(),
            privileges: BTreeSet::new(),
            guarded: BTreeSet::new(),
        }
    }

    /// Access through grants only: these permissions and privileges.
    pub fn granted(permissions: Permissions, privileges: BTreeSet<Privilege>) -> Access {
        Access {
            full: None,
            permissions,
            privileges,
            guarded: BTreeSet::new(),
        }
    }

    /// The same access, on a point where counting grants name `guarded` privileges (for
    /// anyone): properties those privileges name are read only with them.
    pub fn guarded_by(mut self, guarded: BTreeSet<Privilege>) -> Access {
        self.guarded = guarded;
        self
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

    /// The same access, with `privileges` granted explicitly besides.
    pub fn with_privileges(mut self, privileges: BTreeSet<Privilege>) -> Access {
        self.privileges.extend(privileges);
        self
    }

    /// The named privileges granted explicitly (full access implies all of them but those
    /// that are not [`Privilege::implied_by_full_access`]).
    pub fn privileges(&self) -> &BTreeSet<Privilege> {
        &self.privileges
    }

    /// Whether `permission` is held.
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions().has(permission)
    }

    /// Whether `privilege` is held: granted explicitly, or implied by full access (every
    /// privilege but `secret:reveal`, see [`Privilege::implied_by_full_access`]).
    pub fn has_privilege(&self, privilege: &Privilege) -> bool {
        self.privileges.contains(privilege)
            || (self.is_full() && privilege.implied_by_full_access())
    }

    /// Whether the property `name` may be read (SPEC §9): with full access always; where a
    /// counting grant names `property:NAME:read` the property is guarded and only that
    /// privilege reads it, even with `r`; any other property needs `r`.
    pub fn may_read_property(&self, name: &str) -> bool {
        self.property_requirement(name).is_none()
    }

    /// `Ok` if every one of `names` may be read (see [`Access::may_read_property`]), else an
    /// [`AccessDenied`] naming the first that may not and what it needs.
    pub fn check_properties<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
        agent: &Agent,
        point: &Point,
    ) -> Result<(), AccessDenied> {
        for name in names {
            if let Some(missing) = self.property_requirement(name) {
                return self.require(false, missing, agent, point);
            }
        }
        Ok(())
    }

    /// What reading property `name` needs and is not held, if anything.
    fn property_requirement(&self, name: &str) -> Option<Requirement> {
        if self.is_full() {
            return None;
        }
        let privilege = Privilege::property(name, "read");
        if self.privileges.contains(&privilege) {
            None
        } else if self.guarded.contains(&privilege) {
            Some(Requirement::Privilege(privilege))
        } else if self.has(Permission::Read) {
            None
        } else {
            Some(Requirement::Permission(Permission::Read))
        }
    }

    /// `Ok` if everything `effect` needs is held: its permissions (for reading details, `r`),
    /// then its privilege, if it needs one (for revealing a secret, `secret:reveal`).
    pub fn check_effect(
        &self,
        effect: Effect,
        agent: &Agent,
        point: &Point,
    ) -> Result<(), AccessDenied> {
        effect
            .permissions()
            .iter()
            .try_for_each(|permission| self.check(*permission, agent, point))?;
        match effect.privilege() {
            Some(privilege) => self.check_privilege(&privilege, agent, point),
            None => Ok(()),
        }
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
                agent: Box::new(agent.clone()),
                point: Box::new(point.clone()),
                missing,
            })
        }
    }
}

/// What a wave or a command does to its target, and so what its agent must hold there (SPEC
/// §9: data is read with `r` and changed with `w`, whatever the route).
///
/// Every entrance asks the same question: the Field for every directed wave (after `x`, which
/// every wave needs to reach a particle at all), the executor for every command that reads or
/// changes one particle. [`Effect::of_wave`] classifies waves; [`Access::check_effect`]
/// decides.
///
/// ```
/// use cosmic_space::{Effect, Kind, Method, Permission};
///
/// let artifact: Kind = "Artifact<Raw>".parse()?;
/// let get: Method = "Http<Get>".parse()?;
/// assert_eq!(Effect::of_wave(&artifact, &get), Effect::ReadContent);
/// assert_eq!(Effect::ReadContent.permissions(), &[Permission::Read]);
/// assert_eq!(Effect::of_wave(&Kind::Mechtron, &get), Effect::Execute);
/// # Ok::<(), cosmic_space::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Effect {
    /// The target's own logic answers (a mechtron's route, a liveness check): nothing beyond
    /// `x`.
    Execute,
    /// Reads the target's details and properties: `r`, and properties guarded by a
    /// `property:NAME:read` privilege stay hidden without it.
    ReadDetails,
    /// Reads what the target stores (an artifact's bytes, a file, a value): `r`.
    ReadContent,
    /// Changes the target (its content or properties): `w`.
    Write,
    /// Reveals a `Secret`'s value: `r` and the privilege `secret:reveal`, which only an
    /// explicit grant gives (SPEC §17.3).
    Reveal,
}

impl Effect {
    /// What a directed wave with `method` does to a particle of `kind`.
    ///
    /// On kinds that hold data (artifacts, file stores, files, databases, secrets)
    /// `Cmd<Read>`, `Http<Get>` and `Http<Head>` read the content — a secret's `Cmd<Read>`
    /// and `Http<Get>` reveal it, its `Http<Head>` only says whether it is set — and
    /// `Cmd<Bounce>` and `Http<Options>` only execute; every other method may change it. On
    /// any other kind `Cmd<Read>` reads the details, `Cmd<Update>` changes them, and
    /// everything else is the particle's own business (`x` only). On a `Channel` every
    /// method but those publishes (`w`), and `Http<Get>`/`Http<Head>` subscribe (`r`).
    pub fn of_wave(kind: &Kind, method: &Method) -> Effect {
        if kind.base() == BaseKind::Channel {
            // A channel's `Http<Get>` subscribes (a stream, SPEC §18): reading what it carries.
            return match method {
                Method::Cmd(CmdMethod::Read) => Effect::ReadDetails,
                Method::Http(HttpMethod::Get | HttpMethod::Head) => Effect::ReadContent,
                Method::Cmd(CmdMethod::Bounce) | Method::Http(HttpMethod::Options) => {
                    Effect::Execute
                }
                _ => Effect::Write,
            };
        }
        if kind.base().holds_data() {
            match method {
                Method::Cmd(CmdMethod::Read) | Method::Http(HttpMethod::Get)
                    if kind.base() == BaseKind::Secret =>
                {
                    Effect::Reveal
                }
                Method::Cmd(CmdMethod::Read) | Method::Http(HttpMethod::Get | HttpMethod::Head) => {
                    Effect::ReadContent
                }
                Method::Cmd(CmdMethod::Bounce) | Method::Http(HttpMethod::Options) => {
                    Effect::Execute
                }
                _ => Effect::Write,
            }
        } else {
            match method {
                Method::Cmd(CmdMethod::Read) => Effect::ReadDetails,
                Method::Cmd(CmdMethod::Update) => Effect::Write,
                _ => Effect::Execute,
            }
        }
    }

    /// The permissions it needs besides `x` (which every wave needs to reach its target; a
    /// command is sent to the executor, not to the particle, and needs only these).
    pub fn permissions(self) -> &'static [Permission] {
        match self {
            Effect::Execute => &[],
            Effect::ReadDetails | Effect::ReadContent | Effect::Reveal => &[Permission::Read],
            Effect::Write => &[Permission::Write],
        }
    }

    /// The privilege it needs besides its permissions, if any: `secret:reveal` to reveal.
    pub fn privilege(self) -> Option<Privilege> {
        match self {
            Effect::Reveal => Some(Privilege::secret_reveal()),
            Effect::Execute | Effect::ReadDetails | Effect::ReadContent | Effect::Write => None,
        }
    }

    /// Whether it needs a privilege that full access does not imply, so that even
    /// `HyperUser`'s access must be computed from the grants before it is allowed.
    pub fn needs_grant(self) -> bool {
        self.privilege()
            .is_some_and(|privilege| !privilege.implied_by_full_access())
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
    /// Who was refused (boxed to keep `Result`s small).
    pub agent: Box<Agent>,
    /// On which point.
    pub point: Box<Point>,
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
    let full = if *agent == Agent::HyperUser {
        Some(FullAccess::HyperUser)
    } else if lineage.first_owned(agent).is_some() {
        Some(FullAccess::Owner)
    } else {
        None
    };
    if let Some(why) = full {
        return Access::full(why).with_privileges(not_implied(agent, lineage, grants, agents));
    }
    let counting = Counting::settle(lineage, grants, agents);
    let mut or = Permissions::none();
    let mut and = Permissions::full();
    let mut privileges = BTreeSet::new();
    let mut guarded = BTreeSet::new();
    let mut is_super = false;
    for grant in counting.grants() {
        if let GrantKind::Privilege(p) = &grant.kind {
            guarded.insert(p.clone());
        }
        if !to_matches(&grant.to, agent, agents) {
            continue;
        }
        match &grant.kind {
            GrantKind::Super => is_super = true,
            GrantKind::Privilege(p) => {
                privileges.insert(p.clone());
            }
            GrantKind::Mask(mask) => match mask.kind {
                MaskKind::Or => or = or.or(mask.permissions),
                MaskKind::And => and = and.and(mask.permissions),
            },
        }
    }
    if is_super {
        return Access::full(FullAccess::Super).with_privileges(privileges);
    }
    Access::granted(or.and(and), privileges).guarded_by(guarded)
}

/// The privileges full access does not imply that counting grants give `agent` here. Grants
/// are settled only if some grant names such a privilege: an owner's or HyperUser's access
/// stays as cheap as it was wherever no secret is granted.
fn not_implied(
    agent: &Agent,
    lineage: &Lineage,
    grants: &[Grant],
    agents: &[PointHierarchy],
) -> BTreeSet<Privilege> {
    let names_one = grants
        .iter()
        .any(|grant| matches!(&grant.kind, GrantKind::Privilege(p) if !p.implied_by_full_access()));
    if !names_one {
        return BTreeSet::new();
    }
    Counting::settle(lineage, grants, agents)
        .grants()
        .filter_map(|grant| match &grant.kind {
            GrantKind::Privilege(p)
                if !p.implied_by_full_access() && to_matches(&grant.to, agent, agents) =>
            {
                Some(p.clone())
            }
            _ => None,
        })
        .collect()
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
/// shallowest depth where its `on` matches and its maker holds full access".
struct Counting<'g> {
    candidates: Vec<Candidate<'g>>,
}

/// A grant whose `on` matches the target or an ancestor.
struct Candidate<'g> {
    grant: &'g Grant,
    /// `on_depths[d]`: `on` matches the ancestor with `d` segments.
    on_depths: Vec<bool>,
    /// Index of the maker in [`Makers`].
    maker: usize,
    /// The shallowest depth at which the grant counts, once known.
    counts_at: Option<usize>,
}

/// The distinct makers of the candidate grants, with what makes them entitled.
struct Makers {
    agents: Vec<Agent>,
    /// Where each first owns a point of the lineage.
    owned_from: Vec<Option<usize>>,
    /// `super_to[s][m]`: the `to` of candidate `s` (a `Super` grant) matches maker `m`;
    /// empty for other grants. Matched once, not at every step of the fixed point.
    super_to: Vec<Vec<bool>>,
}

impl Makers {
    /// Whether maker `m` holds full access at depth `d` given the candidates counted so far.
    fn is_full(&self, m: usize, d: usize, candidates: &[Candidate<'_>]) -> bool {
        self.agents.get(m) == Some(&Agent::HyperUser)
            || self
                .owned_from
                .get(m)
                .copied()
                .flatten()
                .is_some_and(|owned| owned <= d)
            || candidates.iter().zip(&self.super_to).any(|(c, to)| {
                c.counts_at.is_some_and(|at| at <= d) && to.get(m).copied().unwrap_or(false)
            })
    }
}

impl<'g> Counting<'g> {
    fn settle(lineage: &Lineage, grants: &'g [Grant], agents: &[PointHierarchy]) -> Counting<'g> {
        let depth = lineage.depth();
        let mut makers = Makers {
            agents: Vec::new(),
            owned_from: Vec::new(),
            super_to: Vec::new(),
        };
        let mut candidates = Vec::new();
        for grant in grants {
            let on_depths: Vec<bool> = (0..=depth)
                .map(|d| grant.on.matches_depth(lineage.hierarchy(), d))
                .collect();
            if !on_depths.contains(&true) {
                continue;
            }
            let agent = Agent::from_point(grant.by.clone());
            let maker = match makers.agents.iter().position(|m| *m == agent) {
                Some(m) => m,
                None => {
                    makers.owned_from.push(lineage.first_owned(&agent));
                    makers.agents.push(agent);
                    makers.agents.len() - 1
                }
            };
            candidates.push(Candidate {
                grant,
                on_depths,
                maker,
                counts_at: None,
            });
        }
        makers.super_to = candidates
            .iter()
            .map(|c| match c.grant.kind {
                GrantKind::Super => makers
                    .agents
                    .iter()
                    .map(|m| to_matches(&c.grant.to, m, agents))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        // Top-down; at each depth admit grants until nothing changes. A grant's `counts_at` is
        // `None` while it is judged, so it can never vouch for its own maker.
        for d in 0..=depth {
            loop {
                let admit: Vec<usize> = (0..candidates.len())
                    .filter(|&i| {
                        candidates.get(i).is_some_and(|c| {
                            c.counts_at.is_none()
                                && c.on_depths.get(d).copied().unwrap_or(false)
                                && makers.is_full(c.maker, d, &candidates)
                        })
                    })
                    .collect();
                if admit.is_empty() {
                    break;
                }
                for i in admit {
                    if let Some(c) = candidates.get_mut(i) {
                        c.counts_at = Some(d);
                    }
                }
            }
        }
        Counting { candidates }
    }

    /// The grants that count for the target.
    fn grants(&self) -> impl Iterator<Item = &'g Grant> + '_ {
        self.candidates
            .iter()
            .filter(|c| c.counts_at.is_some())
            .map(|c| c.grant)
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

    /// `ROOT` → `localhost` (HyperUser's) → `localhost:app` (alice's) → `localhost:app:echo`
    /// (alice's); returns the lineages of `localhost`, the app and the echo mechtron.
    fn tree() -> (Lineage, Lineage, Lineage) {
        let hyper = Point::hyperuser();
        let alice = user("alice");
        let localhost = Lineage::root(hyper.clone())
            .push(PointSeg::Space("localhost".into()), Kind::Space, hyper)
            .unwrap();
        let app = localhost
            .push(PointSeg::Base("app".into()), Kind::App, alice.clone())
            .unwrap();
        let echo = app
            .push(PointSeg::Base("echo".into()), Kind::Mechtron, alice)
            .unwrap();
        (localhost, app, echo)
    }

    fn user(name: &str) -> Point {
        format!("localhost:users:{name}").parse().unwrap()
    }

    fn agent(name: &str) -> Agent {
        Agent::Point(user(name))
    }

    /// The hierarchies of every user of the tests (and of Anonymous).
    fn agents() -> Vec<PointHierarchy> {
        let mut all: Vec<PointHierarchy> = ["alice", "bob", "carol", "scott"]
            .iter()
            .map(|n| {
                PointHierarchy::new(user(n), vec![Kind::Space, Kind::UserBase(None), Kind::User])
                    .unwrap()
            })
            .collect();
        all.push(
            PointHierarchy::new(
                Point::anonymous(),
                vec![Kind::Space, Kind::UserBase(None), Kind::User],
            )
            .unwrap(),
        );
        all
    }

    fn grant(kind: &str, on: &str, to: &str, by: &Point) -> Grant {
        Grant {
            id: 0,
            kind: kind.parse().unwrap(),
            on: on.parse().unwrap(),
            to: to.parse().unwrap(),
            by: by.clone(),
        }
    }

    fn of(who: &Agent, target: &Lineage, grants: &[Grant]) -> Access {
        access(who, target, grants, &agents())
    }

    fn perms(s: &str) -> Permissions {
        s.parse().unwrap()
    }

    #[test]
    fn hyperuser_has_everything_and_anonymous_nothing() {
        let (localhost, app, echo) = tree();
        for target in [&localhost, &app, &echo, &Lineage::root(Point::hyperuser())] {
            let a = of(&Agent::HyperUser, target, &[]);
            assert_eq!(a.full_reason(), Some(FullAccess::HyperUser));
            assert_eq!(a.permissions(), Permissions::full());
            assert_eq!(of(&Agent::Anonymous, target, &[]), Access::none());
        }
        // Anonymous gets what it is granted, nothing more.
        let g = grant(
            "+csd-rwX",
            "localhost:app:**",
            "hyperspace:users:anonymous",
            &Point::hyperuser(),
        );
        let a = of(&Agent::Anonymous, &echo, std::slice::from_ref(&g));
        assert_eq!(a.permissions(), perms("csd-rwX"));
        assert!(!a.is_full());
        assert_eq!(of(&Agent::Anonymous, &app, &[g]), Access::none());
    }

    #[test]
    fn owners_have_full_access_below_what_they_own() {
        let (localhost, app, echo) = tree();
        let alice = agent("alice");
        assert_eq!(of(&alice, &app, &[]).full_reason(), Some(FullAccess::Owner));
        // Owner of an ancestor.
        let child = app
            .push(PointSeg::Base("other".into()), Kind::Mechtron, user("bob"))
            .unwrap();
        assert_eq!(
            of(&alice, &child, &[]).full_reason(),
            Some(FullAccess::Owner)
        );
        assert_eq!(
            of(&alice, &echo, &[]).full_reason(),
            Some(FullAccess::Owner)
        );
        // Not above.
        assert_eq!(of(&alice, &localhost, &[]), Access::none());
        // Bob owns the child only.
        assert!(of(&agent("bob"), &child, &[]).is_full());
        assert!(!of(&agent("bob"), &app, &[]).is_full());
        // Owning as Anonymous gives nothing: anonymous is everybody.
        let anon_owned = app
            .push(
                PointSeg::Base("anon".into()),
                Kind::Mechtron,
                Point::anonymous(),
            )
            .unwrap();
        assert_eq!(of(&Agent::Anonymous, &anon_owned, &[]), Access::none());
    }

    #[test]
    fn super_gives_full_access_to_the_subtree() {
        let (localhost, app, echo) = tree();
        let g = [grant(
            "Super",
            "localhost:app",
            "localhost:users:bob",
            &Point::hyperuser(),
        )];
        let bob = agent("bob");
        assert_eq!(of(&bob, &app, &g).full_reason(), Some(FullAccess::Super));
        assert_eq!(of(&bob, &echo, &g).full_reason(), Some(FullAccess::Super));
        assert_eq!(of(&bob, &localhost, &g), Access::none());
        assert_eq!(of(&agent("scott"), &app, &g), Access::none());
        // Full access implies every privilege.
        assert!(of(&bob, &echo, &g).has_privilege(&"property:email:read".parse().unwrap()));
    }

    #[test]
    fn privileges_are_collected() {
        let (_, app, echo) = tree();
        let hyper = Point::hyperuser();
        let g = [
            grant(
                "property:email:read",
                "localhost",
                "localhost:users:*",
                &hyper,
            ),
            grant(
                "property:name:read",
                "localhost:app:echo",
                "localhost:users:scott",
                &hyper,
            ),
            grant(
                "property:name:write",
                "localhost:app:echo",
                "localhost:users:bob",
                &hyper,
            ),
        ];
        let scott = agent("scott");
        let a = of(&scott, &echo, &g);
        let names: Vec<&str> = a.privileges().iter().map(Privilege::as_str).collect();
        assert_eq!(names, ["property:email:read", "property:name:read"]);
        assert_eq!(a.permissions(), Permissions::none());
        assert!(a.has_privilege(&"property:name:read".parse().unwrap()));
        assert!(!a.has_privilege(&"property:name:write".parse().unwrap()));
        let names: Vec<String> = of(&scott, &app, &g)
            .privileges()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["property:email:read"]);
    }

    #[test]
    fn masks_or_together_and_and_masks_restrict_at_any_level() {
        let (localhost, app, echo) = tree();
        let hyper = Point::hyperuser();
        let scott = agent("scott");
        let g = [
            // At localhost: select and read for every user.
            grant("+cSd-Rwx", "localhost", "localhost:users:*<User>", &hyper),
            // At the app: create, write and execute for scott.
            grant("+Csd-rWX", "localhost:app", "localhost:users:scott", &hyper),
            // At the echo mechtron: nothing but read and execute, for everybody.
            grant("&csd-RwX", "localhost:app:echo", "**", &hyper),
        ];
        assert_eq!(of(&scott, &localhost, &g).permissions(), perms("cSd-Rwx"));
        assert_eq!(of(&scott, &app, &g).permissions(), perms("CSd-RWX"));
        assert_eq!(of(&scott, &echo, &g).permissions(), perms("csd-RwX"));
        // An `&` at an ancestor restricts a `+` deeper down too.
        let g2 = [
            grant("&cSd-Rwx", "localhost", "**", &hyper),
            grant(
                "+CSD-RWX",
                "localhost:app:echo",
                "localhost:users:scott",
                &hyper,
            ),
        ];
        assert_eq!(of(&scott, &echo, &g2).permissions(), perms("cSd-Rwx"));
        assert!(of(&scott, &echo, &g2).has(Permission::Read));
        assert!(!of(&scott, &echo, &g2).has(Permission::Execute));
        // Two `&` masks both restrict.
        let g3 = [
            grant("+CSD-RWX", "localhost", "localhost:users:scott", &hyper),
            grant("&CSD-rwx", "localhost", "**", &hyper),
            grant("&cSd-RWX", "localhost:app", "**", &hyper),
        ];
        assert_eq!(of(&scott, &app, &g3).permissions(), perms("cSd-rwx"));
        assert_eq!(of(&scott, &localhost, &g3).permissions(), perms("CSD-rwx"));
        // `&` masks do not restrict owners or Super holders.
        assert!(of(&agent("alice"), &echo, &g).is_full());
        assert_eq!(
            of(&agent("alice"), &echo, &g).permissions(),
            Permissions::full()
        );
        let with_super = [
            g[2].clone(),
            grant("Super", "localhost:app", "localhost:users:bob", &hyper),
        ];
        assert_eq!(
            of(&agent("bob"), &echo, &with_super).permissions(),
            Permissions::full()
        );
    }

    #[test]
    fn grants_to_other_agents_do_not_apply() {
        let (_, app, _) = tree();
        let hyper = Point::hyperuser();
        let g = [
            grant("+CSD-RWX", "localhost:app", "localhost:users:bob", &hyper),
            grant("Super", "localhost:app", "localhost:*:bob", &hyper),
        ];
        assert_eq!(of(&agent("scott"), &app, &g), Access::none());
        assert!(of(&agent("bob"), &app, &g).is_full());
        // Kind selectors in `to` need the agent's kinds.
        let kinded = [grant(
            "+csd-rwX",
            "localhost:app",
            "localhost:users:*<User>",
            &hyper,
        )];
        assert!(of(&agent("scott"), &app, &kinded).has(Permission::Execute));
        let stranger = Agent::Point("localhost:users:dave".parse().unwrap());
        assert_eq!(of(&stranger, &app, &kinded), Access::none());
        let dave = PointHierarchy::new(
            "localhost:users:dave".parse().unwrap(),
            vec![Kind::Space, Kind::UserBase(None), Kind::User],
        )
        .unwrap();
        assert!(access(&stranger, &app, &kinded, &[dave]).has(Permission::Execute));
        // A grant on another subtree does not apply.
        let elsewhere = [grant("+CSD-RWX", "localhost:other:**", "**", &hyper)];
        assert_eq!(of(&agent("scott"), &app, &elsewhere), Access::none());
    }

    #[test]
    fn grants_by_agents_not_entitled_are_ignored() {
        let (localhost, app, echo) = tree();
        let scott = agent("scott");
        let alice = user("alice");
        let bob = user("bob");
        // Scott cannot grant himself anything; Bob cannot grant on Alice's app.
        let g = [
            grant(
                "Super",
                "localhost:app",
                "localhost:users:scott",
                &user("scott"),
            ),
            grant("+CSD-RWX", "localhost:app", "localhost:users:scott", &bob),
        ];
        assert_eq!(of(&scott, &app, &g), Access::none());
        // Alice owns the app: her grant there counts, her grant on localhost does not.
        let g = [
            grant("+csd-Rwx", "localhost:app", "localhost:users:scott", &alice),
            grant("+csd-rWx", "localhost", "localhost:users:scott", &alice),
        ];
        assert_eq!(of(&scott, &app, &g).permissions(), perms("csd-Rwx"));
        assert_eq!(of(&scott, &echo, &g).permissions(), perms("csd-Rwx"));
        assert_eq!(of(&scott, &localhost, &g), Access::none());
        // A broad `on` counts where the maker is entitled: the part below the app.
        let broad = [grant(
            "+csd-rwX",
            "localhost:**",
            "localhost:users:scott",
            &alice,
        )];
        assert!(of(&scott, &echo, &broad).has(Permission::Execute));
        assert!(of(&scott, &app, &broad).has(Permission::Execute));
        let other = localhost
            .push(
                PointSeg::Base("other".into()),
                Kind::App,
                Point::hyperuser(),
            )
            .unwrap();
        assert_eq!(of(&scott, &other, &broad), Access::none());
        // An `&` mask by someone not entitled restricts nothing.
        let g = [
            grant("+csd-RWX", "localhost:app", "localhost:users:scott", &alice),
            grant("&csd-rwx", "localhost:app", "**", &bob),
        ];
        assert_eq!(of(&scott, &app, &g).permissions(), perms("csd-RWX"));
    }

    #[test]
    fn super_holders_may_grant_where_they_hold_it() {
        let (_, app, echo) = tree();
        let hyper = Point::hyperuser();
        let bob = user("bob");
        let scott = agent("scott");
        let chain = [
            grant("Super", "localhost:app", "localhost:users:bob", &hyper),
            grant("+csd-rwX", "localhost:app", "localhost:users:scott", &bob),
        ];
        assert!(of(&scott, &app, &chain).has(Permission::Execute));
        // Super via a `to` with kinds: Bob's kinds must be known to recognise him.
        let kinded = [
            grant("Super", "localhost:app", "localhost:users:*<User>", &hyper),
            grant("+csd-rwX", "localhost:app", "localhost:users:scott", &bob),
        ];
        assert!(of(&scott, &app, &kinded).has(Permission::Execute));
        let scott_only: Vec<PointHierarchy> = agents()
            .into_iter()
            .filter(|h| *h.point() == user("scott"))
            .collect();
        assert!(access(&scott, &app, &kinded, &scott_only).is_full());
        let without_bob = [kinded[1].clone()];
        assert_eq!(
            access(&scott, &app, &without_bob, &scott_only),
            Access::none()
        );
        // Super held only deeper down does not entitle a grant on the app.
        let deep = [
            grant("Super", "localhost:app:echo", "localhost:users:bob", &hyper),
            grant("+csd-rwX", "localhost:app", "localhost:users:scott", &bob),
            grant(
                "+csd-Rwx",
                "localhost:app:**",
                "localhost:users:scott",
                &bob,
            ),
        ];
        assert_eq!(of(&scott, &echo, &deep).permissions(), perms("csd-Rwx"));
        assert_eq!(of(&scott, &app, &deep), Access::none());
    }

    #[test]
    fn cycles_count_for_nothing() {
        let (_, app, _) = tree();
        let bob = user("bob");
        let carol = user("carol");
        let g = [
            grant("Super", "localhost:app", "localhost:users:carol", &bob),
            grant("Super", "localhost:app", "localhost:users:bob", &carol),
            grant("Super", "localhost:app", "localhost:users:bob", &bob),
            grant("+CSD-RWX", "localhost:app", "localhost:users:scott", &bob),
            grant("+CSD-RWX", "localhost:app", "localhost:users:scott", &carol),
        ];
        assert_eq!(of(&agent("bob"), &app, &g), Access::none());
        assert_eq!(of(&agent("carol"), &app, &g), Access::none());
        assert_eq!(of(&agent("scott"), &app, &g), Access::none());
        // Once one of them is entitled, the chain counts in order.
        let mut entitled = g.to_vec();
        entitled.push(grant(
            "Super",
            "localhost:app",
            "localhost:users:carol",
            &user("alice"),
        ));
        assert!(of(&agent("carol"), &app, &entitled).is_full());
        assert!(of(&agent("bob"), &app, &entitled).is_full());
        assert_eq!(
            of(&agent("scott"), &app, &entitled).permissions(),
            Permissions::full()
        );
    }

    #[test]
    fn long_super_chains_settle() {
        let (_, app, _) = tree();
        let name = |i: usize| format!("u{i}");
        // HyperUser → u0 → u1 → … → u99, listed backwards so every pass admits only one.
        let mut chain: Vec<Grant> = (1..100)
            .rev()
            .map(|i| {
                grant(
                    "Super",
                    "localhost:app",
                    &format!("localhost:users:{}", name(i)),
                    &user(&name(i - 1)),
                )
            })
            .collect();
        chain.push(grant(
            "Super",
            "localhost:app",
            "localhost:users:u0",
            &Point::hyperuser(),
        ));
        assert!(of(&agent("u99"), &app, &chain).is_full());
        // Break one link: everything after it counts for nothing.
        chain.remove(40);
        assert!(of(&agent("u50"), &app, &chain).is_full());
        assert!(!of(&agent("u60"), &app, &chain).is_full());
        assert!(!of(&agent("u99"), &app, &chain).is_full());
    }

    /// `localhost:app:key`, a Secret alice owns below alice's app.
    fn secret() -> Lineage {
        let (_, app, _) = tree();
        app.push(PointSeg::Base("key".into()), Kind::Secret, user("alice"))
            .unwrap()
    }

    #[test]
    fn secrets_are_revealed_by_get_and_read_and_changed_by_the_rest() {
        let effect = |method: &str| Effect::of_wave(&Kind::Secret, &method.parse().unwrap());
        assert_eq!(effect("Http<Get>"), Effect::Reveal);
        assert_eq!(effect("Cmd<Read>"), Effect::Reveal);
        assert_eq!(effect("Http<Head>"), Effect::ReadContent);
        assert_eq!(effect("Http<Put>"), Effect::Write);
        assert_eq!(effect("Http<Delete>"), Effect::Write);
        assert_eq!(effect("Ext<Reveal>"), Effect::Write);
        assert_eq!(effect("Http<Options>"), Effect::Execute);
        assert_eq!(effect("Cmd<Bounce>"), Effect::Execute);
        assert_eq!(Effect::Reveal.permissions(), &[Permission::Read]);
        assert_eq!(Effect::Reveal.privilege(), Some(Privilege::secret_reveal()));
        assert!(Effect::Reveal.needs_grant());
        for other in [
            Effect::Execute,
            Effect::ReadDetails,
            Effect::ReadContent,
            Effect::Write,
        ] {
            assert_eq!(other.privilege(), None, "{other:?}");
            assert!(!other.needs_grant(), "{other:?}");
        }
        // Only secrets reveal: a file's Http<Get> reads its content with `r` alone.
        let file: Kind = "File<File>".parse().unwrap();
        assert_eq!(
            Effect::of_wave(&file, &"Http<Get>".parse().unwrap()),
            Effect::ReadContent
        );
    }

    /// SPEC §17.3: `secret:reveal` is not implied by masks, owning, `Super` or being
    /// `HyperUser`; only a counting grant naming it gives it, and revealing needs `r` too.
    #[test]
    fn secret_reveal_needs_a_grant_naming_it_whoever_asks() {
        let key = secret();
        let hyper = Point::hyperuser();
        let reveal = Privilege::secret_reveal();
        let (alice, bob, carol, scott) =
            (agent("alice"), agent("bob"), agent("carol"), agent("scott"));
        let base = vec![
            grant("Super", "localhost:app+:**", "localhost:users:bob", &hyper),
            grant(
                "+CSD-RWX",
                "localhost:app+:**",
                "localhost:users:carol",
                &hyper,
            ),
        ];
        let email: Privilege = "property:email:read".parse().unwrap();
        for who in [&Agent::HyperUser, &alice, &bob, &carol] {
            let a = of(who, &key, &base);
            assert!(a.has(Permission::Read), "{who}");
            assert!(!a.has_privilege(&reveal), "{who}");
            let denied = a
                .check_effect(Effect::Reveal, who, key.target())
                .unwrap_err();
            assert_eq!(
                denied.missing,
                Requirement::Privilege(reveal.clone()),
                "{who}"
            );
            assert_eq!(
                a.check_effect(Effect::ReadContent, who, key.target()),
                Ok(())
            );
        }
        // Full access still implies every other privilege.
        assert!(of(&alice, &key, &base).has_privilege(&email));
        assert!(of(&bob, &key, &base).has_privilege(&email));
        assert!(!of(&carol, &key, &base).has_privilege(&email));
        assert_eq!(
            of(&Agent::HyperUser, &key, &base)
                .check_effect(Effect::Reveal, &Agent::HyperUser, key.target())
                .unwrap_err()
                .to_string(),
            "hyperspace:users:hyperuser may not secret:reveal localhost:app:key \
             (missing privilege 'secret:reveal')"
        );

        let mut granted = base.clone();
        granted.push(grant(
            "secret:reveal",
            "localhost:app:key",
            "hyperspace:users:hyperuser",
            &hyper,
        ));
        granted.push(grant(
            "secret:reveal",
            "localhost:app:**",
            "localhost:users:*",
            &hyper,
        ));
        for who in [&Agent::HyperUser, &alice, &bob, &carol] {
            let a = of(who, &key, &granted);
            assert!(a.has_privilege(&reveal), "{who}");
            assert_eq!(a.check_effect(Effect::Reveal, who, key.target()), Ok(()));
        }
        // The privilege without `r` reveals nothing.
        let a = of(&scott, &key, &granted);
        assert!(a.has_privilege(&reveal));
        assert_eq!(
            a.check_effect(Effect::Reveal, &scott, key.target())
                .unwrap_err()
                .missing,
            Requirement::Permission(Permission::Read)
        );
        // Granted on the app, not on the secret's subtree: the app's own grant covers it, a
        // grant on a sibling does not.
        let sibling = [
            base[1].clone(),
            grant(
                "secret:reveal",
                "localhost:app:other",
                "localhost:users:carol",
                &hyper,
            ),
        ];
        assert!(!of(&carol, &key, &sibling).has_privilege(&reveal));
    }

    /// Who may grant `secret:reveal` is who may grant anything: full access where it applies
    /// (the owner, a `Super` holder, HyperUser) — and they may grant it to themselves, leaving
    /// the grant as the trace. A grant by anyone else counts for nothing.
    #[test]
    fn secret_reveal_counts_only_from_makers_with_full_access() {
        let key = secret();
        let hyper = Point::hyperuser();
        let reveal = Privilege::secret_reveal();
        let mask = grant(
            "+CSD-RWX",
            "localhost:app+:**",
            "localhost:users:carol",
            &hyper,
        );
        let self_made = [
            mask.clone(),
            grant(
                "secret:reveal",
                "localhost:app:key",
                "localhost:users:carol",
                &user("carol"),
            ),
        ];
        assert!(!of(&agent("carol"), &key, &self_made).has_privilege(&reveal));
        let by_owner = [
            mask,
            grant(
                "secret:reveal",
                "localhost:app:key",
                "localhost:users:*",
                &user("alice"),
            ),
        ];
        assert!(of(&agent("carol"), &key, &by_owner).has_privilege(&reveal));
        assert!(of(&agent("alice"), &key, &by_owner).has_privilege(&reveal));
        assert!(!of(&Agent::HyperUser, &key, &by_owner).has_privilege(&reveal));
    }

    #[test]
    fn refusals_name_agent_point_and_what_is_missing() {
        let (_, app, _) = tree();
        let scott = agent("scott");
        let a = of(&scott, &app, &[]);
        let err = a
            .check(Permission::Execute, &scott, app.target())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "localhost:users:scott may not x localhost:app (missing permission 'x')"
        );
        assert_eq!(err.missing, Requirement::Permission(Permission::Execute));
        let err = a.check_full(&scott, app.target()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "localhost:users:scott may not administer localhost:app (missing full access (owner or Super))"
        );
        let read: Privilege = "property:email:read".parse().unwrap();
        let err = a.check_privilege(&read, &scott, app.target()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "localhost:users:scott may not property:email:read localhost:app (missing privilege 'property:email:read')"
        );
        let crate_err: crate::Error = err.into();
        assert!(matches!(crate_err, crate::Error::AccessDenied(_)));
        let alice = agent("alice");
        let full = of(&alice, &app, &[]);
        assert_eq!(
            full.check(Permission::Execute, &alice, app.target()),
            Ok(())
        );
        assert_eq!(full.check_full(&alice, app.target()), Ok(()));
    }

    #[test]
    fn lineages_check_their_owners() {
        let hierarchy = PointHierarchy::new(
            "localhost:app".parse().unwrap(),
            vec![Kind::Space, Kind::App],
        )
        .unwrap();
        let err = Lineage::new(hierarchy.clone(), vec![Point::hyperuser()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'localhost:app' has 3 point(s) from ROOT down but 1 owner(s) were given"
        );
        let ok = Lineage::new(hierarchy, vec![Point::hyperuser(); 3]).unwrap();
        assert_eq!(ok.depth(), 2);
        assert_eq!(ok.owners(), vec![Point::hyperuser(); 3].as_slice());
        assert_eq!(ok.target().to_string(), "localhost:app");
    }

    #[test]
    fn agents_know_their_points() {
        assert_eq!(Agent::from_point(Point::hyperuser()), Agent::HyperUser);
        assert_eq!(Agent::Anonymous.to_point(), Point::anonymous());
    }
}
