//! The security data model (SPEC §9): agents, permissions, masks, privileges and grants.
//!
//! ```
//! use cosmic_space::{GrantKind, Permissions};
//!
//! let mask: GrantKind = "+cSd-RwX".parse()?;
//! assert_eq!(mask.to_string(), "+cSd-RwX");
//! assert_eq!("CSD-RWX".parse::<Permissions>()?, Permissions::full());
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::point::Point;
use crate::selector::Selector;
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
